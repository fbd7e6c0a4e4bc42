// read_section.hpp - the device-fault side of collision-retry: umn::ReadSection (by hand) and
// umn::fault_in (the whole read_begin / snapshot / lock / read_retry / commit loop).
//
// Locking: fault_in takes `user_lock` (the lock your invalidate callback takes around set_seq) only
//   around read_retry and commit; never around read_begin or snapshot.
// Context: may sleep (read_begin waits for a running invalidation of the notifier); not from a callback.
// Progress: a stream of invalidations can keep a reader retrying (the kernel's readers can starve too),
//   so fault_in gives up after `timeout` with ETIMEDOUT.
#pragma once

#include <chrono>
#include <mutex>
#include <system_error>
#include <type_traits>

#include "umn/interval_notifier.hpp"

namespace umn {

// One attempt: begin() before reading the pages, valid() under the user lock before using what was read.
class ReadSection {
 public:
  explicit ReadSection(IntervalNotifier& notifier) noexcept : notifier_(notifier) {}
  // Starts (or restarts) the section; may wait for a running invalidation of the notifier.
  void begin() noexcept { seq_ = notifier_.read_begin(); }
  // Under the user lock: true when nothing invalidated the notifier since begin().
  [[nodiscard]] bool valid() noexcept { return !notifier_.read_retry(seq_); }
  // Without the lock: false means an invalidation already hit (retry now); true is only a hint.
  [[nodiscard]] bool maybe_valid() noexcept { return !notifier_.check_retry(seq_); }
  [[nodiscard]] unsigned long seq() const noexcept { return seq_; }

 private:
  IntervalNotifier& notifier_;
  unsigned long seq_ = 0;
};

struct FaultStats {
  unsigned retries = 0;  // attempts thrown away because an invalidation hit them
};

// Runs the fault loop: snapshot() reads the CPU side (no lock held); then, under user_lock, if no
// invalidation hit the notifier meanwhile, commit(snapshot result) installs the translation. Retries
// until it commits or `timeout` passes (ETIMEDOUT). snapshot may return void; commit then takes nothing.
template <class Lock, class Snapshot, class Commit>
std::error_code fault_in(IntervalNotifier& notifier, Lock& user_lock, Snapshot&& snapshot, Commit&& commit,
                         std::chrono::nanoseconds timeout = std::chrono::seconds(1), FaultStats* stats = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ReadSection section(notifier);
  for (;;) {
    section.begin();
    if constexpr (std::is_void_v<std::invoke_result_t<Snapshot&>>) {
      snapshot();
      std::unique_lock guard(user_lock);
      if (section.valid()) {
        commit();
        return {};
      }
    } else {
      auto pages = snapshot();
      std::unique_lock guard(user_lock);
      if (section.valid()) {
        commit(std::move(pages));
        return {};
      }
    }
    if (stats != nullptr) stats->retries++;
    if (std::chrono::steady_clock::now() >= deadline) return std::make_error_code(std::errc::timed_out);
  }
}

}  // namespace umn
