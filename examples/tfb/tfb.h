/*
 * What the parts of examples/tfb share: the per-worker state and the
 * handlers of the seven TechEmpower test types.
 *
 * main.c wires things up (options, routes, one worker per loop thread) and
 * answers /json and /plaintext; worlds.c answers the World tests (/db,
 * /queries, /updates, /cached-queries) through the PostgreSQL pool and the
 * LRU cache; fortunes.c renders /fortunes with a Mustache template.
 */
#ifndef TFB_H
#define TFB_H

#include <stdint.h>

#include <hellepoll/http.h>
#include <hellepoll/json.h>
#include <hellepoll/mustache.h>
#include <hellepoll/mustache_http.h>
#include <hellepoll/pg.h>
#ifdef TFB_HAVE_MEMCACHED
#include <hellepoll/memcached.h>
#endif

#include "cache.h"

#define TFB_WORLD_ROWS  10000 /* ids are 1..10000, and so are the random numbers */
#define TFB_MAX_QUERIES 500   /* queries/count are clamped to 1..500 */
#define TFB_CACHE_SIZE  10000 /* entries of each worker's World cache */

/** One per worker (loop thread); the server's data pointer. */
struct tfb_worker {
    struct hp_pg_pool *db;  /* NULL once the worker is stopping */
    struct tfb_cache cache; /* World rows for /cached-queries, unless mc is set */
#ifdef TFB_HAVE_MEMCACHED
    struct hp_mc *mc; /* --memcached: the cache is there instead (NULL: stopping, or none) */
#endif
    struct hp_json json; /* reused by every JSON response */
    uint64_t rng;        /* state of tfb_random_id() */
};

/** The worker that serves @p req. */
static inline struct tfb_worker *tfb_worker_of(struct hp_http_req *req)
{
    return hp_http_server_data(req->server);
}

/** A random id (and random number) in 1..TFB_WORLD_ROWS. */
int32_t tfb_random_id(struct tfb_worker *w);

/**
 * The value of query parameter @p name as TFB wants it: missing, empty, not
 * an integer or below 1 is 1; above TFB_MAX_QUERIES is TFB_MAX_QUERIES.
 */
unsigned tfb_count_param(const struct hp_http_req *req, struct hp_str name);

/** Reply 200 with the worker's JSON writer's document (or 500 if it failed). */
int tfb_reply_json(struct hp_http_req *req, struct tfb_worker *w);

/** Reply 500 (or 503 when the database is gone) with a one-line reason. */
int tfb_reply_error(struct hp_http_req *req, int status, const char *why);

/* worlds.c */
int tfb_db(struct hp_http_req *req);
int tfb_queries(struct hp_http_req *req);
int tfb_updates(struct hp_http_req *req);
int tfb_cached_queries(struct hp_http_req *req);

/* fortunes.c */
/** Compile the fortunes template (once, at startup): 0 or a negative errno. */
int tfb_fortunes_init(void);
void tfb_fortunes_free(void);
int tfb_fortunes(struct hp_http_req *req);

#endif
