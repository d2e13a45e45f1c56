/*
 * tfb - the TechEmpower Framework Benchmarks' seven test types as a small
 * hellepoll service: the router, the JSON writer, the Mustache engine, the
 * pipelined PostgreSQL client and an LRU cache, one of each per worker.
 *
 * Usage: tfb [--host ADDR] [--port N] [--dsn CONNINFO] [--workers N] [--pool N]
 *            [--batch N] [--pipeline-hold N] [--memcached HOST:PORT]
 *            [the common options of examples/common]
 *
 *   GET /json                 {"message":"Hello, World!"}
 *   GET /plaintext            Hello, World!
 *   GET /db                   one random World row
 *   GET /queries?queries=N    N rows, one statement each (N clamped to 1..500)
 *   GET /updates?queries=N    N rows read one by one, new random numbers written
 *   GET /cached-queries?count=N  N rows through the cache (read-through)
 *   GET /fortunes             the Fortune table as an HTML page
 *
 * --dsn is a libpq connection string (examples/tfb/setup-db.sh prints one);
 * --pool is the number of database connections of each worker; --batch is
 * how many queries of one loop iteration share a connection (the pool's
 * max_batch; default 1, each on the least busy one); --pipeline-hold is
 * the pool's pipeline_hold (default 2: while two queries sent on a
 * connection await their answers, new ones wait and leave together with the
 * next answers; 0 sends each loop iteration's queries at its end); --memcached
 * puts the cached-queries cache in memcached instead of each worker's LRU
 * (in builds with the memcached module). The server
 * writes Date (updated every second) and Server headers on every response.
 * examples/tfb/run.sh starts a database and the app with one command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>
#include <hellepoll/json.h>
#include <hellepoll/router.h>

#include "serve.h"
#include "tfb.h"

static struct {
    const char *dsn;
    const char *memcached; /* HOST:PORT, or NULL for the in-process cache */
    unsigned pool;
    unsigned batch;
    unsigned hold;
    struct hp_router *router;
} cfg = {.dsn = "host=127.0.0.1 port=5432 dbname=hello_world user=benchmarkdbuser "
                "password=benchmarkdbpass",
         .pool = 8,
         .batch = 1,
         .hold = 2};

/* ---- shared helpers (tfb.h) ------------------------------------------- */

int32_t tfb_random_id(struct tfb_worker *w)
{
    /* splitmix64: a fast, well-mixed generator; the bias of % is 1e-15. */
    uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (int32_t)(1 + z % TFB_WORLD_ROWS);
}

unsigned tfb_count_param(const struct hp_http_req *req, struct hp_str name)
{
    struct hp_str q = req->query;
    size_t i = 0;

    while (i < q.len) { /* name=value pairs separated by '&' */
        size_t end = i, eq;
        unsigned long n = 0;
        bool negative = false;

        while (end < q.len && q.ptr[end] != '&')
            end++;
        for (eq = i; eq < end && q.ptr[eq] != '='; eq++)
            ;
        if (eq - i == name.len && memcmp(q.ptr + i, name.ptr, name.len) == 0) {
            size_t k = eq + 1;

            if (k < end && q.ptr[k] == '-') {
                negative = true;
                k++;
            }
            if (eq == end || k == end)
                return 1; /* "queries" or "queries=" or "queries=-" */
            for (; k < end; k++) {
                if (q.ptr[k] < '0' || q.ptr[k] > '9')
                    return 1; /* not a number */
                if (n <= TFB_MAX_QUERIES)
                    n = n * 10 + (unsigned long)(q.ptr[k] - '0');
            }
            if (negative || n < 1)
                return 1;
            return n > TFB_MAX_QUERIES ? TFB_MAX_QUERIES : (unsigned)n;
        }
        i = end + 1;
    }
    return 1; /* missing */
}

int tfb_reply_json(struct hp_http_req *req, struct tfb_worker *w)
{
    struct hp_str out;

    if (hp_json_finish(&w->json, &out) != 0)
        return tfb_reply_error(req, 500, "JSON writer failed");
    return hp_http_reply(req, 200, HP_STR_LIT("application/json"), out.ptr, out.len);
}

int tfb_reply_error(struct hp_http_req *req, int status, const char *why)
{
    char line[160];
    int n = snprintf(line, sizeof(line), "%s\n", why);

    return hp_http_reply(req, status, HP_STR_LIT("text/plain"), line,
                         n < 0                      ? 0
                         : (size_t)n < sizeof(line) ? (size_t)n
                                                    : sizeof(line) - 1);
}

/* ---- the two tests without a database ---------------------------------- */

static int on_json(struct hp_http_req *req)
{
    struct tfb_worker *w = tfb_worker_of(req);

    hp_json_reset(&w->json); /* serialised per request, as TFB requires */
    hp_json_obj_begin(&w->json);
    hp_json_kv_str(&w->json, HP_STR_LIT("message"), HP_STR_LIT("Hello, World!"));
    hp_json_obj_end(&w->json);
    return tfb_reply_json(req, w);
}

static int on_plaintext(struct hp_http_req *req)
{
    static const char body[] = "Hello, World!";

    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), body, sizeof(body) - 1);
}

static int on_request(struct hp_http_req *req)
{
    return hp_router_dispatch(cfg.router, req);
}

/* ---- workers ----------------------------------------------------------- */

static void *worker_data(unsigned index)
{
    struct tfb_worker *w = calloc(1, sizeof(*w));

    if (w == NULL || tfb_cache_init(&w->cache, TFB_CACHE_SIZE) != 0) {
        fprintf(stderr, "tfb: out of memory\n");
        exit(1);
    }
    hp_json_init_alloc(&w->json, NULL, 0);
    w->rng = (uint64_t)time(NULL) * 1000003u + index;
    return w;
}

static int worker_start(void *data, struct hp_loop *loop)
{
    struct tfb_worker *w = data;
    struct hp_pg_pool_opts po = {
        .conninfo = cfg.dsn,
        .min_conns = cfg.pool,
        .max_conns = cfg.pool,
        .max_batch = cfg.batch,
        .pipeline_hold = cfg.hold,
        .max_waiting = 1u << 16, /* 500-row requests from many connections */
    };

    int err = hp_pg_pool_new(&w->db, loop, &po);

#ifdef TFB_HAVE_MEMCACHED
    if (err == 0 && cfg.memcached != NULL) {
        struct hp_mc_opts mo = {.servers = &cfg.memcached, .nservers = 1};

        if ((err = hp_mc_new(&w->mc, loop, &mo)) != 0) {
            fprintf(stderr, "tfb: --memcached %s: %s\n", cfg.memcached, hp_strerror(err));
            hp_pg_pool_free(w->db);
            w->db = NULL;
        }
    }
#endif
    return err;
}

/* SIGINT/SIGTERM: close the pool (and the memcached client): requests still
 * waiting for them get -ECANCELED and answer 503, later ones answer 503 too,
 * and the loop can end. */
static void worker_stop(void *data)
{
    struct tfb_worker *w = data;
    struct hp_pg_pool *db = w->db;

    w->db = NULL;
#ifdef TFB_HAVE_MEMCACHED
    if (w->mc != NULL) {
        struct hp_mc *mc = w->mc;

        w->mc = NULL;
        hp_mc_free(mc);
    }
#endif
    hp_pg_pool_free(db);
}

static void worker_done(void *data)
{
    struct tfb_worker *w = data;

    /* The pool went in worker_stop: it keeps the loop alive while it exists. */
    tfb_cache_free(&w->cache);
    hp_json_free(&w->json);
    free(w);
}

/* ---- options and routes ------------------------------------------------- */

/* The value of a numeric flag: 2 (flag and value taken), or -1 with a message. */
static int number(const char *opt, const char *value, long lo, long hi, unsigned *out)
{
    char *end;
    long n = strtol(value, &end, 10);

    if (*value == '\0' || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "tfb: %s must be %ld..%ld\n", opt, lo, hi);
        return -1;
    }
    *out = (unsigned)n;
    return 2;
}

static int option(const char *opt, const char *value)
{
    if (strcmp(opt, "--dsn") == 0 && value != NULL) {
        cfg.dsn = value;
        return 2;
    }
    if (strcmp(opt, "--pool") == 0 && value != NULL)
        return number(opt, value, 1, 1000, &cfg.pool);
    if (strcmp(opt, "--batch") == 0 && value != NULL)
        return number(opt, value, 1, 256, &cfg.batch);
    if (strcmp(opt, "--pipeline-hold") == 0 && value != NULL)
        return number(opt, value, 0, 256, &cfg.hold);
    if (strcmp(opt, "--memcached") == 0 && value != NULL) {
#ifdef TFB_HAVE_MEMCACHED
        cfg.memcached = value;
        return 2;
#else
        fprintf(stderr, "tfb: --memcached: this build has no memcached client; "
                        "leave the flag out to use the in-process LRU cache\n");
        return -1;
#endif
    }
    return 0;
}

static int add_routes(struct hp_router *r)
{
    static const struct {
        const char *path;
        hp_http_handler *handler;
    } routes[] = {
        {"/json", on_json},
        {"/plaintext", on_plaintext},
        {"/db", tfb_db},
        {"/queries", tfb_queries},
        {"/updates", tfb_updates},
        {"/cached-queries", tfb_cached_queries},
        {"/fortunes", tfb_fortunes},
    };
    int err;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if ((err = hp_router_add(r, "GET", routes[i].path, routes[i].handler, NULL)) != 0) {
            fprintf(stderr, "tfb: route %s: %s\n", routes[i].path, hp_router_error(r));
            return err;
        }
    }
    return hp_router_freeze(r);
}

int main(int argc, char **argv)
{
    static const struct hp_example ex = {
        .name = "tfb",
        .summary = "The TechEmpower benchmark test types on PostgreSQL (see examples/tfb).\n",
        .on_request = on_request,
        .worker_data = worker_data,
        .worker_start = worker_start,
        .worker_stop = worker_stop,
        .worker_done = worker_done,
        .option = option,
        .options_usage = "[--dsn CONNINFO] [--pool N] [--batch N]\n"
                         "             [--pipeline-hold N] [--memcached HOST:PORT]\n",
    };
    int status;

    if (hp_router_new(&cfg.router, NULL) != 0 || add_routes(cfg.router) != 0 ||
        tfb_fortunes_init() != 0) {
        fprintf(stderr, "tfb: cannot set up the routes and the template\n");
        return 1;
    }
    status = hp_example_serve(&ex, argc, argv);
    hp_router_free(cfg.router);
    tfb_fortunes_free();
    return status;
}
