/* SPDX-License-Identifier: GPL-2.0 */
/* Egress policy layouts shared by bpf/egress.bpf.c and userspace (bee_trace/egress/): the
 * settings slot, the learned-address table, policy entries and the egress counters. Mirrored in
 * bee_trace/records.py and checked against the object's BTF by a test. */
#ifndef BEE_EGRESS_H
#define BEE_EGRESS_H

#define DNS_PORT 53
#define DNS_MSG_MAX 4096          /* DNS message bytes parsed (power of two: used as a mask) */
#define DNS_NAME_MAX 256          /* text form of a question name: at most 253 characters */
#define DNS_MAX_ANSWERS 32        /* answer records looked at per message */

/* Policy entry flags, keyed by the keyed hash of a name (egress_policy). */
#define POL_ALLOW      (1 << 0)   /* allowed_domains "x": x and its subdomains */
#define POL_ALLOW_SUB  (1 << 1)   /* allowed_domains "*.x": subdomains of x only */
#define POL_BLOCK      (1 << 2)   /* blocked_domains "x": x and its subdomains */

/* Run-time egress settings (one array slot), written by userspace before attaching. */
struct egress_settings {
	__u64 hash_key;           /* secret basis of the name hash (random per run) */
	__u64 ttl_floor_ns;       /* learned addresses live at least this long */
	__u64 ttl_cap_ns;         /* and at most this long */
	__u32 enforce;            /* block mode with allowed_domains or allowed_ips: default deny */
	__u32 allow_loopback;     /* loopback destinations pass the default deny */
	__u32 block_sockets;      /* refuse raw/packet/ICMP/vsock sockets (block mode) */
	__u32 _pad;
};

/* A learned address: family + address bytes (IPv4 in the first 4). */
struct addr_key {
	__u32 family;
	__u8 addr[16];
};

struct learned_value {
	__u64 expires_ns;         /* CLOCK_BOOTTIME */
	__u64 name_hash;          /* the question name of the newest answer that mapped it */
	__u32 verdict;            /* DNS_V_* of every name that mapped it while it lived (OR) */
	__u32 _pad;
};

/* Per-CPU egress counters (one array slot). */
struct egress_counters {
	__u64 dns_answers;        /* answers from a dns_servers address that were parsed */
	__u64 dns_untrusted;      /* answers from port 53 of any other address: not learned */
	__u64 dns_malformed;      /* answers that could not be parsed (nothing learned) */
	__u64 learned_new;        /* addresses inserted into the learned table */
	__u64 learned_refreshed;  /* addresses whose entry an answer renewed */
	__u64 refused;            /* connects/sends refused */
	__u64 sockets_refused;    /* socket creations refused */
	__u64 tcp_split;          /* DNS-over-TCP answers not in one segment: not learned */
};

#endif
