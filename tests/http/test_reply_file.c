/*
 * tests/http/test_reply_file.c - hp_http_reply_file() on its own (the
 * static handler's tests cover it through files): a handler replies with a
 * descriptor range over loopback TCP. The body is byte-exact; HEAD sends the
 * head only; the done callback runs exactly once, never inside the call, 0
 * once the bytes are out, an error when the client leaves first; a closed
 * request returns HP_ECLOSED and never calls done; a full output queue
 * refuses with -ENOBUFS, the request stays the handler's, and the reply goes
 * through after hp_http_req_on_drain(); the next pipelined response follows
 * the file.
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
#include <hellepoll/http.h>

#include "testutil.h"

#define FSIZE (3u << 20)

static struct hp_loop *loop;
static struct hp_http_server *srv;
static int file_fd;
static char file_path[64];
static unsigned char *file_data;

/* What the done callback saw. */
static size_t done_calls;
static int done_status;
static bool in_call;             /* inside hp_http_reply_file() */
static bool done_inside;         /* done ran inside the call */
static int last_rc;              /* the last hp_http_reply_file() result */
static struct hp_http_req *held; /* a request the handler keeps */
static bool enobufs_seen;

static void on_done(void *arg, int status)
{
    assert_ptr_equal(arg, &file_fd);
    done_calls++;
    done_status = status;
    if (in_call)
        done_inside = true;
}

static int reply_file(struct hp_http_req *req, int64_t off, size_t len)
{
    int rc;

    in_call = true;
    rc = hp_http_reply_file(req, 200, HP_STR_LIT("application/octet-stream"), file_fd, off, len,
                            on_done, &file_fd);
    in_call = false;
    last_rc = rc;
    return rc;
}

static void on_drain(struct hp_http_req *req, int status)
{
    assert_int_equal(status, 0);
    assert_int_equal(reply_file(req, 0, FSIZE), 0);
}

static int on_request(struct hp_http_req *req)
{
    if (hp_str_eq(req->path, HP_STR_LIT("/hold"))) {
        held = req; /* answered later by the test */
        return 0;
    }
    if (hp_str_eq(req->path, HP_STR_LIT("/small")))
        return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), "small", 5);
    if (hp_str_eq(req->path, HP_STR_LIT("/bad"))) {
        assert_int_equal(hp_http_reply_file(req, 200, HP_STR_LIT(""), file_fd, 0, 1, NULL, NULL),
                         -EINVAL);
        assert_int_equal(
            hp_http_reply_file(req, 200, HP_STR_LIT(""), file_fd, -1, 1, on_done, &file_fd),
            -EINVAL);
        return hp_http_reply(req, 204, HP_STR_LIT(""), NULL, 0);
    }
    if (hp_str_eq(req->path, HP_STR_LIT("/range")))
        return reply_file(req, 1000, 5000) == 0 ? 0 : -1;
    /* "/full": the whole file, waiting for the output to drain if it is full. */
    int rc = reply_file(req, 0, FSIZE);
    if (rc == -ENOBUFS) {
        enobufs_seen = true;
        assert_int_equal(hp_http_req_on_drain(req, 0, on_drain), 0);
        return 0;
    }
    return rc;
}

static int setup_opts(size_t max_output)
{
    struct hp_http_server_opts opts = {
        .on_request = on_request, .no_listen = true, .max_output = max_output};
    uint32_t x = 88172645u;
    int fd;

    loop = hp_test_loop_new(NULL);
    if (hp_http_server_new(&srv, loop, &opts) != 0)
        return -1;
    file_data = malloc(FSIZE);
    for (size_t i = 0; i < FSIZE; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        file_data[i] = (unsigned char)x;
    }
    snprintf(file_path, sizeof(file_path), "/tmp/hp-reply-file-XXXXXX");
    fd = mkstemp(file_path);
    hp_test_write_all(fd, file_data, FSIZE);
    close(fd);
    file_fd = open(file_path, O_RDONLY | O_CLOEXEC);
    done_calls = 0;
    done_status = 1;
    done_inside = false;
    held = NULL;
    enobufs_seen = false;
    return file_fd >= 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    return setup_opts(0);
}

static int setup_small_output(void **state)
{
    (void)state;
    return setup_opts(65536);
}

static bool down;

static void on_down(struct hp_http_server *s)
{
    (void)s;
    down = true;
}

static int teardown(void **state)
{
    (void)state;
    down = false;
    hp_http_server_shutdown(srv, 1000, on_down);
    hp_test_run_until(loop, &down);
    assert_int_equal(hp_http_server_free(srv), 0);
    while (hp_loop_is_alive(loop))
        hp_loop_run_once(loop, 20);
    hp_test_loop_free(loop);
    close(file_fd);
    unlink(file_path);
    free(file_data);
    return 0;
}

/* A loopback TCP connection whose server end the server adopted; the client's end, non-blocking. */
static int client_new(int sndbuf)
{
    int fd[2];

    hp_test_tcp_pair(fd);
    if (sndbuf)
        assert_int_equal(setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    assert_int_equal(hp_http_server_adopt(srv, fd[1]), 0);
    return fd[0];
}

/* Read until @p want bytes or EOF, driving the loop; bounded by the deadline. */
static size_t read_upto(int c, unsigned char *b, size_t want, bool *eof)
{
    size_t got = 0;
    uint64_t deadline;

    *eof = false;
    hp_loop_update_time(loop);
    deadline = hp_loop_now(loop) + HP_TEST_DEADLINE_MS;
    while (got < want) {
        ssize_t r;

        hp_loop_run_once(loop, 10);
        while (got < want && (r = read(c, b + got, want - got)) > 0)
            got += (size_t)r;
        if (got < want && r == 0) {
            *eof = true;
            break;
        }
        hp_loop_update_time(loop);
        if (hp_loop_now(loop) > deadline)
            fail_msg("%zu of %zu bytes", got, want);
    }
    return got;
}

/* One response head, byte by byte; NUL-terminated in @p head. */
static void read_head(int c, char *head, size_t cap)
{
    size_t got = 0;
    bool eof;

    for (;;) {
        assert_true(got + 1 < cap);
        assert_int_equal(read_upto(c, (unsigned char *)head + got, 1, &eof), 1);
        got++;
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[got] = '\0';
}

static void run_until_done(size_t calls)
{
    hp_test_run_until_count(loop, &done_calls, calls);
}

static void expect_file_response(int c, int64_t off, size_t len)
{
    char head[1024], cl[64];
    unsigned char *b = malloc(len);
    bool eof;

    read_head(c, head, sizeof(head));
    assert_int_equal(strncmp(head, "HTTP/1.1 200 OK\r\n", 17), 0);
    snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", len);
    assert_non_null(strstr(head, cl));
    assert_int_equal(read_upto(c, b, len, &eof), len);
    assert_true(memcmp(b, file_data + off, len) == 0);
    free(b);
}

static void test_reply_file_body_byte_exact_done_once_after(void **state)
{
    int c = client_new(8192);

    (void)state;
    hp_test_write_all(c, "GET /full HTTP/1.1\r\nHost: x\r\n\r\n", 31);
    expect_file_response(c, 0, FSIZE);
    run_until_done(1);
    assert_false(done_inside);
    assert_int_equal(done_status, 0);
    /* A range, then a plain reply behind it on the same connection. */
    hp_test_write_all(c,
                      "GET /range HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /small HTTP/1.1\r\nHost: x\r\n\r\n",
                      64);
    expect_file_response(c, 1000, 5000);
    {
        char head[1024];
        unsigned char b[5];
        bool eof;

        read_head(c, head, sizeof(head));
        assert_int_equal(read_upto(c, b, 5, &eof), 5);
        assert_memory_equal(b, "small", 5);
    }
    run_until_done(2);
    assert_int_equal(done_status, 0);
    close(c);
}

static void test_reply_file_head_sends_the_head_only(void **state)
{
    int c = client_new(0);
    char head[1024], cl[64];
    unsigned char extra[16];
    bool eof;

    (void)state;
    hp_test_write_all(
        c, "HEAD /full HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n", 64);
    read_head(c, head, sizeof(head));
    snprintf(cl, sizeof(cl), "\r\nContent-Length: %u\r\n", FSIZE);
    assert_non_null(strstr(head, cl));
    /* No body: the next bytes are the next response's head. */
    read_head(c, head, sizeof(head));
    assert_int_equal(strncmp(head, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(head, "\r\nContent-Length: 5\r\n"));
    assert_int_equal(read_upto(c, extra, 5, &eof), 5);
    run_until_done(1);
    assert_int_equal(done_status, 0);
    assert_false(done_inside);
    close(c);
}

static void test_reply_file_invalid_arguments_leave_the_request(void **state)
{
    int c = client_new(0);
    char head[1024];

    (void)state;
    hp_test_write_all(c, "GET /bad HTTP/1.1\r\nHost: x\r\n\r\n", 30);
    read_head(c, head, sizeof(head));
    assert_int_equal(strncmp(head, "HTTP/1.1 204 ", 13), 0);
    assert_int_equal(done_calls, 0);
    close(c);
}

static void test_reply_file_on_a_closed_request_is_eclosed_and_done_never_runs(void **state)
{
    int c = client_new(0);

    (void)state;
    hp_test_write_all(c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n", 31);
    for (int i = 0; held == NULL; i++) {
        assert_true(i < 2000); /* 20 s at most */
        hp_loop_run_once(loop, 10);
    }
    close(c);
    for (int i = 0; !hp_http_req_closed(held); i++) {
        assert_true(i < 2000);
        hp_loop_run_once(loop, 10);
    }
    assert_int_equal(reply_file(held, 0, FSIZE), HP_ECLOSED);
    held = NULL;
    for (int i = 0; i < 10; i++)
        hp_loop_run_once(loop, 5);
    assert_int_equal(done_calls, 0);
}

static void test_reply_file_client_leaving_mid_file_reports_an_error(void **state)
{
    int c = client_new(4096);
    unsigned char b[100000];
    bool eof;

    (void)state;
    hp_test_write_all(c, "GET /full HTTP/1.1\r\nHost: x\r\n\r\n", 31);
    assert_int_equal(read_upto(c, b, sizeof(b), &eof), sizeof(b));
    assert_int_equal(done_calls, 0); /* most of the file is still queued */
    close(c);
    run_until_done(1);
    assert_true(done_status < 0);
    for (int i = 0; i < 10; i++)
        hp_loop_run_once(loop, 5);
    assert_int_equal(done_calls, 1);
}

/* max_output 64 KiB: the second file waits (-ENOBUFS, on_drain) until the first is out. */
static void test_reply_file_full_output_is_enobufs_then_drains(void **state)
{
    int c = client_new(8192);

    (void)state;
    hp_test_write_all(c,
                      "GET /full HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /full HTTP/1.1\r\nHost: x\r\n\r\n",
                      62);
    /*
     * The first request is finished once its file is queued, so the second
     * is handled at once: its reply is refused (3 MiB queued > 64 KiB), it
     * waits for the drain, then goes out after the first file.
     */
    expect_file_response(c, 0, FSIZE);
    expect_file_response(c, 0, FSIZE);
    assert_true(enobufs_seen);
    run_until_done(2);
    assert_int_equal(done_status, 0);
    close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reply_file_body_byte_exact_done_once_after, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reply_file_head_sends_the_head_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_file_invalid_arguments_leave_the_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_reply_file_on_a_closed_request_is_eclosed_and_done_never_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_file_client_leaving_mid_file_reports_an_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_file_full_output_is_enobufs_then_drains,
                                        setup_small_output, teardown),
    };

    return cmocka_run_group_tests_name("http/reply_file", tests, NULL, NULL);
}
