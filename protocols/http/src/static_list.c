/*
 * static_list.c - the HTML page listing a directory (runs on a pool worker).
 * Names are sorted, HTML-escaped in the text and percent-encoded in the
 * links; dotfiles are left out unless they may be served.
 */
#if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#define _DARWIN_C_SOURCE /* O_DIRECTORY and st_mtimespec are hidden under plain POSIX */
#endif
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "static_internal.h"

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->cap - b->len < n) {
        size_t cap = b->cap * 2 + n + 256;
        char *p = realloc(b->p, cap);

        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(struct sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_html(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            puts_(b, "&amp;");
            break;
        case '<':
            puts_(b, "&lt;");
            break;
        case '>':
            puts_(b, "&gt;");
            break;
        case '"':
            puts_(b, "&quot;");
            break;
        case '\'':
            puts_(b, "&#39;");
            break;
        default:
            put(b, s, 1);
        }
    }
}

static void put_url(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c)) {
            put(b, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(b, e, 3);
        }
    }
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hp__static_listing(int fd, const char *path, bool dotfiles, char **out, size_t *len)
{
    struct sbuf b = {0};
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int dfd = dup(fd), err = 0;
    DIR *d;

    if (dfd < 0)
        return -errno;
    if (!(d = fdopendir(dfd))) {
        err = -errno;
        close(dfd);
        return err;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        size_t nl = strlen(de->d_name);
        char *name;

        if (de->d_name[0] == '.' && (!dotfiles || nl == 1 || (nl == 2 && de->d_name[1] == '.')))
            continue;
        if (n == cap) {
            char **p = realloc(names, (cap = cap * 2 + 64) * sizeof(*p));
            if (!p) {
                err = -ENOMEM;
                break;
            }
            names = p;
        }
        if (!(name = malloc(nl + 2))) {
            err = -ENOMEM;
            break;
        }
        memcpy(name, de->d_name, nl + 1);
        if (fstatat(dfd, de->d_name, &sb, 0) == 0 && S_ISDIR(sb.st_mode))
            memcpy(name + nl, "/", 2);
        names[n++] = name;
    }
    closedir(d);
    if (err == 0) {
        qsort(names, n, sizeof(*names), cmp);
        puts_(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of /");
        put_html(&b, path);
        puts_(&b, "</title></head>\n<body><h1>Index of /");
        put_html(&b, path);
        puts_(&b, "</h1>\n<ul>\n");
        if (path[0])
            puts_(&b, "<li><a href=\"../\">../</a></li>\n");
        for (size_t i = 0; i < n; i++) {
            size_t nl = strlen(names[i]);
            bool isdir = names[i][nl - 1] == '/';

            if (isdir)
                names[i][nl - 1] = '\0';
            puts_(&b, "<li><a href=\"");
            put_url(&b, names[i]);
            puts_(&b, isdir ? "/\">" : "\">");
            put_html(&b, names[i]);
            puts_(&b, isdir ? "/</a></li>\n" : "</a></li>\n");
        }
        puts_(&b, "</ul>\n</body></html>\n");
        if (b.oom)
            err = -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (err) {
        free(b.p);
        return err;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
