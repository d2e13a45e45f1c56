/*
 * kv - an HTTP key-value service on Redis or memcached:
 *
 *   PUT /kv/{key}     stores the request body            204
 *   GET /kv/{key}     returns it byte for byte            200, or 404
 *   DELETE /kv/{key}  removes it                          204
 *
 * Keys are any bytes the URL can carry, percent-decoded. With memcached,
 * keys its text protocol cannot carry go base64-encoded (the b flag); a key
 * no store can take (empty; with memcached over 250 bytes, or over 186
 * binary bytes) gets 400. While the store is down requests get 503 with the
 * reason, within a second or so (connect and command timeouts of 1 s); the
 * clients reconnect by themselves when it is back.
 *
 * Usage: kv --redis HOST:PORT | --memcached HOST:PORT [--port P] [--host H] ...
 * (HOST numeric). The other options, threads and signals are in
 * examples/common/serve.c; each worker has its own store connection.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/memcached.h>
#ifdef HP_KV_REDIS
#include <hiredis/hiredis.h>

#include <hellepoll/redis.h>
#endif

#include "serve.h"

enum store { STORE_NONE, STORE_REDIS, STORE_MEMCACHED };

static enum store store;
static char store_addr[128];
static char store_host[64];
static uint16_t store_port;

struct worker {
    struct hp_mc *mc;
#ifdef HP_KV_REDIS
    struct hp_redis *redis;
#endif
};

static struct worker workers[HP_EXAMPLE_MAX_WORKERS];

/* ---- answers ---- */

static int reply_text(struct hp_http_req *req, int status, const char *text)
{
    return hp_http_reply(req, status, HP_STR_LIT("text/plain"), text, strlen(text));
}

static int unavailable(struct hp_http_req *req, int err)
{
    char msg[160];

    snprintf(msg, sizeof(msg), "store unavailable: %s\n", hp_strerror(err));
    return reply_text(req, 503, msg);
}

/* ---- memcached ---- */

static void mc_done(struct hp_mc *mc, int status, const struct hp_mc_reply *r, void *arg)
{
    struct hp_http_req *req = arg;

    (void)mc;
    if (status == HP_ESERVER) {
        char msg[320];

        snprintf(msg, sizeof(msg), "store error: %.*s\n", (int)r->value.len, r->value.ptr);
        (void)reply_text(req, 503, msg);
    } else if (status != 0) {
        (void)unavailable(req, status);
    } else if (req->method_id == HP_HTTP_GET || req->method_id == HP_HTTP_HEAD) {
        if (r->code == HP_MC_MISS)
            (void)reply_text(req, 404, "not found\n");
        else
            (void)hp_http_reply(req, 200, HP_STR_LIT("application/octet-stream"), r->value.ptr,
                                r->value.len);
    } else if (req->method_id == HP_HTTP_PUT && r->code != HP_MC_OK) {
        (void)reply_text(req, 503, "not stored\n");
    } else {
        (void)hp_http_reply(req, 204, HP_STR_LIT(""), NULL, 0);
    }
}

static int mc_request(struct worker *w, struct hp_http_req *req, struct hp_str key)
{
    int err;

    if (hp_mc_key_check(key) < 0)
        return reply_text(req, 400, "key too long for memcached\n");
    switch (req->method_id) {
    case HP_HTTP_GET:
    case HP_HTTP_HEAD:
        err = hp_mc_get(w->mc, key, NULL, mc_done, req);
        break;
    case HP_HTTP_PUT:
        err = hp_mc_set(w->mc, key, req->body.ptr, req->body.len, NULL, mc_done, req);
        if (err == -EMSGSIZE)
            return reply_text(req, 413, "value too large for memcached\n");
        break;
    default:
        err = hp_mc_delete(w->mc, key, NULL, mc_done, req);
        break;
    }
    return err ? unavailable(req, err) : 0;
}

/* ---- Redis ---- */

#ifdef HP_KV_REDIS
static void redis_done(struct hp_redis *r, int status, struct redisReply *reply, void *arg)
{
    struct hp_http_req *req = arg;

    (void)r;
    if (status == HP_ESERVER) {
        char msg[320];

        snprintf(msg, sizeof(msg), "store error: %.*s\n", (int)reply->len, reply->str);
        (void)reply_text(req, 503, msg);
    } else if (status != 0) {
        (void)unavailable(req, status);
    } else if (req->method_id == HP_HTTP_GET || req->method_id == HP_HTTP_HEAD) {
        if (reply->type != REDIS_REPLY_STRING)
            (void)reply_text(req, 404, "not found\n");
        else
            (void)hp_http_reply(req, 200, HP_STR_LIT("application/octet-stream"), reply->str,
                                reply->len);
    } else {
        (void)hp_http_reply(req, 204, HP_STR_LIT(""), NULL, 0);
    }
}

static int redis_request(struct worker *w, struct hp_http_req *req, struct hp_str key)
{
    const char *argv[3];
    size_t lens[3];
    int argc = 2, err;

    argv[1] = key.ptr;
    lens[1] = key.len;
    switch (req->method_id) {
    case HP_HTTP_GET:
    case HP_HTTP_HEAD:
        argv[0] = "GET";
        break;
    case HP_HTTP_PUT:
        argv[0] = "SET";
        argv[2] = req->body.len ? req->body.ptr : "";
        lens[2] = req->body.len;
        argc = 3;
        break;
    default:
        argv[0] = "DEL";
        break;
    }
    lens[0] = strlen(argv[0]);
    err = hp_redis_command_argv(w->redis, redis_done, req, argc, argv, lens);
    return err ? unavailable(req, err) : 0;
}
#endif

/* ---- the handler ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode @p in into @p out (at least in.len bytes); -1 on a bad escape. */
static ssize_t decode(struct hp_str in, char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < in.len; i++) {
        if (in.ptr[i] != '%') {
            out[n++] = in.ptr[i];
            continue;
        }
        if (i + 2 >= in.len)
            return -1;
        if (hexval(in.ptr[i + 1]) < 0 || hexval(in.ptr[i + 2]) < 0)
            return -1;
        out[n++] = (char)(hexval(in.ptr[i + 1]) * 16 + hexval(in.ptr[i + 2]));
        i += 2;
    }
    return (ssize_t)n;
}

static int on_request(struct hp_http_req *req)
{
    struct worker *w = hp_http_server_data(req->server);
    struct hp_str path = req->path, key;
    char *buf;
    ssize_t n;

    if (path.len < 4 || memcmp(path.ptr, "/kv/", 4) != 0)
        return reply_text(req, 404, "try /kv/{key}\n");
    if (req->method_id != HP_HTTP_GET && req->method_id != HP_HTTP_HEAD &&
        req->method_id != HP_HTTP_PUT && req->method_id != HP_HTTP_DELETE) {
        (void)hp_http_add_header(req, HP_STR_LIT("Allow"), HP_STR_LIT("GET, HEAD, PUT, DELETE"));
        return reply_text(req, 405, "method not allowed\n");
    }
    path.ptr += 4;
    path.len -= 4;
    buf = hp_http_req_alloc(req, path.len ? path.len : 1);
    if (buf == NULL)
        return -ENOMEM;
    n = decode(path, buf);
    if (n < 0)
        return reply_text(req, 400, "bad percent-encoding in the key\n");
    if (n == 0)
        return reply_text(req, 400, "empty key\n");
    key = (struct hp_str){buf, (size_t)n};
#ifdef HP_KV_REDIS
    if (store == STORE_REDIS)
        return redis_request(w, req, key);
#endif
    return mc_request(w, req, key);
}

/* ---- workers and options ---- */

static void *worker_data(unsigned index)
{
    return &workers[index];
}

static int worker_start(void *data, struct hp_loop *loop)
{
    struct worker *w = data;

    if (store == STORE_NONE) {
        fprintf(stderr, "kv: give --redis HOST:PORT or --memcached HOST:PORT (see --help)\n");
        return -EINVAL;
    }
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */
#ifdef HP_KV_REDIS
    if (store == STORE_REDIS) {
        struct hp_redis_opts o = {.host = store_host,
                                  .port = store_port,
                                  .connect_timeout_ms = 1000,
                                  .command_timeout_ms = 1000,
                                  .reconnect_max_ms = 500};

        return hp_redis_new(&w->redis, loop, &o);
    }
#endif
    {
        const char *a = store_addr;
        struct hp_mc_opts o = {.servers = &a,
                               .nservers = 1,
                               .connect_timeout_ms = 1000,
                               .request_timeout_ms = 1000,
                               .reconnect_max_ms = 500};

        return hp_mc_new(&w->mc, loop, &o);
    }
}

static void worker_stop(void *data)
{
    struct worker *w = data;

#ifdef HP_KV_REDIS
    if (w->redis) {
        hp_redis_free(w->redis);
        w->redis = NULL;
    }
#endif
    if (w->mc) {
        hp_mc_free(w->mc); /* finishes closing while the loop runs down */
        w->mc = NULL;
    }
}

static int option(const char *opt, const char *value)
{
    enum store which;
    const char *colon;
    char *end;
    unsigned long port;

    if (strcmp(opt, "--redis") == 0)
        which = STORE_REDIS;
    else if (strcmp(opt, "--memcached") == 0)
        which = STORE_MEMCACHED;
    else
        return 0;
#ifndef HP_KV_REDIS
    if (which == STORE_REDIS) {
        fprintf(stderr, "kv: built without Redis support (hiredis was missing)\n");
        return -1;
    }
#endif
    if (store != STORE_NONE) {
        fprintf(stderr, "kv: give one of --redis and --memcached\n");
        return -1;
    }
    if (value == NULL || (colon = strrchr(value, ':')) == NULL || colon == value ||
        (size_t)(colon - value) >= sizeof(store_host) || strlen(value) >= sizeof(store_addr)) {
        fprintf(stderr, "kv: %s needs HOST:PORT\n", opt);
        return -1;
    }
    port = strtoul(colon + 1, &end, 10);
    if (*end || port == 0 || port > 65535) {
        fprintf(stderr, "kv: bad port in '%s'\n", value);
        return -1;
    }
    memcpy(store_host, value, (size_t)(colon - value));
    store_host[colon - value] = 0;
    if (store_host[0] == '[' && store_host[strlen(store_host) - 1] == ']') {
        memmove(store_host, store_host + 1, strlen(store_host) - 2);
        store_host[strlen(store_host) - 2] = 0;
    }
    store_port = (uint16_t)port; /* checked <= 65535 */
    snprintf(store_addr, sizeof(store_addr), "%s", value);
    store = which;
    return 2;
}

int main(int argc, char **argv)
{
    static const struct hp_example ex = {
        .name = "kv",
        .summary = "An HTTP key-value service on Redis or memcached: PUT, GET, DELETE /kv/{key}.\n",
        .on_request = on_request,
        .worker_data = worker_data,
        .worker_start = worker_start,
        .worker_stop = worker_stop,
        .option = option,
        .options_usage = "--redis HOST:PORT | --memcached HOST:PORT\n",
    };

    return hp_example_serve(&ex, argc, argv);
}
