/* SPDX-License-Identifier: GPL-2.0 */
/* In-kernel path classification for opens: the secret-file candidate filter and the
 * /proc/PID/{mem,environ,maps} memory-access check. Key derivation must agree with
 * bee_trace/patterns.py (a test runs both on the same paths). */
#ifndef BEE_FILE_MATCH_H
#define BEE_FILE_MATCH_H

#include "common.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
/* A basename and its parent are each at most NAME_MAX (255) bytes. */
#define TAIL_MAX 520

static __always_inline __u32 filter_bit(__u64 value, __u32 kind)
{
	__u64 x = value + (__u64)kind * 0x9E3779B97F4A7C15ULL;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (__u32)(x >> (64 - FILTER_BITS_LOG2));
}

static __always_inline int filter_has(struct file_filter *f, __u64 value, __u32 kind)
{
	__u32 bit = filter_bit(value, kind);

	return (f->bits[(bit >> 6) & (FILTER_WORDS - 1)] >> (bit & 63)) & 1;
}

static __always_inline __u64 load_u64(struct path_scratch *sc, __u32 off)
{
	__u64 v;

	/* off is a byte offset in the scratch struct (buf starts at 8); the struct has 16 spare
	 * bytes past buf, so any off <= SCRATCH_LEN + 8 reads in bounds. */
	off &= 0x1fff;
	if (off > SCRATCH_LEN + 8)
		return 0;
	__builtin_memcpy(&v, (char *)sc + off, sizeof(v));
	return v;
}

struct walk_ctx {
	struct path_scratch *sc;
	__u64 h;
	__u64 base_hash;
	__u64 head;
	__s32 len;
	__u32 stage;
};

/* Four characters of the backward walk: FNV-1a of the basename (reversed), then of its parent
 * directory. Run by bpf_loop(), which the verifier checks once and inlines, where an open-coded
 * loop had to be verified once per iteration and per path length (E2BIG); four characters per
 * call cut the per-call overhead on every open. */
#define WALK_UNROLL 4

static long walk_step(__u64 i, struct walk_ctx *w)
{
	int j;

#pragma clang loop unroll(full)
	for (j = 0; j < WALK_UNROLL; j++) {
		int idx = w->len - 1 - (int)(i * WALK_UNROLL + j);
		char ch;

		if (idx < 0)
			return 1;
		ch = w->sc->buf[idx & (SCRATCH_LEN - 1)];
		if (ch == '/') {
			if (w->stage)
				return 1;
			w->stage = 1;
			w->base_hash = w->h;
			w->head = load_u64(w->sc, 8 + ((idx + 1) & (SCRATCH_LEN - 1)));
			w->h = FNV_OFFSET;
			continue;
		}
		w->h = (w->h ^ (__u8)ch) * FNV_PRIME;
	}
	return 0;
}

static __always_inline int path_is_candidate(struct path_scratch *sc, __u32 len)
{
	struct walk_ctx w = { .sc = sc, .h = FNV_OFFSET, .len = (__s32)len };
	struct file_filter *f;
	__u64 tail, v;
	__u32 zero = 0, i;

	f = bpf_map_lookup_elem(&file_filter, &zero);
	if (!f)
		return 0;
	if (f->match_all)
		return 1;

	bpf_loop(TAIL_MAX / WALK_UNROLL + 1, walk_step, &w, 0);
	if (!w.stage) {
		w.base_hash = w.h;
		w.head = load_u64(sc, 8);
	}
	if (filter_has(f, w.base_hash, KEY_BASENAME))
		return 1;
	if (w.stage && filter_has(f, w.h, KEY_DIR))
		return 1;

	/* Path suffix of L bytes: the 8 bytes ending at the last character, little-endian. */
	tail = load_u64(sc, len);
#pragma clang loop unroll(full)
	for (i = 1; i <= 8; i++) {
		if (f->suffix_lengths & (1U << i)) {
			v = i == 8 ? tail : tail >> (64 - 8 * i);
			if (filter_has(f, v, KEY_SUFFIX + i))
				return 1;
		}
		if (f->prefix_lengths & (1U << i)) {
			v = i == 8 ? w.head : w.head & ((1ULL << (8 * i)) - 1);
			if (filter_has(f, v, KEY_PREFIX + i))
				return 1;
		}
	}
	return 0;
}

/* Relative opens: the path is made absolute in the kernel from the cwd (or the dirfd's file),
 * walking dentries up to the root and across mounts like d_path(), so a short-lived
 * `cd ~/.ssh && cat id_rsa` is still reported with its full path. Built backwards in a per-CPU
 * buffer: the relative path sits at COMPOSE_END, components are prepended before it. */
#define COMPOSE_END 4096
#define COMPOSE_MASK 8191
#define COMPOSE_LEVELS 64

struct compose_buf {
	char buf[COMPOSE_MASK + 1 + 512];
};

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct compose_buf);
} compose_scratch SEC(".maps");

struct compose_ctx {
	struct compose_buf *out;
	struct dentry *dentry;
	struct mount *mnt;
	__u32 pos;
	__u32 overflow;
};

static long compose_step(__u64 i, struct compose_ctx *c)
{
	struct dentry *d = c->dentry, *parent;
	struct mount *m = c->mnt;
	const unsigned char *name;
	__u32 n, pos;

	if (d == BPF_CORE_READ(m, mnt.mnt_root)) {
		struct mount *up = BPF_CORE_READ(m, mnt_parent);

		if (up == m)
			return 1;                       /* the root of the mount tree */
		c->dentry = BPF_CORE_READ(m, mnt_mountpoint);
		c->mnt = up;
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	if (parent == d)
		return 1;                               /* a filesystem root outside our mounts */
	n = BPF_CORE_READ(d, d_name.len) & 255;
	name = BPF_CORE_READ(d, d_name.name);
	pos = c->pos;
	if (n + 1 > pos) {
		c->overflow = 1;
		return 1;
	}
	pos -= n + 1;
	c->out->buf[pos & COMPOSE_MASK] = '/';
	bpf_probe_read_kernel(&c->out->buf[(pos + 1) & COMPOSE_MASK], n, name);
	c->pos = pos;
	c->dentry = parent;
	return 0;
}

/* Fills the record's path with the absolute form of a relative open; 0 when it cannot. */
static __always_inline int compose_absolute(struct event *e, struct path_scratch *sc, __u32 len,
					    int dirfd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct compose_ctx c = {};
	struct vfsmount *vfs;
	__u32 zero = 0, total, start, end;

	if (len >= 256)
		return 0;
	c.out = bpf_map_lookup_elem(&compose_scratch, &zero);
	if (!c.out)
		return 0;
	if (dirfd == -100 /* AT_FDCWD */) {
		vfs = BPF_CORE_READ(t, fs, pwd.mnt);
		c.dentry = BPF_CORE_READ(t, fs, pwd.dentry);
	} else {
		struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
		struct file **fds, *f = 0;

		if (!fdt || dirfd < 0 || (__u32)dirfd >= BPF_CORE_READ(fdt, max_fds))
			return 0;
		fds = BPF_CORE_READ(fdt, fd);
		if (bpf_probe_read_kernel(&f, sizeof(f), &fds[dirfd]) || !f)
			return 0;
		vfs = BPF_CORE_READ(f, f_path.mnt);
		c.dentry = BPF_CORE_READ(f, f_path.dentry);
	}
	if (!vfs || !c.dentry)
		return 0;
	c.mnt = (struct mount *)((char *)vfs - bpf_core_field_offset(struct mount, mnt));
	c.out->buf[COMPOSE_END] = '/';
	bpf_probe_read_kernel(&c.out->buf[COMPOSE_END + 1], len & 255, sc->buf);
	c.pos = COMPOSE_END;
	bpf_loop(COMPOSE_LEVELS, compose_step, &c, 0);
	end = COMPOSE_END + 1 + len;
	total = end - c.pos;
	start = c.pos;
	if (total > PATH_LEN || c.overflow) {
		if (total > PATH_LEN)
			start = end - PATH_LEN;
		e->h.flags |= EVF_TRUNCATED;
	}
	bpf_probe_read_kernel(e->file.path, PATH_LEN, &c.out->buf[start & COMPOSE_MASK]);
	e->file.path_len = total;
	e->h.flags |= EVF_ABSOLUTE;
	return 1;
}

/* "/proc/" and the file names that expose another process's memory, NUL included so the name
 * must end there; little-endian packed. */
#define PROC_PREFIX 0x2f636f72702fULL      /* "/proc/" */
#define NAME_MEM 0x006d656dULL             /* "mem\0" */
#define NAME_MAPS 0x007370616dULL          /* "maps\0" */
#define NAME_ENVIRON 0x6e6f7269766e65ULL   /* "environ" (then NUL checked separately) */
#define NAME_TASK 0x2f6b736174ULL          /* "task/" */

/* Parse a decimal pid at buf[pos..]; returns the number of digits (0 when none). */
static __always_inline __u32 parse_pid(struct path_scratch *sc, __u32 pos, __u32 *pid)
{
	__u32 n = 0, i;

#pragma clang loop unroll(full)
	for (i = 0; i < 10; i++) {
		char ch = sc->buf[(pos + i) & (SCRATCH_LEN - 1)];

		if (ch < '0' || ch > '9')
			break;
		n = n * 10 + (ch - '0');
	}
	*pid = n;
	return i;
}

/* Returns the technique when the path is /proc/PID[/task/TID]/{mem,environ,maps}, else 0. */
static __always_inline int proc_target(struct path_scratch *sc, __u32 len, __u32 *target)
{
	__u32 pid = 0, tid = 0, pos, digits;
	__u64 name;

	if ((load_u64(sc, 8) & 0xffffffffffffULL) != PROC_PREFIX)
		return 0;
	digits = parse_pid(sc, 6, &pid);
	if (!digits || sc->buf[(6 + digits) & (SCRATCH_LEN - 1)] != '/')
		return 0;
	pos = 7 + digits;
	if ((load_u64(sc, 8 + pos) & 0xffffffffffULL) == NAME_TASK) {
		digits = parse_pid(sc, pos + 5, &tid);
		if (!digits || sc->buf[(pos + 5 + digits) & (SCRATCH_LEN - 1)] != '/')
			return 0;
		pos += 6 + digits;
	}
	name = load_u64(sc, 8 + pos);
	*target = pid;
	if ((name & 0xffffffffULL) == NAME_MEM)
		return TECH_PROC_MEM;
	if ((name & 0xffffffffffULL) == NAME_MAPS)
		return TECH_PROC_MAPS;
	if ((name & 0xffffffffffffffULL) == NAME_ENVIRON && sc->buf[(pos + 7) & (SCRATCH_LEN - 1)] == 0)
		return TECH_PROC_ENVIRON;
	return 0;
}

static __always_inline int proc_access_kind(struct path_scratch *sc, __u32 len, struct settings *s,
					    __u32 *target)
{
	int tech;

	if (!(s->probes & PROBE_MEMORY) || len < 9)
		return 0;
	tech = proc_target(sc, len, target);
	/* A process reading its own /proc entries is not an event. */
	if (!tech || *target == (__u32)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	return tech;
}

static __always_inline void emit_proc_access(struct counters *c, struct settings *s,
					     struct path_scratch *sc, __u32 len, int tech, __u32 target)
{
	struct event *e;

	e = reserve_event(c, LANE_CRITICAL, EV_MEM);
	if (!e)
		return;
	e->mem.technique = tech;
	e->mem.target_pid = target;
	e->mem.request = 0;
	e->mem.path_len = len;
	bpf_probe_read_kernel(e->mem.path, sizeof(e->mem.path), sc->buf);
	submit_event(c, s, e);
}

#endif
