/* SPDX-License-Identifier: GPL-2.0 */
/* Test-only: runs the kernel's candidate filter (bpf/file_match.h) on a path given by
 * tests/kernel/test_filter_model.py through BPF_PROG_TEST_RUN, so the C code is checked against
 * its Python model (bee_trace/patterns.py) on many paths and policies. Both front ends are run:
 * the split search used for link/rename names and the known split of an open's dentries. Also
 * the watched-inode slot function against bee_trace/inodes.py. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "file_match.h"

#define TEST_PATH_LEN 512

struct filter_args {
	char path[TEST_PATH_LEN];
	__u32 len;
	__s32 slash;         /* the '/' before the basename, -1 if none (Python computes it) */
	__s32 slash2;        /* the '/' before the parent, -1 if none */
	__u32 slot;          /* FILTER_ALL or FILTER_HIGH */
	/* out */
	__u32 searched;      /* path_in_filter(): the split found by the backward search */
	__u32 split;         /* keys_in_filter() on the given split (name_candidate's way) */
};

SEC("syscall")
int filter_test(struct filter_args *a)
{
	struct path_keys k = {};
	struct path_scratch *sc;
	__u32 zero = 0, len = a->len;

	sc = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!sc || len >= TEST_PATH_LEN)
		return 1;
	__builtin_memset(sc->buf, 0, TEST_PATH_LEN + 8);
	bpf_probe_read_kernel(sc->buf, TEST_PATH_LEN, a->path);
	a->searched = path_in_filter(sc, len, a->slot);
	split_keys_short(sc, len, a->slash, a->slash2, &k);
	a->split = keys_in_filter(&k, a->slot);
	return 0;
}

struct slot_args {
	__u64 ino;
	__u32 dev;
	__u32 slot;          /* out: inode_slot() */
};

SEC("syscall")
int slot_test(struct slot_args *a)
{
	a->slot = inode_slot(a->ino, a->dev);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
