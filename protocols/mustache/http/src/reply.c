/*
 * reply.c - hp_mustache_reply(): render into the thread's page buffer, then
 * one hp_http_reply().
 *
 * Why a buffer and not the response itself: the HTTP module writes the head
 * (with Content-Length) before the body and offers no way to write a body
 * in place, and a streamed (chunked) reply could neither say the length nor
 * turn a render error half-way into a 500. The price is one copy of the
 * page into the connection's output, small next to rendering it.
 *
 * The buffer is per thread (found through a _Thread_local pointer; a
 * pthread key holds it too, only so that the key's destructor frees it
 * when the thread exits): a server and its handlers run on one loop thread,
 * so one buffer serves every request of that thread. A call from inside a render
 * on the same thread (a lambda replying to another request) finds it busy
 * and renders into a buffer of its own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <hellepoll/error.h>
#include <hellepoll/mustache_http.h>

/* A page buffer grown beyond this is freed after its reply. */
#define KEEP_MAX ((size_t)1 << 20)

struct page {
    struct hp_mustache_buf buf;
    bool busy;
};

static _Thread_local struct page *mine; /* this thread's, once made */
static pthread_key_t key;
static bool have_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void page_free(void *p)
{
    struct page *pg = p;

    mine = NULL;
    hp_mustache_buf_free(&pg->buf);
    free(pg);
}

static void make_key(void)
{
    have_key = pthread_key_create(&key, page_free) == 0;
}

/* The thread's buffer, or NULL (no key, out of memory, or busy). */
static struct page *thread_page(void)
{
    struct page *pg = mine;

    if (pg == NULL) {
        pthread_once(&once, make_key);
        if (!have_key || (pg = calloc(1, sizeof(*pg))) == NULL)
            return NULL;
        if (pthread_setspecific(key, pg) != 0) {
            free(pg);
            return NULL;
        }
        mine = pg;
    }
    return pg->busy ? NULL : pg;
}

int hp_mustache_reply(struct hp_http_req *req, int status, struct hp_str content_type,
                      const struct hp_mustache *t, const struct hp_mustache_type *type,
                      const void *data, const struct hp_mustache_render_opts *opts)
{
    struct page *pg;
    struct hp_mustache_buf own = {0}, *b;
    int rc;

    if (hp_http_req_closed(req)) {
        hp_http_req_release(req);
        return HP_ECLOSED;
    }
    if (status < 200 || status > 599) {
        hp_http_req_release(req);
        return -EINVAL;
    }
    pg = thread_page();
    b = pg ? &pg->buf : &own;
    if (pg)
        pg->busy = true;
    b->len = 0;
    rc = hp_mustache_render(t, type, data, b, opts);
    if (rc == 0) {
        int sent = hp_http_reply(req, status, content_type, b->data, b->len);
        if (sent == -EINVAL) /* bad content type, or already started: still ours */
            hp_http_req_release(req);
        rc = sent;
    } else {
        if (hp_http_reply(req, 500, HP_STR_LIT("text/plain; charset=utf-8"),
                          "Internal Server Error\n", 22) == -EINVAL)
            hp_http_req_release(req); /* a response already started: cut it */
    }
    if (pg) {
        pg->busy = false;
        if (pg->buf.cap > KEEP_MAX)
            hp_mustache_buf_free(&pg->buf);
    } else {
        hp_mustache_buf_free(&own);
    }
    return rc;
}
