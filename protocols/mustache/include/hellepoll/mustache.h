/**
 * @file mustache.h
 * A compiled Mustache engine (https://mustache.github.io/mustache.5.html):
 * the whole spec (variables, sections, inverted sections, comments,
 * partials with standalone indentation, set delimiters) plus the optional
 * inheritance ({{<parent}} {{$block}}) and dynamic-name ({{>*name}})
 * modules and lambdas as C callbacks. It needs neither the event loop nor
 * the HTTP module: templates also render mail, configuration and text.
 *
 * The pattern:
 *
 *     struct hp_mustache_set *set;                 // named templates, partials by name
 *     hp_mustache_set_new(&set, NULL);
 *     hp_mustache_set_load_dir(set, "templates", &err);   // or hp_mustache_set_add()
 *     const struct hp_mustache *page = hp_mustache_set_get(set, "page");
 *
 *     static const struct hp_mustache_field row_fields[] = {
 *         HP_MUSTACHE_FIELD(struct row, id, &hp_mustache_type_int),
 *         HP_MUSTACHE_FIELD(struct row, message, &hp_mustache_type_cstr),
 *     };
 *     static const struct hp_mustache_type row_type = HP_MUSTACHE_STRUCT_TYPE(struct row,
 * row_fields);
 *     ...
 *     struct hp_mustache_buf out = {0};            // reuse it: rendering only appends
 *     hp_mustache_render(page, &page_type, &page_data, &out, NULL);
 *
 * Compile once, render many times: a template is compiled into a flat
 * program (literal runs precomputed, names split into lookups once) and is
 * never modified by rendering, so any number of threads may render the
 * same template at once (lambdas you supply must be thread-safe themselves).
 * Rendering allocates nothing beyond growing the output buffer (a lambda's
 * output is compiled on the fly and does allocate).
 *
 * Data is either the application's own structs, described once by
 * struct hp_mustache_type (field name -> offset and type; read in place,
 * never copied), or a generic tree of struct hp_mustache_value (for data
 * that arrives as JSON); both may be mixed (a struct field of kind VALUE).
 *
 * Truthiness for sections: false, null, 0, an empty string, an empty list
 * and a NULL pointer are falsey; everything else is truthy. Missing names
 * render as empty (strict mode reports them instead).
 *
 * Spec: all 136 required tests, the 48 inheritance and dynamic-name tests
 * and the 10 lambda tests pass (tests/mustache/test_spec.c); no spec test is
 * skipped.
 *
 * Errors: every function returns 0 or a negative errno. Compile errors fill
 * struct hp_mustache_error with the template name, line, column and what
 * was expected.
 */
#ifndef HP_MUSTACHE_H
#define HP_MUSTACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>

/* ---- errors and limits ------------------------------------------------- */

/** Where and why compiling or rendering failed. */
struct hp_mustache_error {
    int code;          /**< the negative errno also returned */
    unsigned line;     /**< 1-based; 0 when not about a place in a template */
    unsigned col;      /**< 1-based byte column */
    char name[128];    /**< template name ("" if it had none) */
    char message[256]; /**< "page:3:7: unclosed section 'rows' (expected {{/rows}})" */
};

/**
 * Compile-time options; a NULL pointer or 0 fields mean the defaults.
 */
struct hp_mustache_opts {
    unsigned max_nesting; /**< open sections/blocks at once (default 100, at most 1000); -ELOOP */
    unsigned max_delim;   /**< bytes of a custom delimiter (default 32); -EINVAL beyond */
    size_t max_source;    /**< template bytes (default 16 MiB); -EFBIG beyond */
};

/**
 * Render options; NULL or 0 fields mean the defaults.
 */
struct hp_mustache_render_opts {
    /** A variable or section name found nowhere is an error (-ENOENT), not empty output.
     *  Inverted sections still test for absence quietly. */
    bool strict;
    /** Context depth, sections plus partials (default 256, at most 512); -ELOOP beyond. */
    unsigned max_depth;
    /** Partial/parent/block nesting (default 64, at most 256); -ELOOP beyond. */
    unsigned max_partials;
    /** Bytes this render may add (default 64 MiB); -EMSGSIZE beyond. */
    size_t max_output;
    /** Work: section iterations plus partial/parent/block/lambda calls (default 100,000,000);
     *  -ELOOP beyond. Stops templates whose work grows exponentially with little output. */
    uint64_t max_steps;
    struct hp_mustache_error *err; /**< filled on failure if not NULL */
};

/* ---- output ------------------------------------------------------------- */

/**
 * A growable output buffer. Rendering appends at data + len and grows the
 * memory with realloc(3) (so data must be NULL or come from malloc). Keep
 * one per thread or connection and set len = 0 to reuse its memory.
 */
struct hp_mustache_buf {
    char *data;
    size_t len;
    size_t cap;
};

/** Free a buffer's memory and zero it. */
HP_API void hp_mustache_buf_free(struct hp_mustache_buf *b);

/** Append bytes (for lambdas): 0 or -ENOMEM. */
HP_API int hp_mustache_buf_append(struct hp_mustache_buf *b, const void *p, size_t n);

/**
 * A sink receives the output in pieces (at most 4 KiB each, in order).
 * Return 0 to continue or a negative errno, which stops the render and is
 * returned by it. Runs synchronously inside hp_mustache_render_sink().
 */
typedef int hp_mustache_sink_fn(void *ud, const char *p, size_t n);

/* ---- data: the application's structs ----------------------------------- */

enum hp_mustache_kind {
    HP_MUSTACHE_NONE = 0, /**< nothing: renders empty, falsey */
    HP_MUSTACHE_CSTR,     /**< const char * (NUL-terminated; NULL is falsey) */
    HP_MUSTACHE_STR,      /**< struct hp_str (pointer and length) */
    HP_MUSTACHE_INT,      /**< int */
    HP_MUSTACHE_I64,      /**< int64_t */
    HP_MUSTACHE_DOUBLE,   /**< double (rendered with %.15g, or %.17g if that loses digits) */
    HP_MUSTACHE_BOOL,     /**< bool ("true"/"false") */
    HP_MUSTACHE_STRUCT,   /**< a struct described by fields */
    HP_MUSTACHE_LIST,     /**< count elements of type elem, elem->size bytes apart */
    HP_MUSTACHE_VALUE,    /**< a struct hp_mustache_value (generic tree) */
    HP_MUSTACHE_LAMBDA,   /**< a struct hp_mustache_lambda */
};

struct hp_mustache_type;

/** Flag of a field: it holds a pointer to the value (NULL: falsey, renders empty). */
#define HP_MUSTACHE_F_PTR 1u

/** One named member of a struct type. */
struct hp_mustache_field {
    const char *name;                    /**< as written in templates */
    size_t offset;                       /**< offsetof() the member */
    const struct hp_mustache_type *type; /**< its type */
    unsigned flags;                      /**< HP_MUSTACHE_F_PTR */
    size_t count_offset;                 /**< LIST: offsetof() a size_t element count */
};

/** A type: a scalar, a struct (fields) or a list (elem). Describe once, statically. */
struct hp_mustache_type {
    enum hp_mustache_kind kind;
    size_t size;                            /**< bytes of one value (list stride) */
    const struct hp_mustache_field *fields; /**< STRUCT */
    size_t nfields;
    const struct hp_mustache_type *elem; /**< LIST */
};

/** The scalar types. */
HP_API extern const struct hp_mustache_type hp_mustache_type_cstr;
HP_API extern const struct hp_mustache_type hp_mustache_type_str;
HP_API extern const struct hp_mustache_type hp_mustache_type_int;
HP_API extern const struct hp_mustache_type hp_mustache_type_i64;
HP_API extern const struct hp_mustache_type hp_mustache_type_double;
HP_API extern const struct hp_mustache_type hp_mustache_type_bool;
HP_API extern const struct hp_mustache_type hp_mustache_type_value;
HP_API extern const struct hp_mustache_type hp_mustache_type_lambda;

/** A struct type over an array of fields (at file scope). */
#define HP_MUSTACHE_STRUCT_TYPE(st, fieldarr)                                                    \
    {                                                                                            \
        HP_MUSTACHE_STRUCT, sizeof(st), fieldarr, sizeof(fieldarr) / sizeof((fieldarr)[0]), NULL \
    }

/** A field named like the member. */
#define HP_MUSTACHE_FIELD(st, member, typeptr)       \
    {                                                \
#member, offsetof(st, member), typeptr, 0, 0 \
    }

/** A field through a pointer member (NULL is falsey). */
#define HP_MUSTACHE_FIELD_PTR(st, member, typeptr)                   \
    {                                                                \
#member, offsetof(st, member), typeptr, HP_MUSTACHE_F_PTR, 0 \
    }

/** A list type over elements of @p elemtype (a pointer to a type). */
#define HP_MUSTACHE_LIST_TYPE(elemtype)        \
    {                                          \
        HP_MUSTACHE_LIST, 0, NULL, 0, elemtype \
    }

/** A list field: member is `const T *`, count_member a size_t. */
#define HP_MUSTACHE_LIST_FIELD(st, member, count_member, elemtype)                              \
    {                                                                                           \
#member, offsetof(st, member),                                                          \
            &(const struct hp_mustache_type)HP_MUSTACHE_LIST_TYPE(elemtype), HP_MUSTACHE_F_PTR, \
            offsetof(st, count_member)                                                          \
    }

/** An inline array field: member is `T member[N]`, count_member a size_t (<= N). */
#define HP_MUSTACHE_ARRAY_FIELD(st, member, count_member, elemtype)             \
    {                                                                           \
#member, offsetof(st, member),                                          \
            &(const struct hp_mustache_type)HP_MUSTACHE_LIST_TYPE(elemtype), 0, \
            offsetof(st, count_member)                                          \
    }

/* ---- data: the generic tree -------------------------------------------- */

enum hp_mustache_vtype {
    HP_MUSTACHE_V_NULL = 0,
    HP_MUSTACHE_V_BOOL,
    HP_MUSTACHE_V_INT,
    HP_MUSTACHE_V_DOUBLE,
    HP_MUSTACHE_V_STRING,
    HP_MUSTACHE_V_LIST,
    HP_MUSTACHE_V_MAP,
    HP_MUSTACHE_V_LAMBDA,
};

struct hp_mustache_value;
struct hp_mustache_member;

/**
 * A lambda. For a variable tag, @p section is NULL; for a section tag it is
 * the section's unrendered text. The callback appends its result to @p out
 * (initially empty); the result is then rendered as a template against the
 * current context (a variable's with the default delimiters and escaped if
 * the tag escapes, a section's with the delimiters in effect), unless it
 * sets *literal, which makes the result plain text. Return 0 or a negative
 * errno (which ends the render). Runs synchronously, from the rendering
 * thread: a lambda on a template rendered by several threads must be
 * thread-safe. An inverted section treats a lambda as truthy without calling it.
 */
typedef int hp_mustache_lambda_fn(void *ud, const struct hp_str *section,
                                  struct hp_mustache_buf *out, bool *literal);

struct hp_mustache_lambda {
    hp_mustache_lambda_fn *fn;
    void *ud;
};

/** A node of the generic tree. Build it however you like; the engine only reads it. */
struct hp_mustache_value {
    enum hp_mustache_vtype type;
    union {
        bool b;
        int64_t i;
        double d;
        struct hp_str s;
        struct {
            const struct hp_mustache_value *items;
            size_t n;
        } list;
        struct {
            const struct hp_mustache_member *items; /**< searched in order */
            size_t n;
        } map;
        struct hp_mustache_lambda lambda;
    } u;
};

/** A key and its value in a map. */
struct hp_mustache_member {
    struct hp_str key;
    struct hp_mustache_value value;
};

/* ---- templates ---------------------------------------------------------- */

struct hp_mustache;     /**< a compiled template (immutable) */
struct hp_mustache_set; /**< named templates; partials resolve by name inside a set */

/**
 * Compile a template on its own (its partials and parents render empty;
 * put templates in a set to use them). @p name (may be NULL) appears in
 * error messages; src need not be NUL-terminated and is copied.
 * @return 0; -EINVAL (syntax, with err filled), -ELOOP (nesting limit),
 * -EFBIG (source limit), -ENOMEM.
 */
HP_API int hp_mustache_compile(struct hp_mustache **out, const char *name, const char *src,
                               size_t len, const struct hp_mustache_opts *opts,
                               struct hp_mustache_error *err);

/** Free a template from hp_mustache_compile() (not one owned by a set). NULL is fine. */
HP_API void hp_mustache_free(struct hp_mustache *t);

/** The template's name ("" if none). */
HP_API const char *hp_mustache_name(const struct hp_mustache *t);

/**
 * Render @p t with @p data of @p type (the root context: a struct, a value
 * tree or a scalar; NULL data is an empty context) by appending to @p out.
 * On error out->len is restored to its value at the call. The render state
 * lives on the caller's stack (about 24 KiB; the sink variant 4 KiB more).
 * @return 0; -ENOMEM; -EMSGSIZE (max_output); -ELOOP (max_depth or
 * max_partials or max_steps); -ENOENT (strict mode: a missing name); a lambda's error;
 * -EINVAL (a lambda's output did not compile). opts->err tells where.
 */
HP_API int hp_mustache_render(const struct hp_mustache *t, const struct hp_mustache_type *type,
                              const void *data, struct hp_mustache_buf *out,
                              const struct hp_mustache_render_opts *opts);

/** As hp_mustache_render(), but the output goes to @p sink in pieces; plus the sink's errors. */
HP_API int hp_mustache_render_sink(const struct hp_mustache *t, const struct hp_mustache_type *type,
                                   const void *data, hp_mustache_sink_fn *sink, void *ud,
                                   const struct hp_mustache_render_opts *opts);

/**
 * HTML-escape (& < > " ') @p n bytes onto @p out: 0 or -ENOMEM. On x86-64
 * with AVX2, SSSE3 or SSE2, whichever the CPU has first (asked once).
 */
HP_API int hp_mustache_escape(struct hp_mustache_buf *out, const char *p, size_t n);

/* ---- sets and directories ----------------------------------------------- */

/** A new empty set; @p opts (copied, may be NULL) applies to every template compiled in it. */
HP_API int hp_mustache_set_new(struct hp_mustache_set **out, const struct hp_mustache_opts *opts);

/** Free a set and every template in it. NULL is fine. */
HP_API void hp_mustache_set_free(struct hp_mustache_set *set);

/**
 * Compile @p src as the template @p name (replacing one of that name in
 * place: its address stays the same) and resolve partial names across the
 * set again. The set owns the template.
 * Not while another thread renders from the set.
 * @return 0; the errors of hp_mustache_compile(); -EINVAL for an empty name.
 */
HP_API int hp_mustache_set_add(struct hp_mustache_set *set, const char *name, const char *src,
                               size_t len, struct hp_mustache_error *err);

/** The template called @p name, or NULL. Read-only: safe from several threads. */
HP_API const struct hp_mustache *hp_mustache_set_get(const struct hp_mustache_set *set,
                                                     const char *name);

/**
 * Add every DIR/NAME.mustache (recursively: DIR/a/b.mustache is "a/b"),
 * remembering paths and modification times for hp_mustache_set_refresh().
 * @return 0; -errno of opendir/open/read; a compile error (err names the file).
 */
HP_API int hp_mustache_set_load_dir(struct hp_mustache_set *set, const char *dir,
                                    struct hp_mustache_error *err);

/**
 * Add one file as template @p name (NULL: the file's name without its
 * directory and ".mustache"), remembered for refresh like load_dir's.
 */
HP_API int hp_mustache_set_load_file(struct hp_mustache_set *set, const char *name,
                                     const char *path, struct hp_mustache_error *err);

/**
 * Load the partials the set's templates name but the set lacks, on demand:
 * partial NAME is the file DIR/NAME.mustache (names with ".." segments or
 * a leading '/' are not looked up), repeated until every name found is
 * loaded. Names with no file stay unresolved (they render empty); dynamic
 * names ({{>*name}}) are not known in advance and are not loaded.
 * @return the number of files loaded (>= 0), or a negative errno / compile
 * error of a file that exists (err names it).
 */
HP_API int hp_mustache_set_resolve_dir(struct hp_mustache_set *set, const char *dir,
                                       struct hp_mustache_error *err);

/**
 * Development mode: re-read every file-backed template whose modification
 * time or size changed (and look for new files in loaded directories).
 * A reloaded template keeps its address (pointers from hp_mustache_set_get()
 * stay valid and see the new version), but its old program is freed: call it
 * only where no render from the set is running (e.g. on the loop thread
 * before it renders; in production, simply never). A file that fails to
 * compile keeps its old template.
 * @return the number of templates reloaded (>= 0), or a negative errno
 * with err filled (the other files are still reloaded).
 */
HP_API int hp_mustache_set_refresh(struct hp_mustache_set *set, struct hp_mustache_error *err);

#endif
