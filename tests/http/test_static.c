/*
 * tests/http/test_static.c - the static-file handler end to end: a server on
 * a real loop adopting socketpairs, real files in a temporary directory.
 * Responses are compared byte for byte (the Date line masked) with what RFC
 * 9110 prescribes for every conditional and range case; traversal attempts;
 * precompressed siblings; a file replaced while cached; a client that leaves
 * mid-file; a file that shrinks while sent; a 100 MiB file through a small
 * SO_SNDBUF to a slow reader; many concurrent downloads. The loop is driven
 * with bounded run_once calls; nothing sleeps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/router.h>
#include <hellepoll/static.h>

#include "testutil.h"

#define T0      1577934245 /* Thu, 02 Jan 2020 03:04:05 GMT: every file's mtime */
#define T0_DATE "Thu, 02 Jan 2020 03:04:05 GMT"

struct fixture {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct hp_static *st;
    char dir[PATH_MAX];
    char etag[64]; /* of f.txt */
};

static struct fixture fx;
/* Whether the zero-copy path must answer big bodies (setup_sendfile) or not (setup_copy). */
static bool want_zero_copy;
static char *resp; /* the last response, Date masked */
static size_t resp_len;

/*
 * hp_http_add_header()'s value check, which the handler's hot path leans on
 * (it is word-at-a-time): every forbidden byte at every offset of a value
 * longer than a word is refused, tabs and obs-text bytes are not.
 */
static int check_header_values(struct hp_http_req *req)
{
    static const unsigned char bad[] = {'\0', '\r', '\n', 0x01, 0x1f, 0x7f};
    char v[40];

    for (size_t len = 1; len <= sizeof(v); len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t b = 0; b < sizeof(bad); b++) {
                memset(v, 'a', sizeof(v));
                v[at] = (char)bad[b];
                assert_int_equal(
                    hp_http_add_header(req, HP_STR_LIT("X-V"), (struct hp_str){v, len}), -EINVAL);
            }
            memset(v, 'a', sizeof(v));
            v[at] = at % 2 ? '\t' : (char)0xe9;
            assert_int_equal(hp_http_add_header(req, HP_STR_LIT("X-V"), (struct hp_str){v, len}),
                             0);
        }
    }
    return hp_http_reply(req, 204, HP_STR_LIT(""), NULL, 0);
}

static struct hp_router *router;
static void status_is(const char *target, int status);

static int on_api(struct hp_http_req *req)
{
    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), "api", 3);
}

static int on_request(struct hp_http_req *req)
{
    struct hp_str p = req->path;

    if (p.len == 9 && memcmp(p.ptr, "/hdrcheck", 9) == 0)
        return check_header_values(req);
    /* /r/...: through the router, the directory mounted at /r/files. */
    if (p.len >= 3 && memcmp(p.ptr, "/r/", 3) == 0) {
        if (!router) {
            assert_int_equal(hp_router_new(&router, NULL), 0);
            assert_int_equal(hp_router_add(router, "GET", "/r/api", on_api, NULL), 0);
            assert_int_equal(hp_router_mount_handler(router, "/r/files", hp_static_route, fx.st),
                             0);
            assert_int_equal(hp_router_freeze(router), 0);
        }
        return hp_router_dispatch(router, req);
    }

    /* A mount under /static/ as a router would do it; the rest at the root. */
    if (p.len >= 8 && memcmp(p.ptr, "/static/", 8) == 0) {
        p.ptr += 7;
        p.len -= 7;
    }
    return hp_static_handle(fx.st, req, p);
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[PATH_MAX + 64];
    struct timespec ts[2] = {{T0, 0}, {T0, 0}};
    int fd;

    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    hp_test_write_all(fd, data, len);
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
}

static void write_text(const char *name, const char *text)
{
    write_file(name, text, strlen(text));
}

static void make_dir(const char *name)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void make_link(const char *name, const char *target)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    assert_int_equal(symlink(target, path), 0);
}

/* Byte pattern of the big files: depends on the offset only. */
static unsigned char pat(uint64_t off)
{
    return (unsigned char)((off * 2654435761u) >> 13);
}

static void write_pattern(const char *name, uint64_t size)
{
    static unsigned char buf[1 << 16];
    char path[PATH_MAX + 64];
    struct timespec ts[2] = {{T0, 0}, {T0, 0}};
    int fd;

    snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    for (uint64_t off = 0; off < size; off += sizeof(buf)) {
        size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);

        for (size_t i = 0; i < n; i++)
            buf[i] = pat(off + i);
        hp_test_write_all(fd, buf, n);
    }
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
}

static void server_start(const struct hp_static_opts *sopts_in)
{
    struct hp_http_server_opts opts = {.on_request = on_request, .no_listen = true};
    struct hp_static_opts sopts = *sopts_in;

    sopts.root = fx.dir;
    fx.loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_http_server_new(&fx.srv, fx.loop, &opts), 0);
    assert_int_equal(hp_static_new(&fx.st, fx.loop, &sopts), 0);
}

static int setup_opts(const struct hp_static_opts *sopts)
{
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/hp-static-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    write_text("f.txt", "0123456789abcdefghij");
    make_dir("sub");
    make_dir("x.html");
    make_dir("empty");
    write_text("sub/index.html", "<p>sub</p>\n");
    write_text("index.html", "<p>root</p>\n");
    write_text("a.txt", "plain text, plain text, plain text\n");
    write_text("a.txt.gz", "GZ-BYTES");
    write_text("a.txt.br", "BR-BYTES");
    write_text("secret.txt", "top secret\n");
    write_text(".env", "KEY=1\n");
    make_link("in.txt", "f.txt");
    make_link("out", "../..");
    make_link("etc", "/etc");
    write_text("empty.txt", "");
    server_start(sopts);
    return 0;
}

static int setup(void **state)
{
    struct hp_static_opts o = {.max_ranges = 4, .cache_ttl_ms = 50};

    (void)state;
    return setup_opts(&o);
}

/* Everything above 1 byte streamed from its descriptor, not from memory. */
static int setup_streamed(void **state)
{
    struct hp_static_opts o = {.max_ranges = 4, .cache_ttl_ms = 50, .mem_file_max = 1};

    (void)state;
    return setup_opts(&o);
}

/* Bodies from 16 KiB up by descriptor (sendfile): the defaults. */
static int setup_sendfile(void **state)
{
    struct hp_static_opts o = {.max_ranges = 4, .cache_ttl_ms = 50};

    (void)state;
    want_zero_copy = true;
    return setup_opts(&o);
}

/* The same bodies copied through the output queue, never sendfile. */
static int setup_copy(void **state)
{
    struct hp_static_opts o = {.max_ranges = 4, .cache_ttl_ms = 50, .sendfile_min = UINT32_MAX};

    (void)state;
    want_zero_copy = false;
    return setup_opts(&o);
}

/* A long cache lifetime and a one-thread pool the test can hold. */
static int setup_one_thread(void **state)
{
    struct hp_static_opts o = {.cache_ttl_ms = 600000};
    struct hp_pool_opts one = {.threads = 1};

    (void)state;
    if (setup_opts(&o) != 0)
        return -1;
    return hp_pool_config(fx.loop, &one);
}

static int setup_listing(void **state)
{
    struct hp_static_opts o = {.listing = true};

    (void)state;
    return setup_opts(&o);
}

static void ct_spin(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        hp_loop_run_once(fx.loop, 5);
}

static void drain_server(void)
{
    struct hp_static_stats s;
    uint64_t deadline = hp_loop_now(fx.loop) + HP_TEST_DEADLINE_MS;

    for (;;) {
        hp_static_stats(fx.st, &s);
        if (s.in_flight == 0 && hp_http_server_connections(fx.srv) == 0)
            break;
        hp_loop_run_once(fx.loop, 20);
        if (hp_loop_now(fx.loop) > deadline)
            fail_msg("requests still in flight: %u", s.in_flight);
    }
}

static bool down;

static void on_down(struct hp_http_server *srv)
{
    (void)srv;
    down = true;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void)state;
    hp_router_free(router);
    router = NULL;
    free(resp);
    resp = NULL;
    down = false;
    hp_http_server_shutdown(fx.srv, 1000, on_down);
    hp_test_run_until(fx.loop, &down);
    drain_server();
    assert_int_equal(hp_http_server_free(fx.srv), 0);
    assert_int_equal(hp_static_free(fx.st), 0);
    /* Lookups and reads all answered: the loop has nothing left. */
    while (hp_loop_is_alive(fx.loop))
        hp_loop_run_once(fx.loop, 20);
    hp_test_loop_free(fx.loop);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A client: a socketpair end the server adopted the other end of. */
static int client_new(int sndbuf)
{
    int sv[2];

    hp_test_socketpair(sv);
    if (sndbuf)
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    assert_int_equal(hp_http_server_adopt(fx.srv, sv[0]), 0);
    return sv[1];
}

static void send_str(int c, const char *s)
{
    hp_test_write_all(c, s, strlen(s));
}

/* End of the head in @p b, or NULL. */
static const char *head_end(const char *b, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        if (memcmp(b + i, "\r\n\r\n", 4) == 0)
            return b + i + 4;
    }
    return NULL;
}

/* Length of a complete response at @p b (HEAD: no body), or 0 if incomplete. */
static size_t complete(const char *b, size_t n, bool head)
{
    const char *e = head_end(b, n), *cl;
    size_t hl, len = 0;

    if (!e)
        return 0;
    hl = (size_t)(e - b);
    cl = NULL;
    for (const char *p = b; p + 16 < e; p++) {
        if (strncasecmp(p, "\r\nContent-Length:", 17) == 0) {
            cl = p + 17;
            break;
        }
    }
    if (cl && !head && strncmp(b + 9, "304", 3) != 0)
        len = strtoull(cl, NULL, 10);
    return n >= hl + len ? hl + len : 0;
}

/* Send @p req on a fresh client and collect one response; Date line masked. */
static void exchange_on(int c, const char *req, bool head)
{
    size_t cap = 1 << 16, n = 0, done = 0;
    char *b = malloc(cap);
    uint64_t deadline;

    hp_test_write_all(c, req, strlen(req));
    hp_loop_update_time(fx.loop);
    deadline = hp_loop_now(fx.loop) + HP_TEST_DEADLINE_MS;
    while ((done = complete(b, n, head)) == 0) {
        ssize_t r;

        hp_loop_run_once(fx.loop, 10);
        while ((r = read(c, b + n, cap - n - 1)) > 0) {
            n += (size_t)r;
            if (n + 1 >= cap)
                b = realloc(b, cap *= 2);
        }
        if (r == 0)
            break;
        if (hp_loop_now(fx.loop) > deadline)
            fail_msg("no complete response to %s", req);
    }
    b[n] = '\0'; /* responses are searched with strstr() */
    if (!done)
        done = n;
    /* Mask the Date value. */
    char *d = strstr(b, "\r\nDate: ");
    if (d && (size_t)(d - b) < done)
        memset(d + 8, 'X', 29);
    free(resp);
    resp = b;
    resp_len = done;
}

static void exchange(const char *req)
{
    int c = client_new(0);

    exchange_on(c, req, strncmp(req, "HEAD", 4) == 0);
    close(c);
}

/* Replace {E} with fx.etag and {D} with the masked date in @p tmpl. */
static void expect(const char *tmpl)
{
    char want[8192];
    size_t o = 0;

    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] == 'E' && p[2] == '}') {
            o += (size_t)snprintf(want + o, sizeof(want) - o, "%s", fx.etag);
            p += 2;
        } else {
            want[o++] = *p;
        }
    }
    want[o] = '\0';
    if (resp_len != o || memcmp(resp, want, o) != 0)
        fail_msg("response:\n%.*s\n--- wanted:\n%s", (int)resp_len, resp, want);
}

#define DATE "Date: XXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\nServer: hellepoll\r\n"
#define OK_HEADERS                                \
    "Content-Type: text/plain; charset=utf-8\r\n" \
    "Content-Length: 20\r\n"                      \
    "ETag: {E}\r\nLast-Modified: " T0_DATE "\r\nAccept-Ranges: bytes\r\n\r\n"
#define OK_200 "HTTP/1.1 200 OK\r\n" DATE OK_HEADERS "0123456789abcdefghij"
#define NM_304 \
    "HTTP/1.1 304 Not Modified\r\n" DATE "ETag: {E}\r\nLast-Modified: " T0_DATE "\r\n\r\n"
#define PF_412                                                                                \
    "HTTP/1.1 412 Precondition Failed\r\n" DATE "Content-Type: text/plain; charset=utf-8\r\n" \
    "Content-Length: 24\r\n\r\n412 Precondition Failed\n"

static void learn_etag(void)
{
    const char *e;

    exchange("GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    e = strstr(resp, "ETag: ");
    assert_non_null(e);
    e += 6;
    snprintf(fx.etag, sizeof(fx.etag), "%.*s", (int)(strchr(e, '\r') - e), e);
    assert_true(fx.etag[0] == '"');
}

/* GET /f.txt with extra header lines @p h. */
static void get_f(const char *h)
{
    char req[1024];

    snprintf(req, sizeof(req), "GET /f.txt HTTP/1.1\r\nHost: x\r\n%s\r\n", h);
    exchange(req);
}

static void test_static_get_and_head_byte_exact(void **state)
{
    (void)state;
    learn_etag();
    expect(OK_200);
    exchange("HEAD /f.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    expect("HTTP/1.1 200 OK\r\n" DATE OK_HEADERS);
    exchange("GET /static/f.txt HTTP/1.1\r\nHost: x\r\n\r\n"); /* mounted under a prefix */
    expect(OK_200);
    exchange("POST /f.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    expect("HTTP/1.1 405 Method Not Allowed\r\n" DATE "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: 23\r\nAllow: GET, HEAD\r\n\r\n405 Method Not Allowed\n");
    exchange("GET /empty.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(resp, "\r\nContent-Length: 0\r\n"));
    exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(resp, "Content-Type: text/html; charset=utf-8\r\n"));
    assert_non_null(strstr(resp, "\r\n\r\n<p>root</p>\n"));
}

static void test_static_mounted_in_the_router(void **state)
{
    (void)state;
    learn_etag();
    exchange("GET /r/files/f.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(OK_200);
    exchange("GET /r/api HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_memory_equal(resp + resp_len - 3, "api", 3);
    exchange("GET /r/files/sub HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(resp, "\r\nLocation: /r/files/sub/\r\n"));
    exchange("GET /r/files/sub/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(resp, "<p>sub</p>"));
    /* The router cleans dot segments itself (a redirect); never the file. */
    exchange("GET /r/files/%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(strncmp(resp, "HTTP/1.1 200", 12) == 0, 0);
    assert_null(strstr(resp, "top secret"));
    exchange("GET /r/files/sub%2f..%2fsecret.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_null(strstr(resp, "top secret"));
    status_is("/r/files/nope", 404);
}

static void test_static_header_values_are_checked_at_every_offset(void **state)
{
    (void)state;
    exchange("GET /hdrcheck HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(strncmp(resp, "HTTP/1.1 204 ", 13), 0);
}

static void test_static_conditional_requests_rfc9110_section13(void **state)
{
    char h[512];

    (void)state;
    learn_etag();
    /* If-None-Match: weak comparison, 304 with the validators and no body. */
    snprintf(h, sizeof(h), "If-None-Match: %s\r\n", fx.etag);
    get_f(h);
    expect(NM_304);
    snprintf(h, sizeof(h), "If-None-Match: \"zz\", W/%s\r\n", fx.etag);
    get_f(h);
    expect(NM_304);
    get_f("If-None-Match: *\r\n");
    expect(NM_304);
    snprintf(h, sizeof(h), "HEAD /f.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n", fx.etag);
    exchange(h);
    expect(NM_304);
    /* If-None-Match takes precedence over If-Modified-Since (§13.2.2 step 3-4). */
    get_f("If-None-Match: \"other\"\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n");
    expect(OK_200);
    /* If-Modified-Since, in all three date formats. */
    get_f("If-Modified-Since: " T0_DATE "\r\n");
    expect(NM_304);
    get_f("If-Modified-Since: Thursday, 02-Jan-20 03:04:05 GMT\r\n");
    expect(NM_304);
    get_f("If-Modified-Since: Thu Jan  2 03:04:05 2020\r\n");
    expect(NM_304);
    get_f("If-Modified-Since: Thu, 02 Jan 2020 03:04:04 GMT\r\n");
    expect(OK_200);
    get_f("If-Modified-Since: not a date\r\n");
    expect(OK_200);
    /* If-Match: strong comparison; 412 otherwise. */
    get_f("If-Match: \"other\"\r\n");
    expect(PF_412);
    snprintf(h, sizeof(h), "If-Match: W/%s\r\n", fx.etag);
    get_f(h);
    expect(PF_412);
    snprintf(h, sizeof(h), "If-Match: \"a\", %s\r\n", fx.etag);
    get_f(h);
    expect(OK_200);
    get_f("If-Match: *\r\n");
    expect(OK_200);
    /* If-Unmodified-Since; ignored when If-Match is present (§13.2.2 step 2). */
    get_f("If-Unmodified-Since: Thu, 02 Jan 2020 03:04:04 GMT\r\n");
    expect(PF_412);
    get_f("If-Unmodified-Since: " T0_DATE "\r\n");
    expect(OK_200);
    snprintf(h, sizeof(h), "If-Match: %s\r\nIf-Unmodified-Since: Wed, 01 Jan 2020 00:00:00 GMT\r\n",
             fx.etag);
    get_f(h);
    expect(OK_200);
    /* Preconditions come before Range: a matching If-None-Match is a 304. */
    snprintf(h, sizeof(h), "If-None-Match: %s\r\nRange: bytes=0-1\r\n", fx.etag);
    get_f(h);
    expect(NM_304);
}

#define PARTIAL(range, len)                                                               \
    "HTTP/1.1 206 Partial Content\r\n" DATE "Content-Type: text/plain; charset=utf-8\r\n" \
    "Content-Length: " len "\r\nETag: {E}\r\nLast-Modified: " T0_DATE                     \
    "\r\nAccept-Ranges: bytes\r\nContent-Range: bytes " range "/20\r\n\r\n"

static void test_static_ranges_rfc9110_section14(void **state)
{
    char h[512];
    const char *b;

    (void)state;
    learn_etag();
    get_f("Range: bytes=0-4\r\n");
    expect(PARTIAL("0-4", "5") "01234");
    get_f("Range: bytes=15-\r\n");
    expect(PARTIAL("15-19", "5") "fghij");
    get_f("Range: bytes=-3\r\n");
    expect(PARTIAL("17-19", "3") "hij");
    get_f("Range: bytes=10-100\r\n");
    expect(PARTIAL("10-19", "10") "abcdefghij");
    get_f("Range: bytes=0-5,3-8\r\n"); /* overlapping: coalesced into one part */
    expect(PARTIAL("0-8", "9") "012345678");
    /* Unsatisfiable: 416 with bytes * / length. */
    get_f("Range: bytes=20-\r\n");
    expect("HTTP/1.1 416 Range Not Satisfiable\r\n" DATE
           "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 26\r\nETag: {E}\r\n"
           "Last-Modified: " T0_DATE "\r\nAccept-Ranges: bytes\r\nContent-Range: bytes */20\r\n\r\n"
           "416 Range Not Satisfiable\n");
    get_f("Range: bytes=-0\r\n");
    assert_int_equal(strncmp(resp, "HTTP/1.1 416 ", 13), 0);
    /* Invalid, another unit, or more ranges than max_ranges (4): the whole file. */
    get_f("Range: bytes=5-2\r\n");
    expect(OK_200);
    get_f("Range: items=0-1\r\n");
    expect(OK_200);
    get_f("Range: bytes=0-0,2-2,4-4,6-6,8-8\r\n");
    expect(OK_200);
    /* HEAD: range handling is defined for GET only (§14.2). */
    exchange("HEAD /f.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n");
    expect("HTTP/1.1 200 OK\r\n" DATE OK_HEADERS);
    /* Several ranges: multipart/byteranges (§14.6). */
    get_f("Range: bytes=0-1,-2\r\n");
    b = strstr(resp, "boundary=");
    assert_non_null(b);
    {
        char bnd[64], want[2048], body[1024];
        int bl;

        snprintf(bnd, sizeof(bnd), "%.*s", (int)(strchr(b, '\r') - b - 9), b + 9);
        bl = snprintf(body, sizeof(body),
                      "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Range: bytes 0-1/20\r\n\r\n01"
                      "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Range: bytes 18-19/20\r\n\r\nij"
                      "\r\n--%s--\r\n",
                      bnd, bnd, bnd);
        snprintf(want, sizeof(want),
                 "HTTP/1.1 206 Partial Content\r\n" DATE
                 "Content-Type: multipart/byteranges; boundary=%s\r\nContent-Length: %d\r\n"
                 "ETag: %s\r\nLast-Modified: " T0_DATE "\r\nAccept-Ranges: bytes\r\n\r\n%s",
                 bnd, bl, fx.etag, body);
        if (resp_len != strlen(want) || memcmp(resp, want, resp_len) != 0)
            fail_msg("response:\n%.*s\n--- wanted:\n%s", (int)resp_len, resp, want);
    }
    /* If-Range: a matching strong ETag or the exact date lets the range apply. */
    snprintf(h, sizeof(h), "Range: bytes=0-4\r\nIf-Range: %s\r\n", fx.etag);
    get_f(h);
    expect(PARTIAL("0-4", "5") "01234");
    get_f("Range: bytes=0-4\r\nIf-Range: \"other\"\r\n");
    expect(OK_200);
    snprintf(h, sizeof(h), "Range: bytes=0-4\r\nIf-Range: W/%s\r\n", fx.etag);
    get_f(h);
    expect(OK_200);
    get_f("Range: bytes=0-4\r\nIf-Range: " T0_DATE "\r\n");
    expect(PARTIAL("0-4", "5") "01234");
    get_f("Range: bytes=0-4\r\nIf-Range: Thu, 02 Jan 2020 03:04:06 GMT\r\n");
    expect(OK_200);
}

static void status_is(const char *target, int status)
{
    char req[1024];
    char want[8];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    exchange(req);
    snprintf(want, sizeof(want), " %d ", status);
    if (resp_len < 13 || memcmp(resp + 8, want, 5) != 0)
        fail_msg("%s: %.*s", target, (int)(resp_len < 40 ? resp_len : 40), resp);
}

static void test_static_path_safety(void **state)
{
    (void)state;
    status_is("/../secret.txt", 400);
    status_is("/sub/../../secret.txt", 400);
    status_is("/%2e%2e/secret.txt", 400);
    status_is("/%2E%2E/secret.txt", 400);
    status_is("/sub/%2e%2e/f.txt", 400);
    status_is("/sub%2f..%2ff.txt", 404);
    status_is("/sub%2Findex.html", 404);
    status_is("/f.txt%00.png", 400);
    status_is("/sub%5cindex.html", 400);
    status_is("/.env", 403);
    status_is("/sub/../.env", 403);
    status_is("/out/etc/passwd", 403); /* symlink leaving the root */
    status_is("/etc/passwd", 403);     /* absolute symlink */
    status_is("/in.txt", 200);         /* symlink inside */
    status_is("//f.txt", 200);
    status_is("/sub/./../f.txt", 200);
    status_is("/nope.txt", 404);
    status_is("/f.txt/", 404);
    status_is("/empty/", 403); /* no index, listing off */
    /* A directory named x.html is a directory: redirected, never served as HTML. */
    exchange("GET /x.html?a=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    expect("HTTP/1.1 301 Moved Permanently\r\n" DATE "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: 22\r\nLocation: /x.html/?a=1\r\n\r\n301 Moved Permanently\n");
    exchange("GET /static/sub HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(resp, "\r\nLocation: /static/sub/\r\n"));
    status_is("/sub/", 200);
    assert_non_null(strstr(resp, "<p>sub</p>"));
    if (geteuid() == 0) {
        print_message("[  SKIP    ] EACCES -> 403: running as root, permissions do not apply\n");
    } else {
        char path[PATH_MAX + 16];

        snprintf(path, sizeof(path), "%s/secret.txt", fx.dir);
        chmod(path, 0);
        status_is("/secret.txt", 403);
    }
}

static void test_static_precompressed_siblings(void **state)
{
    (void)state;
    exchange("GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, br\r\n\r\n");
    assert_non_null(strstr(resp, "\r\nContent-Encoding: br\r\n"));
    assert_non_null(strstr(resp, "\r\nVary: Accept-Encoding\r\n"));
    assert_non_null(strstr(resp, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
    assert_memory_equal(resp + resp_len - 8, "BR-BYTES", 8);
    exchange("GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br;q=0.5, gzip;q=0.8\r\n\r\n");
    assert_non_null(strstr(resp, "\r\nContent-Encoding: gzip\r\n"));
    assert_memory_equal(resp + resp_len - 8, "GZ-BYTES", 8);
    exchange("GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0, identity\r\n\r\n");
    assert_null(strstr(resp, "Content-Encoding"));
    assert_non_null(strstr(resp, "\r\nVary: Accept-Encoding\r\n"));
    assert_non_null(strstr(resp, "plain text, plain text"));
    exchange("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_null(strstr(resp, "Content-Encoding"));
    assert_non_null(strstr(resp, "\r\nVary: Accept-Encoding\r\n"));
    /* Each variant has its own validator. */
    exchange("GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
    char tag[64];
    const char *e = strstr(resp, "ETag: ") + 6;
    snprintf(tag, sizeof(tag), "%.*s", (int)(strchr(e, '\r') - e), e);
    char req[512];
    snprintf(req, sizeof(req),
             "GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nIf-None-Match: %s\r\n\r\n",
             tag);
    exchange(req);
    assert_int_equal(strncmp(resp, "HTTP/1.1 304 ", 13), 0);
    assert_non_null(strstr(resp, "\r\nVary: Accept-Encoding\r\n"));
    snprintf(req, sizeof(req), "GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n", tag);
    exchange(req);
    assert_int_equal(strncmp(resp, "HTTP/1.1 200 ", 13), 0);
    /* No siblings: no Vary. */
    get_f("Accept-Encoding: gzip\r\n");
    assert_null(strstr(resp, "Vary"));
}

static void test_static_listing_escapes_names(void **state)
{
    (void)state;
    write_text("empty/<b>&\"'.txt", "x");
    write_text("empty/.hidden", "x");
    make_dir("empty/d d");
    exchange("GET /empty/ HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(strncmp(resp, "HTTP/1.1 200 ", 13), 0);
    assert_non_null(strstr(resp, "Content-Type: text/html; charset=utf-8"));
    assert_non_null(
        strstr(resp, "<a href=\"%3Cb%3E%26%22%27.txt\">&lt;b&gt;&amp;&quot;&#39;.txt</a>"));
    assert_non_null(strstr(resp, "<a href=\"d%20d/\">d d/</a>"));
    assert_null(strstr(resp, "hidden"));
    assert_null(strstr(resp, "<b>"));
}

/* Run the loop until the cache's lookup time has passed (a clock, not a sleep). */
static void let_cache_expire(uint32_t ms)
{
    hp_loop_update_time(fx.loop);
    uint64_t until = hp_loop_now(fx.loop) + ms + 1;

    while (hp_loop_now(fx.loop) <= until) {
        hp_loop_run_once(fx.loop, 5);
        hp_loop_update_time(fx.loop);
    }
}

static void test_static_file_replaced_while_cached(void **state)
{
    char tmp[PATH_MAX + 16], dst[PATH_MAX + 16];
    int c = client_new(0);
    struct hp_static_stats s0, s1;

    (void)state;
    exchange_on(c, "GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert_non_null(strstr(resp, "0123456789abcdefghij"));
    hp_static_stats(fx.st, &s0);
    exchange_on(c, "GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
    hp_static_stats(fx.st, &s1);
    assert_int_equal(s1.lookups, s0.lookups); /* a hit: no open, no stat */
    assert_int_equal(s1.hits, s0.hits + 1);
    /* Replaced by rename (a new inode) ... */
    write_text("f.new", "replaced!");
    snprintf(tmp, sizeof(tmp), "%s/f.new", fx.dir);
    snprintf(dst, sizeof(dst), "%s/f.txt", fx.dir);
    assert_int_equal(rename(tmp, dst), 0);
    let_cache_expire(50);
    exchange_on(c, "GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert_non_null(strstr(resp, "\r\nContent-Length: 9\r\n"));
    assert_memory_equal(resp + resp_len - 9, "replaced!", 9);
    /* ... and rewritten in place, same size, another mtime. */
    {
        struct timespec ts[2] = {{T0 + 10, 0}, {T0 + 10, 0}};
        int fd = open(dst, O_WRONLY | O_CLOEXEC);

        hp_test_write_all(fd, "REPLACED?", 9);
        futimens(fd, ts);
        close(fd);
    }
    let_cache_expire(50);
    exchange_on(c, "GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert_memory_equal(resp + resp_len - 9, "REPLACED?", 9);
    assert_non_null(strstr(resp, "Last-Modified: Thu, 02 Jan 2020 03:04:15 GMT"));
    /* ... and removed. */
    unlink(dst);
    let_cache_expire(50);
    exchange_on(c, "GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n", false);
    assert_int_equal(strncmp(resp, "HTTP/1.1 404 ", 13), 0);
    close(c);
}

static atomic_bool gate;

static void hold(struct hp_work *w)
{
    (void)w;
    while (!atomic_load(&gate))
        sched_yield();
}

static void held(struct hp_work *w, int status)
{
    (void)w;
    assert_int_equal(status, 0);
}

/* Bytes readable on @p c within a few loop iterations (0 if none). */
static size_t poll_bytes(int c, char *buf, size_t cap, unsigned iterations)
{
    size_t n = 0;

    for (unsigned i = 0; i < iterations; i++) {
        ssize_t r;

        hp_loop_run_once(fx.loop, 5);
        while (n < cap && (r = read(c, buf + n, cap - n)) > 0)
            n += (size_t)r;
    }
    return n;
}

static void test_static_cold_lookup_never_blocks_the_loop(void **state)
{
    struct hp_work blocker;
    char buf[4096];
    int a, b;

    (void)state;
    exchange("GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n"); /* now cached */
    memset(&blocker, 0, sizeof(blocker));
    atomic_store(&gate, false);
    assert_int_equal(hp_work_submit(fx.loop, &blocker, hold, held), 0); /* the only worker */
    a = client_new(0);
    b = client_new(0);
    send_str(a, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"); /* cold: needs the pool */
    assert_int_equal(poll_bytes(a, buf, sizeof(buf), 20), 0);
    /* The loop still answers what the cache knows while the pool is stuck. */
    send_str(b, "GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    exchange_on(b, "", false);
    assert_non_null(strstr(resp, "0123456789abcdefghij"));
    atomic_store(&gate, true);
    exchange_on(a, "", false);
    assert_non_null(strstr(resp, "plain text, plain text"));
    close(a);
    close(b);
}

static void test_static_client_gone_during_cold_lookup(void **state)
{
    struct hp_work blocker;
    struct hp_static_stats st;
    int a;

    (void)state;
    memset(&blocker, 0, sizeof(blocker));
    atomic_store(&gate, false);
    assert_int_equal(hp_work_submit(fx.loop, &blocker, hold, held), 0);
    a = client_new(0);
    send_str(a, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    ct_spin(20);
    hp_static_stats(fx.st, &st);
    assert_int_equal(st.in_flight, 1); /* waiting for the lookup */
    close(a);
    ct_spin(20);
    atomic_store(&gate, true);
    drain_server(); /* the lookup completes, the closed request is released: nothing leaks */
    hp_static_stats(fx.st, &st);
    assert_int_equal(st.in_flight, 0);
}

static size_t big_size(void)
{
    /* valgrind runs every test program: keep its run short. */
    return getenv("HP_TEST_VALGRIND") ? (8u << 20) : (100u << 20);
}

static void test_static_100mib_through_small_sndbuf_to_slow_reader(void **state)
{
    size_t size = big_size(), got = 0, hl = 0;
    int c = client_new(4096);
    char head[1024];
    static unsigned char buf[65536];
    uint64_t deadline;

    (void)state;
    write_pattern("big.bin", size);
    send_str(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    hp_loop_update_time(fx.loop);
    deadline = hp_loop_now(fx.loop) + 120000;
    /* The head first. */
    while (hl == 0) {
        hp_loop_run_once(fx.loop, 10);
        ssize_t r = read(c, head + got, 1); /* byte by byte: the head only */

        if (r == 1 && ++got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            hl = got;
        assert_true(got < sizeof(head));
    }
    head[hl] = '\0';
    char want[64];
    snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", size);
    assert_non_null(strstr(head, want));
    got = 0;
    /* A slow reader: at most 16 KiB per loop iteration. */
    while (got < size) {
        hp_loop_run_once(fx.loop, 10);
        ssize_t r = read(c, buf, 16384);

        if (r > 0) {
            for (ssize_t i = 0; i < r; i++) {
                if (buf[i] != pat(got + (size_t)i))
                    fail_msg("byte %zu differs", got + (size_t)i);
            }
            got += (size_t)r;
        } else if (r == 0) {
            fail_msg("closed after %zu of %zu bytes", got, size);
        }
        hp_loop_update_time(fx.loop);
        if (hp_loop_now(fx.loop) > deadline)
            fail_msg("only %zu of %zu bytes", got, size);
    }
    assert_int_equal(got, size);
    close(c);
}

static void test_static_client_closing_mid_file(void **state)
{
    int c = client_new(4096);
    char buf[8192];
    size_t got = 0;
    struct hp_static_stats s;

    (void)state;
    write_pattern("mid.bin", 8u << 20);
    send_str(c, "GET /mid.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    while (got < 100000) {
        hp_loop_run_once(fx.loop, 10);
        ssize_t r = read(c, buf, sizeof(buf));
        if (r > 0)
            got += (size_t)r;
    }
    close(c);
    drain_server(); /* the handler finishes its request; nothing leaks (ASan, valgrind) */
    hp_static_stats(fx.st, &s);
    assert_int_equal(s.in_flight, 0);
}

static void test_static_file_shrinking_while_sent_cuts_the_connection(void **state)
{
    int c = client_new(4096);
    static unsigned char buf[65536];
    size_t got = 0, total = 4u << 20, hl = 0;
    char path[PATH_MAX + 16];
    bool truncated = false;

    (void)state;
    write_pattern("shrink.bin", total);
    snprintf(path, sizeof(path), "%s/shrink.bin", fx.dir);
    send_str(c, "GET /shrink.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    unsigned char *all = malloc(total + 4096);
    for (;;) {
        hp_loop_run_once(fx.loop, 10);
        ssize_t r = read(c, buf, sizeof(buf));

        if (r == 0)
            break;
        if (r < 0)
            continue;
        memcpy(all + got, buf, (size_t)r);
        got += (size_t)r;
        if (!hl) {
            const char *e = head_end((const char *)all, got);
            if (e)
                hl = (size_t)(e - (const char *)all);
        }
        if (hl && !truncated && got > hl + 100000) {
            assert_int_equal(truncate(path, 1u << 20), 0);
            truncated = true;
        }
        assert_true(got <= hl + total);
    }
    assert_true(truncated);
    assert_true(got - hl < total); /* cut short, the connection closed */
    for (size_t i = hl; i < got; i++) {
        if (all[i] != pat(i - hl))
            fail_msg("garbage at body byte %zu", i - hl);
    }
    free(all);
    close(c);
}

static void test_static_many_concurrent_downloads(void **state)
{
    enum { N = 1000 };
    size_t n = getenv("HP_TEST_VALGRIND") ? 100 : N;
    const size_t size = 100000; /* streamed from the descriptor (setup_streamed) */
    int *cs = calloc(n, sizeof(int));
    size_t *got = calloc(n, sizeof(size_t)), *hl = calloc(n, sizeof(size_t)), done = 0;
    char **bufs = calloc(n, sizeof(char *));
    uint64_t deadline;

    (void)state;
    write_pattern("dl.bin", size);
    for (size_t i = 0; i < n; i++) {
        cs[i] = client_new(0);
        bufs[i] = malloc(size + 1024);
        send_str(cs[i], "GET /dl.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    }
    hp_loop_update_time(fx.loop);
    deadline = hp_loop_now(fx.loop) + 120000;
    while (done < n) {
        hp_loop_run_once(fx.loop, 10);
        for (size_t i = 0; i < n; i++) {
            ssize_t r;

            if (cs[i] < 0)
                continue;
            while ((r = read(cs[i], bufs[i] + got[i], size + 1024 - got[i])) > 0)
                got[i] += (size_t)r;
            if (r == 0) {
                close(cs[i]);
                cs[i] = -1;
                done++;
            }
        }
        if (hp_loop_now(fx.loop) > deadline)
            fail_msg("%zu of %zu downloads finished", done, n);
    }
    for (size_t i = 0; i < n; i++) {
        const char *e = head_end(bufs[i], got[i]);

        assert_non_null(e);
        hl[i] = (size_t)(e - bufs[i]);
        if (strncmp(bufs[i], "HTTP/1.1 200 ", 13) != 0)
            fail_msg("download %zu: %.*s", i, (int)(got[i] < 200 ? got[i] : 200), bufs[i]);
        assert_int_equal(got[i] - hl[i], size);
        for (size_t k = 0; k < size; k += 997)
            assert_int_equal((unsigned char)e[k], pat(k));
        free(bufs[i]);
    }
    free(bufs);
    free(cs);
    free(got);
    free(hl);
}

/* ---- zero-copy bodies (sendfile) over loopback TCP -------------------------- */

/* A loopback TCP connection, the server's end adopted; returns the client's (non-blocking). */
static int tcp_client_new(int sndbuf)
{
    int fd[2];

    hp_test_tcp_pair(fd);
    if (sndbuf)
        assert_int_equal(setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    assert_int_equal(hp_http_server_adopt(fx.srv, fd[1]), 0);
    return fd[0];
}

/* Read from @p c until @p want bytes came (or EOF: then fewer); bounded by the test deadline. */
static unsigned char *read_n(int c, size_t want, size_t *got_out, bool *eof)
{
    unsigned char *b = malloc(want + 1);
    size_t got = 0;
    uint64_t deadline;

    assert_non_null(b);
    *eof = false;
    hp_loop_update_time(fx.loop);
    deadline = hp_loop_now(fx.loop) + 120000;
    while (got < want) {
        ssize_t r;

        hp_loop_run_once(fx.loop, 10);
        while (got < want && (r = read(c, b + got, want - got)) > 0)
            got += (size_t)r;
        if (got < want && r == 0) {
            *eof = true;
            break;
        }
        hp_loop_update_time(fx.loop);
        if (hp_loop_now(fx.loop) > deadline)
            fail_msg("only %zu of %zu bytes", got, want);
    }
    *got_out = got;
    return b;
}

/* The body bytes @p b[0..len) are the pattern from @p off. */
static void body_is_pattern(const unsigned char *b, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (b[i] != pat(off + i))
            fail_msg("body byte %zu (file offset %llu) differs", i, (unsigned long long)(off + i));
    }
}

static void check_path_taken(void)
{
    struct hp_static_stats s;

    hp_static_stats(fx.st, &s);
    if (want_zero_copy)
        assert_true(s.sendfiles > 0);
    else
        assert_int_equal(s.sendfiles, 0);
}

/* Read one response head from @p c byte by byte (the body stays in the socket). */
static size_t read_head(int c, char *head, size_t cap)
{
    size_t got = 0;
    uint64_t deadline;

    hp_loop_update_time(fx.loop);
    deadline = hp_loop_now(fx.loop) + HP_TEST_DEADLINE_MS;
    for (;;) {
        ssize_t r;

        hp_loop_run_once(fx.loop, 10);
        while ((r = read(c, head + got, 1)) == 1) {
            got++;
            assert_true(got < cap);
            if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0) {
                head[got] = '\0';
                return got;
            }
        }
        if (r == 0)
            fail_msg("closed after %zu head bytes", got);
        hp_loop_update_time(fx.loop);
        if (hp_loop_now(fx.loop) > deadline)
            fail_msg("no complete head (%zu bytes)", got);
    }
}

/* A response head on @p c: status line @p status, Content-Length @p len, the body the pattern from
 * @p off. */
static void expect_pattern(int c, const char *status, uint64_t off, size_t len, bool head_only)
{
    char head[2048], want[64];
    unsigned char *b;
    size_t got;
    bool eof;

    read_head(c, head, sizeof(head));
    if (strncmp(head, status, strlen(status)) != 0)
        fail_msg("head:\n%s", head);
    snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", len);
    if (!strstr(head, want))
        fail_msg("head:\n%s\nwanted %s", head, want);
    if (head_only)
        return;
    b = read_n(c, len, &got, &eof);
    assert_int_equal(got, len);
    body_is_pattern(b, off, len);
    free(b);
}

/* GET @p target (header lines @p extra) on a fresh TCP connection with SO_SNDBUF @p sndbuf. */
static void get_pattern(const char *target, int sndbuf, const char *extra, const char *status,
                        uint64_t off, size_t len)
{
    int c = tcp_client_new(sndbuf);
    char req[512];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", target, extra);
    send_str(c, req);
    expect_pattern(c, status, off, len, false);
    close(c);
}

static void test_static_tcp_downloads_byte_exact(void **state)
{
    size_t big = big_size();
    char range[96];

    (void)state;
    write_pattern("p64k.bin", 65536);
    write_pattern("p1m.bin", 1u << 20);
    write_pattern("p100m.bin", big);
    get_pattern("/p64k.bin", 0, "", "HTTP/1.1 200 ", 0, 65536);
    get_pattern("/p1m.bin", 0, "", "HTTP/1.1 200 ", 0, 1u << 20);
    get_pattern("/p1m.bin", 0, "Range: bytes=1000-70999\r\n", "HTTP/1.1 206 ", 1000, 70000);
    get_pattern("/p1m.bin", 0, "Range: bytes=-20000\r\n", "HTTP/1.1 206 ", (1u << 20) - 20000,
                20000);
    get_pattern("/p1m.bin", 0, "Range: bytes=1048000-\r\n", "HTTP/1.1 206 ", 1048000,
                (1u << 20) - 1048000);
    /* Through a small SO_SNDBUF: many resumes on writability. */
    get_pattern("/p1m.bin", 4096, "", "HTTP/1.1 200 ", 0, 1u << 20);
    get_pattern("/p1m.bin", 4096, "Range: bytes=3-1000002\r\n", "HTTP/1.1 206 ", 3, 1000000);
    /* 100 MiB (test_static_100mib_... takes it through a small SO_SNDBUF). */
    get_pattern("/p100m.bin", 0, "", "HTTP/1.1 200 ", 0, big);
    snprintf(range, sizeof(range), "Range: bytes=%zu-%zu\r\n", big / 2 + 1, big - 2);
    get_pattern("/p100m.bin", 0, range, "HTTP/1.1 206 ", big / 2 + 1, big / 2 - 2);
    check_path_taken();
}

/* Several requests in one write: each response after the one before, the files' bytes in between.
 */
static void test_static_tcp_pipelined_after_a_file_body(void **state)
{
    int c = tcp_client_new(8192);
    char head[2048];
    unsigned char *b;
    size_t got;
    bool eof;

    (void)state;
    write_pattern("p1m.bin", 1u << 20);
    write_pattern("p64k.bin", 65536);
    send_str(c, "GET /p1m.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /f.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                "HEAD /p1m.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /p64k.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100-40099\r\n\r\n"
                "GET /p64k.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /f.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect_pattern(c, "HTTP/1.1 200 ", 0, 1u << 20, false);
    read_head(c, head, sizeof(head));
    assert_non_null(strstr(head, "\r\nContent-Length: 20\r\n"));
    b = read_n(c, 20, &got, &eof);
    assert_memory_equal(b, "0123456789abcdefghij", 20);
    free(b);
    expect_pattern(c, "HTTP/1.1 200 ", 0, 1u << 20, true); /* HEAD: no body */
    expect_pattern(c, "HTTP/1.1 206 ", 100, 40000, false);
    expect_pattern(c, "HTTP/1.1 200 ", 0, 65536, false);
    read_head(c, head, sizeof(head));
    b = read_n(c, 21, &got, &eof); /* 20 bytes, then the close */
    assert_int_equal(got, 20);
    assert_true(eof);
    assert_memory_equal(b, "0123456789abcdefghij", 20);
    free(b);
    close(c);
    check_path_taken();
}

/* The client leaves with most of the file queued: no leak, nothing in flight after. */
static void test_static_tcp_client_closing_mid_file(void **state)
{
    int c = tcp_client_new(4096);
    unsigned char *b;
    size_t got;
    bool eof;
    struct hp_static_stats s;

    (void)state;
    write_pattern("mid.bin", 16u << 20);
    send_str(c, "GET /mid.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    b = read_n(c, 200000, &got, &eof);
    free(b);
    close(c);
    drain_server();
    hp_static_stats(fx.st, &s);
    assert_int_equal(s.in_flight, 0);
    check_path_taken();
}

/*
 * A file truncated while its body is queued: the connection is cut after
 * bytes that are the file's own, then closed (no padding, no hang).
 */
static void test_static_tcp_file_truncated_while_sent(void **state)
{
    int c = tcp_client_new(4096);
    char head[2048], path[PATH_MAX + 16];
    unsigned char *b;
    size_t got, total = 8u << 20;
    bool eof;

    (void)state;
    write_pattern("shrink.bin", total);
    snprintf(path, sizeof(path), "%s/shrink.bin", fx.dir);
    send_str(c, "GET /shrink.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    read_head(c, head, sizeof(head));
    b = read_n(c, 100000, &got, &eof);
    free(b);
    assert_int_equal(truncate(path, 1u << 20), 0);
    b = read_n(c, total - 100000, &got, &eof);
    assert_true(eof); /* cut, and closed */
    assert_true(100000 + got <=
                (1u << 20) + 4u * 65536); /* nothing beyond what the file had (+ kernel buffers) */
    body_is_pattern(b, 100000, got < (1u << 20) - 100000 ? got : (1u << 20) - 100000);
    free(b);
    close(c);
    drain_server();
}

/*
 * The cached file is replaced (new inode) and revalidated while the old
 * version's body is still queued: the old descriptor stays open until its
 * body is sent (the reader gets the old bytes, exactly), the next request
 * gets the new file.
 */
static void test_static_tcp_file_replaced_while_its_body_is_queued(void **state)
{
    int c = tcp_client_new(4096);
    char tmp[PATH_MAX + 16], dst[PATH_MAX + 16];

    (void)state;
    write_pattern("rep.bin", 4u << 20);
    send_str(c, "GET /rep.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    ct_spin(5); /* queued; the client reads nothing yet */
    write_text("rep.new", "new version");
    snprintf(tmp, sizeof(tmp), "%s/rep.new", fx.dir);
    snprintf(dst, sizeof(dst), "%s/rep.bin", fx.dir);
    assert_int_equal(rename(tmp, dst), 0);
    let_cache_expire(50);
    exchange("GET /rep.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_memory_equal(resp + resp_len - 11, "new version", 11);
    expect_pattern(c, "HTTP/1.1 200 ", 0, 4u << 20, false);
    close(c);
    check_path_taken();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_static_get_and_head_byte_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_mounted_in_the_router, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_header_values_are_checked_at_every_offset,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_conditional_requests_rfc9110_section13, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_ranges_rfc9110_section14, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_get_and_head_byte_exact, setup_streamed,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_conditional_requests_rfc9110_section13,
                                        setup_streamed, teardown),
        cmocka_unit_test_setup_teardown(test_static_ranges_rfc9110_section14, setup_streamed,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_path_safety, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_precompressed_siblings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_listing_escapes_names, setup_listing, teardown),
        cmocka_unit_test_setup_teardown(test_static_file_replaced_while_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_cold_lookup_never_blocks_the_loop,
                                        setup_one_thread, teardown),
        cmocka_unit_test_setup_teardown(test_static_client_gone_during_cold_lookup,
                                        setup_one_thread, teardown),
        cmocka_unit_test_setup_teardown(test_static_100mib_through_small_sndbuf_to_slow_reader,
                                        setup_streamed, teardown),
        cmocka_unit_test_setup_teardown(test_static_client_closing_mid_file, setup_streamed,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_file_shrinking_while_sent_cuts_the_connection,
                                        setup_streamed, teardown),
        cmocka_unit_test_setup_teardown(test_static_many_concurrent_downloads, setup_streamed,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_downloads_byte_exact, setup_sendfile,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_downloads_byte_exact, setup_copy, teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_pipelined_after_a_file_body, setup_sendfile,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_pipelined_after_a_file_body, setup_copy,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_client_closing_mid_file, setup_sendfile,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_client_closing_mid_file, setup_copy,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_file_truncated_while_sent, setup_sendfile,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_file_truncated_while_sent, setup_copy,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_static_tcp_file_replaced_while_its_body_is_queued,
                                        setup_sendfile, teardown),
    };

    if (getenv("CT_FILTER")) /* run one test by hand: CT_FILTER='*ranges*' */
        cmocka_set_test_filter(getenv("CT_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
