/*
 * testutil.h - helpers shared by the test programs: run a loop until a
 * condition holds (bounded by a deadline, never by sleeping), make
 * non-blocking socketpairs, and a loop log that tests can inspect.
 */
#ifndef HP_TESTUTIL_H
#define HP_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <hellepoll/hellepoll.h>

/* Milliseconds a hp_test_run_until() waits before failing the test. */
#define HP_TEST_DEADLINE_MS 10000

/* Log sink: keeps the last messages so tests can assert on them. */
struct hp_test_log {
    char last[512];
    unsigned count;    /* messages received */
    unsigned warnings; /* of which HP_LOG_WARN or worse */
};

/* A loop with a test log attached; fails the test on error. */
struct hp_loop *hp_test_loop_new(struct hp_test_log *log);

/* hp_loop_free() that must succeed. */
void hp_test_loop_free(struct hp_loop *loop);

/*
 * Run iterations of at most 50 ms until *flag becomes true; fail the test
 * (cmocka fail_msg) after HP_TEST_DEADLINE_MS.
 */
void hp_test_run_until(struct hp_loop *loop, const bool *flag);

/* Same, for a counter reaching at least @p want. */
void hp_test_run_until_count(struct hp_loop *loop, const size_t *count, size_t want);

/* A non-blocking, close-on-exec AF_UNIX SOCK_STREAM pair; fails the test on error. */
void hp_test_socketpair(int sv[2]);

/* A non-blocking, close-on-exec pipe; fails the test on error. */
void hp_test_pipe(int fds[2]);

/* socket(2), close-on-exec, and non-blocking if asked: -1 with errno on failure. */
int hp_test_socket(int domain, int type, bool nonblock);

/* accept(2) giving a non-blocking, close-on-exec descriptor: -1 with errno on failure. */
int hp_test_accept(int listen_fd);

/*
 * A connected loopback TCP pair: sv[0] the client's end, sv[1] the
 * accepted end, both non-blocking and close-on-exec; fails the test on error.
 */
void hp_test_tcp_pair(int sv[2]);

/*
 * A loopback listener whose accept queue is full and never accepted from:
 * a connect to its port hangs (the kernel drops further SYNs) until the
 * client gives up. Fills @p h; fails the test on error.
 */
struct hp_test_blackhole {
    int lfd, fill[4];
    unsigned short port;
};
void hp_test_blackhole_open(struct hp_test_blackhole *h);
void hp_test_blackhole_close(struct hp_test_blackhole *h);

/* Write all of @p len bytes to a (possibly non-blocking) fd; fails on error. */
void hp_test_write_all(int fd, const void *buf, size_t len);

#endif
