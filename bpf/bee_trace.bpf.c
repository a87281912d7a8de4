// SPDX-License-Identifier: GPL-2.0
/* The whole kernel side in one translation unit: each included file is one concern (its own
 * programs), sharing the maps of common.h. */
#include "memory.bpf.c"
#include "compat.bpf.c"     /* before files.bpf.c: its sys_exit program hands compat syscalls on */
#include "links.bpf.c"      /* ... and link/rename exits */
#include "files.bpf.c"
#include "egress.bpf.c"
#include "process.bpf.c"
#include "uring.bpf.c"
#include "tamper.bpf.c"

char LICENSE[] SEC("license") = "GPL";
