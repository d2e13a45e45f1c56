/*
 * set.c - a set of named templates: a hash index over an array of
 * entries, and linking (every partial/parent name of every template is
 * resolved to a template pointer once, after each change, so rendering a
 * partial is a pointer load). Replacing a template swaps its contents in
 * place, so pointers handed out earlier stay valid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint32_t hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t k = 0; k < n; k++)
        h = (h ^ (unsigned char)p[k]) * 16777619u;
    return h;
}

struct hp__entry *hp__set_entry(const struct hp_mustache_set *set, const char *name, size_t len)
{
    if (!set->icap)
        return NULL;
    for (size_t i = hash(name, len) & (set->icap - 1);; i = (i + 1) & (set->icap - 1)) {
        uint32_t e = set->index[i];
        if (!e)
            return NULL;
        struct hp__entry *en = &set->v[e - 1];
        if (en->nlen == len && memcmp(en->name, name, len) == 0)
            return en;
    }
}

const struct hp_mustache *hp__set_find(const struct hp_mustache_set *set, const char *name,
                                       size_t len)
{
    const struct hp__entry *e = hp__set_entry(set, name, len);

    return e ? e->t : NULL;
}

const struct hp_mustache_opts *hp__set_opts(const struct hp_mustache_set *set)
{
    return &set->opts;
}

void hp__link(const struct hp_mustache_set *set, struct hp_mustache *t)
{
    for (uint32_t k = 0; k < t->nslots; k++)
        t->slots[k].tpl = hp__set_find(set, t->pool + t->slots[k].off, t->slots[k].len);
}

static int reindex(struct hp_mustache_set *set)
{
    size_t cap = set->icap ? set->icap : 16;

    while (cap < 2 * (set->n + 1))
        cap *= 2;
    if (cap != set->icap) {
        uint32_t *ix = calloc(cap, sizeof(*ix));
        if (!ix)
            return -ENOMEM;
        free(set->index);
        set->index = ix;
        set->icap = cap;
        for (size_t k = 0; k < set->n; k++) {
            size_t i = hash(set->v[k].name, set->v[k].nlen) & (cap - 1);
            while (ix[i])
                i = (i + 1) & (cap - 1);
            ix[i] = (uint32_t)(k + 1);
        }
    }
    return 0;
}

int hp__set_put(struct hp_mustache_set *set, const char *name, size_t nlen, const char *src,
                size_t len, struct hp_mustache_error *err, struct hp__entry **entry)
{
    struct hp_mustache *t;
    struct hp__entry *e;
    char *tname;
    int rc;

    if (!nlen || nlen > UINT32_MAX)
        return -EINVAL;
    if (!(tname = malloc(nlen + 1)))
        return -ENOMEM;
    memcpy(tname, name, nlen);
    tname[nlen] = '\0';
    rc = hp__compile(&t, tname, src, len, "{{", 2, "}}", 2, &set->opts, err);
    if (rc) {
        free(tname);
        return rc;
    }
    t->set = set;
    t->owned_by_set = true;
    if ((e = hp__set_entry(set, name, nlen)) != NULL) {
        struct hp_mustache tmp = *e->t;
        *e->t = *t;
        *t = tmp;
        hp__mustache_clear(t);
        free(t);
        free(tname);
    } else {
        if (set->n == set->cap) {
            size_t cap = set->cap ? set->cap * 2 : 16;
            struct hp__entry *v = realloc(set->v, cap * sizeof(*v));
            if (!v) {
                rc = -ENOMEM;
                goto fail;
            }
            set->v = v;
            set->cap = cap;
        }
        if ((rc = reindex(set)) != 0)
            goto fail;
        e = &set->v[set->n++];
        *e = (struct hp__entry){.name = tname, .nlen = nlen, .t = t};
        size_t i = hash(name, nlen) & (set->icap - 1);
        while (set->index[i])
            i = (i + 1) & (set->icap - 1);
        set->index[i] = (uint32_t)set->n;
    }
    for (size_t k = 0; k < set->n; k++)
        hp__link(set, set->v[k].t);
    if (entry)
        *entry = e;
    return 0;
fail:
    hp__mustache_clear(t);
    free(t);
    free(tname);
    return rc;
}

int hp_mustache_set_new(struct hp_mustache_set **out, const struct hp_mustache_opts *opts)
{
    struct hp_mustache_set *set = calloc(1, sizeof(*set));

    *out = NULL;
    if (!set)
        return -ENOMEM;
    if (opts)
        set->opts = *opts;
    *out = set;
    return 0;
}

void hp_mustache_set_free(struct hp_mustache_set *set)
{
    if (!set)
        return;
    for (size_t k = 0; k < set->n; k++) {
        hp__mustache_clear(set->v[k].t);
        free(set->v[k].t);
        free(set->v[k].name);
        free(set->v[k].path);
    }
    for (size_t k = 0; k < set->ndirs; k++)
        free(set->dirs[k]);
    free(set->dirs);
    free(set->v);
    free(set->index);
    free(set);
}

int hp_mustache_set_add(struct hp_mustache_set *set, const char *name, const char *src, size_t len,
                        struct hp_mustache_error *err)
{
    if (!set || !name || (!src && len))
        return -EINVAL;
    return hp__set_put(set, name, strlen(name), src ? src : "", len, err, NULL);
}

const struct hp_mustache *hp_mustache_set_get(const struct hp_mustache_set *set, const char *name)
{
    if (!set || !name)
        return NULL;
    return hp__set_find(set, name, strlen(name));
}
