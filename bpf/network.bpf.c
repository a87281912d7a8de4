// SPDX-License-Identifier: GPL-2.0
/* Network monitor: outbound TCP connects and UDP sends (IPv4 and IPv6) at syscall entry, so
 * refused and failing connections are reported too. The destination is read from the user's
 * sockaddr; the protocol from the fd's struct socket (CO-RE), or inferred when unreadable.
 * Records go on the bulk lane. UDP sends to port 53 carry the head of the payload so userspace
 * can decode the DNS query name (bee_trace/dns.py). */
#include "common.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_MPTCP 262
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define MSG_FASTOPEN 0x20000000
#define DNS_PORT 53
#define NET_PAYLOAD_LEN 64

/* (tgid << 32 | fd) of UDP sockets connected to port 53: glibc's resolver connects, then sends
 * without an address; only sends on these sockets are looked at further. Validated on every hit
 * (the fd may have been reused), so a stale entry costs a lookup, never a wrong record. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} dns_socks SEC(".maps");

struct sock_info {
	__u16 protocol;
	__u16 type;
	struct sock *sk;
};

/* The struct sock behind an fd of the current task, or 0 when the fd is not a socket. */
static __always_inline struct sock *fd_sock(int fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds;
	struct file *f = 0;
	struct socket *sock;
	umode_t mode;

	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(f, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : 0;
}

static __always_inline int sock_info(int fd, struct sock_info *si)
{
	struct sock *sk = fd_sock(fd);

	if (!sk)
		return -1;
	si->sk = sk;
	si->protocol = BPF_CORE_READ(sk, sk_protocol);
	si->type = BPF_CORE_READ(sk, sk_type);
	if (si->protocol == IPPROTO_MPTCP)
		si->protocol = IPPROTO_TCP;
	return 0;
}

struct dest {
	__u16 family;
	__u16 dport;
	__u16 flags;
	__u16 _pad;
	__u8 daddr[16];
};

/* Normalise a destination: IPv4-mapped IPv6 becomes IPv4; loopback is flagged. Returns 0 when
 * it is not worth a record (unspecified address). */
static __always_inline int finish_addr(struct dest *d)
{
	__u8 *a = d->daddr;
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
	if (d->family == AF_INET6 && !w[0] && !w[1] && w[2] == 0xffff0000 /* ::ffff:0:0/96, LE */) {
		d->family = AF_INET;
		w[0] = w[3];
		w[1] = w[2] = w[3] = 0;
		__builtin_memcpy(a, w, 16);
	}
	if (d->family == AF_INET) {
		if (!w[0])
			return 0;
		if (a[0] == 127)
			d->flags |= EVF_LOOPBACK;
		return 1;
	}
	if (!(w[0] | w[1] | w[2] | w[3]))
		return 0;
	if (!(w[0] | w[1] | w[2]) && w[3] == 0x01000000 /* ::1, LE */)
		d->flags |= EVF_LOOPBACK;
	return 1;
}

static __always_inline void fill_net(struct event *e, struct dest *d, __u8 proto, __u16 nr, int fd)
{
	__builtin_memset(&e->net, 0, sizeof(e->net));
	e->h.flags = d->flags;
	e->net.family = d->family;
	e->net.dport = d->dport;
	e->net.protocol = proto;
	e->net.syscall = nr;
	e->net.fd = fd;
	__builtin_memcpy(e->net.daddr, d->daddr, 16);
}

static __always_inline void copy_payload(struct event *e, const void *buf, __u64 len)
{
	__u32 n = len > NET_PAYLOAD_LEN ? NET_PAYLOAD_LEN : (__u32)len;

	e->net.payload_len = len > 0xffffffffULL ? 0xffffffff : (__u32)len;
	if (!buf)
		return;
	n &= 0x7f;
	if (n < 1 || n > NET_PAYLOAD_LEN)
		return;
	if (bpf_probe_read_user(e->net.payload, n, buf))
		e->h.flags |= EVF_READ_FAULT;
}

/* Aggregation key of a destination: identical connects/sends of one process fold together. */
static __always_inline __u64 dest_key(struct dest *d, __u8 proto)
{
	__u64 w[2], x;

	__builtin_memcpy(w, d->daddr, 16);
	x = (w[0] ^ (w[1] * 0x9E3779B97F4A7C15ULL)) * 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 31;
	x ^= ((__u64)d->dport << 32) | ((__u64)d->family << 16) | proto;
	x *= 0x94d049bb133111ebULL;
	return (x ^ (x >> 29)) | 1;     /* 0 means "do not aggregate" */
}

/* A destination given as a user sockaddr (connect, sendto, sendmsg msg_name). `guess` is the
 * protocol assumed when the socket cannot be read; `is_connect` marks connect(2). */
static __always_inline int handle_dest(__u16 nr, int fd, const void *uaddr, __u64 addrlen,
				       const void *buf, __u64 buflen, __u8 guess, int is_connect,
				       __u32 send_flags)
{
	struct settings *s = get_settings();
	struct sock_info si = {};
	struct dest d = {};
	struct counters *c;
	struct event *e;
	__u8 raw[28] = {};
	__u16 port = 0;
	__u32 need = 0, n;
	__u8 proto = guess;
	struct agg_value *slot;
	int dns, lane = LANE_BULK;

	if (skip_event(s, PROBE_NETWORK) || !uaddr)
		return 0;
	if (bpf_probe_read_user(&d.family, sizeof(d.family), uaddr)) {
		d.flags |= EVF_READ_FAULT;
	} else if (d.family == AF_INET) {
		need = 16;
	} else if (d.family == AF_INET6) {
		need = 28;
	} else {
		return 0;       /* AF_UNIX, netlink, AF_UNSPEC (disconnect), others */
	}
	if (!sock_info(fd, &si)) {
		if (si.protocol != IPPROTO_TCP && si.protocol != IPPROTO_UDP)
			return 0;       /* raw, ICMP, SCTP...: not in scope */
		proto = si.protocol;
	}
	/* An address on a TCP send is ignored by the kernel unless it is a fast-open connect. */
	if (!is_connect && proto == IPPROTO_TCP && !(send_flags & MSG_FASTOPEN))
		return 0;

	if (need) {
		n = need;
		if (addrlen < need) {
			d.flags |= EVF_READ_FAULT;      /* malformed length: the kernel will refuse it */
			n = (__u32)addrlen;
		} else if (addrlen > 128) {
			d.flags |= EVF_READ_FAULT;
		}
		n &= 0x1f;
		if (n > 28)
			n = 28;
		if (n >= 2 && bpf_probe_read_user(raw, n, uaddr))
			d.flags |= EVF_READ_FAULT;
		__builtin_memcpy(&port, raw + 2, 2);
		d.dport = __builtin_bswap16(port);
		if (d.family == AF_INET)
			__builtin_memcpy(d.daddr, raw + 4, 4);
		else
			__builtin_memcpy(d.daddr, raw + 8, 16);
		/* With a fault, keep what is known (even an all-zero address). */
		if (!finish_addr(&d) && !(d.flags & EVF_READ_FAULT))
			return 0;
	}

	/* DNS queries are never folded: each names a different host. */
	dns = proto == IPPROTO_UDP && d.dport == DNS_PORT;
	c = get_counters();
	/* A blocked destination is security-critical: critical lane, never sampled or folded. */
	if (dest_blocked(d.family, d.daddr)) {
		lane = LANE_CRITICAL;
		d.flags |= EVF_BLOCKED;
		slot = 0;
	} else if (!bulk_admit(c, s, EV_NET, (d.flags & EVF_LOOPBACK) ? PRIO_LOW : PRIO_MEDIUM,
			       dns ? 0 : dest_key(&d, proto), &slot)) {
		return 0;
	}
	e = reserve_event(c, lane, EV_NET);
	if (!e) {
		if (slot)
			slot->window_start = 0;
		return 0;
	}
	fill_net(e, &d, proto, nr, fd);
	/* In block mode the cgroup hook (block.bpf.c) will refuse this one. */
	if ((d.flags & EVF_BLOCKED) && s->block)
		e->net.action = 1;
	agg_store_sample(slot, e);
	if (dns) {
		if (is_connect) {
			__u64 key = (bpf_get_current_pid_tgid() & 0xffffffff00000000ULL) | (__u32)fd;
			__u8 one = 1;

			bpf_map_update_elem(&dns_socks, &key, &one, BPF_ANY);
		} else {
			copy_payload(e, buf, buflen);
		}
	}
	submit_event(c, s, e);
	return 0;
}

/* A send without an address: only sends on known DNS sockets are reported (with the payload
 * head), the destination read from the connected socket. */
static __always_inline int handle_connected_send(__u16 nr, int fd, const void *buf, __u64 buflen)
{
	__u64 key = (bpf_get_current_pid_tgid() & 0xffffffff00000000ULL) | (__u32)fd;
	struct settings *s;
	struct counters *c;
	struct agg_value *slot;
	struct event *e;
	struct dest d = {};
	struct sock *sk;

	if (!bpf_map_lookup_elem(&dns_socks, &key))
		return 0;
	s = get_settings();
	if (skip_event(s, PROBE_NETWORK))
		return 0;
	sk = fd_sock(fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP ||
	    __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport)) != DNS_PORT) {
		bpf_map_delete_elem(&dns_socks, &key);
		return 0;
	}
	d.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	d.dport = DNS_PORT;
	if (d.family == AF_INET)
		BPF_CORE_READ_INTO(&d.daddr, sk, __sk_common.skc_daddr);
	else if (d.family == AF_INET6)
		BPF_CORE_READ_INTO(&d.daddr, sk, __sk_common.skc_v6_daddr);
	else
		return 0;
	finish_addr(&d);
	c = get_counters();
	if (!bulk_admit(c, s, EV_NET, PRIO_MEDIUM, 0, &slot))
		return 0;
	e = reserve_event(c, LANE_BULK, EV_NET);
	if (!e)
		return 0;
	fill_net(e, &d, IPPROTO_UDP, nr, fd);
	copy_payload(e, buf, buflen);
	submit_event(c, s, e);
	return 0;
}

SEC("tp/syscalls/sys_enter_connect")
int net_connect(struct trace_event_raw_sys_enter *ctx)
{
	return handle_dest((__u16)ctx->id, (int)ctx->args[0], (const void *)ctx->args[1],
			   (__u32)ctx->args[2], 0, 0, IPPROTO_TCP, 1, 0);
}

SEC("tp/syscalls/sys_enter_sendto")
int net_sendto(struct trace_event_raw_sys_enter *ctx)
{
	const void *addr = (const void *)ctx->args[4];

	if (!addr)
		return handle_connected_send((__u16)ctx->id, (int)ctx->args[0],
					     (const void *)ctx->args[1], ctx->args[2]);
	return handle_dest((__u16)ctx->id, (int)ctx->args[0], addr, (__u32)ctx->args[5],
			   (const void *)ctx->args[1], ctx->args[2], IPPROTO_UDP, 0,
			   (__u32)ctx->args[3]);
}

static __always_inline int handle_msghdr(__u16 nr, int fd, const struct user_msghdr *um,
					 __u32 send_flags)
{
	struct user_msghdr m = {};
	struct iovec iov = {};

	if (!um)
		return 0;
	if (bpf_probe_read_user(&m, sizeof(m), um))
		return 0;       /* the kernel will fail with EFAULT: nothing is sent */
	if (m.msg_iov && m.msg_iovlen)
		bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov);
	if (!m.msg_name)
		return handle_connected_send(nr, fd, iov.iov_base, iov.iov_len);
	return handle_dest(nr, fd, m.msg_name, (__u32)m.msg_namelen, iov.iov_base, iov.iov_len,
			   IPPROTO_UDP, 0, send_flags);
}

SEC("tp/syscalls/sys_enter_sendmsg")
int net_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return handle_msghdr((__u16)ctx->id, (int)ctx->args[0],
			     (const struct user_msghdr *)ctx->args[1], (__u32)ctx->args[2]);
}

/* The first message stands for the batch (glibc sends the A and AAAA queries together). */
SEC("tp/syscalls/sys_enter_sendmmsg")
int net_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (!(__u32)ctx->args[2])
		return 0;
	return handle_msghdr((__u16)ctx->id, (int)ctx->args[0],
			     (const struct user_msghdr *)ctx->args[1], (__u32)ctx->args[3]);
}

