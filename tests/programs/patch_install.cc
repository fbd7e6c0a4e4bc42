// patch_install.cc - how the installation ends when it cannot place, make executable or write what it
// needs, in a fresh process each (installation happens once per process). Modes:
//   mdwe       under PR_SET_MDWE (W^X): -EPERM (or the -EACCES of the refused mprotect), nothing patched.
//   wx_filter  a seccomp filter refuses every mprotect asking for write and exec at once (a W^X policy
//              that still lets a stub area become read+exec): the text cannot be written. Issue 17.13:
//              the refusals were counted as foreign sites and -ENOENT ("no site found") returned; now
//              -EPERM, nothing patched, every site counted as failed.
//   ld_filter  the same refusal for ld.so's text only: libc gets patched, ld.so cannot. Issue 17.12:
//              that partial installation returned 0; now -EPERM (libc's sites stay patched: never
//              unpatched), ld.so's 4 sites counted as failed.
//   offgrid    every hole within reach of libc and ld.so is filled except one small hole off the 1 MiB
//              grid the old search probed (issue 17.12): the installation must find it and succeed.
//   no_hole    every hole within reach of ld.so is filled: -ENOMEM, and nothing patched (every stub area
//              is built before the first site is written).
// Exit status 0 when the installation behaved as described, 1 otherwise, 77 when the kernel lacks
// PR_SET_MDWE.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "umn/process.h"
#include "umn/umn.h"

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kReach = (1ull << 31) - 4096;  // as the patcher's rel32 reach

struct Range {
  uint64_t start, end;
  std::string path;
};

std::vector<Range> maps() {
  std::vector<Range> out;
  std::ifstream in("/proc/self/maps");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, path;
    fields >> range >> perms >> offset >> dev >> inode >> path;
    const size_t dash = range.find('-');
    out.push_back({std::stoull(range.substr(0, dash), nullptr, 16), std::stoull(range.substr(dash + 1), nullptr, 16),
                   perms[2] == 'x' ? path : ""});
  }
  return out;
}

// The executable text of the first mapping whose path contains name.
Range text_of(const char* name) {
  for (const Range& r : maps())
    if (r.path.find(name) != std::string::npos) return r;
  return {0, 0, ""};
}

// Reserves (PROT_NONE) every hole inside [lo, hi).
void fill(uint64_t lo, uint64_t hi) {
  uint64_t previous = 0;
  for (const Range& r : maps()) {
    const uint64_t from = previous > lo ? previous : lo, to = r.start < hi ? r.start : hi;
    if (to > from)
      mmap(reinterpret_cast<void*>(from), to - from, PROT_NONE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    previous = r.end;
  }
}

uint64_t window_lo(const Range& t) { return t.end - kReach; }
uint64_t window_hi(const Range& t) { return t.start + kReach; }

umn_process_hooks_info install_and_report(const char* mode) {
  const int status = umn_process_hooks_install();
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  std::printf("%s: status %d (%s), patched %u, failed %u, modules %u\n", mode, status, std::strerror(-status),
              info.sites_patched, info.sites_failed, info.modules);
  return info;
}

int mdwe() {
  constexpr int kPrSetMdwe = 65, kMdweRefuseExecGain = 1;  // <linux/prctl.h>, Linux 6.3
  if (prctl(kPrSetMdwe, kMdweRefuseExecGain, 0, 0, 0) != 0) {
    std::printf("mdwe: PR_SET_MDWE unsupported (%s)\n", std::strerror(errno));
    return 77;
  }
  const umn_process_hooks_info info = install_and_report("mdwe");
  return (info.status == -EPERM || info.status == -EACCES) && info.sites_patched == 0 ? 0 : 1;
}

// A hole of `size` bytes inside [lo, hi) none of whose pages lies on the grids the old search probed:
// text start - k MiB and text end + k MiB for each text.
uint64_t off_grid_hole(uint64_t lo, uint64_t hi, const std::vector<Range>& texts, uint64_t size) {
  for (uint64_t at = (hi - 64 * kMiB) & ~(kMiB - 1); at > lo; at -= 4096) {
    bool on_grid = false;
    for (const Range& t : texts)
      for (uint64_t p = at; p < at + size; p += 4096)
        on_grid |= (t.start - p) % kMiB == 0 || (p - t.end) % kMiB == 0;
    if (!on_grid) return at;
  }
  return 0;
}

int offgrid() {
  const std::vector<Range> texts = {text_of("/libc.so"), text_of("/ld-linux")};
  const uint64_t lo = std::min(window_lo(texts[0]), window_lo(texts[1]));
  const uint64_t hi = std::max(window_hi(texts[0]), window_hi(texts[1]));
  // Inside both windows, so that either module may use it; big enough for both stub areas.
  const uint64_t size = 64 << 10;
  const uint64_t hole = off_grid_hole(std::max(window_lo(texts[0]), window_lo(texts[1])),
                                      std::min(window_hi(texts[0]), window_hi(texts[1])), texts, size);
  fill(lo, hi);
  if (hole == 0 || munmap(reinterpret_cast<void*>(hole), size) != 0) return 1;
  const umn_process_hooks_info info = install_and_report("offgrid");
  return info.status == 0 && info.sites_patched > 0 ? 0 : 1;
}

int no_hole() {
  const Range ld = text_of("/ld-linux");
  fill(window_lo(ld), window_hi(ld));  // holes only libc reaches stay open
  const umn_process_hooks_info info = install_and_report("no_hole");
  return info.status == -ENOMEM && info.sites_patched == 0 && info.sites_failed > 0 ? 0 : 1;
}

// Installs a seccomp filter: mprotect with PROT_WRITE and PROT_EXEC both set fails with EPERM -- for
// every address, or only inside [lo, hi) when hi != 0 (one 4 GiB-aligned window: lo and hi - 1 must share
// their upper 32 bits).
bool refuse_wx_mprotect(uint64_t lo, uint64_t hi) {
  constexpr uint32_t kWx = PROT_WRITE | PROT_EXEC;
  const auto arg_lo = [](int i) { return static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * i); };
  if (hi != 0 && (lo >> 32) != ((hi - 1) >> 32)) return false;
  sock_filter program[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 8),             // not mprotect: allow
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg_lo(2)),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kWx),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kWx, 0, 5),                      // not write+exec: allow
      BPF_JUMP(BPF_JMP | BPF_JA, hi != 0 ? 0u : 3u, 0, 0),                 // everywhere: refuse
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg_lo(0)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, static_cast<uint32_t>(lo), 0, 2),  // below: allow
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, static_cast<uint32_t>(hi), 1, 0),  // above: allow
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog fprog = {static_cast<unsigned short>(sizeof(program) / sizeof(program[0])), program};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0;
}

int wx_filter() {
  if (!refuse_wx_mprotect(0, 0)) return 1;
  const umn_process_hooks_info info = install_and_report("wx_filter");
  return info.status == -EPERM && info.sites_patched == 0 && info.sites_failed > 0 ? 0 : 1;
}

int ld_filter() {
  const Range ld = text_of("/ld-linux");
  if (ld.start == 0 || !refuse_wx_mprotect(ld.start, ld.end)) return 1;
  const umn_process_hooks_info info = install_and_report("ld_filter");
  // glibc 2.36's ld.so has 6 sites: mmap, munmap, mprotect, brk and two openat (O_TRUNC is watched).
  return info.status == -EPERM && info.sites_patched > 0 && info.sites_failed == 6 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "mdwe") return mdwe();
  if (mode == "offgrid") return offgrid();
  if (mode == "no_hole") return no_hole();
  if (mode == "wx_filter") return wx_filter();
  if (mode == "ld_filter") return ld_filter();
  std::fprintf(stderr, "usage: %s mdwe|wx_filter|ld_filter|offgrid|no_hole\n", argv[0]);
  return 2;
}
