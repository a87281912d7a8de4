// SPDX-License-Identifier: GPL-2.0
/* Egress: every outbound destination from the cgroup connect/sendmsg hooks (the kernel's own copy
 * of the address: connect, TCP fast open, each sendmmsg message, io_uring and compat calls alike),
 * DNS answers learned at socket ingress before the application can read them, the domain policy
 * enforced on both, and sockets that bypass addresses reported (and refused) at creation.
 * Attached to the cgroup v2 root, so every process of the machine is covered. */
#include "common.h"
#include <bpf/bpf_endian.h>
#include "critical.h"
#include "egress.h"

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define AF_VSOCK 40
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define NSEC 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct egress_settings);
} egress_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct egress_counters);
} egress_counters SEC(".maps");

/* address -> the names DNS answers mapped to it; sized by max_entries_per_map at load. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10000);
	__type(key, struct addr_key);
	__type(value, struct learned_value);
} learned SEC(".maps");

/* keyed hash of a policy name -> POL_* flags. One lookup per label boundary of a question name,
 * however long the lists are. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} egress_policy SEC(".maps");

/* network.dns_servers: answers are learned only from these; queries to them on port 53 pass. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct addr_key);
	__type(value, __u8);
} dns_servers SEC(".maps");

/* network.allowed_ips (CIDRs). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct blocked_v4_key);
	__type(value, __u8);
} allowed_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct blocked_v6_key);
	__type(value, __u8);
} allowed_v6 SEC(".maps");

/* Per-CPU copy of a DNS message and the text of its question name. The slack after each buffer
 * lets a fixed-size read at a masked offset stay in bounds. */
struct dns_scratch {
	__u8 msg[DNS_MSG_MAX + 32];
	char name[DNS_NAME_MAX + 32];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} dns_scratch SEC(".maps");

static __always_inline struct egress_settings *egress_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&egress_settings, &zero);
}

static __always_inline struct egress_counters *egress_stats(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&egress_counters, &zero);
}

#define EGRESS_COUNT(field) do { struct egress_counters *_ec = egress_stats(); \
	if (_ec) __sync_fetch_and_add(&_ec->field, 1); } while (0)

/* ---------------------------------------------------------------- names and the policy ---- */

/* One step of the name hash (mirrored by bee_trace/egress/policy.py). Fed the name from its
 * last character backwards, so the value after a label boundary is the hash of that suffix.
 * The basis is a per-run secret: names are attacker-chosen, collisions must not be computable. */
static __always_inline __u64 name_step(__u64 h, __u8 c)
{
	h = (h ^ c) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static __always_inline __u64 name_final(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return (h ^ (h >> 33)) | 1;     /* 0: "no name" */
}

static __always_inline __u32 policy_flags(__u64 h)
{
	__u64 k = name_final(h);
	__u32 *v = bpf_map_lookup_elem(&egress_policy, &k);

	return v ? *v : 0;
}

struct hash_ctx {
	struct dns_scratch *sc;
	__s32 len;
	__u32 verdict;
	__u64 h;
};

/* Backward over the question name: at each '.' the suffix after it is a parent domain (matches
 * "x" and "*.x" entries); the whole name matches "x" entries only. */
static long hash_step(__u64 i, struct hash_ctx *w)
{
	int idx = w->len - 1 - (int)i;
	__u32 f;
	char ch;

	if (idx < 0) {
		f = policy_flags(w->h);
		if (f & POL_ALLOW)
			w->verdict |= DNS_V_ALLOWED;
		if (f & POL_BLOCK)
			w->verdict |= DNS_V_BLOCKED;
		return 1;
	}
	ch = w->sc->name[idx & (DNS_NAME_MAX - 1)];
	if (ch == '.') {
		f = policy_flags(w->h);
		if (f & (POL_ALLOW | POL_ALLOW_SUB))
			w->verdict |= DNS_V_ALLOWED;
		if (f & POL_BLOCK)
			w->verdict |= DNS_V_BLOCKED;
	}
	w->h = name_step(w->h, (__u8)ch);
	return 0;
}

/* ---------------------------------------------------------------- DNS answers ------------- */

static __always_inline __u32 msg_u8(struct dns_scratch *sc, __u32 pos)
{
	return sc->msg[pos & (DNS_MSG_MAX - 1)];
}

static __always_inline __u32 msg_u16(struct dns_scratch *sc, __u32 pos)
{
	return msg_u8(sc, pos) << 8 | msg_u8(sc, pos + 1);
}

struct qname_ctx {
	struct dns_scratch *sc;
	__u32 len;                /* message bytes copied */
	__u32 left;               /* bytes left in the current label */
	__u32 end;                /* message offset of the root label; 0 while not found */
	__u32 bad;
};

/* Forward over the question name in wire format, one byte per call, writing its text form
 * (lower case, labels joined by '.'). Wire byte i (after the first) is text character i - 1, so
 * the loop index is the only position: values carried from call to call would each be tracked
 * exactly by the verifier and multiply its states. A label holding '.' or a byte outside the LDH
 * set plus '_' makes the name malformed: its text would not say which domain it belongs to. */
static long qname_step(__u64 i, struct qname_ctx *q)
{
	__u32 pos = 12 + (__u32)i, t = (__u32)i - 1, c;

	if (pos >= q->len) {
		q->bad = 1;
		return 1;
	}
	c = msg_u8(q->sc, pos);
	if (!q->left) {
		if (c == 0) {
			q->end = pos;
			return 1;
		}
		if (c > 63 || (__u32)i + c > 253) {
			q->bad = 1;               /* compression pointer or too long */
			return 1;
		}
		if (i)
			q->sc->name[t & (DNS_NAME_MAX - 1)] = '.';
		q->left = c;
		return 0;
	}
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
		q->bad = 1;
		return 1;
	}
	q->sc->name[t & (DNS_NAME_MAX - 1)] = c;
	q->left--;
	return 0;
}

struct ans_ctx {
	struct dns_scratch *sc;
	struct egress_settings *es;
	struct counters *c;
	struct settings *s;
	__u64 name_hash;
	__u64 now;
	__u64 cgroup_id;
	__u32 uid;
	__u32 pos;
	__u32 len;
	__u32 remaining;          /* answer records still to read */
	__u32 verdict;
	__u32 name_len;
	__u32 in_fixed;           /* 0: reading an owner name, 1: at TYPE/CLASS/TTL/RDLENGTH */
};

/* A DNS record on the critical lane: learned in softirq, so no process context goes with it;
 * uid and cgroup are the receiving socket's. */
static __always_inline void emit_dns(struct ans_ctx *a, struct addr_key *k, __u32 ttl)
{
	struct counters *c = a->c;
	struct event *e;
	__u64 seq;
	__u32 off = 0, n = a->name_len;

	if (!c)
		return;
	seq = __sync_fetch_and_add(&c->seq[LANE_CRITICAL], 1) + 1;
	e = bpf_ringbuf_reserve(&ring_critical, sizeof(*e), 0);
	if (!e) {
		count_drop(c, LANE_CRITICAL, DROP_RING_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->h.type = EV_DNS;
	e->h.lane = LANE_CRITICAL;
	e->h.cpu = bpf_get_smp_processor_id();
	e->h.seq = seq;
	e->h.ts_ns = bpf_ktime_get_boot_ns();
	e->h.uid = a->uid;
	e->h.cgroup_id = a->cgroup_id;
	__builtin_memcpy(e->dns.addr, k->addr, 16);
	e->dns.family = k->family;
	e->dns.name_hash = a->name_hash;
	e->dns.ttl = ttl;
	e->dns.name_len = n;
	e->dns.verdict = a->verdict;
	if (n > DNS_NAME_TAIL)
		off = n - DNS_NAME_TAIL;
	bpf_probe_read_kernel(e->dns.name, DNS_NAME_TAIL, &a->sc->name[off & (DNS_NAME_MAX - 1)]);
	submit_event(c, a->s, e);
}

static __always_inline void learn(struct ans_ctx *a, __u32 family, __u32 rd, __u32 ttl)
{
	struct addr_key k = { .family = family };
	struct learned_value *v, nv = {};
	__u64 life = (__u64)ttl * NSEC;

	if (family == AF_INET)
		__builtin_memcpy(k.addr, &a->sc->msg[rd & (DNS_MSG_MAX - 1)], 4);
	else
		__builtin_memcpy(k.addr, &a->sc->msg[rd & (DNS_MSG_MAX - 1)], 16);
	if (life < a->es->ttl_floor_ns)
		life = a->es->ttl_floor_ns;
	if (life > a->es->ttl_cap_ns)
		life = a->es->ttl_cap_ns;
	v = bpf_map_lookup_elem(&learned, &k);
	if (v && v->expires_ns > a->now) {
		if (a->now + life > v->expires_ns)
			v->expires_ns = a->now + life;
		/* Another name for a live address: it keeps what every name earned (blocked wins at
		 * decision time), and its label becomes the newest name. */
		v->verdict |= a->verdict;
		if (v->name_hash == a->name_hash) {
			EGRESS_COUNT(learned_refreshed);
			return;
		}
		v->name_hash = a->name_hash;
		EGRESS_COUNT(learned_refreshed);
	} else {
		nv.expires_ns = a->now + life;
		nv.name_hash = a->name_hash;
		nv.verdict = a->verdict;
		if (!v)
			EGRESS_COUNT(learned_new);
		else
			EGRESS_COUNT(learned_refreshed);
		bpf_map_update_elem(&learned, &k, &nv, BPF_ANY);
	}
	emit_dns(a, &k, (__u32)(life / NSEC));
}

/* One token of the answer section per call: an owner-name label, a compression pointer, or a
 * record's fixed part (then its data is skipped). A and AAAA records of class IN are learned. */
static long answer_step(__u64 i, struct ans_ctx *a)
{
	__u32 c, type, klass, ttl, rdlen, rd;

	if (!a->remaining || a->pos >= a->len)
		return 1;
	if (!a->in_fixed) {
		c = msg_u8(a->sc, a->pos);
		if (c == 0) {
			a->pos += 1;
			a->in_fixed = 1;
		} else if ((c & 0xC0) == 0xC0) {
			a->pos += 2;
			a->in_fixed = 1;
		} else if (c < 64) {
			a->pos += c + 1;
		} else {
			return 1;
		}
		return 0;
	}
	if (a->pos + 10 > a->len)
		return 1;
	type = msg_u16(a->sc, a->pos);
	klass = msg_u16(a->sc, a->pos + 2);
	ttl = msg_u16(a->sc, a->pos + 4) << 16 | msg_u16(a->sc, a->pos + 6);
	rdlen = msg_u16(a->sc, a->pos + 8);
	rd = a->pos + 10;
	if (rd + rdlen > a->len)
		return 1;
	if (klass == 1 && type == 1 && rdlen == 4)
		learn(a, AF_INET, rd, ttl);
	else if (klass == 1 && type == 28 && rdlen == 16)
		learn(a, AF_INET6, rd, ttl);
	a->pos = rd + rdlen;
	a->in_fixed = 0;
	a->remaining--;
	return 0;
}

/* Where the DNS message starts in a packet from port 53 of a dns_servers address, and its
 * length; 0 when the packet is not one to learn from. */
static __always_inline int dns_locate(struct __sk_buff *skb, __u32 *off, __u32 *len)
{
	struct addr_key src = {};
	__u8 ip[40];
	__u8 l4[20];
	__u32 l4off, proto, sport, total = skb->len;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, 0, ip, 20))
			return 0;
		l4off = (ip[0] & 0xf) * 4;
		proto = ip[9];
		src.family = AF_INET;
		__builtin_memcpy(src.addr, ip + 12, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 0, ip, 40))
			return 0;
		l4off = 40;
		proto = ip[6];           /* extension headers: not looked through */
		src.family = AF_INET6;
		__builtin_memcpy(src.addr, ip + 8, 16);
	} else {
		return 0;
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 0;
	if (l4off < 20 || l4off > 60 || bpf_skb_load_bytes(skb, l4off, l4, proto == IPPROTO_TCP ? 20 : 8))
		return 0;
	sport = l4[0] << 8 | l4[1];
	if (sport != DNS_PORT)
		return 0;
	if (proto == IPPROTO_UDP) {
		*off = l4off + 8;
	} else {
		struct bpf_sock *sk = skb->sk;
		struct tcp_sock *tp;
		__u32 doff = (l4[12] >> 4) * 4, seq;
		__be16 mlen;

		if (doff < 20 || total <= l4off + doff + 2)
			return 0;             /* no data: handshake, ACK, FIN */
		/* Only a segment that starts the byte stream starts a message: a later segment could
		 * begin with bytes a name's owner chose (TXT data) shaped like an answer. */
		if (!sk)
			return 0;
		tp = bpf_skc_to_tcp_sock(sk);
		if (!tp)
			return 0;
		seq = (__u32)l4[4] << 24 | (__u32)l4[5] << 16 | (__u32)l4[6] << 8 | l4[7];
		if (BPF_CORE_READ(tp, bytes_received) || seq != BPF_CORE_READ(tp, rcv_nxt))
			return 0;
		if (bpf_skb_load_bytes(skb, l4off + doff, &mlen, 2))
			return 0;
		*off = l4off + doff + 2;
		if (*off + bpf_ntohs(mlen) > total) {
			EGRESS_COUNT(tcp_split);
			return 0;
		}
		total = *off + bpf_ntohs(mlen);
	}
	if (!bpf_map_lookup_elem(&dns_servers, &src)) {
		EGRESS_COUNT(dns_untrusted);
		return 0;
	}
	if (total < *off + 12)
		return 0;
	*len = total - *off;
	return 1;
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	struct egress_settings *es = egress_get();
	struct dns_scratch *sc;
	struct qname_ctx q = {};
	struct hash_ctx w = {};
	struct ans_ctx a = {};
	__u32 zero = 0, off = 0, len = 0, flags, qd, an;

	if (!es || !dns_locate(skb, &off, &len))
		return 1;
	sc = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!sc)
		return 1;
	if (len > DNS_MSG_MAX)
		len = DNS_MSG_MAX;
	/* In [1, DNS_MSG_MAX] in a form the verifier tracks on the register passed. */
	len = ((len - 1) & (DNS_MSG_MAX - 1)) + 1;
	if (len < 12 || bpf_skb_load_bytes(skb, off, sc->msg, len))
		return 1;
	flags = msg_u16(sc, 2);
	qd = msg_u16(sc, 4);
	an = msg_u16(sc, 6);
	/* A standard-query response with one question; errors have nothing to learn. */
	if (!(flags & 0x8000) || (flags >> 11 & 0xf) || qd != 1) {
		EGRESS_COUNT(dns_malformed);
		return 1;
	}
	if ((flags & 0xf) || !an)
		return 1;
	q.sc = sc;
	q.len = len;
	bpf_loop(DNS_NAME_MAX + 2, qname_step, &q, 0);
	if (q.bad || q.end <= 13 || q.end + 5 > len) {
		EGRESS_COUNT(dns_malformed);
		return 1;
	}
	EGRESS_COUNT(dns_answers);
	w.sc = sc;
	w.len = q.end - 13;
	w.h = es->hash_key;
	bpf_loop(DNS_NAME_MAX + 1, hash_step, &w, 0);

	a.sc = sc;
	a.es = es;
	a.c = get_counters();
	a.s = get_settings();
	a.name_hash = name_final(w.h);
	a.verdict = w.verdict;
	a.name_len = q.end - 13;
	a.now = bpf_ktime_get_boot_ns();
	a.uid = bpf_get_socket_uid(skb);
	a.cgroup_id = bpf_skb_cgroup_id(skb);
	a.pos = q.end + 5;          /* the root label, QTYPE, QCLASS */
	a.len = len;
	a.remaining = an < DNS_MAX_ANSWERS ? an : DNS_MAX_ANSWERS;
	bpf_loop(DNS_MAX_ANSWERS * 8, answer_step, &a, 0);
	return 1;
}

/* ---------------------------------------------------------------- destinations ----------- */

struct dest {
	__u16 family;
	__u16 dport;
	__u16 flags;
	__u16 _pad;
	__u8 daddr[16];
};

/* IPv4-mapped IPv6 becomes IPv4; loopback and the unspecified address (which reaches this host)
 * are flagged loopback. */
static __always_inline void finish_addr(struct dest *d)
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
		if (!w[0] || a[0] == 127)
			d->flags |= EVF_LOOPBACK;
		return;
	}
	if (!(w[0] | w[1] | w[2]) && (!w[3] || w[3] == 0x01000000 /* ::1, LE */))
		d->flags |= EVF_LOOPBACK;
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

static __always_inline int allowed_ip(struct dest *d)
{
	if (d->family == AF_INET) {
		struct blocked_v4_key k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, d->daddr, 4);
		return bpf_map_lookup_elem(&allowed_v4, &k) != 0;
	}
	{
		struct blocked_v6_key k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, d->daddr, 16);
		return bpf_map_lookup_elem(&allowed_v6, &k) != 0;
	}
}

/* The network payload of a destination's record. */
static __always_inline void fill_net(struct event *e, struct dest *d, __u8 proto, int refuse,
				     __u16 hook, __u64 name_hash, __u32 reason)
{
	__builtin_memset(&e->net, 0, sizeof(e->net));
	e->h.flags = d->flags;
	e->net.family = d->family;
	e->net.dport = d->dport;
	e->net.protocol = proto;
	e->net.action = refuse;
	e->net.hook = hook;
	__builtin_memcpy(e->net.daddr, d->daddr, 16);
	e->net.name_hash = name_hash;
	e->net.reason = reason;
}

/* The verdict on one destination (returns 1 to allow, 0 to refuse with EPERM) and its record:
 * refused and block-listed ones on the critical lane, the others on the bulk lane through
 * bulk_admit. Critical records and first-of-key bulk ones are built in the scratch, so a full
 * ring sends them to the spill map (reported late) instead of losing them. */
static __always_inline int egress_decide(struct dest *d, __u8 proto, __u16 hook)
{
	struct settings *s = get_settings();
	struct egress_settings *es = egress_get();
	struct addr_key k = { .family = d->family };
	struct learned_value *lv;
	struct agg_value *slot = 0;
	struct counters *c;
	struct event *e;
	__u32 reason = ER_NONE, prio;
	__u64 name_hash = 0;
	int refuse = 0, lane = LANE_BULK, admit = 0;
	__u64 key;

	if (!s || !es || (__u32)(bpf_get_current_pid_tgid() >> 32) == s->self_tgid)
		return 1;
	finish_addr(d);
	k.family = d->family;
	__builtin_memcpy(k.addr, d->daddr, 16);
	lv = bpf_map_lookup_elem(&learned, &k);
	if (lv && lv->expires_ns <= bpf_ktime_get_boot_ns())
		lv = 0;
	if (lv) {
		d->flags |= EVF_LEARNED;
		name_hash = lv->name_hash;
	}
	if (dest_blocked(d->family, d->daddr)) {
		d->flags |= EVF_BLOCKED;
		reason = ER_BLOCKED_IP;
		refuse = s->block;
		lane = LANE_CRITICAL;
	} else if (lv && (lv->verdict & DNS_V_BLOCKED)) {
		d->flags |= EVF_WOULD_BLOCK;
		reason = ER_BLOCKED_DOMAIN;
		refuse = s->block;
	} else if (es->enforce) {
		if ((d->flags & EVF_LOOPBACK) && es->allow_loopback) {
			reason = ER_LOOPBACK;
		} else if (allowed_ip(d)) {
			reason = ER_ALLOWED_IP;
		} else if (d->dport == DNS_PORT && bpf_map_lookup_elem(&dns_servers, &k)) {
			reason = ER_DNS_SERVER;
		} else if (lv && (lv->verdict & DNS_V_ALLOWED)) {
			reason = ER_LEARNED;
		} else {
			d->flags |= EVF_WOULD_BLOCK;
			reason = ER_NOT_ALLOWED;
			refuse = s->block;
		}
	}
	if (refuse) {
		lane = LANE_CRITICAL;
		EGRESS_COUNT(refused);
	}
	/* Refusals are always reported; the rest only while the network monitor is on. */
	if (!refuse && !(s->probes & PROBE_NETWORK))
		return 1;
	c = get_counters();
	key = dest_key(d, proto);
	if (lane == LANE_BULK) {
		prio = (d->flags & EVF_WOULD_BLOCK) ? PRIO_HIGH
		       : (d->flags & EVF_LOOPBACK) ? PRIO_LOW : PRIO_MEDIUM;
		/* Queries are not folded: each may name a different host. */
		admit = bulk_admit(c, s, EV_NET, prio, d->dport == DNS_PORT ? 0 : key, &slot);
		if (!admit)
			return !refuse;
	}
	if (lane == LANE_CRITICAL || admit == 2) {
		struct fold_key fk = { .tgid = bpf_get_current_pid_tgid() >> 32, .type = EV_NET,
				       .a = key, .b = LANE_CRITICAL };
		struct agg_key ak = { .tgid = fk.tgid, .type = EV_NET, .key = key };

		e = scratch_event(c, lane, EV_NET);
		if (!e)
			return !refuse;
		fill_net(e, d, proto, refuse, hook, name_hash, reason);
		if (lane == LANE_CRITICAL) {
			crit_deliver(c, s, e, &fk, TIER_HIGH);
			return !refuse;
		}
		agg_store_sample(slot, e);
		if (bulk_deliver_first(c, s, e, &ak) && slot)
			slot->window_start = 0;
		return !refuse;
	}
	e = reserve_event(c, lane, EV_NET);
	if (!e) {
		if (slot)
			slot->window_start = 0;
		return !refuse;
	}
	fill_net(e, d, proto, refuse, hook, name_hash, reason);
	agg_store_sample(slot, e);
	submit_event(c, s, e);
	return !refuse;
}

static __always_inline int sock_addr4(struct bpf_sock_addr *ctx, __u16 hook)
{
	struct dest d = { .family = AF_INET };
	__u32 ip = ctx->user_ip4;

	__builtin_memcpy(d.daddr, &ip, 4);
	d.dport = bpf_ntohs((__u16)ctx->user_port);
	return egress_decide(&d, (__u8)ctx->protocol, hook);
}

static __always_inline int sock_addr6(struct bpf_sock_addr *ctx, __u16 hook)
{
	struct dest d = { .family = AF_INET6 };
	__u32 ip[4];

	ip[0] = ctx->user_ip6[0];
	ip[1] = ctx->user_ip6[1];
	ip[2] = ctx->user_ip6[2];
	ip[3] = ctx->user_ip6[3];
	__builtin_memcpy(d.daddr, ip, 16);
	d.dport = bpf_ntohs((__u16)ctx->user_port);
	return egress_decide(&d, (__u8)ctx->protocol, hook);
}

SEC("cgroup/connect4")
int net_connect4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, NET_HOOK_CONNECT);
}

SEC("cgroup/connect6")
int net_connect6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, NET_HOOK_CONNECT);
}

SEC("cgroup/sendmsg4")
int net_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, NET_HOOK_SENDMSG);
}

SEC("cgroup/sendmsg6")
int net_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, NET_HOOK_SENDMSG);
}

/* ---------------------------------------------------------------- sockets --------------- */

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *ctx)
{
	struct egress_settings *es;
	struct settings *s;
	struct counters *c;
	struct event *e;
	__u32 family = ctx->family, type = ctx->type, protocol = ctx->protocol;
	int refuse;

	if (family == AF_INET || family == AF_INET6) {
		if (type != SOCK_RAW && !(type == SOCK_DGRAM &&
					  (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6)))
			return 1;
	} else if (family != AF_PACKET && family != AF_VSOCK) {
		return 1;
	}
	s = get_settings();
	es = egress_get();
	if (!s || !es || (__u32)(bpf_get_current_pid_tgid() >> 32) == s->self_tgid)
		return 1;
	refuse = es->block_sockets != 0;
	if (refuse)
		EGRESS_COUNT(sockets_refused);
	c = get_counters();
	e = crit_begin(c, EV_SOCK);
	if (!e)
		return !refuse;
	__builtin_memset(&e->sock, 0, sizeof(e->sock));
	e->sock.family = family;
	e->sock.type = type;
	e->sock.protocol = protocol;
	e->sock.action = refuse ? SOCK_REFUSED : 0;
	if (refuse)
		e->h.flags |= EVF_BLOCKED;
	crit_deliver_unique(c, s, e);
	return !refuse;
}

/* AF_PACKET and AF_VSOCK sockets are created outside inet_create, so the cgroup hook above never
 * sees them. Seen at syscall entry instead; in block mode the process is killed (SIGKILL lands
 * before socket() returns to it, so it never holds the descriptor). socketcall(2) from compat
 * tasks and io_uring's IORING_OP_SOCKET do not pass here: see the README's limits. */
SEC("tp/syscalls/sys_enter_socket")
int sock_socket(struct trace_event_raw_sys_enter *ctx)
{
	struct egress_settings *es;
	struct settings *s;
	struct counters *c;
	struct event *e;
	__u32 family = (__u32)ctx->args[0];
	int kill;

	if (family != AF_PACKET && family != AF_VSOCK)
		return 0;
	s = get_settings();
	es = egress_get();
	if (!s || !es || (__u32)(bpf_get_current_pid_tgid() >> 32) == s->self_tgid)
		return 0;
	kill = es->block_sockets != 0;
	if (kill) {
		bpf_send_signal(9);
		EGRESS_COUNT(sockets_refused);
	}
	c = get_counters();
	e = crit_begin(c, EV_SOCK);
	if (!e)
		return 0;
	__builtin_memset(&e->sock, 0, sizeof(e->sock));
	e->sock.family = family;
	e->sock.type = (__u32)ctx->args[1];
	e->sock.protocol = (__u32)ctx->args[2];
	e->sock.action = kill ? SOCK_KILLED : 0;
	if (kill)
		e->h.flags |= EVF_BLOCKED;
	crit_deliver_unique(c, s, e);
	return 0;
}
