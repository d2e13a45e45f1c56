/*
 * tests/http/test_server.c - the handler API end to end, over socketpairs
 * adopted by a server on a real loop: asynchronous replies with pipelined
 * requests waiting behind them, on_abort when the client goes away, streamed
 * (chunked) replies, streamed request bodies with 100-continue, handler
 * errors and response headers. The loop is driven with bounded run_once
 * calls; nothing sleeps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#include "testutil.h"

struct fixture {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct hp_timer timer;
    struct hp_http_req *held; /* a request answered later */
    int client;
    size_t aborts;
    int abort_status;
    char body[4096]; /* streamed body pieces, concatenated */
    size_t body_len;
    bool body_end;
    char in[16384]; /* what the client received */
    size_t in_len;
    bool down;
};

static struct fixture fx;

static int on_request(struct hp_http_req *req)
{
    char text[256];
    int n;

    if (req->path.len == 6 && memcmp(req->path.ptr, "/async", 6) == 0) {
        fx.held = req; /* answered from the timer */
        return hp_timer_start(&fx.timer, 20, 0);
    }
    if (req->path.len == 5 && memcmp(req->path.ptr, "/fail", 5) == 0)
        return -EIO;
    if (req->path.len == 7 && memcmp(req->path.ptr, "/stream", 7) == 0) {
        assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT("text/plain"), -1), 0);
        assert_int_equal(hp_http_stream_write(req, "abc", 3), 0);
        assert_int_equal(hp_http_stream_write(req, "0123456789abcdefg", 17), 0);
        return hp_http_stream_end(req);
    }
    if (req->path.len == 8 && memcmp(req->path.ptr, "/headers", 8) == 0) {
        assert_int_equal(hp_http_add_header(req, HP_STR_LIT("X-Test"), HP_STR_LIT("yes")), 0);
        assert_int_equal(hp_http_add_header(req, HP_STR_LIT("Content-Length"), HP_STR_LIT("1")),
                         -EINVAL);
        assert_int_equal(hp_http_add_header(req, HP_STR_LIT("X-Bad"), HP_STR_LIT("a\r\nb")),
                         -EINVAL);
    }
    n = snprintf(text, sizeof(text), "%.*s %.*s", (int)req->method.len, req->method.ptr,
                 (int)req->path.len, req->path.ptr);
    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), text, (size_t)n);
}

static int on_body(struct hp_http_req *req, const void *data, size_t len)
{
    if (data == NULL) {
        fx.body_end = true;
        return hp_http_reply(req, 201, HP_STR_LIT(""), fx.body, fx.body_len);
    }
    assert_true(fx.body_len + len <= sizeof(fx.body));
    memcpy(fx.body + fx.body_len, data, len);
    fx.body_len += len;
    return 0;
}

static int on_head(struct hp_http_req *req)
{
    if (req->path.len == 7 && memcmp(req->path.ptr, "/upload", 7) == 0)
        return hp_http_req_read_body(req, on_body);
    return 0;
}

static void on_abort(struct hp_http_req *req, int status)
{
    if (req == fx.held) {
        /* Closed: the handler still finishes what it holds. */
        fx.held = NULL;
        hp_timer_stop(&fx.timer);
        hp_http_req_release(req);
    }
    fx.aborts++;
    fx.abort_status = status;
}

static void on_timer(struct hp_timer *t)
{
    struct hp_http_req *req = fx.held;

    (void)t;
    fx.held = NULL;
    assert_int_equal(hp_http_reply(req, 200, HP_STR_LIT("text/plain"), "late", 4), 0);
}

static int setup(void **state)
{
    struct hp_http_server_opts opts = {
        .on_request = on_request,
        .on_head = on_head,
        .on_abort = on_abort,
        .no_listen = true,
    };
    int sv[2];

    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    hp_timer_init(fx.loop, &fx.timer, on_timer);
    if (hp_http_server_new(&fx.srv, fx.loop, &opts) != 0)
        return -1;
    hp_test_socketpair(sv);
    fx.client = sv[1];
    return hp_http_server_adopt(fx.srv, sv[0]);
}

static void on_down(struct hp_http_server *srv)
{
    (void)srv;
    fx.down = true;
}

static int teardown(void **state)
{
    (void)state;
    if (fx.client >= 0)
        close(fx.client);
    hp_http_server_shutdown(fx.srv, 0, on_down);
    hp_test_run_until(fx.loop, &fx.down);
    assert_int_equal(hp_http_server_free(fx.srv), 0);
    hp_timer_stop(&fx.timer);
    hp_test_loop_free(fx.loop);
    return 0;
}

static void send_str(const char *s)
{
    hp_test_write_all(fx.client, s, strlen(s));
}

/* Run the loop until the client has received @p n occurrences of @p needle. */
static void receive_until(const char *needle, size_t n)
{
    for (int round = 0; round < 400; round++) {
        size_t found = 0;
        const char *p = fx.in;
        while ((p = strstr(p, needle)) != NULL) {
            found++;
            p += strlen(needle);
        }
        if (found >= n)
            return;
        assert_true(hp_loop_run_once(fx.loop, 25) >= 0);
        ssize_t r = read(fx.client, fx.in + fx.in_len, sizeof(fx.in) - 1 - fx.in_len);
        if (r > 0) {
            fx.in_len += (size_t)r;
            fx.in[fx.in_len] = '\0';
        }
    }
    fail_msg("never received %zu x '%s'; got: %s", n, needle, fx.in);
}

static void test_server_async_reply_keeps_pipelined_responses_in_order(void **state)
{
    (void)state;
    send_str("GET /async HTTP/1.1\r\nHost: t\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n\r\n");
    receive_until("GET /second", 1);
    const char *late = strstr(fx.in, "late");
    const char *second = strstr(fx.in, "GET /second");
    assert_non_null(late);
    assert_true(late < second);
    assert_int_equal(fx.aborts, 0);
}

static void test_server_client_gone_reaches_on_abort(void **state)
{
    (void)state;
    send_str("GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 10 && fx.held == NULL; i++)
        assert_true(hp_loop_run_once(fx.loop, 10) >= 0);
    assert_non_null(fx.held);
    close(fx.client);
    fx.client = -1;
    for (int i = 0; i < 100 && fx.aborts == 0; i++)
        assert_true(hp_loop_run_once(fx.loop, 10) >= 0);
    assert_int_equal(fx.aborts, 1);
    assert_null(fx.held);
    assert_true(fx.abort_status < 0);
}

static void test_server_streamed_reply_is_chunked(void **state)
{
    (void)state;
    send_str("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    receive_until("0\r\n\r\n", 1);
    assert_non_null(strstr(fx.in, "Transfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(fx.in, "\r\n\r\n3\r\nabc\r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n"));
}

static void test_server_streamed_request_body_gets_100_continue(void **state)
{
    (void)state;
    send_str("POST /upload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
             "Transfer-Encoding: chunked\r\n\r\n");
    receive_until("HTTP/1.1 100 Continue\r\n\r\n", 1);
    send_str("4\r\nabcd\r\n");
    receive_until("zzz", 0);
    send_str("3\r\nefg\r\n0\r\n\r\n");
    receive_until("HTTP/1.1 201", 1);
    assert_true(fx.body_end);
    assert_int_equal(fx.body_len, 7);
    assert_memory_equal(fx.body, "abcdefg", 7);
    receive_until("abcdefg", 1);
}

static void test_server_handler_error_answers_500_and_closes(void **state)
{
    (void)state;
    send_str("GET /fail HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    receive_until("the handler failed\n", 1);
    assert_true(strncmp(fx.in, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
    assert_non_null(strstr(fx.in, "Connection: close\r\n"));
    assert_null(strstr(fx.in, "GET /")); /* the pipelined request is not served */
}

static void test_server_added_headers_are_sent_and_reserved_ones_refused(void **state)
{
    (void)state;
    send_str("GET /headers HTTP/1.1\r\nHost: t\r\n\r\n");
    receive_until("GET /headers", 1);
    assert_non_null(strstr(fx.in, "\r\nX-Test: yes\r\n"));
    assert_non_null(strstr(fx.in, "\r\nContent-Length: 12\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_async_reply_keeps_pipelined_responses_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_client_gone_reaches_on_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_streamed_reply_is_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_streamed_request_body_gets_100_continue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_handler_error_answers_500_and_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_server_added_headers_are_sent_and_reserved_ones_refused, setup, teardown),
    };

    return cmocka_run_group_tests_name("http/server", tests, NULL, NULL);
}
