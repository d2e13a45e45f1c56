/*
 * multipart.c - the streaming multipart/form-data parser.
 *
 * The body is a byte-at-a-time state machine, except for part content,
 * which is scanned with memchr for the CR that may begin the delimiter
 * CRLF "--" boundary. A partial delimiter match (k bytes) at the end of a
 * fed piece is held back without copying: the held bytes are exactly
 * delim[0..k), so if the match fails later they are passed on from the
 * parser's own copy of the delimiter. No new match can begin inside a
 * partial one, because a boundary cannot contain CR (hp_multipart_boundary()
 * checks), so one byte of look-behind, the mismatching byte itself, is all
 * a failed match needs to re-examine.
 *
 * Part headers are collected in hbuf (max_header_bytes) and parsed once
 * complete; quoted parameter values are unescaped there in place, which is
 * why the part's views stay valid until the next part begins.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/multipart.h>
#include <hellepoll/str.h>

enum {
    S_PREAMBLE, /* before the first delimiter: discarded */
    S_AFTER,    /* just after a delimiter: "--", padding or CRLF */
    S_CLOSE,    /* after "-": the second '-' of the close delimiter */
    S_PADDING,  /* spaces and tabs after a delimiter */
    S_LF,       /* after the CR that ends a delimiter line */
    S_HEADERS,  /* a part's header block */
    S_BODY,     /* a part's content */
    S_EPILOGUE, /* after the close delimiter: discarded */
    S_ERROR,
};

struct hp_multipart {
    struct hp_multipart_opts o;
    unsigned state;
    int err;
    const char *reason;
    size_t k;    /* bytes of delim matched */
    size_t dlen; /* CRLF "--" boundary */
    char *delim;
    char *hbuf; /* max_header_bytes + 4 (the terminating CRLF CRLF) */
    size_t hlen;
    size_t parts;
    uint64_t part_bytes;
    bool end_due; /* a delimiter ended the content; on_part_end once its line is valid */
    struct hp_multipart_part part;
};

static void *default_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void default_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static int fail(struct hp_multipart *mp, int err, const char *reason)
{
    if (mp->state != S_ERROR) {
        mp->state = S_ERROR;
        mp->err = err;
        mp->reason = reason;
    }
    return mp->err;
}

static bool is_bchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
        return true;
    return c != 0 && strchr("'()+_,-./:=? ", c) != NULL;
}

static bool boundary_valid(struct hp_str b)
{
    if (b.len < 1 || b.len > 70 || b.ptr[b.len - 1] == ' ')
        return false;
    for (size_t i = 0; i < b.len; i++)
        if (!is_bchar((unsigned char)b.ptr[i]))
            return false;
    return true;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/*
 * The next "; name=value" parameter of a header value at *s (a token or a
 * quoted string, unescaped in place if @p buf is writable). Returns 1 with
 * the parameter, 0 at the end, -1 if malformed.
 */
static int next_param(struct hp_str *s, char *buf, struct hp_str *name, struct hp_str *value)
{
    const char *p = s->ptr, *end = s->ptr + s->len;

    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end)
        return 0;
    if (*p++ != ';')
        return -1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    name->ptr = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    name->len = (size_t)(p - name->ptr);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (name->len == 0 || p == end || *p++ != '=')
        return -1;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end && *p == '"') {
        /* quoted-string: unescape quoted-pairs onto the bytes read */
        char *w = buf ? buf + (p + 1 - s->ptr) : NULL;

        value->ptr = p + 1;
        value->len = 0;
        for (p++;; p++) {
            if (p == end)
                return -1;
            if (*p == '"')
                break;
            if (*p == '\\') {
                if (++p == end || buf == NULL)
                    return -1;
            }
            if (w)
                w[value->len] = *p;
            value->len++;
        }
        p++;
    } else {
        value->ptr = p;
        while (p < end && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        value->len = (size_t)(p - value->ptr);
        if (value->len == 0)
            return -1;
    }
    s->len -= (size_t)(p - s->ptr);
    s->ptr = p;
    return 1;
}

int hp_multipart_boundary(struct hp_str ct, struct hp_str *boundary)
{
    struct hp_str rest, name, value;
    ptrdiff_t semi;
    int rc;

    ct = hp_str_trim_ows(ct);
    semi = hp_str_index(ct, ';');
    rest = semi < 0 ? (struct hp_str){ct.ptr + ct.len, 0}
                    : (struct hp_str){ct.ptr + semi, ct.len - (size_t)semi};
    ct.len = semi < 0 ? ct.len : (size_t)semi;
    ct = hp_str_trim_ows(ct);
    if (!hp_str_has_prefix_nocase(ct, HP_STR_LIT("multipart/")) || ct.len == 10)
        return -EINVAL;
    while ((rc = next_param(&rest, NULL, &name, &value)) > 0) {
        if (hp_str_eq_nocase(name, HP_STR_LIT("boundary"))) {
            if (!boundary_valid(value))
                return -EINVAL;
            *boundary = value;
            return 0;
        }
    }
    return -EINVAL;
}

int hp_multipart_new(struct hp_multipart **out, struct hp_str boundary,
                     const struct hp_multipart_opts *opts)
{
    struct hp_multipart_opts o = opts ? *opts : (struct hp_multipart_opts){.ctx = NULL};
    struct hp_multipart *mp;
    size_t size;

    if (!boundary_valid(boundary))
        return -EINVAL;
    if (o.alloc.realloc == NULL)
        o.alloc = (struct hp_allocator){default_realloc, default_free, NULL};
    o.max_parts = o.max_parts ? o.max_parts : 128;
    o.max_header_bytes = o.max_header_bytes ? o.max_header_bytes : 8192;
    o.max_part_bytes = o.max_part_bytes ? o.max_part_bytes : (uint64_t)16 << 20;
    if (o.max_header_bytes > (1u << 30))
        return -EINVAL;
    size = sizeof(*mp) + 4 + boundary.len + (size_t)o.max_header_bytes + 4;
    if ((mp = o.alloc.realloc(o.alloc.ctx, NULL, size)) == NULL)
        return -ENOMEM;
    memset(mp, 0, sizeof(*mp));
    mp->o = o;
    mp->delim = (char *)(mp + 1);
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary.ptr, boundary.len);
    mp->dlen = 4 + boundary.len;
    mp->hbuf = mp->delim + mp->dlen;
    mp->state = S_PREAMBLE;
    mp->k = 2; /* the first delimiter may start the body without a CRLF */
    mp->reason = "";
    *out = mp;
    return 0;
}

void hp_multipart_free(struct hp_multipart *mp)
{
    if (mp)
        mp->o.alloc.free(mp->o.alloc.ctx, mp);
}

static int emit(struct hp_multipart *mp, const char *p, size_t n)
{
    int err;

    if (n == 0)
        return 0;
    /* Over the limit: what fits is still passed on, so that exactly
     * max_part_bytes arrive before the error however the body was cut. */
    if (n > mp->o.max_part_bytes - mp->part_bytes) {
        size_t fit = (size_t)(mp->o.max_part_bytes - mp->part_bytes);

        if (fit > 0 && emit(mp, p, fit) != 0)
            return mp->err;
        return fail(mp, -EFBIG, "part content over max_part_bytes");
    }
    mp->part_bytes += n;
    if (mp->o.on_part_data && (err = mp->o.on_part_data(mp->o.ctx, &mp->part, p, n)) != 0)
        return fail(mp, err, "on_part_data failed");
    return 0;
}

/*
 * Look for the delimiter in [*pp, end), passing content on if @p content.
 * Returns 0 with *pp at end (no whole delimiter yet) or just after a whole
 * delimiter (*found), or the error.
 */
static int scan(struct hp_multipart *mp, const char **pp, const char *end, bool content,
                bool *found)
{
    const char *p = *pp, *run = p, *mstart = NULL;
    size_t k = mp->k;
    int err;

    *found = false;
    while (p < end) {
        if (k == 0) {
            const char *q = memchr(p, '\r', (size_t)(end - p));

            if (q == NULL) {
                p = end;
                break;
            }
            mstart = q;
            k = 1;
            p = q + 1;
        } else if (*p == mp->delim[k]) {
            p++;
            if (++k == mp->dlen) {
                *found = true;
                break;
            }
        } else {
            /* Mismatch: the bytes matched were content after all. If they
             * came in an earlier piece they are only in delim now. */
            if (content && mstart == NULL) {
                if ((err = emit(mp, mp->delim, k)) != 0)
                    return err;
                run = p;
            }
            k = 0;
            mstart = NULL; /* and look at *p again: it may be a CR */
        }
    }
    mp->k = *found ? 0 : k;
    *pp = p;
    if (!content)
        return 0;
    if (k > 0) /* a whole delimiter, or part of one held back: content ends where it began */
        return mstart ? emit(mp, run, (size_t)(mstart - run)) : 0;
    return emit(mp, run, (size_t)(end - run));
}

/* Parse Content-Disposition's value into mp->part. 0 or -1. */
static int parse_disposition(struct hp_multipart *mp, struct hp_str v, const char **why)
{
    struct hp_str type = v, name, value;
    bool have_name = false;
    int rc;

    type.len = 0;
    while (type.len < v.len && is_tchar((unsigned char)v.ptr[type.len]))
        type.len++;
    if (!hp_str_eq_nocase(type, HP_STR_LIT("form-data"))) {
        *why = "part content-disposition is not form-data";
        return -1;
    }
    v.ptr += type.len;
    v.len -= type.len;
    while ((rc = next_param(&v, mp->hbuf + (v.ptr - mp->hbuf), &name, &value)) > 0) {
        if (hp_str_eq_nocase(name, HP_STR_LIT("name"))) {
            if (have_name)
                break;
            mp->part.name = value;
            have_name = true;
        } else if (hp_str_eq_nocase(name, HP_STR_LIT("filename"))) {
            if (mp->part.has_filename)
                break;
            mp->part.filename = value;
            mp->part.has_filename = true;
        }
    }
    if (rc != 0) {
        *why = "malformed content-disposition parameters";
        return -1;
    }
    if (!have_name) {
        *why = "part content-disposition without a name";
        return -1;
    }
    return 0;
}

/* The header block in hbuf[0..n) is complete (without its final CRLF CRLF). */
static int parse_headers(struct hp_multipart *mp, size_t n)
{
    const char *p = mp->hbuf, *end = mp->hbuf + n, *why = NULL;
    bool have_cd = false;

    mp->part = (struct hp_multipart_part){.index = mp->parts - 1, .headers = {mp->hbuf, n}};
    while (p < end && why == NULL) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        struct hp_str line = {p, (size_t)((eol ? eol : end) - p)}, name, value;
        ptrdiff_t colon = hp_str_index(line, ':');

        if (eol && (eol + 1 == end || eol[1] != '\n'))
            why = "bare cr in part headers";
        else if (memchr(line.ptr, '\n', line.len))
            why = "bare lf in part headers";
        else if (line.len && (line.ptr[0] == ' ' || line.ptr[0] == '\t'))
            why = "folded part header line";
        else if (colon <= 0)
            why = "part header line without a name and ':'";
        if (why)
            break;
        name = (struct hp_str){line.ptr, (size_t)colon};
        value =
            hp_str_trim_ows((struct hp_str){line.ptr + colon + 1, line.len - (size_t)colon - 1});
        for (size_t i = 0; i < name.len && !why; i++)
            if (!is_tchar((unsigned char)name.ptr[i]))
                why = "part header name is not a token";
        if (why)
            break;
        if (hp_str_eq_nocase(name, HP_STR_LIT("content-disposition"))) {
            if (have_cd)
                why = "two content-disposition fields in a part";
            else if (parse_disposition(mp, value, &why) == 0)
                have_cd = true;
        } else if (hp_str_eq_nocase(name, HP_STR_LIT("content-type"))) {
            mp->part.content_type = value;
        }
        p = eol ? eol + 2 : end;
    }
    if (why == NULL && !have_cd)
        why = "part without content-disposition";
    if (why)
        return fail(mp, -EBADMSG, why);
    return 0;
}

/* One byte of a part's header block. */
static int header_byte(struct hp_multipart *mp, char c)
{
    int err;

    if (mp->hlen == (size_t)mp->o.max_header_bytes + 4)
        return fail(mp, -EMSGSIZE, "part header block over max_header_bytes");
    mp->hbuf[mp->hlen++] = c;
    if (c != '\n')
        return 0;
    if (mp->hlen == 2 && mp->hbuf[0] == '\r')
        err = parse_headers(mp, 0); /* no fields at all */
    else if (mp->hlen >= 4 && memcmp(mp->hbuf + mp->hlen - 4, "\r\n\r\n", 4) == 0)
        err = parse_headers(mp, mp->hlen - 4);
    else
        return 0;
    if (err)
        return err;
    mp->state = S_BODY;
    mp->k = 0;
    mp->part_bytes = 0;
    if (mp->o.on_part_begin && (err = mp->o.on_part_begin(mp->o.ctx, &mp->part)) != 0)
        return fail(mp, err, "on_part_begin failed");
    return 0;
}

/* A whole delimiter was just matched: the part ends once its line is valid. */
static int delimiter(struct hp_multipart *mp)
{
    mp->end_due = mp->state == S_BODY;
    mp->state = S_AFTER;
    return 0;
}

/* The delimiter line is complete and well-formed: end the part before it. */
static int end_part(struct hp_multipart *mp)
{
    int err;

    if (mp->end_due && mp->o.on_part_end && (err = mp->o.on_part_end(mp->o.ctx, &mp->part)) != 0)
        return fail(mp, err, "on_part_end failed");
    mp->end_due = false;
    return 0;
}

/* One byte of a delimiter line's tail. */
static int line_byte(struct hp_multipart *mp, char c)
{
    switch (mp->state) {
    case S_AFTER:
    case S_PADDING:
        if (c == '-' && mp->state == S_AFTER) {
            mp->state = S_CLOSE;
            return 0;
        }
        if (c == ' ' || c == '\t') {
            mp->state = S_PADDING;
            return 0;
        }
        if (c == '\r') {
            mp->state = S_LF;
            return 0;
        }
        return fail(mp, -EBADMSG, "boundary followed by something else than crlf");
    case S_CLOSE:
        if (c != '-')
            return fail(mp, -EBADMSG, "boundary followed by a single '-'");
        mp->state = S_EPILOGUE;
        return end_part(mp);
    default: /* S_LF */
        if (c != '\n')
            return fail(mp, -EBADMSG, "boundary line ends in a bare cr");
        if (end_part(mp) != 0)
            return mp->err;
        if (mp->parts == mp->o.max_parts)
            return fail(mp, -E2BIG, "more parts than max_parts");
        mp->parts++;
        mp->hlen = 0;
        mp->state = S_HEADERS;
        return 0;
    }
}

int hp_multipart_feed(struct hp_multipart *mp, const void *data, size_t len)
{
    const char *p = data, *end = p + len;
    bool found;
    int err = 0;

    if (mp->state == S_ERROR)
        return mp->err;
    while (p < end && err == 0) {
        switch (mp->state) {
        case S_PREAMBLE:
        case S_BODY:
            err = scan(mp, &p, end, mp->state == S_BODY, &found);
            if (err == 0 && found)
                err = delimiter(mp);
            break;
        case S_HEADERS:
            err = header_byte(mp, *p++);
            break;
        case S_EPILOGUE:
            return 0;
        default:
            err = line_byte(mp, *p++);
            break;
        }
    }
    return err;
}

int hp_multipart_finish(struct hp_multipart *mp)
{
    if (mp->state == S_ERROR)
        return mp->err;
    if (mp->state != S_EPILOGUE)
        return fail(mp, -EBADMSG, "body ends before the closing boundary");
    return 0;
}

bool hp_multipart_done(const struct hp_multipart *mp)
{
    return mp->state == S_EPILOGUE;
}

const char *hp_multipart_reason(const struct hp_multipart *mp)
{
    return mp->reason;
}

bool hp_multipart_part_header(const struct hp_multipart_part *part, struct hp_str name,
                              struct hp_str *value)
{
    struct hp_str h = part->headers;

    while (h.len > 0) {
        ptrdiff_t cr = hp_str_index(h, '\r'), colon;
        struct hp_str line = {h.ptr, cr < 0 ? h.len : (size_t)cr};

        colon = hp_str_index(line, ':');
        if (colon > 0 && hp_str_eq_nocase((struct hp_str){line.ptr, (size_t)colon}, name)) {
            *value = hp_str_trim_ows(
                (struct hp_str){line.ptr + colon + 1, line.len - (size_t)colon - 1});
            return true;
        }
        if (cr < 0)
            break;
        h.ptr += cr + 2;
        h.len -= (size_t)cr + 2;
    }
    return false;
}
