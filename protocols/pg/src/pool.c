/*
 * pool.c - the per-loop connection pool: query records, the bounded wait
 * list, choosing a connection, timeouts, reconnecting with backoff, and the
 * deferred callback ("kick") that reports what failed outside a callback.
 *
 * Invariants:
 * - A query's callback runs exactly once: from hp__pg_deliver() (its answer,
 *   or an error from the done list), from its timer (-ETIMEDOUT; a query in
 *   flight then stays in its connection's FIFO, abandoned, until its answer
 *   arrives and is dropped), or from hp_pg_pool_free() (-ECANCELED).
 * - No callback runs inside an API call: anything that fails there goes on
 *   the done list and the kick reports it on a later iteration.
 * - A query goes straight to a connection when one has room, so its
 *   parameters are used in the call and not copied; only a query that has
 *   to wait keeps copies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FREE_Q_MAX 256 /* query records kept for reuse */
#define GROW_AT    4   /* in flight on every connection: open another (up to max_conns) */

static void on_q_timer(struct hp_timer *t);
static void on_kick(struct hp_defer *d);
static void on_retry(struct hp_timer *t);
static void dispatch_waiting(struct hp_pg_pool *pool);

static void *libc_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n);
}

static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

void *hp__pg_alloc(struct hp_pg_pool *pool, size_t n)
{
    void *p = pool->alloc.realloc(pool->alloc.ctx, NULL, n);

    if (p)
        memset(p, 0, n);
    return p;
}

void *hp__pg_realloc(struct hp_pg_pool *pool, void *p, size_t n)
{
    return pool->alloc.realloc(pool->alloc.ctx, p, n);
}

void hp__pg_free(struct hp_pg_pool *pool, void *p)
{
    pool->alloc.free(pool->alloc.ctx, p);
}

void hp__pg_enter(struct hp_pg_pool *pool)
{
    pool->depth++;
}

static void destroy(struct hp_pg_pool *pool)
{
    while (pool->free_q) {
        struct pgq *q = pool->free_q;

        pool->free_q = q->next;
        hp__pg_free(pool, q->mem);
        hp__pg_free(pool, q);
    }
    while (pool->chans) {
        struct pgchan *ch = pool->chans;

        pool->chans = ch->next;
        hp__pg_free(pool, ch);
    }
    hp__pg_resolve_fini(pool);
    hp__pg_free(pool, pool->conninfo);
    pool->alloc.free(pool->alloc.ctx, pool);
}

bool hp__pg_leave(struct hp_pg_pool *pool)
{
    if (--pool->depth == 0 && pool->closing) {
        destroy(pool);
        return true;
    }
    return false;
}

void hp__pg_kick(struct hp_pg_pool *pool)
{
    if (!pool->closing)
        hp_defer_start(&pool->kick);
}

/* ---- query records ----------------------------------------------------- */

static struct pgq *q_new(struct hp_pg_pool *pool)
{
    struct pgq *q = pool->free_q;
    char *mem = NULL;
    size_t memcap = 0;

    if (q) {
        pool->free_q = q->next;
        pool->nfree--;
        mem = q->mem;
        memcap = q->memcap;
    } else if (!(q = hp__pg_alloc(pool, sizeof(*q)))) {
        return NULL;
    }
    memset(q, 0, sizeof(*q));
    q->mem = mem;
    q->memcap = memcap;
    q->pool = pool;
    q->deadline = UINT64_MAX;
    hp_timer_init(pool->loop, &q->timer, on_q_timer);
    q->timer.data = q;
    return q;
}

void hp__pg_q_release(struct pgq *q)
{
    struct hp_pg_pool *pool = q->pool;

    hp_timer_stop(&q->timer);
    PQclear(q->res);
    q->res = NULL;
    if (pool->nfree < FREE_Q_MAX && q->memcap <= 4096) {
        q->next = pool->free_q;
        pool->free_q = q;
        pool->nfree++;
        return;
    }
    hp__pg_free(pool, q->mem);
    hp__pg_free(pool, q);
}

/*
 * Copy what a waiting query needs into q->mem: the parameter pointer array,
 * then sql, name and the values, each NUL-terminated (libpq takes text
 * parameters as C strings, which is also why values given with lengths are
 * always copied).
 */
static int q_copy(struct pgq *q)
{
    size_t ptrs = (size_t)q->nparams * sizeof(char *);
    size_t need = ptrs + strlen(q->sql) + 1 + (q->name ? strlen(q->name) + 1 : 0);
    const char **vals;
    char *p;

    for (int i = 0; i < q->nparams; i++) {
        if (q->values[i])
            need += (q->lengths ? (size_t)q->lengths[i] : strlen(q->values[i])) + 1;
    }
    if (need > q->memcap) {
        char *m = hp__pg_realloc(q->pool, q->mem, need);

        if (!m)
            return -ENOMEM;
        q->mem = m;
        q->memcap = need;
    }
    vals = (const char **)(void *)q->mem;
    p = q->mem + ptrs;
    for (int i = 0; i < q->nparams; i++) {
        size_t n;

        if (!q->values[i]) {
            vals[i] = NULL;
            continue;
        }
        n = q->lengths ? (size_t)q->lengths[i] : strlen(q->values[i]);
        memcpy(p, q->values[i], n);
        p[n] = '\0';
        vals[i] = p;
        p += n + 1;
    }
    q->values = vals;
    q->lengths = NULL;
    memcpy(p, q->sql, strlen(q->sql) + 1);
    q->sql = p;
    p += strlen(p) + 1;
    if (q->name) {
        memcpy(p, q->name, strlen(q->name) + 1);
        q->name = p;
    }
    return 0;
}

/* ---- delivering -------------------------------------------------------- */

void hp__pg_deliver(struct pgq *q, const struct hp_pg_result *res)
{
    hp_pg_query_cb *cb = q->cb;

    hp_timer_stop(&q->timer);
    q->cb = NULL;
    if (cb && !q->abandoned)
        cb(res, res->status, q->arg);
    hp__pg_q_release(q);
}

static void txn_free(struct hp_pg_txn *txn)
{
    struct hp_pg_pool *pool = txn->pool;

    if (txn->conn)
        txn->conn->txn = NULL;
    if (txn->prev)
        txn->prev->next = txn->next;
    else
        pool->txns = txn->next;
    if (txn->next)
        txn->next->prev = txn->prev;
    hp__pg_free(pool, txn);
}

/* Report a query that failed before it got an answer. */
static void fail(struct pgq *q, int status, const char *msg)
{
    struct hp_pg_result r = {.status = status, .msg = msg};

    if (q->kind == Q_BEGIN) {
        hp_pg_txn_cb *tcb = q->tcb;

        hp_timer_stop(&q->timer);
        q->tcb = NULL;
        if (q->txn)
            txn_free(q->txn);
        if (tcb && !q->abandoned)
            tcb(NULL, status, q->arg);
        hp__pg_q_release(q);
        return;
    }
    if (q->kind == Q_END && q->txn)
        txn_free(q->txn);
    hp__pg_deliver(q, &r);
}

/*
 * Report @p q on a later iteration with @p status and @p msg: the text of
 * its own failure (a dead connection's message lives until the done list
 * is empty), or NULL for hp_pg_strerror's.
 */
void hp__pg_q_done_later(struct pgq *q, int status, const char *msg)
{
    struct hp_pg_pool *pool = q->pool;

    q->status = status;
    q->msg = msg;
    q->next = NULL;
    if (pool->done_tail)
        pool->done_tail->next = q;
    else
        pool->done_head = q;
    pool->done_tail = q;
    hp__pg_kick(pool);
}

void hp__pg_begin_done(struct pgq *q, int status)
{
    struct hp_pg_txn *txn = q->txn;
    hp_pg_txn_cb *tcb = q->tcb;

    hp_timer_stop(&q->timer);
    if (status != 0) {
        fail(q, status, NULL);
        return;
    }
    if (q->abandoned) {
        struct pgq *end = q_new(q->pool);

        /* Nobody took the transaction: roll it back, which unpins. */
        hp__pg_q_release(q);
        txn->ended = true;
        if (!end) {
            hp__pg_conn_break(txn->conn, -ENOMEM, "out of memory");
            return;
        }
        end->kind = Q_END;
        end->sql = "ROLLBACK";
        end->txn = txn;
        end->deadline = hp_loop_now(end->pool->loop) + end->pool->query_timeout;
        hp__pg_conn_send(txn->conn, end);
        return;
    }
    {
        void *arg = q->arg;

        hp__pg_q_release(q);
        tcb(txn, 0, arg);
    }
}

void hp__pg_end_done(struct pgq *q, const struct hp_pg_result *res)
{
    txn_free(q->txn);
    q->txn = NULL;
    hp__pg_deliver(q, res);
}

void hp__pg_notify(struct hp_pg_pool *pool, const char *channel, const char *payload, int pid)
{
    if (pool->on_notify)
        pool->on_notify(pool, channel, payload, pid, pool->notify_arg);
}

/* ---- choosing a connection --------------------------------------------- */

static bool usable(const struct hp_pg_pool *pool, const struct pgconn *c)
{
    return c->state == C_UP && !c->txn && !c->reserved && c->inflight < pool->max_pipeline;
}

static bool is_plain(const struct pgq *q);

/*
 * An idle connection if there is one, else the least busy; with max_batch
 * above 1, a plain query first joins one that this iteration already sent
 * on (fewer than max_batch so far).
 */
static struct pgconn *pick(struct hp_pg_pool *pool, const struct pgq *q)
{
    struct pgconn *best = NULL, *idle = NULL;
    bool batch = pool->max_batch > 1 && is_plain(q);

    if (q->kind == Q_LISTEN) {
        struct pgconn *c = pool->listen_conn;

        return c && c->state == C_UP ? c : NULL;
    }
    for (struct pgconn *c = pool->conns; c; c = c->next) {
        if (q->kind == Q_BEGIN) {
            if (c->state == C_UP && !c->txn && c->inflight == 0 &&
                (!c->reserved || c->reserved == q))
                return c;
            continue;
        }
        if (!usable(pool, c))
            continue;
        if (batch && c->nsent > 0 && c->nsent < pool->max_batch)
            return c; /* leaves with what this iteration sent on it */
        if (c->inflight == 0) {
            if (!batch)
                return c;
            if (!idle)
                idle = c;
        }
        if (!best || c->inflight < best->inflight)
            best = c;
    }
    return idle ? idle : best;
}

/* A waiting BEGIN keeps new queries off the least busy connection until it is idle. */
static void reserve_for(struct hp_pg_pool *pool, struct pgq *q)
{
    struct pgconn *best = NULL;

    for (struct pgconn *c = pool->conns; c; c = c->next) {
        if (c->reserved == q)
            return;
        if (usable(pool, c) && (!best || c->inflight < best->inflight))
            best = c;
    }
    if (best)
        best->reserved = q;
}

static void unreserve(struct hp_pg_pool *pool, const struct pgq *q)
{
    for (struct pgconn *c = pool->conns; c; c = c->next) {
        if (c->reserved == q)
            c->reserved = NULL;
    }
}

static void send_on(struct pgconn *c, struct pgq *q)
{
    hp_timer_stop(&q->timer); /* a query that waited: its connection watches the deadline now */
    if (q->kind == Q_BEGIN) {
        c->reserved = NULL;
        c->txn = q->txn;
        q->txn->conn = c;
    }
    hp__pg_conn_send(c, q);
}

static bool is_plain(const struct pgq *q)
{
    return q->kind == Q_PLAIN || q->kind == Q_PREPARED;
}

static void wait_unlink(struct hp_pg_pool *pool, struct pgq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        pool->wait_head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        pool->wait_tail = q->prev;
    q->next = q->prev = NULL;
    q->waiting = false;
    pool->nwaiting--;
    if (!is_plain(q))
        pool->nwaiting_other--;
}

/*
 * Send what waits, in order, while connections have room. Once a plain
 * query finds none, the plain ones behind it stay too (order), and the scan
 * goes on only as far as the last waiting BEGIN or LISTEN: called after
 * every answer while queries wait, it must not walk a long wait list of
 * plain queries each time (that was quadratic).
 */
static void dispatch_waiting(struct hp_pg_pool *pool)
{
    struct pgq *q = pool->wait_head;
    bool plain_full = false;
    unsigned others = pool->nwaiting_other; /* not plain, from q on */

    while (q && !pool->closing && !(plain_full && others == 0)) {
        struct pgq *next = q->next;
        bool plain = is_plain(q);
        struct pgconn *c = plain && plain_full ? NULL : pick(pool, q);

        if (!plain)
            others--;
        if (c) {
            wait_unlink(pool, q);
            send_on(c, q);
        } else if (q->kind == Q_BEGIN) {
            reserve_for(pool, q);
        } else if (plain) {
            plain_full = true;
        }
        q = next;
    }
}

/* ---- connections come and go ------------------------------------------ */

void hp__pg_conn_up(struct pgconn *c)
{
    struct hp_pg_pool *pool = c->pool;

    pool->st.connects++;
    pool->backoff = 0;
    pool->down = false;
    if (c->listener) {
        for (struct pgchan *ch = pool->chans; ch && c->state == C_UP; ch = ch->next) {
            struct pgq *q = q_new(pool);

            if (!q) {
                hp__pg_conn_break(c, -ENOMEM, "out of memory");
                return;
            }
            q->kind = Q_LISTEN;
            q->sql = ch->sql;
            q->deadline = hp_loop_now(pool->loop) + pool->query_timeout;
            hp__pg_conn_send(c, q);
        }
    } else {
        pool->nconnecting--;
        pool->nup++;
    }
    hp__pg_conn_rearm(c);
    dispatch_waiting(pool);
    hp__pg_kick(pool);
}

/*
 * If the query the server is running now (the head, whose answer has not
 * fully arrived) was abandoned, cancel it there. Called only when every
 * answer already read has been taken, so that a cancel is not sent for a
 * query that has in fact finished (it would hit the one after it).
 */
void hp__pg_conn_cancel_head(struct pgconn *c)
{
    struct hp_pg_pool *pool = c->pool;
    struct pgq *h = c->head;

    /* Wire mode: only once the server has it (not while written or held back). */
    if (h && h->abandoned && !h->cancel_sent && !h->no_cancel && h->kind != Q_HEALTH &&
        (!c->wire || c->unanswered > 0)) {
        h->cancel_sent = true;
        if (hp__pg_cancel_start(pool, c->pg) == 0)
            pool->st.cancels++;
    }
}

void hp__pg_conn_ready(struct pgconn *c)
{
    if (c->pool->nwaiting)
        dispatch_waiting(c->pool);
}

/*
 * A connection attempt failed: back off before the next one and, if
 * nothing works, fail waiting queries fast meanwhile (pool->down_msg says
 * why).
 */
static void attempt_failed(struct hp_pg_pool *pool, int err)
{
    if (pool->nup == 0) {
        pool->down = true;
        pool->down_err = err;
    }
    pool->backoff = pool->backoff ? pool->backoff * 2 : pool->backoff_min;
    if (pool->backoff > pool->backoff_max)
        pool->backoff = pool->backoff_max;
    hp_timer_start(&pool->retry, pool->backoff, 0);
    hp__pg_kick(pool);
}

void hp__pg_conn_failed(struct pgconn *c)
{
    struct hp_pg_pool *pool = c->pool;
    bool was_up = c->ever_up;
    int status = c->err;

    if (c->listener) {
        pool->listen_conn = NULL;
    } else {
        if (c->prev)
            c->prev->next = c->next;
        else
            pool->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        pool->nconns--;
    }
    c->prev = NULL;
    c->next = pool->dead;
    pool->dead = c;
    snprintf(pool->down_msg, sizeof(pool->down_msg), "%s", c->errmsg);
    pool->st.failures++;
    while (c->head) {
        struct pgq *q = c->head;

        c->head = q->next;
        c->inflight--;
        pool->st.in_flight--;
        q->conn = NULL;
        if (q->kind == Q_HEALTH)
            hp__pg_q_release(q);
        else
            hp__pg_q_done_later(q, status, c->errmsg); /* c is freed after the done list */
    }
    c->tail = NULL;
    if (c->txn) {
        c->txn->conn = NULL;
        c->txn = NULL;
    }
    c->reserved = NULL;
    if (!was_up)
        attempt_failed(pool, status);
    hp__pg_kick(pool);
}

void hp__pg_health_start(struct pgconn *c)
{
    struct pgq *q = q_new(c->pool);

    if (!q)
        return;
    q->kind = Q_HEALTH;
    q->sql = "";
    q->deadline = hp_loop_now(c->pool->loop) + c->pool->query_timeout;
    hp__pg_conn_send(c, q);
}

void hp__pg_health_done(struct pgconn *c, int status)
{
    if (status != 0)
        hp__pg_conn_break(c, -ECONNRESET, "health check failed");
}

static bool all_busy(const struct hp_pg_pool *pool)
{
    if (pool->nup == 0)
        return false;
    for (const struct pgconn *c = pool->conns; c; c = c->next) {
        if (c->state == C_UP && !c->txn && c->inflight < GROW_AT)
            return false;
    }
    return true;
}

/* Open connections up to what is wanted now, unless backing off. */
static void ensure(struct hp_pg_pool *pool)
{
    struct pgconn *c;
    unsigned want = pool->min_conns;

    if (pool->closing || hp_timer_is_active(&pool->retry))
        return;
    if (pool->nconnecting == 0 && pool->nconns < pool->max_conns &&
        (pool->nwaiting > 0 || all_busy(pool)))
        want = pool->nconns + 1;
    while (pool->nconns < want && !hp_timer_is_active(&pool->retry)) {
        int err = hp__pg_conn_open(pool, false, &c);

        if (err) {
            pool->st.failures++;
            snprintf(pool->down_msg, sizeof(pool->down_msg), "%s", hp_strerror(err));
            attempt_failed(pool, err);
            return;
        }
    }
    if (pool->chans && !pool->listen_conn && !hp_timer_is_active(&pool->retry)) {
        int err = hp__pg_conn_open(pool, true, &c);

        if (err) {
            pool->st.failures++;
            snprintf(pool->down_msg, sizeof(pool->down_msg), "%s", hp_strerror(err));
            attempt_failed(pool, err);
        }
    }
}

static void on_kick(struct hp_defer *d)
{
    struct hp_pg_pool *pool = d->data;

    hp__pg_enter(pool);
    while (pool->done_head && !pool->closing) {
        struct pgq *q = pool->done_head;

        pool->done_head = q->next;
        if (!pool->done_head)
            pool->done_tail = NULL;
        fail(q, q->status, q->msg);
    }
    while (pool->down && pool->nup == 0 && pool->nconnecting == 0 && pool->wait_head &&
           !pool->closing) {
        struct pgq *q = pool->wait_head;

        wait_unlink(pool, q);
        fail(q, pool->down_err, pool->down_msg);
    }
    /* Not while done entries may still point at a dead connection's message: on the next kick. */
    while (pool->dead && !pool->done_head) {
        struct pgconn *c = pool->dead;

        pool->dead = c->next;
        hp__pg_conn_free(c);
    }
    if (pool->nwaiting && !pool->closing)
        dispatch_waiting(pool);
    ensure(pool);
    hp__pg_leave(pool);
}

/* The end of a loop iteration in which queries were written: send them (conn.c). */
static void on_uncork(struct hp_defer *d)
{
    struct hp_pg_pool *pool = d->data;
    struct pgconn *next;

    hp__pg_enter(pool);
    for (struct pgconn *c = pool->conns; c; c = next) {
        next = c->next; /* a send that fails moves c to the dead list */
        hp__pg_conn_uncork(c);
    }
    if (pool->listen_conn)
        hp__pg_conn_uncork(pool->listen_conn);
    hp__pg_leave(pool);
}

static void on_retry(struct hp_timer *t)
{
    struct hp_pg_pool *pool = t->data;

    hp__pg_enter(pool);
    ensure(pool);
    hp__pg_leave(pool);
}

/* A waiting query ran out of time (queries in flight: hp__pg_q_expired()). */
static void on_q_timer(struct hp_timer *t)
{
    struct pgq *q = t->data;
    struct hp_pg_pool *pool = q->pool;

    hp__pg_enter(pool);
    if (q->waiting) {
        wait_unlink(pool, q);
        if (q->kind == Q_BEGIN)
            unreserve(pool, q);
        fail(q, -ETIMEDOUT, "timed out waiting for a connection");
    }
    hp__pg_leave(pool);
}

/*
 * A query in flight on @p c passed its deadline: its caller hears
 * -ETIMEDOUT now; the query stays in the FIFO, abandoned, so that its
 * answer is matched and dropped when it comes, and it is cancelled on the
 * server once it heads the pipeline. A health check that times out ends
 * the connection instead.
 */
void hp__pg_q_expired(struct pgconn *c, struct pgq *q)
{
    hp_pg_query_cb *cb = q->cb;
    hp_pg_txn_cb *tcb = q->tcb;
    struct hp_pg_result r = {.status = -ETIMEDOUT, .msg = "query timed out"};

    if (q->kind == Q_HEALTH) {
        hp__pg_conn_break(c, -ETIMEDOUT, "health check timed out");
        return;
    }
    q->deadline = UINT64_MAX;
    if (q->abandoned) {
        /* Cancelled by its caller while queued, and still not answered: cancel it there. */
        q->no_cancel = false;
        if (c->head == q)
            hp__pg_conn_cancel_head(c);
        hp__pg_conn_rearm(c);
        return;
    }
    q->abandoned = true;
    q->cb = NULL;
    q->tcb = NULL;
    if (c->head == q)
        hp__pg_conn_cancel_head(c);
    hp__pg_conn_rearm(c);
    if (tcb)
        tcb(NULL, -ETIMEDOUT, q->arg);
    else if (cb)
        cb(&r, -ETIMEDOUT, q->arg);
}

/* ---- cancelling by the caller ------------------------------------------ */

static bool cancellable(const struct pgq *q, const void *arg)
{
    return q->arg == arg && (q->cb || q->tcb) && !q->abandoned &&
           (q->kind == Q_PLAIN || q->kind == Q_PREPARED || q->kind == Q_BEGIN ||
            q->kind == Q_LISTEN);
}

static unsigned count_in_flight(struct pgconn *c, const void *arg)
{
    unsigned n = 0;

    for (const struct pgq *q = c ? c->head : NULL; q; q = q->next)
        n += cancellable(q, arg);
    return n;
}

/*
 * Abandon the queries in flight on @p c made with @p arg; each one's
 * callback travels on a carrier record from @p spare to the done list.
 */
static unsigned cancel_in_flight(struct pgconn *c, const void *arg, struct pgq **spare)
{
    unsigned n = 0;

    for (struct pgq *q = c ? c->head : NULL; q; q = q->next) {
        struct pgq *carrier;

        if (!cancellable(q, arg))
            continue;
        carrier = *spare;
        *spare = carrier->next;
        carrier->kind = q->kind == Q_BEGIN ? Q_BEGIN : Q_PLAIN;
        carrier->cb = q->cb;
        carrier->tcb = q->tcb;
        carrier->arg = q->arg;
        hp__pg_q_done_later(carrier, -ECANCELED, "cancelled by hp_pg_cancel()");
        q->cb = NULL;
        q->tcb = NULL;
        q->abandoned = true;
        q->no_cancel = q != c->head; /* queued: let it run, drop the answer */
        n++;
    }
    if (n && c->head && c->head->abandoned) {
        hp__pg_conn_cancel_head(c);
        hp__pg_conn_rearm(c);
    }
    return n;
}

int hp_pg_cancel(struct hp_pg_pool *pool, void *arg)
{
    struct pgq *spare = NULL;
    unsigned need = 0, n = 0;

    if (pool->closing)
        return HP_ECLOSED;
    for (struct pgconn *c = pool->conns; c; c = c->next)
        need += count_in_flight(c, arg);
    need += count_in_flight(pool->listen_conn, arg);
    /* All or nothing: the carriers first. */
    for (unsigned i = 0; i < need; i++) {
        struct pgq *q = q_new(pool);

        if (!q) {
            while (spare) {
                q = spare;
                spare = q->next;
                hp__pg_q_release(q);
            }
            return -ENOMEM;
        }
        q->next = spare;
        spare = q;
    }
    for (struct pgq *q = pool->wait_head, *next; q; q = next) {
        next = q->next;
        if (!cancellable(q, arg))
            continue;
        wait_unlink(pool, q);
        if (q->kind == Q_BEGIN)
            unreserve(pool, q);
        hp__pg_q_done_later(q, -ECANCELED, "cancelled by hp_pg_cancel()");
        n++;
    }
    for (struct pgconn *c = pool->conns; c; c = c->next)
        n += cancel_in_flight(c, arg, &spare);
    n += cancel_in_flight(pool->listen_conn, arg, &spare);
    return (int)n;
}

/* ---- the API ----------------------------------------------------------- */

static uint64_t or_default(uint64_t v, uint64_t def)
{
    return v ? v : def;
}

int hp_pg_pool_new(struct hp_pg_pool **out, struct hp_loop *loop,
                   const struct hp_pg_pool_opts *opts)
{
    struct hp_allocator alloc;
    struct hp_pg_pool *pool;
    size_t n;

    if (!out || !loop || !opts || !opts->conninfo)
        return -EINVAL;
    if (opts->max_conns && opts->min_conns > opts->max_conns)
        return -EINVAL;
    alloc = opts->alloc;
    if (!alloc.realloc || !alloc.free)
        alloc = (struct hp_allocator){libc_realloc, libc_free, NULL};
    pool = alloc.realloc(alloc.ctx, NULL, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    memset(pool, 0, sizeof(*pool));
    pool->alloc = alloc;
    n = strlen(opts->conninfo) + 1;
    pool->conninfo = hp__pg_alloc(pool, n);
    if (!pool->conninfo) {
        alloc.free(alloc.ctx, pool);
        return -ENOMEM;
    }
    memcpy(pool->conninfo, opts->conninfo, n);
    hp__pg_resolve_init(pool);
    pool->loop = loop;
    pool->min_conns = opts->min_conns ? opts->min_conns : 1;
    pool->max_conns = opts->max_conns ? opts->max_conns : 4;
    if (pool->min_conns > pool->max_conns)
        pool->max_conns = pool->min_conns;
    pool->max_pipeline = opts->max_pipeline ? opts->max_pipeline : 256;
    pool->max_waiting = opts->max_waiting ? opts->max_waiting : 1024;
    pool->query_timeout = or_default(opts->query_timeout_ms, 30000);
    pool->connect_timeout = or_default(opts->connect_timeout_ms, 10000);
    pool->health_interval = or_default(opts->health_interval_ms, 30000);
    pool->backoff_min = or_default(opts->reconnect_min_ms, 100);
    pool->backoff_max = or_default(opts->reconnect_max_ms, 5000);
    pool->no_cork = opts->no_cork;
    pool->libpq_io = opts->libpq_io;
    pool->max_batch = opts->max_batch ? opts->max_batch : 1;
    pool->pipeline_hold = opts->pipeline_hold;
    pool->on_notify = opts->on_notify;
    pool->notify_arg = opts->notify_arg;
    hp_defer_init(loop, &pool->kick, on_kick);
    pool->kick.data = pool;
    hp_defer_init(loop, &pool->uncork, on_uncork);
    pool->uncork.data = pool;
    hp_timer_init(loop, &pool->retry, on_retry);
    pool->retry.data = pool;
    hp__pg_kick(pool);
    *out = pool;
    return 0;
}

static void cancel_all_conn(struct pgconn *c)
{
    while (c->head) {
        struct pgq *q = c->head;

        c->head = q->next;
        q->conn = NULL;
        fail(q, -ECANCELED, "the pool was freed");
    }
    c->tail = NULL;
}

void hp_pg_pool_free(struct hp_pg_pool *pool)
{
    struct pgconn *c;

    if (!pool || pool->closing)
        return;
    pool->closing = true;
    hp__pg_enter(pool);
    hp_defer_stop(&pool->kick);
    hp_defer_stop(&pool->uncork);
    hp_timer_stop(&pool->retry);
    hp__pg_cancel_detach_all(pool);
    /* Close every connection first, so callbacks below find nothing to use. */
    for (c = pool->conns; c; c = c->next) {
        hp_io_stop(&c->io);
        hp_timer_stop(&c->timer);
        hp_timer_stop(&c->qtimer);
        hp_timer_stop(&c->probe);
    }
    if (pool->listen_conn) {
        hp_io_stop(&pool->listen_conn->io);
        hp_timer_stop(&pool->listen_conn->timer);
        hp_timer_stop(&pool->listen_conn->qtimer);
        hp_timer_stop(&pool->listen_conn->probe);
    }
    while (pool->wait_head) {
        struct pgq *q = pool->wait_head;

        wait_unlink(pool, q);
        fail(q, -ECANCELED, "the pool was freed");
    }
    while (pool->done_head) {
        struct pgq *q = pool->done_head;

        pool->done_head = q->next;
        fail(q, -ECANCELED, "the pool was freed");
    }
    pool->done_tail = NULL;
    while ((c = pool->conns) != NULL) {
        pool->conns = c->next;
        cancel_all_conn(c);
        hp__pg_conn_free(c);
    }
    if ((c = pool->listen_conn) != NULL) {
        pool->listen_conn = NULL;
        cancel_all_conn(c);
        hp__pg_conn_free(c);
    }
    while ((c = pool->dead) != NULL) {
        pool->dead = c->next;
        hp__pg_conn_free(c);
    }
    while (pool->txns) {
        pool->txns->conn = NULL;
        txn_free(pool->txns);
    }
    hp__pg_leave(pool);
}

static int check_params(const char *sql, int nparams, const char *const *values, bool has_cb)
{
    if (!sql || !has_cb || nparams < 0 || nparams > 65535 || (nparams > 0 && !values))
        return -EINVAL;
    return 0;
}

/*
 * Send @p q now if a connection has room, else queue it (with copies of
 * what it points to). Takes @p q over in every case but -ENOBUFS/-ENOMEM.
 */
static int submit(struct hp_pg_pool *pool, struct pgq *q, uint64_t timeout_ms)
{
    uint64_t timeout = timeout_ms ? timeout_ms : pool->query_timeout;
    struct pgconn *c;
    int err;

    if (timeout > UINT64_MAX / 4)
        timeout = UINT64_MAX / 4;
    q->deadline = hp_loop_now(pool->loop) + timeout;
    if (q->lengths && (err = q_copy(q)) != 0)
        return err;
    if (q->txn && q->kind != Q_BEGIN) {
        if (q->txn->conn)
            hp__pg_conn_send(q->txn->conn, q);
        else
            hp__pg_q_done_later(q, -ECONNRESET, "the transaction's connection was lost");
        return 0;
    }
    c = pool->nwaiting && q->kind != Q_LISTEN ? NULL : pick(pool, q);
    if (c) {
        send_on(c, q);
        if (c->inflight >= GROW_AT && pool->nconns < pool->max_conns && pool->nconnecting == 0)
            hp__pg_kick(pool); /* busy: maybe open one more */
        return 0;
    }
    if (pool->nwaiting >= pool->max_waiting)
        return -ENOBUFS;
    if (!q->lengths && (err = q_copy(q)) != 0)
        return err;
    if (hp_timer_start(&q->timer, timeout, 0) != 0)
        return -ENOMEM;
    q->waiting = true;
    q->next = NULL;
    q->prev = pool->wait_tail;
    if (pool->wait_tail)
        pool->wait_tail->next = q;
    else
        pool->wait_head = q;
    pool->wait_tail = q;
    pool->nwaiting++;
    if (!is_plain(q))
        pool->nwaiting_other++;
    if (q->kind == Q_BEGIN)
        reserve_for(pool, q);
    hp__pg_kick(pool);
    return 0;
}

static int query(struct hp_pg_pool *pool, struct hp_pg_txn *txn, enum pgq_kind kind,
                 const char *name, const char *sql, int nparams, const char *const *values,
                 const int *lengths, uint64_t timeout_ms, hp_pg_query_cb *cb, void *arg)
{
    struct pgq *q;
    int err;

    if (pool->closing)
        return HP_ECLOSED;
    q = q_new(pool);
    if (!q)
        return -ENOMEM;
    q->kind = kind;
    q->txn = txn;
    q->name = name;
    q->sql = sql;
    q->nparams = nparams;
    q->values = values;
    q->lengths = lengths;
    q->cb = cb;
    q->arg = arg;
    err = submit(pool, q, timeout_ms);
    if (err) {
        q->cb = NULL;
        hp__pg_q_release(q);
    }
    return err;
}

int hp_pg_query(struct hp_pg_pool *pool, const char *sql, int nparams, const char *const *values,
                const int *lengths, uint64_t timeout_ms, hp_pg_query_cb *cb, void *arg)
{
    int err = check_params(sql, nparams, values, cb != NULL);

    if (err)
        return err;
    return query(pool, NULL, Q_PLAIN, NULL, sql, nparams, values, lengths, timeout_ms, cb, arg);
}

int hp_pg_query_prepared(struct hp_pg_pool *pool, const char *name, const char *sql, int nparams,
                         const char *const *values, const int *lengths, uint64_t timeout_ms,
                         hp_pg_query_cb *cb, void *arg)
{
    int err = check_params(sql, nparams, values, cb != NULL);

    if (err)
        return err;
    if (!name || !*name)
        return -EINVAL;
    return query(pool, NULL, Q_PREPARED, name, sql, nparams, values, lengths, timeout_ms, cb, arg);
}

int hp_pg_begin(struct hp_pg_pool *pool, uint64_t timeout_ms, hp_pg_txn_cb *cb, void *arg)
{
    struct hp_pg_txn *txn;
    struct pgq *q;
    int err;

    if (!cb)
        return -EINVAL;
    if (pool->closing)
        return HP_ECLOSED;
    txn = hp__pg_alloc(pool, sizeof(*txn));
    q = q_new(pool);
    if (!txn || !q) {
        hp__pg_free(pool, txn);
        if (q)
            hp__pg_q_release(q);
        return -ENOMEM;
    }
    txn->pool = pool;
    txn->next = pool->txns;
    if (pool->txns)
        pool->txns->prev = txn;
    pool->txns = txn;
    q->kind = Q_BEGIN;
    q->sql = "BEGIN";
    q->txn = txn;
    q->tcb = cb;
    q->arg = arg;
    err = submit(pool, q, timeout_ms);
    if (err) {
        hp__pg_q_release(q);
        txn_free(txn);
    }
    return err;
}

int hp_pg_txn_query(struct hp_pg_txn *txn, const char *sql, int nparams, const char *const *values,
                    const int *lengths, uint64_t timeout_ms, hp_pg_query_cb *cb, void *arg)
{
    int err = check_params(sql, nparams, values, cb != NULL);

    if (err)
        return err;
    if (!txn || txn->ended)
        return HP_ECLOSED;
    return query(txn->pool, txn, Q_PLAIN, NULL, sql, nparams, values, lengths, timeout_ms, cb, arg);
}

static int txn_end(struct hp_pg_txn *txn, const char *sql, hp_pg_query_cb *cb, void *arg)
{
    int err;

    if (!txn || txn->ended || txn->pool->closing)
        return HP_ECLOSED;
    err = query(txn->pool, txn, Q_END, NULL, sql, 0, NULL, NULL, 0, cb, arg);
    if (err == 0)
        txn->ended = true;
    return err;
}

static void ignore_result(const struct hp_pg_result *res, int status, void *arg)
{
    (void)res;
    (void)status;
    (void)arg;
}

int hp_pg_txn_commit(struct hp_pg_txn *txn, hp_pg_query_cb *cb, void *arg)
{
    return txn_end(txn, "COMMIT", cb ? cb : ignore_result, arg);
}

int hp_pg_txn_rollback(struct hp_pg_txn *txn, hp_pg_query_cb *cb, void *arg)
{
    return txn_end(txn, "ROLLBACK", cb ? cb : ignore_result, arg);
}

static bool listening(const struct hp_pg_pool *pool, const struct pgchan *ch)
{
    for (const struct pgchan *o = pool->chans; o; o = o->next) {
        if (o == ch)
            return true;
    }
    return false;
}

int hp_pg_listen(struct hp_pg_pool *pool, const char *channel, hp_pg_query_cb *cb, void *arg)
{
    struct pgchan *ch;
    size_t n = 0;
    char *p;

    if (!channel || !*channel)
        return -EINVAL;
    if (pool->closing)
        return HP_ECLOSED;
    for (const char *s = channel; *s; s++)
        n += *s == '"' ? 2 : 1;
    ch = hp__pg_alloc(pool, sizeof(*ch) + n + sizeof("LISTEN \"\""));
    if (!ch)
        return -ENOMEM;
    p = ch->sql + sprintf(ch->sql, "LISTEN \"");
    for (const char *s = channel; *s; s++) {
        *p++ = *s;
        if (*s == '"')
            *p++ = '"';
    }
    *p++ = '"';
    *p = '\0';
    for (struct pgchan *o = pool->chans; o; o = o->next) {
        if (strcmp(o->sql, ch->sql) == 0) {
            hp__pg_free(pool, ch);
            ch = o;
            break;
        }
    }
    if (!listening(pool, ch)) {
        ch->next = pool->chans;
        pool->chans = ch;
    }
    return query(pool, NULL, Q_LISTEN, NULL, ch->sql, 0, NULL, NULL, 0, cb ? cb : ignore_result,
                 arg);
}

int hp_pg_unlisten(struct hp_pg_pool *pool, const char *channel, hp_pg_query_cb *cb, void *arg)
{
    struct pgchan **pp;
    struct pgq *q = NULL;
    size_t n = 0;
    char *sql, *p;
    int err = 0;

    if (!channel || !*channel)
        return -EINVAL;
    if (pool->closing)
        return HP_ECLOSED;
    for (const char *s = channel; *s; s++)
        n += *s == '"' ? 2 : 1;
    sql = hp__pg_alloc(pool, n + sizeof("UNLISTEN \"\""));
    if (!sql)
        return -ENOMEM;
    p = sql + sprintf(sql, "UNLISTEN \"");
    for (const char *s = channel; *s; s++) {
        *p++ = *s;
        if (*s == '"')
            *p++ = '"';
    }
    *p++ = '"';
    *p = '\0';
    /*
     * Only a listen connection that is up has something to unlisten; one
     * that comes up later listens to what is left. Either way the callback
     * runs later, once.
     */
    if (pool->listen_conn && pool->listen_conn->state == C_UP) {
        err =
            query(pool, NULL, Q_LISTEN, NULL, sql, 0, NULL, NULL, 0, cb ? cb : ignore_result, arg);
    } else if ((q = q_new(pool)) != NULL) {
        q->kind = Q_PLAIN;
        q->cb = cb ? cb : ignore_result;
        q->arg = arg;
        hp__pg_q_done_later(q, 0, NULL);
    } else {
        err = -ENOMEM;
    }
    if (err == 0) {
        for (pp = &pool->chans; *pp; pp = &(*pp)->next) {
            if (strcmp((*pp)->sql, sql + 2) == 0) { /* "LISTEN ..." */
                struct pgchan *ch = *pp;

                *pp = ch->next;
                hp__pg_free(pool, ch);
                break;
            }
        }
    }
    hp__pg_free(pool, sql);
    return err;
}

void hp_pg_pool_stats(const struct hp_pg_pool *pool, struct hp_pg_pool_stats *st)
{
    *st = pool->st;
    st->conns = pool->nconns;
    st->conns_up = pool->nup;
    st->waiting = pool->nwaiting;
}
