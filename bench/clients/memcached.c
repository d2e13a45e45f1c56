/*
 * memcached.c - mg of a 100-byte value over one connection: the hellepoll
 * memcached client with CALLERS concurrent callers (each issues its next get
 * as soon as its answer is in), and libmemcached's blocking memcached_get()
 * in a loop (a blocking call serves one caller at a time), in one program.
 *
 *   bench_memcached PORT CALLERS GETS hp|libmemcached
 */
#include <libmemcached/memcached.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/memcached.h>

#include "common.h"

static struct hp_mc *mc;
static struct hp_loop *loop;
static uint64_t total, sent, done;
static const struct hp_str key = {"bench:key", 9};

static void on_get(struct hp_mc *m, int status, const struct hp_mc_reply *reply, void *arg)
{
    (void)m;
    (void)arg;
    if (status != 0 || reply->code != HP_MC_OK || reply->value.len != 100) {
        fprintf(stderr, "bad get (%d)\n", status);
        exit(1);
    }
    done++;
    if (sent < total) {
        sent++;
        if (hp_mc_get(mc, key, NULL, on_get, NULL) != 0)
            exit(1);
    } else if (done == total) {
        hp_loop_stop(loop);
    }
}

static void on_set(struct hp_mc *m, int status, const struct hp_mc_reply *reply, void *arg)
{
    (void)m;
    (void)reply;
    *(int *)arg = status == 0 ? 1 : -1;
}

static int run_hp(const char *port, unsigned callers)
{
    char addr[64];
    const char *a = addr;
    struct hp_mc_opts o = {.servers = &a, .nservers = 1};
    struct bench_clock t0;
    char value[100], name[64];
    int set = 0;

    snprintf(addr, sizeof(addr), "127.0.0.1:%s", port);
    memset(value, 'v', sizeof(value));
    if (hp_loop_new(&loop, NULL) != 0 || hp_mc_new(&mc, loop, &o) != 0)
        return 1;
    if (hp_mc_set(mc, key, value, sizeof(value), NULL, on_set, &set) != 0)
        return 1;
    while (set == 0)
        hp_loop_run_once(loop, 100);
    if (set < 0)
        return 1;
    snprintf(name, sizeof(name), "hellepoll-mg-callers%u", callers);
    bench_start(&t0);
    for (unsigned i = 0; i < callers && sent < total; i++) {
        sent++;
        if (hp_mc_get(mc, key, NULL, on_get, NULL) != 0)
            return 1;
    }
    hp_loop_run(loop);
    bench_stop(&t0, name, done);
    hp_mc_free(mc);
    hp_loop_run(loop);
    return hp_loop_free(loop) == 0 ? 0 : 1;
}

static int run_libmemcached(const char *port)
{
    memcached_st *m = memcached_create(NULL);
    memcached_return_t rc;
    struct bench_clock t0;
    char value[100];

    memset(value, 'v', sizeof(value));
    if (m == NULL ||
        memcached_server_add(m, "127.0.0.1", (in_port_t)atoi(port)) != MEMCACHED_SUCCESS)
        return 1;
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    if (memcached_set(m, key.ptr, key.len, value, sizeof(value), 0, 0) != MEMCACHED_SUCCESS)
        return 1;
    bench_start(&t0);
    for (uint64_t i = 0; i < total; i++) {
        size_t len;
        uint32_t flags;
        char *v = memcached_get(m, key.ptr, key.len, &len, &flags, &rc);

        if (v == NULL || len != 100) {
            fprintf(stderr, "libmemcached get: %s\n", memcached_strerror(m, rc));
            return 1;
        }
        free(v);
    }
    bench_stop(&t0, "libmemcached-get", total);
    memcached_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    total = strtoull(argv[3], NULL, 10);
    if (strcmp(argv[4], "hp") == 0)
        return run_hp(argv[1], (unsigned)atoi(argv[2]));
    return run_libmemcached(argv[1]);
}
