// diag.cc - the diagnostic hook: one place where misuse and kernel-WARN conditions are reported.
//
// The default hook prints each distinct (call, message) pair once, with write(2) so that it is safe from
// the process hooks' signal and allocator contexts, and aborts on misuse in debug builds. The "once"
// memory is a fixed table of message pointers claimed with compare-and-swap: no allocation, no lock.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "base/check.hpp"
#include "umn/umn.h"

namespace umn::detail {
namespace {

constexpr int kOnceSlots = 128;
std::atomic<const char*> g_printed[kOnceSlots];  // messages already printed by the default hook
std::atomic<unsigned long> g_count{0};
// The installed hook and its context, published as one pair under a sequence count (a seqlock without
// fences, which ThreadSanitizer does not model): writers make it odd, store both, make it even;
// report() retries until it read both under one even count. Readers take no lock and allocate nothing (report() runs in
// signal and allocator contexts).
std::atomic<unsigned long> g_hook_seq{0};
std::atomic<umn_diagnostic_fn> g_hook{nullptr};  // written only inside an odd g_hook_seq
std::atomic<void*> g_hook_context{nullptr};      // written only inside an odd g_hook_seq

struct Hook {
  umn_diagnostic_fn fn;
  void* context;
};

Hook load_hook() noexcept {
  for (;;) {
    // Pairs with the release store that ends set_hook's write.
    const unsigned long before = g_hook_seq.load(std::memory_order_acquire);
    if ((before & 1) == 0) {
      // Acquire: pairs with set_hook's release stores of the pair, so a value from a later write makes
      // that write's odd count visible to the re-check below (which these loads also keep after them).
      Hook hook{g_hook.load(std::memory_order_acquire), g_hook_context.load(std::memory_order_acquire)};
      if (g_hook_seq.load(std::memory_order_relaxed) == before) return hook;
    }
    std::this_thread::yield();  // a writer is between its two stores
  }
}

// Signals are held for the write: a handler on this thread whose report() found the count odd would
// wait for this very thread.
void set_hook(Hook hook) noexcept {
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  unsigned long seq = g_hook_seq.load(std::memory_order_relaxed);
  // Writers serialise on the odd count: only the one that turns it odd may store.
  while ((seq & 1) != 0 || !g_hook_seq.compare_exchange_weak(seq, seq + 1, std::memory_order_relaxed)) {
    if ((seq & 1) != 0) std::this_thread::yield();
    seq = g_hook_seq.load(std::memory_order_relaxed);
  }
  // Release: a reader that loads either value also sees the odd count (pairs with load_hook's acquires).
  g_hook.store(hook.fn, std::memory_order_release);
  g_hook_context.store(hook.context, std::memory_order_release);
  g_hook_seq.store(seq + 2, std::memory_order_release);  // pairs with load_hook's first acquire load
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

}  // namespace

// The forking thread was not inside set_hook (which holds its signals, and fork is a call of its own), so
// an odd count in the child is a dead writer's; its pair may be half written, so the default hook it is.
void diag_fork_child() noexcept {
  const unsigned long seq = g_hook_seq.load(std::memory_order_relaxed);
  if ((seq & 1) == 0) return;
  g_hook.store(nullptr, std::memory_order_relaxed);
  g_hook_context.store(nullptr, std::memory_order_relaxed);
  g_hook_seq.store(seq + 1, std::memory_order_release);  // pairs with load_hook's first acquire load
}

namespace {

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
  const Hook hook = load_hook();
  if (hook.fn != nullptr)
    hook.fn(hook.context, call, message);
  else
    default_hook(kind, call, message);
}

bool default_hook_in_use() noexcept { return load_hook().fn == nullptr; }

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

void umn_set_diagnostic_hook(umn_diagnostic_fn fn, void* context) { umn::detail::set_hook({fn, context}); }

unsigned long umn_diagnostic_count(void) { return umn::detail::g_count.load(std::memory_order_relaxed); }

}  // extern "C"
