/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel functions (kfuncs) the programs call, declared once: the object linker needs one
 * declaration shared by every program that uses them. */
#ifndef BEE_KFUNCS_H
#define BEE_KFUNCS_H

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym __weak;
extern struct task_struct *bpf_task_from_vpid(s32 vpid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

#endif
