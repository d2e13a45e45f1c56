/*
 * tests/fuzz/fuzz_pg_wire.c - libFuzzer target for the PostgreSQL module's
 * own protocol reader (protocols/pg/src/wire.c): the input, after a first
 * byte that sets the piece size, is a backend byte stream, delivered piece
 * by piece into a buffer the way the connection reads it; every whole
 * message is decoded into a result as the connection would. Whatever the
 * bytes, each ReadyForQuery's result must hold together: rows times columns
 * cells (rows without columns too), every name and value inside the data and NUL-terminated at its
 * length, an error only with a message. Out-of-memory is simulated on a
 * schedule the input picks.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t alloc_left;

static void *fz_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    if (alloc_left == 0)
        return NULL;
    alloc_left--;
    return realloc(p, n);
}

static void fz_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static const struct hp_allocator fz_alloc = {fz_realloc, fz_free, NULL};

static void check(const struct pgbuild *b, int status)
{
    struct hp_pg_result r;

    hp__pg_build_result(b, status, &r);
    if (r.rows < 0 || r.cols < 0)
        abort();
    if (status != 0 && (r.rows || r.cols || !r.msg))
        abort();
    if (status == 0 && (size_t)r.rows * (size_t)r.cols != b->ncells)
        abort();
    for (int c = 0; c < r.cols; c++) {
        if (b->names[c] >= b->len ||
            memchr(r.data + b->names[c], '\0', b->len - b->names[c]) == NULL)
            abort();
    }
    for (size_t i = 0; i < (size_t)r.rows * (size_t)r.cols; i++) {
        const struct pgcell *c = &r.cells[i];

        if (c->len >= 0 && (c->off + (size_t)c->len >= b->len || r.data[c->off + (size_t)c->len]))
            abort();
    }
    if (r.sqlstate && strlen(r.sqlstate) >= b->len)
        abort();
}

/* One message, as conn.c's on_message() handles it; false ends the stream. */
static bool handle(struct pgbuild *b, const struct pgmsg *m)
{
    const char *s, *chan, *payload;
    int pid;

    switch (m->type) {
    case 'A':
        return hp__pg_wire_notify(m, &pid, &chan, &payload) == 0 && strlen(chan) < m->len &&
               strlen(payload) < m->len;
    case 'T':
        return hp__pg_wire_rowdesc(b, m) == 0;
    case 'D':
        return hp__pg_wire_datarow(b, m) == 0;
    case 'C':
        return hp__pg_wire_command(b, m) == 0;
    case 'E':
        if (hp__pg_wire_error_msg(m, &s) != 0)
            return false;
        if (strlen(s) >= m->len)
            abort();
        return hp__pg_wire_error(b, m) == 0;
    case 'Z':
        check(b, b->failed ? -4000 : 0);
        hp__pg_build_reset(b);
        return true;
    default:
        return true;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgbuild b;
    size_t piece, fed = 0, start = 0, len = 0;
    char *buf;

    if (size < 2)
        return 0;
    piece = (size_t)(data[0] & 0x3f) + 1;
    alloc_left = data[1] & 0x80 ? (size_t)(data[1] & 0x7f) : SIZE_MAX;
    data += 2;
    size -= 2;
    if (!(buf = malloc(size + 1)))
        return 0;
    hp__pg_build_init(&b, &fz_alloc);
    while (fed < size) {
        size_t n = size - fed < piece ? size - fed : piece;
        struct pgmsg m;
        long k;

        memcpy(buf + len, data + fed, n);
        fed += n;
        len += n;
        while ((k = hp__pg_wire_frame(buf + start, len - start, &m)) > 0) {
            start += (size_t)k;
            if (m.body + m.len > buf + len)
                abort();
            if (!handle(&b, &m))
                goto out;
        }
        if (k < 0)
            goto out;
        if (k == 0 && m.len && m.len <= len - start)
            abort(); /* said to be incomplete, yet all there */
    }
out:
    hp__pg_build_fini(&b);
    free(buf);
    return 0;
}
