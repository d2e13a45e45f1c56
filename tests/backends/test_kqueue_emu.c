/*
 * tests/backends/test_kqueue_emu.c - the test-only kqueue emulation
 * (tests/support/kqueue-emu) against the semantics documented in FreeBSD's
 * kqueue(2): changes before events, EV_RECEIPT and EV_ERROR entries, level
 * and EV_CLEAR triggering, EV_EOF with the socket error in fflags, knotes
 * dropped by close(), udata, timeouts. Real descriptors only: pipes,
 * socketpairs and loopback TCP.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

static const struct timespec zero_ts = {0, 0};
static const struct timespec long_ts = {5, 0}; /* bounds every wait that should succeed */

static int setup_kq(void **state)
{
    int *kq = *state = malloc(sizeof(int));

    if (!kq)
        return -1;
    *kq = kqueue();
    return *kq >= 0 ? 0 : -1;
}

static int teardown_kq(void **state)
{
    int *kq = *state;

    close(*kq);
    free(kq);
    return 0;
}

static int kq_of(void **state)
{
    return *(int *)*state;
}

/* One change, no receipt; assert it is applied. */
static void change(int kq, int fd, short filter, unsigned short flags, void *udata)
{
    struct kevent kev;

    EV_SET(&kev, (uintptr_t)fd, filter, flags, 0, 0, udata);
    assert_int_equal(kevent(kq, &kev, 1, NULL, 0, NULL), 0);
}

/* Collect with a timeout; returns the count. */
static int collect(int kq, struct kevent *evs, int n, const struct timespec *ts)
{
    int r = kevent(kq, NULL, 0, evs, n, ts);

    assert_true(r >= 0);
    return r;
}

static void assert_no_event(int kq)
{
    struct kevent ev;

    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 0);
}

static void drain(int fd)
{
    char buf[256];

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A loopback TCP listener on an ephemeral port; its address goes to @p sa. */
static int tcp_listener(struct sockaddr_in *sa, bool listening)
{
    socklen_t len = sizeof(*sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    if (listening)
        assert_int_equal(listen(fd, 8), 0);
    return fd;
}

static int tcp_connect_nb(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r;

    assert_true(fd >= 0);
    r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    assert_true(r == 0 || errno == EINPROGRESS);
    return fd;
}

/* ---- descriptor and call semantics ---------------------------------------------- */

static void test_kqueue_descriptor_is_released_by_close(void **state)
{
    struct kevent ev;
    int kq = kqueue();

    (void)state;
    assert_true(kq >= 0);
    assert_true(fcntl(kq, F_GETFD) >= 0);
    assert_int_equal(close(kq), 0);
    assert_int_equal(kevent(kq, NULL, 0, &ev, 1, &zero_ts), -1);
    assert_int_equal(errno, EBADF);
}

static void test_a_reused_kqueue_number_starts_empty(void **state)
{
    struct kevent ev;
    int p[2], kq1, kq2;

    (void)state;
    hp_test_pipe(p);
    hp_test_write_all(p[1], "x", 1);
    kq1 = kqueue();
    change(kq1, p[0], EVFILT_READ, EV_ADD, NULL);
    close(kq1);
    kq2 = kqueue();
    assert_int_equal(kq2, kq1); /* lowest free number */
    assert_int_equal(collect(kq2, &ev, 1, &zero_ts), 0);
    close(kq2);
    close(p[0]);
    close(p[1]);
}

static void test_changes_are_applied_before_events_are_collected(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    hp_test_write_all(p[1], "abc", 3);
    EV_SET(&ev, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ev, 1, &ev, 1, &zero_ts), 1);
    assert_int_equal(ev.ident, p[0]);
    assert_int_equal(ev.filter, EVFILT_READ);
    assert_int_equal(ev.data, 3);
    assert_false(ev.flags & (EV_EOF | EV_ERROR));
    close(p[0]);
    close(p[1]);
}

static void test_receipt_gives_one_entry_per_change_and_collects_nothing(void **state)
{
    struct kevent ch[2], out[4];
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    hp_test_write_all(p[1], "abc", 3);
    EV_SET(&ch[0], (uintptr_t)p[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[1], (uintptr_t)p[1], EVFILT_WRITE, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    assert_int_equal(kevent(kq, ch, 2, out, 4, &long_ts), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(out[i].flags, EV_ERROR);
        assert_int_equal(out[i].data, 0);
        assert_int_equal(out[i].ident, ch[i].ident);
        assert_int_equal(out[i].filter, ch[i].filter);
    }
    /* Both conditions hold, and the next call reports them. */
    assert_int_equal(collect(kq, out, 4, &zero_ts), 2);
    close(p[0]);
    close(p[1]);
}

static void test_receipt_without_room_stops_after_the_first_change(void **state)
{
    struct kevent ch[2], ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    hp_test_write_all(p[1], "abc", 3);
    EV_SET(&ch[0], (uintptr_t)p[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&ch[1], (uintptr_t)p[1], EVFILT_WRITE, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    assert_int_equal(kevent(kq, ch, 2, NULL, 0, NULL), 0);
    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
    assert_int_equal(ev.filter, EVFILT_READ);
    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
    assert_int_equal(ev.filter, EVFILT_READ); /* the write knote was never added */
    close(p[0]);
    close(p[1]);
}

static void test_a_failed_change_is_an_ev_error_entry_when_there_is_room(void **state)
{
    struct kevent ch[2], out[2];
    int p[2], bad[2], kq = kq_of(state);

    hp_test_pipe(p);
    hp_test_pipe(bad);
    close(bad[0]);
    close(bad[1]);
    hp_test_write_all(p[1], "abc", 3);
    EV_SET(&ch[0], (uintptr_t)bad[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    EV_SET(&ch[1], (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    assert_int_equal(kevent(kq, ch, 2, out, 2, &long_ts), 1);
    assert_int_equal(out[0].flags, EV_ERROR);
    assert_int_equal(out[0].data, EBADF);
    assert_int_equal(out[0].ident, bad[0]);
    /* The change after the failed one was applied. */
    assert_int_equal(collect(kq, out, 2, &zero_ts), 1);
    assert_int_equal(out[0].ident, p[0]);
    close(p[0]);
    close(p[1]);
}

static void test_a_failed_change_without_room_fails_the_call(void **state)
{
    struct kevent ev;
    int bad[2], kq = kq_of(state);

    hp_test_pipe(bad);
    close(bad[0]);
    close(bad[1]);
    EV_SET(&ev, (uintptr_t)bad[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, EBADF);
}

static void test_the_same_array_can_be_changelist_and_eventlist(void **state)
{
    struct kevent a[2];
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    EV_SET(&a[0], (uintptr_t)p[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, NULL);
    EV_SET(&a[1], (uintptr_t)p[1], EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0, NULL);
    assert_int_equal(kevent(kq, a, 2, a, 2, &zero_ts), 2);
    assert_int_equal(a[0].ident, p[0]);
    assert_int_equal(a[0].data, 0);
    assert_int_equal(a[1].ident, p[1]);
    assert_int_equal(a[1].data, ENOENT);
    close(p[0]);
    close(p[1]);
}

static void test_changes_to_unknown_knotes_are_enoent(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    const unsigned short actions[] = {EV_DELETE, EV_ENABLE, EV_DISABLE};

    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        EV_SET(&ev, (uintptr_t)p[0], EVFILT_READ, actions[i], 0, 0, NULL);
        assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), -1);
        assert_int_equal(errno, ENOENT);
    }
    close(p[0]);
    close(p[1]);
}

static void test_unsupported_filters_flags_and_fflags_are_einval(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    EV_SET(&ev, (uintptr_t)p[0], -3, EV_ADD, 0, 0, NULL); /* EVFILT_AIO on FreeBSD */
    assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, EINVAL);
    EV_SET(&ev, (uintptr_t)p[0], EVFILT_READ, EV_ADD | 0x0010, 0, 0, NULL); /* EV_ONESHOT */
    assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, EINVAL);
    EV_SET(&ev, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0x0001, 1, NULL); /* NOTE_LOWAT */
    assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, EINVAL);
    close(p[0]);
    close(p[1]);
}

/* ---- triggering ------------------------------------------------------------------- */

static void test_a_level_knote_is_reported_while_its_condition_holds(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD, NULL);
    assert_no_event(kq);
    hp_test_write_all(p[1], "hello", 5);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
        assert_int_equal(ev.data, 5);
        assert_false(ev.flags & EV_CLEAR);
    }
    drain(p[0]);
    assert_no_event(kq);
    close(p[0]);
    close(p[1]);
}

static void test_a_clear_knote_is_reported_once_per_arrival(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, NULL);
    hp_test_write_all(p[1], "ab", 2);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_true(ev.flags & EV_CLEAR);
    assert_int_equal(ev.data, 2);
    assert_no_event(kq); /* nothing read, but nothing new either */
    hp_test_write_all(p[1], "c", 1);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_int_equal(ev.data, 3);
    assert_no_event(kq);
    close(p[0]);
    close(p[1]);
}

static void test_a_clear_write_knote_is_reported_once(void **state)
{
    struct kevent ev;
    int sv[2], kq = kq_of(state);

    hp_test_socketpair(sv);
    change(kq, sv[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, NULL);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_int_equal(ev.filter, EVFILT_WRITE);
    assert_no_event(kq);
    close(sv[0]);
    close(sv[1]);
}

static void test_re_adding_a_clear_knote_reports_a_condition_that_holds(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, NULL);
    hp_test_write_all(p[1], "ab", 2);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_no_event(kq);
    change(kq, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, NULL);
    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
    assert_no_event(kq);
    close(p[0]);
    close(p[1]);
}

static void test_read_and_write_of_one_descriptor_are_separate_entries(void **state)
{
    struct kevent out[4];
    int sv[2], kq = kq_of(state), seen = 0;

    hp_test_socketpair(sv);
    hp_test_write_all(sv[1], "x", 1);
    change(kq, sv[0], EVFILT_READ, EV_ADD, NULL);
    change(kq, sv[0], EVFILT_WRITE, EV_ADD, NULL);
    assert_int_equal(collect(kq, out, 4, &long_ts), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(out[i].ident, sv[0]);
        seen |= out[i].filter == EVFILT_READ ? 1 : 2;
    }
    assert_int_equal(seen, 3);
    close(sv[0]);
    close(sv[1]);
}

static void test_level_knotes_take_turns_when_the_eventlist_is_short(void **state)
{
    struct kevent ev;
    int p[3][2], kq = kq_of(state);
    uintptr_t first;

    for (int i = 0; i < 3; i++) {
        hp_test_pipe(p[i]);
        hp_test_write_all(p[i][1], "x", 1);
        change(kq, p[i][0], EVFILT_READ, EV_ADD, NULL);
    }
    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
    first = ev.ident;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
        assert_int_not_equal(ev.ident, first);
    }
    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
    assert_int_equal(ev.ident, first);
    for (int i = 0; i < 3; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
}

static void test_disable_holds_events_and_enable_reports_them(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD | EV_DISABLE, NULL);
    hp_test_write_all(p[1], "x", 1);
    assert_no_event(kq);
    change(kq, p[0], EVFILT_READ, EV_ENABLE, NULL);
    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
    change(kq, p[0], EVFILT_READ, EV_DISABLE, NULL);
    assert_no_event(kq);
    close(p[0]);
    close(p[1]);
}

static void test_delete_stops_reports(void **state)
{
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    hp_test_write_all(p[1], "x", 1);
    change(kq, p[0], EVFILT_READ, EV_ADD, NULL);
    change(kq, p[0], EVFILT_READ, EV_DELETE, NULL);
    assert_no_event(kq);
    close(p[0]);
    close(p[1]);
}

/* ---- udata ------------------------------------------------------------------------ */

static void test_ext_is_passed_through(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    EV_SET(&ev, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    for (int i = 0; i < 4; i++)
        ev.ext[i] = 0x1111u * (uint64_t)(i + 1);
    assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), 0);
    hp_test_write_all(p[1], "x", 1);
    memset(&ev, 0, sizeof(ev));
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ev.ext[i], 0x1111u * (uint64_t)(i + 1));
    close(p[0]);
    close(p[1]);
}

static void test_udata_is_returned_and_re_adding_replaces_it_but_not_ev_clear(void **state)
{
    struct kevent ev;
    int p[2], a, b, kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, &a);
    hp_test_write_all(p[1], "x", 1);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_ptr_equal(ev.udata, &a);
    change(kq, p[0], EVFILT_READ, EV_ADD, &b); /* no EV_CLEAR: the knote keeps it */
    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
    assert_ptr_equal(ev.udata, &b);
    assert_true(ev.flags & EV_CLEAR);
    assert_no_event(kq);
    close(p[0]);
    close(p[1]);
}

/* ---- EOF and errors ------------------------------------------------------------------- */

static void test_read_eof_when_the_last_writer_closes_with_data_left(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD | EV_CLEAR, NULL);
    hp_test_write_all(p[1], "abc", 3);
    close(p[1]);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_true(ev.flags & EV_EOF);
    assert_int_equal(ev.fflags, 0);
    assert_int_equal(ev.data, 3);
    close(p[0]);
}

static void test_write_eof_when_the_reader_closes(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[1], EVFILT_WRITE, EV_ADD | EV_CLEAR, NULL);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_false(ev.flags & EV_EOF);
    close(p[0]);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_true(ev.flags & EV_EOF);
    close(p[1]);
}

static void test_socket_half_close_is_read_eof_only(void **state)
{
    struct kevent out[2];
    int sv[2], kq = kq_of(state);

    hp_test_socketpair(sv);
    change(kq, sv[0], EVFILT_READ, EV_ADD, NULL);
    change(kq, sv[0], EVFILT_WRITE, EV_ADD, NULL);
    assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
    assert_int_equal(collect(kq, out, 2, &long_ts), 2);
    for (int i = 0; i < 2; i++) {
        if (out[i].filter == EVFILT_READ)
            assert_true(out[i].flags & EV_EOF);
        else
            assert_false(out[i].flags & EV_EOF);
    }
    close(sv[0]);
    close(sv[1]);
}

static void test_peer_close_is_eof_on_both_filters(void **state)
{
    struct kevent out[2];
    int sv[2], kq = kq_of(state);

    hp_test_socketpair(sv);
    change(kq, sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, NULL);
    change(kq, sv[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, NULL);
    assert_int_equal(collect(kq, out, 2, &long_ts), 1); /* writable */
    close(sv[1]);
    assert_int_equal(collect(kq, out, 2, &long_ts), 2);
    assert_true(out[0].flags & EV_EOF);
    assert_true(out[1].flags & EV_EOF);
    assert_int_equal(out[0].fflags, 0);
    close(sv[0]);
}

static void test_reset_is_eof_with_the_error_in_fflags_left_for_so_error(void **state)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    struct sockaddr_in sa;
    struct kevent ev;
    int lfd = tcp_listener(&sa, true), kq = kq_of(state);
    int c = tcp_connect_nb(&sa), s = accept(lfd, NULL, NULL), err = -1;
    socklen_t len = sizeof(err);

    assert_true(s >= 0);
    change(kq, c, EVFILT_READ, EV_ADD | EV_CLEAR, NULL);
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(s); /* sends RST */
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_true(ev.flags & EV_EOF);
    assert_int_equal(ev.fflags, ECONNRESET);
    /* Reporting it did not consume it: SO_ERROR still has it, once. */
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    assert_int_equal(err, ECONNRESET);
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    assert_int_equal(err, 0);
    close(c);
    close(lfd);
}

static void test_refused_connect_is_write_eof_with_econnrefused(void **state)
{
    struct sockaddr_in sa;
    struct kevent ev;
    int lfd = tcp_listener(&sa, false), kq = kq_of(state);
    int c = tcp_connect_nb(&sa), err = -1;
    socklen_t len = sizeof(err);

    EV_SET(&ev, (uintptr_t)c, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ev, 1, &ev, 1, &long_ts), 1);
    assert_int_equal(ev.filter, EVFILT_WRITE);
    assert_true(ev.flags & EV_EOF);
    assert_int_equal(ev.fflags, ECONNREFUSED);
    assert_int_equal(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    assert_int_equal(err, ECONNREFUSED);
    close(c);
    close(lfd);
}

static void test_a_listening_socket_is_readable_with_a_pending_connection(void **state)
{
    struct sockaddr_in sa;
    struct kevent ev;
    int lfd = tcp_listener(&sa, true), kq = kq_of(state), c;

    change(kq, lfd, EVFILT_READ, EV_ADD | EV_CLEAR, NULL);
    assert_no_event(kq);
    c = tcp_connect_nb(&sa);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_int_equal(ev.ident, lfd);
    assert_false(ev.flags & EV_EOF);
    assert_true(ev.data >= 1); /* pending connections */
    close(c);
    close(lfd);
}

static void test_a_socket_error_without_shutdown_fires_read_with_no_data_and_no_eof(void **state)
{
    struct sockaddr_in sa;
    struct kevent ev;
    int kq = kq_of(state), probe = socket(AF_INET, SOCK_DGRAM, 0), fd, err = -1;
    socklen_t len = sizeof(err);

    /* A connected UDP socket sending to a closed port gets ICMP port unreachable. */
    assert_true(probe >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(probe, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&sa, &len), 0);
    close(probe);
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    change(kq, fd, EVFILT_READ, EV_ADD | EV_CLEAR, NULL);
    assert_int_equal(send(fd, "x", 1, 0), 1);
    assert_int_equal(collect(kq, &ev, 1, &long_ts), 1);
    assert_false(ev.flags & EV_EOF);
    assert_int_equal(ev.data, 0);
    assert_int_equal(ev.fflags, 0);
    len = sizeof(err);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
    assert_int_equal(err, ECONNREFUSED);
    close(fd);
}

/* ---- close() drops knotes ------------------------------------------------------------------ */

static void test_delete_after_close_is_ebadf(void **state)
{
    struct kevent ev;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD, NULL);
    close(p[0]);
    EV_SET(&ev, (uintptr_t)p[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, EBADF);
    close(p[1]);
}

static void test_a_closed_and_reused_descriptor_has_no_knotes(void **state)
{
    struct kevent ev;
    int p[2], q[2], a, b, kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD, &a);
    close(p[0]);
    close(p[1]);
    hp_test_pipe(q);
    assert_int_equal(q[0], p[0]); /* the number came back, for another pipe */
    hp_test_write_all(q[1], "x", 1);
    assert_no_event(kq);
    EV_SET(&ev, (uintptr_t)q[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, ENOENT);
    change(kq, q[0], EVFILT_READ, EV_ADD, &b);
    assert_int_equal(collect(kq, &ev, 1, &zero_ts), 1);
    assert_ptr_equal(ev.udata, &b);
    close(q[0]);
    close(q[1]);
}

static void test_a_closed_descriptor_with_an_active_knote_is_not_reported(void **state)
{
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    hp_test_write_all(p[1], "x", 1);
    change(kq, p[0], EVFILT_READ, EV_ADD, NULL);
    close(p[0]);
    assert_no_event(kq);
    close(p[1]);
}

/* ---- timeouts and signals ---------------------------------------------------------------- */

static void test_a_zero_timeout_polls(void **state)
{
    int p[2], kq = kq_of(state);
    uint64_t t0 = now_ms();

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD, NULL);
    assert_no_event(kq);
    assert_true(now_ms() - t0 < 1000);
    close(p[0]);
    close(p[1]);
}

static void test_a_timeout_expires_no_sooner_than_asked(void **state)
{
    const struct timespec ts = {0, 50 * 1000 * 1000};
    struct kevent ev;
    int p[2], kq = kq_of(state);
    uint64_t t0;

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD, NULL);
    t0 = now_ms();
    assert_int_equal(collect(kq, &ev, 1, &ts), 0);
    assert_true(now_ms() - t0 >= 50);
    assert_true(now_ms() - t0 < 5000);
    close(p[0]);
    close(p[1]);
}

static void *write_one(void *arg)
{
    hp_test_write_all(*(int *)arg, "x", 1);
    return NULL;
}

static void test_a_null_timeout_waits_for_an_event(void **state)
{
    struct kevent ev;
    pthread_t t;
    int p[2], kq = kq_of(state);

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD, NULL);
    assert_int_equal(pthread_create(&t, NULL, write_one, &p[1]), 0);
    assert_int_equal(collect(kq, &ev, 1, NULL), 1);
    assert_int_equal(ev.ident, p[0]);
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
}

static void test_an_invalid_timeout_is_einval(void **state)
{
    const struct timespec bad = {0, 1000 * 1000 * 1000};
    struct kevent ev;
    int kq = kq_of(state);

    assert_int_equal(kevent(kq, NULL, 0, &ev, 1, &bad), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_no_room_for_events_returns_at_once_despite_a_timeout(void **state)
{
    int p[2], kq = kq_of(state);
    uint64_t t0 = now_ms();

    hp_test_pipe(p);
    change(kq, p[0], EVFILT_READ, EV_ADD, NULL);
    assert_int_equal(kevent(kq, NULL, 0, NULL, 0, &long_ts), 0);
    assert_true(now_ms() - t0 < 1000);
    close(p[0]);
    close(p[1]);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_a_signal_interrupts_the_wait_after_the_changes(void **state)
{
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    /* Repeating, so a tick that lands before the wait starts is not the only one. */
    struct itimerval it = {.it_interval = {0, 10000}, .it_value = {0, 10000}}, off = {0};
    struct kevent ev;
    int p[2], kq = kq_of(state), r, err;

    hp_test_pipe(p);
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0); /* no SA_RESTART */
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    EV_SET(&ev, (uintptr_t)p[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    r = kevent(kq, &ev, 1, &ev, 1, &long_ts);
    err = errno;
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    assert_int_equal(r, -1);
    assert_int_equal(err, EINTR);
    change(kq, p[0], EVFILT_READ, EV_DELETE, NULL); /* it was added */
    close(p[0]);
    close(p[1]);
}

/* ---- documented limits ---------------------------------------------------------------------- */

static void test_regular_files_are_refused_as_epoll_refuses_them(void **state)
{
    char path[] = "/tmp/hp-kqemu-XXXXXX";
    struct kevent ev;
    int fd = mkstemp(path), kq = kq_of(state);

    assert_true(fd >= 0);
    unlink(path);
    EV_SET(&ev, (uintptr_t)fd, EVFILT_READ, EV_ADD, 0, 0, NULL);
    assert_int_equal(kevent(kq, &ev, 1, NULL, 0, NULL), -1);
    assert_int_equal(errno, EPERM);
    close(fd);
}

#define KQ_TEST(f) cmocka_unit_test_setup_teardown(f, setup_kq, teardown_kq)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kqueue_descriptor_is_released_by_close),
        cmocka_unit_test(test_a_reused_kqueue_number_starts_empty),
        KQ_TEST(test_changes_are_applied_before_events_are_collected),
        KQ_TEST(test_receipt_gives_one_entry_per_change_and_collects_nothing),
        KQ_TEST(test_receipt_without_room_stops_after_the_first_change),
        KQ_TEST(test_a_failed_change_is_an_ev_error_entry_when_there_is_room),
        KQ_TEST(test_a_failed_change_without_room_fails_the_call),
        KQ_TEST(test_the_same_array_can_be_changelist_and_eventlist),
        KQ_TEST(test_changes_to_unknown_knotes_are_enoent),
        KQ_TEST(test_unsupported_filters_flags_and_fflags_are_einval),
        KQ_TEST(test_a_level_knote_is_reported_while_its_condition_holds),
        KQ_TEST(test_a_clear_knote_is_reported_once_per_arrival),
        KQ_TEST(test_a_clear_write_knote_is_reported_once),
        KQ_TEST(test_re_adding_a_clear_knote_reports_a_condition_that_holds),
        KQ_TEST(test_read_and_write_of_one_descriptor_are_separate_entries),
        KQ_TEST(test_level_knotes_take_turns_when_the_eventlist_is_short),
        KQ_TEST(test_disable_holds_events_and_enable_reports_them),
        KQ_TEST(test_delete_stops_reports),
        KQ_TEST(test_udata_is_returned_and_re_adding_replaces_it_but_not_ev_clear),
        KQ_TEST(test_ext_is_passed_through),
        KQ_TEST(test_read_eof_when_the_last_writer_closes_with_data_left),
        KQ_TEST(test_write_eof_when_the_reader_closes),
        KQ_TEST(test_socket_half_close_is_read_eof_only),
        KQ_TEST(test_peer_close_is_eof_on_both_filters),
        KQ_TEST(test_reset_is_eof_with_the_error_in_fflags_left_for_so_error),
        KQ_TEST(test_refused_connect_is_write_eof_with_econnrefused),
        KQ_TEST(test_a_listening_socket_is_readable_with_a_pending_connection),
        KQ_TEST(test_a_socket_error_without_shutdown_fires_read_with_no_data_and_no_eof),
        KQ_TEST(test_delete_after_close_is_ebadf),
        KQ_TEST(test_a_closed_and_reused_descriptor_has_no_knotes),
        KQ_TEST(test_a_closed_descriptor_with_an_active_knote_is_not_reported),
        KQ_TEST(test_a_zero_timeout_polls),
        KQ_TEST(test_a_timeout_expires_no_sooner_than_asked),
        KQ_TEST(test_a_null_timeout_waits_for_an_event),
        KQ_TEST(test_an_invalid_timeout_is_einval),
        KQ_TEST(test_no_room_for_events_returns_at_once_despite_a_timeout),
        KQ_TEST(test_a_signal_interrupts_the_wait_after_the_changes),
        KQ_TEST(test_regular_files_are_refused_as_epoll_refuses_them),
    };

    return cmocka_run_group_tests_name("backends/kqueue_emu", tests, NULL, NULL);
}
