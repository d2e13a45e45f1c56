/*
 * ceiling.c - the syscall-bound limit for the HTTP benchmark: a single-threaded
 * epoll server that answers every "\r\n\r\n"-terminated request with a canned
 * "Hello, World!" response, without parsing anything. One read per readiness
 * event (level-triggered), one write per read, so a keep-alive request costs
 * epoll_wait + read + write and a pipelined batch costs the same.
 *
 * The only look at request bytes besides the terminator scan: the first
 * request of a connection decides its mode. HTTP/1.0 without "keep-alive"
 * (ab without -k) gets "Connection: close" and the socket is closed after the
 * answer, because ab waits for EOF; everything else stays open.
 *
 * Invariant: owe[fd] is the number of response bytes accepted but not yet
 * written; the stream is the canned response repeated, so its phase is
 * implied by owe[fd] and no per-connection buffer is needed.
 *
 *   cc -O2 -o ceiling ceiling.c && ./ceiling 127.0.0.1 8081
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
#define BODY  "Hello, World!"
#define HEAD  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: "

static const char rsp_close[] = HEAD "close\r\n\r\n" BODY;
static char rep[256 * 1024];              /* the keep-alive response repeated */
static size_t rlen;                       /* length of one keep-alive response */
static uint8_t match[MAXFD], mode[MAXFD]; /* mode: 0 unknown, 1 keep-alive, 2 close */
static uint8_t out[MAXFD];                /* 1 while EPOLLOUT is requested */
static uint32_t owe[MAXFD];
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void drop(int ep, int fd)
{
    (void)ep; /* close() takes the fd out of the epoll set: no EPOLL_CTL_DEL */
    close(fd);
    match[fd] = mode[fd] = out[fd] = 0;
    owe[fd] = 0;
}

/* Write what is owed; ask for EPOLLOUT while some of it is left. */
static void flush_owed(int ep, int fd)
{
    size_t reps = sizeof(rep) / rlen * rlen, phase = (rlen - owe[fd] % rlen) % rlen;
    size_t n = owe[fd] < reps - phase ? owe[fd] : reps - phase;
    ssize_t w = write(fd, rep + phase, n);
    if (w < 0 && errno != EAGAIN) {
        drop(ep, fd);
        return;
    }
    owe[fd] -= w > 0 ? (uint32_t)w : 0;
    if ((owe[fd] != 0) != out[fd]) {
        out[fd] = owe[fd] != 0;
        struct epoll_event ev = {.events = out[fd] ? EPOLLIN | EPOLLOUT : EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
}

static void on_read(int ep, int fd, char *buf, size_t cap)
{
    ssize_t n = read(fd, buf, cap);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        drop(ep, fd);
        return;
    }
    if (mode[fd] == 0) {
        int one = 1;
        buf[n < (ssize_t)cap ? n : n - 1] = 0;
        mode[fd] = strstr(buf, "HTTP/1.0\r\n") && !strcasestr(buf, "keep-alive") ? 2 : 1;
        if (mode[fd] == 1) /* like nginx: no Nagle delays for keep-alive answers */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    uint32_t reqs = 0, m = match[fd];
    for (const char *p = buf, *end = buf + n; p < end; p++) {
        if (*p == (m & 1 ? '\n' : '\r'))
            m++;
        else
            m = *p == '\r';
        if (m == 4) {
            reqs++;
            m = 0;
        }
    }
    match[fd] = (uint8_t)m;
    if (reqs && mode[fd] == 2) {
        (void)!write(fd, rsp_close, sizeof(rsp_close) - 1);
        drop(ep, fd);
    } else if (reqs) {
        owe[fd] += reqs * (uint32_t)rlen;
        flush_owed(ep, fd);
    }
}

int main(int argc, char **argv)
{
    static char buf[64 * 1024];
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(argc > 2 ? atoi(argv[2]) : 8081)};
    inet_pton(AF_INET, argc > 1 ? argv[1] : "127.0.0.1", &sa.sin_addr);
    rlen = strlen(HEAD "keep-alive\r\n\r\n" BODY);
    for (size_t i = 0; i + rlen <= sizeof(rep); i += rlen)
        memcpy(rep + i, HEAD "keep-alive\r\n\r\n" BODY, rlen);
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGINT, &(struct sigaction){.sa_handler = on_signal}, NULL);
    sigaction(SIGTERM, &(struct sigaction){.sa_handler = on_signal}, NULL);
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, SOMAXCONN)) {
        perror("ceiling: bind/listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &(struct epoll_event){.events = EPOLLIN, .data.fd = lfd});
    printf("ceiling: listening on %s:%d\n", argc > 1 ? argv[1] : "127.0.0.1", ntohs(sa.sin_port));
    fflush(stdout);
    struct epoll_event evs[256];
    while (!stop) {
        int k = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd, c;
            if (fd == lfd) {
                /* One accept per wake-up: level-triggered, so a backlog comes back. */
                c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
                if (c >= MAXFD || (c >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev)))
                    close(c);
            } else if (evs[i].events & EPOLLOUT) {
                flush_owed(ep, fd);
            } else {
                on_read(ep, fd, buf, sizeof(buf));
            }
        }
    }
    close(ep);
    close(lfd);
    return 0;
}
