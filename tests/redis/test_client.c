/*
 * tests/redis/test_client.c - the Redis client (<hellepoll/redis.h>) against
 * a real redis-server started here: commands and error replies, many
 * concurrent callers pipelined on one connection, the pending bound,
 * command timeouts (server stopped with SIGSTOP), kill -9 mid-command and
 * restart (reconnect), a port that answers garbage, a refused connection,
 * freeing with commands in flight (from outside and from a callback), and
 * pub/sub across a reconnect. Every callback is counted: exactly once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/redis.h>

#include "server.h"
#include "testutil.h"

static struct hp_test_server srv;

struct call {
    int status;
    unsigned runs; /* must end at exactly 1 */
    long long integer;
    char str[128];
    int type;
};

struct fx {
    struct hp_loop *loop;
    struct hp_redis *r;
    size_t done;
};

static struct fx fx;

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (hp_test_server_find(&srv, HP_TEST_REDIS))
        hp_test_server_start(&srv);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    hp_test_server_stop(&srv);
    return 0;
}

static void on_call(struct hp_redis *r, int status, struct redisReply *reply, void *arg)
{
    struct call *c = arg;

    assert_ptr_equal(r, fx.r);
    c->runs++;
    c->status = status;
    if (reply) {
        c->type = reply->type;
        c->integer = reply->integer;
        if (reply->str)
            snprintf(c->str, sizeof(c->str), "%.*s", (int)reply->len, reply->str);
    } else {
        assert_true(status != 0 && status != HP_ESERVER);
    }
    fx.done++;
}

static void open_client(uint16_t port, unsigned timeout_ms)
{
    struct hp_redis_opts o = {.port = port,
                              .command_timeout_ms = timeout_ms,
                              .reconnect_min_ms = 20,
                              .reconnect_max_ms = 200};

    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_redis_new(&fx.r, fx.loop, &o), 0);
}

static void close_client(void)
{
    hp_redis_free(fx.r);
    hp_test_loop_free(fx.loop);
}

/* Run until the connection is up (a fresh client, or after a restart). */
static void run_until_connected(void)
{
    uint64_t end;

    hp_loop_update_time(fx.loop);
    end = hp_loop_now(fx.loop) + HP_TEST_DEADLINE_MS;
    while (!hp_redis_is_connected(fx.r)) {
        assert_true(hp_loop_run_once(fx.loop, 20) >= 0);
        assert_true(hp_loop_now(fx.loop) < end);
    }
}

/* Issue one command and wait for its callback. */
static struct call run_cmd(const char *fmt, ...)
{
    struct call c = {0};
    size_t want = fx.done + 1;
    va_list ap;

    va_start(ap, fmt);
    assert_int_equal(hp_redis_commandv(fx.r, on_call, &c, fmt, ap), 0);
    va_end(ap);
    assert_int_equal(c.runs, 0); /* never inside the call */
    hp_test_run_until_count(fx.loop, &fx.done, want);
    assert_int_equal(c.runs, 1);
    return c;
}

static void test_commands(void **state)
{
    struct call c;
    const char *argv[] = {"SET", "bin", "a\0b\r\nc"};
    size_t lens[] = {3, 3, 6};

    (void)state;
    if (srv.pid == 0)
        skip();
    open_client(srv.port, 0);
    c = run_cmd("SET %s %s", "k1", "hello");
    assert_int_equal(c.status, 0);
    assert_string_equal(c.str, "OK");
    c = run_cmd("GET %s", "k1");
    assert_int_equal(c.status, 0);
    assert_int_equal(c.type, REDIS_REPLY_STRING);
    assert_string_equal(c.str, "hello");
    c = run_cmd("GET %s", "missing");
    assert_int_equal(c.type, REDIS_REPLY_NIL);
    /* The server's error message reaches the caller. */
    c = run_cmd("NOSUCHCOMMAND x");
    assert_int_equal(c.status, HP_ESERVER);
    assert_non_null(strstr(c.str, "unknown command"));
    c = run_cmd("INCR %s", "k1");
    assert_int_equal(c.status, HP_ESERVER);
    /* Binary-safe arguments. */
    {
        struct call b = {0};

        assert_int_equal(hp_redis_command_argv(fx.r, on_call, &b, 3, argv, lens), 0);
        hp_test_run_until_count(fx.loop, &fx.done, fx.done + 1);
        assert_int_equal(b.status, 0);
    }
    c = run_cmd("STRLEN bin");
    assert_int_equal(c.integer, 6);
    /* Many arguments and a large one (the formatter's heap paths). */
    {
        static char big[5000];
        const char *args[40];
        size_t blen[40];
        struct call b = {0};

        memset(big, 'z', sizeof(big));
        args[0] = "RPUSH";
        args[1] = "list";
        for (int i = 2; i < 40; i++)
            args[i] = "item";
        assert_int_equal(hp_redis_command_argv(fx.r, on_call, &b, 40, args, NULL), 0);
        hp_test_run_until_count(fx.loop, &fx.done, fx.done + 1);
        assert_int_equal(b.integer, 38);
        args[0] = "SET";
        args[1] = "big";
        args[2] = big;
        blen[0] = 3;
        blen[1] = 3;
        blen[2] = sizeof(big);
        assert_int_equal(hp_redis_command_argv(fx.r, on_call, &b, 3, args, blen), 0);
        hp_test_run_until_count(fx.loop, &fx.done, fx.done + 1);
        c = run_cmd("STRLEN big");
        assert_int_equal(c.integer, (long long)sizeof(big));
    }
    assert_int_equal(hp_redis_command(fx.r, NULL, NULL, "PING"), -EINVAL);
    assert_true(hp_redis_is_connected(fx.r));
    assert_int_equal(hp_redis_connects(fx.r), 1);
    close_client();
}

/*
 * Replies of every shape, read back inside their callbacks: arrays larger
 * than the client's reply arena, nested and empty arrays, a value spread
 * over many reads, and small replies after them (the arena reused).
 */
enum shape { SHAPE_LIST, SHAPE_NESTED, SHAPE_BIG };

struct check {
    enum shape shape;
    unsigned runs;
    bool ok;
};

#define LIST_N 200
#define BIG_N  (300 * 1024)

static void on_check(struct hp_redis *r, int status, struct redisReply *reply, void *arg)
{
    struct check *k = arg;
    char want[16];
    bool ok = status == 0 && reply != NULL;

    (void)r;
    k->runs++;
    fx.done++;
    if (ok && k->shape == SHAPE_LIST) {
        ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == LIST_N;
        for (size_t i = 0; ok && i < LIST_N; i++) {
            snprintf(want, sizeof(want), "e%zu", i);
            ok = reply->element[i]->type == REDIS_REPLY_STRING &&
                 reply->element[i]->len == strlen(want) &&
                 strcmp(reply->element[i]->str, want) == 0;
        }
    } else if (ok && k->shape == SHAPE_NESTED) {
        redisReply **e = reply->element;

        ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
             e[0]->type == REDIS_REPLY_INTEGER && e[0]->integer == 1 &&
             e[1]->type == REDIS_REPLY_ARRAY && e[1]->elements == 2 &&
             e[1]->element[0]->type == REDIS_REPLY_INTEGER && e[1]->element[0]->integer == 2 &&
             e[1]->element[1]->type == REDIS_REPLY_STRING &&
             strcmp(e[1]->element[1]->str, "x") == 0 && e[2]->type == REDIS_REPLY_ARRAY &&
             e[2]->elements == 0;
    } else if (ok) {
        ok = reply->type == REDIS_REPLY_STRING && reply->len == BIG_N && reply->str[BIG_N] == 0;
        for (size_t i = 0; ok && i < BIG_N; i++)
            ok = reply->str[i] == (char)('a' + i % 26);
    }
    k->ok = ok;
}

static void test_replies(void **state)
{
    static const char *args[LIST_N + 2];
    static char names[LIST_N][16];
    static char big[BIG_N];
    struct check lists[10], nested[3], bigk = {.shape = SHAPE_BIG};
    const char *set[] = {"SET", "bigval", big};
    size_t set_len[] = {3, 6, BIG_N};
    struct call c;
    size_t want;

    (void)state;
    if (srv.pid == 0)
        skip();
    open_client(srv.port, 0);
    run_cmd("DEL rl");
    args[0] = "RPUSH";
    args[1] = "rl";
    for (int i = 0; i < LIST_N; i++) {
        snprintf(names[i], sizeof(names[i]), "e%d", i);
        args[i + 2] = names[i];
    }
    assert_int_equal(hp_redis_command_argv(fx.r, on_call, &c, LIST_N + 2, args, NULL), 0);
    for (size_t i = 0; i < BIG_N; i++)
        big[i] = (char)('a' + i % 26);
    /* 7 MB in one iteration: more than the socket takes at once, the rest on writability. */
    for (int i = 0; i < 24; i++)
        assert_int_equal(hp_redis_command_argv(fx.r, on_call, &c, 3, set, set_len), 0);
    hp_test_run_until_count(fx.loop, &fx.done, fx.done + 25);
    assert_int_equal(c.status, 0);
    /* Pipelined: the replies arrive together, several per read. */
    want = fx.done;
    for (int i = 0; i < 10; i++) {
        lists[i] = (struct check){.shape = SHAPE_LIST};
        assert_int_equal(hp_redis_command(fx.r, on_check, &lists[i], "LRANGE rl 0 -1"), 0);
        want++;
        if (i < 3) {
            nested[i] = (struct check){.shape = SHAPE_NESTED};
            assert_int_equal(
                hp_redis_command(fx.r, on_check, &nested[i], "EVAL %s 0", "return {1,{2,'x'},{}}"),
                0);
            want++;
        }
    }
    assert_int_equal(hp_redis_command(fx.r, on_check, &bigk, "GET bigval"), 0);
    want++;
    hp_test_run_until_count(fx.loop, &fx.done, want);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(lists[i].runs, 1);
        assert_true(lists[i].ok);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(nested[i].runs, 1);
        assert_true(nested[i].ok);
    }
    assert_int_equal(bigk.runs, 1);
    assert_true(bigk.ok);
    c = run_cmd("PING");
    assert_int_equal(c.status, 0);
    assert_string_equal(c.str, "PONG");
    assert_int_equal(hp_redis_connects(fx.r), 1);
    close_client();
}

/* 2000 callers at once: one connection, answers in order, each exactly once. */
static void test_pipelining(void **state)
{
    enum { N = 2000 };
    static struct call calls[N];
    struct call c;

    (void)state;
    if (srv.pid == 0)
        skip();
    open_client(srv.port, 0);
    run_cmd("DEL counter");
    memset(calls, 0, sizeof(calls));
    for (int i = 0; i < N; i++)
        assert_int_equal(hp_redis_command(fx.r, on_call, &calls[i], "INCR counter"), 0);
    assert_int_equal(hp_redis_pending(fx.r), N);
    hp_test_run_until_count(fx.loop, &fx.done, N + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(calls[i].runs, 1);
        assert_int_equal(calls[i].status, 0);
        assert_int_equal(calls[i].integer, i + 1);
    }
    assert_int_equal(hp_redis_pending(fx.r), 0);
    /* All of them went over the one connection this client made. */
    c = run_cmd("CLIENT LIST");
    assert_int_equal(c.status, 0);
    assert_int_equal(hp_redis_connects(fx.r), 1);
    close_client();
}

static void test_pending_bound(void **state)
{
    struct hp_redis_opts o = {.max_pending = 4};
    struct call calls[5] = {{0}};

    (void)state;
    if (srv.pid == 0)
        skip();
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    o.port = srv.port;
    assert_int_equal(hp_redis_new(&fx.r, fx.loop, &o), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(hp_redis_command(fx.r, on_call, &calls[i], "PING"), 0);
    assert_int_equal(hp_redis_command(fx.r, on_call, &calls[4], "PING"), -ENOBUFS);
    hp_test_run_until_count(fx.loop, &fx.done, 4);
    assert_int_equal(calls[4].runs, 0);
    assert_int_equal(hp_redis_command(fx.r, on_call, &calls[4], "PING"), 0);
    hp_test_run_until_count(fx.loop, &fx.done, 5);
    close_client();
}

/* A stopped server: commands time out, the client reconnects afterwards. */
static void test_timeout(void **state)
{
    struct call calls[3] = {{0}};
    struct call c;

    (void)state;
    if (srv.pid == 0)
        skip();
    open_client(srv.port, 200);
    run_cmd("PING");
    hp_test_server_pause(&srv, true);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hp_redis_command(fx.r, on_call, &calls[i], "PING"), 0);
    hp_test_run_until_count(fx.loop, &fx.done, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(calls[i].runs, 1);
        assert_int_equal(calls[i].status, -ETIMEDOUT);
    }
    hp_test_server_pause(&srv, false);
    run_until_connected();
    c = run_cmd("PING");
    assert_int_equal(c.status, 0);
    assert_true(hp_redis_connects(fx.r) >= 2);
    close_client();
}

/* kill -9 with a command in flight, restart on the same port: reconnected. */
static void test_kill_restart(void **state)
{
    struct call blocked = {0};
    struct call c;
    uint64_t end;
    int err;

    (void)state;
    if (srv.pid == 0)
        skip();
    open_client(srv.port, 0);
    run_cmd("PING");
    assert_int_equal(hp_redis_command(fx.r, on_call, &blocked, "BLPOP nothing 5"), 0);
    for (int i = 0; i < 5; i++)
        assert_true(hp_loop_run_once(fx.loop, 10) >= 0); /* let it be sent */
    hp_test_server_kill(&srv);
    hp_test_run_until_count(fx.loop, &fx.done, 2);
    assert_int_equal(blocked.runs, 1);
    assert_int_equal(blocked.status, -ECONNRESET);
    /* Down: calls fail at once, or with a connect error, never hang. */
    for (int i = 0; i < 3; i++)
        assert_true(hp_loop_run_once(fx.loop, 20) >= 0);
    err = hp_redis_command(fx.r, on_call, &c, "PING");
    if (err == 0) {
        hp_test_run_until_count(fx.loop, &fx.done, 3);
        assert_int_equal(c.status, -ECONNREFUSED);
    } else {
        assert_int_equal(err, -ENOTCONN);
    }
    hp_test_server_start(&srv);
    run_until_connected();
    hp_loop_update_time(fx.loop);
    end = hp_loop_now(fx.loop) + HP_TEST_DEADLINE_MS;
    c = run_cmd("PING");
    assert_int_equal(c.status, 0);
    assert_true(hp_loop_now(fx.loop) < end);
    assert_int_equal(hp_redis_connects(fx.r), 2);
    close_client();
}

/* A port that answers garbage: -EPROTO, once; then the client keeps trying. */
static bool garbage_accepted;

static void on_garbage(struct hp_listener *l, int fd, int status)
{
    static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";

    (void)l;
    if (status != 0)
        return;
    garbage_accepted = true;
    hp_test_write_all(fd, junk, sizeof(junk) - 1);
    close(fd);
}

static void test_garbage(void **state)
{
    struct hp_listener l;
    struct hp_listener_opts lo = {.host = "127.0.0.1"};
    struct call c = {0};
    int err;

    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_listener_start(fx.loop, &l, &lo, on_garbage), 0);
    {
        struct hp_redis_opts o = {.port = (uint16_t)hp_listener_port(&l)};

        assert_int_equal(hp_redis_new(&fx.r, fx.loop, &o), 0);
    }
    err = hp_redis_command(fx.r, on_call, &c, "PING");
    assert_int_equal(err, 0);
    hp_test_run_until_count(fx.loop, &fx.done, 1);
    assert_int_equal(c.runs, 1);
    assert_true(c.status == -EPROTO || c.status == -ECONNRESET);
    assert_true(garbage_accepted);
    assert_false(hp_redis_is_connected(fx.r) && c.status == 0);
    hp_listener_stop(&l);
    close_client();
}

/* A reply announcing 100M elements: refused (-ENOMEM) without allocating them. */
static int huge_fd = -1;

static void on_huge(struct hp_listener *l, int fd, int status)
{
    static const char huge[] = "*100000000\r\n";

    (void)l;
    if (status != 0)
        return;
    hp_test_write_all(fd, huge, sizeof(huge) - 1);
    /* Half-close, kept open: a close with the PING unread would reset the connection. */
    shutdown(fd, SHUT_WR);
    if (huge_fd >= 0)
        close(huge_fd);
    huge_fd = fd;
}

static void test_huge_array(void **state)
{
    struct hp_listener l;
    struct hp_listener_opts lo = {.host = "127.0.0.1"};
    struct call c = {0};

    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_listener_start(fx.loop, &l, &lo, on_huge), 0);
    {
        struct hp_redis_opts o = {.port = (uint16_t)hp_listener_port(&l)};

        assert_int_equal(hp_redis_new(&fx.r, fx.loop, &o), 0);
    }
    assert_int_equal(hp_redis_command(fx.r, on_call, &c, "PING"), 0);
    hp_test_run_until_count(fx.loop, &fx.done, 1);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.status, -ENOMEM);
    hp_listener_stop(&l);
    close_client();
    if (huge_fd >= 0)
        close(huge_fd);
    huge_fd = -1;
}

static void test_refused(void **state)
{
    struct call c = {0};
    int err;

    (void)state;
    open_client(hp_test_free_port(), 0);
    err = hp_redis_command(fx.r, on_call, &c, "PING");
    if (err == 0) {
        hp_test_run_until_count(fx.loop, &fx.done, 1);
        assert_int_equal(c.runs, 1);
        assert_int_equal(c.status, -ECONNREFUSED);
    } else {
        assert_int_equal(err, -ENOTCONN);
    }
    for (int i = 0; i < 5; i++) /* retries go on quietly */
        assert_true(hp_loop_run_once(fx.loop, 20) >= 0);
    assert_int_equal(hp_redis_connects(fx.r), 0);
    close_client();
    assert_true(c.runs <= 1);
}

/*
 * A connect that never completes: a listener with a full accept queue (never
 * accepting) drops further SYNs, so the client's connect hangs until its
 * connect timeout; the command waiting for it gets -ETIMEDOUT.
 */
static void test_connect_timeout(void **state)
{
    struct hp_redis_opts o = {.connect_timeout_ms = 200, .reconnect_min_ms = 1000};
    struct call c = {0};
    struct hp_test_blackhole h;

    (void)state;
    hp_test_blackhole_open(&h);
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    o.port = h.port;
    assert_int_equal(hp_redis_new(&fx.r, fx.loop, &o), 0);
    assert_int_equal(hp_redis_command(fx.r, on_call, &c, "PING"), 0);
    hp_test_run_until_count(fx.loop, &fx.done, 1);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.status, -ETIMEDOUT);
    assert_false(hp_redis_is_connected(fx.r));
    close_client();
    hp_test_blackhole_close(&h);
}

/*
 * A host name is looked up on the loop's thread pool, and its addresses
 * tried in turn ("localhost" may give ::1 first, where redis-server does
 * not listen here): commands issued at once wait for the connection.
 */
static void test_host_name(void **state)
{
    struct hp_redis_opts o = {.host = "localhost", .reconnect_min_ms = 20};
    struct call c = {0};

    (void)state;
    if (srv.pid == 0)
        skip();
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    o.port = srv.port;
    assert_int_equal(hp_redis_new(&fx.r, fx.loop, &o), 0);
    assert_int_equal(hp_redis_command(fx.r, on_call, &c, "PING"), 0);
    assert_int_equal(hp_pool_pending(fx.loop), 1); /* the lookup went to the pool */
    hp_test_run_until_count(fx.loop, &fx.done, 1);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.status, 0);
    assert_string_equal(c.str, "PONG");
    assert_int_equal(hp_redis_connects(fx.r), 1);
    close_client();
}

/* A name that does not resolve ("x..invalid" fails without a DNS query) fails the attempt. */
static void test_host_unresolvable(void **state)
{
    struct hp_redis_opts o = {.host = "x..invalid", .port = 6379, .reconnect_min_ms = 20};
    struct call c = {0};
    int err;

    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_redis_new(&fx.r, fx.loop, &o), 0);
    err = hp_redis_command(fx.r, on_call, &c, "PING");
    assert_int_equal(err, 0); /* connecting: the command waits */
    hp_test_run_until_count(fx.loop, &fx.done, 1);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.status, -EHOSTUNREACH);
    for (int i = 0; i < 5; i++) /* retries go on quietly */
        assert_true(hp_loop_run_once(fx.loop, 20) >= 0);
    assert_int_equal(hp_redis_connects(fx.r), 0);
    close_client();
    assert_int_equal(c.runs, 1);
}

/* hp_redis_free() while the lookup runs: the command gets -ECANCELED, the lookup is let go. */
static void test_free_during_lookup(void **state)
{
    struct hp_redis_opts o = {.host = "localhost", .port = 6379};
    struct call c = {0};

    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_redis_new(&fx.r, fx.loop, &o), 0);
    assert_int_equal(hp_redis_command(fx.r, on_call, &c, "PING"), 0);
    hp_redis_free(fx.r);
    assert_int_equal(c.runs, 1);
    assert_int_equal(c.status, -ECANCELED);
    hp_test_run_until_count(fx.loop, &fx.done, 1);
    while (hp_pool_pending(fx.loop) > 0) /* the detached lookup completes and frees itself */
        assert_true(hp_loop_run_once(fx.loop, 20) >= 0);
    hp_test_loop_free(fx.loop);
    assert_int_equal(c.runs, 1);
}

/* Loop shutdown with commands in flight: each gets -ECANCELED exactly once. */
static void test_free_in_flight(void **state)
{
    enum { N = 100 };
    static struct call calls[N];

    (void)state;
    if (srv.pid == 0)
        skip();
    open_client(srv.port, 0);
    run_cmd("PING");
    memset(calls, 0, sizeof(calls));
    for (int i = 0; i < N; i++)
        assert_int_equal(hp_redis_command(fx.r, on_call, &calls[i], "BLPOP nothing 5"), 0);
    assert_true(hp_loop_run_once(fx.loop, 10) >= 0); /* sent, not answered */
    hp_redis_free(fx.r);
    for (int i = 0; i < N; i++) {
        assert_int_equal(calls[i].runs, 1);
        assert_int_equal(calls[i].status, -ECANCELED);
    }
    hp_test_loop_free(fx.loop); /* nothing of the client is left on the loop */
}

/* Freeing the client from a reply callback while others wait. */
static struct call later[10];

static void free_from_cb(struct hp_redis *r, int status, struct redisReply *reply, void *arg)
{
    on_call(r, status, reply, arg);
    hp_redis_free(r);
    fx.r = NULL;
}

static void test_free_in_callback(void **state)
{
    struct call first = {0};

    (void)state;
    if (srv.pid == 0)
        skip();
    open_client(srv.port, 0);
    memset(later, 0, sizeof(later));
    assert_int_equal(hp_redis_command(fx.r, free_from_cb, &first, "PING"), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hp_redis_command(fx.r, on_call, &later[i], "PING"), 0);
    hp_test_run_until_count(fx.loop, &fx.done, 11);
    assert_int_equal(first.status, 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(later[i].runs, 1);
        assert_int_equal(later[i].status, -ECANCELED);
    }
    for (int i = 0; i < 5; i++)
        assert_true(hp_loop_run_once(fx.loop, 0) >= 0);
    hp_test_loop_free(fx.loop);
}

/* Pub/sub: messages arrive; the subscription survives a server restart. */
static size_t msgs;
static char last_msg[64];

static void on_msg(struct hp_redis *r, const char *ch, size_t chlen, const char *msg, size_t len,
                   void *arg)
{
    (void)r;
    (void)arg;
    assert_int_equal(chlen, 4);
    assert_memory_equal(ch, "news", 4);
    snprintf(last_msg, sizeof(last_msg), "%.*s", (int)len, msg);
    msgs++;
}

static void publish(struct hp_redis *pub, const char *msg)
{
    struct call c = {0};
    struct hp_redis *saved = fx.r;

    fx.r = pub;
    assert_int_equal(hp_redis_command(pub, on_call, &c, "PUBLISH news %s", msg), 0);
    hp_test_run_until_count(fx.loop, &fx.done, fx.done + 1);
    fx.r = saved;
}

static void run_until_subscribed(struct hp_redis *sub)
{
    uint64_t end;

    hp_loop_update_time(fx.loop);
    end = hp_loop_now(fx.loop) + HP_TEST_DEADLINE_MS;
    while (!hp_redis_is_subscribed(sub)) {
        assert_true(hp_loop_run_once(fx.loop, 20) >= 0);
        assert_true(hp_loop_now(fx.loop) < end);
    }
}

static void test_pubsub(void **state)
{
    struct hp_redis *sub, *pub;
    struct hp_redis_opts o = {.reconnect_min_ms = 20, .reconnect_max_ms = 100};
    struct call c = {0};

    (void)state;
    if (srv.pid == 0)
        skip();
    memset(&fx, 0, sizeof(fx));
    msgs = 0;
    fx.loop = hp_test_loop_new(NULL);
    o.port = srv.port;
    assert_int_equal(hp_redis_new(&sub, fx.loop, &o), 0);
    assert_int_equal(hp_redis_new(&pub, fx.loop, &o), 0);
    assert_int_equal(hp_redis_subscribe(sub, "news", on_msg, NULL), 0);
    assert_int_equal(hp_redis_subscribe(sub, "news", on_msg, NULL), -EEXIST);
    assert_int_equal(hp_redis_command(sub, on_call, &c, "PING"), -EBUSY);
    run_until_subscribed(sub);
    publish(pub, "one");
    hp_test_run_until_count(fx.loop, &msgs, 1);
    assert_string_equal(last_msg, "one");
    /* Restart the server: both clients reconnect, the subscription is renewed. */
    hp_test_server_kill(&srv);
    {
        uint64_t end;

        hp_loop_update_time(fx.loop);
        end = hp_loop_now(fx.loop) + HP_TEST_DEADLINE_MS;
        while (hp_redis_is_subscribed(sub) || hp_redis_is_connected(pub)) {
            assert_true(hp_loop_run_once(fx.loop, 20) >= 0);
            assert_true(hp_loop_now(fx.loop) < end);
        }
    }
    hp_test_server_start(&srv);
    run_until_subscribed(sub);
    fx.r = pub;
    run_until_connected();
    publish(pub, "two");
    hp_test_run_until_count(fx.loop, &msgs, 2);
    assert_string_equal(last_msg, "two");
    assert_int_equal(hp_redis_unsubscribe(sub, "news"), 0);
    assert_int_equal(hp_redis_unsubscribe(sub, "news"), -ENOENT);
    publish(pub, "three");
    for (int i = 0; i < 5; i++)
        assert_true(hp_loop_run_once(fx.loop, 10) >= 0);
    assert_int_equal(msgs, 2);
    /* Once the server confirmed the unsubscribe, sub takes commands again. */
    {
        struct call p = {0};
        uint64_t end;
        int err;

        fx.r = sub;
        hp_loop_update_time(fx.loop);
        end = hp_loop_now(fx.loop) + HP_TEST_DEADLINE_MS;
        while ((err = hp_redis_command(sub, on_call, &p, "PING")) == -EBUSY) {
            assert_true(hp_loop_run_once(fx.loop, 20) >= 0);
            assert_true(hp_loop_now(fx.loop) < end);
        }
        assert_int_equal(err, 0);
        hp_test_run_until_count(fx.loop, &fx.done, fx.done + 1);
        assert_int_equal(p.runs, 1);
        assert_int_equal(p.status, 0);
        assert_string_equal(p.str, "PONG");
        assert_false(hp_redis_is_subscribed(sub));
    }
    hp_redis_free(sub);
    hp_redis_free(pub);
    hp_test_loop_free(fx.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_pending_bound),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_kill_restart),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_huge_array),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_free_in_callback),
        cmocka_unit_test(test_pubsub),
        cmocka_unit_test(test_host_name),
        cmocka_unit_test(test_host_unresolvable),
        cmocka_unit_test(test_free_during_lookup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
