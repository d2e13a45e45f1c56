/*
 * static_mime.c - Content-Type by file extension: a built-in table of the
 * types browsers care about, optionally extended (and overridden) by a
 * mime.types file. Looked up once per cached path, not per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "static_internal.h"

struct mime_ent {
    char *ext, *type;
};

struct hp__mime {
    struct mime_ent *ents;
    size_t n, cap;
};

static const char *const builtin[][2] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"bmp", "image/bmp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"ogv", "video/ogg"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},
    {"wav", "audio/wav"},
    {"flac", "audio/flac"},
    {"m4a", "audio/mp4"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"wasm", "application/wasm"},
    {"webmanifest", "application/manifest+json"},
    {"vtt", "text/vtt; charset=utf-8"},
};

static int add(struct hp__mime *m, const char *ext, size_t el, const char *type, size_t tl)
{
    struct mime_ent *e;

    if (el == 0 || tl == 0 || tl > 100)
        return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        struct mime_ent *p = realloc(m->ents, cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        m->ents = p;
        m->cap = cap;
    }
    e = &m->ents[m->n];
    e->ext = strndup(ext, el);
    e->type = strndup(type, tl);
    if (!e->ext || !e->type) {
        free(e->ext);
        free(e->type);
        return -ENOMEM;
    }
    m->n++;
    return 0;
}

/* "type ext ext ..." lines; '#' starts a comment. */
static int load(struct hp__mime *m, FILE *f)
{
    char line[1024];
    int err = 0;

    while (err == 0 && fgets(line, sizeof(line), f)) {
        char *p = line, *type;
        size_t tl;

        p += strspn(p, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        type = p;
        tl = strcspn(p, " \t\r\n");
        p += tl;
        for (;;) {
            size_t el;

            p += strspn(p, " \t");
            el = strcspn(p, " \t\r\n;");
            if (el == 0)
                break;
            err = add(m, p, el, type, tl);
            if (err)
                break;
            p += el;
        }
    }
    return err;
}

int hp__mime_new(struct hp__mime **out, const char *file)
{
    struct hp__mime *m = calloc(1, sizeof(*m));
    int err = 0;

    if (!m)
        return -ENOMEM;
    if (file) {
        FILE *f = fopen(file, "re");

        if (f) {
            err = load(m, f);
            fclose(f);
        }
    }
    if (err) {
        hp__mime_free(m);
        return err;
    }
    *out = m;
    return 0;
}

void hp__mime_free(struct hp__mime *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->ents[i].ext);
        free(m->ents[i].type);
    }
    free(m->ents);
    free(m);
}

struct hp_str hp__mime_lookup(const struct hp__mime *m, const char *name, size_t len)
{
    const char *dot = NULL;
    size_t el;

    for (size_t i = len; i > 0; i--) {
        if (name[i - 1] == '.') {
            dot = name + i;
            break;
        }
        if (name[i - 1] == '/')
            break;
    }
    if (dot) {
        el = (size_t)(name + len - dot);
        for (size_t i = 0; i < m->n; i++) {
            if (strlen(m->ents[i].ext) == el && strncasecmp(m->ents[i].ext, dot, el) == 0)
                return (struct hp_str){m->ents[i].type, strlen(m->ents[i].type)};
        }
        for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
            if (strlen(builtin[i][0]) == el && strncasecmp(builtin[i][0], dot, el) == 0)
                return (struct hp_str){builtin[i][1], strlen(builtin[i][1])};
        }
    }
    return HP_STR_LIT("application/octet-stream");
}
