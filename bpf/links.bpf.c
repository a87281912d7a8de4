// SPDX-License-Identifier: GPL-2.0
/* link, symlink and rename whose old or new name is watched are reported (access link|rename),
 * so a watched file given an innocent name is known; userspace then adds the inode under its
 * new name to watched_inodes. The names are the caller's strings made absolute against the
 * dirfd/cwd in the kernel: these syscalls hand us no struct file. */
#include "common.h"
#include "open_exit.h"

#define NR_RENAME 82
#define NR_LINK 86
#define NR_SYMLINK 88
#define NR_RENAMEAT 264
#define NR_LINKAT 265
#define NR_SYMLINKAT 266
#define NR_RENAMEAT2 316

BEE_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_scratch);
} link_scratch SEC(".maps");

/* The two names of a call live in two scratches, chosen by number: a global function takes
 * scalars. */
#define LINK_NEW 0      /* link_scratch */
#define LINK_OLD 1      /* path_scratch */

static __always_inline struct path_scratch *link_name_scratch(__u32 which)
{
	__u32 zero = 0;

	if (which == LINK_NEW)
		return bpf_map_lookup_elem(&link_scratch, &zero);
	return bpf_map_lookup_elem(&path_scratch, &zero);
}

/* The caller's name in scratch `which`: made absolute against dfd (AT_FDCWD: the cwd), or as
 * given (a symlink's target, never resolved by the call). Its last SCRATCH_LEN - 1 bytes when
 * longer; returns its length (0: none). A global function, like link_candidate: the verifier
 * walks each once per program, apart from its callers' states. Inlined, the second name's walk
 * and filter test were verified once per outcome of the first's (about 350,000 instructions
 * and most of the start-up time). */
__noinline __u32 link_name(__u32 which, long dfd, unsigned long upath, __u32 as_given)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct path_scratch *sc = link_name_scratch(which);
	__u32 start = 0, end = 0, wflags = 0, len, off = 0;
	struct dpath_buf *w;
	long n;

	if (!sc)
		return 0;
	sc->zero = 0;
	if (as_given) {
		n = bpf_probe_read_user_str(sc->buf, SCRATCH_LEN, (const char *)upath);
		return n > 1 ? (n - 1) & (SCRATCH_LEN - 1) : 0;
	}
	w = vfs_compose(t, dfd, (const char *)upath, &start, &end, &wflags);
	if (!w || end <= start)
		return 0;
	len = end - start;
	if (len > SCRATCH_LEN - 1) {
		off = len - (SCRATCH_LEN - 1);
		len = SCRATCH_LEN - 1;
	}
	bpf_probe_read_kernel(sc->buf, len & (SCRATCH_LEN - 1), &w->buf[(start + off) & DPATH_MASK]);
	sc->buf[len & (SCRATCH_LEN - 1)] = 0;
	return len;
}

/* Whether the filter names the path link_name() left in scratch `which` (len < SCRATCH_LEN:
 * the mask only tells the verifier so). */
__noinline int link_candidate(__u32 which, __u32 len)
{
	struct path_scratch *sc = link_name_scratch(which);

	len &= SCRATCH_LEN - 1;
	return sc && len && path_is_candidate(sc, len);
}

static __always_inline int link_exit(long ret, long nr, int odfd, const char *oldname, int ndfd,
				     const char *newname, int old_is_target)
{
	struct settings *s = get_settings();
	struct task_struct *t = bpf_get_current_task_btf();
	struct path_scratch *a, *b;
	struct counters *c;
	struct event *e;
	__u32 zero = 0, nlen, olen, tail, lost = 0, nchunks, nold;
	__u8 match = 0;
	__u64 chain;
	struct fold_key k = { .tgid = t->tgid, .type = EV_FILE, .b = nr };

	if (ret != 0 || skip_event(s, PROBE_FILE))
		return 0;
	c = get_counters();
	if (!c)
		return 0;
	nlen = link_name(LINK_NEW, ndfd, (unsigned long)newname, 0);
	if (!nlen)
		return 0;
	if (link_candidate(LINK_NEW, nlen))
		match |= MATCH_NAME;
	olen = link_name(LINK_OLD, odfd, (unsigned long)oldname, old_is_target);
	if (link_candidate(LINK_OLD, olen))
		match |= MATCH_OLD;
	if (!match)
		return 0;
	/* The names again, as the verifier knows them here (map values). */
	a = bpf_map_lookup_elem(&path_scratch, &zero);
	b = bpf_map_lookup_elem(&link_scratch, &zero);
	if (!a || !b)
		return 0;
	c->candidates++;
	chain = bpf_ktime_get_boot_ns();
	tail = nlen > FILE_TAIL ? FILE_TAIL : nlen;
	nchunks = send_chunks(c, s, b->buf, 0, nlen - tail, chain, CHUNK_PATH, &lost);
	nold = send_chunks(c, s, a->buf, 0, olen, chain, CHUNK_OLD, &lost);
	e = crit_begin(c, EV_FILE);
	if (!e)
		return 0;
	__builtin_memset(&e->file, 0, sizeof(e->file) - FILE_TAIL);
	e->h.ts_ns = chain;
	e->h.flags = EVF_LINK_OP | EVF_CHAINED | (lost ? EVF_CHUNK_LOST : 0);
	e->file.path_len = nlen;
	e->file.req_len = olen;
	e->file.syscall = nr;
	e->file.match = match;
	e->file.nchunks = nchunks;
	e->file.nreq = nold;
	bpf_probe_read_kernel(e->file.path, FILE_TAIL, &b->buf[(nlen - tail) & (SCRATCH_LEN - 1)]);
	k.a = chain;            /* each link/rename is its own event */
	crit_deliver(c, s, e, &k, TIER_HIGH);
	return 0;
}

/* The default (files.bpf.c's raw_tp/sys_exit) decides these from the one program that sees every
 * syscall exit: seven syscall tracepoints would add a perf handler to every syscall exit (about
 * 50 ns here, whatever the syscall). A global function, so the verifier walks it once, apart
 * from the open path; only successful calls reach it. The tracepoint programs below are the
 * max-performance profile's. */
__noinline int links_decide(long nr, long odfd, unsigned long oldname, long ndfd,
			    unsigned long newname)
{
	return link_exit(0, nr, odfd, (const char *)oldname, ndfd, (const char *)newname,
			 nr == NR_SYMLINK || nr == NR_SYMLINKAT);
}

static __always_inline int links_sys_exit(long nr, struct pt_regs *r)
{
	switch (nr) {
	case NR_LINK:
	case NR_SYMLINK:
	case NR_RENAME:
		return links_decide(nr, AT_FDCWD, r->di, AT_FDCWD, r->si);
	case NR_SYMLINKAT:
		return links_decide(nr, AT_FDCWD, r->di, r->si, r->dx);
	case NR_LINKAT:
	case NR_RENAMEAT:
	case NR_RENAMEAT2:
		return links_decide(nr, r->di, r->si, r->dx, r->r10);
	}
	return 0;
}

static __always_inline struct pt_regs *regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

SEC("tp/syscalls/sys_exit_link")
int link_link(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *r = regs();

	return link_exit(ctx->ret, NR_LINK, AT_FDCWD, (void *)r->di, AT_FDCWD, (void *)r->si, 0);
}

SEC("tp/syscalls/sys_exit_linkat")
int link_linkat(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *r = regs();

	return link_exit(ctx->ret, NR_LINKAT, r->di, (void *)r->si, r->dx, (void *)r->r10, 0);
}

SEC("tp/syscalls/sys_exit_symlink")
int link_symlink(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *r = regs();

	return link_exit(ctx->ret, NR_SYMLINK, AT_FDCWD, (void *)r->di, AT_FDCWD, (void *)r->si, 1);
}

SEC("tp/syscalls/sys_exit_symlinkat")
int link_symlinkat(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *r = regs();

	return link_exit(ctx->ret, NR_SYMLINKAT, AT_FDCWD, (void *)r->di, r->si, (void *)r->dx, 1);
}

SEC("tp/syscalls/sys_exit_rename")
int link_rename(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *r = regs();

	return link_exit(ctx->ret, NR_RENAME, AT_FDCWD, (void *)r->di, AT_FDCWD, (void *)r->si, 0);
}

SEC("tp/syscalls/sys_exit_renameat")
int link_renameat(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *r = regs();

	return link_exit(ctx->ret, NR_RENAMEAT, r->di, (void *)r->si, r->dx, (void *)r->r10, 0);
}

SEC("tp/syscalls/sys_exit_renameat2")
int link_renameat2(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *r = regs();

	return link_exit(ctx->ret, NR_RENAMEAT2, r->di, (void *)r->si, r->dx, (void *)r->r10, 0);
}
