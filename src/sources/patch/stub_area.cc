// stub_area.cc - stub pages near a module, the stubs and their unwind information (contract:
// stub_area.hpp).
#include "sources/patch/stub_area.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "sources/patch/scratch.hpp"
#include "sources/sys/sys.hpp"

extern "C" void __register_frame_info(const void* begin, void* object);  // libgcc (unwind-dw2-fde)
// LeakSanitizer, when present (weak): the libgcc object record lives in raw-mmapped memory LSan does not
// scan, and libgcc hangs the FDE table it mallocs at the first unwind off it.
extern "C" void __lsan_register_root_region(const void* begin, size_t size) __attribute__((weak));

namespace umn::detail::patch {
namespace {

constexpr char kStubMagic[8] = {'U', 'M', 'N', 'S', 'T', 'U', 'B', '1'};
constexpr unsigned kHeaderSize = 64;           // the header, then stubs
constexpr unsigned kMaxStubSize = 320;         // an upper bound of one stub's code
constexpr unsigned kMaxFdeSize = 96;           // an upper bound of one stub's FDE
constexpr unsigned kRedZone = 128;             // the psABI's red zone below the site's stack pointer
constexpr unsigned kFrameToSite = kRedZone + 16;  // site rsp - frame pointer: red zone, site rsp, rbp
constexpr unsigned kVectorSave = 512;          // fxsave64 area
constexpr uint32_t kHookStackSize = 64 << 10;  // per thread, with a guard page at the bottom
constexpr uint64_t kReach = (1ull << 31) - sys::kPageSize;  // rel32, both directions
constexpr uint64_t kLowest = 1 << 16;          // below: vm.mmap_min_addr
constexpr uint64_t kHighest = 0x7ffffffff000;  // the top of the x86-64 user address space
constexpr unsigned kLibgccObjectSize = 128;    // >= sizeof(struct object) of libgcc's unwinder

struct Header {
  char magic[8];
  Registry* registry;
};

// The top of this thread's hook stack (0: not allocated yet); written by the stubs through %fs.
[[gnu::tls_model("initial-exec")]] thread_local uintptr_t t_hook_stack_top = 0;

int32_t hook_stack_tls_offset() noexcept {
  uintptr_t tcb;
  asm("mov %%fs:0, %0" : "=r"(tcb));
  return static_cast<int32_t>(static_cast<intptr_t>(reinterpret_cast<uintptr_t>(&t_hook_stack_top) - tcb));
}

// ---- emitting --------------------------------------------------------------------------------------

class Emitter {
 public:
  explicit Emitter(unsigned char* at) : base_(at), p_(at) {}
  void bytes(std::initializer_list<unsigned char> list) noexcept {
    for (unsigned char b : list) *p_++ = b;
  }
  void raw(const void* src, size_t n) noexcept {
    std::memcpy(p_, src, n);
    p_ += n;
  }
  void imm32(uint32_t v) noexcept { raw(&v, 4); }
  void imm64(uint64_t v) noexcept { raw(&v, 8); }
  void jmp(uintptr_t target) noexcept {  // e9 rel32; the caller guarantees the distance
    *p_++ = 0xe9;
    imm32(static_cast<uint32_t>(target - (reinterpret_cast<uintptr_t>(p_) + 4)));
  }
  unsigned char* jcc8(unsigned char opcode) noexcept {  // returns the fixup for bind()
    bytes({opcode, 0});
    return p_ - 1;
  }
  void bind(unsigned char* fixup) noexcept { *fixup = static_cast<unsigned char>(p_ - (fixup + 1)); }
  unsigned char* here() const noexcept { return p_; }
  unsigned offset() const noexcept { return static_cast<unsigned>(p_ - base_); }
  void seek(unsigned char* at) noexcept { p_ = at; }

 private:
  unsigned char* base_;
  unsigned char* p_;
};

// Where the stack pointer rule changes inside one stub (offsets from its entry): see the FDE.
struct CfiPoints {
  unsigned red_zone, pushed_rsp, pushed_rbp, framed, unframed, popped_rbp, restored;
};

// glibc's syscall(): only watched numbers go on to the dispatcher; everything else (clone, vfork,
// exit...) runs the real syscall instruction here, with the caller's stack untouched.
void emit_syscall_fn_filter(Emitter& e, uintptr_t resume) noexcept {
  unsigned char* to_body[16];
  unsigned n = 0;
  for (long nr = 0; nr < 512 && n < 16; ++nr) {
    if (!watched(nr)) continue;
    e.bytes({0x3d});  // cmp $nr,%eax: the kernel reads the number as an int (do_syscall_64)
    e.imm32(static_cast<uint32_t>(nr));
    to_body[n++] = e.jcc8(0x74);  // je body
  }
  e.bytes({0x0f, 0x05});  // syscall
  e.jmp(resume);
  for (unsigned i = 0; i < n; ++i) e.bind(to_body[i]);
}

// Allocates the thread's hook stack with two inline system calls, using the site's stack for the
// argument registers: mmap of the whole stack without access, then mprotect of all but its lowest page
// to read+write (the guard page stays inaccessible; neither call takes access away, so neither is an
// event an outside verifier could miss). Leaves its top in %rcx, or 0 on failure.
void emit_hook_stack_alloc(Emitter& e, int32_t tls) noexcept {
  e.bytes({0x50, 0x57, 0x56, 0x52, 0x41, 0x52, 0x41, 0x50, 0x41, 0x51});  // push rax rdi rsi rdx r10 r8 r9
  e.bytes({0xb8, 0x09, 0, 0, 0, 0x31, 0xff, 0xbe});       // mov $SYS_mmap,%eax; xor %edi,%edi; mov $size,%esi
  e.imm32(kHookStackSize);
  e.bytes({0x31, 0xd2});                                   // xor %edx,%edx (PROT_NONE)
  e.bytes({0x41, 0xba});                                   // mov $(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE),%r10d
  e.imm32(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  e.bytes({0x49, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff});     // mov $-1,%r8
  e.bytes({0x45, 0x31, 0xc9, 0x0f, 0x05});                 // xor %r9d,%r9d; syscall
  e.bytes({0x31, 0xc9, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff});  // xor %ecx,%ecx; cmp $-4095,%rax
  unsigned char* no_map = e.jcc8(0x73);                    // jae restore
  e.bytes({0x48, 0x8d, 0xb8, 0x00, 0x10, 0, 0, 0xbe});     // lea 4096(%rax),%rdi; mov $(size - 4096),%esi
  e.imm32(kHookStackSize - sys::kPageSize);
  e.bytes({0xba, 0x03, 0, 0, 0});                          // mov $(PROT_READ|PROT_WRITE),%edx
  e.bytes({0xb8, 0x0a, 0, 0, 0, 0x0f, 0x05});              // mov $SYS_mprotect,%eax; syscall
  e.bytes({0x31, 0xc9, 0x48, 0x85, 0xc0});                 // xor %ecx,%ecx; test %rax,%rax
  unsigned char* no_access = e.jcc8(0x75);                 // jnz restore
  e.bytes({0x48, 0x8d, 0x8f});                             // lea (size - 4096)(%rdi),%rcx: the top
  e.imm32(kHookStackSize - sys::kPageSize);
  e.bytes({0x64, 0x48, 0x89, 0x0c, 0x25});                 // mov %rcx,%fs:tls
  e.imm32(static_cast<uint32_t>(tls));
  e.bind(no_map);
  e.bind(no_access);
  e.bytes({0x41, 0x59, 0x41, 0x58, 0x41, 0x5a, 0x5a, 0x5e, 0x5f, 0x58});  // pop r9 r8 r10 rdx rsi rdi rax
}

// Moves %rsp to the thread's hook stack unless it is already on it (a signal handler interrupting a
// hooked call) or the stack could not be allocated. Clobbers rcx and r11 (a syscall does too).
void emit_switch_stack(Emitter& e, int32_t tls) noexcept {
  e.bytes({0x64, 0x48, 0x8b, 0x0c, 0x25});  // mov %fs:tls,%rcx
  e.imm32(static_cast<uint32_t>(tls));
  e.bytes({0x48, 0x85, 0xc9});              // test %rcx,%rcx
  unsigned char* have = e.jcc8(0x75);       // jnz have
  emit_hook_stack_alloc(e, tls);
  e.bytes({0x48, 0x85, 0xc9});              // test %rcx,%rcx
  unsigned char* none = e.jcc8(0x74);       // jz stay
  e.bind(have);
  e.bytes({0x49, 0x89, 0xcb, 0x49, 0x29, 0xe3, 0x49, 0x81, 0xfb});  // mov %rcx,%r11; sub %rsp,%r11; cmp $size,%r11
  e.imm32(kHookStackSize);
  unsigned char* on_it = e.jcc8(0x76);      // jbe stay
  e.bytes({0x48, 0x89, 0xcc});              // mov %rcx,%rsp
  e.bind(none);
  e.bind(on_it);
}

// The call into the dispatcher, entered with %rax = nr and the kernel argument registers; jumps back to
// resume with %rax = the raw result. Saves what a syscall preserves among the general registers (all
// but rax, rcx, r11).
void emit_call_body(Emitter& e, unsigned entry, uintptr_t resume, const StubOptions& options, int32_t tls,
                    CfiPoints* cfi) noexcept {
  e.bytes({0x49, 0x89, 0xe3});                          // mov %rsp,%r11 (the site's rsp)
  e.bytes({0x48, 0x8d, 0x64, 0x24, 0x80});              // lea -128(%rsp),%rsp (red zone)
  cfi->red_zone = e.offset() - entry;
  e.bytes({0x41, 0x53});                                // push %r11
  cfi->pushed_rsp = e.offset() - entry;
  e.bytes({0x55});                                      // push %rbp
  cfi->pushed_rbp = e.offset() - entry;
  e.bytes({0x48, 0x89, 0xe5});                          // mov %rsp,%rbp
  cfi->framed = e.offset() - entry;
  if (options.switch_stack) emit_switch_stack(e, tls);
  e.bytes({0x48, 0x83, 0xe4, 0xf0});                    // and $-16,%rsp
  if (options.save_vector) {
    e.bytes({0x48, 0x81, 0xec});                        // sub $512,%rsp
    e.imm32(kVectorSave);
    e.bytes({0x48, 0x0f, 0xae, 0x04, 0x24});            // fxsave64 (%rsp)
  }
  e.bytes({0x57, 0x56, 0x52, 0x41, 0x50, 0x41, 0x51, 0x41, 0x52});  // push rdi rsi rdx r8 r9 r10
  e.bytes({0xff, 0x75, 0x08, 0x50});                    // push 8(%rbp) (8th: site rsp); push %rax (7th: nr)
  e.bytes({0x4c, 0x89, 0xd1});                          // mov %r10,%rcx (4th argument)
  e.bytes({0x48, 0xb8});                                // movabs $dispatch,%rax
  e.imm64(reinterpret_cast<uint64_t>(options.dispatch));
  e.bytes({0xff, 0xd0, 0x48, 0x83, 0xc4, 0x10});        // call *%rax; add $16,%rsp
  e.bytes({0x41, 0x5a, 0x41, 0x59, 0x41, 0x58, 0x5a, 0x5e, 0x5f});  // pop r10 r9 r8 rdx rsi rdi
  if (options.save_vector) e.bytes({0x48, 0x0f, 0xae, 0x0c, 0x24});  // fxrstor64 (%rsp)
  e.bytes({0x48, 0x89, 0xec});                          // mov %rbp,%rsp
  cfi->unframed = e.offset() - entry;
  e.bytes({0x5d});                                      // pop %rbp
  cfi->popped_rbp = e.offset() - entry;
  e.bytes({0x48, 0x8d, 0xa4, 0x24});                    // lea 136(%rsp),%rsp (saved rsp, red zone)
  e.imm32(kFrameToSite - 8);
  cfi->restored = e.offset() - entry;
  e.jmp(resume);
}

// ---- unwind information (.eh_frame: CIE "zR" with absolute FDE pointers) ---------------------------

constexpr unsigned char kDwarfRa = 16, kDwarfRsp = 7, kDwarfRbp = 6;

void put_uleb(Emitter& e, unsigned v) noexcept {
  do {
    const auto low = static_cast<unsigned char>(v & 0x7f);
    v >>= 7;
    e.bytes({static_cast<unsigned char>(low | (v != 0 ? 0x80 : 0))});
  } while (v != 0);
}

void def_cfa_offset(Emitter& e, unsigned offset) noexcept {
  e.bytes({0x0e});  // DW_CFA_def_cfa_offset
  put_uleb(e, offset);
}

void pad_and_close(Emitter& e, unsigned char* length_field) noexcept {
  while ((e.here() - length_field) % 8 != 0) e.bytes({0x00});  // DW_CFA_nop
  const uint32_t length = static_cast<uint32_t>(e.here() - length_field - 4);
  std::memcpy(length_field, &length, 4);
}

unsigned char* emit_cie(Emitter& e) noexcept {
  unsigned char* cie = e.here();
  e.imm32(0);                                               // length (below)
  e.imm32(0);                                               // CIE id
  e.bytes({1, 'z', 'R', 0, 1, 0x78, kDwarfRa, 1, 0x00});    // version, "zR", code 1, data -8, RA, aug: absptr
  e.bytes({0x0c, kDwarfRsp, 0});                            // DW_CFA_def_cfa rsp, 0 (at a stub's entry)
  pad_and_close(e, cie);
  return cie;
}

void advance(Emitter& e, unsigned* at, unsigned to) noexcept {
  e.bytes({0x03});  // DW_CFA_advance_loc2
  const uint16_t delta = static_cast<uint16_t>(to - *at);
  e.raw(&delta, 2);
  *at = to;
}

void emit_fde(Emitter& e, const unsigned char* cie, uintptr_t entry, unsigned length, uintptr_t resume,
              const CfiPoints& p) noexcept {
  unsigned char* fde = e.here();
  e.imm32(0);
  e.imm32(static_cast<uint32_t>(e.here() - cie));  // CIE pointer (from this field)
  e.imm64(entry);
  e.imm64(length);
  e.bytes({0});                                    // augmentation data length
  e.bytes({0x16, kDwarfRa, 9, 0x0e});              // DW_CFA_val_expression RA: DW_OP_const8u resume
  e.imm64(resume);
  unsigned at = 0;
  advance(e, &at, p.red_zone);
  def_cfa_offset(e, kRedZone);
  advance(e, &at, p.pushed_rsp);
  def_cfa_offset(e, kRedZone + 8);
  advance(e, &at, p.pushed_rbp);
  def_cfa_offset(e, kFrameToSite);
  e.bytes({0x80 | kDwarfRbp, kFrameToSite / 8});   // DW_CFA_offset rbp, cfa - 144 (factored by -8)
  advance(e, &at, p.framed);
  e.bytes({0x0d, kDwarfRbp});                       // DW_CFA_def_cfa_register rbp (offset stays 144)
  advance(e, &at, p.unframed);
  e.bytes({0x0d, kDwarfRsp});
  advance(e, &at, p.popped_rbp);
  def_cfa_offset(e, kFrameToSite - 8);
  e.bytes({0xc0 | kDwarfRbp});                      // DW_CFA_restore rbp
  advance(e, &at, p.restored);
  def_cfa_offset(e, 0);
  pad_and_close(e, fde);
}

// ---- placement -------------------------------------------------------------------------------------

// The address nearest to [text_start, text_end) of a free range of size bytes from which every byte of
// the text is within rel32 reach, looking at every hole of /proc/self/maps. Return: 0 when none.
uint64_t find_hole(uint64_t text_start, uint64_t text_end, uint64_t size) noexcept {
  const uint64_t lo = text_end > kReach + kLowest ? text_end - kReach : kLowest;
  const uint64_t hi = text_start + kReach < kHighest ? text_start + kReach : kHighest;  // area end bound
  uint64_t best = 0, best_distance = ~uint64_t{0};
  auto consider = [&](uint64_t gap_start, uint64_t gap_end) {
    const uint64_t from = gap_start > lo ? gap_start : lo, to = gap_end < hi ? gap_end : hi;
    if (to < from + size) return;
    const uint64_t at = to <= text_start ? to - size : from;  // the end nearest to the text
    const uint64_t distance = at < text_start ? text_start - at : at - text_start;
    if (distance < best_distance) best = at, best_distance = distance;
  };
  sys::MapsReader maps;
  sys::MapEntry entry;
  uint64_t previous_end = kLowest;
  while (maps.next(&entry)) {
    if (entry.start > previous_end) consider(previous_end, entry.start);
    if (entry.end > previous_end) previous_end = entry.end;
  }
  if (previous_end < kHighest) consider(previous_end, kHighest);
  return best;
}

// Maps size bytes read+write within reach of the text. Return: the address or -errno.
long map_near(uint64_t text_start, uint64_t text_end, uint64_t size) noexcept {
  for (int attempt = 0; attempt < 8; ++attempt) {  // another thread may take the hole meanwhile
    const uint64_t at = find_hole(text_start, text_end, size);
    if (at == 0) return -ENOMEM;
    long got = sys::mmap(reinterpret_cast<void*>(at), size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (!sys::failed(got) && static_cast<uint64_t>(got) == at) return got;
    if (!sys::failed(got)) unmap_scratch(reinterpret_cast<void*>(got), size);  // a kernel ignoring NOREPLACE
    else if (got != -EEXIST) return got;
  }
  return -ENOMEM;
}

void write_header(unsigned char* page, Registry* owner) noexcept {
  Header header{};
  std::memcpy(header.magic, kStubMagic, sizeof(kStubMagic));
  header.registry = owner;
  std::memcpy(page, &header, sizeof(header));
}

unsigned count_sites(const RawArray<Site>& sites, unsigned m) noexcept {
  unsigned n = 0;
  for (const Site& s : sites) n += s.module == m && (s.kind == SiteKind::kFresh || s.kind == SiteKind::kSyscallFn);
  return n;
}

// Emits every stub of module m into the stub pages at base, then the .eh_frame at frames. Return: the
// place for libgcc's object record, right behind the frames.
unsigned char* emit_stubs(RawArray<Site>& sites, unsigned m, unsigned char* base, unsigned stub_pages,
                          unsigned char* frames, const StubOptions& options) noexcept {
  const int32_t tls = hook_stack_tls_offset();
  Emitter code(base), eh(frames);
  const unsigned char* cie = emit_cie(eh);
  for (unsigned page = 0; page < stub_pages; ++page) write_header(base + page * sys::kPageSize, options.owner);
  code.seek(base + kHeaderSize);
  for (Site& site : sites) {
    if (site.module != m || (site.kind != SiteKind::kFresh && site.kind != SiteKind::kSyscallFn)) continue;
    const unsigned page_left = static_cast<unsigned>(sys::kPageSize - code.offset() % sys::kPageSize);
    if (page_left < kMaxStubSize) code.seek(code.here() + page_left + kHeaderSize);
    const unsigned entry = code.offset();
    const uintptr_t resume = site.addr + site.length + 2;  // behind the syscall instruction
    code.raw(reinterpret_cast<const void*>(site.addr), site.length);  // position-independent mov
    if (site.kind == SiteKind::kSyscallFn) emit_syscall_fn_filter(code, resume);
    CfiPoints points{};
    emit_call_body(code, entry, resume, options, tls, &points);
    site.stub_offset = entry;
    emit_fde(eh, cie, reinterpret_cast<uintptr_t>(base) + entry, code.offset() - entry, resume, points);
  }
  eh.imm32(0);  // the .eh_frame terminator
  return frames + ((eh.offset() + 15) & ~15u);
}

}  // namespace

bool is_stub_area(uintptr_t page) noexcept {
  return std::memcmp(reinterpret_cast<const void*>(page), kStubMagic, sizeof(kStubMagic)) == 0;
}

Registry* stub_area_owner(uintptr_t target) noexcept {
  return reinterpret_cast<const Header*>(target & ~uintptr_t{4095})->registry;
}

bool is_syscall_fn_stub(uintptr_t target) noexcept {
  return reinterpret_cast<const unsigned char*>(target)[0] == 0x4c;  // mov 8(%rsp),%r9
}

long build_stub_area(RawArray<Site>& sites, unsigned m, uint64_t text_start, uint64_t text_end,
                     const StubOptions& options) noexcept {
  const unsigned n = count_sites(sites, m);
  const unsigned per_page = (sys::kPageSize - kHeaderSize) / kMaxStubSize;
  const unsigned stub_pages = (n + per_page - 1) / per_page;
  const uint64_t frame_bytes = sys::page_up(64 + uint64_t{n} * kMaxFdeSize + 16 + kLibgccObjectSize);
  const uint64_t size = stub_pages * sys::kPageSize + frame_bytes;
  long area = map_near(text_start, text_end, size);
  if (sys::failed(area)) return area;
  auto* base = reinterpret_cast<unsigned char*>(area);
  unsigned char* frames = base + stub_pages * sys::kPageSize;
  unsigned char* object = emit_stubs(sites, m, base, stub_pages, frames, options);
  long protect = sys::mprotect(base, stub_pages * sys::kPageSize, PROT_READ | PROT_EXEC);
  if (sys::failed(protect)) {
    unmap_scratch(base, size);  // nothing jumps here yet
    return protect;
  }
  __register_frame_info(frames, object);
  if (&__lsan_register_root_region != nullptr) __lsan_register_root_region(object, kLibgccObjectSize);
  return area;
}

}  // namespace umn::detail::patch
