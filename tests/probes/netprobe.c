/* netprobe: the network tests' and benches' small static helper, bind-mounted into busybox
 * containers (whose nc has no UDP and no byte count).
 *
 *   netprobe udp-echo PORT             answer each datagram with "echo:" and the datagram
 *   netprobe udp-ask HOST PORT TEXT    send TEXT, print the answer (2 s, else exit 1)
 *   netprobe tcp-sink PORT [N]         accept N connections (default 1), read each to its
 *                                      end, answer with the byte count
 *   netprobe tcp-send HOST PORT MB     send MB MiB, print "BYTES SECONDS MB/s" from the
 *                                      sink's count
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr_of(const char *host, const char *port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(port));
    if (host == NULL)
        a.sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "netprobe: bad address %s\n", host);
        exit(2);
    }
    return a;
}

static int bound(int type, const char *port) {
    int s = socket(AF_INET, type, 0), one = 1;
    struct sockaddr_in a = addr_of(NULL, port);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("netprobe: bind");
        exit(1);
    }
    return s;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    static char buf[1 << 16];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "udp-echo") == 0) {
        int s = bound(SOCK_DGRAM, argv[2]);
        for (;;) {
            struct sockaddr_in from;
            socklen_t len = sizeof from;
            ssize_t n = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&from, &len);
            if (n < 0)
                return 1;
            memcpy(buf, "echo:", 5);
            sendto(s, buf, (size_t)n + 5, 0, (struct sockaddr *)&from, len);
        }
    }
    if (argc == 5 && strcmp(argv[1], "udp-ask") == 0) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = addr_of(argv[2], argv[3]);
        struct timeval tv = {2, 0};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sendto(s, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&a, sizeof a);
        ssize_t n = recv(s, buf, sizeof buf - 1, 0);
        if (n < 0)
            return 1;
        buf[n] = 0;
        printf("%s\n", buf);
        return 0;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "tcp-sink") == 0) {
        int s = bound(SOCK_STREAM, argv[2]), count = argc == 4 ? atoi(argv[3]) : 1;
        listen(s, 16);
        for (int i = 0; i < count; i++) {
            int c = accept(s, NULL, NULL);
            long long total = 0;
            ssize_t n;
            while ((n = read(c, buf, sizeof buf)) > 0)
                total += n;
            int len = snprintf(buf, sizeof buf, "%lld\n", total);
            if (write(c, buf, (size_t)len) != len)
                return 1;
            close(c);
        }
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "tcp-send") == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = addr_of(argv[2], argv[3]);
        if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
            perror("netprobe: connect");
            return 1;
        }
        long long want = atoll(argv[4]) << 20, sent = 0;
        memset(buf, 'x', sizeof buf);
        double t0 = now();
        while (sent < want) {
            ssize_t n = write(s, buf, (size_t)(want - sent < (long long)sizeof buf ? want - sent : (long long)sizeof buf));
            if (n <= 0)
                return 1;
            sent += n;
        }
        shutdown(s, SHUT_WR);
        ssize_t n = read(s, buf, sizeof buf - 1);
        double secs = now() - t0;
        if (n <= 0)
            return 1;
        buf[n] = 0;
        long long got = atoll(buf);
        printf("%lld %.6f %.1f\n", got, secs, got / secs / (1 << 20));
        return got == want ? 0 : 1;
    }
    fprintf(stderr, "usage: netprobe udp-echo PORT | udp-ask HOST PORT TEXT | tcp-sink PORT [N] | tcp-send HOST PORT MB\n");
    return 2;
}
