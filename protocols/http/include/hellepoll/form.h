/**
 * @file form.h
 * Percent-decoding (RFC 3986 §2.1), query strings and
 * application/x-www-form-urlencoded bodies (the WHATWG URL standard's
 * parser, made strict).
 *
 * A form is name=value pairs separated by '&'. Empty pairs ("a=1&&b=2")
 * are skipped; a pair without '=' has an empty value; with
 * HP_FORM_PLUS_SPACE a '+' means a space (always the case in forms, and in
 * the query strings that HTML forms send); percent escapes are decoded. A
 * '%' not followed by two hex digits is an error (-EBADMSG), never passed
 * through as browsers' lenient parsers do. Decoded values may contain any
 * byte, NUL included; they are not checked to be UTF-8.
 *
 * Nothing here allocates. Decoding never makes a string longer, so a
 * buffer as long as the input always suffices, and decoding in place (the
 * output at the input's address) is allowed. Pure and thread-safe.
 */
#ifndef HP_FORM_H
#define HP_FORM_H

#include <stdbool.h>
#include <stddef.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>

/** Flags of the functions below. */
enum hp_form_flags {
    /** '+' decodes to a space (forms, and query strings from forms). */
    HP_FORM_PLUS_SPACE = 1u << 0,
};

/** Most pairs hp_form_iter walks through by default; more is -E2BIG. */
#define HP_FORM_DEFAULT_MAX_PAIRS 1000

/**
 * Percent-decode @p in into @p out.
 * @param out  room for @p cap bytes; may be in.ptr itself (in place).
 * @param len  receives the decoded length on success.
 * @param flags HP_FORM_PLUS_SPACE or 0.
 * @return 0; -EBADMSG (a '%' without two hex digits after it; @p out may
 *         hold a partial result); -ENOBUFS (@p cap too small; never when
 *         cap >= in.len).
 */
HP_API int hp_pct_decode(struct hp_str in, char *out, size_t cap, unsigned flags, size_t *len);

/**
 * Percent-encode @p in into @p out: every byte but RFC 3986's unreserved
 * ones (ALPHA DIGIT '-' '.' '_' '~') becomes %XX (upper-case hex); with
 * HP_FORM_PLUS_SPACE a space becomes '+' (form encoding, as browsers send
 * it). The result decodes back to @p in with the same flags. @p out must
 * not overlap @p in; 3 * in.len bytes always suffice.
 * @param len receives the encoded length on success.
 * @return 0; -ENOBUFS (@p cap too small; @p out may hold a partial result).
 */
HP_API int hp_pct_encode(struct hp_str in, char *out, size_t cap, unsigned flags, size_t *len);

/**
 * True if @p encoded decodes (with @p flags) to exactly @p plain, compared
 * on the fly with no buffer. A malformed escape never matches.
 */
HP_API bool hp_pct_equal(struct hp_str encoded, struct hp_str plain, unsigned flags);

/**
 * Walks the pairs of a form. Caller-allocated; members are private. The
 * input is borrowed until the walk ends.
 */
struct hp_form_iter {
    struct hp_str _rest;
    unsigned _flags;
    size_t _pairs;
    size_t _max_pairs;
};

/**
 * Start walking @p input (a query string without its '?', or a form body).
 * @param max_pairs most pairs returned before -E2BIG; 0 means
 *        HP_FORM_DEFAULT_MAX_PAIRS.
 */
HP_API void hp_form_iter_init(struct hp_form_iter *it, struct hp_str input, unsigned flags,
                              size_t max_pairs);

/**
 * The next pair, still encoded: views into the input.
 * @return 1 and the pair; 0 at the end; -E2BIG past max_pairs.
 */
HP_API int hp_form_next_raw(struct hp_form_iter *it, struct hp_str *name, struct hp_str *value);

/**
 * The next pair, decoded into @p buf (the name first, then the value); the
 * views point into @p buf and stay valid until it is reused. A buffer as
 * long as the input always suffices.
 * @return 1 and the pair; 0 at the end; -E2BIG past max_pairs; -EBADMSG
 *         (malformed escape); -ENOBUFS (buf too small for this pair: the
 *         walk has moved past it).
 */
HP_API int hp_form_next(struct hp_form_iter *it, char *buf, size_t cap, struct hp_str *name,
                        struct hp_str *value);

/** A decoded pair, as filled in by hp_form_parse_inplace(). */
struct hp_form_pair {
    struct hp_str name;
    struct hp_str value;
};

/**
 * Decode a whole form in place in @p buf (@p len bytes, which are
 * overwritten) and describe its pairs in @p pairs.
 * @param max_pairs room in @p pairs; more pairs than that is -E2BIG.
 * @param n receives the number of pairs on success.
 * @return 0; -EBADMSG; -E2BIG. On error @p buf holds a partial result.
 */
HP_API int hp_form_parse_inplace(char *buf, size_t len, unsigned flags, struct hp_form_pair *pairs,
                                 size_t max_pairs, size_t *n);

/**
 * The value of the first pair whose decoded name is @p name, decoded into
 * @p buf (a buffer as long as the input always suffices).
 * @param value receives a view into @p buf.
 * @return 0; -ENOENT (no such name); -EBADMSG (its value is malformed; a
 *         malformed name never matches); -ENOBUFS; -E2BIG (more than
 *         HP_FORM_DEFAULT_MAX_PAIRS pairs before it).
 */
HP_API int hp_form_get(struct hp_str input, struct hp_str name, unsigned flags, char *buf,
                       size_t cap, struct hp_str *value);

/** The first pair named @p name among @p n decoded pairs, or NULL. */
HP_API const struct hp_form_pair *hp_form_find(const struct hp_form_pair *pairs, size_t n,
                                               struct hp_str name);

#endif
