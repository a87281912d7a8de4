// SPDX-License-Identifier: GPL-2.0
/* Tamper evidence aimed at the agent: signals sent to it (signal:signal_generate) and bpf()
 * calls by other processes that take an fd of one of its programs, maps or links by id (the
 * first step of detaching, replacing or writing them; `bpftool prog|map|link show` does it too).
 * The agent writes the ids of its objects, and of its threads (kind TAMPER_T_PROCESS), into
 * agent_ids at start. Always loaded, whatever the probe types. */
#include "tamper.h"

#define SIGCHLD 17
#define SIGTSTP 20
#define SIGURG 23
#define SIGWINCH 28
#define SIGSTOP 19
#define BPF_CMD_PROG_GET_FD_BY_ID 13
#define BPF_CMD_MAP_GET_FD_BY_ID 14
#define BPF_CMD_LINK_GET_FD_BY_ID 30

struct agent_id {
	__u32 kind;              /* enum tamper_target */
	__u32 id;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct agent_id);
	__type(value, __u8);
} agent_ids SEC(".maps");

SEC("tp/signal/signal_generate")
int tamper_signal(struct trace_event_raw_signal_generate *ctx)
{
	/* Every context field read once, up front: the verifier refuses ctx loads at a computed
	 * offset, which clang produces when a field is read again later. */
	__u32 pid = ctx->pid;
	int sig = ctx->sig, code = ctx->code;
	struct settings *s = get_settings();
	struct agent_id k = { .kind = TAMPER_T_PROCESS, .id = pid };
	struct event *e;

	barrier_var(pid);
	if (!s || !s->self_tgid)
		return 0;
	/* Children exiting, terminal resizes, out-of-band data: the kernel's routine signals. */
	if (sig == SIGCHLD || sig == SIGWINCH || sig == SIGURG)
		return 0;
	/* The agent's main thread, or another of its threads. */
	if (pid != s->self_tgid && !bpf_map_lookup_elem(&agent_ids, &k))
		return 0;
	e = tamper_reserve(sig == SIGSTOP || sig == SIGTSTP ? TAMPER_STOP : TAMPER_SIGNAL,
			   TAMPER_T_PROCESS, pid, 0, 0);
	if (!e)
		return 0;
	e->tamper.signal = sig;
	e->tamper.code = code;
	tamper_submit(e);
	return 0;
}

SEC("tp/syscalls/sys_enter_bpf")
int tamper_bpf(struct trace_event_raw_sys_enter *ctx)
{
	struct settings *s;
	struct agent_id k = {};
	__u32 cmd = (__u32)ctx->args[0];
	__u32 id = 0;

	if (cmd == BPF_CMD_PROG_GET_FD_BY_ID)
		k.kind = TAMPER_T_PROG;
	else if (cmd == BPF_CMD_MAP_GET_FD_BY_ID)
		k.kind = TAMPER_T_MAP;
	else if (cmd == BPF_CMD_LINK_GET_FD_BY_ID)
		k.kind = TAMPER_T_LINK;
	else
		return 0;
	s = get_settings();
	if (!s || is_agent(s, bpf_get_current_pid_tgid() >> 32))
		return 0;
	/* The id is the first field of the attribute for the three commands. */
	if (bpf_probe_read_user(&id, sizeof(id), (const void *)ctx->args[1]))
		return 0;
	k.id = id;
	if (!bpf_map_lookup_elem(&agent_ids, &k))
		return 0;
	return emit_tamper(TAMPER_BPF, k.kind, s->self_tgid, id, cmd);
}
