/*
 * conn.c - one libpq connection on the loop.
 *
 * Connecting: PQconnectStart, then PQconnectPoll whenever the socket is
 * ready the way the last step asked. libpq may switch sockets between steps
 * (another address, another host), so the watcher is re-made on PQsocket()
 * after every step. While a connect(2) is in progress (CONNECTION_STARTED)
 * the socket has no watcher: the loop reads SO_ERROR when it reports an
 * error, and libpq needs to read it itself to learn that this address
 * refused and move on to the next one. That state is polled instead, with
 * poll(2) at 0, 1, 2, 4, ... 50 ms (on loopback the first probe, on the next
 * iteration, usually sees the outcome). Once up the connection is non-blocking and in pipeline
 * mode: every query is sent with its own PQpipelineSync and flushed; what
 * the kernel does not take is flushed when the socket turns writable. The
 * queries of one loop iteration are corked into one segment (see
 * batch_note()).
 *
 * Reading: PQconsumeInput, the NOTIFYs it brought, then PQgetResult while
 * libpq has complete results. Each query's answer is its results, a NULL
 * (end of the command; twice when a prepare went in front), then the
 * PGRES_PIPELINE_SYNC that completes it.
 *
 * Invariant: c->io watches PQsocket(c->pg) exactly while the connection is
 * connecting or up; a broken connection has no watcher, no timer and no
 * PGconn, and waits on the pool's dead list to be freed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

static void on_io(struct hp_io *io, unsigned events, int status);
static void on_timer(struct hp_timer *t);
static void on_qtimer(struct hp_timer *t);
static void on_probe(struct hp_timer *t);

/* libpq's default prints notices to stderr; the library prints nothing. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Strip libpq's trailing newline and keep the message. */
static void set_msg(char *dst, size_t cap, const char *msg)
{
    size_t n;

    snprintf(dst, cap, "%s", msg ? msg : "");
    n = strlen(dst);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
        dst[--n] = '\0';
}

/* libpq reports connection failures as text only; map the usual ones. */
static int connect_errno(const char *msg)
{
    if (strstr(msg, "Connection refused"))
        return -ECONNREFUSED;
    if (strstr(msg, "No such file or directory"))
        return -ENOENT;
    if (strstr(msg, "could not translate host name") || strstr(msg, "Network is unreachable"))
        return -EHOSTUNREACH;
    if (strstr(msg, "timeout expired"))
        return -ETIMEDOUT;
    return -EPROTO;
}

/* (Re)make the watcher on the connection's current socket. */
static int watch(struct pgconn *c, unsigned events)
{
    int fd = PQsocket(c->pg);

    hp_io_stop(&c->io);
    if (fd < 0)
        return -EBADF;
    hp_io_init(c->pool->loop, &c->io, fd, on_io);
    c->io.data = c;
    return hp_io_start(&c->io, events);
}

static int set_interest(struct pgconn *c)
{
    unsigned ev = HP_READABLE | (c->want_write ? HP_WRITABLE : 0u);

    if (hp_io_events(&c->io) == ev)
        return 0;
    return hp_io_start(&c->io, ev);
}

/* Wait for the socket as libpq asked: polled while connect(2) is in progress. */
static int wait_for(struct pgconn *c, unsigned events)
{
    if (PQstatus(c->pg) == CONNECTION_STARTED) {
        hp_io_stop(&c->io);
        c->probe_ms = 0;
        return hp_timer_start(&c->probe, 0, 0);
    }
    return watch(c, events);
}

/* Start libpq's connect on @p c (linked, timer running): PQconnectStart or, resolved, ...Params. */
static void start(struct pgconn *c, const char *const *keys, const char *const *vals)
{
    c->pg = keys ? PQconnectStartParams(keys, vals, 0) : PQconnectStart(c->pool->conninfo);
    if (!c->pg) {
        hp__pg_conn_break(c, -ENOMEM, "out of memory");
        return;
    }
    PQsetNoticeProcessor(c->pg, quiet, NULL);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        hp__pg_conn_break(c, connect_errno(PQerrorMessage(c->pg)), PQerrorMessage(c->pg));
        return;
    }
    if (wait_for(c, HP_WRITABLE) != 0)
        hp__pg_conn_break(c, -ENOMEM, "cannot watch the connection");
}

int hp__pg_conn_open(struct hp_pg_pool *pool, bool listener, struct pgconn **out)
{
    struct pgconn *c = hp__pg_alloc(pool, sizeof(*c));
    int err;

    if (!c)
        return -ENOMEM;
    c->pool = pool;
    c->listener = listener;
    c->state = C_CONNECTING;
    hp_io_init(pool->loop, &c->io, -1, on_io);
    hp_timer_init(pool->loop, &c->timer, on_timer);
    c->timer.data = c;
    hp_timer_init(pool->loop, &c->qtimer, on_qtimer);
    c->qtimer.data = c;
    hp_timer_init(pool->loop, &c->probe, on_probe);
    c->probe.data = c;
    if (pool->resolve && (err = hp__pg_resolve_start(c)) != 0) {
        hp__pg_free(pool, c);
        return err;
    }
    *out = c;
    /* Link first: a failure from here on goes through the broken path. */
    if (listener) {
        pool->listen_conn = c;
    } else {
        c->next = pool->conns;
        if (pool->conns)
            pool->conns->prev = c;
        pool->conns = c;
        pool->nconns++;
        pool->nconnecting++;
    }
    if (hp_timer_start(&c->timer, pool->connect_timeout, 0) != 0) {
        hp__pg_conn_break(c, -ENOMEM, "out of memory");
        return 0;
    }
    if (!c->resolving)
        start(c, NULL, NULL);
    return 0;
}

void hp__pg_conn_resolved(struct pgconn *c, const char *const *keys, const char *const *vals,
                          int err, const char *msg)
{
    if (c->state != C_CONNECTING)
        return;
    if (!keys) {
        hp__pg_conn_break(c, err, msg);
        return;
    }
    start(c, keys, vals);
}

/*
 * Batching the writes of one loop iteration. libpq 15 flushes inside every
 * PQpipelineSync() (PQsendPipelineSync(), which does not, is libpq 17), so
 * each query costs one send(2) however many go out together, and on
 * loopback each send that is not merged by the kernel is a segment the
 * server's backend wakes up for. Sending no Sync per query is not an option
 * (a failing query would abort its neighbours), nor is writing our own
 * Sync messages behind libpq's back. So the connection is corked instead:
 * the first query of an iteration on a connection goes out as before (a
 * lone query pays nothing extra), the second sets TCP_CORK, and the pool's
 * end-of-iteration defer (on_uncork in pool.c) clears it, which pushes
 * everything corked in one segment. The send(2) calls stay (they only
 * append to the socket now); measured in bench/pg/results.md (run 5): TFB
 * queries (20) from 13 segments per request to under one when iterations
 * are large, and the app's CPU per request 5 to 10% lower at equal
 * batching. Unix sockets and other systems than Linux are not corked.
 */
static bool is_tcp(int fd)
{
#ifdef TCP_CORK
    struct sockaddr_storage sa;
    socklen_t n = sizeof(sa);

    if (getsockname(fd, (struct sockaddr *)&sa, &n) != 0)
        return false;
    return sa.ss_family == AF_INET || sa.ss_family == AF_INET6;
#else
    (void)fd;
    return false;
#endif
}

static void set_cork(struct pgconn *c, bool on)
{
#ifdef TCP_CORK
    int v = on;

    /* A failure is harmless (the data goes out uncorked): stop trying. */
    if (setsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_CORK, &v, sizeof(v)) != 0)
        c->can_cork = false;
    c->corked = on && c->can_cork;
#else
    (void)c;
    (void)on;
#endif
}

/* Before a query is written: cork from the second one of the iteration on. */
static void batch_note(struct pgconn *c)
{
    if (c->nsent++ == 0) {
        hp_defer_start(&c->pool->uncork);
        return;
    }
    if (c->can_cork && !c->corked)
        set_cork(c, true);
}

void hp__pg_conn_uncork(struct pgconn *c)
{
    c->nsent = 0;
    if (c->corked && c->state == C_UP)
        set_cork(c, false);
    c->corked = false;
}

static void connected(struct pgconn *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        hp__pg_conn_break(c, -EPROTO, PQerrorMessage(c->pg));
        return;
    }
    hp_timer_stop(&c->timer);
    if (watch(c, HP_READABLE) != 0) {
        hp__pg_conn_break(c, -ENOMEM, "cannot watch the connection");
        return;
    }
    c->state = C_UP;
    c->ever_up = true;
    c->can_cork = !c->pool->no_cork && is_tcp(PQsocket(c->pg));
    hp__pg_conn_up(c);
}

/*
 * @p status is a socket error the loop delivered: the loop read SO_ERROR, so
 * libpq would not see it and would misreport what happened; it ends the attempt.
 */
static void connect_step(struct pgconn *c, int status)
{
    if (status < 0) {
        char msg[200];

        snprintf(msg, sizeof(msg), "could not connect to the server: %s", hp_strerror(status));
        hp__pg_conn_break(c, status, msg);
        return;
    }
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (wait_for(c, HP_READABLE) != 0)
            hp__pg_conn_break(c, -ENOMEM, "cannot watch the connection");
        break;
    case PGRES_POLLING_WRITING:
        if (wait_for(c, HP_WRITABLE) != 0)
            hp__pg_conn_break(c, -ENOMEM, "cannot watch the connection");
        break;
    case PGRES_POLLING_OK:
        connected(c);
        break;
    default:
        hp__pg_conn_break(c, connect_errno(PQerrorMessage(c->pg)), PQerrorMessage(c->pg));
        break;
    }
}

static void on_probe(struct hp_timer *t)
{
    struct pgconn *c = t->data;
    struct hp_pg_pool *pool = c->pool;
    struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLOUT};
    int n;

    hp__pg_enter(pool);
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
        c->probe_ms = c->probe_ms ? c->probe_ms * 2 : 1;
        if (c->probe_ms > 50)
            c->probe_ms = 50;
        if (hp_timer_start(&c->probe, c->probe_ms, 0) != 0)
            hp__pg_conn_break(c, -ENOMEM, "out of memory");
    } else {
        connect_step(c, 0);
    }
    hp__pg_leave(pool);
}

/* The head query was cancelled on the server: its answer is overdue. */
bool hp__pg_conn_stalled(const struct pgconn *c)
{
    return c->head && c->head->abandoned && c->head->cancel_sent;
}

static struct pgstmt *find_stmt(const struct pgconn *c, const char *name)
{
    for (struct pgstmt *s = c->stmts; s; s = s->next) {
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

static struct pgstmt *add_stmt(struct pgconn *c, const char *name)
{
    size_t n = strlen(name) + 1;
    struct pgstmt *s = hp__pg_alloc(c->pool, sizeof(*s) + n);

    if (!s)
        return NULL;
    memcpy(s->name, name, n);
    s->next = c->stmts;
    c->stmts = s;
    return s;
}

/* A prepare failed: the next use prepares again. */
static void drop_stmt(struct pgconn *c, struct pgstmt *stmt)
{
    for (struct pgstmt **p = &c->stmts; *p; p = &(*p)->next) {
        if (*p == stmt) {
            *p = stmt->next;
            hp__pg_free(c->pool, stmt);
            return;
        }
    }
}

static void flush(struct pgconn *c)
{
    int r = PQflush(c->pg);

    if (r < 0) {
        hp__pg_conn_break(c, -ECONNRESET, PQerrorMessage(c->pg));
        return;
    }
    c->want_write = r == 1;
    if (set_interest(c) != 0)
        hp__pg_conn_break(c, -ENOMEM, "cannot watch the connection");
}

/*
 * One timer per connection for the deadlines of its queries: armed at the
 * earliest deadline seen (never later than any query's), it scans the FIFO
 * when it fires and re-arms for the earliest one left. Sending a query is
 * then O(1) instead of a timer per query.
 */
static void watch_deadline(struct pgconn *c, uint64_t deadline)
{
    uint64_t now = hp_loop_now(c->pool->loop);

    if (deadline == UINT64_MAX)
        return;
    if (hp_timer_is_active(&c->qtimer) && deadline >= c->qdeadline)
        return;
    c->qdeadline = deadline;
    if (hp_timer_start(&c->qtimer, deadline > now ? deadline - now : 0, 0) != 0)
        hp__pg_conn_break(c, -ENOMEM, "out of memory");
}

static void on_qtimer(struct hp_timer *t)
{
    struct pgconn *c = t->data;
    struct hp_pg_pool *pool = c->pool;
    uint64_t now = hp_loop_now(pool->loop), next = UINT64_MAX;

    hp__pg_enter(pool);
    for (struct pgq *q = c->head; q; q = q->next) {
        if ((q->abandoned && !q->no_cancel) || q->deadline == UINT64_MAX)
            continue;
        if (q->deadline > now) {
            if (q->deadline < next)
                next = q->deadline;
            continue;
        }
        hp__pg_q_expired(c, q);
        if (pool->closing || c->state != C_UP)
            goto out;
    }
    watch_deadline(c, next);
out:
    hp__pg_leave(pool);
}

/*
 * Queue @p q on the connection and send it. Never runs a callback: a
 * connection that fails here is broken, and the pool's deferred callback
 * reports every query it held, @p q included.
 */
int hp__pg_conn_send(struct pgconn *c, struct pgq *q)
{
    PGconn *pg = c->pg;
    int ok;

    q->conn = c;
    q->next = NULL;
    q->with_prepare = q->prep_done = false;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->inflight++;
    c->pool->st.in_flight++;
    batch_note(c);
    if (q->kind == Q_PREPARED && !(q->stmt = find_stmt(c, q->name))) {
        if (!(q->stmt = add_stmt(c, q->name))) {
            hp__pg_conn_break(c, -ENOMEM, "out of memory");
            return 0;
        }
        if (!PQsendPrepare(pg, q->name, q->sql, q->nparams, NULL)) {
            hp__pg_conn_break(c, -ECONNRESET, PQerrorMessage(pg));
            return 0;
        }
        q->with_prepare = true;
    }
    if (q->kind == Q_PREPARED)
        ok = PQsendQueryPrepared(pg, q->name, q->nparams, q->values, NULL, NULL, 0);
    else
        ok = PQsendQueryParams(pg, q->sql, q->nparams, NULL, q->values, NULL, NULL, 0);
    if (!ok || !PQpipelineSync(pg)) {
        hp__pg_conn_break(c, -ECONNRESET, PQerrorMessage(pg));
        return 0;
    }
    if (c->inflight == 1)
        hp__pg_conn_rearm(c);
    watch_deadline(c, q->deadline);
    flush(c);
    return 0;
}

/* A command's result for the head query. */
static void take_result(struct pgconn *c, struct pgq *q, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    bool failed = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;

    if (q->with_prepare && !q->prep_done) {
        if (failed) {
            drop_stmt(c, q->stmt);
            if (!q->res) {
                q->res = r;
                return;
            }
        }
        PQclear(r);
        return;
    }
    if (failed && q->kind == Q_PREPARED && !q->with_prepare) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

        /* Deallocated behind our back (DEALLOCATE, DISCARD ALL): prepare again next time. */
        if (state && strcmp(state, "26000") == 0)
            drop_stmt(c, q->stmt);
    }
    if (!q->res) {
        q->res = r;
    } else if (hp__pg_status_of(q->res) != 0) {
        PQclear(r); /* the aborted rest of a failed segment */
    } else {
        PQclear(q->res);
        q->res = r;
    }
}

/* The head query's sync point arrived: it is complete. */
static void complete_head(struct pgconn *c)
{
    struct pgq *q = c->head;
    PGresult *res = q->res;
    int status = hp__pg_status_of(res);

    c->head = q->next;
    if (!c->head)
        c->tail = NULL;
    c->inflight--;
    c->pool->st.in_flight--;
    q->conn = NULL;
    q->res = NULL;
    switch (q->kind) {
    case Q_BEGIN:
        hp__pg_begin_done(q, res, status);
        break;
    case Q_END:
        hp__pg_end_done(q, res, status);
        break;
    case Q_HEALTH:
        PQclear(res);
        hp__pg_q_release(q);
        hp__pg_health_done(c, status);
        break;
    default:
        hp__pg_deliver(q, res, status, NULL);
        break;
    }
}

static void read_results(struct pgconn *c)
{
    struct hp_pg_pool *pool = c->pool;

    while (c->head && c->state == C_UP && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        struct pgq *q = c->head;

        if (!r) {
            if (q->with_prepare && !q->prep_done)
                q->prep_done = true;
            continue;
        }
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            take_result(c, q, r);
            continue;
        }
        PQclear(r);
        complete_head(c);
        if (pool->closing || c->state != C_UP)
            return;
        hp__pg_conn_ready(c);
        if (pool->closing || c->state != C_UP)
            return;
    }
    if (c->state != C_UP)
        return;
    /* Every answer read so far is taken: the head is what the server is running. */
    hp__pg_conn_cancel_head(c);
    hp__pg_conn_rearm(c);
}

static void on_readable(struct pgconn *c)
{
    struct hp_pg_pool *pool = c->pool;
    PGnotify *n;

    if (!PQconsumeInput(c->pg)) {
        hp__pg_conn_break(c, -ECONNRESET, PQerrorMessage(c->pg));
        return;
    }
    while ((n = PQnotifies(c->pg)) != NULL) {
        hp__pg_notify(pool, n);
        PQfreemem(n);
        if (pool->closing || c->state != C_UP)
            return;
    }
    if (hp__pg_conn_stalled(c))
        hp__pg_conn_rearm(c); /* progress: the stall watchdog starts over */
    read_results(c);
    if (pool->closing || c->state != C_UP)
        return;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        hp__pg_conn_break(c, -ECONNRESET, PQerrorMessage(c->pg));
        return;
    }
    if (c->want_write)
        flush(c);
}

static void on_io(struct hp_io *io, unsigned events, int status)
{
    struct pgconn *c = io->data;
    struct hp_pg_pool *pool = c->pool;

    hp__pg_enter(pool);
    if (c->state == C_CONNECTING) {
        connect_step(c, (events & HP_ERROR) ? status : 0);
    } else if (c->state == C_UP) {
        if (events & HP_WRITABLE)
            flush(c);
        if (c->state == C_UP && (events & (HP_READABLE | HP_HUP | HP_ERROR)))
            on_readable(c);
    }
    hp__pg_leave(pool);
}

/*
 * What the connection's timer means now: the connect deadline while
 * connecting; while a cancelled query heads the pipeline, how long the
 * server may stay silent before the connection is given up; when idle and
 * unpinned, the next health check.
 */
void hp__pg_conn_rearm(struct pgconn *c)
{
    struct hp_pg_pool *pool = c->pool;

    if (c->state != C_UP)
        return;
    if (hp__pg_conn_stalled(c))
        hp_timer_start(&c->timer, pool->query_timeout, 0);
    else if (!c->head && !c->txn && pool->health_interval)
        hp_timer_start(&c->timer, pool->health_interval, 0);
    else
        hp_timer_stop(&c->timer);
}

static void on_timer(struct hp_timer *t)
{
    struct pgconn *c = t->data;
    struct hp_pg_pool *pool = c->pool;

    hp__pg_enter(pool);
    if (c->state == C_CONNECTING) {
        hp__pg_conn_break(c, -ETIMEDOUT, "timed out connecting to the server");
    } else if (hp__pg_conn_stalled(c)) {
        hp__pg_conn_break(c, -ETIMEDOUT, "the server stopped answering");
    } else if (!c->head) {
        hp__pg_health_start(c);
    }
    hp__pg_leave(pool);
}

void hp__pg_conn_break(struct pgconn *c, int err, const char *msg)
{
    struct hp_pg_pool *pool = c->pool;

    if (c->state == C_BROKEN)
        return;
    if (c->state == C_CONNECTING && !c->listener)
        pool->nconnecting--;
    if (c->state == C_UP && !c->listener)
        pool->nup--;
    c->state = C_BROKEN;
    c->err = err;
    set_msg(c->errmsg, sizeof(c->errmsg), msg);
    hp_io_stop(&c->io);
    hp_timer_stop(&c->timer);
    hp_timer_stop(&c->qtimer);
    hp_timer_stop(&c->probe);
    hp__pg_resolve_detach(c);
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    hp__pg_conn_failed(c);
}

void hp__pg_conn_free(struct pgconn *c)
{
    hp__pg_resolve_detach(c);
    while (c->stmts) {
        struct pgstmt *s = c->stmts;

        c->stmts = s->next;
        hp__pg_free(c->pool, s);
    }
    hp_io_stop(&c->io);
    hp_timer_stop(&c->timer);
    hp_timer_stop(&c->qtimer);
    hp_timer_stop(&c->probe);
    if (c->pg)
        PQfinish(c->pg);
    hp__pg_free(c->pool, c);
}
