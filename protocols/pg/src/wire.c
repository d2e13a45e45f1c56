/*
 * wire.c - PostgreSQL protocol 3.0 messages of the query path (see wire.h):
 * writing a query, framing and decoding the backend's answers into a result.
 * Every length read from the server is checked against the message it is in.
 */
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define KEEP_MAX ((size_t)1 << 20) /* memory a connection keeps between answers */

static void *grow(const struct hp_allocator *a, void *p, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 16;
    void *q;

    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return NULL;
        n *= 2;
    }
    if (!(q = a->realloc(a->ctx, p, n * elem)))
        return NULL;
    *cap = n;
    return q;
}

static int reserve(struct pgbuild *b, size_t bytes, size_t cells);

/* ---- the result -------------------------------------------------------- */

void hp__pg_build_init(struct pgbuild *b, const struct hp_allocator *alloc)
{
    memset(b, 0, sizeof(*b));
    b->alloc = alloc;
    b->msg = b->sqlstate = b->cmd = SIZE_MAX;
}

void hp__pg_build_fini(struct pgbuild *b)
{
    b->alloc->free(b->alloc->ctx, b->data);
    b->alloc->free(b->alloc->ctx, b->cells);
    b->alloc->free(b->alloc->ctx, b->names);
    hp__pg_build_init(b, b->alloc);
}

void hp__pg_build_reset(struct pgbuild *b)
{
    if (b->cap > KEEP_MAX || b->cellcap * sizeof(struct pgcell) > KEEP_MAX) {
        hp__pg_build_fini(b);
        return;
    }
    b->len = b->ncells = 0;
    b->cols = b->rows = 0;
    b->failed = false;
    b->msg = b->sqlstate = b->cmd = SIZE_MAX;
}

/* Append n bytes and a NUL; *off gets where they start. */
static int put_str(struct pgbuild *b, const char *s, size_t n, size_t *off)
{
    if (n >= SIZE_MAX - b->len - 1)
        return -ENOMEM;
    if (b->len + n + 1 > b->cap) {
        char *d = grow(b->alloc, b->data, &b->cap, b->len + n + 1, 1);

        if (!d)
            return -ENOMEM;
        b->data = d;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->data[b->len + n] = '\0';
    *off = b->len;
    b->len += n + 1;
    return 0;
}

int hp__pg_build_cols(struct pgbuild *b, int cols)
{
    if (cols > b->namecap) {
        size_t cap = (size_t)b->namecap;
        size_t *p = grow(b->alloc, b->names, &cap, (size_t)cols, sizeof(size_t));

        if (!p)
            return -ENOMEM;
        b->names = p;
        b->namecap = (int)cap;
    }
    b->cols = cols;
    b->ncells = 0; /* a second description (it does not happen) starts the rows over */
    b->rows = 0;
    return 0;
}

int hp__pg_build_name(struct pgbuild *b, int col, const char *s, size_t n)
{
    return put_str(b, s, n, &b->names[col]);
}

int hp__pg_build_value(struct pgbuild *b, const char *s, size_t n)
{
    struct pgcell *c;

    if (n > INT32_MAX)
        return -ENOMEM;
    if (b->ncells == b->cellcap) {
        struct pgcell *p = grow(b->alloc, b->cells, &b->cellcap, b->ncells + 1, sizeof(*p));

        if (!p)
            return -ENOMEM;
        b->cells = p;
    }
    c = &b->cells[b->ncells];
    if (!s) {
        c->off = 0;
        c->len = -1;
    } else {
        int err = put_str(b, s, n, &c->off);

        if (err)
            return err;
        c->len = (int32_t)n;
    }
    b->ncells++;
    return 0;
}

int hp__pg_build_cmd(struct pgbuild *b, const char *s, size_t n)
{
    return put_str(b, s, n, &b->cmd);
}

int hp__pg_build_error(struct pgbuild *b, const char *msg, size_t mlen, const char *state,
                       size_t slen)
{
    int err;

    if (b->failed)
        return 0;
    b->failed = true;
    if ((err = put_str(b, msg, mlen, &b->msg)) != 0)
        return err;
    return state && slen ? put_str(b, state, slen, &b->sqlstate) : 0;
}

struct pgdesc *hp__pg_desc_new(const struct pgbuild *b)
{
    size_t len = 0, head = sizeof(struct pgdesc) + (size_t)b->cols * sizeof(size_t);
    struct pgdesc *d;
    char *names;

    for (int i = 0; i < b->cols; i++)
        len += strlen(b->data + b->names[i]) + 1;
    if (!(d = b->alloc->realloc(b->alloc->ctx, NULL, head + len)))
        return NULL;
    d->next = NULL;
    d->cols = b->cols;
    d->len = len;
    names = (char *)d + head;
    len = 0;
    for (int i = 0; i < b->cols; i++) {
        size_t n = strlen(b->data + b->names[i]) + 1;

        memcpy(names + len, b->data + b->names[i], n);
        d->offs[i] = len;
        len += n;
    }
    return d;
}

void hp__pg_desc_free(const struct hp_allocator *alloc, struct pgdesc *d)
{
    alloc->free(alloc->ctx, d);
}

int hp__pg_build_desc(struct pgbuild *b, const struct pgdesc *d)
{
    const char *names = (const char *)&d->offs[d->cols];
    size_t base;
    int err;

    if ((err = hp__pg_build_cols(b, d->cols)) != 0 || (err = reserve(b, d->len, 0)) != 0)
        return err;
    base = b->len;
    if (d->len)
        memcpy(b->data + base, names, d->len);
    b->len += d->len;
    for (int i = 0; i < d->cols; i++)
        b->names[i] = base + d->offs[i];
    return 0;
}

void hp__pg_build_result(const struct pgbuild *b, int status, struct hp_pg_result *out)
{
    *out = (struct hp_pg_result){
        .rows = status == 0 ? b->rows : 0,
        .cols = status == 0 ? b->cols : 0,
        .status = status,
        .msg = b->msg != SIZE_MAX ? b->data + b->msg : NULL,
        .sqlstate = b->sqlstate != SIZE_MAX ? b->data + b->sqlstate : NULL,
        .cmd = status == 0 && b->cmd != SIZE_MAX ? b->data + b->cmd : NULL,
        .data = b->data,
        .names = b->names,
        .cells = b->cells,
    };
}

/* ---- writing ----------------------------------------------------------- */

void hp__pg_out_init(struct pgout *o, const struct hp_allocator *alloc)
{
    memset(o, 0, sizeof(*o));
    o->alloc = alloc;
}

void hp__pg_out_fini(struct pgout *o)
{
    o->alloc->free(o->alloc->ctx, o->buf);
    hp__pg_out_init(o, o->alloc);
}

void hp__pg_out_compact(struct pgout *o)
{
    if (o->sent == o->len) {
        o->sent = o->len = 0;
        if (o->cap > KEEP_MAX)
            hp__pg_out_fini(o);
        return;
    }
    memmove(o->buf, o->buf + o->sent, o->len - o->sent);
    o->len -= o->sent;
    o->sent = 0;
}

static char *put_u32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

static char *put_u16(char *p, unsigned v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
    return p + 2;
}

static char *put_cstr(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    p[n] = '\0';
    return p + n + 1;
}

static size_t param_len(const char *const *values, const int *lengths, int i)
{
    if (!values[i])
        return 0;
    return lengths ? (size_t)lengths[i] : strlen(values[i]);
}

int hp__pg_wire_query(struct pgout *o, bool parse, bool describe, const char *stmt, const char *sql,
                      int nparams, const char *const *values, const int *lengths)
{
    static const char full_tail[] = {
        'D', 0, 0, 0, 6, 'P', 0,          /* Describe the unnamed portal */
        'E', 0, 0, 0, 9, 0,   0, 0, 0, 0, /* Execute it, all rows */
        'S', 0, 0, 0, 4,                  /* Sync */
    };
    const char *tail = describe ? full_tail : full_tail + 7;
    size_t tlen = describe ? sizeof(full_tail) : sizeof(full_tail) - 7;
    size_t slen = strlen(stmt), qlen = parse ? strlen(sql) : 0;
    size_t plen = parse ? 4 + slen + 1 + qlen + 1 + 2 : 0;
    size_t blen = 4 + 1 + slen + 1 + 2 + 2 + 2, need;
    char *p;

    for (int i = 0; i < nparams; i++) {
        blen += 4 + param_len(values, lengths, i);
        if (blen > HP__PG_MAX_MSG)
            return -EMSGSIZE;
    }
    if (plen > HP__PG_MAX_MSG)
        return -EMSGSIZE;
    need = (parse ? 1 + plen : 0) + 1 + blen + tlen;
    if (o->len + need > o->cap) {
        char *b = grow(o->alloc, o->buf, &o->cap, o->len + need, 1);

        if (!b)
            return -ENOMEM;
        o->buf = b;
    }
    p = o->buf + o->len;
    if (parse) {
        *p++ = 'P';
        p = put_u32(p, (uint32_t)plen);
        p = put_cstr(p, stmt, slen);
        p = put_cstr(p, sql, qlen);
        p = put_u16(p, 0); /* parameter types: the server infers them */
    }
    *p++ = 'B';
    p = put_u32(p, (uint32_t)blen);
    *p++ = '\0'; /* the unnamed portal */
    p = put_cstr(p, stmt, slen);
    p = put_u16(p, 0); /* parameter formats: all text */
    p = put_u16(p, (unsigned)nparams);
    for (int i = 0; i < nparams; i++) {
        size_t n = param_len(values, lengths, i);

        if (!values[i]) {
            p = put_u32(p, UINT32_MAX); /* -1: NULL */
            continue;
        }
        p = put_u32(p, (uint32_t)n);
        memcpy(p, values[i], n);
        p += n;
    }
    p = put_u16(p, 0); /* result formats: all text */
    memcpy(p, tail, tlen);
    o->len += need;
    return 0;
}

/* ---- reading ----------------------------------------------------------- */

static uint32_t get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static unsigned get_u16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return (unsigned)u[0] << 8 | u[1];
}

long hp__pg_wire_frame(const char *p, size_t n, struct pgmsg *m)
{
    uint32_t len;

    m->len = 0;
    if (n < 5)
        return 0;
    len = get_u32(p + 1);
    if (len < 4 || len > HP__PG_MAX_MSG)
        return -EPROTO;
    if (n - 1 < len) {
        m->len = (size_t)len + 1;
        return 0;
    }
    m->type = p[0];
    m->body = p + 5;
    m->len = len - 4;
    return (long)len + 1;
}

/* A NUL-terminated string at body[*at]: its length, and *at past the NUL; -1 if unterminated. */
static long get_cstr(const struct pgmsg *m, size_t *at)
{
    const char *s = m->body + *at, *z;

    if (*at >= m->len || !(z = memchr(s, '\0', m->len - *at)))
        return -1;
    *at += (size_t)(z - s) + 1;
    return z - s;
}

int hp__pg_wire_rowdesc(struct pgbuild *b, const struct pgmsg *m)
{
    size_t at = 2;
    int cols, err;

    if (m->len < 2)
        return -EPROTO;
    cols = (int)get_u16(m->body);
    if ((err = hp__pg_build_cols(b, cols)) != 0)
        return err;
    for (int i = 0; i < cols; i++) {
        size_t start = at;
        long n = get_cstr(m, &at);

        if (n < 0 || m->len - at < 18)
            return -EPROTO;
        if ((err = hp__pg_build_name(b, i, m->body + start, (size_t)n)) != 0)
            return err;
        if (get_u16(m->body + at + 16) != 0)
            return -EPROTO; /* binary: never asked for */
        at += 18;
    }
    return at == m->len ? 0 : -EPROTO;
}

/* Room for @p bytes more data and @p cells more cells. */
static int reserve(struct pgbuild *b, size_t bytes, size_t cells)
{
    if (b->len + bytes > b->cap) {
        char *d = grow(b->alloc, b->data, &b->cap, b->len + bytes, 1);

        if (!d)
            return -ENOMEM;
        b->data = d;
    }
    if (b->ncells + cells > b->cellcap) {
        struct pgcell *c = grow(b->alloc, b->cells, &b->cellcap, b->ncells + cells, sizeof(*c));

        if (!c)
            return -ENOMEM;
        b->cells = c;
    }
    return 0;
}

/*
 * One row: room for all of it first (its values are at most the message's
 * bytes, plus a NUL each), then every value copied without further checks
 * of memory.
 */
int hp__pg_wire_datarow(struct pgbuild *b, const struct pgmsg *m)
{
    size_t at = 2, len = b->len;
    struct pgcell *cell;
    int err;

    if (m->len < 2 || (int)get_u16(m->body) != b->cols)
        return -EPROTO;
    if (b->cols == 0) { /* SELECT FROM t: rows without columns */
        if (m->len != 2 || b->rows == INT_MAX)
            return -EPROTO;
        b->rows++;
        return 0;
    }
    if (b->rows == INT_MAX)
        return -EPROTO;
    if ((err = reserve(b, m->len + (size_t)b->cols, (size_t)b->cols)) != 0)
        return err;
    cell = b->cells + b->ncells;
    for (int i = 0; i < b->cols; i++, cell++) {
        uint32_t n;

        if (m->len - at < 4)
            return -EPROTO;
        n = get_u32(m->body + at);
        at += 4;
        if (n == UINT32_MAX) {
            cell->off = 0;
            cell->len = -1;
            continue;
        }
        if (n > m->len - at)
            return -EPROTO;
        memcpy(b->data + len, m->body + at, n);
        b->data[len + n] = '\0';
        cell->off = len;
        cell->len = (int32_t)n;
        len += n + 1;
        at += n;
    }
    if (at != m->len)
        return -EPROTO;
    b->len = len;
    b->ncells += (size_t)b->cols;
    b->rows++;
    return 0;
}

int hp__pg_wire_command(struct pgbuild *b, const struct pgmsg *m)
{
    size_t at = 0;
    long n = get_cstr(m, &at);

    if (n < 0 || at != m->len)
        return -EPROTO;
    return hp__pg_build_cmd(b, m->body, (size_t)n);
}

/* The fields of an ErrorResponse: *msg and *state point into it ("" when missing). */
static int error_fields(const struct pgmsg *m, const char **msg, size_t *mlen, const char **state,
                        size_t *slen)
{
    size_t at = 0;

    *msg = *state = "";
    *mlen = *slen = 0;
    while (at < m->len && m->body[at] != '\0') {
        char type = m->body[at++];
        size_t start = at;
        long n = get_cstr(m, &at);

        if (n < 0)
            return -EPROTO;
        if (type == 'M') {
            *msg = m->body + start;
            *mlen = (size_t)n;
        } else if (type == 'C') {
            *state = m->body + start;
            *slen = (size_t)n;
        }
    }
    return at + 1 == m->len ? 0 : -EPROTO;
}

int hp__pg_wire_error(struct pgbuild *b, const struct pgmsg *m)
{
    const char *msg, *state;
    size_t mlen, slen;
    int err = error_fields(m, &msg, &mlen, &state, &slen);

    if (err)
        return err;
    return hp__pg_build_error(b, msg, mlen, state, slen);
}

int hp__pg_wire_error_msg(const struct pgmsg *m, const char **msg)
{
    const char *state;
    size_t mlen, slen;

    return error_fields(m, msg, &mlen, &state, &slen);
}

int hp__pg_wire_notify(const struct pgmsg *m, int *pid, const char **channel, const char **payload)
{
    size_t at = 4;

    if (m->len < 4)
        return -EPROTO;
    *pid = (int)get_u32(m->body);
    *channel = m->body + at;
    if (get_cstr(m, &at) < 0)
        return -EPROTO;
    *payload = m->body + at;
    if (get_cstr(m, &at) < 0 || at != m->len)
        return -EPROTO;
    return 0;
}
