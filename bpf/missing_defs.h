/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel constants that vmlinux.h does not carry (macros, not types), in one place. */
#ifndef BEE_MISSING_DEFS_H
#define BEE_MISSING_DEFS_H

#define AT_FDCWD -100

#define O_ACCMODE 00000003
#define O_CREAT   00000100
#define O_TRUNC   00001000
#define O_APPEND  00002000
#define __O_TMPFILE 020000000

#define FMODE_READ  0x1
#define FMODE_WRITE 0x2
#define FMODE_PATH  0x4000

#define S_IFMT   00170000
#define S_IFSOCK 0140000
#define S_IFREG  0100000
#define S_IFDIR  0040000
#define S_IFIFO  0010000

#define PROC_SUPER_MAGIC 0x9fa0
#define PIDFS_MAGIC      0x50494446
#define NSFS_MAGIC       0x6e736673

/* x86: thread_info.status bit set while a 32-bit (int 0x80 / sysenter) syscall runs */
#define TS_COMPAT 0x0002

#define E2BIG 7

#define AF_INET  2
#define AF_INET6 10

#endif
