/*
 * static_cache.c - the open-file cache of the static handler: normalised
 * path -> (descriptor, stat, ETag, Last-Modified, Content-Type, .gz/.br
 * siblings, small contents in memory), in a hash table with an LRU list.
 *
 * A fresh entry (looked up less than cache_ttl_ms ago) answers on the loop
 * with no system call. A missing or stale one gets a lookup on the pool:
 * open beneath the root, fstat, the index file for a directory, the
 * siblings, and for small files the contents. Requests arriving meanwhile
 * wait on the entry. A revalidation that finds the same file (device,
 * inode, size, mtime) keeps the old version and closes the new descriptor;
 * a changed one replaces it, while responses still streaming the old
 * version keep their reference to it (struct hp__sfile.refs).
 */
#if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#define _DARWIN_C_SOURCE /* O_DIRECTORY and st_mtimespec are hidden under plain POSIX */
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hellepoll/error.h>
#include <hellepoll/fs.h>

#include "static_internal.h"

/* What a lookup found for each variant. */
enum { V_NONE = 0, V_NEW, V_SAME };

struct lookup {
    struct hp_work work;
    struct hp_static *st; /* read-only on the worker: root, opts, index */
    struct hp__centry *e;
    struct hp__sfile *old[HP__VAR_N];   /* referenced: compared on the worker */
    struct hp__sfile *found[HP__VAR_N]; /* state V_NEW */
    uint8_t state[HP__VAR_N];
    uint64_t mem_budget; /* bytes the worker may read into memory */
    int err;
    uint8_t kind;
    bool index; /* the file found is the directory's index */
    char path[];
};

static uint32_t hash_of(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

void hp__sfile_release(struct hp_static *st, struct hp__sfile *f)
{
    if (!f || --f->refs > 0)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->mem) {
        st->mem_used -= f->size;
        free(f->mem);
    }
    free(f);
}

/* ---- on the worker --------------------------------------------------------- */

static bool same_file(const struct hp__sfile *a, const struct stat *sb)
{
#if defined(__APPLE__)
    long ns = sb->st_mtimespec.tv_nsec;
#else
    long ns = sb->st_mtim.tv_nsec;
#endif
    return a && a->fd >= 0 && a->ino == (uint64_t)sb->st_ino && a->dev == (uint64_t)sb->st_dev &&
           a->size == (uint64_t)sb->st_size && a->mtime == (int64_t)sb->st_mtime &&
           a->mtime_ns == ns;
}

/*
 * Open @p path as variant @p v of @p lk: a regular file, or nothing. Sets
 * lk->state[v] and for V_NEW lk->found[v]. @return 0, the open's -errno,
 * or -EISDIR with *dirfd set for a directory (primary only).
 */
static int open_variant(struct lookup *lk, const char *path, int v, int *dirfd)
{
    struct hp_static *st = lk->st;
    struct hp__sfile *f;
    struct stat sb;
    int fd = hp_fs_open_beneath(st->root, path[0] ? path : ".", O_RDONLY | O_NONBLOCK, 0);

    if (fd < 0)
        return fd;
    if (fstat(fd, &sb) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (S_ISDIR(sb.st_mode) && dirfd) {
        *dirfd = fd;
        return -EISDIR;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return -EACCES; /* devices, fifos, sockets: never served */
    }
    if (same_file(lk->old[v], &sb)) {
        close(fd);
        lk->state[v] = V_SAME;
        return 0;
    }
    if (!(f = calloc(1, sizeof(*f)))) {
        close(fd);
        return -ENOMEM;
    }
    f->owner = st;
    f->refs = 1;
    f->fd = fd;
    f->size = (uint64_t)sb.st_size;
    f->mtime = (int64_t)sb.st_mtime;
#if defined(__APPLE__)
    f->mtime_ns = sb.st_mtimespec.tv_nsec;
#else
    f->mtime_ns = sb.st_mtim.tv_nsec;
#endif
    f->ino = (uint64_t)sb.st_ino;
    f->dev = (uint64_t)sb.st_dev;
    /* Strong: any change of inode, size or modification time (ns) changes it. */
    f->etag_len = (uint8_t)snprintf(
        f->etag, sizeof(f->etag), "\"%llx-%llx-%llx\"", (unsigned long long)f->ino,
        (unsigned long long)f->size,
        (unsigned long long)((uint64_t)f->mtime * 1000000000u + (uint64_t)f->mtime_ns));
    hp__http_date_format(f->mtime, f->lastmod);
    if (f->size <= st->opts.mem_file_max && f->size <= lk->mem_budget) {
        char *mem = malloc(f->size ? f->size : 1);
        size_t got = 0;

        while (mem && got < f->size) {
            ssize_t n = pread(fd, mem + got, f->size - got, (off_t)got);

            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (mem && got == f->size) {
            f->mem = mem;
            lk->mem_budget -= f->size;
        } else {
            free(mem);
        }
    }
    lk->found[v] = f;
    lk->state[v] = V_NEW;
    return 0;
}

static void drop_found(struct lookup *lk, int v)
{
    struct hp__sfile *f = lk->found[v];

    if (f) {
        if (f->fd >= 0)
            close(f->fd);
        free(f->mem);
        free(f);
    }
    lk->found[v] = NULL;
    lk->state[v] = V_NONE;
}

static void siblings(struct lookup *lk, const char *path)
{
    static const char *const ext[HP__VAR_N] = {"", ".gz", ".br"};
    char p[4096 + 8];

    for (int v = HP__VAR_GZIP; v < HP__VAR_N; v++) {
        snprintf(p, sizeof(p), "%s%s", path, ext[v]);
        if (open_variant(lk, p, v, NULL) != 0)
            drop_found(lk, v);
    }
}

static void lookup_run(struct hp_work *w)
{
    struct lookup *lk = hp_container_of(w, struct lookup, work);
    struct hp_static *st = lk->st;
    size_t n = strlen(lk->path);
    bool dir_req = n > 0 && lk->path[n - 1] == '/';
    int dirfd = -1, err;

    if (dir_req)
        lk->path[n - 1] = '\0';
    err = open_variant(lk, lk->path, HP__VAR_ID, &dirfd);
    if (err == -EISDIR) {
        char p[4096 + 256];

        err = 0;
        if (!dir_req && lk->path[0] != '\0') {
            lk->kind = HP__K_REDIRECT;
        } else if (st->index[0] &&
                   (snprintf(p, sizeof(p), "%s%s%s", lk->path, lk->path[0] ? "/" : "", st->index),
                    open_variant(lk, p, HP__VAR_ID, NULL) == 0)) {
            lk->index = true;
            if (!st->opts.no_precompressed)
                siblings(lk, p);
        } else if (st->opts.listing) {
            struct hp__sfile *f = calloc(1, sizeof(*f));
            char *html = NULL;
            size_t len = 0;

            lk->kind = HP__K_LISTING;
            if (!f || (err = hp__static_listing(dirfd, lk->path, st->opts.dotfiles, &html, &len))) {
                free(f);
                err = err ? err : -ENOMEM;
            } else {
                f->owner = st;
                f->refs = 1;
                f->fd = -1;
                f->mem = html;
                f->size = len;
                lk->found[HP__VAR_ID] = f;
                lk->state[HP__VAR_ID] = V_NEW;
            }
        } else {
            err = -EACCES; /* a directory without index, listing off */
        }
        close(dirfd);
    } else if (err == 0 && dir_req) {
        err = -ENOTDIR; /* "file/" */
        drop_found(lk, HP__VAR_ID);
    } else if (err == 0 && !st->opts.no_precompressed) {
        siblings(lk, lk->path);
    }
    if (dir_req)
        lk->path[n - 1] = '/';
    if (err || lk->kind == HP__K_REDIRECT) {
        for (int v = 0; v < HP__VAR_N; v++)
            drop_found(lk, v);
    }
    lk->err = err;
}

/* ---- on the loop ----------------------------------------------------------- */

static void lru_unlink(struct hp_static *st, struct hp__centry *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        st->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        st->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_front(struct hp_static *st, struct hp__centry *e)
{
    e->lnext = st->lru_head;
    e->lprev = NULL;
    if (st->lru_head)
        st->lru_head->lprev = e;
    else
        st->lru_tail = e;
    st->lru_head = e;
}

static void entry_drop_files(struct hp_static *st, struct hp__centry *e)
{
    for (int v = 0; v < HP__VAR_N; v++) {
        hp__sfile_release(st, e->file[v]);
        e->file[v] = NULL;
    }
}

static void entry_free(struct hp_static *st, struct hp__centry *e)
{
    struct hp__centry **pp = &st->buckets[e->hash & (st->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(st, e);
    entry_drop_files(st, e);
    st->cached--;
    free(e);
}

/* Evict least recently used entries no lookup holds, down to cache_max. */
static void evict(struct hp_static *st)
{
    struct hp__centry *e = st->lru_tail;

    while (st->cached > st->opts.cache_max && e) {
        struct hp__centry *prev = e->lprev;

        if (!e->pending)
            entry_free(st, e);
        e = prev;
    }
}

static struct hp__centry *find(struct hp_static *st, const char *key, size_t len, uint32_t h)
{
    for (struct hp__centry *e = st->buckets[h & (st->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
    return NULL;
}

struct hp__centry *hp__cache_get(struct hp_static *st, const char *key, size_t len)
{
    struct hp__centry *e = find(st, key, len, hash_of(key, len));

    if (!e || e->pending || hp_loop_now(st->loop) - e->checked >= st->opts.cache_ttl_ms)
        return NULL;
    if (e != st->lru_head) {
        lru_unlink(st, e);
        lru_front(st, e);
    }
    return e;
}

static void lookup_done(struct hp_work *w, int status)
{
    struct lookup *lk = hp_container_of(w, struct lookup, work);
    struct hp_static *st = lk->st;
    struct hp__centry *e = lk->e;
    struct hp__sreq *s;

    st->lookups_pending--;
    st->stats.lookups++;
    for (int v = 0; v < HP__VAR_N; v++) {
        if (lk->found[v] && lk->found[v]->mem)
            st->mem_used += lk->found[v]->size; /* hp__sfile_release() takes it back */
    }
    e->pending = false;
    e->checked = hp_loop_now(st->loop);
    e->err = status ? status : lk->err;
    e->kind = lk->kind;
    for (int v = 0; v < HP__VAR_N; v++) {
        if (status == 0 && lk->state[v] == V_SAME)
            continue; /* unchanged: keep the version (and memory) we have */
        hp__sfile_release(st, e->file[v]);
        e->file[v] = status == 0 && lk->state[v] == V_NEW ? lk->found[v] : NULL;
        if (e->file[v])
            lk->found[v] = NULL;
    }
    if (e->kind == HP__K_LISTING)
        e->ctype = HP_STR_LIT("text/html; charset=utf-8");
    else if (lk->index)
        e->ctype = hp__mime_lookup(st->mime, st->index, strlen(st->index));
    else
        e->ctype = hp__mime_lookup(st->mime, e->key, e->key_len);
    if (e->err == 0 && e->kind == HP__K_FILE && !e->file[HP__VAR_ID])
        e->err = -EIO; /* cannot happen: an unchanged file without an old version */
    for (int v = 0; v < HP__VAR_N; v++) {
        hp__sfile_release(st, lk->old[v]);
        hp__sfile_release(st, lk->found[v]); /* cancelled lookups: nothing */
    }
    s = e->waiters;
    e->waiters = e->waiters_tail = NULL;
    free(lk);
    while (s) {
        struct hp__sreq *next = s->next;

        s->next = NULL;
        hp__static_resume(s);
        s = next;
    }
    evict(st);
}

int hp__cache_wait(struct hp_static *st, const char *key, size_t len, struct hp__sreq *s)
{
    uint32_t h = hash_of(key, len);
    struct hp__centry *e = find(st, key, len, h);
    struct lookup *lk;
    int err;

    if (!e) {
        if (!(e = calloc(1, sizeof(*e) + len + 1)))
            return -ENOMEM;
        memcpy(e->key, key, len);
        e->key_len = (uint32_t)len;
        e->hash = h;
        e->hnext = st->buckets[h & (st->nbuckets - 1)];
        st->buckets[h & (st->nbuckets - 1)] = e;
        lru_front(st, e);
        st->cached++;
    }
    if (!e->pending) {
        if (!(lk = calloc(1, sizeof(*lk) + len + 1)))
            return -ENOMEM;
        lk->st = st;
        lk->e = e;
        memcpy(lk->path, key, len);
        lk->mem_budget = st->opts.mem_total > st->mem_used ? st->opts.mem_total - st->mem_used : 0;
        for (int v = 0; v < HP__VAR_N; v++) {
            if ((lk->old[v] = e->file[v]) != NULL)
                lk->old[v]->refs++;
        }
        if ((err = hp_work_submit(st->loop, &lk->work, lookup_run, lookup_done)) != 0) {
            for (int v = 0; v < HP__VAR_N; v++)
                hp__sfile_release(st, lk->old[v]);
            free(lk);
            return err;
        }
        e->pending = true;
        st->lookups_pending++;
    }
    s->entry = e;
    s->next = NULL;
    if (e->waiters_tail)
        e->waiters_tail->next = s;
    else
        e->waiters = s;
    e->waiters_tail = s;
    return 0;
}

void hp__cache_free(struct hp_static *st)
{
    while (st->lru_head)
        entry_free(st, st->lru_head);
}
