/*
 * tests/redis/test_adapter.c - <hellepoll/redis-adapter.h> with plain
 * hiredis: connect, pipelined commands, a reply callback that frees the
 * context, a server that goes away, and a refused connection.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/redis-adapter.h>

#include "server.h"
#include "testutil.h"

static struct hp_test_server srv;
static struct hp_loop *loop;
static size_t replies, nulls;
static bool connected, disconnected;
static int connect_status, disconnect_status;

static int setup(void **state)
{
    (void)state;
    if (!hp_test_server_find(&srv, HP_TEST_REDIS))
        return 0;
    hp_test_server_start(&srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hp_test_server_stop(&srv);
    return 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    connected = true;
    connect_status = status;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    disconnected = true;
    disconnect_status = status;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    long long want = (long long)(intptr_t)priv;

    (void)ac;
    if (reply == NULL) {
        nulls++;
        return;
    }
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(reply->integer, want);
    replies++;
}

static redisAsyncContext *connect_to(uint16_t port)
{
    redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", port);

    assert_non_null(ac);
    assert_int_equal(ac->err, 0);
    assert_int_equal(hp_redis_attach(ac, loop), REDIS_OK);
    assert_int_equal(hp_redis_attach(ac, loop), REDIS_ERR); /* only once */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void reset(void)
{
    replies = nulls = 0;
    connected = disconnected = false;
    connect_status = disconnect_status = -100;
    loop = hp_test_loop_new(NULL);
}

/* 1000 INCRs issued at once come back in order over one connection. */
static void test_pipeline(void **state)
{
    redisAsyncContext *ac;

    (void)state;
    if (srv.pid == 0)
        skip();
    reset();
    ac = connect_to(srv.port);
    assert_int_equal(redisAsyncCommand(ac, NULL, NULL, "DEL adapter:n"), REDIS_OK);
    for (intptr_t i = 1; i <= 1000; i++)
        assert_int_equal(redisAsyncCommand(ac, on_reply, (void *)i, "INCR adapter:n"), REDIS_OK);
    hp_test_run_until_count(loop, &replies, 1000);
    assert_true(connected);
    assert_int_equal(connect_status, REDIS_OK);
    redisAsyncDisconnect(ac);
    hp_test_run_until(loop, &disconnected);
    assert_int_equal(disconnect_status, REDIS_OK);
    assert_int_equal(nulls, 0);
    hp_test_loop_free(loop); /* every watcher was stopped by the cleanup hook */
}

static void free_in_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)priv;
    if (r == NULL) {
        nulls++;
        return;
    }
    replies++;
    redisAsyncFree(ac); /* hiredis frees after this returns; the adapter must cope */
}

/* Freeing the context from a reply callback, with commands still queued. */
static void test_free_in_callback(void **state)
{
    redisAsyncContext *ac;

    (void)state;
    if (srv.pid == 0)
        skip();
    reset();
    ac = connect_to(srv.port);
    assert_int_equal(redisAsyncCommand(ac, free_in_reply, NULL, "PING"), REDIS_OK);
    assert_int_equal(redisAsyncCommand(ac, free_in_reply, NULL, "PING"), REDIS_OK);
    hp_test_run_until_count(loop, &replies, 1);
    assert_int_equal(replies, 1);
    assert_int_equal(nulls, 1); /* the second PING was cancelled by the free */
    assert_true(disconnected);
    hp_test_loop_free(loop);
}

/* The server dies: hiredis sees EOF through the adapter and disconnects. */
static void test_server_gone(void **state)
{
    redisAsyncContext *ac;

    (void)state;
    if (srv.pid == 0)
        skip();
    reset();
    ac = connect_to(srv.port);
    assert_int_equal(redisAsyncCommand(ac, on_reply, (void *)(intptr_t)1, "INCR adapter:gone"),
                     REDIS_OK);
    hp_test_run_until_count(loop, &replies, 1);
    hp_test_server_kill(&srv);
    assert_int_equal(redisAsyncCommand(ac, on_reply, (void *)(intptr_t)2, "INCR adapter:gone"),
                     REDIS_OK);
    hp_test_run_until(loop, &disconnected);
    assert_int_equal(disconnect_status, REDIS_ERR);
    assert_int_equal(nulls, 1);
    hp_test_loop_free(loop);
    hp_test_server_start(&srv);
}

/* Nothing listens: the connect callback reports the failure. */
static void test_refused(void **state)
{
    redisAsyncContext *ac;

    (void)state;
    reset();
    ac = redisAsyncConnect("127.0.0.1", hp_test_free_port());
    assert_non_null(ac);
    if (ac->err) { /* refused at once: nothing to attach */
        redisAsyncFree(ac);
        hp_test_loop_free(loop);
        return;
    }
    assert_int_equal(hp_redis_attach(ac, loop), REDIS_OK);
    redisAsyncSetConnectCallback(ac, on_connect);
    assert_int_equal(redisAsyncCommand(ac, on_reply, NULL, "PING"), REDIS_OK);
    hp_test_run_until(loop, &connected);
    assert_int_equal(connect_status, REDIS_ERR);
    hp_test_run_until_count(loop, &nulls, 1);
    hp_test_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_free_in_callback),
        cmocka_unit_test(test_server_gone),
        cmocka_unit_test(test_refused),
    };

    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */
    return cmocka_run_group_tests(tests, setup, teardown);
}
