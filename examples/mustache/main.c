/*
 * examples/mustache/main.c - render a Mustache template from the command line:
 *
 *     mustache TEMPLATE [DATA.json] [--partials DIR]
 *
 * Partial NAME is the file DIR/NAME.mustache (without --partials, the
 * template's own directory). The output goes to standard output; data is a
 * JSON file (any JSON value; none means an empty context). Any error (an
 * unreadable file, bad JSON, a template that does not compile, a render
 * that fails) is printed on standard error and the exit status is 1.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hellepoll/mustache.h>

#include "json_value.h"

#define EXT ".mustache"

static void usage(FILE *f)
{
    fprintf(f, "usage: mustache TEMPLATE [DATA.json] [--partials DIR]\n");
}

static int to_stdout(void *ud, const char *p, size_t n)
{
    (void)ud;
    return fwrite(p, 1, n, stdout) == n ? 0 : -EIO;
}

/* The template's name: its file name without the directory and ".mustache". */
static char *name_of(const char *path)
{
    const char *base = strrchr(path, '/');
    size_t n;

    base = base ? base + 1 : path;
    n = strlen(base);
    if (n > strlen(EXT) && strcmp(base + n - strlen(EXT), EXT) == 0)
        n -= strlen(EXT);
    return n ? strndup(base, n) : strdup(path);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Dynamic partial names are only known while rendering: offer every other
 * NAME.mustache file in DIR too, skipping (silently) files that do not compile. */
static void load_rest(struct hp_mustache_set *set, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char path[4096], *name;

        if (de->d_name[0] == '.' || n <= strlen(EXT) || strcmp(de->d_name + n - strlen(EXT), EXT))
            continue;
        if (!(name = strndup(de->d_name, n - strlen(EXT))))
            break;
        if (!hp_mustache_set_get(set, name) &&
            (size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < sizeof(path))
            (void)hp_mustache_set_load_file(set, name, path, NULL);
        free(name);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    const char *tpl_path = NULL, *data_path = NULL, *pdir = NULL;
    struct hp_mustache_error err = {0};
    struct hp_mustache_render_opts ro = {.err = &err};
    struct hp_mustache_value data = {.type = HP_MUSTACHE_V_NULL};
    struct hp_mustache_set *set = NULL;
    json_t *doc = NULL;
    char *name = NULL, *dir = NULL;
    int status = 1, rc;

    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--partials") == 0) {
            if (++k == argc) {
                fprintf(stderr, "mustache: --partials needs a directory\n");
                usage(stderr);
                return 1;
            }
            pdir = argv[k];
        } else if (strncmp(argv[k], "--partials=", 11) == 0) {
            pdir = argv[k] + 11;
        } else if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (!tpl_path) {
            tpl_path = argv[k];
        } else if (!data_path) {
            data_path = argv[k];
        } else {
            fprintf(stderr, "mustache: unexpected argument '%s'\n", argv[k]);
            usage(stderr);
            return 1;
        }
    }
    if (!tpl_path) {
        usage(stderr);
        return 1;
    }
    if (data_path) {
        json_error_t jerr;
        if (!(doc = json_load_file(data_path, JSON_DECODE_ANY, &jerr))) {
            if (jerr.line > 0)
                fprintf(stderr, "mustache: %s:%d:%d: bad JSON: %s\n", data_path, jerr.line,
                        jerr.column, jerr.text);
            else
                fprintf(stderr, "mustache: %s: %s\n", data_path, jerr.text);
            return 1;
        }
        if (hp_json_to_value(doc, &data, NULL, NULL) != 0) {
            fprintf(stderr, "mustache: %s: out of memory\n", data_path);
            goto out;
        }
    }
    if (!(name = name_of(tpl_path)) || !(dir = pdir ? strdup(pdir) : dir_of(tpl_path)) ||
        hp_mustache_set_new(&set, NULL) != 0) {
        fprintf(stderr, "mustache: out of memory\n");
        goto out;
    }
    if ((rc = hp_mustache_set_load_file(set, name, tpl_path, &err)) != 0 ||
        (rc = hp_mustache_set_resolve_dir(set, dir, &err)) < 0) {
        fprintf(stderr, "mustache: %s\n", err.message);
        goto out;
    }
    load_rest(set, dir);
    rc = hp_mustache_render_sink(hp_mustache_set_get(set, name), &hp_mustache_type_value, &data,
                                 to_stdout, NULL, &ro);
    if (rc == 0 && fflush(stdout) != 0)
        rc = -EIO;
    if (rc) {
        fprintf(stderr, "mustache: %s\n", err.code ? err.message : strerror(-rc));
        goto out;
    }
    status = 0;
out:
    hp_json_value_free(&data);
    json_decref(doc);
    hp_mustache_set_free(set);
    free(name);
    free(dir);
    return status;
}
