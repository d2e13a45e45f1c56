/*
 * tests/mustache/test_spec.c - every test of every module of the official
 * Mustache spec (tests/mustache/spec, MIT, from mustache/spec), parsed
 * with jansson: the required modules, inheritance, dynamic names and the
 * lambdas, whose code is given per test below as C callbacks. All 194
 * pass and none is skipped: each lambda test's semantics (called once per
 * use, interpolation results rendered with the default delimiters and then
 * escaped, section lambdas given the raw section text and rendered with the
 * delimiters in effect, lambdas truthy for inverted sections) are met.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <hellepoll/mustache.h>

#include "json_value.h"

/* ---- the spec's lambdas, in C ---------------------------------------------- */

struct lambda_ctx {
    const char *test;
    unsigned calls;
};

static int put(struct hp_mustache_buf *out, const char *s)
{
    return hp_mustache_buf_append(out, s, strlen(s));
}

static int put_str(struct hp_mustache_buf *out, const struct hp_str *s)
{
    return hp_mustache_buf_append(out, s->ptr, s->len);
}

static int spec_lambda(void *ud, const struct hp_str *text, struct hp_mustache_buf *out,
                       bool *literal)
{
    struct lambda_ctx *c = ud;
    const char *t = c->test;

    (void)literal;
    if (strcmp(t, "Interpolation") == 0)
        return put(out, "world");
    if (strcmp(t, "Interpolation - Expansion") == 0)
        return put(out, "{{planet}}");
    if (strcmp(t, "Interpolation - Alternate Delimiters") == 0)
        return put(out, "|planet| => {{planet}}");
    if (strcmp(t, "Interpolation - Multiple Calls") == 0) {
        char n[16];
        snprintf(n, sizeof(n), "%u", ++c->calls);
        return put(out, n);
    }
    if (strcmp(t, "Escaping") == 0)
        return put(out, ">");
    if (strcmp(t, "Section") == 0)
        return put(out, text->len == 5 && memcmp(text->ptr, "{{x}}", 5) == 0 ? "yes" : "no");
    if (strcmp(t, "Section - Expansion") == 0)
        return put_str(out, text) || put(out, "{{planet}}") || put_str(out, text) ? -ENOMEM : 0;
    if (strcmp(t, "Section - Alternate Delimiters") == 0)
        return put_str(out, text) || put(out, "{{planet}} => |planet|") || put_str(out, text)
                   ? -ENOMEM
                   : 0;
    if (strcmp(t, "Section - Multiple Calls") == 0)
        return put(out, "__") || put_str(out, text) || put(out, "__") ? -ENOMEM : 0;
    if (strcmp(t, "Inverted Section") == 0)
        return 0; /* never called: a lambda is truthy */
    return -ENOSYS;
}

static int code_hook(void *ud, const json_t *obj, struct hp_mustache_value *v)
{
    const char *tag = json_string_value(json_object_get(obj, "__tag__"));

    if (!tag || strcmp(tag, "code") != 0)
        return 0;
    v->type = HP_MUSTACHE_V_LAMBDA;
    v->u.lambda.fn = spec_lambda;
    v->u.lambda.ud = ud;
    return 1;
}

/* ---- running a spec file ---------------------------------------------------- */

static unsigned total_run, total_passed;

static bool run_one(const char *file, json_t *test)
{
    const char *name = json_string_value(json_object_get(test, "name"));
    const char *tpl = json_string_value(json_object_get(test, "template"));
    const char *expected = json_string_value(json_object_get(test, "expected"));
    json_t *partials = json_object_get(test, "partials"), *p;
    struct lambda_ctx lc = {name, 0};
    struct hp_mustache_value data;
    struct hp_mustache_set *set;
    struct hp_mustache_error err = {0};
    struct hp_mustache_buf out = {0};
    const char *pname;
    bool ok = false;
    int rc;

    assert_int_equal(hp_mustache_set_new(&set, NULL), 0);
    assert_int_equal(hp_json_to_value(json_object_get(test, "data"), &data, code_hook, &lc), 0);
    json_object_foreach(partials, pname, p)
    {
        rc = hp_mustache_set_add(set, pname, json_string_value(p), json_string_length(p), &err);
        if (rc)
            printf("  [%s] %s: partial %s: %s\n", file, name, pname, err.message);
    }
    rc = hp_mustache_set_add(set, "spec test template", tpl, strlen(tpl), &err);
    if (rc) {
        printf("  FAIL [%s] %s: compile: %s\n", file, name, err.message);
    } else {
        struct hp_mustache_render_opts ro = {.err = &err};
        rc = hp_mustache_render(hp_mustache_set_get(set, "spec test template"),
                                &hp_mustache_type_value, &data, &out, &ro);
        ok = rc == 0 && out.len == strlen(expected) && memcmp(out.data, expected, out.len) == 0;
        if (!ok)
            printf(
                "  FAIL [%s] %s: rc=%d (%s)\n    template: %s\n    expected: [%s]\n    got:      "
                "[%.*s]\n",
                file, name, rc, rc ? err.message : "", tpl, expected, (int)out.len,
                out.data ? out.data : "");
    }
    hp_mustache_buf_free(&out);
    hp_json_value_free(&data);
    hp_mustache_set_free(set);
    return ok;
}

static void run_file(const char *file, size_t want)
{
    char path[1024];
    json_error_t jerr;
    json_t *doc, *tests, *t;
    size_t i, passed = 0;

    snprintf(path, sizeof(path), "%s/%s", HP_MUSTACHE_SPEC_DIR, file);
    doc = json_load_file(path, 0, &jerr);
    if (!doc)
        fail_msg("%s: %s", path, jerr.text);
    tests = json_object_get(doc, "tests");
    assert_int_equal(json_array_size(tests), want);
    json_array_foreach(tests, i, t)
    {
        if (run_one(file, t))
            passed++;
    }
    printf("  %s: %zu of %zu passed\n", file, passed, json_array_size(tests));
    total_run += (unsigned)json_array_size(tests);
    total_passed += (unsigned)passed;
    json_decref(doc);
    assert_int_equal(passed, want);
}

static void test_spec_comments_all_pass(void **state)
{
    (void)state;
    run_file("comments.json", 12);
}

static void test_spec_delimiters_all_pass(void **state)
{
    (void)state;
    run_file("delimiters.json", 14);
}

static void test_spec_interpolation_all_pass(void **state)
{
    (void)state;
    run_file("interpolation.json", 42);
}

static void test_spec_inverted_all_pass(void **state)
{
    (void)state;
    run_file("inverted.json", 22);
}

static void test_spec_partials_all_pass(void **state)
{
    (void)state;
    run_file("partials.json", 12);
}

static void test_spec_sections_all_pass(void **state)
{
    (void)state;
    run_file("sections.json", 34);
}

static void test_spec_inheritance_all_pass(void **state)
{
    (void)state;
    run_file("~inheritance.json", 27);
}

static void test_spec_dynamic_names_all_pass(void **state)
{
    (void)state;
    run_file("~dynamic-names.json", 21);
}

static void test_spec_lambdas_all_pass(void **state)
{
    (void)state;
    run_file("~lambdas.json", 10);
}

static int report(void **state)
{
    (void)state;
    printf("spec: %u of %u tests passed\n", total_passed, total_run);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_comments_all_pass),
        cmocka_unit_test(test_spec_delimiters_all_pass),
        cmocka_unit_test(test_spec_interpolation_all_pass),
        cmocka_unit_test(test_spec_inverted_all_pass),
        cmocka_unit_test(test_spec_partials_all_pass),
        cmocka_unit_test(test_spec_sections_all_pass),
        cmocka_unit_test(test_spec_inheritance_all_pass),
        cmocka_unit_test(test_spec_dynamic_names_all_pass),
        cmocka_unit_test(test_spec_lambdas_all_pass),
    };

    return cmocka_run_group_tests_name("mustache/spec", tests, NULL, report);
}
