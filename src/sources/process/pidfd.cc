// pidfd.cc - parsing /proc/self/fdinfo/<pidfd> without allocating (contract in pidfd.hpp).
#include "sources/process/pidfd.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "sources/sys/sys.hpp"

namespace umn::detail {
namespace {

// Writes the decimal digits of v at p, NUL-terminated.
void put_decimal(char* p, unsigned long v) noexcept {
  char digits[24];
  int n = 0;
  do digits[n++] = static_cast<char>('0' + v % 10);
  while ((v /= 10) != 0);
  while (n > 0) *p++ = digits[--n];
  *p = '\0';
}

}  // namespace

bool pidfd_is_self(long pidfd) noexcept {
  if (pidfd == sys::kPidfdSelfThread || pidfd == sys::kPidfdSelfThreadGroup) return true;
  if (pidfd < 0) return false;  // EBADF
  char path[64] = "/proc/self/fdinfo/";
  put_decimal(path + 18, static_cast<unsigned long>(pidfd));
  long fd = sys::open_read(path);
  if (sys::failed(fd)) return true;
  char buf[512];
  long n = sys::read(static_cast<int>(fd), buf, sizeof(buf) - 1);
  sys::close(static_cast<int>(fd));
  if (n <= 0) return true;
  buf[n] = '\0';
  const char* at = std::strstr(buf, "\nPid:");
  if (at == nullptr) return true;  // not a pidfd: the kernel refuses it
  at += 5;
  while (*at == ' ' || *at == '\t') ++at;
  if (*at == '-') return false;  // the process is gone
  long pid = 0;
  for (; *at >= '0' && *at <= '9'; ++at) pid = pid * 10 + (*at - '0');
  if (pid == sys::getpid()) return true;
  char task[64] = "/proc/self/task/";
  put_decimal(task + 16, static_cast<unsigned long>(pid));
  return sys::call(SYS_faccessat, AT_FDCWD, reinterpret_cast<long>(task), F_OK) == 0;
}

}  // namespace umn::detail
