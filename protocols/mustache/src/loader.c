/*
 * loader.c - templates from files: a directory tree of NAME.mustache files
 * becomes templates named by their relative path without the extension,
 * and refresh re-reads files whose modification time or size changed (and
 * picks up new ones) for development.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define EXT     ".mustache"
#define EXT_LEN (sizeof(EXT) - 1)

static int64_t mtime_ns(const struct stat *st)
{
#if defined(__APPLE__)
    /* with _POSIX_C_SOURCE (and not _DARWIN_C_SOURCE) Darwin has these */
    return (int64_t)st->st_mtime * 1000000000 + st->st_mtimensec;
#else
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
#endif
}

static int file_error(struct hp_mustache_error *err, int code, const char *path, const char *what)
{
    hp__set_error(err, code, path, NULL, 0, false, "%s: %s", what, strerror(-code));
    return code;
}

/* Read a whole file; *st is its state when read. */
static int read_file(const char *path, char **data, size_t *len, struct stat *st,
                     struct hp_mustache_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (fd < 0)
        return file_error(err, -errno, path, "cannot open");
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int rc = S_ISREG(st->st_mode) ? -errno : -EISDIR;
        close(fd);
        return file_error(err, rc, path, "not a readable file");
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : (size_t)st->st_size + 1;
            if (cap > HP__MU_DEFAULT_SOURCE * 4u) {
                free(buf);
                close(fd);
                return file_error(err, -EFBIG, path, "cannot read");
            }
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = b;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = -errno;
            free(buf);
            close(fd);
            return file_error(err, rc, path, "cannot read");
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
}

static int load(struct hp_mustache_set *set, const char *name, size_t nlen, const char *path,
                struct hp_mustache_error *err)
{
    struct hp__entry *e;
    struct stat st;
    char *src = NULL, *p;
    size_t len = 0;
    int rc = read_file(path, &src, &len, &st, err);

    if (rc)
        return rc;
    rc = hp__set_put(set, name, nlen, src, len, err, &e);
    free(src);
    if (rc) {
        /* name the file rather than the template: "dir/x.mustache:3:7: ..." */
        if (err && err->line) {
            char msg[sizeof(err->message)];
            size_t skip = strlen(err->name);
            snprintf(msg, sizeof(msg), "%s%s", path, err->message + skip);
            memcpy(err->message, msg, sizeof(msg));
        }
        return rc;
    }
    if (!e->path || strcmp(e->path, path) != 0) {
        if (!(p = strdup(path)))
            return -ENOMEM;
        free(e->path);
        e->path = p;
    }
    e->mtime_ns = mtime_ns(&st);
    e->size = (int64_t)st.st_size;
    return 0;
}

int hp_mustache_set_load_file(struct hp_mustache_set *set, const char *name, const char *path,
                              struct hp_mustache_error *err)
{
    const char *base;
    size_t nlen;

    if (!set || !path)
        return -EINVAL;
    if (name)
        return load(set, name, strlen(name), path, err);
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    nlen = strlen(base);
    if (nlen > EXT_LEN && strcmp(base + nlen - EXT_LEN, EXT) == 0)
        nlen -= EXT_LEN;
    return load(set, base, nlen, path, err);
}

/* Walk dir (prefix is the name so far); only_new: skip names already in the set. */
static int walk(struct hp_mustache_set *set, const char *dir, const char *prefix, bool only_new,
                int depth, int *loaded, struct hp_mustache_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = 0;

    if (!d)
        return file_error(err, -errno, dir, "cannot open directory");
    if (depth > 16) {
        closedir(d);
        return 0;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        char path[4096], name[4096];
        struct stat st;

        if (n[0] == '.')
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, n) >= sizeof(path))
            continue;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if ((size_t)snprintf(name, sizeof(name), "%s%s/", prefix, n) < sizeof(name))
                rc = walk(set, path, name, only_new, depth + 1, loaded, err);
            continue;
        }
        if (!S_ISREG(st.st_mode) || len <= EXT_LEN || strcmp(n + len - EXT_LEN, EXT) != 0)
            continue;
        int nl = snprintf(name, sizeof(name), "%s%.*s", prefix, (int)(len - EXT_LEN), n);
        if (nl <= 0 || (size_t)nl >= sizeof(name))
            continue;
        if (only_new && hp__set_entry(set, name, (size_t)nl))
            continue;
        rc = load(set, name, (size_t)nl, path, err);
        if (rc == 0)
            (*loaded)++;
    }
    closedir(d);
    return rc;
}

int hp_mustache_set_load_dir(struct hp_mustache_set *set, const char *dir,
                             struct hp_mustache_error *err)
{
    int loaded = 0, rc;
    char *copy, **dirs;

    if (!set || !dir)
        return -EINVAL;
    if ((rc = walk(set, dir, "", false, 0, &loaded, err)) != 0)
        return rc;
    if (!(copy = strdup(dir)))
        return -ENOMEM;
    if (!(dirs = realloc(set->dirs, (set->ndirs + 1) * sizeof(*dirs)))) {
        free(copy);
        return -ENOMEM;
    }
    set->dirs = dirs;
    set->dirs[set->ndirs++] = copy;
    return 0;
}

int hp_mustache_set_refresh(struct hp_mustache_set *set, struct hp_mustache_error *err)
{
    int loaded = 0, first = 0, rc;

    if (!set)
        return -EINVAL;
    for (size_t k = 0; k < set->n; k++) {
        struct hp__entry *e = &set->v[k];
        struct stat st;

        if (!e->path)
            continue;
        if (stat(e->path, &st) != 0 || (mtime_ns(&st) == e->mtime_ns && st.st_size == e->size))
            continue;
        /* load() may grow set->v: copy what it needs first */
        char *name = strndup(e->name, e->nlen), *path = strdup(e->path);
        if (!name || !path) {
            free(name);
            free(path);
            return -ENOMEM;
        }
        rc = load(set, name, strlen(name), path, first ? NULL : err);
        free(name);
        free(path);
        if (rc == 0)
            loaded++;
        else if (!first)
            first = rc;
    }
    for (size_t k = 0; k < set->ndirs; k++) {
        rc = walk(set, set->dirs[k], "", true, 0, &loaded, first ? NULL : err);
        if (rc && !first)
            first = rc;
    }
    return first ? first : loaded;
}

/* A partial name that stays inside the directory: no absolute path, no "..". */
static bool safe_name(const char *p, size_t n)
{
    if (n == 0 || p[0] == '/')
        return false;
    for (size_t k = 0; k + 1 < n; k++) {
        if (p[k] == '.' && p[k + 1] == '.' && (k == 0 || p[k - 1] == '/') &&
            (k + 2 == n || p[k + 2] == '/'))
            return false;
    }
    return memchr(p, '\0', n) == NULL;
}

int hp_mustache_set_resolve_dir(struct hp_mustache_set *set, const char *dir,
                                struct hp_mustache_error *err)
{
    bool changed = true;
    int loaded = 0, rc;

    if (!set || !dir)
        return -EINVAL;
    while (changed) {
        changed = false;
        /* set->v grows while loading: index it afresh each time */
        for (size_t k = 0; k < set->n; k++) {
            for (uint32_t i = 0; i < set->v[k].t->nslots; i++) {
                const struct hp__slot *sl = &set->v[k].t->slots[i];
                const char *name = set->v[k].t->pool + sl->off;
                char path[4096];
                struct stat st;

                if (sl->tpl || !safe_name(name, sl->len) || hp__set_entry(set, name, sl->len))
                    continue;
                if ((size_t)snprintf(path, sizeof(path), "%s/%.*s" EXT, dir, (int)sl->len, name) >=
                        sizeof(path) ||
                    stat(path, &st) != 0)
                    continue;
                char *copy = strndup(name, sl->len);
                if (!copy)
                    return -ENOMEM;
                rc = load(set, copy, sl->len, path, err);
                free(copy);
                if (rc)
                    return rc;
                loaded++;
                changed = true;
            }
        }
    }
    return loaded;
}
