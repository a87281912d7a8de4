/* SPDX-License-Identifier: GPL-2.0 */
/* Test-only producer for tests/kernel/test_ringbuf.py: a BPF_PROG_TYPE_SYSCALL program, run with
 * BPF_PROG_TEST_RUN, that writes bee-trace records (struct event, so the real record size) into
 * a real BPF ring buffer exactly as told: how many, which cpu/seq, which to discard, one held
 * reserved (busy) until the test releases it, or one of a wrong size. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "events.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);      /* the test sets its own size before load */
} ring SEC(".maps");

/* release[0] != 0 lets a held record be committed. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} release SEC(".maps");

/* The test-run context: in- and out-fields (the kernel copies it back after the run). */
struct feed_args {
	__u32 count;          /* records to attempt */
	__u32 cpu;            /* h.cpu of every record */
	__u64 first_seq;      /* h.seq of attempt i is first_seq + i (failed attempts keep theirs) */
	__u32 discard_every;  /* discard attempt i when (i + 1) % discard_every == 0 */
	__u32 hold_first;     /* reserve one record first and keep it busy until released */
	__u32 short_record;   /* reserve one record of the wrong size first (then submit it) */
	__u32 tag;            /* h.tid of every record: which call wrote it */
	/* out */
	__u32 reserved;       /* records reserved (committed or discarded) */
	__u32 failed;         /* reservations refused: ring full */
	__u32 discarded;
	__u32 released;       /* 1: the held record was released by the test, 0: spin timed out */
};

struct loop_ctx {
	struct feed_args *a;
	__u32 reserved, failed, discarded;
};

static __always_inline void fill(struct event *e, struct feed_args *a, __u32 i)
{
	e->h.type = EV_NET;
	e->h.lane = LANE_BULK;
	e->h.flags = 0;
	e->h.cpu = a->cpu;
	e->h.seq = a->first_seq + i;
	e->h.ts_ns = i;
	e->h.tgid = i;        /* the attempt index, so the test can say which records arrived */
	e->h.tid = a->tag;
}

static long feed_one(__u32 i, void *data)
{
	struct loop_ctx *lc = data;
	struct feed_args *a = lc->a;
	struct event *e;

	if (i >= a->count)
		return 1;
	e = bpf_ringbuf_reserve(&ring, sizeof(*e), 0);
	if (!e) {
		lc->failed++;
		return 0;
	}
	lc->reserved++;
	fill(e, a, i);
	if (a->discard_every && (i + 1) % a->discard_every == 0) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		lc->discarded++;
	} else {
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	}
	return 0;
}

static long wait_release(__u32 i, void *data)
{
	__u32 zero = 0, *flag = bpf_map_lookup_elem(&release, &zero);

	if (flag && *flag) {
		*(__u32 *)data = 1;
		return 1;
	}
	return 0;
}

SEC("syscall")
int feed(struct feed_args *ctx)
{
	struct feed_args a = *ctx;
	struct loop_ctx lc = { .a = &a };
	struct event *held = 0;
	__u32 released = 0;

	if (a.short_record) {
		struct event_header *h = bpf_ringbuf_reserve(&ring, sizeof(*h), 0);

		if (h) {
			__builtin_memset(h, 0, sizeof(*h));
			bpf_ringbuf_submit(h, BPF_RB_NO_WAKEUP);
		}
	}
	if (a.hold_first) {
		held = bpf_ringbuf_reserve(&ring, sizeof(*held), 0);
		if (!held)
			return 1;
		fill(held, &a, 0xffff);
	}
	bpf_loop(4096, feed_one, &lc, 0);
	if (held) {
		/* Spin (bounded: 8 x 8 M iterations, well under a second) until the test has looked at
		 * the ring with this record still busy and sets release[0]. */
		for (int k = 0; k < 8 && !released; k++)
			bpf_loop(1 << 23, wait_release, &released, 0);
		bpf_ringbuf_submit(held, BPF_RB_NO_WAKEUP);
	}
	ctx->reserved = lc.reserved;
	ctx->failed = lc.failed;
	ctx->discarded = lc.discarded;
	ctx->released = released;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
