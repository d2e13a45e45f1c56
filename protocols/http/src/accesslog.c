/*
 * accesslog.c - access-log lines rendered into a buffer as requests end,
 * written in batches (see accesslog.h). The wall-clock time text is made at
 * most once per second, when the loop's cached time passes the next second
 * boundary, as the Date header is (date.c). Client fields are escaped
 * sixteen bytes at a time (put_field): most need no escaping and are copied
 * whole. A line's cost per request is measured by bench/http/accesslog.sh
 * (results in bench/http/accesslog.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <hellepoll/accesslog.h>
#include <hellepoll/signal.h>
#include <hellepoll/timer.h>

#include "internal.h"
#include "render.h"

#define MAX_BUFFER (16u << 20)
#define LINE_FIXED                                                                                \
    512 /* a line's bytes besides the client fields (under 300), with the overshoot of whole-word \
           copies */
#define ESCAPE_MAX   6    /* one client byte escaped: \xHH or \u00HH */
#define FIELD_LIMIT  4096 /* client bytes kept per field; the rest is cut ("...") */
/* The longest line: its fixed bytes and four client fields, each escaped and cut. */
#define LOG_LINE_MAX (LINE_FIXED + 4 * (FIELD_LIMIT * ESCAPE_MAX + 3))

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
    char clf_time[32];   /* "10/Oct/2026:13:55:36 +0000" (copied whole: see put_over) */
    char iso_time[32];   /* "2026-10-10T13:55:36Z" */
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

/* The peer's text (HP_HTTP_PEER_STRLEN bytes readable): an IPv4 one in one move. */
static char *put_peer(char *w, struct hp_str peer)
{
    if (peer.len < 16)
        return put_over(w, peer.ptr, peer.len, 16);
    return put_over(w, peer.ptr, peer.len, HP_HTTP_PEER_STRLEN);
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

/*
 * Escaping sixteen bytes at a time. Which bytes of a field need escaping is
 * found for sixteen at once (esc_mask16); where none does (the usual case:
 * a path, a user agent) they are copied as they are, and only where one
 * does byte by byte, through esc[]. A field shorter than sixteen bytes is
 * tested as the sixteen bytes of the head around it (all of the head is
 * readable); the bits of bytes outside the field are dropped.
 */
#ifdef __SSE2__
/* Bit i set iff byte i of the 16 at @p p needs escaping (esc[]). */
static inline unsigned esc_bits(__m128i x)
{
    /* Signed: bytes from 0x80 are negative, so "below 0x20" takes them too. */
    __m128i m = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                             _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));

    m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                     _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))));
    return (unsigned)_mm_movemask_epi8(m);
}

static inline unsigned esc_mask16(const char *p)
{
    return esc_bits(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/* esc_mask16(), and the 16 bytes copied to @p w (room for them is there). */
static inline unsigned esc_copy16(char *w, const char *p)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);

    _mm_storeu_si128((__m128i *)(void *)w, x);
    return esc_bits(x);
}
#else
static inline unsigned esc_mask16(const char *p)
{
    unsigned m = 0;

    for (unsigned i = 0; i < 16; i++)
        m |= (unsigned)esc[(unsigned char)p[i]] << i;
    return m;
}

static inline unsigned esc_copy16(char *w, const char *p)
{
    memcpy(w, p, 16);
    return esc_mask16(p);
}
#endif

/* One client byte escaped: \xHH in the text formats; JSON as RFC 8259 (see put_json). */
static char *put_escaped(char *w, unsigned char ch, bool json)
{
    static const char hex[] = "0123456789abcdef";

    if (json && (ch == '"' || ch == '\\')) {
        *w++ = '\\';
        *w++ = (char)ch;
        return w;
    }
    w = json ? PUT_S(w, "\\u00") : PUT_S(w, "\\x");
    *w++ = hex[ch >> 4];
    *w++ = hex[ch & 15];
    return w;
}

static char *put_bytes(char *w, const char *s, size_t n, bool json)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < n; i++) {
        if (!esc[p[i]])
            *w++ = (char)p[i];
        else
            w = put_escaped(w, p[i], json);
    }
    return w;
}

/* Copy @p n (at most 16) bytes, reading none outside them, without a call. */
static inline char *copy_small(char *w, const char *p, size_t n)
{
    if (n >= 8) {
        memcpy(w, p, 8);
        memcpy(w + n - 8, p + n - 8, 8);
    } else if (n >= 4) {
        memcpy(w, p, 4);
        memcpy(w + n - 4, p + n - 4, 4);
    } else if (n > 0) {
        w[0] = p[0];
        w[n / 2] = p[n / 2];
        w[n - 1] = p[n - 1];
    }
    return w + n;
}

/* A field longer than 16 bytes: whole blocks, then the block that ends it. */
static char *put_long(char *w, const char *p, size_t n, bool json)
{
    size_t i = 0, r;

    for (; i + 16 <= n; i += 16) {
        if (esc_mask16(p + i) == 0) {
            memcpy(w, p + i, 16);
            w += 16;
        } else {
            w = put_bytes(w, p + i, 16, json);
        }
    }
    if ((r = n - i) == 0)
        return w;
    if (esc_mask16(p + n - 16) >> (16 - r) == 0)
        return copy_small(w, p + i, r);
    return put_bytes(w, p + i, r, json);
}

/*
 * Client bytes @p s, inside the head [@p lo, @p hi), escaped for a text
 * format or (@p json) as the inside of a JSON string; cut at FIELD_LIMIT.
 * A short field is tested (and copied) as the 16 head bytes from its start,
 * or, near the head's end, as the 16 that end with it.
 */
static inline char *put_field(char *w, struct hp_str s, const char *lo, const char *hi, bool json)
{
    size_t n = s.len > FIELD_LIMIT ? FIELD_LIMIT : s.len;
    const char *p = s.ptr;

    if (n == 0)
        return w;
    if (n > 16)
        w = put_long(w, p, n, json);
    else if (hi - p >= 16 && (esc_copy16(w, p) & ((1u << n) - 1)) == 0)
        w += n;
    else if (p - lo >= (ptrdiff_t)(16 - n) && hi - p < 16 &&
             esc_mask16(p + n - 16) >> (16 - n) == 0)
        w = copy_small(w, p, n);
    else
        w = put_bytes(w, p, n, json);
    if (n < s.len)
        w = PUT_S(w, "...");
    return w;
}

/*
 * The method: a token (the parser takes nothing else), so nothing in it
 * needs escaping in any format.
 */
static inline char *put_method(char *w, struct hp_str m, const char *hi)
{
    if (m.len > 16)
        return put_field(w, m, m.ptr, hi, false);
    if (hi - m.ptr >= 16) {
        memcpy(w, m.ptr, 16);
        return w + m.len;
    }
    return copy_small(w, m.ptr, m.len);
}

/* Client bytes for a text format: \xHH for esc[] bytes. */
static char *put_text(char *w, struct hp_str s, const char *lo, const char *hi)
{
    return put_field(w, s, lo, hi, false);
}

/* Client bytes as the inside of a JSON string ('"' and '\' as \" and \\, the rest as \u00HH). */
static char *put_json(char *w, struct hp_str s, const char *lo, const char *hi)
{
    return put_field(w, s, lo, hi, true);
}

static char *put_u64(char *w, uint64_t v)
{
    if (v < 10) { /* the usual duration */
        *w = (char)('0' + v);
        return w + 1;
    }
    put_dec(&w, v);
    return w;
}

/* A status: three digits, but for the 0 of a request that never got one. */
static char *put_status(char *w, int status)
{
    unsigned v = (unsigned)status;

    if (v < 100 || v > 999)
        return put_u64(w, v);
    w[0] = (char)('0' + v / 100);
    memcpy(w + 1, dec_pairs + v % 100 * 2, 2);
    return w + 3;
}

/* What a line shows of a request, gathered once. */
struct line {
    struct hp_str peer, method, target, referer, agent;
    const char *lo, *hi; /* the head: all readable, around the client fields */
};

/* The peer's text: the server's per-descriptor cache first (a keep-alive connection's later
 * requests). */
static struct hp_str line_peer(struct req_blk *rq)
{
    static const char dash[HP_HTTP_PEER_STRLEN] = "-";
    const struct hp_http_server *srv = rq->req.server;
    const char *pt;
    size_t len;

    if (rq->peer_err == 1 && rq->conn != NULL) {
        size_t fd = (size_t)hp_stream_fd(&rq->conn->stream);

        if (fd < srv->npeers && srv->peers[fd].len != 0)
            return (struct hp_str){srv->peers[fd].text, srv->peers[fd].len};
    }
    if ((pt = hp__http_peer_text(rq, &len)) == NULL)
        return (struct hp_str){dash, 1};
    return (struct hp_str){pt, len};
}

/* The request line's and the head's fields; empty for a request whose head never parsed. */
static void line_fields(struct line *l, const struct req_blk *rq)
{
    const struct hp__http_parser *ps = &rq->parser;
    const struct hp__http_field *f = rq->fields, *end = f + ps->nfields;
    const char *base = rq->base;

    l->lo = base;
    l->hi = base + rq->head_len;
    l->method = (struct hp_str){base + ps->method_off, ps->method_len};
    l->target = (struct hp_str){base + ps->target_off, ps->target_len};
    /* One pass for both fields; the first of each wins. */
    for (; f < end; f++) {
        unsigned k = (unsigned)f->name_len - 7u; /* 0: "referer"'s length, 3: "user-agent"'s */

        if (k > 3)
            continue; /* most fields: one test */
        if (k == 3 && l->agent.len == 0 && name_is(base + f->name_off, 10, "user-agent"))
            l->agent = (struct hp_str){base + f->value_off, f->value_len};
        else if (k == 0 && l->referer.len == 0 && name_is(base + f->name_off, 7, "referer"))
            l->referer = (struct hp_str){base + f->value_off, f->value_len};
    }
}

static char *put_json_line(struct hp_accesslog *log, char *w, const struct line *l,
                           const struct hp_http_req *req, const struct hp_http_log_entry *e)
{
    w = PUT_S(w, "{\"time\":\"");
    w = put_over(w, log->iso_time, log->iso_len, sizeof(log->iso_time));
    w = PUT_S(w, "\",\"peer\":\"");
    w = put_peer(w, l->peer);
    w = PUT_S(w, "\",\"method\":");
    if (e->parsed) {
        *w++ = '"';
        w = put_method(w, l->method, l->hi);
        w = PUT_S(w, "\",\"target\":\"");
        w = put_json(w, l->target, l->lo, l->hi);
        w = PUT_S(w, "\",\"version\":\"HTTP/1.");
        *w++ = (char)('0' + req->version_minor);
        w = PUT_S(w, "\",\"status\":");
    } else {
        w = PUT_S(w, "null,\"target\":null,\"version\":null,\"status\":");
    }
    w = put_status(w, e->status);
    w = PUT_S(w, ",\"bytes\":");
    w = put_u64(w, e->body_bytes);
    w = PUT_S(w, ",\"duration_ms\":");
    w = put_u64(w, e->end_ms - e->start_ms);
    w = PUT_S(w, ",\"referer\":\"");
    w = put_json(w, l->referer, l->lo, l->hi);
    w = PUT_S(w, "\",\"user_agent\":\"");
    w = put_json(w, l->agent, l->lo, l->hi);
    return PUT_S(w, "\"}\n");
}

static char *put_text_line(struct hp_accesslog *log, char *w, const struct line *l,
                           const struct hp_http_req *req, const struct hp_http_log_entry *e)
{
    w = put_peer(w, l->peer);
    w = PUT_S(w, " - - [");
    w = put_over(w, log->clf_time, log->clf_len, sizeof(log->clf_time));
    w = PUT_S(w, "] \"");
    if (e->parsed) {
        w = put_method(w, l->method, l->hi);
        *w++ = ' ';
        w = put_text(w, l->target, l->lo, l->hi);
        w = PUT_S(w, " HTTP/1.");
        *w++ = (char)('0' + req->version_minor);
    } else {
        *w++ = '-';
    }
    w = PUT_S(w, "\" ");
    w = put_status(w, e->status);
    *w++ = ' ';
    if (e->body_bytes == 0)
        *w++ = '-';
    else
        w = put_u64(w, e->body_bytes);
    if (log->format == HP_ACCESSLOG_COMBINED) {
        w = PUT_S(w, " \"");
        if (l->referer.len == 0)
            *w++ = '-';
        w = put_text(w, l->referer, l->lo, l->hi);
        w = PUT_S(w, "\" \"");
        if (l->agent.len == 0)
            *w++ = '-';
        w = put_text(w, l->agent, l->lo, l->hi);
        *w++ = '"';
    }
    *w++ = '\n';
    return w;
}

void hp_accesslog_cb(void *ctx, const struct hp_http_req *req, const struct hp_http_log_entry *e)
{
    struct hp_accesslog *log = ctx;
    struct req_blk *rq = (struct req_blk *)(uintptr_t)req; /* the peer is fetched once */
    struct line l = {.peer = line_peer(rq)};
    char *w;

    if (e->parsed)
        line_fields(&l, rq);
    if (log->cap - log->len < LOG_LINE_MAX)
        (void)hp_accesslog_flush(log); /* the buffer holds a few of the longest lines */
    if (e->end_ms >= log->clock_next)  /* e->end_ms is the loop's time now */
        refresh_clock(log);
    w = log->buf + log->len;
    if (log->format == HP_ACCESSLOG_JSON)
        w = put_json_line(log, w, &l, req, e);
    else
        w = put_text_line(log, w, &l, req, e);
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
    if (log->cap < 4 * LOG_LINE_MAX)
        log->cap = 4 * LOG_LINE_MAX; /* a few longest lines */
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
