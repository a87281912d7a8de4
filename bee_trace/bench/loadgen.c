/* bee-trace bench load generator (compiled at bench time with `cc -O2`).
 *
 *   loadgen open PATH N             N x openat(PATH)+close; prints "ns_per_op=<cpu ns>
 *                                   wall_ns_per_op=<wall ns>"
 *   loadgen connect PORT N          N x connect(127.0.0.1:PORT) on a closed port; same output
 *   loadgen rate PATH RATE SECONDS  openat(PATH)+close at RATE per second, paced uniformly
 *   loadgen crate PORT RATE SECONDS connect(127.0.0.1:PORT) at RATE per second
 *   loadgen srate PATH RATE SECONDS like rate, but sleeps until each operation is due instead of
 *                                   spinning: for low rates on a CPU that other load shares
 *   loadgen flood PORT SECONDS      connect(127.0.0.1:PORT) as fast as it can for SECONDS; prints
 *                                   "ops=<n> seconds=<elapsed> ns_per_op=<cpu ns>"
 *   loadgen getppid|vmread|signal - N  N x a syscall another probe watches (see op_cost): same
 *                                   output as open
 *   loadgen rename DIR N            N x rename(2) between two names in DIR (link probes)
 *   loadgen spawn PATH N            N x fork + exec PATH + wait; ns_per_op counts the children's
 *                                   CPU time too (getrusage)
 *   loadgen nopen PATH N            exactly N opens of PATH, no warm-up, as fast as it can
 *   loadgen dopen DIR N             N creates of distinct files DIR/d<i>.pem (kept), as fast as
 *                                   it can; both print "ops=<n> seconds=<elapsed>"
 *   loadgen paced OP ARG RATE SECONDS spin|sleep
 *                                   OP at RATE per second: distinct (ARG DIR:PORT; even i create,
 *                                   close and unlink DIR/x<i>.pem, odd i connect to a distinct
 *                                   loopback destination 127.x.y.z:PORT), files (ARG DIR:
 *                                   every i creates, closes and unlinks DIR/f<i>.pem: distinct
 *                                   critical events the kernel never folds), spawn (ARG PATH),
 *                                   dns (ARG PORT: a DNS query for a distinct name to 127.0.0.1)
 *
 * ns_per_op is this thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user + system, including the BPF
 * programs run in its syscalls) per operation: time it spent preempted by other tasks on a shared
 * machine is not counted, which makes it far steadier than wall time.
 * The rate modes print "ops=<n> seconds=<elapsed> late_max_ns=<worst lag behind schedule>".
 * Pacing: see paced().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int do_open(const char *path)
{
	int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return fd;
}

static struct sockaddr_in target;
static int sock = -1;

static void do_connect(void)
{
	/* A refused TCP connect leaves the socket reusable; open a new one if it is not. */
	if (sock < 0)
		sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(sock, (struct sockaddr *)&target, sizeof(target)) == 0 ||
	    (errno != ECONNREFUSED && errno != ECONNRESET)) {
		close(sock);
		sock = -1;
	}
}

/* Distinct loopback destinations: 127.0.0.1 + i (all of 127/8 is loopback, nothing listens). */
static void do_connect_distinct(uint64_t i, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(i % 0xfffffd)) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		connect(s, (struct sockaddr *)&a, sizeof(a));
		close(s);
	}
}

static void do_create(const char *dir, const char *prefix, uint64_t i, int keep)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s%llu.pem", dir, prefix, (unsigned long long)i);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	if (!keep)
		unlink(path);
}

static void do_spawn(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* A DNS query (RFC 1035) for q<i>.bench.test, type A, sent to 127.0.0.1:port; the reply, if any,
 * is read without waiting so the socket buffer never fills. */
static int dns_sock = -1;

static void do_dns(uint64_t i, uint16_t port)
{
	unsigned char pkt[128], buf[512];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char label[32];
	int n = snprintf(label, sizeof(label), "q%llu", (unsigned long long)i);
	size_t off = 12;
	if (dns_sock < 0)
		dns_sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	memset(pkt, 0, 12);
	pkt[0] = (unsigned char)(i >> 8);
	pkt[1] = (unsigned char)i;
	pkt[2] = 0x01;		/* recursion desired */
	pkt[5] = 1;		/* one question */
	pkt[off++] = (unsigned char)n;
	memcpy(pkt + off, label, (size_t)n);
	off += (size_t)n;
	memcpy(pkt + off, "\x05" "bench" "\x04" "test" "\x00" "\x00\x01" "\x00\x01", 16);
	off += 16;
	sendto(dns_sock, pkt, off, 0, (struct sockaddr *)&a, sizeof(a));
	while (recv(dns_sock, buf, sizeof(buf), 0) > 0)
		;
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen open PATH N | getppid|vmread|signal - N | connect PORT N | "
			"rename DIR N | spawn PATH N | nopen PATH N | dopen DIR N | "
			"rate PATH RATE SECONDS | crate PORT RATE SECONDS | srate PATH RATE SECONDS | "
			"flood PORT SECONDS | paced distinct|files|spawn|dns ARG RATE SECONDS spin|sleep\n");
	exit(2);
}

static uint64_t tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000ull + (uint64_t)tv->tv_usec * 1000ull;
}

/* N x one syscall that a probe other than the file one watches, timed like `open`:
 * getppid (only the compat raw_tp/sys_exit probe sees it), process_vm_readv of ourselves
 * (memory probe), kill of ourselves with a blocked signal (tamper probe on signal_generate),
 * rename between two names in ARG (link probes). */
static int op_cost(const char *mode, const char *arg, long n)
{
	char a[4096], b[4096], src[64], dst[64];
	struct iovec local = { .iov_base = dst, .iov_len = sizeof(dst) };
	struct iovec remote = { .iov_base = src, .iov_len = sizeof(src) };
	int which = !strcmp(mode, "getppid") ? 0 : !strcmp(mode, "vmread") ? 1 :
		    !strcmp(mode, "signal") ? 2 : 3;
	sigset_t set;

	memset(src, 1, sizeof(src));
	if (which == 2) {
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
	}
	if (which == 3) {
		snprintf(a, sizeof(a), "%s/rename-a", arg);
		snprintf(b, sizeof(b), "%s/rename-b", arg);
		int fd = open(a, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			fprintf(stderr, "loadgen: cannot create %s: %s\n", a, strerror(errno));
			return 1;
		}
		close(fd);
	}
	uint64_t c0 = 0;
	for (long i = -(n / 10 + 1); i < n; i++) {	/* negative i: warm-up */
		if (i == 0)
			c0 = cpu_ns();
		switch (which) {
		case 0:
			syscall(SYS_getppid);
			break;
		case 1:
			process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
			break;
		case 2:
			kill(getpid(), SIGUSR1);
			break;
		default:
			(i & 1) ? rename(b, a) : rename(a, b);
		}
	}
	printf("ns_per_op=%.3f wall_ns_per_op=0\n", (double)(cpu_ns() - c0) / (double)n);
	if (which == 3) {
		unlink(a);
		unlink(b);
	}
	return 0;
}

/* OP at RATE per second for SECONDS. Operation i is due at start + i/RATE; the generator spins
 * until it is due (pinned to its own CPU, spinning is cheaper and more uniform than sleeping at
 * these rates) or, with `sleepy`, sleeps (low rates on a CPU that other load shares), and
 * catches up without bursts beyond what it missed. */
static int paced(const char *op, const char *arg, double rate, double seconds, int sleepy)
{
	char dir[4096] = "";
	uint16_t port = 0;
	int kind = !strcmp(op, "open") ? 0 : !strcmp(op, "connect") ? 1 : !strcmp(op, "distinct") ? 2 :
		   !strcmp(op, "spawn") ? 3 : !strcmp(op, "dns") ? 4 : !strcmp(op, "files") ? 5 : -1;

	if (kind < 0 || rate <= 0 || seconds <= 0)
		usage();
	if (kind == 1) {
		memset(&target, 0, sizeof(target));
		target.sin_family = AF_INET;
		target.sin_port = htons((uint16_t)atoi(arg));
		target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (kind == 2) {
		const char *colon = strrchr(arg, ':');
		if (!colon)
			usage();
		snprintf(dir, sizeof(dir), "%.*s", (int)(colon - arg), arg);
		port = (uint16_t)atoi(colon + 1);
	}
	if (kind == 4)
		port = (uint16_t)atoi(arg);
	uint64_t total = (uint64_t)(rate * seconds);
	double interval = 1e9 / rate;
	uint64_t late_max = 0, t0 = now_ns(), t;
	for (uint64_t i = 0; i < total; i++) {
		uint64_t due = t0 + (uint64_t)((double)i * interval);
		if (sleepy && (t = now_ns()) < due) {
			struct timespec ts = { .tv_sec = due / 1000000000ull,
					       .tv_nsec = due % 1000000000ull };
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
		while ((t = now_ns()) < due)
			;
		if (t - due > late_max)
			late_max = t - due;
		switch (kind) {
		case 0:
			(void)do_open(arg);
			break;
		case 1:
			do_connect();
			break;
		case 2:
			(i & 1) ? do_connect_distinct(i / 2, port) : do_create(dir, "x", i / 2, 0);
			break;
		case 3:
			do_spawn(arg);
			break;
		case 4:
			do_dns(i, port);
			break;
		default:
			do_create(arg, "f", i, 0);
		}
	}
	uint64_t t1 = now_ns();
	printf("ops=%llu seconds=%.6f late_max_ns=%llu\n", (unsigned long long)total,
	       (double)(t1 - t0) / 1e9, (unsigned long long)late_max);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		usage();
	const char *mode = argv[1];
	int is_net = !strcmp(mode, "connect") || !strcmp(mode, "crate") || !strcmp(mode, "flood");

	if (is_net) {
		memset(&target, 0, sizeof(target));
		target.sin_family = AF_INET;
		target.sin_port = htons((uint16_t)atoi(argv[2]));
		target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (!strcmp(mode, "open") || !strcmp(mode, "connect")) {
		long n = atol(argv[3]);
		if (n <= 0)
			usage();
		if (!is_net && do_open(argv[2]) < 0) {
			fprintf(stderr, "loadgen: cannot open %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		/* warm-up */
		for (long i = 0; i < n / 10 + 1; i++)
			is_net ? do_connect() : (void)do_open(argv[2]);
		uint64_t c0 = cpu_ns(), t0 = now_ns();
		for (long i = 0; i < n; i++)
			is_net ? do_connect() : (void)do_open(argv[2]);
		uint64_t t1 = now_ns(), c1 = cpu_ns();
		printf("ns_per_op=%.3f wall_ns_per_op=%.3f\n", (double)(c1 - c0) / (double)n,
		       (double)(t1 - t0) / (double)n);
		return 0;
	}
	if (!strcmp(mode, "getppid") || !strcmp(mode, "vmread") || !strcmp(mode, "signal") ||
	    !strcmp(mode, "rename")) {
		long n = atol(argv[3]);
		if (n <= 0)
			usage();
		return op_cost(mode, argv[2], n);
	}
	if (!strcmp(mode, "spawn")) {
		long n = atol(argv[3]);
		struct rusage s0, c0, s1, c1;
		if (n <= 0)
			usage();
		do_spawn(argv[2]);
		getrusage(RUSAGE_SELF, &s0);
		getrusage(RUSAGE_CHILDREN, &c0);
		uint64_t t0 = now_ns();
		for (long i = 0; i < n; i++)
			do_spawn(argv[2]);
		uint64_t t1 = now_ns();
		getrusage(RUSAGE_SELF, &s1);
		getrusage(RUSAGE_CHILDREN, &c1);
		double cpu = (double)(tv_ns(&s1.ru_utime) + tv_ns(&s1.ru_stime) + tv_ns(&c1.ru_utime) +
				      tv_ns(&c1.ru_stime)) -
			     (double)(tv_ns(&s0.ru_utime) + tv_ns(&s0.ru_stime) + tv_ns(&c0.ru_utime) +
				      tv_ns(&c0.ru_stime));
		printf("ns_per_op=%.3f wall_ns_per_op=%.3f\n", cpu / (double)n, (double)(t1 - t0) / (double)n);
		return 0;
	}
	if (!strcmp(mode, "nopen") || !strcmp(mode, "dopen")) {
		long n = atol(argv[3]);
		if (n <= 0)
			usage();
		uint64_t t0 = now_ns();
		for (long i = 0; i < n; i++) {
			if (mode[0] == 'n')
				(void)do_open(argv[2]);
			else
				do_create(argv[2], "d", (uint64_t)i, 1);
		}
		printf("ops=%ld seconds=%.6f\n", n, (double)(now_ns() - t0) / 1e9);
		return 0;
	}
	if (!strcmp(mode, "flood")) {
		double seconds = atof(argv[3]);
		if (seconds <= 0)
			usage();
		uint64_t n = 0, c0 = cpu_ns(), t0 = now_ns(), t1 = t0;
		uint64_t end = t0 + (uint64_t)(seconds * 1e9);
		/* The clock is read once per 64 connects (~170 us): it costs nothing next to them. */
		while (t1 < end) {
			for (int k = 0; k < 64; k++)
				do_connect();
			n += 64;
			t1 = now_ns();
		}
		uint64_t c1 = cpu_ns();
		printf("ops=%llu seconds=%.6f ns_per_op=%.3f\n", (unsigned long long)n,
		       (double)(t1 - t0) / 1e9, (double)(c1 - c0) / (double)n);
		return 0;
	}
	if (!strcmp(mode, "rate") || !strcmp(mode, "crate") || !strcmp(mode, "srate")) {
		if (argc < 5)
			usage();
		return paced(is_net ? "connect" : "open", argv[2], atof(argv[3]), atof(argv[4]),
			     !strcmp(mode, "srate"));
	}
	if (!strcmp(mode, "paced")) {
		if (argc < 7)
			usage();
		return paced(argv[2], argv[3], atof(argv[4]), atof(argv[5]), !strcmp(argv[6], "sleep"));
	}
	usage();
	return 2;
}
