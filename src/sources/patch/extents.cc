// extents.cc - function extents from symbols, .eh_frame and .gopclntab (contract: extents.hpp).
#include "sources/patch/extents.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace umn::detail::patch {
namespace {

template <typename T>
T load(const unsigned char* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// ---- symbols ----------------------------------------------------------------------------------------

// Whether a (mangled) symbol name belongs to a sanitizer runtime.
bool sanitizer_runtime_symbol(const char* name, uint64_t room) noexcept {
  constexpr std::string_view kPrefixes[] = {"_ZN11__sanitizer", "_ZN6__asan", "_ZN6__tsan",   "_ZN6__lsan",
                                            "_ZN6__msan",       "_ZN7__ubsan", "_ZN8__hwasan", "_ZN14__interception",
                                            "__interceptor_",   "__sanitizer_", "__tsan_",     "__asan_"};
  if (room < 2 || name[0] != '_') return false;  // most symbols: one comparison
  for (std::string_view prefix : kPrefixes)
    if (prefix.size() <= room && std::string_view(name, prefix.size()) == prefix) return true;
  return false;
}

bool add_symbols(const ElfImage& image, const char* name, RawArray<Extent>* out, RawArray<Extent>* runtime) noexcept {
  const Section symbols = image.section(name);
  if (symbols.data == nullptr || symbols.entsize != sizeof(Elf64_Sym)) return true;
  const Section strings = image.section(symbols.link);
  for (uint64_t i = 0; i < symbols.size / sizeof(Elf64_Sym); ++i) {
    const auto sym = load<Elf64_Sym>(symbols.data + i * sizeof(Elf64_Sym));
    if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size == 0 || sym.st_shndx == SHN_UNDEF) continue;
    const Extent extent{sym.st_value, sym.st_value + sym.st_size};
    if (!out->push(extent)) return false;
    if (strings.data == nullptr || sym.st_name >= strings.size) continue;
    const char* sym_name = reinterpret_cast<const char*>(strings.data) + sym.st_name;
    if (sanitizer_runtime_symbol(sym_name, strings.size - sym.st_name) && !runtime->push(extent)) return false;
  }
  return true;
}

// ---- .eh_frame (the LSB's exception frame format: CIEs and FDEs, DW_EH_PE_* pointer encodings) -----

constexpr unsigned char kPeOmit = 0xff, kPePcrel = 0x10;

struct Cursor {
  const unsigned char* p;
  const unsigned char* end;
  bool ok() const noexcept { return p <= end; }
  uint64_t uleb() noexcept {
    uint64_t v = 0;
    for (unsigned shift = 0; p < end; shift += 7) {
      const unsigned char b = *p++;
      if (shift < 64) v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
    p = end + 1;
    return 0;
  }
  // A pointer in encoding enc; section_addr is the virtual address of the section's first byte and
  // base its first byte in memory (for pcrel). Return: false for encodings the patcher does not use.
  bool pointer(unsigned char enc, uint64_t section_addr, const unsigned char* base, uint64_t* v) noexcept {
    const uint64_t field = section_addr + static_cast<uint64_t>(p - base);
    uint64_t raw;
    switch (enc & 0x0f) {
      case 0x00: raw = take<uint64_t>(); break;                                  // absptr
      case 0x03: raw = take<uint32_t>(); break;                                  // udata4
      case 0x0b: raw = static_cast<uint64_t>(int64_t{take<int32_t>()}); break;   // sdata4
      case 0x04: case 0x0c: raw = take<uint64_t>(); break;                       // (s|u)data8
      default: return false;
    }
    switch (enc & 0x70) {
      case 0x00: *v = raw; return ok();
      case kPePcrel: *v = field + raw; return ok();
      default: return false;
    }
  }
  template <typename T>
  T take() noexcept {
    if (end - p < static_cast<long>(sizeof(T))) {
      p = end + 1;
      return 0;
    }
    T v = load<T>(p);
    p += sizeof(T);
    return v;
  }
};

// The FDE pointer encoding of the CIE at cie (its length field). Return: kPeOmit when unusable.
unsigned char cie_fde_encoding(const unsigned char* cie, const unsigned char* section_end) noexcept {
  Cursor c{cie + 8, section_end};
  const unsigned char version = c.take<unsigned char>();
  const char* augmentation = reinterpret_cast<const char*>(c.p);
  const size_t aug_length = strnlen(augmentation, static_cast<size_t>(section_end - c.p));
  c.p += aug_length + 1;
  if (augmentation[0] != 'z') return augmentation[0] == '\0' ? 0x00 : kPeOmit;
  c.uleb();                                     // code alignment
  c.uleb();                                     // data alignment (sleb: only skipped)
  if (version == 1) c.take<unsigned char>(); else c.uleb();  // return address register
  c.uleb();                                     // augmentation data length
  for (const char* a = augmentation + 1; *a != '\0' && c.ok(); ++a) {
    if (*a == 'R') return c.take<unsigned char>();
    if (*a == 'L') c.take<unsigned char>();
    else if (*a == 'P') {
      const unsigned char enc = c.take<unsigned char>();
      uint64_t ignored;
      if (!c.pointer(enc, 0, c.p, &ignored)) return kPeOmit;
    } else if (*a != 'S' && *a != 'B') {
      return kPeOmit;
    }
  }
  return 0x00;
}

bool add_eh_frame(const ElfImage& image, RawArray<Extent>* out) noexcept {
  const Section eh = image.section(".eh_frame");
  if (eh.data == nullptr) return true;
  const unsigned char* end = eh.data + eh.size;
  for (const unsigned char* entry = eh.data; end - entry >= 8;) {
    const uint32_t length = load<uint32_t>(entry);
    if (length == 0 || length == 0xffffffffu || length > static_cast<uint64_t>(end - entry - 4)) break;
    const unsigned char* next = entry + 4 + length;
    const uint32_t cie_delta = load<uint32_t>(entry + 4);
    if (cie_delta != 0 && cie_delta <= static_cast<uint64_t>(entry + 4 - eh.data)) {  // an FDE
      const unsigned char enc = cie_fde_encoding(entry + 4 - cie_delta, end);
      Cursor c{entry + 8, next};
      uint64_t begin, range;
      if (enc != kPeOmit && c.pointer(enc, eh.addr, eh.data, &begin) && c.pointer(enc & 0x0f, 0, eh.data, &range) &&
          range != 0 && !out->push({begin, begin + range}))
        return false;
    }
    entry = next;
  }
  return true;
}

// ---- .gopclntab (Go 1.18+: magic, pad, pad, min instruction size, pointer size, then eight words:
// nfunc, nfiles, text start, and the offsets of five tables; the function table holds nfunc + 1
// (entry offset, data offset) pairs of 32-bit values, the last entry offset being the end of text) ----

bool add_gopclntab(const ElfImage& image, RawArray<Extent>* out) noexcept {
  const Section pcln = image.section(".gopclntab");
  constexpr uint64_t kHeader = 8 + 8 * 8;
  if (pcln.data == nullptr || pcln.size < kHeader) return true;
  const uint32_t magic = load<uint32_t>(pcln.data);
  if ((magic != 0xfffffff0u && magic != 0xfffffff1u) || pcln.data[7] != 8) return true;
  const auto word = [&](unsigned i) { return load<uint64_t>(pcln.data + 8 + 8 * i); };
  const uint64_t nfunc = word(0), text = word(2), functab = word(7);
  if (functab > pcln.size || nfunc > (pcln.size - functab) / 8 - 1) return true;
  for (uint64_t i = 0; i < nfunc; ++i) {
    const uint32_t entry = load<uint32_t>(pcln.data + functab + 8 * i);
    const uint32_t next = load<uint32_t>(pcln.data + functab + 8 * (i + 1));
    if (next > entry && !out->push({text + entry, text + next})) return false;
  }
  return true;
}

// Keeps the extents that intersect [p - before, p + 2) for a pair p (function_extents()). Sorting only
// those is cheaper than sorting all (libc: a few hundred of ~5000).
void keep_near_pairs(const RawArray<uint64_t>& pairs, uint64_t before, RawArray<Extent>* extents) noexcept {
  size_t kept = 0;
  for (const Extent& e : *extents) {
    // The first pair p with p + 2 > e.start; it intersects when p - before < e.end.
    const uint64_t* p = std::lower_bound(pairs.begin(), pairs.end(), e.start, [](uint64_t pair, uint64_t start) {
      return pair + 2 <= start;
    });
    if (p != pairs.end() && *p < e.end + before) (*extents)[kept++] = e;
  }
  extents->truncate(kept);
}

void sort_unique(RawArray<Extent>* extents) noexcept {
  Extent* a = extents->begin();
  const size_t n = extents->size();
  // std::sort allocates nothing; the halving-gap Shell sort it replaced cost ~9M instructions a process.
  std::sort(a, a + n, [](const Extent& x, const Extent& y) {
    return x.start != y.start ? x.start < y.start : x.end < y.end;
  });
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i)
    if (kept == 0 || a[kept - 1].start != a[i].start || a[kept - 1].end != a[i].end) a[kept++] = a[i];
  extents->truncate(kept);
}

}  // namespace

bool function_extents(const ElfImage& image, const RawArray<uint64_t>& pairs, uint64_t before, RawArray<Extent>* out,
                      RawArray<Extent>* runtime) noexcept {
  const bool ok = add_symbols(image, ".symtab", out, runtime) && add_symbols(image, ".dynsym", out, runtime) &&
                  add_eh_frame(image, out) && add_gopclntab(image, out);
  keep_near_pairs(pairs, before, out);
  sort_unique(out);
  return ok;
}

}  // namespace umn::detail::patch
