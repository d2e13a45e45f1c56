/*
 * bench/json/bench_json.c - serialise the two TechEmpower JSON documents
 * N times with hellepoll's writer (json.h) or a peer (jansson, cJSON), for
 * bench/json/run.sh:
 *   message  {"message":"Hello, World!"}
 *   db20     [{"id":N,"randomNumber":M}, ...] with 20 elements
 * Usage: bench_json IMPL DOC N [--callgrind]
 *   IMPL: hp | hp-fixed | jansson | cjson (those built in)
 * Prints the total output length, and ns per document (wall clock, for
 * timed runs under run.sh's lock). With --callgrind only the N documents
 * are instrumented (run under valgrind --tool=callgrind --instr-atstart=no).
 * Each implementation is used the way a server would: hp reuses one
 * growable writer (hp-fixed: a stack buffer), jansson builds a tree and
 * json_dumpb()s it into a buffer, cJSON builds a tree and
 * cJSON_PrintPreallocated()s it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <valgrind/callgrind.h>

#include <hellepoll/json.h>

#ifdef HP_BENCH_JANSSON
#include <jansson.h>
#endif
#ifdef HP_BENCH_CJSON
#include <cjson/cJSON.h>
#endif

#define ROWS 20

static int rnd[ROWS];

typedef size_t doc_fn(int doc);

static struct hp_json hpw;

static size_t hp_doc(struct hp_json *w, int doc)
{
    struct hp_str out = {NULL, 0};

    hp_json_reset(w);
    if (doc == 0) {
        hp_json_obj_begin(w);
        hp_json_kv_str(w, HP_STR_LIT("message"), HP_STR_LIT("Hello, World!"));
        hp_json_obj_end(w);
    } else {
        hp_json_arr_begin(w);
        for (int i = 0; i < ROWS; i++) {
            hp_json_obj_begin(w);
            hp_json_kv_int(w, HP_STR_LIT("id"), i + 1);
            hp_json_kv_int(w, HP_STR_LIT("randomNumber"), rnd[i]);
            hp_json_obj_end(w);
        }
        hp_json_arr_end(w);
    }
    if (hp_json_finish(w, &out) != 0)
        abort();
    return out.len;
}

static size_t hp_alloc_doc(int doc)
{
    return hp_doc(&hpw, doc);
}

static size_t hp_fixed_doc(int doc)
{
    char buf[1024];
    struct hp_json w;

    hp_json_init_fixed(&w, buf, sizeof(buf), 0);
    return hp_doc(&w, doc);
}

#ifdef HP_BENCH_JANSSON
static size_t jansson_doc(int doc)
{
    static char buf[1024];
    json_t *v;
    size_t n;

    if (doc == 0) {
        v = json_object();
        json_object_set_new(v, "message", json_string("Hello, World!"));
    } else {
        v = json_array();
        for (int i = 0; i < ROWS; i++) {
            json_t *o = json_object();

            json_object_set_new(o, "id", json_integer(i + 1));
            json_object_set_new(o, "randomNumber", json_integer(rnd[i]));
            json_array_append_new(v, o);
        }
    }
    n = json_dumpb(v, buf, sizeof(buf), JSON_COMPACT);
    json_decref(v);
    return n;
}
#endif

#ifdef HP_BENCH_CJSON
static size_t cjson_doc(int doc)
{
    static char buf[1024];
    cJSON *v;

    if (doc == 0) {
        v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "message", "Hello, World!");
    } else {
        v = cJSON_CreateArray();
        for (int i = 0; i < ROWS; i++) {
            cJSON *o = cJSON_CreateObject();

            cJSON_AddNumberToObject(o, "id", i + 1);
            cJSON_AddNumberToObject(o, "randomNumber", rnd[i]);
            cJSON_AddItemToArray(v, o);
        }
    }
    if (!cJSON_PrintPreallocated(v, buf, sizeof(buf), 0))
        abort();
    cJSON_Delete(v);
    return strlen(buf);
}
#endif

static doc_fn *pick(const char *impl)
{
    if (strcmp(impl, "hp") == 0)
        return hp_alloc_doc;
    if (strcmp(impl, "hp-fixed") == 0)
        return hp_fixed_doc;
#ifdef HP_BENCH_JANSSON
    if (strcmp(impl, "jansson") == 0)
        return jansson_doc;
#endif
#ifdef HP_BENCH_CJSON
    if (strcmp(impl, "cjson") == 0)
        return cjson_doc;
#endif
    return NULL;
}

int main(int argc, char **argv)
{
    doc_fn *fn = argc >= 4 ? pick(argv[1]) : NULL;
    int doc = argc >= 4 && strcmp(argv[2], "db20") == 0;
    long n = argc >= 4 ? atol(argv[3]) : 0;
    int cg = argc >= 5 && strcmp(argv[4], "--callgrind") == 0;
    struct timespec t0, t1;
    size_t total = 0;

    if (fn == NULL || n <= 0) {
        fprintf(stderr,
                "usage: bench_json hp|hp-fixed|jansson|cjson message|db20 N [--callgrind]\n");
        return 2;
    }
    srand(1);
    for (int i = 0; i < ROWS; i++)
        rnd[i] = 1 + rand() % 10000;
    hp_json_init_alloc(&hpw, NULL, 0);
    total += fn(doc); /* warm up: the growable buffer, allocator caches */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cg)
        CALLGRIND_START_INSTRUMENTATION;
    for (long i = 0; i < n; i++)
        total += fn(doc);
    if (cg)
        CALLGRIND_STOP_INSTRUMENTATION;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    hp_json_free(&hpw);
    printf("%s %s bytes=%zu ns_per_doc=%.1f\n", argv[1], argv[2], total,
           ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n);
    return 0;
}
