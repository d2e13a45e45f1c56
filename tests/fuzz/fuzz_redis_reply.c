/*
 * tests/fuzz/fuzz_redis_reply.c - libFuzzer target for the Redis client's
 * reply objects (protocols/redis/src/reply.c): the input, after a first
 * byte that sets the piece size, is fed as RESP to a reader building in the
 * arena and to hiredis's default reader, piece by piece; both must give the
 * same replies (deep equal) and the same verdict. Arena replies are kept
 * alive a few at a time and freed out of order; at the end (reader freed,
 * with any half-built reply) the arena must hold no live object. Arrays
 * beyond HP__REDIS_MAX_ELEMENTS fail both readers as out of memory.
 */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const redisReply *a, const redisReply *b)
{
    if (a->type != b->type || a->integer != b->integer || a->len != b->len ||
        a->elements != b->elements || (a->str == NULL) != (b->str == NULL))
        abort();
    if (a->str && (memcmp(a->str, b->str, a->len) != 0 || a->str[a->len] != 0))
        abort();
    for (size_t i = 0; i < a->elements; i++) {
        if ((a->element[i] == NULL) != (b->element[i] == NULL))
            abort();
        if (a->element[i])
            same(a->element[i], b->element[i]);
    }
}

/* hiredis's own functions, with the arena's limit on array sizes. */
static redisReplyObjectFunctions ref_fn;
#if HIREDIS_MAJOR >= 1
static void *(*ref_fn_array)(const redisReadTask *, size_t);
#else
static void *(*ref_fn_array)(const redisReadTask *, int);
#endif

#if HIREDIS_MAJOR >= 1
static void *capped_array(const redisReadTask *task, size_t n)
#else
static void *capped_array(const redisReadTask *task, int n)
#endif
{
    if ((size_t)n > HP__REDIS_MAX_ELEMENTS)
        return NULL;
    return ref_fn_array(task, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hp__redis_arena arena;
    redisReader *mine, *ref;
    void *held[4] = {0};
    size_t step, off = 0;
    unsigned turn = 0;
    bool failed = false;

    if (size < 1)
        return 0;
    step = (size_t)(data[0] % 64) + 1;
    data++;
    size--;
    mine = hp__redis_reader_new(&arena);
    ref = redisReaderCreate();
    if (mine == NULL || ref == NULL)
        abort();
    if (ref_fn_array == NULL) {
        ref_fn = *ref->fn;
        ref_fn_array = ref_fn.createArray;
        ref_fn.createArray = capped_array;
    }
    ref->fn = &ref_fn;
    while (off < size && !failed) {
        size_t n = size - off < step ? size - off : step;

        if (redisReaderFeed(mine, (const char *)data + off, n) != REDIS_OK ||
            redisReaderFeed(ref, (const char *)data + off, n) != REDIS_OK)
            abort();
        off += n;
        for (;;) {
            void *a = NULL, *b = NULL;
            int ra = redisReaderGetReply(mine, &a), rb = redisReaderGetReply(ref, &b);

            if (ra != rb || (a == NULL) != (b == NULL))
                abort();
            if (ra != REDIS_OK) {
                failed = true;
                break;
            }
            if (a == NULL)
                break;
            same(a, b);
            freeReplyObject(b);
            /* keep it, freeing an older one: frees out of order */
            turn = (turn * 7 + 3) % 4;
            hp__redis_reply_free(held[turn]);
            held[turn] = a;
        }
    }
    for (int i = 0; i < 4; i++)
        hp__redis_reply_free(held[i]);
    redisReaderFree(mine);
    redisReaderFree(ref);
    if (arena.live != 0)
        abort(); /* an object never freed: the arena would never be reused */
    return 0;
}
