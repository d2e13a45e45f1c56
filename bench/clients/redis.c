/*
 * redis.c - GET of a 16-byte value over one connection with the hellepoll
 * Redis client, in batches of DEPTH commands (DEPTH sent back to back, then
 * the next batch once all DEPTH answers are in): the load redis-benchmark
 * -c 1 -P DEPTH makes. With "window", DEPTH callers instead keep DEPTH
 * commands in flight at all times (each sends its next command as soon as
 * its answer is in), the load DEPTH concurrent HTTP requests would make.
 *
 *   bench_redis PORT DEPTH COMMANDS [batch|window]
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/redis.h>

#include "common.h"

static struct hp_redis *r;
static struct hp_loop *loop;
static uint64_t total, sent, done;
static unsigned depth, outstanding;
static bool window;
static const char *const argv_get[] = {"GET", "bench:key"};
static const size_t argv_len[] = {3, 9};

static void on_reply(struct hp_redis *c, int status, struct redisReply *reply, void *arg);

static void batch(void)
{
    while (outstanding < depth && sent < total) {
        if (hp_redis_command_argv(r, on_reply, NULL, 2, argv_get, argv_len) != 0) {
            fprintf(stderr, "command failed\n");
            exit(1);
        }
        outstanding++;
        sent++;
    }
}

static void on_reply(struct hp_redis *c, int status, struct redisReply *reply, void *arg)
{
    (void)c;
    (void)arg;
    if (status != 0 || reply->type != REDIS_REPLY_STRING || reply->len != 16) {
        fprintf(stderr, "bad reply (%d)\n", status);
        exit(1);
    }
    done++;
    outstanding--;
    if (window) {
        if (done == total)
            hp_loop_stop(loop);
        else
            batch();
    } else if (outstanding == 0) {
        if (done == total)
            hp_loop_stop(loop);
        else
            batch();
    }
}

static void on_set(struct hp_redis *c, int status, struct redisReply *reply, void *arg)
{
    (void)c;
    (void)reply;
    *(int *)arg = status == 0 ? 1 : -1;
}

int main(int argc, char **argv)
{
    struct hp_redis_opts o = {0};
    struct bench_clock t0;
    int set = 0;
    char name[64];

    if (argc != 4 && argc != 5)
        return 2;
    window = argc == 5 && strcmp(argv[4], "window") == 0;
    signal(SIGPIPE, SIG_IGN);
    o.port = (uint16_t)atoi(argv[1]);
    depth = (unsigned)atoi(argv[2]);
    total = strtoull(argv[3], NULL, 10);
    if (hp_loop_new(&loop, NULL) != 0 || hp_redis_new(&r, loop, &o) != 0)
        return 1;
    if (hp_redis_command(r, on_set, &set, "SET bench:key %s", "0123456789abcdef") != 0)
        return 1;
    while (set == 0)
        hp_loop_run_once(loop, 100);
    if (set < 0)
        return 1;
    snprintf(name, sizeof(name), "hellepoll-redis-%s%u", window ? "window" : "depth", depth);
    bench_start(&t0);
    batch();
    hp_loop_run(loop);
    bench_stop(&t0, name, done);
    hp_redis_free(r);
    return hp_loop_free(loop) == 0 ? 0 : 1;
}
