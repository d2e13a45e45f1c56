/*
 * parser.c - strict, incremental HTTP/1.1 request-head parser and chunked
 * decoder (RFC 9112 framing, RFC 9110 semantics of the framing fields).
 *
 * Invariants:
 * - p->pos only grows, and every byte before it has been checked once: a
 *   call resumes in p->state at p->pos, so any split of the input parses
 *   exactly as the whole (the tests feed every split to prove it).
 * - Nothing ambiguous is guessed. Anything that two reasonable
 *   implementations could frame differently (CL+TE, differing lengths,
 *   bare CR, obs-fold, whitespace before the colon, ...) is an error.
 * - Results are offsets into the caller's buffer, never copies.
 * - A line may end in CRLF or, as RFC 9112 section 2.2 permits, a bare LF;
 *   a CR not followed by LF is always an error.
 */
#include "parser.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Character classes, one bit each. */
enum {
    C_TCHAR = 1,  /* token character (RFC 9110 section 5.6.2) */
    C_VALUE = 2,  /* field-vchar: VCHAR or obs-text */
    C_TARGET = 4, /* allowed in a request-target: VCHAR except '#' */
    C_HOST = 8,   /* reg-name / port character of a Host value */
    C_HEX = 16,   /* hexadecimal digit */
    C_VWS = 32,   /* field-vchar, SP or HTAB: may appear inside a field value */
    C_DIGIT = 64, /* decimal digit */
};

static const unsigned char char_class[256] = {
    0,   0,   0,   0,   0,   0,   0,   0,   0,   32,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,  0,  0,  0,  0,  0,  /* 0x10 */
    32,  47,  38,  35,  47,  47,  47,  47,  46,  46,  47, 47, 46, 47, 47, 38, /* 0x20 */
    127, 127, 127, 127, 127, 127, 127, 127, 127, 127, 38, 46, 38, 46, 38, 38, /* 0x30 */
    38,  63,  63,  63,  63,  63,  63,  47,  47,  47,  47, 47, 47, 47, 47, 47, /* 0x40 */
    47,  47,  47,  47,  47,  47,  47,  47,  47,  47,  47, 38, 38, 38, 39, 47, /* 0x50 */
    39,  63,  63,  63,  63,  63,  63,  47,  47,  47,  47, 47, 47, 47, 47, 47, /* 0x60 */
    47,  47,  47,  47,  47,  47,  47,  47,  47,  47,  47, 38, 39, 38, 47, 0,  /* 0x70 */
    34,  34,  34,  34,  34,  34,  34,  34,  34,  34,  34, 34, 34, 34, 34, 34, /* 0x80 */
    34,  34,  34,  34,  34,  34,  34,  34,  34,  34,  34, 34, 34, 34, 34, 34, /* 0x90 */
    34,  34,  34,  34,  34,  34,  34,  34,  34,  34,  34, 34, 34, 34, 34, 34, /* 0xa0 */
    34,  34,  34,  34,  34,  34,  34,  34,  34,  34,  34, 34, 34, 34, 34, 34, /* 0xb0 */
    34,  34,  34,  34,  34,  34,  34,  34,  34,  34,  34, 34, 34, 34, 34, 34, /* 0xc0 */
    34,  34,  34,  34,  34,  34,  34,  34,  34,  34,  34, 34, 34, 34, 34, 34, /* 0xd0 */
    34,  34,  34,  34,  34,  34,  34,  34,  34,  34,  34, 34, 34, 34, 34, 34, /* 0xe0 */
    34,  34,  34,  34,  34,  34,  34,  34,  34,  34,  34, 34, 34, 34, 34, 34, /* 0xf0 */
};

static inline bool is(unsigned char c, unsigned cls)
{
    return (char_class[c] & cls) != 0;
}

/* Scan a run of bytes of class @p cls from @p pos; return the first other byte's index. */
static inline uint32_t scan(const char *buf, uint32_t pos, uint32_t end, unsigned cls)
{
    const unsigned char *b = (const unsigned char *)buf;

    /* Four bytes per test while they last: the classes of all four, and-ed. */
    while (end - pos >= 4 && (char_class[b[pos]] & char_class[b[pos + 1]] & char_class[b[pos + 2]] &
                              char_class[b[pos + 3]] & cls))
        pos += 4;
    while (pos < end && is(b[pos], cls))
        pos++;
    return pos;
}

bool hp__http_is_tchar(unsigned char c)
{
    return is(c, C_TCHAR);
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

bool hp__http_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

        if (x != y && lower(x) != lower(y))
            return false;
    }
    return true;
}

/*
 * Compare @p a with the lowercase literal @p lit: exact for token bytes, since
 * every byte of lit (letters, digits, '-') has bit 0x20 set and no other
 * token byte maps onto one of them when that bit is set. Eight at a time.
 */
static inline bool is_lit(const char *a, const char *lit, size_t n)
{
    uint64_t x, y;

    for (; n >= 8; a += 8, lit += 8, n -= 8) {
        memcpy(&x, a, 8);
        memcpy(&y, lit, 8);
        if ((x | 0x2020202020202020u) != y)
            return false;
    }
    for (; n; a++, lit++, n--) {
        if (((unsigned char)*a | 0x20) != (unsigned char)*lit)
            return false;
    }
    return true;
}

/* Head parser states. */
enum {
    S_START = 0, /* before the request line; empty lines are skipped */
    S_START_LF,  /* saw CR of an empty leading line */
    S_METHOD,
    S_TARGET,
    S_VERSION,
    S_RL_LF,       /* saw CR after the version */
    S_FIELD_START, /* at the start of a field line, or the empty line */
    S_NAME,
    S_OWS, /* after the colon */
    S_VALUE,
    S_VALUE_LF, /* saw CR at the end of a value */
    S_END_LF,   /* saw CR of the final empty line */
};

/* Request-line bytes beyond the target that we tolerate (method, version). */
#define RL_SLACK 64u

/* Extra internal flags. */
enum {
    F_TE_CHUNKED_SEEN = 1u << 12,
    F_BAD_TE = 1u << 13,
};

void hp__http_parser_reset(struct hp__http_parser *p, struct hp__http_field *fields,
                           const struct hp__http_limits *limits)
{
    memset(p, 0, sizeof(*p));
    p->fields = fields;
    p->limits = limits;
}

static int64_t fail(struct hp__http_parser *p, int status, const char *reason)
{
    p->reason = reason;
    return -(int64_t)status;
}

static uint8_t method_id(const char *m, size_t n)
{
    static const struct {
        const char *name;
        uint8_t len, id;
    } known[] = {
        {"GET", 3, HP__M_GET},         {"HEAD", 4, HP__M_HEAD},     {"POST", 4, HP__M_POST},
        {"PUT", 3, HP__M_PUT},         {"DELETE", 6, HP__M_DELETE}, {"OPTIONS", 7, HP__M_OPTIONS},
        {"CONNECT", 7, HP__M_CONNECT}, {"TRACE", 5, HP__M_TRACE},   {"PATCH", 5, HP__M_PATCH},
    };

    if (n == 3 && m[0] == 'G' && m[1] == 'E' && m[2] == 'T')
        return HP__M_GET; /* by far the most common */
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (known[i].len == n && memcmp(known[i].name, m, n) == 0)
            return known[i].id;
    }
    return HP__M_OTHER;
}

/* Split path and query of the target at buf[off..off+len). */
static void split_path(struct hp__http_parser *p, const char *buf, uint32_t off, uint32_t len)
{
    const char *q = NULL;

    /* Short targets (the usual ones) are cheaper to scan than to call memchr for. */
    if (len >= 32)
        q = memchr(buf + off, '?', len);
    for (uint32_t i = 0; len < 32 && i < len; i++) {
        if (buf[off + i] == '?') {
            q = buf + off + i;
            break;
        }
    }

    p->path_off = off;
    if (q == NULL) {
        p->path_len = len;
        return;
    }
    p->path_len = (uint32_t)(q - (buf + off));
    p->query_off = p->path_off + p->path_len + 1;
    p->query_len = len - p->path_len - 1;
}

/* Absolute-form: http[s]://authority[/path][?query]. */
static int64_t absolute_target(struct hp__http_parser *p, const char *buf)
{
    const char *t = buf + p->target_off;
    uint32_t n = p->target_len, i;

    if (n >= 7 && hp__http_ieq(t, "http://", 7))
        i = 7;
    else if (n >= 8 && hp__http_ieq(t, "https://", 8))
        i = 8;
    else
        return fail(p, 400, "invalid request target");
    uint32_t auth = i;
    while (i < n && t[i] != '/' && t[i] != '?')
        i++;
    if (i == auth)
        return fail(p, 400, "invalid request target");
    for (uint32_t k = auth; k < i; k++) {
        if (t[k] == '@')
            return fail(p, 400, "invalid request target");
    }
    p->flags |= HP__REQ_ABSOLUTE;
    split_path(p, buf, p->target_off + i, n - i);
    return 0;
}

/* Classify the request-target (RFC 9112 section 3.2) once the line is read. */
static int64_t check_target(struct hp__http_parser *p, const char *buf)
{
    const char *t = buf + p->target_off;

    if (p->method_id == HP__M_CONNECT) {
        /* authority-form only: host:port, no path. */
        if (t[0] == '/' || memchr(t, '/', p->target_len) != NULL)
            return fail(p, 400, "connect needs an authority-form target");
        p->path_off = p->target_off;
        p->path_len = 0;
        return 0;
    }
    if (t[0] == '/') {
        split_path(p, buf, p->target_off, p->target_len);
        return 0;
    }
    if (p->target_len == 1 && t[0] == '*') {
        if (p->method_id != HP__M_OPTIONS)
            return fail(p, 400, "asterisk target is only for OPTIONS");
        p->path_off = p->target_off;
        p->path_len = 1;
        return 0;
    }
    return absolute_target(p, buf);
}

static int64_t check_version(struct hp__http_parser *p, const char *v, uint32_t n)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || !(v[5] >= '0' && v[5] <= '9') || v[6] != '.' ||
        !(v[7] >= '0' && v[7] <= '9'))
        return fail(p, 400, "malformed http version");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return fail(p, 505, "http version not supported");
    p->version_minor = (uint8_t)(v[7] - '0');
    return 0;
}

/* Content-Length: 1*DIGIT; repeated fields must agree. */
static int64_t field_content_length(struct hp__http_parser *p, const char *v, uint32_t n)
{
    uint64_t cl = 0;

    if (n == 0)
        return fail(p, 400, "invalid content-length");
    for (uint32_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return fail(p, 400, "invalid content-length");
        unsigned d = (unsigned)(v[i] - '0');
        if (cl > (UINT64_MAX - d) / 10)
            return fail(p, 400, "content-length overflows");
        cl = cl * 10 + d;
    }
    if ((p->flags & HP__REQ_HAS_LENGTH) && p->content_length != cl)
        return fail(p, 400, "differing content-length values");
    p->flags |= HP__REQ_HAS_LENGTH;
    p->content_length = cl;
    return 0;
}

/*
 * Transfer-Encoding: a list of codings, possibly over several fields. We
 * track whether the last coding so far is chunked, whether chunked came
 * twice, and whether any other coding appeared; the verdict is given at the
 * end of the head.
 */
static int64_t field_transfer_encoding(struct hp__http_parser *p, const char *v, uint32_t n)
{
    uint32_t i = 0;

    p->flags |= HP__REQ_TE_SEEN;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        if (i == n)
            break;
        uint32_t s = i;
        while (i < n && is((unsigned char)v[i], C_TCHAR))
            i++;
        if (i == s)
            return fail(p, 400, "invalid transfer-encoding");
        bool chunked = (i - s == 7 && hp__http_ieq(v + s, "chunked", 7));
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (i < n && v[i] == ';') {
            if (chunked)
                return fail(p, 400, "invalid transfer-encoding");
            while (i < n && v[i] != ',')
                i++;
        } else if (i < n && v[i] != ',') {
            return fail(p, 400, "invalid transfer-encoding");
        }
        if (chunked) {
            if (p->flags & F_TE_CHUNKED_SEEN)
                p->flags |= HP__REQ_TE_CHUNKED_TWICE;
            p->flags |= HP__REQ_CHUNKED | F_TE_CHUNKED_SEEN;
        } else {
            p->flags = (p->flags & ~(unsigned)HP__REQ_CHUNKED) | HP__REQ_TE_UNKNOWN;
        }
    }
    return 0;
}

/* Connection: a list of tokens; we act on close and keep-alive. */
static void field_connection(struct hp__http_parser *p, const char *v, uint32_t n)
{
    uint32_t i = 0;

    /* The usual values, whole. */
    if (n == 10 && is_lit(v, "keep-alive", 10)) {
        p->flags |= HP__REQ_KEEPALIVE;
        return;
    }
    if (n == 5 && is_lit(v, "close", 5)) {
        p->flags |= HP__REQ_CLOSE;
        return;
    }
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        uint32_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - s == 5 && is_lit(v + s, "close", 5))
            p->flags |= HP__REQ_CLOSE;
        else if (i - s == 10 && is_lit(v + s, "keep-alive", 10))
            p->flags |= HP__REQ_KEEPALIVE;
    }
}

/* Host = uri-host [":" port], where uri-host is an IP-literal or a reg-name. */
static bool valid_host(const char *v, uint32_t n)
{
    uint32_t i = 0;

    if (n > 0 && v[0] == '[') {
        for (i = 1; i < n && v[i] != ']'; i++) {
            unsigned char c = (unsigned char)v[i];
            if (!is(c, C_HEX) && c != ':' && c != '.' && c != 'v' && c != 'V')
                return false;
        }
        if (i == n || i == 1)
            return false;
        i++;
    } else {
        i = scan(v, 0, n, C_HOST); /* stops at the port's ':' or a bad byte */
    }
    if (i == n)
        return true;
    if (v[i] != ':')
        return false;
    return scan(v, i + 1, n, C_DIGIT) == n;
}

/* Act on a complete field whose slot is p->fields[p->nfields]. */
/* Act on a framing-relevant field (see end_field). */
static inline int64_t special_field(struct hp__http_parser *p, const struct hp__http_field *f,
                                    const char *buf)
{
    const char *name = buf + f->name_off;
    const char *v = buf + f->value_off;
    uint32_t n = f->value_len;
    int64_t rc = 0;

    switch (f->name_len) {
    case 4:
        if (is_lit(name, "host", 4)) {
            if (++p->host_count > 1)
                return fail(p, 400, "duplicate host");
            if (!valid_host(v, n))
                return fail(p, 400, "invalid host");
            p->flags |= HP__REQ_HAS_HOST;
        }
        break;
    case 6:
        if (is_lit(name, "expect", 6) && n == 12 && hp__http_ieq(v, "100-continue", 12))
            p->flags |= HP__REQ_EXPECT_100;
        break;
    case 10:
        if (is_lit(name, "connection", 10))
            field_connection(p, v, n);
        break;
    case 14:
        if (is_lit(name, "content-length", 14))
            rc = field_content_length(p, v, n);
        break;
    case 17:
        if (is_lit(name, "transfer-encoding", 17))
            rc = field_transfer_encoding(p, v, n);
        break;
    default:
        break;
    }
    return rc;
}

/* A field is complete: its slot is p->fields[p->nfields], its value p->mark..p->vend. */
static int64_t end_field(struct hp__http_parser *p, const char *buf)
{
    struct hp__http_field *f = &p->fields[p->nfields++];

    f->value_off = p->mark;
    f->value_len = p->vend - p->mark;
    return special_field(p, f, buf);
}

/* Framing verdict once the whole head is read (RFC 9112 section 6). */
static int64_t end_head(struct hp__http_parser *p)
{
    if (p->pos > p->limits->max_head)
        return fail(p, 431, "request header fields too large");
    if (p->version_minor == 1 && p->host_count == 0)
        return fail(p, 400, "missing host");
    if (p->flags & HP__REQ_TE_SEEN) {
        if (p->flags & HP__REQ_HAS_LENGTH)
            return fail(p, 400, "both content-length and transfer-encoding");
        if (p->version_minor == 0)
            return fail(p, 400, "transfer-encoding in an http/1.0 request");
        if (!(p->flags & HP__REQ_CHUNKED) || (p->flags & HP__REQ_TE_CHUNKED_TWICE))
            return fail(p, 400, "final transfer coding is not chunked");
        if (p->flags & HP__REQ_TE_UNKNOWN)
            return fail(p, 501, "transfer coding not implemented");
    }
    if (p->content_length > p->limits->max_body)
        return fail(p, 413, "content too large");
    return (int64_t)p->pos;
}

static int64_t start_field(struct hp__http_parser *p)
{
    if (p->nfields >= p->limits->max_headers)
        return fail(p, 431, "too many header fields");
    p->fields[p->nfields].name_off = p->pos;
    p->mark = p->pos;
    p->state = S_NAME;
    return 0;
}

static int64_t end_name(struct hp__http_parser *p)
{
    uint32_t n = p->pos - p->mark;

    if (n > UINT16_MAX)
        return fail(p, 431, "header field name too long");
    p->fields[p->nfields].name_len = (uint16_t)n;
    p->state = S_OWS;
    return 0;
}

/* The request line's target and version ends; validate both. */
static int64_t end_target(struct hp__http_parser *p, const char *buf)
{
    p->target_len = p->pos - p->target_off;
    if (p->target_len == 0)
        return fail(p, 400, "empty request target");
    p->mark = p->pos + 1;
    p->state = S_VERSION;
    return check_target(p, buf);
}

static int64_t end_request_line(struct hp__http_parser *p, const char *buf)
{
    int64_t rc = check_version(p, buf + p->mark, p->pos - p->mark);

    p->state = S_FIELD_START;
    return rc;
}

#ifdef __SSE2__
/*
 * Find the first byte at or after @p pos that cannot be inside a field value
 * (a control other than HTAB, or DEL), sixteen bytes at a time while sixteen
 * remain; the rest goes through the table.
 */
static inline uint32_t scan_vws(const char *buf, uint32_t pos, uint32_t end)
{
    const __m128i flip = _mm_set1_epi8((char)0x80), low = _mm_set1_epi8((char)(0x20 ^ 0x80));
    const __m128i del = _mm_set1_epi8(0x7f), tab = _mm_set1_epi8(0x09);

    while (end - pos >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(buf + pos));
        /* Unsigned x < 0x20 as a signed compare of x ^ 0x80. */
        __m128i bad =
            _mm_or_si128(_mm_cmplt_epi8(_mm_xor_si128(x, flip), low), _mm_cmpeq_epi8(x, del));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(x, tab), bad));

        if (m)
            return pos + (uint32_t)__builtin_ctz(m);
        pos += 16;
    }
    if (pos == end || end < 16)
        return scan(buf, pos, end, C_VWS);
    /* The last few bytes: one load ending at end (it starts before pos, never before buf). */
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(buf + end - 16));
    __m128i bad = _mm_or_si128(_mm_cmplt_epi8(_mm_xor_si128(x, flip), low), _mm_cmpeq_epi8(x, del));
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(x, tab), bad)) >>
                 (16 - (end - pos));

    return m ? pos + (uint32_t)__builtin_ctz(m) : end;
}

/*
 * Scan a token: letters, digits and '-' (what nearly every header name and
 * method is made of) sixteen at a time, then the table for anything else.
 */
/*
 * Scan a token: letters, digits and '-' (what nearly every header name and
 * method is made of) sixteen at a time, then the table for anything else.
 */
static inline uint32_t scan_tchar(const char *buf, uint32_t pos, uint32_t end)
{
    const __m128i lo = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a'), z = _mm_set1_epi8(25);
    const __m128i zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9), dash = _mm_set1_epi8('-');
    const __m128i none = _mm_setzero_si128();

    while (end - pos >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(buf + pos));
        /* v <= n, unsigned, as saturating v - n == 0. */
        __m128i alpha =
            _mm_cmpeq_epi8(_mm_subs_epu8(_mm_sub_epi8(_mm_or_si128(x, lo), a), z), none);
        __m128i digit = _mm_cmpeq_epi8(_mm_subs_epu8(_mm_sub_epi8(x, zero), nine), none);
        __m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(x, dash));
        unsigned m = ~(unsigned)_mm_movemask_epi8(ok) & 0xffffu;

        if (m) {
            pos += (uint32_t)__builtin_ctz(m);
            if (!is((unsigned char)buf[pos], C_TCHAR))
                return pos; /* the usual end: ':' or ' ' */
            break;
        }
        pos += 16;
    }
    return scan(buf, pos, end, C_TCHAR);
}
#else
static inline uint32_t scan_vws(const char *buf, uint32_t pos, uint32_t end)
{
    return scan(buf, pos, end, C_VWS);
}

static inline uint32_t scan_tchar(const char *buf, uint32_t pos, uint32_t end)
{
    return scan(buf, pos, end, C_TCHAR);
}
#endif

/*
 * The value scanner: field-vchar and inner whitespace. p->vend is the end of
 * the value without trailing whitespace, found by looking back once the run
 * ends (the buffer keeps every byte, so a resumed scan finds the same).
 */
static inline uint32_t scan_value(struct hp__http_parser *p, const char *buf, uint32_t end)
{
    uint32_t pos = scan_vws(buf, p->pos, end), vend = pos;

    while (vend > p->mark && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
        vend--;
    p->vend = vend;
    return pos;
}

/*
 * The fast path for one field line that is all in the buffer and well formed:
 * name, colon, optional whitespace, value, CRLF (or LF), at p->pos in state
 * S_FIELD_START. Returns 1 when the line was taken (p->pos is past it), 0 to
 * leave it to the state machine (incomplete, or anything unusual: the slow
 * path then gives the precise error), or the negative status of a field
 * that is well formed but not acceptable (too many, a bad Host, ...).
 */
static int64_t field_line(struct hp__http_parser *p, const char *buf, uint32_t end)
{
    uint32_t name = p->pos, colon = scan_tchar(buf, name, end), v, vend, next;
    int64_t rc;

    if (colon == end || buf[colon] != ':')
        return 0;
    v = colon + 1;
    if (v < end && buf[v] == ' ')
        v++; /* the usual single space */
    while (v < end && (buf[v] == ' ' || buf[v] == '\t'))
        v++;
    vend = scan_vws(buf, v, end);
    if (vend == end)
        return 0;
    if (buf[vend] == '\n')
        next = vend + 1;
    else if (buf[vend] == '\r' && vend + 1 < end && buf[vend + 1] == '\n')
        next = vend + 2;
    else
        return 0;
    if ((rc = start_field(p)) != 0 || (p->pos = colon, rc = end_name(p)) != 0)
        return rc;
    p->mark = v;
    while (vend > v && (unsigned char)buf[vend - 1] <= ' ') /* SP or HTAB, here */
        vend--;
    p->vend = vend;
    p->pos = next;
    p->state = S_FIELD_START;
    rc = end_field(p, buf);
    return rc != 0 ? rc : 1;
}

/*
 * Run the state machine over buf[p->pos..end). Each state consumes what it
 * can in a tight loop; "continue" re-dispatches without consuming, "break"
 * consumes the current byte. Returns 0 when all bytes are used (more are
 * needed), the head length when it is complete, or a negative status.
 */
static int64_t run(struct hp__http_parser *p, const char *buf, uint32_t end)
{
    while (p->pos < end) {
        unsigned char c = (unsigned char)buf[p->pos];
        int64_t rc = 0;

        switch (p->state) {
        case S_START:
            if (c == '\r') {
                p->state = S_START_LF;
            } else if (c != '\n') {
                if (!is(c, C_TCHAR))
                    return fail(p, 400, "invalid character in method");
                p->method_off = p->pos;
                p->state = S_METHOD;
                p->pos = scan_tchar(buf, p->pos, end);
                continue;
            }
            break;
        case S_START_LF:
            if (c != '\n')
                return fail(p, 400, "bare cr");
            p->state = S_START;
            break;
        case S_METHOD:
            p->pos = scan_tchar(buf, p->pos, end);
            if (p->pos == end)
                continue;
            if (buf[p->pos] != ' ')
                return fail(p, 400, "invalid character in method");
            if (p->pos - p->method_off > UINT16_MAX)
                return fail(p, 414, "request line too long");
            p->method_len = (uint16_t)(p->pos - p->method_off);
            p->method_id = method_id(buf + p->method_off, p->method_len);
            p->target_off = p->pos + 1;
            p->state = S_TARGET;
            break;
        case S_TARGET:
            p->pos = scan(buf, p->pos, end, C_TARGET);
            if (p->pos - p->target_off > p->limits->max_target)
                return fail(p, 414, "request target too long");
            if (p->pos == end)
                continue;
            if (buf[p->pos] != ' ')
                return fail(p, 400, "invalid character in request target");
            rc = end_target(p, buf);
            break;
        case S_VERSION:
            /* Usual case: "HTTP/1.x" is all there, at once. */
            if (p->pos == p->mark && end - p->pos > 8 && memcmp(buf + p->pos, "HTTP/1.", 7) == 0)
                p->pos += 8;
            while (p->pos < end && buf[p->pos] != '\r' && buf[p->pos] != '\n' &&
                   p->pos - p->mark <= 8)
                p->pos++;
            if (p->pos - p->mark > 8)
                return fail(p, 400, "malformed http version");
            if (p->pos == end)
                continue;
            rc = end_request_line(p, buf);
            if (rc == 0 && buf[p->pos] == '\r')
                p->state = S_RL_LF;
            break;
        case S_RL_LF:
            if (c != '\n')
                return fail(p, 400, "bare cr");
            p->state = S_FIELD_START;
            break;
        case S_FIELD_START:
            if (c == '\r') {
                p->state = S_END_LF;
            } else if (c == '\n') {
                p->pos++;
                return end_head(p);
            } else if (c == ' ' || c == '\t') {
                return fail(p, 400, "obsolete line folding");
            } else if (!is(c, C_TCHAR)) {
                return fail(p, 400, "invalid character in header name");
            } else {
                /* A whole, well-formed line in the buffer takes the fast path. */
                rc = field_line(p, buf, end);
                if (rc > 0)
                    continue;
                if (rc == 0)
                    rc = start_field(p);
                if (rc != 0)
                    return rc;
                continue;
            }
            break;
        case S_NAME:
            p->pos = scan_tchar(buf, p->pos, end);
            if (p->pos == end)
                continue;
            c = (unsigned char)buf[p->pos];
            if (c == ' ' || c == '\t')
                return fail(p, 400, "whitespace before colon");
            if (c != ':')
                return fail(p, 400, "invalid character in header name");
            if (p->pos == p->mark)
                return fail(p, 400, "empty header name");
            rc = end_name(p);
            break;
        case S_OWS:
            if (c == ' ' || c == '\t')
                break;
            p->mark = p->vend = p->pos;
            p->state = S_VALUE;
            continue;
        case S_VALUE:
            p->pos = scan_value(p, buf, end);
            if (p->pos == end)
                continue;
            c = (unsigned char)buf[p->pos];
            if (c == '\r')
                p->state = S_VALUE_LF;
            else if (c == '\n')
                p->state = S_FIELD_START;
            else
                return fail(p, 400, "invalid character in header value");
            rc = end_field(p, buf);
            break;
        case S_VALUE_LF:
            if (c != '\n')
                return fail(p, 400, "bare cr");
            p->state = S_FIELD_START;
            break;
        case S_END_LF:
            if (c != '\n')
                return fail(p, 400, "bare cr");
            p->pos++;
            return end_head(p);
        default:
            return fail(p, 500, "parser state corrupted");
        }
        p->pos++;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Over-long heads get 414 while still in the request line, 431 after. */
static int64_t too_long(struct hp__http_parser *p)
{
    if (p->state <= S_VERSION)
        return fail(p, 414, "request line too long");
    return fail(p, 431, "request header fields too large");
}

int64_t hp__http_parse_head(struct hp__http_parser *p, const char *buf, size_t len)
{
    const struct hp__http_limits *lim = p->limits;
    uint32_t rl_max = lim->max_target + RL_SLACK;
    uint32_t cap = lim->max_head > rl_max ? lim->max_head : rl_max;
    /* Never look past the head limit: the remaining bytes cannot be ours. */
    uint32_t end = len > (size_t)cap + 1 ? cap + 1 : (uint32_t)len;

    while (p->pos < end) {
        /*
         * Never scan past the limit of the current part: the verdict on an
         * over-long line must not depend on where the reads were split.
         */
        uint32_t part = p->state <= S_VERSION ? rl_max : lim->max_head;
        int64_t rc = run(p, buf, end < part + 1 ? end : part + 1);
        if (rc != 0)
            return rc;
        if (p->state <= S_VERSION && p->pos > rl_max)
            return too_long(p);
        if (p->pos > lim->max_head)
            return too_long(p);
    }
    return 0;
}

/* ---- chunked bodies ---------------------------------------------------- */

enum {
    K_SIZE = 0, /* first hex digit expected */
    K_SIZE_MORE,
    K_SIZE_WS, /* whitespace after the size: an extension must follow */
    K_EXT,     /* after ';': BWS, then an extension name */
    K_EXT_NAME,
    K_EXT_NAME_WS, /* BWS after a name: '=', ';' or the line end */
    K_EXT_EQ,      /* after '=': BWS, then a token or a quoted string */
    K_EXT_TOKEN,
    K_EXT_QUOTED,
    K_EXT_QESC,  /* after a backslash in a quoted string */
    K_EXT_AFTER, /* BWS after a value: ';' or the line end */
    K_SIZE_LF,
    K_DATA,
    K_DATA_CR,
    K_DATA_LF,
    K_TRAILER_START,
    K_TRAILER_NAME,
    K_TRAILER_VALUE,
    K_TRAILER_LF,
    K_END_LF,
};

static int cfail(struct hp__http_chunked *c, int status, const char *reason)
{
    c->reason = reason;
    return -status;
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = lower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* The size line ended: go to data, or to the trailer after the last chunk. */
static int size_done(struct hp__http_chunked *c, uint64_t max_body)
{
    if (c->remaining > max_body - c->total)
        return cfail(c, 413, "content too large");
    c->state = c->remaining == 0 ? K_TRAILER_START : K_DATA;
    c->line = 0;
    return 0;
}

/*
 * The byte @p ch after a chunk size or extension: the line must end in CRLF
 * (RFC 9112 section 7.1; a bare LF here is a known smuggling vector).
 */
static int chunk_line_end(struct hp__http_chunked *c, unsigned char ch)
{
    if (ch == '\r') {
        c->state = K_SIZE_LF;
        return 0;
    }
    if (ch == '\n')
        return cfail(c, 400, "bare lf in chunk size line");
    return cfail(c, 400,
                 c->state == K_SIZE_MORE ? "invalid chunk size" : "invalid chunk extension");
}

/* One byte of the size line, extension or trailer; 1 = decoding finished. */
static int chunk_meta(struct hp__http_chunked *c, unsigned char ch, uint64_t max_body)
{
    int h;

    switch (c->state) {
    case K_SIZE:
    case K_SIZE_MORE:
        h = hex_value(ch);
        if (h >= 0) {
            if (++c->digits > 16)
                return cfail(c, 400, "chunk size overflows");
            c->remaining = (c->remaining << 4) | (uint64_t)h;
            c->state = K_SIZE_MORE;
            return 0;
        }
        if (c->state == K_SIZE)
            return cfail(c, 400, "invalid chunk size");
        if (ch == ';')
            c->state = K_EXT;
        else if (ch == ' ' || ch == '\t')
            c->state = K_SIZE_WS;
        else
            return chunk_line_end(c, ch);
        return 0;
    case K_SIZE_WS:
        /* Whitespace after the size is only allowed before an extension. */
        if (ch == ';')
            c->state = K_EXT;
        else if (ch != ' ' && ch != '\t')
            return cfail(c, 400, "invalid chunk size");
        return 0;
    /*
     * RFC 9112 section 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name
     * [ BWS "=" BWS chunk-ext-val ] ), a name is a token, a value a token or
     * a quoted-string. Extensions are checked, then dropped.
     */
    case K_EXT:
    case K_EXT_EQ:
        if (ch == ' ' || ch == '\t')
            return 0;
        if (c->state == K_EXT_EQ && ch == '"') {
            c->state = K_EXT_QUOTED;
            return 0;
        }
        if (!is(ch, C_TCHAR))
            return cfail(c, 400, "invalid chunk extension");
        c->state = c->state == K_EXT ? K_EXT_NAME : K_EXT_TOKEN;
        return 0;
    case K_EXT_NAME:
    case K_EXT_NAME_WS:
    case K_EXT_TOKEN:
    case K_EXT_AFTER:
        if ((c->state == K_EXT_NAME || c->state == K_EXT_TOKEN) && is(ch, C_TCHAR))
            return 0;
        if (ch == ' ' || ch == '\t') {
            c->state =
                c->state == K_EXT_NAME || c->state == K_EXT_NAME_WS ? K_EXT_NAME_WS : K_EXT_AFTER;
            return 0;
        }
        if (ch == '=' && (c->state == K_EXT_NAME || c->state == K_EXT_NAME_WS)) {
            c->state = K_EXT_EQ;
            return 0;
        }
        if (ch == ';') {
            c->state = K_EXT;
            return 0;
        }
        if (ch == '\r' || ch == '\n')
            return chunk_line_end(c, ch);
        return cfail(c, 400, "invalid chunk extension");
    case K_EXT_QUOTED:
        if (ch == '"')
            c->state = K_EXT_AFTER;
        else if (ch == '\\')
            c->state = K_EXT_QESC;
        else if (!is(ch, C_VALUE) && ch != ' ' && ch != '\t')
            return cfail(c, 400, "invalid chunk extension");
        return 0;
    case K_EXT_QESC:
        if (!is(ch, C_VALUE) && ch != ' ' && ch != '\t')
            return cfail(c, 400, "invalid chunk extension");
        c->state = K_EXT_QUOTED;
        return 0;
    case K_SIZE_LF:
        if (ch != '\n')
            return cfail(c, 400, "bare cr");
        return size_done(c, max_body);
    case K_DATA_CR:
        if (ch != '\r')
            return cfail(c, 400, "missing crlf after chunk data");
        c->state = K_DATA_LF;
        return 0;
    case K_DATA_LF:
        if (ch != '\n')
            return cfail(c, 400, "missing crlf after chunk data");
        c->state = K_SIZE;
        c->digits = 0;
        c->line = 0;
        return 0;
    case K_TRAILER_START:
        if (ch == '\r') {
            c->state = K_END_LF;
            return 0;
        }
        if (ch == '\n')
            return 1;
        if (!is(ch, C_TCHAR))
            return cfail(c, 400, "invalid trailer field");
        c->state = K_TRAILER_NAME;
        return 0;
    case K_TRAILER_NAME:
        if (ch == ':')
            c->state = K_TRAILER_VALUE;
        else if (!is(ch, C_TCHAR))
            return cfail(c, 400, "invalid trailer field");
        return 0;
    case K_TRAILER_VALUE:
        if (ch == '\r')
            c->state = K_TRAILER_LF;
        else if (ch == '\n')
            c->state = K_TRAILER_START;
        else if (!is(ch, C_VALUE) && ch != ' ' && ch != '\t')
            return cfail(c, 400, "invalid trailer field");
        return 0;
    case K_TRAILER_LF:
        if (ch != '\n')
            return cfail(c, 400, "bare cr");
        c->state = K_TRAILER_START;
        return 0;
    case K_END_LF:
        if (ch != '\n')
            return cfail(c, 400, "bare cr");
        return 1;
    default:
        return cfail(c, 500, "chunked state corrupted");
    }
}

int hp__http_chunked_decode(struct hp__http_chunked *c, char *buf, size_t len, size_t *rpos,
                            size_t *wpos, uint64_t max_body, uint32_t max_meta)
{
    size_t r = *rpos, w = *wpos;
    int rc = 0;

    while (r < len && rc == 0) {
        if (c->state == K_DATA) {
            size_t n = len - r;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            if (w != r)
                memmove(buf + w, buf + r, n);
            r += n;
            w += n;
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = K_DATA_CR;
            continue;
        }
        bool in_trailer = c->state >= K_TRAILER_START;
        rc = chunk_meta(c, (unsigned char)buf[r++], max_body);
        if (in_trailer) {
            if (++c->trailer > max_meta)
                rc = cfail(c, 431, "trailer fields too large");
        } else if (c->state != K_DATA && ++c->line > max_meta) {
            rc = cfail(c, 400, "chunk size line too long");
        }
    }
    *rpos = r;
    *wpos = w;
    return rc;
}
