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
 * iteration, usually sees the outcome).
 *
 * Once up, a connection is spoken to in one of two ways.
 * - Wire mode (plain TCP or Unix sockets): libpq has done its part. The
 *   module writes each query's messages itself (wire.c) into c->out, sent
 *   at the end of the loop iteration in one send(2) (or at once past
 *   FLUSH_AT; with opts.pipeline_hold, while that many sent queries await
 *   their answers, after the next read of answers instead); what the kernel
 *   does not take goes when the socket turns writable. Reading is recv(2)
 *   into c->in and one message at a time into c->build; each ReadyForQuery
 *   completes the head query. The PGconn stays for its cancel key and to
 *   close.
 * - libpq mode (TLS, GSS encryption, or opts.libpq_io): non-blocking and in
 *   pipeline mode, every query sent with its own PQpipelineSync and flushed,
 *   the queries of one iteration corked into one segment (batch_note()).
 *   Reading is PQconsumeInput, the NOTIFYs it brought, then PQgetResult
 *   while libpq has complete results: each query's answer is its results, a
 *   NULL (end of the command; twice when a prepare went in front), then the
 *   PGRES_PIPELINE_SYNC that completes it. The answer is copied into
 *   c->build, so that callbacks see one kind of result.
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

#define FLUSH_AT \
    ((size_t)64 << 10) /* wire mode: queued bytes sent at once, not at the iteration's end */
#define IN_MIN  ((size_t)16 << 10) /* wire mode: room asked of each recv(2) */
#define IN_KEEP ((size_t)1 << 20)  /* wire mode: input buffer kept while idle */

static void on_io(struct hp_io *io, unsigned events, int status);
static void on_timer(struct hp_timer *t);
static void on_qtimer(struct hp_timer *t);
static void on_probe(struct hp_timer *t);
static void flush(struct pgconn *c);

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
    unsigned ev = HP_READABLE | (c->want_write ? HP_WRITABLE : 0u) | (c->wire ? HP_EDGE : 0u);

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
    hp__pg_build_init(&c->build, &pool->alloc);
    hp__pg_out_init(&c->out, &pool->alloc);
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

/*
 * Before a query is written: the end of the iteration is to send (wire
 * mode) or uncork; libpq mode corks from the second query of the iteration on.
 */
static void batch_note(struct pgconn *c)
{
    if (c->nsent++ == 0) {
        hp_defer_start(&c->pool->uncork);
        return;
    }
    if (c->can_cork && !c->corked)
        set_cork(c, true);
}

/*
 * The end of an iteration in which queries were written: send them (wire
 * mode: unless opts.pipeline_hold holds them for the next answer).
 */
void hp__pg_conn_uncork(struct pgconn *c)
{
    c->nsent = 0;
    if (c->state != C_UP)
        return;
    if (c->wire) {
        if (c->pool->pipeline_hold && c->unanswered >= c->pool->pipeline_hold) {
            c->held = true; /* read_wire sends them after the next answers */
            return;
        }
        flush(c);
        return;
    }
    if (c->corked)
        set_cork(c, false);
    c->corked = false;
}

static void connected(struct pgconn *c)
{
    c->wire = !c->pool->libpq_io && !PQsslInUse(c->pg) && !PQgssEncInUse(c->pg);
    if (c->wire) {
#ifdef SO_NOSIGPIPE
        int one = 1;

        (void)setsockopt(PQsocket(c->pg), SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    } else if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        hp__pg_conn_break(c, -EPROTO, PQerrorMessage(c->pg));
        return;
    }
    hp_timer_stop(&c->timer);
    if (watch(c, HP_READABLE | (c->wire ? HP_EDGE : 0u)) != 0) {
        hp__pg_conn_break(c, -ENOMEM, "cannot watch the connection");
        return;
    }
    c->state = C_UP;
    c->ever_up = true;
    c->can_cork = !c->wire && !c->pool->no_cork && is_tcp(PQsocket(c->pg));
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
    s->id = ++c->stmt_ids;
    s->next = c->stmts;
    c->stmts = s;
    return s;
}

/*
 * The statement a query in flight was sent with, if it is still prepared.
 * Queries hold its id, not its address: a statement dropped meanwhile may
 * have its memory reused by another one.
 */
static struct pgstmt *stmt_of(const struct pgconn *c, uint64_t id)
{
    for (struct pgstmt *s = c->stmts; s; s = s->next) {
        if (s->id == id)
            return s;
    }
    return NULL;
}

/*
 * A prepare failed, or the server lost the statement: the next use prepares
 * again. Its description may still be followed by queries in flight
 * (pgq.desc), so it is retired until those have ended (queries end in the
 * order they were sent, and later ones never follow it), not freed. An id
 * already dropped is a no-op.
 */
static void drop_stmt(struct pgconn *c, uint64_t id)
{
    for (struct pgstmt **p = &c->stmts; *p; p = &(*p)->next) {
        struct pgstmt *stmt = *p;

        if (stmt->id == id) {
            *p = stmt->next;
            if (stmt->desc && c->inflight == 0) {
                hp__pg_desc_free(&c->pool->alloc, stmt->desc);
            } else if (stmt->desc) {
                stmt->desc->behind = c->inflight;
                stmt->desc->next = c->retired;
                c->retired = stmt->desc;
            }
            hp__pg_free(c->pool, stmt);
            return;
        }
    }
}

/* One query of @p c ended (@p all: @p c is freed): free the retired ones that waited for it. */
static void free_retired(struct pgconn *c, bool all)
{
    for (struct pgdesc **p = &c->retired; *p;) {
        struct pgdesc *d = *p;

        if (all || --d->behind == 0) {
            *p = d->next;
            hp__pg_desc_free(&c->pool->alloc, d);
        } else {
            p = &d->next;
        }
    }
}

/* Wire mode: send what c->out holds; 1 if some is left for writability, -1 if broken. */
static int send_out(struct pgconn *c)
{
    struct pgout *o = &c->out;
    bool head_unsent = c->unanswered == 0; /* no query in flight was handed to the kernel */

    while (o->sent < o->len) {
        ssize_t n = hp_io_write(&c->io, o->buf + o->sent, o->len - o->sent);

        if (n == -EAGAIN)
            break; /* recorded: the edge-triggered watcher wakes when there is room */
        if (n < 0) {
            char msg[200];

            snprintf(msg, sizeof(msg), "could not send to the server: %s", hp_strerror((int)n));
            hp__pg_conn_break(c, -ECONNRESET, msg);
            return -1;
        }
        o->sent += (size_t)n;
    }
    hp__pg_out_compact(o);
    if (o->len > 0)
        return 1; /* which queries the kernel has is not known: counted when all have gone */
    c->unanswered = c->inflight;
    c->held = false;
    if (head_unsent) { /* abandoned before the server had it: it has it now */
        hp__pg_conn_cancel_head(c);
        if (hp__pg_conn_stalled(c))
            hp__pg_conn_rearm(c); /* the watchdog for the cancelled query */
    }
    return 0;
}

static void flush(struct pgconn *c)
{
    int r = c->wire ? send_out(c) : PQflush(c->pg);

    if (r < 0) {
        if (!c->wire)
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

/* Wire mode: append @p q's messages to c->out (nothing on error). */
static int write_wire(struct pgconn *c, struct pgq *q)
{
    bool parse = q->kind != Q_PREPARED;
    struct pgstmt *stmt = NULL;
    int err;

    q->desc = NULL;
    if (!parse && !(stmt = find_stmt(c, q->name))) {
        if (!(stmt = add_stmt(c, q->name)))
            return -ENOMEM;
        parse = q->with_prepare = true;
    } else if (!parse) {
        q->desc = stmt->desc; /* NULL until an execution described it */
    }
    q->stmt_id = stmt ? stmt->id : 0;
    err = hp__pg_wire_query(&c->out, parse, !q->desc, q->kind == Q_PREPARED ? q->name : "", q->sql,
                            q->nparams, q->values, q->lengths);
    if (err && q->with_prepare)
        drop_stmt(c, q->stmt_id);
    return err;
}

/* libpq mode: hand @p q to libpq and flush. */
static void write_libpq(struct pgconn *c, struct pgq *q)
{
    PGconn *pg = c->pg;
    struct pgstmt *stmt = NULL;
    int ok;

    if (q->kind == Q_PREPARED && !(stmt = find_stmt(c, q->name))) {
        if (!(stmt = add_stmt(c, q->name))) {
            hp__pg_conn_break(c, -ENOMEM, "out of memory");
            return;
        }
        if (!PQsendPrepare(pg, q->name, q->sql, q->nparams, NULL)) {
            hp__pg_conn_break(c, -ECONNRESET, PQerrorMessage(pg));
            return;
        }
        q->with_prepare = true;
    }
    q->stmt_id = stmt ? stmt->id : 0;
    if (q->kind == Q_PREPARED)
        ok = PQsendQueryPrepared(pg, q->name, q->nparams, q->values, NULL, NULL, 0);
    else
        ok = PQsendQueryParams(pg, q->sql, q->nparams, NULL, q->values, NULL, NULL, 0);
    if (!ok || !PQpipelineSync(pg))
        hp__pg_conn_break(c, -ECONNRESET, PQerrorMessage(pg));
}

/*
 * Queue @p q on the connection and send it (wire mode: at the end of the
 * iteration). Never runs a callback: a connection that fails here is
 * broken, and the pool's deferred callback reports every query it held,
 * @p q included; a query too large to write (wire mode) fails alone, the
 * same way.
 */
int hp__pg_conn_send(struct pgconn *c, struct pgq *q)
{
    q->with_prepare = q->prep_done = false;
    if (c->wire) {
        int err = write_wire(c, q);

        if (err) {
            hp__pg_q_done_later(q, err, NULL); /* too large, or no memory: it alone fails */
            return 0;
        }
    }
    q->conn = c;
    q->next = NULL;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    c->inflight++;
    c->pool->st.in_flight++;
    batch_note(c);
    if (!c->wire) {
        write_libpq(c, q);
        if (c->state != C_UP)
            return 0;
    }
    if (c->inflight == 1)
        hp__pg_conn_rearm(c);
    watch_deadline(c, q->deadline);
    if (!c->wire || c->out.len - c->out.sent >= FLUSH_AT)
        flush(c);
    return 0;
}

/* libpq mode: what a PGresult means for the query. */
static int status_of(const PGresult *res)
{
    if (!res)
        return -EPROTO;
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
    case PGRES_SINGLE_TUPLE:
        return 0;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
    case PGRES_PIPELINE_ABORTED:
        return HP_PG_ESERVER;
    default:
        return -EPROTO;
    }
}

/* libpq mode: copy the answer @p r into c->build. */
static int build_from(struct pgbuild *b, PGresult *r, int status)
{
    int rows, cols, err;
    const char *s;

    if (!r)
        return 0;
    if (status != 0) {
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

        if (!m)
            m = PQresultErrorMessage(r);
        s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        return hp__pg_build_error(b, m, strlen(m), s, s ? strlen(s) : 0);
    }
    rows = PQntuples(r);
    cols = PQnfields(r);
    if ((err = hp__pg_build_cols(b, cols)) != 0)
        return err;
    for (int i = 0; i < cols; i++) {
        s = PQfname(r, i);
        if ((err = hp__pg_build_name(b, i, s, strlen(s))) != 0)
            return err;
    }
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) {
            bool null = PQgetisnull(r, i, j);

            err = hp__pg_build_value(b, null ? NULL : PQgetvalue(r, i, j),
                                     null ? 0 : (size_t)PQgetlength(r, i, j));
            if (err)
                return err;
        }
    }
    b->rows = rows; /* counted here, as rows without columns have no values */
    s = PQcmdStatus(r);
    return hp__pg_build_cmd(b, s, strlen(s));
}

/* libpq mode: a command's result for the head query. */
static void take_result(struct pgconn *c, struct pgq *q, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    bool failed = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;

    if (q->with_prepare && !q->prep_done) {
        if (failed) {
            drop_stmt(c, q->stmt_id);
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
            drop_stmt(c, q->stmt_id);
    }
    if (!q->res) {
        q->res = r;
    } else if (status_of(q->res) != 0) {
        PQclear(r); /* the aborted rest of a failed segment */
    } else {
        PQclear(q->res);
        q->res = r;
    }
}

/* The head query's sync point arrived: it is complete, its answer in c->build. */
static void complete_head(struct pgconn *c, int status)
{
    struct hp_pg_pool *pool = c->pool;
    struct pgq *q = c->head;
    struct hp_pg_result res;

    c->head = q->next;
    if (!c->head)
        c->tail = NULL;
    c->inflight--;
    pool->st.in_flight--;
    if (c->unanswered)
        c->unanswered--;
    if (c->retired) /* its answer is in c->build: q->desc is not followed again */
        free_retired(c, false);
    q->conn = NULL;
    hp__pg_build_result(&c->build, status, &res);
    switch (q->kind) {
    case Q_BEGIN:
        hp__pg_begin_done(q, status);
        break;
    case Q_END:
        hp__pg_end_done(q, &res);
        break;
    case Q_HEALTH:
        hp__pg_q_release(q);
        hp__pg_health_done(c, status);
        break;
    default:
        hp__pg_deliver(q, &res);
        break;
    }
    if (pool->closing) /* a pool freed from the callback has freed its connections */
        return;
    hp__pg_build_reset(&c->build);
}

/* libpq mode: the head query's answer, from q->res into c->build. */
static void complete_head_libpq(struct pgconn *c)
{
    struct pgq *q = c->head;
    int status = status_of(q->res);

    if (q->kind != Q_HEALTH && q->kind != Q_BEGIN && build_from(&c->build, q->res, status) != 0) {
        hp__pg_build_reset(&c->build);
        status = -ENOMEM;
        (void)hp__pg_build_error(&c->build, "out of memory", 13, NULL, 0);
    }
    PQclear(q->res);
    q->res = NULL;
    complete_head(c, status);
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
        complete_head_libpq(c);
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

/* Wire mode: the head query's columns are known; keep them for its statement's next runs. */
static void learn(struct pgconn *c, struct pgq *q)
{
    struct pgstmt *stmt = q->kind == Q_PREPARED && !q->desc ? stmt_of(c, q->stmt_id) : NULL;

    if (stmt && !stmt->desc)
        stmt->desc = hp__pg_desc_new(&c->build); /* without memory: described next time */
}

/* Wire mode: one backend message. */
static int on_message(struct pgconn *c, const struct pgmsg *m)
{
    struct pgq *q = c->head;
    const char *msg, *chan, *payload;
    int pid, err = 0;

    switch (m->type) {
    case 'A': /* NotificationResponse */
        if ((err = hp__pg_wire_notify(m, &pid, &chan, &payload)) == 0)
            hp__pg_notify(c->pool, chan, payload, pid);
        return err;
    case 'N': /* NoticeResponse */
    case 'S': /* ParameterStatus */
        return 0;
    case 'E':
        if (q)
            break;
        /* An error outside any query: the server is about to close (FATAL). */
        if (hp__pg_wire_error_msg(m, &msg) != 0)
            return -EPROTO;
        hp__pg_conn_break(c, -ECONNRESET, msg);
        return 0;
    default:
        if (!q)
            return -EPROTO; /* an answer nobody asked for */
        break;
    }
    switch (m->type) {
    case '1': /* ParseComplete */
        q->prep_done = true;
        return 0;
    case '2': /* BindComplete: without a Describe, the columns are the statement's */
        return q->desc ? hp__pg_build_desc(&c->build, q->desc) : 0;
    case 'n': /* NoData */
        learn(c, q);
        return 0;
    case '3': /* CloseComplete */
    case 'I': /* EmptyQueryResponse */
    case 'H': /* CopyOutResponse: its CopyData rows are dropped, the command tag kept */
    case 'd': /* CopyData */
    case 'c': /* CopyDone */
        return 0;
    case 'G': /* CopyInResponse: the server would ignore the Syncs behind it */
    case 'W': /* CopyBothResponse */
        return -ENOTSUP;
    case 'T':
        if ((err = hp__pg_wire_rowdesc(&c->build, m)) == 0)
            learn(c, q);
        return err;
    case 'D':
        return hp__pg_wire_datarow(&c->build, m);
    case 'C':
        return hp__pg_wire_command(&c->build, m);
    case 'E':
        if ((err = hp__pg_wire_error(&c->build, m)) != 0)
            return err;
        if (q->kind == Q_PREPARED && q->with_prepare && !q->prep_done) {
            drop_stmt(c, q->stmt_id); /* the prepare failed: the next use prepares again */
            q->with_prepare = false;
        } else if (q->kind == Q_PREPARED && c->build.sqlstate != SIZE_MAX &&
                   strcmp(c->build.data + c->build.sqlstate, "26000") == 0) {
            drop_stmt(c, q->stmt_id); /* deallocated behind our back (DEALLOCATE, DISCARD ALL) */
        }
        return 0;
    case 'Z': /* ReadyForQuery: the query's Sync */
        if (m->len != 1)
            return -EPROTO;
        complete_head(c, c->build.failed ? HP_PG_ESERVER : 0);
        return 0;
    default:
        return -EPROTO;
    }
}

/* Wire mode: make room for @p need bytes of input. */
static int in_reserve(struct pgconn *c, size_t need)
{
    size_t cap = c->incap ? c->incap : IN_MIN;
    char *p;

    if (need <= c->incap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (!(p = hp__pg_realloc(c->pool, c->in, cap)))
        return -ENOMEM;
    c->in = p;
    c->incap = cap;
    return 0;
}

/*
 * Wire mode: one recv(2) and every whole message it completed. Returns 1
 * if more may be waiting (it filled the room it had, or the server hung up
 * and EOF is still to be read: @p hup), 0 if the socket is empty (a short
 * read empties it: the next arrival is a new edge), -1 if the connection or
 * the pool ended meanwhile.
 */
static int read_once(struct pgconn *c, bool hup)
{
    struct hp_pg_pool *pool = c->pool;
    size_t at = 0, room;
    struct pgmsg m;
    ssize_t n;
    long k;

    if (in_reserve(c, c->inlen + IN_MIN / 2) != 0) {
        hp__pg_conn_break(c, -ENOMEM, "out of memory");
        return -1;
    }
    room = c->incap - c->inlen;
    n = hp_io_read(&c->io, c->in + c->inlen, room);
    if (n == -EAGAIN)
        return 0; /* recorded: the next arrival is a new edge */
    if (n < 0) {
        hp__pg_conn_break(c, -ECONNRESET,
                          n == HP_EOF ? "the server closed the connection" : hp_strerror((int)n));
        return -1;
    }
    c->inlen += (size_t)n;
    if (hp__pg_conn_stalled(c))
        hp__pg_conn_rearm(c); /* progress: the stall watchdog starts over */
    while ((k = hp__pg_wire_frame(c->in + at, c->inlen - at, &m)) > 0) {
        int err;

        at += (size_t)k;
        err = on_message(c, &m);
        if (pool->closing || c->state != C_UP)
            return -1;
        if (err) {
            hp__pg_conn_break(c, err == -ENOMEM ? err : -EPROTO,
                              err == -ENOMEM    ? "out of memory"
                              : err == -ENOTSUP ? "COPY FROM STDIN is not supported"
                                                : "malformed message from the server");
            return -1;
        }
        if (m.type == 'Z') {
            hp__pg_conn_ready(c);
            if (pool->closing || c->state != C_UP)
                return -1;
        }
    }
    if (k < 0) {
        hp__pg_conn_break(c, -EPROTO, "malformed message from the server");
        return -1;
    }
    c->inlen -= at;
    memmove(c->in, c->in + at, c->inlen);
    if (c->inlen == 0 && c->incap > IN_KEEP) {
        hp__pg_free(pool, c->in);
        c->in = NULL;
        c->incap = 0;
    } else if (m.len > 0 && in_reserve(c, m.len) != 0) { /* a long message: room for all of it */
        hp__pg_conn_break(c, -ENOMEM, "out of memory");
        return -1;
    }
    if ((size_t)n == room || hup)
        return 1;
    hp_io_drained(&c->io, HP_READABLE);
    return 0;
}

/* Wire mode, edge-triggered: read until a recv(2) comes back short. */
static void read_wire(struct pgconn *c, bool hup)
{
    int r;

    while ((r = read_once(c, hup)) == 1)
        ;
    if (r < 0)
        return;
    if (c->held) { /* opts.pipeline_hold: answers came, the held queries go */
        flush(c);
        if (c->state != C_UP)
            return;
    }
    /* Every answer read so far is taken: the head is what the server is running. */
    hp__pg_conn_cancel_head(c);
    hp__pg_conn_rearm(c);
}

static void on_readable(struct pgconn *c, unsigned events)
{
    struct hp_pg_pool *pool = c->pool;
    PGnotify *n;

    if (c->wire) {
        read_wire(c, (events & (HP_HUP | HP_ERROR)) != 0);
        if (!pool->closing && c->state == C_UP && c->want_write)
            flush(c);
        return;
    }
    if (!PQconsumeInput(c->pg)) {
        hp__pg_conn_break(c, -ECONNRESET, PQerrorMessage(c->pg));
        return;
    }
    while ((n = PQnotifies(c->pg)) != NULL) {
        hp__pg_notify(pool, n->relname, n->extra, n->be_pid);
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
            on_readable(c, events);
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
    while (c->stmts)
        drop_stmt(c, c->stmts->id);
    free_retired(c, true);
    hp_io_stop(&c->io);
    hp_timer_stop(&c->timer);
    hp_timer_stop(&c->qtimer);
    hp_timer_stop(&c->probe);
    if (c->pg)
        PQfinish(c->pg);
    hp__pg_build_fini(&c->build);
    hp__pg_out_fini(&c->out);
    hp__pg_free(c->pool, c->in);
    hp__pg_free(c->pool, c);
}
