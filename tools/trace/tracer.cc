// tracer.cc - the ptrace loop behind `umn trace` (tracer.hpp).
//
// Start: fork; the child asks to be traced (PTRACE_TRACEME), stops itself, installs the seccomp filter
// once the tracer has set its options, and execs the command. Every task the tree creates is attached
// automatically (TRACEFORK/VFORK/CLONE) and starts with a SIGSTOP, which is swallowed.
// Stops, one task at a time (waitpid(-1, __WALL)):
//   - seccomp stop: a trapped call is about to run (check_call); an unannounced, mapped residue is
//     confirmed at the call's exit (PTRACE_SYSCALL, confirm_at_exit); brk is always settled at its exit.
//   - exec: the process starts a new image; the thread slots of its old threads are freed.
//   - exit (before a thread dies): snapshot the maps, to name call sites after the process is gone.
//   - death of a task: its thread slot is freed; a leader's death ends its image.
//   - any other stop: a signal for the tracee, passed on (a group stop is resumed: job control stops
//     are not honoured under `umn trace`).
#include "trace/tracer.hpp"

#include <fmt/format.h>
#include <linux/audit.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "trace/seccomp_filter.hpp"

namespace umn::trace {

namespace {

constexpr uint64_t kPage = 4096;
uint64_t page_up(uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }

struct Pending {
  bool active = false;
  Effect effect;
  std::vector<Range> residue, if_moved, announced;
  uint64_t old_addr = 0, brk_before = 0, ip = 0;
  bool checked = false;  // the image was hooked at entry
  std::string where;
};

struct Task {
  pid_t tgid = 0;
  bool fresh = true;  // its initial SIGSTOP is still to come
  bool held = false;  // stopped at that SIGSTOP until its creator's event places it in an image
  Pending pending;
};

Task settled_task(pid_t tgid) {
  Task task;
  task.tgid = tgid;
  task.fresh = false;
  return task;
}

class Tracer {
 public:
  Tracer(Region* region, bool verify) : region_(region), verify_(verify) {}
  TraceRun run(const std::vector<std::string>& command, const std::function<void()>& setup);

 private:
  pid_t spawn(const std::vector<std::string>& command, const std::function<void()>& setup);
  void on_stop(pid_t tid, int status);
  void on_death(pid_t tid, int status);
  void on_event(pid_t tid, int event);
  void on_exec(pid_t tid);
  Task& ensure_task(pid_t tid, pid_t creator = 0);
  Image* image_of(pid_t tgid);
  Image new_image(pid_t pid, pid_t ppid) const;
  void refresh_hooked(Image* image);
  void snapshot_maps(pid_t tid);
  void check_call(pid_t tid, Task* task);
  bool unannounced_and_mapped(pid_t tid, uint64_t ip, Pending* p);
  void confirm_at_exit(pid_t tid, Task* task);
  void settle_brk(pid_t tid, Task* task, uint64_t result);
  void settle_unfinished(pid_t tid, Task* task);
  std::vector<Range> take_announcements(pid_t tid, umn_process_call call);
  void report(Image* image, pid_t tid, const char* syscall, const std::string& detail, const std::string& where);
  void resume(pid_t tid, int request, int signal = 0);

  Region* region_;
  bool verify_;
  pid_t root_ = 0;
  std::map<pid_t, Task> tasks_;
  std::map<pid_t, size_t> current_;  // tgid -> its current image in run_.images
  TraceRun run_;
};

void Tracer::resume(pid_t tid, int request, int signal) {
  ptrace(static_cast<__ptrace_request>(request), tid, nullptr, reinterpret_cast<void*>(static_cast<long>(signal)));
}

long status_field(pid_t tid, const char* key) {
  std::ifstream status(fmt::format("/proc/{}/status", tid));
  const size_t n = std::strlen(key);
  for (std::string line; std::getline(status, line);)
    if (line.compare(0, n, key) == 0) return std::stol(line.substr(n));
  return 0;
}

// Whether two processes have one address space (clone with CLONE_VM and without CLONE_THREAD, vfork).
bool shares_memory(pid_t a, pid_t b) { return syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0; }

std::string exe_of(pid_t pid) {
  char buf[4096];
  ssize_t n = readlink(fmt::format("/proc/{}/exe", pid).c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?");
}

pid_t Tracer::spawn(const std::vector<std::string>& command, const std::function<void()>& setup) {
  pid_t child = fork();
  if (child != 0) return child;
  ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
  raise(SIGSTOP);  // the tracer sets its options while we wait here
  setup();
  if (int err = install_seccomp_filter(verify_); err != 0) {
    fmt::print(stderr, "umn trace: seccomp filter: {}\n", std::strerror(-err));
    _exit(126);
  }
  std::vector<char*> argv;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  fmt::print(stderr, "umn trace: {}: {}\n", argv[0], std::strerror(errno));
  _exit(127);
}

TraceRun Tracer::run(const std::vector<std::string>& command, const std::function<void()>& setup) {
  root_ = spawn(command, setup);
  if (root_ < 0) {
    run_.problems.push_back(fmt::format("fork: {}", std::strerror(errno)));
    run_.status = 127;
    return std::move(run_);
  }
  int status = 0;
  waitpid(root_, &status, __WALL);
  constexpr long kOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                            PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL;
  if (!WIFSTOPPED(status) || ptrace(PTRACE_SETOPTIONS, root_, nullptr, reinterpret_cast<void*>(kOptions)) != 0) {
    run_.problems.push_back(fmt::format("ptrace: {}", std::strerror(errno)));
    kill(root_, SIGKILL);
  }
  tasks_[root_] = settled_task(root_);
  // Ctrl-C reaches the traced processes too (same process group): let them end, then summarise.
  signal(SIGINT, SIG_IGN);
  resume(root_, PTRACE_CONT);
  for (;;) {
    pid_t tid = waitpid(-1, &status, __WALL);
    if (tid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: the whole tree is gone
    }
    if (WIFSTOPPED(status)) {
      on_stop(tid, status);
    } else {
      on_death(tid, status);
    }
  }
  return std::move(run_);
}

Image Tracer::new_image(pid_t pid, pid_t ppid) const {
  Image image;
  image.pid = pid;
  image.ppid = ppid;
  image.watermark = region_->header.next_record.load(std::memory_order_acquire);
  return image;
}

// creator: the process whose fork/vfork/clone event made tid (0 if not known yet). A new process gets
// its creator's image (and hooks) until it execs: its memory is a copy of the creator's, whoever its
// parent is (with CLONE_PARENT the parent is the creator's parent, possibly the tracer itself).
Task& Tracer::ensure_task(pid_t tid, pid_t creator) {
  auto [it, added] = tasks_.try_emplace(tid);
  Task& task = it->second;
  if (added) task.tgid = static_cast<pid_t>(status_field(tid, "Tgid:"));
  if (current_.count(task.tgid) != 0) return task;
  const pid_t ppid = static_cast<pid_t>(status_field(tid, "PPid:"));
  Image* parent = image_of(creator != 0 ? creator : ppid);
  if (parent == nullptr) return task;  // placed when its creator's event arrives (on_event)
  refresh_hooked(parent);
  Image child = new_image(task.tgid, ppid);
  child.exe = parent->exe;
  child.hooked = parent->hooked;
  child.brk = shares_memory(parent->pid, task.tgid) ? parent->brk : std::make_shared<uint64_t>(*parent->brk);
  current_[task.tgid] = run_.images.size();
  run_.images.push_back(std::move(child));
  return task;
}

Image* Tracer::image_of(pid_t tgid) {
  auto it = current_.find(tgid);
  return it == current_.end() ? nullptr : &run_.images[it->second];
}

void Tracer::on_stop(pid_t tid, int status) {
  Task& task = ensure_task(tid);
  const int signal = WSTOPSIG(status);
  if (signal == (SIGTRAP | 0x80)) {
    confirm_at_exit(tid, &task);
    return resume(tid, PTRACE_CONT);
  }
  if (signal == SIGTRAP && (status >> 16) != 0) return on_event(tid, status >> 16);
  if (signal == SIGSTOP && task.fresh) {
    task.fresh = false;
    // Not placed yet (its creator's event is still to come): it stays stopped until then, so that
    // none of its calls goes unchecked.
    if (image_of(task.tgid) == nullptr) return void(task.held = true);
    return resume(tid, PTRACE_CONT);
  }
  siginfo_t info;
  const bool group_stop = ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info) != 0;
  resume(tid, PTRACE_CONT, group_stop ? 0 : signal);
}

void Tracer::on_event(pid_t tid, int event) {
  unsigned long message = 0;
  ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &message);
  switch (event) {
    case PTRACE_EVENT_SECCOMP:
      return check_call(tid, &tasks_[tid]);  // resumes
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
    case PTRACE_EVENT_CLONE: {
      Task& child = ensure_task(static_cast<pid_t>(message), tasks_[tid].tgid);
      if (child.held) {
        child.held = false;
        resume(static_cast<pid_t>(message), PTRACE_CONT);
      }
      break;
    }
    case PTRACE_EVENT_EXEC:
      on_exec(tid);
      break;
    case PTRACE_EVENT_EXIT:
      if (tasks_[tid].pending.active) settle_unfinished(tid, &tasks_[tid]);
      snapshot_maps(tid);
      break;
    default:
      break;
  }
  resume(tid, PTRACE_CONT);
}

// The thread that called execve now has the process id as its thread id; every other thread is gone.
void Tracer::on_exec(pid_t tid) {
  unsigned long former = 0;
  ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &former);
  const pid_t tgid = tasks_[tid].tgid != 0 ? tasks_[tid].tgid : tid;
  free_thread(region_, static_cast<int32_t>(former));
  free_thread(region_, tgid);
  if (static_cast<pid_t>(former) != tgid) tasks_.erase(static_cast<pid_t>(former));
  tasks_[tgid] = settled_task(tgid);
  Image next = new_image(tgid, 0);
  next.exe = exe_of(tgid);
  if (Image* old = image_of(tgid)) {
    old->ended = "exec";
    next.ppid = old->ppid;
  } else {
    next.ppid = static_cast<pid_t>(status_field(tgid, "PPid:"));
  }
  current_[tgid] = run_.images.size();
  run_.images.push_back(std::move(next));
}

void Tracer::on_death(pid_t tid, int status) {
  free_thread(region_, tid);
  auto it = tasks_.find(tid);
  const pid_t tgid = it != tasks_.end() ? it->second.tgid : tid;
  if (it != tasks_.end() && it->second.pending.active) settle_unfinished(tid, &it->second);
  if (it != tasks_.end()) tasks_.erase(it);
  const std::string how = WIFEXITED(status)
                              ? fmt::format("exit {}", WEXITSTATUS(status))
                              : fmt::format("signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  if (tid == tgid)
    if (Image* image = image_of(tgid)) image->ended = how;
  if (tid == root_) run_.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Keeps the mappings of tid's process for naming call sites later. Read through the stopped thread
// itself: the leader may be a zombie already (a main thread that called pthread_exit) and then shows none.
void Tracer::snapshot_maps(pid_t tid) {
  Image* image = image_of(tasks_[tid].tgid);
  if (image == nullptr) return;
  std::vector<MapLine> maps = read_maps(tid);
  if (!maps.empty()) image->maps = std::move(maps);
}

void Tracer::refresh_hooked(Image* image) {
  if (image->hooked) return;
  const uint32_t claimed = std::min(region_->header.next_record.load(std::memory_order_acquire), kProcessRecords);
  for (uint32_t r = image->watermark; r < claimed; ++r) {
    const ProcessRecord& record = region_->records[r];
    if (record.pid.load(std::memory_order_relaxed) != image->pid) continue;
    // Pairs with the release store of ready in trace.cc start_from_environment.
    if (record.ready.load(std::memory_order_acquire) == kRecordHooked) image->hooked = true;
  }
}

std::vector<Range> Tracer::take_announcements(pid_t tid, umn_process_call call) {
  std::vector<Range> announced;
  ThreadSlot* slot = find_thread(region_, tid);
  if (slot == nullptr) return announced;
  const uint64_t consumed = slot->consumed.load(std::memory_order_relaxed);
  for (const Announcement& open : slot->open) {
    // Pairs with the release store of seq in trace.cc announce (the thread is stopped now).
    const uint64_t seq = open.seq.load(std::memory_order_acquire);
    if (seq == 0 || seq == kAnnouncementBusy || seq <= consumed || open.call != static_cast<uint32_t>(call)) continue;
    announced.push_back({open.start, open.end});
  }
  if (slot->overflow.load(std::memory_order_relaxed) != 0)
    run_.problems.push_back(
        fmt::format("thread {}: more than {} announcements open at once; some were not recorded", tid, kOpenPerThread));
  slot->overflow.store(0, std::memory_order_relaxed);
  // Each announcement covers one call: a stale one (left open by a thread that jumped out of a
  // delivery) must not cover a later call.
  slot->consumed.store(slot->issued.load(std::memory_order_relaxed), std::memory_order_relaxed);
  return announced;
}

std::vector<Range> mapped_part(const std::vector<Range>& ranges, const std::vector<MapLine>& maps, const Effect& e) {
  std::vector<Range> held;
  for (const MapLine& line : maps)
    if (e.loss != Loss::kAccess || (e.read_lost && line.read) || (e.write_lost && line.write))
      held.push_back(line.range);
  return intersect(ranges, held);
}

std::string describe(const std::vector<Range>& ranges) {
  std::string out;
  for (const Range& r : ranges) out += fmt::format("{}[{:#x}, {:#x})", out.empty() ? "" : " ", r.start, r.end);
  return out;
}

// The call at tid's seccomp stop, from PTRACE_GET_SYSCALL_INFO. Return: false if it cannot be read.
bool stopped_call(pid_t tid, pid_t tgid, Syscall* call) {
  __ptrace_syscall_info info{};
  if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof(info), &info) <= 0) return false;
  call->arch = info.arch;
  call->ip = info.instruction_pointer;
  call->tid = tid;
  call->tgid = tgid;
  call->nr = info.arch == AUDIT_ARCH_X86_64 ? static_cast<long>(static_cast<int>(info.seccomp.nr) & ~0x40000000)
                                            : static_cast<long>(info.seccomp.nr);
  std::copy(std::begin(info.seccomp.args), std::end(info.seccomp.args), call->args);
  return true;
}

void Tracer::check_call(pid_t tid, Task* task) {
  Image* image = image_of(task->tgid);
  Syscall call;
  if (image == nullptr && task->tgid != root_)
    run_.problems.push_back(fmt::format("pid {}: a process in no known image: its calls were not checked", task->tgid));
  if (image == nullptr || !stopped_call(tid, task->tgid, &call)) return resume(tid, PTRACE_CONT);  // the launcher
  const Effect effect = effect_of(call);
  if (effect.loss == Loss::kExec) {
    snapshot_maps(tid);
    return resume(tid, PTRACE_CONT);
  }
  if (effect.loss == Loss::kUnverifiable) {
    run_.problems.push_back(fmt::format("pid {} ({}): not verifiable: {}", image->pid, image->exe, effect.why));
    run_.syscalls[effect.name].trapped++;
    image->trapped++;
    return resume(tid, PTRACE_CONT);
  }
  SyscallTally& tally = run_.syscalls[effect.name];
  tally.trapped++;
  image->trapped++;
  refresh_hooked(image);
  Pending& p = task->pending;
  p = Pending();
  p.effect = effect;
  p.old_addr = call.args[0];
  p.ip = call.ip;
  p.checked = image->hooked;
  if (effect.loss == Loss::kNone) return resume(tid, PTRACE_CONT);
  if (!image->hooked) {
    tally.before_hooks++;
    image->before_hooks++;
    if (effect.loss != Loss::kBrkShrink) return resume(tid, PTRACE_CONT);
  } else {
    tally.checked++;
    image->checked++;
    p.announced = take_announcements(tid, effect.call);
  }
  if (effect.loss == Loss::kBrkShrink) {
    p.active = true;
    p.brk_before = *image->brk;
    return resume(tid, PTRACE_SYSCALL);  // the break it leaves is known at the exit
  }
  if (effect.unresolved) {
    report(image, tid, effect.name, effect.why, "");
    return resume(tid, PTRACE_CONT);
  }
  p.active = unannounced_and_mapped(tid, call.ip, &p);
  resume(tid, p.active ? PTRACE_SYSCALL : PTRACE_CONT);  // a suspected miss is settled at the exit
}

// Leaves in p what of the call's effect no announcement covers and was mapped (with the access at stake).
// Return: whether anything is left.
bool Tracer::unannounced_and_mapped(pid_t tid, uint64_t ip, Pending* p) {
  p->residue = subtract(p->effect.ranges, p->announced);
  p->if_moved = subtract(p->effect.if_moved, p->announced);
  if (p->residue.empty() && p->if_moved.empty()) return false;
  const std::vector<MapLine> maps = read_maps(tid);
  if (maps.empty()) {
    // Unreadable (a non-dumpable process, without CAP_SYS_PTRACE): what was mapped is unknown, so the
    // whole residue counts; a check that cannot be made never passes.
    p->where = "?: its mappings could not be read";
    return true;
  }
  p->residue = mapped_part(p->residue, maps, p->effect);
  p->if_moved = mapped_part(p->if_moved, maps, p->effect);
  p->where = describe_address(maps, ip);
  return !p->residue.empty() || !p->if_moved.empty();
}

// At the exit of a call whose effect was not all announced: a refusal (any error but ENOMEM, which
// mprotect, madvise and munmap return after acting on part of the range) took nothing.
void Tracer::confirm_at_exit(pid_t tid, Task* task) {
  Pending& p = task->pending;
  if (!p.active) return;
  p.active = false;
  __ptrace_syscall_info info{};
  if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof(info), &info) <= 0 || info.op != PTRACE_SYSCALL_INFO_EXIT) return;
  if (p.effect.loss == Loss::kBrkShrink) return settle_brk(tid, task, static_cast<uint64_t>(info.exit.rval));
  if (info.exit.is_error && info.exit.rval != -ENOMEM) return;
  std::vector<Range> lost = p.residue;
  if (!info.exit.is_error && static_cast<uint64_t>(info.exit.rval) != p.old_addr)
    lost.insert(lost.end(), p.if_moved.begin(), p.if_moved.end());  // mremap moved the mapping
  if (!lost.empty()) report(image_of(task->tgid), tid, p.effect.name, describe(lost), p.where);
}

// A thread killed (SIGKILL, another thread's exit_group) while a suspected miss was running has no
// exit stop: the kernel skips it for a dying thread. What of the residue is no longer mapped (with
// the access at stake) when the thread exits was taken; if the mappings cannot be read any more (the
// thread is gone), the whole residue counts: a check that cannot be made never passes.
void Tracer::settle_unfinished(pid_t tid, Task* task) {
  Pending& p = task->pending;
  p.active = false;
  Image* image = image_of(task->tgid);
  if (image == nullptr) return;
  std::vector<Range> suspected = p.residue;
  suspected.insert(suspected.end(), p.if_moved.begin(), p.if_moved.end());
  if (p.effect.loss == Loss::kBrkShrink) {
    const uint64_t before = std::max(p.brk_before, *image->brk);
    if (!p.checked || before == 0 || page_up(p.old_addr) >= page_up(before)) return;
    suspected = subtract({{page_up(p.old_addr), page_up(before)}}, p.announced);
  }
  const std::vector<MapLine> maps = read_maps(tid);
  std::vector<Range> lost = maps.empty() ? suspected : subtract(suspected, mapped_part(suspected, maps, p.effect));
  if (!lost.empty())
    report(image, tid, p.effect.name, describe(lost) + " (its thread was killed during the call)",
           maps.empty() ? "?: its mappings could not be read" : describe_address(maps, p.ip));
}

// brk returns the break it leaves (the old one when it refuses): a lower break than before unmapped
// [page_up(new), page_up(old)).
void Tracer::settle_brk(pid_t tid, Task* task, uint64_t result) {
  Image* image = image_of(task->tgid);
  Pending& p = task->pending;
  if (image == nullptr) return;
  // The break before the call: the higher of the one at its entry and one another thread (or a
  // CLONE_VM process) set by a call whose exit came first; the kernel serialises brk calls.
  const uint64_t before = std::max(p.brk_before, *image->brk);
  *image->brk = result;
  if (!p.checked || before == 0 || page_up(result) >= page_up(before)) return;
  std::vector<Range> lost = subtract({{page_up(result), page_up(before)}}, p.announced);
  if (!lost.empty()) report(image, tid, p.effect.name, describe(lost), describe_address(read_maps(tid), p.ip));
}

void Tracer::report(Image* image, pid_t tid, const char* syscall, const std::string& detail, const std::string& where) {
  image->misses++;
  run_.syscalls[syscall].misses++;
  Miss miss;
  miss.pid = image->pid;
  miss.tid = tid;
  miss.exe = image->exe;
  miss.syscall = syscall;
  miss.detail = detail;
  miss.where = where;
  run_.misses.push_back(std::move(miss));
}

}  // namespace

void settle_records(const Region* region, TraceRun* run) {
  const uint32_t claimed = std::min(region->header.next_record.load(std::memory_order_acquire), kProcessRecords);
  for (uint32_t r = 0; r < claimed; ++r) {
    const ProcessRecord& record = region->records[r];
    Image* owner = nullptr;  // the latest image of that pid begun before the record was claimed
    for (Image& image : run->images)
      if (image.pid == record.pid.load(std::memory_order_relaxed) && image.watermark <= r) owner = &image;
    if (owner == nullptr || owner->record >= 0) continue;
    owner->record = static_cast<int>(r);
    if (record.ready.load(std::memory_order_acquire) == kRecordHooked) owner->hooked = true;
  }
}

TraceRun run_traced(Region* region, bool verify, const std::vector<std::string>& command,
                    const std::function<void()>& setup) {
  return Tracer(region, verify).run(command, setup);
}

}  // namespace umn::trace
