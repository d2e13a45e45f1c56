/**
 * @file pg.h
 * An asynchronous PostgreSQL client on the loop, built on libpq (14 or later)
 * and never blocking the loop's thread.
 *
 * A pool (struct hp_pg_pool, one per loop) keeps between min_conns and
 * max_conns connections. Each connection runs in libpq's pipeline mode:
 * queries from concurrent callers are written back to back without waiting
 * for answers, and the answers are matched to their callers in order. Every
 * query is followed by its own sync point, so a query that fails aborts
 * nothing but itself. Queries that find every connection full (max_pipeline
 * in flight) or none connected yet wait in a bounded queue.
 *
 * Connecting (PQconnectStart/PQconnectPoll) happens on the loop. Once a
 * connection is up without TLS or GSS encryption, the module speaks the
 * protocol on its socket itself (the extended query protocol, text format,
 * as libpq would): the queries of one loop iteration leave in one write and
 * answers are read without an allocation per query. TLS connections (and
 * every connection with libpq_io) keep libpq for their queries: non-blocking
 * writes, PQflush until done while watching writability, reads on the loop.
 * Cancelling a query that ran out of time needs PQcancel(), which blocks: it
 * runs on the loop's thread pool (hellepoll/pool.h) and its outcome comes
 * back to the loop.
 *
 * Callbacks. Every call that takes a callback and returns 0 runs it exactly
 * once, later (never inside the call), on the loop's thread, with one of:
 *   0              the query succeeded; read the result;
 *   HP_PG_ESERVER  the server answered with an error: hp_pg_result_error()
 *                  and hp_pg_result_sqlstate() say which;
 *   -ETIMEDOUT     no answer within the query's timeout (the query is then
 *                  cancelled on the server, best effort);
 *   -ECONNRESET    the connection broke while the query was in flight (it
 *                  may or may not have run; it is not retried);
 *   -EPROTO        the server sent something malformed or unexpected (the
 *                  connection is closed; every query in flight on it gets
 *                  this, and may or may not have run);
 *   -EMSGSIZE      the query's messages would exceed 1 GiB (this query alone);
 *   -ECONNREFUSED, -EHOSTUNREACH, -EPROTO, -ETIMEDOUT, ...: no connection
 *                  could be made (hp_pg_result_error() has libpq's message);
 *                  while none can, waiting queries fail at once rather than
 *                  at their deadline;
 *   -ENOMEM        the pool ran out of memory for the query's connection;
 *   -ECANCELED     the pool was freed first.
 * Queries are never retried: a query the server may have run is not sent
 * again.
 * A call that returns an error never runs its callback. Callbacks may call
 * any function of this header, including hp_pg_pool_free().
 *
 * Threading: a pool and everything obtained from it belong to the loop's
 * thread.
 */
#ifndef HP_PG_H
#define HP_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/defs.h>
#include <hellepoll/loop.h>

struct hp_loop;
struct hp_pg_pool;
struct hp_pg_result;
struct hp_pg_txn;

/** The server reported an error for this query (outside the errno range). */
#define HP_PG_ESERVER (-4000)

/**
 * A query finished. @p res is never NULL; it is borrowed for the duration of
 * the callback (the values it points to go away when the callback returns).
 * On errors other than HP_PG_ESERVER it holds no rows, and
 * hp_pg_result_error() describes the failure.
 */
typedef void hp_pg_query_cb(const struct hp_pg_result *res, int status, void *arg);

/**
 * hp_pg_begin() finished: on success (@p status 0) @p txn is the open
 * transaction, to be ended with hp_pg_txn_commit() or hp_pg_txn_rollback();
 * on error @p txn is NULL.
 */
typedef void hp_pg_txn_cb(struct hp_pg_txn *txn, int status, void *arg);

/**
 * A NOTIFY arrived on a channel the pool listens to (hp_pg_listen()).
 * @p channel and @p payload are NUL-terminated and borrowed for the call.
 */
typedef void hp_pg_notify_cb(struct hp_pg_pool *pool, const char *channel, const char *payload,
                             int server_pid, void *arg);

/** Options for hp_pg_pool_new(). Zero means the default for each field. */
struct hp_pg_pool_opts {
    /**
     * libpq connection string ("host=... port=... dbname=..." or a URI),
     * copied. Required. Host names in host= (libpq would resolve them with a
     * blocking lookup inside the loop) are looked up on the loop's thread pool
     * (hellepoll/pool.h) before each connection attempt, unless hostaddr= is
     * given; every address a name has is then tried in turn (host=NAME
     * hostaddr=ADDR per address), and a name that does not resolve fails the
     * attempt with -EHOSTUNREACH. Host names that come from the environment
     * (PGHOST) are still resolved by libpq, synchronously.
     */
    const char *conninfo;
    /** Connections kept open even when idle. Default 1. */
    unsigned min_conns;
    /**
     * Most connections opened (not counting the LISTEN one). Default 4. One more
     * is opened when queries wait or every open one has 4 or more in flight.
     */
    unsigned max_conns;
    /** Queries in flight on one connection before another one is used. Default 256. */
    unsigned max_pipeline;
    /**
     * Plain queries of one loop iteration that go on the same connection
     * before another one is chosen: they leave in one TCP segment (corked)
     * and wake one server process instead of several, which costs less CPU
     * here and on the server, but runs them one after the other on one
     * backend. Default 1: each query goes on the least busy connection.
     */
    unsigned max_batch;
    /**
     * Wire mode (below): while at least this many queries sent on a
     * connection await their answers, the queries written to it meanwhile
     * are held back and leave together when answers are next read (or at
     * 64 KiB), in one write and one segment rather than one per loop
     * iteration. Under load that saves system calls and wake-ups here and
     * on the server (examples/tfb uses 2). The price: a held query waits up
     * to one round trip more when the server finishes the earlier ones
     * before it arrives, as on a slow network with a shallow pipeline.
     * Default 0: the queries of a loop iteration leave at its end. libpq
     * mode ignores it.
     */
    unsigned pipeline_hold;
    /** Queries waiting for a connection; beyond it calls fail with -ENOBUFS. Default 1024. */
    unsigned max_waiting;
    /** Default time limit of a query, from the call to its answer. Default 30000 ms. */
    uint64_t query_timeout_ms;
    /** Time limit for establishing one connection. Default 10000 ms. */
    uint64_t connect_timeout_ms;
    /** An idle connection is checked (an empty query) this often. Default 30000 ms. */
    uint64_t health_interval_ms;
    /** Reconnect delay after a failure: starts at min, doubles up to max. Default 100/5000 ms. */
    uint64_t reconnect_min_ms;
    uint64_t reconnect_max_ms;
    /**
     * libpq mode (below): send every query by itself. By default, when a second query goes to a
     * TCP connection within one loop iteration, the connection is corked
     * (TCP_CORK, Linux) until the end of the iteration, so that the queries
     * of an iteration reach the server in one segment instead of one or two
     * per query (libpq 15 writes each query's Sync at once). Set this to
     * measure the difference.
     */
    bool no_cork;
    /**
     * Run queries through libpq on every connection, as TLS and
     * GSS-encrypted ones always are. By default a plain connection, once
     * libpq has connected it, is spoken to by the module itself: the queries
     * of a loop iteration go out in one write (libpq 15 writes each query
     * at once) and answers are read with no allocation per query.
     */
    bool libpq_io;
    /** Called for every NOTIFY on a channel given to hp_pg_listen(); may be NULL. */
    hp_pg_notify_cb *on_notify;
    /** Passed to on_notify. */
    void *notify_arg;
    /**
     * Allocator for the pool's own memory (libpq allocates with malloc); all
     * NULL means libc. Copied. Used on the loop's thread only.
     */
    struct hp_allocator alloc;
};

/**
 * Create a pool on @p loop and start opening min_conns connections (in the
 * background: queries made meanwhile wait for them).
 * @param opts borrowed for the call.
 * @return 0, -EINVAL (no conninfo, min_conns > max_conns), or -ENOMEM.
 *         *out is untouched on failure.
 */
HP_API HP_NODISCARD int hp_pg_pool_new(struct hp_pg_pool **out, struct hp_loop *loop,
                                       const struct hp_pg_pool_opts *opts);

/**
 * Close every connection and free the pool. Every query still waiting or in
 * flight, every hp_pg_begin() and hp_pg_listen() not yet answered, has its
 * callback run with -ECANCELED from inside this call; those callbacks may not
 * use the pool any more (calls on it return HP_ECLOSED meanwhile). Open
 * transaction handles become invalid. Must be called before hp_loop_free():
 * the pool's connections keep the loop alive. A cancel request still running
 * on the loop's thread pool is left to finish and touches nothing of the
 * pool; until it returns it keeps the loop alive, and hp_loop_free() waits
 * for it (against a stopped server, until the server resumes).
 */
HP_API void hp_pg_pool_free(struct hp_pg_pool *pool);

/**
 * Run @p sql with text parameters $1..$nparams.
 * @param values  nparams NUL-terminated strings (NULL entries are SQL NULL);
 *                copied, so they may go away when the call returns.
 * @param lengths NULL, or nparams byte lengths for values that are not
 *                NUL-terminated (entries for NULL values are ignored).
 * @param timeout_ms 0 for the pool's query_timeout_ms.
 * @return 0 (@p cb will run), -EINVAL (NULL sql or cb, nparams < 0 or >
 *         65535), -ENOBUFS (the wait queue is full), -ENOMEM, HP_ECLOSED (the
 *         pool is being freed).
 * @p sql is one statement (the extended query protocol). COPY ... TO STDOUT
 * completes with its command tag and no rows; COPY ... FROM STDIN is not
 * supported (the connection breaks: -EPROTO for it and its neighbours). A
 * query whose messages would exceed 1 GiB fails alone with -EMSGSIZE.
 */
HP_API int hp_pg_query(struct hp_pg_pool *pool, const char *sql, int nparams,
                       const char *const *values, const int *lengths, uint64_t timeout_ms,
                       hp_pg_query_cb *cb, void *arg);

/**
 * Run the prepared statement @p name, preparing it from @p sql first on each
 * connection that has not prepared it yet (transparently: the first use on a
 * connection sends the prepare and the execution back to back). A name must
 * always be used with the same sql. @p name and @p sql are copied when
 * needed; other parameters and returns as for hp_pg_query().
 */
HP_API int hp_pg_query_prepared(struct hp_pg_pool *pool, const char *name, const char *sql,
                                int nparams, const char *const *values, const int *lengths,
                                uint64_t timeout_ms, hp_pg_query_cb *cb, void *arg);

/**
 * Start a transaction: wait for a connection with nothing in flight, take
 * it out of the pool and send BEGIN. @p cb gets the handle. Returns as for
 * hp_pg_query().
 */
HP_API int hp_pg_begin(struct hp_pg_pool *pool, uint64_t timeout_ms, hp_pg_txn_cb *cb, void *arg);

/**
 * hp_pg_query() inside the transaction, on its connection. A query that
 * fails puts the transaction in the failed state (the server then rejects
 * the rest until the rollback). Returns as for hp_pg_query(), plus HP_ECLOSED
 * once commit or rollback has been called.
 */
HP_API int hp_pg_txn_query(struct hp_pg_txn *txn, const char *sql, int nparams,
                           const char *const *values, const int *lengths, uint64_t timeout_ms,
                           hp_pg_query_cb *cb, void *arg);

/**
 * End the transaction with COMMIT (or ROLLBACK), after the queries already
 * made on it, and give the connection back to the pool. On success the
 * handle is invalid as soon as the call returns, and @p cb (may be NULL)
 * runs with the answer: the server answers COMMIT of a transaction in which
 * a query failed by rolling back, so check hp_pg_result_command() for
 * "COMMIT". If the connection broke, @p cb gets -ECONNRESET.
 * @return 0, -ENOMEM or HP_ECLOSED (already ended, or the pool is being
 *         freed; nothing done).
 */
HP_API int hp_pg_txn_commit(struct hp_pg_txn *txn, hp_pg_query_cb *cb, void *arg);
/** As hp_pg_txn_commit(), with ROLLBACK. */
HP_API int hp_pg_txn_rollback(struct hp_pg_txn *txn, hp_pg_query_cb *cb, void *arg);

/**
 * Listen to NOTIFY on @p channel (an identifier, quoted by the call). The
 * pool opens one extra connection for all its channels, re-listens after a
 * reconnect, and delivers each notification to opts.on_notify as a loop
 * event. @p cb reports the LISTEN's own outcome (it may be NULL). Returns as
 * for hp_pg_query(); -EINVAL also for an empty channel.
 */
HP_API int hp_pg_listen(struct hp_pg_pool *pool, const char *channel, hp_pg_query_cb *cb,
                        void *arg);

/**
 * Stop listening to @p channel: it is no longer listened to after a
 * reconnect, and UNLISTEN is sent on the listen connection if that is up.
 * @p cb (may be NULL) reports the UNLISTEN's outcome, or 0 with an empty
 * result when there was nothing to send. A channel not listened to is not
 * an error. NOTIFYs already on their way may still arrive. Returns as for
 * hp_pg_query(); -EINVAL also for an empty channel.
 */
HP_API int hp_pg_unlisten(struct hp_pg_pool *pool, const char *channel, hp_pg_query_cb *cb,
                          void *arg);

/**
 * Cancel every query, hp_pg_begin(), hp_pg_listen() and hp_pg_unlisten() of @p pool made with
 * callback argument @p arg (e.g. the HTTP request whose client left) whose
 * callback has not run yet. Each callback then runs once, later, with
 * -ECANCELED. A query waiting for a connection is dropped; the one the
 * server is running is cancelled there (PQcancel, off the loop); one queued
 * behind it on the connection is left to run, so as not to cancel a
 * neighbour by mistake, and its answer is dropped (if it is still running
 * when its deadline passes, it is cancelled then). A BEGIN that went
 * through anyway is rolled back. COMMIT and ROLLBACK are never cancelled.
 * @return the number cancelled (0 if none matched), -ENOMEM (nothing
 *         cancelled), or HP_ECLOSED (the pool is being freed).
 */
HP_API int hp_pg_cancel(struct hp_pg_pool *pool, void *arg);

/** Statistics of a pool, for tests and monitoring. */
struct hp_pg_pool_stats {
    unsigned conns;     /**< Connections open or opening (without the LISTEN one). */
    unsigned conns_up;  /**< Of which connected and usable. */
    unsigned waiting;   /**< Queries waiting for a connection. */
    unsigned in_flight; /**< Queries sent and not yet answered (or abandoned). */
    uint64_t connects;  /**< Connections established since the pool was made. */
    uint64_t failures;  /**< Connection attempts that failed and connections that broke. */
    uint64_t cancels;   /**< Cancel requests sent for queries that timed out. */
};

/** Fill @p st with the pool's current figures. */
HP_API void hp_pg_pool_stats(const struct hp_pg_pool *pool, struct hp_pg_pool_stats *st);

/* ---- results ---------------------------------------------------------- */

/** Rows in the result (0 for commands without rows and for errors). */
HP_API int hp_pg_result_rows(const struct hp_pg_result *res);
/** Columns in the result. */
HP_API int hp_pg_result_cols(const struct hp_pg_result *res);
/** Name of column @p col, or NULL if out of range. */
HP_API const char *hp_pg_result_col_name(const struct hp_pg_result *res, int col);
/** Index of the column named @p name, or -1. */
HP_API int hp_pg_result_col_index(const struct hp_pg_result *res, const char *name);

/**
 * The text of a value, NUL-terminated; "" for NULL and for an out-of-range
 * row or column. Valid until the callback returns.
 */
HP_API const char *hp_pg_result_text(const struct hp_pg_result *res, int row, int col);
/** Length in bytes of the value (0 for NULL or out of range). */
HP_API size_t hp_pg_result_len(const struct hp_pg_result *res, int row, int col);
/** True if the value is SQL NULL or out of range. */
HP_API bool hp_pg_result_is_null(const struct hp_pg_result *res, int row, int col);

/**
 * Parse a value. @return 0 with *out set; -ENODATA for NULL; -ERANGE for a
 * row or column out of range or a number that does not fit; -EINVAL for text
 * that is not a number (bool: not one of t/f/true/false).
 */
HP_API int hp_pg_result_int(const struct hp_pg_result *res, int row, int col, int *out);
HP_API int hp_pg_result_int64(const struct hp_pg_result *res, int row, int col, int64_t *out);
HP_API int hp_pg_result_double(const struct hp_pg_result *res, int row, int col, double *out);
HP_API int hp_pg_result_bool(const struct hp_pg_result *res, int row, int col, bool *out);

/** The command tag ("SELECT 1", "INSERT 0 1"); "" for errors. */
HP_API const char *hp_pg_result_command(const struct hp_pg_result *res);
/** Rows affected by INSERT/UPDATE/DELETE/SELECT/..., or -1 if the command has no count. */
HP_API int64_t hp_pg_result_affected(const struct hp_pg_result *res);
/**
 * For a failed query: the server's primary message (HP_PG_ESERVER), libpq's
 * message, or a description of the status; "" on success. Never NULL.
 */
HP_API const char *hp_pg_result_error(const struct hp_pg_result *res);
/** The five-character SQLSTATE of a server error ("42P01"), or NULL. */
HP_API const char *hp_pg_result_sqlstate(const struct hp_pg_result *res);

/** Describe a status: HP_PG_ESERVER here, everything else as hp_strerror(). */
HP_API const char *hp_pg_strerror(int status);

#endif
