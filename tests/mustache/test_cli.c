/*
 * tests/mustache/test_cli.c - the mustache command-line renderer
 * (examples/mustache), run as a real process on real files:
 * `mustache TEMPLATE [DATA.json] [--partials DIR]`, output on stdout,
 * errors on stderr with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];
static char out[65536], err[65536];

static void put(const char *rel, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    assert_non_null(f = fopen(path, "w"));
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Drain both pipes until the child closes them; returns the exit status. */
static int run(const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *argv[] = {HP_MUSTACHE_CLI, a1, a2, a3, a4, NULL};
    int po[2], pe[2], status;
    size_t no = 0, ne = 0;
    pid_t pid;

    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        if (chdir(dir) != 0)
            _exit(99);
        execv(HP_MUSTACHE_CLI, (char *const *)(uintptr_t)argv);
        _exit(98);
    }
    close(po[1]);
    close(pe[1]);
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds) {
        assert_true(poll(fds, 2, 30000) > 0);
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd < 0 || !fds[k].revents)
                continue;
            char *b = k ? err : out;
            size_t *n = k ? &ne : &no;
            ssize_t r = read(fds[k].fd, b + *n, sizeof(out) - 1 - *n);
            if (r <= 0) {
                close(fds[k].fd);
                fds[k].fd = -1;
                open_fds--;
            } else {
                *n += (size_t)r;
            }
        }
    }
    out[no] = err[ne] = '\0';
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/hp-mustache-cli-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    put("page.mustache", "<h1>{{title}}</h1>\n{{#items}}\n  {{>item}}\n{{/items}}\n{{>*more}}"
                         "{{>missing}}\n");
    put("item.mustache", "<li>{{name}}</li>\n");
    put("data.json", "{\"title\": \"Tom & Jerry\", \"items\": [{\"name\": \"<a>\"}, "
                     "{\"name\": \"b\"}], \"more\": \"extra\"}");
    put("extra.mustache", "extra {{title}}\n");
    put("broken.mustache", "line one\n  {{#open}} never closed\n");
    put("bad.json", "{\"title\": 1,\n \"x\": }");
    put("plain.mustache", "no data: [{{title}}]{{^title}} none{{/title}}\n");
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/parts", dir);
    if (mkdir(sub, 0700) != 0)
        return -1;
    put("parts/item.mustache", "* {{name}}\n");
    put("parts/extra.mustache", "parts extra\n");
    return 0;
}

static int teardown(void **state)
{
    const char *files[] = {"page.mustache",  "item.mustache",       "data.json",
                           "extra.mustache", "broken.mustache",     "bad.json",
                           "plain.mustache", "parts/item.mustache", "parts/extra.mustache"};
    char path[256];

    (void)state;
    for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/parts", dir);
    rmdir(path);
    rmdir(dir);
    return 0;
}

static void test_cli_renders_data_with_partials_from_the_template_directory(void **state)
{
    (void)state;
    assert_int_equal(run("page.mustache", "data.json", NULL, NULL), 0);
    assert_string_equal(out, "<h1>Tom &amp; Jerry</h1>\n  <li>&lt;a&gt;</li>\n  <li>b</li>\n"
                             "extra Tom &amp; Jerry\n\n");
    assert_string_equal(err, "");
}

static void test_cli_takes_partials_from_the_partials_directory(void **state)
{
    char abs[256];

    (void)state;
    assert_int_equal(run("page.mustache", "data.json", "--partials", "parts"), 0);
    assert_string_equal(out, "<h1>Tom &amp; Jerry</h1>\n  * &lt;a&gt;\n  * b\nparts extra\n\n");
    /* options may come first, and paths may be absolute */
    snprintf(abs, sizeof(abs), "%s/page.mustache", dir);
    assert_int_equal(run("--partials", "parts", abs, "data.json"), 0);
    assert_string_equal(out, "<h1>Tom &amp; Jerry</h1>\n  * &lt;a&gt;\n  * b\nparts extra\n\n");
}

static void test_cli_without_data_renders_an_empty_context(void **state)
{
    (void)state;
    assert_int_equal(run("plain.mustache", NULL, NULL, NULL), 0);
    assert_string_equal(out, "no data: [] none\n");
}

static void test_cli_reports_compile_errors_with_file_line_and_column(void **state)
{
    (void)state;
    assert_int_equal(run("broken.mustache", "data.json", NULL, NULL), 1);
    assert_string_equal(out, "");
    assert_non_null(
        strstr(err, "broken.mustache:2:3: unclosed section 'open' (expected {{/open}})"));
}

static void test_cli_reports_bad_json_unreadable_files_and_usage(void **state)
{
    (void)state;
    assert_int_equal(run("page.mustache", "bad.json", NULL, NULL), 1);
    assert_non_null(strstr(err, "bad.json:2:"));
    assert_non_null(strstr(err, "bad JSON"));
    assert_int_equal(run("page.mustache", "nope.json", NULL, NULL), 1);
    assert_non_null(strstr(err, "nope.json"));
    assert_int_equal(run("nope.mustache", NULL, NULL, NULL), 1);
    assert_non_null(strstr(err, "nope.mustache: cannot open: No such file or directory"));
    assert_int_equal(run(NULL, NULL, NULL, NULL), 1);
    assert_non_null(strstr(err, "usage: mustache TEMPLATE [DATA.json] [--partials DIR]"));
    assert_int_equal(run("page.mustache", "--partials", NULL, NULL), 1);
    assert_non_null(strstr(err, "--partials needs a directory"));
    assert_int_equal(run("page.mustache", "data.json", "extra", NULL), 1);
    assert_non_null(strstr(err, "unexpected argument 'extra'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_renders_data_with_partials_from_the_template_directory),
        cmocka_unit_test(test_cli_takes_partials_from_the_partials_directory),
        cmocka_unit_test(test_cli_without_data_renders_an_empty_context),
        cmocka_unit_test(test_cli_reports_compile_errors_with_file_line_and_column),
        cmocka_unit_test(test_cli_reports_bad_json_unreadable_files_and_usage),
    };

    return cmocka_run_group_tests_name("mustache/cli", tests, setup, teardown);
}
