/*
 * internal.h - what the mustache module's files share: the token stream
 * (lexer.c -> compile.c), the compiled program (compile.c -> render.c),
 * data lookups (data.c), escaping (escape.c) and the template set (set.c,
 * loader.c). Calls go lexer <- compile <- set <- loader, and render ->
 * data/escape; nothing calls back up.
 */
#ifndef HP_MUSTACHE_INTERNAL_H
#define HP_MUSTACHE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hellepoll/mustache.h>

#define HP__MU_DEFAULT_NESTING  100
#define HP__MU_MAX_NESTING      1000
#define HP__MU_DEFAULT_DELIM    32
#define HP__MU_DEFAULT_SOURCE   (16u << 20)
#define HP__MU_DEFAULT_DEPTH    256
#define HP__MU_MAX_DEPTH        512
#define HP__MU_DEFAULT_PARTIALS 64
#define HP__MU_DEFAULT_STEPS    100000000u
#define HP__MU_DEFAULT_OUTPUT   ((size_t)64 << 20)
/* Literal text in the pool is followed by this many readable bytes, and the
 * output always has this much room past its end: short copies are done as
 * fixed 16/32-byte moves. */
#define HP__MU_SLACK            32

#if defined(__GNUC__) || defined(__clang__)
#define HP__NOINLINE __attribute__((noinline))
#else
#define HP__NOINLINE
#endif

/* ---- tokens (lexer.c) --------------------------------------------------- */

enum hp__tok_kind {
    HP__T_TEXT,
    HP__T_VAR,      /* {{name}} */
    HP__T_RAW,      /* {{{name}}} {{&name}} */
    HP__T_SECTION,  /* {{#name}} */
    HP__T_INVERTED, /* {{^name}} */
    HP__T_CLOSE,    /* {{/name}} */
    HP__T_COMMENT,  /* {{! ...}} */
    HP__T_PARTIAL,  /* {{>name}} */
    HP__T_PARENT,   /* {{<name}} */
    HP__T_BLOCK,    /* {{$name}} */
    HP__T_DELIM,    /* {{=<% %>=}} */
};

enum {
    HP__TK_BOL = 1u << 0,        /* starts at the beginning of a line */
    HP__TK_NL = 1u << 1,         /* text: ends with a newline */
    HP__TK_WS = 1u << 2,         /* text: only blanks (and a final \r\n or \n) */
    HP__TK_DROP = 1u << 3,       /* removed: whitespace of a standalone line */
    HP__TK_STANDALONE = 1u << 4, /* tag: alone on its line (which is removed) */
    HP__TK_LEADWS = 1u << 5,     /* tag: only blanks before it on its line (in ipos/ilen) */
    HP__TK_DYN = 1u << 6,        /* partial/parent: {{>*name}} */
};

struct hp__tok {
    uint8_t kind;
    uint8_t flags;
    uint8_t olen, clen;  /* delimiters in effect (sections: for lambdas) */
    uint32_t pos, len;   /* the whole token in the source */
    uint32_t npos, nlen; /* the name, trimmed (without '*') */
    uint32_t ipos, ilen; /* blanks before the tag on its line (STANDALONE or LEADWS) */
    const char *otag, *ctag;
};

struct hp__toks {
    struct hp__tok *v;
    size_t n, cap;
};

/* Tokenize @p src with the given initial delimiters. Errors fill err. */
int hp__lex(const char *src, size_t len, const char *otag, size_t olen, const char *ctag,
            size_t clen, unsigned max_delim, struct hp__toks *out, const char *tname,
            struct hp_mustache_error *err);

/* ---- the program (compile.c) -------------------------------------------- */

enum hp__op_code {
    HP__OP_TEXT,     /* a = pool offset, b = length; F_BOL: a line starts here */
    HP__OP_INDENT,   /* a line starts here with a tag */
    HP__OP_VAR,      /* a = name; F_ESCAPE */
    HP__OP_VAR_DOT,  /* {{.}}: the top of the context, no lookup; F_ESCAPE */
    HP__OP_SECTION,  /* a = name, b = pc of its END, c/d = source body, e = pool delims, f =
                        olen<<8|clen */
    HP__OP_END,      /* a = first pc of the body */
    HP__OP_INVERTED, /* a = name, b = pc after the body */
    HP__OP_PARTIAL,  /* a = slot (or name if F_DYN), c/d = pool indent (standalone) */
    HP__OP_PARENT,   /* a = slot (or name if F_DYN), b = pc after the BLOCKDEFs, c/d = indent */
    HP__OP_BLOCKDEF, /* a = block name (pool offset), e = its length, b = pc after the body */
    HP__OP_BLOCK,    /* site: a/e = block name, b = pc after default body, c/d = indent */
};

enum {
    HP__F_ESCAPE = 1u << 0,
    HP__F_BOL = 1u << 1,
    HP__F_DYN = 1u << 2,
    HP__F_INDENT = 1u << 3,      /* partial/parent/block: c/d is an indent to push */
    HP__F_SITE_INLINE = 1u << 4, /* block: site is mid-line, its first line is not indented */
    HP__F_FUSED = 1u << 5,       /* section: body is [TEXT] VAR_DOT [TEXT], no line starts */
};

struct hp__op {
    uint8_t code;
    uint8_t flags;
    uint16_t pad;
    uint32_t pos; /* source offset, for error messages */
    uint32_t a, b, c, d, e, f;
};

struct hp__seg {
    uint32_t off, len; /* in the pool */
};

struct hp__name {
    uint32_t off, len;  /* the whole dotted name, in the pool */
    uint32_t seg, nseg; /* segments; 0 segments is the implicit iterator "." */
};

struct hp__slot {
    uint32_t off, len;             /* partial name, in the pool */
    const struct hp_mustache *tpl; /* resolved by the set (NULL: renders empty) */
};

struct hp_mustache {
    char *name;
    char *src;
    size_t srclen;
    struct hp__op *ops;
    uint32_t nops;
    char *pool; /* literal text, names, indents; HP__MU_SLACK readable bytes past the end */
    size_t poollen;
    struct hp__name *names;
    uint32_t nnames;
    struct hp__seg *segs;
    struct hp__slot *slots;
    uint32_t nslots;
    const struct hp_mustache_set *set; /* for dynamic names; NULL if standalone */
    bool owned_by_set;
};

/* Compile with explicit initial delimiters (lambdas), for @p set (may be NULL). */
int hp__compile(struct hp_mustache **out, const char *name, const char *src, size_t len,
                const char *otag, size_t olen, const char *ctag, size_t clen,
                const struct hp_mustache_opts *opts, struct hp_mustache_error *err);

/* Free what a template holds, not the struct itself. */
void hp__mustache_clear(struct hp_mustache *t);

/* 1-based line and column of a source offset. */
void hp__linecol(const char *src, size_t pos, unsigned *line, unsigned *col);

/* Fill err (if not NULL) with "name:line:col: message". */
void hp__set_error(struct hp_mustache_error *err, int code, const char *tname, const char *src,
                   size_t pos, bool has_pos, const char *fmt, ...) HP_PRINTF(7, 8);

/* ---- data (data.c) ------------------------------------------------------- */

/* A place in the data: a value of type t at p (for lists: n elements at p). */
struct hp__cur {
    const struct hp_mustache_type *t;
    const char *p;
    size_t n;
};

extern const struct hp_mustache_type hp__type_none;

/* The first field of struct type @p t named @p name, or NULL. */
const struct hp_mustache_field *hp__field(const struct hp_mustache_type *t, const char *name,
                                          size_t len);

/* The cursor of field @p f of the struct at @p base. */
static inline void hp__field_cur(const char *base, const struct hp_mustache_field *f,
                                 struct hp__cur *c)
{
    const char *p = base + f->offset;

    c->t = f->type;
    c->n = 0;
    if (f->type->kind == HP_MUSTACHE_LIST) {
        c->p = (f->flags & HP_MUSTACHE_F_PTR) ? *(const char *const *)(const void *)p : p;
        memcpy(&c->n, base + f->count_offset, sizeof(size_t));
        if (!c->p)
            c->n = 0;
        return;
    }
    if (f->flags & HP_MUSTACHE_F_PTR) {
        p = *(const char *const *)(const void *)p;
        if (!p)
            c->t = &hp__type_none;
    }
    c->p = p;
}

/* Look @p name up in the value at @p in (struct field or map key). */
bool hp__lookup(const struct hp__cur *in, const char *name, size_t len, struct hp__cur *out);

/* Normalise a generic value: lists become (value type, items, n). */
void hp__cur_norm(struct hp__cur *c);

/* Section truthiness of a normalised cursor. */
bool hp__truthy(const struct hp__cur *c);

/* The string a cursor holds, if it is a string. */
bool hp__cur_string(const struct hp__cur *c, const char **p, size_t *n);

/* Format a scalar into buf (>= 32 bytes): its length, or 0 if it renders empty
 * or is a string (then sp and sn are set, is_str is true and it returns 0). */
size_t hp__format_scalar(const struct hp__cur *c, char *buf, const char **sp, size_t *sn,
                         bool *is_str);

/* "00".."99" */
extern const char hp__digits2[201];

/* Decimal digits of v at dst (room for 20); returns the length. */
size_t hp__fmt_u64(char *dst, uint64_t v);

/* ---- escaping (escape.c) ------------------------------------------------- */

/* Escape n bytes of src into dst, which has room for 6 * n + HP__MU_SLACK
 * bytes; returns the bytes written. */
size_t hp__escape(char *dst, const char *src, size_t n);

/* ---- sets (set.c) --------------------------------------------------------- */

struct hp__entry {
    char *name;
    size_t nlen;
    struct hp_mustache *t;
    /* loader.c: the file it came from (path NULL if added from memory) */
    char *path;
    int64_t mtime_ns;
    int64_t size;
};

struct hp_mustache_set {
    struct hp_mustache_opts opts;
    struct hp__entry *v;
    size_t n, cap;
    uint32_t *index; /* open addressing: entry index + 1; 0 is a free slot */
    size_t icap;
    char **dirs; /* loader.c: directories to scan again on refresh */
    size_t ndirs;
};

/* Add or replace: a replaced template keeps its address (its contents are
 * swapped), so pointers from hp_mustache_set_get() stay valid. */
int hp__set_put(struct hp_mustache_set *set, const char *name, size_t nlen, const char *src,
                size_t len, struct hp_mustache_error *err, struct hp__entry **entry);
struct hp__entry *hp__set_entry(const struct hp_mustache_set *set, const char *name, size_t len);

const struct hp_mustache *hp__set_find(const struct hp_mustache_set *set, const char *name,
                                       size_t len);
const struct hp_mustache_opts *hp__set_opts(const struct hp_mustache_set *set);
/* Resolve a template's slots against the set (lambdas' templates). */
void hp__link(const struct hp_mustache_set *set, struct hp_mustache *t);

#endif
