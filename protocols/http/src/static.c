/*
 * static.c - the static-file handler (see static.h): request path to cache
 * entry (static_cache.c), then RFC 9110's rules (static_rules.c) to a
 * response.
 *
 * The hot path - a fresh cache entry for a file held in memory - replies
 * from inside hp_static_handle() with no allocation and no system call of
 * its own. Everything else takes a struct hp__sreq from the request's arena:
 * a request waiting for a lookup, or a body streamed from a descriptor.
 * Streaming reads what the page cache holds on the loop (preadv2 with
 * RWF_NOWAIT) and sends the rest of the reading to the pool; it writes
 * until HIGH_WATER bytes are queued, then waits for the connection's output
 * to drain to LOW_WATER (hp_http_req_on_drain), and yields to other
 * connections after YIELD bytes in one go. A file that ends early (it
 * shrank) cuts the response: the connection closes after the bytes that
 * were true, never padding with anything else.
 *
 * A body of opts.sendfile_min bytes or more (whole file or one range) goes
 * with hp_http_reply_file() instead: the HTTP module queues the head and
 * the descriptor range, the kernel sends from the page cache. The file
 * keeps a reference (and counts in in_flight) until the module's callback
 * says the descriptor is no longer used, so a revalidation that replaces
 * the cached version never closes a descriptor still being sent. Only
 * multipart/byteranges bodies still take the copying path (pump()).
 */
#if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#define _DARWIN_C_SOURCE /* O_DIRECTORY and st_mtimespec are hidden under plain POSIX */
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <hellepoll/error.h>
#include <hellepoll/fs.h>
#include <hellepoll/router.h>

#include "static_internal.h"

#define HIGH_WATER (256u * 1024u)
#define LOW_WATER  (64u * 1024u)
#define YIELD      (1024u * 1024u)
#define PATH_CAP   4096

/* The request headers the handler looks at, found in one pass. */
struct conds {
    struct hp_str im, inm, ims, ius, range, ifrange, ae;
    bool has_im, has_inm, has_ims, has_ius, has_range, has_ifrange, has_ae;
};

static bool name_is(struct hp_str n, const char *lit, size_t len)
{
    return n.len == len && strncasecmp(n.ptr, lit, len) == 0;
}

static void scan_headers(const struct hp_http_req *req, struct conds *c)
{
    size_t n = hp_http_req_header_count(req);

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        struct hp_str name, v;

        hp_http_req_header_at(req, i, &name, &v);
        switch (name.len) {
        case 5:
            if (name_is(name, "range", 5))
                c->range = v, c->has_range = true;
            break;
        case 8:
            if (name_is(name, "if-match", 8))
                c->im = v, c->has_im = true;
            else if (name_is(name, "if-range", 8))
                c->ifrange = v, c->has_ifrange = true;
            break;
        case 13:
            if (name_is(name, "if-none-match", 13))
                c->inm = v, c->has_inm = true;
            break;
        case 15:
            if (name_is(name, "accept-encoding", 15))
                c->ae = v, c->has_ae = true;
            break;
        case 17:
            if (name_is(name, "if-modified-since", 17))
                c->ims = v, c->has_ims = true;
            break;
        case 19:
            if (name_is(name, "if-unmodified-since", 19))
                c->ius = v, c->has_ius = true;
            break;
        default:
            break;
        }
    }
}

/* Status for a lookup's errno. */
static int status_of(int err)
{
    switch (err) {
    case -ENOENT:
    case -ENOTDIR:
    case -ENAMETOOLONG:
        return 404;
    case -EACCES:
    case -EPERM:
    case -EXDEV:
    case -ELOOP:
        return 403;
    case -ENOBUFS:
    case -EAGAIN:
    case -EMFILE:
    case -ENFILE:
    case -ENOMEM:
        return 503;
    default:
        return 500;
    }
}

/* A short text/plain error; finishes the request. */
static void reply_status(struct hp_http_req *req, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, hp_http_status_reason(status));

    if (status == 405)
        hp_http_add_header(req, HP_STR_LIT("Allow"), HP_STR_LIT("GET, HEAD"));
    if (hp_http_reply(req, status, HP_STR_LIT("text/plain; charset=utf-8"), body, (size_t)n) ==
        -EINVAL)
        hp_http_req_release(req);
}

/* ---- streaming ---------------------------------------------------------- */

static struct hp__sreq *sreq_new(struct hp_static *st, struct hp_http_req *req)
{
    struct hp__sreq *s = hp_http_req_alloc(req, sizeof(*s));

    if (!s)
        return NULL;
    memset(s, 0, sizeof(*s));
    s->st = st;
    s->req = req;
    req->data = s;
    st->in_flight++;
    return s;
}

/* The request is finished (or about to be): drop what the sreq holds. */
static void sreq_done(struct hp__sreq *s)
{
    hp__sfile_release(s->st, s->file);
    s->file = NULL;
    s->st->in_flight--;
}

static void pump(struct hp__sreq *s);
static void zero_copy(struct hp__sreq *s);

static void on_drain(struct hp_http_req *req, int status)
{
    struct hp__sreq *s = req->data;

    if (status == 0) {
        if (s->zero_copy)
            zero_copy(s);
        else
            pump(s);
    } else if (status != -ECANCELED) {
        sreq_done(s);
        hp_http_req_release(req);
    }
}

static void on_read(struct hp_fs_req *fs)
{
    struct hp__sreq *s = fs->data;

    s->reading = false;
    s->st->stats.pool_reads++;
    if (fs->result <= 0 || hp_http_req_closed(s->req)) {
        /* Error, the file shrank, or the client left: cut (or drop) the response. */
        sreq_done(s);
        hp_http_req_release(s->req);
        return;
    }
    s->have = (size_t)fs->result;
    pump(s);
}

/* Wait for the output to drain; false if the request is closed (then finished). */
static bool wait_drain(struct hp__sreq *s, size_t low)
{
    if (hp_http_req_on_drain(s->req, low, on_drain) == 0)
        return true;
    sreq_done(s);
    hp_http_req_release(s->req);
    return false;
}

static size_t part_head(const struct hp__sreq *s, unsigned i, char *out, size_t cap)
{
    int n = snprintf(
        out, cap, "\r\n--%s\r\nContent-Type: %.*s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
        s->st->boundary, (int)s->ctype.len, s->ctype.ptr, (unsigned long long)s->ranges[i].first,
        (unsigned long long)s->ranges[i].last, (unsigned long long)s->file->size);

    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Write the next piece (a part head, the trailer, file bytes) until blocked or done. */
static void pump(struct hp__sreq *s)
{
    struct hp_http_req *req = s->req;
    struct hp__sfile *f = s->file;
    size_t sent = 0;
    int err;

    for (;;) {
        if (s->have == 0 && s->off == s->end) {
            char head[256];
            size_t n;

            if (!s->multipart || s->part > s->nparts) {
                sreq_done(s);
                hp_http_stream_end(req);
                return;
            }
            if (s->part < s->nparts)
                n = part_head(s, s->part, head, sizeof(head));
            else
                n = (size_t)snprintf(head, sizeof(head), "\r\n--%s--\r\n", s->st->boundary);
            err = hp_http_stream_write(req, head, n);
            if (err == -ENOBUFS) {
                wait_drain(s, LOW_WATER);
                return;
            }
            if (err) {
                sreq_done(s);
                hp_http_req_release(req);
                return;
            }
            if (s->part < s->nparts) {
                s->off = s->ranges[s->part].first;
                s->end = s->ranges[s->part].last + 1;
            }
            s->part++;
            continue;
        }
        if (hp_http_req_queued(req) >= HIGH_WATER) {
            wait_drain(s, LOW_WATER);
            return;
        }
        if (sent >= YIELD) {
            wait_drain(s, HIGH_WATER); /* runs next iteration: others get their turn */
            return;
        }
        const void *data;
        size_t len;

        if (f->mem) {
            data = f->mem + s->off;
            len =
                s->end - s->off < s->st->opts.chunk ? (size_t)(s->end - s->off) : s->st->opts.chunk;
        } else {
            if (s->have == 0) {
                size_t want = s->end - s->off < s->st->opts.chunk ? (size_t)(s->end - s->off)
                                                                  : s->st->opts.chunk;
                ssize_t n = hp_fs_pread_nowait(f->fd, s->buf, want, (int64_t)s->off);

                if (n == -EAGAIN) {
                    s->fs.data = s;
                    if (hp_fs_pread(s->st->loop, &s->fs, f->fd, s->buf, want, (int64_t)s->off,
                                    on_read) == 0) {
                        s->reading = true;
                        return;
                    }
                    n = -EIO;
                }
                if (n <= 0) { /* shrank under us, or a read error: cut */
                    sreq_done(s);
                    hp_http_req_release(req);
                    return;
                }
                s->have = (size_t)n;
            }
            data = s->buf;
            len = s->have;
        }
        err = hp_http_stream_write(req, data, len);
        if (err == -ENOBUFS) {
            wait_drain(s, LOW_WATER);
            return;
        }
        if (err) {
            sreq_done(s);
            hp_http_req_release(req);
            return;
        }
        s->off += len;
        s->have = 0;
        sent += len;
    }
}

/* The HTTP module is done with a file body: drop the reference it held. */
static void on_file_sent(void *arg, int status)
{
    struct hp__sfile *f = arg;
    struct hp_static *st = f->owner;

    (void)status; /* a failure has cut the connection already: nothing else to do */
    hp__sfile_release(st, f);
    st->in_flight--;
}

/*
 * Queue [off, off + len) of @p f by descriptor. 0: queued (or answered);
 * -ENOBUFS: the connection's output is full, nothing changed.
 */
static int try_reply_file(struct hp_static *st, struct hp_http_req *req, struct hp__sfile *f,
                          int status, struct hp_str ct, uint64_t off, uint64_t len)
{
    int err;

    f->refs++;
    st->in_flight++;
    err = hp_http_reply_file(req, status, ct, f->fd, (int64_t)off, (size_t)len, on_file_sent, f);
    if (err == 0) {
        st->stats.sendfiles++;
        return 0;
    }
    hp__sfile_release(st, f); /* refused: on_file_sent never runs */
    st->in_flight--;
    if (err == -ENOBUFS)
        return err;
    if (err == -EINVAL)
        hp_http_req_release(req);
    return 0; /* otherwise the request is finished (closed, or out of memory) */
}

/* A sendfile reply that waited for the output to drain: try again. */
static void zero_copy(struct hp__sreq *s)
{
    struct hp_http_req *req = s->req;

    if (try_reply_file(s->st, req, s->file, s->status, s->ctype, s->off, s->end - s->off) ==
        -ENOBUFS) {
        wait_drain(s, LOW_WATER);
        return;
    }
    sreq_done(s);
}

/*
 * Send [first, last] of @p f (or the parts in @p ranges) with @p status:
 * straight from memory when it can, otherwise as a stream.
 */
static void send_body(struct hp_static *st, struct hp_http_req *req, struct hp__centry *e,
                      struct hp__sfile *f, int status, const struct hp__range *ranges,
                      unsigned nranges)
{
    bool head = req->method_id == HP_HTTP_HEAD;
    uint64_t first = nranges ? ranges[0].first : 0, last = nranges ? ranges[0].last : f->size - 1;
    uint64_t len = f->size == 0 && !nranges ? 0 : last - first + 1;
    struct hp__sreq *s;
    char ctbuf[96];
    struct hp_str ct = e->ctype;
    int err;

    if (nranges <= 1 && !head && f->fd >= 0 && len >= st->opts.sendfile_min && len <= SIZE_MAX) {
        if (try_reply_file(st, req, f, status, ct, first, len) != -ENOBUFS)
            return;
        /* Earlier responses fill the connection's output: wait for it to drain. */
        if (!(s = sreq_new(st, req))) {
            reply_status(req, 503);
            return;
        }
        s->file = f;
        f->refs++;
        s->ctype = ct;
        s->status = status;
        s->off = first;
        s->end = first + len;
        s->zero_copy = true;
        wait_drain(s, LOW_WATER);
        return;
    }
    if (nranges <= 1 && (f->mem || head)) {
        hp_http_reply(req, status, ct, f->mem ? f->mem + first : NULL, (size_t)len);
        return;
    }
    if (!(s = sreq_new(st, req))) {
        reply_status(req, 503);
        return;
    }
    s->file = f;
    f->refs++;
    s->ctype = e->ctype;
    if (nranges > 1) {
        char tmp[256];

        s->multipart = true;
        s->nparts = nranges;
        if (!(s->ranges = hp_http_req_alloc(req, nranges * sizeof(*ranges)))) {
            sreq_done(s);
            reply_status(req, 503);
            return;
        }
        memcpy(s->ranges, ranges, nranges * sizeof(*ranges));
        len = 0;
        for (unsigned i = 0; i < nranges; i++)
            len += part_head(s, i, tmp, sizeof(tmp)) + ranges[i].last - ranges[i].first + 1;
        len += (uint64_t)snprintf(tmp, sizeof(tmp), "\r\n--%s--\r\n", st->boundary);
        snprintf(ctbuf, sizeof(ctbuf), "multipart/byteranges; boundary=%s", st->boundary);
        ct = hp_str_make(ctbuf);
        s->off = s->end = 0;
    } else {
        s->off = first;
        s->end = first + len;
    }
    if (!f->mem && !(s->buf = hp_http_req_alloc(req, st->opts.chunk))) {
        sreq_done(s);
        reply_status(req, 503);
        return;
    }
    if ((err = hp_http_stream_start(req, status, ct, (int64_t)len)) != 0) {
        sreq_done(s);
        if (err == -EINVAL)
            hp_http_req_release(req);
        return;
    }
    if (head) {
        sreq_done(s);
        hp_http_stream_end(req);
        return;
    }
    pump(s);
}

/* ---- RFC 9110 evaluation ----------------------------------------------- */

static void add(struct hp_http_req *req, struct hp_str name, const char *v, size_t n)
{
    hp_http_add_header(req, name, (struct hp_str){v, n});
}

/* If-Range (§13.1.5): does it let the Range apply? */
static bool if_range_ok(const struct conds *c, const struct hp__sfile *f)
{
    int64_t t;

    if (!c->has_ifrange)
        return true;
    if (c->ifrange.len > 0 && (c->ifrange.ptr[0] == '"' || c->ifrange.ptr[0] == 'W'))
        return hp__etag_match(c->ifrange, (struct hp_str){f->etag, f->etag_len}, false) &&
               c->ifrange.ptr[0] == '"';
    return hp__http_date_parse(c->ifrange, &t) && t == f->mtime;
}

static void serve_file(struct hp_static *st, struct hp_http_req *req, struct hp__centry *e,
                       const struct conds *c)
{
    unsigned avail = (e->file[HP__VAR_GZIP] ? 1u << HP__ENC_GZIP : 0) |
                     (e->file[HP__VAR_BR] ? 1u << HP__ENC_BR : 0);
    int enc = avail && c->has_ae ? hp__accept_encoding(c->ae, avail) : HP__ENC_IDENTITY;
    struct hp__sfile *f = e->file[enc == HP__ENC_BR     ? HP__VAR_BR
                                  : enc == HP__ENC_GZIP ? HP__VAR_GZIP
                                                        : HP__VAR_ID];
    struct hp_str etag = {f->etag, f->etag_len};
    int64_t t;

    /* §13.2.2: the order of evaluation. */
    if (c->has_im ? !hp__etag_match(c->im, etag, false)
                  : c->has_ius && hp__http_date_parse(c->ius, &t) && f->mtime > t) {
        reply_status(req, 412);
        return;
    }
    if (c->has_inm ? hp__etag_match(c->inm, etag, true)
                   : c->has_ims && hp__http_date_parse(c->ims, &t) && f->mtime <= t) {
        add(req, HP_STR_LIT("ETag"), f->etag, f->etag_len);
        add(req, HP_STR_LIT("Last-Modified"), f->lastmod, 29);
        if (avail)
            add(req, HP_STR_LIT("Vary"), "Accept-Encoding", 15);
        hp_http_reply(req, 304, HP_STR_LIT(""), NULL, 0);
        return;
    }
    add(req, HP_STR_LIT("ETag"), f->etag, f->etag_len);
    add(req, HP_STR_LIT("Last-Modified"), f->lastmod, 29);
    add(req, HP_STR_LIT("Accept-Ranges"), "bytes", 5);
    if (avail)
        add(req, HP_STR_LIT("Vary"), "Accept-Encoding", 15);
    if (enc == HP__ENC_BR)
        add(req, HP_STR_LIT("Content-Encoding"), "br", 2);
    else if (enc == HP__ENC_GZIP)
        add(req, HP_STR_LIT("Content-Encoding"), "gzip", 4);
    if (c->has_range && req->method_id == HP_HTTP_GET && if_range_ok(c, f)) {
        struct hp__range r[64];
        unsigned max = st->opts.max_ranges < 64 ? st->opts.max_ranges : 64, n;
        char cr[80];

        switch (hp__ranges_parse(c->range, f->size, r, max, &n)) {
        case HP__RANGE_UNSAT:
            add(req, HP_STR_LIT("Content-Range"), cr,
                (size_t)snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)f->size));
            reply_status(req, 416);
            return;
        case HP__RANGE_OK:
            if (n == 1)
                add(req, HP_STR_LIT("Content-Range"), cr,
                    (size_t)snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
                                     (unsigned long long)r[0].first, (unsigned long long)r[0].last,
                                     (unsigned long long)f->size));
            send_body(st, req, e, f, 206, r, n);
            return;
        default:
            break;
        }
    }
    send_body(st, req, e, f, 200, NULL, 0);
}

static void redirect(struct hp_http_req *req)
{
    size_t n = req->path.len + 2 + req->query.len;
    char *loc = hp_http_req_alloc(req, n);

    if (!loc) {
        reply_status(req, 503);
        return;
    }
    memcpy(loc, req->path.ptr, req->path.len);
    loc[req->path.len] = '/';
    n = req->path.len + 1;
    if (req->query.len) {
        loc[n++] = '?';
        memcpy(loc + n, req->query.ptr, req->query.len);
        n += req->query.len;
    }
    add(req, HP_STR_LIT("Location"), loc, n);
    reply_status(req, 301);
}

static void serve(struct hp_static *st, struct hp_http_req *req, struct hp__centry *e)
{
    struct conds c;

    if (e->err) {
        reply_status(req, status_of(e->err));
    } else if (e->kind == HP__K_REDIRECT) {
        redirect(req);
    } else if (e->kind == HP__K_LISTING) {
        struct hp__sfile *f = e->file[HP__VAR_ID];
        hp_http_reply(req, 200, e->ctype, f->mem, (size_t)f->size);
    } else {
        scan_headers(req, &c);
        serve_file(st, req, e, &c);
    }
}

void hp__static_resume(struct hp__sreq *s)
{
    struct hp_static *st = s->st;
    struct hp_http_req *req = s->req;
    struct hp__centry *e = s->entry;

    s->entry = NULL;
    sreq_done(s); /* serve() takes a fresh one if it streams */
    if (hp_http_req_closed(req))
        hp_http_req_release(req);
    else
        serve(st, req, e);
}

int hp_static_handle(struct hp_static *st, struct hp_http_req *req, struct hp_str path)
{
    char key[PATH_CAP + 2];
    struct hp__centry *e;
    struct hp__sreq *s;
    bool dir;
    int n, err;

    if (req->method_id != HP_HTTP_GET && req->method_id != HP_HTTP_HEAD) {
        reply_status(req, 405);
        return 0;
    }
    n = hp__static_path(path.ptr, path.len, key, PATH_CAP, st->opts.dotfiles, &dir);
    if (n < 0) {
        reply_status(req, -n);
        return 0;
    }
    if (dir)
        key[n++] = '/';
    if ((e = hp__cache_get(st, key, (size_t)n)) != NULL) {
        st->stats.hits++;
        serve(st, req, e);
        return 0;
    }
    if (!(s = sreq_new(st, req))) {
        reply_status(req, 503);
        return 0;
    }
    if ((err = hp__cache_wait(st, key, (size_t)n, s)) != 0) {
        sreq_done(s);
        reply_status(req, status_of(err));
    }
    return 0;
}

int hp_static_route(struct hp_http_req *req)
{
    const struct hp_route *route = hp_route_of(req);

    if (!route || !route->data)
        return -EINVAL;
    return hp_static_handle(route->data, req, hp_route_rest(req));
}

/* ---- lifecycle ------------------------------------------------------------ */

int hp_static_new(struct hp_static **out, struct hp_loop *loop, const struct hp_static_opts *opts)
{
    struct hp_static *st;
    struct timespec ts;
    int err;

    if (!opts || !opts->root)
        return -EINVAL;
    if (!(st = calloc(1, sizeof(*st))))
        return -ENOMEM;
    st->loop = loop;
    st->opts = *opts;
    st->opts.root = NULL;
    st->opts.mime_types = NULL;
    if (!st->opts.cache_ttl_ms)
        st->opts.cache_ttl_ms = 1000;
    if (!st->opts.cache_max)
        st->opts.cache_max = 4096;
    if (!st->opts.mem_file_max)
        st->opts.mem_file_max = 256u << 10;
    if (!st->opts.mem_total)
        st->opts.mem_total = 64u << 20;
    if (!st->opts.max_ranges)
        st->opts.max_ranges = 16;
    if (!st->opts.chunk)
        st->opts.chunk = 65536;
    if (!st->opts.sendfile_min)
        st->opts.sendfile_min = 16384;
    st->index = strdup(opts->index ? opts->index : "index.html");
    for (st->nbuckets = 64; st->nbuckets < st->opts.cache_max; st->nbuckets *= 2)
        continue;
    st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
    st->root = open(opts->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!st->index || !st->buckets) {
        err = -ENOMEM;
        goto fail;
    }
    if (st->root < 0) {
        err = -errno;
        goto fail;
    }
    if ((err = hp__mime_new(&st->mime, opts->mime_types)) != 0)
        goto fail;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(st->boundary, sizeof(st->boundary), "hp%08lx%08lx",
             (unsigned long)ts.tv_sec ^ (unsigned long)(uintptr_t)st, (unsigned long)ts.tv_nsec);
    *out = st;
    return 0;

fail:
    if (st->root >= 0)
        close(st->root);
    free(st->buckets);
    free(st->index);
    free(st);
    return err;
}

int hp_static_free(struct hp_static *st)
{
    if (!st)
        return 0;
    if (st->in_flight || st->lookups_pending)
        return -EBUSY;
    hp__cache_free(st);
    hp__mime_free(st->mime);
    close(st->root);
    free(st->buckets);
    free(st->index);
    free(st);
    return 0;
}

void hp_static_stats(const struct hp_static *st, struct hp_static_stats *out)
{
    *out = st->stats;
    out->cached = st->cached;
    out->in_flight = st->in_flight;
}
