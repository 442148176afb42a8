/* Run inside a container: try syscalls that a seccomp profile allows or refuses, each with
 * arguments that change nothing when the call is allowed (a bad pointer, flag or descriptor),
 * and print one line per call: "NAME ERRNO-NAME" ("ok" when it returned >= 0). Refused by the
 * profile shows as its errno (EPERM, or ENOSYS); allowed, as the kernel's own answer.
 *
 * usage: syscalls            (all probes)   syscalls NAME...   (those only)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

static const char *errname(long ret, int e) {
    if (ret >= 0)
        return "ok";
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case ESRCH: return "ESRCH";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case E2BIG: return "E2BIG";
    case ENOTDIR: return "ENOTDIR";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTTY: return "ENOTTY";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ECHILD: return "ECHILD";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

/* clone with these flags; a child that was made leaves at once. */
static long try_clone(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, 0, 0);
    return pid;
}

struct probe {
    const char *name;
    long (*call)(void);
};

static long p_clone3(void) { return syscall(SYS_clone3, 0, 0); }           /* EINVAL when allowed */
static long p_clone_plain(void) { return try_clone(0); }                     /* a fork */
static long p_clone_newns(void) { return try_clone(CLONE_NEWNS); }
static long p_clone_newuser(void) { return try_clone(CLONE_NEWUSER); }
static long p_unshare_user(void) { return syscall(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS); }
static long p_mount(void) { return syscall(SYS_mount, "none", "/nonexistent-dir", "tmpfs", 0, 0); }
static long p_umount2(void) { return syscall(SYS_umount2, "/nonexistent-dir", 0); }
static long p_init_module(void) { return syscall(SYS_init_module, 0, 0, ""); }
static long p_finit_module(void) { return syscall(SYS_finit_module, -1, "", 0); }
static long p_delete_module(void) { return syscall(SYS_delete_module, "pyc-none", 0); }
static long p_keyctl(void) { return syscall(SYS_keyctl, -1, 0, 0, 0, 0); }
static long p_add_key(void) { return syscall(SYS_add_key, 0, 0, 0, 0, 0); }
static long p_bpf(void) { return syscall(SYS_bpf, -1, 0, 0); }
static long p_perf_event_open(void) { return syscall(SYS_perf_event_open, 0, 0, -1, -1, 0); }
static long p_userfaultfd(void) { return syscall(SYS_userfaultfd, -1); }
static long p_setns(void) { return syscall(SYS_setns, -1, 0); }
static long p_reboot(void) { return syscall(SYS_reboot, 0, 0, 0, 0); }
static long p_swapon(void) { return syscall(SYS_swapon, 0, 0); }
static long p_kexec_load(void) { return syscall(SYS_kexec_load, 0, 0, 0, 0); }
static long p_acct(void) { return syscall(SYS_acct, (char *)1); }
static long p_settimeofday(void) { return syscall(SYS_settimeofday, (void *)1, (void *)1); }
static long p_clock_settime(void) { return syscall(SYS_clock_settime, -1, 0); }
static long p_open_by_handle_at(void) { return syscall(SYS_open_by_handle_at, -1, 0, 0); }
static long p_name_to_handle_at(void) { return syscall(SYS_name_to_handle_at, -1, 0, 0, 0, 0); }
static long p_iopl(void) { return syscall(SYS_iopl, 99); }
static long p_ioperm(void) { return syscall(SYS_ioperm, 0, 0, 0); }
static long p_syslog(void) { return syscall(SYS_syslog, 99, 0, 0); }
static long p_ptrace(void) { return syscall(SYS_ptrace, 2 /* PTRACE_PEEKDATA */, 0x7fffffff, 0, 0); }
static long p_process_vm_readv(void) { return syscall(SYS_process_vm_readv, 0x7fffffff, 0, 0, 0, 0, 0); }
static long p_kcmp(void) { return syscall(SYS_kcmp, 0x7fffffff, 0x7fffffff, 99, 0, 0); }
static long p_personality_query(void) { return syscall(SYS_personality, 0xffffffffUL); }
static long p_personality_other(void) { return syscall(SYS_personality, 0x0040000UL); }
static long p_socket_vsock(void) { return syscall(SYS_socket, 40, -1, 0); }
static long p_mkdir(void) { return syscall(SYS_mkdir, "/proc/pyc-probe", 0); }
static long p_chroot(void) { return syscall(SYS_chroot, "/nonexistent-dir"); }
static long p_mbind(void) { return syscall(SYS_mbind, 0, 0, 99, 0, 0, 0); }
static long p_quotactl(void) { return syscall(SYS_quotactl, 0, 0, 0, 0); }
static long p_fsopen(void) { return syscall(430, 0, -1); }                    /* fsopen */
static long p_open_tree(void) { return syscall(428, -1, 0, -1); }             /* open_tree */
static long p_mseal(void) { return syscall(462, 0, 0, -1); }                  /* newer than the profile */

#define PROBE(n) {#n, p_##n}
static struct probe probes[] = {
    PROBE(clone3), PROBE(clone_plain), PROBE(clone_newns), PROBE(clone_newuser), PROBE(unshare_user),
    PROBE(mount), PROBE(umount2), PROBE(init_module), PROBE(finit_module), PROBE(delete_module),
    PROBE(keyctl), PROBE(add_key), PROBE(bpf), PROBE(perf_event_open), PROBE(userfaultfd), PROBE(setns),
    PROBE(reboot), PROBE(swapon), PROBE(kexec_load), PROBE(acct), PROBE(settimeofday), PROBE(clock_settime),
    PROBE(open_by_handle_at), PROBE(name_to_handle_at), PROBE(iopl), PROBE(ioperm), PROBE(syslog),
    PROBE(ptrace), PROBE(process_vm_readv), PROBE(kcmp), PROBE(personality_query), PROBE(personality_other),
    PROBE(socket_vsock), PROBE(mkdir), PROBE(chroot), PROBE(mbind), PROBE(quotactl), PROBE(fsopen),
    PROBE(open_tree), PROBE(mseal),
};

int main(int argc, char **argv) {
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], probes[i].name) == 0;
        if (!wanted)
            continue;
        errno = 0;
        long ret = probes[i].call();
        printf("%s %s\n", probes[i].name, errname(ret, errno));
    }
    return 0;
}
