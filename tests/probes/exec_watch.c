/* Run inside a container: watch for processes that enter it (pyc exec) and record what of
 * them can be opened through /proc before and after they exec: /proc/N/exe and /proc/N/fd/K.
 * Each record says whether what was opened is the container's own (a file of the container at
 * the path readlink names, same device and inode) or FOREIGN (a host binary, a pipe or socket
 * of pyc's, a memfd, ...). The attack of CVE-2019-5736 starts with such an open.
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

/* Whether `fd` is the file the container has at `path` (readlink's answer). */
static int own(int fd, const char *path) {
    struct stat a, b;
    if (path[0] != '/' || fstat(fd, &a) != 0 || stat(path, &b) != 0)
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
    if (own(fd, before) || own(fd, after))
        fprintf(out, "own pid=%ld %s %s link=%s\n", pid, what, name, after[0] == '(' ? before : after);
    else if (before[0] == '(' && after[0] == '(')
        fprintf(out, "gone pid=%ld %s %s (it ended while looked at)\n", pid, what, name);
    else
        fprintf(out, "FOREIGN pid=%ld %s %s link=%s\n", pid, what, name, after[0] == '(' ? before : after);
    fflush(out);
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
        int f = open(fdpath, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
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
        }
    }
}
