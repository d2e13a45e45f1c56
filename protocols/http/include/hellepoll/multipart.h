/**
 * @file multipart.h
 * A streaming multipart/form-data parser (RFC 7578, on RFC 2046 §5.1's
 * framing) for uploads: feed it the request body in pieces of any size, as
 * they arrive, and it calls you back for the start of each part (with its
 * Content-Disposition name and filename and its Content-Type), for each
 * piece of the part's content, and for the end of the part. Content is
 * never buffered: the pieces point into what you fed (or, for a few bytes
 * that looked like the start of a boundary and were not, into the parser),
 * so a 1 GiB upload needs no more memory than a 1 KiB one.
 *
 * What it accepts: a preamble (ignored), then parts each introduced by
 * CRLF "--" boundary (the CRLF is optional for the first), optional spaces
 * or tabs, CRLF; the part's header fields, each "Name: value" CRLF, then
 * CRLF; its content; and finally "--" boundary "--" (anything after it, the
 * epilogue, is ignored). Each part must have a Content-Disposition of type
 * form-data with a name parameter (RFC 7578 §4.2). Parameter values may be
 * tokens or quoted strings; backslash escapes in a quoted string are
 * undone, percent-encoding is left as is (browsers send '"' in a filename
 * as %22; decide yourself whether to decode it).
 *
 * What it refuses, with -EBADMSG and a reason (hp_multipart_reason()):
 * a boundary line followed by anything but spaces and CRLF or "--"; bare
 * CR or LF in part headers; folded header lines; a field without ':' or
 * with a name that is not a token; a part without a form-data
 * Content-Disposition or without a name, or with two of them; input that
 * ends before the closing boundary (at hp_multipart_finish()). Limits
 * (struct hp_multipart_opts) give -E2BIG (too many parts), -EMSGSIZE (a
 * part's header block too long) and -EFBIG (a part's content too long).
 *
 * After an error the parser is dead: every later call returns that error.
 * A parser belongs to one thread at a time.
 */
#ifndef HP_MULTIPART_H
#define HP_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/loop.h>

struct hp_multipart;

/**
 * A part, as its headers describe it. The views point into the parser and
 * stay valid from on_part_begin until on_part_end returns.
 */
struct hp_multipart_part {
    size_t index;               /**< 0 for the first part */
    struct hp_str name;         /**< the Content-Disposition name parameter */
    struct hp_str filename;     /**< its filename parameter, if has_filename */
    bool has_filename;          /**< a filename was given (a file field; may be "") */
    struct hp_str content_type; /**< len 0 if absent (RFC 7578 says: text/plain) */
    struct hp_str headers;      /**< the raw header block, fields separated by CRLF */
};

/**
 * Callbacks. They run synchronously, from inside hp_multipart_feed(), in
 * order: on_part_begin, on_part_data (zero or more times, never with len 0),
 * on_part_end. Each returns 0 to go on, or a negative errno that stops the
 * parser and is returned by hp_multipart_feed() (and by every later call).
 * They must not call hp_multipart_feed() or hp_multipart_free() on the
 * parser that calls them.
 */
typedef int hp_multipart_begin_cb(void *ctx, const struct hp_multipart_part *part);
/** A piece of the current part's content: @p data is valid for this call only. */
typedef int hp_multipart_data_cb(void *ctx, const struct hp_multipart_part *part, const void *data,
                                 size_t len);
/**
 * The current part's content is complete: the delimiter line after it has
 * been parsed and is well-formed.
 */
typedef int hp_multipart_end_cb(void *ctx, const struct hp_multipart_part *part);

/** Options; zero means the default for each limit. */
struct hp_multipart_opts {
    hp_multipart_begin_cb *on_part_begin; /**< optional */
    hp_multipart_data_cb *on_part_data;   /**< optional */
    hp_multipart_end_cb *on_part_end;     /**< optional */
    void *ctx;                            /**< first argument of the callbacks */
    /** Most parts: -E2BIG beyond. Default 128. */
    uint32_t max_parts;
    /** Longest header block of one part, in bytes: -EMSGSIZE beyond. Default 8192. */
    uint32_t max_header_bytes;
    /**
     * Longest content of one part, in bytes: -EFBIG beyond (after the first
     * max_part_bytes were passed on). Default 16 MiB.
     */
    uint64_t max_part_bytes;
    /** Allocator for the parser; all NULL means libc. */
    struct hp_allocator alloc;
};

/**
 * Find the boundary parameter of a multipart Content-Type value, such as
 * "multipart/form-data; boundary=----WebKitFormBoundaryx0Jd" (quoted or
 * not; type and parameter names in any case).
 * @param boundary receives a view into @p content_type.
 * @return 0; -EINVAL if the type is not multipart/..., there is no
 *         boundary, or it breaks RFC 2046's rules (1 to 70 characters from
 *         DIGIT ALPHA '()+_,-./:=? and space, not ending in a space).
 */
HP_API int hp_multipart_boundary(struct hp_str content_type, struct hp_str *boundary);

/**
 * Create a parser for a body delimited by @p boundary (copied).
 * @param out receives the parser; untouched on failure.
 * @param opts borrowed for the call; NULL means no callbacks and the default limits.
 * @return 0; -EINVAL (an invalid boundary, see hp_multipart_boundary());
 *         -ENOMEM.
 */
HP_API HP_NODISCARD int hp_multipart_new(struct hp_multipart **out, struct hp_str boundary,
                                         const struct hp_multipart_opts *opts);

/**
 * Parse the next @p len bytes of the body (borrowed for the call), calling
 * the callbacks for what they complete.
 * @return 0; or the error that stopped the parser (see the file comment),
 *         which is also returned by every later call.
 */
HP_API int hp_multipart_feed(struct hp_multipart *mp, const void *data, size_t len);

/**
 * The body has ended.
 * @return 0 if the closing boundary was seen; -EBADMSG if not (on_part_end
 *         is not called for a part left unfinished); or the earlier error.
 */
HP_API int hp_multipart_finish(struct hp_multipart *mp);

/** True once the closing boundary has been parsed. */
HP_API bool hp_multipart_done(const struct hp_multipart *mp);

/**
 * Why the parser stopped: a static, lower-case, one-line string, or "" if
 * it did not.
 */
HP_API const char *hp_multipart_reason(const struct hp_multipart *mp);

/**
 * Look a header field of @p part up by name, case-insensitively (first
 * match; value without surrounding whitespace, a view into the parser).
 * @return true and the value, or false.
 */
HP_API bool hp_multipart_part_header(const struct hp_multipart_part *part, struct hp_str name,
                                     struct hp_str *value);

/** Free a parser (NULL is fine). */
HP_API void hp_multipart_free(struct hp_multipart *mp);

#endif
