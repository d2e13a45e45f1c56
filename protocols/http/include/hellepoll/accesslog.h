/**
 * @file accesslog.h
 * Access logs for an HTTP server: one line per request in the Common or
 * Combined Log Format (as Apache and nginx write them) or as a JSON object,
 * appended to a file or handed to a sink callback, in batches.
 *
 * Lines are rendered into a buffer as requests end (hp_http_log_cb) and
 * written when the buffer is full, when flush_ms has passed since the first
 * unwritten line, at hp_accesslog_flush() and at hp_accesslog_free(): one
 * write(2) per batch, like nginx's `access_log ... buffer=`.
 *
 * Every byte that comes from the client (target, referer, user agent,
 * method) is escaped: in the text formats bytes below 0x20, from 0x7f, the
 * double quote and the backslash are written as \xHH, so a request cannot
 * forge a line or a field; the JSON format escapes as RFC 8259 requires and
 * writes bytes from 0x80 as \u00HH, so every line is valid UTF-8 JSON.
 *
 * Common:   peer - - [10/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 200 2326
 * Combined: the same, then "referer" "user-agent"
 * JSON:     {"time":"2026-10-10T13:55:36Z","peer":"...","method":"GET",
 *            "target":"/a","version":"HTTP/1.1","status":200,"bytes":2326,
 *            "duration_ms":3,"referer":"...","user_agent":"..."}
 * Times are UTC. A request whose client left before its response is logged
 * with status 499 (nginx's convention); one that never got a complete head,
 * with "-" for the request line.
 *
 * Threading: a log belongs to one loop. With several worker loops give each
 * its own log; they may share a file (O_APPEND: every batch lands whole, as
 * one write, and batches hold whole lines).
 */
#ifndef HP_ACCESSLOG_H
#define HP_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/defs.h>
#include <hellepoll/http.h>
#include <hellepoll/loop.h>

struct hp_accesslog;

/** Line formats. */
enum hp_accesslog_format {
    HP_ACCESSLOG_COMBINED = 0, /**< Common plus "referer" "user-agent" (the default). */
    HP_ACCESSLOG_COMMON,
    HP_ACCESSLOG_JSON,
};

/**
 * Receives a batch of whole lines (each ending in '\n'), valid for the call.
 * For logs that go elsewhere than a file (the loop's log callback, syslog).
 */
typedef void hp_accesslog_sink(void *ctx, const char *lines, size_t len);

/** Options; zero means the default for each field. */
struct hp_accesslog_opts {
    enum hp_accesslog_format format;
    /** File to append to (created 0644 if missing). NULL: use sink. */
    const char *path;
    /** With path NULL: where batches go. */
    hp_accesslog_sink *sink;
    void *sink_ctx;
    /** Bytes buffered before a write. Default 64 KiB; at most 16 MiB. */
    size_t buffer;
    /** Longest time a line waits in the buffer. Default 1000 ms. */
    uint32_t flush_ms;
    /** Reopen the file on SIGHUP (logrotate's postrotate). */
    bool reopen_on_sighup;
};

/**
 * Open a log on @p loop.
 * @return 0; -EINVAL (no path and no sink, a buffer over 16 MiB, or an
 *         unknown format); -ENOMEM; open(2)'s or hp_signal_start()'s -errno.
 */
HP_API HP_NODISCARD int hp_accesslog_new(struct hp_accesslog **out, struct hp_loop *loop,
                                         const struct hp_accesslog_opts *opts);

/** Make @p srv_opts log into @p log (sets on_log and log_ctx). */
HP_API void hp_accesslog_attach(struct hp_accesslog *log, struct hp_http_server_opts *srv_opts);

/** The hp_http_log_cb of a log (@p ctx is the struct hp_accesslog). */
HP_API void hp_accesslog_cb(void *ctx, const struct hp_http_req *req,
                            const struct hp_http_log_entry *e);

/** Write what is buffered now. @return 0 or the write's -errno (the batch is dropped). */
HP_API int hp_accesslog_flush(struct hp_accesslog *log);

/**
 * Flush, then close and open the file again (after logrotate moved it).
 * @return 0, or open(2)'s -errno (the old file stays in use).
 */
HP_API int hp_accesslog_reopen(struct hp_accesslog *log);

/** Lines dropped because a write failed (the library prints nothing). */
HP_API uint64_t hp_accesslog_dropped(const struct hp_accesslog *log);

/** Flush and free; detach it from its servers first (or free them). */
HP_API void hp_accesslog_free(struct hp_accesslog *log);

#endif
