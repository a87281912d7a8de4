/* SPDX-License-Identifier: GPL-2.0 */
/* The exit-time decision for a new file descriptor, shared by the syscall, compat and io_uring
 * programs: fd -> struct file -> procfs target, watched inode, or filter keys -> record. */
#ifndef BEE_OPEN_EXIT_H
#define BEE_OPEN_EXIT_H

#include "common.h"
#include "file_match.h"
#include "procfs.h"
#include "critical.h"

/* (dev, ino) of every existing file the policy names, written by userspace at start, plus every
 * file the kernel saw opened under a watched name (learned here, so a hard link or rename made
 * right after is caught without waiting for userspace). An open of these inodes is reported
 * whatever it is called. A key names a file only while that file exists: each entry records
 * which inode it is (i_generation, and the struct inode's address to tell whether it still
 * lives), so a number the filesystem gave to another file after the watched one was deleted
 * is stale (deleted at its next open), and a full table first drops the entries of deleted
 * files (inodes_reclaim). A plain hash: a table full of files that still exist refuses to
 * learn (counted), never evicts a live one. */
struct inode_key {
	__u64 ino;
	__u32 dev;
	__u32 _pad;
};

#define INODE_KNOWN  (1 << 0)   /* addr and gen are the inode's (the kernel has seen it) */
#define INODE_SEEDED (1 << 1)   /* written at start: dropped only when provably deleted */

struct inode_value {
	__u64 addr;             /* the struct inode when last seen (an evicted inode comes back elsewhere) */
	__u32 gen;              /* its i_generation: another file that gets the number has another */
	__u8 tier;
	__u8 flags;             /* INODE_* */
	__u8 _pad[2];
};

#define WATCHED_INODES 16384    /* bee_trace/inodes.py MAX_INODES */

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WATCHED_INODES);
	__type(key, struct inode_key);
	__type(value, struct inode_value);
} watched_inodes SEC(".maps");

/* One byte per inode_slot() (file_match.h), set for every inode put in watched_inodes (by the
 * kernel when it learns one, by userspace before it seeds one): an open of an unwatched inode is
 * refused by this inlined array load instead of a hash lookup (a call and a jhash). A superset:
 * slots are never cleared. Bytes, not bits, so userspace and the kernel never rewrite each
 * other's slots. */
BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << INODE_SLOTS_LOG2);
	__type(key, __u32);
	__type(value, __u8);
} watched_inode_slots SEC(".maps");

/* Whether the open inode is the watched file its key names. An entry whose i_generation is not
 * this inode's was another file, deleted since: stale, deleted here. An entry userspace has
 * just written (not INODE_KNOWN until its own open, inode_adopt) counts as watched. */
static __always_inline int inode_watched(struct counters *c, struct inode_key *k,
					 struct inode *inode)
{
	__u32 slot = inode_slot(k->ino, k->dev);
	__u8 *s = bpf_map_lookup_elem(&watched_inode_slots, &slot);
	struct inode_value *v;

	if (!s || !*s)
		return 0;
	v = bpf_map_lookup_elem(&watched_inodes, k);
	if (!v)
		return 0;
	if (!(v->flags & INODE_KNOWN))
		return 1;
	if (v->gen != inode->i_generation) {
		bpf_map_delete_elem(&watched_inodes, k);
		c->inodes_stale++;
		return 0;
	}
	if (v->addr != (__u64)inode)
		v->addr = (__u64)inode;     /* evicted and read back in: the same file */
	return 1;
}

/* I_WILL_FREE | I_FREEING | I_CLEAR: an enum since 6.12-ish, bits 4-6 before. */
static __always_inline __u32 inode_dying_bits(void)
{
	if (bpf_core_enum_value_exists(enum inode_state_flags_t, I_FREEING))
		return bpf_core_enum_value(enum inode_state_flags_t, I_WILL_FREE) |
		       bpf_core_enum_value(enum inode_state_flags_t, I_FREEING) |
		       bpf_core_enum_value(enum inode_state_flags_t, I_CLEAR);
	return (1 << 4) | (1 << 5) | (1 << 6);
}

/* Whether an entry's file is gone, read through its recorded struct inode address (possibly
 * freed memory: probe reads, never a dereference). Certain: that inode is still there, dying,
 * with no link left (a deleted file that is still open is not dying). Likely: the memory is
 * not that inode any more (freed and reused) -- a deleted file, or on a disk filesystem an
 * unused one the kernel evicted from its cache; that is enough for a learned entry (a watched
 * name opened again learns it again), not for one seeded at start. An evicted inode whose
 * memory still says it has links is kept. */
static __always_inline int inode_gone(struct inode_key *k, struct inode_value *v)
{
	struct inode *i = (struct inode *)v->addr;
	unsigned long ino = 0;
	__u32 gen = 0, state = 0, nlink = 1;
	int likely = !(v->flags & INODE_SEEDED);

	/* The number and a random 32-bit generation name the inode well enough (no read of the
	 * super block's dev: each probe read is most of a walk's cost). */
	if (bpf_core_read(&ino, sizeof(ino), &i->i_ino) ||
	    bpf_core_read(&gen, sizeof(gen), &i->i_generation) ||
	    ino != k->ino || gen != v->gen)
		return likely;
	if (bpf_core_read(&state, sizeof(state), &i->i_state))
		return likely;
	if (!(state & inode_dying_bits()))
		return 0;
	return !bpf_core_read(&nlink, sizeof(nlink), &i->__i_nlink) && nlink == 0;
}

struct reclaim_ctx {
	__u64 freed;
};

static long reclaim_step(struct bpf_map *map, struct inode_key *k, struct inode_value *v,
			 struct reclaim_ctx *x)
{
	if ((v->flags & INODE_KNOWN) && inode_gone(k, v) && !bpf_map_delete_elem(map, k))
		x->freed++;
	return 0;
}

/* Earliest next reclaim walk (boot ns): a table full of live files must not cost a walk of
 * 16,384 entries per learning open (7-9 ms for 16,384 live entries on the 2-core VM, paid by
 * the opener): at most 5 walks a second. */
#define INODE_RECLAIM_NS 200000000ULL
__u64 inode_reclaim_after;

/* The table is full: drop the entries of deleted files. A global function: verified once,
 * apart from the open path. Returns how many were dropped (0: too soon since the last walk). */
__noinline int inodes_reclaim(void)
{
	struct reclaim_ctx x = {};
	struct counters *c = get_counters();
	__u64 now = bpf_ktime_get_boot_ns();

	if (!c || now < inode_reclaim_after)
		return 0;
	inode_reclaim_after = now + INODE_RECLAIM_NS;
	bpf_for_each_map_elem(&watched_inodes, reclaim_step, &x, 0);
	c->inodes_reclaims++;
	c->inodes_reclaimed += x.freed;
	return x.freed;
}

static __always_inline long inode_learn(struct inode_key *k, struct inode *inode)
{
	struct inode_value v = { .addr = (__u64)inode, .gen = inode->i_generation,
				 .tier = TIER_HIGH, .flags = INODE_KNOWN };
	__u32 slot = inode_slot(k->ino, k->dev);
	__u8 one = 1;
	long err;

	bpf_map_update_elem(&watched_inode_slots, &slot, &one, BPF_ANY);
	err = bpf_map_update_elem(&watched_inodes, k, &v, BPF_NOEXIST);
	if (err == -E2BIG && inodes_reclaim() > 0)
		err = bpf_map_update_elem(&watched_inodes, k, &v, BPF_NOEXIST);
	return err;
}

/* The agent's own open of fd: a file userspace has just put in watched_inodes (seeded at start,
 * or the new name of a link/rename) is opened by it so the kernel records which inode that is
 * (userspace cannot see i_generation or the inode's address). A global function. */
__noinline int inode_adopt(long fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct inode_key key = {};
	struct inode_value *v;
	struct inode *inode;
	struct file *f;
	__u32 slot;
	__u8 *s;

	f = vfs_fd_file(t, fd);
	if (!f)
		return 0;
	inode = f->f_inode;
	key.ino = inode->i_ino;
	key.dev = inode->i_sb->s_dev;
	slot = inode_slot(key.ino, key.dev);
	s = bpf_map_lookup_elem(&watched_inode_slots, &slot);
	if (!s || !*s)
		return 0;
	v = bpf_map_lookup_elem(&watched_inodes, &key);
	if (!v || (v->flags & INODE_KNOWN))
		return 0;
	v->addr = (__u64)inode;
	v->gen = inode->i_generation;
	v->flags |= INODE_KNOWN;
	return 1;
}

struct chunk_ctx {
	struct counters *c;
	struct settings *s;
	const char *src;
	__u64 chain;
	__u32 start;
	__u32 len;
	__u32 what;
	__u32 sent;
	__u32 lost;
};

/* One EV_PATH record per call: bytes [start + i*CHUNK_LEN, ...) of src. */
static long chunk_step(__u64 i, struct chunk_ctx *x)
{
	__u32 off = i * CHUNK_LEN, n;
	struct event *e;

	if (off >= x->len)
		return 1;
	e = crit_begin(x->c, EV_PATH);
	if (!e) {
		x->lost = 1;
		return 1;
	}
	n = x->len - off;
	if (n > CHUNK_LEN)
		n = CHUNK_LEN;
	e->h.ts_ns = x->chain;
	e->chunk.chain = x->chain;
	e->chunk.index = i;
	e->chunk.len = n;
	e->chunk.what = x->what;
	bpf_probe_read_kernel(e->chunk.data, CHUNK_LEN, x->src + ((x->start + off) & DPATH_MASK));
	if (crit_deliver(x->c, x->s, e, 0, TIER_HIGH)) {
		x->lost = 1;
		return 1;
	}
	x->sent++;
	return 0;
}

static __always_inline __u32 send_chunks(struct counters *c, struct settings *s, const char *src,
					 __u32 start, __u32 len, __u64 chain, __u32 what,
					 __u32 *lost)
{
	struct chunk_ctx x = { .c = c, .s = s, .src = src, .chain = chain, .start = start,
			       .len = len, .what = what };

	if (len)
		bpf_loop(MAX_CHUNKS, chunk_step, &x, 0);
	*lost |= x.lost;
	return x.sent;
}

struct cmp_ctx {
	const char *a;
	const char *b;
	__u32 len;
	__u32 differ;
};

static long cmp_step(__u64 i, struct cmp_ctx *x)
{
	__u64 va = 0, vb = 0;
	__u32 off = i * 8, n = x->len - off;

	if (off >= x->len)
		return 1;
	if (n > 8)
		n = 8;
	bpf_probe_read_kernel(&va, n & 15, x->a + off);
	bpf_probe_read_kernel(&vb, n & 15, x->b + off);
	if (va != vb) {
		x->differ = 1;
		return 1;
	}
	return 0;
}

static __always_inline int strings_differ(const char *a, const char *b, __u32 len)
{
	struct cmp_ctx x = { .a = a, .b = b, .len = len };

	bpf_loop(SCRATCH_LEN / 8, cmp_step, &x, 0);
	return x.differ;
}

/* A dentry's name into dst (40 writable bytes past n): a short name lives in the dentry and is
 * read as five direct loads, no helper call; a longer one is copied. */
static __always_inline void dentry_name_copy(char *dst, struct dentry *d, __u32 n)
{
	if (bpf_core_field_exists(d->d_shortname) &&
	    (unsigned long)d->d_name.name == (unsigned long)&d->d_shortname) {
		__u64 *w = (__u64 *)dst;

		w[0] = d->d_shortname.words[0];
		w[1] = d->d_shortname.words[1];
		w[2] = d->d_shortname.words[2];
		w[3] = d->d_shortname.words[3];
		w[4] = d->d_shortname.words[4];
		return;
	}
	bpf_probe_read_kernel(dst, n, d->d_name.name);
}

/* Filter keys come from "/parent/basename" read off the dentries (two short name copies): the
 * patterns' keys never need more (see bee_trace/patterns.py). */
static __always_inline int name_candidate(struct file *f, struct dentry *d, __u8 *tier)
{
	struct vfsmount *vfs = f->f_path.mnt;
	struct dentry *p = d->d_parent;
	struct path_scratch *sc;
	struct path_keys k = {};
	__u32 zero = 0, bn, pn, len;

	sc = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!sc)
		return 0;
	if (p == vfs->mnt_root) {
		/* The parent is a mount root: its name is the mountpoint's. */
		struct mount *m = VFS_CAST(struct mount,
					   (char *)vfs - bpf_core_field_offset(struct mount, mnt));

		if (m->mnt_parent != m)
			p = m->mnt_mountpoint;
	}
	bn = d->d_name.len & 255;
	pn = p->d_name.len & 255;
	sc->zero = 0;
	sc->buf[0] = '/';
	dentry_name_copy(&sc->buf[1], p, pn);
	sc->buf[(1 + pn) & 511] = '/';
	dentry_name_copy(&sc->buf[(2 + pn) & 511], d, bn);
	len = 2 + pn + bn;
	sc->buf[len & 1023] = 0;
	split_keys_short(sc, len, 1 + pn, 0, &k);
	if (!keys_in_filter(&k, FILTER_ALL))
		return 0;
	*tier = keys_in_filter(&k, FILTER_HIGH) ? TIER_HIGH : TIER_LOW;
	return 1;
}

static __always_inline void emit_proc_open(struct counters *c, struct settings *s,
					   struct task_struct *t, struct file *f,
					   struct inode *inode, struct dentry *d, long nr,
					   __u8 origin)
{
	struct proc_target pt = {};
	struct dpath_buf *w;
	struct event *e;
	__u32 start = 0, wflags = 0, len;
	int tech;

	tech = procfs_technique(inode, d, &pt);
	/* A process reading its own /proc entries is not an event. */
	if (!tech || pt.tgid == t->tgid)
		return;
	struct fold_key k = { .tgid = t->tgid, .type = EV_MEM, .a = fold_mem_a(tech, 0), .b = pt.tgid };

	if (crit_folded(c, s, &k))
		return;
	w = vfs_path(t, f->f_path.mnt, d, &start, &wflags);
	e = crit_begin(c, EV_MEM);
	if (!e)
		return;
	__builtin_memset(&e->mem, 0, sizeof(e->mem));
	e->mem.technique = tech;
	e->mem.target_pid = pt.tgid;
	__builtin_memcpy(e->mem.target_comm, pt.comm, COMM_LEN);
	e->mem.syscall = nr;
	e->mem.origin = origin;
	if (w) {
		len = DPATH_END - start;
		e->mem.path_len = len;
		bpf_probe_read_kernel(e->mem.path, sizeof(e->mem.path), &w->buf[start & DPATH_MASK]);
	}
	crit_deliver(c, s, e, &k, TIER_HIGH);
}

static __always_inline void emit_file_open(struct counters *c, struct settings *s,
					   struct task_struct *t, struct file *f,
					   struct inode_key *key, __u8 match, __u8 tier, long nr,
					   __u8 origin, const char *upath)
{
	struct dentry *d = f->f_path.dentry;
	struct path_scratch *sc;
	struct dpath_buf *w;
	struct event *e;
	__u32 zero = 0, start = 0, wflags = 0, len, tail, lost = 0, nchunks, nreq = 0, req_len = 0;
	__u16 flags = 0;
	__u64 chain;
	long n;
	int write = (f->f_mode & FMODE_WRITE) || (f->f_flags & O_TRUNC);
	struct fold_key k = { .tgid = t->tgid, .type = EV_FILE, .a = key->ino,
			      .b = fold_file_b(key->dev, write) };

	/* A flood of one file by one process costs one record per window. */
	if (crit_folded(c, s, &k))
		return;
	w = vfs_path(t, f->f_path.mnt, d, &start, &wflags);
	if (!w)
		return;
	chain = bpf_ktime_get_boot_ns();
	len = DPATH_END - start;
	tail = len > FILE_TAIL ? FILE_TAIL : len;
	nchunks = send_chunks(c, s, w->buf, start, len - tail, chain, CHUNK_PATH, &lost);

	/* The caller's string, only to show it when it differs (never for a decision). */
	sc = bpf_map_lookup_elem(&path_scratch, &zero);
	if (upath && sc) {
		n = bpf_probe_read_user_str(sc->buf, SCRATCH_LEN, upath);
		if (n <= 0) {
			flags |= EVF_READ_FAULT;
			count_drop(c, LANE_CRITICAL, DROP_READ_FAULT);
		} else {
			req_len = (n - 1) & (SCRATCH_LEN - 1);
			if (req_len == len && !strings_differ(sc->buf, &w->buf[start & DPATH_MASK], len))
				req_len = 0;
			else
				nreq = send_chunks(c, s, sc->buf, 0, req_len, chain, CHUNK_REQUESTED,
						   &lost);
		}
	}

	e = crit_begin(c, EV_FILE);
	if (!e)
		return;
	e->h.ts_ns = chain;
	e->file.ino = key->ino;
	e->file.dev = key->dev;
	e->file.open_flags = f->f_flags;
	e->file.f_mode = f->f_mode;
	e->file.path_len = len;
	e->file.req_len = req_len;
	e->file.gen = f->f_inode->i_generation;
	e->file.syscall = nr;
	e->file.origin = origin;
	e->file.match = match;
	e->file.tier = tier;
	e->file.nchunks = nchunks;
	e->file.nreq = nreq;
	e->file.walk_flags = wflags;
	bpf_probe_read_kernel(e->file.path, FILE_TAIL, &w->buf[(DPATH_END - tail) & DPATH_MASK]);
	if (write)
		flags |= EVF_WRITE;
	if (nchunks || nreq)
		flags |= EVF_CHAINED;
	if (lost)
		flags |= EVF_CHUNK_LOST;
	if (wflags & DPATH_OVERFLOW)
		flags |= EVF_TRUNCATED;
	if (wflags & DPATH_DETACHED)
		flags |= EVF_UNRESOLVED;
	e->h.flags = flags;
	crit_deliver(c, s, e, &k, tier);
}

/* Files only another process's /proc/PID/fd/N (or map_files) link can reach: on an internal
 * mount (pipes, sockets, anon inodes, memfd) or unlinked. O_TMPFILE files are unlinked from
 * birth and namespace files (/proc/PID/ns/X, for setns) are not another process's data. */
static __always_inline int pathless(struct file *f, struct inode *inode)
{
	if (f->f_flags & __O_TMPFILE || inode->i_sb->s_magic == NSFS_MAGIC)
		return 0;
	return (f->f_path.mnt->mnt_flags & MNT_INTERNAL) || !inode->__i_nlink;
}

struct held_ctx {
	struct file **fds;
	struct inode *inode;
	long skip;
	__u32 max;
	__u32 held;
};

static long held_step(__u64 i, struct held_ctx *x)
{
	struct file *f = 0;

	if (i >= x->max)
		return 1;
	if (i == x->skip || bpf_probe_read_kernel(&f, sizeof(f), &x->fds[i]) || !f)
		return 0;
	if (VFS_CAST(struct file, f)->f_inode == x->inode) {
		x->held = 1;
		return 1;
	}
	return 0;
}

/* Whether the task already holds `inode` at another fd than `skip` (then reopening it through
 * /proc/self/fd, /dev/stdin or a bash process substitution is nothing new). A table longer than
 * the scan counts as not held: the report is the safe side. */
#define HELD_SCAN 4096
static __always_inline int held_elsewhere(struct task_struct *t, struct inode *inode, long skip)
{
	struct fdtable *fdt = t->files->fdt;
	struct held_ctx x = { .inode = inode, .skip = skip };

	if (!fdt)
		return 0;
	x.fds = fdt->fd;
	x.max = fdt->max_fds < HELD_SCAN ? fdt->max_fds : HELD_SCAN;
	bpf_loop(HELD_SCAN, held_step, &x, 0);
	return x.held;
}

/* A syscall or io_uring request opened f (fd: its new descriptor, -1 for an io_uring fixed-file
 * slot): decide on the kernel object. */
static __always_inline int open_decide(struct settings *s, struct task_struct *t, struct file *f,
				       long fd, long nr, __u8 origin, const char *upath)
{
	struct inode_key key = {};
	struct counters *c = get_counters();
	struct inode *inode;
	struct dentry *d;
	__u8 match = 0, tier = TIER_HIGH;

	if (!c)
		return 0;
	c->inspected++;
	inode = f->f_inode;
	d = f->f_path.dentry;
	if (inode->i_sb->s_magic == PROC_SUPER_MAGIC) {
		if (s->probes & PROBE_MEMORY)
			emit_proc_open(c, s, t, f, inode, d, nr, origin);
		return 0;
	}
	key.ino = inode->i_ino;
	key.dev = inode->i_sb->s_dev;
	/* Before the O_PATH test: an O_PATH fd to another process's pipe or memfd is the first
	 * step of reading it (the reopen through /proc/self/fd is then "held"). */
	if ((s->probes & PROBE_MEMORY) && pathless(f, inode) && !held_elsewhere(t, inode, fd)) {
		match = MATCH_PROC_FD;
	} else {
		/* O_PATH fds give no access to the data; reopening one is an open we see. */
		if (!(s->probes & PROBE_FILE) || (f->f_mode & FMODE_PATH))
			return 0;
		if (inode_watched(c, &key, inode))
			match = MATCH_INODE;
		else if (name_candidate(f, d, &tier))
			match = MATCH_NAME;
		if (!match)
			return 0;
		if (match == MATCH_NAME && inode_learn(&key, inode) == -E2BIG)
			c->inodes_full++;
	}
	c->candidates++;
	/* One call site: each inlined copy of the record path is verified on its own. */
	emit_file_open(c, s, t, f, &key, match, tier, nr, origin, upath);
	return 0;
}

/* The settings when a call that returned `ret` is to be decided (file or memory monitor on, a
 * new fd or slot, not the agent's own); else 0. skip_event without its helper call: t is the
 * current task. */
static __always_inline struct settings *open_settings(struct task_struct *t, long ret)
{
	struct settings *s = get_settings();

	if (ret < 0 || !s || !(s->probes & (PROBE_FILE | PROBE_MEMORY)) || t->tgid == s->self_tgid)
		return 0;
	return s;
}

/* A syscall returned `ret`; when it is a new fd, decide on its file (the agent's own: see
 * inode_adopt). */
static __always_inline int open_exit(struct task_struct *t, long ret, long nr, __u8 origin,
				     const char *upath)
{
	struct settings *s = open_settings(t, ret);
	struct file *f;

	if (!s) {
		s = get_settings();
		if (ret >= 0 && s && (s->probes & PROBE_FILE) && t->tgid == s->self_tgid)
			return inode_adopt(ret);
		return 0;
	}
	f = vfs_fd_file(t, ret);
	if (!f)
		return 0;
	return open_decide(s, t, f, ret, nr, origin, upath);
}

#endif
