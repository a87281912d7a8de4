// SPDX-License-Identifier: GPL-2.0
/* 32-bit syscalls (int 0x80 / sysenter, from 32-bit binaries or 64-bit processes) never reach
 * the syscall tracepoints on x86. files.bpf.c's raw_tp/sys_exit sees every syscall and asks
 * here about compat ones: the open family is decided like a native open (open_exit, called once
 * by the caller) and the memory-access syscalls like their native probes. Network syscalls need nothing here: the
 * cgroup hooks see the kernel's copy of every destination. */
#include "common.h"
#include "open_exit.h"

/* arch/x86/entry/syscalls/syscall_32.tbl */
#define NR32_OPEN 5
#define NR32_CREAT 8
#define NR32_PTRACE 26
#define NR32_OPENAT 295
#define NR32_OPEN_BY_HANDLE_AT 342
#define NR32_PROCESS_VM_READV 347
#define NR32_PROCESS_VM_WRITEV 348
#define NR32_OPENAT2 437
#define NR32_PIDFD_GETFD 438

static __always_inline const char *compat_ptr(unsigned long v)
{
	return (const char *)(unsigned long)(__u32)v;
}

/* Whether a compat syscall is an open; its path argument in *upath (0: the call has none). */
static __always_inline int compat_open_path(struct pt_regs *r, unsigned long *upath)
{
	switch (r->orig_ax) {
	case NR32_OPEN:
	case NR32_CREAT:
		*upath = (unsigned long)compat_ptr(r->bx);
		return 1;
	case NR32_OPENAT:
	case NR32_OPENAT2:
		*upath = (unsigned long)compat_ptr(r->cx);
		return 1;
	case NR32_OPEN_BY_HANDLE_AT:
		*upath = 0;
		return 1;
	}
	return 0;
}

/* The compat memory-access syscalls, decided like their native probes. */
static __always_inline int compat_mem_exit(struct pt_regs *r)
{
	__s32 target;

	switch (r->orig_ax) {
	/* raw_tp programs may not call the pid-lookup kfuncs: the target is the number the
	 * caller gave, named by userspace (see README, coverage). */
	case NR32_PTRACE:
		if (ptrace_reported((__u32)r->bx))
			return emit_mem_target(TECH_PTRACE, (__u32)r->cx, 0, (__u32)r->bx,
					       ORIGIN_COMPAT);
		return 0;
	case NR32_PROCESS_VM_READV:
		return emit_mem_target(TECH_VM_READV, (__u32)r->bx, 0, 0, ORIGIN_COMPAT);
	case NR32_PROCESS_VM_WRITEV:
		return emit_mem_target(TECH_VM_WRITEV, (__u32)r->bx, 0, 0, ORIGIN_COMPAT);
	case NR32_PIDFD_GETFD:
		target = pidfd_target((int)r->bx);
		if (target)
			return emit_mem_target(TECH_PIDFD_GETFD, target, 0, (__u32)r->cx,
					       ORIGIN_COMPAT);
		return 0;
	}
	return 0;
}
