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

/* arch/x86/entry/syscalls/syscall_64.tbl */
#define NR_OPEN 2
#define NR_CREAT 85
#define NR_OPEN_BY_HANDLE_AT 304
#define NR_OPENAT 257
#define NR_OPEN_TREE 428
#define NR_OPENAT2 437

static __always_inline const char *arg_ptr(unsigned long v)
{
	return (const char *)v;
}

/* Whether this program has anything to do with a syscall exit (native or compat numbering; see
 * compat.bpf.c): the open family only when it returned a new fd, link/rename (links.bpf.c) when
 * they succeeded, the compat memory-access calls whatever they returned. Any other exit costs
 * two loads and this test, no helper call. */
static __always_inline int exit_wanted(unsigned long nr, long ret)
{
	switch (nr) {
	case NR_LINK: case NR_LINKAT: case NR_SYMLINK: case NR_SYMLINKAT: case NR_RENAME:
	case NR_RENAMEAT: case NR_RENAMEAT2:
		return ret == 0;
	case NR32_PTRACE: case NR32_PROCESS_VM_READV: case NR32_PROCESS_VM_WRITEV:
	case NR32_PIDFD_GETFD:
		return 1;
	case NR_OPEN: case NR_CREAT: case NR_OPENAT: case NR_OPENAT2: case NR_OPEN_TREE:
	case NR_OPEN_BY_HANDLE_AT:
	case NR32_OPEN: case NR32_CREAT: case NR32_OPENAT: case NR32_OPEN_BY_HANDLE_AT:
		return ret >= 0;
	}
	return 0;
}

/* Whether a native syscall is an open; its path argument in *upath (0: the call has none). */
static __always_inline int open_path(unsigned long nr, struct pt_regs *r, unsigned long *upath)
{
	switch (nr) {
	case NR_OPEN:
	case NR_CREAT:
		*upath = r->di;
		return 1;
	case NR_OPENAT:
	case NR_OPENAT2:
	case NR_OPEN_TREE:
		*upath = r->si;
		return 1;
	case NR_OPEN_BY_HANDLE_AT:
		*upath = 0;
		return 1;
	}
	return 0;
}

/* One raw tracepoint for every syscall exit, native and compat: cheaper than the per-syscall
 * tracepoints (no perf trace record is built) and compat syscalls never reach those anyway.
 * The registers come from the tracepoint's own argument (no bpf_task_pt_regs call). open_exit
 * is inlined at one call site only: each inlined copy is verified on its own, and six of them
 * (one per open syscall and numbering) made this program most of the start-up time. */
SEC("raw_tp/sys_exit")
int open_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *r = VFS_CAST(struct pt_regs, (void *)ctx->args[0]);
	unsigned long nr = r->orig_ax;
	long ret = (long)ctx->args[1];
	unsigned long upath;
	struct task_struct *t;
	__u8 origin = ORIGIN_SYSCALL;

	if (!exit_wanted(nr, ret))
		return 0;
	t = bpf_get_current_task_btf();
	if (t->thread_info.status & TS_COMPAT) {
		if (!compat_open_path(r, &upath))
			return compat_mem_exit(r);
		origin = ORIGIN_COMPAT;
	} else if (!open_path(nr, r, &upath)) {
		return links_sys_exit(nr, r);
	}
	return open_exit(t, ret, nr, origin, arg_ptr(upath));
}

/* The max-performance profile's alternative to open_sys_exit: per-syscall exit tracepoints tax
 * only the open family, but compat syscalls never reach them (the run says so: a coverage gap).
 * bee_trace/kernel.py loads one set or the other. */
#define OPEN_TP(name, reg)							\
SEC("tp/syscalls/sys_exit_" #name)						\
int opentp_##name(struct trace_event_raw_sys_exit *ctx)				\
{										\
	struct task_struct *t = bpf_get_current_task_btf();			\
	struct pt_regs *r = (struct pt_regs *)bpf_task_pt_regs(t);		\
										\
	return open_exit(t, ctx->ret, ctx->id, ORIGIN_SYSCALL, arg_ptr(r->reg));	\
}

OPEN_TP(open, di)
OPEN_TP(creat, di)
OPEN_TP(openat, si)
OPEN_TP(openat2, si)
OPEN_TP(open_tree, si)

SEC("tp/syscalls/sys_exit_open_by_handle_at")
int opentp_open_by_handle_at(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(bpf_get_current_task_btf(), ctx->ret, ctx->id, ORIGIN_SYSCALL, 0);
}
