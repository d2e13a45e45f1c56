/*
 * tests/core/test_tcp.c - streams and listeners over loopback TCP (and
 * socketpairs where TCP adds nothing): echo on IPv4 and IPv6, 1,000
 * concurrent connections, large payloads through a small SO_SNDBUF (partial
 * writes), write and connect callbacks never synchronous, cancellation on
 * close, half-close, EOF, reset by peer, the input limit, and re-entrancy.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>

#include "coretest.h"
#include "testutil.h"

/* ---- server side ---------------------------------------------------------- */

enum srv_mode {
    SRV_ECHO,          /* echo everything; close after EOF once all is echoed */
    SRV_RAW,           /* keep the accepted descriptors, untouched */
    SRV_HELLO_CLOSE,   /* write "hello", close from its write callback */
    SRV_COLLECT_REPLY, /* check the pattern until EOF, then reply "bye" and close */
};

struct server;

struct sconn {
    struct hp_stream s;
    struct hp_write_req req;
    struct server *srv;
    struct sconn *next;
    bool writing, eof, closing;
    size_t received;
    unsigned char buf[16384];
};

struct server {
    struct hp_loop *loop;
    struct hp_listener l;
    enum srv_mode mode;
    int sndbuf;
    size_t accepted, closed, streams;
    size_t accept_errors;
    struct sconn *conns;
    int raw[16];
    size_t nraw;
    uint32_t seed; /* SRV_COLLECT_REPLY: expected pattern */
    size_t expect_len;
    size_t pattern_errors;
};

static void on_sclose(struct hp_stream *s)
{
    struct sconn *c = hp_container_of(s, struct sconn, s);

    c->srv->closed++;
}

static void sconn_close(struct sconn *c)
{
    if (!c->closing) {
        c->closing = true;
        hp_stream_close(&c->s, on_sclose);
    }
}

static void echo_pump(struct sconn *c);

static void on_echo_written(struct hp_write_req *req, int status)
{
    struct sconn *c = hp_container_of(req, struct sconn, req);

    c->writing = false;
    if (status != 0) {
        if (status != -ECANCELED)
            sconn_close(c);
        return;
    }
    echo_pump(c);
}

static void echo_pump(struct sconn *c)
{
    struct hp_buf in, out;
    size_t n;

    if (c->writing || c->closing)
        return;
    in = hp_stream_input(&c->s);
    if (in.len == 0) {
        if (c->eof)
            sconn_close(c); /* everything echoed */
        return;
    }
    n = in.len < sizeof(c->buf) ? in.len : sizeof(c->buf);
    memcpy(c->buf, in.base, n);
    hp_stream_consume(&c->s, n);
    out = hp_buf_make(c->buf, n);
    assert_int_equal(hp_stream_write(&c->s, &c->req, &out, 1, on_echo_written), 0);
    c->writing = true;
}

static void on_closing_written(struct hp_write_req *req, int status)
{
    struct sconn *c = hp_container_of(req, struct sconn, req);

    (void)status;
    sconn_close(c);
}

static void write_and_close(struct sconn *c, const char *text)
{
    struct hp_buf b = hp_buf_make(text, strlen(text));

    assert_int_equal(hp_stream_write(&c->s, &c->req, &b, 1, on_closing_written), 0);
}

static void on_sread(struct hp_stream *s, int status)
{
    struct sconn *c = hp_container_of(s, struct sconn, s);
    struct server *srv = c->srv;
    struct hp_buf in;

    if (status == 0 || status == -ENOBUFS) {
        if (srv->mode == SRV_ECHO) {
            echo_pump(c);
            return;
        }
        in = hp_stream_input(s);
        if (srv->mode == SRV_COLLECT_REPLY &&
            ct_pattern_check(in.base, in.len, srv->seed, c->received) != in.len)
            srv->pattern_errors++;
        c->received += in.len;
        hp_stream_consume(s, in.len);
        return;
    }
    if (status == HP_EOF) {
        c->eof = true;
        if (srv->mode == SRV_ECHO) {
            echo_pump(c);
        } else if (srv->mode == SRV_COLLECT_REPLY) {
            assert_int_equal(c->received, srv->expect_len);
            write_and_close(c, "bye");
        }
        return;
    }
    sconn_close(c); /* a failed stream */
}

static void on_accept(struct hp_listener *l, int fd, int status)
{
    struct server *srv = hp_container_of(l, struct server, l);
    struct sconn *c;

    if (status != 0) {
        srv->accept_errors++;
        return;
    }
    srv->accepted++;
    if (srv->mode == SRV_RAW) {
        assert_true(srv->nraw < 16);
        srv->raw[srv->nraw++] = fd;
        return;
    }
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->srv = srv;
    assert_int_equal(hp_stream_init(srv->loop, &c->s, fd), 0);
    c->next = srv->conns;
    srv->conns = c;
    srv->streams++;
    if (srv->sndbuf) {
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &srv->sndbuf, sizeof(srv->sndbuf)),
                         0);
    }
    assert_int_equal(hp_stream_read_start(&c->s, on_sread), 0);
    if (srv->mode == SRV_HELLO_CLOSE)
        write_and_close(c, "hello");
}

static int server_start(struct server *srv, struct hp_loop *loop, const char *host,
                        enum srv_mode mode)
{
    struct hp_listener_opts opts = {.host = host, .backlog = 2048};

    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->mode = mode;
    return hp_listener_start(loop, &srv->l, &opts, on_accept);
}

static uint16_t server_port(struct server *srv)
{
    int port = hp_listener_port(&srv->l);

    assert_true(port > 0 && port < 65536);
    return (uint16_t)port;
}

/* Stop listening, close what is left, wait for the close callbacks, free. */
static void server_finish(struct server *srv)
{
    hp_listener_stop(&srv->l);
    for (size_t i = 0; i < srv->nraw; i++)
        close(srv->raw[i]);
    for (struct sconn *c = srv->conns; c; c = c->next)
        sconn_close(c);
    hp_test_run_until_count(srv->loop, &srv->closed, srv->streams);
    while (srv->conns) {
        struct sconn *c = srv->conns;

        srv->conns = c->next;
        free(c);
    }
}

/* ---- client side ---------------------------------------------------------- */

struct client {
    struct hp_stream s;
    struct hp_write_req req;
    const unsigned char *data; /* payload, or NULL to only receive text */
    size_t len;
    uint32_t seed; /* the payload is ct_pattern_fill(seed, base) */
    uint64_t base;
    size_t nbufs;    /* split the payload in this many buffers (1..16) */
    int sndbuf;      /* SO_SNDBUF to set after connecting, 0: leave */
    bool half_close; /* hp_stream_shutdown() right after queueing the write */
    bool no_read;
    bool connected, wrote, eof, closed;
    int connect_status, write_status, read_error, write_after_error;
    size_t received, queued_after_write, pattern_errors;
    char text[64];
    size_t *done;
};

static void on_cclose(struct hp_stream *s)
{
    struct client *cl = hp_container_of(s, struct client, s);

    cl->closed = true;
    if (cl->done)
        (*cl->done)++;
}

static void on_cwrite(struct hp_write_req *req, int status)
{
    struct client *cl = hp_container_of(req, struct client, req);

    cl->wrote = true;
    cl->write_status = status;
    if (status != 0 && !hp_stream_is_closing(&cl->s)) {
        /* Later writes get the stream's write error, and never a callback. */
        struct hp_write_req again = {0};
        struct hp_buf b = hp_buf_make("x", 1);

        cl->write_after_error = hp_stream_write(&cl->s, &again, &b, 1, NULL);
        hp_stream_close(&cl->s, on_cclose);
    }
}

static void on_cread(struct hp_stream *s, int status)
{
    struct client *cl = hp_container_of(s, struct client, s);
    struct hp_buf in = hp_stream_input(s);

    if (status == 0) {
        if (cl->data) {
            if (ct_pattern_check(in.base, in.len, cl->seed, cl->base + cl->received) != in.len)
                cl->pattern_errors++;
        } else if (cl->received + in.len < sizeof(cl->text)) {
            memcpy(cl->text + cl->received, in.base, in.len);
        }
        cl->received += in.len;
        hp_stream_consume(s, in.len);
        return;
    }
    if (status == HP_EOF) {
        cl->eof = true;
    } else {
        cl->read_error = status;
    }
    if (!hp_stream_is_closing(s))
        hp_stream_close(s, on_cclose);
}

static void client_write_payload(struct client *cl)
{
    struct hp_buf bufs[16];
    size_t n = cl->nbufs ? cl->nbufs : 1, off = 0;

    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        /* Uneven pieces: the last takes the remainder. */
        size_t piece = i + 1 == n ? cl->len - off : (cl->len / n) - i * 7;

        bufs[i] = hp_buf_make(cl->data + off, piece);
        off += piece;
    }
    assert_int_equal(off, cl->len);
    assert_int_equal(hp_stream_write(&cl->s, &cl->req, bufs, n, on_cwrite), 0);
    assert_false(cl->wrote); /* never inside hp_stream_write() */
    cl->queued_after_write = hp_stream_write_queue_size(&cl->s);
    if (cl->half_close)
        assert_int_equal(hp_stream_shutdown(&cl->s), 0);
}

static void on_cconnect(struct hp_stream *s, int status)
{
    struct client *cl = hp_container_of(s, struct client, s);

    cl->connected = true;
    cl->connect_status = status;
    if (status != 0) {
        hp_stream_close(s, on_cclose);
        return;
    }
    if (cl->sndbuf) {
        assert_int_equal(
            setsockopt(hp_stream_fd(s), SOL_SOCKET, SO_SNDBUF, &cl->sndbuf, sizeof(cl->sndbuf)), 0);
    }
    if (!cl->no_read)
        assert_int_equal(hp_stream_read_start(s, on_cread), 0);
    if (cl->data)
        client_write_payload(cl);
}

static void client_connect(struct hp_loop *loop, struct client *cl, const char *host, uint16_t port)
{
    assert_int_equal(hp_stream_connect(loop, &cl->s, host, port, on_cconnect), 0);
    assert_false(cl->connected); /* never inside hp_stream_connect() */
}

static void client_check_echoed(const struct client *cl)
{
    assert_int_equal(cl->connect_status, 0);
    assert_true(cl->wrote);
    assert_int_equal(cl->write_status, 0);
    assert_int_equal(cl->read_error, 0);
    assert_true(cl->eof);
    assert_true(cl->closed);
    assert_int_equal(cl->received, cl->len);
    assert_int_equal(cl->pattern_errors, 0);
}

static bool ipv6_loopback_available(void)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    bool ok;

    if (fd < 0)
        return false;
    ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    close(fd);
    return ok;
}

static unsigned char *make_payload(size_t len, uint32_t seed)
{
    unsigned char *p = malloc(len);

    assert_non_null(p);
    ct_pattern_fill(p, len, seed, 0);
    return p;
}

/* ---- echo -------------------------------------------------------------------- */

static void run_single_echo(const char *listen_host, const char *connect_host)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(65536 + 13, 7);
    struct server srv;
    struct client cl;
    size_t done = 0;

    assert_int_equal(server_start(&srv, loop, listen_host, SRV_ECHO), 0);
    memset(&cl, 0, sizeof(cl));
    cl.len = 65536 + 13;
    cl.seed = 7;
    cl.data = payload;
    cl.nbufs = 3;
    cl.half_close = true;
    cl.done = &done;
    client_connect(loop, &cl, connect_host, server_port(&srv));
    hp_test_run_until_count(loop, &done, 1);
    client_check_echoed(&cl);
    server_finish(&srv);
    assert_int_equal(srv.accepted, 1);
    hp_test_loop_free(loop);
    free(payload);
}

static void test_tcp_listener_on_port_0_reports_the_port_it_got(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct server srv;

    (void)state;
    assert_int_equal(server_start(&srv, loop, "127.0.0.1", SRV_ECHO), 0);
    assert_true(server_port(&srv) > 0);
    assert_true(hp_loop_is_alive(loop));
    assert_int_equal(hp_loop_free(loop), -EBUSY);
    hp_listener_stop(&srv.l);
    hp_test_loop_free(loop);
}

static void test_tcp_echo_over_ipv4_loopback(void **state)
{
    (void)state;
    run_single_echo("127.0.0.1", "127.0.0.1");
}

static void test_tcp_echo_over_ipv6_loopback(void **state)
{
    (void)state;
    if (!ipv6_loopback_available())
        skip();
    run_single_echo("::1", "::1");
}

static void test_tcp_default_listener_is_dual_stack(void **state)
{
    (void)state;
    if (!ipv6_loopback_available())
        skip();
    run_single_echo(NULL, "127.0.0.1");
}

/* Raise the soft RLIMIT_NOFILE to @p want if needed; false if the hard limit is lower. */
static bool raise_nofile_soft_limit(rlim_t want, struct rlimit *saved)
{
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, saved), 0);
    rl = *saved;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return true;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        return false;
    rl.rlim_cur = want;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return true;
}

static void test_tcp_thousand_concurrent_connections_echo_every_byte(void **state)
{
    enum { CONNS = 1000, BATCH = 100, LEN = 16384 + 5 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct client *cl = calloc(CONNS, sizeof(*cl));
    unsigned char *shared = make_payload(LEN + CONNS * 37, 99);
    struct rlimit saved;
    struct server srv;
    uint16_t port;
    size_t done = 0;

    (void)state;
    assert_non_null(cl);
    if (!raise_nofile_soft_limit(2 * CONNS + 256, &saved)) {
        free(shared);
        free(cl);
        hp_test_loop_free(loop);
        skip(); /* the hard descriptor limit is too low for 1,000 connections */
    }
    assert_int_equal(server_start(&srv, loop, "127.0.0.1", SRV_ECHO), 0);
    port = server_port(&srv);
    for (size_t first = 0; first < CONNS; first += BATCH) {
        for (size_t i = first; i < first + BATCH; i++) {
            /* Each connection sends its own window of one shared pattern. */
            cl[i].base = i * 37;
            cl[i].data = shared + cl[i].base;
            cl[i].len = LEN;
            cl[i].seed = 99;
            cl[i].nbufs = 1 + i % 6;
            cl[i].half_close = true;
            cl[i].done = &done;
            client_connect(loop, &cl[i], "127.0.0.1", port);
        }
        /* Keep the accept queue short: let this batch in before the next. */
        hp_test_run_until_count(loop, &srv.accepted, first + BATCH);
    }
    hp_test_run_until_count(loop, &done, CONNS);
    for (size_t i = 0; i < CONNS; i++)
        client_check_echoed(&cl[i]);
    assert_int_equal(srv.accept_errors, 0);
    server_finish(&srv);
    assert_int_equal(srv.accepted, CONNS);
    hp_test_loop_free(loop);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    free(shared);
    free(cl);
}

static void test_tcp_large_payloads_through_a_small_sndbuf_arrive_intact(void **state)
{
    enum { CLIENTS = 3 };
    static const size_t nbufs[CLIENTS] = {1, 4, 9};
    const size_t len = 4u << 20;
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(len + CLIENTS, 5);
    struct client cl[CLIENTS];
    struct server srv;
    size_t done = 0;

    (void)state;
    assert_int_equal(server_start(&srv, loop, "127.0.0.1", SRV_ECHO), 0);
    srv.sndbuf = 4096;
    memset(cl, 0, sizeof(cl));
    for (size_t i = 0; i < CLIENTS; i++) {
        cl[i].base = i;
        cl[i].data = payload + i;
        cl[i].len = len - i * 1001;
        cl[i].seed = 5;
        cl[i].nbufs = nbufs[i];
        cl[i].sndbuf = 4096;
        cl[i].half_close = true;
        cl[i].done = &done;
        client_connect(loop, &cl[i], "127.0.0.1", server_port(&srv));
    }
    hp_test_run_until_count(loop, &done, CLIENTS);
    for (size_t i = 0; i < CLIENTS; i++) {
        client_check_echoed(&cl[i]);
        /* The first writev could not take it all: partial writes happened. */
        assert_true(cl[i].queued_after_write > 0);
        assert_true(cl[i].queued_after_write <= cl[i].len);
    }
    server_finish(&srv);
    hp_test_loop_free(loop);
    free(payload);
}

/* ---- write semantics on a socketpair stream --------------------------------- */

struct wstat {
    struct hp_write_req req;
    int status;
    size_t calls;
    size_t order; /* global sequence number of the callback */
};

static size_t wseq;
static size_t close_order;
static bool closed_flag;

static void on_wstat(struct hp_write_req *req, int status)
{
    struct wstat *w = hp_container_of(req, struct wstat, req);

    w->status = status;
    w->calls++;
    w->order = ++wseq;
}

static void on_close_flag(struct hp_stream *s)
{
    (void)s;
    closed_flag = true;
    close_order = ++wseq;
}

static void stream_pair(struct hp_loop *loop, struct hp_stream *s, int sv[2])
{
    hp_test_socketpair(sv);
    assert_int_equal(hp_stream_init(loop, s, sv[0]), 0);
    assert_int_equal(hp_stream_fd(s), sv[0]);
    closed_flag = false;
    wseq = 0;
    close_order = 0;
}

static void test_tcp_write_callback_never_runs_inside_hp_stream_write(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct wstat w = {0};
    struct hp_stream s;
    struct hp_buf b = hp_buf_make("abc", 3);
    char got[4];
    int sv[2];

    (void)state;
    stream_pair(loop, &s, sv);
    assert_int_equal(hp_stream_write(&s, &w.req, &b, 1, on_wstat), 0);
    assert_int_equal(w.calls, 0);
    assert_int_equal(hp_stream_write(&s, &w.req, &b, 1, on_wstat), -EINVAL); /* busy */
    hp_test_run_until_count(loop, &w.calls, 1);
    assert_int_equal(w.status, 0);
    assert_int_equal(read(sv[1], got, sizeof(got)), 3);
    assert_memory_equal(got, "abc", 3);

    assert_int_equal(hp_stream_write(&s, &w.req, &b, 0, on_wstat), -EINVAL);
    hp_stream_close(&s, on_close_flag);
    assert_true(hp_stream_is_closing(&s));
    hp_test_run_until(loop, &closed_flag);
    hp_test_loop_free(loop);
    close(sv[1]);
}

static void test_tcp_try_write_writes_now_or_defers_to_queued_writes(void **state)
{
    enum { BIG = 8u << 20 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct wstat w = {0};
    struct hp_stream s;
    struct hp_buf b = hp_buf_make("abc", 3), big;
    char got[4], *payload = calloc(1, BIG);
    int sv[2];

    (void)state;
    assert_non_null(payload);
    stream_pair(loop, &s, sv);
    assert_int_equal(hp_stream_try_write(&s, &b, 1), 3);
    assert_int_equal(read(sv[1], got, sizeof(got)), 3);
    assert_memory_equal(got, "abc", 3);

    /* More than the socket takes: the rest is queued, and try_write must not jump it. */
    big = hp_buf_make(payload, BIG);
    assert_int_equal(hp_stream_write(&s, &w.req, &big, 1, on_wstat), 0);
    assert_true(hp_stream_write_queue_size(&s) > 0);
    assert_int_equal(hp_stream_try_write(&s, &b, 1), -EAGAIN);

    hp_stream_close(&s, on_close_flag);
    assert_int_equal(hp_stream_try_write(&s, &b, 1), HP_ECLOSED);
    hp_test_run_until(loop, &closed_flag);
    assert_int_equal(w.status, -ECANCELED);
    hp_test_loop_free(loop);
    close(sv[1]);
    free(payload);
}

static void test_tcp_write_of_many_buffers_keeps_their_order(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    static const char *parts[] = {"a", "bc", "def", "ghij", "klmno", "p", "qr", "stu", "v", "wxyz"};
    struct hp_buf bufs[10];
    struct wstat w = {0};
    struct hp_stream s;
    char got[64];
    int sv[2];

    (void)state;
    stream_pair(loop, &s, sv);
    for (int i = 0; i < 10; i++)
        bufs[i] = hp_buf_make(parts[i], strlen(parts[i]));
    assert_int_equal(hp_stream_write(&s, &w.req, bufs, 10, NULL), 0);
    /* A NULL callback is allowed; a second request queues behind the first. */
    {
        struct wstat w2 = {0};
        struct hp_buf tail = hp_buf_make("!", 1);

        assert_int_equal(hp_stream_write(&s, &w2.req, &tail, 1, on_wstat), 0);
        hp_test_run_until_count(loop, &w2.calls, 1);
        assert_int_equal(w2.status, 0);
    }
    assert_int_equal(read(sv[1], got, sizeof(got)), 27);
    assert_memory_equal(got, "abcdefghijklmnopqrstuvwxyz!", 27);
    hp_stream_close(&s, on_close_flag);
    hp_test_run_until(loop, &closed_flag);
    hp_test_loop_free(loop);
    close(sv[1]);
}

/* One request, reused from its own callback for each next chunk. */
struct chain {
    struct hp_write_req req;
    struct hp_stream *s;
    const unsigned char *data;
    size_t next, chunks, done;
};

enum { CHAIN_CHUNK = 1000, CHAIN_CHUNKS = 100 };

static void on_chain_written(struct hp_write_req *req, int status);

/* Queue the next chunk through the one request, if any is left. */
static void chain_next(struct chain *c)
{
    struct hp_buf b;

    if (c->next == c->chunks)
        return;
    b = hp_buf_make(c->data + c->next * CHAIN_CHUNK, CHAIN_CHUNK);
    c->next++;
    assert_int_equal(hp_stream_write(c->s, &c->req, &b, 1, on_chain_written), 0);
}

static void on_chain_written(struct hp_write_req *req, int status)
{
    struct chain *c = hp_container_of(req, struct chain, req);

    assert_int_equal(status, 0);
    c->done++;
    chain_next(c); /* reuse req from its own callback */
}

static void test_tcp_write_request_may_be_reused_from_its_callback(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(CHAIN_CHUNK * CHAIN_CHUNKS, 21);
    unsigned char *got = malloc(CHAIN_CHUNK * CHAIN_CHUNKS);
    struct chain c = {0};
    struct hp_stream s;
    size_t have = 0;
    int sv[2];

    (void)state;
    assert_non_null(got);
    stream_pair(loop, &s, sv);
    c.s = &s;
    c.data = payload;
    c.chunks = CHAIN_CHUNKS;
    chain_next(&c);
    while (have < CHAIN_CHUNK * CHAIN_CHUNKS) {
        ssize_t n = read(sv[1], got + have, CHAIN_CHUNK * CHAIN_CHUNKS - have);

        if (n > 0)
            have += (size_t)n;
        else
            hp_test_run_until_count(loop, &c.done, c.done + 1);
    }
    hp_test_run_until_count(loop, &c.done, CHAIN_CHUNKS);
    assert_memory_equal(got, payload, CHAIN_CHUNK * CHAIN_CHUNKS);
    hp_stream_close(&s, on_close_flag);
    hp_test_run_until(loop, &closed_flag);
    hp_test_loop_free(loop);
    close(sv[1]);
    free(payload);
    free(got);
}

static void on_never_read(struct hp_stream *s, int status)
{
    (void)s;
    fail_msg("read callback on a closing stream: %d", status);
}

static void test_tcp_close_cancels_queued_writes_before_the_close_callback(void **state)
{
    const size_t big = 8u << 20;
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(big, 1);
    struct wstat w[3], late = {0};
    struct hp_buf b[3];
    struct hp_stream s;
    char sink[65536];
    ssize_t n;
    int sv[2];

    (void)state;
    memset(w, 0, sizeof(w));
    stream_pair(loop, &s, sv);
    b[0] = hp_buf_make(payload, big);
    b[1] = hp_buf_make("x", 1);
    b[2] = hp_buf_make("y", 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hp_stream_write(&s, &w[i].req, &b[i], 1, on_wstat), 0);
    /* The peer reads nothing, so most of it is still queued. */
    assert_true(hp_stream_write_queue_size(&s) > 2);
    hp_stream_close(&s, on_close_flag);
    assert_int_equal(hp_stream_write(&s, &late.req, &b[1], 1, on_wstat), HP_ECLOSED);
    assert_int_equal(hp_stream_read_start(&s, on_never_read), HP_ECLOSED);
    assert_int_equal(hp_stream_shutdown(&s), HP_ECLOSED);
    hp_test_run_until(loop, &closed_flag);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, -ECANCELED);
        assert_true(w[i].order < close_order);
    }
    assert_int_equal(late.calls, 0);
    hp_test_loop_free(loop);

    /* The descriptor was closed: the peer drains what got through, then EOF. */
    while ((n = read(sv[1], sink, sizeof(sink))) > 0)
        ;
    assert_int_equal(n, 0);
    close(sv[1]);
    free(payload);
}

static void test_tcp_close_reports_an_already_complete_write_with_status_0(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_buf b = hp_buf_make("abc", 3);
    struct wstat w = {0};
    struct hp_stream s;
    char got[4];
    int sv[2];

    (void)state;
    stream_pair(loop, &s, sv);
    assert_int_equal(hp_stream_write(&s, &w.req, &b, 1, on_wstat), 0);
    assert_int_equal(hp_stream_write_queue_size(&s), 0); /* all handed to the kernel */
    hp_stream_close(&s, on_close_flag);
    hp_test_run_until(loop, &closed_flag);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.status, 0);
    assert_true(w.order < close_order);
    assert_int_equal(read(sv[1], got, sizeof(got)), 3);
    hp_test_loop_free(loop);
    close(sv[1]);
}

static void test_tcp_loop_free_is_busy_until_a_closed_streams_callback_ran(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_stream s;
    int sv[2];

    (void)state;
    stream_pair(loop, &s, sv);
    assert_int_equal(hp_loop_free(loop), -EBUSY);
    hp_stream_close(&s, on_close_flag);
    assert_false(closed_flag); /* on a later iteration */
    assert_int_equal(hp_loop_free(loop), -EBUSY);
    hp_test_run_until(loop, &closed_flag);
    hp_test_loop_free(loop);
    close(sv[1]);
}

static void on_never_io(struct hp_io *io, unsigned events, int status)
{
    (void)io;
    fail_msg("unexpected io callback: events %#x status %d", events, status);
}

static void test_tcp_stream_init_refuses_an_fd_that_is_already_watched(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_stream s;
    struct hp_io io;
    int sv[2];

    (void)state;
    hp_test_socketpair(sv);
    hp_io_init(loop, &io, sv[0], on_never_io);
    assert_int_equal(hp_io_start(&io, 0), 0);
    assert_int_equal(hp_stream_init(loop, &s, sv[0]), -EEXIST);
    assert_true(fcntl(sv[0], F_GETFD) != -1); /* still open: it stays ours */
    hp_io_stop(&io);
    assert_int_equal(hp_stream_init(loop, &s, sv[0]), 0);
    closed_flag = false;
    hp_stream_close(&s, on_close_flag);
    hp_test_run_until(loop, &closed_flag);
    hp_test_loop_free(loop);
    close(sv[1]);
}

/* ---- reading ------------------------------------------------------------------- */

struct limited {
    struct hp_stream s;
    size_t limit;
    size_t status0_calls, enobufs;
    size_t len_at_first_enobufs;
    size_t consumed, consumed_before_enobufs;
    size_t pattern_errors;
};

static void on_limited(struct hp_stream *s, int status)
{
    struct limited *l = hp_container_of(s, struct limited, s);
    struct hp_buf in = hp_stream_input(s);

    if (status == -ENOBUFS) {
        if (l->enobufs++ == 0)
            l->len_at_first_enobufs = in.len;
    } else {
        assert_int_equal(status, 0);
        l->status0_calls++;
        if (l->enobufs == 0)
            return; /* hold everything until the limit is hit */
    }
    if (ct_pattern_check(in.base, in.len, 3, l->consumed) != in.len)
        l->pattern_errors++;
    l->consumed += in.len;
    hp_stream_consume(s, in.len);
}

static void test_tcp_input_limit_pauses_reading_with_enobufs_until_consumed(void **state)
{
    enum { TOTAL = 8192 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(TOTAL, 3);
    struct limited l = {0};
    int sv[2];

    (void)state;
    stream_pair(loop, &l.s, sv);
    hp_stream_set_input_limit(&l.s, 100); /* below the minimum: 1 KiB applies */
    assert_int_equal(hp_stream_read_start(&l.s, on_limited), 0);
    hp_test_write_all(sv[1], payload, TOTAL);
    hp_test_run_until_count(loop, &l.consumed, TOTAL);
    assert_true(l.enobufs >= 1);
    assert_int_equal(l.len_at_first_enobufs, 1024);
    assert_int_equal(l.pattern_errors, 0);
    assert_int_equal(l.consumed, TOTAL);
    hp_stream_close(&l.s, on_close_flag);
    hp_test_run_until(loop, &closed_flag);
    hp_test_loop_free(loop);
    close(sv[1]);
    free(payload);
}

struct pausing {
    struct hp_stream s;
    size_t calls;
    size_t last_len;
    bool consume;
};

static void on_pausing(struct hp_stream *s, int status)
{
    struct pausing *p = hp_container_of(s, struct pausing, s);

    assert_int_equal(status, 0);
    p->calls++;
    p->last_len = hp_stream_input(s).len;
    if (p->consume)
        hp_stream_consume(s, p->last_len);
    else
        hp_stream_read_stop(s);
}

static void test_tcp_read_start_delivers_input_already_buffered(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct pausing p = {0};
    int sv[2];

    (void)state;
    stream_pair(loop, &p.s, sv);
    assert_int_equal(hp_stream_read_start(&p.s, on_pausing), 0);
    hp_test_write_all(sv[1], "hello", 5);
    hp_test_run_until_count(loop, &p.calls, 1);
    assert_int_equal(p.last_len, 5);
    ct_run_nowait(loop, 3);
    assert_int_equal(p.calls, 1); /* stopped */

    p.consume = true;
    assert_int_equal(hp_stream_read_start(&p.s, on_pausing), 0);
    assert_int_equal(p.calls, 1); /* not inside read_start */
    hp_test_run_until_count(loop, &p.calls, 2);
    assert_int_equal(p.last_len, 5);
    assert_int_equal(hp_stream_input(&p.s).len, 0);
    hp_stream_close(&p.s, on_close_flag);
    hp_test_run_until(loop, &closed_flag);
    hp_test_loop_free(loop);
    close(sv[1]);
}

/* Two streams with input in one batch; the first read callback closes both. */
struct twin {
    struct hp_stream s;
    struct twin *other;
    size_t reads;
    bool closed;
};

static size_t twin_reads;

static void on_twin_close(struct hp_stream *s)
{
    hp_container_of(s, struct twin, s)->closed = true;
}

static void on_twin_read(struct hp_stream *s, int status)
{
    struct twin *t = hp_container_of(s, struct twin, s);

    (void)status;
    assert_false(hp_stream_is_closing(s));
    t->reads++;
    twin_reads++;
    hp_stream_close(&t->other->s, on_twin_close);
    hp_stream_close(s, on_twin_close);
}

static void test_tcp_stream_closed_from_another_streams_callback_gets_no_more_reads(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct twin t[2];
    int a[2], b[2];

    (void)state;
    memset(t, 0, sizeof(t));
    twin_reads = 0;
    stream_pair(loop, &t[0].s, a);
    stream_pair(loop, &t[1].s, b);
    t[0].other = &t[1];
    t[1].other = &t[0];
    assert_int_equal(hp_stream_read_start(&t[0].s, on_twin_read), 0);
    assert_int_equal(hp_stream_read_start(&t[1].s, on_twin_read), 0);
    hp_test_write_all(a[1], "a", 1);
    hp_test_write_all(b[1], "b", 1);
    hp_test_run_until_count(loop, &twin_reads, 1);
    ct_run_nowait(loop, 3);
    assert_int_equal(twin_reads, 1);
    assert_true(t[0].closed);
    assert_true(t[1].closed);
    hp_test_loop_free(loop);
    close(a[1]);
    close(b[1]);
}

/* ---- EOF, half-close, reset ------------------------------------------------------ */

static void test_tcp_eof_is_delivered_as_hp_eof_after_the_data(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct server srv;
    struct client cl;
    size_t done = 0;

    (void)state;
    assert_int_equal(server_start(&srv, loop, "127.0.0.1", SRV_HELLO_CLOSE), 0);
    memset(&cl, 0, sizeof(cl));
    cl.done = &done;
    client_connect(loop, &cl, "127.0.0.1", server_port(&srv));
    hp_test_run_until_count(loop, &done, 1);
    assert_int_equal(cl.connect_status, 0);
    assert_true(cl.eof);
    assert_int_equal(cl.read_error, 0);
    assert_int_equal(cl.received, 5);
    assert_memory_equal(cl.text, "hello", 5);
    server_finish(&srv);
    hp_test_loop_free(loop);
}

struct eof_reader {
    struct hp_stream s;
    size_t eofs, after_eof;
};

static void on_eof_reader(struct hp_stream *s, int status)
{
    struct eof_reader *r = hp_container_of(s, struct eof_reader, s);

    if (r->eofs)
        r->after_eof++;
    if (status == HP_EOF)
        r->eofs++;
    hp_stream_consume(s, hp_stream_input(s).len);
}

static void test_tcp_reading_ends_at_eof(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct eof_reader r = {0};
    int sv[2];

    (void)state;
    stream_pair(loop, &r.s, sv);
    assert_int_equal(hp_stream_read_start(&r.s, on_eof_reader), 0);
    hp_test_write_all(sv[1], "data", 4);
    close(sv[1]);
    hp_test_run_until_count(loop, &r.eofs, 1);
    ct_run_nowait(loop, 3);
    assert_int_equal(r.eofs, 1);
    assert_int_equal(r.after_eof, 0);
    assert_int_equal(hp_stream_read_start(&r.s, on_eof_reader), HP_ECLOSED);
    hp_stream_close(&r.s, on_close_flag);
    hp_test_run_until(loop, &closed_flag);
    hp_test_loop_free(loop);
}

static void test_tcp_half_close_flushes_then_the_peer_sees_eof_and_can_still_reply(void **state)
{
    const size_t len = 256 * 1024;
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(len, 11);
    struct hp_write_req late = {0};
    struct hp_buf b = hp_buf_make("late", 4);
    struct server srv;
    struct client cl;
    size_t done = 0;

    (void)state;
    assert_int_equal(server_start(&srv, loop, "127.0.0.1", SRV_COLLECT_REPLY), 0);
    srv.seed = 11;
    srv.expect_len = len;
    memset(&cl, 0, sizeof(cl));
    cl.done = &done;
    client_connect(loop, &cl, "127.0.0.1", server_port(&srv));
    hp_test_run_until(loop, &cl.connected);
    assert_int_equal(cl.connect_status, 0);

    /* Queue a large write, then shut down at once: the write goes first. */
    cl.len = len;
    cl.seed = 11;
    cl.data = payload;
    client_write_payload(&cl);
    assert_int_equal(hp_stream_shutdown(&cl.s), 0);
    assert_int_equal(hp_stream_shutdown(&cl.s), HP_ECLOSED);
    assert_int_equal(hp_stream_write(&cl.s, &late, &b, 1, NULL), HP_ECLOSED);
    cl.data = NULL; /* what comes back is text */
    hp_test_run_until_count(loop, &done, 1);
    assert_true(cl.wrote);
    assert_int_equal(cl.write_status, 0);
    assert_true(cl.eof);
    assert_int_equal(cl.read_error, 0);
    assert_int_equal(cl.received, 3);
    assert_memory_equal(cl.text, "bye", 3);
    assert_int_equal(srv.pattern_errors, 0);
    assert_non_null(srv.conns);
    assert_int_equal(srv.conns->received, len);
    server_finish(&srv);
    hp_test_loop_free(loop);
    free(payload);
}

/* Accept one raw connection for @p cl, then reset it with SO_LINGER 0. */
static void connect_and_reset(struct hp_loop *loop, struct server *srv, struct client *cl)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    assert_int_equal(server_start(srv, loop, "127.0.0.1", SRV_RAW), 0);
    client_connect(loop, cl, "127.0.0.1", server_port(srv));
    hp_test_run_until(loop, &cl->connected);
    assert_int_equal(cl->connect_status, 0);
    hp_test_run_until_count(loop, &srv->accepted, 1);
    if (cl->data) {
        /* Wait until the queue is stuck on the peer that does not read. */
        uint64_t deadline = ct_now_ms() + HP_TEST_DEADLINE_MS;

        while (hp_stream_write_queue_size(&cl->s) == 0 && ct_now_ms() < deadline)
            ct_run_nowait(loop, 1);
    }
    assert_int_equal(setsockopt(srv->raw[0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(srv->raw[0]);
    srv->nraw = 0;
}

static void test_tcp_reset_by_peer_reaches_the_read_callback_as_econnreset(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct server srv;
    struct client cl;
    size_t done = 0;

    (void)state;
    memset(&cl, 0, sizeof(cl));
    cl.done = &done;
    connect_and_reset(loop, &srv, &cl);
    hp_test_run_until_count(loop, &done, 1);
    assert_int_equal(cl.read_error, -ECONNRESET);
    assert_false(cl.eof);
    server_finish(&srv);
    hp_test_loop_free(loop);
}

static void test_tcp_reset_by_peer_fails_a_pending_write(void **state)
{
    const size_t len = 1u << 20;
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(len, 2);
    struct server srv;
    struct client cl;
    size_t done = 0;

    (void)state;
    memset(&cl, 0, sizeof(cl));
    cl.len = len;
    cl.seed = 2;
    cl.data = payload;
    cl.no_read = true;
    cl.sndbuf = 4096; /* so most of the payload stays queued */
    cl.done = &done;
    connect_and_reset(loop, &srv, &cl);
    hp_test_run_until_count(loop, &done, 1);
    assert_true(cl.wrote);
    if (cl.write_status != -ECONNRESET && cl.write_status != -EPIPE)
        fail_msg("write status %s, expected ECONNRESET or EPIPE", hp_err_name(cl.write_status));
    assert_int_equal(cl.write_after_error, cl.write_status);
    server_finish(&srv);
    hp_test_loop_free(loop);
    free(payload);
}

/* ---- connect and listen errors ----------------------------------------------------- */

static void test_tcp_connect_to_a_closed_port_fails_with_econnrefused(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct client cl;
    size_t done = 0;
    int hold, rc;

    (void)state;
    /* A bound, non-listening socket keeps the port closed for the test. */
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    hold = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(hold >= 0);
    assert_int_equal(bind(hold, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(hold, (struct sockaddr *)&sin, &slen), 0);
    memset(&cl, 0, sizeof(cl));
    cl.done = &done;
    rc = hp_stream_connect(loop, &cl.s, "127.0.0.1", ntohs(sin.sin_port), on_cconnect);
    if (rc == 0) {
        assert_false(cl.connected);
        hp_test_run_until_count(loop, &done, 1); /* on_cconnect closes it */
        assert_int_equal(cl.connect_status, -ECONNREFUSED);
    } else {
        assert_int_equal(rc, -ECONNREFUSED);
        ct_run_nowait(loop, 2);
        assert_false(cl.connected);
    }
    assert_int_equal(hp_loop_active_handles(loop), 0);
    hp_test_loop_free(loop);
    close(hold);
}

static void on_never_connect(struct hp_stream *s, int status)
{
    (void)s;
    fail_msg("connect callback ran with %d", status);
}

static void test_tcp_connect_and_listen_refuse_non_numeric_hosts(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_listener_opts opts = {.host = "localhost"};
    struct hp_listener l;
    struct hp_stream s;

    (void)state;
    assert_int_equal(hp_stream_connect(loop, &s, "localhost", 80, on_never_connect), -EINVAL);
    assert_int_equal(hp_stream_connect(loop, &s, "127.0.0.1.5", 80, on_never_connect), -EINVAL);
    assert_int_equal(hp_listener_start(loop, &l, &opts, on_accept), -EINVAL);
    ct_run_nowait(loop, 2);
    assert_int_equal(hp_loop_active_handles(loop), 0);
    hp_test_loop_free(loop);
}

static void test_tcp_second_listener_on_a_port_gets_eaddrinuse_unless_reuseport(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct hp_listener_opts opts = {.host = "127.0.0.1"};
    struct hp_listener a, b;

    (void)state;
    assert_int_equal(hp_listener_start(loop, &a, &opts, on_accept), 0);
    opts.port = (uint16_t)hp_listener_port(&a);
    assert_int_equal(hp_listener_start(loop, &b, &opts, on_accept), -EADDRINUSE);
    hp_listener_stop(&a);

    opts.port = 0;
    opts.reuseport = true;
    assert_int_equal(hp_listener_start(loop, &a, &opts, on_accept), 0);
    opts.port = (uint16_t)hp_listener_port(&a);
    assert_int_equal(hp_listener_start(loop, &b, &opts, on_accept), 0);
    assert_int_equal(hp_listener_port(&b), opts.port);
    hp_listener_stop(&a);
    hp_listener_stop(&b);
    hp_test_loop_free(loop);
}

static void test_tcp_set_nodelay_sets_tcp_nodelay(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct server srv;
    struct client cl;
    socklen_t olen = sizeof(int);
    int on = 0;

    (void)state;
    assert_int_equal(server_start(&srv, loop, "127.0.0.1", SRV_RAW), 0);
    memset(&cl, 0, sizeof(cl));
    client_connect(loop, &cl, "127.0.0.1", server_port(&srv));
    hp_test_run_until(loop, &cl.connected);
    assert_int_equal(hp_stream_set_nodelay(&cl.s, true), 0);
    assert_int_equal(getsockopt(hp_stream_fd(&cl.s), IPPROTO_TCP, TCP_NODELAY, &on, &olen), 0);
    assert_true(on != 0);
    assert_int_equal(hp_stream_set_nodelay(&cl.s, false), 0);
    assert_int_equal(getsockopt(hp_stream_fd(&cl.s), IPPROTO_TCP, TCP_NODELAY, &on, &olen), 0);
    assert_int_equal(on, 0);
    hp_stream_close(&cl.s, on_cclose);
    hp_test_run_until(loop, &cl.closed);
    hp_test_run_until_count(loop, &srv.accepted, 1);
    server_finish(&srv);
    hp_test_loop_free(loop);
}

/* ---- taking input out of the stream -------------------------------------------- */

struct taker {
    struct hp_stream s;
    struct hp_stream_chunk chunk[64];
    const char *kept[64];
    size_t kept_len[64];
    size_t nkept, calls, enobufs, taken;
    size_t take_at; /* in the first call with this much input: take that much */
    size_t want;    /* taker_has(): input bytes waited for */
    bool take_all_when_full;
    int rc;
};

static void on_taker(struct hp_stream *s, int status)
{
    struct taker *t = hp_container_of(s, struct taker, s);
    struct hp_buf in = hp_stream_input(s);

    t->calls++;
    if (status == -ENOBUFS) {
        t->enobufs++;
        if (!t->take_all_when_full || t->nkept == 64)
            return;
        /* Full: take everything; it stays put, and reading goes on. */
        t->kept[t->nkept] = in.base;
        t->kept_len[t->nkept] = in.len;
        assert_int_equal(hp_stream_take_input(s, in.len, &t->chunk[t->nkept]), 0);
        t->nkept++;
        t->taken += in.len;
        assert_int_equal(hp_stream_input(s).len, 0);
        return;
    }
    assert_int_equal(status, 0);
    if (t->take_at != 0 && t->nkept == 0 && in.len >= t->take_at) {
        t->kept[0] = in.base;
        t->kept_len[0] = t->take_at;
        t->rc = hp_stream_take_input(s, t->take_at, &t->chunk[0]);
        t->nkept = 1;
    }
}

static bool taker_has(void *arg)
{
    struct taker *t = arg;

    return hp_stream_input(&t->s).len >= t->want;
}

static void taker_close(struct hp_loop *loop, struct taker *t, int sv[2])
{
    for (size_t i = 0; i < t->nkept; i++)
        hp_stream_chunk_free(loop, &t->chunk[i]);
    hp_stream_close(&t->s, on_close_flag);
    hp_test_run_until(loop, &closed_flag);
    close(sv[1]);
}

static void test_tcp_take_input_keeps_the_taken_bytes_in_place_while_reading_goes_on(void **state)
{
    enum { MORE = 200000 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(MORE, 5);
    struct taker t = {.take_at = 5};
    struct hp_buf in;
    int sv[2];

    (void)state;
    stream_pair(loop, &t.s, sv);
    hp_stream_set_input_limit(&t.s, 1u << 20);
    assert_int_equal(hp_stream_read_start(&t.s, on_taker), 0);
    hp_test_write_all(sv[1], "hello world", 11);
    hp_test_run_until_count(loop, &t.nkept, 1);
    assert_int_equal(t.rc, 0);
    in = hp_stream_input(&t.s);
    assert_int_equal(in.len, 6); /* the rest continues in the stream ... */
    assert_memory_equal(in.base, " world", 6);
    assert_memory_equal(t.kept[0], "hello", 5); /* ... the taken bytes where they were */

    /* Much more arrives (the input grows and moves): the taken bytes stay. */
    for (size_t off = 0; off < MORE; off += 10000) {
        hp_test_write_all(sv[1], payload + off, 10000);
        ct_run_nowait(loop, 2);
    }
    t.want = 6 + MORE;
    ct_run_until(loop, taker_has, &t);
    in = hp_stream_input(&t.s);
    assert_memory_equal(in.base, " world", 6);
    assert_int_equal(ct_pattern_check((const unsigned char *)in.base + 6, MORE, 5, 0), MORE);
    assert_memory_equal(t.kept[0], "hello", 5);

    /* Taking all of it: the bytes stay, reading goes on into a new buffer. */
    t.kept[1] = in.base;
    assert_int_equal(hp_stream_take_input(&t.s, in.len, &t.chunk[1]), 0);
    t.nkept = 2;
    assert_int_equal(hp_stream_input(&t.s).len, 0);
    assert_memory_equal(t.kept[1], " world", 6);
    hp_test_write_all(sv[1], "next", 4);
    t.want = 4;
    ct_run_until(loop, taker_has, &t);
    in = hp_stream_input(&t.s);
    assert_int_equal(in.len, 4);
    assert_memory_equal(in.base, "next", 4);
    assert_memory_equal(t.kept[0], "hello", 5);
    assert_int_equal(ct_pattern_check((const unsigned char *)t.kept[1] + 6, MORE, 5, 0), MORE);
    taker_close(loop, &t, sv);
    hp_test_loop_free(loop);
    free(payload);
}

static void test_tcp_take_input_refuses_bad_lengths_and_a_used_chunk(void **state)
{
    struct hp_loop *loop = hp_test_loop_new(NULL);
    struct taker t = {.take_at = 3};
    struct hp_stream_chunk spare = {0};
    struct hp_buf in;
    int sv[2];

    (void)state;
    stream_pair(loop, &t.s, sv);
    assert_int_equal(hp_stream_read_start(&t.s, on_taker), 0);
    hp_test_write_all(sv[1], "abcdef", 6);
    hp_test_run_until_count(loop, &t.nkept, 1);
    assert_int_equal(t.rc, 0);
    in = hp_stream_input(&t.s);
    assert_int_equal(hp_stream_take_input(&t.s, 0, &spare), -EINVAL);
    assert_int_equal(hp_stream_take_input(&t.s, in.len + 1, &spare), -EINVAL);
    assert_int_equal(hp_stream_take_input(&t.s, 1, &t.chunk[0]), -EINVAL); /* holds one */
    assert_ptr_equal(hp_stream_input(&t.s).base, in.base);                 /* nothing changed */
    assert_int_equal(hp_stream_input(&t.s).len, 3);
    assert_memory_equal(hp_stream_input(&t.s).base, "def", 3);
    assert_memory_equal(t.kept[0], "abc", 3);
    hp_stream_chunk_free(loop, &spare); /* empty: nothing happens */
    taker_close(loop, &t, sv);
    hp_test_loop_free(loop);
}

static void test_tcp_take_input_of_everything_needs_no_memory_and_a_part_may_fail(void **state)
{
    enum { LEN = 3 * 8192 + 100 };
    struct ct_alloc a;
    struct hp_loop *loop;
    unsigned char *payload = make_payload(LEN, 9);
    struct taker t = {0};
    struct hp_stream_chunk c = {0};
    struct hp_buf in;
    int sv[2];

    (void)state;
    ct_alloc_init(&a);
    loop = ct_loop_new(NULL, &a, 0);
    stream_pair(loop, &t.s, sv);
    hp_stream_set_input_limit(&t.s, 1u << 20);
    assert_int_equal(hp_stream_read_start(&t.s, on_taker), 0);
    hp_test_write_all(sv[1], payload, LEN);
    t.want = LEN;
    ct_run_until(loop, taker_has, &t);
    in = hp_stream_input(&t.s);
    ct_alloc_fail_after(&a, 0);
    /* A part: the rest needs a buffer of its own, and there is no memory. */
    assert_int_equal(hp_stream_take_input(&t.s, 10, &c), -ENOMEM);
    assert_ptr_equal(hp_stream_input(&t.s).base, in.base); /* nothing changed */
    assert_int_equal(hp_stream_input(&t.s).len, LEN);
    assert_null(c._mem);
    /* Everything: nothing to allocate. */
    assert_int_equal(hp_stream_take_input(&t.s, LEN, &c), 0);
    assert_int_equal(hp_stream_input(&t.s).len, 0);
    assert_int_equal(ct_pattern_check((const unsigned char *)in.base, LEN, 9, 0), LEN);
    ct_alloc_fail_after(&a, -1);
    hp_stream_chunk_free(loop, &c);
    assert_null(c._mem);
    taker_close(loop, &t, sv);
    hp_test_loop_free(loop);
    assert_int_equal(ct_alloc_live(&a), 0);
    ct_alloc_destroy(&a);
    free(payload);
}

static void test_tcp_take_input_resumes_reading_after_enobufs(void **state)
{
    enum { TOTAL = 6000 };
    struct hp_loop *loop = hp_test_loop_new(NULL);
    unsigned char *payload = make_payload(TOTAL, 11);
    struct taker t = {.take_all_when_full = true};
    size_t off = 0;
    int sv[2];

    (void)state;
    stream_pair(loop, &t.s, sv);
    hp_stream_set_input_limit(&t.s, 1024);
    assert_int_equal(hp_stream_read_start(&t.s, on_taker), 0);
    hp_test_write_all(sv[1], payload, TOTAL);
    t.want = TOTAL % 1024;
    hp_test_run_until_count(loop, &t.taken, TOTAL - TOTAL % 1024);
    ct_run_until(loop, taker_has, &t);
    assert_true(t.enobufs >= TOTAL / 1024);
    /* Every chunk kept its bytes, in order, with the rest still in the stream. */
    for (size_t i = 0; i < t.nkept; i++) {
        assert_int_equal(ct_pattern_check((const unsigned char *)t.kept[i], t.kept_len[i], 11, off),
                         t.kept_len[i]);
        off += t.kept_len[i];
    }
    assert_int_equal(ct_pattern_check((const unsigned char *)hp_stream_input(&t.s).base,
                                      hp_stream_input(&t.s).len, 11, off),
                     hp_stream_input(&t.s).len);
    assert_int_equal(off + hp_stream_input(&t.s).len, TOTAL);
    taker_close(loop, &t, sv);
    hp_test_loop_free(loop);
    free(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_listener_on_port_0_reports_the_port_it_got),
        cmocka_unit_test(test_tcp_echo_over_ipv4_loopback),
        cmocka_unit_test(test_tcp_echo_over_ipv6_loopback),
        cmocka_unit_test(test_tcp_default_listener_is_dual_stack),
        cmocka_unit_test(test_tcp_thousand_concurrent_connections_echo_every_byte),
        cmocka_unit_test(test_tcp_large_payloads_through_a_small_sndbuf_arrive_intact),
        cmocka_unit_test(test_tcp_write_callback_never_runs_inside_hp_stream_write),
        cmocka_unit_test(test_tcp_try_write_writes_now_or_defers_to_queued_writes),
        cmocka_unit_test(test_tcp_write_of_many_buffers_keeps_their_order),
        cmocka_unit_test(test_tcp_write_request_may_be_reused_from_its_callback),
        cmocka_unit_test(test_tcp_close_cancels_queued_writes_before_the_close_callback),
        cmocka_unit_test(test_tcp_close_reports_an_already_complete_write_with_status_0),
        cmocka_unit_test(test_tcp_loop_free_is_busy_until_a_closed_streams_callback_ran),
        cmocka_unit_test(test_tcp_stream_init_refuses_an_fd_that_is_already_watched),
        cmocka_unit_test(test_tcp_input_limit_pauses_reading_with_enobufs_until_consumed),
        cmocka_unit_test(test_tcp_read_start_delivers_input_already_buffered),
        cmocka_unit_test(test_tcp_take_input_keeps_the_taken_bytes_in_place_while_reading_goes_on),
        cmocka_unit_test(test_tcp_take_input_refuses_bad_lengths_and_a_used_chunk),
        cmocka_unit_test(test_tcp_take_input_of_everything_needs_no_memory_and_a_part_may_fail),
        cmocka_unit_test(test_tcp_take_input_resumes_reading_after_enobufs),
        cmocka_unit_test(test_tcp_stream_closed_from_another_streams_callback_gets_no_more_reads),
        cmocka_unit_test(test_tcp_eof_is_delivered_as_hp_eof_after_the_data),
        cmocka_unit_test(test_tcp_reading_ends_at_eof),
        cmocka_unit_test(test_tcp_half_close_flushes_then_the_peer_sees_eof_and_can_still_reply),
        cmocka_unit_test(test_tcp_reset_by_peer_reaches_the_read_callback_as_econnreset),
        cmocka_unit_test(test_tcp_reset_by_peer_fails_a_pending_write),
        cmocka_unit_test(test_tcp_connect_to_a_closed_port_fails_with_econnrefused),
        cmocka_unit_test(test_tcp_connect_and_listen_refuse_non_numeric_hosts),
        cmocka_unit_test(test_tcp_second_listener_on_a_port_gets_eaddrinuse_unless_reuseport),
        cmocka_unit_test(test_tcp_set_nodelay_sets_tcp_nodelay),
    };

    ct_apply_filters();
    return cmocka_run_group_tests_name("core/tcp", tests, NULL, NULL);
}
