/*
 * resolve.c - host names looked up on the loop's thread pool
 * (hellepoll/pool.h) before a connection starts, because libpq's
 * PQconnectStart() resolves them with a blocking getaddrinfo().
 *
 * When the pool is made, the connection string is parsed once
 * (PQconninfoParse): if it names hosts (host=, a comma-separated list) and
 * gives no hostaddr=, and one of the hosts is a name rather than a numeric
 * address or a Unix socket directory, every connection attempt first
 * resolves the list on a worker. Each name becomes one entry per address
 * it has (host=NAME hostaddr=ADDR, the port repeated when there is one per
 * host), so libpq still knows the host name (for authentication, SSL and
 * .pgpass) and tries the addresses in turn; numeric hosts and sockets pass
 * as they are (an empty hostaddr entry). The connection is then started
 * with PQconnectStartParams(). A name that does not resolve is left out;
 * none at all fails the attempt with -EHOSTUNREACH and getaddrinfo's
 * message. Host names from PGHOST (not in the string) are left to libpq.
 *
 * Lifetime as in cancel.c: a request is libc memory owned by its
 * connection while pending and freed by its completion, which the thread
 * pool runs exactly once; a connection that ends first detaches it (and
 * cancels it if no worker took it yet), and the completion then touches
 * nothing else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

struct pgresolve {
    struct hp_work work;
    struct pgconn *conn;                  /* NULL once detached */
    char *hosts, *ports;                  /* the lists as given (libc copies) */
    char *out_host, *out_addr, *out_port; /* built by the worker */
    char err[512];
};

/* A host entry libpq would look up itself (not numeric, not a socket). */
static bool is_name(const char *h, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    unsigned char tmp[sizeof(struct in6_addr)];

    if (n == 0 || h[0] == '/' || h[0] == '@')
        return false;
    if (n >= sizeof(buf))
        return true;
    memcpy(buf, h, n);
    buf[n] = '\0';
    return inet_pton(AF_INET, buf, tmp) != 1 && inet_pton(AF_INET6, buf, tmp) != 1;
}

static const char *opt_val(const PQconninfoOption *o, const char *key)
{
    for (; o && o->keyword; o++) {
        if (strcmp(o->keyword, key) == 0)
            return o->val && *o->val ? o->val : NULL;
    }
    return NULL;
}

void hp__pg_resolve_init(struct hp_pg_pool *pool)
{
    char *err = NULL;
    PQconninfoOption *o = PQconninfoParse(pool->conninfo, &err);
    const char *hosts;

    if (!o) {
        /* A bad string (or no memory): libpq reports it when it is used. */
        PQfreemem(err);
        return;
    }
    hosts = opt_val(o, "host");
    pool->resolve = false;
    if (hosts && !opt_val(o, "hostaddr")) {
        for (const char *h = hosts;;) {
            size_t n = strcspn(h, ",");

            if (is_name(h, n))
                pool->resolve = true;
            if (!h[n])
                break;
            h += n + 1;
        }
    }
    if (!pool->resolve) {
        PQconninfoFree(o);
        return;
    }
    pool->conn_opts = o;
}

void hp__pg_resolve_fini(struct hp_pg_pool *pool)
{
    PQconninfoFree(pool->conn_opts);
    pool->conn_opts = NULL;
}

/* Growable output lists (on the worker: plain libc). */
struct list {
    char *s;
    size_t len, cap;
    bool any;
};

static bool add(struct list *l, const char *v, size_t n)
{
    size_t need = l->len + n + 2;

    if (need > l->cap) {
        size_t cap = need * 2;
        char *p = realloc(l->s, cap);

        if (!p)
            return false;
        l->s = p;
        l->cap = cap;
    }
    if (l->any)
        l->s[l->len++] = ',';
    memcpy(l->s + l->len, v, n);
    l->len += n;
    l->s[l->len] = '\0';
    l->any = true;
    return true;
}

static void run(struct hp_work *w)
{
    struct pgresolve *r = hp_container_of(w, struct pgresolve, work);
    struct list host = {0}, addr = {0}, port = {0};
    bool per_host_port = r->ports && strchr(r->ports, ',');
    const char *p = r->ports;
    bool ok = true;

    for (const char *h = r->hosts; ok;) {
        size_t n = strcspn(h, ","), pn = 0;

        if (per_host_port && p) {
            pn = strcspn(p, ",");
        } else if (p) {
            pn = strlen(p);
        }
        if (!is_name(h, n)) {
            ok = add(&host, h, n) && add(&addr, "", 0) && (!p || add(&port, p, pn));
        } else {
            char name[256];
            struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
            struct addrinfo *res = NULL;
            int e;

            snprintf(name, sizeof(name), "%.*s", (int)n, h);
            e = getaddrinfo(name, NULL, &hints, &res);
            if (e != 0) {
                snprintf(r->err, sizeof(r->err),
                         "could not translate host name \"%s\" to address: %s", name,
                         gai_strerror(e));
            }
            for (struct addrinfo *a = res; a && ok; a = a->ai_next) {
                char text[INET6_ADDRSTRLEN];
                const void *src =
                    a->ai_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr;

                if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
                    !inet_ntop(a->ai_family, src, text, sizeof(text)))
                    continue;
                ok =
                    add(&host, h, n) && add(&addr, text, strlen(text)) && (!p || add(&port, p, pn));
            }
            if (res)
                freeaddrinfo(res);
        }
        if (per_host_port && p)
            p = p[pn] ? p + pn + 1 : NULL;
        if (!h[n])
            break;
        h += n + 1;
    }
    if (!ok) {
        snprintf(r->err, sizeof(r->err), "out of memory looking up host names");
        free(host.s);
        free(addr.s);
        free(port.s);
        return;
    }
    if (!host.any) {
        free(addr.s);
        free(port.s);
        return; /* r->err says why */
    }
    r->out_host = host.s;
    r->out_addr = addr.s;
    r->out_port = port.s;
}

static void req_free(struct pgresolve *r)
{
    free(r->hosts);
    free(r->ports);
    free(r->out_host);
    free(r->out_addr);
    free(r->out_port);
    free(r);
}

static void done(struct hp_work *w, int status)
{
    struct pgresolve *r = hp_container_of(w, struct pgresolve, work);
    struct pgconn *c = r->conn;
    const PQconninfoOption *o;
    const char **keys, **vals;
    size_t n = 0, i = 0;

    if (!c) {
        req_free(r);
        return;
    }
    c->resolving = NULL;
    if (status != 0 || !r->out_host) {
        hp__pg_enter(c->pool);
        hp__pg_conn_resolved(c, NULL, NULL, status != 0 ? -ECANCELED : -EHOSTUNREACH,
                             status != 0 ? "host name lookup cancelled" : r->err);
        hp__pg_leave(c->pool);
        req_free(r);
        return;
    }
    for (o = c->pool->conn_opts; o->keyword; o++)
        n++;
    keys = calloc(n + 4, sizeof(*keys));
    vals = calloc(n + 4, sizeof(*vals));
    if (keys && vals) {
        for (o = c->pool->conn_opts; o->keyword; o++) {
            if (!o->val || strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
                strcmp(o->keyword, "port") == 0)
                continue;
            keys[i] = o->keyword;
            vals[i++] = o->val;
        }
        keys[i] = "host";
        vals[i++] = r->out_host;
        keys[i] = "hostaddr";
        vals[i++] = r->out_addr;
        if (r->out_port) {
            keys[i] = "port";
            vals[i++] = r->out_port;
        }
    }
    hp__pg_enter(c->pool);
    hp__pg_conn_resolved(c, keys && vals ? keys : NULL, vals, -ENOMEM, "out of memory");
    hp__pg_leave(c->pool);
    free(keys);
    free(vals);
    req_free(r);
}

int hp__pg_resolve_start(struct pgconn *c)
{
    struct pgresolve *r = calloc(1, sizeof(*r));
    const char *hosts = opt_val(c->pool->conn_opts, "host");
    const char *ports = opt_val(c->pool->conn_opts, "port");
    int err;

    if (!r)
        return -ENOMEM;
    r->hosts = strdup(hosts ? hosts : "");
    r->ports = ports ? strdup(ports) : NULL;
    if (!r->hosts || (ports && !r->ports)) {
        req_free(r);
        return -ENOMEM;
    }
    snprintf(r->err, sizeof(r->err), "could not translate host name \"%s\" to address", r->hosts);
    r->conn = c;
    err = hp_work_submit(c->pool->loop, &r->work, run, done);
    if (err) {
        req_free(r);
        return err;
    }
    c->resolving = r;
    return 0;
}

void hp__pg_resolve_detach(struct pgconn *c)
{
    struct pgresolve *r = c->resolving;

    if (!r)
        return;
    c->resolving = NULL;
    r->conn = NULL;
    (void)hp_work_cancel(&r->work); /* not started: never looked up at all */
}
