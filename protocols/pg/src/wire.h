/*
 * wire.h - the messages of PostgreSQL's protocol 3.0 that the query path
 * writes and reads, and the result they are read into. No connection, no
 * loop, no libpq: the connection code (conn.c) moves the bytes; the fuzzer
 * (tests/fuzz/fuzz_pg_wire.c) feeds this file alone.
 *
 * Writing: one query is Parse (only when its statement is not prepared on
 * the connection yet; the unnamed statement for plain queries), Bind with
 * text parameters, Describe of the portal (for the column names), Execute
 * of every row, and its own Sync, all appended to the connection's output
 * buffer; the connection sends the buffer once per loop iteration.
 *
 * Reading: hp__pg_wire_frame() cuts one message off the input; the rest
 * decode one message each into a struct pgbuild, which collects what one
 * query's answer holds (columns, rows, command tag, error) in one block of
 * memory that the connection reuses from query to query.
 */
#ifndef HP_PG_WIRE_H
#define HP_PG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/loop.h>

/* A backend message larger than this is taken as a broken stream (PostgreSQL's own limit is 1 GiB).
 */
#define HP__PG_MAX_MSG ((size_t)1 << 30)

/* One value: at data + off, len bytes and a NUL; len < 0 is SQL NULL. */
struct pgcell {
    size_t off;
    int32_t len;
};

/* The result handed to callbacks (struct hp_pg_result of pg.h). */
struct hp_pg_result {
    int rows, cols;
    int status;
    const char *msg;      /* error: the server's primary message, or ours; NULL */
    const char *sqlstate; /* server errors: five characters; NULL */
    const char *cmd;      /* command tag; NULL when none */
    const char *data;
    const size_t *names;        /* cols offsets into data */
    const struct pgcell *cells; /* rows * cols, row by row */
};

/* One query's answer while it is read. */
struct pgbuild {
    const struct hp_allocator *alloc;
    char *data;
    size_t len, cap;
    struct pgcell *cells;
    size_t ncells, cellcap;
    size_t *names;
    int cols, namecap;
    int rows;
    size_t msg, sqlstate, cmd; /* offsets into data; SIZE_MAX: none */
    bool failed;               /* an ErrorResponse came (the first one is kept) */
};

/*
 * The columns a prepared statement answers with, learned from its first
 * execution: later ones send no Describe and get no RowDescription.
 * PostgreSQL keeps a statement's result columns fixed (it refuses to run it
 * otherwise: "cached plan must not change result type").
 */
struct pgdesc {
    struct pgdesc *next; /* retired ones (conn.c) */
    unsigned behind;     /* retired: queries in flight that may still use it (conn.c) */
    int cols;
    size_t len;    /* bytes of names, NUL-terminated, after offs */
    size_t offs[]; /* cols offsets into the names */
};

/* An output buffer: bytes [sent, len) are still to go. */
struct pgout {
    const struct hp_allocator *alloc;
    char *buf;
    size_t len, cap, sent;
};

/* A message cut off the input: its type and its body (length word excluded). */
struct pgmsg {
    char type;
    const char *body;
    size_t len;
};

void hp__pg_build_init(struct pgbuild *b, const struct hp_allocator *alloc);
/* Empty it for the next query (keeping its memory unless that grew large). */
void hp__pg_build_reset(struct pgbuild *b);
void hp__pg_build_fini(struct pgbuild *b);
/* The columns of the rows to come, then each one's name. */
int hp__pg_build_cols(struct pgbuild *b, int cols);
int hp__pg_build_name(struct pgbuild *b, int col, const char *s, size_t n);
/* The next value, row by row; @p s NULL is SQL NULL. */
int hp__pg_build_value(struct pgbuild *b, const char *s, size_t n);
int hp__pg_build_cmd(struct pgbuild *b, const char *s, size_t n);
/* An error: kept only if it is the first. */
int hp__pg_build_error(struct pgbuild *b, const char *msg, size_t mlen, const char *state,
                       size_t slen);
/* A copy of @p b's columns (NULL without memory), and freeing one. */
struct pgdesc *hp__pg_desc_new(const struct pgbuild *b);
void hp__pg_desc_free(const struct hp_allocator *alloc, struct pgdesc *d);
/* The columns of the rows to come, from @p d. */
int hp__pg_build_desc(struct pgbuild *b, const struct pgdesc *d);
/* The answer as callbacks see it; valid until the next change to @p b. */
void hp__pg_build_result(const struct pgbuild *b, int status, struct hp_pg_result *out);

void hp__pg_out_init(struct pgout *o, const struct hp_allocator *alloc);
void hp__pg_out_fini(struct pgout *o);
/* Drop what was sent, keeping the rest at the front. */
void hp__pg_out_compact(struct pgout *o);
/*
 * Append one query: Parse of @p sql as @p stmt when @p parse, then Bind of
 * @p stmt with the text parameters, Describe (when @p describe), Execute,
 * Sync. @p values and @p lengths as for hp_pg_query(). Returns 0, -ENOMEM,
 * or -EMSGSIZE (a message over 1 GiB); on error nothing is appended.
 */
int hp__pg_wire_query(struct pgout *o, bool parse, bool describe, const char *stmt, const char *sql,
                      int nparams, const char *const *values, const int *lengths);

/*
 * Cut the first message off @p p (n bytes). Returns its size in bytes (> 0,
 * with *m set), 0 when it is not all there yet (m->len is then the whole
 * message's size once its length field is in, else 0), or -EPROTO for a
 * length field out of range.
 */
long hp__pg_wire_frame(const char *p, size_t n, struct pgmsg *m);
/* Decoders: 0, -EPROTO for a malformed message, -ENOMEM. */
int hp__pg_wire_rowdesc(struct pgbuild *b, const struct pgmsg *m);
int hp__pg_wire_datarow(struct pgbuild *b, const struct pgmsg *m);
int hp__pg_wire_command(struct pgbuild *b, const struct pgmsg *m);
int hp__pg_wire_error(struct pgbuild *b, const struct pgmsg *m);
/* The primary message of an ErrorResponse or NoticeResponse ("" if it has none), NUL-terminated. */
int hp__pg_wire_error_msg(const struct pgmsg *m, const char **msg);
/* A NotificationResponse: strings point into the message, NUL-terminated. */
int hp__pg_wire_notify(const struct pgmsg *m, int *pid, const char **channel, const char **payload);

#endif
