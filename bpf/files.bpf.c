// SPDX-License-Identifier: GPL-2.0
/* Secret-file monitor: every open is inspected with a few bit tests against the candidate filter
 * (see struct file_filter); only candidates reach the ring. The cost stays flat as patterns grow
 * because the number of keys tested per open does not depend on the number of patterns. */
#define BEE_DEFINE_MAPS
#include "common.h"
#include "file_match.h"

/* Keeps the record layouts in the object's BTF, where tests compare them with records.py. */
const struct event *btf_anchor_event __attribute__((unused));

#define O_ACCMODE 00000003
#define O_CREAT   00000100
#define O_TRUNC   00001000
#define O_APPEND  00002000

static __always_inline int handle_open(int dirfd, const char *upath, __u32 open_flags, __u32 nr)
{
	struct settings *s = get_settings();
	struct path_scratch *sc;
	struct counters *c;
	struct event *e;
	__u32 zero = 0, len, off, target = 0;
	long n;
	int hit;

	if (skip_event(s, PROBE_FILE | PROBE_MEMORY))
		return 0;
	sc = bpf_map_lookup_elem(&path_scratch, &zero);
	c = get_counters();
	if (!sc || !c)
		return 0;
	sc->zero = 0;
	n = bpf_probe_read_user_str(sc->buf, SCRATCH_LEN, upath);
	if (n <= 1)
		return 0;
	len = (n - 1) & (SCRATCH_LEN - 1);
	c->inspected++;

	hit = proc_access_kind(sc, len, s, &target);
	if (hit) {
		emit_proc_access(c, s, sc, len, hit, target);
		return 0;
	}
	if (!(s->probes & PROBE_FILE) || !path_is_candidate(sc, len))
		return 0;
	c->candidates++;

	/* Secret-file opens travel on the critical lane: never sampled or shed. */
	e = reserve_event(c, LANE_CRITICAL, EV_FILE);
	if (!e)
		return 0;
	e->file.dirfd = dirfd;
	e->file.open_flags = open_flags;
	e->file.path_len = len;
	e->file.syscall = nr;
	if ((open_flags & O_ACCMODE) || (open_flags & (O_CREAT | O_TRUNC | O_APPEND)))
		e->h.flags |= EVF_WRITE;
	if (sc->buf[0] == '/' || !compose_absolute(e, sc, len, dirfd)) {
		/* Longer paths keep their tail: the basename is what identifies a secret. */
		off = 0;
		if (len > PATH_LEN) {
			off = (len - PATH_LEN) & (SCRATCH_LEN - 1);
			e->h.flags |= EVF_TRUNCATED;
		}
		bpf_probe_read_kernel(e->file.path, PATH_LEN, sc->buf + off);
	}
	submit_event(c, s, e);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int open_openat(struct trace_event_raw_sys_enter *ctx)
{
	return handle_open((int)ctx->args[0], (const char *)ctx->args[1], (__u32)ctx->args[2],
			   (__u32)ctx->id);
}

SEC("tp/syscalls/sys_enter_open")
int open_open(struct trace_event_raw_sys_enter *ctx)
{
	return handle_open(-100 /* AT_FDCWD */, (const char *)ctx->args[0], (__u32)ctx->args[1],
			   (__u32)ctx->id);
}

SEC("tp/syscalls/sys_enter_openat2")
int open_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return handle_open((int)ctx->args[0], (const char *)ctx->args[1], (__u32)how.flags,
			   (__u32)ctx->id);
}

char LICENSE[] SEC("license") = "GPL";
