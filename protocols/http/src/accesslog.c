/*
 * accesslog.c - access-log lines rendered into a buffer as requests end,
 * written in batches (see accesslog.h). The wall-clock time text is made at
 * most once per second, when the loop's cached time passes the next second
 * boundary, as the Date header is (date.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hellepoll/accesslog.h>
#include <hellepoll/signal.h>
#include <hellepoll/timer.h>

#include "internal.h"
#include "render.h"

#define MAX_BUFFER  (16u << 20)
#define LINE_FIXED  256  /* a line's bytes besides the escaped client fields */
#define ESCAPE_MAX  6    /* one client byte escaped: \xHH or \u00HH */
#define FIELD_LIMIT 4096 /* client bytes kept per field; the rest is cut ("...") */

struct hp_accesslog {
    struct hp_loop *loop;
    enum hp_accesslog_format format;
    hp_accesslog_sink *sink;
    void *sink_ctx;
    char *path;
    int fd;
    char *buf;
    size_t len, cap;
    uint32_t flush_ms;
    uint64_t dropped, pending_lines;
    struct hp_timer timer;
    struct hp_signal hup;
    bool hup_on;
    bool timer_on;       /* the flush timer runs (a line waits) */
    uint64_t clock_next; /* loop time at which the time text is stale */
    char clf_time[64];   /* "10/Oct/2026:13:55:36 +0000" */
    char iso_time[64];   /* "2026-10-10T13:55:36Z" */
    size_t clf_len, iso_len;
};

/* ---- writing batches ---------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int hp_accesslog_flush(struct hp_accesslog *log)
{
    int err = 0;

    hp_timer_stop(&log->timer);
    log->timer_on = false;
    if (log->len == 0)
        return 0;
    if (log->sink != NULL)
        log->sink(log->sink_ctx, log->buf, log->len);
    else if ((err = write_all(log->fd, log->buf, log->len)) != 0)
        log->dropped += log->pending_lines;
    log->len = 0;
    log->pending_lines = 0;
    return err;
}

static void on_timer(struct hp_timer *t)
{
    struct hp_accesslog *log = hp_container_of(t, struct hp_accesslog, timer);

    (void)hp_accesslog_flush(log);
}

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    return fd < 0 ? -errno : fd;
}

int hp_accesslog_reopen(struct hp_accesslog *log)
{
    int fd;

    (void)hp_accesslog_flush(log);
    if (log->path == NULL)
        return 0;
    if ((fd = open_file(log->path)) < 0)
        return fd;
    close(log->fd);
    log->fd = fd;
    return 0;
}

static void on_hup(struct hp_signal *s, int signum)
{
    (void)signum;
    (void)hp_accesslog_reopen(hp_container_of(s, struct hp_accesslog, hup));
}

/* ---- rendering ---------------------------------------------------------- */

static void refresh_clock(struct hp_accesslog *log)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (gmtime_r(&ts.tv_sec, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    log->clf_len =
        (size_t)snprintf(log->clf_time, sizeof(log->clf_time), "%02d/%s/%04d:%02d:%02d:%02d +0000",
                         tm.tm_mday & 63, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
                         tm.tm_hour & 63, tm.tm_min & 63, tm.tm_sec & 63);
    log->iso_len =
        (size_t)snprintf(log->iso_time, sizeof(log->iso_time), "%04d-%02d-%02dT%02d:%02d:%02dZ",
                         (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) & 15, tm.tm_mday & 63,
                         tm.tm_hour & 63, tm.tm_min & 63, tm.tm_sec & 63);
    log->clock_next = hp_loop_now(log->loop) + 1000 - (uint64_t)(ts.tv_nsec / 1000000);
}

/*
 * Is the field name at @p p (of length 7 or 10) "referer" or "user-agent"?
 * Words at a time: the names hold letters and '-', which OR-ing 0x20 maps to
 * the lower-case bytes, and no other token character maps to those.
 */
static bool name_is(const char *p, size_t len, const char *lower)
{
    uint64_t x, y;
    uint32_t a, b;

    if (len == 7) { /* bytes 0..3 and 3..6 */
        memcpy(&a, p, 4);
        memcpy(&b, lower, 4);
        if ((a | 0x20202020u) != b)
            return false;
        memcpy(&a, p + 3, 4);
        memcpy(&b, lower + 3, 4);
        return (a | 0x20202020u) == b;
    }
    memcpy(&x, p, 8);
    memcpy(&y, lower, 8);
    if ((x | 0x2020202020202020u) != y)
        return false;
    memcpy(&a, p + 6, 4);
    memcpy(&b, lower + 6, 4);
    return (a | 0x20202020u) == b;
}

static char *put(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

#define PUT_S(w, s) put((w), (s), sizeof(s) - 1)

/*
 * Copy @p n bytes as a fixed @p over bytes (a compile-time constant: inline
 * moves, no call): @p s has that many readable, and a line's room
 * (LINE_FIXED) covers the overshoot.
 */
static char *put_over(char *w, const char *s, size_t n, size_t over)
{
    memcpy(w, s, over);
    return w + n;
}

/*
 * Client bytes written escaped (1): CTLs, DEL and up, '"' and '\'. The text
 * formats write them as \xHH; JSON writes '"' and '\' as \" and \\, the
 * rest as \u00HH.
 */
static const uint8_t esc[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Client bytes for a text format. */
static char *put_text(char *w, struct hp_str s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = s.len > FIELD_LIMIT ? FIELD_LIMIT : s.len;
    const unsigned char *p = (const unsigned char *)s.ptr;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];

        if (!esc[ch]) {
            *w++ = (char)ch;
            continue;
        }
        *w++ = '\\';
        *w++ = 'x';
        *w++ = hex[ch >> 4];
        *w++ = hex[ch & 15];
    }
    if (n < s.len)
        w = PUT_S(w, "...");
    return w;
}

/* Client bytes as the inside of a JSON string (bytes from 0x80 as \u00HH). */
static char *put_json(char *w, struct hp_str s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = s.len > FIELD_LIMIT ? FIELD_LIMIT : s.len;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];

        if (!esc[ch]) {
            *w++ = (char)ch;
        } else if (ch == '"' || ch == '\\') {
            *w++ = '\\';
            *w++ = (char)ch;
        } else {
            w = PUT_S(w, "\\u00");
            *w++ = hex[ch >> 4];
            *w++ = hex[ch & 15];
        }
    }
    if (n < s.len)
        w = PUT_S(w, "...");
    return w;
}

static char *put_u64(char *w, uint64_t v)
{
    put_dec(&w, v);
    return w;
}

static size_t field_room(struct hp_str s)
{
    return (s.len > FIELD_LIMIT ? FIELD_LIMIT : s.len) * ESCAPE_MAX + 3;
}

void hp_accesslog_cb(void *ctx, const struct hp_http_req *req, const struct hp_http_log_entry *e)
{
    struct hp_accesslog *log = ctx;
    struct hp_str referer = HP_STR_LIT(""), agent = HP_STR_LIT(""), method = HP_STR_LIT("");
    struct hp_str target = HP_STR_LIT("");
    struct req_blk *rq = (struct req_blk *)(uintptr_t)req; /* the peer is fetched once */
    static const char dash[HP_HTTP_PEER_STRLEN] = "-";
    struct hp_str peer = {dash, 1};
    const char *pt;
    size_t plen;
    size_t need;
    char *w;

    if ((pt = hp__http_peer_text(rq, &plen)) != NULL)
        peer = (struct hp_str){pt, plen};
    if (e->parsed) {
        method = req->method;
        target = req->target;
        /* One pass for both fields; the first of each wins. */
        for (uint32_t i = 0; i < rq->parser.nfields; i++) {
            const struct hp__http_field *f = &rq->fields[i];
            const char *name = rq->base + f->name_off;

            if (f->name_len == 7 && referer.len == 0 && name_is(name, 7, "referer"))
                referer = (struct hp_str){rq->base + f->value_off, f->value_len};
            else if (f->name_len == 10 && agent.len == 0 && name_is(name, 10, "user-agent"))
                agent = (struct hp_str){rq->base + f->value_off, f->value_len};
        }
    }
    need = LINE_FIXED + field_room(method) + field_room(target) + field_room(referer) +
           field_room(agent);
    if (log->cap - log->len < need)
        (void)hp_accesslog_flush(log); /* the buffer holds a few of the longest lines */
    if (hp_loop_now(log->loop) >= log->clock_next)
        refresh_clock(log);
    w = log->buf + log->len;
    if (log->format == HP_ACCESSLOG_JSON) {
        w = PUT_S(w, "{\"time\":\"");
        w = put_over(w, log->iso_time, log->iso_len, sizeof(log->iso_time));
        w = PUT_S(w, "\",\"peer\":\"");
        w = put_over(w, peer.ptr, peer.len, HP_HTTP_PEER_STRLEN);
        w = PUT_S(w, "\",\"method\":");
        if (e->parsed) {
            *w++ = '"';
            w = put_json(w, method);
            w = PUT_S(w, "\",\"target\":\"");
            w = put_json(w, target);
            w = PUT_S(w, "\",\"version\":\"HTTP/1.");
            *w++ = (char)('0' + req->version_minor);
            *w++ = '"';
        } else {
            w = PUT_S(w, "null,\"target\":null,\"version\":null");
        }
        w = PUT_S(w, ",\"status\":");
        w = put_u64(w, (uint64_t)e->status);
        w = PUT_S(w, ",\"bytes\":");
        w = put_u64(w, e->body_bytes);
        w = PUT_S(w, ",\"duration_ms\":");
        w = put_u64(w, e->end_ms - e->start_ms);
        w = PUT_S(w, ",\"referer\":\"");
        w = put_json(w, referer);
        w = PUT_S(w, "\",\"user_agent\":\"");
        w = put_json(w, agent);
        w = PUT_S(w, "\"}\n");
    } else {
        w = put_over(w, peer.ptr, peer.len, HP_HTTP_PEER_STRLEN);
        w = PUT_S(w, " - - [");
        w = put_over(w, log->clf_time, log->clf_len, sizeof(log->clf_time));
        w = PUT_S(w, "] \"");
        if (e->parsed) {
            w = put_text(w, method);
            *w++ = ' ';
            w = put_text(w, target);
            w = PUT_S(w, " HTTP/1.");
            *w++ = (char)('0' + req->version_minor);
        } else {
            *w++ = '-';
        }
        w = PUT_S(w, "\" ");
        w = put_u64(w, (uint64_t)e->status);
        *w++ = ' ';
        if (e->body_bytes == 0)
            *w++ = '-';
        else
            w = put_u64(w, e->body_bytes);
        if (log->format == HP_ACCESSLOG_COMBINED) {
            w = PUT_S(w, " \"");
            if (referer.len == 0)
                *w++ = '-';
            w = put_text(w, referer);
            w = PUT_S(w, "\" \"");
            if (agent.len == 0)
                *w++ = '-';
            w = put_text(w, agent);
            *w++ = '"';
        }
        *w++ = '\n';
    }
    log->len = (size_t)(w - log->buf);
    log->pending_lines++;
    if (!log->timer_on) {
        log->timer_on = true;
        (void)hp_timer_start(&log->timer, log->flush_ms, 0);
    }
}

/* ---- the log ------------------------------------------------------------ */

int hp_accesslog_new(struct hp_accesslog **out, struct hp_loop *loop,
                     const struct hp_accesslog_opts *opts)
{
    struct hp_accesslog *log;
    int err;

    if (opts == NULL || (opts->path == NULL && opts->sink == NULL) || opts->buffer > MAX_BUFFER ||
        opts->format > HP_ACCESSLOG_JSON)
        return -EINVAL;
    if ((log = calloc(1, sizeof(*log))) == NULL)
        return -ENOMEM;
    log->loop = loop;
    log->format = opts->format;
    log->sink = opts->path == NULL ? opts->sink : NULL;
    log->sink_ctx = opts->sink_ctx;
    log->fd = -1;
    log->cap = opts->buffer != 0 ? opts->buffer : 64u << 10;
    if (log->cap < 4 * (LINE_FIXED + 4 * (FIELD_LIMIT * ESCAPE_MAX + 3)))
        log->cap = 4 * (LINE_FIXED + 4 * (FIELD_LIMIT * ESCAPE_MAX + 3)); /* a few longest lines */
    log->flush_ms = opts->flush_ms != 0 ? opts->flush_ms : 1000;
    hp_timer_init(loop, &log->timer, on_timer);
    hp_signal_init(loop, &log->hup, on_hup);
    err = -ENOMEM;
    if ((log->buf = malloc(log->cap)) == NULL)
        goto fail;
    if (opts->path != NULL) {
        if ((log->path = strdup(opts->path)) == NULL)
            goto fail;
        if ((log->fd = open_file(opts->path)) < 0) {
            err = log->fd;
            goto fail;
        }
    }
    if (opts->reopen_on_sighup) {
        if ((err = hp_signal_start(&log->hup, SIGHUP)) != 0)
            goto fail;
        log->hup_on = true;
    }
    *out = log;
    return 0;

fail:
    if (log->fd >= 0)
        close(log->fd);
    free(log->path);
    free(log->buf);
    free(log);
    return err;
}

void hp_accesslog_attach(struct hp_accesslog *log, struct hp_http_server_opts *srv_opts)
{
    srv_opts->on_log = hp_accesslog_cb;
    srv_opts->log_ctx = log;
}

uint64_t hp_accesslog_dropped(const struct hp_accesslog *log)
{
    return log->dropped;
}

void hp_accesslog_free(struct hp_accesslog *log)
{
    (void)hp_accesslog_flush(log);
    if (log->hup_on)
        hp_signal_stop(&log->hup);
    if (log->fd >= 0)
        close(log->fd);
    free(log->path);
    free(log->buf);
    free(log);
}
