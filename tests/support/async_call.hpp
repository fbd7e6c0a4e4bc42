// async_call.hpp - AsyncCall: run one possibly-blocking call on its own thread and ask whether it has
// returned, without timing-dependent passes.
//
//   AsyncCall call([&] { umn_interval_read_begin(sub); });   // returns once the thread is about to call
//   EXPECT_TRUE(call.stays_blocked());   // grace sleep: gives a wrong implementation time to return
//   ... unblock it ...
//   EXPECT_TRUE(call.finishes());        // waits (generously) for the return
//
// A correct implementation never fails these because of timing: stays_blocked() can only pass wrongly
// (a slow machine hides a bug), never fail wrongly; finishes() waits up to a minute.
// Lifetime: the destructor joins a finished thread and detaches one still blocked (its test has failed).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>

namespace umn::test {

class AsyncCall {
 public:
  explicit AsyncCall(std::function<void()> fn) : state_(std::make_shared<State>()) {
    std::latch started(1);
    thread_ = std::thread([state = state_, fn = std::move(fn), &started] {
      started.count_down();  // `started` is not touched after this
      fn();
      std::lock_guard guard(state->mu);
      state->done = true;
      state->cv.notify_all();
    });
    started.wait();
  }
  AsyncCall(const AsyncCall&) = delete;
  AsyncCall& operator=(const AsyncCall&) = delete;
  ~AsyncCall() {
    if (finishes(std::chrono::seconds(0)))
      thread_.join();
    else
      thread_.detach();  // its test failed; the shared state outlives this object
  }

  // True if the call has returned.
  [[nodiscard]] bool done() {
    std::lock_guard guard(state_->mu);
    return state_->done;
  }
  // Gives the call `grace` to (wrongly) return; true if it is still blocked afterwards.
  [[nodiscard]] bool stays_blocked(std::chrono::milliseconds grace = std::chrono::milliseconds(50)) {
    std::this_thread::sleep_for(grace);
    return !done();
  }
  // Waits up to `limit` for the call to return; true if it did.
  [[nodiscard]] bool finishes(std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock guard(state_->mu);
    return state_->cv.wait_for(guard, limit, [this] { return state_->done; });
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace umn::test
