/**
 * @file str.h
 * Helpers for struct hp_str views (buf.h): comparison, prefix tests,
 * trimming and strict integer parsing. None of them allocates, writes
 * through a view or needs a NUL terminator; all are pure and thread-safe.
 * Case-insensitive means ASCII only (A-Z and a-z), independent of the locale.
 */
#ifndef HP_STR_H
#define HP_STR_H

#include <stdbool.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>

/** True if @p a and @p b hold the same bytes (two empty views are equal). */
HP_API bool hp_str_eq(struct hp_str a, struct hp_str b);

/** True if @p a and @p b are equal ignoring ASCII case ("Content-Type" == "content-type"). */
HP_API bool hp_str_eq_nocase(struct hp_str a, struct hp_str b);

/** True if @p s begins with @p prefix (an empty prefix always matches). */
HP_API bool hp_str_has_prefix(struct hp_str s, struct hp_str prefix);

/** As hp_str_has_prefix(), ignoring ASCII case. */
HP_API bool hp_str_has_prefix_nocase(struct hp_str s, struct hp_str prefix);

/**
 * @p s without leading and trailing ASCII whitespace (space, tab, CR, LF,
 * vertical tab, form feed). The result points into @p s.
 */
HP_API struct hp_str hp_str_trim(struct hp_str s);

/** @p s without leading and trailing spaces and tabs (HTTP's OWS). */
HP_API struct hp_str hp_str_trim_ows(struct hp_str s);

/**
 * The index of the first @p c in @p s, or -1 if there is none.
 */
HP_API ptrdiff_t hp_str_index(struct hp_str s, char c);

/**
 * Parse all of @p s as a decimal unsigned integer: one or more digits
 * 0-9, nothing else (no sign, no spaces, no "0x"; leading zeros are fine).
 * @param out receives the value on success; untouched on failure.
 * @return 0; -EINVAL (empty, or a byte that is not a digit); -ERANGE (the
 *         value does not fit in 64 bits).
 */
HP_API int hp_str_to_u64(struct hp_str s, uint64_t *out);

/**
 * Parse all of @p s as a decimal signed integer: an optional '-' or '+',
 * then one or more digits, nothing else. INT64_MIN is accepted.
 * @param out receives the value on success; untouched on failure.
 * @return 0; -EINVAL (empty, a sign alone, or a byte that is not a digit);
 *         -ERANGE (outside INT64_MIN..INT64_MAX).
 */
HP_API int hp_str_to_i64(struct hp_str s, int64_t *out);

#endif
