/* Test helper: connect(2) to ADDR:PORT by a path the syscall tracepoints do not see.
 *   connect_evasion uring ADDR PORT    IORING_OP_CONNECT through a fresh io_uring
 *   connect_evasion compat ADDR PORT   the ia32 connect syscall via int $0x80 (64-bit process)
 * Prints "pid N" then "result R" (0 or -errno). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int via_uring(int fd, struct sockaddr_in *sa)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int ring = syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		return -errno;
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (cq_len > sq_len)
		sq_len = cq_len;
	char *sq = mmap(0, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
	struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || sqes == MAP_FAILED)
		return -errno;
	char *cq = sq;   /* IORING_FEAT_SINGLE_MMAP: one mapping for both rings */
	unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
	unsigned *array = (unsigned *)(sq + p.sq_off.array);
	unsigned idx = *tail & *(unsigned *)(sq + p.sq_off.ring_mask);
	memset(&sqes[idx], 0, sizeof(sqes[idx]));
	sqes[idx].opcode = IORING_OP_CONNECT;
	sqes[idx].fd = fd;
	sqes[idx].addr = (unsigned long)sa;
	sqes[idx].off = sizeof(*sa);
	array[idx] = idx;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, 0, 0) < 0)
		return -errno;
	unsigned head = *(unsigned *)(cq + p.cq_off.head);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return cqes[head & *(unsigned *)(cq + p.cq_off.ring_mask)].res;
}

static int via_compat(int fd, struct sockaddr_in *src)
{
	/* int $0x80 passes 32-bit pointers: the address must live below 4 GiB. */
	struct sockaddr_in *sa = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	long ret;

	if (sa == MAP_FAILED)
		return -errno;
	*sa = *src;
	/* 362: connect in the i386 syscall table */
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(362), "b"(fd), "c"(sa), "d"(sizeof(*sa)) : "memory");
	return (int)ret;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, r;

	if (argc != 4)
		return 2;
	sa.sin_port = htons(atoi(argv[3]));
	inet_pton(AF_INET, argv[2], &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	printf("pid %d\n", getpid());
	fflush(stdout);
	r = !strcmp(argv[1], "uring") ? via_uring(fd, &sa) : via_compat(fd, &sa);
	printf("result %d\n", r);
	return 0;
}
