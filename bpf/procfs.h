/* SPDX-License-Identifier: GPL-2.0 */
/* Memory access through procfs, decided on the opened inode: a proc inode carries the struct pid
 * of the process it describes, so every spelling of the path (//, ./, relative to a dirfd or
 * cwd inside /proc/PID, symlinks, /proc/self/..., a pid namespace) names the same target. */
#ifndef BEE_PROCFS_H
#define BEE_PROCFS_H

#include "vfs.h"


/* Entry names, NUL included so the name must end there; little-endian packed. */
#define NAME_MEM 0x006d656dULL             /* "mem\0" */
#define NAME_MAPS 0x007370616dULL          /* "maps\0" */
#define NAME_ENVIRON 0x6e6f7269766e65ULL   /* "environ" (length checked separately) */
#define NAME_FD 0x006466ULL                /* "fd\0" */

/* "N" of /proc/PID/fd/N: the link itself is opened only with O_PATH|O_NOFOLLOW (a plain open
 * follows it to the file, see pathless() in open_exit.h). */
static __always_inline int fd_link_name(struct dentry *dentry, __u64 name, __u32 len)
{
	__u64 parent = 0;

	if (len > 7)
		return 0;
#pragma unroll
	for (int i = 0; i < 7; i++) {
		__u8 ch = name >> (8 * i);

		if (i < len && (ch < '0' || ch > '9'))
			return 0;
	}
	if (dentry->d_parent->d_name.len != 2)
		return 0;
	bpf_probe_read_kernel(&parent, 3, dentry->d_parent->d_name.name);
	return parent == NAME_FD;
}

struct proc_target {
	__u32 tgid;
	char comm[COMM_LEN];
};

/* The technique when `inode` (on procfs, opened as `dentry`) is /proc/PID[/task/TID]/{mem,
 * environ,maps,fd,fd/N} of some process; the target's thread group and name in *out. 0 otherwise. */
static __always_inline int procfs_technique(struct inode *inode, struct dentry *dentry,
					    struct proc_target *out)
{
	struct proc_inode *pi;
	struct task_struct *task;
	struct hlist_node *first;
	struct pid *pid;
	__u64 name = 0;
	__u32 len;
	int tech;
	s32 nr;

	len = dentry->d_name.len;
	if (!len || len > 7)
		return 0;
	bpf_probe_read_kernel(&name, len + 1, dentry->d_name.name);
	if (len == 2 && name == NAME_FD)
		tech = TECH_PROC_FD;             /* listing another process's open files */
	else if (fd_link_name(dentry, name, len))
		tech = TECH_PROC_FD;
	else if (len == 3 && (name & 0xffffffffULL) == NAME_MEM)
		tech = TECH_PROC_MEM;
	else if (len == 4 && (name & 0xffffffffffULL) == NAME_MAPS)
		tech = TECH_PROC_MAPS;
	else if (len == 7 && (name & 0xffffffffffffffULL) == NAME_ENVIRON)
		tech = TECH_PROC_ENVIRON;
	else
		return 0;
	pi = VFS_CAST(struct proc_inode,
		      (char *)inode - bpf_core_field_offset(struct proc_inode, vfs_inode));
	pid = pi->pid;
	if (!pid)
		return 0;                /* /proc/sys, /proc/net, ...: no process */
	nr = pid->numbers[0].nr;         /* the initial namespace, whatever the opener's */
	out->tgid = nr;                  /* a thread id if the target is already gone */
	/* pid_task(pid, PIDTYPE_PID) by hand: raw_tp programs (compat) may not call kfuncs. */
	first = pid->tasks[PIDTYPE_PID].first;
	if (!first)
		return tech;
	task = VFS_CAST(struct task_struct,
			(char *)first - bpf_core_field_offset(struct task_struct, pid_links[PIDTYPE_PID]));
	out->tgid = task->tgid;
	bpf_probe_read_kernel_str(out->comm, COMM_LEN, task->group_leader->comm);
	return tech;
}

#endif
