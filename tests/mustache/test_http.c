/*
 * tests/mustache/test_http.c - hp_mustache_reply() end to end: a server
 * listening on loopback, clients on real TCP sockets. A rendered page
 * arrives byte-exact with its Content-Type and Content-Length (small, HEAD,
 * and pages of 3 MiB that outgrow the kept buffer, several on one
 * connection); a render error is answered 500 and the connection serves
 * the next request; a bad status is -EINVAL and still finishes the request;
 * a client that left gets nothing and the call returns HP_ECLOSED; a reply
 * from a lambda inside another page's render gets a buffer of its own; a server
 * on a thread of its own renders there and the thread's buffer goes with
 * the thread (ASan and valgrind check that nothing leaks). The loop is
 * driven with bounded run_once calls; nothing sleeps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
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
#include <hellepoll/mustache_http.h>

#include "testutil.h"

/* ---- the page ------------------------------------------------------------------- */

struct row {
    int id;
    const char *message;
};
struct page {
    const struct row *rows;
    size_t n;
    const char *title;
};
static const struct hp_mustache_field row_fields[] = {
    HP_MUSTACHE_FIELD(struct row, id, &hp_mustache_type_int),
    HP_MUSTACHE_FIELD(struct row, message, &hp_mustache_type_cstr),
};
static const struct hp_mustache_type row_type = HP_MUSTACHE_STRUCT_TYPE(struct row, row_fields);
static const struct hp_mustache_field page_fields[] = {
    HP_MUSTACHE_LIST_FIELD(struct page, rows, n, &row_type),
    HP_MUSTACHE_FIELD(struct page, title, &hp_mustache_type_cstr),
};
static const struct hp_mustache_type page_type = HP_MUSTACHE_STRUCT_TYPE(struct page, page_fields);

static const char page_src[] = "<h1>{{title}}</h1><ul>{{#rows}}<li id=\"{{id}}\">{{message}}</li>"
                               "{{/rows}}</ul>{{missing}}\n";
static const struct row small_rows[] = {{1, "fish & chips"}, {2, "<script>alert(\"x\")</script>"}};
static const struct page small_page = {small_rows, 2, "Caf\xc3\xa9 'menu'"};
static const char small_want[] =
    "<h1>Caf\xc3\xa9 &#39;menu&#39;</h1><ul><li id=\"1\">fish &amp; chips</li><li id=\"2\">"
    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</li></ul>\n";

/* A page whose lambda, while it renders, replies to the held request. */
struct nested {
    struct hp_mustache_lambda lam;
};
static const struct hp_mustache_field nested_fields[] = {
    HP_MUSTACHE_FIELD(struct nested, lam, &hp_mustache_type_lambda),
};
static const struct hp_mustache_type nested_type =
    HP_MUSTACHE_STRUCT_TYPE(struct nested, nested_fields);
static const char nested_src[] = "[{{lam}}]";

#define BIG_ROWS 30000
static struct row big_rows[BIG_ROWS];
static struct page big_page = {big_rows, BIG_ROWS, "big"};

/* ---- the server ------------------------------------------------------------------- */

struct fixture {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct hp_mustache *tmpl, *nested_tmpl;
    struct hp_http_req *held; /* /hold: answered by the test, or by /nested's lambda */
    int inner_rc;             /* what the lambda's hp_mustache_reply() returned */
    int port;
    int last_rc; /* what hp_mustache_reply() returned last */
    size_t replies, aborts;
    bool down;
};

static struct fixture fx;

static bool path_is(const struct hp_http_req *req, const char *p)
{
    return req->path.len == strlen(p) && memcmp(req->path.ptr, p, req->path.len) == 0;
}

static int reply(struct hp_http_req *req, int status, const struct page *page,
                 const struct hp_mustache_render_opts *opts)
{
    fx.last_rc = hp_mustache_reply(req, status, HP_STR_LIT("text/html; charset=utf-8"), fx.tmpl,
                                   &page_type, page, opts);
    fx.replies++;
    return 0; /* finished either way */
}

/* Replies to the held request from inside another render on this thread. */
static int reply_held(void *ud, const struct hp_str *section, struct hp_mustache_buf *out,
                      bool *literal)
{
    struct hp_http_req *held = fx.held;

    (void)ud;
    (void)section;
    (void)literal;
    fx.held = NULL;
    fx.inner_rc = hp_mustache_reply(held, 200, HP_STR_LIT("text/html; charset=utf-8"), fx.tmpl,
                                    &page_type, &small_page, NULL);
    return hp_mustache_buf_append(out, "inner", 5);
}

static int on_request(struct hp_http_req *req)
{
    static const struct hp_mustache_render_opts strict = {.strict = true};

    if (path_is(req, "/nested")) {
        static const struct nested n = {{reply_held, NULL}};
        fx.last_rc = hp_mustache_reply(req, 200, HP_STR_LIT("text/html; charset=utf-8"),
                                       fx.nested_tmpl, &nested_type, &n, NULL);
        return 0;
    }
    if (path_is(req, "/hold")) {
        fx.held = req;
        return 0;
    }
    if (path_is(req, "/big"))
        return reply(req, 200, &big_page, NULL);
    if (path_is(req, "/strict"))
        return reply(req, 200, &small_page, &strict);
    if (path_is(req, "/bad-status"))
        return reply(req, 99, &small_page, NULL);
    return reply(req, path_is(req, "/404") ? 404 : 200, &small_page, NULL);
}

static void on_abort(struct hp_http_req *req, int status)
{
    (void)req;
    (void)status;
    fx.aborts++;
}

static void server_start(struct hp_loop *loop, struct hp_http_server **srv, int *port)
{
    struct hp_http_server_opts opts = {
        .on_request = on_request,
        .on_abort = on_abort,
        .listen = {.host = "127.0.0.1", .port = 0},
    };

    assert_int_equal(hp_http_server_new(srv, loop, &opts), 0);
    *port = hp_http_server_port(*srv);
    assert_true(*port > 0);
}

static int setup(void **state)
{
    struct hp_mustache_error err = {0};

    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    assert_int_equal(
        hp_mustache_compile(&fx.tmpl, "page", page_src, sizeof(page_src) - 1, NULL, &err), 0);
    assert_int_equal(hp_mustache_compile(&fx.nested_tmpl, "nested", nested_src,
                                         sizeof(nested_src) - 1, NULL, &err),
                     0);
    server_start(fx.loop, &fx.srv, &fx.port);
    return 0;
}

static void on_down(struct hp_http_server *srv)
{
    (void)srv;
    fx.down = true;
}

static int teardown(void **state)
{
    (void)state;
    hp_http_server_shutdown(fx.srv, 0, on_down);
    hp_test_run_until(fx.loop, &fx.down);
    /* 0 only if every request handed out was finished */
    assert_int_equal(hp_http_server_free(fx.srv), 0);
    hp_test_loop_free(fx.loop);
    hp_mustache_free(fx.tmpl);
    hp_mustache_free(fx.nested_tmpl);
    return 0;
}

/* ---- the client ------------------------------------------------------------------- */

struct client {
    int fd;
    char *in;
    size_t len, cap;
};

/* A blocking TCP connection to 127.0.0.1:port (the kernel completes it before accept). */
static void client_open(struct client *c, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    memset(c, 0, sizeof(*c));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = hp_test_socket(AF_INET, SOCK_STREAM, false);
    assert_true(c->fd >= 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->in);
    c->in = NULL;
}

/* Read what is there without blocking; true if something came (or EOF: *eof). */
static bool client_read(struct client *c, bool *eof)
{
    if (c->cap - c->len < 65536) {
        c->cap = c->cap ? c->cap * 2 : 131072;
        c->in = realloc(c->in, c->cap + 1);
        assert_non_null(c->in);
        c->in[c->len] = '\0';
    }
    ssize_t r = recv(c->fd, c->in + c->len, c->cap - c->len, MSG_DONTWAIT);
    if (r == 0)
        *eof = true;
    if (r <= 0)
        return false;
    c->len += (size_t)r;
    c->in[c->len] = '\0';
    return true;
}

struct response {
    int status;
    char head[1024];
    const char *body;
    size_t body_len;
};

static const char *head_field(const struct response *r, const char *name)
{
    static char v[256];
    char key[64];
    const char *p;

    snprintf(key, sizeof(key), "\r\n%s: ", name);
    if ((p = strstr(r->head, key)) == NULL)
        return NULL;
    p += strlen(key);
    snprintf(v, sizeof(v), "%.*s", (int)strcspn(p, "\r"), p);
    return v;
}

/*
 * Run the loop (our server) until the client holds one whole response
 * (framed by Content-Length; no body for HEAD), then take it off the input.
 * @p r's body points into the client's buffer until the next call.
 */
static void client_response(struct client *c, struct response *r, bool head_only, bool *eof)
{
    static char *keep;
    size_t used = 0;

    free(keep);
    keep = NULL;
    for (int round = 0; round < 2000; round++) {
        char *end = c->in ? strstr(c->in, "\r\n\r\n") : NULL;
        if (end) {
            size_t hlen = (size_t)(end - c->in) + 4;
            memset(r, 0, sizeof(*r));
            snprintf(r->head, sizeof(r->head), "%.*s", (int)hlen, c->in);
            assert_int_equal(sscanf(c->in, "HTTP/1.1 %d", &r->status), 1);
            const char *cl = head_field(r, "Content-Length");
            size_t blen = head_only || cl == NULL ? 0 : (size_t)strtoull(cl, NULL, 10);
            if (c->len >= hlen + blen) {
                keep = malloc(blen + 1);
                assert_non_null(keep);
                memcpy(keep, c->in + hlen, blen);
                keep[blen] = '\0';
                r->body = keep;
                r->body_len = blen;
                used = hlen + blen;
                memmove(c->in, c->in + used, c->len - used);
                c->len -= used;
                c->in[c->len] = '\0';
                return;
            }
        }
        if (!client_read(c, eof)) {
            if (*eof)
                fail_msg("connection closed before a whole response; got %zu bytes", c->len);
            assert_true(hp_loop_run_once(fx.loop, 10) >= 0);
        }
    }
    fail_msg("no whole response; got %zu bytes", c->len);
}

static void get(struct client *c, const char *method, const char *path, struct response *r)
{
    char req[256];
    bool eof = false;

    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, path);
    hp_test_write_all(c->fd, req, strlen(req));
    client_response(c, r, strcmp(method, "HEAD") == 0, &eof);
}

/* What hp_mustache_render() makes of the page: the body a reply must carry. */
static struct hp_mustache_buf render(const struct page *page)
{
    struct hp_mustache_buf b = {0};

    assert_int_equal(hp_mustache_render(fx.tmpl, &page_type, page, &b, NULL), 0);
    return b;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_page_arrives_byte_exact_with_type_and_length(void **state)
{
    struct client c;
    struct response r;
    char len[32];

    (void)state;
    client_open(&c, fx.port);
    get(&c, "GET", "/", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(head_field(&r, "Content-Type"), "text/html; charset=utf-8");
    snprintf(len, sizeof(len), "%zu", sizeof(small_want) - 1);
    assert_string_equal(head_field(&r, "Content-Length"), len);
    assert_int_equal(r.body_len, sizeof(small_want) - 1);
    assert_memory_equal(r.body, small_want, r.body_len);
    assert_int_equal(fx.last_rc, 0);

    /* the same connection: another status, then HEAD (the length, no body) */
    get(&c, "GET", "/404", &r);
    assert_int_equal(r.status, 404);
    assert_memory_equal(r.body, small_want, r.body_len);
    get(&c, "HEAD", "/", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(head_field(&r, "Content-Length"), len);
    get(&c, "GET", "/", &r);
    assert_memory_equal(r.body, small_want, sizeof(small_want) - 1);
    assert_int_equal(c.len, 0); /* nothing more than the four responses */
    assert_int_equal(fx.replies, 4);
    client_close(&c);
}

static void test_big_pages_outgrow_the_kept_buffer_and_arrive_whole(void **state)
{
    static char msgs[BIG_ROWS][64];
    struct client c;
    struct response r;
    struct hp_mustache_buf want;

    (void)state;
    for (int i = 0; i < BIG_ROWS; i++) {
        snprintf(msgs[i], sizeof(msgs[i]), "row %d: <b>\"%d\" & '%d'</b> and some more text", i,
                 i * 3, i * 7);
        big_rows[i] = (struct row){i, msgs[i]};
    }
    want = render(&big_page);
    assert_true(want.len > (3u << 20)); /* beyond the 1 MiB a thread keeps */
    client_open(&c, fx.port);
    for (int k = 0; k < 2; k++) {
        get(&c, "GET", "/big", &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, want.len);
        assert_memory_equal(r.body, want.data, want.len);
        /* a small page after a big one: the buffer was given back and grows again */
        get(&c, "GET", "/", &r);
        assert_memory_equal(r.body, small_want, sizeof(small_want) - 1);
    }
    assert_int_equal(fx.last_rc, 0);
    hp_mustache_buf_free(&want);
    client_close(&c);
}

static void test_render_error_is_a_500_and_the_connection_goes_on(void **state)
{
    struct client c;
    struct response r;

    (void)state;
    client_open(&c, fx.port);
    get(&c, "GET", "/strict", &r); /* {{missing}} in strict mode: -ENOENT */
    assert_int_equal(r.status, 500);
    assert_int_equal(fx.last_rc, -ENOENT);
    assert_null(strstr(r.body, "<h1>")); /* none of the page */
    get(&c, "GET", "/", &r);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, small_want, sizeof(small_want) - 1);
    client_close(&c);
}

static void test_bad_status_is_einval_and_still_finishes_the_request(void **state)
{
    struct client c;
    struct response r;
    bool eof = false;

    (void)state;
    client_open(&c, fx.port);
    hp_test_write_all(c.fd, "GET /bad-status HTTP/1.1\r\nHost: t\r\n\r\n", 37);
    client_response(&c, &r, false, &eof);
    assert_int_equal(fx.last_rc, -EINVAL);
    assert_int_equal(r.status, 500); /* hp_http_req_release()'s answer */
    client_close(&c);
}

static void test_client_that_left_gets_eclosed(void **state)
{
    struct client c;
    struct hp_http_req *req;

    (void)state;
    client_open(&c, fx.port);
    hp_test_write_all(c.fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n", 31);
    for (int i = 0; i < 500 && fx.held == NULL; i++)
        assert_true(hp_loop_run_once(fx.loop, 10) >= 0);
    assert_non_null(fx.held);
    client_close(&c);
    for (int i = 0; i < 500 && fx.aborts == 0; i++)
        assert_true(hp_loop_run_once(fx.loop, 10) >= 0);
    assert_int_equal(fx.aborts, 1);
    req = fx.held;
    fx.held = NULL;
    assert_true(hp_http_req_closed(req));
    /* still ours to finish: the reply does it and says the client is gone */
    assert_int_equal(hp_mustache_reply(req, 200, HP_STR_LIT("text/html"), fx.tmpl, &page_type,
                                       &small_page, NULL),
                     HP_ECLOSED);
    /* teardown's hp_http_server_free() == 0 proves the request was finished */
}

static void test_reply_from_inside_a_render_uses_a_buffer_of_its_own(void **state)
{
    struct client a, b;
    struct response r;
    bool eof = false;

    (void)state;
    client_open(&a, fx.port);
    hp_test_write_all(a.fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n", 31);
    for (int i = 0; i < 500 && fx.held == NULL; i++)
        assert_true(hp_loop_run_once(fx.loop, 10) >= 0);
    assert_non_null(fx.held);
    client_open(&b, fx.port);
    get(&b, "GET", "/nested", &r); /* its lambda answers a's request meanwhile */
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 7);
    assert_memory_equal(r.body, "[inner]", 7);
    assert_int_equal(fx.last_rc, 0);
    assert_int_equal(fx.inner_rc, 0);
    assert_null(fx.held);
    client_response(&a, &r, false, &eof);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, sizeof(small_want) - 1);
    assert_memory_equal(r.body, small_want, r.body_len);
    client_close(&a);
    client_close(&b);
}

/* A server on a thread of its own: the thread's page buffer is freed when it exits. */
struct threaded {
    int port;
    bool ready, down;
    size_t served;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static struct threaded *thr; /* the one server thread */

static int on_thread_request(struct hp_http_req *req)
{
    struct threaded *t = thr;

    (void)hp_mustache_reply(req, 200, HP_STR_LIT("text/html"), fx.tmpl, &page_type, &small_page,
                            NULL);
    t->served++;
    return 0;
}

static void on_thread_down(struct hp_http_server *srv)
{
    struct threaded *t = hp_http_server_data(srv);

    t->down = true;
}

static void *server_thread(void *arg)
{
    struct threaded *t = arg;
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_http_server *srv;
    struct hp_http_server_opts opts = {
        .on_request = on_thread_request,
        .data = t,
        .listen = {.host = "127.0.0.1", .port = 0},
    };

    assert_int_equal(hp_http_server_new(&srv, loop, &opts), 0);
    pthread_mutex_lock(&t->mu);
    t->port = hp_http_server_port(srv);
    t->ready = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < 1000 && t->served < 3; i++)
        hp_loop_run_once(loop, 10);
    hp_http_server_shutdown(srv, 0, on_thread_down);
    hp_test_run_until(loop, &t->down);
    assert_int_equal(hp_http_server_free(srv), 0);
    hp_test_loop_free(loop);
    return NULL;
}

static void test_server_thread_renders_and_its_buffer_goes_with_it(void **state)
{
    struct threaded t = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    char want_head[64];

    (void)state;
    thr = &t;
    assert_int_equal(pthread_create(&th, NULL, server_thread, &t), 0);
    pthread_mutex_lock(&t.mu);
    while (!t.ready)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    snprintf(want_head, sizeof(want_head), "Content-Length: %zu\r\n", sizeof(small_want) - 1);
    for (int k = 0; k < 3; k++) {
        struct client c;
        size_t got = 0;
        char buf[4096];

        client_open(&c, t.port);
        hp_test_write_all(c.fd, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 46);
        for (;;) { /* blocking reads until the server closes */
            ssize_t r = read(c.fd, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        buf[got] = '\0';
        assert_non_null(strstr(buf, want_head));
        assert_non_null(strstr(buf, small_want));
        client_close(&c);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(t.served, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_page_arrives_byte_exact_with_type_and_length, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_big_pages_outgrow_the_kept_buffer_and_arrive_whole,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_error_is_a_500_and_the_connection_goes_on,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_status_is_einval_and_still_finishes_the_request,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_that_left_gets_eclosed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_from_inside_a_render_uses_a_buffer_of_its_own,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_thread_renders_and_its_buffer_goes_with_it,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
