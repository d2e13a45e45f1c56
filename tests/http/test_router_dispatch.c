/*
 * tests/http/test_router_dispatch.c - hp_router_dispatch() end to end, over
 * a socketpair adopted by a server on a real loop: parameters read later
 * from a timer (they live in the request block, decoded ones in its
 * arena), a held request's parameters intact while other connections are
 * served, the most parameters a route can have, the application's own
 * 404/405/400 handlers, a mounted handler and a mounted router, redirects
 * keeping the query, and parameters of one request not leaking into the
 * next one on the connection. The loop runs in bounded run_once calls.
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
#include <hellepoll/router.h>

#include "testutil.h"

struct fixture {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct hp_router *router, *api;
    struct hp_timer timer;
    struct hp_http_req *held;
    int client, client2;
    char in[16384], in2[16384];
    size_t in_len, in2_len;
    bool down;
};

static struct fixture fx;

/* "name=value;..." of the dispatched route, then its data string. */
static int echo_params(struct hp_http_req *req)
{
    char out[1024];
    size_t n = 0;
    struct hp_str name, value;

    for (size_t i = 0; hp_route_param_at(req, i, &name, &value); i++)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%.*s=%.*s;", (int)name.len, name.ptr,
                              (int)value.len, value.ptr);
    n += (size_t)snprintf(out + n, sizeof(out) - n, "[%s]",
                          hp_route_of(req) ? (const char *)hp_route_of(req)->data : "-");
    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), out, n);
}

static int on_later(struct hp_http_req *req)
{
    fx.held = req; /* answered from the timer, parameters read then */
    return hp_timer_start(&fx.timer, 5, 0);
}

static void on_timer(struct hp_timer *t)
{
    struct hp_http_req *req = fx.held;

    (void)t;
    fx.held = NULL;
    (void)echo_params(req);
}

static int on_hold(struct hp_http_req *req)
{
    fx.held = req; /* answered by the test itself, after other requests */
    return 0;
}

static int on_files(struct hp_http_req *req)
{
    struct hp_str rest = hp_route_rest(req);
    char out[256];
    int n = snprintf(out, sizeof(out), "rest=%.*s", (int)rest.len, rest.ptr);

    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), out, (size_t)n);
}

static int my_404(struct hp_http_req *req)
{
    assert_null(hp_route_of(req));
    assert_int_equal(hp_route_param_count(req), 0);
    return hp_http_reply(req, 404, HP_STR_LIT("text/plain"), "custom 404", 10);
}

static int my_405(struct hp_http_req *req)
{
    assert_null(hp_route_of(req));
    assert_int_equal(hp_route_param_count(req), 0);
    return hp_http_reply(req, 405, HP_STR_LIT("text/plain"), "custom 405", 10);
}

static int my_400(struct hp_http_req *req)
{
    struct hp_str v;

    assert_null(hp_route_of(req)); /* a malformed value: no route, no parameters */
    assert_int_equal(hp_route_param_count(req), 0);
    assert_false(hp_route_param(req, "post", &v));
    return hp_http_reply(req, 400, HP_STR_LIT("text/plain"), "custom 400", 10);
}

static int on_request(struct hp_http_req *req)
{
    return hp_router_dispatch(fx.router, req);
}

static char tag_api[] = "api", tag_up[] = "up", tag_later[] = "later", tag_del[] = "del",
            tag_dir[] = "dir", tag_hold[] = "hold", tag_max[] = "max", tag_dav[] = "dav";

/* A route with HP_ROUTE_MAX_PARAMS parameters, the last one a catch-all. */
#define MAX_PATTERN                                                                         \
    "/max/{p0}/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/{p9}/{p10}/{p11}/{p12}/{p13}/{p14}/" \
    "{rest...}"

static void build(bool custom)
{
    struct hp_router_opts o = {.redirect_trailing_slash = true};

    if (custom) {
        o.not_found = my_404;
        o.method_not_allowed = my_405;
        o.bad_request = my_400;
    }
    assert_int_equal(hp_router_new(&fx.api, NULL), 0);
    assert_int_equal(hp_router_add(fx.api, "GET", "/v1/{thing}", echo_params, tag_api), 0);
    assert_int_equal(hp_router_freeze(fx.api), 0);
    assert_int_equal(hp_router_new(&fx.router, &o), 0);
    assert_int_equal(
        hp_router_add(fx.router, "GET", "/users/{id}/posts/{post}", echo_params, tag_up), 0);
    assert_int_equal(hp_router_add(fx.router, "GET", "/later/{a}/{b...}", on_later, tag_later), 0);
    assert_int_equal(hp_router_add(fx.router, "DELETE", "/users/{id}", echo_params, tag_del), 0);
    assert_int_equal(hp_router_add(fx.router, "GET", "/dir/", echo_params, tag_dir), 0);
    assert_int_equal(hp_router_add(fx.router, "GET", "/nohandler", NULL, NULL), 0);
    assert_int_equal(hp_router_add(fx.router, "GET", "/hold/{a}/{b...}", on_hold, tag_hold), 0);
    assert_int_equal(hp_router_add(fx.router, "GET", MAX_PATTERN, echo_params, tag_max), 0);
    assert_int_equal(hp_router_add(fx.router, "PROPFIND", "/dav/{x}", echo_params, tag_dav), 0);
    assert_int_equal(hp_router_mount_handler(fx.router, "/files", on_files, NULL), 0);
    assert_int_equal(hp_router_mount(fx.router, "/api", fx.api), 0);
    assert_int_equal(hp_router_freeze(fx.router), 0);
}

static int setup_with(bool custom)
{
    struct hp_http_server_opts opts = {.on_request = on_request, .no_listen = true};
    int sv[2];

    memset(&fx, 0, sizeof(fx));
    fx.client = fx.client2 = -1;
    build(custom);
    fx.loop = hp_test_loop_new(NULL);
    hp_timer_init(fx.loop, &fx.timer, on_timer);
    if (hp_http_server_new(&fx.srv, fx.loop, &opts) != 0)
        return -1;
    hp_test_socketpair(sv);
    fx.client = sv[1];
    if (hp_http_server_adopt(fx.srv, sv[0]) != 0)
        return -1;
    hp_test_socketpair(sv);
    fx.client2 = sv[1];
    return hp_http_server_adopt(fx.srv, sv[0]);
}

static int setup(void **state)
{
    (void)state;
    return setup_with(false);
}

static int setup_custom(void **state)
{
    (void)state;
    return setup_with(true);
}

static void on_down(struct hp_http_server *srv)
{
    (void)srv;
    fx.down = true;
}

static int teardown(void **state)
{
    (void)state;
    if (fx.held != NULL) /* a failed test's: finish it so that the server can go down */
        (void)hp_http_reply(fx.held, 500, HP_STR_LIT("text/plain"), "x", 1);
    if (fx.client >= 0)
        close(fx.client);
    if (fx.client2 >= 0)
        close(fx.client2);
    hp_http_server_shutdown(fx.srv, 0, on_down);
    hp_test_run_until(fx.loop, &fx.down);
    assert_int_equal(hp_http_server_free(fx.srv), 0);
    hp_timer_stop(&fx.timer);
    hp_test_loop_free(fx.loop);
    hp_router_free(fx.router);
    hp_router_free(fx.api);
    return 0;
}

static void send_str(const char *s)
{
    hp_test_write_all(fx.client, s, strlen(s));
}

/* Run the loop until @p fd has received @p n occurrences of @p needle (into @p in). */
static void receive_on(int fd, char *in, size_t cap, size_t *len, const char *needle, size_t n)
{
    for (int round = 0; round < 400; round++) {
        size_t found = 0;
        const char *p = in;
        while ((p = strstr(p, needle)) != NULL) {
            found++;
            p += strlen(needle);
        }
        if (found >= n)
            return;
        assert_true(hp_loop_run_once(fx.loop, 25) >= 0);
        ssize_t r = read(fd, in + *len, cap - 1 - *len);
        if (r > 0) {
            *len += (size_t)r;
            in[*len] = '\0';
        }
    }
    fail_msg("never received %zu x '%s'; got: %s", n, needle, in);
}

/* Run the loop until the client has received @p n occurrences of @p needle. */
static void receive_until(const char *needle, size_t n)
{
    receive_on(fx.client, fx.in, sizeof(fx.in), &fx.in_len, needle, n);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

static void test_dispatch_decodes_parameters_into_the_request(void **state)
{
    (void)state;
    send_str(GET("/users/caf%C3%A9/posts/a%2Fb"));
    receive_until("[up]", 1);
    assert_non_null(strstr(fx.in, "id=caf\xc3\xa9;post=a/b;[up]"));
    /* One escape anywhere in spans of every length the '%' look takes
     * apart (bytes, words, 16-byte blocks, the overlapping last one). */
    for (size_t len = 1; len <= 70; len++) {
        for (size_t at = 0; at<len; at += len> 20 ? 7 : 1) {
            char req[256], want[160], val[80];
            memset(val, 'v', len);
            val[len] = '\0';
            val[at] = 'X'; /* sent as %58 */
            snprintf(req, sizeof(req), "GET /users/%.*s%%58%s/posts/p HTTP/1.1\r\nHost: t\r\n\r\n",
                     (int)at, val, val + at + 1);
            snprintf(want, sizeof(want), "id=%s;post=p;[up]", val);
            fx.in_len = 0;
            fx.in[0] = '\0';
            send_str(req);
            receive_until("[up]", 1);
            if (strstr(fx.in, want) == NULL)
                fail_msg("%s: got %s", req, fx.in);
        }
    }
}

static void test_dispatch_parameters_outlive_the_handler_call(void **state)
{
    (void)state;
    /* The timer answers after a pipelined request has been read behind it. */
    send_str(GET("/later/x%20y/deep/er") GET("/users/1/posts/2"));
    receive_until("[up]", 1);
    assert_non_null(strstr(fx.in, "a=x y;b=deep/er;[later]"));
    assert_true(strstr(fx.in, "[later]") < strstr(fx.in, "[up]"));
}

/* Is @p req's parameter @p name the value @p want? */
static void param_is(struct hp_http_req *req, const char *name, const char *want)
{
    struct hp_str v;

    assert_true(hp_route_param(req, name, &v));
    if (v.len != strlen(want) || memcmp(v.ptr, want, v.len) != 0)
        fail_msg("%s: '%.*s', not '%s'", name, (int)v.len, v.ptr, want);
}

static void test_dispatch_held_request_keeps_its_parameters(void **state)
{
    char req[256];

    (void)state;
    /* Held on the first connection, with a request pipelined behind it. */
    send_str(GET("/hold/h%C3%A9ld/r%2Fe/st") GET("/users/9/posts/8"));
    for (int i = 0; i < 400 && fx.held == NULL; i++)
        assert_true(hp_loop_run_once(fx.loop, 25) >= 0);
    assert_non_null(fx.held);
    /* Meanwhile the second connection is served, 40 requests with other
     * parameters (escaped ones too: their arena), in request blocks that
     * the server recycles. */
    for (int i = 0; i < 40; i++) {
        snprintf(req, sizeof(req), "GET /users/u%d%%25/posts/p%d HTTP/1.1\r\nHost: t\r\n\r\n", i,
                 i);
        hp_test_write_all(fx.client2, req, strlen(req));
    }
    receive_on(fx.client2, fx.in2, sizeof(fx.in2), &fx.in2_len, "[up]", 40);
    assert_non_null(strstr(fx.in2, "id=u39%;post=p39;[up]"));
    assert_null(strstr(fx.in, "HTTP/1.1")); /* nothing answered on the first one yet */
    /* The held request still reads its own, decoded. */
    param_is(fx.held, "a", "h\xc3\xa9ld");
    param_is(fx.held, "b", "r/e/st");
    assert_int_equal(hp_route_param_count(fx.held), 2);
    assert_string_equal((const char *)hp_route_of(fx.held)->data, "hold");
    assert_int_equal(hp_route_rest(fx.held).len, 0); /* not a mount */
    assert_non_null(hp_route_rest(fx.held).ptr);
    {
        struct hp_http_req *held = fx.held;
        fx.held = NULL;
        assert_int_equal(echo_params(held), 0);
    }
    /* Then the one behind it gets its own. */
    receive_until("[up]", 1);
    assert_non_null(strstr(fx.in, "a=h\xc3\xa9ld;b=r/e/st;[hold]"));
    assert_non_null(strstr(fx.in, "id=9;post=8;[up]"));
    assert_true(strstr(fx.in, "[hold]") < strstr(fx.in, "[up]"));
}

static void test_dispatch_most_parameters(void **state)
{
    char want[512];
    size_t n = 0;

    (void)state;
    /* 15 one-segment values (some escaped, some long) and the catch-all. */
    send_str(GET("/max/a/b%20/c/%64/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee/f/g/h/i/j/k/l/m/n/"
                 "o%2Fo/x/y%2Fz") GET("/max/0/1/2/3/4/5/6/7/8/9/10/11/12/13/14/r"));
    receive_until("[max]", 2);
    n += (size_t)snprintf(want + n, sizeof(want) - n,
                          "p0=a;p1=b ;p2=c;p3=d;p4=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee;");
    for (int i = 5; i <= 13; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, "p%d=%c;", i, 'a' + i);
    snprintf(want + n, sizeof(want) - n, "p14=o/o;rest=x/y/z;[max]");
    if (strstr(fx.in, want) == NULL)
        fail_msg("want %s; got %s", want, fx.in);
    assert_non_null(strstr(fx.in, "p0=0;p1=1;p2=2;p3=3;p4=4;p5=5;p6=6;p7=7;p8=8;p9=9;p10=10;"
                                  "p11=11;p12=12;p13=13;p14=14;rest=r;[max]"));
}

static void test_dispatch_custom_methods(void **state)
{
    (void)state;
    /* Tokens the parser has no enum value for: the router's own slots. */
    send_str("PROPFIND /dav/a%20b HTTP/1.1\r\nHost: t\r\n\r\n"
             "BREW /dav/a HTTP/1.1\r\nHost: t\r\n\r\n");
    receive_until("HTTP/1.1 405", 1);
    assert_non_null(strstr(fx.in, "x=a b;[dav]"));
    assert_non_null(strstr(fx.in, "Allow: OPTIONS, PROPFIND\r\n"));
}

static void test_dispatch_own_answers(void **state)
{
    (void)state;
    send_str(GET("/nothing") "PUT /users/7 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n" GET(
        "/users/%zz/posts/1") GET("/dir?q=1") GET("/a/../dir/?x")
                 GET("/nohandler") "OPTIONS /users/7 HTTP/1.1\r\nHost: t\r\n\r\n");
    receive_until("HTTP/1.1 204", 1);
    assert_non_null(strstr(fx.in, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(fx.in, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_non_null(strstr(fx.in, "Allow: DELETE, OPTIONS\r\n"));
    assert_non_null(strstr(fx.in, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(fx.in, "Location: /dir/?q=1\r\n"));
    assert_non_null(strstr(fx.in, "Location: /dir/?x\r\n"));
    assert_non_null(strstr(fx.in, "HTTP/1.1 501 Not Implemented\r\n"));
    assert_non_null(strstr(fx.in, "HTTP/1.1 204 No Content\r\n"));
}

static void test_dispatch_replaced_answers(void **state)
{
    (void)state;
    /* Each after a routed request on the same connection: nothing of it is left. */
    send_str(GET("/users/1/posts/2") GET("/nothing")
                 GET("/users/1/posts/2") "POST /users/7 HTTP/1.1\r\nHost: t\r\nContent-Length: "
                                         "0\r\n\r\n" GET("/users/1/posts/2")
                                             GET("/users/1/posts/%"));
    receive_until("custom 400", 1);
    assert_non_null(strstr(fx.in, "custom 404"));
    assert_non_null(strstr(fx.in, "custom 405"));
    assert_non_null(strstr(fx.in, "Allow: DELETE, OPTIONS\r\n")); /* added before the handler */
}

static void test_dispatch_mounts(void **state)
{
    (void)state;
    send_str(GET("/files/a/b.txt") GET("/api/v1/widgets") GET("/api/v2/x") GET("/files/..%2Fetc"));
    receive_until("HTTP/1.1 400", 1);
    assert_non_null(strstr(fx.in, "rest=/a/b.txt"));
    assert_non_null(strstr(fx.in, "thing=widgets;[api]"));
    assert_non_null(strstr(fx.in, "HTTP/1.1 404"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dispatch_decodes_parameters_into_the_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_parameters_outlive_the_handler_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_held_request_keeps_its_parameters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_most_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_custom_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_own_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_replaced_answers, setup_custom, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_mounts, setup, teardown),
    };

    return cmocka_run_group_tests_name("http/router_dispatch", tests, NULL, NULL);
}
