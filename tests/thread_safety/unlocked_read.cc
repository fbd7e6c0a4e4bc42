// unlocked_read.cc - the negative control of the clang thread-safety build (scripts/test.sh): reading a
// UMN_GUARDED_BY field without its lock must not compile under -Wthread-safety -Werror, while the same
// read under a MutexLock must. If the annotations of base/lock.hpp stopped reaching the analysis (a
// macro typo, a compiler without the attributes), the first half would compile and test.sh fails.
#include "base/lock.hpp"

struct Counter {
  umn::detail::Mutex lock;
  int value UMN_GUARDED_BY(lock) = 0;
};

int read_locked(Counter& counter) {
  umn::detail::MutexLock guard(counter.lock);
  return counter.value;
}

#ifdef UMN_EXPECT_REJECTED
int read_unlocked(Counter& counter) { return counter.value; }  // the analysis must reject this
#endif
