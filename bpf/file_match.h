/* SPDX-License-Identifier: GPL-2.0 */
/* The secret-file candidate filter: keys of a "/parent/basename" string tested against the
 * bitmap userspace built from the globs. Key derivation must agree with bee_trace/patterns.py
 * (a test runs both on the same paths). */
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

static __always_inline int path_in_filter(struct path_scratch *sc, __u32 len, __u32 slot)
{
	struct walk_ctx w = { .sc = sc, .h = FNV_OFFSET, .len = (__s32)len };
	struct file_filter *f;
	__u64 tail, v;
	__u32 i;

	f = bpf_map_lookup_elem(&file_filter, &slot);
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

static __always_inline int path_is_candidate(struct path_scratch *sc, __u32 len)
{
	return path_in_filter(sc, len, FILTER_ALL);
}

#endif
