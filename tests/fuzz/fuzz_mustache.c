/*
 * tests/fuzz/fuzz_mustache.c - libFuzzer target for the Mustache compiler
 * and renderer. The input is a main template and up to four partials
 * ("a".."d") separated by NUL bytes; the first byte picks options (strict
 * mode, sink or buffer). Each compiled template is rendered against a fixed
 * data tree whose strings also name the partials (for {{>*name}}), with
 * small limits so hostile templates must fail cleanly and quickly. A render
 * into a buffer and into a sink must give the same bytes. The whole input,
 * HTML-escaped by hp_mustache_escape(), must equal a byte-by-byte
 * reference.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/mustache.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int echo_lambda(void *ud, const struct hp_str *section, struct hp_mustache_buf *out,
                       bool *literal)
{
    (void)ud;
    (void)literal;
    if (!section)
        return hp_mustache_buf_append(out, "{{name}}<", 9);
    return hp_mustache_buf_append(out, section->ptr, section->len);
}

#define STR(lit)                                                      \
    {                                                                 \
        .type = HP_MUSTACHE_V_STRING, .u.s = { lit, sizeof(lit) - 1 } \
    }
static const struct hp_mustache_value list_items[] = {
    {.type = HP_MUSTACHE_V_INT, .u.i = 1},
    {.type = HP_MUSTACHE_V_DOUBLE, .u.d = 2.5},
    STR("b"),
};
static const struct hp_mustache_member inner[] = {
    {{"x", 1}, STR("y&'")},
    {{"a", 1}, STR("c")},
};
static const struct hp_mustache_member members[] = {
    {{"name", 4}, STR("<b>&\"")},
    {{"a", 1}, STR("a")},
    {{"list", 4}, {.type = HP_MUSTACHE_V_LIST, .u.list = {list_items, 3}}},
    {{"m", 1}, {.type = HP_MUSTACHE_V_MAP, .u.map = {inner, 2}}},
    {{"t", 1}, {.type = HP_MUSTACHE_V_BOOL, .u.b = true}},
    {{"f", 1}, {.type = HP_MUSTACHE_V_BOOL, .u.b = false}},
    {{"n", 1}, {.type = HP_MUSTACHE_V_NULL}},
    {{"lam", 3}, {.type = HP_MUSTACHE_V_LAMBDA, .u.lambda = {echo_lambda, NULL}}},
    {{"d", 1}, STR("d")},
};
static const struct hp_mustache_value root = {.type = HP_MUSTACHE_V_MAP, .u.map = {members, 9}};

struct cmp {
    const struct hp_mustache_buf *want;
    size_t at;
    bool differs;
};

static int compare(void *ud, const char *p, size_t n)
{
    struct cmp *c = ud;

    if (c->at + n > c->want->len || memcmp(c->want->data + c->at, p, n) != 0)
        c->differs = true;
    c->at += n;
    return 0;
}

/* & < > " ' one byte at a time, the obvious way. */
static bool escape_matches(const struct hp_mustache_buf *got, const uint8_t *s, size_t n)
{
    size_t o = 0;

    for (size_t k = 0; k < n; k++) {
        const char *e = s[k] == '&'    ? "&amp;"
                        : s[k] == '<'  ? "&lt;"
                        : s[k] == '>'  ? "&gt;"
                        : s[k] == '"'  ? "&quot;"
                        : s[k] == '\'' ? "&#39;"
                                       : NULL;
        size_t l = e ? strlen(e) : 1;
        if (o + l > got->len || memcmp(got->data + o, e ? e : (const char *)s + k, l) != 0)
            return false;
        o += l;
    }
    return o == got->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"a", "b", "c", "d"};
    struct hp_mustache_set *set;
    struct hp_mustache_error err;
    struct hp_mustache_render_opts ro = {.err = &err,
                                         .max_output = 1 << 18,
                                         .max_steps = 20000,
                                         .max_depth = 64,
                                         .max_partials = 16};
    struct hp_mustache_buf out = {0};
    const char *p, *end;
    unsigned flags;
    int rc;

    if (size < 1)
        return 0;
    if (hp_mustache_escape(&out, (const char *)data, size) == 0 &&
        !escape_matches(&out, data, size))
        abort();
    out.len = 0;
    flags = data[0];
    ro.strict = flags & 1;
    p = (const char *)data + 1;
    end = (const char *)data + size;
    if (hp_mustache_set_new(&set, NULL) != 0)
        return 0;
    /* segment 0 is "main", then the partials */
    for (int k = -1; k < 4 && p <= end; k++) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        const char *e = z ? z : end;
        (void)hp_mustache_set_add(set, k < 0 ? "main" : names[k], p, (size_t)(e - p), &err);
        if (!z)
            break;
        p = z + 1;
    }
    const struct hp_mustache *t = hp_mustache_set_get(set, "main");
    if (t) {
        rc = hp_mustache_render(t, &hp_mustache_type_value, &root, &out, &ro);
        if (rc == 0) {
            struct cmp c = {&out, 0, false};
            rc = hp_mustache_render_sink(t, &hp_mustache_type_value, &root, compare, &c, &ro);
            if (rc != 0 || c.differs || c.at != out.len)
                abort();
        } else if (out.len != 0 || err.code != rc) {
            abort();
        }
    }
    /* and the same template on its own, with no partials */
    struct hp_mustache *alone;
    size_t n0 = size - 1;
    const char *z0 = memchr(data + 1, '\0', n0);
    if (z0)
        n0 = (size_t)(z0 - (const char *)data - 1);
    if (hp_mustache_compile(&alone, "alone", (const char *)data + 1, n0, NULL, &err) == 0) {
        out.len = 0;
        (void)hp_mustache_render(alone, &hp_mustache_type_value, &root, &out, &ro);
        hp_mustache_free(alone);
    } else if (err.line == 0 && err.code != -ENOMEM) {
        abort(); /* a syntax error always has a place */
    }
    hp_mustache_buf_free(&out);
    hp_mustache_set_free(set);
    return 0;
}
