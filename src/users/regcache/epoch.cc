// epoch.cc - reader records and the reclaimer's scan (contract: epoch.hpp).
//
// Records form a push-only list (CAS on the head); a thread claims a free record (one whose thread
// exited) before allocating a new one, so the list is as long as the most threads ever alive at once.
// Thread exit: a pthread key destructor clears the record (state 0) and frees it for reuse.
// fork: the child frees the records of every thread but the forking one (they do not exist there).
#include "users/regcache/epoch.hpp"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace umn::detail::regcache::epoch {

std::atomic<uint64_t> g_epoch{1};
bool g_asymmetric = false;
__thread Reader* t_reader [[gnu::tls_model("initial-exec")]] = nullptr;

namespace {

std::atomic<Reader*> g_readers{nullptr};  // push-only list; release CAS, acquire loads
pthread_key_t g_exit_key;

long membarrier(int command) noexcept { return syscall(SYS_membarrier, command, 0, 0); }

void thread_exit(void* record) {
  auto* reader = static_cast<Reader*>(record);
  reader->state.store(0, std::memory_order_release);
  t_reader = nullptr;
  reader->in_use.store(false, std::memory_order_release);  // pairs with the claiming CAS
}

pthread_once_t g_once = PTHREAD_ONCE_INIT;

// In a fork child only the forking thread exists: the other threads' records end their sections and
// become free, or a section open at the fork would hold every reclamation of the child (destroy would
// wait for it forever).
void after_fork_child() {
  for (Reader* reader = g_readers.load(std::memory_order_relaxed); reader != nullptr; reader = reader->next) {
    if (reader == t_reader) continue;
    reader->state.store(0, std::memory_order_relaxed);
    reader->in_use.store(false, std::memory_order_relaxed);  // single-threaded here: no ordering needed
  }
}

// Runs once, at the first registration or reclamation (not at load: a program that never uses a cache
// pays nothing). Both sides call it first, so g_asymmetric is settled before either reads it.
void init() noexcept {
  (void)pthread_key_create(&g_exit_key, &thread_exit);
  (void)pthread_atfork(nullptr, nullptr, &after_fork_child);
  const long commands = membarrier(MEMBARRIER_CMD_QUERY);
  g_asymmetric = commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
                 membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

Reader* claim_free() noexcept {
  for (Reader* reader = g_readers.load(std::memory_order_acquire); reader != nullptr; reader = reader->next) {
    bool in_use = false;
    if (reader->in_use.compare_exchange_strong(in_use, true, std::memory_order_acq_rel)) return reader;
  }
  return nullptr;
}

}  // namespace

Reader* register_thread() noexcept {
  (void)pthread_once(&g_once, &init);
  Reader* reader = claim_free();
  if (reader == nullptr) {
    reader = new (std::nothrow) Reader;
    if (reader == nullptr) std::abort();  // like urcu-bp's registration: nothing sensible to return
    reader->next = g_readers.load(std::memory_order_relaxed);
    // Release: pairs with the acquire loads of the list walkers (they see next and in_use).
    while (!g_readers.compare_exchange_weak(reader->next, reader, std::memory_order_release,
                                            std::memory_order_relaxed)) {
    }
  }
  t_reader = reader;
  (void)pthread_setspecific(g_exit_key, reader);
  return reader;
}

Reader* first_reader() noexcept { return g_readers.load(std::memory_order_acquire); }

void fence() noexcept {
  (void)pthread_once(&g_once, &init);
  if (g_asymmetric) {
    (void)membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  } else {
    static std::atomic<uint64_t> word{0};
    word.fetch_add(1, std::memory_order_seq_cst);
  }
}

uint64_t oldest_active() noexcept {
  (void)pthread_once(&g_once, &init);
  if (g_asymmetric) (void)membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  uint64_t oldest = UINT64_MAX;
  for (Reader* reader = g_readers.load(std::memory_order_acquire); reader != nullptr; reader = reader->next) {
    // Acquire: pairs with the release store ending a section (its reads happen-before our frees).
    const uint64_t state = reader->state.load(std::memory_order_acquire);
    if (state != 0) oldest = std::min(oldest, state >> kNestBits);
  }
  return oldest;
}

}  // namespace umn::detail::regcache::epoch
