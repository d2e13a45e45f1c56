/**
 * @file cookie.h
 * Cookies (RFC 6265): read the pairs of a Cookie request header, and build
 * Set-Cookie response headers.
 *
 * Parsing follows what user agents send (§4.2.1, "name=value; name=value")
 * and is lenient the way §5.4 servers must be: pairs are split on ';',
 * spaces and tabs around names and values are dropped, a value in double
 * quotes is given without them, and a pair with no '=' or an empty or
 * non-token name is skipped. Values are not decoded: their encoding is the
 * application's (percent-encoding, base64, ...). A request may carry several
 * Cookie fields; look at each.
 *
 * Building is strict (§4.1.1): a name must be a token, a value only
 * cookie-octets (no CTLs, whitespace, '"', ',', ';' or '\'; quoted as a
 * whole is allowed), Path any CHAR but CTLs and ';', Domain a host name;
 * anything else is -EINVAL, so a value from a client can never inject an
 * attribute or a header.
 *
 * Pure and thread-safe; nothing allocates except hp_http_set_cookie()
 * (through hp_http_add_header()).
 */
#ifndef HP_COOKIE_H
#define HP_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>

struct hp_http_req;

/** Walks the pairs of a Cookie header value. Members are private. */
struct hp_cookie_iter {
    struct hp_str _rest;
};

/** Start walking @p header (the field value; borrowed until the walk ends). */
HP_API void hp_cookie_iter_init(struct hp_cookie_iter *it, struct hp_str header);

/**
 * The next cookie: views into the header (a quoted value without its
 * quotes).
 * @return true and the pair, or false at the end.
 */
HP_API bool hp_cookie_next(struct hp_cookie_iter *it, struct hp_str *name, struct hp_str *value);

/**
 * The value of the first cookie named @p name (case-sensitive, as user
 * agents compare them) in @p header.
 * @return true and a view in *value, or false (untouched).
 */
HP_API bool hp_cookie_get(struct hp_str header, struct hp_str name, struct hp_str *value);

/** SameSite attribute values. */
enum hp_cookie_same_site {
    HP_COOKIE_SAME_SITE_UNSET, /**< no attribute (browsers now default to Lax) */
    HP_COOKIE_SAME_SITE_STRICT,
    HP_COOKIE_SAME_SITE_LAX,
    HP_COOKIE_SAME_SITE_NONE, /**< requires secure, as browsers do */
};

/** A cookie to set. Zero-initialise and fill in what you need. */
struct hp_cookie {
    struct hp_str name;   /**< required: a token */
    struct hp_str value;  /**< cookie-octets, or all of it in double quotes; may be empty */
    struct hp_str path;   /**< Path, if len > 0 */
    struct hp_str domain; /**< Domain, if len > 0: letters, digits, '-', '.' */
    bool has_max_age;     /**< write Max-Age */
    int64_t max_age;      /**< seconds, >= 0 (0 deletes the cookie) */
    bool has_expires;     /**< write Expires */
    int64_t expires;      /**< Unix time, 0 (1970) .. 253402300799 (9999-12-31) */
    bool secure;          /**< Secure */
    bool http_only;       /**< HttpOnly */
    enum hp_cookie_same_site same_site;
};

/** Longest Set-Cookie value hp_http_set_cookie() builds (RFC 6265 §6.1 asks UAs for 4096). */
#define HP_COOKIE_MAX 8192

/**
 * Write the Set-Cookie field value for @p c into @p buf, e.g.
 * "sid=abc; Path=/; Max-Age=3600; Expires=Tue, 01 Dec 2026 10:00:00 GMT;
 * Secure; HttpOnly; SameSite=Lax" (attributes in that order).
 * @param len receives the length written (no NUL is added).
 * @return 0; -EINVAL (invalid name, value, path or domain, a negative
 *         Max-Age, Expires out of range, SameSite=None without Secure);
 *         -ENOBUFS (@p cap too small).
 */
HP_API int hp_cookie_format(const struct hp_cookie *c, char *buf, size_t cap, size_t *len);

/**
 * Add a Set-Cookie header for @p c to the response of @p req (built as
 * hp_cookie_format() does, at most HP_COOKIE_MAX bytes).
 * @return 0; hp_cookie_format()'s errors (-ENOBUFS: too long); or
 *         hp_http_add_header()'s.
 */
HP_API int hp_http_set_cookie(struct hp_http_req *req, const struct hp_cookie *c);

/**
 * Write @p t (Unix time) as an IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06
 * Nov 1994 08:49:37 GMT": exactly 29 bytes into @p out, no NUL.
 * @return 0, or -EINVAL if @p t is outside 0..253402300799.
 */
HP_API int hp_http_format_date(int64_t t, char out[29]);

#endif
