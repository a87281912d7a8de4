/* SPDX-License-Identifier: GPL-2.0 */
/* VFS helpers on kernel objects: fd -> struct file, and the absolute path of a struct path
 * (a dentry walk across mounts up to the task's root, like d_path()). Pointers come from
 * bpf_get_current_task_btf() and bpf_rdonly_cast(), so field loads are direct (no helper call
 * per hop): this runs on every open. */
#ifndef BEE_VFS_H
#define BEE_VFS_H

#include "common.h"
#include "missing_defs.h"
#include "kfuncs.h"


#define VFS_CAST(type, p) ((type *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(type)))

/* The struct file behind fd in the current task's table, or 0. */
static __always_inline struct file *vfs_fd_file(struct task_struct *t, long fd)
{
	struct fdtable *fdt = t->files->fdt;
	struct kiocb *slot;

	if (!fdt || fd < 0 || fd >= fdt->max_fds)
		return 0;
	/* The slot read as a struct whose first member is a struct file *: a direct load instead
	 * of a bpf_probe_read_kernel call (this runs on every open). */
	slot = VFS_CAST(struct kiocb, (char *)fdt->fd + fd * sizeof(struct file *));
	return slot->ki_filp;
}

/* Absolute paths are built backwards in a per-CPU buffer: the last byte of the path sits just
 * before DPATH_END and each component is prepended, so any path up to PATH_MAX fits and a
 * 255-byte name always has room. */
#define PATH_MAX_LEN 4096
#define DPATH_END (PATH_MAX_LEN + 256)
#define DPATH_MASK 8191
#define DPATH_LEVELS (PATH_MAX_LEN / 2)

struct dpath_buf {
	char buf[DPATH_MASK + 1 + 512];
};

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dpath_buf);
} dpath_scratch SEC(".maps");

#define DPATH_OVERFLOW   1      /* longer than the buffer: the head is missing */
#define DPATH_DETACHED   2      /* reached a root that is not the task's root (unmounted, other ns) */

struct dpath_ctx {
	struct dpath_buf *out;
	struct dentry *dentry;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 pos;
	__u32 flags;
};

static long dpath_up(__u64 i, struct dpath_ctx *c)
{
	struct dentry *d = c->dentry, *parent;
	struct mount *m = c->mnt;
	const unsigned char *name;
	__u32 n, pos;

	if (d == c->root_dentry && &m->mnt == c->root_mnt)
		return 1;                               /* the task's root (chroot-aware) */
	if (d == m->mnt.mnt_root) {
		struct mount *up = m->mnt_parent;

		if (up == m) {
			c->flags |= DPATH_DETACHED;      /* top of a mount tree that is not our root */
			return 1;
		}
		c->dentry = m->mnt_mountpoint;
		c->mnt = up;
		return 0;
	}
	parent = d->d_parent;
	if (parent == d) {
		c->flags |= DPATH_DETACHED;
		return 1;
	}
	n = d->d_name.len & 255;
	name = d->d_name.name;
	pos = c->pos;
	if (n + 1 > pos) {
		c->flags |= DPATH_OVERFLOW;
		return 1;
	}
	pos -= n + 1;
	c->out->buf[pos & DPATH_MASK] = '/';
	bpf_probe_read_kernel(&c->out->buf[(pos + 1) & DPATH_MASK], n, name);
	c->pos = pos;
	c->dentry = parent;
	return 0;
}

/* Writes the absolute path of (mnt, dentry) into the walk buffer: bytes [*start, DPATH_END).
 * Returns the walk buffer (0 on failure) and WALK_* flags in *flags. */
static __always_inline struct dpath_buf *vfs_path(struct task_struct *t, struct vfsmount *vfs,
						  struct dentry *dentry, __u32 *start, __u32 *flags)
{
	struct dpath_ctx c = {};
	__u32 zero = 0;

	c.out = bpf_map_lookup_elem(&dpath_scratch, &zero);
	if (!c.out || !vfs || !dentry)
		return 0;
	c.dentry = dentry;
	c.mnt = VFS_CAST(struct mount, (char *)vfs - bpf_core_field_offset(struct mount, mnt));
	c.root_dentry = t->fs->root.dentry;
	c.root_mnt = t->fs->root.mnt;
	c.pos = DPATH_END;
	bpf_loop(DPATH_LEVELS, dpath_up, &c, 0);
	if (c.pos == DPATH_END) {
		c.pos--;                                /* the root itself: "/" */
		c.out->buf[c.pos & DPATH_MASK] = '/';
	}
	*start = c.pos;
	*flags = c.flags;
	return c.out;
}

/* The absolute form of a name the caller passed relative to dfd (AT_FDCWD: the cwd): the
 * directory's real path + "/" + the caller's string, at [*start, *end) of the walk buffer.
 * For link/rename, whose names the kernel resolves without giving us a struct file. */
static __always_inline struct dpath_buf *vfs_compose(struct task_struct *t, int dfd,
						     const char *upath, __u32 *start, __u32 *end,
						     __u32 *flags)
{
	struct dpath_buf *w;
	struct vfsmount *mnt;
	struct dentry *d;
	__u32 zero = 0;
	long n;

	w = bpf_map_lookup_elem(&dpath_scratch, &zero);
	if (!w)
		return 0;
	n = bpf_probe_read_user_str(&w->buf[DPATH_END + 1], PATH_MAX_LEN, upath);
	if (n <= 1)
		return 0;
	*end = DPATH_END + n;                           /* n counts the NUL */
	*flags = 0;
	if (w->buf[DPATH_END + 1] == '/') {
		*start = DPATH_END + 1;
		return w;
	}
	if (dfd == AT_FDCWD) {
		mnt = t->fs->pwd.mnt;
		d = t->fs->pwd.dentry;
	} else {
		struct file *f = vfs_fd_file(t, dfd);

		if (!f)
			return 0;
		mnt = f->f_path.mnt;
		d = f->f_path.dentry;
	}
	if (!vfs_path(t, mnt, d, start, flags))
		return 0;
	w->buf[DPATH_END] = '/';
	return w;
}

#endif
