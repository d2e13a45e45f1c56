/*
 * static_internal.h - what the files of the static-file handler share
 * (never installed): the pure request rules (path, conditionals, ranges,
 * content codings, dates; static_path.c, static_rules.c), the Content-Type
 * table (static_mime.c), the open-file cache (static_cache.c) and the
 * handler itself (static.c). Calls go static.c -> cache -> rules/mime.
 */
#ifndef HP_STATIC_INTERNAL_H
#define HP_STATIC_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/fs.h>
#include <hellepoll/http.h>
#include <hellepoll/pool.h>
#include <hellepoll/static.h>

/* ---- static_path.c ------------------------------------------------------- */

/*
 * Percent-decode and normalise the request path @p in (below the mount
 * point) into @p out (NUL-terminated, no leading slash, "" for the root
 * itself). *@p dir tells whether it ended in '/'.
 * @return the length of @p out, or minus the HTTP status refusing it: 400 (bad
 *         escape, NUL, backslash, encoded dot segment, ".." above the root),
 *         404 (encoded slash, longer than @p cap), 403 (a dotfile segment
 *         while !dotfiles).
 */
int hp__static_path(const char *in, size_t len, char *out, size_t cap, bool dotfiles, bool *dir);

/* ---- static_rules.c ------------------------------------------------------ */

/* An HTTP-date (IMF-fixdate, RFC 850 or asctime) to seconds since the epoch. */
bool hp__http_date_parse(struct hp_str s, int64_t *t);

/* IMF-fixdate of @p t into @p out (29 bytes, NUL-terminated); returns 29. */
size_t hp__http_date_format(int64_t t, char out[30]);

/*
 * Does the If-Match / If-None-Match list @p list match entity-tag @p etag
 * (with its quotes, never weak)? "*" matches. @p weak selects the weak
 * comparison (W/ ignored on both sides), otherwise the strong one.
 */
bool hp__etag_match(struct hp_str list, struct hp_str etag, bool weak);

struct hp__range {
    uint64_t first, last; /* inclusive */
};

enum {
    HP__RANGE_IGNORE = 0, /* absent, not bytes, invalid or too many: send the whole */
    HP__RANGE_OK,         /* *n satisfiable ranges in out, sorted and coalesced */
    HP__RANGE_UNSAT,      /* 416 */
};

/*
 * Parse a Range value against a representation of @p len bytes, keeping at
 * most @p max ranges (more: HP__RANGE_IGNORE). Unsatisfiable ranges are
 * dropped; overlapping or adjacent ones are merged (so the parts never
 * overlap), and the result is sorted.
 */
int hp__ranges_parse(struct hp_str h, uint64_t len, struct hp__range *out, unsigned max,
                     unsigned *n);

enum { HP__ENC_IDENTITY = 0, HP__ENC_GZIP = 1, HP__ENC_BR = 2 };

/*
 * Pick a content coding from Accept-Encoding @p h among the codings in
 * @p avail (bits 1 << HP__ENC_GZIP, 1 << HP__ENC_BR): the highest q-value
 * above 0 ("*" stands for unlisted ones), br before gzip on a tie, and
 * identity when nothing better is acceptable.
 */
int hp__accept_encoding(struct hp_str h, unsigned avail);

/* ---- static_mime.c ------------------------------------------------------- */

struct hp__mime;

/* The built-in table, plus @p file's entries if given and readable. */
int hp__mime_new(struct hp__mime **out, const char *file);
void hp__mime_free(struct hp__mime *m);
/* The type for @p name's extension (case-insensitive); application/octet-stream if unknown. */
struct hp_str hp__mime_lookup(const struct hp__mime *m, const char *name, size_t len);

#endif

/* ---- static_cache.c ------------------------------------------------------ */

enum { HP__VAR_ID = 0, HP__VAR_GZIP = 1, HP__VAR_BR = 2, HP__VAR_N = 3 };

/* One opened version of a file (or a generated listing, fd -1). Immutable but for refs. */
struct hp__sfile {
    struct hp_static *owner;
    unsigned refs; /* loop thread only */
    int fd;        /* -1 for a listing or a file held in memory only */
    uint64_t size;
    int64_t mtime; /* seconds */
    long mtime_ns;
    uint64_t ino, dev;
    char *mem; /* the whole contents, or NULL */
    uint8_t etag_len;
    char etag[48];
    char lastmod[30];
};

enum {
    HP__K_FILE = 0, /* file[HP__VAR_ID] is the file (others: its .gz/.br siblings) */
    HP__K_REDIRECT, /* a directory asked for without the trailing slash */
    HP__K_LISTING,  /* file[HP__VAR_ID] is the generated HTML listing */
};

struct hp__sreq;

struct hp__centry {
    struct hp__centry *hnext;         /* hash chain */
    struct hp__centry *lprev, *lnext; /* LRU list, most recent first */
    uint64_t checked;                 /* loop time of the last lookup */
    int err;                          /* its negative errno, or 0 */
    uint8_t kind;
    bool pending; /* a lookup is on the pool */
    struct hp__sfile *file[HP__VAR_N];
    struct hp_str ctype;
    struct hp__sreq *waiters, *waiters_tail;
    uint32_t hash;
    uint32_t key_len;
    char key[]; /* the normalised path, '/'-terminated for a directory request */
};

/* Per-loop state (struct hp_static). */
struct hp_static {
    struct hp_loop *loop;
    int root;
    struct hp_static_opts opts; /* defaults filled in; strings below */
    char *index;
    struct hp__mime *mime;
    struct hp__centry **buckets;
    uint32_t nbuckets;
    uint32_t cached;
    struct hp__centry *lru_head, *lru_tail;
    uint64_t mem_used;
    uint32_t lookups_pending;
    uint32_t in_flight;
    struct hp_static_stats stats;
    char boundary[24];
};

/* A request that waits (for a lookup) or streams; see static.c. */
struct hp__sreq {
    struct hp__sreq *next; /* waiters list, or the free list */
    struct hp_static *st;
    struct hp_http_req *req;
    struct hp__centry *entry; /* while waiting */
    struct hp__sfile *file;   /* while streaming: a reference */
    struct hp_fs_req fs;      /* a read on the pool */
    uint64_t off, end;        /* the part being sent */
    unsigned part, nparts;    /* multipart: the part being sent */
    struct hp__range *ranges; /* nparts of them */
    struct hp_str ctype;
    char *buf;   /* opts.chunk bytes */
    size_t have; /* bytes in buf, read at off, not yet written */
    bool multipart;
    bool reading;   /* a pool read is in flight */
    bool zero_copy; /* a sendfile reply waiting for the output to drain */
    int status;     /* zero_copy: the response status */
};

/*
 * The entry for @p key, if cached and fresh: the hot path. Otherwise NULL;
 * then hp__cache_wait() queues @p s until a lookup has refreshed it.
 */
struct hp__centry *hp__cache_get(struct hp_static *st, const char *key, size_t len);
/* @return 0 (s->entry is set and s runs hp__static_resume() later), or -errno. */
int hp__cache_wait(struct hp_static *st, const char *key, size_t len, struct hp__sreq *s);
void hp__cache_free(struct hp_static *st);
void hp__sfile_release(struct hp_static *st, struct hp__sfile *f);

/* static.c: a waiter's entry is ready. */
void hp__static_resume(struct hp__sreq *s);

/* static_list.c: the HTML listing of directory @p fd (borrowed) for @p path. */
int hp__static_listing(int fd, const char *path, bool dotfiles, char **out, size_t *len);
