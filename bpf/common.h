/* SPDX-License-Identifier: GPL-2.0 */
/* Maps and helpers shared by every kernel program: the two rings, counters, settings and the
 * emit path (sequence numbers, drop accounting, wake-up policy). */
#ifndef BEE_COMMON_H
#define BEE_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

/* Every program file is compiled in one translation unit (bee_trace.bpf.c), so each map is
 * defined once and shared by all programs. */
#define BEE_MAP

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} ring_critical SEC(".maps");

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} ring_bulk SEC(".maps");

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} counters SEC(".maps");

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} settings SEC(".maps");

/* Slot FILTER_ALL: every pattern; slot FILTER_HIGH: the highest-tier patterns (keys, cloud
 * credentials), which keep the critical ring's headroom. */
BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct file_filter);
} file_filter SEC(".maps");

/* Per-CPU scratch for a path: 8 zero bytes before it so an 8-byte load ending at the last
 * character is always in bounds and reads zeros for short paths; slack after it so a 256-byte
 * chunk copied from any offset below SCRATCH_LEN stays inside. */
#define SCRATCH_LEN 4096
struct path_scratch {
	__u64 zero;
	char buf[SCRATCH_LEN + 272];
};

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} path_scratch SEC(".maps");

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct agg_key);
	__type(value, struct agg_value);
} agg SEC(".maps");

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rate_key);
	__type(value, struct rate_value);
} rate_buckets SEC(".maps");

/* First-of-key: (process, type, key) already sent on the bulk lane. An eviction only means a key
 * may count as new once more (one extra record), never that a new key is taken for an old one.
 * Sized from advanced.ebpf_params.max_entries_per_map. */
BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10000);
	__type(key, struct agg_key);
	__type(value, __u8);
} seen_keys SEC(".maps");

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct blocked_v4_key);
	__type(value, __u8);
} blocked_v4 SEC(".maps");

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct blocked_v6_key);
	__type(value, __u8);
} blocked_v6 SEC(".maps");

/* Is this destination (family, address bytes as in net_payload.daddr) on the block list? */
static __always_inline int dest_blocked(__u16 family, const __u8 *daddr)
{
	if (family == 2 /* AF_INET */) {
		struct blocked_v4_key k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, daddr, 4);
		return bpf_map_lookup_elem(&blocked_v4, &k) != 0;
	}
	if (family == 10 /* AF_INET6 */) {
		struct blocked_v6_key k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, daddr, 16);
		return bpf_map_lookup_elem(&blocked_v6, &k) != 0;
	}
	return 0;
}

static __always_inline struct settings *get_settings(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&settings, &zero);
}

static __always_inline struct counters *get_counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&counters, &zero);
}

/* True when the event comes from the agent itself or the probe type is off. */
static __always_inline int skip_event(struct settings *s, __u32 probe)
{
	if (!s || !(s->probes & probe))
		return 1;
	return (__u32)(bpf_get_current_pid_tgid() >> 32) == s->self_tgid;
}

static __always_inline void count_drop(struct counters *c, int lane, int cause)
{
	if (c)
		__sync_fetch_and_add(&c->drops[lane & 1][cause], 1);
}

/* The header every record starts with: the current task's identity. */
static __always_inline void fill_header(struct event *e, int lane, __u8 type, __u64 seq)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	e->h.type = type;
	e->h.lane = lane;
	e->h.flags = 0;
	e->h.cpu = bpf_get_smp_processor_id();
	e->h.seq = seq;
	e->h.ts_ns = bpf_ktime_get_boot_ns();
	e->h.tgid = pid_tgid >> 32;
	e->h.tid = (__u32)pid_tgid;
	e->h.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->h.uid = (__u32)bpf_get_current_uid_gid();
	e->h.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->h.comm, sizeof(e->h.comm));
}

/* Reserve a record on a lane. Every attempt takes a sequence number, so a gap in the numbers a
 * reader sees is exactly a ring-full drop, which is also counted here. */
static __always_inline struct event *reserve_event(struct counters *c, int lane, __u8 type)
{
	struct event *e;
	__u64 seq;

	if (!c)
		return 0;
	seq = __sync_fetch_and_add(&c->seq[lane & 1], 1) + 1;
	if (lane == LANE_CRITICAL)
		e = bpf_ringbuf_reserve(&ring_critical, sizeof(*e), 0);
	else
		e = bpf_ringbuf_reserve(&ring_bulk, sizeof(*e), 0);
	if (!e) {
		count_drop(c, lane, DROP_RING_FULL);
		return 0;
	}
	fill_header(e, lane, type, seq);
	return e;
}

/* The wake-up flag of a bulk record: wake only when the backlog crosses the threshold with
 * this record (`pending`: its bytes when not yet in the ring). A stalled reader must not turn
 * every later record into a wake-up (~9 us each); the reader drains until empty, and its epoll
 * timeout covers anything else. An idle reader polls slowly: the first record into an empty
 * ring wakes it. */
static __always_inline __u64 bulk_wake_flags(struct settings *s, __u64 pending)
{
	__u64 avail = bpf_ringbuf_query(&ring_bulk, BPF_RB_AVAIL_DATA) + pending;
	__u64 thr = s ? s->bulk_wake_bytes : 0;
	__u64 rec = sizeof(struct event) + 8;

	if ((avail >= thr && avail < thr + rec) || (s && s->bulk_idle && avail <= rec))
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Critical records wake the reader at once; bulk records only past a backlog threshold (the
 * reader's epoll timeout bounds their latency), which is what keeps context switches low. */
static __always_inline void submit_event(struct counters *c, struct settings *s, struct event *e)
{
	int lane = e->h.lane;

	bpf_ringbuf_submit(e, lane == LANE_CRITICAL ? 0 : bulk_wake_flags(s, 0));
	if (c)
		__sync_fetch_and_add(&c->emitted[lane & 1], 1);
}

/* Admission of a bulk record, cheapest check first; every refusal is counted by cause.
 * The first record of each new (process, type, key) bypasses shedding, sampling and rate limits
 * (a flood of old keys cannot hide a new destination); the caller delivers it with
 * bulk_deliver_first (critical.h), which spills it when the ring is full. key 0: no key (never
 * folded, never first).
 * Returns 0 to drop; otherwise 1 (2 for a first-of-key), with *slot set when the caller must
 * store the record's payload as the sample of a new aggregation window (agg_store_sample after
 * filling the record). For any other admission the caller reserves its record next. */
static __always_inline int bulk_admit(struct counters *c, struct settings *s, __u32 type,
				      __u32 prio, __u64 key, struct agg_value **slot)
{
	__u32 t = type & (NR_KINDS - 1);
	struct agg_key fk = { .tgid = bpf_get_current_pid_tgid() >> 32, .type = t, .key = key };
	int first = 0;
	__u64 now, n;

	*slot = 0;
	if (!c || !s)
		return 0;
	if (key && !bpf_map_lookup_elem(&seen_keys, &fk)) {
		__u8 one = 1;

		bpf_map_update_elem(&seen_keys, &fk, &one, BPF_ANY);
		first = 1;
	}
	/* Backpressure from userspace: shed at the source, low first, high never; a random half of
	 * medium at level 2 (a draw, so no rhythm of events can choose which half goes). */
	if (!first && s->shed_level && prio == PRIO_LOW) {
		count_drop(c, LANE_BULK, DROP_SHED);
		return 0;
	}
	if (!first && s->shed_level >= 2 && prio == PRIO_MEDIUM && (bpf_get_prandom_u32() & 1)) {
		count_drop(c, LANE_BULK, DROP_SHED);
		return 0;
	}
	now = bpf_ktime_get_ns();
	/* Aggregation first: folded events are counted per key, not lost. key 0: never fold. */
	if (s->agg_window_ns && key) {
		struct agg_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .type = t, .key = key };
		struct agg_value *v = bpf_map_lookup_elem(&agg, &k);

		if (v && now - v->window_start < s->agg_window_ns) {
			v->count++;
			count_drop(c, LANE_BULK, DROP_AGGREGATED);
			return 0;
		}
		if (!v) {
			struct agg_value fresh = {};

			bpf_map_update_elem(&agg, &k, &fresh, BPF_ANY);
			v = bpf_map_lookup_elem(&agg, &k);
		}
		if (v) {
			v->window_start = now;
			*slot = v;
		}
	}
	if (first)
		return 2;
	n = s->sample_every[t];
	if (n > 1 && c->sample_tick[t]++ % n) {
		count_drop(c, LANE_BULK, DROP_SAMPLED);
		goto refused;
	}
	n = s->rate_per_sec[t];
	if (n) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct rate_key rk = { .type = t };
		struct rate_value *rv;

		rk.sid = BPF_CORE_READ(task, signal, pids[PIDTYPE_SID], numbers[0].nr);
		rv = bpf_map_lookup_elem(&rate_buckets, &rk);
		if (!rv) {
			struct rate_value full = { .tokens = n * 1000000000ULL, .last_ns = now };

			bpf_map_update_elem(&rate_buckets, &rk, &full, BPF_ANY);
			rv = bpf_map_lookup_elem(&rate_buckets, &rk);
		}
		if (rv) {
			__u64 cap = n * 1000000000ULL;
			__u64 tokens = rv->tokens + (now - rv->last_ns) * n;

			rv->last_ns = now;
			if (tokens > cap)
				tokens = cap;
			if (tokens < 1000000000ULL) {
				rv->tokens = tokens;
				count_drop(c, LANE_BULK, DROP_RATE_LIMITED);
				goto refused;
			}
			rv->tokens = tokens - 1000000000ULL;
		}
	}
	return 1;
refused:
	/* No first record went out for this window: the next identical event opens it again. */
	if (*slot)
		(*slot)->window_start = 0;
	*slot = 0;
	return 0;
}

/* The first record of an aggregation window is the one the summary counts will refer to. */
static __always_inline void agg_store_sample(struct agg_value *v, struct event *e)
{
	if (!v)
		return;
	v->uid = e->h.uid;
	v->ppid = e->h.ppid;
	__builtin_memcpy(v->comm, e->h.comm, sizeof(v->comm));
	__builtin_memcpy(v->sample, &e->net, sizeof(v->sample));
}

#endif
