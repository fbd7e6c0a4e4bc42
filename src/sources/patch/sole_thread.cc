// sole_thread.cc - counting the threads of this process with every signal blocked (contract:
// sole_thread.hpp).
#include "sources/patch/sole_thread.hpp"

#include <signal.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sources/sys/sys.hpp"

namespace umn::detail::patch {
namespace {

constexpr long kKernelSigsetSize = 8;  // the kernel's sigset_t on x86-64

// The header of a linux_dirent64 record (getdents64(2)); the name follows.
struct DirentHeader {
  uint64_t ino;
  int64_t off;
  uint16_t reclen;
  uint8_t type;
};

// Return: the entries of /proc/self/task but "." and "..", counted up to 2 (2 means "more than one");
// 0 when the directory could not be read.
unsigned count_tasks_up_to_two() noexcept {
  long fd = sys::open_read("/proc/self/task");
  if (sys::failed(fd)) return 0;
  alignas(8) char buf[512];
  unsigned tasks = 0;
  long got = 0;
  while (tasks < 2 && (got = sys::call(SYS_getdents64, fd, reinterpret_cast<long>(buf), sizeof(buf))) > 0) {
    for (long at = 0; at < got;) {
      DirentHeader header;
      std::memcpy(&header, buf + at, sizeof(header));
      const char* name = buf + at + offsetof(DirentHeader, type) + 1;
      if (name[0] != '.') ++tasks;
      at += header.reclen;
    }
  }
  sys::close(static_cast<int>(fd));
  return sys::failed(got) ? 0 : tasks;
}

}  // namespace

SoleThreadScope::SoleThreadScope() noexcept {
  const unsigned long all = ~0UL;
  sys::call(SYS_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&all), reinterpret_cast<long>(&saved_mask_),
            kKernelSigsetSize);
  alone_ = count_tasks_up_to_two() == 1;
}

SoleThreadScope::~SoleThreadScope() {
  sys::call(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&saved_mask_), 0, kKernelSigsetSize);
}

}  // namespace umn::detail::patch
