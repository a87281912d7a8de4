/* SPDX-License-Identifier: GPL-2.0 */
/* The secret-file candidate filter: keys of a "/parent/basename" string tested against the
 * bitmap userspace built from the globs. Key derivation must agree with bee_trace/patterns.py
 * (a test runs both on the same paths). */
#ifndef BEE_FILE_MATCH_H
#define BEE_FILE_MATCH_H

#include "common.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define NAME_MAX_LEN 255

/* One multiply (Fibonacci hashing of value ^ a per-kind constant): up to eight keys are tested
 * on every open. */
static __always_inline __u32 filter_bit(__u64 value, __u32 kind)
{
	__u64 x = (value ^ ((__u64)kind * 0xff51afd7ed558ccdULL)) * 0x9E3779B97F4A7C15ULL;

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
	v = *(__u64 *)((char *)sc + off);     /* unaligned loads are fine on x86 */
	return v;
}

/* The key hash of one path component: FNV-1a over its 8-byte little-endian words (the last one
 * zero-padded), so a typical name costs one or two multiplies. `p` points into a scratch buffer
 * with at least 8 readable bytes past the name (the names stay far below the buffer's end). */
#define NAME_WORDS ((NAME_MAX_LEN + 7) / 8)
struct name_hash_ctx {
	const char *p;
	__u64 h;
	__u32 len;
};

/* One word per call: bpf_loop() is verified once, an open-coded loop once per length. */
static long name_hash_step(__u64 i, struct name_hash_ctx *x)
{
	__u32 off = i * 8, rem;
	__u64 w;

	if (off >= x->len)
		return 1;
	w = *(const __u64 *)(x->p + (off & 255));
	rem = x->len - off;
	if (rem < 8)
		w &= (1ULL << (rem * 8)) - 1;
	x->h = (x->h ^ w) * FNV_PRIME;
	return 0;
}

static __always_inline __u64 name_hash(const char *p, __u32 len)
{
	struct name_hash_ctx x = { .p = p, .h = FNV_OFFSET, .len = len };

	bpf_loop(NAME_WORDS, name_hash_step, &x, 0);
	return x.h;
}

/* The same hash with names of up to SHORT_NAME_LEN bytes (nearly all) hashed inline: a bpf_loop
 * callback is a call and a return per word, which costs more than the multiply. For the open
 * path only: the unrolled branches multiply the verifier's states wherever it is used. */
#define SHORT_NAME_WORDS 5
#define SHORT_NAME_LEN (SHORT_NAME_WORDS * 8)
static __always_inline __u64 name_hash_short(const char *p, __u32 len)
{
	__u64 h = FNV_OFFSET, w;
	__u32 i, off, rem;

	if (len > SHORT_NAME_LEN)
		return name_hash(p, len);
#pragma clang loop unroll(full)
	for (i = 0; i < SHORT_NAME_WORDS; i++) {
		off = i * 8;
		if (off >= len)
			break;
		w = *(const __u64 *)(p + off);
		rem = len - off;
		if (rem < 8)
			w &= (1ULL << (rem * 8)) - 1;
		h = (h ^ w) * FNV_PRIME;
	}
	return h;
}

/* What the filter tests of a path: its basename's and parent's hashes, the 8 bytes ending at
 * the last character (suffix keys) and the first 8 of the basename (prefix keys). */
struct path_keys {
	__u64 base_hash;
	__u64 dir_hash;
	__u64 tail;
	__u64 head;
	__u32 has_dir;
};

static __always_inline int keys_in_filter(struct path_keys *k, __u32 slot)
{
	struct file_filter *f = bpf_map_lookup_elem(&file_filter, &slot);
	__u64 v;
	__u32 i;

	if (!f)
		return 0;
	if (f->match_all)
		return 1;
	if (filter_has(f, k->base_hash, KEY_BASENAME))
		return 1;
	if (k->has_dir && filter_has(f, k->dir_hash, KEY_DIR))
		return 1;
#pragma clang loop unroll(full)
	for (i = 1; i <= 8; i++) {
		if (f->suffix_lengths & (1U << i)) {
			v = i == 8 ? k->tail : k->tail >> (64 - 8 * i);
			if (filter_has(f, v, KEY_SUFFIX + i))
				return 1;
		}
		if (f->prefix_lengths & (1U << i)) {
			v = i == 8 ? k->head : k->head & ((1ULL << (8 * i)) - 1);
			if (filter_has(f, v, KEY_PREFIX + i))
				return 1;
		}
	}
	return 0;
}

/* Keys of sc->buf[0, len) = ".../parent/basename" whose last two '/' are at `slash` (the one
 * before the basename) and `slash2` (before the parent; -1 when there is no second '/'). */
static __always_inline void split_keys_as(struct path_scratch *sc, __u32 len, __s32 slash,
					  __s32 slash2, struct path_keys *k, int unrolled)
{
	__u32 b = (__u32)(slash + 1) & (SCRATCH_LEN - 1);
	__u32 d = (__u32)(slash2 + 1) & (SCRATCH_LEN - 1);
	__u32 bn = (len - b) & NAME_MAX_LEN, dn = ((__u32)slash - d) & NAME_MAX_LEN;

	k->base_hash = unrolled ? name_hash_short(&sc->buf[b], bn) : name_hash(&sc->buf[b], bn);
	k->head = load_u64(sc, 8 + b);
	k->tail = load_u64(sc, len);
	k->has_dir = slash >= 0;
	if (k->has_dir)
		k->dir_hash = unrolled ? name_hash_short(&sc->buf[d], dn) : name_hash(&sc->buf[d], dn);
}

static __always_inline void split_keys(struct path_scratch *sc, __u32 len, __s32 slash,
				       __s32 slash2, struct path_keys *k)
{
	split_keys_as(sc, len, slash, slash2, k, 0);
}

/* name_candidate's: the split is known and the names are mostly short. */
static __always_inline void split_keys_short(struct path_scratch *sc, __u32 len, __s32 slash,
					     __s32 slash2, struct path_keys *k)
{
	split_keys_as(sc, len, slash, slash2, k, 1);
}

struct split_ctx {
	struct path_scratch *sc;
	__s32 len;
	__s32 slash;
	__s32 slash2;
};

/* Eight characters of the backward search for the last two '/'. */
#define SPLIT_UNROLL 8
static long split_step(__u64 i, struct split_ctx *x)
{
	int j;

#pragma clang loop unroll(full)
	for (j = 0; j < SPLIT_UNROLL; j++) {
		int idx = x->len - 1 - (int)(i * SPLIT_UNROLL + j);

		if (idx < 0)
			return 1;
		if (x->sc->buf[idx & (SCRATCH_LEN - 1)] != '/')
			continue;
		if (x->slash >= 0) {
			x->slash2 = idx;
			return 1;
		}
		x->slash = idx;
	}
	return 0;
}

/* For a path whose split is unknown (link/rename names composed from the caller's string). A
 * component longer than NAME_MAX cannot name a file: it is hashed modulo that length, harmless
 * for a superset filter. */
static __always_inline int path_in_filter(struct path_scratch *sc, __u32 len, __u32 slot)
{
	struct split_ctx x = { .sc = sc, .len = (__s32)len, .slash = -1, .slash2 = -1 };
	struct path_keys k = {};

	bpf_loop(2 * (NAME_MAX_LEN + 1) / SPLIT_UNROLL + 1, split_step, &x, 0);
	split_keys(sc, len, x.slash, x.slash2, &k);
	return keys_in_filter(&k, slot);
}

static __always_inline int path_is_candidate(struct path_scratch *sc, __u32 len)
{
	return path_in_filter(sc, len, FILTER_ALL);
}

/* The watched_inode_slots byte of an inode (open_exit.h); must agree with
 * bee_trace/inodes.py inode_slot() (tests/kernel/test_filter_model.py runs both). */
#define INODE_SLOTS_LOG2 15
static __always_inline __u32 inode_slot(__u64 ino, __u32 dev)
{
	__u64 x = (ino ^ ((__u64)dev * 0xff51afd7ed558ccdULL)) * 0x9E3779B97F4A7C15ULL;

	return (__u32)(x >> (64 - INODE_SLOTS_LOG2));
}

#endif
