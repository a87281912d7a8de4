/* SPDX-License-Identifier: GPL-2.0 */
/* Delivery of security events on the critical lane so that an attacker cannot choose what is
 * lost: identical events of a process are folded into a count per window (the first goes out at
 * once); an event the ring cannot take is spilled into a bounded map the reader drains on every
 * wake-up and tick; lower-tier events leave the ring's last half to the highest tier. Events are
 * built in a per-CPU scratch and copied into the ring (bpf_ringbuf_output), so the same record
 * can go to the ring or the spill map. */
#ifndef BEE_CRITICAL_H
#define BEE_CRITICAL_H

#include "common.h"

/* When each key's current window began. An LRU: a flood of new keys pushes old ones out,
 * which only means their next event is sent again. */
BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct fold_key);
	__type(value, __u64);
} crit_fold SEC(".maps");

/* The counts of folded events, never in an LRU: nothing pushes a count out before the reader
 * has read it. Full, a repeat is sent as a record instead (folds_full). */
BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fold_key);
	__type(value, struct fold_value);
} fold_counts SEC(".maps");

/* Allocated as used (no preallocation): sized large (userspace sets it), costs only what spills. */
BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fold_key);
	__type(value, struct spill_value);
} spill SEC(".maps");

/* Entries ever put in the spill map (all CPUs); minus settings.spill_drained = in use. */
BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} spill_inserted SEC(".maps");

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct spill_value);
} crit_scratch SEC(".maps");

/* Fold-key fields (bee_trace/critical.py computes the same): the uid is part of what an event
 * says, so a process that changes credentials between two identical calls gets two events. */
static __always_inline __u64 fold_mem_a(__u32 tech, __u64 request)
{
	return tech | (request & 0xffffff) << 8 | (__u64)(__u32)bpf_get_current_uid_gid() << 32;
}

static __always_inline __u64 fold_file_b(__u32 dev, int write)
{
	return dev | (__u64)(write & 1) << 32 | (__u64)((__u32)bpf_get_current_uid_gid() & 0x7fffffff) << 33;
}

/* Count one folded event of key k; 0 when fold_counts is full (the event is then sent). */
static __always_inline int fold_count(struct counters *c, struct fold_key *k, __u64 now)
{
	struct fold_value *v, first = { .count = 1, .last_ns = now };

	v = bpf_map_lookup_elem(&fold_counts, k);
	if (!v && bpf_map_update_elem(&fold_counts, k, &first, BPF_NOEXIST) == 0)
		return 1;
	if (!v)   /* another CPU inserted it meanwhile, or the map is full */
		v = bpf_map_lookup_elem(&fold_counts, k);
	if (!v) {
		if (c)
			__sync_fetch_and_add(&c->folds_full, 1);
		return 0;
	}
	__sync_fetch_and_add(&v->count, 1);
	v->last_ns = now;
	return 1;
}

/* 1 when an identical event of this process already went out in the current window: it is
 * counted (DROP_FOLDED, and in fold_counts for the reader), not sent. */
static __always_inline int crit_folded(struct counters *c, struct settings *s, struct fold_key *k)
{
	__u64 *start, now;

	if (!s || !s->crit_fold_ns)
		return 0;
	now = bpf_ktime_get_ns();
	start = bpf_map_lookup_elem(&crit_fold, k);
	if (start && now - *start < s->crit_fold_ns) {
		if (!fold_count(c, k, now))
			return 0;
		count_drop(c, LANE_CRITICAL, DROP_FOLDED);
		return 1;
	}
	if (start)
		*start = now;
	else
		bpf_map_update_elem(&crit_fold, k, &now, BPF_ANY);
	return 0;
}

/* A record in the per-CPU scratch, header filled, for `lane`; 0 when the counters are missing.
 * Built there, not reserved in the ring, so it can go to the ring or the spill map. */
static __always_inline struct event *scratch_event(struct counters *c, int lane, __u8 type)
{
	struct spill_value *sv;
	__u32 zero = 0;
	__u64 seq;

	sv = bpf_map_lookup_elem(&crit_scratch, &zero);
	if (!c || !sv)
		return 0;
	seq = __sync_fetch_and_add(&c->seq[lane & 1], 1) + 1;
	fill_header(&sv->ev, lane, type, seq);
	sv->count = 1;
	return &sv->ev;
}

static __always_inline struct event *crit_begin(struct counters *c, __u8 type)
{
	return scratch_event(c, LANE_CRITICAL, type);
}

/* The quarters of the spill map each tier may fill: the highest tier all of it, the lower
 * critical tier three, first-of-key bulk records one. A flood of new destinations cannot take
 * the room of a watched file, nor certificates that of a key (userspace sizes the map so that
 * the critical lane keeps at least what it had before bulk records could spill). */
static __always_inline __u64 spill_quarters(__u8 tier)
{
	return tier == TIER_HIGH ? 4 : tier == TIER_LOW ? 3 : 1;
}

/* The scratch record into the spill map under `k`, counted on its lane: 0 when kept (a new
 * entry, or one more of an identical kept one), -1 when the tier's share is full. */
static __always_inline int spill_store(struct counters *c, struct settings *s, int lane,
				       struct fold_key *k, __u8 tier)
{
	struct spill_value *sv, *old;
	__u32 zero = 0;
	__u64 *inserted;

	old = bpf_map_lookup_elem(&spill, k);
	if (old) {
		__sync_fetch_and_add(&old->count, 1);
		count_drop(c, lane, DROP_SPILLED);
		return 0;
	}
	sv = bpf_map_lookup_elem(&crit_scratch, &zero);
	inserted = bpf_map_lookup_elem(&spill_inserted, &zero);
	if (!sv || !inserted || !s)
		return -1;
	if (tier != TIER_HIGH &&
	    (*inserted - s->spill_drained) * 4 >= (__u64)s->spill_cap * spill_quarters(tier))
		return -1;
	if (bpf_map_update_elem(&spill, k, sv, BPF_NOEXIST))
		return -1;
	__sync_fetch_and_add(inserted, 1);
	count_drop(c, lane, DROP_SPILLED);
	return 0;
}

/* Into the ring; when it is full (or past half for TIER_LOW), into the spill map under `k`
 * (0: not spillable, e.g. continuations). Returns 0 when the record will reach the reader. */
static __always_inline int crit_deliver(struct counters *c, struct settings *s, struct event *e,
					struct fold_key *k, __u8 tier)
{
	if (tier == TIER_LOW && k &&
	    bpf_ringbuf_query(&ring_critical, BPF_RB_AVAIL_DATA) * 2 >
		    bpf_ringbuf_query(&ring_critical, BPF_RB_RING_SIZE))
		goto spill;
	if (!bpf_ringbuf_output(&ring_critical, e, sizeof(*e), 0)) {
		__sync_fetch_and_add(&c->emitted[LANE_CRITICAL], 1);
		return 0;
	}
	if (!k) {
		count_drop(c, LANE_CRITICAL, DROP_RING_FULL);
		return -1;
	}
spill:
	if (!spill_store(c, s, LANE_CRITICAL, k, tier))
		return 0;
	count_drop(c, LANE_CRITICAL, DROP_SPILL_FULL);
	return -1;
}

/* The first record of a new bulk key (built with scratch_event): into the bulk ring, or when
 * it is full into the spill map, reported late instead of lost, so a flood of new destinations
 * cannot hide the one that matters. Lost (ring_full and first_lost) only when the bulk share
 * of the map is full too; its key is then forgotten, so the key's next event is a first again.
 * Returns 0 when the record will reach the reader. */
static __always_inline int bulk_deliver_first(struct counters *c, struct settings *s,
					      struct event *e, struct agg_key *fk)
{
	struct fold_key k = { .tgid = fk->tgid, .type = fk->type, .a = fk->key, .b = LANE_BULK };

	if (!bpf_ringbuf_output(&ring_bulk, e, sizeof(*e), bulk_wake_flags(s, sizeof(*e) + 8))) {
		__sync_fetch_and_add(&c->emitted[LANE_BULK], 1);
		return 0;
	}
	if (!spill_store(c, s, LANE_BULK, &k, TIER_BULK))
		return 0;
	count_drop(c, LANE_BULK, DROP_RING_FULL);
	count_drop(c, LANE_BULK, DROP_FIRST_LOST);
	bpf_map_delete_elem(&seen_keys, fk);
	return -1;
}

/* A record that is never folded (lifecycle, sockets, io_uring set-up): spilled under a key of
 * its own (process, type, time, sequence) when the ring is full, like a first event. */
static __always_inline int crit_deliver_unique(struct counters *c, struct settings *s,
					       struct event *e)
{
	struct fold_key k = { .tgid = e->h.tgid, .type = e->h.type, .a = e->h.ts_ns, .b = e->h.seq };

	return crit_deliver(c, s, e, &k, TIER_HIGH);
}

#endif
