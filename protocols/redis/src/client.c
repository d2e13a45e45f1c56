/*
 * client.c - the Redis client: one hiredis async context at a time, attached
 * with the hellepoll adapter, plus what hiredis 0.14 lacks: connect and
 * command timeouts on loop timers, reconnect with backoff, a bound on
 * waiting commands, subscriptions that survive reconnects, and the
 * exactly-once callback rule.
 *
 * Lifetimes. Every command has a record (struct cmd) that is hiredis's
 * privdata. A record is free again once both its user callback has run and
 * hiredis has let go of it (called its reply function, maybe with NULL).
 * Commands waiting for their user callback sit in a FIFO (r->head/tail), in
 * the order they were sent, which is the order Redis answers: one timer for
 * the oldest is all command timeouts need.
 *
 * The client itself is freed only when hiredis has let go of its context
 * (the adapter's cleanup hook, which we wrap): hp_redis_free() from inside a
 * reply callback makes hiredis free the context after the callback returns,
 * and the callbacks hiredis still runs then must find the client alive.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/redis-adapter.h>
#include <hellepoll/redis.h>

enum state { ST_DOWN, ST_CONNECTING, ST_UP };

struct cmd {
    struct hp_redis *r;
    hp_redis_cb *cb;
    void *arg;
    uint64_t deadline;
    struct cmd *next, *prev; /* FIFO while waiting; free list (next) when free */
    bool waiting;            /* user callback not run yet */
    bool in_hiredis;         /* hiredis holds it as privdata */
};

struct sub {
    struct sub *next;
    hp_redis_msg_cb *cb;
    void *arg;
    struct hp_redis *r;
    bool active;     /* the user wants it */
    bool in_hiredis; /* hiredis holds it as privdata */
    bool confirmed;  /* the server confirmed it on this connection */
    char channel[];
};

struct hp_redis {
    struct hp_loop *loop;
    redisAsyncContext *ac;
    void (*adapter_cleanup)(void *privdata);
    enum state state;
    int drop_reason; /* error for commands when we drop the connection ourselves */
    bool freeing;
    unsigned busy;              /* > 0 while a client function runs user callbacks */
    struct hp_timer conn_timer; /* connect timeout, then reconnect delay */
    struct hp_timer cmd_timer;  /* the oldest waiting command's deadline */
    struct cmd *head, *tail;    /* waiting, oldest first */
    struct cmd *free_cmds;
    struct sub *subs;
    size_t pending;
    unsigned backoff_ms;
    unsigned connects;
    char *host;
    uint16_t port;
    unsigned connect_timeout_ms, command_timeout_ms, reconnect_min_ms, reconnect_max_ms;
    unsigned max_pending;
    void *data;
};

static void start_connect(struct hp_redis *r);

/* Reconnect after the backoff delay, doubling it for the next failure. */
static void schedule_reconnect(struct hp_redis *r)
{
    (void)hp_timer_start(&r->conn_timer, r->backoff_ms, 0); /* -ENOMEM: stays down */
    r->backoff_ms =
        r->backoff_ms > r->reconnect_max_ms / 2 ? r->reconnect_max_ms : r->backoff_ms * 2;
}

/* The status for commands hiredis gives up on (NULL reply). */
static int drop_status(const struct hp_redis *r, const redisAsyncContext *ac)
{
    if (r->drop_reason)
        return r->drop_reason;
    switch (ac->c.err) {
    case REDIS_ERR_PROTOCOL:
        return -EPROTO;
    case REDIS_ERR_OOM:
        return -ENOMEM;
    case REDIS_ERR_EOF:
    case REDIS_ERR_IO:
        return -ECONNRESET;
    default:
        return r->state == ST_UP ? -ECONNRESET : -ECONNREFUSED;
    }
}

static void unlink_cmd(struct hp_redis *r, struct cmd *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        r->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        r->tail = c->prev;
    c->next = c->prev = NULL;
    c->waiting = false;
    r->pending--;
}

static void recycle(struct hp_redis *r, struct cmd *c)
{
    if (c->waiting || c->in_hiredis)
        return;
    c->next = r->free_cmds;
    r->free_cmds = c;
}

/* Run the user callback of a waiting command (once). */
static void finish(struct hp_redis *r, struct cmd *c, int status, redisReply *reply)
{
    unlink_cmd(r, c);
    c->cb(r, status, (struct redisReply *)reply, c->arg);
}

static void on_reply(redisAsyncContext *ac, void *rep, void *privdata)
{
    struct cmd *c = privdata;
    struct hp_redis *r = c->r;
    redisReply *reply = rep;

    c->in_hiredis = false;
    if (c->waiting) {
        if (reply == NULL)
            finish(r, c, drop_status(r, ac), NULL);
        else
            finish(r, c, reply->type == REDIS_REPLY_ERROR ? HP_ESERVER : 0, reply);
    }
    recycle(r, c);
}

/* Everything waiting fails with @p status (from the client's own calls). */
static void fail_all(struct hp_redis *r, int status)
{
    while (r->head)
        finish(r, r->head, status, NULL);
}

static void free_client(struct hp_redis *r);

/* Keep the client alive across user callbacks run by the client itself. */
static void hold(struct hp_redis *r)
{
    r->busy++;
}

static void release(struct hp_redis *r)
{
    if (--r->busy == 0 && r->freeing && r->ac == NULL)
        free_client(r);
}

/* Drop the current connection ourselves: commands in flight get @p reason. */
static void drop(struct hp_redis *r, int reason)
{
    if (r->ac == NULL)
        return;
    hold(r);
    r->drop_reason = reason;
    fail_all(r, reason); /* a callback may free the client */
    if (!r->freeing && r->ac)
        redisAsyncFree(r->ac); /* the cleanup hook follows, at once or after a callback */
    release(r);
}

static void free_client(struct hp_redis *r)
{
    struct cmd *c;
    struct sub *s;

    hp_timer_stop(&r->conn_timer);
    hp_timer_stop(&r->cmd_timer);
    while ((c = r->free_cmds) != NULL) {
        r->free_cmds = c->next;
        free(c);
    }
    while ((s = r->subs) != NULL) {
        r->subs = s->next;
        free(s);
    }
    free(r->host);
    free(r);
}

/* Subscriptions the user gave up on and hiredis no longer holds. */
static void prune_subs(struct hp_redis *r)
{
    struct sub **p = &r->subs, *s;

    while ((s = *p) != NULL) {
        if (!s->active && !s->in_hiredis) {
            *p = s->next;
            free(s);
        } else {
            p = &s->next;
        }
    }
}

/* The adapter's cleanup, wrapped: hiredis has let go of the context. */
static void on_cleanup(void *privdata)
{
    struct hp_redis_events *e = privdata;
    struct hp_redis *r = e->ac ? e->ac->data : NULL;

    r->adapter_cleanup(privdata);
    r->ac = NULL;
    r->state = ST_DOWN;
    r->drop_reason = 0;
    hp_timer_stop(&r->conn_timer);
    hp_timer_stop(&r->cmd_timer);
    for (struct sub *s = r->subs; s; s = s->next) {
        s->in_hiredis = false;
        s->confirmed = false;
    }
    if (r->freeing) {
        if (r->busy == 0)
            free_client(r);
        return;
    }
    prune_subs(r);
    schedule_reconnect(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct hp_redis *r = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns: the commands it
         * held get the connect error. errno is still the socket's. */
        int err = errno;

        r->drop_reason = err > 0 ? -err : -ECONNREFUSED;
        return;
    }
    hp_timer_stop(&r->conn_timer);
    r->state = ST_UP;
    r->connects++;
    r->backoff_ms = r->reconnect_min_ms;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    (void)status; /* the cleanup hook that follows does the work */
}

static void on_sub_reply(redisAsyncContext *ac, void *rep, void *privdata)
{
    struct sub *s = privdata;
    redisReply *reply = rep, **el;

    (void)ac;
    if (reply == NULL) {
        s->in_hiredis = false;
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    el = reply->element;
    if (el[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(el[0]->str, "message") == 0 && s->active)
        s->cb(s->r, el[1]->str, el[1]->len, el[2]->str, el[2]->len, s->arg);
    else if (strcmp(el[0]->str, "subscribe") == 0)
        s->confirmed = true;
    else if (strcmp(el[0]->str, "unsubscribe") == 0) {
        /* hiredis drops its callback after this reply */
        s->in_hiredis = false;
        s->confirmed = false;
    }
}

static int send_subscribe(struct hp_redis *r, struct sub *s)
{
    if (redisAsyncCommand(r->ac, on_sub_reply, s, "SUBSCRIBE %s", s->channel) != REDIS_OK)
        return -ENOMEM;
    s->in_hiredis = true;
    return 0;
}

static void on_conn_timer(struct hp_timer *t)
{
    struct hp_redis *r = t->data;

    if (r->state == ST_CONNECTING)
        drop(r, -ETIMEDOUT);
    else if (r->state == ST_DOWN)
        start_connect(r);
}

static void on_cmd_timer(struct hp_timer *t)
{
    struct hp_redis *r = t->data;
    uint64_t now = hp_loop_now(r->loop);

    if (r->head == NULL)
        return;
    if (r->head->deadline > now) {
        (void)hp_timer_start(t, r->head->deadline - now, 0);
        return;
    }
    drop(r, -ETIMEDOUT);
}

static void start_connect(struct hp_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);

    if (ac == NULL || ac->err || hp_redis_attach(ac, r->loop) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        r->state = ST_DOWN;
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    r->adapter_cleanup = ac->ev.cleanup;
    ac->ev.cleanup = on_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = ST_CONNECTING;
    r->drop_reason = 0;
    (void)hp_timer_start(&r->conn_timer, r->connect_timeout_ms, 0);
    for (struct sub *s = r->subs; s; s = s->next) {
        if (s->active)
            (void)send_subscribe(r, s);
    }
}

int hp_redis_new(struct hp_redis **out, struct hp_loop *loop, const struct hp_redis_opts *opts)
{
    static const struct hp_redis_opts defaults;
    struct hp_redis *r;
    const char *host;

    if (out == NULL || loop == NULL)
        return -EINVAL;
    if (opts == NULL)
        opts = &defaults;
    host = opts->host ? opts->host : "127.0.0.1";
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->host = strdup(host);
    if (r->host == NULL) {
        free(r);
        return -ENOMEM;
    }
    r->loop = loop;
    r->port = opts->port ? opts->port : 6379;
    r->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 2000;
    r->command_timeout_ms = opts->command_timeout_ms ? opts->command_timeout_ms : 5000;
    r->reconnect_min_ms = opts->reconnect_min_ms ? opts->reconnect_min_ms : 50;
    r->reconnect_max_ms = opts->reconnect_max_ms ? opts->reconnect_max_ms : 2000;
    if (r->reconnect_max_ms < r->reconnect_min_ms)
        r->reconnect_max_ms = r->reconnect_min_ms;
    r->max_pending = opts->max_pending ? opts->max_pending : 4096;
    r->backoff_ms = r->reconnect_min_ms;
    r->data = opts->data;
    hp_timer_init(loop, &r->conn_timer, on_conn_timer);
    r->conn_timer.data = r;
    hp_timer_init(loop, &r->cmd_timer, on_cmd_timer);
    r->cmd_timer.data = r;
    start_connect(r);
    *out = r;
    return 0;
}

void hp_redis_free(struct hp_redis *r)
{
    if (r == NULL || r->freeing)
        return;
    r->freeing = true;
    hp_timer_stop(&r->conn_timer);
    hp_timer_stop(&r->cmd_timer);
    for (struct sub *s = r->subs; s; s = s->next)
        s->active = false;
    r->drop_reason = -ECANCELED;
    hold(r);
    fail_all(r, -ECANCELED);
    if (r->ac)
        redisAsyncFree(r->ac); /* the cleanup hook, now or after a callback */
    release(r);                /* frees the client once hiredis let go */
}

static struct cmd *new_cmd(struct hp_redis *r, hp_redis_cb *cb, void *arg, int *err)
{
    struct cmd *c;

    if (r->freeing) {
        *err = HP_ECLOSED;
        return NULL;
    }
    if (cb == NULL) {
        *err = -EINVAL;
        return NULL;
    }
    if (r->subs) {
        *err = -EBUSY;
        return NULL;
    }
    if (r->ac == NULL || (r->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))) {
        *err = -ENOTCONN;
        return NULL;
    }
    if (r->pending >= r->max_pending) {
        *err = -ENOBUFS;
        return NULL;
    }
    c = r->free_cmds;
    if (c)
        r->free_cmds = c->next;
    else if ((c = malloc(sizeof(*c))) == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->waiting = false;
    c->in_hiredis = false;
    c->next = c->prev = NULL;
    return c;
}

/* hiredis took the command: queue the record as waiting. */
static void enqueue(struct hp_redis *r, struct cmd *c)
{
    c->in_hiredis = true;
    c->waiting = true;
    c->deadline = hp_loop_now(r->loop) + r->command_timeout_ms;
    c->prev = r->tail;
    if (r->tail)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
    r->pending++;
    if (!hp_timer_is_active(&r->cmd_timer))
        (void)hp_timer_start(&r->cmd_timer, r->command_timeout_ms, 0);
}

int hp_redis_commandv(struct hp_redis *r, hp_redis_cb *cb, void *arg, const char *fmt, va_list ap)
{
    int err = 0;
    struct cmd *c;

    if (fmt == NULL)
        return -EINVAL;
    c = new_cmd(r, cb, arg, &err);
    if (c == NULL)
        return err;
    if (redisvAsyncCommand(r->ac, on_reply, c, fmt, ap) != REDIS_OK) {
        recycle(r, c);
        return -EINVAL;
    }
    enqueue(r, c);
    return 0;
}

int hp_redis_command(struct hp_redis *r, hp_redis_cb *cb, void *arg, const char *fmt, ...)
{
    va_list ap;
    int err;

    va_start(ap, fmt);
    err = hp_redis_commandv(r, cb, arg, fmt, ap);
    va_end(ap);
    return err;
}

/* Decimal digits of @p v at @p p; returns the end. */
static char *put_uint(char *p, size_t v)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/*
 * RESP for argv, written by hand: hiredis's redisFormatSdsCommandArgv builds
 * it with sdscatfmt and reallocations, which was a third of the client's
 * instructions per command.
 */
static size_t format_argv(char *out, int argc, const char *const *argv, const size_t *lens)
{
    char *p = out;

    *p++ = '*';
    p = put_uint(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p = put_uint(p, lens[i]);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    return (size_t)(p - out);
}

int hp_redis_command_argv(struct hp_redis *r, hp_redis_cb *cb, void *arg, int argc,
                          const char *const *argv, const size_t *argvlen)
{
    enum { STACK_ARGS = 16, STACK_BYTES = 1024 };
    size_t stack_lens[STACK_ARGS], *lens = stack_lens, need = 16;
    char stack_buf[STACK_BYTES], *buf = stack_buf;
    int err = 0, rc;
    struct cmd *c;

    if (argc <= 0 || argv == NULL)
        return -EINVAL;
    c = new_cmd(r, cb, arg, &err);
    if (c == NULL)
        return err;
    if (argc > STACK_ARGS && (lens = malloc((size_t)argc * sizeof(*lens))) == NULL) {
        err = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        lens[i] = argvlen ? argvlen[i] : strlen(argv[i]);
        if (lens[i] > SIZE_MAX / 4 - need) {
            err = -EINVAL;
            goto out;
        }
        need += lens[i] + 24 + 5; /* "$" len CRLF bytes CRLF */
    }
    if (need > STACK_BYTES && (buf = malloc(need)) == NULL) {
        err = -ENOMEM;
        goto out;
    }
    rc = redisAsyncFormattedCommand(r->ac, on_reply, c, buf, format_argv(buf, argc, argv, lens));
    if (rc != REDIS_OK)
        err = -ENOMEM;
    else
        enqueue(r, c);
out:
    if (err)
        recycle(r, c);
    if (lens != stack_lens)
        free(lens);
    if (buf != stack_buf)
        free(buf);
    return err;
}

int hp_redis_subscribe(struct hp_redis *r, const char *channel, hp_redis_msg_cb *cb, void *arg)
{
    size_t n;
    struct sub *s;

    if (r->freeing)
        return HP_ECLOSED;
    if (channel == NULL || cb == NULL)
        return -EINVAL;
    if (r->pending > 0)
        return -EBUSY;
    for (s = r->subs; s; s = s->next) {
        if (s->active && strcmp(s->channel, channel) == 0)
            return -EEXIST;
    }
    n = strlen(channel);
    s = calloc(1, sizeof(*s) + n + 1);
    if (s == NULL)
        return -ENOMEM;
    memcpy(s->channel, channel, n + 1);
    s->cb = cb;
    s->arg = arg;
    s->r = r;
    s->active = true;
    if (r->ac && send_subscribe(r, s) != 0) {
        free(s);
        return -ENOMEM;
    }
    s->next = r->subs;
    r->subs = s;
    return 0;
}

int hp_redis_unsubscribe(struct hp_redis *r, const char *channel)
{
    for (struct sub *s = r->subs; s; s = s->next) {
        if (!s->active || strcmp(s->channel, channel) != 0)
            continue;
        s->active = false;
        if (r->ac && s->in_hiredis)
            (void)redisAsyncCommand(r->ac, NULL, NULL, "UNSUBSCRIBE %s", s->channel);
        return 0;
    }
    return -ENOENT;
}

bool hp_redis_is_subscribed(const struct hp_redis *r)
{
    for (const struct sub *s = r->subs; s; s = s->next) {
        if (s->active && s->confirmed)
            return true;
    }
    return false;
}

bool hp_redis_is_connected(const struct hp_redis *r)
{
    return r->state == ST_UP;
}

size_t hp_redis_pending(const struct hp_redis *r)
{
    return r->pending;
}

unsigned hp_redis_connects(const struct hp_redis *r)
{
    return r->connects;
}

void *hp_redis_data(const struct hp_redis *r)
{
    return r->data;
}
