/*
 * tests/mustache/test_engine.c - the engine beyond the spec: compile errors
 * with their line and column, limits against hostile templates, the struct
 * binding, the value tree, strict mode, sinks, escaping, several threads
 * rendering one template, and templates loaded from a directory.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/mustache.h>

#include "ref_escape.h"

/* ---- helpers ----------------------------------------------------------------- */

static struct hp_mustache *compile_ok(const char *src)
{
    struct hp_mustache_error err = {0};
    struct hp_mustache *t = NULL;
    int rc = hp_mustache_compile(&t, "t", src, strlen(src), NULL, &err);

    if (rc)
        fail_msg("compile '%s': %s", src, err.message);
    return t;
}

static void expect_compile_error(const char *src, int code, unsigned line, unsigned col,
                                 const char *needle)
{
    struct hp_mustache_error err = {0};
    struct hp_mustache *t = NULL;
    int rc = hp_mustache_compile(&t, "page", src, strlen(src), NULL, &err);

    assert_int_equal(rc, code);
    assert_null(t);
    assert_int_equal(err.code, code);
    if (line) {
        assert_int_equal(err.line, line);
        assert_int_equal(err.col, col);
    }
    if (!strstr(err.message, needle))
        fail_msg("message '%s' lacks '%s'", err.message, needle);
    assert_string_equal(err.name, "page");
}

/* Render with the given data; returns the output (static buffer). */
static const char *render(const struct hp_mustache *t, const struct hp_mustache_type *type,
                          const void *data)
{
    static char text[8192];
    struct hp_mustache_buf out = {0};
    struct hp_mustache_error err = {0};
    struct hp_mustache_render_opts ro = {.err = &err};
    int rc = hp_mustache_render(t, type, data, &out, &ro);

    if (rc)
        fail_msg("render: %d %s", rc, err.message);
    assert_true(out.len < sizeof(text));
    memcpy(text, out.data ? out.data : "", out.len);
    text[out.len] = '\0';
    hp_mustache_buf_free(&out);
    return text;
}

/* ---- compile errors ---------------------------------------------------------- */

static void test_compile_errors_name_template_line_column_and_what_was_expected(void **state)
{
    (void)state;
    expect_compile_error("Hello\n  {{#rows}}x", -EINVAL, 2, 3,
                         "page:2:3: unclosed section 'rows' (expected {{/rows}})");
    expect_compile_error("{{#a}}\n{{/b}}", -EINVAL, 2, 1,
                         "mismatched close tag 'b': expected {{/a}} for the '#a' opened at 1:1");
    expect_compile_error("ab\ncd {{name", -EINVAL, 2, 4, "unclosed tag: expected '}}'");
    expect_compile_error("{{=<% %>=}}\n<%x", -EINVAL, 2, 1, "unclosed tag: expected '%>'");
    expect_compile_error("x{{{raw}}", -EINVAL, 1, 2, "unclosed tag: expected '}}}'");
    expect_compile_error("{{= a =}}", -EINVAL, 1, 1, "bad delimiter tag");
    expect_compile_error("{{=a b c=}}", -EINVAL, 1, 1, "bad delimiter tag");
    expect_compile_error("x\n\n   {{/x}}", -EINVAL, 3, 4, "unexpected close tag 'x'");
    expect_compile_error("{{}}", -EINVAL, 1, 1, "empty tag");
    expect_compile_error("{{a b}}", -EINVAL, 1, 1, "unexpected blank inside the name 'a b'");
    expect_compile_error("{{a..b}}", -EINVAL, 1, 1, "bad name 'a..b'");
    expect_compile_error("{{<p}}{{$b}}{{/p}}", -EINVAL, 1, 13, "mismatched close tag 'p'");
    expect_compile_error("{{$b}}", -EINVAL, 1, 1, "unclosed block 'b'");
    expect_compile_error("{{<p}}", -EINVAL, 1, 1, "unclosed parent 'p'");
}

/* ---- limits ------------------------------------------------------------------ */

static void test_nesting_beyond_the_limit_fails_cleanly(void **state)
{
    struct hp_mustache_opts opts = {.max_nesting = 5};
    struct hp_mustache_error err = {0};
    struct hp_mustache *t;
    char src[100000];
    size_t n = 0;

    (void)state;
    assert_int_equal(hp_mustache_compile(&t, "n",
                                         "{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{/a}}{{/a}}{{/a}}"
                                         "{{/a}}{{/a}}",
                                         strlen("{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{/a}}{{/a}}{{/a}}"
                                                "{{/a}}{{/a}}"),
                                         &opts, &err),
                     0);
    hp_mustache_free(t);
    assert_int_equal(
        hp_mustache_compile(&t, "n", "{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}", 36, &opts, &err),
        -ELOOP);
    assert_non_null(strstr(err.message, "n:1:31: nesting deeper than the limit of 5"));
    /* The default (100) against 10,000 open sections: no stack overflow. */
    for (int k = 0; k < 10000; k++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{#a}}");
    assert_int_equal(hp_mustache_compile(&t, "n", src, n, NULL, &err), -ELOOP);
    n = 0;
    for (int k = 0; k < 10000; k++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{<a}}");
    assert_int_equal(hp_mustache_compile(&t, "n", src, n, NULL, &err), -ELOOP);
}

static void test_delimiters_longer_than_the_limit_fail(void **state)
{
    struct hp_mustache_error err = {0};
    struct hp_mustache *t;
    char src[700];

    (void)state;
    snprintf(src, sizeof(src), "{{=%0300d %0300d=}}", 1, 2);
    assert_int_equal(hp_mustache_compile(&t, "d", src, strlen(src), NULL, &err), -EINVAL);
    assert_non_null(strstr(err.message, "delimiter longer than the limit"));
    /* 32 bytes are fine */
    snprintf(src, sizeof(src), "{{=%032d %032d=}}x%032dy%032d", 1, 2, 1, 2);
    assert_int_equal(hp_mustache_compile(&t, "d", src, strlen(src), NULL, &err), 0);
    assert_string_equal(render(t, NULL, NULL), "x");
    hp_mustache_free(t);
}

static void test_recursive_partials_stop_at_the_partial_limit(void **state)
{
    struct hp_mustache_set *set;
    struct hp_mustache_error err = {0};
    struct hp_mustache_buf out = {0};
    struct hp_mustache_render_opts ro = {.err = &err, .max_partials = 10};
    struct hp_mustache_value dyn_name = {.type = HP_MUSTACHE_V_STRING, .u.s = HP_STR_LIT("dyn")};
    struct hp_mustache_member m = {HP_STR_LIT("name"), dyn_name};
    struct hp_mustache_value root = {.type = HP_MUSTACHE_V_MAP, .u.map = {&m, 1}};

    (void)state;
    assert_int_equal(hp_mustache_set_new(&set, NULL), 0);
    assert_int_equal(hp_mustache_set_add(set, "r", "x{{>r}}", 7, &err), 0);
    assert_int_equal(hp_mustache_set_add(set, "dyn", "y{{>*name}}", 11, &err), 0);
    assert_int_equal(hp_mustache_set_add(set, "p", "{{<p}}{{/p}}", 12, &err), 0);
    assert_int_equal(
        hp_mustache_set_add(set, "b", "{{<b2}}{{$a}}{{$a}}{{/a}}{{/a}}{{/b2}}", 38, &err), 0);
    assert_int_equal(hp_mustache_set_add(set, "b2", "{{$a}}{{/a}}", 12, &err), 0);
    out.len = 0;
    assert_int_equal(hp_mustache_render(hp_mustache_set_get(set, "r"), NULL, NULL, &out, &ro),
                     -ELOOP);
    assert_int_equal(out.len, 0);
    assert_non_null(strstr(err.message, "partials nested deeper than the limit"));
    assert_int_equal(hp_mustache_render(hp_mustache_set_get(set, "dyn"), &hp_mustache_type_value,
                                        &root, &out, &ro),
                     -ELOOP);
    assert_int_equal(hp_mustache_render(hp_mustache_set_get(set, "p"), NULL, NULL, &out, NULL),
                     -ELOOP);
    assert_int_equal(hp_mustache_render(hp_mustache_set_get(set, "b"), NULL, NULL, &out, NULL),
                     -ELOOP);
    assert_int_equal(out.len, 0);
    hp_mustache_buf_free(&out);
    hp_mustache_set_free(set);
}

struct lst {
    const int *v;
    size_t n;
};

struct collect {
    struct hp_mustache_buf all;
    unsigned calls;
    size_t biggest;
    int fail_at;
};

static int collect(void *ud, const char *p, size_t n)
{
    struct collect *c = ud;

    c->calls++;
    if (n > c->biggest)
        c->biggest = n;
    if (c->fail_at && (int)c->calls == c->fail_at)
        return -EPIPE;
    return hp_mustache_buf_append(&c->all, p, n);
}
static const struct hp_mustache_field lst_fields[] = {
    HP_MUSTACHE_LIST_FIELD(struct lst, v, n, &hp_mustache_type_int),
};
static const struct hp_mustache_type lst_type = HP_MUSTACHE_STRUCT_TYPE(struct lst, lst_fields);

static void test_output_beyond_max_output_fails_and_restores_the_buffer(void **state)
{
    static int nums[1000];
    struct lst l = {nums, 1000};
    struct hp_mustache *t = compile_ok("{{#v}}<{{.}}>{{/v}}");
    struct hp_mustache_error err = {0};
    struct hp_mustache_render_opts ro = {.err = &err, .max_output = 100};
    struct hp_mustache_buf out = {0};

    (void)state;
    assert_int_equal(hp_mustache_buf_append(&out, "keep", 4), 0);
    assert_int_equal(hp_mustache_render(t, &lst_type, &l, &out, &ro), -EMSGSIZE);
    assert_int_equal(out.len, 4);
    assert_non_null(strstr(err.message, "output larger than the limit"));
    ro.max_output = 3000;
    assert_int_equal(hp_mustache_render(t, &lst_type, &l, &out, &ro), 0);
    assert_int_equal(out.len, 4 + 3000);
    assert_memory_equal(out.data, "keep<0><0>", 10);
    hp_mustache_buf_free(&out);
    hp_mustache_free(t);
}

static void test_every_output_limit_gives_the_whole_output_or_an_error(void **state)
{
    static int nums[40];
    struct lst l = {nums, 40};
    struct hp_mustache *t = compile_ok("<ul>{{#v}}<li>{{.}}</li>{{/v}}</ul>{{#v}}{{.}},{{/v}}");
    struct hp_mustache_buf full = {0}, out = {0};

    (void)state;
    for (int k = 0; k < 40; k++)
        nums[k] = k * k * k - 500;
    assert_int_equal(hp_mustache_render(t, &lst_type, &l, &full, NULL), 0);
    for (size_t lim = 1; lim <= full.len + 1; lim++) {
        struct hp_mustache_render_opts ro = {.max_output = lim};
        struct collect c = {0};
        int rc = hp_mustache_render(t, &lst_type, &l, &out, &ro);
        int rs = hp_mustache_render_sink(t, &lst_type, &l, collect, &c, &ro);
        if (lim < full.len) {
            assert_int_equal(rc, -EMSGSIZE);
            assert_int_equal(rs, -EMSGSIZE);
            assert_int_equal(out.len, 0);
            assert_true(c.all.len <= lim);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(rs, 0);
            assert_int_equal(out.len, full.len);
            assert_memory_equal(out.data, full.data, full.len);
            assert_int_equal(c.all.len, full.len);
            assert_memory_equal(c.all.data, full.data, full.len);
        }
        out.len = 0;
        hp_mustache_buf_free(&c.all);
    }
    hp_mustache_buf_free(&full);
    hp_mustache_buf_free(&out);
    hp_mustache_free(t);
}

static void test_int_lists_render_alike_from_structs_values_and_indented_partials(void **state)
{
    static const int nums[] = {-2147483647 - 1, -1,        0, 9, 10, 99, 100, 999, 1000, 9999,
                               10000,           2147483647};
    struct lst l = {nums, 12};
    struct hp_mustache_value items[12];
    struct hp_mustache_member m = {HP_STR_LIT("v"), {.type = HP_MUSTACHE_V_LIST}};
    struct hp_mustache_value root = {.type = HP_MUSTACHE_V_MAP, .u.map = {&m, 1}};
    struct hp_mustache_set *set;
    const char *want = "<-2147483648><-1><0><9><10><99><100><999><1000><9999><10000><2147483647>";
    char line[256];

    (void)state;
    for (int k = 0; k < 12; k++)
        items[k] = (struct hp_mustache_value){.type = HP_MUSTACHE_V_INT, .u.i = nums[k]};
    m.value.u.list.items = items;
    m.value.u.list.n = 12;
    assert_int_equal(hp_mustache_set_new(&set, NULL), 0);
    assert_int_equal(hp_mustache_set_add(set, "list", "{{#v}}<{{.}}>{{/v}}\n", 20, NULL), 0);
    assert_int_equal(hp_mustache_set_add(set, "page", "x\n  {{>list}}\n", 15, NULL), 0);
    snprintf(line, sizeof(line), "%s\n", want);
    assert_string_equal(render(hp_mustache_set_get(set, "list"), &lst_type, &l), line);
    assert_string_equal(render(hp_mustache_set_get(set, "list"), &hp_mustache_type_value, &root),
                        line);
    snprintf(line, sizeof(line), "x\n  %s\n", want);
    assert_string_equal(render(hp_mustache_set_get(set, "page"), &lst_type, &l), line);
    assert_string_equal(render(hp_mustache_set_get(set, "page"), &hp_mustache_type_value, &root),
                        line);
    hp_mustache_set_free(set);
}

static void test_context_deeper_than_max_depth_fails(void **state)
{
    struct hp_mustache_value v[600];
    struct hp_mustache_member m[600];
    struct hp_mustache_render_opts ro = {.max_depth = 50};
    struct hp_mustache_buf out = {0};
    char src[8000];
    size_t n = 0;
    struct hp_mustache_opts co = {.max_nesting = 600};
    struct hp_mustache *t;

    (void)state;
    /* {"a": {"a": ... {"a": {}}}} 599 deep, and a template 300 sections deep */
    v[599] = (struct hp_mustache_value){.type = HP_MUSTACHE_V_MAP};
    for (int k = 598; k >= 0; k--) {
        m[k] = (struct hp_mustache_member){HP_STR_LIT("a"), v[k + 1]};
        v[k] = (struct hp_mustache_value){.type = HP_MUSTACHE_V_MAP, .u.map = {&m[k], 1}};
    }
    for (int k = 0; k < 300; k++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{#a}}");
    n += (size_t)snprintf(src + n, sizeof(src) - n, "deep");
    for (int k = 0; k < 300; k++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{/a}}");
    assert_int_equal(hp_mustache_compile(&t, "deep", src, n, &co, NULL), 0);
    assert_int_equal(hp_mustache_render(t, &hp_mustache_type_value, &v[0], &out, &ro), -ELOOP);
    ro.max_depth = 400;
    assert_int_equal(hp_mustache_render(t, &hp_mustache_type_value, &v[0], &out, &ro), 0);
    assert_int_equal(out.len, 4);
    hp_mustache_buf_free(&out);
    hp_mustache_free(t);
}

static void test_source_beyond_max_source_is_refused(void **state)
{
    struct hp_mustache_opts opts = {.max_source = 10};
    struct hp_mustache_error err = {0};
    struct hp_mustache *t;

    (void)state;
    assert_int_equal(hp_mustache_compile(&t, "big", "01234567890", 11, &opts, &err), -EFBIG);
    assert_non_null(strstr(err.message, "over the limit"));
}

/* ---- the struct binding ---------------------------------------------------- */

struct tag {
    struct hp_str name;
};
struct item {
    int id;
    const char *title;
    double price;
    bool sold;
    int64_t big;
    const struct tag *tags;
    size_t ntags;
    int scores[4];
    size_t nscores;
    const struct item *next; /* NULL-able */
};
struct shop {
    const char *name;
    struct {
        const char *city;
        int zip;
    } addr;
    const struct item *items;
    size_t nitems;
    struct hp_mustache_value extra;
};

static const struct hp_mustache_field tag_fields[] = {
    HP_MUSTACHE_FIELD(struct tag, name, &hp_mustache_type_str),
};
static const struct hp_mustache_type tag_type = HP_MUSTACHE_STRUCT_TYPE(struct tag, tag_fields);
static const struct hp_mustache_type item_type;
static const struct hp_mustache_field item_fields[] = {
    HP_MUSTACHE_FIELD(struct item, id, &hp_mustache_type_int),
    HP_MUSTACHE_FIELD(struct item, title, &hp_mustache_type_cstr),
    HP_MUSTACHE_FIELD(struct item, price, &hp_mustache_type_double),
    HP_MUSTACHE_FIELD(struct item, sold, &hp_mustache_type_bool),
    HP_MUSTACHE_FIELD(struct item, big, &hp_mustache_type_i64),
    HP_MUSTACHE_LIST_FIELD(struct item, tags, ntags, &tag_type),
    HP_MUSTACHE_ARRAY_FIELD(struct item, scores, nscores, &hp_mustache_type_int),
    HP_MUSTACHE_FIELD_PTR(struct item, next, &item_type),
};
static const struct hp_mustache_type item_type = HP_MUSTACHE_STRUCT_TYPE(struct item, item_fields);
struct addr {
    const char *city;
    int zip;
};
static const struct hp_mustache_field addr_fields[] = {
    {"city", offsetof(struct addr, city), &hp_mustache_type_cstr, 0, 0},
    {"zip", offsetof(struct addr, zip), &hp_mustache_type_int, 0, 0},
};
static const struct hp_mustache_type addr_type = HP_MUSTACHE_STRUCT_TYPE(struct addr, addr_fields);
static const struct hp_mustache_field shop_fields[] = {
    HP_MUSTACHE_FIELD(struct shop, name, &hp_mustache_type_cstr),
    HP_MUSTACHE_FIELD(struct shop, addr, &addr_type),
    HP_MUSTACHE_LIST_FIELD(struct shop, items, nitems, &item_type),
    HP_MUSTACHE_FIELD(struct shop, extra, &hp_mustache_type_value),
};
static const struct hp_mustache_type shop_type = HP_MUSTACHE_STRUCT_TYPE(struct shop, shop_fields);

static void test_structs_render_in_place_with_every_field_kind(void **state)
{
    static const struct tag tags[] = {{{"new", 3}}, {{"<hot>", 5}}};
    static const struct item later = {.id = 3, .title = "later"};
    static const struct item items[] = {
        {1, "Tea & cake", 2.5, true, INT64_MIN, tags, 2, {7, 8, 9, 0}, 3, &later},
        {2, NULL, 10, false, 42, NULL, 0, {0}, 0, NULL},
    };
    struct hp_mustache_member em = {HP_STR_LIT("note"),
                                    {.type = HP_MUSTACHE_V_STRING, .u.s = HP_STR_LIT("hi")}};
    struct shop shop = {
        "Mo's", {"Oslo", 150}, items, 2, {.type = HP_MUSTACHE_V_MAP, .u.map = {&em, 1}}};
    struct hp_mustache *t = compile_ok(
        "{{name}} ({{addr.city}} {{addr.zip}}) {{extra.note}}\n"
        "{{#items}}#{{id}} {{title}}{{^title}}untitled{{/title}} {{price}} {{sold}} {{big}}"
        " [{{#tags}}{{name}},{{/tags}}] [{{#scores}}{{.}};{{/scores}}]"
        "{{#next}} then {{id}}:{{title}}{{/next}}{{^next}} last{{/next}} {{name}}\n{{/items}}");

    (void)state;
    assert_string_equal(render(t, &shop_type, &shop),
                        "Mo&#39;s (Oslo 150) hi\n"
                        "#1 Tea &amp; cake 2.5 true -9223372036854775808 [new,&lt;hot&gt;,] "
                        "[7;8;9;] then 3:later Mo&#39;s\n"
                        "#2 untitled 10 false 42 [] [] last Mo&#39;s\n");
    hp_mustache_free(t);
}

/*
 * A name found in a struct at the top of the context is remembered for the
 * rest of the render: the partial's own first name (index 0, like the
 * page's {{id}}) must still find its own field, a name missing from the row
 * must still reach the page, the partial's names in a row of another type
 * (a tag) must find that row's fields, and a second render with other data must not
 * see the first render's answers.
 */
static void test_remembered_fields_keep_to_their_template_and_their_type(void **state)
{
    static const struct tag tags[] = {{{"x", 1}}};
    static const struct item rows[] = {{.id = 1, .title = "a", .tags = tags, .ntags = 1},
                                       {.id = 2, .title = "<b>"}};
    struct shop shop = {.name = "S", .items = rows, .nitems = 2};
    struct hp_mustache_set *set;
    const struct hp_mustache *page;
    static const char part[] = "[{{title}}|{{name}}|{{id}}]";
    static const char src[] =
        "{{#items}}{{id}}{{>row}}{{name}}{{#tags}}{{>row}}{{/tags}};{{/items}}"
        "{{#addr}}{{zip}}{{/addr}}";

    (void)state;
    assert_int_equal(hp_mustache_set_new(&set, NULL), 0);
    assert_int_equal(hp_mustache_set_add(set, "row", part, sizeof(part) - 1, NULL), 0);
    assert_int_equal(hp_mustache_set_add(set, "page", src, sizeof(src) - 1, NULL), 0);
    page = hp_mustache_set_get(set, "page");
    assert_string_equal(render(page, &shop_type, &shop), "1[a|S|1]S[a|x|1];2[&lt;b&gt;|S|2]S;0");
    shop.name = "T";
    shop.addr.zip = 7;
    shop.nitems = 1;
    assert_string_equal(render(page, &shop_type, &shop), "1[a|T|1]T[a|x|1];7");
    hp_mustache_set_free(set);
}

static void test_value_trees_render_every_type(void **state)
{
    struct hp_mustache_value items[] = {
        {.type = HP_MUSTACHE_V_INT, .u.i = -7},
        {.type = HP_MUSTACHE_V_DOUBLE, .u.d = 0.1},
        {.type = HP_MUSTACHE_V_BOOL, .u.b = false},
        {.type = HP_MUSTACHE_V_NULL},
        {.type = HP_MUSTACHE_V_STRING, .u.s = HP_STR_LIT("\"q\"")},
    };
    struct hp_mustache_member m[] = {
        {HP_STR_LIT("list"), {.type = HP_MUSTACHE_V_LIST, .u.list = {items, 5}}},
        {HP_STR_LIT("zero"), {.type = HP_MUSTACHE_V_INT, .u.i = 0}},
        {HP_STR_LIT("empty"), {.type = HP_MUSTACHE_V_STRING, .u.s = HP_STR_LIT("")}},
    };
    struct hp_mustache_value root = {.type = HP_MUSTACHE_V_MAP, .u.map = {m, 3}};
    struct hp_mustache *t =
        compile_ok("{{#list}}[{{.}}]{{/list}} {{#zero}}no{{/zero}}"
                   "{{^zero}}zero is falsey{{/zero}} {{^empty}}so is \"\"{{/empty}}");

    (void)state;
    assert_string_equal(render(t, &hp_mustache_type_value, &root),
                        "[-7][0.1][false][][&quot;q&quot;] zero is falsey so is \"\"");
    hp_mustache_free(t);
}

static int literal_lambda(void *ud, const struct hp_str *section, struct hp_mustache_buf *out,
                          bool *literal)
{
    (void)ud;
    *literal = true;
    if (section)
        return hp_mustache_buf_append(out, section->ptr, section->len);
    return hp_mustache_buf_append(out, "{{not expanded}} <b>", 20);
}

static int failing_lambda(void *ud, const struct hp_str *section, struct hp_mustache_buf *out,
                          bool *literal)
{
    (void)ud, (void)section, (void)out, (void)literal;
    return -ECONNRESET;
}

static void test_lambdas_may_return_literal_text_or_fail_the_render(void **state)
{
    struct hp_mustache_member m[] = {
        {HP_STR_LIT("lit"), {.type = HP_MUSTACHE_V_LAMBDA, .u.lambda = {literal_lambda, NULL}}},
        {HP_STR_LIT("bad"), {.type = HP_MUSTACHE_V_LAMBDA, .u.lambda = {failing_lambda, NULL}}},
    };
    struct hp_mustache_value root = {.type = HP_MUSTACHE_V_MAP, .u.map = {m, 2}};
    struct hp_mustache *t = compile_ok("{{lit}}|{{{lit}}}|{{#lit}}{{x}}{{/lit}}");
    struct hp_mustache *bad = compile_ok("a\n {{bad}}");
    struct hp_mustache_error err = {0};
    struct hp_mustache_render_opts ro = {.err = &err};
    struct hp_mustache_buf out = {0};

    (void)state;
    assert_string_equal(render(t, &hp_mustache_type_value, &root),
                        "{{not expanded}} &lt;b&gt;|{{not expanded}} <b>|{{x}}");
    assert_int_equal(hp_mustache_render(bad, &hp_mustache_type_value, &root, &out, &ro),
                     -ECONNRESET);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 2);
    hp_mustache_buf_free(&out);
    hp_mustache_free(t);
    hp_mustache_free(bad);
}

/* ---- strict mode ----------------------------------------------------------------- */

static void test_strict_mode_reports_missing_names_with_their_place(void **state)
{
    struct hp_mustache *t = compile_ok("{{name}}\n  {{#items}}{{nope.deeper}}{{/items}}");
    struct hp_mustache *inv = compile_ok("{{^missing}}fine{{/missing}}");
    struct hp_mustache_error err = {0};
    struct hp_mustache_render_opts ro = {.err = &err, .strict = true};
    struct hp_mustache_buf out = {0};
    static const struct item items[] = {{.id = 1}};
    struct shop shop = {.name = "n", .items = items, .nitems = 1};

    (void)state;
    assert_int_equal(hp_mustache_render(t, &shop_type, &shop, &out, &ro), -ENOENT);
    assert_int_equal(out.len, 0);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 13);
    assert_non_null(strstr(err.message, "t:2:13: strict mode: no value for 'nope.deeper'"));
    /* not strict: missing names render empty */
    assert_string_equal(render(t, &shop_type, &shop), "n\n  ");
    /* inverted sections test for absence: no error */
    assert_int_equal(hp_mustache_render(inv, NULL, NULL, &out, &ro), 0);
    assert_int_equal(out.len, 4);
    hp_mustache_buf_free(&out);
    hp_mustache_free(t);
    hp_mustache_free(inv);
}

/* ---- sinks and buffers --------------------------------------------------------- */

static void test_sinks_get_the_same_bytes_in_bounded_pieces(void **state)
{
    static int nums[5000];
    struct lst l = {nums, 5000};
    struct hp_mustache *t = compile_ok("{{#v}}<td>{{.}}</td>{{/v}}");
    struct hp_mustache_buf out = {0};
    struct collect c = {0};

    (void)state;
    for (int k = 0; k < 5000; k++)
        nums[k] = k * 37 - 1000;
    assert_int_equal(hp_mustache_render(t, &lst_type, &l, &out, NULL), 0);
    assert_int_equal(hp_mustache_render_sink(t, &lst_type, &l, collect, &c, NULL), 0);
    assert_int_equal(c.all.len, out.len);
    assert_memory_equal(c.all.data, out.data, out.len);
    assert_true(c.calls > 1);
    assert_true(c.biggest <= 4096);
    /* a sink's error ends the render and is returned */
    hp_mustache_buf_free(&c.all);
    c = (struct collect){.fail_at = 2};
    assert_int_equal(hp_mustache_render_sink(t, &lst_type, &l, collect, &c, NULL), -EPIPE);
    assert_int_equal(c.calls, 2);
    hp_mustache_buf_free(&c.all);
    hp_mustache_buf_free(&out);
    hp_mustache_free(t);
}

static void test_big_strings_escape_through_buffers_and_sinks(void **state)
{
    size_t n = 300000;
    char *s = malloc(n + 1);
    struct hp_mustache *t = compile_ok("[{{s}}]");
    struct hp_mustache_member m = {HP_STR_LIT("s"), {.type = HP_MUSTACHE_V_STRING}};
    struct hp_mustache_value root = {.type = HP_MUSTACHE_V_MAP, .u.map = {&m, 1}};
    struct hp_mustache_buf out = {0}, ref = {0};
    struct collect c = {0};

    (void)state;
    for (size_t k = 0; k < n; k++)
        s[k] = "ab<c&d\"e'f>g"[k % 12];
    m.value.u.s = (struct hp_str){s, n};
    assert_int_equal(hp_mustache_buf_append(&ref, "[", 1), 0);
    assert_int_equal(hp_mustache_escape(&ref, s, n), 0);
    assert_int_equal(hp_mustache_buf_append(&ref, "]", 1), 0);
    assert_int_equal(hp_mustache_render(t, &hp_mustache_type_value, &root, &out, NULL), 0);
    assert_int_equal(out.len, ref.len);
    assert_memory_equal(out.data, ref.data, ref.len);
    assert_int_equal(hp_mustache_render_sink(t, &hp_mustache_type_value, &root, collect, &c, NULL),
                     0);
    assert_int_equal(c.all.len, ref.len);
    assert_memory_equal(c.all.data, ref.data, ref.len);
    hp_mustache_buf_free(&c.all);
    hp_mustache_buf_free(&out);
    hp_mustache_buf_free(&ref);
    free(s);
    hp_mustache_free(t);
}

/* ---- escaping ------------------------------------------------------------------- */

static void test_escaping_matches_a_byte_by_byte_reference(void **state)
{
    static char src[1200], want[1200 * 6];
    unsigned seed = 12345;

    (void)state;
    for (size_t len = 0; len < 1200; len += (len < 140 ? 1 : 37)) {
        for (int density = 0; density < 4; density++) {
            struct hp_mustache_buf out = {0};
            for (size_t k = 0; k < len; k++) {
                seed = seed * 1103515245u + 12345u;
                unsigned r = seed >> 16;
                src[k] = density == 0                         ? (char)(r & 0xff)
                         : (r % (unsigned)(density * 8)) == 0 ? "&<>\"'"[r % 5]
                                                              : (char)('a' + r % 26);
            }
            size_t w = ref_escape(want, src, len);
            assert_int_equal(hp_mustache_escape(&out, src, len), 0);
            assert_int_equal(out.len, w);
            if (w)
                assert_memory_equal(out.data, want, w);
            hp_mustache_buf_free(&out);
        }
    }
}

/* ---- threads -------------------------------------------------------------------- */

struct row {
    int id;
    const char *message;
};
static const struct hp_mustache_field row_fields[] = {
    HP_MUSTACHE_FIELD(struct row, id, &hp_mustache_type_int),
    HP_MUSTACHE_FIELD(struct row, message, &hp_mustache_type_cstr),
};
static const struct hp_mustache_type row_type = HP_MUSTACHE_STRUCT_TYPE(struct row, row_fields);
struct page {
    const struct row *rows;
    size_t n;
    const char *title;
};
static const struct hp_mustache_field page_fields[] = {
    HP_MUSTACHE_LIST_FIELD(struct page, rows, n, &row_type),
    HP_MUSTACHE_FIELD(struct page, title, &hp_mustache_type_cstr),
};
static const struct hp_mustache_type page_type = HP_MUSTACHE_STRUCT_TYPE(struct page, page_fields);

struct worker {
    const struct hp_mustache *t;
    int base;
    int failures;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    struct row rows[20];
    char msgs[20][32], title[32], want[4096];
    struct page page = {rows, 20, title};
    struct hp_mustache_buf out = {0};
    size_t n;

    snprintf(title, sizeof(title), "<t%d>", w->base);
    n = (size_t)snprintf(want, sizeof(want), "&lt;t%d&gt;:", w->base);
    for (int k = 0; k < 20; k++) {
        snprintf(msgs[k], sizeof(msgs[k]), "m&%d", w->base + k);
        rows[k] = (struct row){w->base + k, msgs[k]};
        n +=
            (size_t)snprintf(want + n, sizeof(want) - n, "[%d m&amp;%d]", w->base + k, w->base + k);
    }
    for (int it = 0; it < 2000; it++) {
        out.len = 0;
        if (hp_mustache_render(w->t, &page_type, &page, &out, NULL) != 0 || out.len != n ||
            memcmp(out.data, want, n) != 0)
            w->failures++;
    }
    hp_mustache_buf_free(&out);
    return NULL;
}

static void test_several_threads_render_one_template_at_once(void **state)
{
    struct hp_mustache_set *set;
    struct worker w[4];
    pthread_t th[4];

    (void)state;
    assert_int_equal(hp_mustache_set_new(&set, NULL), 0);
    assert_int_equal(hp_mustache_set_add(set, "row", "[{{id}} {{message}}]", 20, NULL), 0);
    assert_int_equal(
        hp_mustache_set_add(set, "page", "{{title}}:{{#rows}}{{>row}}{{/rows}}", 36, NULL), 0);
    for (int k = 0; k < 4; k++) {
        w[k] = (struct worker){hp_mustache_set_get(set, "page"), k * 1000, 0};
        assert_int_equal(pthread_create(&th[k], NULL, worker, &w[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(pthread_join(th[k], NULL), 0);
        assert_int_equal(w[k].failures, 0);
    }
    hp_mustache_set_free(set);
}

/* ---- directories ------------------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void test_directories_load_partials_by_name_and_refresh_changed_files(void **state)
{
    char dir[] = "/tmp/hp-mustache-XXXXXX", path[256];
    struct hp_mustache_set *set;
    struct hp_mustache_error err = {0};
    const struct hp_mustache *page;
    struct page p = {NULL, 0, "T"};

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/page.mustache", dir);
    write_file(path, "<h1>{{title}}</h1>\n  {{>parts/footer}}\n");
    snprintf(path, sizeof(path), "%s/parts", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/parts/footer.mustache", dir);
    write_file(path, "bye\n{{title}}\n");
    snprintf(path, sizeof(path), "%s/ignored.txt", dir);
    write_file(path, "{{#broken");

    assert_int_equal(hp_mustache_set_new(&set, NULL), 0);
    assert_int_equal(hp_mustache_set_load_dir(set, dir, &err), 0);
    assert_non_null(page = hp_mustache_set_get(set, "page"));
    assert_non_null(hp_mustache_set_get(set, "parts/footer"));
    assert_null(hp_mustache_set_get(set, "ignored"));
    assert_string_equal(render(page, &page_type, &p), "<h1>T</h1>\n  bye\n  T\n");
    assert_int_equal(hp_mustache_set_refresh(set, &err), 0);

    /* change the partial (a different size, so even a coarse mtime sees it) */
    snprintf(path, sizeof(path), "%s/parts/footer.mustache", dir);
    write_file(path, "goodbye {{title}}\n");
    snprintf(path, sizeof(path), "%s/new.mustache", dir);
    write_file(path, "new {{>page}}");
    assert_int_equal(hp_mustache_set_refresh(set, &err), 2);
    assert_ptr_equal(hp_mustache_set_get(set, "page"), page);
    assert_string_equal(render(page, &page_type, &p), "<h1>T</h1>\n  goodbye T\n");
    assert_string_equal(render(hp_mustache_set_get(set, "new"), &page_type, &p),
                        "new <h1>T</h1>\n  goodbye T\n");

    /* a broken edit keeps the old template and reports where */
    snprintf(path, sizeof(path), "%s/parts/footer.mustache", dir);
    write_file(path, "{{#oops}}\n");
    assert_int_equal(hp_mustache_set_refresh(set, &err), -EINVAL);
    assert_non_null(strstr(err.message, "/parts/footer.mustache:1:1: unclosed section 'oops'"));
    assert_string_equal(err.name, "parts/footer");
    assert_string_equal(render(page, &page_type, &p), "<h1>T</h1>\n  goodbye T\n");

    /* a file that cannot be read */
    assert_int_equal(hp_mustache_set_load_file(set, NULL, "/nonexistent/x.mustache", &err),
                     -ENOENT);
    assert_non_null(strstr(err.message, "cannot open"));
    assert_int_equal(hp_mustache_set_load_dir(set, "/nonexistent", &err), -ENOENT);
    hp_mustache_set_free(set);

    snprintf(path, sizeof(path), "%s/parts/footer.mustache", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/parts", dir);
    rmdir(path);
    const char *files[] = {"page.mustache", "new.mustache", "ignored.txt"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_resolve_dir_loads_named_partials_on_demand_inside_the_directory(void **state)
{
    char dir[] = "/tmp/hp-mustache-XXXXXX", path[256];
    struct hp_mustache_set *set;
    struct hp_mustache_error err = {0};
    struct page p = {NULL, 0, "T"};
    const char *tpl = "[{{>a}}|{{>sub/b}}|{{>none}}|{{>../escape}}]";

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.mustache", dir);
    write_file(path, "A{{>c}}");
    snprintf(path, sizeof(path), "%s/c.mustache", dir);
    write_file(path, "C{{title}}");
    snprintf(path, sizeof(path), "%s/unused.mustache", dir);
    write_file(path, "{{#broken");
    snprintf(path, sizeof(path), "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/sub/b.mustache", dir);
    write_file(path, "B");

    assert_int_equal(hp_mustache_set_new(&set, NULL), 0);
    assert_int_equal(hp_mustache_set_add(set, "main", tpl, strlen(tpl), &err), 0);
    /* a, sub/b, then c (named by a); the broken file is never read */
    assert_int_equal(hp_mustache_set_resolve_dir(set, dir, &err), 3);
    assert_string_equal(render(hp_mustache_set_get(set, "main"), &page_type, &p), "[ACT|B||]");
    assert_null(hp_mustache_set_get(set, "unused"));
    assert_int_equal(hp_mustache_set_resolve_dir(set, dir, &err), 0);
    /* a referenced file that does not compile is an error naming it */
    assert_int_equal(hp_mustache_set_add(set, "main", "{{>unused}}", 11, &err), 0);
    assert_int_equal(hp_mustache_set_resolve_dir(set, dir, &err), -EINVAL);
    assert_non_null(strstr(err.message, "/unused.mustache:1:1: unclosed tag"));
    hp_mustache_set_free(set);

    const char *files[] = {"a.mustache", "c.mustache", "unused.mustache", "sub/b.mustache"};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_errors_name_template_line_column_and_what_was_expected),
        cmocka_unit_test(test_nesting_beyond_the_limit_fails_cleanly),
        cmocka_unit_test(test_delimiters_longer_than_the_limit_fail),
        cmocka_unit_test(test_recursive_partials_stop_at_the_partial_limit),
        cmocka_unit_test(test_output_beyond_max_output_fails_and_restores_the_buffer),
        cmocka_unit_test(test_every_output_limit_gives_the_whole_output_or_an_error),
        cmocka_unit_test(test_int_lists_render_alike_from_structs_values_and_indented_partials),
        cmocka_unit_test(test_context_deeper_than_max_depth_fails),
        cmocka_unit_test(test_source_beyond_max_source_is_refused),
        cmocka_unit_test(test_structs_render_in_place_with_every_field_kind),
        cmocka_unit_test(test_remembered_fields_keep_to_their_template_and_their_type),
        cmocka_unit_test(test_value_trees_render_every_type),
        cmocka_unit_test(test_lambdas_may_return_literal_text_or_fail_the_render),
        cmocka_unit_test(test_strict_mode_reports_missing_names_with_their_place),
        cmocka_unit_test(test_sinks_get_the_same_bytes_in_bounded_pieces),
        cmocka_unit_test(test_big_strings_escape_through_buffers_and_sinks),
        cmocka_unit_test(test_escaping_matches_a_byte_by_byte_reference),
        cmocka_unit_test(test_several_threads_render_one_template_at_once),
        cmocka_unit_test(test_directories_load_partials_by_name_and_refresh_changed_files),
        cmocka_unit_test(test_resolve_dir_loads_named_partials_on_demand_inside_the_directory),
    };

    return cmocka_run_group_tests_name("mustache/engine", tests, NULL, NULL);
}
