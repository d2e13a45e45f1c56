/*
 * tests/core/test_listener.c - listener behaviour under pressure: accepting
 * until EAGAIN, stopping from the accept callback, and recovery from EMFILE
 * without a busy loop (the soft RLIMIT_NOFILE is lowered for the test and
 * restored by the teardown, even when the test fails).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

enum { MAX_CLIENTS = 64 };

struct acceptor {
    struct hp_listener l;
    int fds[MAX_CLIENTS];
    size_t accepted;
    size_t errors, emfile;
    size_t callbacks;
    bool keep;  /* keep accepted fds open (else close them at once) */
    bool greet; /* write "A" to each accepted connection before closing it */
};

static void on_accept(struct hp_listener *l, int fd, int status)
{
    struct acceptor *a = hp_container_of(l, struct acceptor, l);

    a->callbacks++;
    if (status != 0) {
        a->errors++;
        if (status == -EMFILE)
            a->emfile++;
        return;
    }
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    if (a->keep) {
        assert_true(a->accepted < MAX_CLIENTS);
        a->fds[a->accepted] = fd;
    } else {
        if (a->greet)
            assert_int_equal(write(fd, "A", 1), 1);
        close(fd);
    }
    a->accepted++;
}

static int acceptor_start(struct hp_loop *loop, struct acceptor *a, unsigned pause_ms)
{
    struct hp_listener_opts opts = {.host = "127.0.0.1", .pause_ms = pause_ms};
    int rc;

    memset(a, 0, sizeof(*a));
    rc = hp_listener_start(loop, &a->l, &opts, on_accept);
    assert_int_equal(rc, 0);
    return hp_listener_port(&a->l);
}

static int raw_socket(void)
{
    int fd = hp_test_socket(AF_INET, SOCK_STREAM, true);

    assert_true(fd >= 0);
    return fd;
}

/* Non-blocking connect; on loopback the handshake completes into the accept queue. */
static void raw_connect(int fd, int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int rc;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    assert_true(rc == 0 || errno == EINPROGRESS);
}

/* Blocking connect: returns once the connection is established and queued. */
static int raw_connect_blocking(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = hp_test_socket(AF_INET, SOCK_STREAM, false);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void test_listener_accepts_every_queued_connection_in_one_iteration(void **state)
{
    enum { N = 50 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct acceptor a;
    int port = acceptor_start(loop, &a, 0);
    int clients[N];

    (void)state;
    for (int i = 0; i < N; i++)
        clients[i] = raw_connect_blocking(port);
    ct_run_nowait(loop, 1);
    assert_int_equal(a.accepted, N);
    assert_int_equal(a.errors, 0);
    hp_listener_stop(&a.l);
    hp_test_loop_free(loop);
    for (int i = 0; i < N; i++)
        close(clients[i]);
}

/* A heap-allocated listener that stops and frees itself on its first connection. */
struct self_freeing {
    size_t callbacks;
    bool freed;
};

static void on_accept_stop_and_free(struct hp_listener *l, int fd, int status)
{
    struct self_freeing *sf = l->data;

    sf->callbacks++;
    if (status == 0)
        close(fd);
    hp_listener_stop(l);
    memset(l, 0xa5, sizeof(*l));
    free(l); /* "the memory may then be freed" */
    sf->freed = true;
}

static void test_listener_stopped_and_freed_from_its_accept_callback_accepts_no_more(void **state)
{
    enum { N = 5 };
    struct hp_listener_opts opts = {.host = "127.0.0.1"};
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_listener *l = malloc(sizeof(*l));
    struct self_freeing sf = {0};
    int port, clients[N];

    (void)state;
    assert_non_null(l);
    assert_int_equal(hp_listener_start(loop, l, &opts, on_accept_stop_and_free), 0);
    l->data = &sf;
    port = hp_listener_port(l);
    for (int i = 0; i < N; i++)
        clients[i] = raw_connect_blocking(port);
    ct_run_nowait(loop, 1);
    assert_true(sf.freed);
    assert_int_equal(sf.callbacks, 1);
    ct_run_nowait(loop, 3);
    assert_int_equal(sf.callbacks, 1);
    assert_false(hp_loop_is_alive(loop));
    hp_test_loop_free(loop);
    for (int i = 0; i < N; i++)
        close(clients[i]);
}

/* ---- pause and resume ------------------------------------------------------ */

static void test_listener_paused_leaves_connections_in_the_backlog_until_resumed(void **state)
{
    enum { N = 3 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct acceptor a;
    int port = acceptor_start(loop, &a, 0);
    int clients[N];

    (void)state;
    hp_listener_pause(&a.l);
    hp_listener_pause(&a.l); /* idempotent */
    for (int i = 0; i < N; i++)
        clients[i] = raw_connect_blocking(port);
    ct_run_nowait(loop, 3);
    assert_int_equal(a.callbacks, 0);
    assert_int_equal(hp_listener_resume(&a.l), 0);
    assert_int_equal(a.callbacks, 0); /* not inside resume */
    hp_test_run_until_count(loop, &a.accepted, N);
    assert_int_equal(hp_listener_resume(&a.l), 0); /* resuming a running listener */
    hp_listener_stop(&a.l);
    assert_int_equal(hp_listener_resume(&a.l), HP_ECLOSED);
    hp_test_loop_free(loop);
    for (int i = 0; i < N; i++)
        close(clients[i]);
}

struct pausing {
    struct acceptor a;
    bool pause_next;
};

static void on_accept_then_pause(struct hp_listener *l, int fd, int status)
{
    struct pausing *p = hp_container_of(l, struct pausing, a.l);

    on_accept(l, fd, status);
    if (p->pause_next)
        hp_listener_pause(l);
}

static void
test_listener_paused_from_its_accept_callback_accepts_no_more_until_resumed(void **state)
{
    enum { N = 5 };
    struct hp_listener_opts opts = {.host = "127.0.0.1"};
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct pausing p;
    int port, clients[N];

    (void)state;
    memset(&p, 0, sizeof(p));
    p.pause_next = true;
    assert_int_equal(hp_listener_start(loop, &p.a.l, &opts, on_accept_then_pause), 0);
    port = hp_listener_port(&p.a.l);
    for (int i = 0; i < N; i++)
        clients[i] = raw_connect_blocking(port);
    ct_run_nowait(loop, 3);
    assert_int_equal(p.a.accepted, 1);
    p.pause_next = false;
    assert_int_equal(hp_listener_resume(&p.a.l), 0);
    hp_test_run_until_count(loop, &p.a.accepted, N);
    hp_listener_stop(&p.a.l);
    hp_test_loop_free(loop);
    for (int i = 0; i < N; i++)
        close(clients[i]);
}

/* ---- EMFILE ------------------------------------------------------------------- */

static struct rlimit saved_nofile;

static int save_rlimit(void **state)
{
    (void)state;
    return getrlimit(RLIMIT_NOFILE, &saved_nofile);
}

static int restore_rlimit(void **state)
{
    (void)state;
    return setrlimit(RLIMIT_NOFILE, &saved_nofile);
}

static int lowest_free_fd(int any_open_fd)
{
    int fd = fcntl(any_open_fd, F_DUPFD, 0);

    assert_true(fd >= 0);
    close(fd);
    return fd;
}

enum { EMFILE_CLIENTS = 20 };

/*
 * Connect EMFILE_CLIENTS clients to @p a with the soft descriptor limit
 * lowered so that only one or two accepts fit, and run the loop until the
 * accept callback reports -EMFILE. Returns how many were accepted (and held).
 */
static size_t accept_until_emfile(struct hp_loop *loop, struct acceptor *a, int port,
                                  int clients[EMFILE_CLIENTS])
{
    struct rlimit low;
    size_t held;

    a->keep = true;
    /* Every descriptor the test needs is made before the limit drops. */
    for (int i = 0; i < EMFILE_CLIENTS; i++)
        clients[i] = raw_socket();
    low = saved_nofile;
    low.rlim_cur = (rlim_t)lowest_free_fd(clients[0]) + 2;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int i = 0; i < EMFILE_CLIENTS; i++)
        raw_connect(clients[i], port);
    hp_test_run_until_count(loop, &a->emfile, 1);
    held = a->accepted;
    assert_in_range(held, 1, 2);
    return held;
}

/* Give the held descriptors back and lift the limit; then accepting may resume. */
static void release_fds(struct acceptor *a, size_t held)
{
    for (size_t i = 0; i < held; i++)
        close(a->fds[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
    a->keep = false;
}

enum { FRESH_CLIENTS = 3 };

static bool all_greeted(void *arg)
{
    const int *fds = arg;
    char c;

    for (int i = 0; i < FRESH_CLIENTS; i++) {
        if (recv(fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK) != 1)
            return false;
    }
    return true;
}

/*
 * After the descriptors are back: new connections are accepted (each gets
 * a greeting), and so are the ones that queued during the pause. valgrind
 * emulates RLIMIT_NOFILE by closing descriptors the kernel handed out above
 * it, so under valgrind the queued connections are lost and only new ones
 * can be checked.
 */
static void check_recovered(struct hp_loop *loop, struct acceptor *a, int port)
{
    int fresh[FRESH_CLIENTS];

    a->greet = true;
    for (int i = 0; i < FRESH_CLIENTS; i++)
        fresh[i] = raw_connect_blocking(port);
    ct_run_until(loop, all_greeted, fresh);
    if (!getenv("HP_TEST_VALGRIND"))
        hp_test_run_until_count(loop, &a->accepted, EMFILE_CLIENTS + FRESH_CLIENTS);
    for (int i = 0; i < FRESH_CLIENTS; i++)
        close(fresh[i]);
}

static void on_tick(struct hp_timer *t)
{
    (void)t;
}

static void test_listener_pauses_on_emfile_without_spinning_and_then_recovers(void **state)
{
    enum { PAUSE_MS = 50, WINDOW_MS = 300 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct acceptor a;
    int port = acceptor_start(loop, &a, PAUSE_MS);
    int clients[EMFILE_CLIENTS];
    size_t iterations = 0, errors_before, held;
    struct hp_timer tick;
    uint64_t end;

    (void)state;
    held = accept_until_emfile(loop, &a, port, clients);

    /*
     * Paused: over the window the loop blocks rather than spinning. Each
     * blocking iteration is bounded by a timer of our own, should the
     * listener leave nothing to wake the loop.
     */
    errors_before = a.errors;
    hp_timer_init(loop, &tick, on_tick);
    end = ct_now_ms() + WINDOW_MS;
    while (ct_now_ms() < end) {
        assert_int_equal(hp_timer_start(&tick, 100, 0), 0);
        assert_true(hp_loop_run_once(loop, -1) >= 0);
        iterations++;
    }
    hp_timer_stop(&tick);
    assert_true(iterations <= 40);
    assert_true(a.errors - errors_before <= 20);
    assert_int_equal(a.accepted, held);
    assert_int_equal(a.errors, a.emfile);

    /* Free descriptors: accepting resumes by itself. */
    release_fds(&a, held);
    check_recovered(loop, &a, port);
    hp_listener_stop(&a.l);
    hp_test_loop_free(loop);
    for (int i = 0; i < EMFILE_CLIENTS; i++)
        close(clients[i]);
}

static void test_listener_resumed_during_an_emfile_pause_waits_for_the_pause_to_end(void **state)
{
    enum { PAUSE_MS = 500 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct acceptor a;
    int port = acceptor_start(loop, &a, PAUSE_MS);
    int clients[EMFILE_CLIENTS];
    size_t errors_before, held;

    (void)state;
    held = accept_until_emfile(loop, &a, port, clients);
    errors_before = a.errors;
    hp_listener_pause(&a.l);
    assert_int_equal(hp_listener_resume(&a.l), 0);
    /* Still out of descriptors: no accept is tried before the pause ends. */
    ct_run_nowait(loop, 3);
    assert_int_equal(a.errors, errors_before);

    release_fds(&a, held);
    check_recovered(loop, &a, port);
    hp_listener_stop(&a.l);
    hp_test_loop_free(loop);
    for (int i = 0; i < EMFILE_CLIENTS; i++)
        close(clients[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_accepts_every_queued_connection_in_one_iteration),
        cmocka_unit_test(test_listener_stopped_and_freed_from_its_accept_callback_accepts_no_more),
        cmocka_unit_test(test_listener_paused_leaves_connections_in_the_backlog_until_resumed),
        cmocka_unit_test(
            test_listener_paused_from_its_accept_callback_accepts_no_more_until_resumed),
        cmocka_unit_test_setup_teardown(
            test_listener_pauses_on_emfile_without_spinning_and_then_recovers, save_rlimit,
            restore_rlimit),
        cmocka_unit_test_setup_teardown(
            test_listener_resumed_during_an_emfile_pause_waits_for_the_pause_to_end, save_rlimit,
            restore_rlimit),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/listener", tests, NULL, NULL);
}
