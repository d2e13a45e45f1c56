/*
 * reply.c - hiredis reply objects in a per-connection arena (see reply.h).
 *
 * Every object is a struct robj: the arena it came from (NULL: malloc) and
 * the redisReply, followed in the same block by its string or its element
 * vector. The reader passes the arena as each task's privdata (the reader's
 * privdata, which hiredis 0.14 and 1.x copy into every task).
 */
#include "reply.h"

#include <hiredis/hiredis.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct robj {
    struct hp__redis_arena *arena; /* NULL: allocated with malloc */
    redisReply rep;
};

/* A zeroed object of @p type with @p extra bytes after it, or NULL. */
static redisReply *obj_new(const redisReadTask *task, int type, size_t extra)
{
    struct hp__redis_arena *a = task->privdata;
    size_t size = sizeof(struct robj) + extra;
    size_t step = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    struct robj *o;

    if (a && step >= size && step <= sizeof(a->mem.bytes) - a->used) {
        o = (struct robj *)(void *)(a->mem.bytes + a->used);
        a->used += step;
        a->live++;
        o->arena = a;
    } else {
        o = malloc(size);
        if (o == NULL)
            return NULL;
        o->arena = NULL;
    }
    memset(&o->rep, 0, sizeof(o->rep));
    o->rep.type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;

        parent->element[task->idx] = &o->rep;
    }
    return &o->rep;
}

void hp__redis_reply_free(void *reply)
{
    redisReply *rep = reply;
    struct robj *o;

    if (rep == NULL)
        return;
    /* Aggregates (arrays; maps, sets and pushes with hiredis 1.x) have an
     * element vector, other types none. Slots may be NULL in a reply the
     * reader gave up on half-built. */
    if (rep->element) {
        for (size_t i = 0; i < rep->elements; i++)
            hp__redis_reply_free(rep->element[i]);
    }
    o = (struct robj *)(void *)((char *)rep - offsetof(struct robj, rep));
    if (o->arena == NULL) {
        free(o);
        return;
    }
    if (--o->arena->live == 0)
        o->arena->used = 0;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *rep;

    if (len > SIZE_MAX - sizeof(struct robj) - 1 - alignof(max_align_t))
        return NULL;
    rep = obj_new(task, task->type, len + 1);
    if (rep == NULL)
        return NULL;
    rep->str = (char *)(rep + 1);
#if HIREDIS_MAJOR >= 1
    if (task->type == REDIS_REPLY_VERB && len >= 4 && str[3] == ':') {
        /* "txt:..." : the format goes to vtype, the text to str */
        memcpy(rep->vtype, str, 3);
        rep->vtype[3] = 0;
        str += 4;
        len -= 4;
    }
#endif
    memcpy(rep->str, str, len);
    rep->str[len] = 0;
    rep->len = len;
    return rep;
}

/* The element vector follows the struct; redisReply holds pointers, so it is aligned for them. */
#if HIREDIS_MAJOR >= 1
static void *create_array(const redisReadTask *task, size_t n)
#else
static void *create_array(const redisReadTask *task, int elements)
#endif
{
#if HIREDIS_MAJOR < 1
    size_t n = elements > 0 ? (size_t)elements : 0; /* the reader never passes < 0 */
#endif
    redisReply *rep;

    if (n > HP__REDIS_MAX_ELEMENTS)
        return NULL;
    rep = obj_new(task, task->type, n * sizeof(redisReply *));
    if (rep == NULL)
        return NULL;
    rep->elements = n;
    if (n > 0) {
        rep->element = (redisReply **)(void *)(rep + 1);
        memset(rep->element, 0, n * sizeof(redisReply *));
    }
    return rep;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *rep = obj_new(task, REDIS_REPLY_INTEGER, 0);

    if (rep)
        rep->integer = value;
    return rep;
}

static void *create_nil(const redisReadTask *task)
{
    return obj_new(task, REDIS_REPLY_NIL, 0);
}

#if HIREDIS_MAJOR >= 1
static void *create_double(const redisReadTask *task, double value, char *str, size_t len)
{
    redisReply *rep;

    if (len > SIZE_MAX - sizeof(struct robj) - 1 - alignof(max_align_t))
        return NULL;
    rep = obj_new(task, REDIS_REPLY_DOUBLE, len + 1);
    if (rep == NULL)
        return NULL;
    rep->dval = value;
    rep->str = (char *)(rep + 1);
    memcpy(rep->str, str, len);
    rep->str[len] = 0;
    rep->len = len;
    return rep;
}

static void *create_bool(const redisReadTask *task, int value)
{
    redisReply *rep = obj_new(task, REDIS_REPLY_BOOL, 0);

    if (rep)
        rep->integer = value != 0;
    return rep;
}
#endif

/* Not const: hiredis's reader takes a non-const pointer (it never writes through it). */
static redisReplyObjectFunctions functions = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
#if HIREDIS_MAJOR >= 1
    .createDouble = create_double,
    .createBool = create_bool,
#endif
    .createNil = create_nil,
    .freeObject = hp__redis_reply_free,
};

redisReader *hp__redis_reader_new(struct hp__redis_arena *a)
{
    redisReader *reader = redisReaderCreateWithFunctions(&functions);

    if (reader) {
        a->used = 0;
        a->live = 0;
        reader->privdata = a;
    }
    return reader;
}
