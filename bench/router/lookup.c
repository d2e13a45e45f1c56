/*
 * bench/router/lookup.c - router lookups, go-http-routing-benchmark's
 * "All" style: every route of a table is requested with its own pattern
 * text as the path (":owner" in place of a value) and its own method, once
 * per round, on hellepoll's router (hp_router_match, or hp-id:
 * hp_router_match_id with the method as the HTTP parser's enum) and on libr3 (when
 * built with it; its lookups need a match_entry, allocated and freed per
 * lookup as its API requires).
 *
 *   bench_router_lookup --routes FILE [--impl hp|hp-id|r3|none] [--rounds N] [--callgrind]
 *
 * (none: the loop around the lookups alone, to subtract it.)
 *
 * Before measuring, every lookup is checked to find its own route. Then
 * --callgrind runs N rounds between CALLGRIND_START/STOP_INSTRUMENTATION
 * (run it under valgrind --tool=callgrind --instr-atstart=no); otherwise
 * N rounds are timed, 7 times, and the median is printed. Output, one line:
 *   RESULT impl=hp table=github routes=203 rounds=N ns_per_lookup=X allocs_per_lookup=Y
 * The allocation count comes from malloc/calloc/realloc wrappers in this
 * program (glibc's __libc_* underneath).
 */
#define _GNU_SOURCE 1
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/callgrind.h>

#include <hellepoll/router.h>

#ifdef HP_BENCH_R3
#include <r3.h>
#endif

/* ---- allocation counting ------------------------------------------------ */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);

static unsigned long allocs;

void *malloc(size_t n)
{
    allocs++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    allocs++;
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    allocs++;
    return __libc_realloc(p, n);
}

/* ---- the table ------------------------------------------------------------ */

struct route {
    char method[16];
    char file[256];
    char pattern[300];
    int r3_method;
    enum hp_http_method id; /* as the HTTP parser gives it (hp_http_req.method_id) */
    struct hp_str m, path;  /* lengths computed once, outside the measurement */
};

static struct route routes[1024];
static size_t nroutes;

/* ":name" -> "{name}", "*name" -> "{name...}" (libr3: "{name:.*}"). */
static void convert(const char *in, char *out, size_t cap, bool r3)
{
    size_t n = 0;

    for (const char *p = in; *p != '\0' && n + 16 < cap;) {
        if ((*p == ':' || *p == '*') && p > in && p[-1] == '/') {
            size_t l = strcspn(p + 1, "/");
            const char *end = *p == '*' ? (r3 ? ":.*" : "...") : "";
            n += (size_t)snprintf(out + n, cap - n, "{%.*s%s}", (int)l, p + 1, end);
            p += 1 + l;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

static int r3_method_of(const char *m)
{
    static const struct {
        const char *name;
        int bit;
    } map[] = {{"GET", 2},        {"POST", 2 << 1}, {"PUT", 2 << 2},    {"DELETE", 2 << 3},
               {"PATCH", 2 << 4}, {"HEAD", 2 << 5}, {"OPTIONS", 2 << 6}};

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].name, m) == 0)
            return map[i].bit;
    }
    return 0;
}

static enum hp_http_method id_of(const char *m)
{
    static const char *const names[] = {
        [HP_HTTP_GET] = "GET",         [HP_HTTP_HEAD] = "HEAD",     [HP_HTTP_POST] = "POST",
        [HP_HTTP_PUT] = "PUT",         [HP_HTTP_DELETE] = "DELETE", [HP_HTTP_OPTIONS] = "OPTIONS",
        [HP_HTTP_CONNECT] = "CONNECT", [HP_HTTP_TRACE] = "TRACE",   [HP_HTTP_PATCH] = "PATCH"};

    for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(names[i], m) == 0)
            return (enum hp_http_method)i;
    }
    return HP_HTTP_OTHER;
}

static int load(const char *path)
{
    char line[512];
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL && nroutes < 1024) {
        struct route *r = &routes[nroutes];
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "%15s %255s", r->method, r->file) != 2)
            continue;
        convert(r->file, r->pattern, sizeof(r->pattern), false);
        r->r3_method = r3_method_of(r->method);
        r->id = id_of(r->method);
        r->m = (struct hp_str){r->method, strlen(r->method)};
        r->path = (struct hp_str){r->file, strlen(r->file)};
        nroutes++;
    }
    fclose(f);
    return 0;
}

/* ---- lookups -------------------------------------------------------------- */

static struct hp_router *hp;
static size_t sink;

static size_t hp_round(void)
{
    struct hp_route_match m;
    size_t ok = 0;

    for (size_t i = 0; i < nroutes; i++) {
        if (hp_router_match(hp, routes[i].m, routes[i].path, &m) == HP_ROUTE_FOUND &&
            m.route->data == &routes[i])
            ok++;
    }
    return ok;
}

/* hp_router_match_id(): the method as the HTTP parser's enum, as dispatch looks up. */
static size_t hp_id_round(void)
{
    struct hp_route_match m;
    size_t ok = 0;

    for (size_t i = 0; i < nroutes; i++) {
        if (hp_router_match_id(hp, routes[i].id, routes[i].path, &m) == HP_ROUTE_FOUND &&
            m.route->data == &routes[i])
            ok++;
    }
    return ok;
}

#ifdef HP_BENCH_R3
static node *r3;

static size_t r3_round(void)
{
    size_t ok = 0;

    for (size_t i = 0; i < nroutes; i++) {
        match_entry *e = match_entry_createl(routes[i].file, (int)routes[i].path.len);
        route *rt;
        e->request_method = routes[i].r3_method;
        rt = r3_tree_match_route(r3, e);
        if (rt != NULL && rt->data == &routes[i])
            ok++;
        match_entry_free(e);
    }
    return ok;
}

static int r3_build(void)
{
    char *err = NULL;

    r3 = r3_tree_create(10);
    for (size_t i = 0; i < nroutes; i++) {
        char pat[300];
        convert(routes[i].file, pat, sizeof(pat), true);
        /* r3 keeps the pointer: give it a copy that lives as long as the tree. */
        if (r3_tree_insert_routel(r3, routes[i].r3_method, strdup(pat), (int)strlen(pat),
                                  &routes[i]) == NULL) {
            fprintf(stderr, "r3: cannot insert %s %s\n", routes[i].method, pat);
            return -1;
        }
    }
    if (r3_tree_compile(r3, &err) != 0) {
        fprintf(stderr, "r3: compile: %s\n", err ? err : "?");
        return -1;
    }
    return 0;
}
#endif

/* The harness alone: the same loop around a call that does no lookup. */
__attribute__((noinline)) static int no_lookup(const struct route *r)
{
    __asm__ volatile("" ::: "memory");
    return r->m.len != 0;
}

static size_t none_round(void)
{
    size_t ok = 0;

    for (size_t i = 0; i < nroutes; i++)
        ok += (size_t)no_lookup(&routes[i]);
    return ok;
}

static int hp_build(void)
{
    if (hp_router_new(&hp, NULL) != 0)
        return -1;
    for (size_t i = 0; i < nroutes; i++) {
        if (hp_router_add(hp, routes[i].method, routes[i].pattern, NULL, &routes[i]) != 0) {
            fprintf(stderr, "hp: %s\n", hp_router_error(hp));
            return -1;
        }
    }
    return hp_router_freeze(hp);
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static const char *table_name(const char *path)
{
    static char name[64];
    const char *b = strrchr(path, '/');

    snprintf(name, sizeof(name), "%s", b ? b + 1 : path);
    name[strcspn(name, ".")] = '\0';
    return name;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *impl = "hp";
    unsigned long rounds = 0, a0;
    bool cg = false;
    size_t (*round_fn)(void) = hp_round;
    double ns[7];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--routes") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--impl") == 0 && i + 1 < argc)
            impl = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--callgrind") == 0)
            cg = true;
        else
            file = NULL, i = argc;
    }
    if (file == NULL) {
        fprintf(stderr, "usage: %s --routes FILE [--impl hp|hp-id|r3] [--rounds N] [--callgrind]\n",
                argv[0]);
        return 2;
    }
    if (load(file) != 0 || nroutes == 0)
        return 1;
    if (strcmp(impl, "hp") == 0 || strcmp(impl, "hp-id") == 0) {
        if (hp_build() != 0)
            return 1;
        if (strcmp(impl, "hp-id") == 0)
            round_fn = hp_id_round;
#ifdef HP_BENCH_R3
    } else if (strcmp(impl, "r3") == 0) {
        if (r3_build() != 0)
            return 1;
        round_fn = r3_round;
#endif
    } else if (strcmp(impl, "none") == 0) {
        round_fn = none_round;
    } else {
        fprintf(stderr, "unknown or not built: --impl %s\n", impl);
        return 2;
    }
    if (round_fn() != nroutes) {
        fprintf(stderr, "%s: only %zu of %zu routes find themselves\n", impl, round_fn(), nroutes);
        return 1;
    }
    if (rounds == 0)
        rounds = cg ? 20 : 20000;
    a0 = allocs;
    if (cg) {
        CALLGRIND_START_INSTRUMENTATION;
        for (unsigned long r = 0; r < rounds; r++)
            sink += round_fn();
        CALLGRIND_STOP_INSTRUMENTATION;
        ns[3] = 0;
    } else {
        for (int k = 0; k < 7; k++) {
            double t0 = now_ns();
            for (unsigned long r = 0; r < rounds; r++)
                sink += round_fn();
            ns[k] = (now_ns() - t0) / ((double)rounds * (double)nroutes);
        }
        qsort(ns, 7, sizeof(ns[0]), cmp_double);
    }
    printf("RESULT impl=%s table=%s routes=%zu lookups=%lu ns_per_lookup=%.1f "
           "allocs_per_lookup=%.2f\n",
           impl, table_name(file), nroutes, rounds * nroutes, ns[3],
           (double)(allocs - a0) / ((double)(cg ? rounds : rounds * 7) * (double)nroutes));
    return sink == 0;
}
