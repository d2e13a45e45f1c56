/*
 * tests/backends/test_driver.c - the driver compiled into the library,
 * called directly through its ops table, against the contract in
 * core/src/backend.h: readiness, level and (where HP_CAP_EDGE) edge
 * triggering, interest changes, hang-up and errors whatever the interest, one
 * entry per descriptor per wait, remove() of a closed descriptor, timeouts.
 * Runs for every BACKEND, so a failure here is the driver's, not the core's.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "testutil.h"

#define OUT_CAP 16

struct drv {
    const struct hp_backend_ops *ops;
    void *st;
    struct hp_ready out[OUT_CAP];
};

/* On Linux poll(2), and so every driver here, a half-close is not POLLHUP. */
#ifdef __linux__
static const bool half_close_is_not_hup = true;
#else
static const bool half_close_is_not_hup = false;
#endif

static void *std_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}

static void std_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static int setup(void **state)
{
    struct drv *d = calloc(1, sizeof(*d));
    struct hp_backend_cfg cfg = {
        .alloc = {.realloc = std_realloc, .free = std_free},
        .max_events = OUT_CAP,
    };

    if (!d)
        return -1;
    d->ops = &HP_BACKEND_OPS;
    if (d->ops->init(&d->st, &cfg) != 0) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct drv *d = *state;

    d->ops->destroy(d->st);
    free(d);
    return 0;
}

static bool has_edge(const struct drv *d)
{
    return (d->ops->caps & HP_CAP_EDGE) != 0;
}

/* One wait; the events reported for @p fd (0 if none), asserting one entry at most. */
static unsigned wait_fd(struct drv *d, int fd, int timeout_ms)
{
    int n = d->ops->wait(d->st, d->out, OUT_CAP, timeout_ms);
    unsigned ev = 0;
    int entries = 0;

    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        if (d->out[i].fd == fd) {
            ev |= d->out[i].events;
            entries++;
        }
    }
    assert_true(entries <= 1);
    return ev;
}

/* Wait (bounded) until @p fd reports any of @p bits; returns all it reported then. */
static unsigned wait_bits(struct drv *d, int fd, unsigned bits)
{
    for (int i = 0; i < 50; i++) {
        unsigned ev = wait_fd(d, fd, 100);

        if (ev & bits)
            return ev;
    }
    fail_msg("fd %d: events 0x%x not reported within 5 s", fd, bits);
    return 0;
}

static void drain(int fd)
{
    char buf[256];

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static int udp_with_pending_error(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int probe = socket(AF_INET, SOCK_DGRAM, 0), fd;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(probe >= 0);
    assert_int_equal(bind(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&sa, &len), 0);
    close(probe); /* the port is closed: a datagram to it draws port unreachable */
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, "x", 1, 0), 1);
    return fd;
}

static void test_driver_level_reports_while_readable(void **state)
{
    struct drv *d = *state;
    int p[2];

    hp_test_pipe(p);
    assert_int_equal(d->ops->add(d->st, p[0], HP_READABLE), 0);
    assert_int_equal(wait_fd(d, p[0], 0), 0);
    hp_test_write_all(p[1], "abc", 3);
    assert_true(wait_bits(d, p[0], HP_READABLE) & HP_READABLE);
    assert_true(wait_fd(d, p[0], 0) & HP_READABLE);
    assert_true(wait_fd(d, p[0], 0) & HP_READABLE);
    drain(p[0]);
    assert_int_equal(wait_fd(d, p[0], 0), 0);
    assert_int_equal(d->ops->remove(d->st, p[0], HP_READABLE), 0);
    close(p[0]);
    close(p[1]);
}

static void test_driver_edge_reports_once_per_arrival(void **state)
{
    struct drv *d = *state;
    int p[2];

    if (!has_edge(d))
        skip(); /* the core emulates edges for this driver */
    hp_test_pipe(p);
    assert_int_equal(d->ops->add(d->st, p[0], HP_READABLE | HP_EDGE), 0);
    hp_test_write_all(p[1], "abc", 3);
    assert_true(wait_bits(d, p[0], HP_READABLE) & HP_READABLE);
    assert_int_equal(wait_fd(d, p[0], 0), 0);
    hp_test_write_all(p[1], "d", 1);
    assert_true(wait_bits(d, p[0], HP_READABLE) & HP_READABLE);
    assert_int_equal(d->ops->remove(d->st, p[0], HP_READABLE | HP_EDGE), 0);
    close(p[0]);
    close(p[1]);
}

static void test_driver_gives_one_entry_per_descriptor(void **state)
{
    struct drv *d = *state;
    unsigned ev;
    int sv[2];

    hp_test_socketpair(sv);
    hp_test_write_all(sv[1], "x", 1);
    assert_int_equal(d->ops->add(d->st, sv[0], HP_READABLE | HP_WRITABLE), 0);
    ev = wait_bits(d, sv[0], HP_READABLE);
    assert_int_equal(ev & (HP_READABLE | HP_WRITABLE), HP_READABLE | HP_WRITABLE);
    assert_int_equal(d->ops->remove(d->st, sv[0], HP_READABLE | HP_WRITABLE), 0);
    close(sv[0]);
    close(sv[1]);
}

static void hangup_reaches_interest(struct drv *d, unsigned interest)
{
    int sv[2];

    hp_test_socketpair(sv);
    hp_test_write_all(sv[1], "unread", 6);
    assert_int_equal(d->ops->add(d->st, sv[0], interest), 0);
    (void)wait_fd(d, sv[0], 0);
    close(sv[1]);
    assert_true(wait_bits(d, sv[0], HP_HUP) & HP_HUP);
    (void)d->ops->remove(d->st, sv[0], interest);
    close(sv[0]);
}

static void test_driver_reports_hangup_with_no_interest(void **state)
{
    hangup_reaches_interest(*state, 0);
}

static void test_driver_reports_hangup_with_write_interest_only(void **state)
{
    hangup_reaches_interest(*state, HP_WRITABLE);
}

static void test_driver_reports_hangup_with_edge_write_interest(void **state)
{
    struct drv *d = *state;

    if (!has_edge(d))
        skip();
    hangup_reaches_interest(d, HP_WRITABLE | HP_EDGE);
}

static void test_driver_level_half_close_is_readable_not_a_hangup(void **state)
{
    struct drv *d = *state;
    unsigned ev;
    int sv[2];

    if (!half_close_is_not_hup)
        skip(); /* macOS's poll(2) calls a read-side EOF POLLHUP */
    hp_test_socketpair(sv);
    assert_int_equal(d->ops->add(d->st, sv[0], HP_READABLE), 0);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
    ev = wait_bits(d, sv[0], HP_READABLE);
    assert_false(ev & (HP_HUP | HP_ERROR));
    assert_int_equal(d->ops->remove(d->st, sv[0], HP_READABLE), 0);
    close(sv[0]);
    close(sv[1]);
}

static void test_driver_edge_half_close_is_a_hangup(void **state)
{
    struct drv *d = *state;
    const unsigned interests[] = {HP_READABLE | HP_EDGE, HP_WRITABLE | HP_EDGE};

    if (!has_edge(d))
        skip();
    /* An edge reader that stops at a short read must still learn of the FIN. */
    for (size_t i = 0; i < sizeof(interests) / sizeof(interests[0]); i++) {
        int sv[2];

        hp_test_socketpair(sv);
        assert_int_equal(d->ops->add(d->st, sv[0], interests[i]), 0);
        (void)wait_fd(d, sv[0], 0);
        assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
        assert_true(wait_bits(d, sv[0], HP_HUP) & HP_HUP);
        assert_int_equal(d->ops->remove(d->st, sv[0], interests[i]), 0);
        close(sv[0]);
        close(sv[1]);
    }
}

static void test_driver_reports_a_socket_error_with_no_interest(void **state)
{
    struct drv *d = *state;
    int fd = udp_with_pending_error(), err = 0;
    socklen_t len = sizeof(err);

    assert_int_equal(d->ops->add(d->st, fd, 0), 0);
    assert_true(wait_bits(d, fd, HP_ERROR) & HP_ERROR);
    /* The error is still there for the core to read. */
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    assert_int_equal(err, ECONNREFUSED);
    (void)d->ops->remove(d->st, fd, 0);
    close(fd);
}

static void gaining_read_reports_waiting_data(struct drv *d, unsigned edge)
{
    int p[2];

    hp_test_pipe(p);
    assert_int_equal(d->ops->add(d->st, p[0], edge), 0);
    hp_test_write_all(p[1], "abc", 3);
    for (int i = 0; i < 3; i++)
        assert_false(wait_fd(d, p[0], 10) & HP_READABLE);
    assert_int_equal(d->ops->modify(d->st, p[0], edge, HP_READABLE | edge), 0);
    assert_true(wait_bits(d, p[0], HP_READABLE) & HP_READABLE);
    assert_int_equal(d->ops->remove(d->st, p[0], HP_READABLE | edge), 0);
    close(p[0]);
    close(p[1]);
}

static void test_driver_modify_gaining_read_reports_waiting_data(void **state)
{
    gaining_read_reports_waiting_data(*state, 0);
}

static void test_driver_modify_gaining_edge_read_reports_waiting_data(void **state)
{
    struct drv *d = *state;

    if (!has_edge(d))
        skip();
    gaining_read_reports_waiting_data(d, HP_EDGE);
}

static void test_driver_modify_switches_between_level_and_edge(void **state)
{
    struct drv *d = *state;
    const unsigned level = HP_READABLE, edge = HP_READABLE | HP_EDGE;
    int p[2];

    if (!has_edge(d))
        skip();
    hp_test_pipe(p);
    hp_test_write_all(p[1], "abc", 3);
    assert_int_equal(d->ops->add(d->st, p[0], level), 0);
    assert_true(wait_bits(d, p[0], HP_READABLE) & HP_READABLE);
    assert_int_equal(d->ops->modify(d->st, p[0], level, edge), 0);
    assert_true(wait_bits(d, p[0], HP_READABLE) & HP_READABLE);
    assert_int_equal(wait_fd(d, p[0], 0), 0); /* now edge: once */
    assert_int_equal(d->ops->modify(d->st, p[0], edge, level), 0);
    assert_true(wait_bits(d, p[0], HP_READABLE) & HP_READABLE);
    assert_true(wait_fd(d, p[0], 0) & HP_READABLE); /* level again */
    assert_int_equal(d->ops->remove(d->st, p[0], level), 0);
    close(p[0]);
    close(p[1]);
}

static void test_driver_modify_dropping_write_stops_write_reports(void **state)
{
    struct drv *d = *state;
    const unsigned rw = HP_READABLE | HP_WRITABLE;
    int sv[2];

    hp_test_socketpair(sv);
    assert_int_equal(d->ops->add(d->st, sv[0], rw), 0);
    assert_true(wait_bits(d, sv[0], HP_WRITABLE) & HP_WRITABLE);
    assert_int_equal(d->ops->modify(d->st, sv[0], rw, HP_READABLE), 0);
    assert_int_equal(wait_fd(d, sv[0], 0), 0);
    assert_int_equal(d->ops->remove(d->st, sv[0], HP_READABLE), 0);
    close(sv[0]);
    close(sv[1]);
}

static void test_driver_remove_stops_reports_and_tolerates_a_closed_fd(void **state)
{
    struct drv *d = *state;
    int p[2], err;

    hp_test_pipe(p);
    hp_test_write_all(p[1], "x", 1);
    assert_int_equal(d->ops->add(d->st, p[0], HP_READABLE), 0);
    assert_int_equal(d->ops->remove(d->st, p[0], HP_READABLE), 0);
    assert_int_equal(wait_fd(d, p[0], 0), 0);
    assert_int_equal(d->ops->add(d->st, p[0], HP_READABLE), 0);
    close(p[0]);
    err = d->ops->remove(d->st, p[0], HP_READABLE);
    assert_true(err == 0 || err == -EBADF || err == -ENOENT);
    close(p[1]);
}

static void test_driver_add_of_a_closed_fd_fails_or_reports_an_error(void **state)
{
    struct drv *d = *state;
    int p[2], err;

    hp_test_pipe(p);
    close(p[0]);
    close(p[1]);
    err = d->ops->add(d->st, p[0], HP_READABLE);
    if (err == 0) { /* poll(2) only finds out when it looks: POLLNVAL */
        assert_true(wait_bits(d, p[0], HP_ERROR) & HP_ERROR);
        (void)d->ops->remove(d->st, p[0], HP_READABLE);
    } else {
        assert_int_equal(err, -EBADF);
    }
}

static void test_driver_wait_fills_no_more_than_cap(void **state)
{
    struct drv *d = *state;
    int p[3][2], n = 0;

    for (int i = 0; i < 3; i++) {
        hp_test_pipe(p[i]);
        hp_test_write_all(p[i][1], "x", 1);
        assert_int_equal(d->ops->add(d->st, p[i][0], HP_READABLE), 0);
    }
    assert_int_equal(d->ops->wait(d->st, d->out, 1, 1000), 1);
    for (int i = 0; i < 20; i++) {
        n = d->ops->wait(d->st, d->out, OUT_CAP, 1000);
        if (n == 3)
            break;
    }
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d->ops->remove(d->st, p[i][0], HP_READABLE), 0);
        close(p[i][0]);
        close(p[i][1]);
    }
}

static void test_driver_wait_times_out(void **state)
{
    struct drv *d = *state;
    struct timespec t0, t1;
    int64_t ms;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(d->ops->wait(d->st, d->out, OUT_CAP, 50), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 45); /* the clocks differ by less than a tick */
    assert_true(ms < 5000);
}

#define DRV_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        DRV_TEST(test_driver_level_reports_while_readable),
        DRV_TEST(test_driver_edge_reports_once_per_arrival),
        DRV_TEST(test_driver_gives_one_entry_per_descriptor),
        DRV_TEST(test_driver_reports_hangup_with_no_interest),
        DRV_TEST(test_driver_reports_hangup_with_write_interest_only),
        DRV_TEST(test_driver_reports_hangup_with_edge_write_interest),
        DRV_TEST(test_driver_level_half_close_is_readable_not_a_hangup),
        DRV_TEST(test_driver_edge_half_close_is_a_hangup),
        DRV_TEST(test_driver_reports_a_socket_error_with_no_interest),
        DRV_TEST(test_driver_modify_gaining_read_reports_waiting_data),
        DRV_TEST(test_driver_modify_gaining_edge_read_reports_waiting_data),
        DRV_TEST(test_driver_modify_switches_between_level_and_edge),
        DRV_TEST(test_driver_modify_dropping_write_stops_write_reports),
        DRV_TEST(test_driver_remove_stops_reports_and_tolerates_a_closed_fd),
        DRV_TEST(test_driver_add_of_a_closed_fd_fails_or_reports_an_error),
        DRV_TEST(test_driver_wait_fills_no_more_than_cap),
        DRV_TEST(test_driver_wait_times_out),
    };

    return cmocka_run_group_tests_name("backends/driver", tests, NULL, NULL);
}
