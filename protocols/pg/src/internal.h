/*
 * internal.h - what the files of the PostgreSQL module share.
 *
 * Objects: a pool owns its connections (struct pgconn) and its query
 * records (struct pgq, recycled through a free list). A query is in exactly
 * one place at a time: the pool's wait list, a connection's in-flight FIFO,
 * the pool's "done" list (finished early, delivered by the pool's deferred
 * callback), or the free list.
 *
 * Re-entrancy: user callbacks run from IO, timer and deferred callbacks
 * only. Each of those entry points holds pool->depth; hp_pg_pool_free()
 * called from inside one only marks the pool closing and the outermost
 * entry point frees it. A connection that fails is marked broken and parked
 * on the pool's dead list, never freed under a frame that may still use it;
 * the pool's deferred callback frees it.
 */
#ifndef HP_PG_INTERNAL_H
#define HP_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/pg.h>

#include "wire.h"

struct pgconn;
struct pgresolve;

enum pgq_kind {
    Q_PLAIN,    /* hp_pg_query / hp_pg_txn_query */
    Q_PREPARED, /* hp_pg_query_prepared */
    Q_BEGIN,    /* hp_pg_begin: pins its connection */
    Q_END,      /* COMMIT / ROLLBACK: unpins */
    Q_HEALTH,   /* internal empty query on an idle connection */
    Q_LISTEN,   /* LISTEN, on the listen connection only */
};

struct pgq {
    struct pgq *next, *prev; /* wait list (both), FIFO, done and free lists (next) */
    struct hp_pg_pool *pool;
    struct pgconn *conn;   /* while in flight */
    struct hp_pg_txn *txn; /* Q_BEGIN, Q_END and transaction queries */
    hp_pg_query_cb *cb;    /* NULL once delivered, abandoned, or internal */
    hp_pg_txn_cb *tcb;     /* Q_BEGIN */
    void *arg;
    struct hp_timer timer; /* only while waiting */
    uint64_t deadline;     /* loop time; UINT64_MAX: none */
    enum pgq_kind kind;
    bool waiting;      /* on the wait list */
    bool with_prepare; /* the prepare went in the same sync segment */
    bool prep_done;    /* the prepare's results ended */
    bool cancel_sent;
    bool abandoned;  /* timed out in flight: the answer is awaited and dropped */
    bool no_cancel;  /* abandoned by hp_pg_cancel() while queued: no PQcancel unless late */
    int status;      /* for the done list */
    const char *msg; /* for the done list: its text (outlives the entry), or NULL */
    int nparams;
    const char *sql, *name;    /* the caller's, unless copied: valid in the call only */
    uint64_t stmt_id;          /* Q_PREPARED in flight: its statement's id (it may be gone) */
    const struct pgdesc *desc; /* wire mode: sent without Describe, its columns are these */
    const char *const *values;
    const int *lengths;
    PGresult *res; /* libpq mode: the answer so far */
    char *mem;     /* copies of sql, name, values when waiting */
    size_t memcap;
};

struct pgstmt {
    struct pgstmt *next;
    uint64_t id;         /* unique on its connection: queries name it by this (conn.c) */
    struct pgdesc *desc; /* wire mode: its columns, once an execution described them */
    char name[];
};

enum pgconn_state { C_CONNECTING, C_UP, C_BROKEN };

struct pgconn {
    struct pgconn *next, *prev;
    struct hp_pg_pool *pool;
    PGconn *pg; /* connects; in wire mode it only keeps the cancel key and closes */
    struct hp_io io;
    struct hp_timer timer;  /* connect deadline, stall watchdog, or health interval */
    struct hp_timer qtimer; /* the earliest deadline of the queries in flight (or earlier) */
    struct hp_timer probe;  /* polls a connect(2) in progress (see conn.c) */
    uint64_t probe_ms;
    uint64_t qdeadline;
    enum pgconn_state state;
    bool listener;
    bool want_write;
    bool ever_up;
    bool wire;                   /* up, and spoken to by wire.c rather than libpq (conn.c) */
    bool can_cork;               /* TCP: sends of one loop iteration can be corked (conn.c) */
    unsigned nsent;              /* queries sent on this loop iteration (conn.c) */
    unsigned unanswered;         /* wire mode: in flight, handed to the kernel (at most) */
    bool held;                   /* wire mode: queries wait in c->out for the next answer */
    bool corked;                 /* TCP_CORK is on until the end of the iteration */
    struct pgresolve *resolving; /* host names being looked up (resolve.c) */
    struct hp_pg_txn *txn;       /* pinned to this transaction */
    struct pgq *reserved;        /* a waiting BEGIN this connection drains for */
    struct pgq *head, *tail;     /* in flight, in order */
    unsigned inflight;
    struct pgstmt *stmts;   /* statements prepared here */
    uint64_t stmt_ids;      /* ids given out so far */
    struct pgdesc *retired; /* of dropped statements: freed once the queries then in flight end */
    struct pgbuild build;   /* the head query's answer as it is read (both modes) */
    struct pgout out;       /* wire mode: queries not yet sent */
    char *in;               /* wire mode: bytes received, [0, inlen) */
    size_t inlen, incap;
    int err; /* when broken */
    char errmsg[256];
};

struct hp_pg_txn {
    struct hp_pg_txn *next, *prev;
    struct hp_pg_pool *pool;
    struct pgconn *conn; /* NULL once the connection broke */
    bool ended;
};

struct pgchan {
    struct pgchan *next;
    char sql[]; /* LISTEN "name" */
};

struct pgcancel_reg;

struct hp_pg_pool {
    struct hp_loop *loop;
    struct hp_allocator alloc;
    char *conninfo;
    bool resolve;                /* host names to look up before each connect (resolve.c) */
    PQconninfoOption *conn_opts; /* conninfo parsed, when resolve */
    unsigned min_conns, max_conns, max_pipeline, max_waiting;
    bool no_cork;
    bool libpq_io;
    unsigned max_batch;     /* plain queries of one iteration per connection */
    unsigned pipeline_hold; /* wire mode: new queries wait while this many sent ones do */
    uint64_t query_timeout, connect_timeout, health_interval, backoff_min, backoff_max;
    hp_pg_notify_cb *on_notify;
    void *notify_arg;

    struct pgconn *conns; /* query connections */
    struct pgconn *dead;  /* broken, to be freed by the kick */
    struct pgconn *listen_conn;
    struct pgchan *chans;
    unsigned nconns, nup, nconnecting;

    struct pgq *wait_head, *wait_tail;
    unsigned nwaiting;
    unsigned nwaiting_other; /* of which not plain queries (BEGIN, LISTEN) */
    struct pgq *done_head, *done_tail;
    struct pgq *free_q;
    unsigned nfree;
    struct hp_pg_txn *txns;

    struct hp_defer kick;
    struct hp_defer uncork; /* end of the loop iteration: uncork what was sent (conn.c) */
    struct hp_timer retry;  /* reconnect backoff */
    uint64_t backoff;
    bool down; /* the last attempt failed and nothing is up: fail fast */
    int down_err;
    char down_msg[256];

    unsigned depth;
    bool closing;
    struct pgcancel_reg *cancels;
    struct hp_pg_pool_stats st;
};

/* pool.c */
void *hp__pg_alloc(struct hp_pg_pool *pool, size_t n); /* zeroed */
void *hp__pg_realloc(struct hp_pg_pool *pool, void *p, size_t n);
void hp__pg_free(struct hp_pg_pool *pool, void *p);
void hp__pg_kick(struct hp_pg_pool *pool);
void hp__pg_enter(struct hp_pg_pool *pool);
/* Returns true if the pool was freed (the caller must not touch it). */
bool hp__pg_leave(struct hp_pg_pool *pool);
void hp__pg_conn_up(struct pgconn *c);
void hp__pg_conn_ready(struct pgconn *c);
void hp__pg_conn_cancel_head(struct pgconn *c);
void hp__pg_conn_failed(struct pgconn *c);
void hp__pg_deliver(struct pgq *q, const struct hp_pg_result *res);
void hp__pg_q_done_later(struct pgq *q, int status, const char *msg);
void hp__pg_q_release(struct pgq *q);
void hp__pg_begin_done(struct pgq *q, int status);
void hp__pg_end_done(struct pgq *q, const struct hp_pg_result *res);
void hp__pg_health_start(struct pgconn *c);
void hp__pg_q_expired(struct pgconn *c, struct pgq *q);
void hp__pg_health_done(struct pgconn *c, int status);
void hp__pg_notify(struct hp_pg_pool *pool, const char *channel, const char *payload, int pid);

/* conn.c */
int hp__pg_conn_open(struct hp_pg_pool *pool, bool listener, struct pgconn **out);
int hp__pg_conn_send(struct pgconn *c, struct pgq *q);
void hp__pg_conn_break(struct pgconn *c, int err, const char *msg);
void hp__pg_conn_free(struct pgconn *c);
void hp__pg_conn_rearm(struct pgconn *c);
void hp__pg_conn_uncork(struct pgconn *c);
bool hp__pg_conn_stalled(const struct pgconn *c);

/* cancel.c: PQcancel off the loop's thread, on the loop's thread pool */
int hp__pg_cancel_start(struct hp_pg_pool *pool, PGconn *pg);
void hp__pg_cancel_detach_all(struct hp_pg_pool *pool);

void hp__pg_conn_resolved(struct pgconn *c, const char *const *keys, const char *const *vals,
                          int err, const char *msg);

/* resolve.c: host names looked up on the loop's thread pool */
void hp__pg_resolve_init(struct hp_pg_pool *pool);
void hp__pg_resolve_fini(struct hp_pg_pool *pool);
int hp__pg_resolve_start(struct pgconn *c);
void hp__pg_resolve_detach(struct pgconn *c);

#endif
