/*
 * tests/core/test_sendfile.c - hp_stream_sendfile(): a file range queued in
 * order with other writes (buffers before it in the same request, writes
 * queued behind it), byte-exact through a small SO_SNDBUF over loopback TCP
 * and a socketpair, resumed on writability on whichever driver the build
 * uses; the callback exactly once and never inside the call; a file that
 * shrinks fails with -ENODATA (and the queue behind it); a closed stream
 * cancels; a peer that leaves gives -EPIPE/-ECONNRESET, not SIGPIPE; a
 * descriptor sendfile refuses falls back to pread + write.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

struct wres {
    struct hp_write_req req;
    int status;
    size_t calls;
};

static void on_w(struct hp_write_req *req, int status)
{
    struct wres *w = hp_container_of(req, struct wres, req);

    w->status = status;
    w->calls++;
}

static bool closed;

static void on_closed(struct hp_stream *s)
{
    (void)s;
    closed = true;
}

/* A temp file of @p len pseudo-random bytes (kept in *data), opened read-only. */
static int temp_file(size_t len, unsigned char **data, char path[64])
{
    unsigned char *d = malloc(len ? len : 1);
    uint32_t x = 2463534242u;
    int fd, rfd;

    assert_non_null(d);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        d[i] = (unsigned char)x;
    }
    snprintf(path, 64, "/tmp/hp-sendfile-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    hp_test_write_all(fd, d, len);
    close(fd);
    rfd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(rfd >= 0);
    *data = d;
    return rfd;
}

/* The reading side: a non-blocking descriptor drained into a buffer. */
struct sink {
    int fd;
    unsigned char *got;
    size_t len, cap;
    bool eof;
    size_t max_per_step; /* a slow reader: at most this per loop iteration (0: all) */
};

static void sink_step(struct sink *k)
{
    size_t budget = k->max_per_step ? k->max_per_step : SIZE_MAX;

    while (budget > 0 && !k->eof) {
        size_t room = k->cap - k->len;
        ssize_t n;

        if (room == 0) {
            k->cap = k->cap ? k->cap * 2 : 65536;
            k->got = realloc(k->got, k->cap);
            assert_non_null(k->got);
            continue;
        }
        n = read(k->fd, k->got + k->len, room < budget ? room : budget);
        if (n > 0) {
            k->len += (size_t)n;
            budget -= (size_t)n;
        } else if (n == 0) {
            k->eof = true;
        } else {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNRESET);
            break;
        }
    }
}

struct until {
    struct hp_loop *loop;
    struct sink *k;
    size_t want;
    const size_t *calls;
    size_t want_calls;
};

static bool pred_done(void *arg)
{
    struct until *u = arg;

    sink_step(u->k);
    return u->k->len >= u->want && *u->calls >= u->want_calls;
}

static void set_nonblock(int fd)
{
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A connected loopback TCP pair: *srv for the stream, *cli for the test. */
static void tcp_pair(int *srv, int *cli, int sndbuf)
{
    int fd[2];

    hp_test_tcp_pair(fd);
    *cli = fd[0];
    *srv = fd[1];
    if (sndbuf)
        assert_int_equal(setsockopt(*srv, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
}

/*
 * "HEAD" + file[off, off+len) in one request, then "TAIL" queued behind it,
 * through a stream on @p sfd, read on @p cfd; checked byte for byte.
 */
static void send_and_check(int sfd, int cfd, size_t fsize, int64_t off, size_t len, size_t slow)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_stream s;
    struct wres w1 = {0}, w2 = {0};
    struct hp_buf head = hp_buf_make("HEAD", 4), tail = hp_buf_make("TAIL", 4);
    struct sink k = {.fd = cfd, .max_per_step = slow};
    unsigned char *data;
    char path[64];
    int fd = temp_file(fsize, &data, path);
    struct until u = {loop, &k, 8 + len, &w2.calls, 1};

    assert_int_equal(hp_stream_init(loop, &s, sfd), 0);
    assert_int_equal(hp_stream_sendfile(&s, &w1.req, &head, 1, fd, off, len, on_w), 0);
    assert_int_equal(hp_stream_write(&s, &w2.req, &tail, 1, on_w), 0);
    assert_int_equal(w1.calls, 0); /* never inside the call */
    assert_int_equal(w2.calls, 0);
    ct_run_until(loop, pred_done, &u);
    assert_int_equal(w1.calls, 1);
    assert_int_equal(w1.status, 0);
    assert_int_equal(w2.status, 0);
    assert_int_equal(k.len, 8 + len);
    assert_memory_equal(k.got, "HEAD", 4);
    assert_true(memcmp(k.got + 4, data + off, len) == 0);
    assert_memory_equal(k.got + 4 + len, "TAIL", 4);
    assert_int_equal(hp_stream_write_queue_size(&s), 0);
    closed = false;
    hp_stream_close(&s, on_closed);
    hp_test_run_until(loop, &closed);
    hp_test_loop_free(loop);
    close(fd);
    unlink(path);
    free(data);
    free(k.got);
}

static void test_sendfile_tcp_small_sndbuf_byte_exact_in_order(void **state)
{
    int sfd, cfd;

    (void)state;
    tcp_pair(&sfd, &cfd, 4096);
    send_and_check(sfd, cfd, 8u << 20, 0, 8u << 20, 0);
    close(cfd);
}

static void test_sendfile_tcp_slow_reader_range_in_the_middle(void **state)
{
    int sfd, cfd;

    (void)state;
    tcp_pair(&sfd, &cfd, 4096);
    send_and_check(sfd, cfd, 1u << 20, 12345, 700001, 16384);
    close(cfd);
}

static void test_sendfile_socketpair_byte_exact(void **state)
{
    int sv[2];

    (void)state;
    hp_test_socketpair(sv);
    set_nonblock(sv[1]);
    send_and_check(sv[0], sv[1], 3u << 20, 1, (3u << 20) - 1, 0);
    close(sv[1]);
}

static void test_sendfile_empty_range_and_no_buffers_completes(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_stream s;
    struct wres w = {0};
    unsigned char *data;
    char path[64];
    int fd = temp_file(10, &data, path), sv[2];

    (void)state;
    hp_test_socketpair(sv);
    assert_int_equal(hp_stream_init(loop, &s, sv[0]), 0);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 0, fd, 0, 0, on_w), 0);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 0, fd, 0, 0, on_w), -EINVAL); /* busy */
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_int_equal(w.status, 0);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 1, fd, 0, 1, on_w), -EINVAL);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 0, fd, -1, 1, on_w), -EINVAL);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 0, -1, 0, 1, on_w), -EBADF);
    closed = false;
    hp_stream_close(&s, on_closed);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 0, fd, 0, 1, on_w), HP_ECLOSED);
    hp_test_run_until(loop, &closed);
    assert_int_equal(w.calls, 1);
    hp_test_loop_free(loop);
    close(sv[1]);
    close(fd);
    unlink(path);
    free(data);
}

/* The file is shorter than the range: -ENODATA, and the write behind fails too. */
static void test_sendfile_file_shorter_than_the_range_fails_the_stream(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_stream s;
    struct wres w1 = {0}, w2 = {0};
    struct hp_buf tail = hp_buf_make("TAIL", 4);
    struct sink k = {0};
    unsigned char *data;
    char path[64];
    int fd = temp_file(1u << 20, &data, path), sv[2];
    struct until u = {loop, &k, 0, &w2.calls, 1};

    (void)state;
    tcp_pair(&sv[0], &sv[1], 4096); /* small: most of the file is still to send */
    k.fd = sv[1];
    assert_int_equal(hp_stream_init(loop, &s, sv[0]), 0);
    assert_int_equal(hp_stream_sendfile(&s, &w1.req, NULL, 0, fd, 0, 1u << 20, on_w), 0);
    assert_int_equal(hp_stream_write(&s, &w2.req, &tail, 1, on_w), 0);
    assert_true(hp_stream_write_queue_size(&s) > 500000);
    assert_int_equal(truncate(path, 500000), 0); /* shrinks while being sent */
    ct_run_until(loop, pred_done, &u);
    assert_int_equal(w1.calls, 1);
    assert_int_equal(w1.status, -ENODATA);
    assert_int_equal(w2.status, -ENODATA);
    /* What was sent is the file's true bytes, never the TAIL behind it. */
    assert_true(k.len <= 500000);
    assert_true(memcmp(k.got, data, k.len) == 0);
    assert_int_equal(hp_stream_write(&s, &w2.req, &tail, 1, on_w), -ENODATA);
    closed = false;
    hp_stream_close(&s, on_closed);
    hp_test_run_until(loop, &closed);
    hp_test_loop_free(loop);
    close(sv[1]);
    close(fd);
    unlink(path);
    free(data);
    free(k.got);
}

static void test_sendfile_close_mid_file_cancels_once(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_stream s;
    struct wres w = {0};
    unsigned char *data;
    char path[64];
    int fd = temp_file(4u << 20, &data, path), sfd, cfd;

    (void)state;
    tcp_pair(&sfd, &cfd, 4096);
    assert_int_equal(hp_stream_init(loop, &s, sfd), 0);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 0, fd, 0, 4u << 20, on_w), 0);
    ct_run_nowait(loop, 3);
    assert_true(hp_stream_write_queue_size(&s) > 0); /* nobody reads: stuck */
    closed = false;
    hp_stream_close(&s, on_closed);
    hp_test_run_until(loop, &closed);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.status, -ECANCELED);
    hp_test_loop_free(loop);
    close(cfd);
    close(fd);
    unlink(path);
    free(data);
}

/* The peer leaves mid-file: an error status, and the process is not killed by SIGPIPE. */
static void test_sendfile_peer_gone_is_an_error_not_sigpipe(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_stream s;
    struct wres w = {0};
    struct sink k = {0};
    unsigned char *data;
    char path[64];
    int fd = temp_file(8u << 20, &data, path), sfd, cfd;
    struct until u = {loop, &k, 0, &w.calls, 1};

    (void)state;
    tcp_pair(&sfd, &cfd, 4096);
    assert_int_equal(hp_stream_init(loop, &s, sfd), 0);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 0, fd, 0, 8u << 20, on_w), 0);
    ct_run_nowait(loop, 2);
    close(cfd); /* unread data: the kernel resets the connection */
    k.fd = -1;
    k.eof = true;
    ct_run_until(loop, pred_done, &u);
    assert_int_equal(w.calls, 1);
    assert_true(w.status == -EPIPE || w.status == -ECONNRESET);
    closed = false;
    hp_stream_close(&s, on_closed);
    hp_test_run_until(loop, &closed);
    hp_test_loop_free(loop);
    close(fd);
    unlink(path);
    free(data);
}

/* sendfile refuses a pipe as the source: the fallback reports pread's error, no hang. */
static void test_sendfile_unsendable_source_fails_cleanly(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_stream s;
    struct wres w = {0};
    int sv[2], p[2];

    (void)state;
    hp_test_socketpair(sv);
    hp_test_pipe(p);
    hp_test_write_all(p[1], "xyz", 3);
    assert_int_equal(hp_stream_init(loop, &s, sv[0]), 0);
    assert_int_equal(hp_stream_sendfile(&s, &w.req, NULL, 0, p[0], 0, 3, on_w), 0);
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_true(w.status < 0);
    closed = false;
    hp_stream_close(&s, on_closed);
    hp_test_run_until(loop, &closed);
    hp_test_loop_free(loop);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sendfile_tcp_small_sndbuf_byte_exact_in_order),
        cmocka_unit_test(test_sendfile_tcp_slow_reader_range_in_the_middle),
        cmocka_unit_test(test_sendfile_socketpair_byte_exact),
        cmocka_unit_test(test_sendfile_empty_range_and_no_buffers_completes),
        cmocka_unit_test(test_sendfile_file_shorter_than_the_range_fails_the_stream),
        cmocka_unit_test(test_sendfile_close_mid_file_cancels_once),
        cmocka_unit_test(test_sendfile_peer_gone_is_an_error_not_sigpipe),
        cmocka_unit_test(test_sendfile_unsendable_source_fails_cleanly),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/sendfile", tests, NULL, NULL);
}
