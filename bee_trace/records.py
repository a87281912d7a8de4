"""numpy dtypes mirroring bpf/events.h. tests/kernel/test_records.py checks every offset and size
against the BTF of the built object, so the C header stays the single source of truth."""

from __future__ import annotations

import numpy as np

COMM_LEN = 16
FILE_TAIL = 232          # path bytes in a file record
CHUNK_LEN = 256          # bytes in an EV_PATH continuation record
PATH_MAX = 4096
FILTER_BITS_LOG2 = 16
FILTER_WORDS = 1 << (FILTER_BITS_LOG2 - 6)

# enum event_type
EV_FILE, EV_NET, EV_MEM, EV_EXEC, EV_EXIT, EV_FORK = 1, 2, 3, 4, 5, 6
# reserved slots (see events.h)
EV_PATH, EV_URING, EV_DNS, EV_SOCK, EV_TAMPER = 8, 9, 10, 11, 12
# enum lane
LANE_CRITICAL, LANE_BULK = 0, 1
NR_LANES = 2
LANE_NAMES = ("critical", "bulk")
# enum drop_cause
DROP_CAUSES = ("ring_full", "sampled", "rate_limited", "aggregated", "shed", "folded", "spilled",
               "spill_full", "first_lost", "read_fault")
NR_DROP_CAUSES = len(DROP_CAUSES)
# header flags
EVF_TRUNCATED, EVF_WRITE, EVF_READ_FAULT, EVF_BLOCKED, EVF_LOOPBACK, EVF_ABSOLUTE = 1, 2, 4, 16, 32, 64
EVF_CHAINED, EVF_CHUNK_LOST, EVF_UNRESOLVED, EVF_LINK_OP = 1 << 7, 1 << 8, 1 << 9, 1 << 10
# enum open_origin
ORIGINS = {0: "syscall", 1: "compat", 2: "io_uring"}
# file_payload.match bits
MATCH_NAME, MATCH_INODE, MATCH_OLD, MATCH_PROC_FD = 1, 2, 4, 8
# enum chunk_what
CHUNK_PATH, CHUNK_REQUESTED, CHUNK_OLD = 0, 1, 2
# enum tier
TIER_HIGH, TIER_LOW = 0, 1
# dentry walk flags (bpf/vfs.h)
DPATH_OVERFLOW, DPATH_DETACHED = 1, 2
EVF_LEARNED, EVF_WOULD_BLOCK = 1 << 11, 1 << 12
# enum net_hook, enum egress_reason (events.h)
NET_HOOKS = {1: "connect", 2: "sendmsg"}
EGRESS_REASONS = {0: None, 1: "learned", 2: "allowed_ip", 3: "dns_server", 4: "loopback",
                  5: "not_allowed", 6: "blocked_ip", 7: "blocked_domain"}
DNS_NAME_TAIL = 240
MEM_PATH_LEN = 128        # mem_payload.path
PROC_FILENAME_LEN = 128   # proc_payload.filename
PROC_ARGS_LEN = 120       # proc_payload.args
TAMPER_PATH_LEN = 128     # tamper_payload.path
AGG_SAMPLE_LEN = 96       # agg_value.sample: payload bytes of the window's first event
NET_RESERVED_LEN = 56     # net_payload._reserved
PAYLOAD_SIZE = 272        # the event union
# enum technique
TECHNIQUES = {1: "ptrace", 2: "process_vm_readv", 3: "process_vm_writev", 4: "proc_mem",
              5: "proc_environ", 6: "proc_maps", 7: "pidfd_getfd", 8: "proc_fd"}
# enum filter_key_kind
KEY_BASENAME, KEY_PREFIX, KEY_SUFFIX, KEY_DIR = 1, 2, 12, 22
NR_KINDS = 16
# probe bits, and the monitors (--probe-type) that set them
PROBE_FILE, PROBE_NETWORK, PROBE_MEMORY, PROBE_PROCESS = 1, 2, 4, 8
PROBE_BITS = {"file_monitor": PROBE_FILE, "network_monitor": PROBE_NETWORK, "memory_monitor": PROBE_MEMORY}
PROBE_TYPES = tuple(PROBE_BITS)
# Kinds on the bulk lane (bpf/common.h admission): the only ones policy may sample or rate-limit.
BULK_KINDS = {"network": EV_NET}
DNS_PORT = 53            # bpf/egress.h

def field_offset(dtype: np.dtype, name: str) -> int:
    """Byte offset of a named field of a structured dtype."""
    fields = dtype.fields
    assert fields is not None, dtype
    return int(fields[name][1])


def field_span(dtype: np.dtype, *names: str) -> tuple[int, int]:
    """[start, end) bytes of adjacent fields of a structured dtype."""
    fields = dtype.fields
    assert fields is not None, dtype
    start = min(int(fields[n][1]) for n in names)
    end = max(int(fields[n][1]) + fields[n][0].itemsize for n in names)
    assert end - start == sum(fields[n][0].itemsize for n in names), f"{names} are not adjacent"
    return start, end


header_dtype = np.dtype([
    ("type", "u1"), ("lane", "u1"), ("flags", "<u2"), ("cpu", "<u4"),
    ("seq", "<u8"), ("ts_ns", "<u8"),
    ("tgid", "<u4"), ("tid", "<u4"), ("ppid", "<u4"), ("uid", "<u4"),
    ("cgroup_id", "<u8"), ("comm", f"S{COMM_LEN}"),
])

file_dtype = np.dtype([
    ("ino", "<u8"), ("dev", "<u4"), ("open_flags", "<u4"), ("f_mode", "<u4"), ("path_len", "<u4"),
    ("req_len", "<u4"), ("gen", "<u4"), ("syscall", "<u2"), ("origin", "u1"), ("match", "u1"),
    ("tier", "u1"), ("nchunks", "u1"), ("nreq", "u1"), ("walk_flags", "u1"),
    ("path", f"V{FILE_TAIL}"),
])

chunk_dtype = np.dtype([
    ("chain", "<u8"), ("index", "<u2"), ("len", "<u2"), ("what", "u1"), ("_pad", "V3"),
    ("data", f"V{CHUNK_LEN}"),
])

net_dtype = np.dtype([
    ("family", "<u2"), ("dport", "<u2"), ("protocol", "u1"), ("action", "u1"), ("hook", "<u2"),
    ("daddr", "V16"), ("name_hash", "<u8"), ("reason", "<u4"), ("_pad", "<u4"),
    ("_reserved", f"V{NET_RESERVED_LEN}"),
])

dns_dtype = np.dtype([
    ("addr", "V16"), ("name_hash", "<u8"), ("ttl", "<u4"), ("name_len", "<u2"), ("family", "u1"),
    ("verdict", "u1"), ("name", f"V{DNS_NAME_TAIL}"),
])

sock_dtype = np.dtype([
    ("family", "<u4"), ("type", "<u4"), ("protocol", "<u4"), ("action", "u1"), ("_pad", "V3"),
])

mem_dtype = np.dtype([
    ("technique", "<u4"), ("target_pid", "<u4"), ("request", "<u8"),
    ("target_comm", f"S{COMM_LEN}"), ("path_len", "<u4"), ("syscall", "<u2"), ("origin", "u1"),
    ("_pad", "u1"), ("path", f"V{MEM_PATH_LEN}"),
])

proc_dtype = np.dtype([
    ("parent_tgid", "<u4"), ("exit_code", "<i4"), ("start_ns", "<u8"), ("child_tgid", "<u4"),
    ("filename_len", "<u2"), ("args_len", "<u2"), ("filename", f"V{PROC_FILENAME_LEN}"),
    ("args", f"V{PROC_ARGS_LEN}"),
])

uring_dtype = np.dtype([("fd", "<i4"), ("sq_entries", "<u4"), ("cq_entries", "<u4"), ("flags", "<u4")])

# enum tamper_rule / enum tamper_target
TAMPER_SIGNAL, TAMPER_STOP, TAMPER_BPF, TAMPER_MEMORY = 1, 2, 3, 4
TAMPER_T_PROCESS, TAMPER_T_PROG, TAMPER_T_MAP, TAMPER_T_LINK = 1, 2, 3, 4
tamper_dtype = np.dtype([
    ("rule", "<u4"), ("target_kind", "<u4"), ("target_pid", "<u4"), ("signal", "<u4"),
    ("detail", "<u8"), ("cmd", "<u4"), ("code", "<i4"), ("path_len", "<u4"), ("_pad", "<u4"),
    ("path", f"V{TAMPER_PATH_LEN}"),
])

payload_dtype = np.dtype({
    "names": ["file", "chunk", "net", "mem", "proc", "uring", "dns", "sock", "tamper"],
    "formats": [file_dtype, chunk_dtype, net_dtype, mem_dtype, proc_dtype, uring_dtype,
                dns_dtype, sock_dtype, tamper_dtype],
    "offsets": [0] * 9,
    "itemsize": PAYLOAD_SIZE,
})

event_dtype = np.dtype({
    "names": ["h", "u"],
    "formats": [header_dtype, payload_dtype],
    "offsets": [0, header_dtype.itemsize],
    "itemsize": header_dtype.itemsize + PAYLOAD_SIZE,
})
EVENT_SIZE = event_dtype.itemsize

# The ring's 8-byte record header (u32 len with busy/discard bits, u32 page offset) + the record.
RINGBUF_HDR = 8
ring_record_dtype = np.dtype([("len", "<u4"), ("pgoff", "<u4"), ("ev", event_dtype)])
RING_STRIDE = ring_record_dtype.itemsize  # records are fixed size and 8-aligned

counters_dtype = np.dtype([
    ("seq", "<u8", (NR_LANES,)),
    ("emitted", "<u8", (NR_LANES,)),
    ("drops", "<u8", (NR_LANES, NR_DROP_CAUSES)),
    ("candidates", "<u8"),
    ("inspected", "<u8"),
    ("sample_tick", "<u8", (NR_KINDS,)),
    ("shed_tick", "<u8"),
    ("inodes_full", "<u8"),
    ("inodes_stale", "<u8"),
    ("inodes_reclaims", "<u8"),
    ("inodes_reclaimed", "<u8"),
    ("folds_full", "<u8"),
])

file_filter_dtype = np.dtype([
    ("bits", "<u8", (FILTER_WORDS,)),
    ("prefix_lengths", "<u4"), ("suffix_lengths", "<u4"), ("match_all", "<u4"), ("_pad", "<u4"),
])

settings_dtype = np.dtype([
    ("self_tgid", "<u4"), ("shed_level", "<u4"), ("bulk_wake_bytes", "<u8"),
    ("probes", "<u4"), ("block", "<u4"), ("agg_window_ns", "<u8"),
    ("sample_every", "<u4", (NR_KINDS,)), ("rate_per_sec", "<u4", (NR_KINDS,)),
    ("bulk_idle", "<u4"), ("_pad2", "<u4"), ("crit_fold_ns", "<u8"),
    ("spill_drained", "<u8"), ("spill_cap", "<u4"), ("_pad3", "<u4"),
])

agg_key_dtype = np.dtype([("tgid", "<u4"), ("type", "<u4"), ("key", "<u8")])
agg_value_dtype = np.dtype([
    ("count", "<u8"), ("window_start", "<u8"), ("uid", "<u4"), ("ppid", "<u4"),
    ("comm", f"S{COMM_LEN}"), ("sample", f"V{AGG_SAMPLE_LEN}"),
])
inode_key_dtype = np.dtype([("ino", "<u8"), ("dev", "<u4"), ("_pad", "<u4")])
inode_value_dtype = np.dtype([("addr", "<u8"), ("gen", "<u4"), ("tier", "u1"), ("flags", "u1"),
                              ("_pad", "V2")])
INODE_KNOWN, INODE_SEEDED = 1 << 0, 1 << 1     # inode_value.flags
fold_key_dtype = np.dtype([("tgid", "<u4"), ("type", "<u4"), ("a", "<u8"), ("b", "<u8")])
fold_value_dtype = np.dtype([("count", "<u8"), ("last_ns", "<u8")])
spill_value_dtype = np.dtype({"names": ["count", "ev"], "formats": ["<u8", event_dtype],
                              "offsets": [0, 8], "itemsize": 8 + EVENT_SIZE})
rate_key_dtype = np.dtype([("type", "<u4"), ("sid", "<u4")])
rate_value_dtype = np.dtype([("tokens", "<u8"), ("last_ns", "<u8")])

# bpf/egress.h
egress_settings_dtype = np.dtype([
    ("hash_key", "<u8"), ("ttl_floor_ns", "<u8"), ("ttl_cap_ns", "<u8"), ("enforce", "<u4"),
    ("allow_loopback", "<u4"), ("block_sockets", "<u4"), ("_pad", "<u4"),
])
addr_key_dtype = np.dtype([("family", "<u4"), ("addr", "V16")])
learned_value_dtype = np.dtype([
    ("expires_ns", "<u8"), ("name_hash", "<u8"), ("verdict", "<u4"), ("_pad", "<u4"),
])
EGRESS_COUNTERS = ("dns_answers", "dns_untrusted", "dns_malformed", "learned_new",
                   "learned_refreshed", "refused", "sockets_refused", "tcp_split")
egress_counters_dtype = np.dtype([(n, "<u8") for n in EGRESS_COUNTERS])

# C struct name -> dtype, for the BTF layout test.
C_STRUCTS: dict[str, np.dtype] = {
    "event_header": header_dtype,
    "file_payload": file_dtype,
    "path_chunk": chunk_dtype,
    "inode_key": inode_key_dtype,
    "inode_value": inode_value_dtype,
    "net_payload": net_dtype,
    "mem_payload": mem_dtype,
    "proc_payload": proc_dtype,
    "uring_payload": uring_dtype,
    "tamper_payload": tamper_dtype,
    "event": event_dtype,
    "counters": counters_dtype,
    "file_filter": file_filter_dtype,
    "settings": settings_dtype,
    "agg_key": agg_key_dtype,
    "agg_value": agg_value_dtype,
    "rate_key": rate_key_dtype,
    "fold_key": fold_key_dtype,
    "fold_value": fold_value_dtype,
    "spill_value": spill_value_dtype,
    "rate_value": rate_value_dtype,
    "dns_payload": dns_dtype,
    "sock_payload": sock_dtype,
    "egress_settings": egress_settings_dtype,
    "addr_key": addr_key_dtype,
    "learned_value": learned_value_dtype,
    "egress_counters": egress_counters_dtype,
}
