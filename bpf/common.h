/* SPDX-License-Identifier: GPL-2.0 */
/* Maps and helpers shared by every kernel program: the two rings, counters, settings and the
 * emit path (sequence numbers, drop accounting, wake-up policy). */
#ifndef BEE_COMMON_H
#define BEE_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "events.h"

/* Maps are defined once (in files.bpf.c, which defines BEE_DEFINE_MAPS) and declared extern
 * elsewhere; `bpftool gen object` links the programs into one object that shares them. */
#ifdef BEE_DEFINE_MAPS
#define BEE_MAP
#else
#define BEE_MAP extern
#endif

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

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_filter);
} file_filter SEC(".maps");

/* Per-CPU scratch for a user path: 8 zero bytes before it so an 8-byte load ending at the last
 * character is always in bounds and reads zeros for short paths. */
#define SCRATCH_LEN 4096
struct path_scratch {
	__u64 zero;
	char buf[SCRATCH_LEN + 16];
};

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} path_scratch SEC(".maps");

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
	return e;
}

/* Critical records wake the reader at once; bulk records only past a backlog threshold (the
 * reader's epoll timeout bounds their latency), which is what keeps context switches low. */
static __always_inline void submit_event(struct counters *c, struct settings *s, struct event *e)
{
	int lane = e->h.lane;
	__u64 flags = 0;

	if (lane != LANE_CRITICAL) {
		__u64 avail = bpf_ringbuf_query(&ring_bulk, BPF_RB_AVAIL_DATA);
		flags = (s && avail >= s->bulk_wake_bytes) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(e, flags);
	if (c)
		__sync_fetch_and_add(&c->emitted[lane & 1], 1);
}

#endif
