/**
 * @file http.h
 * An HTTP/1.1 server on a hellepoll loop.
 *
 * A server listens on one address, parses requests strictly (RFC 9112
 * framing; anything ambiguous is answered with a 4xx and the connection is
 * closed) and calls your handler with a struct hp_http_req. The handler
 * answers with hp_http_reply() (a buffered reply whose Content-Length the
 * server computes) or with hp_http_stream_start()/_write()/_end() (chunked,
 * or with a declared length), either before it returns or later, from any
 * callback on the loop's thread. Keep-alive, pipelining (responses strictly
 * in request order), HEAD, Expect: 100-continue, timeouts and connection
 * limits are handled by the server.
 *
 * Threading: a server belongs to its loop's thread. Run one loop and one
 * server per thread (with hp_http_server_opts.listen.reuseport) to use
 * several cores.
 *
 * Lifetimes, in one place:
 * - a struct hp_http_req is owned by the server. It is valid from the
 *   handler call until the response is complete (hp_http_reply() or
 *   hp_http_stream_end() returned) or until on_abort returned, whichever
 *   comes first; never touch it afterwards.
 * - the views in a request (method, target, path, query, body, header
 *   names and values) point into the connection's read buffer. They stay
 *   valid, and are kept up to date by the server, for as long as the
 *   request is valid; copy what you need beyond that.
 * - bytes passed to the reply functions are copied before they return.
 */
#ifndef HP_HTTP_H
#define HP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/loop.h>
#include <hellepoll/tcp.h>

struct hp_http_server;
struct hp_http_req;

/**
 * A request handler (on_request or on_head).
 * Runs on the loop's thread from the connection's read callback. It may
 * reply before returning, or return 0 and reply later.
 * @return 0; or a negative errno, after which the server answers 500 (if
 *         no response was started), closes the connection and forgets the
 *         request (on_abort is not called for it).
 */
typedef int hp_http_handler(struct hp_http_req *req);

/**
 * A piece of a streamed request body (see hp_http_req_read_body()).
 * @param data the piece, valid for this call only; NULL with @p len 0 once
 *             at the end of the body.
 * @return 0, or a negative errno as for hp_http_handler.
 */
typedef int hp_http_body_cb(struct hp_http_req *req, const void *data, size_t len);

/**
 * The request ended before the handler completed its response: the client
 * went away (HP_EOF, -ECONNRESET), a timeout struck (-ETIMEDOUT), writing
 * failed (-EPIPE, ...), the request body was malformed (-EBADMSG), or the
 * server shut down (-ECANCELED). Free your per-request state here; @p req
 * is invalid once this returns. Must not call reply functions.
 */
typedef void hp_http_abort_cb(struct hp_http_req *req, int status);

/** hp_http_server_shutdown() finished: every connection is closed. */
typedef void hp_http_shutdown_cb(struct hp_http_server *srv);

/**
 * Server options. Zero means the default for every field; the defaults
 * follow nginx's.
 */
struct hp_http_server_opts {
    /**
     * Required. Called once per request when the head and the whole body
     * (up to max_body bytes, de-chunked) have arrived; req->body holds it.
     */
    hp_http_handler *on_request;
    /**
     * Optional. Called as soon as the head is parsed, before the body. It
     * may reply at once (the body is then not read, no 100 Continue is
     * sent, and the connection closes after the reply if a body was
     * announced), call hp_http_req_read_body() to stream the body (then
     * on_request is not called), or just return 0 to have the body
     * buffered and on_request called.
     */
    hp_http_handler *on_head;
    /** Optional: see hp_http_abort_cb. */
    hp_http_abort_cb *on_abort;
    /** User pointer, returned by hp_http_server_data(). */
    void *data;
    /** Allocator for connections and buffers; all NULL means libc. */
    struct hp_allocator alloc;
    /** Listening address and port (port 0 picks a free one); see tcp.h. */
    struct hp_listener_opts listen;
    /** Do not listen: connections come from hp_http_server_adopt() only. */
    bool no_listen;
    /** Value of the Server header; NULL means "hellepoll", "" means none. */
    const char *server_name;

    /** Longest request-target, in bytes: 414 above. Default 8192. */
    uint32_t max_target;
    /** Largest request head (request line and fields): 431 above. Default 32768. */
    uint32_t max_header_bytes;
    /** Most header fields per request: 431 above. Default 100. */
    uint32_t max_headers;
    /** Largest request body (declared or de-chunked): 413 above. Default 1 MiB. */
    uint64_t max_body;
    /** Time to receive a whole request head (slowloris guard). Default 60000 ms. */
    uint32_t header_timeout_ms;
    /** Longest pause between two reads of a request body: 408. Default 60000 ms. */
    uint32_t body_timeout_ms;
    /** Idle time allowed between keep-alive requests. Default 75000 ms. */
    uint32_t keepalive_timeout_ms;
    /** Longest time a response write may make no progress. Default 60000 ms. */
    uint32_t write_timeout_ms;
    /** Open connections at most; more are closed at accept. Default 1024. */
    uint32_t max_connections;
    /** Requests served on one connection before it is closed. Default 1000. */
    uint32_t max_keepalive_requests;
};

/**
 * A request. The fields documented here are read-only views (see the
 * lifetime rules at the top of this file); only @c data is yours to write.
 */
struct hp_http_req {
    void *data;                    /**< User pointer, NULL at first. */
    struct hp_http_server *server; /**< The server the request came in on. */
    struct hp_loop *loop;          /**< The server's loop, for timers and defers. */
    struct hp_str method;          /**< "GET", "POST", ... (case-sensitive). */
    struct hp_str target;          /**< The request-target as sent. */
    struct hp_str path;            /**< Path part of the target ("/" for "http://h"). */
    struct hp_str query;           /**< After '?', without it; len 0 if none. */
    struct hp_str body;            /**< Buffered body, in on_request only. */
    int version_minor;             /**< 0 for HTTP/1.0, 1 for HTTP/1.1. */
    void *_conn;
};

/**
 * Create a server on @p loop and start listening (unless opts->no_listen).
 * @param out  receives the server; untouched on failure.
 * @param loop borrowed; must outlive the server.
 * @param opts borrowed for the call: the server copies what it keeps
 *             (server_name included); listen.host is only used during it.
 * @return 0; -EINVAL (no on_request, a limit beyond its maximum: 65,535
 *         headers, 1 GiB of head or target, 1 TiB of body; or a
 *         server_name over 64 bytes or with CR/LF); -ENOMEM; or the
 *         listener's -errno (-EADDRINUSE, ...).
 */
HP_API HP_NODISCARD int hp_http_server_new(struct hp_http_server **out, struct hp_loop *loop,
                                           const struct hp_http_server_opts *opts);

/**
 * The port the server listens on, or a negative errno (-EINVAL when it does
 * not listen).
 */
HP_API int hp_http_server_port(const struct hp_http_server *srv);

/** The opts.data pointer given at creation. */
HP_API void *hp_http_server_data(const struct hp_http_server *srv);

/** Number of open connections. */
HP_API size_t hp_http_server_connections(const struct hp_http_server *srv);

/**
 * Serve the connected stream socket @p fd, which the server now owns (it
 * closes it, also on failure). For tests and for servers with their own
 * accept loop.
 * @return 0, -EBUSY (shutting down or max_connections reached), -ENOMEM
 *         or hp_stream_init()'s -errno.
 */
HP_API int hp_http_server_adopt(struct hp_http_server *srv, int fd);

/**
 * Stop gracefully: stop accepting, close idle connections now, let
 * requests in progress finish (their responses say Connection: close),
 * and after @p grace_ms close whatever is left (their handlers get on_abort
 * with -ECANCELED). @p cb (may be NULL) runs once, on a later iteration,
 * when the last connection has closed. Calling it twice does nothing.
 */
HP_API void hp_http_server_shutdown(struct hp_http_server *srv, uint32_t grace_ms,
                                    hp_http_shutdown_cb *cb);

/**
 * Free a server that has no connections left (after the shutdown callback,
 * or one that never accepted any).
 * @return 0, or -EBUSY (nothing freed) while connections remain.
 */
HP_API int hp_http_server_free(struct hp_http_server *srv);

/* ---- request ----------------------------------------------------------- */

/** Number of header fields, in arrival order. */
HP_API size_t hp_http_req_header_count(const struct hp_http_req *req);

/**
 * The @p i th header field (0-based, arrival order, original case, value
 * without surrounding whitespace).
 * @return true, or false if @p i is out of range (outputs untouched).
 */
HP_API bool hp_http_req_header_at(const struct hp_http_req *req, size_t i, struct hp_str *name,
                                  struct hp_str *value);

/**
 * Look a header up by name, case-insensitively; the first match wins.
 * @param name NUL-terminated, borrowed for the call.
 * @return true and the value in *value, or false (value untouched).
 */
HP_API bool hp_http_req_header(const struct hp_http_req *req, const char *name,
                               struct hp_str *value);

/**
 * From on_head only: stream the body to @p cb in pieces as it arrives
 * (sending 100 Continue first if the client asked for it). @p cb runs from
 * the read callback, never inside this call; the last call has len 0.
 * @return 0; -EINVAL (not in on_head, or called twice).
 */
HP_API int hp_http_req_read_body(struct hp_http_req *req, hp_http_body_cb *cb);

/* ---- response ---------------------------------------------------------- */

/**
 * Add a response header field, sent with the next reply or stream start.
 * Name and value are copied. Content-Length, Transfer-Encoding, Date and
 * Server are the server's (-EINVAL). "Connection: close" is honoured: the
 * connection closes after this response.
 * @return 0; -EINVAL (invalid name, CR/LF/NUL in the value, a reserved
 *         name, or the response already started); -ENOMEM.
 */
HP_API int hp_http_add_header(struct hp_http_req *req, struct hp_str name, struct hp_str value);

/**
 * Send the whole response: status line, Date, Server, @p content_type
 * (omitted if its len is 0), Content-Length: @p len, the added headers and
 * the body (not for HEAD, nor for status 1xx, 204, 304). The bytes are
 * copied; the request is complete when this returns 0.
 * @param status 200..599 (1xx are not final responses: -EINVAL).
 * @return 0; -EINVAL (bad status, or a response already started);
 *         -ENOMEM; or HP_ECLOSED if the connection is gone (the request is
 *         then complete too).
 */
HP_API int hp_http_reply(struct hp_http_req *req, int status, struct hp_str content_type,
                         const void *body, size_t len);

/**
 * Start a streamed response. @p content_length -1 means unknown: the body
 * is sent chunked to HTTP/1.1 clients, and to HTTP/1.0 clients delimited by
 * closing the connection. Otherwise exactly that many bytes must follow.
 * @return as hp_http_reply().
 */
HP_API int hp_http_stream_start(struct hp_http_req *req, int status, struct hp_str content_type,
                                int64_t content_length);

/**
 * Send the next piece of a streamed body; copied before return. A piece of
 * length 0 is ignored.
 * @return 0; -EINVAL (not streaming, or more than the declared length);
 *         -ENOMEM; HP_ECLOSED (the connection is gone).
 */
HP_API int hp_http_stream_write(struct hp_http_req *req, const void *data, size_t len);

/**
 * Finish a streamed response; the request is complete once this returns
 * (whatever the result). Ending short of a declared length closes the
 * connection after the bytes sent (the client sees a truncated body).
 * @return 0; -EINVAL (not streaming); -EPROTO (short of the declared
 *         length); HP_ECLOSED.
 */
HP_API int hp_http_stream_end(struct hp_http_req *req);

/**
 * Bytes of this connection's responses not yet handed to the kernel: the
 * back-pressure signal for streamed responses.
 */
HP_API size_t hp_http_req_queued(const struct hp_http_req *req);

/** The reason phrase of @p status ("Not Found"), or "Unknown". Static. */
HP_API const char *hp_http_status_reason(int status);

#endif
