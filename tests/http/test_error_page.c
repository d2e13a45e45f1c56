/*
 * tests/http/test_error_page.c - the error-page hook (hp_http_server_opts.
 * error_page) over loopback TCP: the server's own 400, 413, 414, the 500
 * for a released request and the 503 for a connection over the limit carry
 * the application's body and Content-Type
 * with a Content-Length that frames them, HEAD gets none of the body, the
 * bytes are copied (the test clobbers them right after), a page that could
 * break the framing is refused for the default one, and without a hook the
 * default bodies are unchanged. The loop is driven with bounded run_once
 * calls; nothing sleeps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#include "rawclient.h"
#include "testutil.h"

enum mode { PAGE, DECLINE, BAD_TYPE, TOO_BIG, NO_TYPE };

static struct {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct rc_client c;
    enum mode mode;
    unsigned calls;
    int status;
    char reason[256];
    char page[HP_HTTP_ERROR_PAGE_MAX + 2];
    uint64_t logged_bytes;
    int logged_status;
    bool down;
} S;

static int on_request(struct hp_http_req *req)
{
    if (req->path.len == 8 && memcmp(req->path.ptr, "/release", 8) == 0) {
        hp_http_req_release(req); /* no reply: the server answers 500 */
        return 0;
    }
    if (req->path.len == 5 && memcmp(req->path.ptr, "/fail", 5) == 0)
        return -EIO;
    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), "ok", 2);
}

static int error_page(void *data, int status, const char *reason, struct hp_http_error_page *out)
{
    int n;

    assert_ptr_equal(data, &S);
    S.calls++;
    S.status = status;
    snprintf(S.reason, sizeof(S.reason), "%s", reason);
    n = snprintf(S.page, sizeof(S.page), "<h1>%d %s</h1><p>%s</p>\n", status,
                 hp_http_status_reason(status), reason);
    out->body = (struct hp_str){S.page, (size_t)n};
    switch (S.mode) {
    case PAGE:
        out->content_type = HP_STR_LIT("text/html; charset=utf-8");
        return 0;
    case DECLINE:
        return -1;
    case BAD_TYPE: /* would add a header line and break the head */
        out->content_type = HP_STR_LIT("text/html\r\nX-Evil: 1");
        return 0;
    case TOO_BIG:
        memset(S.page, 'x', HP_HTTP_ERROR_PAGE_MAX + 1);
        out->body = (struct hp_str){S.page, HP_HTTP_ERROR_PAGE_MAX + 1};
        out->content_type = HP_STR_LIT("text/plain");
        return 0;
    case NO_TYPE:
        return 0;
    }
    return -1;
}

/* Runs just after the response was rendered: clobbering the page proves it was copied. */
static void on_log(void *ctx, const struct hp_http_req *req, const struct hp_http_log_entry *e)
{
    (void)ctx;
    (void)req;
    memset(S.page, '#', sizeof(S.page));
    S.logged_bytes = e->body_bytes;
    S.logged_status = e->status;
}

static void start(bool hook, uint32_t max_connections)
{
    struct hp_http_server_opts opts = {
        .on_request = on_request,
        .listen.host = "127.0.0.1",
        .max_body = 100,
        .max_target = 64,
        .on_log = on_log,
        .error_page = hook ? error_page : NULL,
        .error_page_data = &S,
        .max_connections = max_connections,
    };

    memset(&S, 0, sizeof(S));
    S.c.fd = -1;
    S.loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_http_server_new(&S.srv, S.loop, &opts), 0);
}

static void on_down(struct hp_http_server *srv)
{
    (void)srv;
    S.down = true;
}

static int teardown(void **state)
{
    (void)state;
    rc_close(&S.c, false);
    hp_http_server_shutdown(S.srv, 0, on_down);
    hp_test_run_until(S.loop, &S.down);
    assert_int_equal(hp_http_server_free(S.srv), 0);
    hp_test_loop_free(S.loop);
    return 0;
}

static int setup_hook(void **state)
{
    (void)state;
    start(true, 0);
    return 0;
}

static int setup_plain(void **state)
{
    (void)state;
    start(false, 0);
    return 0;
}

/*
 * Send @p req on a new connection; the server must answer @p status, close,
 * and send nothing else. The response (head and body) is left in *r.
 */
static void exchange(const char *req, size_t len, int status, bool head, struct rc_resp *r)
{
    rc_close(&S.c, false);
    rc_open_tcp(&S.c, (uint16_t)hp_http_server_port(S.srv));
    if (len != 0)
        rc_send(&S.c, req, len);
    for (int i = 0; i < 4000 && !S.c.eof; i++) {
        rc_pump(&S.c);
        assert_true(hp_loop_run_once(S.loop, 5) >= 0);
        rc_pump(&S.c);
    }
    if (!S.c.eof)
        fail_msg("the server never closed the connection; got: %s", S.c.in);
    if (!rc_next(&S.c, head, r))
        fail_msg("no complete response; got: %s", S.c.in);
    if (r->status != status)
        fail_msg("expected %d, got %d: %s", status, r->status, S.c.in);
    assert_true(r->close);
    assert_true(r->has_length);
    assert_int_equal(S.c.in_off, S.c.in_len); /* the body is exactly Content-Length long */
}

#define EXCHANGE(req, status, head, r) exchange((req), sizeof(req) - 1, (status), (head), (r))

/* The response carries the hook's page for @p status, framed by its length. */
static void expect_page(const struct rc_resp *r, int status)
{
    char want[512];
    int n = snprintf(want, sizeof(want), "<h1>%d %s</h1><p>%s</p>\n", status,
                     hp_http_status_reason(status), S.reason);

    assert_int_equal(S.status, status);
    assert_int_equal(r->content_length, (uint64_t)n);
    assert_int_equal(r->body_len, (size_t)n);
    assert_memory_equal(r->body, want, (size_t)n);
    assert_non_null(strstr(S.c.in, "\r\nContent-Type: text/html; charset=utf-8\r\n"));
    assert_int_equal(rc_count(&S.c, "Content-Type:"), 1);
    assert_int_equal(S.logged_status, status);
    assert_int_equal(S.logged_bytes, (uint64_t)n); /* the log counts the page's bytes */
}

static void test_a_malformed_request_gets_the_page_with_its_length(void **state)
{
    struct rc_resp r;

    (void)state;
    EXCHANGE("BAD\x01 / HTTP/1.1\r\nHost: t\r\n\r\n", 400, false, &r);
    assert_int_equal(S.calls, 1);
    assert_string_equal(S.reason, "invalid character in method");
    expect_page(&r, 400);
    rc_resp_free(&r);
}

static void test_a_body_too_large_gets_the_413_page(void **state)
{
    struct rc_resp r;

    (void)state;
    EXCHANGE("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", 413, false, &r);
    expect_page(&r, 413);
    rc_resp_free(&r);
}

static void test_a_target_too_long_gets_the_414_page(void **state)
{
    struct rc_resp r;

    (void)state;
    EXCHANGE(
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
        "HTTP/1.1\r\nHost: t\r\n\r\n",
        414, false, &r);
    expect_page(&r, 414);
    rc_resp_free(&r);
}

static void test_a_released_request_gets_the_500_page(void **state)
{
    struct rc_resp r;

    (void)state;
    EXCHANGE("GET /release HTTP/1.1\r\nHost: t\r\n\r\n", 500, false, &r);
    expect_page(&r, 500);
    rc_resp_free(&r);
    EXCHANGE("GET /fail HTTP/1.1\r\nHost: t\r\n\r\n", 500, false, &r); /* a handler error too */
    expect_page(&r, 500);
    rc_resp_free(&r);
}

static void test_head_gets_the_page_length_and_no_body(void **state)
{
    struct rc_resp r;
    char want[512];
    int n;

    (void)state;
    EXCHANGE("HEAD /release HTTP/1.1\r\nHost: t\r\n\r\n", 500, true, &r);
    n = snprintf(want, sizeof(want), "<h1>500 %s</h1><p>%s</p>\n", hp_http_status_reason(500),
                 S.reason);
    assert_int_equal(r.content_length, (uint64_t)n);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(S.logged_bytes, 0);
    rc_resp_free(&r);
}

/* The default body: "<status> <phrase>: <reason>\n" as text/plain. */
static void expect_default(const struct rc_resp *r, int status, const char *reason)
{
    char want[512];
    int n =
        snprintf(want, sizeof(want), "%d %s: %s\n", status, hp_http_status_reason(status), reason);

    assert_int_equal(r->body_len, (size_t)n);
    assert_memory_equal(r->body, want, (size_t)n);
    assert_non_null(strstr(S.c.in, "\r\nContent-Type: text/plain\r\n"));
    assert_null(strstr(S.c.in, "X-Evil"));
}

static void test_pages_that_could_break_framing_are_refused(void **state)
{
    static const enum mode modes[] = {DECLINE, BAD_TYPE, TOO_BIG};
    struct rc_resp r;

    (void)state;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        S.mode = modes[i];
        EXCHANGE("BAD\x01 / HTTP/1.1\r\nHost: t\r\n\r\n", 400, false, &r);
        expect_default(&r, 400, "invalid character in method");
        rc_resp_free(&r);
    }
    /* An empty Content-Type means no Content-Type line at all. */
    S.mode = NO_TYPE;
    EXCHANGE("GET /release HTTP/1.1\r\nHost: t\r\n\r\n", 500, false, &r);
    assert_int_equal(rc_count(&S.c, "Content-Type:"), 0);
    assert_true(r.body_len > 0 && memcmp(r.body, "<h1>500 ", 8) == 0);
    rc_resp_free(&r);
}

static void test_without_a_hook_the_bodies_are_unchanged(void **state)
{
    struct rc_resp r;

    (void)state;
    EXCHANGE("BAD\x01 / HTTP/1.1\r\nHost: t\r\n\r\n", 400, false, &r);
    expect_default(&r, 400, "invalid character in method");
    rc_resp_free(&r);
    EXCHANGE("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", 413, false, &r);
    expect_default(&r, 413, "content too large");
    rc_resp_free(&r);
    EXCHANGE("GET /release HTTP/1.1\r\nHost: t\r\n\r\n", 500, false, &r);
    expect_default(&r, 500, "the handler failed");
    rc_resp_free(&r);
    assert_int_equal(S.calls, 0);
}

static int setup_busy(void **state)
{
    (void)state;
    start(true, 1);
    return 0;
}

/* With max_connections 1, a second connection is refused with the 503 page (and no request read).
 */
static void test_a_refused_connection_gets_the_503_page(void **state)
{
    struct rc_client first = {.fd = -1};
    struct rc_resp r;
    char want[512];
    int n;

    (void)state;
    rc_open_tcp(&first, (uint16_t)hp_http_server_port(S.srv));
    rc_send_str(&first, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 4000 && rc_count(&first, "200 OK") == 0; i++) {
        rc_pump(&first);
        assert_true(hp_loop_run_once(S.loop, 5) >= 0);
    }
    assert_int_equal(rc_count(&first, "200 OK"), 1); /* the one connection allowed is in */
    exchange("", 0, 503, false, &r);
    assert_string_equal(S.reason, "the server is at its connection limit");
    n = snprintf(want, sizeof(want), "<h1>503 %s</h1><p>%s</p>\n", hp_http_status_reason(503),
                 S.reason);
    assert_int_equal(r.body_len, (size_t)n);
    assert_memory_equal(r.body, want, (size_t)n);
    assert_non_null(strstr(S.c.in, "\r\nContent-Type: text/html; charset=utf-8\r\n"));
    rc_resp_free(&r);
    S.mode = DECLINE; /* the default: no body */
    exchange("", 0, 503, false, &r);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(r.content_length, 0);
    rc_resp_free(&r);
    rc_close(&first, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_malformed_request_gets_the_page_with_its_length,
                                        setup_hook, teardown),
        cmocka_unit_test_setup_teardown(test_a_body_too_large_gets_the_413_page, setup_hook,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_target_too_long_gets_the_414_page, setup_hook,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_released_request_gets_the_500_page, setup_hook,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_head_gets_the_page_length_and_no_body, setup_hook,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pages_that_could_break_framing_are_refused, setup_hook,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_without_a_hook_the_bodies_are_unchanged, setup_plain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_connection_gets_the_503_page, setup_busy,
                                        teardown),
    };

    return cmocka_run_group_tests_name("http/error_page", tests, NULL, NULL);
}
