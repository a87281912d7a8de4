/* SPDX-License-Identifier: GPL-2.0 */
/* Tamper evidence: one helper that any program calls when an act is aimed at the agent itself
 * (signals, bpf() on our objects, ptrace / process_vm_* / pidfd_getfd, /proc/<agent>/... opens).
 * Records go on the critical lane through critical.h: never sampled, limited or shed; spilled
 * (highest tier) when the ring is full, e.g. while the agent is stopped. They are built in
 * critical.h's per-CPU scratch: call emit_tamper instead of, not while, building another
 * critical record. */
#ifndef BEE_TAMPER_H
#define BEE_TAMPER_H

#include "common.h"
#include "critical.h"

/* Is `tgid` the agent? (0 until userspace wrote its settings: nothing is the agent then.) */
static __always_inline int is_agent(struct settings *s, __u32 tgid)
{
	return s && s->self_tgid && tgid == s->self_tgid;
}

/* Reserve a tamper record with its fields set; the caller may add more (signal, path) before
 * tamper_submit. 0 when the current process is the agent or the ring is full (counted). */
static __always_inline struct event *tamper_reserve(__u32 rule, __u32 target_kind,
						    __u32 target_pid, __u64 detail, __u32 cmd)
{
	struct settings *s = get_settings();
	struct counters *c;
	struct event *e;

	if (!s || is_agent(s, bpf_get_current_pid_tgid() >> 32))
		return 0;
	c = get_counters();
	e = crit_begin(c, EV_TAMPER);
	if (!e)
		return 0;
	__builtin_memset(&e->tamper, 0, sizeof(e->tamper));
	e->tamper.rule = rule;
	e->tamper.target_kind = target_kind;
	e->tamper.target_pid = target_pid;
	e->tamper.detail = detail;
	e->tamper.cmd = cmd;
	return e;
}

static __always_inline void tamper_submit(struct event *e)
{
	/* The spill key: the same act by the same process is one spill entry with a count. */
	struct fold_key k = {
		.tgid = e->h.tgid,
		.type = EV_TAMPER,
		.a = e->tamper.rule | (__u64)e->tamper.signal << 8 | (__u64)e->tamper.cmd << 16 |
		     (__u64)e->tamper.target_kind << 48,
		.b = e->tamper.detail ^ ((__u64)e->tamper.target_pid << 32),
	};

	crit_deliver(get_counters(), get_settings(), e, &k, TIER_HIGH);
}

/* Report an act aimed at the agent: rule (enum tamper_rule), what of it (enum tamper_target),
 * the agent thread, a detail (object id, ptrace request) and a command (bpf cmd, technique). */
static __always_inline int emit_tamper(__u32 rule, __u32 target_kind, __u32 target_pid,
				       __u64 detail, __u32 cmd)
{
	struct event *e = tamper_reserve(rule, target_kind, target_pid, detail, cmd);

	if (e)
		tamper_submit(e);
	return 0;
}

#endif
