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
 * Lifetimes, in one place (the libuv rule: what you were handed you must
 * give back, and until then it stays valid whatever the client does):
 * - A handler call (on_request, or on_head) hands you the request: you hold
 *   it until you FINISH it, exactly once, by one of
 *     hp_http_reply()         (whatever it returns),
 *     hp_http_reply_file()    (unless -EINVAL or -ENOBUFS),
 *     hp_http_stream_end()    (whatever it returns),
 *     hp_http_req_release()   (give up: the server answers 500 if nothing
 *                              was sent yet, or cuts a started response),
 *     returning a negative errno from the handler call.
 *   You may finish it inside the handler call or at any later time from any
 *   callback on the loop's thread (a timer, a database reply, ...). The one
 *   exception: on_head returning 0 without having started a response or
 *   called hp_http_req_read_body() hands the request back to the server,
 *   which buffers the body and hands it to you again with on_request.
 * - Until you finish it, the struct and everything it points to stay valid
 *   even if the client goes away, the connection times out or the server
 *   shuts down. The request is then *closed*: on_abort (optional) tells you
 *   so once, and every later call on it (replies, streaming, headers,
 *   hp_http_req_on_drain) returns HP_ECLOSED and writes nothing anywhere;
 *   you still finish it (hp_http_reply() or hp_http_req_release() do, and
 *   return HP_ECLOSED). No other request or connection ever sees its memory
 *   before it is finished.
 * - Once you have finished it, the request is gone: its memory goes back to
 *   the server for the next request. Touching it then is a use after free;
 *   debug builds (no NDEBUG) never recycle request blocks and assert on a
 *   finished block, so ASan and valgrind name the culprit.
 * - Views: method, target, path, query, body, the header names and values,
 *   every hp_str the lookup functions return, and memory from
 *   hp_http_req_alloc(), keep their address and their bytes until you
 *   finish the request, even while the client pipelines more requests or
 *   body bytes behind it. Copy what you need beyond that.
 * - Bytes passed to the reply functions are copied before they return
 *   (hp_http_reply_file() borrows its descriptor instead, until its callback).
 * - The server cannot be freed while any request is held:
 *   hp_http_server_free() returns -EBUSY, and the shutdown callback waits
 *   until every held request is finished.
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
 * server shut down (-ECANCELED). Runs at most once per request, from the
 * loop. A request you hold stays valid after this returns: you still
 * finish it (calls on it now return HP_ECLOSED). A request you do not hold
 * (between on_head returning 0 and on_request) is gone once this returns.
 */
typedef void hp_http_abort_cb(struct hp_http_req *req, int status);

/**
 * See hp_http_req_on_drain(): @p status is 0 (the output queue is down to
 * the low-water mark), HP_ECLOSED (the request is closed: nothing more can
 * be sent) or -ECANCELED (you finished the request while waiting).
 */
typedef void hp_http_drain_cb(struct hp_http_req *req, int status);

/** The request methods the parser recognises; others are HP_HTTP_OTHER. */
enum hp_http_method {
    HP_HTTP_OTHER = 0,
    HP_HTTP_GET,
    HP_HTTP_HEAD,
    HP_HTTP_POST,
    HP_HTTP_PUT,
    HP_HTTP_DELETE,
    HP_HTTP_OPTIONS,
    HP_HTTP_CONNECT, /* never reaches a handler: the server answers 501 */
    HP_HTTP_TRACE,
    HP_HTTP_PATCH,
};

/** What the server knows of a request once it is over (see hp_http_log_cb). */
struct hp_http_log_entry {
    int status;          /**< Status sent; 499 if the client left first; 0 if none was sent. */
    uint64_t body_bytes; /**< Response body bytes handed over (not for HEAD). */
    uint64_t start_ms;   /**< hp_loop_now() when the request's first byte was read. */
    uint64_t end_ms;     /**< hp_loop_now() when it ended. */
    bool parsed;         /**< The head was parsed: method, target and headers are valid. */
};

/**
 * A request is over (its response is complete, the server answered it with
 * an error, or its client left): called once per request that got a byte
 * in, before its memory is reused, with the views still valid when
 * @p e->parsed. For access logs (see accesslog.h). Must not call anything
 * on @p req but the read-only request functions.
 */
typedef void hp_http_log_cb(void *ctx, const struct hp_http_req *req,
                            const struct hp_http_log_entry *e);

/** Longest body an error-page hook may supply (bytes); a longer one is ignored. */
#define HP_HTTP_ERROR_PAGE_MAX (64u * 1024u)

/** An error page: what hp_http_error_page_cb supplies. */
struct hp_http_error_page {
    /** The Content-Type value ("text/html; charset=utf-8"); empty: no Content-Type line. */
    struct hp_str content_type;
    /** The body, at most HP_HTTP_ERROR_PAGE_MAX bytes. */
    struct hp_str body;
};

/**
 * Supplies the body of a response the server makes itself: 400 (a
 * malformed request), 408 (a head or body not received in time), 413, 414,
 * 431, 500 (a handler that failed or released its request without a
 * reply), 501, 505 and any other error status the server answers with
 * before closing the connection, and the 503 for a connection refused at
 * max_connections or during shutdown (sent in one best-effort write: a page
 * that does not fit 4 KiB with its head gets the default, empty, body).
 * (Responses your handlers send, and the router's 404/405, which the router
 * lets you replace, do not come here.)
 *
 * Runs synchronously on the loop's thread, while the server renders the
 * response: it must not block and must not call into the server. @p status
 * is the status being sent; @p reason the one-line text of the default body
 * ("invalid character in method"; never NULL; from the parser, not from the
 * client). Fill @p out and return 0 to send that body, or return anything
 * else to send the default one ("<status> <phrase>: <reason>\n",
 * text/plain). The server copies (or writes out) the bytes @p out points
 * to before it calls anything else of the application's: they need not
 * outlive that.
 *
 * The server keeps the framing: it writes the status line, Date, Server,
 * Content-Length (the body's length), Connection: close, and for a HEAD
 * request no body. A Content-Type that is not a valid field value (a CR, LF
 * or other control byte) or a body over HP_HTTP_ERROR_PAGE_MAX makes the
 * server send the default body instead.
 */
typedef int hp_http_error_page_cb(void *data, int status, const char *reason,
                                  struct hp_http_error_page *out);

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
    /**
     * Largest request body (declared or de-chunked): 413 above. Default 1
     * MiB. At most (1 GiB - max_header_bytes - 16 KiB) * 8 / 9 (about 910
     * MiB with the defaults): a buffered body, its head and chunk framing
     * must fit the connection's 1 GiB input cap.
     */
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
    /**
     * Response bytes a connection may have queued for the kernel:
     * hp_http_stream_write() refuses a piece with -ENOBUFS that would take
     * the queue past this (a piece is always taken when nothing is queued).
     * Default 4 MiB.
     */
    size_t max_output;
    /** Optional: called once per request when it is over (access logs). */
    hp_http_log_cb *on_log;
    /** First argument of on_log. */
    void *log_ctx;
    /** Optional: the body of the server's own error responses (see hp_http_error_page_cb). */
    hp_http_error_page_cb *error_page;
    /** First argument of error_page. */
    void *error_page_data;
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
    enum hp_http_method method_id; /**< The method as an enum (HP_HTTP_OTHER if unknown). */
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
 * Free a server that has no connections left and no requests held by
 * handlers (after the shutdown callback, or one that never accepted any).
 * @return 0, or -EBUSY (nothing freed) while connections or held requests
 *         remain.
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

/** hp_http_req_header() with the name as an hp_str. */
HP_API bool hp_http_req_header_str(const struct hp_http_req *req, struct hp_str name,
                                   struct hp_str *value);

/** Longest address text hp_http_req_peer_str() writes, NUL included. */
#define HP_HTTP_PEER_STRLEN 48

/**
 * The client's address (getpeername(2) of the connection, asked once per
 * request and kept with it, so it stays available after the client left).
 * @param buf receives the address as text ("192.0.2.1", "2001:db8::1";
 *            IPv4-mapped IPv6 addresses as IPv4), NUL-terminated; "unix"
 *            for other families.
 * @param port receives the port (0 for other families); may be NULL.
 * @return 0, -ENOSPC (@p len too short: HP_HTTP_PEER_STRLEN always fits),
 *         HP_ECLOSED (closed before the address was asked), or
 *         getpeername's -errno.
 */
HP_API int hp_http_req_peer_str(struct hp_http_req *req, char *buf, size_t len, uint16_t *port);

/** True once the request is closed (the client is gone; see the lifetime rules). */
HP_API bool hp_http_req_closed(const struct hp_http_req *req);

/**
 * Finish a request without (completing) a response: if nothing was sent the
 * server answers 500 and closes the connection; a started response is cut
 * off (the connection closes). Any pending drain callback runs first, with
 * -ECANCELED. @p req is gone when this returns.
 */
HP_API void hp_http_req_release(struct hp_http_req *req);

/**
 * Per-request memory: @p n bytes, aligned for any object, valid until the
 * request is finished (then freed with it). Small allocations come from
 * inside the request block; nothing to free.
 * @return the memory, or NULL (out of memory, or @p n is 0 or over 1 GiB).
 */
HP_API void *hp_http_req_alloc(struct hp_http_req *req, size_t n);

/**
 * Back-pressure for streamed responses: call @p cb once, on a later loop
 * iteration, when the bytes of this connection's responses not yet taken
 * by the kernel (hp_http_req_queued()) are at most @p low_water — at once
 * (next iteration) if they already are. A second call replaces the first
 * one's callback and mark. If the request closes first, @p cb gets
 * HP_ECLOSED (before on_abort, which does not follow if @p cb finishes the
 * request); finishing the request while waiting runs @p cb with -ECANCELED
 * first.
 * @return 0; HP_ECLOSED (closed; @p cb never runs); -EINVAL (@p cb NULL).
 */
HP_API int hp_http_req_on_drain(struct hp_http_req *req, size_t low_water, hp_http_drain_cb *cb);

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
 *         name, or the response already started); -ENOMEM; HP_ECLOSED.
 */
HP_API int hp_http_add_header(struct hp_http_req *req, struct hp_str name, struct hp_str value);

/**
 * Send the whole response: status line, Date, Server, @p content_type
 * (omitted if its len is 0), Content-Length: @p len, the added headers and
 * the body (not for HEAD, nor for status 1xx, 204, 304). The bytes are
 * copied. It finishes the request whatever it returns, except -EINVAL.
 * @param status 200..599 (1xx are not final responses: -EINVAL).
 * @return 0; -EINVAL (bad status, or a response already started: nothing
 *         changed, the request is still yours); -ENOMEM (the connection is
 *         closed); or HP_ECLOSED (the request is closed: nothing was sent).
 */
HP_API int hp_http_reply(struct hp_http_req *req, int status, struct hp_str content_type,
                         const void *body, size_t len);

/**
 * The server is done with a file body given to hp_http_reply_file().
 * @param arg    as given to hp_http_reply_file().
 * @param status 0: every byte was handed to the kernel; a negative errno:
 *               the connection ended first (-ECANCELED: closed or shut
 *               down; -EPIPE, -ECONNRESET: the client left; -ENODATA: the
 *               file was shorter than the range, and the connection was cut
 *               after the bytes that were true).
 */
typedef void hp_http_file_cb(void *arg, int status);

/**
 * Send the whole response as hp_http_reply() does (same head, with
 * Content-Length: @p len), its body being @p len bytes of the file @p fd
 * from @p offset, sent with sendfile(2) straight from the page cache (no
 * copy in user space; pread + write where the platform has no sendfile).
 * Responses before it go out before it, later ones (pipelined requests)
 * after it. HEAD (and 204, 304) sends the head only.
 *
 * Ownership: when it returns 0 the server borrows @p fd (not its file
 * position, which is neither used nor moved) until @p done runs: exactly
 * once, on a later loop iteration, after the request is finished (so it
 * must not touch @p req). Keep @p fd open until then. With any other result
 * @p done never runs and @p fd is yours again at once.
 *
 * Back-pressure: refused with -ENOBUFS (nothing changed, the request is
 * still yours: wait with hp_http_req_on_drain(), then call again) while the
 * connection's queued output (hp_http_req_queued()) is over max_output; the
 * file's bytes count toward it until they are sent.
 * @return 0 (finished); -EINVAL (as hp_http_reply(), or @p done NULL,
 *         @p offset < 0, @p fd < 0 with @p len > 0: nothing changed, still
 *         yours); -ENOBUFS (see above; still yours); -ENOMEM (the connection
 *         is closed; finished); HP_ECLOSED (the request is closed: nothing
 *         was sent; finished).
 */
HP_API int hp_http_reply_file(struct hp_http_req *req, int status, struct hp_str content_type,
                              int fd, int64_t offset, size_t len, hp_http_file_cb *done, void *arg);

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
 *         -ENOBUFS (the output queue is over max_output: wait with
 *         hp_http_req_on_drain(), then write again; nothing was taken);
 *         -ENOMEM; HP_ECLOSED (the request is closed).
 */
HP_API int hp_http_stream_write(struct hp_http_req *req, const void *data, size_t len);

/**
 * Finish a streamed response; this finishes the request whatever it
 * returns, except -EINVAL. Ending short of a declared length closes the
 * connection after the bytes sent (the client sees a truncated body).
 * @return 0; -EINVAL (no stream was started: nothing changed); -EPROTO
 *         (short of the declared length); HP_ECLOSED.
 */
HP_API int hp_http_stream_end(struct hp_http_req *req);

/**
 * Bytes of this connection's responses not yet handed to the kernel (0 once
 * the request is closed).
 */
HP_API size_t hp_http_req_queued(const struct hp_http_req *req);

/**
 * Redirect: a @p status (301, 302, 303, 307 or 308) reply with Location:
 * @p location (sent as given: build it with the router's URL helpers or
 * percent-encode it yourself) and a short text body. Finishes the request
 * as hp_http_reply() does.
 * @return as hp_http_reply(); -EINVAL also for another status, or CR, LF
 *         or NUL in @p location.
 */
HP_API int hp_http_redirect(struct hp_http_req *req, int status, struct hp_str location);

/** The reason phrase of @p status ("Not Found"), or "Unknown". Static. */
HP_API const char *hp_http_status_reason(int status);

#endif
