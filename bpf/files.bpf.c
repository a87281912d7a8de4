// SPDX-License-Identifier: GPL-2.0
/* Secret-file and procfs monitor, decided at syscall exit on the opened struct file: the real
 * path (dentry walk up to the task's root), read/write from f_mode, and (dev, ino). The caller's
 * string is never trusted: symlinks, hard links, `..`, /proc/self/fd/N, unfaulted pages and
 * io_uring/compat opens all end in the same struct file. Cheap first: a watched-inode lookup
 * and the "/parent/basename" filter keys; only candidates pay for the full walk. */
#include "common.h"
#include "file_match.h"
#include "procfs.h"
#include "open_exit.h"

/* Keeps the record layouts in the object's BTF, where tests compare them with records.py. */
const struct event *btf_anchor_event __attribute__((unused));

static __always_inline const char *arg_ptr(unsigned long v)
{
	return (const char *)v;
}

SEC("tp/syscalls/sys_exit_openat")
int open_openat(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(t);

	return open_exit(t, ctx->ret, ctx->id, ORIGIN_SYSCALL, arg_ptr(r->si));
}

SEC("tp/syscalls/sys_exit_open")
int open_open(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(t);

	return open_exit(t, ctx->ret, ctx->id, ORIGIN_SYSCALL, arg_ptr(r->di));
}

SEC("tp/syscalls/sys_exit_creat")
int open_creat(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(t);

	return open_exit(t, ctx->ret, ctx->id, ORIGIN_SYSCALL, arg_ptr(r->di));
}

SEC("tp/syscalls/sys_exit_openat2")
int open_openat2(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(t);

	return open_exit(t, ctx->ret, ctx->id, ORIGIN_SYSCALL, arg_ptr(r->si));
}

SEC("tp/syscalls/sys_exit_open_by_handle_at")
int open_by_handle(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(bpf_get_current_task_btf(), ctx->ret, ctx->id, ORIGIN_SYSCALL, 0);
}

