/*
 * tests/memcached/test_client.c - the memcached client against real
 * memcached servers started here: every command and its outcomes, binary
 * keys, many concurrent callers on one connection, quiet requests ended by
 * mn, a connection pool, several servers placed by ketama, the pending
 * bound, timeouts (SIGSTOP), kill -9 and restart, a port that answers
 * garbage, a refused connection, and freeing with requests in flight.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
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
#include <hellepoll/memcached.h>

#include "server.h"
#include "testutil.h"

#define NSRV 3
static struct hp_test_server srv[NSRV];
static bool have_server;

struct call {
    unsigned runs;
    int status;
    enum hp_mc_code code;
    char value[256];
    size_t len;
    bool has_value;
    uint64_t cas;
    uint32_t flags;
    int64_t ttl;
};

static struct hp_loop *loop;
static struct hp_mc *mc;
static size_t done;

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    have_server = hp_test_server_find(&srv[0], HP_TEST_MEMCACHED);
    for (int i = 0; have_server && i < NSRV; i++) {
        if (i)
            srv[i] = (struct hp_test_server){.kind = HP_TEST_MEMCACHED};
        memcpy(srv[i].bin, srv[0].bin, sizeof(srv[i].bin));
        hp_test_server_start(&srv[i]);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NSRV; i++)
        hp_test_server_stop(&srv[i]);
    return 0;
}

static void on_call(struct hp_mc *m, int status, const struct hp_mc_reply *r, void *arg)
{
    struct call *c = arg;

    assert_ptr_equal(m, mc);
    c->runs++;
    c->status = status;
    if (r) {
        c->code = r->code;
        c->len = r->value.len < sizeof(c->value) ? r->value.len : sizeof(c->value) - 1;
        if (c->len)
            memcpy(c->value, r->value.ptr, c->len);
        c->value[c->len] = 0;
        c->has_value = r->has_value;
        c->cas = r->cas;
        c->flags = r->flags;
        c->ttl = r->ttl;
    } else {
        assert_true(status != 0 && status != HP_ESERVER);
    }
    done++;
}

static char addr[NSRV][32];
static const char *addrs[NSRV];

static void open_mc(size_t nservers, const struct hp_mc_opts *extra)
{
    struct hp_mc_opts o = {.reconnect_min_ms = 20, .reconnect_max_ms = 200};

    if (extra)
        o = *extra;
    for (size_t i = 0; i < nservers; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%u", srv[i].port);
        addrs[i] = addr[i];
    }
    o.servers = addrs;
    o.nservers = nservers;
    done = 0;
    loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_mc_new(&mc, loop, &o), 0);
}

/* hp_mc_free(), then let the sockets finish closing before freeing the loop. */
static void drain_and_free_loop(void)
{
    for (int i = 0; i < 100 && hp_loop_is_alive(loop); i++)
        assert_true(hp_loop_run_once(loop, 10) >= 0);
    hp_test_loop_free(loop);
}

static void close_mc(void)
{
    hp_mc_free(mc);
    drain_and_free_loop();
}

static void wait_done(size_t want)
{
    hp_test_run_until_count(loop, &done, want);
}

static void run_until_up(size_t server)
{
    uint64_t end;

    hp_loop_update_time(loop);
    end = hp_loop_now(loop) + HP_TEST_DEADLINE_MS;
    while (!hp_mc_server_is_up(mc, server)) {
        assert_true(hp_loop_run_once(loop, 20) >= 0);
        assert_true(hp_loop_now(loop) < end);
    }
}

static struct call get(struct hp_str key, const struct hp_mc_req *o)
{
    struct call c = {0};
    size_t want = done + 1;

    assert_int_equal(hp_mc_get(mc, key, o, on_call, &c), 0);
    assert_int_equal(c.runs, 0); /* never inside the call */
    wait_done(want);
    assert_int_equal(c.runs, 1);
    return c;
}

static struct call set(struct hp_str key, const char *v, const struct hp_mc_req *o)
{
    struct call c = {0};
    size_t want = done + 1;

    assert_int_equal(hp_mc_set(mc, key, v, strlen(v), o, on_call, &c), 0);
    wait_done(want);
    assert_int_equal(c.runs, 1);
    return c;
}

static void test_commands(void **state)
{
    struct call c;
    struct hp_mc_req o = {0};
    uint64_t cas;

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, NULL);
    o = (struct hp_mc_req){.client_flags = 42, .ttl = 100};
    c = set(HP_STR_LIT("k1"), "hello", &o);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.code, HP_MC_OK);
    o = (struct hp_mc_req){.flags = HP_MC_RETURN_CAS | HP_MC_RETURN_TTL};
    c = get(HP_STR_LIT("k1"), &o);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.code, HP_MC_OK);
    assert_true(c.has_value);
    assert_string_equal(c.value, "hello");
    assert_int_equal(c.flags, 42);
    assert_true(c.ttl > 90 && c.ttl <= 100);
    assert_true(c.cas != 0);
    cas = c.cas;
    c = get(HP_STR_LIT("nope"), NULL);
    assert_int_equal(c.code, HP_MC_MISS);
    assert_false(c.has_value);
    /* existence test without the value */
    o = (struct hp_mc_req){.flags = HP_MC_NO_VALUE};
    c = get(HP_STR_LIT("k1"), &o);
    assert_int_equal(c.code, HP_MC_OK);
    assert_false(c.has_value);
    /* add on an existing key: not stored; CAS: wrong then right */
    o = (struct hp_mc_req){.mode = HP_MC_ADD};
    assert_int_equal(set(HP_STR_LIT("k1"), "x", &o).code, HP_MC_NOT_STORED);
    o = (struct hp_mc_req){.cas = cas + 1000};
    assert_int_equal(set(HP_STR_LIT("k1"), "x", &o).code, HP_MC_EXISTS);
    o = (struct hp_mc_req){.cas = cas};
    assert_int_equal(set(HP_STR_LIT("k1"), "world", &o).code, HP_MC_OK);
    o = (struct hp_mc_req){.mode = HP_MC_APPEND};
    assert_int_equal(set(HP_STR_LIT("k1"), "!", &o).code, HP_MC_OK);
    assert_string_equal(get(HP_STR_LIT("k1"), NULL).value, "world!");
    /* delete */
    {
        struct call d = {0};

        assert_int_equal(hp_mc_delete(mc, HP_STR_LIT("k1"), NULL, on_call, &d), 0);
        wait_done(done + 1);
        assert_int_equal(d.code, HP_MC_OK);
        memset(&d, 0, sizeof(d));
        assert_int_equal(hp_mc_delete(mc, HP_STR_LIT("k1"), NULL, on_call, &d), 0);
        wait_done(done + 1);
        assert_int_equal(d.code, HP_MC_NOT_FOUND);
    }
    /* arithmetic: create on miss, add, subtract */
    {
        struct call a = {0};

        o = (struct hp_mc_req){.autovivify = true, .initial = 10};
        assert_int_equal(hp_mc_arith(mc, HP_STR_LIT("n"), &o, on_call, &a), 0);
        wait_done(done + 1);
        assert_string_equal(a.value, "10");
        o = (struct hp_mc_req){.delta = 5};
        assert_int_equal(hp_mc_arith(mc, HP_STR_LIT("n"), &o, on_call, &a), 0);
        wait_done(done + 1);
        assert_string_equal(a.value, "15");
        o = (struct hp_mc_req){.delta = 20, .decrement = true};
        assert_int_equal(hp_mc_arith(mc, HP_STR_LIT("n"), &o, on_call, &a), 0);
        wait_done(done + 1);
        assert_string_equal(a.value, "0");
        assert_int_equal(hp_mc_arith(mc, HP_STR_LIT("nothing"), NULL, on_call, &a), 0);
        wait_done(done + 1);
        assert_int_equal(a.code, HP_MC_NOT_FOUND);
    }
    /* the server's own error comes back, and the connection goes on */
    {
        static char big[1100 * 1024];
        struct hp_mc_opts none = {0};
        struct call e = {0};

        (void)none;
        memset(big, 'x', sizeof(big));
        assert_int_equal(hp_mc_set(mc, HP_STR_LIT("big"), big, sizeof(big), NULL, on_call, &e),
                         -EMSGSIZE);
        assert_int_equal(hp_mc_set(mc, HP_STR_LIT("big"), big, 1024 * 1024 - 10, NULL, on_call, &e),
                         0);
        wait_done(done + 1);
        assert_int_equal(e.status, HP_ESERVER);
        assert_non_null(strstr(e.value, "SERVER_ERROR"));
        assert_int_equal(get(HP_STR_LIT("n"), NULL).value[0], (int)'0'); /* stored as "0 " */
    }
    /* bad calls */
    assert_int_equal(hp_mc_get(mc, HP_STR_LIT(""), NULL, on_call, NULL), -EINVAL);
    assert_int_equal(hp_mc_get(mc, HP_STR_LIT("k"), NULL, NULL, NULL), -EINVAL);
    assert_int_equal(hp_mc_connects(mc), 1);
    close_mc();
}

/* Binary keys go base64; the b form and the plain form name the same item. */
static void test_binary_keys(void **state)
{
    static const char bin[] = {'a', ' ', '\n', 0, (char)0xff};
    struct hp_str bkey = {bin, sizeof(bin)};
    struct hp_mc_req b64 = {.flags = HP_MC_BASE64};
    char longkey[251];

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, NULL);
    assert_int_equal(set(bkey, "binary", NULL).code, HP_MC_OK);
    assert_string_equal(get(bkey, NULL).value, "binary");
    assert_int_equal(set(HP_STR_LIT("plain"), "p", &b64).code, HP_MC_OK);
    assert_string_equal(get(HP_STR_LIT("plain"), NULL).value, "p");
    memset(longkey, 'k', sizeof(longkey));
    assert_int_equal(set((struct hp_str){longkey, 250}, "long", NULL).code, HP_MC_OK);
    assert_int_equal(hp_mc_get(mc, (struct hp_str){longkey, 251}, NULL, on_call, NULL), -EINVAL);
    /* The longest binary key: its base64 form is at memcached's limit. */
    memset(longkey, ' ', sizeof(longkey));
    assert_int_equal(set((struct hp_str){longkey, 186}, "b64", NULL).code, HP_MC_OK);
    assert_string_equal(get((struct hp_str){longkey, 186}, NULL).value, "b64");
    assert_int_equal(hp_mc_get(mc, (struct hp_str){longkey, 187}, NULL, on_call, NULL), -EINVAL);
    close_mc();
}

/* 2000 concurrent callers on one connection, answered in order, once each;
 * quiet gets: misses are reported as misses, without the server saying so. */
static void test_pipelining(void **state)
{
    enum { N = 2000 };
    static struct call calls[N];
    struct hp_mc_req quiet = {.flags = HP_MC_QUIET};

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, NULL);
    for (int i = 0; i < N; i += 2) {
        char k[16], v[16];

        snprintf(k, sizeof(k), "p%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        assert_int_equal(hp_mc_set(mc, hp_str_make(k), v, strlen(v), &quiet, on_call, &calls[i]),
                         0);
    }
    wait_done(N / 2);
    for (int i = 0; i < N; i += 2) {
        assert_int_equal(calls[i].runs, 1);
        assert_int_equal(calls[i].code, HP_MC_OK);
    }
    memset(calls, 0, sizeof(calls));
    done = 0;
    for (int i = 0; i < N; i++) {
        char k[16];

        snprintf(k, sizeof(k), "p%d", i);
        assert_int_equal(hp_mc_get(mc, hp_str_make(k), i % 3 ? &quiet : NULL, on_call, &calls[i]),
                         0);
    }
    assert_int_equal(hp_mc_pending(mc), N);
    wait_done(N);
    for (int i = 0; i < N; i++) {
        char v[16];

        assert_int_equal(calls[i].runs, 1);
        assert_int_equal(calls[i].status, 0);
        if (i % 2) {
            assert_int_equal(calls[i].code, HP_MC_MISS);
        } else {
            snprintf(v, sizeof(v), "v%d", i);
            assert_int_equal(calls[i].code, HP_MC_OK);
            assert_string_equal(calls[i].value, v);
        }
    }
    assert_int_equal(hp_mc_pending(mc), 0);
    assert_int_equal(hp_mc_connects(mc), 1);
    {
        struct call n = {0};

        assert_int_equal(hp_mc_noop(mc, 0, on_call, &n), 0);
        wait_done(N + 1);
        assert_int_equal(n.status, 0);
        assert_int_equal(hp_mc_noop(mc, 1, on_call, &n), -ERANGE);
    }
    close_mc();
}

/* Several servers: each key is on the server ketama names. */
static void test_servers(void **state)
{
    enum { N = 300 };
    static struct call calls[N];
    struct hp_mc *all;
    size_t per[NSRV] = {0};

    (void)state;
    if (!have_server)
        skip();
    open_mc(NSRV, NULL);
    for (int i = 0; i < N; i++) {
        char k[16];

        snprintf(k, sizeof(k), "s%d", i);
        assert_int_equal(hp_mc_set(mc, hp_str_make(k), k, strlen(k), NULL, on_call, &calls[i]), 0);
    }
    wait_done(N);
    all = mc;
    /* Ask each server alone which keys it holds. */
    for (size_t s = 0; s < NSRV; s++) {
        struct hp_mc_opts o = {.servers = &addrs[s], .nservers = 1};
        struct hp_mc *one;

        assert_int_equal(hp_mc_new(&one, loop, &o), 0);
        mc = one;
        for (int i = 0; i < N; i++) {
            char k[16];
            struct call c;

            snprintf(k, sizeof(k), "s%d", i);
            c = get(hp_str_make(k), NULL);
            if (c.code == HP_MC_OK) {
                assert_int_equal(hp_mc_server_for(all, hp_str_make(k)), s);
                per[s]++;
            } else {
                assert_true(hp_mc_server_for(all, hp_str_make(k)) != s);
            }
        }
        hp_mc_free(one);
    }
    mc = all;
    for (size_t s = 0; s < NSRV; s++)
        assert_true(per[s] > N / 10);
    assert_int_equal(per[0] + per[1] + per[2], N);
    close_mc();
}

/* A pool of 4 connections per server shares the load. */
static void test_pool(void **state)
{
    enum { N = 1000 };
    static struct call calls[N];
    struct hp_mc_opts o = {.connections = 4};

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, &o);
    memset(calls, 0, sizeof(calls));
    for (int i = 0; i < N; i++)
        assert_int_equal(hp_mc_get(mc, HP_STR_LIT("pool"), NULL, on_call, &calls[i]), 0);
    wait_done(N);
    for (int i = 0; i < N; i++)
        assert_int_equal(calls[i].runs, 1);
    assert_int_equal(hp_mc_connects(mc), 4);
    close_mc();
}

static void test_pending_bound(void **state)
{
    struct hp_mc_opts o = {.max_pending = 3};
    struct call c[4] = {{0}};

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, &o);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hp_mc_get(mc, HP_STR_LIT("b"), NULL, on_call, &c[i]), 0);
    assert_int_equal(hp_mc_get(mc, HP_STR_LIT("b"), NULL, on_call, &c[3]), -ENOBUFS);
    wait_done(3);
    assert_int_equal(c[3].runs, 0);
    close_mc();
}

/* A stopped server: requests time out; after it resumes, the client recovers. */
static void test_timeout(void **state)
{
    struct hp_mc_opts o = {.request_timeout_ms = 200, .reconnect_min_ms = 20};
    struct call c[3] = {{0}};

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, &o);
    get(HP_STR_LIT("t"), NULL);
    hp_test_server_pause(&srv[0], true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hp_mc_get(mc, HP_STR_LIT("t"), NULL, on_call, &c[i]), 0);
    wait_done(4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].runs, 1);
        assert_int_equal(c[i].status, -ETIMEDOUT);
    }
    hp_test_server_pause(&srv[0], false);
    run_until_up(0);
    assert_int_equal(get(HP_STR_LIT("t"), NULL).status, 0);
    assert_true(hp_mc_connects(mc) >= 2);
    close_mc();
}

/* kill -9 with requests in flight, restart: -ECONNRESET, then reconnected. */
static void test_kill_restart(void **state)
{
    enum { N = 50 };
    static struct call c[N];
    struct call after = {0};
    int err;

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, NULL);
    get(HP_STR_LIT("x"), NULL);
    memset(c, 0, sizeof(c));
    hp_test_server_pause(&srv[0], true); /* so they are surely in flight */
    for (int i = 0; i < N; i++)
        assert_int_equal(hp_mc_get(mc, HP_STR_LIT("x"), NULL, on_call, &c[i]), 0);
    for (int i = 0; i < 3; i++)
        assert_true(hp_loop_run_once(loop, 10) >= 0);
    hp_test_server_kill(&srv[0]);
    wait_done(1 + N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].runs, 1);
        assert_int_equal(c[i].status, -ECONNRESET);
    }
    err = hp_mc_get(mc, HP_STR_LIT("x"), NULL, on_call, &after);
    if (err == 0) {
        wait_done(2 + N);
        assert_true(after.status == -ECONNREFUSED || after.status == -ECONNRESET);
    } else {
        assert_int_equal(err, -ENOTCONN);
    }
    hp_test_server_start(&srv[0]);
    run_until_up(0);
    assert_int_equal(set(HP_STR_LIT("x"), "back", NULL).code, HP_MC_OK);
    assert_int_equal(hp_mc_connects(mc), 2);
    close_mc();
}

static void on_garbage(struct hp_listener *l, int fd, int status)
{
    static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";

    (void)l;
    if (status != 0)
        return;
    hp_test_write_all(fd, junk, sizeof(junk) - 1);
    close(fd);
}

static void test_garbage(void **state)
{
    struct hp_listener l;
    struct hp_listener_opts lo = {.host = "127.0.0.1"};
    struct hp_mc_opts o = {.nservers = 1};
    char a[32];
    const char *ap = a;
    struct call c = {0};

    (void)state;
    done = 0;
    loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_listener_start(loop, &l, &lo, on_garbage), 0);
    snprintf(a, sizeof(a), "127.0.0.1:%d", hp_listener_port(&l));
    o.servers = &ap;
    assert_int_equal(hp_mc_new(&mc, loop, &o), 0);
    assert_int_equal(hp_mc_get(mc, HP_STR_LIT("g"), NULL, on_call, &c), 0);
    wait_done(1);
    assert_int_equal(c.runs, 1);
    assert_true(c.status == -EPROTO || c.status == -ECONNRESET);
    hp_listener_stop(&l);
    close_mc();
}

static void test_refused(void **state)
{
    struct hp_mc_opts o = {.nservers = 1};
    char a[32];
    const char *ap = a;
    struct call c = {0};
    int err;

    (void)state;
    done = 0;
    loop = hp_test_loop_new(NULL);
    snprintf(a, sizeof(a), "127.0.0.1:%u", hp_test_free_port());
    o.servers = &ap;
    assert_int_equal(hp_mc_new(&mc, loop, &o), 0);
    err = hp_mc_get(mc, HP_STR_LIT("r"), NULL, on_call, &c);
    if (err == 0) {
        wait_done(1);
        assert_int_equal(c.status, -ECONNREFUSED);
    } else {
        assert_int_equal(err, -ENOTCONN);
    }
    for (int i = 0; i < 5; i++)
        assert_true(hp_loop_run_once(loop, 20) >= 0);
    assert_int_equal(hp_mc_connects(mc), 0);
    assert_true(c.runs <= 1);
    close_mc();
}

/* A connect that never completes (see the Redis test): -ETIMEDOUT. */
static void test_connect_timeout(void **state)
{
    struct hp_mc_opts o = {.nservers = 1, .connect_timeout_ms = 200, .reconnect_min_ms = 1000};
    char a[32];
    const char *ap = a;
    struct call c = {0};
    struct hp_test_blackhole h;

    (void)state;
    hp_test_blackhole_open(&h);
    done = 0;
    loop = hp_test_loop_new(NULL);
    snprintf(a, sizeof(a), "127.0.0.1:%u", h.port);
    o.servers = &ap;
    assert_int_equal(hp_mc_new(&mc, loop, &o), 0);
    assert_int_equal(hp_mc_get(mc, HP_STR_LIT("t"), NULL, on_call, &c), 0);
    wait_done(1);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.status, -ETIMEDOUT);
    assert_false(hp_mc_server_is_up(mc, 0));
    close_mc();
    hp_test_blackhole_close(&h);
}

/* Loop shutdown with requests in flight: -ECANCELED exactly once each. */
static void test_free_in_flight(void **state)
{
    enum { N = 100 };
    static struct call c[N];

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, NULL);
    get(HP_STR_LIT("f"), NULL);
    memset(c, 0, sizeof(c));
    for (int i = 0; i < N; i++)
        assert_int_equal(hp_mc_get(mc, HP_STR_LIT("f"), NULL, on_call, &c[i]), 0);
    hp_mc_free(mc);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].runs, 1);
        assert_int_equal(c[i].status, -ECANCELED);
    }
    drain_and_free_loop();
    for (int i = 0; i < N; i++)
        assert_int_equal(c[i].runs, 1);
}

static void free_from_cb(struct hp_mc *m, int status, const struct hp_mc_reply *r, void *arg)
{
    on_call(m, status, r, arg);
    hp_mc_free(m);
}

static void test_free_in_callback(void **state)
{
    static struct call c[10];
    struct call first = {0};

    (void)state;
    if (!have_server)
        skip();
    open_mc(1, NULL);
    memset(c, 0, sizeof(c));
    assert_int_equal(hp_mc_get(mc, HP_STR_LIT("a"), NULL, free_from_cb, &first), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hp_mc_get(mc, HP_STR_LIT("a"), NULL, on_call, &c[i]), 0);
    wait_done(11);
    assert_int_equal(first.status, 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(c[i].runs, 1);
        assert_int_equal(c[i].status, -ECANCELED);
    }
    drain_and_free_loop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_binary_keys),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_servers),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pending_bound),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_kill_restart),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_free_in_callback),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
