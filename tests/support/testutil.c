/*
 * testutil.c - shared test helpers (see testutil.h).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static void on_log(void *ctx, enum hp_log_level level, const char *file, int line, const char *msg)
{
    struct hp_test_log *log = ctx;

    (void)file;
    (void)line;
    snprintf(log->last, sizeof(log->last), "%s", msg);
    log->count++;
    if (level <= HP_LOG_WARN)
        log->warnings++;
}

struct hp_loop *hp_test_loop_new(struct hp_test_log *log)
{
    struct hp_loop_opts opts = {.log_level = HP_LOG_DEBUG};
    struct hp_loop *loop = NULL;
    int err;

    if (log) {
        memset(log, 0, sizeof(*log));
        opts.log = on_log;
        opts.log_ctx = log;
    }
    err = hp_loop_new(&loop, &opts);
    if (err)
        fail_msg("hp_loop_new: %s", hp_strerror(err));
    return loop;
}

void hp_test_loop_free(struct hp_loop *loop)
{
    int err = hp_loop_free(loop);

    if (err)
        fail_msg("hp_loop_free: %s (%zu handles active)", hp_strerror(err),
                 hp_loop_active_handles(loop));
}

static void run_until(struct hp_loop *loop, const bool *flag, const size_t *count, size_t want)
{
    uint64_t deadline;

    hp_loop_update_time(loop);
    deadline = hp_loop_now(loop) + HP_TEST_DEADLINE_MS;
    while (flag ? !*flag : *count < want) {
        int n = hp_loop_run_once(loop, 50);

        if (n < 0)
            fail_msg("hp_loop_run_once: %s", hp_strerror(n));
        if (hp_loop_now(loop) > deadline)
            fail_msg("condition not reached within %d ms", HP_TEST_DEADLINE_MS);
    }
}

void hp_test_run_until(struct hp_loop *loop, const bool *flag)
{
    run_until(loop, flag, NULL, 0);
}

void hp_test_run_until_count(struct hp_loop *loop, const size_t *count, size_t want)
{
    run_until(loop, NULL, count, want);
}

static int set_flags(int fd, bool nonblock)
{
    int fl = fcntl(fd, F_GETFL);

    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fl < 0 ||
        (nonblock && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
        int err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* set_flags(fd, true), failing the test on error. */
static void nonblock_cloexec(int fd)
{
    if (set_flags(fd, true) < 0)
        fail_msg("fcntl: %s", strerror(errno));
}

int hp_test_socket(int domain, int type, bool nonblock)
{
    int fd = socket(domain, type, 0);

    return fd < 0 ? -1 : set_flags(fd, nonblock);
}

int hp_test_accept(int listen_fd)
{
    int fd = accept(listen_fd, NULL, NULL);

    return fd < 0 ? -1 : set_flags(fd, true);
}

void hp_test_tcp_pair(int sv[2])
{
    int lfd = hp_test_socket(AF_INET, SOCK_STREAM, false);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        fail_msg("listener: %s", strerror(errno));
    sv[0] = hp_test_socket(AF_INET, SOCK_STREAM, false);
    if (sv[0] < 0 || connect(sv[0], (struct sockaddr *)&a, sizeof(a)) != 0)
        fail_msg("connect: %s", strerror(errno));
    sv[1] = hp_test_accept(lfd);
    if (sv[1] < 0)
        fail_msg("accept: %s", strerror(errno));
    close(lfd);
    nonblock_cloexec(sv[0]);
}

void hp_test_blackhole_open(struct hp_test_blackhole *h)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->lfd = hp_test_socket(AF_INET, SOCK_STREAM, false);
    if (h->lfd < 0 || bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(h->lfd, 0) != 0 || getsockname(h->lfd, (struct sockaddr *)&sa, &len) != 0)
        fail_msg("listener: %s", strerror(errno));
    for (int i = 0; i < 4; i++) { /* fill the accept queue (the kernel keeps backlog + 1) */
        h->fill[i] = hp_test_socket(AF_INET, SOCK_STREAM, true);
        if (h->fill[i] < 0)
            fail_msg("socket: %s", strerror(errno));
        (void)connect(h->fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    h->port = ntohs(sa.sin_port);
}

void hp_test_blackhole_close(struct hp_test_blackhole *h)
{
    for (int i = 0; i < 4; i++)
        close(h->fill[i]);
    close(h->lfd);
}

void hp_test_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        fail_msg("socketpair: %s", strerror(errno));
    nonblock_cloexec(sv[0]);
    nonblock_cloexec(sv[1]);
}

void hp_test_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        fail_msg("pipe: %s", strerror(errno));
    nonblock_cloexec(fds[0]);
    nonblock_cloexec(fds[1]);
}

void hp_test_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};

            if (poll(&pfd, 1, HP_TEST_DEADLINE_MS) != 1)
                fail_msg("write: fd %d not writable within %d ms", fd, HP_TEST_DEADLINE_MS);
            continue;
        }
        if (n < 0)
            fail_msg("write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}
