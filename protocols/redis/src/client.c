/*
 * client.c - the Redis client: one connection (a non-blocking socket on an
 * hp_io watcher), commands in RESP formatted by hiredis (or by hand for
 * argv), replies parsed by hiredis's reader into an arena (reply.c) and
 * matched in order to a FIFO of waiting commands. Plus what hiredis 0.14
 * lacks: connect and command timeouts on loop timers, reconnect with
 * backoff, a bound on waiting commands, subscriptions that survive
 * reconnects, and the exactly-once callback rule.
 *
 * Why not hiredis's asynchronous layer (which <hellepoll/redis-adapter.h>
 * still serves, for its users): per command it parses the formatted command
 * again (strtol, strncasecmp for the pub/sub commands), allocates and frees
 * a callback node, keeps its output in an sds that is freed and allocated
 * again after each complete write, and has the reader malloc and free every
 * reply: together more instructions than the client's own work.
 *
 * Writing: commands collect in one output buffer during a loop iteration and
 * are written at its end (hp_defer); only what the kernel did not take arms
 * write interest. One timer watches the oldest command.
 *
 * Connecting: a host that is not a numeric address is looked up on the
 * loop's thread pool (getaddrinfo blocks), then each of its addresses is
 * tried in turn; the connect timeout covers both. A lookup still running
 * when the attempt ends is detached and cancelled; its completion only
 * frees it.
 *
 * Failure: a connection that fails (connect error or timeout, EOF, reset, a
 * command timeout, garbage) is closed first, then everything waiting on it
 * gets the error, then a backoff delay later it connects again. The socket
 * closes synchronously, so hp_redis_free() releases everything at once;
 * while the client's own code runs user callbacks (r->busy) a free from
 * inside them is completed when that code is done.
 *
 * Pub/sub: with a subscription the connection is a subscriber (RESP2):
 * every reply is a subscribe/unsubscribe confirmation or a message, matched
 * to the subscriptions by channel. A subscription given up is freed when the
 * server confirms its UNSUBSCRIBE (or the connection ends); once none is
 * left, commands are accepted again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/redis.h>

#include "reply.h"

/* ST_CLOSED: the socket was closed by a failure; callbacks for it still run. */
enum state { ST_DOWN, ST_CONNECTING, ST_UP, ST_CLOSED };

struct cmd {
    struct cmd *next; /* FIFO while waiting; free list when free */
    hp_redis_cb *cb;
    void *arg;
    uint64_t deadline;
};

struct sub {
    struct sub *next;
    hp_redis_msg_cb *cb;
    void *arg;
    size_t len;
    bool active;    /* the user wants it */
    bool confirmed; /* the server confirmed it on this connection */
    char channel[];
};

struct hp_redis {
    struct hp_loop *loop;
    struct hp_io io;
    int fd;
    enum state state;
    bool freeing;
    unsigned busy;              /* > 0 while the client's code runs user callbacks */
    struct hp_defer flush;      /* write the output at the end of the iteration */
    bool flush_queued;          /* flush started, not run yet */
    bool write_armed;           /* write interest: output the socket did not take */
    struct hp_timer conn_timer; /* connect timeout, then reconnect delay */
    struct hp_timer cmd_timer;  /* the oldest waiting command's deadline */
    char *out;                  /* output: out[out_off..out_len) not written yet */
    size_t out_len, out_off, out_cap;
    redisReader *reader;
    struct cmd *head, *tail; /* waiting, oldest first */
    struct cmd *free_cmds;
    struct sub *subs;
    size_t pending;
    unsigned backoff_ms;
    unsigned connects;
    char *host;
    bool numeric;               /* host is an address: no lookup */
    struct lookup *lookup;      /* the name being resolved on the pool, or NULL */
    struct addrinfo *addrs;     /* this attempt's addresses */
    struct addrinfo *next_addr; /* the next one to try when a connect fails */
    uint16_t port;
    unsigned connect_timeout_ms, command_timeout_ms, reconnect_min_ms, reconnect_max_ms;
    unsigned max_pending;
    void *data;
    struct hp__redis_arena arena;
};

static void conn_open(struct hp_redis *r);

/* A host name looked up on the loop's thread pool (getaddrinfo blocks). */
struct lookup {
    struct hp_work work;
    struct hp_redis *r; /* NULL once the client stopped waiting for it */
    struct addrinfo *ai;
    int gai; /* getaddrinfo's result */
    char port[8];
    char host[];
};

/* ---- output ---- */

/* Room for @p n more bytes of output. @return 0 or -ENOMEM. */
static int reserve(struct hp_redis *r, size_t n)
{
    size_t cap;
    char *p;

    if (r->out_cap - r->out_len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - r->out_len)
        return -ENOMEM;
    cap = r->out_cap ? r->out_cap : 256;
    while (cap - r->out_len < n)
        cap *= 2;
    p = realloc(r->out, cap);
    if (p == NULL)
        return -ENOMEM;
    r->out = p;
    r->out_cap = cap;
    return 0;
}

/* Decimal digits of @p v at @p p; returns the end. */
static char *put_uint(char *p, size_t v)
{
    char tmp[24];
    int n = 0;

    if (v < 10) { /* argument counts and most lengths */
        *p++ = (char)('0' + (int)v);
        return p;
    }
    if (v < 100) {
        *p++ = (char)('0' + (int)(v / 10));
        *p++ = (char)('0' + (int)(v % 10));
        return p;
    }
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/*
 * memcpy() for the short strings commands are mostly made of, without the
 * call: two overlapping word moves for 4..16 bytes.
 */
static inline void copy_short(char *dst, const char *src, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a, b;

        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;

        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else if (n < 4) {
        if (n > 0)
            dst[0] = src[0];
        if (n > 1)
            dst[1] = src[1];
        if (n > 2)
            dst[2] = src[2];
    } else {
        memcpy(dst, src, n);
    }
}

/*
 * Append RESP for argv to the output, written by hand: hiredis's
 * redisFormatCommandArgv builds it with sds appends and reallocations.
 * @return 0, -EINVAL (a length too large), -ENOMEM.
 */
static int append_argv(struct hp_redis *r, int argc, const char *const *argv, const size_t *argvlen)
{
    size_t need = 16;
    char *p;

    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);

        if (len > SIZE_MAX / 4 - need)
            return -EINVAL;
        need += len + 24 + 5; /* "$" len CRLF bytes CRLF */
    }
    if (reserve(r, need) != 0)
        return -ENOMEM;
    p = r->out + r->out_len;
    *p++ = '*';
    p = put_uint(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);

        *p++ = '$';
        p = put_uint(p, len);
        *p++ = '\r';
        *p++ = '\n';
        copy_short(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    r->out_len = (size_t)(p - r->out);
    return 0;
}

/* Write the output at the end of this iteration (unless a write waits for the socket). */
static void want_flush(struct hp_redis *r)
{
    if (r->state == ST_UP && !r->flush_queued && !r->write_armed) {
        r->flush_queued = true;
        hp_defer_start(&r->flush);
    }
}

/* ---- commands ---- */

static void cmd_put(struct hp_redis *r, struct cmd *c)
{
    c->next = r->free_cmds;
    r->free_cmds = c;
}

/* Complete the oldest command: recycle its record, run its callback. */
static void complete(struct hp_redis *r, int status, redisReply *reply)
{
    struct cmd *c = r->head;
    hp_redis_cb *cb = c->cb;
    void *arg = c->arg;

    r->head = c->next;
    if (r->head == NULL)
        r->tail = NULL;
    r->pending--;
    cmd_put(r, c);
    cb(r, status, (struct redisReply *)reply, arg);
}

static void fail_all(struct hp_redis *r, int status)
{
    while (r->head)
        complete(r, status, NULL);
}

/* ---- connection lifecycle ---- */

static void free_client(struct hp_redis *r)
{
    struct cmd *c;
    struct sub *s;

    hp_timer_stop(&r->conn_timer);
    hp_timer_stop(&r->cmd_timer);
    hp_defer_stop(&r->flush);
    if (r->reader)
        redisReaderFree(r->reader); /* before the arena it builds replies in */
    while ((c = r->free_cmds) != NULL) {
        r->free_cmds = c->next;
        free(c);
    }
    while ((s = r->subs) != NULL) {
        r->subs = s->next;
        free(s);
    }
    free(r->out);
    free(r->host);
    free(r);
}

/* Keep the client allocated while its code runs user callbacks. */
static void hold(struct hp_redis *r)
{
    r->busy++;
}

static void release(struct hp_redis *r)
{
    if (--r->busy == 0 && r->freeing)
        free_client(r);
}

/* Reconnect after the backoff delay, doubling it for the next failure. */
static void schedule_reconnect(struct hp_redis *r)
{
    r->state = ST_DOWN;
    (void)hp_timer_start(&r->conn_timer, r->backoff_ms, 0); /* -ENOMEM: stays down */
    r->backoff_ms =
        r->backoff_ms > r->reconnect_max_ms / 2 ? r->reconnect_max_ms : r->backoff_ms * 2;
}

/* The connection is gone: subscriptions given up end, the others wait for the next one. */
static void reset_subs(struct hp_redis *r)
{
    struct sub **p = &r->subs, *s;

    while ((s = *p) != NULL) {
        if (!s->active) {
            *p = s->next;
            free(s);
        } else {
            s->confirmed = false;
            p = &s->next;
        }
    }
}

/* Close the socket (nothing more is read or sent). */
static void close_socket(struct hp_redis *r)
{
    hp_io_stop(&r->io);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->state = ST_CLOSED;
    if (r->lookup) { /* its completion frees it */
        r->lookup->r = NULL;
        (void)hp_work_cancel(&r->lookup->work);
        r->lookup = NULL;
    }
    if (r->addrs)
        freeaddrinfo(r->addrs);
    r->addrs = r->next_addr = NULL;
    hp_timer_stop(&r->conn_timer);
    hp_timer_stop(&r->cmd_timer);
    hp_defer_stop(&r->flush);
    r->flush_queued = false;
    r->write_armed = false;
    r->out_len = r->out_off = 0;
}

/*
 * The connection failed: close it, fail everything waiting with @p err, then
 * wait to reconnect. The callbacks may free the client: do not touch @p r
 * after this unless you hold it.
 */
static void conn_fail(struct hp_redis *r, int err)
{
    if (r->state != ST_CONNECTING && r->state != ST_UP)
        return;
    close_socket(r);
    hold(r);
    fail_all(r, err);
    if (!r->freeing) {
        reset_subs(r);
        schedule_reconnect(r);
    }
    release(r);
}

static void on_conn_timer(struct hp_timer *t)
{
    struct hp_redis *r = t->data;

    if (r->state == ST_CONNECTING)
        conn_fail(r, -ETIMEDOUT);
    else if (r->state == ST_DOWN)
        conn_open(r);
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
    conn_fail(r, -ETIMEDOUT);
}

static int append_sub_cmd(struct hp_redis *r, const char *verb, const struct sub *s)
{
    const char *argv[2] = {verb, s->channel};
    size_t lens[2] = {strlen(verb), s->len};

    return append_argv(r, 2, argv, lens);
}

/* A non-blocking socket connecting to @p ai, or a negative errno. */
static int open_socket(const struct addrinfo *ai)
{
    int fd, err, flags;

    fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        err = -errno;
        goto fail;
    }
#ifdef SO_NOSIGPIPE
    {
        int on = 1;

        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
    }
#endif
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        err = -errno;
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return err;
}

static void on_io(struct hp_io *io, unsigned events, int status);

/* Start connecting to the next address of r->addrs that takes a connect. @return 0 or a negative
 * errno. */
static int try_next(struct hp_redis *r)
{
    int err = -EHOSTUNREACH;

    while (r->next_addr) {
        const struct addrinfo *ai = r->next_addr;
        int fd;

        r->next_addr = ai->ai_next;
        if ((fd = open_socket(ai)) < 0) {
            err = fd;
            continue;
        }
        r->fd = fd;
        hp_io_init(r->loop, &r->io, fd, on_io);
        r->io.data = r;
        if (hp_io_start(&r->io, HP_WRITABLE) != 0) {
            close(fd);
            r->fd = -1;
            return -ENOMEM;
        }
        return 0;
    }
    return err;
}

static void lookup_run(struct hp_work *w)
{
    struct lookup *q = hp_container_of(w, struct lookup, work);
    struct addrinfo hints;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    q->gai = getaddrinfo(q->host, q->port, &hints, &q->ai);
}

/* The lookup is done (on the loop's thread): connect, or fail this attempt. */
static void lookup_done(struct hp_work *w, int status)
{
    struct lookup *q = hp_container_of(w, struct lookup, work);
    struct hp_redis *r = q->r;
    int err;

    if (r == NULL) { /* the attempt ended first (timeout, failure, hp_redis_free()) */
        if (status == 0 && q->gai == 0)
            freeaddrinfo(q->ai);
        free(q);
        return;
    }
    r->lookup = NULL;
    if (status == 0 && q->gai == 0) {
        r->addrs = r->next_addr = q->ai;
        err = try_next(r);
    } else {
        err = status ? status : -EHOSTUNREACH;
    }
    free(q);
    if (err) {
        hold(r);
        conn_fail(r, err);
        release(r);
    }
}

/* Look up the host name on the pool; lookup_done() goes on. @return 0 or a negative errno. */
static int start_lookup(struct hp_redis *r)
{
    size_t n = strlen(r->host) + 1;
    struct lookup *q = calloc(1, sizeof(*q) + n);
    int err;

    if (q == NULL)
        return -ENOMEM;
    memcpy(q->host, r->host, n);
    snprintf(q->port, sizeof(q->port), "%u", (unsigned)r->port);
    q->r = r;
    if ((err = hp_work_submit(r->loop, &q->work, lookup_run, lookup_done)) != 0) {
        free(q);
        return err;
    }
    r->lookup = q;
    return 0;
}

/* The addresses of a numeric host (no lookup). @return 0 or a negative errno. */
static int numeric_addrs(struct hp_redis *r)
{
    struct addrinfo hints;
    char port[8];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", (unsigned)r->port);
    if (getaddrinfo(r->host, port, &hints, &r->addrs) != 0)
        return -EINVAL;
    r->next_addr = r->addrs;
    return 0;
}

/*
 * A connection attempt: the connect timeout covers the name lookup (on the
 * thread pool, for a host that is not an address) and the connect, which
 * tries each address in turn.
 */
static void conn_open(struct hp_redis *r)
{
    int err;

    if (r->reader)
        redisReaderFree(r->reader);
    r->reader = hp__redis_reader_new(&r->arena);
    if (r->reader == NULL) {
        schedule_reconnect(r);
        return;
    }
    r->state = ST_CONNECTING;
    r->out_len = r->out_off = 0;
    (void)hp_timer_start(&r->conn_timer, r->connect_timeout_ms, 0);
    for (struct sub *s = r->subs; s; s = s->next) {
        if (s->active && append_sub_cmd(r, "SUBSCRIBE", s) != 0) {
            conn_fail(r, -ENOMEM);
            return;
        }
    }
    if (r->numeric)
        err = numeric_addrs(r);
    else
        err = start_lookup(r);
    if (err == 0 && r->numeric)
        err = try_next(r);
    if (err)
        conn_fail(r, err);
}

/* The connect finished (writable or an error). @return 0 or a negative errno. */
static int connected(struct hp_redis *r, unsigned events, int status)
{
    int err = 0, on = 1;
    socklen_t len = sizeof(err);

    if (events & HP_ERROR)
        return status < 0 ? status : -ECONNREFUSED;
    if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    if (err)
        return -err;
    (void)setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (hp_io_start(&r->io, HP_READABLE) != 0)
        return -ENOMEM;
    hp_timer_stop(&r->conn_timer);
    freeaddrinfo(r->addrs);
    r->addrs = r->next_addr = NULL;
    r->state = ST_UP;
    r->backoff_ms = r->reconnect_min_ms;
    r->connects++;
    return 0;
}

/* ---- writing ---- */

/* Write what the socket takes; arm write interest for the rest. @return 0 or a negative errno. */
static int write_out(struct hp_redis *r)
{
    size_t left = r->out_len - r->out_off;
    ssize_t n;

    if (left == 0)
        return 0;
    n = hp_io_write(&r->io, r->out + r->out_off, left);
    if (n == -EAGAIN)
        n = 0;
    if (n < 0)
        return (int)n;
    if ((size_t)n == left) {
        r->out_len = r->out_off = 0;
        if (!r->write_armed)
            return 0;
        r->write_armed = false;
        return hp_io_start(&r->io, HP_READABLE);
    }
    r->out_off += (size_t)n;
    if (r->write_armed)
        return 0;
    r->write_armed = true;
    return hp_io_start(&r->io, HP_READABLE | HP_WRITABLE);
}

static void on_flush(struct hp_defer *d)
{
    struct hp_redis *r = d->data;

    r->flush_queued = false;
    if (r->state == ST_UP && write_out(r) != 0)
        conn_fail(r, -ECONNRESET);
}

/* ---- reading ---- */

static struct sub *find_sub(struct hp_redis *r, const redisReply *ch, bool active)
{
    for (struct sub *s = r->subs; s; s = s->next) {
        if (s->active == active && s->len == ch->len && memcmp(s->channel, ch->str, ch->len) == 0)
            return s;
    }
    return NULL;
}

static bool is_word(const redisReply *rep, const char *w, size_t n)
{
    return rep->type == REDIS_REPLY_STRING && rep->len == n && memcmp(rep->str, w, n) == 0;
}

/* A reply on a subscriber connection: a confirmation or a message. */
static void on_sub_reply(struct hp_redis *r, const redisReply *reply)
{
    redisReply **el;
    struct sub *s, **p;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    el = reply->element;
    if (el[1]->type != REDIS_REPLY_STRING)
        return;
    if (is_word(el[0], "message", 7) && el[2]->type == REDIS_REPLY_STRING) {
        if ((s = find_sub(r, el[1], true)) != NULL)
            s->cb(r, s->channel, s->len, el[2]->str, el[2]->len, s->arg);
    } else if (is_word(el[0], "subscribe", 9)) {
        if ((s = find_sub(r, el[1], true)) != NULL)
            s->confirmed = true;
    } else if (is_word(el[0], "unsubscribe", 11)) {
        if ((s = find_sub(r, el[1], false)) == NULL)
            return;
        for (p = &r->subs; *p != s; p = &(*p)->next)
            ;
        *p = s->next;
        free(s);
    }
}

/* Match one reply. @return 0, or the error to drop the connection with. */
static int dispatch(struct hp_redis *r, redisReply *reply)
{
    if (r->head)
        complete(r, reply->type == REDIS_REPLY_ERROR ? HP_ESERVER : 0, reply);
    else if (r->subs)
        on_sub_reply(r, reply);
    else
        return -EPROTO; /* an answer nobody asked for */
    return 0;
}

/*
 * Read what has arrived (a few buffers at most: the loop comes back for the
 * rest) and run the callbacks of every complete reply.
 * @return 0 or the error to fail the connection with.
 */
static int read_in(struct hp_redis *r)
{
    char buf[16384];
    ssize_t n;
    int reads = 0;

    do {
        n = hp_io_read(&r->io, buf, sizeof(buf));
        if (n == -EAGAIN)
            break;
        if (n < 0)
            return -ECONNRESET; /* HP_EOF too: the server closed the connection */
        if (redisReaderFeed(r->reader, buf, (size_t)n) != REDIS_OK)
            return -ENOMEM;
    } while ((size_t)n == sizeof(buf) && ++reads < 4);
    while (r->state == ST_UP) {
        void *reply = NULL;
        int err;

        if (redisReaderGetReply(r->reader, &reply) != REDIS_OK)
            return r->reader->err == REDIS_ERR_OOM ? -ENOMEM : -EPROTO;
        if (reply == NULL)
            break;
        err = dispatch(r, reply);
        hp__redis_reply_free(reply);
        if (err)
            return err;
    }
    return 0;
}

static void on_io(struct hp_io *io, unsigned events, int status)
{
    struct hp_redis *r = io->data;
    int err = 0;

    hold(r);
    if (r->state == ST_CONNECTING) {
        err = connected(r, events, status);
        if (err && r->next_addr) { /* refused here: the host's next address */
            hp_io_stop(&r->io);
            close(r->fd);
            r->fd = -1;
            err = try_next(r);
        } else if (err == 0 && write_out(r) != 0) {
            err = -ECONNRESET;
        }
        if (err)
            conn_fail(r, err);
        release(r);
        return;
    }
    if (events & (HP_READABLE | HP_HUP | HP_ERROR))
        err = read_in(r);
    if (err == 0 && r->state == ST_UP && (events & HP_WRITABLE))
        err = write_out(r) ? -ECONNRESET : 0;
    if (err)
        conn_fail(r, err);
    release(r);
}

/* ---- public API ---- */

static bool is_address(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
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
    r->numeric = is_address(host);
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
    hp_defer_init(loop, &r->flush, on_flush);
    r->flush.data = r;
    r->fd = -1;
    conn_open(r);
    *out = r;
    return 0;
}

void hp_redis_free(struct hp_redis *r)
{
    if (r == NULL || r->freeing)
        return;
    r->freeing = true;
    for (struct sub *s = r->subs; s; s = s->next)
        s->active = false;
    close_socket(r);
    hold(r);
    fail_all(r, -ECANCELED);
    release(r); /* frees now, or when the client's code running the callbacks is done */
}

/* Checks before a command; a record for it, or NULL with *err set. */
static struct cmd *cmd_new(struct hp_redis *r, hp_redis_cb *cb, int *err)
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
    if (r->state != ST_CONNECTING && r->state != ST_UP) {
        *err = -ENOTCONN; /* down, or failing the commands of a lost connection */
        return NULL;
    }
    if (r->pending >= r->max_pending) {
        *err = -ENOBUFS;
        return NULL;
    }
    c = r->free_cmds;
    if (c)
        r->free_cmds = c->next;
    else if ((c = malloc(sizeof(*c))) == NULL)
        *err = -ENOMEM;
    return c;
}

/* The command is in the output: queue its record as waiting. */
static void enqueue(struct hp_redis *r, struct cmd *c, hp_redis_cb *cb, void *arg)
{
    c->cb = cb;
    c->arg = arg;
    c->next = NULL;
    c->deadline = hp_loop_now(r->loop) + r->command_timeout_ms;
    if (r->tail)
        r->tail->next = c;
    else
        r->head = c;
    r->tail = c;
    r->pending++;
    if (!hp_timer_is_active(&r->cmd_timer))
        (void)hp_timer_start(&r->cmd_timer, r->command_timeout_ms, 0);
    want_flush(r);
}

int hp_redis_commandv(struct hp_redis *r, hp_redis_cb *cb, void *arg, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int err = 0, len;
    struct cmd *c;

    if (fmt == NULL)
        return -EINVAL;
    c = cmd_new(r, cb, &err);
    if (c == NULL)
        return err;
    len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0 || cmd == NULL)
        err = len == -1 ? -EINVAL : -ENOMEM; /* hiredis 1.x: -2 for no memory */
    else if (reserve(r, (size_t)len) != 0)
        err = -ENOMEM;
    if (err) {
        cmd_put(r, c);
        if (cmd)
            redisFreeCommand(cmd);
        return err;
    }
    memcpy(r->out + r->out_len, cmd, (size_t)len);
    r->out_len += (size_t)len;
    redisFreeCommand(cmd);
    enqueue(r, c, cb, arg);
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

int hp_redis_command_argv(struct hp_redis *r, hp_redis_cb *cb, void *arg, int argc,
                          const char *const *argv, const size_t *argvlen)
{
    int err = 0;
    struct cmd *c;

    if (argc <= 0 || argv == NULL)
        return -EINVAL;
    c = cmd_new(r, cb, &err);
    if (c == NULL)
        return err;
    err = append_argv(r, argc, argv, argvlen);
    if (err) {
        cmd_put(r, c);
        return err;
    }
    enqueue(r, c, cb, arg);
    return 0;
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
    s->len = n;
    s->cb = cb;
    s->arg = arg;
    s->active = true;
    if ((r->state == ST_CONNECTING || r->state == ST_UP) &&
        append_sub_cmd(r, "SUBSCRIBE", s) != 0) {
        free(s);
        return -ENOMEM;
    }
    s->next = r->subs;
    r->subs = s;
    want_flush(r);
    return 0;
}

int hp_redis_unsubscribe(struct hp_redis *r, const char *channel)
{
    struct sub **p, *s;

    for (p = &r->subs; (s = *p) != NULL; p = &s->next) {
        if (!s->active || strcmp(s->channel, channel) != 0)
            continue;
        s->active = false;
        s->confirmed = false;
        if ((r->state == ST_CONNECTING || r->state == ST_UP) &&
            append_sub_cmd(r, "UNSUBSCRIBE", s) == 0) {
            want_flush(r); /* freed when the server confirms */
        } else if (r->state == ST_DOWN || r->state == ST_CLOSED) {
            *p = s->next; /* no iteration over the list is running: only reads do */
            free(s);
        } /* else (no memory) freed when the connection ends */
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
