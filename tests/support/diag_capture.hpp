// diag_capture.hpp - DiagCapture: installs a umn diagnostic hook for the lifetime of a test scope and
// records every (call, message) it receives; the destructor restores the default hook (NULL).
//
// Locking: the record is guarded by its own mutex (the hook may run on any thread, with umn locks held;
// it calls nothing in umn). Lifetime: one capture at a time per process.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "umn/umn.h"

namespace umn::test {

class DiagCapture {
 public:
  struct Diag {
    std::string call;
    std::string message;
  };

  DiagCapture() { umn_set_diagnostic_hook(&DiagCapture::hook, this); }
  ~DiagCapture() { umn_set_diagnostic_hook(nullptr, nullptr); }
  DiagCapture(const DiagCapture&) = delete;
  DiagCapture& operator=(const DiagCapture&) = delete;

  [[nodiscard]] size_t count() const {
    std::lock_guard guard(mu_);
    return diags_.size();
  }
  [[nodiscard]] std::vector<Diag> all() const {
    std::lock_guard guard(mu_);
    return diags_;
  }
  // How many diagnostics named `call` and mention `fragment` in their message.
  [[nodiscard]] size_t count(const std::string& call, const std::string& fragment = "") const {
    std::lock_guard guard(mu_);
    size_t n = 0;
    for (const Diag& d : diags_)
      if (d.call == call && d.message.find(fragment) != std::string::npos) ++n;
    return n;
  }

 private:
  static void hook(void* context, const char* call, const char* message) {
    auto* self = static_cast<DiagCapture*>(context);
    std::lock_guard guard(self->mu_);
    self->diags_.push_back({call, message});
  }

  mutable std::mutex mu_;
  std::vector<Diag> diags_;
};

}  // namespace umn::test
