/* Test helper: opens files and touches other processes the ways an attacker would use to
 * avoid the syscall tracepoints (int 0x80, open_by_handle_at, creat, io_uring, a path in an
 * unfaulted page). Each mode prints what it got and exits 0 on success. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static char *low_copy(const char *s)
{
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT,
		       -1, 0);
	if (p == MAP_FAILED)
		exit(3);
	strncpy(p, s, 8191);
	return p;
}

static long int80(long nr, long a, long b, long c)
{
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

static int read_one(long fd)
{
	char buf[16];

	if (fd < 0)
		return 1;
	if (read((int)fd, buf, sizeof(buf)) < 0)
		return 1;
	close((int)fd);
	printf("%ld\n", fd);
	return 0;
}

/* fixed: open into slot 0 of a registered (sparse) fixed-file table, so no fd is installed. */
static int uring_open(const char *path, int fixed)
{
	struct io_uring_params p = {0};
	int ring = syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		return 1;
	if (fixed) {
		int slots[1] = { -1 };
		if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_FILES, slots, 1) < 0)
			return 1;
	}
	size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(0, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
			IORING_OFF_SQ_RING);
	char *cq = mmap(0, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
			IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe),
					 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
					 IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return 1;
	unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
	unsigned *array = (unsigned *)(sq + p.sq_off.array);
	unsigned mask = *(unsigned *)(sq + p.sq_off.ring_mask);
	unsigned idx = *tail & mask;
	struct io_uring_sqe *sqe = &sqes[idx];
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_OPENAT;
	sqe->fd = AT_FDCWD;
	sqe->addr = (unsigned long)path;
	sqe->open_flags = O_RDONLY;
	sqe->file_index = fixed ? 1 : 0;     /* slot + 1; 0: install an fd */
	array[idx] = idx;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return 1;
	unsigned *chead = (unsigned *)(cq + p.cq_off.head);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	unsigned cmask = *(unsigned *)(cq + p.cq_off.ring_mask);
	int res = cqes[*chead & cmask].res;
	if (fixed) {
		printf("slot %d\n", res);
		return res < 0;
	}
	return read_one(res);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	const char *mode = argv[1], *arg = argv[2];

	if (!strcmp(mode, "open32"))
		return read_one(int80(5 /* open */, (long)low_copy(arg), O_RDONLY, 0));
	if (!strcmp(mode, "openat32")) {
		int dir = open(arg, O_RDONLY | O_DIRECTORY);
		return read_one(int80(295 /* openat */, dir, (long)low_copy(argv[3]), O_RDONLY));
	}
	if (!strcmp(mode, "ptrace32")) {
		long pid = atol(arg);
		if (int80(26 /* ptrace */, PTRACE_ATTACH, pid, 0) < 0)
			return 1;
		waitpid(pid, NULL, 0);
		ptrace(PTRACE_DETACH, pid, 0, 0);
		printf("attached\n");
		return 0;
	}
	if (!strcmp(mode, "vm_readv32")) {
		/* struct compat_iovec { u32 base; u32 len; } in low memory */
		unsigned *iov = (unsigned *)low_copy("");
		char *buf = low_copy("");
		iov[0] = (unsigned)(unsigned long)buf;
		iov[1] = 8;
		iov[2] = (unsigned)strtoul(argv[3], 0, 0);
		iov[3] = 8;
		long r = int80(347 /* process_vm_readv */, atol(arg), (long)iov, 1);
		printf("%ld\n", r);
		return 0;
	}
	if (!strcmp(mode, "handle")) {
		struct file_handle *fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
		int mount_id, mfd;
		fh->handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(AT_FDCWD, arg, fh, &mount_id, 0) < 0)
			return 1;
		mfd = open(argv[3], O_RDONLY | O_DIRECTORY);   /* any fd on the same mount */
		return read_one(open_by_handle_at(mfd, fh, O_RDONLY));
	}
	if (!strcmp(mode, "creat")) {
		long fd = creat(arg, 0600);
		if (fd < 0)
			return 1;
		printf("%ld\n", fd);
		return 0;
	}
	if (!strcmp(mode, "uring"))
		return uring_open(arg, 0);
	if (!strcmp(mode, "uring_fixed"))
		return uring_open(arg, 1);
	if (!strcmp(mode, "unfaulted")) {
		/* The path lives in a file-backed page nobody has touched yet. */
		char tmpl[] = "/tmp/bee-unfaulted-XXXXXX";
		int tfd = mkstemp(tmpl);
		if (tfd < 0 || write(tfd, arg, strlen(arg) + 1) < 0)
			return 1;
		unlink(tmpl);
		char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, tfd, 0);
		if (p == MAP_FAILED)
			return 1;
		posix_fadvise(tfd, 0, 0, POSIX_FADV_DONTNEED);
		return read_one(syscall(__NR_openat, AT_FDCWD, p, O_RDONLY));
	}
	return 2;
}
