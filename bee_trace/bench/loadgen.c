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
 *
 * ns_per_op is this thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user + system, including the BPF
 * programs run in its syscalls) per operation: time it spent preempted by other tasks on a shared
 * machine is not counted, which makes it far steadier than wall time.
 * The rate modes print "ops=<n> seconds=<elapsed> late_max_ns=<worst lag behind schedule>".
 * Pacing: operation i is due at start + i/RATE; the generator spins until it is due (it is pinned
 * to its own CPU, so spinning is cheaper and more uniform than sleeping at these rates) and
 * catches up without bursts beyond what it missed.
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
#include <sys/socket.h>
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

static void usage(void)
{
	fprintf(stderr, "usage: loadgen open PATH N | getppid - N | connect PORT N | rate PATH RATE SECONDS | "
			"crate PORT RATE SECONDS | srate PATH RATE SECONDS | flood PORT SECONDS\n");
	exit(2);
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
	if (!strcmp(mode, "getppid")) {
		/* A syscall no probe watches: what it gains is the compat probe's early return. */
		long n = atol(argv[3]);
		for (long i = 0; i < n / 10 + 1; i++)
			syscall(SYS_getppid);
		uint64_t c0 = cpu_ns();
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		printf("ns_per_op=%.3f wall_ns_per_op=0\n", (double)(cpu_ns() - c0) / (double)n);
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
		double rate = atof(argv[3]), seconds = atof(argv[4]);
		if (rate <= 0 || seconds <= 0)
			usage();
		int sleepy = !strcmp(mode, "srate");
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
			is_net ? do_connect() : (void)do_open(argv[2]);
		}
		uint64_t t1 = now_ns();
		printf("ops=%llu seconds=%.6f late_max_ns=%llu\n", (unsigned long long)total,
		       (double)(t1 - t0) / 1e9, (unsigned long long)late_max);
		return 0;
	}
	usage();
	return 2;
}
