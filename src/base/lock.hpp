// lock.hpp - umn's lock types, annotated for clang's thread-safety analysis: Mutex, MutexLock (a scoped
// guard), UniqueLock (a scoped guard that may unlock and relock, for CondVar), CondVar, LockWaitRecorder
// (what a measured Mutex tells how long its contended acquisitions waited), and the
// UMN_GUARDED_BY / UMN_REQUIRES / ... annotations. scripts/test.sh builds the library with clang
// -Wthread-safety -Werror (build/tsa), so a field marked UMN_GUARDED_BY(lock_) read without lock_, or a
// function marked UMN_REQUIRES(lock_) called without it, does not compile there. With g++ the
// annotations expand to nothing.
//
// Locking
//   Mutex is std::mutex: not recursive, not async-signal-safe. Which lock guards what, and the order in
//   which locks nest, is stated next to each lock (e.g. core/subscriptions.hpp).
//   assert_held() tells the analysis that the caller holds the lock where it cannot see it (inside a
//   lambda run under the lock, such as a CondVar predicate). It checks nothing at run time.
// Lifetime
//   A MutexLock or UniqueLock must not outlive its Mutex; a CondVar must outlive its waiters; a Mutex's
//   LockWaitRecorder must outlive the Mutex.
// Context
//   lock(), MutexLock, UniqueLock and CondVar::wait() may sleep; none of them may be used in a signal
//   handler.
// Memory ordering
//   As std::mutex and std::condition_variable: an unlock happens-before the next lock of the same Mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define UMN_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define UMN_THREAD_ANNOTATION(x)
#endif

#define UMN_CAPABILITY(name) UMN_THREAD_ANNOTATION(capability(name))
#define UMN_SCOPED_CAPABILITY UMN_THREAD_ANNOTATION(scoped_lockable)
// A field that may be read or written only with the lock held.
#define UMN_GUARDED_BY(lock) UMN_THREAD_ANNOTATION(guarded_by(lock))
// A pointer whose pointee may be accessed only with the lock held.
#define UMN_PT_GUARDED_BY(lock) UMN_THREAD_ANNOTATION(pt_guarded_by(lock))
// A function that must be called with the lock held (the `_locked` suffix, CONTRIBUTING.md "Conventions").
#define UMN_REQUIRES(...) UMN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// A function that must be called without the lock (it takes it).
#define UMN_EXCLUDES(...) UMN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define UMN_ACQUIRE(...) UMN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define UMN_RELEASE(...) UMN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define UMN_TRY_ACQUIRE(...) UMN_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define UMN_ASSERT_CAPABILITY(x) UMN_THREAD_ANNOTATION(assert_capability(x))
// A function that returns (a reference to) the lock.
#define UMN_RETURN_CAPABILITY(x) UMN_THREAD_ANNOTATION(lock_returned(x))
// Turns the analysis off for one function; say why next to each use.
#define UMN_NO_THREAD_SAFETY_ANALYSIS UMN_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace umn::detail {

class CondVar;
class UniqueLock;

// Told how long each contended lock() of a measured Mutex waited (per lock, as abseil's contention
// profiler is per process). record_wait runs on the thread that just took the lock, with it held.
class LockWaitRecorder {
 public:
  virtual void record_wait(std::chrono::nanoseconds wait) noexcept = 0;

 protected:
  ~LockWaitRecorder() = default;
};

class UMN_CAPABILITY("mutex") Mutex {
 public:
  Mutex() noexcept = default;
  // A measured Mutex: lock() reports the wait of every contended acquisition to `waits` (nullptr: not
  // measured). Only lock() and MutexLock measure; UniqueLock and CondVar::wait do not.
  explicit Mutex(LockWaitRecorder* waits) noexcept : waits_(waits) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() UMN_ACQUIRE() {
    if (waits_ == nullptr) {
      mutex_.lock();
    } else if (!mutex_.try_lock()) {
      lock_contended();
    }
  }
  bool try_lock() UMN_TRY_ACQUIRE(true) { return mutex_.try_lock(); }
  void unlock() UMN_RELEASE() { mutex_.unlock(); }
  // Tells the analysis that the caller holds this lock. Context: the caller holds it.
  void assert_held() const UMN_ASSERT_CAPABILITY(this) {}

 private:
  friend class UniqueLock;
  // lock() of a measured Mutex that found it held: waits, then reports how long.
  void lock_contended() {
    const auto begin = std::chrono::steady_clock::now();
    mutex_.lock();
    waits_->record_wait(std::chrono::steady_clock::now() - begin);
  }

  std::mutex mutex_;
  LockWaitRecorder* const waits_ = nullptr;
};

// Holds a Mutex from construction to destruction.
class UMN_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) UMN_ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() UMN_RELEASE() { mutex_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mutex_;
};

// Holds a Mutex, or not: lock() and unlock() in between, and CondVar::wait() releases it while waiting.
class UMN_SCOPED_CAPABILITY UniqueLock {
 public:
  explicit UniqueLock(Mutex& mutex) UMN_ACQUIRE(mutex) : lock_(mutex.mutex_) {}
  // Does not take the lock yet.
  UniqueLock(Mutex& mutex, std::defer_lock_t) UMN_EXCLUDES(mutex) : lock_(mutex.mutex_, std::defer_lock) {}
  ~UniqueLock() UMN_RELEASE() {}
  UniqueLock(const UniqueLock&) = delete;
  UniqueLock& operator=(const UniqueLock&) = delete;

  void lock() UMN_ACQUIRE() { lock_.lock(); }
  void unlock() UMN_RELEASE() { lock_.unlock(); }

 private:
  friend class CondVar;
  std::unique_lock<std::mutex> lock_;
};

// A condition variable waited on with a UniqueLock held.
class CondVar {
 public:
  // Waits until done() is true; the lock is released while waiting and held again when this returns.
  // done() runs with the lock held: a lambda that reads guarded fields starts with lock.assert_held().
  template <class Done>
  void wait(UniqueLock& held, Done done) {
    cv_.wait(held.lock_, done);
  }
  // Waits until notified (spurious wake-ups too); the lock as for wait().
  void wait(UniqueLock& held) { cv_.wait(held.lock_); }
  // Waits until notified or the clock reached `deadline` (spurious wake-ups too); the lock as for wait().
  template <class TimePoint>
  std::cv_status wait_until(UniqueLock& held, TimePoint deadline) {
    return cv_.wait_until(held.lock_, deadline);
  }
  // Waits until notified or `timeout` passed (spurious wake-ups too); the lock as for wait().
  template <class Duration>
  std::cv_status wait_for(UniqueLock& held, Duration timeout) {
    return cv_.wait_for(held.lock_, timeout);
  }
  void notify_all() noexcept { cv_.notify_all(); }
  void notify_one() noexcept { cv_.notify_one(); }

 private:
  std::condition_variable cv_;
};

}  // namespace umn::detail
