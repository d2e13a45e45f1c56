/*
 * bench/mustache/bench.c - the Mustache engine's benchmark workloads:
 *
 *   bigtable   a 100 x 100 table of ints from the struct binding:
 *              <table>{{#rows}}<tr>{{#cols}}<td>{{.}}</td>{{/cols}}</tr>{{/rows}}</table>
 *   fortunes   the TechEmpower fortunes page: its standard template and the
 *              13 rows (the 12 of the database, the <script> one and the
 *              Japanese one included, plus the one added at request time),
 *              sorted by message, escaped
 *   escape     HTML escaping of a 64 KiB string with one special character
 *              in every 32 bytes
 *   escape-plain  a 64 KiB prose-like string with no specials (letters,
 *              spaces, digits, commas and full stops): copied as it is
 *
 * One warm-up render (the output buffer grows once), then N renders into the
 * same buffer, bracketed by clock_gettime() and by
 * CALLGRIND_START/STOP_INSTRUMENTATION, so under
 * `valgrind --tool=callgrind --instr-atstart=no` only the renders count.
 * Usage: bench_mustache WORKLOAD [N]   prints one RESULT line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/callgrind.h>

#include <hellepoll/mustache.h>

#include "fortunes_data.h"

/* ---- bigtable ------------------------------------------------------------- */

struct trow {
    int cols[100];
    size_t ncols;
};
struct table {
    const struct trow *rows;
    size_t nrows;
};
static const struct hp_mustache_field trow_fields[] = {
    HP_MUSTACHE_ARRAY_FIELD(struct trow, cols, ncols, &hp_mustache_type_int),
};
static const struct hp_mustache_type trow_type = HP_MUSTACHE_STRUCT_TYPE(struct trow, trow_fields);
static const struct hp_mustache_field table_fields[] = {
    HP_MUSTACHE_LIST_FIELD(struct table, rows, nrows, &trow_type),
};
static const struct hp_mustache_type table_type =
    HP_MUSTACHE_STRUCT_TYPE(struct table, table_fields);
static struct trow trows[100];
static struct table table = {trows, 100};

static const char bigtable_tpl[] =
    "<table>{{#rows}}<tr>{{#cols}}<td>{{.}}</td>{{/cols}}</tr>{{/rows}}</table>";

/* ---- fortunes: fortunes_data.h ------------------------------------------------ */

/* ---- the harness ------------------------------------------------------------ */

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *w = argc > 1 ? argv[1] : "bigtable";
    long n = argc > 2 ? atol(argv[2]) : 1000;
    struct hp_mustache_buf out = {0};
    struct hp_mustache *t = NULL;
    const struct hp_mustache_type *type = NULL;
    const void *data = NULL;
    static char esc[65536];
    double t0, t1;

    for (int r = 0; r < 100; r++) {
        trows[r].ncols = 100;
        for (int c = 0; c < 100; c++)
            trows[r].cols[c] = r * 100 + c;
    }
    if (strcmp(w, "escape-plain") == 0) {
        static const char prose[] = "Any program that runs right is obsolete, 1, 2, 3. ";
        for (size_t k = 0; k < sizeof(esc); k++)
            esc[k] = prose[k % (sizeof(prose) - 1)];
        w = "escape";
    } else {
        for (size_t k = 0; k < sizeof(esc); k++)
            esc[k] = k % 32 == 31 ? "&<>\"'"[(k / 32) % 5] : (char)('a' + k % 26);
    }
    if (strcmp(w, "bigtable") == 0) {
        hp_mustache_compile(&t, w, bigtable_tpl, sizeof(bigtable_tpl) - 1, NULL, NULL);
        type = &table_type;
        data = &table;
    } else if (strcmp(w, "fortunes") == 0) {
        hp_mustache_compile(&t, w, fortunes_tpl, sizeof(fortunes_tpl) - 1, NULL, NULL);
        type = &fortunes_type;
        data = &fortunes;
    } else if (strcmp(w, "escape") != 0) {
        fprintf(stderr, "usage: bench_mustache bigtable|fortunes|escape|escape-plain [N]\n");
        return 2;
    }
    if (t ? hp_mustache_render(t, type, data, &out, NULL) != 0
          : hp_mustache_escape(&out, esc, sizeof(esc)) != 0)
        return 1;
    if (getenv("HP_BENCH_PRINT"))
        fwrite(out.data, 1, out.len, stdout);
    size_t bytes = out.len;
    t0 = now_ns();
    CALLGRIND_START_INSTRUMENTATION;
    for (long i = 0; i < n; i++) {
        out.len = 0;
        if (t)
            hp_mustache_render(t, type, data, &out, NULL);
        else
            hp_mustache_escape(&out, esc, sizeof(esc));
    }
    CALLGRIND_STOP_INSTRUMENTATION;
    t1 = now_ns();
    if (out.len != bytes)
        return 1;
    printf("RESULT workload=%s n=%ld out_bytes=%zu in_bytes=%zu ns_per_render=%.1f\n", w, n, bytes,
           t ? (size_t)0 : sizeof(esc), (t1 - t0) / (double)n);
    hp_mustache_buf_free(&out);
    hp_mustache_free(t);
    return 0;
}
