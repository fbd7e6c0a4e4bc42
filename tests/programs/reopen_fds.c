/* reopen_fds.c - issue 17.16: a daemon-like program closes every descriptor above stderr, opens its own
 * data file (which takes the lowest free number) and keeps working. Whatever `umn trace` writes must not
 * land in that file: the program checks that the file holds exactly what it wrote. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 2) return 2;
	for (int fd = 3; fd < 1024; ++fd) close(fd);
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) return 2;
	const char data[] = "data\n";
	if (write(fd, data, sizeof(data) - 1) != (ssize_t)(sizeof(data) - 1)) return 2;
	for (int i = 0; i < 16; ++i) { /* events while the data file is open */
		char *m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(m, 4 * 4096);
	}
	char back[64] = {0};
	ssize_t n = pread(fd, back, sizeof(back) - 1, 0);
	close(fd);
	if (n != (ssize_t)(sizeof(data) - 1) || memcmp(back, data, sizeof(data) - 1) != 0) {
		fprintf(stderr, "reopen_fds: the data file holds %zd bytes not written by the program: \"%s\"\n", n, back);
		return 1;
	}
	return 0;
}
