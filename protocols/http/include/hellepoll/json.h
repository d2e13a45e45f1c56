/**
 * @file json.h
 * A JSON writer (RFC 8259) for API responses: objects, arrays, strings,
 * integers, doubles, booleans and null, written straight into a buffer with
 * no intermediate tree.
 *
 * The writer checks the grammar as it goes: a value where an object expects
 * a key, a key outside an object, an end that does not match its begin, a
 * second top-level value or nesting deeper than HP_JSON_MAX_DEPTH is an
 * error. Errors are sticky: the first one is kept, every later call returns
 * it and writes nothing, so a sequence of calls can be checked once, at
 * hp_json_finish().
 *
 * Strings (keys and values) are escaped as RFC 8259 §7 requires: '"' and
 * '\' with a backslash, the control characters U+0000..U+001F as \b \f \n
 * \r \t or \u00XX. Other bytes are UTF-8 and are copied as they are; what
 * happens to bytes that are not well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF) is chosen by a flag:
 * - default: each maximal ill-formed subsequence becomes U+FFFD (Unicode
 *   §3.9 "substitution of maximal subparts", as browsers decode);
 * - HP_JSON_UTF8_STRICT: the call fails with -EILSEQ;
 * - HP_JSON_LATIN1: the input is not UTF-8 at all but bytes: every byte from
 *   0x7F up is written as \u00XX (lossless; decode with latin-1 to get the
 *   bytes back).
 *
 * Memory: either a fixed buffer the caller owns (overflow is -ENOBUFS), or a
 * growable one obtained from an allocator (libc by default), kept across
 * hp_json_reset() so that a writer reused for every request allocates only
 * while it grows. A writer belongs to one thread at a time.
 */
#ifndef HP_JSON_H
#define HP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/loop.h>

/** Deepest nesting of objects and arrays; one level deeper is -E2BIG. */
#define HP_JSON_MAX_DEPTH 64

/** Flags for hp_json_init_fixed() and hp_json_init_alloc(). */
enum hp_json_flags {
    /** Ill-formed UTF-8 in a string is -EILSEQ instead of U+FFFD. */
    HP_JSON_UTF8_STRICT = 1u << 0,
    /** Strings are bytes: 0x7F and above become \u00XX (see the file comment). */
    HP_JSON_LATIN1 = 1u << 1,
    /**
     * Safe inside an HTML <script>: "</" is written "<\/", and U+2028 and
     * U+2029 (line terminators in older JavaScript) as \u2028 and \u2029.
     */
    HP_JSON_ESCAPE_HTML = 1u << 2,
    /** ": " after keys and ", " between elements (Python's json.dumps look). */
    HP_JSON_SPACED = 1u << 3,
};

/**
 * A writer. Caller-allocated (on the stack or embedded); all members are
 * private. Initialise with hp_json_init_fixed() or hp_json_init_alloc().
 */
struct hp_json {
    char *_buf;
    size_t _len;
    size_t _cap;
    struct hp_allocator _alloc;
    int _err;
    unsigned _flags;
    unsigned _depth;
    unsigned _state;
    uint64_t _kinds; /* bit i set: level i+1 is an object */
    bool _grow;
};

/**
 * Write into @p buf (at most @p cap bytes; borrowed until the writer is no
 * longer used). Running out of room is -ENOBUFS.
 * @param flags a set of enum hp_json_flags.
 */
HP_API void hp_json_init_fixed(struct hp_json *w, void *buf, size_t cap, unsigned flags);

/**
 * Write into a buffer that grows as needed, allocated with @p alloc (NULL,
 * or all members NULL, means libc; copied). Nothing is allocated until the
 * first write. Free with hp_json_free().
 */
HP_API void hp_json_init_alloc(struct hp_json *w, const struct hp_allocator *alloc, unsigned flags);

/** Release a growable writer's buffer (nothing for a fixed one). The writer may be re-initialised.
 */
HP_API void hp_json_free(struct hp_json *w);

/** Start a new document: empty output, no error, same buffer and flags. */
HP_API void hp_json_reset(struct hp_json *w);

/** Begin an object: a value, so in an object it must follow a key. */
HP_API int hp_json_obj_begin(struct hp_json *w);
/** End the innermost object; -EINVAL if it is an array, none is open, or a key waits for its value.
 */
HP_API int hp_json_obj_end(struct hp_json *w);
/** Begin an array (a value). */
HP_API int hp_json_arr_begin(struct hp_json *w);
/** End the innermost array; -EINVAL if it is an object or none is open. */
HP_API int hp_json_arr_end(struct hp_json *w);

/** A member name; only directly inside an object, where a key is due (else -EINVAL). */
HP_API int hp_json_key(struct hp_json *w, struct hp_str key);

/** A string value, escaped as the file comment says. */
HP_API int hp_json_str(struct hp_json *w, struct hp_str s);
/**
 * A string value written with the string flags @p flags (HP_JSON_UTF8_STRICT,
 * HP_JSON_LATIN1, HP_JSON_ESCAPE_HTML) instead of the writer's, e.g. one
 * binary field as Latin-1 in an otherwise UTF-8 document.
 */
HP_API int hp_json_str_flags(struct hp_json *w, struct hp_str s, unsigned flags);
/** An integer value. */
HP_API int hp_json_int(struct hp_json *w, int64_t v);
/** An unsigned integer value. */
HP_API int hp_json_uint(struct hp_json *w, uint64_t v);
/**
 * A number: the shortest of 15, 16 or 17 significant digits ("%.*g") that
 * reads back as exactly @p v, so every finite double round-trips; integral
 * values print without a fraction ("3"), -0.0 as "-0".
 * @return -EDOM for NaN and the infinities (JSON has no spelling for them).
 */
HP_API int hp_json_double(struct hp_json *w, double v);
/** true or false. */
HP_API int hp_json_bool(struct hp_json *w, bool v);
/** null. */
HP_API int hp_json_null(struct hp_json *w);
/**
 * A value that is already JSON, copied as is (not checked: the caller
 * vouches for it). Placed like any other value.
 */
HP_API int hp_json_raw(struct hp_json *w, struct hp_str json);

/** Shorthands: a key and then a value. */
HP_API int hp_json_kv_str(struct hp_json *w, struct hp_str key, struct hp_str s);
HP_API int hp_json_kv_int(struct hp_json *w, struct hp_str key, int64_t v);
HP_API int hp_json_kv_bool(struct hp_json *w, struct hp_str key, bool v);
HP_API int hp_json_kv_uint(struct hp_json *w, struct hp_str key, uint64_t v);
HP_API int hp_json_kv_double(struct hp_json *w, struct hp_str key, double v);
HP_API int hp_json_kv_null(struct hp_json *w, struct hp_str key);

/**
 * Check that one complete value was written and give the output.
 * @param out receives a view of the output (not NUL-terminated), valid
 *            until the next call on the writer; untouched on failure.
 * @return 0; the first error of any earlier call (-EINVAL misuse, -E2BIG
 *         too deep, -ENOBUFS fixed buffer full, -ENOMEM, -EDOM, -EILSEQ);
 *         or -EINVAL if the document is empty or still has open levels.
 */
HP_API int hp_json_finish(struct hp_json *w, struct hp_str *out);

/** The first error so far, or 0. */
HP_API int hp_json_error(const struct hp_json *w);

/** The bytes written so far (also when incomplete or after an error). */
HP_API struct hp_str hp_json_output(const struct hp_json *w);

#endif
