/*
 * tests/http/test_strict.c - strict request handling end to end, over
 * socketpairs adopted by a server: an error response to HEAD has no body,
 * CONNECT is refused without reading its body, chunk lines end in CRLF and
 * chunk extensions follow their grammar (else 400 and a close), the method
 * reaches the handler as an enum, and max_body cannot exceed what the input
 * can buffer. The loop is driven with bounded run_once calls; nothing sleeps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#include "rawclient.h"
#include "testutil.h"

static struct {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct rc_client c;
    size_t requests, heads;
    enum hp_http_method method;
    bool down;
} S;

/* Answer "<method> <path> <body>". */
static int on_request(struct hp_http_req *req)
{
    char text[256];
    int n = snprintf(text, sizeof(text), "%.*s %.*s %.*s", (int)req->method.len, req->method.ptr,
                     (int)req->path.len, req->path.ptr, (int)req->body.len, req->body.ptr);

    S.requests++;
    S.method = req->method_id;
    if (req->path.len == 5 && memcmp(req->path.ptr, "/fail", 5) == 0)
        return -EIO; /* the server answers 500 */
    if (req->path.len == 4 && memcmp(req->path.ptr, "/big", 4) == 0) {
        /* More than the socket takes at once: the close waits for the write. */
        static char big[1 << 20];

        memset(big, 'b', sizeof(big));
        return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), big, sizeof(big));
    }
    if (req->path.len == 6 && memcmp(req->path.ptr, "/twice", 6) == 0) {
        /* Misuse: the request is gone after the first reply. */
        (void)hp_http_reply(req, 200, HP_STR_LIT("text/plain"), text, (size_t)n);
        return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), text, (size_t)n);
    }
    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), text, (size_t)n);
}

static int on_head(struct hp_http_req *req)
{
    (void)req;
    S.heads++;
    return 0;
}

static int setup(void **state)
{
    struct hp_http_server_opts opts = {
        .on_request = on_request, .on_head = on_head, .no_listen = true};

    (void)state;
    memset(&S, 0, sizeof(S));
    S.c.fd = -1;
    S.loop = hp_test_loop_new(NULL);
    return hp_http_server_new(&S.srv, S.loop, &opts);
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

/* Run the loop until the server closed the client's connection. */
static void run_until_closed(void)
{
    for (int i = 0; i < 2000 && !S.c.eof; i++) {
        rc_pump(&S.c);
        assert_true(hp_loop_run_once(S.loop, 5) >= 0);
        rc_pump(&S.c);
    }
    if (!S.c.eof)
        fail_msg("the server never closed the connection; got: %s", S.c.in ? S.c.in : "");
}

/* Send @p req on a new connection; the server must answer @p status once and close. */
static void expect_error_and_close(const char *req, size_t len, int status, bool head)
{
    struct rc_resp r;

    rc_close(&S.c, false);
    rc_open_adopted(&S.c, S.srv);
    rc_send(&S.c, req, len);
    rc_send_str(&S.c, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n"); /* must not be served */
    run_until_closed();
    if (!rc_next(&S.c, head, &r))
        fail_msg("no complete response; got: %s", S.c.in ? S.c.in : "");
    if (r.status != status)
        fail_msg("expected %d, got %d for %.*s", status, r.status, (int)(len < 60 ? len : 60), req);
    assert_true(r.close);
    rc_resp_free(&r);
    /* Nothing follows: no body after a HEAD response, no answer to what came after. */
    if (S.c.in_off != S.c.in_len)
        fail_msg("%zu bytes after the response: %s", S.c.in_len - S.c.in_off, S.c.in + S.c.in_off);
    assert_int_equal(S.requests, 0);
}

static void expect_ok(const char *req, const char *body)
{
    struct rc_resp r;
    bool got = false;

    rc_close(&S.c, false);
    rc_open_adopted(&S.c, S.srv);
    rc_send_str(&S.c, req);
    for (int i = 0; i < 2000 && !(got = rc_next(&S.c, false, &r)) && !S.c.eof; i++) {
        rc_pump(&S.c);
        assert_true(hp_loop_run_once(S.loop, 5) >= 0);
        rc_pump(&S.c);
    }
    if (!got)
        fail_msg("no response to %s; got: %s", req, S.c.in ? S.c.in : "");
    assert_int_equal(r.status, 200);
    if (strcmp(r.body, body) != 0)
        fail_msg("expected body '%s', got '%s'", body, r.body);
    rc_resp_free(&r);
}

#define SEND(s) s, sizeof(s) - 1

static void test_strict_error_response_to_head_has_no_body(void **state)
{
    (void)state;
    expect_error_and_close(SEND("HEAD / HTTP/1.1\r\nHost: t\r\nBad header\r\n\r\n"), 400, true);
    /* The same to GET does carry the explanation, so the check above can fail. */
    expect_error_and_close(SEND("GET / HTTP/1.1\r\nHost: t\r\nBad header\r\n\r\n"), 400, false);
    assert_true(strstr(S.c.in, "\r\n\r\n400 Bad Request") != NULL);
    /* A handler's failure to HEAD: the 500 has no body either. */
    rc_close(&S.c, false);
    rc_open_adopted(&S.c, S.srv);
    rc_send_str(&S.c, "HEAD /fail HTTP/1.1\r\nHost: t\r\n\r\n");
    run_until_closed();
    {
        struct rc_resp r;
        assert_true(rc_next(&S.c, true, &r));
        assert_int_equal(r.status, 500);
        assert_int_equal(S.c.in_off, S.c.in_len);
    }
    S.requests = 0;
    /* Any error status: a HEAD too large for the limits gets a head only as well. */
    {
        char big[12000];
        int n = snprintf(big, sizeof(big), "HEAD /%09000d HTTP/1.1\r\nHost: t\r\n\r\n", 0);
        expect_error_and_close(big, (size_t)n, 414, true);
    }
}

static void test_strict_connect_is_refused_with_501_and_its_body_is_not_read(void **state)
{
    static const char smuggled[] = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    char req[256];
    int n;

    (void)state;
    n = snprintf(req, sizeof(req),
                 "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 sizeof(smuggled) - 1, smuggled);
    expect_error_and_close(req, (size_t)n, 501, false);
    assert_int_equal(rc_count(&S.c, "HTTP/1.1 "), 1);
    assert_null(strstr(S.c.in, "smuggled"));
    assert_int_equal(S.heads, 0); /* no handler saw it, on_head included */
    /* Without a body, too. */
    expect_error_and_close(
        SEND("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 501, false);
}

static void test_strict_chunk_framing_errors_get_400_and_a_close(void **state)
{
    static const char *const bad[] = {
        "2\nab\r\n0\r\n\r\n",         /* bare LF after the size */
        "2\r\nab\n0\r\n\r\n",         /* bare LF after the data */
        "2;a=b\nab\r\n0\r\n\r\n",     /* bare LF after an extension */
        "2\r\nab\r\n0\n\r\n",         /* bare LF after the last chunk */
        "2;\r\nab\r\n0\r\n\r\n",      /* extension without a name */
        "2;=\r\nab\r\n0\r\n\r\n",     /* extension with an empty name */
        "2;a=\"x\r\nab\r\n0\r\n\r\n", /* unbalanced quoted value */
    };
    static const char head[] = "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    char req[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int n = snprintf(req, sizeof(req), "%s%s", head, bad[i]);
        expect_error_and_close(req, (size_t)n, 400, false);
    }
    /* Well-formed extensions are still fine. */
    expect_ok("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              "2;a=b\r\nab\r\n1;q=\"x y\";z\r\nc\r\n0\r\n\r\n",
              "POST /c abc");
    assert_int_equal(S.requests, 1);
}

static void test_strict_handler_sees_the_method_as_an_enum(void **state)
{
    static const struct {
        const char *req;
        enum hp_http_method id;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: t\r\n\r\n", HP_HTTP_GET},
        {"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", HP_HTTP_HEAD},
        {"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", HP_HTTP_POST},
        {"PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", HP_HTTP_PUT},
        {"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n", HP_HTTP_DELETE},
        {"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", HP_HTTP_OPTIONS},
        {"TRACE / HTTP/1.1\r\nHost: t\r\n\r\n", HP_HTTP_TRACE},
        {"PATCH / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", HP_HTTP_PATCH},
        {"PURGE / HTTP/1.1\r\nHost: t\r\n\r\n", HP_HTTP_OTHER},
        {"get / HTTP/1.1\r\nHost: t\r\n\r\n", HP_HTTP_OTHER}, /* methods are case-sensitive */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t before = S.requests;

        rc_close(&S.c, false);
        rc_open_adopted(&S.c, S.srv);
        S.method = (enum hp_http_method) - 1;
        rc_send_str(&S.c, cases[i].req);
        for (int k = 0; k < 2000 && S.requests == before; k++) {
            rc_pump(&S.c);
            assert_true(hp_loop_run_once(S.loop, 5) >= 0);
        }
        if (S.requests == before)
            fail_msg("never handled: %s", cases[i].req);
        if (S.method != cases[i].id)
            fail_msg("%s: method_id %d, expected %d", cases[i].req, (int)S.method,
                     (int)cases[i].id);
    }
}

static void test_strict_max_body_beyond_what_the_input_can_buffer_is_refused(void **state)
{
    const uint64_t cap = (uint64_t)1 << 30, head = 32768; /* the default max_header_bytes */
    struct hp_http_server_opts opts = {.on_request = on_request, .no_listen = true};
    struct hp_http_server *srv = NULL;
    uint64_t b = (cap - head - 16384) * 8 / 9;

    (void)state;
    /* The largest body whose head, body and chunk framing slack fit the 1 GiB input. */
    while (head + (b + 1) + (b + 1) / 8 + 16384 <= cap)
        b++;
    while (head + b + b / 8 + 16384 > cap)
        b--;
    opts.max_body = b;
    assert_int_equal(hp_http_server_new(&srv, S.loop, &opts), 0);
    assert_int_equal(hp_http_server_free(srv), 0);
    for (uint64_t big = b + 1; big != 0; big = big < ((uint64_t)1 << 40) ? big * 2 : 0) {
        srv = NULL;
        opts.max_body = big;
        assert_int_equal(hp_http_server_new(&srv, S.loop, &opts), -EINVAL);
        assert_null(srv);
    }
    /* A smaller head limit leaves room for a bigger body, never past 1 GiB in all. */
    opts.max_header_bytes = 1024;
    opts.max_body = b + 1000;
    assert_int_equal(hp_http_server_new(&srv, S.loop, &opts), 0);
    assert_int_equal(hp_http_server_free(srv), 0);
}

/*
 * Debug builds make a finished request's misuse loud: a second reply on it
 * dies (assertion, or ASan's use-after-free report) instead of answering
 * some other request. Run in a child process, which must not exit cleanly.
 */
/*
 * After a "Connection: close" request is answered, the server closes once the
 * response is written; a request the client sends meanwhile is not served.
 */
static void test_strict_request_after_a_decided_close_is_not_served(void **state)
{
    struct rc_resp r;

    (void)state;
    rc_open_adopted(&S.c, S.srv);
    rc_send_str(&S.c, "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 2000 && S.requests == 0; i++) {
        rc_pump(&S.c);
        assert_true(hp_loop_run_once(S.loop, 5) >= 0);
    }
    assert_int_equal(S.requests, 1); /* answered; the response is still being written */
    rc_send_str(&S.c, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    run_until_closed();
    assert_true(rc_next(&S.c, false, &r));
    assert_int_equal(r.status, 200);
    assert_true(r.close);
    rc_resp_free(&r);
    if (S.c.in_off != S.c.in_len)
        fail_msg("%zu bytes after the response", S.c.in_len - S.c.in_off);
    assert_int_equal(S.requests, 1);
}

static void test_strict_reply_after_finish_dies_in_debug_builds(void **state)
{
    pid_t pid;
    int status;

    (void)state;
#ifdef NDEBUG
    skip(); /* release builds recycle the block: the rule is the caller's */
#endif
    if (getenv("HP_TEST_VALGRIND") != NULL)
        skip(); /* the child's report would count as the parent's error under valgrind */
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct hp_http_server_opts opts = {.on_request = on_request, .no_listen = true};
        struct hp_loop *loop = hp_test_loop_new(NULL);
        struct hp_http_server *srv;
        struct rc_client c = {.fd = -1};

        if (hp_http_server_new(&srv, loop, &opts) != 0)
            _exit(3);
        rc_open_adopted(&c, srv);
        rc_send_str(&c, "GET /twice HTTP/1.1\r\nHost: t\r\n\r\n");
        for (int i = 0; i < 200; i++) {
            rc_pump(&c);
            (void)hp_loop_run_once(loop, 5);
        }
        _exit(0); /* survived the misuse: not loud */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* Killed by the assertion (SIGABRT), or ASan's report's exit status; 3 is a setup failure. */
    assert_true(WIFSIGNALED(status) ||
                (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_reply_after_finish_dies_in_debug_builds),
        cmocka_unit_test_setup_teardown(test_strict_error_response_to_head_has_no_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_strict_connect_is_refused_with_501_and_its_body_is_not_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_chunk_framing_errors_get_400_and_a_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_strict_request_after_a_decided_close_is_not_served,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_handler_sees_the_method_as_an_enum, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_strict_max_body_beyond_what_the_input_can_buffer_is_refused, setup, teardown),
    };

    if (getenv("CT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CT_FILTER"));
    return cmocka_run_group_tests_name("http/strict", tests, NULL, NULL);
}
