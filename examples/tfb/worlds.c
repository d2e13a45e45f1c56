/*
 * worlds.c - the World tests: /db, /queries, /updates and /cached-queries.
 *
 * A request that needs rows gets a batch in its arena (freed with the
 * request). Every row is read by its own statement, SELECT ... WHERE id =
 * $1, prepared once per connection; the pool pipelines the statements (one
 * Sync each) over its connections, and the answers come back one callback
 * per row. When the last one is in, the batch answers: /updates first sends
 * one UPDATE for all its rows and answers when that has succeeded.
 *
 * /cached-queries looks every row up in the cache first (the worker's LRU,
 * or memcached with --memcached) and reads the misses from the database,
 * storing what it read (read-through).
 *
 * A batch never finishes its request while a query of its own is still
 * out: the arena holds the slots the callbacks write to.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "tfb.h"

#define WORLD_SQL "SELECT id, randomnumber FROM world WHERE id = $1"
/* One statement for any number of rows: the ids and new numbers as two arrays. */
#define UPDATE_SQL                                                   \
    "UPDATE world SET randomnumber = v.r FROM "                      \
    "(SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS r) AS v " \
    "WHERE world.id = v.id"

enum batch_kind { BATCH_ONE, BATCH_ROWS, BATCH_UPDATE, BATCH_CACHED };

struct world {
    int32_t id;
    int32_t random_number;
};

struct batch;

/* What one row query's callback gets: its batch and where the row goes. */
struct slot {
    struct batch *batch;
    struct world *row;
};

struct batch {
    struct hp_http_req *req;
    struct tfb_worker *w;
    enum batch_kind kind;
    unsigned n;       /* rows */
    unsigned pending; /* queries out */
    int err;          /* first failure, or 0 */
    struct world *rows;
    struct slot *slots;
};

static void finish(struct batch *b);

/* ---- the JSON answers ------------------------------------------------- */

static void write_world(struct hp_json *j, const struct world *row)
{
    hp_json_obj_begin(j);
    hp_json_kv_int(j, HP_STR_LIT("id"), row->id);
    hp_json_kv_int(j, HP_STR_LIT("randomNumber"), row->random_number);
    hp_json_obj_end(j);
}

/* /db answers an object; the others an array, even of one row. */
static int reply_rows(struct batch *b)
{
    struct hp_json *j = &b->w->json;

    hp_json_reset(j);
    if (b->kind == BATCH_ONE) {
        write_world(j, &b->rows[0]);
    } else {
        hp_json_arr_begin(j);
        for (unsigned i = 0; i < b->n; i++)
            write_world(j, &b->rows[i]);
        hp_json_arr_end(j);
    }
    return tfb_reply_json(b->req, b->w);
}

/* ---- the cache ---------------------------------------------------------- */

#ifdef TFB_HAVE_MEMCACHED
static void on_cache_stored(struct hp_mc *mc, int status, const struct hp_mc_reply *reply,
                            void *arg)
{
    /* Best effort: a value that did not get stored is read again next time. */
    (void)mc;
    (void)status;
    (void)reply;
    (void)arg;
}

/* The memcached key of a row: "world:ID". */
static struct hp_str world_key(char *buf, size_t cap, int32_t id)
{
    int n = snprintf(buf, cap, "world:%d", (int)id);

    return (struct hp_str){buf, n < 0 ? 0 : (size_t)n};
}

static bool parse_number(struct hp_str s, int32_t *out)
{
    int32_t n = 0;

    if (s.len == 0 || s.len > 9)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        n = n * 10 + (s.ptr[i] - '0');
    }
    *out = n;
    return true;
}
#endif

static void cache_store(struct tfb_worker *w, int32_t id, int32_t number)
{
#ifdef TFB_HAVE_MEMCACHED
    if (w->mc != NULL) {
        char key[24], value[16];
        int n = snprintf(value, sizeof(value), "%d", (int)number);
        struct hp_mc_req quiet = {.flags = HP_MC_QUIET};

        /* Best effort: a row not stored is read from the database again next time. */
        int err = hp_mc_set(w->mc, world_key(key, sizeof(key), id), value, (size_t)n, &quiet,
                            on_cache_stored, NULL);

        (void)err;
        return;
    }
#endif
    tfb_cache_put(&w->cache, id, number);
}

/* ---- reading rows ----------------------------------------------------- */

static void on_row(const struct hp_pg_result *res, int status, void *arg)
{
    struct slot *s = arg;
    struct batch *b = s->batch;
    int id, number;

    if (status == 0 && (hp_pg_result_rows(res) != 1 || hp_pg_result_int(res, 0, 0, &id) != 0 ||
                        hp_pg_result_int(res, 0, 1, &number) != 0))
        status = -EPROTO;
    if (status != 0) {
        if (b->err == 0)
            b->err = status;
    } else {
        s->row->id = id;
        s->row->random_number = number;
        if (b->kind == BATCH_CACHED) /* read-through: remember what the table said */
            cache_store(b->w, id, number);
    }
    if (--b->pending == 0)
        finish(b);
}

/* The decimal digits of @p v, NUL-terminated (d has room for 11 bytes); returns their count. */
static size_t put_uint(char *d, uint32_t v)
{
    char tmp[10];
    size_t n = 0, len;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (len = n; n > 0;)
        *d++ = tmp[--n];
    *d = '\0';
    return len;
}

/* Send the query for slot @p s (id already in s->row->id). */
static void read_row(struct batch *b, struct slot *s)
{
    char id[16];
    const char *values[1] = {id};
    int err;

    (void)put_uint(id, (uint32_t)s->row->id); /* 1..10000 */
    b->pending++;
    err = hp_pg_query_prepared(b->w->db, "world", WORLD_SQL, 1, values, NULL, 0, on_row, s);
    if (err != 0) { /* the callback will not run */
        b->pending--;
        if (b->err == 0)
            b->err = err;
    }
}

#ifdef TFB_HAVE_MEMCACHED
static void on_cache_got(struct hp_mc *mc, int status, const struct hp_mc_reply *reply, void *arg)
{
    struct slot *s = arg;
    struct batch *b = s->batch;

    bool hit = status == 0 && reply->code == HP_MC_OK && reply->has_value &&
               parse_number(reply->value, &s->row->random_number);

    (void)mc;
    if (!hit && (status == -ECANCELED || b->w->db == NULL)) {
        if (b->err == 0)
            b->err = -ECANCELED; /* the worker is stopping */
    } else if (!hit) {
        read_row(b, s); /* a miss, or the cache failed: read through to the database */
    }
    if (--b->pending == 0)
        finish(b);
}
#endif

/* Row @p s from the cache, or from the database on a miss. */
static void cached_row(struct batch *b, struct slot *s)
{
#ifdef TFB_HAVE_MEMCACHED
    if (b->w->mc != NULL) {
        char key[24];

        b->pending++;
        if (hp_mc_get(b->w->mc, world_key(key, sizeof(key), s->row->id), NULL, on_cache_got, s) ==
            0)
            return;
        b->pending--; /* memcached is down or busy: the database answers */
        read_row(b, s);
        return;
    }
#endif
    if (!tfb_cache_get(&b->w->cache, s->row->id, &s->row->random_number))
        read_row(b, s);
}

/* ---- updating them ---------------------------------------------------- */

static int by_id(const void *x, const void *y)
{
    const struct world *a = x, *b = y;

    return (a->id > b->id) - (a->id < b->id);
}

static void on_updated(const struct hp_pg_result *res, int status, void *arg)
{
    struct batch *b = arg;

    (void)res;
    if (status != 0 && b->err == 0)
        b->err = status;
    if (--b->pending == 0)
        finish(b);
}

/* "{1,2,3}" from an int per row, skipping rows whose id repeats the one before. */
static char *int_array(struct hp_http_req *req, const struct world *rows, unsigned n, bool ids)
{
    size_t cap = 2 + (size_t)n * 12, len = 0;
    char *s = hp_http_req_alloc(req, cap);

    if (s == NULL)
        return NULL;
    s[len++] = '{';
    for (unsigned i = 0; i < n; i++) {
        if (i > 0 && rows[i].id == rows[i - 1].id)
            continue;
        if (len > 1)
            s[len++] = ',';
        len +=
            put_uint(s + len, (uint32_t)(ids ? rows[i].id : rows[i].random_number)); /* 1..10000 */
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

/*
 * Every row read: give each a new random number and write them all with
 * one UPDATE before answering. The rows are sorted by id so that concurrent
 * updates lock rows in the same order; a row drawn twice gets one number
 * (the answer shows what the table holds).
 */
static bool update_rows(struct batch *b)
{
    const char *values[2];
    int err;

    qsort(b->rows, b->n, sizeof(*b->rows), by_id);
    for (unsigned i = 0; i < b->n; i++)
        b->rows[i].random_number = i > 0 && b->rows[i].id == b->rows[i - 1].id
                                       ? b->rows[i - 1].random_number
                                       : tfb_random_id(b->w);
    values[0] = int_array(b->req, b->rows, b->n, true);
    values[1] = int_array(b->req, b->rows, b->n, false);
    if (values[0] == NULL || values[1] == NULL) {
        b->err = -ENOMEM;
        return false;
    }
    b->pending++;
    err = hp_pg_query_prepared(b->w->db, "update", UPDATE_SQL, 2, values, NULL, 0, on_updated, b);
    if (err != 0) {
        b->pending--;
        b->err = err;
        return false;
    }
    return true;
}

/* All queries of the batch are in (or none could be sent). */
static void finish(struct batch *b)
{
    if (b->err == 0 && b->kind == BATCH_UPDATE) {
        b->kind = BATCH_ROWS; /* next time: answer */
        if (b->w->db == NULL)
            b->err = -ECANCELED;
        else if (update_rows(b))
            return;
    }
    if (b->err != 0) {
        (void)tfb_reply_error(b->req, b->err == -ECANCELED ? 503 : 500, hp_pg_strerror(b->err));
        return;
    }
    (void)reply_rows(b);
}

/* ---- the handlers ----------------------------------------------------- */

static int start(struct hp_http_req *req, enum batch_kind kind, unsigned n)
{
    struct tfb_worker *w = tfb_worker_of(req);
    struct batch *b;

    if (w->db == NULL)
        return tfb_reply_error(req, 503, "shutting down");
    b = hp_http_req_alloc(req, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    *b = (struct batch){.req = req, .w = w, .kind = kind, .n = n};
    b->rows = hp_http_req_alloc(req, sizeof(*b->rows) * n);
    b->slots = hp_http_req_alloc(req, sizeof(*b->slots) * n);
    if (b->rows == NULL || b->slots == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        struct world *row = &b->rows[i];

        row->id = tfb_random_id(w);
        b->slots[i] = (struct slot){.batch = b, .row = row};
        if (kind == BATCH_CACHED)
            cached_row(b, &b->slots[i]);
        else
            read_row(b, &b->slots[i]);
    }
    /* Callbacks never run inside the calls above: nothing has finished yet. */
    if (b->pending == 0)
        finish(b);
    return 0;
}

int tfb_db(struct hp_http_req *req)
{
    return start(req, BATCH_ONE, 1);
}

int tfb_queries(struct hp_http_req *req)
{
    return start(req, BATCH_ROWS, tfb_count_param(req, HP_STR_LIT("queries")));
}

int tfb_updates(struct hp_http_req *req)
{
    return start(req, BATCH_UPDATE, tfb_count_param(req, HP_STR_LIT("queries")));
}

int tfb_cached_queries(struct hp_http_req *req)
{
    return start(req, BATCH_CACHED, tfb_count_param(req, HP_STR_LIT("count")));
}
