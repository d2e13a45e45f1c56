/**
 * @file static.h
 * Serving a directory over HTTP: GET and HEAD, Content-Type by extension,
 * Last-Modified and a strong ETag, conditional requests (RFC 9110 §13),
 * byte ranges (§14, multipart/byteranges for several), precompressed
 * siblings (file.br, file.gz) chosen by Accept-Encoding, an index file,
 * an optional directory listing, and an open-file cache.
 *
 * The loop never blocks on the file system: a lookup the cache cannot
 * answer (a first request, or one after cache_ttl_ms) opens and stats on
 * the loop's thread pool (pool.h), and file data that is not in the page
 * cache is read there too. A hot file costs no open, stat or close.
 *
 * Bodies of sendfile_min bytes or more (a whole file or a single range) go
 * to the socket with sendfile(2) from the cached descriptor
 * (hp_http_reply_file()): no copy in user space. Smaller ones are answered
 * from memory when the file is held there; several ranges
 * (multipart/byteranges) are copied through the output queue. A file that
 * shrinks while being sent cuts the connection after the bytes that were
 * true; a cached descriptor replaced while a body is queued stays open
 * until that body is sent.
 *
 * Path safety: the request path is percent-decoded and normalised ("." and
 * ".." segments resolved, "//" collapsed); a ".." that would climb above the
 * root, an encoded dot segment (%2e), an encoded slash (%2f), a backslash, a
 * NUL or a malformed escape is refused (400, or 404 for %2f), dotfiles are
 * refused (403) unless allowed, and every open is confined to the root
 * (hp_fs_open_beneath(): symbolic links may point anywhere inside it; one
 * that leaves it is refused with 403).
 *
 * Threading: an hp_static belongs to one loop (one per worker thread).
 */
#ifndef HP_STATIC_H
#define HP_STATIC_H

#include <stdbool.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/http.h>
#include <hellepoll/loop.h>

struct hp_static;

/** Options for hp_static_new(); zero means the default for each field. */
struct hp_static_opts {
    /** Required: the directory to serve; opened once by hp_static_new(). */
    const char *root;
    /** Index file tried for a directory; NULL means "index.html", "" none. */
    const char *index;
    /** List directories without an index (names HTML-escaped). Default off. */
    bool listing;
    /** Serve names starting with '.' (refused with 403 by default). */
    bool dotfiles;
    /** Do not look for file.br and file.gz siblings. */
    bool no_precompressed;
    /**
     * Also read this mime.types file (lines "type ext ext ..."), e.g.
     * "/etc/mime.types"; its entries override the built-in table. A missing
     * file is not an error.
     */
    const char *mime_types;
    /** Revalidate a cached lookup (open, stat) after this long. Default 1000 ms. */
    uint32_t cache_ttl_ms;
    /** Cached paths at most (least recently used ones go first). Default 4096. */
    uint32_t cache_max;
    /** Files up to this size are kept in memory. Default 256 KiB. */
    uint32_t mem_file_max;
    /** Memory for those, in total. Default 64 MiB. */
    uint64_t mem_total;
    /** More ranges than this in one request are ignored (200). Default 16. */
    uint32_t max_ranges;
    /** Bytes read from a file per step while sending. Default 64 KiB. */
    uint32_t chunk;
    /**
     * Bodies (whole files or single ranges) of at least this many bytes go
     * with sendfile, smaller ones from memory (or copied). Default 16 KiB;
     * UINT32_MAX never uses sendfile.
     */
    uint32_t sendfile_min;
};

/**
 * Create a handler for @p loop serving @p opts->root.
 * @return 0; -EINVAL (no root); -ENOMEM; the root's open(2) -errno
 *         (-ENOENT, -ENOTDIR, -EACCES).
 */
HP_API HP_NODISCARD int hp_static_new(struct hp_static **out, struct hp_loop *loop,
                                      const struct hp_static_opts *opts);

/**
 * Free @p st. Every request given to hp_static_handle() must be finished
 * (its response complete or the client gone), which is the case once the
 * loop has run out of work or the server was shut down.
 * @return 0, or -EBUSY (nothing freed) while requests are in progress.
 */
HP_API int hp_static_free(struct hp_static *st);

/**
 * Answer @p req (from an on_request handler, or a router) with the file
 * @p path names: the request path below the mount point, still
 * percent-encoded (req->path for a handler mounted at "/"; for one mounted
 * at "/static/", the rest after it). The handler takes the request over and
 * finishes it, now or later from the loop's callbacks; the caller must not
 * answer it.
 * @return 0; or a negative errno as hp_http_handler (the server then
 *         answers 500), only when not even an error response could be sent.
 */
HP_API int hp_static_handle(struct hp_static *st, struct hp_http_req *req, struct hp_str path);

/**
 * A handler for the router (router.h): mount it with
 * hp_router_mount_handler(r, "/files", hp_static_route, st) and it serves
 * hp_route_rest(req) from the hp_static given as the route's data (one
 * router per loop, as hp_static is per loop).
 * @return as hp_static_handle().
 */
HP_API int hp_static_route(struct hp_http_req *req);

/** Counters, for tests and monitoring. */
struct hp_static_stats {
    uint64_t hits;       /**< answered from the cache without the pool */
    uint64_t lookups;    /**< opens/stats done on the pool */
    uint64_t pool_reads; /**< file reads that had to go to the pool */
    uint64_t sendfiles;  /**< bodies queued with sendfile (hp_http_reply_file()) */
    uint32_t cached;     /**< paths in the cache now */
    uint32_t in_flight;  /**< requests not finished yet, and file bodies not yet sent */
};

/** Fill @p out with @p st's counters. */
HP_API void hp_static_stats(const struct hp_static *st, struct hp_static_stats *out);

#endif
