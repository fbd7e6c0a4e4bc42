// diag.cc - the diagnostic hook: one place where misuse and kernel-WARN conditions are reported.
//
// The default hook prints each distinct (call, message) pair once, with write(2) so that it is safe from
// the process hooks' signal and allocator contexts, and aborts on misuse in debug builds. The "once"
// memory is a fixed table of message pointers claimed with compare-and-swap: no allocation, no lock.
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "base/check.hpp"
#include "umn/umn.h"

namespace umn::detail {
namespace {

constexpr int kOnceSlots = 128;
std::atomic<const char*> g_printed[kOnceSlots];  // messages already printed by the default hook
std::atomic<unsigned long> g_count{0};
std::atomic<umn_diagnostic_fn> g_hook{nullptr};
std::atomic<void*> g_hook_context{nullptr};

// True the first time a message pointer is seen (or when the table is full: then print anyway).
bool first_time(const char* message) noexcept {
  for (auto& slot : g_printed) {
    const char* seen = slot.load(std::memory_order_acquire);
    if (seen == message) return false;
    if (seen == nullptr) {
      const char* expected = nullptr;
      if (slot.compare_exchange_strong(expected, message, std::memory_order_acq_rel)) return true;
      if (expected == message) return false;
    }
  }
  return true;
}

void write_str(const char* s) noexcept {
  size_t left = std::strlen(s);
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, s, left);
    if (n <= 0) return;
    s += n;
    left -= static_cast<size_t>(n);
  }
}

bool debug_aborts() noexcept {
  if (UMN_DEBUG_LEVEL < 1) return false;
  const char* mode = std::getenv("UMN_DIAG");
  return mode == nullptr || std::strcmp(mode, "count") != 0;
}

void default_hook(DiagKind kind, const char* call, const char* message) noexcept {
  const bool fatal = kind == DiagKind::kMisuse && debug_aborts();
  if (!fatal && !first_time(message)) return;
  write_str("umn: ");
  write_str(kind == DiagKind::kMisuse ? "misuse in " : "warning in ");
  write_str(call);
  write_str(": ");
  write_str(message);
  write_str("\n");
  if (fatal) std::abort();
}

}  // namespace

void report(DiagKind kind, const char* call, const char* message) noexcept {
  g_count.fetch_add(1, std::memory_order_relaxed);
  umn_diagnostic_fn hook = g_hook.load(std::memory_order_acquire);
  if (hook != nullptr)
    hook(g_hook_context.load(std::memory_order_relaxed), call, message);
  else
    default_hook(kind, call, message);
}

bool default_hook_in_use() noexcept { return g_hook.load(std::memory_order_relaxed) == nullptr; }

void dcheck_failed(const char* file, int line, const char* expr) noexcept {
  char line_text[16];
  int len = 0;
  char digits[16];
  for (int v = line; v > 0 && len < 15; v /= 10) digits[len++] = static_cast<char>('0' + v % 10);
  for (int i = 0; i < len; ++i) line_text[i] = digits[len - 1 - i];
  line_text[len] = '\0';
  write_str("umn: internal check failed at ");
  write_str(file);
  write_str(":");
  write_str(line_text);
  write_str(": ");
  write_str(expr);
  write_str("\n");
  std::abort();
}

}  // namespace umn::detail

extern "C" {

void umn_set_diagnostic_hook(umn_diagnostic_fn fn, void* context) {
  umn::detail::g_hook_context.store(context, std::memory_order_relaxed);
  // Pairs with the acquire load in report(): the context is visible to whoever sees the hook.
  umn::detail::g_hook.store(fn, std::memory_order_release);
}

unsigned long umn_diagnostic_count(void) {
  return umn::detail::g_count.load(std::memory_order_relaxed);
}

}  // extern "C"
