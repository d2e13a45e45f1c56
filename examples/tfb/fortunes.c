/*
 * fortunes.c - /fortunes: every row of Fortune plus one added at request
 * time, sorted by message, rendered by a Mustache template that escapes
 * the messages ({{message}}: & < > " ' become entities).
 *
 * The rows are used where the database result holds them, inside the
 * query's callback: sorted, then rendered and sent by hp_mustache_reply()
 * (into the thread's kept page buffer, copied out by hp_http_reply()) before
 * the callback returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tfb.h"

#define FORTUNES_SQL "SELECT id, message FROM fortune"

/* TFB's fortunes template, without the optional whitespace. */
static const char template_src[] =
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "{{#fortunes}}<tr><td>{{id}}</td><td>{{message}}</td></tr>{{/fortunes}}"
    "</table></body></html>";

struct fortune {
    int id;
    struct hp_str message;
};

struct page {
    const struct fortune *fortunes;
    size_t count;
};

static const struct hp_mustache_field fortune_fields[] = {
    HP_MUSTACHE_FIELD(struct fortune, id, &hp_mustache_type_int),
    HP_MUSTACHE_FIELD(struct fortune, message, &hp_mustache_type_str),
};
static const struct hp_mustache_type fortune_type =
    HP_MUSTACHE_STRUCT_TYPE(struct fortune, fortune_fields);
static const struct hp_mustache_field page_fields[] = {
    HP_MUSTACHE_LIST_FIELD(struct page, fortunes, count, &fortune_type),
};
static const struct hp_mustache_type page_type = HP_MUSTACHE_STRUCT_TYPE(struct page, page_fields);

/* Compiled once; rendering only reads it, so every worker thread shares it. */
static struct hp_mustache *template;

int tfb_fortunes_init(void)
{
    return hp_mustache_compile(&template, "fortunes", template_src, sizeof(template_src) - 1, NULL,
                               NULL);
}

void tfb_fortunes_free(void)
{
    hp_mustache_free(template);
    template = NULL;
}

/* Byte order (memcmp), as TFB sorts: UTF-8 sorts by code point that way. */
static int by_message(const struct fortune *a, const struct fortune *b)
{
    size_t n = a->message.len < b->message.len ? a->message.len : b->message.len;
    int c = memcmp(a->message.ptr, b->message.ptr, n);

    return c != 0 ? c : (a->message.len > b->message.len) - (a->message.len < b->message.len);
}

/* Insertion sort: for a dozen rows it is a third of qsort's instructions (no call per compare). */
static void sort_fortunes(struct fortune *f, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct fortune x = f[i];
        size_t j = i;

        for (; j > 0 && by_message(&f[j - 1], &x) > 0; j--)
            f[j] = f[j - 1];
        f[j] = x;
    }
}

static void on_fortunes(const struct hp_pg_result *res, int status, void *arg)
{
    struct hp_http_req *req = arg;
    int rows = hp_pg_result_rows(res);
    struct fortune *f;
    struct page page;

    if (status != 0) {
        (void)tfb_reply_error(req, status == -ECANCELED ? 503 : 500, hp_pg_strerror(status));
        return;
    }
    f = hp_http_req_alloc(req, sizeof(*f) * ((size_t)rows + 1));
    if (f == NULL) {
        (void)tfb_reply_error(req, 500, "out of memory");
        return;
    }
    for (int i = 0; i < rows; i++) {
        if (hp_pg_result_int(res, i, 0, &f[i].id) != 0) {
            (void)tfb_reply_error(req, 500, "bad fortune id");
            return;
        }
        f[i].message = (struct hp_str){hp_pg_result_text(res, i, 1), hp_pg_result_len(res, i, 1)};
    }
    f[rows] = (struct fortune){0, HP_STR_LIT("Additional fortune added at request time.")};
    page = (struct page){.fortunes = f, .count = (size_t)rows + 1};
    sort_fortunes(f, page.count);
    /* finishes req whatever happens (a render error is answered 500) */
    (void)hp_mustache_reply(req, 200, HP_STR_LIT("text/html; charset=utf-8"), template, &page_type,
                            &page, NULL);
}

int tfb_fortunes(struct hp_http_req *req)
{
    struct tfb_worker *w = tfb_worker_of(req);

    if (w->db == NULL)
        return tfb_reply_error(req, 503, "shutting down");
    return hp_pg_query_prepared(w->db, "fortunes", FORTUNES_SQL, 0, NULL, NULL, 0, on_fortunes,
                                req);
}
