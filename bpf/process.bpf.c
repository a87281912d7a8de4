// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle: exec (file name, argv head), fork (new processes, not threads) and exit of
 * whole thread groups. These records feed userspace's process cache, so they travel on the
 * critical lane (never shed): a short-lived attacker still gets exe and ancestry on its events. */
#include "common.h"
#include "vfs.h"
#include "critical.h"

#define ARGS_LEN 120
#define FILENAME_LEN 128

static __always_inline void fill_start(struct event *e, struct task_struct *t)
{
	e->proc.start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
}

/* The new program's real path, from mm->exe_file (not the string execve was given, which may
 * be a symlink or a relative name): what allowed_processes and exclude_processes match. */
static __always_inline int exe_path(struct event *e)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct dpath_buf *w;
	struct file *exe;
	__u32 start = 0, wflags = 0, len;

	exe = t->mm->exe_file;
	if (!exe)
		return 0;
	w = vfs_path(t, exe->f_path.mnt, exe->f_path.dentry, &start, &wflags);
	if (!w || (wflags & DPATH_DETACHED))
		return 0;
	len = DPATH_END - start;
	e->proc.filename_len = len;
	bpf_probe_read_kernel(e->proc.filename, FILENAME_LEN - 1, &w->buf[start & DPATH_MASK]);
	if (len < FILENAME_LEN)
		e->proc.filename[len & (FILENAME_LEN - 1)] = 0;
	return 1;
}

/* Lifecycle records name the processes of every other event: spilled, not lost, in a flood. */
static __always_inline int deliver_lifecycle(struct counters *c, struct settings *s, struct event *e)
{
	crit_deliver_unique(c, s, e);
	return 0;
}

SEC("tp/sched/sched_process_exec")
int proc_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct settings *s = get_settings();
	struct task_struct *t;
	struct counters *c;
	struct event *e;
	__u32 loc, len;
	unsigned long a0, a1;

	if (skip_event(s, PROBE_PROCESS))
		return 0;
	c = get_counters();
	e = crit_begin(c, EV_EXEC);
	if (!e)
		return 0;
	__builtin_memset(&e->proc, 0, sizeof(e->proc));
	t = (struct task_struct *)bpf_get_current_task();
	if (!exe_path(e)) {
		/* no exe_file: the name execve was given */
		loc = ctx->__data_loc_filename;
		len = loc >> 16;
		e->proc.filename_len = len ? len - 1 : 0;
		bpf_probe_read_kernel_str(e->proc.filename, FILENAME_LEN, (void *)ctx + (loc & 0xffff));
	}
	e->proc.parent_tgid = BPF_CORE_READ(t, real_parent, tgid);
	fill_start(e, t);
	a0 = BPF_CORE_READ(t, mm, arg_start);
	a1 = BPF_CORE_READ(t, mm, arg_end);
	if (a1 > a0) {
		len = a1 - a0 > ARGS_LEN ? ARGS_LEN : a1 - a0;
		len &= 0x7f;
		if (len > ARGS_LEN)
			len = ARGS_LEN;
		if (len && !bpf_probe_read_user(e->proc.args, len, (void *)a0))
			e->proc.args_len = len;
		else if (len)
			e->h.flags |= EVF_READ_FAULT;
	}
	return deliver_lifecycle(c, s, e);
}

/* raw_tp gives the child task itself, so threads (same thread group) are told apart. */
SEC("raw_tp/sched_process_fork")
int proc_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct settings *s = get_settings();
	struct counters *c;
	struct event *e;
	__u32 tgid;

	/* The agent's own children are kept: they may be what the tests (or a wrapper) run. */
	if (!s || !(s->probes & PROBE_PROCESS))
		return 0;
	tgid = BPF_CORE_READ(child, tgid);
	if (tgid != BPF_CORE_READ(child, pid))
		return 0;       /* a new thread */
	c = get_counters();
	e = crit_begin(c, EV_FORK);
	if (!e)
		return 0;
	__builtin_memset(&e->proc, 0, sizeof(e->proc));
	e->proc.child_tgid = tgid;
	e->proc.parent_tgid = BPF_CORE_READ(parent, tgid);
	e->proc.start_ns = BPF_CORE_READ(child, start_boottime);
	return deliver_lifecycle(c, s, e);
}

SEC("tp/sched/sched_process_exit")
int proc_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	struct settings *s = get_settings();
	struct task_struct *t;
	struct counters *c;
	struct event *e;

	if (!ctx->group_dead || skip_event(s, PROBE_PROCESS))
		return 0;
	c = get_counters();
	e = crit_begin(c, EV_EXIT);
	if (!e)
		return 0;
	__builtin_memset(&e->proc, 0, sizeof(e->proc));
	t = (struct task_struct *)bpf_get_current_task();
	e->proc.parent_tgid = BPF_CORE_READ(t, real_parent, tgid);
	e->proc.exit_code = BPF_CORE_READ(t, exit_code);
	fill_start(e, t);
	return deliver_lifecycle(c, s, e);
}

