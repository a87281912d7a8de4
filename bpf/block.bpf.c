// SPDX-License-Identifier: GPL-2.0
/* network.mode: block. cgroup connect/sendmsg hooks refuse blocked destinations (the caller
 * gets EPERM). The event itself comes from the syscall tracepoint in network.bpf.c, which sees
 * the same block list and reports action "blocked" on the critical lane. */
#include "common.h"

static __always_inline int allow_v4(struct bpf_sock_addr *ctx)
{
	struct settings *s = get_settings();
	__u32 ip = ctx->user_ip4;

	if (!s || !s->block)
		return 1;
	return !dest_blocked(2, (const __u8 *)&ip);
}

static __always_inline int allow_v6(struct bpf_sock_addr *ctx)
{
	struct settings *s = get_settings();
	__u32 ip[4];

	if (!s || !s->block)
		return 1;
	ip[0] = ctx->user_ip6[0];
	ip[1] = ctx->user_ip6[1];
	ip[2] = ctx->user_ip6[2];
	ip[3] = ctx->user_ip6[3];
	/* IPv4-mapped IPv6 is checked against the IPv4 list, as the tracepoint reports it. */
	if (!ip[0] && !ip[1] && ip[2] == 0xffff0000)
		return !dest_blocked(2, (const __u8 *)&ip[3]);
	return !dest_blocked(10, (const __u8 *)ip);
}

SEC("cgroup/connect4")
int block_connect4(struct bpf_sock_addr *ctx)
{
	return allow_v4(ctx);
}

SEC("cgroup/connect6")
int block_connect6(struct bpf_sock_addr *ctx)
{
	return allow_v6(ctx);
}

SEC("cgroup/sendmsg4")
int block_sendmsg4(struct bpf_sock_addr *ctx)
{
	return allow_v4(ctx);
}

SEC("cgroup/sendmsg6")
int block_sendmsg6(struct bpf_sock_addr *ctx)
{
	return allow_v6(ctx);
}

