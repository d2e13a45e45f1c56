/*
 * reply.h - hiredis reply objects built in a per-connection arena.
 *
 * hiredis's reader builds every reply through a table of functions
 * (redisReplyObjectFunctions); its default one allocates each object and
 * each string with malloc. The reader made here builds them in a small arena
 * instead: objects are bumped from it while it has room (malloc beyond), a
 * count of live arena objects is kept, and the arena is reused from its start
 * once that count is back at zero, which, as the client frees each reply
 * after its callback, is after every reply. The objects are ordinary
 * redisReply structs: callers read them as usual and must free them with
 * hp__redis_reply_free() (never freeReplyObject()).
 */
#ifndef HP_REDIS_REPLY_H
#define HP_REDIS_REPLY_H

#include <hiredis/read.h>
#include <stddef.h>

/** Elements an array reply may have: a larger one fails as out of memory
 *  (a server's "*999999999" would otherwise allocate gigabytes at once). */
#define HP__REDIS_MAX_ELEMENTS ((size_t)1 << 24)

/** Arena bytes per connection: many small replies, or one larger. */
#define HP__REDIS_ARENA_BYTES 4096

struct hp__redis_arena {
    size_t used;
    size_t live; /* objects from the arena not freed yet */
    union {
        max_align_t align;
        unsigned char bytes[HP__REDIS_ARENA_BYTES];
    } mem;
};

/** A reader whose replies come from @p a (which must outlive it); NULL: no memory. */
redisReader *hp__redis_reader_new(struct hp__redis_arena *a);

/** Free a reply the reader returned, with everything in it. NULL is ignored. */
void hp__redis_reply_free(void *reply);

#endif
