/*
 * tests/core/test_io.c - IO watchers on pipes and socketpairs: readiness,
 * level and edge triggering, hang-up and error delivery, re-entrancy (stop
 * and free from callbacks, descriptor reuse within one batch) and the
 * "sate the stream" report.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

/* A watcher that counts its calls and remembers the last event. */
struct watch {
    struct hp_io io;
    size_t calls;
    unsigned events;
    int status;
    bool stop_on_call;
    bool drain_on_call;
};

static void on_watch(struct hp_io *io, unsigned events, int status)
{
    struct watch *w = hp_container_of(io, struct watch, io);
    char buf[4096];

    w->calls++;
    w->events = events;
    w->status = status;
    if (w->drain_on_call) {
        while (hp_io_read(io, buf, sizeof(buf)) > 0)
            ;
    }
    if (w->stop_on_call)
        hp_io_stop(io);
}

static void watch_start(struct hp_loop *loop, struct watch *w, int fd, unsigned events)
{
    memset(w, 0, sizeof(*w));
    hp_io_init(loop, &w->io, fd, on_watch);
    assert_int_equal(hp_io_start(&w->io, events), 0);
    assert_true(hp_io_is_active(&w->io));
}

static void close_pair(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
}

/* Read everything buffered on a non-blocking fd. */
static size_t drain_fd(int fd)
{
    char buf[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    return total;
}

/* ---- level and edge ------------------------------------------------- */

static void test_io_level_watcher_is_called_every_iteration_while_ready(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int fds[2];
    char c;

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &w, fds[0], HP_READABLE);
    ct_run_nowait(loop, 2);
    assert_int_equal(w.calls, 0);

    hp_test_write_all(fds[1], "x", 1);
    ct_run_nowait(loop, 3);
    assert_int_equal(w.calls, 3);
    assert_int_equal(w.events & (HP_READABLE | HP_WRITABLE), HP_READABLE);
    assert_int_equal(w.status, 0);

    assert_int_equal(read(fds[0], &c, 1), 1);
    ct_run_nowait(loop, 3);
    assert_int_equal(w.calls, 3);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close_pair(fds);
}

static void test_io_edge_watcher_is_called_once_until_its_io_hits_eagain(void **state)
{
    struct ct_log log = {0};
    struct hp_loop *loop = ct_loop_new(&log, NULL, 0);
    struct watch w;
    int fds[2];
    char buf[16];

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &w, fds[0], HP_READABLE | HP_EDGE);
    hp_test_write_all(fds[1], "xy", 2);
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_true(w.events & HP_READABLE);
    ct_run_nowait(loop, 5);
    assert_int_equal(w.calls, 1);

    /* Drain to EAGAIN through hp_io_read(): the next data wakes it again. */
    assert_int_equal(hp_io_read(&w.io, buf, sizeof(buf)), 2);
    assert_int_equal(hp_io_read(&w.io, buf, sizeof(buf)), -EAGAIN);
    ct_run_nowait(loop, 2);
    assert_int_equal(w.calls, 1);
    hp_test_write_all(fds[1], "z", 1);
    hp_test_run_until_count(loop, &w.calls, 2);
    ct_run_nowait(loop, 3);
    assert_int_equal(w.calls, 2);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close_pair(fds);
}

/* New data before EAGAIN does not wake an edge watcher again, on any driver. */
static void test_io_edge_watcher_is_not_woken_by_more_data_before_eagain(void **state)
{
    struct ct_log log = {0};
    struct hp_loop *loop = ct_loop_new(&log, NULL, 0);
    struct watch w;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &w, fds[0], HP_READABLE | HP_EDGE);
    hp_test_write_all(fds[1], "a", 1);
    hp_test_run_until_count(loop, &w.calls, 1);
    hp_test_write_all(fds[1], "b", 1); /* a new arrival: epoll and kqueue see an edge */
    ct_run_nowait(loop, 5);
    assert_int_equal(w.calls, 1);
    assert_int_equal(drain_fd(fds[0]), 2);
    hp_io_drained(&w.io, HP_READABLE);
    hp_test_write_all(fds[1], "c", 1);
    hp_test_run_until_count(loop, &w.calls, 2);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close_pair(fds);
}

static void test_io_edge_watcher_wakes_again_after_hp_io_drained(void **state)
{
    struct ct_log log = {0};
    struct hp_loop *loop = ct_loop_new(&log, NULL, 0);
    struct watch w;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &w, fds[0], HP_READABLE | HP_EDGE);
    hp_test_write_all(fds[1], "xy", 2);
    hp_test_run_until_count(loop, &w.calls, 1);
    ct_run_nowait(loop, 3);
    assert_int_equal(w.calls, 1);

    /* Drain with a plain read(2), then tell the loop. */
    assert_int_equal(drain_fd(fds[0]), 2);
    hp_io_drained(&w.io, HP_READABLE);
    hp_test_write_all(fds[1], "z", 1);
    hp_test_run_until_count(loop, &w.calls, 2);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close_pair(fds);
}

/* Drains in the callback, then makes more data arrive before the next poll. */
struct refill {
    struct hp_io io;
    int wfd;
    size_t calls;
};

static void on_refill(struct hp_io *io, unsigned events, int status)
{
    struct refill *r = hp_container_of(io, struct refill, io);
    char buf[64];
    ssize_t n;

    assert_true(events & HP_READABLE);
    assert_int_equal(status, 0);
    r->calls++;
    while ((n = hp_io_read(io, buf, sizeof(buf))) > 0)
        ;
    assert_int_equal(n, -EAGAIN);
    if (r->calls < 5)
        hp_test_write_all(r->wfd, "more", 4);
}

static void test_io_edge_watcher_sees_data_that_arrives_right_after_draining(void **state)
{
    struct ct_log log = {0};
    struct hp_loop *loop = ct_loop_new(&log, NULL, 0);
    struct refill r = {0};
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    r.wfd = fds[1];
    hp_io_init(loop, &r.io, fds[0], on_refill);
    assert_int_equal(hp_io_start(&r.io, HP_READABLE | HP_EDGE), 0);
    hp_test_write_all(fds[1], "go", 2);
    hp_test_run_until_count(loop, &r.calls, 5);
    ct_run_nowait(loop, 3);
    assert_int_equal(r.calls, 5);
    assert_int_equal(log.sate, 0);
    hp_io_stop(&r.io);
    hp_test_loop_free(loop);
    close_pair(fds);
}

/* Fills the socket until EAGAIN on every call. */
struct filler {
    struct hp_io io;
    size_t calls;
    size_t written;
};

static void on_fill(struct hp_io *io, unsigned events, int status)
{
    struct filler *f = hp_container_of(io, struct filler, io);
    static const char chunk[4096];
    ssize_t n;

    assert_true(events & HP_WRITABLE);
    assert_int_equal(status, 0);
    f->calls++;
    while ((n = hp_io_write(io, chunk, sizeof(chunk))) > 0)
        f->written += (size_t)n;
    assert_int_equal(n, -EAGAIN);
}

static void test_io_edge_writable_fires_again_once_the_peer_drains(void **state)
{
    struct ct_log log = {0};
    struct hp_loop *loop = ct_loop_new(&log, NULL, 0);
    struct filler f = {0};
    int sv[2];
    size_t got;

    (void)state;
    hp_test_socketpair(sv);
    hp_io_init(loop, &f.io, sv[0], on_fill);
    assert_int_equal(hp_io_start(&f.io, HP_WRITABLE | HP_EDGE), 0);
    hp_test_run_until_count(loop, &f.calls, 1);
    assert_true(f.written > 0);
    ct_run_nowait(loop, 5);
    assert_int_equal(f.calls, 1);

    got = drain_fd(sv[1]);
    assert_int_equal(got, f.written);
    hp_test_run_until_count(loop, &f.calls, 2);
    assert_int_equal(log.sate, 0);
    hp_io_stop(&f.io);
    hp_test_loop_free(loop);
    close_pair(sv);
}

static void test_io_level_watcher_reports_each_ready_direction(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int sv[2];

    (void)state;
    hp_test_socketpair(sv);
    watch_start(loop, &w, sv[0], HP_READABLE | HP_WRITABLE);
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_int_equal(w.events & (HP_READABLE | HP_WRITABLE), HP_WRITABLE);

    hp_test_write_all(sv[1], "x", 1);
    w.calls = 0;
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_int_equal(w.events & (HP_READABLE | HP_WRITABLE), HP_READABLE | HP_WRITABLE);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close_pair(sv);
}

static void test_io_start_on_an_active_watcher_changes_its_interest(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int sv[2];

    (void)state;
    hp_test_socketpair(sv);
    watch_start(loop, &w, sv[0], HP_READABLE);
    assert_int_equal(hp_io_events(&w.io), HP_READABLE);
    ct_run_nowait(loop, 2);
    assert_int_equal(w.calls, 0);

    assert_int_equal(hp_io_start(&w.io, HP_WRITABLE), 0);
    assert_int_equal(hp_io_events(&w.io), HP_WRITABLE);
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_int_equal(w.events & (HP_READABLE | HP_WRITABLE), HP_WRITABLE);

    /* Readable data is ignored without read interest. */
    hp_test_write_all(sv[1], "x", 1);
    assert_int_equal(hp_io_start(&w.io, 0), 0);
    w.calls = 0;
    ct_run_nowait(loop, 3);
    assert_int_equal(w.calls, 0);
    assert_true(hp_io_is_active(&w.io));
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close_pair(sv);
}

static void test_io_stopped_watcher_gets_no_callbacks(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &w, fds[0], HP_READABLE);
    hp_test_write_all(fds[1], "x", 1);
    hp_io_stop(&w.io);
    assert_false(hp_io_is_active(&w.io));
    assert_int_equal(hp_io_events(&w.io), 0);
    ct_run_nowait(loop, 3);
    assert_int_equal(w.calls, 0);
    hp_io_stop(&w.io); /* stopping a stopped watcher does nothing */

    /* A stopped watcher can be started again. */
    assert_int_equal(hp_io_start(&w.io, HP_READABLE), 0);
    hp_test_run_until_count(loop, &w.calls, 1);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close_pair(fds);
}

static void test_io_start_rejects_bad_events_and_negative_fds(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_io io;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    hp_io_init(loop, &io, fds[0], on_watch);
    assert_int_equal(hp_io_start(&io, 1u << 10), -EINVAL);
    assert_int_equal(hp_io_start(&io, HP_READABLE | (1u << 20)), -EINVAL);
    assert_int_equal(hp_io_start(&io, HP_HUP), -EINVAL);
    assert_int_equal(hp_io_start(&io, HP_ERROR), -EINVAL);
    assert_false(hp_io_is_active(&io));

    hp_io_init(loop, &io, -1, on_watch);
    assert_int_equal(hp_io_start(&io, HP_READABLE), -EINVAL);
    assert_false(hp_io_is_active(&io));
    assert_int_equal(hp_loop_active_handles(loop), 0);
    hp_test_loop_free(loop);
    close_pair(fds);
}

static void test_io_start_refuses_a_second_watcher_on_the_same_fd(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch a, b;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &a, fds[0], HP_READABLE);
    memset(&b, 0, sizeof(b));
    hp_io_init(loop, &b.io, fds[0], on_watch);
    assert_int_equal(hp_io_start(&b.io, HP_READABLE), -EEXIST);
    assert_false(hp_io_is_active(&b.io));

    /* The first watcher is untouched. */
    hp_test_write_all(fds[1], "x", 1);
    hp_test_run_until_count(loop, &a.calls, 1);
    assert_int_equal(b.calls, 0);
    hp_io_stop(&a.io);
    hp_test_loop_free(loop);
    close_pair(fds);
}

static void test_io_start_reports_epoll_errors_for_files_and_bad_fds(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    char path[] = "/tmp/hp-test-io-XXXXXX";
    struct hp_io io;
    int fd, bad;

    (void)state;
    if (strcmp(hp_loop_backend(loop), "epoll") != 0) {
        hp_test_loop_free(loop);
        skip(); /* documented for epoll only */
    }
    fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    hp_io_init(loop, &io, fd, on_watch);
    assert_int_equal(hp_io_start(&io, HP_READABLE), -EPERM);
    assert_false(hp_io_is_active(&io));

    bad = dup(fd);
    assert_true(bad >= 0);
    close(bad);
    hp_io_init(loop, &io, bad, on_watch);
    assert_int_equal(hp_io_start(&io, HP_READABLE), -EBADF);
    assert_false(hp_io_is_active(&io));
    assert_int_equal(hp_loop_active_handles(loop), 0);
    hp_test_loop_free(loop);
    close(fd);
}

/* ---- hang-up and error ------------------------------------------------ */

static void test_io_hup_reaches_a_pipe_watcher_with_no_interest(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &w, fds[0], 0);
    w.stop_on_call = true;
    ct_run_nowait(loop, 2);
    assert_int_equal(w.calls, 0);
    close(fds[1]);
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_true(w.events & HP_HUP);
    assert_false(hp_io_is_active(&w.io));
    hp_test_loop_free(loop);
    close(fds[0]);
}

static void test_io_hup_reaches_a_socketpair_watcher_with_no_interest(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int sv[2];

    (void)state;
    hp_test_socketpair(sv);
    watch_start(loop, &w, sv[0], 0);
    w.stop_on_call = true;
    ct_run_nowait(loop, 2);
    assert_int_equal(w.calls, 0);
    close(sv[1]);
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_true(w.events & HP_HUP);
    hp_test_loop_free(loop);
    close(sv[0]);
}

static void test_io_hup_reaches_an_edge_watcher_with_no_interest(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int sv[2];

    (void)state;
    hp_test_socketpair(sv);
    watch_start(loop, &w, sv[0], HP_EDGE);
    ct_run_nowait(loop, 2);
    assert_int_equal(w.calls, 0);
    close(sv[1]);
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_true(w.events & HP_HUP);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close(sv[0]);
}

/*
 * A connected UDP socket that sent to a closed loopback port has
 * ECONNREFUSED pending (from the ICMP port-unreachable): an error condition
 * with no data and no interest involved.
 */
static int udp_with_pending_error(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int probe, fd;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    probe = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(probe >= 0);
    assert_int_equal(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&sin, &len), 0);
    close(probe); /* the port is now closed */

    fd = hp_test_socket(AF_INET, SOCK_DGRAM, true);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(send(fd, "x", 1, 0), 1);
    return fd;
}

static void test_io_error_reaches_a_watcher_with_no_interest_with_its_status(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int fd = udp_with_pending_error();

    (void)state;
    watch_start(loop, &w, fd, 0);
    w.stop_on_call = true;
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_true(w.events & HP_ERROR);
    assert_int_equal(w.status, -ECONNREFUSED);
    hp_test_loop_free(loop);
    close(fd);
}

/* ---- re-entrancy ------------------------------------------------------ */

static size_t self_free_calls;

static void on_stop_and_free_self(struct hp_io *io, unsigned events, int status)
{
    (void)events;
    (void)status;
    self_free_calls++;
    hp_io_stop(io);
    memset(io, 0xa5, sizeof(*io)); /* make any later use by the core visible */
    free(io);
}

static void test_io_callback_may_stop_and_free_its_own_watcher(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_io *io = malloc(sizeof(*io));
    int fds[2];

    (void)state;
    assert_non_null(io);
    self_free_calls = 0;
    hp_test_pipe(fds);
    hp_io_init(loop, io, fds[0], on_stop_and_free_self);
    assert_int_equal(hp_io_start(io, HP_READABLE), 0);
    hp_test_write_all(fds[1], "x", 1);
    ct_run_nowait(loop, 5);
    assert_int_equal(self_free_calls, 1);
    hp_test_loop_free(loop);
    close_pair(fds);
}

/*
 * Many readable pipes; whichever callback runs first stops and frees every
 * other watcher, whose events are already in the same batch.
 */
struct victims {
    struct hp_io *w[100];
    int fds[100][2];
    size_t n;
    size_t calls;
};

static struct victims vic;

static void on_stop_all_others(struct hp_io *io, unsigned events, int status)
{
    assert_true(events & HP_READABLE);
    assert_int_equal(status, 0);
    vic.calls++;
    for (size_t i = 0; i < vic.n; i++) {
        if (vic.w[i] && vic.w[i] != io) {
            hp_io_stop(vic.w[i]);
            memset(vic.w[i], 0xa5, sizeof(*vic.w[i]));
            free(vic.w[i]);
            vic.w[i] = NULL;
        }
    }
}

static void run_stop_others(size_t n)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);

    memset(&vic, 0, sizeof(vic));
    vic.n = n;
    for (size_t i = 0; i < n; i++) {
        hp_test_pipe(vic.fds[i]);
        vic.w[i] = malloc(sizeof(*vic.w[i]));
        assert_non_null(vic.w[i]);
        hp_io_init(loop, vic.w[i], vic.fds[i][0], on_stop_all_others);
        assert_int_equal(hp_io_start(vic.w[i], HP_READABLE), 0);
        hp_test_write_all(vic.fds[i][1], "x", 1);
    }
    /* One batch holds all of them (default max_events is 1024). */
    assert_int_equal(hp_loop_run_once(loop, 0), 1);
    assert_int_equal(vic.calls, 1);
    ct_run_nowait(loop, 2); /* the survivor stays readable: level-triggered */
    assert_int_equal(vic.calls, 3);
    for (size_t i = 0; i < n; i++) {
        if (vic.w[i]) {
            hp_io_stop(vic.w[i]);
            free(vic.w[i]);
        }
        close_pair(vic.fds[i]);
    }
    hp_test_loop_free(loop);
}

static void test_io_callback_may_stop_and_free_another_watcher_with_an_event_pending(void **state)
{
    (void)state;
    run_stop_others(2);
}

static void test_io_callback_may_stop_and_free_many_watchers_with_events_pending(void **state)
{
    (void)state;
    run_stop_others(100);
}

/*
 * Two watchers have events in one batch. The first callback to run stops
 * the other, closes its fd N and gets a new descriptor numbered N (from
 * dup or accept), which a new watcher starts on. The stale event for N must
 * not reach the new watcher.
 */
struct reuse {
    struct hp_loop *loop;
    struct watch a, b;
    struct watch z;
    int spare_fd;  /* dup source (an empty pipe), or -1 */
    int listen_fd; /* accept source, or -1 */
    int reused_fd;
    size_t swaps;
};

static struct reuse reuse;

static int take_fd_number(int n)
{
    int fd;

    if (reuse.spare_fd >= 0)
        fd = fcntl(reuse.spare_fd, F_DUPFD_CLOEXEC, n);
    else
        fd = hp_test_accept(reuse.listen_fd);
    assert_true(fd >= 0);
    if (fd != n) {
        /* Some lower number was free too; move the descriptor to N. */
        assert_int_equal(dup2(fd, n), n);
        close(fd);
    }
    return n;
}

static void on_reuse_first(struct hp_io *io, unsigned events, int status)
{
    struct watch *self = hp_container_of(io, struct watch, io);
    struct watch *other = self == &reuse.a ? &reuse.b : &reuse.a;
    int n = other->io.fd;

    (void)events;
    (void)status;
    self->calls++;
    reuse.swaps++;
    hp_io_stop(&other->io);
    close(n);
    reuse.reused_fd = take_fd_number(n);
    hp_io_init(reuse.loop, &reuse.z.io, reuse.reused_fd, on_watch);
    assert_int_equal(hp_io_start(&reuse.z.io, HP_READABLE), 0);
    hp_io_stop(io);
}

static void run_fd_reuse(int listen_fd, int spare_fd, int *writer_for_new)
{
    int a[2], b[2];

    memset(&reuse, 0, sizeof(reuse));
    reuse.loop = hp_test_loop_new(NULL);
    reuse.listen_fd = listen_fd;
    reuse.spare_fd = spare_fd;
    reuse.reused_fd = -1;
    reuse.z.stop_on_call = true;
    reuse.z.drain_on_call = true;
    hp_test_socketpair(a);
    hp_test_socketpair(b);
    hp_io_init(reuse.loop, &reuse.a.io, a[0], on_reuse_first);
    hp_io_init(reuse.loop, &reuse.b.io, b[0], on_reuse_first);
    assert_int_equal(hp_io_start(&reuse.a.io, HP_READABLE), 0);
    assert_int_equal(hp_io_start(&reuse.b.io, HP_READABLE), 0);
    hp_test_write_all(a[1], "a", 1);
    hp_test_write_all(b[1], "b", 1);

    ct_run_nowait(reuse.loop, 1);
    assert_int_equal(reuse.swaps, 1);
    assert_int_equal(reuse.a.calls + reuse.b.calls, 1);
    ct_run_nowait(reuse.loop, 3);
    assert_int_equal(reuse.swaps, 1);
    assert_int_equal(reuse.z.calls, 0); /* no stale event, and the new fd is not ready */

    /* The new watcher works: make its descriptor readable. */
    hp_test_write_all(*writer_for_new, "z", 1);
    hp_test_run_until_count(reuse.loop, &reuse.z.calls, 1);
    assert_true(reuse.z.events & HP_READABLE);
    hp_test_loop_free(reuse.loop);

    close(reuse.reused_fd);
    if (reuse.a.calls)
        close(a[0]); /* b[0]'s number was reused */
    else
        close(b[0]);
    close(a[1]);
    close(b[1]);
}

static void test_io_stale_event_does_not_reach_a_watcher_on_a_reused_dup_fd(void **state)
{
    int p[2];

    (void)state;
    hp_test_pipe(p);
    run_fd_reuse(-1, p[0], &p[1]);
    close_pair(p);
}

static void test_io_stale_event_does_not_reach_a_watcher_on_a_reused_accept_fd(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    int lfd, cfd;

    (void)state;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = hp_test_socket(AF_INET, SOCK_STREAM, false);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    cfd = hp_test_socket(AF_INET, SOCK_STREAM, false);
    assert_true(cfd >= 0);
    /* Blocking connect on loopback returns once the connection is queued. */
    assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    run_fd_reuse(lfd, -1, &cfd);
    close(cfd);
    close(lfd);
}

/*
 * Two watchers have events in one batch; the first callback registers
 * watchers on high descriptor numbers, so the core's fd-indexed table must
 * grow (move) in the middle of the batch. The second watcher is still
 * dispatched, once, to the right watcher.
 */
enum { GROW_FDS = 3 };

struct grower {
    struct watch w[2];
    struct watch high[GROW_FDS];
    int high_fd[GROW_FDS];
    int src_fd;
    int fd_cap; /* the soft descriptor limit, at most 65536 */
    struct hp_loop *loop;
    bool grown;
};

static struct grower grow;

static void on_grow(struct hp_io *io, unsigned events, int status)
{
    struct watch *w = hp_container_of(io, struct watch, io);

    assert_true(w == &grow.w[0] || w == &grow.w[1]);
    on_watch(io, events, status);
    if (grow.grown)
        return;
    grow.grown = true;
    for (int i = 0; i < GROW_FDS; i++) {
        int want = grow.fd_cap >> (GROW_FDS - i); /* cap/8, cap/4, cap/2 */

        grow.high_fd[i] = fcntl(grow.src_fd, F_DUPFD_CLOEXEC, want);
        assert_true(grow.high_fd[i] >= want);
        memset(&grow.high[i], 0, sizeof(grow.high[i]));
        hp_io_init(grow.loop, &grow.high[i].io, grow.high_fd[i], on_watch);
        assert_int_equal(hp_io_start(&grow.high[i].io, HP_READABLE), 0);
    }
}

static void test_io_fd_table_growth_inside_a_callback_does_not_disturb_the_batch(void **state)
{
    struct rlimit rl;
    int a[2], b[2], spare[2];

    (void)state;
    memset(&grow, 0, sizeof(grow));
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    grow.fd_cap = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
    grow.loop = hp_test_loop_new(NULL);
    hp_test_socketpair(a);
    hp_test_socketpair(b);
    hp_test_pipe(spare);
    grow.src_fd = spare[0];
    hp_io_init(grow.loop, &grow.w[0].io, a[0], on_grow);
    hp_io_init(grow.loop, &grow.w[1].io, b[0], on_grow);
    grow.w[0].drain_on_call = grow.w[1].drain_on_call = true;
    assert_int_equal(hp_io_start(&grow.w[0].io, HP_READABLE), 0);
    assert_int_equal(hp_io_start(&grow.w[1].io, HP_READABLE), 0);
    hp_test_write_all(a[1], "a", 1);
    hp_test_write_all(b[1], "b", 1);
    assert_int_equal(hp_loop_run_once(grow.loop, 0), 2);
    assert_int_equal(grow.w[0].calls, 1);
    assert_int_equal(grow.w[1].calls, 1);
    assert_true(grow.grown);

    /* The new watchers work too. */
    hp_test_write_all(spare[1], "x", 1);
    for (int i = 0; i < GROW_FDS; i++)
        hp_test_run_until_count(grow.loop, &grow.high[i].calls, 1);
    for (int i = 0; i < GROW_FDS; i++) {
        hp_io_stop(&grow.high[i].io);
        close(grow.high_fd[i]);
    }
    hp_io_stop(&grow.w[0].io);
    hp_io_stop(&grow.w[1].io);
    hp_test_loop_free(grow.loop);
    close_pair(a);
    close_pair(b);
    close_pair(spare);
}

/* ---- hp_io_read/hp_io_write ---------------------------------------------- */

static void test_io_read_reports_eagain_then_data_then_eof(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch w;
    int fds[2];
    char buf[8];

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &w, fds[0], HP_READABLE);
    assert_int_equal(hp_io_read(&w.io, buf, sizeof(buf)), -EAGAIN);
    hp_test_write_all(fds[1], "abc", 3);
    assert_int_equal(hp_io_read(&w.io, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "abc", 3);
    close(fds[1]);
    assert_int_equal(hp_io_read(&w.io, buf, sizeof(buf)), HP_EOF);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close(fds[0]);
}

static void test_io_write_to_a_closed_socket_gives_epipe_not_sigpipe(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct sigaction dfl, old;
    struct watch w;
    int sv[2];

    (void)state;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL; /* a SIGPIPE would kill the test */
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
    hp_test_socketpair(sv);
    watch_start(loop, &w, sv[0], HP_WRITABLE);
    close(sv[1]);
    assert_int_equal(hp_io_write(&w.io, "x", 1), -EPIPE);
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close(sv[0]);
}

static void test_io_readv_and_writev_move_several_buffers_in_order(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct watch r, wr;
    struct hp_buf out[3], in[2];
    char a[4], b[8];
    int sv[2];

    (void)state;
    hp_test_socketpair(sv);
    watch_start(loop, &wr, sv[0], HP_WRITABLE);
    watch_start(loop, &r, sv[1], HP_READABLE);
    out[0] = hp_buf_make("hel", 3);
    out[1] = hp_buf_make("lo, ", 4);
    out[2] = hp_buf_make("world", 5);
    assert_int_equal(hp_io_writev(&wr.io, out, 3), 12);
    in[0] = hp_buf_make(a, sizeof(a));
    in[1] = hp_buf_make(b, sizeof(b));
    assert_int_equal(hp_io_readv(&r.io, in, 2), 12);
    assert_memory_equal(a, "hell", 4);
    assert_memory_equal(b, "o, world", 8);
    assert_int_equal(hp_io_readv(&r.io, in, 2), -EAGAIN);
    hp_io_stop(&wr.io);
    hp_io_stop(&r.io);
    hp_test_loop_free(loop);
    close_pair(sv);
}

/* ---- "sate the stream" ------------------------------------------------------ */

enum sate_mode { SATE_READ_ONE, SATE_DRAIN, SATE_STOP, SATE_READ_TO_EOF };

struct sate {
    struct hp_io io;
    enum sate_mode mode;
    size_t calls;
};

static void on_sate(struct hp_io *io, unsigned events, int status)
{
    struct sate *s = hp_container_of(io, struct sate, io);
    char buf[1];
    ssize_t n;

    (void)events;
    (void)status;
    s->calls++;
    switch (s->mode) {
    case SATE_READ_ONE:
        assert_int_equal(hp_io_read(io, buf, 1), 1);
        break;
    case SATE_DRAIN:
        while ((n = hp_io_read(io, buf, 1)) > 0)
            ;
        assert_int_equal(n, -EAGAIN);
        break;
    case SATE_STOP:
        hp_io_stop(io);
        break;
    case SATE_READ_TO_EOF:
        while ((n = hp_io_read(io, buf, 1)) > 0)
            ;
        assert_int_equal(n, HP_EOF);
        break;
    }
}

/* An edge watcher in @p mode on a loop logging at @p level: the "sate the stream" reports. */
static unsigned run_sate_at(enum sate_mode mode, enum hp_log_level level)
{
    struct ct_log log = {0};
    struct hp_loop_opts opts = {.log = ct_log_cb, .log_ctx = &log, .log_level = level};
    struct hp_loop *loop = NULL;
    struct sate s = {.mode = mode};
    int sv[2];

    assert_int_equal(hp_loop_new(&loop, &opts), 0);

    hp_test_socketpair(sv);
    hp_io_init(loop, &s.io, sv[0], on_sate);
    assert_int_equal(hp_io_start(&s.io, HP_READABLE | HP_EDGE), 0);
    hp_test_write_all(sv[1], "abc", 3);
    if (mode == SATE_READ_TO_EOF) {
        close(sv[1]);
        sv[1] = -1;
    }
    hp_test_run_until_count(loop, &s.calls, 1);
    ct_run_nowait(loop, 2);
    hp_io_stop(&s.io);
    hp_test_loop_free(loop);
    close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return log.sate;
}

static unsigned run_sate(enum sate_mode mode)
{
    return run_sate_at(mode, HP_LOG_DEBUG);
}

static void test_io_edge_callback_returning_undrained_is_reported_as_sate_the_stream(void **state)
{
    (void)state;
#ifndef NDEBUG
    assert_true(run_sate(SATE_READ_ONE) >= 1);
#else
    skip(); /* the check exists in debug builds only */
#endif
}

static void test_io_edge_callback_that_drains_or_stops_is_not_reported(void **state)
{
    (void)state;
    assert_int_equal(run_sate(SATE_DRAIN), 0);
    assert_int_equal(run_sate(SATE_STOP), 0);
    assert_int_equal(run_sate(SATE_READ_TO_EOF), 0);
}

/* The report is a warning: HP_LOG_ERROR can be chosen as the threshold and drops it. */
static void test_io_log_threshold_error_drops_the_sate_the_stream_warning(void **state)
{
    (void)state;
#ifndef NDEBUG
    assert_true(run_sate_at(SATE_READ_ONE, HP_LOG_WARN) >= 1);
    assert_true(run_sate_at(SATE_READ_ONE, (enum hp_log_level)0) >= 1); /* the default: WARN */
    assert_int_equal(run_sate_at(SATE_READ_ONE, HP_LOG_ERROR), 0);
#else
    skip(); /* the only warning of the core exists in debug builds only */
#endif
}

/* ---- reads of zero bytes ---------------------------------------------------- */

static void test_io_read_of_zero_bytes_returns_zero_not_eof(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_buf none[2];
    struct watch w;
    char buf[8];
    int fds[2];

    (void)state;
    hp_test_pipe(fds);
    watch_start(loop, &w, fds[0], HP_READABLE);
    assert_int_equal(hp_io_read(&w.io, buf, 0), 0); /* empty pipe: not an end of file */
    hp_test_write_all(fds[1], "abc", 3);
    assert_int_equal(hp_io_read(&w.io, buf, 0), 0);
    none[0] = hp_buf_make(buf, 0);
    none[1] = hp_buf_make(buf + 1, 0);
    assert_int_equal(hp_io_readv(&w.io, none, 2), 0);
    assert_int_equal(hp_io_read(&w.io, buf, sizeof(buf)), 3); /* nothing was lost */
    assert_memory_equal(buf, "abc", 3);
    close(fds[1]);
    assert_int_equal(hp_io_read(&w.io, buf, 0), 0);
    assert_int_equal(hp_io_read(&w.io, buf, sizeof(buf)), HP_EOF); /* the real end */
    hp_io_stop(&w.io);
    hp_test_loop_free(loop);
    close(fds[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_level_watcher_is_called_every_iteration_while_ready),
        cmocka_unit_test(test_io_edge_watcher_is_called_once_until_its_io_hits_eagain),
        cmocka_unit_test(test_io_edge_watcher_is_not_woken_by_more_data_before_eagain),
        cmocka_unit_test(test_io_edge_watcher_wakes_again_after_hp_io_drained),
        cmocka_unit_test(test_io_edge_watcher_sees_data_that_arrives_right_after_draining),
        cmocka_unit_test(test_io_edge_writable_fires_again_once_the_peer_drains),
        cmocka_unit_test(test_io_level_watcher_reports_each_ready_direction),
        cmocka_unit_test(test_io_start_on_an_active_watcher_changes_its_interest),
        cmocka_unit_test(test_io_stopped_watcher_gets_no_callbacks),
        cmocka_unit_test(test_io_start_rejects_bad_events_and_negative_fds),
        cmocka_unit_test(test_io_start_refuses_a_second_watcher_on_the_same_fd),
        cmocka_unit_test(test_io_start_reports_epoll_errors_for_files_and_bad_fds),
        cmocka_unit_test(test_io_hup_reaches_a_pipe_watcher_with_no_interest),
        cmocka_unit_test(test_io_hup_reaches_a_socketpair_watcher_with_no_interest),
        cmocka_unit_test(test_io_hup_reaches_an_edge_watcher_with_no_interest),
        cmocka_unit_test(test_io_error_reaches_a_watcher_with_no_interest_with_its_status),
        cmocka_unit_test(test_io_callback_may_stop_and_free_its_own_watcher),
        cmocka_unit_test(test_io_callback_may_stop_and_free_another_watcher_with_an_event_pending),
        cmocka_unit_test(test_io_callback_may_stop_and_free_many_watchers_with_events_pending),
        cmocka_unit_test(test_io_stale_event_does_not_reach_a_watcher_on_a_reused_dup_fd),
        cmocka_unit_test(test_io_stale_event_does_not_reach_a_watcher_on_a_reused_accept_fd),
        cmocka_unit_test(test_io_fd_table_growth_inside_a_callback_does_not_disturb_the_batch),
        cmocka_unit_test(test_io_read_reports_eagain_then_data_then_eof),
        cmocka_unit_test(test_io_write_to_a_closed_socket_gives_epipe_not_sigpipe),
        cmocka_unit_test(test_io_readv_and_writev_move_several_buffers_in_order),
        cmocka_unit_test(test_io_edge_callback_returning_undrained_is_reported_as_sate_the_stream),
        cmocka_unit_test(test_io_edge_callback_that_drains_or_stops_is_not_reported),
        cmocka_unit_test(test_io_log_threshold_error_drops_the_sate_the_stream_warning),
        cmocka_unit_test(test_io_read_of_zero_bytes_returns_zero_not_eof),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/io", tests, NULL, NULL);
}
