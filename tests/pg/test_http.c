/*
 * tests/pg/test_http.c - the pg module behind the HTTP server, the way a
 * TechEmpower "single query" handler uses it: the handler holds the request,
 * queries, and replies from the query's callback; a client that leaves
 * gets its queries cancelled (on_abort -> hp_pg_cancel) and the request is
 * still finished exactly once. Real server (tests/support/pgtmp.sh), real
 * sockets.
 */
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
#include <hellepoll/pg.h>

#include "pgserver.h"
#include "testutil.h"

static struct hp_test_pg server;
static bool have_server;

struct app {
    struct hp_loop *loop;
    struct hp_pg_pool *pool;
    struct hp_http_server *srv;
    size_t started, finished, aborted, cancelled_queries;
};

static void on_world(const struct hp_pg_result *res, int status, void *arg)
{
    struct hp_http_req *req = arg;
    struct app *a = hp_http_server_data(req->server);
    char body[96];
    int id = 0, n = 0, len;

    a->finished++;
    if (status == -ECANCELED) {
        a->cancelled_queries++;
        hp_http_req_release(req); /* the client left: give the request back */
        return;
    }
    if (status != 0 || hp_pg_result_int(res, 0, 0, &id) != 0 ||
        hp_pg_result_int(res, 0, 1, &n) != 0) {
        hp_http_reply(req, 503, HP_STR_LIT("text/plain"), "database unavailable\n", 21);
        return;
    }
    len = snprintf(body, sizeof(body), "{\"id\":%d,\"randomNumber\":%d}", id, n);
    hp_http_reply(req, 200, HP_STR_LIT("application/json"), body, (size_t)len);
}

static int on_request(struct hp_http_req *req)
{
    struct app *a = hp_http_server_data(req->server);
    char id[12] = "1";
    const char *v[1] = {id};
    bool slow = req->path.len == 5 && memcmp(req->path.ptr, "/slow", 5) == 0;
    int err;

    if (req->query.len > 3 && req->query.len < 3 + sizeof(id) &&
        memcmp(req->query.ptr, "id=", 3) == 0) {
        memcpy(id, req->query.ptr + 3, req->query.len - 3);
        id[req->query.len - 3] = '\0';
    }
    err = slow ? hp_pg_query_prepared(a->pool, "slow",
                                      "SELECT id, randomnumber FROM world, pg_sleep(5) "
                                      "WHERE id = $1",
                                      1, v, NULL, 0, on_world, req)
               : hp_pg_query_prepared(a->pool, "world",
                                      "SELECT id, randomnumber FROM world WHERE id = $1", 1, v,
                                      NULL, 0, on_world, req);
    if (err)
        return hp_http_reply(req, 503, HP_STR_LIT("text/plain"), "busy\n", 5);
    a->started++;
    return 0;
}

static void on_abort(struct hp_http_req *req, int status)
{
    struct app *a = hp_http_server_data(req->server);

    (void)status;
    a->aborted++;
    hp_pg_cancel(a->pool, req); /* its callback finishes the request */
}

/* ---- a small client on the same loop ------------------------------------ */

struct client {
    struct hp_io io;
    int fd;
    char buf[1024];
    size_t len;
    bool done;
    size_t *ndone;
};

static void on_client(struct hp_io *io, unsigned events, int status)
{
    struct client *c = io->data;
    ssize_t n;

    (void)events;
    (void)status;
    while ((n = hp_io_read(io, c->buf + c->len, sizeof(c->buf) - 1 - c->len)) > 0)
        c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (n == -EAGAIN && !strstr(c->buf, "}"))
        return;
    hp_io_stop(io);
    c->done = true;
    (*c->ndone)++;
}

static void client_send(struct client *c, struct hp_loop *loop, int port, const char *target,
                        size_t *ndone)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char req[256];
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);

    memset(c, 0, sizeof(*c));
    c->ndone = ndone;
    c->fd = hp_test_socket(AF_INET, SOCK_STREAM, false);
    assert_true(c->fd >= 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    hp_test_write_all(c->fd, req, (size_t)len);
    assert_int_equal(fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK), 0);
    hp_io_init(loop, &c->io, c->fd, on_client);
    c->io.data = c;
    assert_int_equal(hp_io_start(&c->io, HP_READABLE), 0);
}

/* ---- tests ---------------------------------------------------------------- */

static int setup(void **state)
{
    struct app *a;
    struct hp_pg_pool_opts po = {.conninfo = server.conninfo, .max_conns = 2, .max_pipeline = 1};
    struct hp_http_server_opts so = {
        .on_request = on_request, .on_abort = on_abort, .listen = {.host = "127.0.0.1"}};

    if (!have_server)
        return 0;
    a = calloc(1, sizeof(*a));
    a->loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_pg_pool_new(&a->pool, a->loop, &po), 0);
    so.data = a;
    assert_int_equal(hp_http_server_new(&a->srv, a->loop, &so), 0);
    *state = a;
    return 0;
}

static bool g_down;

static void on_down(struct hp_http_server *srv)
{
    (void)srv;
    g_down = true;
}

static int teardown(void **state)
{
    struct app *a = *state;

    if (!a)
        return 0;
    g_down = false;
    hp_pg_pool_free(a->pool); /* finishes any request still held, through -ECANCELED */
    hp_http_server_shutdown(a->srv, 0, on_down);
    hp_test_run_until(a->loop, &g_down);
    assert_int_equal(hp_http_server_free(a->srv), 0);
    for (int i = 0; i < 5; i++)
        hp_loop_run_once(a->loop, 0);
    hp_test_loop_free(a->loop);
    free(a);
    return 0;
}

static void test_handlers_reply_from_query_callbacks(void **state)
{
    struct app *a = *state;
    enum { N = 40 };
    struct client *c;
    size_t ndone = 0;
    int port;

    if (!have_server)
        skip();
    c = calloc(N, sizeof(*c));
    port = hp_http_server_port(a->srv);
    for (int i = 0; i < N; i++) {
        char target[32];

        snprintf(target, sizeof(target), "/db?id=%d", i + 1);
        client_send(&c[i], a->loop, port, target, &ndone);
    }
    hp_test_run_until_count(a->loop, &ndone, N);
    for (int i = 0; i < N; i++) {
        char want[64];

        snprintf(want, sizeof(want), "{\"id\":%d,\"randomNumber\":%d}", i + 1, (i + 1) * 7);
        assert_non_null(strstr(c[i].buf, "HTTP/1.1 200"));
        assert_non_null(strstr(c[i].buf, want));
        close(c[i].fd);
    }
    assert_int_equal(a->started, N);
    assert_int_equal(a->finished, N);
    free(c);
}

static void test_client_leaving_cancels_its_query(void **state)
{
    struct app *a = *state;
    enum { N = 6 };
    struct client c[N], ok;
    size_t ndone = 0, okdone = 0;
    struct hp_pg_pool_stats st;
    uint64_t t0;
    int port;

    if (!have_server)
        skip();
    port = hp_http_server_port(a->srv);
    /* Six slow queries on two connections of one query each: two run, four wait. */
    for (int i = 0; i < N; i++)
        client_send(&c[i], a->loop, port, "/slow?id=3", &ndone);
    hp_test_run_until_count(a->loop, &a->started, N);
    for (int i = 0; i < 10; i++)
        hp_loop_run_once(a->loop, 10); /* the two reach the server */
    hp_loop_update_time(a->loop);
    t0 = hp_loop_now(a->loop);
    for (int i = 0; i < N; i++) { /* every client leaves */
        hp_io_stop(&c[i].io);
        close(c[i].fd);
    }
    hp_test_run_until_count(a->loop, &a->finished, N);
    assert_int_equal(a->aborted, N);
    assert_int_equal(a->cancelled_queries, N);
    hp_pg_pool_stats(a->pool, &st);
    assert_int_equal(st.waiting, 0);
    /* The two running were cancelled on the server: the pool answers at once again. */
    client_send(&ok, a->loop, port, "/db?id=5", &okdone);
    hp_test_run_until_count(a->loop, &okdone, 1);
    assert_non_null(strstr(ok.buf, "{\"id\":5,\"randomNumber\":35}"));
    close(ok.fd);
    assert_true(hp_loop_now(a->loop) - t0 < 4000);
    hp_pg_pool_stats(a->pool, &st);
    /* The queries that had reached the server (two, or one on a loaded machine) got PQcancel. */
    assert_true(st.cancels >= 1 && st.cancels <= 2);
}

static int group_setup(void **state)
{
    (void)state;
    have_server = hp_test_pg_start(&server);
    if (have_server) {
        hp_test_pg_sql(&server, "CREATE TABLE world (id integer PRIMARY KEY, randomnumber "
                                "integer NOT NULL)");
        hp_test_pg_sql(&server, "INSERT INTO world SELECT i, i * 7 FROM generate_series(1, "
                                "10000) i");
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (have_server)
        hp_test_pg_destroy(&server);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handlers_reply_from_query_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_leaving_cancels_its_query, setup, teardown),
    };

    return cmocka_run_group_tests_name("pg/http", tests, group_setup, group_teardown);
}
