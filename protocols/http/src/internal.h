/*
 * internal.h - state shared by the files of the HTTP module (never
 * installed). A server owns its connections; a connection owns at most one
 * request block (taken from the server's pool when the first byte of a
 * request arrives and given back when the request is complete and nothing
 * follows it) and the output blocks it has built or queued. An idle
 * keep-alive connection therefore holds just its struct http_conn.
 *
 * A handler that returns without finishing its request holds it (R_HELD):
 * the request's bytes are then taken out of the stream's input
 * (hp_stream_take_input) so its views never move, and if the connection
 * ends first the block is orphaned (rq->conn NULL, counted in srv->orphans)
 * instead of recycled, until the handler finishes it.
 */
#ifndef HP_HTTP_INTERNAL_H
#define HP_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <hellepoll/error.h>
#include <hellepoll/http.h>
#include <hellepoll/loop.h>
#include <hellepoll/router.h>
#include <hellepoll/tcp.h>
#include <hellepoll/timer.h>

#include "parser.h"

/* Timeout classes; a connection sits in exactly one list at a time. */
enum tclass {
    T_NONE = 0, /* the handler holds the request: its own business */
    T_HEADER,   /* waiting for (the rest of) a request head */
    T_BODY,     /* waiting for body bytes */
    T_IDLE,     /* keep-alive, nothing received */
    T_WRITE,    /* response bytes queued */
    T_LINGER,   /* response sent, draining the client before closing */
    T_COUNT,
};

struct conn_list {
    struct http_conn *head, *tail;
};

/* Request phases. */
enum {
    P_HEAD = 0,    /* parsing the head */
    P_BODY_BUF,    /* buffering the body for on_request */
    P_BODY_STREAM, /* feeding the body to the handler's body callback */
    P_HANDLER,     /* the head (and the body, if wanted) is in: the handler has it */
};

/* Response state bits (struct req_blk.rflags). */
enum {
    R_STARTED = 1u << 0,     /* a status line was produced */
    R_DONE = 1u << 1,        /* the response is complete */
    R_CHUNKED = 1u << 2,     /* streamed with chunked framing */
    R_UNTIL_EOF = 1u << 3,   /* streamed, delimited by closing */
    R_NO_BODY = 1u << 4,     /* HEAD, 204, 304: body bytes are dropped */
    R_CLOSE = 1u << 5,       /* close the connection after this response */
    R_IN_CALL = 1u << 6,     /* inside a handler or body callback */
    R_CONTINUE = 1u << 7,    /* 100 Continue sent or not needed */
    R_BODY_DONE = 1u << 8,   /* the whole body has been read */
    R_HANDLED = 1u << 9,     /* the handler has the request: on_abort is owed on failure */
    R_HELD = 1u << 10,       /* the handler must still finish it (reply, end, release) */
    R_ABORTED = 1u << 11,    /* on_abort ran (or is not owed any more) */
    R_RELEASED = 1u << 12,   /* hp_http_req_release() inside a handler call */
    R_HEAD_TAKEN = 1u << 13, /* the head was taken out of the input: base is final */
    R_NOTIFYING = 1u << 14,  /* detach_request() is calling back: finishing must not free */
    R_LOGGED = 1u << 15,     /* on_log ran */
};

/* A connection's peer address as text (see hp_http_server.peers). */
struct peer_slot {
    uint8_t len; /* 0: unknown */
    uint16_t port;
    char text[HP_HTTP_PEER_STRLEN];
};

#define ARENA_INLINE 256
struct arena_chunk;

/* A per-request block, pooled by the server. */
struct req_blk {
    struct hp_http_req req; /* first: the handler's view */
    struct req_blk *next;   /* pool link */
    struct hp__http_parser parser;
    struct hp__http_chunked chunked;
    hp_http_body_cb *body_cb;
    hp_http_drain_cb *drain_cb;
    size_t drain_low;
    uint64_t start_ms;  /* when the first byte came (for on_log) */
    uint64_t body_sent; /* response body bytes (for on_log) */
    int status;         /* response status, 0 before the head */
    int peer_err;       /* 1: not asked yet; 0: peer_text holds it; else -errno */
    uint8_t peer_len;
    uint16_t peer_port;
    char peer_text[HP_HTTP_PEER_STRLEN];
    const char *base;     /* where the head is: the views of head fields point here */
    size_t hoff;          /* head bytes at the front of the input (0 once taken) */
    uint64_t body_left;   /* Content-Length bytes still to come */
    uint64_t stream_left; /* declared response bytes still to write, or UINT64_MAX */
    size_t head_len;      /* bytes of the head */
    size_t rpos;          /* input bytes of this request examined so far */
    size_t wpos;          /* end of the de-chunked body in the input */
    char *hdrs;           /* staged response header lines */
    size_t hdrs_len, hdrs_cap;
    unsigned rflags;
    uint8_t phase;
    uint8_t ntaken;
    struct hp_stream_chunk taken[2];    /* the head, then the body (see take_input()) */
    struct http_conn *conn;             /* NULL once orphaned */
    struct arena_chunk *arena;          /* hp_http_req_alloc() beyond arena_inline */
    const struct hp_route_match *route; /* &rm once hp_router_dispatch() found a route, or NULL */
    size_t arena_used;                  /* bytes of arena_inline given out */
    _Alignas(16) char arena_inline[ARENA_INLINE];
    char hdrs_inline[256];
    /*
     * route_dispatch.c: the lookup, filled in place (no copy, nothing
     * allocated); escaped values are replaced by their decoding (in the
     * arena). Lives as long as the request, as its parameters must.
     */
    struct hp_route_match rm;
    const struct hp_router *rm_router; /* route_dispatch.c: whose lookup rm holds */
    struct hp__http_field fields[];    /* max_headers of them */
};

/*
 * An output block: response bytes of one batch, then the write request;
 * with file_cb, a file body (hp_http_reply_file()) follows the bytes in the
 * same write request, and the block is queued at once, so whatever comes
 * next goes in a new block behind it.
 */
struct out_blk {
    struct hp_write_req wr;
    struct out_blk *next; /* pool link, or the server's list of failed file blocks */
    struct http_conn *conn;
    hp_http_file_cb *file_cb; /* NULL: no file (always so in the pool) */
    void *file_arg;
    int64_t file_off;
    size_t file_len;
    int file_fd, file_err;
    size_t len, cap;
    char data[];
};

/* Connection flags (struct http_conn.flags). */
enum {
    C_IN_BATCH = 1u << 0,    /* inside process_input: the batch is flushed at its end */
    C_CLOSING = 1u << 1,     /* hp_stream_close() called */
    C_CLOSED = 1u << 2,      /* close callback ran */
    C_LINGER = 1u << 3,      /* last response queued, half-closed, draining input */
    C_RESUME = 1u << 4,      /* on the server's resume list */
    C_PEER_EOF = 1u << 5,    /* the client stopped sending */
    C_CLOSE_AFTER = 1u << 6, /* close once the queued writes are done */
    C_SHUT = 1u << 7,        /* hp_stream_shutdown() called */
    C_ABORT = 1u << 8,       /* close with pending_err at the next safe point */
    C_FRESH = 1u << 9,       /* a response completed: the next settle() restarts the deadline */
    C_WROTE = 1u << 10,      /* a write was made: from the second on, TCP_NODELAY is set */
    C_NODELAY = 1u << 11,    /* TCP_NODELAY is set */
};

struct http_conn {
    struct hp_stream stream;         /* stream.data is the server (see conn_srv()) */
    struct http_conn *tprev, *tnext; /* timeout list */
    struct http_conn *resume_next;
    struct req_blk *rq;
    struct out_blk *out; /* being built, not queued */
    uint64_t deadline;
    size_t wq_mark; /* write queue size when the write timeout was armed */
    uint32_t nrequests;
    int pending_err;
    uint32_t inflight; /* out blocks queued on the stream (at most MAX_INFLIGHT) */
    uint16_t flags;
    uint8_t tclass;
};

/*
 * A pre-rendered response head prefix: status line, Date, Server and
 * Content-Type, for one (status, content type) pair. Valid while gen equals
 * the server's date_gen, i.e. until the Date line changes.
 */
#define HEAD_CT_MAX 64
#define HEAD_N      4

struct head_prefix {
    uint32_t gen;
    uint16_t status; /* 0: unused */
    uint16_t ct_len;
    uint16_t len;
    char ct[HEAD_CT_MAX];
    char bytes[48 + 128 + 16 + HEAD_CT_MAX]; /* status line, common, Content-Type line */
};

static inline struct hp_http_server *conn_srv(const struct http_conn *c)
{
    return (struct hp_http_server *)c->stream.data;
}

struct hp_http_server {
    struct hp_loop *loop;
    struct hp_http_server_opts opts; /* defaults filled in */
    struct hp__http_limits limits;
    struct hp_allocator alloc;
    struct hp_listener listener;
    bool listening;
    bool shutting_down;
    struct hp_timer timer; /* the earliest deadline of the lists */
    struct hp_timer grace;
    struct hp_defer defer; /* resumes connections, reports shutdown */
    struct conn_list lists[T_COUNT];
    struct http_conn *resume_head;
    hp_http_shutdown_cb *shutdown_cb;
    size_t nconns;
    /*
     * With on_log: the peer text of each connection, by descriptor, filled
     * by its first request and cleared when a new connection gets the fd.
     */
    struct peer_slot *peers;
    size_t npeers;
    size_t orphans; /* request blocks still held by handlers after their connection ended */
    struct req_blk *rq_pool;
    struct out_blk *out_pool;
    struct out_blk *dead_files; /* file blocks the stream refused: done runs from the defer */
    size_t rq_pool_n, out_pool_n;
    size_t rq_size;
    /* Date and Server lines, rendered once per second. */
    uint64_t date_next;
    uint32_t date_gen;  /* bumped whenever common changes */
    unsigned head_next; /* the head_prefix to replace next */
    size_t common_len;
    char common[128];
    struct head_prefix heads[HEAD_N];
    char server_name[65];
    uint32_t timeouts[T_COUNT];
};

/* Default output block payload; bigger responses grow a private block. */
#define OUT_BLK_SIZE  (4096 - sizeof(struct out_blk))
#define POOL_MAX      1024
#define LINGER_MS     5000
#define REQ_HDRS_INIT 256
#define MAX_INFLIGHT  (1u << 20) /* queued output blocks per connection: -ENOBUFS beyond */

/* alloc.c */
struct hp_allocator hp__http_libc_allocator(void);
void *hp__http_alloc(struct hp_http_server *srv, size_t n);
void *hp__http_realloc(struct hp_http_server *srv, void *p, size_t n);
void hp__http_free(struct hp_http_server *srv, void *p);

/* date.c */
void hp__http_date_refresh(struct hp_http_server *srv);

/* Keep the Date line current: it is rendered again at most once per second. */
static inline void hp__http_date_check(struct hp_http_server *srv)
{
    if (hp_loop_now(srv->loop) >= srv->date_next)
        hp__http_date_refresh(srv);
}

/* response.c */
int hp__http_out_grow(struct http_conn *c, size_t n);

void hp__http_out_release(struct hp_http_server *srv, struct out_blk *b);
/* Run @p b's file callback (set) with @p status, once. */
void hp__http_out_file_done(struct out_blk *b, int status);
/* A file block the stream refused: its file callback runs from the server's defer. */
void hp__http_out_park(struct hp_http_server *srv, struct out_blk *b, int err);
/* The server's defer: run the parked file callbacks, release their blocks. */
void hp__http_out_reap(struct hp_http_server *srv);
/*
 * render.c: append the server's own response @p status (the error-page
 * hook's body or "<status> <phrase>: <reason>"), Connection: close; no body
 * if @p no_body. *@p body_len: the body bytes sent. 0 or -ENOMEM.
 */
int hp__http_error_response(struct http_conn *c, int status, const char *reason, bool no_body,
                            uint64_t *body_len);
/*
 * render.c: the 503 for a connection refused at accept into @p buf (@p cap
 * bytes, at least 128): with the error-page hook's page if it fits; its length.
 */
size_t hp__http_refusal(const struct hp_http_server *srv, const char *reason, char *buf,
                        size_t cap);
void hp__http_send_continue(struct http_conn *c);

/* conn.c: tell on_log that @p rq is over (@p status as in hp_http_log_entry). */
void hp__http_log(struct hp_http_server *srv, struct req_blk *rq, int status);

/* conn.c: called by server.c */
int hp__http_conn_new(struct hp_http_server *srv, int fd);
void hp__http_conn_resume(struct http_conn *c);
void hp__http_conn_expire(struct http_conn *c);
void hp__http_conn_shutdown(struct http_conn *c);
void hp__http_conn_close(struct http_conn *c, int status);

/* conn.c: called by response.c */
void hp__http_response_done(struct http_conn *c);
void hp__http_flush(struct http_conn *c);
/* Queue c->out, which holds a file body (hp_http_reply_file()), now. */
void hp__http_flush_file(struct http_conn *c);
void hp__http_conn_abort(struct http_conn *c, int status);

/* Make room for @p n more bytes in the current output block; 0 or -ENOMEM. */
static inline int hp__http_out_reserve(struct http_conn *c, size_t n)
{
    const struct out_blk *b = c->out;

    if (b != NULL && b->cap - b->len >= n)
        return 0;
    return hp__http_out_grow(c, n);
}

/* Append @p n bytes to the current output block (reserved with hp__http_out_reserve()). */
static inline void hp__http_out_put(struct http_conn *c, const void *p, size_t n)
{
    memcpy(c->out->data + c->out->len, p, n);
    c->out->len += n;
}

static inline struct req_blk *hp__http_rq(struct hp_http_req *req)
{
    return (struct req_blk *)(void *)req;
}

/* The request's connection, or NULL once the client is gone (orphaned). */
static inline struct http_conn *hp__http_conn(struct hp_http_req *req)
{
    return hp__http_rq(req)->conn;
}

/* conn.c: finish an orphaned request (its handler is done with it). */
void hp__http_orphan_finish(struct req_blk *rq);
/* conn.c: a pending drain callback runs with -ECANCELED (the request is being finished). */
void hp__http_drain_cancel(struct req_blk *rq);

/*
 * request.c: the peer address text of @p rq (HP_HTTP_PEER_STRLEN bytes
 * readable) and its length, or NULL; for the access log.
 */
const char *hp__http_peer_text(struct req_blk *rq, size_t *len);

/* request.c: make srv->peers hold slot @p fd; 0 or -ENOMEM. */
int hp__http_peer_slot(struct hp_http_server *srv, int fd);

/* request.c: the arena's extra chunks go back (the request is recycled). */
void hp__http_arena_free(struct req_blk *rq);

#endif
