/*
 * tests/core/test_oom.c - fault injection: a loop allocator that fails every
 * allocation after the first N. Each fallible call is retried with
 * N = 0, 1, 2, ... until it succeeds; every failure must be a clean -ENOMEM
 * that leaks no memory and no descriptor and leaves the loop usable.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

/* Retries are bounded: nothing in the core needs this many allocations. */
enum { MAX_TRIES = 1000 };

static void test_oom_loop_new_fails_cleanly_until_it_succeeds(void **state)
{
    struct hp_loop_opts opts;
    struct hp_loop *sentinel = (struct hp_loop *)(uintptr_t)0x10;
    struct hp_loop *loop = NULL;
    struct ct_alloc a;
    size_t fds = ct_count_open_fds();
    long n;
    int rc = -1;

    (void)state;
    ct_alloc_init(&a);
    memset(&opts, 0, sizeof(opts));
    opts.alloc = ct_alloc_hooks(&a);
    for (n = 0; n < MAX_TRIES; n++) {
        ct_alloc_fail_after(&a, n);
        loop = sentinel;
        rc = hp_loop_new(&loop, &opts);
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_ptr_equal(loop, sentinel); /* untouched on failure */
        assert_int_equal(ct_alloc_live(&a), 0);
        assert_int_equal(ct_count_open_fds(), fds);
        assert_true(ct_alloc_failures(&a) > 0);
    }
    assert_int_equal(rc, 0);
    assert_true(n >= 1); /* the loop itself came from the allocator */
    ct_alloc_fail_after(&a, -1);
    assert_int_equal(hp_loop_run_once(loop, 0), 0);
    assert_int_equal(hp_loop_free(loop), 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    assert_int_equal(ct_count_open_fds(), fds);
    ct_alloc_destroy(&a);
}

struct ftimer {
    struct hp_timer t;
    size_t fired;
};

static size_t total_fired;

static void on_ftimer(struct hp_timer *t)
{
    hp_container_of(t, struct ftimer, t)->fired++;
    total_fired++;
}

static void test_oom_timer_start_fails_cleanly_when_the_heap_cannot_grow(void **state)
{
    enum { N = 200000 };
    struct ct_alloc a;
    struct hp_loop *loop;
    struct ftimer *t = calloc(N, sizeof(*t));
    size_t started = 0, base;
    int rc = 0;

    (void)state;
    assert_non_null(t);
    ct_alloc_init(&a);
    loop = ct_loop_new(NULL, &a, 0);
    base = hp_loop_active_handles(loop);
    total_fired = 0;
    ct_alloc_fail_after(&a, 0);
    for (started = 0; started < N; started++) {
        hp_timer_init(loop, &t[started].t, on_ftimer);
        rc = hp_timer_start(&t[started].t, 0, 0);
        if (rc != 0)
            break;
    }
    if (started == N)
        fail_msg("%d timers started without the heap ever allocating", N);
    assert_int_equal(rc, -ENOMEM);
    assert_false(hp_timer_is_active(&t[started].t));
    assert_int_equal(hp_loop_active_handles(loop), base + started);

    /* Restarting an active timer needs no growth; on failure it keeps its deadline. */
    if (started > 0) {
        rc = hp_timer_start(&t[0].t, 1, 0);
        assert_true(rc == 0 || rc == -ENOMEM);
        assert_true(hp_timer_is_active(&t[0].t));
    }

    ct_alloc_fail_after(&a, -1);
    assert_int_equal(hp_timer_start(&t[started].t, 0, 0), 0);
    hp_test_run_until_count(loop, &total_fired, started + 1);
    for (size_t i = 0; i <= started; i++)
        assert_int_equal(t[i].fired, 1);
    assert_false(hp_loop_is_alive(loop));
    assert_int_equal(hp_loop_free(loop), 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    ct_alloc_destroy(&a);
    free(t);
}

struct fio {
    struct hp_io io;
    size_t calls;
};

static void on_fio(struct hp_io *io, unsigned events, int status)
{
    struct fio *f = hp_container_of(io, struct fio, io);
    char c;

    assert_true(events & HP_READABLE);
    assert_int_equal(status, 0);
    f->calls++;
    assert_int_equal(hp_io_read(io, &c, 1), 1);
}

/* A descriptor number high enough that an fd-indexed table has to grow. */
static int high_fd(int src)
{
    struct rlimit rl;
    int want = 4000, fd;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)want >= rl.rlim_cur)
        want = (int)rl.rlim_cur - 16;
    fd = fcntl(src, F_DUPFD_CLOEXEC, want);
    assert_true(fd >= want);
    return fd;
}

static void test_oom_io_start_fails_cleanly_until_it_succeeds(void **state)
{
    struct ct_alloc a;
    struct fio f;
    int fds[2], hi, rc = -1;
    long n;

    (void)state;
    hp_test_pipe(fds);
    hi = high_fd(fds[0]);
    ct_alloc_init(&a);
    for (n = 0; n < MAX_TRIES; n++) {
        struct hp_loop *loop = ct_loop_new(NULL, &a, 0);

        memset(&f, 0, sizeof(f));
        hp_io_init(loop, &f.io, hi, on_fio);
        ct_alloc_fail_after(&a, n);
        rc = hp_io_start(&f.io, HP_READABLE);
        ct_alloc_fail_after(&a, -1);
        if (rc == 0) {
            hp_test_write_all(fds[1], "x", 1);
            hp_test_run_until_count(loop, &f.calls, 1);
            hp_io_stop(&f.io);
            hp_test_loop_free(loop);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_false(hp_io_is_active(&f.io));
        assert_int_equal(hp_io_events(&f.io), 0);
        assert_int_equal(hp_loop_active_handles(loop), 0);
        /* The loop is still usable, and the same fd can be watched. */
        rc = hp_io_start(&f.io, HP_READABLE);
        assert_int_equal(rc, 0);
        hp_io_stop(&f.io);
        hp_test_loop_free(loop);
        assert_int_equal(ct_alloc_live(&a), 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    ct_alloc_destroy(&a);
    close(hi);
    close(fds[0]);
    close(fds[1]);
}

static size_t post_runs;
static int post_status;

static void on_fpost(struct hp_loop *loop, int status, void *arg)
{
    (void)loop;
    (void)arg;
    post_runs++;
    post_status = status;
}

static void test_oom_post_fails_cleanly_and_its_callback_never_runs(void **state)
{
    struct ct_alloc a;
    long n;
    int rc = -1;

    (void)state;
    ct_alloc_init(&a);
    for (n = 0; n < MAX_TRIES; n++) {
        struct hp_loop *loop = ct_loop_new(NULL, &a, 0);

        post_runs = 0;
        ct_alloc_fail_after(&a, n);
        rc = hp_loop_post(loop, on_fpost, NULL);
        ct_alloc_fail_after(&a, -1);
        if (rc == 0) {
            hp_test_run_until_count(loop, &post_runs, 1);
            assert_int_equal(post_status, 0);
            hp_test_loop_free(loop);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        ct_run_nowait(loop, 3);
        hp_test_loop_free(loop);
        assert_int_equal(post_runs, 0); /* not even with -ECANCELED */
        assert_int_equal(ct_alloc_live(&a), 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    ct_alloc_destroy(&a);
}

struct fsig {
    struct hp_signal s;
    size_t calls;
};

static void on_fsig(struct hp_signal *s, int signum)
{
    (void)signum;
    hp_container_of(s, struct fsig, s)->calls++;
}

static volatile sig_atomic_t guard_hits;

static void on_guard(int sig)
{
    (void)sig;
    guard_hits++;
}

static void test_oom_signal_start_fails_cleanly_until_it_succeeds(void **state)
{
    struct sigaction sa, old, cur;
    size_t fds = ct_count_open_fds();
    struct ct_alloc a;
    struct fsig f;
    long n;
    int rc = -1;

    (void)state;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_guard;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    ct_alloc_init(&a);
    for (n = 0; n < MAX_TRIES; n++) {
        struct hp_loop *loop = ct_loop_new(NULL, &a, 0);
        size_t loop_fds = ct_count_open_fds();

        memset(&f, 0, sizeof(f));
        hp_signal_init(loop, &f.s, on_fsig);
        ct_alloc_fail_after(&a, n);
        rc = hp_signal_start(&f.s, SIGUSR1);
        ct_alloc_fail_after(&a, -1);
        if (rc == 0) {
            assert_int_equal(raise(SIGUSR1), 0);
            hp_test_run_until_count(loop, &f.calls, 1);
            hp_signal_stop(&f.s);
            hp_test_loop_free(loop);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(f.s.signum, 0);
        assert_int_equal(hp_loop_active_handles(loop), 0);
        assert_int_equal(ct_count_open_fds(), loop_fds);
        assert_int_equal(sigaction(SIGUSR1, NULL, &cur), 0);
        assert_true(cur.sa_handler == on_guard); /* disposition untouched */
        hp_test_loop_free(loop);
        assert_int_equal(ct_alloc_live(&a), 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(sigaction(SIGUSR1, NULL, &cur), 0);
    assert_true(cur.sa_handler == on_guard);
    assert_int_equal(guard_hits, 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    assert_int_equal(ct_count_open_fds(), fds);
    ct_alloc_destroy(&a);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

static bool stream_closed;

static void on_fclose(struct hp_stream *s)
{
    (void)s;
    stream_closed = true;
}

static void test_oom_stream_init_fails_cleanly_until_it_succeeds(void **state)
{
    struct ct_alloc a;
    struct hp_stream s;
    int sv[2], rc = -1;
    long n;

    (void)state;
    ct_alloc_init(&a);
    hp_test_socketpair(sv);
    for (n = 0; n < MAX_TRIES; n++) {
        struct hp_loop *loop = ct_loop_new(NULL, &a, 0);
        int hi = high_fd(sv[0]);

        ct_alloc_fail_after(&a, n);
        rc = hp_stream_init(loop, &s, hi);
        ct_alloc_fail_after(&a, -1);
        if (rc == 0) {
            stream_closed = false;
            hp_stream_close(&s, on_fclose); /* closes hi */
            hp_test_run_until(loop, &stream_closed);
            assert_int_equal(fcntl(hi, F_GETFD), -1);
            hp_test_loop_free(loop);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_true(fcntl(hi, F_GETFD) != -1); /* still the caller's */
        assert_int_equal(hp_loop_active_handles(loop), 0);
        close(hi);
        hp_test_loop_free(loop);
        assert_int_equal(ct_alloc_live(&a), 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    ct_alloc_destroy(&a);
    close(sv[0]);
    close(sv[1]);
}

static size_t writes_done;
static int write_status;

static void on_fwrite(struct hp_write_req *req, int status)
{
    (void)req;
    writes_done++;
    write_status = status;
}

static void test_oom_stream_write_of_many_buffers_fails_cleanly(void **state)
{
    static const char *parts[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    struct hp_write_req req = {0};
    struct hp_buf bufs[10];
    struct hp_loop *loop;
    struct hp_stream s;
    struct ct_alloc a;
    char got[16];
    int sv[2];

    (void)state;
    ct_alloc_init(&a);
    loop = ct_loop_new(NULL, &a, 0);
    hp_test_socketpair(sv);
    assert_int_equal(hp_stream_init(loop, &s, sv[0]), 0);
    for (int i = 0; i < 10; i++)
        bufs[i] = hp_buf_make(parts[i], 1);
    writes_done = 0;

    ct_alloc_fail_after(&a, 0);
    assert_int_equal(hp_stream_write(&s, &req, bufs, 10, on_fwrite), -ENOMEM);
    /* Up to HP_WRITE_INLINE_BUFS descriptors need no memory. */
    assert_int_equal(hp_stream_write(&s, &req, bufs, HP_WRITE_INLINE_BUFS, on_fwrite), 0);
    hp_test_run_until_count(loop, &writes_done, 1);
    assert_int_equal(write_status, 0);
    ct_alloc_fail_after(&a, -1);

    assert_int_equal(hp_stream_write(&s, &req, bufs, 10, on_fwrite), 0);
    hp_test_run_until_count(loop, &writes_done, 2);
    assert_int_equal(write_status, 0);
    assert_int_equal(read(sv[1], got, sizeof(got)), 14);
    assert_memory_equal(got, "abcdabcdefghij", 14);

    stream_closed = false;
    hp_stream_close(&s, on_fclose);
    hp_test_run_until(loop, &stream_closed);
    assert_int_equal(hp_loop_free(loop), 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    ct_alloc_destroy(&a);
    close(sv[1]);
}

static void on_accept_close(struct hp_listener *l, int fd, int status)
{
    (void)l;
    if (status == 0)
        close(fd);
}

static bool connect_expected, connected;

static void on_connect_close(struct hp_stream *s, int status)
{
    if (!connect_expected)
        fail_msg("connect callback after a failed hp_stream_connect: %d", status);
    assert_int_equal(status, 0);
    connected = true;
    hp_stream_close(s, on_fclose);
}

static void test_oom_listener_and_connect_fail_cleanly_until_they_succeed(void **state)
{
    struct hp_listener_opts opts = {.host = "127.0.0.1"};
    struct hp_listener l;
    struct hp_stream s;
    struct ct_alloc a;
    struct hp_loop *loop;
    enum { FILLERS = 300 };
    int fillers[FILLERS];
    long n;
    int rc = -1, port;

    (void)state;
    ct_alloc_init(&a);
    loop = ct_loop_new(NULL, &a, 0);
    /* Occupy low numbers so the new sockets need a larger fd table. */
    for (int i = 0; i < FILLERS; i++) {
        fillers[i] = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
        assert_true(fillers[i] >= 0);
    }
    for (n = 0; n < MAX_TRIES; n++) {
        size_t before = ct_count_open_fds();

        ct_alloc_fail_after(&a, n);
        rc = hp_listener_start(loop, &l, &opts, on_accept_close);
        ct_alloc_fail_after(&a, -1);
        if (rc == 0)
            break;
        /* hp_listener_start() does not list -ENOMEM; it is the only sane failure here. */
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(hp_loop_active_handles(loop), 0);
        assert_int_equal(ct_count_open_fds(), before);
    }
    assert_int_equal(rc, 0);
    port = hp_listener_port(&l);
    assert_true(port > 0);

    connect_expected = false;
    connected = false;
    stream_closed = false;
    for (n = 0; n < MAX_TRIES; n++) {
        size_t before = ct_count_open_fds();

        ct_alloc_fail_after(&a, n);
        rc = hp_stream_connect(loop, &s, "127.0.0.1", (uint16_t)port, on_connect_close);
        ct_alloc_fail_after(&a, -1);
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(ct_count_open_fds(), before);
        ct_run_nowait(loop, 1); /* a failed connect's callback never runs */
    }
    assert_int_equal(rc, 0);
    connect_expected = true;
    hp_test_run_until(loop, &stream_closed);
    assert_true(connected);
    hp_listener_stop(&l);
    assert_int_equal(hp_loop_free(loop), 0);
    assert_int_equal(ct_alloc_live(&a), 0);
    ct_alloc_destroy(&a);
    for (int i = 0; i < FILLERS; i++)
        close(fillers[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_loop_new_fails_cleanly_until_it_succeeds),
        cmocka_unit_test(test_oom_timer_start_fails_cleanly_when_the_heap_cannot_grow),
        cmocka_unit_test(test_oom_io_start_fails_cleanly_until_it_succeeds),
        cmocka_unit_test(test_oom_post_fails_cleanly_and_its_callback_never_runs),
        cmocka_unit_test(test_oom_signal_start_fails_cleanly_until_it_succeeds),
        cmocka_unit_test(test_oom_stream_init_fails_cleanly_until_it_succeeds),
        cmocka_unit_test(test_oom_stream_write_of_many_buffers_fails_cleanly),
        cmocka_unit_test(test_oom_listener_and_connect_fail_cleanly_until_they_succeed),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/oom", tests, NULL, NULL);
}
