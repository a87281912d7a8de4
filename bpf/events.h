/* SPDX-License-Identifier: GPL-2.0 */
/* Record layouts shared by every kernel program. This file is the single source of truth:
 * bee_trace/records.py mirrors it with numpy dtypes, and a test checks both against the BTF of
 * the built object. Every record on a ring has the same size so a batch decodes as one array. */
#ifndef BEE_EVENTS_H
#define BEE_EVENTS_H

#define COMM_LEN 16


enum event_type {
	EV_FILE = 1,
	EV_NET = 2,
	EV_MEM = 3,
	EV_EXEC = 4,
	EV_EXIT = 5,
	EV_FORK = 6,
	/* 7 unused (was a summary record: aggregation is read from the agg map instead) */
	/* Reserved slots, so parallel work on the open issues numbers records alike. */
	EV_PATH = 8,          /* path continuation (long paths), joined by the decoder */
	EV_URING = 9,         /* io_uring ring set up by a process */
	EV_DNS = 10,          /* DNS answer learned in the kernel */
	EV_SOCK = 11,         /* creation of a raw/packet/ICMP/vsock socket */
	EV_TAMPER = 12,       /* signal, ptrace, bpf() or /proc access aimed at the agent */
};

enum lane {
	LANE_CRITICAL = 0,    /* never sampled, rate-limited or shed; woken at once */
	LANE_BULK = 1,        /* batched wake-ups; sampling, limits, aggregation, shedding */
	NR_LANES = 2,
};

enum drop_cause {
	DROP_RING_FULL = 0,
	DROP_SAMPLED = 1,
	DROP_RATE_LIMITED = 2,
	DROP_AGGREGATED = 3,
	DROP_SHED = 4,
	DROP_FOLDED = 5,          /* critical: identical event counted in the kernel (not lost) */
	DROP_SPILLED = 6,         /* ring full, kept in the spill map (not lost): critical, bulk firsts */
	DROP_SPILL_FULL = 7,      /* critical: ring and spill map full (lost) */
	DROP_FIRST_LOST = 8,      /* bulk: first event of a new key lost to a full ring and spill share */
	DROP_READ_FAULT = 9,      /* a user pointer could not be read (the record still goes) */
	NR_DROP_CAUSES = 10,
};

/* header flags */
#define EVF_TRUNCATED   (1 << 0)  /* path longer than PATH_MAX: its head is missing */
#define EVF_WRITE       (1 << 1)  /* open flags ask for write access */
#define EVF_READ_FAULT  (1 << 2)  /* a user pointer could not be read */
/* (1 << 3) unused */
#define EVF_BLOCKED     (1 << 4)  /* denied in the kernel */
#define EVF_LOOPBACK    (1 << 5)
#define EVF_ABSOLUTE    (1 << 6)  /* a relative open made absolute in the kernel (cwd/dirfd) */
#define EVF_CHAINED     (1 << 7)  /* EV_PATH records precede this one */
#define EVF_CHUNK_LOST  (1 << 8)  /* an EV_PATH record of this one could not be reserved */
#define EVF_UNRESOLVED  (1 << 9)  /* the path could not be resolved up to the task's root */
#define EVF_LINK_OP     (1 << 10) /* link/symlink/rename: path is the new name, CHUNK_OLD the old */
/* bits 7-10: file monitor (issue 8), 11-12: egress (issue 10), 13-14: loss/tamper (issue 9) */
#define EVF_LEARNED     (1 << 11) /* egress: daddr was taught by a DNS answer (net.name_hash) */
#define EVF_WOULD_BLOCK (1 << 12) /* egress: the domain policy refuses it (refused in block mode) */

/* memory-access techniques */
enum technique {
	TECH_PTRACE = 1,
	TECH_VM_READV = 2,
	TECH_VM_WRITEV = 3,
	TECH_PROC_MEM = 4,
	TECH_PROC_ENVIRON = 5,
	TECH_PROC_MAPS = 6,
	TECH_PIDFD_GETFD = 7,
	TECH_PROC_FD = 8,        /* /proc/PID/fd/N of another process */
};

struct event_header {            /* 64 bytes */
	__u8 type;
	__u8 lane;
	__u16 flags;
	__u32 cpu;
	__u64 seq;               /* per-CPU, per-lane; gaps are ring-full drops */
	__u64 ts_ns;             /* CLOCK_BOOTTIME */
	__u32 tgid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u64 cgroup_id;
	char comm[COMM_LEN];
};

/* A file opened by name or handle, resolved at syscall exit from the struct file. */
#define FILE_TAIL 232            /* path bytes in the record: the whole path, or its last bytes */
struct file_payload {            /* 272 bytes */
	__u64 ino;
	__u32 dev;               /* super_block s_dev (kernel encoding: major << 20 | minor) */
	__u32 open_flags;        /* f_flags of the opened file */
	__u32 f_mode;
	__u32 path_len;          /* full length of the resolved path */
	__u32 req_len;           /* length of the caller's string when it differs, else 0 */
	__u32 gen;               /* the inode's i_generation (0 for link/rename) */
	__u16 syscall;           /* syscall number (compat numbers with ORIGIN_COMPAT), io_uring op */
	__u8 origin;             /* enum open_origin */
	__u8 match;              /* MATCH_* bits: why the kernel sent it */
	__u8 tier;               /* enum tier */
	__u8 nchunks;            /* EV_PATH records with the path's head, sent just before */
	__u8 nreq;               /* EV_PATH records with the caller's string, sent just before */
	__u8 walk_flags;         /* DPATH_* bits of the dentry walk */
	char path[FILE_TAIL];
};

enum open_origin {
	ORIGIN_SYSCALL = 0,
	ORIGIN_COMPAT = 1,       /* int 0x80 / sysenter */
	ORIGIN_URING = 2,        /* io_uring request */
};

#define MATCH_NAME  (1 << 0)     /* "/parent/basename" keys hit the filter */
#define MATCH_INODE (1 << 1)     /* (dev, ino) of a watched file */
#define MATCH_OLD   (1 << 2)     /* link/rename: the old name hit the filter */
#define MATCH_PROC_FD (1 << 3)   /* a pipe/memfd/unlinked file it did not hold: another process's /proc/PID/fd/N */

/* Continuation of a record's strings: the head of a path longer than FILE_TAIL, or the
 * caller's own string. Sent just before the record it belongs to, which has the same tid and
 * ts_ns (the chain id); the decoder joins them in index order. */
#define CHUNK_LEN 256
#define MAX_CHUNKS 17            /* PATH_MAX (4096) in CHUNK_LEN pieces, plus one */
struct path_chunk {              /* 272 bytes */
	__u64 chain;
	__u16 index;
	__u16 len;
	__u8 what;               /* CHUNK_PATH or CHUNK_REQUESTED */
	__u8 _pad[3];
	char data[CHUNK_LEN];
};

enum chunk_what {
	CHUNK_PATH = 0,
	CHUNK_REQUESTED = 1,
	CHUNK_OLD = 2,           /* link/rename: the old name (symlink: its target) */
};

enum tier {
	TIER_HIGH = 0,           /* keys, credentials, protected processes, tampering */
	TIER_LOW = 1,            /* certificates, user globs */
	TIER_BULK = 2,           /* spill only: first-of-key bulk records (new destinations) */
};

/* A destination as the kernel's cgroup connect/sendmsg hooks see it. 96 bytes: an aggregation
 * sample (agg_value.sample) holds all of it. */
struct net_payload {
	__u16 family;            /* AF_INET / AF_INET6 */
	__u16 dport;             /* host order */
	__u8 protocol;           /* IPPROTO_TCP / IPPROTO_UDP / other */
	__u8 action;             /* 0 allowed, 1 blocked */
	__u16 hook;              /* enum net_hook */
	__u8 daddr[16];          /* IPv4 in the first 4 bytes */
	__u64 name_hash;         /* EVF_LEARNED: keyed hash of the question name that taught daddr */
	__u32 reason;            /* enum egress_reason: why allowed or refused */
	__u32 _pad;
	__u8 _reserved[56];
};

enum net_hook {
	NET_HOOK_CONNECT = 1,    /* connect(2), TCP fast open, io_uring connect, UDP connect */
	NET_HOOK_SENDMSG = 2,    /* UDP send with an address (sendto/sendmsg/sendmmsg, any entry) */
};

enum egress_reason {
	ER_NONE = 0,             /* no policy applies (audit, or no allowlist) */
	ER_LEARNED = 1,          /* an address from a DNS answer for an allowed name */
	ER_ALLOWED_IP = 2,       /* network.allowed_ips */
	ER_DNS_SERVER = 3,       /* a network.dns_servers address, port 53 */
	ER_LOOPBACK = 4,         /* loopback while allow_loopback */
	ER_NOT_ALLOWED = 5,      /* refused: none of the above */
	ER_BLOCKED_IP = 6,       /* refused: network.blocked_ips */
	ER_BLOCKED_DOMAIN = 7,   /* refused: an address learned for a blocked_domains name */
};

/* A DNS answer learned in the kernel (cgroup_skb ingress), one record per new (address, name). */
struct dns_payload {            /* 272 bytes */
	__u8 addr[16];           /* IPv4 in the first 4 bytes */
	__u64 name_hash;         /* keyed hash of the question name (what net.name_hash refers to) */
	__u32 ttl;               /* seconds, after the floor and the cap */
	__u16 name_len;          /* text length of the question name; the record holds its tail */
	__u8 family;             /* AF_INET / AF_INET6 */
	__u8 verdict;            /* DNS_V_* bits of the question name under the policy */
	char name[240];
};

#define DNS_NAME_TAIL 240
#define DNS_V_ALLOWED (1 << 0)
#define DNS_V_BLOCKED (1 << 1)

/* Creation of a socket that bypasses destination addresses (raw, packet, ICMP, vsock). */
struct sock_payload {
	__u32 family;
	__u32 type;
	__u32 protocol;
	__u8 action;             /* 0 allowed, SOCK_REFUSED, SOCK_KILLED */
	__u8 _pad[3];
};

#define SOCK_REFUSED 1           /* socket() failed with EPERM (cgroup sock_create) */
#define SOCK_KILLED 2            /* the process was killed at socket() entry (no hook refuses it) */

struct mem_payload {
	__u32 technique;
	__u32 target_pid;
	__u64 request;           /* ptrace request, or 0 */
	char target_comm[COMM_LEN];
	__u32 path_len;
	__u16 syscall;
	__u8 origin;             /* enum open_origin */
	__u8 _pad;
	char path[128];          /* /proc path (resolved) when the technique is a file open */
};

struct proc_payload {
	__u32 parent_tgid;
	__s32 exit_code;
	__u64 start_ns;
	__u32 child_tgid;        /* fork: the new process */
	__u16 filename_len;      /* exec: full length of the file name (the record holds its head) */
	__u16 args_len;          /* exec: bytes of argv (NUL-separated) in args */
	char filename[128];
	char args[120];
};

struct uring_payload {           /* a process set up an io_uring ring (first time per process) */
	__s32 fd;
	__u32 sq_entries;
	__u32 cq_entries;
	__u32 flags;
};

/* Tamper evidence (EV_TAMPER, critical lane): something aimed at the agent itself. */
enum tamper_rule {
	TAMPER_SIGNAL = 1,       /* a signal sent to the agent */
	TAMPER_STOP = 2,         /* SIGSTOP / SIGTSTP sent to the agent */
	TAMPER_BPF = 3,          /* bpf() by another process getting an fd of one of our objects */
	TAMPER_MEMORY = 4,       /* ptrace, process_vm_*, pidfd_getfd, /proc/<agent>/... at the agent */
};

enum tamper_target {
	TAMPER_T_PROCESS = 1,    /* the agent's process */
	TAMPER_T_PROG = 2,       /* one of its BPF programs (detail: id) */
	TAMPER_T_MAP = 3,
	TAMPER_T_LINK = 4,
};

struct tamper_payload {
	__u32 rule;              /* enum tamper_rule */
	__u32 target_kind;       /* enum tamper_target */
	__u32 target_pid;        /* the agent's thread the act was aimed at */
	__u32 signal;            /* signal number (signal rules) */
	__u64 detail;            /* bpf: object id; memory: ptrace request */
	__u32 cmd;               /* bpf: command; memory: enum technique */
	__s32 code;              /* signal: si_code (0 kill, -6 tkill, > 0 from the kernel) */
	__u32 path_len;
	__u32 _pad;
	char path[128];          /* /proc/<agent>/... path, when a file open is the act */
};

struct event {                   /* 336 bytes */
	struct event_header h;
	union {
		struct file_payload file;
		struct path_chunk chunk;
		struct net_payload net;
		struct mem_payload mem;
		struct proc_payload proc;
		struct uring_payload uring;
		struct dns_payload dns;
		struct sock_payload sock;
		struct tamper_payload tamper;
	};
};

#define NR_KINDS 16            /* indexed by enum event_type */

/* Per-CPU counters, one array slot. Userspace sums over CPUs. */
struct counters {
	__u64 seq[NR_LANES];                    /* records attempted per lane */
	__u64 emitted[NR_LANES];                /* records committed per lane */
	__u64 drops[NR_LANES][NR_DROP_CAUSES];
	__u64 candidates;                       /* opens that passed the in-kernel filter */
	__u64 inspected;                        /* opens inspected */
	__u64 sample_tick[NR_KINDS];            /* per-CPU 1-in-N sampling position */
	__u64 shed_tick;
	__u64 inodes_full;                      /* watched_inodes full: an inode was not learned */
	__u64 inodes_stale;                     /* entries of deleted files whose number another file got */
	__u64 inodes_reclaims;                  /* walks of a full watched_inodes */
	__u64 inodes_reclaimed;                 /* entries of deleted files they dropped */
	__u64 folds_full;                       /* fold_counts full: a repeat was sent, not counted */
};

/* Candidate filter for file opens (one array slot). A pattern sets one bit for one key that any
 * path it matches must have (basename hash, basename prefix, path suffix or parent directory);
 * the kernel sends an open when any of its keys hits a set bit. A superset: userspace confirms
 * with exact glob semantics, so a collision costs one record, never a false report. */
#define FILTER_BITS_LOG2 16
#define FILTER_WORDS (1 << (FILTER_BITS_LOG2 - 6))

enum filter_slot {
	FILTER_ALL = 0,
	FILTER_HIGH = 1,
};

enum filter_key_kind {
	KEY_BASENAME = 1,
	KEY_PREFIX = 2,        /* + length 1..8 */
	KEY_SUFFIX = 12,       /* + length 1..8 */
	KEY_DIR = 22,
};

struct file_filter {
	__u64 bits[FILTER_WORDS];
	__u32 prefix_lengths;  /* bit L set: some pattern needs a basename prefix of L bytes */
	__u32 suffix_lengths;  /* bit L set: some pattern needs a path suffix of L bytes */
	__u32 match_all;       /* a pattern has no literal key: send every open */
	__u32 _pad;
};

/* Run-time settings (one array slot), written by userspace; read on every event. */
struct settings {
	__u32 self_tgid;       /* the agent: excluded from every probe */
	__u32 shed_level;      /* backpressure: 0 none, 1 shed low, 2 also half of medium */
	__u64 bulk_wake_bytes; /* force a bulk-ring wake-up past this backlog */
	__u32 probes;          /* enabled probe types (PROBE_* bits) */
	__u32 block;           /* network.mode block: deny connects to blocked destinations */
	__u64 agg_window_ns;   /* bulk aggregation window; 0 = off */
	__u32 sample_every[NR_KINDS];  /* bulk: send 1 in N per CPU (0 or 1 = all) */
	__u32 rate_per_sec[NR_KINDS];  /* bulk: per-CPU token bucket per lineage (0 = unlimited) */
	__u32 bulk_idle;       /* reader is in idle polling: wake it for a record into an empty ring */
	__u32 _pad2;
	__u64 crit_fold_ns;    /* critical: identical events of a process inside this window are
				* counted, not sent (0 = off) */
	__u64 spill_drained;   /* spilled events the reader has taken out of the spill map */
	__u32 spill_cap;       /* spill map entries; lower tiers may fill only half */
	__u32 _pad3;
};

/* Blocked destinations (network.blocked_ips, CIDRs allowed): longest-prefix-match keys. */
struct blocked_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct blocked_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Bulk-record priority, for shedding under backpressure. */
enum priority {
	PRIO_LOW = 0,          /* e.g. loopback traffic: first to go */
	PRIO_MEDIUM = 1,       /* shed at half the rate at level 2 */
	PRIO_HIGH = 2,         /* never shed */
};

/* Aggregation: identical bulk events (same process, type and key) inside a window are counted
 * here instead of sent. count is cumulative and never reset: userspace reports the growth since
 * its last read, so reading never races with the kernel's increments. */
struct agg_key {
	__u32 tgid;
	__u32 type;
	__u64 key;
};

struct agg_value {
	__u64 count;           /* events folded, cumulative */
	__u64 window_start;
	__u32 uid;
	__u32 ppid;
	char comm[COMM_LEN];
	__u8 sample[96];       /* payload of the window's first event */
};

/* Critical-lane folding and spill (bpf/critical.h): an event's identity within its process. */
struct fold_key {
	__u32 tgid;
	__u32 type;
	__u64 a;                 /* file: ino; memory: technique */
	__u64 b;                 /* file: dev | write << 32; memory: target tgid */
};

/* fold_counts: how many identical events were folded (cumulative; userspace reports the
 * growth and deletes entries idle since it last reported them), and when the last one was. */
struct fold_value {
	__u64 count;
	__u64 last_ns;
};

/* A critical event the ring could not take, kept until the reader drains it (late: true). */
struct spill_value {
	__u64 count;             /* identical events spilled under this key */
	struct event ev;
};

/* Token bucket per (type, session): a forking loop stays in its session. */
struct rate_key {
	__u32 type;
	__u32 sid;
};

struct rate_value {
	__u64 tokens;          /* in 1/1e9 of an event */
	__u64 last_ns;
};

#define PROBE_FILE    (1 << 0)
#define PROBE_NETWORK (1 << 1)
#define PROBE_MEMORY  (1 << 2)
#define PROBE_PROCESS (1 << 3)

#endif
