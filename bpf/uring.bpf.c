// SPDX-License-Identifier: GPL-2.0
/* io_uring: requests never pass through the syscall tracepoints. An OPENAT/OPENAT2 request is
 * decided at completion on the file it installed in the fd table or the ring's fixed-file
 * table (open_decide, the same as a syscall), and each
 * process that sets up a ring is reported once (low severity). */
#include "common.h"
#include "open_exit.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} uring_seen SEC(".maps");

#define IORING_FILE_INDEX_ALLOC (~0U)
#define FFS_FLAGS 3UL                  /* io_uring/filetable.h: FFS_NOWAIT | FFS_ISREG */

/* A fixed-file open installs no fd: the file went into the ring's table at slot file_slot - 1,
 * or at the slot returned when the kernel picked it (IORING_FILE_INDEX_ALLOC). */
static __always_inline struct file *fixed_file(struct io_kiocb *req, __u32 file_slot, long res)
{
	struct io_rsrc_data *table;
	struct io_rsrc_node *node = 0;
	__u32 slot;

	slot = file_slot == IORING_FILE_INDEX_ALLOC ? (__u32)res : file_slot - 1;
	table = &req->ctx->file_table.data;
	if (slot >= table->nr ||
	    bpf_probe_read_kernel(&node, sizeof(node), &table->nodes[slot]) || !node)
		return 0;
	node = VFS_CAST(struct io_rsrc_node, node);
	return VFS_CAST(struct file, (void *)(node->file_ptr & ~FFS_FLAGS));
}

/* One open_decide call site for both kinds of open: each inlined copy is verified on its own. */
SEC("tp/io_uring/io_uring_complete")
int uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	struct io_kiocb *req = VFS_CAST(struct io_kiocb, ctx->req);
	struct task_struct *t;
	struct settings *s;
	struct io_open *open;
	struct file *f;
	long res = ctx->res, fd = -1;
	__u8 op;

	if (!req)
		return 0;
	op = req->opcode;
	if (op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2)
		return 0;
	t = bpf_get_current_task_btf();
	s = open_settings(t, res);
	if (!s)
		return 0;
	open = VFS_CAST(struct io_open, &req->cmd);
	if (open->file_slot) {
		f = fixed_file(req, open->file_slot, res);
	} else {
		f = vfs_fd_file(t, res);
		fd = res;
	}
	if (!f)
		return 0;
	return open_decide(s, t, f, fd, op, ORIGIN_URING, 0);
}

SEC("tp/io_uring/io_uring_create")
int uring_create(struct trace_event_raw_io_uring_create *ctx)
{
	struct settings *s = get_settings();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct counters *c;
	struct event *e;
	__u8 one = 1;

	if (skip_event(s, PROBE_FILE | PROBE_NETWORK | PROBE_MEMORY))
		return 0;
	if (bpf_map_lookup_elem(&uring_seen, &tgid))
		return 0;
	bpf_map_update_elem(&uring_seen, &tgid, &one, BPF_ANY);
	c = get_counters();
	e = crit_begin(c, EV_URING);
	if (!e)
		return 0;
	__builtin_memset(&e->uring, 0, sizeof(e->uring));
	e->uring.fd = ctx->fd;
	e->uring.sq_entries = ctx->sq_entries;
	e->uring.cq_entries = ctx->cq_entries;
	e->uring.flags = ctx->flags;
	crit_deliver_unique(c, s, e);
	return 0;
}
