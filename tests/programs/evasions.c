/* evasions.c - `evasions WAY`: takes memory away, unannounced, in a way the tracer of `umn trace
 * --verify` could fail to stop. Each WAY must be reported (a miss, exit 3) or refused as unverifiable
 * (exit 4), never passed:
 *   clone_parent  a process made with clone(CLONE_PARENT) by the traced command: its parent is the
 *                 tracer itself, not a traced process; it unmaps a page with a generated instruction.
 *   uring_madvise io_uring's IORING_OP_MADVISE(MADV_DONTNEED): no system call of the process does it
 *                 (with IORING_SETUP_SQPOLL, not even io_uring_enter).
 *   user_notif    a seccomp filter of the program's own that returns SECCOMP_RET_USER_NOTIF for munmap
 *                 (it takes precedence over the tracer's RET_TRACE) and a thread that lets it continue.
 *   remap_file_pages  the deprecated call that replaces the pages of a shared file mapping, made by a
 *                 generated instruction (the hooks announce libc's since issue 17's audit).
 *   clone_vm_brk  a clone(CLONE_VM) process (one address space, two processes) shrinks the break that
 *                 its creator grew after the clone.
 *   killed_mid_munmap  a thread's raw munmap of 128 MiB is still freeing pages when another thread
 *                 ends the process (exit_group): the kernel skips the syscall-exit stop of a dying
 *                 thread, where the tracer used to confirm the miss.
 *   clone_vm_libc the positive control: a clone(CLONE_VM) process without its own TLS unmaps a page
 *                 through libc (announced: 0 misses).
 *   remap_file_pages_libc  the positive control: remap_file_pages through libc (announced: 0 misses). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <liburing.h>

#include "jit_syscall.h"

static char *touched_pages(int n) {
	char *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, n * 4096);
	return p;
}

static char child_stack[64 << 10];
static int unmap_a_page(void *arg) {
	char *p = arg;
	return jit_syscall(SYS_munmap, (long)(p + 4096), 4096, 0, 0, 0, 0) == 0 ? 0 : 1;
}

static int clone_parent(void) {
	char *p = touched_pages(4);
	jit_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0); /* generate the code before the clone */
	pid_t child = clone(unmap_a_page, child_stack + sizeof(child_stack), CLONE_PARENT | SIGCHLD, p);
	if (child < 0) return 2;
	/* The child is the tracer's, not ours: wait until it is gone (kill(pid, 0) fails once reaped). */
	while (kill(child, 0) == 0) usleep(1000);
	return 0;
}

static int uring_madvise(void) {
	char *p = touched_pages(4);
	struct io_uring ring;
	if (io_uring_queue_init(4, &ring, 0) != 0) return 2;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_madvise(sqe, p + 4096, 4096, MADV_DONTNEED);
	io_uring_submit(&ring);
	struct io_uring_cqe *cqe;
	if (io_uring_wait_cqe(&ring, &cqe) != 0 || cqe->res != 0) return 2;
	/* The ring is left mapped: liburing unmaps it with its own instructions, a miss of its own. */
	return p[4096] == 0 ? 0 : 2; /* the page was discarded */
}

static void *supervise(void *arg) {
	int listener = *(int *)arg;
	struct seccomp_notif req;
	struct seccomp_notif_resp resp;
	memset(&req, 0, sizeof(req));
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return NULL;
	memset(&resp, 0, sizeof(resp));
	resp.id = req.id;
	resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	return NULL;
}

static int user_notif(void) {
	char *p = touched_pages(4);
	jit_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_munmap, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(code) / sizeof(code[0]), code};
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	int listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0) return 2;
	pthread_t t;
	pthread_create(&t, NULL, supervise, &listener);
	long r = jit_syscall(SYS_munmap, (long)(p + 4096), 4096, 0, 0, 0, 0);
	pthread_join(t, NULL);
	return r == 0 ? 0 : 2;
}

static int remap_pages(int raw) {
	int fd = memfd_create("evasions", 0);
	if (fd < 0 || ftruncate(fd, 2 * 4096) != 0) return 2;
	char *p = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p[0] = 'a';
	p[4096] = 'b';
	long r = raw ? jit_syscall(SYS_remap_file_pages, (long)p, 4096, 0, 1, 0, 0) : remap_file_pages(p, 4096, 0, 1, 0);
	if (r != 0) return 2;
	return p[0] == 'b' ? 0 : 2; /* the first page now shows the file's second */
}

static volatile int grown;
static long first_break;

static int shrink_the_break(void *arg) {
	(void)arg;
	while (!grown) sched_yield();
	return jit_syscall(SYS_brk, first_break + 4096, 0, 0, 0, 0, 0) == first_break + 4096 ? 0 : 1;
}

static int unmap_through_libc(void *arg) { return munmap((char *)arg + 4096, 4096) == 0 ? 0 : 1; }

static int clone_vm(int (*fn)(void *)) {
	char *p = touched_pages(4);
	first_break = jit_syscall(SYS_brk, 0, 0, 0, 0, 0, 0);
	pid_t child = clone(fn, child_stack + sizeof(child_stack), CLONE_VM | SIGCHLD, p);
	if (child < 0) return 2;
	if (fn == shrink_the_break) {
		if (jit_syscall(SYS_brk, first_break + 64 * 4096, 0, 0, 0, 0, 0) != first_break + 64 * 4096) return 2;
		memset((char *)first_break, 1, 64 * 4096);
		grown = 1;
	}
	int status = 0;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 2;
	return WEXITSTATUS(status);
}

#define KILLED_SIZE (128L << 20)

static char *killed_range;

static void *unmap_the_range(void *arg) {
	(void)arg;
	jit_syscall(SYS_munmap, (long)killed_range, KILLED_SIZE, 0, 0, 0, 0);
	for (;;) pause();
	return NULL;
}

static int killed_mid_munmap(void) {
	killed_range = mmap(NULL, KILLED_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	jit_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0);
	pthread_t t;
	pthread_create(&t, NULL, unmap_the_range, NULL);
	/* The kernel takes the mapping out of the tree before it frees the pages: once mincore fails, the
	 * munmap is running and has milliseconds to go. */
	unsigned char v;
	while (mincore(killed_range + KILLED_SIZE - 4096, 4096, &v) == 0) sched_yield();
	jit_syscall(SYS_exit_group, 0, 0, 0, 0, 0, 0);
	return 2;
}

int main(int argc, char **argv) {
	if (argc != 2) return 2;
	if (strcmp(argv[1], "clone_parent") == 0) return clone_parent();
	if (strcmp(argv[1], "uring_madvise") == 0) return uring_madvise();
	if (strcmp(argv[1], "user_notif") == 0) return user_notif();
	if (strcmp(argv[1], "remap_file_pages") == 0) return remap_pages(1);
	if (strcmp(argv[1], "remap_file_pages_libc") == 0) return remap_pages(0);
	if (strcmp(argv[1], "killed_mid_munmap") == 0) return killed_mid_munmap();
	if (strcmp(argv[1], "clone_vm_brk") == 0) return clone_vm(shrink_the_break);
	if (strcmp(argv[1], "clone_vm_libc") == 0) return clone_vm(unmap_through_libc);
	return 2;
}
