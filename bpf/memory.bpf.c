// SPDX-License-Identifier: GPL-2.0
/* Memory-access monitor: ptrace attach/seize/peek/poke, process_vm_readv/writev and pidfd_getfd
 * on another process (the /proc/PID/{mem,environ,maps} opens are seen by the open monitor).
 * The target is resolved to its thread group and name in the kernel (bpf_task_from_vpid), so a
 * target that exits at once is still named. Every record goes on the critical lane. An access
 * aimed at the agent itself is tamper evidence (tamper.h) instead. */
#include "common.h"
#include "kfuncs.h"
#include "missing_defs.h"
#include "critical.h"
#include "tamper.h"

#define PTRACE_PEEKTEXT 1
#define PTRACE_POKEUSR 6
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206


/* Report an access to process `target` (initial namespace) unless it is the caller's own. */
static __always_inline int emit_mem_target(__u32 tech, __u32 target, const char *comm,
					   __u64 request, __u8 origin)
{
	struct settings *s = get_settings();
	__u32 self = bpf_get_current_pid_tgid() >> 32;
	struct fold_key k = { .tgid = self, .type = EV_MEM, .a = fold_mem_a(tech, request), .b = target };
	struct counters *c;
	struct event *e;

	if (skip_event(s, PROBE_MEMORY) || !target)
		return 0;
	if (target == self)
		return 0;       /* a process acting on itself is not an event */
	if (is_agent(s, target))
		return emit_tamper(TAMPER_MEMORY, TAMPER_T_PROCESS, target, request, tech);
	c = get_counters();
	if (crit_folded(c, s, &k))
		return 0;
	e = crit_begin(c, EV_MEM);
	if (!e)
		return 0;
	__builtin_memset(&e->mem, 0, sizeof(e->mem));
	e->mem.technique = tech;
	e->mem.target_pid = target;
	e->mem.request = request;
	e->mem.origin = origin;
	if (comm)
		bpf_probe_read_kernel_str(e->mem.target_comm, COMM_LEN, comm);
	crit_deliver(c, s, e, &k, TIER_HIGH);
	return 0;
}

/* `pid` as the caller named it (a thread id in the caller's pid namespace): resolved to the
 * thread group and name in the kernel, so a target that exits at once is still named and a
 * caller inside a pid namespace gets the host's pid. */
static __always_inline int emit_mem_pid(__u32 tech, __s32 pid, __u64 request, int global)
{
	struct task_struct *t;
	char comm[COMM_LEN] = {};
	__u32 target = 0;

	if (pid <= 0)
		return 0;
	t = global ? bpf_task_from_pid(pid) : bpf_task_from_vpid(pid);
	if (t) {
		target = BPF_CORE_READ(t, tgid);
		BPF_CORE_READ_STR_INTO(&comm, t, group_leader, comm);
		bpf_task_release(t);
	}
	if (!target)
		target = pid;   /* already gone: the number the caller used */
	return emit_mem_target(tech, target, comm, request, ORIGIN_SYSCALL);
}

static __always_inline int emit_mem(__u32 tech, __s32 pid, __u64 request)
{
	return emit_mem_pid(tech, pid, request, 0);
}

/* TRACEME (0) names no target; other requests need an existing attachment. */
static __always_inline int ptrace_reported(long req)
{
	return (req >= PTRACE_PEEKTEXT && req <= PTRACE_POKEUSR) || req == PTRACE_ATTACH ||
	       req == PTRACE_SEIZE;
}

SEC("tp/syscalls/sys_enter_ptrace")
int mem_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	long req = (long)ctx->args[0];

	if (ptrace_reported(req))
		return emit_mem(TECH_PTRACE, (__s32)ctx->args[1], req);
	return 0;
}

SEC("tp/syscalls/sys_enter_process_vm_readv")
int mem_vm_readv(struct trace_event_raw_sys_enter *ctx)
{
	return emit_mem(TECH_VM_READV, (__s32)ctx->args[0], 0);
}

SEC("tp/syscalls/sys_enter_process_vm_writev")
int mem_vm_writev(struct trace_event_raw_sys_enter *ctx)
{
	return emit_mem(TECH_VM_WRITEV, (__s32)ctx->args[0], 0);
}

/* The pid behind a pidfd of the current task: the file is a pidfs inode whose i_private is the
 * struct pid. 0 when the fd is not a pidfd. */
static __always_inline __s32 pidfd_target(int pidfd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds;
	struct file *f = 0;
	struct pid *p;

	if (!fdt || pidfd < 0 || (__u32)pidfd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[pidfd]) || !f)
		return 0;
	if (BPF_CORE_READ(f, f_inode, i_sb, s_magic) != PIDFS_MAGIC)
		return 0;
	p = BPF_CORE_READ(f, f_inode, i_private);
	if (!p)
		p = BPF_CORE_READ(f, private_data);
	if (!p)
		return 0;
	return BPF_CORE_READ(p, numbers[0].nr);
}

SEC("tp/syscalls/sys_enter_pidfd_getfd")
int mem_pidfd_getfd(struct trace_event_raw_sys_enter *ctx)
{
	__s32 target = pidfd_target((int)ctx->args[0]);

	/* request carries the fd number taken from the target */
	if (target)
		return emit_mem_pid(TECH_PIDFD_GETFD, target, (__u32)ctx->args[1], 1);
	return 0;
}

