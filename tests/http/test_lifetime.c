/*
 * tests/http/test_lifetime.c - the request lifetime rules of http.h, end to
 * end over socketpairs (and loopback TCP for the random interleavings): a
 * handler holds its request until it finishes it; a late call on a request
 * whose client left, whose server shut down or which got on_abort returns
 * HP_ECLOSED and reaches no one (not the next client on a recycled block);
 * release; views that stay put while the client pipelines more; back-
 * pressure with the drain callback and the bounded output queue; the
 * per-request arena; and thousands of random interleavings. The loop is
 * driven with bounded hp_loop_run_once() calls; nothing sleeps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#include "rawclient.h"
#include "testutil.h"

#define NCLIENTS 8
#define NHELD    16

/* ---- fixture ----------------------------------------------------------- */

static struct {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct rc_client c[NCLIENTS];
    bool down;
    uint64_t down_at; /* loop time of the shutdown callback */
    struct hp_http_req *held[NHELD];
    size_t nheld, nrequests;
    size_t aborts;
    int abort_status;
    struct hp_http_req *aborted; /* the last request on_abort got */
    uint64_t abort_at;
    struct hp_timer timer;
    hp_timer_cb *timer_fn;
    int late_rc; /* what the late call returned */
    bool late_done;
    uint64_t late_at;
} T;

static inline bool valgrind(void)
{
    return getenv("HP_TEST_VALGRIND") != NULL;
}

static void on_fixture_timer(struct hp_timer *t)
{
    (void)t;
    T.timer_fn(&T.timer);
}

static void start_server(struct hp_http_server_opts *opts)
{
    for (int i = 0; i < NCLIENTS; i++)
        rc_close(&T.c[i], false);
    memset(&T, 0, sizeof(T));
    for (int i = 0; i < NCLIENTS; i++)
        T.c[i].fd = -1;
    T.loop = hp_test_loop_new(NULL);
    hp_timer_init(T.loop, &T.timer, on_fixture_timer);
    assert_int_equal(hp_http_server_new(&T.srv, T.loop, opts), 0);
}

static void pump_all(void)
{
    for (int i = 0; i < NCLIENTS; i++)
        rc_pump(&T.c[i]);
}

/* One bounded loop iteration with the clients pumped around it; fails after @p deadline. */
static void step(uint64_t deadline, const char *what)
{
    int n;

    pump_all();
    if ((n = hp_loop_run_once(T.loop, 5)) < 0)
        fail_msg("hp_loop_run_once: %s", hp_strerror(n));
    pump_all();
    if (hp_loop_now(T.loop) > deadline)
        fail_msg("not reached within %d ms: %s", HP_TEST_DEADLINE_MS, what);
}

static uint64_t deadline_from_now(void)
{
    hp_loop_update_time(T.loop);
    return hp_loop_now(T.loop) + HP_TEST_DEADLINE_MS;
}

#define RUN_UNTIL(cond)                     \
    do {                                    \
        uint64_t dl_ = deadline_from_now(); \
        while (!(cond))                     \
            step(dl_, #cond);               \
    } while (0)

/* Run the loop (and the clients) for @p ms of loop time. */
static void run_for(unsigned ms)
{
    uint64_t end = deadline_from_now() - HP_TEST_DEADLINE_MS + ms;

    while (hp_loop_now(T.loop) < end)
        step(end + 1000, "run_for");
}

static void on_down(struct hp_http_server *srv)
{
    (void)srv;
    assert_false(T.down); /* exactly once */
    T.down = true;
    T.down_at = hp_loop_now(T.loop);
}

/* Close the clients, shut the server down, free everything: it must all go. */
static void stop_server(void)
{
    for (int i = 0; i < NCLIENTS; i++)
        rc_close(&T.c[i], false);
    hp_http_server_shutdown(T.srv, 0, on_down);
    RUN_UNTIL(T.down);
    assert_int_equal(hp_http_server_free(T.srv), 0);
    hp_timer_stop(&T.timer);
    hp_test_loop_free(T.loop);
    T.loop = NULL;
}

/* Start the fixture timer: @p fn runs from it after @p ms. */
static void later(unsigned ms, hp_timer_cb *fn)
{
    T.timer_fn = fn;
    assert_int_equal(hp_timer_start(&T.timer, ms, 0), 0);
}

static bool path_is(const struct hp_http_req *req, const char *p)
{
    return req->path.len == strlen(p) && memcmp(req->path.ptr, p, req->path.len) == 0;
}

/* Hold every request. */
static int on_hold(struct hp_http_req *req)
{
    assert_true(T.nheld < NHELD);
    T.held[T.nheld++] = req;
    T.nrequests++;
    return 0;
}

static void on_abort_record(struct hp_http_req *req, int status)
{
    T.aborts++;
    T.abort_status = status;
    T.aborted = req;
    T.abort_at = hp_loop_now(T.loop);
}

/* The next complete response of client @p i, which must arrive. */
static void expect_response(int i, bool head, struct rc_resp *r)
{
    RUN_UNTIL(rc_next(&T.c[i], head, r) || T.c[i].eof);
    if (r->len == 0 && !rc_next(&T.c[i], head, r))
        fail_msg("client %d: connection closed before a complete response; got: %s", i,
                 T.c[i].in ? T.c[i].in : "");
}

static void send_get(int i, const char *path)
{
    char line[256];

    snprintf(line, sizeof(line), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    rc_send_str(&T.c[i], line);
}

/* ---- 1. a late reply never reaches the next client --------------------- */

static void late_reply_first(struct hp_timer *t)
{
    (void)t;
    T.late_rc = hp_http_reply(T.held[0], 200, HP_STR_LIT("text/plain"), "for client one", 14);
    T.late_done = true;
}

static void test_lifetime_late_reply_after_the_client_left_reaches_no_one(void **state)
{
    struct hp_http_server_opts opts = {.on_request = on_hold, .no_listen = true};
    struct rc_resp r;

    (void)state;
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    send_get(0, "/one");
    RUN_UNTIL(T.nheld == 1);

    /* Client one leaves; client two connects and its request is held too. */
    rc_close(&T.c[0], false);
    RUN_UNTIL(hp_http_server_connections(T.srv) == 0);
    rc_open_adopted(&T.c[1], T.srv);
    send_get(1, "/two");
    RUN_UNTIL(T.nheld == 2);
    assert_true(path_is(T.held[1], "/two"));

    /* The first handler answers late, from a timer. */
    later(1, late_reply_first);
    RUN_UNTIL(T.late_done);
    assert_int_equal(T.late_rc, HP_ECLOSED);
    run_for(30);
    assert_int_equal(T.c[1].in_len, 0); /* nothing of client one's response */
    assert_false(T.c[1].eof);

    /* Client two's own answer arrives intact, and alone. */
    assert_true(path_is(T.held[1], "/two"));
    assert_int_equal(hp_http_reply(T.held[1], 200, HP_STR_LIT("text/plain"), "two", 3), 0);
    expect_response(1, false, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 3);
    assert_memory_equal(r.body, "two", 3);
    rc_resp_free(&r);
    run_for(20);
    assert_int_equal(T.c[1].in_off, T.c[1].in_len);
    assert_int_equal(rc_count(&T.c[1], "for client one"), 0);
    stop_server();
}

/* The same with many clients in turn: every late reply is refused, every live one is right. */
static void test_lifetime_late_replies_never_cross_connections(void **state)
{
    struct hp_http_server_opts opts = {.on_request = on_hold, .no_listen = true};
    struct rc_resp r;

    (void)state;
    start_server(&opts);
    for (int round = 0; round < 6; round++) {
        int old = round % 2, cur = 1 - old;
        char path[32];

        T.nheld = 0;
        rc_open_adopted(&T.c[old], T.srv);
        snprintf(path, sizeof(path), "/gone/%d", round);
        send_get(old, path);
        RUN_UNTIL(T.nheld == 1);
        rc_close(&T.c[old], round % 3 == 0);
        RUN_UNTIL(hp_http_server_connections(T.srv) == 0);
        rc_open_adopted(&T.c[cur], T.srv);
        snprintf(path, sizeof(path), "/live/%d", round);
        send_get(cur, path);
        RUN_UNTIL(T.nheld == 2);
        assert_int_equal(hp_http_reply(T.held[0], 200, HP_STR_LIT(""), "stale", 5), HP_ECLOSED);
        assert_int_equal(hp_http_reply(T.held[1], 200, HP_STR_LIT(""), path, strlen(path)), 0);
        expect_response(cur, false, &r);
        assert_int_equal(r.body_len, strlen(path));
        assert_memory_equal(r.body, path, r.body_len);
        rc_resp_free(&r);
        assert_int_equal(rc_count(&T.c[cur], "stale"), 0);
        rc_close(&T.c[cur], false);
        RUN_UNTIL(hp_http_server_connections(T.srv) == 0);
    }
    stop_server();
}

/* ---- 2. a late reply after the server shut down ------------------------ */

static void late_reply_held(struct hp_timer *t)
{
    (void)t;
    assert_false(T.down); /* the shutdown waits for the handler */
    T.late_rc = hp_http_reply(T.held[0], 200, HP_STR_LIT("text/plain"), "late", 4);
    T.late_done = true;
    T.late_at = hp_loop_now(T.loop);
}

static void shutdown_with_a_held_request(uint32_t grace)
{
    struct hp_http_server_opts opts = {
        .on_request = on_hold, .on_abort = on_abort_record, .no_listen = true};
    uint64_t t0;

    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    send_get(0, "/held");
    RUN_UNTIL(T.nheld == 1);
    t0 = hp_loop_now(T.loop);
    hp_http_server_shutdown(T.srv, grace, on_down);
    RUN_UNTIL(T.aborts == 1);
    assert_int_equal(T.abort_status, -ECANCELED);
    assert_ptr_equal(T.aborted, T.held[0]);
    assert_true(T.abort_at >= t0 + grace);
    assert_true(hp_http_req_closed(T.held[0]));
    RUN_UNTIL(T.c[0].eof); /* the connection is closed ... */
    assert_int_equal(T.c[0].in_len, 0);
    run_for(30);
    assert_false(T.down); /* ... but the shutdown waits for the handler */
    assert_int_equal(hp_http_server_free(T.srv), -EBUSY);
    assert_true(path_is(T.held[0], "/held")); /* still valid */

    later(5, late_reply_held);
    RUN_UNTIL(T.down);
    assert_true(T.late_done);
    assert_int_equal(T.late_rc, HP_ECLOSED);
    assert_true(T.down_at >= T.late_at);
    assert_int_equal(T.aborts, 1);
    assert_int_equal(hp_http_server_free(T.srv), 0);
    hp_test_loop_free(T.loop);
    T.loop = NULL;
}

static void test_lifetime_late_reply_after_shutdown_without_grace(void **state)
{
    (void)state;
    shutdown_with_a_held_request(0);
}

static void test_lifetime_late_reply_after_shutdown_after_grace(void **state)
{
    (void)state;
    shutdown_with_a_held_request(60);
}

static void reply_in_grace(struct hp_timer *t)
{
    (void)t;
    T.late_rc = hp_http_reply(T.held[0], 200, HP_STR_LIT("text/plain"), "in time", 7);
    T.late_done = true;
}

/* The other side of grace: a reply within it goes out, with Connection: close. */
static void test_lifetime_reply_within_the_grace_period_is_sent(void **state)
{
    struct hp_http_server_opts opts = {
        .on_request = on_hold, .on_abort = on_abort_record, .no_listen = true};
    struct rc_resp r;

    (void)state;
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    send_get(0, "/held");
    RUN_UNTIL(T.nheld == 1);
    hp_http_server_shutdown(T.srv, 5000, on_down);
    later(10, reply_in_grace);
    RUN_UNTIL(T.late_done);
    assert_int_equal(T.late_rc, 0);
    expect_response(0, false, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.close);
    assert_memory_equal(r.body, "in time", 7);
    rc_resp_free(&r);
    RUN_UNTIL(T.down);
    assert_int_equal(T.aborts, 0);
    assert_int_equal(hp_http_server_free(T.srv), 0);
    hp_test_loop_free(T.loop);
    T.loop = NULL;
}

/* ---- 3. calls after on_abort ------------------------------------------- */

/* What a handler saw, pointers and bytes. */
struct view {
    struct hp_str s;
    char copy[256];
};

static void view_save(struct view *v, struct hp_str s)
{
    assert_true(s.len < sizeof(v->copy));
    v->s = s;
    memcpy(v->copy, s.ptr, s.len);
}

static void view_check(const struct view *v, struct hp_str now)
{
    assert_ptr_equal(now.ptr, v->s.ptr);
    assert_int_equal(now.len, v->s.len);
    assert_memory_equal(v->s.ptr, v->copy, v->s.len);
}

static struct {
    struct view method, target, path, query, tag, name0, value0;
    bool stream;
    int drain_status;
    size_t drains;
} V;

static int on_hold_and_look(struct hp_http_req *req)
{
    struct hp_str v, n;

    view_save(&V.method, req->method);
    view_save(&V.target, req->target);
    view_save(&V.path, req->path);
    view_save(&V.query, req->query);
    assert_true(hp_http_req_header(req, "x-tag", &v));
    view_save(&V.tag, v);
    assert_true(hp_http_req_header_at(req, 0, &n, &v));
    view_save(&V.name0, n);
    view_save(&V.value0, v);
    assert_false(hp_http_req_closed(req));
    if (V.stream) {
        assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT("text/plain"), -1), 0);
        assert_int_equal(hp_http_stream_write(req, "begun", 5), 0);
    }
    return on_hold(req);
}

static void check_views(struct hp_http_req *req)
{
    struct hp_str v, n;

    view_check(&V.method, req->method);
    view_check(&V.target, req->target);
    view_check(&V.path, req->path);
    view_check(&V.query, req->query);
    assert_true(hp_http_req_header(req, "X-Tag", &v));
    view_check(&V.tag, v);
    assert_true(hp_http_req_header_at(req, 0, &n, &v));
    view_check(&V.name0, n);
    view_check(&V.value0, v);
    assert_memory_equal(V.path.copy, "/some/where", 11);
    assert_memory_equal(V.query.copy, "a=1&b=two", 9);
    assert_memory_equal(V.tag.copy, "tagged", 6);
}

static void on_drain_record(struct hp_http_req *req, int status)
{
    (void)req;
    V.drains++;
    V.drain_status = status;
}

static void late_after_abort(struct hp_timer *t)
{
    struct hp_http_req *req = T.held[0];

    (void)t;
    check_views(req);
    assert_true(hp_http_req_closed(req));
    assert_int_equal(hp_http_req_queued(req), 0);
    assert_int_equal(hp_http_add_header(req, HP_STR_LIT("X-Late"), HP_STR_LIT("1")), HP_ECLOSED);
    assert_int_equal(hp_http_req_on_drain(req, 0, on_drain_record), HP_ECLOSED);
    assert_int_equal(hp_http_stream_write(req, "more", 4), HP_ECLOSED);
    if (V.stream) {
        T.late_rc = hp_http_stream_end(req);
    } else {
        assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT(""), -1), HP_ECLOSED);
        T.late_rc = hp_http_reply(req, 200, HP_STR_LIT("text/plain"), "late", 4);
    }
    T.late_done = true;
}

static void calls_after_abort(bool stream)
{
    struct hp_http_server_opts opts = {
        .on_request = on_hold_and_look, .on_abort = on_abort_record, .no_listen = true};

    memset(&V, 0, sizeof(V));
    V.stream = stream;
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    rc_send_str(&T.c[0], "GET /some/where?a=1&b=two HTTP/1.1\r\nHost: t\r\nX-Tag: tagged\r\n\r\n");
    RUN_UNTIL(T.nheld == 1);
    if (stream)
        RUN_UNTIL(rc_count(&T.c[0], "begun") == 1);
    rc_close(&T.c[0], false);
    RUN_UNTIL(T.aborts == 1);
    assert_true(T.abort_status < 0);
    assert_ptr_equal(T.aborted, T.held[0]);
    assert_true(hp_http_req_closed(T.held[0]));
    check_views(T.held[0]);
    later(20, late_after_abort);
    RUN_UNTIL(T.late_done);
    assert_int_equal(T.late_rc, HP_ECLOSED);
    assert_int_equal(V.drains, 0); /* refused: never runs */
    assert_int_equal(T.aborts, 1);
    stop_server();
}

static void test_lifetime_calls_after_on_abort_return_eclosed(void **state)
{
    (void)state;
    calls_after_abort(false);
}

static void test_lifetime_stream_calls_after_on_abort_return_eclosed(void **state)
{
    (void)state;
    calls_after_abort(true);
}

/* ---- 4. release -------------------------------------------------------- */

enum rel_mode { REL_IN_CALL, REL_LATER, REL_STREAM_LATER };

static enum rel_mode rel_mode;

static int on_release(struct hp_http_req *req)
{
    T.nrequests++;
    if (rel_mode == REL_IN_CALL) {
        hp_http_req_release(req);
        return 0;
    }
    if (rel_mode == REL_STREAM_LATER) {
        assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT("text/plain"), -1), 0);
        assert_int_equal(hp_http_stream_write(req, "partial", 7), 0);
    }
    T.held[T.nheld++] = req;
    return 0;
}

static void release_later(struct hp_timer *t)
{
    (void)t;
    /* A pending drain callback is cancelled first, inside the release. */
    assert_int_equal(hp_http_req_on_drain(T.held[0], 0, on_drain_record), 0);
    hp_http_req_release(T.held[0]);
    assert_int_equal(V.drains, 1);
    assert_int_equal(V.drain_status, -ECANCELED);
    T.late_done = true;
}

static void release(enum rel_mode mode)
{
    struct hp_http_server_opts opts = {
        .on_request = on_release, .on_abort = on_abort_record, .no_listen = true};
    struct rc_resp r;

    memset(&V, 0, sizeof(V));
    rel_mode = mode;
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    send_get(0, "/first");
    send_get(0, "/second"); /* pipelined: never answered, the connection closes */
    if (mode == REL_IN_CALL) {
        RUN_UNTIL(T.nrequests == 1);
    } else {
        RUN_UNTIL(T.nheld == 1);
        later(10, release_later);
        RUN_UNTIL(T.late_done);
    }
    RUN_UNTIL(T.c[0].eof);
    if (mode == REL_STREAM_LATER) {
        /* Cut off: the head and the first chunk, but never the last chunk. */
        assert_int_equal(rc_parse(T.c[0].in, T.c[0].in_len, false, &r), 0);
        assert_true(strncmp(T.c[0].in, "HTTP/1.1 200 OK\r\n", 17) == 0);
        assert_non_null(strstr(T.c[0].in, "\r\n\r\n7\r\npartial\r\n"));
        assert_null(strstr(T.c[0].in, "\r\n0\r\n\r\n"));
    } else {
        assert_true(rc_next(&T.c[0], false, &r));
        assert_int_equal(r.status, 500);
        assert_true(r.close);
        rc_resp_free(&r);
        assert_int_equal(T.c[0].in_off, T.c[0].in_len); /* nothing after it */
    }
    assert_int_equal(T.nrequests, 1);
    run_for(10);
    assert_int_equal(T.aborts, 0); /* it was given up: nothing to tell */
    stop_server();
    assert_int_equal(T.aborts, 0);
}

static void test_lifetime_release_inside_the_handler_answers_500(void **state)
{
    (void)state;
    release(REL_IN_CALL);
}

static void test_lifetime_release_later_answers_500(void **state)
{
    (void)state;
    release(REL_LATER);
}

static void test_lifetime_release_later_cuts_a_started_stream(void **state)
{
    (void)state;
    release(REL_STREAM_LATER);
}

/* ---- 5. views stay put ------------------------------------------------- */

static uint32_t body_sum(const char *p, size_t n)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < n; i++)
        sum = sum * 31 + (unsigned char)p[i];
    return sum;
}

static void fill_pattern(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('A' + (i * 7 + seed) % 53);
}

static struct {
    struct view head_second, head_name1, head_value1; /* saved in on_head */
    struct view method, target, path, query, first, second, name0, value0;
    struct hp_str body;
    char *body_copy;
    struct hp_http_req *req;
    bool on_head_seen;
} W;

static void save_body(struct hp_http_req *req)
{
    W.body = req->body;
    W.body_copy = malloc(req->body.len + 1);
    assert_non_null(W.body_copy);
    memcpy(W.body_copy, req->body.ptr, req->body.len);
}

static int views_on_head(struct hp_http_req *req)
{
    struct hp_str n, v;

    if (!path_is(req, "/held"))
        return 0;
    W.on_head_seen = true;
    assert_true(hp_http_req_header(req, "X-Second", &v));
    view_save(&W.head_second, v);
    assert_true(hp_http_req_header_at(req, 1, &n, &v));
    view_save(&W.head_name1, n);
    view_save(&W.head_value1, v);
    return 0; /* buffer the body, then on_request */
}

static void check_head_views(struct hp_http_req *req)
{
    struct hp_str n, v;

    assert_true(hp_http_req_header(req, "x-second", &v));
    view_check(&W.head_second, v);
    assert_true(hp_http_req_header_at(req, 1, &n, &v));
    view_check(&W.head_name1, n);
    view_check(&W.head_value1, v);
    assert_memory_equal(W.head_second.copy, "second value", 12);
}

static void check_held_views(struct hp_http_req *req)
{
    struct hp_str n, v;

    check_head_views(req);
    view_check(&W.method, req->method);
    view_check(&W.target, req->target);
    view_check(&W.path, req->path);
    view_check(&W.query, req->query);
    assert_true(hp_http_req_header(req, "X-First", &v));
    view_check(&W.first, v);
    assert_true(hp_http_req_header(req, "X-Second", &v));
    view_check(&W.second, v);
    assert_true(hp_http_req_header_at(req, 0, &n, &v));
    view_check(&W.name0, n);
    view_check(&W.value0, v);
    assert_ptr_equal(req->body.ptr, W.body.ptr);
    assert_int_equal(req->body.len, W.body.len);
    assert_memory_equal(W.body.ptr, W.body_copy, W.body.len);
    /* W.head_* were saved before the body was buffered: they must still hold. */
}

/* Answer with "<path> <body length> <body sum>". */
static int reply_summary(struct hp_http_req *req)
{
    char text[128];
    int n = snprintf(text, sizeof(text), "%.*s %zu %08x", (int)req->path.len, req->path.ptr,
                     req->body.len, body_sum(req->body.ptr, req->body.len));

    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), text, (size_t)n);
}

static int views_on_request(struct hp_http_req *req)
{
    struct hp_str n, v;

    T.nrequests++;
    if (!path_is(req, "/held"))
        return reply_summary(req);
    assert_true(W.on_head_seen);
    check_head_views(req);
    view_save(&W.method, req->method);
    view_save(&W.target, req->target);
    view_save(&W.path, req->path);
    view_save(&W.query, req->query);
    assert_true(hp_http_req_header(req, "X-First", &v));
    view_save(&W.first, v);
    assert_true(hp_http_req_header(req, "X-Second", &v));
    view_save(&W.second, v);
    assert_true(hp_http_req_header_at(req, 0, &n, &v));
    view_save(&W.name0, n);
    view_save(&W.value0, v);
    save_body(req);
    W.req = req;
    return 0;
}

/* Queue a POST of @p len pattern bytes, chunked in pieces of up to @p piece, or with a length. */
static void send_post(int i, const char *path, size_t len, unsigned seed, size_t piece)
{
    char *body = malloc(len + 1);
    char line[256];

    assert_non_null(body);
    fill_pattern(body, len, seed);
    if (piece == 0) {
        snprintf(line, sizeof(line), "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                 path, len);
        rc_send_str(&T.c[i], line);
        rc_send(&T.c[i], body, len);
    } else {
        snprintf(line, sizeof(line),
                 "POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", path);
        rc_send_str(&T.c[i], line);
        for (size_t off = 0; off < len;) {
            size_t n = len - off < piece ? len - off : piece;
            snprintf(line, sizeof(line), "%zx\r\n", n);
            rc_send_str(&T.c[i], line);
            rc_send(&T.c[i], body + off, n);
            rc_send_str(&T.c[i], "\r\n");
            off += n;
            piece = piece * 3 / 2 + 1; /* pieces of varying sizes */
        }
        rc_send_str(&T.c[i], "0\r\n\r\n");
    }
    free(body);
}

static void expect_summary(int i, const char *path, size_t len, unsigned seed)
{
    char want[128], *body = malloc(len + 1);
    struct rc_resp r;

    assert_non_null(body);
    fill_pattern(body, len, seed);
    snprintf(want, sizeof(want), "%s %zu %08x", path, len, len ? body_sum(body, len) : 0u);
    free(body);
    expect_response(i, false, &r);
    assert_int_equal(r.status, 200);
    if (r.body_len != strlen(want) || memcmp(r.body, want, r.body_len) != 0)
        fail_msg("expected '%s', got '%s'", want, r.body);
    rc_resp_free(&r);
}

static void views_stay_put(bool chunked)
{
    struct hp_http_server_opts opts = {
        .on_request = views_on_request, .on_head = views_on_head, .no_listen = true};
    static const char head[] = "POST /held?alpha=1&beta=two HTTP/1.1\r\nHost: t\r\n"
                               "X-First: first value\r\nX-Second: second value\r\n";
    char body[3000], line[64];

    memset(&W, 0, sizeof(W));
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    fill_pattern(body, sizeof(body), 1);
    /* The held request arrives in pieces: head in two, body in three. */
    rc_send(&T.c[0], head, 30);
    run_for(5);
    rc_send_str(&T.c[0], head + 30);
    if (chunked) {
        rc_send_str(&T.c[0], "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t off = 0; off < sizeof(body); off += 1000) {
            snprintf(line, sizeof(line), "3e8;ext=\"v\"\r\n");
            rc_send_str(&T.c[0], line);
            rc_send(&T.c[0], body + off, 1000);
            rc_send_str(&T.c[0], "\r\n");
            run_for(5);
        }
        rc_send_str(&T.c[0], "0\r\n\r\n");
    } else {
        rc_send_str(&T.c[0], "Content-Length: 3000\r\n\r\n");
        for (size_t off = 0; off < sizeof(body); off += 1000) {
            rc_send(&T.c[0], body + off, 1000);
            run_for(5);
        }
    }
    RUN_UNTIL(W.req != NULL);
    assert_memory_equal(W.path.copy, "/held", 5);
    assert_memory_equal(W.query.copy, "alpha=1&beta=two", 16);
    assert_int_equal(W.body.len, sizeof(body));
    assert_memory_equal(W.body_copy, body, sizeof(body));

    /* Pipelined behind it, small and large, in many writes: the input moves on. */
    send_get(0, "/p1");
    send_post(0, "/p2", 200 * 1024, 2, 0);
    send_get(0, "/p3?x=y");
    send_post(0, "/p4", 200 * 1024, 4, 3000);
    send_post(0, "/p5", 17, 5, 0);
    send_get(0, "/p6");
    RUN_UNTIL(rc_unsent(&T.c[0]) == 0);
    run_for(30);
    assert_int_equal(T.nrequests, 1); /* all of it waits behind the held request */
    check_held_views(W.req);

    /* Now the answer goes out, then the pipelined requests are served in order. */
    assert_int_equal(reply_summary(W.req), 0);
    expect_summary(0, "/held", sizeof(body), 1);
    expect_summary(0, "/p1", 0, 0);
    expect_summary(0, "/p2", 200 * 1024, 2);
    expect_summary(0, "/p3", 0, 0);
    expect_summary(0, "/p4", 200 * 1024, 4);
    expect_summary(0, "/p5", 17, 5);
    expect_summary(0, "/p6", 0, 0);
    free(W.body_copy);
    stop_server();
}

static void test_lifetime_views_stay_put_while_the_client_pipelines(void **state)
{
    (void)state;
    views_stay_put(false);
}

static void test_lifetime_views_of_a_chunked_body_stay_put_while_the_client_pipelines(void **state)
{
    (void)state;
    views_stay_put(true);
}

/* ---- 9. the per-request arena ------------------------------------------ */

/* A counting allocator for the server: live bytes, so frees can be seen. */
static struct {
    size_t live;
} M;

static void *count_realloc(void *ctx, void *p, size_t n)
{
    size_t *h = p ? (size_t *)p - 2 : NULL, old = h ? h[0] : 0;

    (void)ctx;
    if (n == 0) {
        M.live -= old;
        free(h);
        return NULL;
    }
    h = realloc(h, n + 2 * sizeof(size_t));
    if (h == NULL)
        return NULL;
    h[0] = n;
    M.live = M.live - old + n;
    return h + 2;
}

static void count_free(void *ctx, void *p)
{
    size_t *h = p ? (size_t *)p - 2 : NULL;

    (void)ctx;
    if (h == NULL)
        return;
    M.live -= h[0];
    free(h);
}

#define NALLOC 260

static struct {
    unsigned char *p[NALLOC];
    size_t n[NALLOC];
    struct hp_http_req *req;
} A;

static size_t alloc_size(size_t i)
{
    if (i == NALLOC - 1)
        return 3u << 20; /* big */
    if (i == NALLOC - 2)
        return 70000;
    if (i == NALLOC - 3)
        return 4096;
    return 1 + (i * 97) % 500;
}

static void check_allocations(void)
{
    for (size_t i = 0; i < NALLOC; i++) {
        for (size_t k = 0; k < A.n[i]; k++) {
            if (A.p[i][k] != (unsigned char)(i * 13 + 1))
                fail_msg("allocation %zu (%zu bytes) overwritten at %zu", i, A.n[i], k);
        }
    }
}

/* Memory from on_head stays when the request is handed back to on_request. */
static int alloc_on_head(struct hp_http_req *req)
{
    unsigned char *p;

    if (!path_is(req, "/alloc"))
        return 0;
    p = hp_http_req_alloc(req, 1000);
    assert_non_null(p);
    memset(p, 0xa5, 1000);
    req->data = p;
    return 0;
}

static int alloc_on_request(struct hp_http_req *req)
{
    const unsigned char *from_head = req->data;

    T.nrequests++;
    if (!path_is(req, "/alloc"))
        return reply_summary(req);
    assert_non_null(from_head);
    for (size_t k = 0; k < 1000; k++)
        assert_int_equal(from_head[k], 0xa5);
    assert_null(hp_http_req_alloc(req, 0));
    assert_null(hp_http_req_alloc(req, ((size_t)1 << 30) + 1));
    for (size_t i = 0; i < NALLOC; i++) {
        A.n[i] = alloc_size(i);
        A.p[i] = hp_http_req_alloc(req, A.n[i]);
        assert_non_null(A.p[i]);
        if ((uintptr_t)A.p[i] % _Alignof(max_align_t) != 0)
            fail_msg("allocation %zu at %p is not aligned for any object", i, (void *)A.p[i]);
        memset(A.p[i], (int)((i * 13 + 1) & 0xff), A.n[i]);
    }
    check_allocations();
    A.req = req;
    return 0;
}

static void test_lifetime_request_arena_is_aligned_stays_and_is_freed_with_the_request(void **state)
{
    struct hp_http_server_opts opts = {
        .on_request = alloc_on_request,
        .on_head = alloc_on_head,
        .on_abort = on_abort_record,
        .no_listen = true,
        .alloc = {count_realloc, count_free, NULL},
    };
    size_t before;
    void *late;

    (void)state;
    memset(&A, 0, sizeof(A));
    memset(&M, 0, sizeof(M));
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    send_get(0, "/alloc");
    send_post(0, "/after", 100000, 9, 0);
    RUN_UNTIL(A.req != NULL);
    RUN_UNTIL(rc_unsent(&T.c[0]) == 0);
    run_for(20);
    check_allocations();
    before = M.live;
    assert_true(before >= (3u << 20));
    assert_int_equal(reply_summary(A.req), 0);
    expect_summary(0, "/alloc", 0, 0);
    expect_summary(0, "/after", 100000, 9);
    assert_true(M.live + (3u << 20) <= before); /* the big allocation went with the request */

    /* A closed request's arena still works, and goes when it is finished. */
    memset(&A, 0, sizeof(A));
    rc_close(&T.c[0], false);
    rc_open_adopted(&T.c[1], T.srv);
    send_get(1, "/alloc");
    RUN_UNTIL(A.req != NULL);
    rc_close(&T.c[1], false);
    RUN_UNTIL(T.aborts == 1);
    late = hp_http_req_alloc(A.req, 2u << 20);
    assert_non_null(late);
    memset(late, 0x5a, 2u << 20);
    check_allocations();
    before = M.live;
    assert_int_equal(hp_http_reply(A.req, 200, HP_STR_LIT(""), "x", 1), HP_ECLOSED);
    assert_true(M.live + (5u << 20) <= before);
    stop_server();
    assert_int_equal(M.live, 0); /* everything the server allocated is back */
}

/* ---- 7. back-pressure -------------------------------------------------- */

#define BP_MAX_OUTPUT (256u << 10)
#define BP_PIECE      16384u
#define BP_LOW        (64u << 10)

static struct {
    struct hp_http_req *req;
    size_t total; /* 0: endless */
    size_t written, max_queued, enobufs, drains_ok, drains_closed, finished;
    uint64_t request_at, last_write_at;
    char piece[BP_PIECE];
} B;

static void bp_fill(struct hp_http_req *req);

static void bp_drain(struct hp_http_req *req, int status)
{
    assert_ptr_equal(req, B.req);
    if (status == 0) {
        B.drains_ok++;
        assert_true(hp_http_req_queued(req) <= BP_LOW);
        bp_fill(req);
        return;
    }
    assert_int_equal(status, HP_ECLOSED);
    assert_int_equal(T.aborts, 0); /* before on_abort */
    B.drains_closed++;
}

/* Write until the queue is full (then wait for the drain) or the body is complete. */
static void bp_fill(struct hp_http_req *req)
{
    while (B.total == 0 || B.written < B.total) {
        int rc = hp_http_stream_write(req, B.piece, BP_PIECE);
        size_t q;

        if (rc == -ENOBUFS) {
            B.enobufs++;
            /* Refused once per wait: a drain callback never comes while it is still full. */
            assert_true(B.enobufs <= B.drains_ok + 1);
            assert_int_equal(hp_http_req_on_drain(req, BP_LOW, bp_drain), 0);
            return;
        }
        assert_int_equal(rc, 0);
        B.written += BP_PIECE;
        B.last_write_at = hp_loop_now(T.loop);
        if ((q = hp_http_req_queued(req)) > B.max_queued)
            B.max_queued = q;
    }
    assert_int_equal(hp_http_stream_end(req), 0);
    B.finished++;
}

static int bp_on_request(struct hp_http_req *req)
{
    T.nrequests++;
    B.req = req;
    B.request_at = hp_loop_now(T.loop);
    assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT("application/octet-stream"), -1), 0);
    bp_fill(req);
    return 0;
}

static void bp_on_abort(struct hp_http_req *req, int status)
{
    on_abort_record(req, status);
    assert_int_equal(B.drains_closed, 1); /* the drain callback heard it first */
    assert_int_equal(hp_http_stream_end(req), HP_ECLOSED);
    B.finished++;
}

static void bp_start(size_t total, uint32_t write_timeout_ms)
{
    struct hp_http_server_opts opts = {
        .on_request = bp_on_request,
        .on_abort = bp_on_abort,
        .no_listen = true,
        .write_timeout_ms = write_timeout_ms,
        .max_output = BP_MAX_OUTPUT,
    };

    memset(&B, 0, sizeof(B));
    B.total = total;
    for (size_t i = 0; i < BP_PIECE; i++)
        B.piece[i] = (char)('a' + i % 26);
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
}

static void test_lifetime_stalled_reader_is_bounded_then_cut_by_the_write_timeout(void **state)
{
    (void)state;
    bp_start(0, 300); /* endless */
    T.c[0].deaf = true;
    send_get(0, "/endless");
    RUN_UNTIL(T.aborts == 1);
    assert_int_equal(T.abort_status, -ETIMEDOUT);
    assert_int_equal(B.drains_closed, 1);
    assert_int_equal(B.finished, 1);
    assert_true(B.enobufs >= 1);
    /* Queued output stayed within max_output and one piece (with its chunk framing). */
    if (B.max_queued > BP_MAX_OUTPUT + BP_PIECE + 32)
        fail_msg("%zu bytes queued, over the bound", B.max_queued);
    /* Cut by the write timeout (300 ms, armed after the request came in), not much later. */
    assert_true(T.abort_at >= B.request_at + 300);
    assert_true(T.abort_at <= B.last_write_at + 5000);
    run_for(10);
    assert_int_equal(T.aborts, 1);
    stop_server();
}

static void test_lifetime_reading_client_gets_the_stream_paced_by_drain_callbacks(void **state)
{
    size_t total = (valgrind() ? 1u : 8u) << 20;
    struct rc_resp r;

    (void)state;
    bp_start(total, 10000); /* a reader slowed by a loaded machine is not cut */
    send_get(0, "/big");
    expect_response(0, false, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(B.finished, 1);
    assert_int_equal(r.body_len, total);
    for (size_t i = 0; i < r.body_len; i++) {
        if (r.body[i] != (char)('a' + i % BP_PIECE % 26))
            fail_msg("body byte %zu is wrong", i);
    }
    rc_resp_free(&r);
    assert_true(B.drains_ok >= 1);
    assert_true(B.enobufs <= B.drains_ok + 1);
    assert_int_equal(B.drains_closed, 0);
    assert_int_equal(T.aborts, 0);
    if (B.max_queued > BP_MAX_OUTPUT + BP_PIECE + 32)
        fail_msg("%zu bytes queued, over the bound", B.max_queued);
    stop_server();
}

/* A request finished from its HP_ECLOSED drain callback is gone: no on_abort for it. */
static void finish_in_drain(struct hp_http_req *req, int status)
{
    assert_int_equal(status, HP_ECLOSED);
    assert_int_equal(T.aborts, 0);
    B.drains_closed++;
    assert_int_equal(hp_http_stream_end(req), HP_ECLOSED);
    B.finished++;
}

static int finish_in_drain_on_request(struct hp_http_req *req)
{
    T.nrequests++;
    assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT(""), -1), 0);
    for (;;) {
        int rc = hp_http_stream_write(req, B.piece, BP_PIECE);
        if (rc == -ENOBUFS)
            break;
        assert_int_equal(rc, 0);
    }
    assert_int_equal(hp_http_req_on_drain(req, 0, finish_in_drain), 0);
    return 0;
}

static void test_lifetime_request_finished_in_its_drain_callback_gets_no_on_abort(void **state)
{
    struct hp_http_server_opts opts = {
        .on_request = finish_in_drain_on_request,
        .on_abort = on_abort_record,
        .no_listen = true,
        .write_timeout_ms = 200,
        .max_output = BP_MAX_OUTPUT,
    };

    (void)state;
    memset(&B, 0, sizeof(B));
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    T.c[0].deaf = true;
    send_get(0, "/stalled");
    RUN_UNTIL(B.finished == 1);
    assert_int_equal(B.drains_closed, 1);
    run_for(20);
    assert_int_equal(T.aborts, 0);
    stop_server();
    assert_int_equal(T.aborts, 0);
}

/* Many small pieces to a stalled reader: the memory behind them stays bounded too. */
static struct hp_timer tiny_timer;
static size_t tiny_pieces;

static void tiny_fill(struct hp_http_req *req);

static void tiny_drain(struct hp_http_req *req, int status)
{
    if (status == 0)
        tiny_fill(req);
}

static void tiny_fill(struct hp_http_req *req)
{
    for (;;) {
        int rc = hp_http_stream_write(req, "x", 1); /* outside any handler call */

        if (rc == -ENOBUFS) {
            assert_int_equal(hp_http_req_on_drain(req, 0, tiny_drain), 0);
            return;
        }
        assert_int_equal(rc, 0);
        tiny_pieces++;
    }
}

static void tiny_fire(struct hp_timer *t)
{
    (void)t;
    tiny_fill(T.held[0]);
}

static int tiny_on_request(struct hp_http_req *req)
{
    assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT(""), -1), 0);
    assert_int_equal(hp_timer_start(&tiny_timer, 1, 0), 0);
    return on_hold(req);
}

static void tiny_on_abort(struct hp_http_req *req, int status)
{
    on_abort_record(req, status);
    assert_int_equal(hp_http_stream_end(req), HP_ECLOSED);
}

static void test_lifetime_tiny_pieces_to_a_stalled_reader_keep_memory_bounded(void **state)
{
    struct hp_http_server_opts opts = {
        .on_request = tiny_on_request,
        .on_abort = tiny_on_abort,
        .no_listen = true,
        .write_timeout_ms = 300,
        .max_output = 64u << 10,
        .alloc = {count_realloc, count_free, NULL},
    };
    size_t peak = 0;

    (void)state;
    memset(&M, 0, sizeof(M));
    tiny_pieces = 0;
    start_server(&opts);
    hp_timer_init(T.loop, &tiny_timer, tiny_fire);
    rc_open_adopted(&T.c[0], T.srv);
    T.c[0].deaf = true;
    send_get(0, "/tiny");
    {
        uint64_t dl = deadline_from_now();
        while (T.aborts == 0) {
            step(dl, "the write timeout");
            if (M.live > peak)
                peak = M.live;
        }
    }
    assert_int_equal(T.abort_status, -ETIMEDOUT);
    assert_true(tiny_pieces > 1000);
    /* Bytes queued are bounded by max_output; the memory holding them must be too. */
    if (peak > 4 * (64u << 10) + (256u << 10))
        fail_msg("%zu pieces of 1 byte took %zu bytes of server memory", tiny_pieces, peak);
    stop_server();
}

/* ---- pipelined input up to the limit behind a held request ------------- */

static int hold_first(struct hp_http_req *req)
{
    if (path_is(req, "/held"))
        return on_hold(req);
    T.nrequests++;
    return reply_summary(req);
}

/* The input fills up behind a held request: reading pauses, and resumes once it is answered. */
static void test_lifetime_full_input_behind_a_held_request_resumes_after_the_reply(void **state)
{
    enum { N = 12000 };
    struct hp_http_server_opts opts = {
        .on_request = hold_first,
        .no_listen = true,
        .max_body = 1024,
        .max_header_bytes = 4096,
        .max_keepalive_requests = N + 10,
    };
    char path[32];

    (void)state;
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    send_get(0, "/held");
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "/q%d", i);
        send_get(0, path);
    }
    RUN_UNTIL(T.nheld == 1);
    run_for(50);
    assert_true(rc_unsent(&T.c[0]) > 0); /* the server stopped reading: its input is full */
    assert_int_equal(T.nrequests, 1);
    assert_int_equal(hp_http_reply(T.held[0], 200, HP_STR_LIT(""), "/held 0 00000000", 16), 0);
    expect_summary(0, "/held", 0, 0);
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "/q%d", i);
        expect_summary(0, path, 0, 0);
    }
    assert_int_equal(T.nrequests, N + 1);
    stop_server();
}

/* ---- the drain callback's contract -------------------------------------- */

static struct {
    size_t calls;
    int status;
    bool in_call; /* inside hp_http_req_on_drain() or the finishing call */
} D;

static void drain_first(struct hp_http_req *req, int status)
{
    (void)req;
    (void)status;
    fail_msg("a replaced drain callback ran");
}

static void drain_count(struct hp_http_req *req, int status)
{
    (void)req;
    D.calls++;
    D.status = status;
}

static int drain_on_request(struct hp_http_req *req)
{
    assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT(""), -1), 0);
    assert_int_equal(hp_http_req_on_drain(req, 1u << 20, NULL), -EINVAL);
    assert_int_equal(hp_http_req_on_drain(req, 1u << 20, drain_first), 0);
    assert_int_equal(hp_http_req_on_drain(req, 1u << 20, drain_count), 0); /* replaces it */
    assert_int_equal(D.calls, 0); /* never inside the call, even with the queue below the mark */
    return on_hold(req);
}

static void test_lifetime_drain_callback_runs_once_later_and_is_cancelled_by_finishing(void **state)
{
    struct hp_http_server_opts opts = {.on_request = drain_on_request, .no_listen = true};
    struct rc_resp r;

    (void)state;
    memset(&D, 0, sizeof(D));
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    send_get(0, "/d");
    RUN_UNTIL(D.calls == 1);
    assert_int_equal(D.status, 0);
    run_for(20);
    assert_int_equal(D.calls, 1); /* once */

    /* Finishing the request while waiting: the callback gets -ECANCELED first. */
    assert_int_equal(hp_http_stream_write(T.held[0], "abc", 3), 0);
    assert_int_equal(hp_http_req_on_drain(T.held[0], 0, drain_count), 0);
    assert_int_equal(hp_http_stream_end(T.held[0]), 0);
    assert_int_equal(D.calls, 2);
    assert_int_equal(D.status, -ECANCELED);
    expect_response(0, false, &r);
    assert_string_equal(r.body, "abc");
    rc_resp_free(&r);
    run_for(20);
    assert_int_equal(D.calls, 2);
    stop_server();
}

/* ---- 6. random interleavings ------------------------------------------- */

#define RND_CLIENTS 6
#define RND_QUEUE   32

/* A held request's state, in its own arena. */
struct job {
    struct hp_timer t;
    struct hp_http_req *req;
    uint32_t serial;
    char mode;
    unsigned pieces;
    size_t body_len; /* 'B': bytes the body callback got */
    bool body_done;  /* 'B': the body callback got its end */
};

/* What happened to each request the handler got, by serial. */
struct rec {
    uint8_t finished, aborts, drain_waits;
};

static struct {
    uint32_t rng;
    struct rec *recs;
    size_t nrecs, cap;
    struct {
        uint32_t ids[RND_QUEUE]; /* requests sent and not yet answered, oldest first */
        size_t head, n;
        bool half, after_500;
    } cl[RND_CLIENTS];
    uint32_t next_id;
    size_t responses, aborts, eclosed, bodies, head_streams;
} X;

static uint32_t rnd(uint32_t n)
{
    X.rng ^= X.rng << 13;
    X.rng ^= X.rng >> 17;
    X.rng ^= X.rng << 5;
    return X.rng % n;
}

static struct rec *rec_of(uint32_t serial)
{
    assert_true(serial < X.nrecs);
    return &X.recs[serial];
}

/* @p r's request was finished by the handler (it may be gone now). */
static void finished(struct rec *r, int rc)
{
    assert_int_equal(r->finished, 0); /* exactly once */
    r->finished = 1;
    if (rc == HP_ECLOSED)
        X.eclosed++;
}

static void job_drain(struct hp_http_req *req, int status);

/* The next step of a held request, from its timer. */
static void job_fire(struct hp_timer *t)
{
    struct job *j = hp_container_of(t, struct job, t);
    struct hp_http_req *req = j->req;
    struct rec *r = rec_of(j->serial);
    bool closed = hp_http_req_closed(req);
    int rc;

    assert_int_equal(r->finished, 0);
    switch (j->mode) {
    case 't':
        rc = hp_http_reply(req, 200, HP_STR_LIT("text/plain"), req->path.ptr, req->path.len);
        assert_int_equal(rc, closed ? HP_ECLOSED : 0);
        finished(r, rc);
        return;
    case 'y':
    case 'z':
        hp_http_req_release(req);
        finished(r, 0);
        return;
    case 'B': {
        char text[96];
        int n = snprintf(text, sizeof(text), "%.*s %zu", (int)req->path.len, req->path.ptr,
                         j->body_len);
        rc = hp_http_reply(req, 200, HP_STR_LIT("text/plain"), text, (size_t)n);
        assert_int_equal(rc, closed ? HP_ECLOSED : 0);
        finished(r, rc);
        return;
    }
    case 's':
        if (j->pieces > 0) {
            rc = hp_http_stream_write(req, ".....", 5);
            assert_int_equal(rc, closed ? HP_ECLOSED : 0);
            if (rc == 0) {
                j->pieces--;
                assert_int_equal(hp_timer_start(&j->t, rnd(4), 0), 0);
                return;
            }
        }
        break; /* the stream is complete, or closed */
    default:   /* 'd' after a closed drain */
        break;
    }
    rc = hp_http_stream_end(req);
    assert_int_equal(rc, closed ? HP_ECLOSED : 0);
    finished(r, rc);
}

static void job_drain(struct hp_http_req *req, int status)
{
    struct job *j = req->data;
    struct rec *r = rec_of(j->serial);

    assert_int_equal(r->drain_waits, 1); /* once per hp_http_req_on_drain() */
    r->drain_waits = 0;
    assert_int_equal(r->finished, 0);
    if (status == HP_ECLOSED) {
        assert_true(hp_http_req_closed(req));
        if (j->serial % 2 == 0) {
            finished(r, hp_http_stream_end(req)); /* then no on_abort */
        } else {
            assert_int_equal(hp_timer_start(&j->t, rnd(3), 0), 0); /* finish it later */
        }
        return;
    }
    assert_int_equal(status, 0);
    assert_int_equal(hp_http_req_queued(req), 0);
    if (j->pieces == 0) {
        finished(r, hp_http_stream_end(req));
        return;
    }
    j->pieces--;
    assert_int_equal(hp_http_stream_write(req, "::::::::", 8), 0); /* nothing queued: taken */
    assert_int_equal(hp_http_req_on_drain(req, 0, job_drain), 0);
    r->drain_waits = 1;
}

/* The mode letter and argument of a request's path "/r/<id>/<mode><arg>". */
static char rnd_mode(const struct hp_http_req *req, unsigned *arg)
{
    char path[64], mode;
    unsigned id;

    assert_true(req->path.len < sizeof(path));
    memcpy(path, req->path.ptr, req->path.len);
    path[req->path.len] = '\0';
    if (sscanf(path, "/r/%u/%c%u", &id, &mode, arg) != 3)
        fail_msg("unexpected path %s", path);
    return mode;
}

static uint32_t rnd_serial(void)
{
    assert_true(X.nrecs < X.cap);
    return (uint32_t)X.nrecs++;
}

/* The handler holds @p req: its state goes in the request's arena. */
static struct job *job_new(struct hp_http_req *req, uint32_t serial, char mode, unsigned arg)
{
    struct job *j = hp_http_req_alloc(req, sizeof(*j));

    assert_non_null(j);
    memset(j, 0, sizeof(*j));
    j->req = req;
    j->serial = serial;
    j->mode = mode;
    j->pieces = arg;
    req->data = j;
    hp_timer_init(req->loop, &j->t, job_fire);
    return j;
}

static int rnd_on_body(struct hp_http_req *req, const void *data, size_t len)
{
    struct job *j = req->data;

    assert_false(j->body_done);
    assert_int_equal(rec_of(j->serial)->finished, 0);
    if (data == NULL) {
        assert_int_equal(len, 0);
        j->body_done = true; /* answered later, from the timer */
        X.bodies++;
        assert_int_equal(hp_timer_start(&j->t, j->pieces, 0), 0);
        return 0;
    }
    j->body_len += len;
    return 0;
}

/* on_head: 'H' answers at once, 'S' streams from here, 'B' streams the body; else hand back. */
static int rnd_on_head(struct hp_http_req *req)
{
    unsigned arg;
    char mode = rnd_mode(req, &arg);
    uint32_t serial;
    struct job *j;
    int rc;

    if (mode != 'H' && mode != 'S' && mode != 'B')
        return 0;
    serial = rnd_serial();
    if (mode == 'H') {
        rc = hp_http_reply(req, 200, HP_STR_LIT("text/plain"), req->path.ptr, req->path.len);
        assert_int_equal(rc, 0);
        finished(rec_of(serial), rc);
        return 0;
    }
    j = job_new(req, serial, mode, arg);
    if (mode == 'B')
        return hp_http_req_read_body(req, rnd_on_body);
    assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT("text/plain"), -1), 0);
    assert_int_equal(hp_http_stream_write(req, req->path.ptr, req->path.len), 0);
    j->mode = 's'; /* from now on a stream like any other */
    X.head_streams++;
    assert_int_equal(hp_timer_start(&j->t, arg, 0), 0);
    return 0;
}

static int rnd_on_request(struct hp_http_req *req)
{
    unsigned arg;
    char mode = rnd_mode(req, &arg);
    uint32_t serial;
    struct rec *r;
    struct job *j;
    int rc;

    if (mode == 'H' || mode == 'S' || mode == 'B')
        fail_msg("on_request for a request on_head kept: %.*s", (int)req->path.len, req->path.ptr);
    assert_null(req->data); /* handed back by on_head untouched */
    serial = rnd_serial();
    r = rec_of(serial);
    switch (mode) {
    case 'n':
        rc = hp_http_reply(req, 200, HP_STR_LIT("text/plain"), req->path.ptr, req->path.len);
        assert_int_equal(rc, 0);
        finished(r, rc);
        return 0;
    case 'e':
        finished(r, 0);
        return -EIO;
    case 'x':
        hp_http_req_release(req);
        finished(r, 0);
        return 0;
    default:
        break;
    }
    j = job_new(req, serial, mode, arg);
    if (mode == 's' || mode == 'z' || mode == 'd') {
        assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT("text/plain"), -1), 0);
        assert_int_equal(hp_http_stream_write(req, req->path.ptr, req->path.len), 0);
    }
    if (mode == 'd') {
        assert_int_equal(hp_http_req_on_drain(req, 0, job_drain), 0);
        r->drain_waits = 1;
        return 0;
    }
    assert_int_equal(hp_timer_start(&j->t, arg, 0), 0);
    return 0;
}

static void rnd_on_abort(struct hp_http_req *req, int status)
{
    struct job *j = req->data;
    struct rec *r;

    if (j == NULL) {
        /* Handed back by on_head, gone before on_request: nothing to finish. */
        X.aborts++;
        return;
    }
    r = rec_of(j->serial);
    assert_true(status < 0);
    assert_int_equal(r->aborts, 0); /* at most once */
    r->aborts = 1;
    X.aborts++;
    assert_int_equal(r->finished, 0);    /* never for a request the handler finished */
    assert_int_equal(r->drain_waits, 0); /* the drain callback heard of it first */
    assert_true(hp_http_req_closed(req));
    if (j->mode == 'B' && !j->body_done) {
        /* Its body never ended: nothing else would finish it. */
        hp_http_req_release(req);
        finished(r, 0);
        return;
    }
    if (j->serial % 3 == 0) {
        /* Finish it right here: stop what would have finished it later. */
        bool stream = j->mode == 's' || j->mode == 'z' || j->mode == 'd';
        int rc;

        hp_timer_stop(&j->t);
        rc = stream ? hp_http_stream_end(req) : hp_http_reply(req, 200, HP_STR_LIT(""), "x", 1);
        assert_int_equal(rc, HP_ECLOSED);
        finished(r, rc);
    }
}

static void rnd_forget(int i)
{
    X.cl[i].head = X.cl[i].n = 0;
    X.cl[i].half = X.cl[i].after_500 = false;
}

static void rnd_send(int i, unsigned k)
{
    static const char modes[] = "nnnnttttttssssdddyzxeHSSBBBB";
    static char body[4096];
    char line[160];

    if (body[0] == '\0')
        memset(body, 'b', sizeof(body));
    for (unsigned m = 0; m < k && X.cl[i].n < RND_QUEUE; m++) {
        uint32_t id = X.next_id++;
        char mode = modes[rnd(sizeof(modes) - 1)];
        size_t len = mode == 'B' || rnd(4) == 0 ? rnd(sizeof(body)) : 0;
        int n;

        X.cl[i].ids[(X.cl[i].head + X.cl[i].n++) % RND_QUEUE] = id;
        if (len != 0 && rnd(2) == 0) {
            n = snprintf(line, sizeof(line),
                         "POST /r/%u/%c%u HTTP/1.1\r\nHost: t\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
                         id, mode, rnd(5), len);
            rc_send(&T.c[i], line, (size_t)n);
            rc_send(&T.c[i], body, len);
            rc_send_str(&T.c[i], "\r\n0\r\n\r\n");
        } else if (len != 0) {
            n = snprintf(line, sizeof(line),
                         "POST /r/%u/%c%u HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", id,
                         mode, rnd(5), len);
            rc_send(&T.c[i], line, (size_t)n);
            rc_send(&T.c[i], body, len);
        } else {
            n = snprintf(line, sizeof(line), "GET /r/%u/%c%u HTTP/1.1\r\nHost: t\r\n\r\n", id, mode,
                         rnd(5));
            rc_send(&T.c[i], line, (size_t)n);
        }
    }
}

/* Every response client @p i got must answer its oldest unanswered request. */
static void rnd_check(int i)
{
    struct rc_client *c = &T.c[i];
    struct rc_resp r;

    while (c->fd >= 0 && rc_next(c, false, &r)) {
        char want[32];
        uint32_t id;

        if (X.cl[i].after_500)
            fail_msg("client %d: a response after a 500", i);
        if (X.cl[i].n == 0)
            fail_msg("client %d: a response to a request it did not send: %.60s", i, r.body);
        id = X.cl[i].ids[X.cl[i].head];
        X.cl[i].head = (X.cl[i].head + 1) % RND_QUEUE;
        X.cl[i].n--;
        snprintf(want, sizeof(want), "/r/%u/", id);
        if (r.status == 500)
            X.cl[i].after_500 = true;
        else if (r.status != 200 || strncmp(r.body, want, strlen(want)) != 0)
            fail_msg("client %d: expected the answer to %s, got %d '%.60s'", i, want, r.status,
                     r.body);
        X.responses++;
        rc_resp_free(&r);
    }
    if (c->fd >= 0 && c->eof) {
        rc_close(c, false); /* whatever is left was cut off */
        rnd_forget(i);
    }
}

static void rnd_step(int timeout)
{
    int n;

    pump_all();
    if ((n = hp_loop_run_once(T.loop, timeout)) < 0)
        fail_msg("hp_loop_run_once: %s", hp_strerror(n));
    pump_all();
    for (int i = 0; i < RND_CLIENTS; i++)
        rnd_check(i);
}

static void rnd_act(uint16_t port)
{
    int i = (int)rnd(RND_CLIENTS);
    uint32_t act = rnd(100);
    struct rc_client *c = &T.c[i];

    if (c->fd < 0) {
        if (act < 60) {
            rc_open_tcp(c, port);
            rnd_forget(i);
        }
    } else if (act < 50) {
        if (!X.cl[i].half && X.cl[i].n < RND_QUEUE / 2)
            rnd_send(i, 1 + rnd(3));
    } else if (act < 64) {
        rc_close(c, act >= 58); /* close, or reset (SO_LINGER 0) */
        rnd_forget(i);
    } else if (act < 68 && !X.cl[i].half) {
        rc_pump(c);
        (void)shutdown(c->fd, SHUT_WR);
        X.cl[i].half = true;
    }
}

static void random_interleavings(uint32_t seed, unsigned steps)
{
    struct hp_http_server_opts opts = {
        .on_request = rnd_on_request,
        .on_head = rnd_on_head,
        .on_abort = rnd_on_abort,
        .listen = {.host = "127.0.0.1"},
    };
    uint64_t dl;
    uint16_t port;
    unsigned s;

    memset(&X, 0, sizeof(X));
    X.rng = seed ? seed : 1;
    X.cap = (size_t)steps * 3 + 16;
    X.recs = calloc(X.cap, sizeof(*X.recs));
    assert_non_null(X.recs);
    start_server(&opts);
    port = (uint16_t)hp_http_server_port(T.srv);
    dl = deadline_from_now() - HP_TEST_DEADLINE_MS + (valgrind() ? 30000 : 15000);
    for (s = 0; s < steps && hp_loop_now(T.loop) < dl; s++) {
        rnd_act(port);
        rnd_step(rnd(4) == 0 ? 1 : 0);
    }

    /* The end: shut down with the clients there, after a grace, or after they left. */
    switch (rnd(3)) {
    case 0:
        hp_http_server_shutdown(T.srv, 0, on_down);
        break;
    case 1:
        hp_http_server_shutdown(T.srv, 20, on_down);
        break;
    default:
        for (int i = 0; i < RND_CLIENTS; i++) {
            rc_close(&T.c[i], rnd(2) == 0);
            rnd_forget(i);
        }
        hp_http_server_shutdown(T.srv, 1000, on_down);
        break;
    }
    dl = deadline_from_now();
    while (!T.down) {
        rnd_step(5);
        if (hp_loop_now(T.loop) > dl)
            fail_msg("the shutdown never completed");
    }
    for (size_t k = 0; k < X.nrecs; k++) {
        if (X.recs[k].finished != 1 || X.recs[k].drain_waits != 0)
            fail_msg("request %zu: finished %u times, drain pending %u", k, X.recs[k].finished,
                     X.recs[k].drain_waits);
    }
    print_message("seed %u: %u steps, %zu requests (%zu streamed bodies, %zu streamed from "
                  "on_head), %zu responses, %zu aborts, %zu HP_ECLOSED\n",
                  seed, s, X.nrecs, X.bodies, X.head_streams, X.responses, X.aborts, X.eclosed);
    assert_true(X.responses > 0);
    stop_server();
    free(X.recs);
}

static void test_lifetime_random_interleavings_keep_every_response_with_its_client(void **state)
{
    const char *env = getenv("HP_TEST_SEED");
    uint32_t seed = env ? (uint32_t)strtoul(env, NULL, 0) : (uint32_t)time(NULL);
    unsigned steps = valgrind() ? 2000 : 10000;

    (void)state;
    /* A few seeds per run: the clock's (printed, for HP_TEST_SEED=) and fixed ones. */
    random_interleavings(seed, steps);
    random_interleavings(12345, steps / 2);
    random_interleavings(777, steps / 2);
}

/* ---- on_head that answers with a stream it holds ----------------------- */

static int head_streams(struct hp_http_req *req)
{
    assert_int_equal(hp_http_stream_start(req, 200, HP_STR_LIT("text/plain"), -1), 0);
    assert_int_equal(hp_http_stream_write(req, "from on_head;", 13), 0);
    return on_hold(req); /* held: it ends the stream later */
}

static int never_called(struct hp_http_req *req)
{
    fail_msg("on_request called for a request on_head answers: %.*s", (int)req->path.len,
             req->path.ptr);
    return -EIO;
}

static void end_head_stream(struct hp_timer *t)
{
    (void)t;
    assert_int_equal(hp_http_stream_write(T.held[0], "later", 5), 0);
    T.late_rc = hp_http_stream_end(T.held[0]);
    T.late_done = true;
}

/* on_head may answer (and hold the request while it streams): the body is not read. */
static void test_lifetime_on_head_streaming_a_held_reply_never_gets_on_request(void **state)
{
    struct hp_http_server_opts opts = {
        .on_request = never_called, .on_head = head_streams, .no_listen = true};
    struct rc_resp r;

    (void)state;
    start_server(&opts);
    rc_open_adopted(&T.c[0], T.srv);
    rc_send_str(&T.c[0], "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                         "GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    RUN_UNTIL(T.nheld == 1);
    RUN_UNTIL(rc_count(&T.c[0], "from on_head;") == 1); /* the stream goes out while held */
    run_for(20);
    later(1, end_head_stream);
    RUN_UNTIL(T.late_done);
    assert_int_equal(T.late_rc, 0);
    expect_response(0, false, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "from on_head;later");
    assert_true(r.close); /* the body was not read: the connection cannot go on */
    rc_resp_free(&r);
    RUN_UNTIL(T.c[0].eof);
    assert_int_equal(T.c[0].in_off, T.c[0].in_len); /* /next is not served */
    assert_int_equal(T.nheld, 1);
    stop_server();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifetime_late_reply_after_the_client_left_reaches_no_one),
        cmocka_unit_test(test_lifetime_late_replies_never_cross_connections),
        cmocka_unit_test(test_lifetime_late_reply_after_shutdown_without_grace),
        cmocka_unit_test(test_lifetime_late_reply_after_shutdown_after_grace),
        cmocka_unit_test(test_lifetime_reply_within_the_grace_period_is_sent),
        cmocka_unit_test(test_lifetime_calls_after_on_abort_return_eclosed),
        cmocka_unit_test(test_lifetime_stream_calls_after_on_abort_return_eclosed),
        cmocka_unit_test(test_lifetime_release_inside_the_handler_answers_500),
        cmocka_unit_test(test_lifetime_release_later_answers_500),
        cmocka_unit_test(test_lifetime_release_later_cuts_a_started_stream),
        cmocka_unit_test(test_lifetime_views_stay_put_while_the_client_pipelines),
        cmocka_unit_test(test_lifetime_views_of_a_chunked_body_stay_put_while_the_client_pipelines),
        cmocka_unit_test(
            test_lifetime_request_arena_is_aligned_stays_and_is_freed_with_the_request),
        cmocka_unit_test(test_lifetime_stalled_reader_is_bounded_then_cut_by_the_write_timeout),
        cmocka_unit_test(test_lifetime_reading_client_gets_the_stream_paced_by_drain_callbacks),
        cmocka_unit_test(test_lifetime_request_finished_in_its_drain_callback_gets_no_on_abort),
        cmocka_unit_test(test_lifetime_tiny_pieces_to_a_stalled_reader_keep_memory_bounded),
        cmocka_unit_test(test_lifetime_full_input_behind_a_held_request_resumes_after_the_reply),
        cmocka_unit_test(
            test_lifetime_drain_callback_runs_once_later_and_is_cancelled_by_finishing),
        cmocka_unit_test(test_lifetime_random_interleavings_keep_every_response_with_its_client),
        cmocka_unit_test(test_lifetime_on_head_streaming_a_held_reply_never_gets_on_request),
    };

    for (int i = 0; i < NCLIENTS; i++)
        T.c[i].fd = -1; /* no client yet: start_server() closes only real ones */
    if (getenv("CT_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CT_FILTER"));
    return cmocka_run_group_tests_name("http/lifetime", tests, NULL, NULL);
}
