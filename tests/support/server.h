/*
 * server.h - real servers (redis-server, memcached) started by a test in a
 * temporary directory on a free loopback port, and stopped by PID. Used by
 * the redis and memcached client tests (compiled into them as a source).
 */
#ifndef HP_TEST_SERVER_H
#define HP_TEST_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum hp_test_server_kind { HP_TEST_REDIS, HP_TEST_MEMCACHED };

struct hp_test_server {
    enum hp_test_server_kind kind;
    pid_t pid; /* 0 when not running */
    uint16_t port;
    char dir[256]; /* temporary directory, removed by hp_test_server_stop() */
    char bin[256];
};

/* Find the server's binary on PATH. False (and a loud message) if missing. */
bool hp_test_server_find(struct hp_test_server *s, enum hp_test_server_kind kind);

/* A free loopback port (bound and released). */
uint16_t hp_test_free_port(void);

/* Start the server (on s->port if set, else a free one) and wait until it
 * accepts connections; fails the test on error. */
void hp_test_server_start(struct hp_test_server *s);

/* kill -9 and reap; the port and directory are kept for a restart. */
void hp_test_server_kill(struct hp_test_server *s);

/* SIGSTOP / SIGCONT. */
void hp_test_server_pause(struct hp_test_server *s, bool pause);

/* Stop (SIGKILL), reap and remove the directory. */
void hp_test_server_stop(struct hp_test_server *s);

#endif
