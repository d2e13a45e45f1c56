/**
 * @file tcp.h
 * TCP listeners and byte streams on the loop.
 *
 * A stream owns its descriptor and a read buffer the framework manages: data
 * read from the socket is appended to the stream's input, which the read
 * callback inspects with hp_stream_input() and consumes from the front with
 * hp_stream_consume(). The buffer is allocated when data arrives and released
 * when it is fully consumed, so an idle stream holds no read buffer.
 *
 * Writes are queued requests flushed with writev(2), trying at once when
 * nothing is queued; partial writes continue when the socket is writable.
 * A request may end in a file range (hp_stream_sendfile()), sent with
 * sendfile(2) in its turn.
 * Every completion callback runs on a later loop iteration, never inside the
 * call that started it. Streams are edge-triggered on drivers that support it
 * and registered once (writability is added the first time the socket buffer
 * fills): no per-request syscalls besides the reads and writes themselves.
 *
 * Streams also work on any stream-like descriptor (pipes, socketpairs, Unix
 * sockets); the listener and hp_stream_connect() are TCP only.
 */
#ifndef HP_TCP_H
#define HP_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/io.h>
#include <hellepoll/loop.h>
#include <hellepoll/timer.h>

struct hp_stream;
struct hp_write_req;
struct hp_listener;

/**
 * Data or an end arrived.
 * @param status 0: new bytes are in hp_stream_input(); HP_EOF: the peer shut
 *               down its sending side (the input may still hold unconsumed
 *               bytes; reading stops); -ENOBUFS: the input reached its limit
 *               (hp_stream_set_input_limit()) unconsumed, reading is paused
 *               until bytes are consumed; other negative errno (-ECONNRESET,
 *               ...): the stream failed, reading stops, close it.
 */
typedef void hp_read_cb(struct hp_stream *s, int status);

/**
 * A write request finished.
 * @param status 0 when every byte was handed to the kernel; a negative errno
 *               (-EPIPE, -ECONNRESET, ...) if writing failed; -ECANCELED if
 *               the stream was closed first. The buffers may be reused now.
 */
typedef void hp_write_cb(struct hp_write_req *req, int status);

/** The stream is closed; its memory may be freed or reused from here on. */
typedef void hp_close_cb(struct hp_stream *s);

/** hp_stream_connect() finished: @p status is 0 or a negative errno. */
typedef void hp_connect_cb(struct hp_stream *s, int status);

/** Inline buffer descriptors in a write request before spilling to the heap. */
#define HP_WRITE_INLINE_BUFS 4

/**
 * A write request: caller-allocated, busy from hp_stream_write() to its
 * callback. Zero it before its first use (= {0}, calloc or memset), so a
 * request still busy can be told apart; from its callback on it may be reused.
 */
struct hp_write_req {
    void *data;               /**< User pointer, free for the caller. */
    struct hp_stream *stream; /**< Read-only. */
    hp_write_cb *_cb;
    struct hp_write_req *_next;
    struct hp_buf *_bufs;
    size_t _nbufs, _pos; /* _bufs[_pos.._nbufs) remain to be written */
    size_t _file_left;   /* hp_stream_sendfile(): file bytes to send after the buffers */
    int64_t _file_off;
    int _file_fd;
    int _status;
    int _busy; /* HP__REQ_BUSY from hp_stream_write() until the callback */
    struct hp_buf _inline[HP_WRITE_INLINE_BUFS];
};

/** A byte stream. Fields without a leading underscore are documented. */
struct hp_stream {
    void *data;           /**< User pointer, free for the caller. */
    struct hp_loop *loop; /**< Read-only. */
    struct hp_io _io;
    struct hp_stream *_pnext, *_pprev; /* the loop's list of streams with work pending */
    char *_in;
    uint32_t _in_off, _in_len, _in_cap, _in_limit;
    struct hp_write_req *_wq_head, *_wq_tail;     /* queued, not fully written */
    struct hp_write_req *_done_head, *_done_tail; /* finished, callback pending */
    size_t _wq_bytes;
    hp_read_cb *_read_cb;
    union {
        hp_connect_cb *connect; /* until connected */
        hp_close_cb *close;     /* from hp_stream_close() */
    } _cb;
    int _error;
    unsigned _flags;
};

/**
 * Make a stream of the connected descriptor @p fd, which the stream now owns
 * (hp_stream_close() closes it; on failure it stays the caller's). It must be
 * the only descriptor for its socket while the stream is open (no dup(2)),
 * since closing it is what takes it out of epoll or kqueue. The fd is
 * made non-blocking if it is not already (descriptors from a listener are,
 * and cost no extra syscall beyond one check).
 * @return 0, -EEXIST (fd already watched), -ENOMEM or the driver's -errno.
 */
HP_API HP_NODISCARD int hp_stream_init(struct hp_loop *loop, struct hp_stream *s, int fd);

/**
 * Connect to @p host (a numeric IPv4 or IPv6 address; no DNS) port @p port.
 * @p cb runs once with the result. On success the stream is ready; on failure
 * it must still be closed with hp_stream_close().
 * @return 0, or -EINVAL (not a numeric address), -ENOMEM (the loop's fd
 *         table could not grow), or socket()/connect()'s -errno; then @p cb
 *         never runs and nothing needs closing.
 */
HP_API HP_NODISCARD int hp_stream_connect(struct hp_loop *loop, struct hp_stream *s,
                                          const char *host, uint16_t port, hp_connect_cb *cb);

/**
 * Start delivering input to @p cb (replacing any previous callback). Input
 * already buffered is delivered on the next iteration.
 * @return 0, or HP_ECLOSED if the stream is closing or reading has ended.
 */
HP_API int hp_stream_read_start(struct hp_stream *s, hp_read_cb *cb);

/** Pause reading; the kernel buffers, then TCP pushes back on the peer. */
HP_API void hp_stream_read_stop(struct hp_stream *s);

/**
 * Unconsumed input, valid until the next call of hp_stream_consume() or
 * return to the loop (the buffer may move when more is read). The bytes may
 * be modified in place (e.g. to decode chunked data), not beyond .len.
 */
HP_API struct hp_buf hp_stream_input(const struct hp_stream *s);

/** Drop @p n bytes (at most the input's length) from the front of the input. */
HP_API void hp_stream_consume(struct hp_stream *s, size_t n);

/**
 * Input bytes taken out of a stream by hp_stream_take_input(): they stay at
 * their address until hp_stream_chunk_free(). Zero it before first use.
 */
struct hp_stream_chunk {
    void *_mem;
    size_t _cap;
};

/**
 * Take the first @p n bytes of the input (1 <= n <= its length) out of the
 * stream without moving them: they stay at hp_stream_input(s).base .. + n,
 * now owned by @p out, while the stream goes on with the rest of the input,
 * moved to a buffer of its own. For a consumer whose views into the input
 * must outlive further reads (a request held by an asynchronous handler).
 * When @p n is the whole input nothing is allocated and it cannot fail.
 * @return 0; -EINVAL (n out of range, or @p out holds a chunk); -ENOMEM
 *         (nothing changed).
 */
HP_API HP_NODISCARD int hp_stream_take_input(struct hp_stream *s, size_t n,
                                             struct hp_stream_chunk *out);

/** Free what hp_stream_take_input() gave @p c (nothing if empty); @p c is empty again. */
HP_API void hp_stream_chunk_free(struct hp_loop *loop, struct hp_stream_chunk *c);

/** Cap the input buffer (default 64 KiB; at least 1 KiB, at most 1 GiB). */
HP_API void hp_stream_set_input_limit(struct hp_stream *s, size_t limit);

/**
 * Queue @p nbufs buffers for writing, in order after earlier requests.
 * @p req must be zeroed before its first use (see struct hp_write_req).
 * The descriptors are copied; the bytes are borrowed until @p cb runs.
 * @param cb may be NULL.
 * @return 0; -EINVAL (nbufs == 0 or req busy); -ENOMEM (more than
 *         HP_WRITE_INLINE_BUFS buffers and no memory); HP_ECLOSED (the stream
 *         is closing or shut down for writing); or the stream's earlier write
 *         error. On error @p cb never runs.
 */
HP_API HP_NODISCARD int hp_stream_write(struct hp_stream *s, struct hp_write_req *req,
                                        const struct hp_buf *bufs, size_t nbufs, hp_write_cb *cb);

/**
 * Queue @p nbufs buffers (0 is allowed; @p bufs may then be NULL) followed
 * by @p len bytes of the file @p fd from @p offset, in order with the
 * other writes of @p s. The file part goes with sendfile(2) when it reaches
 * the front of the queue (hp_fs_sendfile(); plain pread + write where the
 * platform or the descriptor pair has no sendfile), straight from the page
 * cache, and resumes whenever the socket has room, on every driver. The
 * bytes count in hp_stream_write_queue_size() until they are sent.
 * @p fd is borrowed: keep it open (and the buffers alive) until @p cb runs;
 * the file position is not used or moved. A file that turns out shorter
 * than @p offset + @p len (it shrank) fails the request with -ENODATA and
 * the stream with it (later writes fail too: the byte sequence is broken),
 * so a protocol can cut the connection instead of sending anything else.
 * @param cb may be NULL; it runs once, on a later iteration: 0 when every
 *        byte was handed to the kernel, -ENODATA (the file ended early), a
 *        read or write error (-EIO, -EPIPE, ...), or -ECANCELED (closed).
 * @return 0; -EINVAL (req busy, offset < 0, bufs NULL with nbufs > 0);
 *         -EBADF (fd < 0 with len > 0); -ENOMEM (more than
 *         HP_WRITE_INLINE_BUFS buffers and no memory); HP_ECLOSED; or the
 *         stream's earlier write error. On error @p cb never runs.
 */
HP_API HP_NODISCARD int hp_stream_sendfile(struct hp_stream *s, struct hp_write_req *req,
                                           const struct hp_buf *bufs, size_t nbufs, int fd,
                                           int64_t offset, size_t len, hp_write_cb *cb);

/**
 * Write what the kernel takes now, without queueing anything and without a
 * callback (the buffers are not used after the call). Useful to skip the
 * request and its callback when a reply usually fits the socket buffer;
 * queue any rest with hp_stream_write().
 * @return bytes written (>= 0, possibly fewer than asked); -EAGAIN if none
 *         could be, or if writes are queued or the stream is connecting (the
 *         order must hold); HP_ECLOSED if closing or shut down; or the
 *         stream's write error (-EPIPE, -ECONNRESET, ...), which later writes
 *         also return.
 */
HP_API ssize_t hp_stream_try_write(struct hp_stream *s, const struct hp_buf *bufs, size_t nbufs);

/** Bytes queued but not yet handed to the kernel: the back-pressure signal. */
HP_API size_t hp_stream_write_queue_size(const struct hp_stream *s);

/**
 * Half-close: once every queued write is flushed, shut down the sending side
 * (the peer reads EOF). Reading goes on. Later writes fail with HP_ECLOSED.
 * @return 0 or HP_ECLOSED.
 */
HP_API int hp_stream_shutdown(struct hp_stream *s);

/**
 * Close the stream: stop reading, cancel queued writes (their callbacks get
 * -ECANCELED, unless already complete), close the descriptor, then call
 * @p cb (may be NULL) on a later iteration. Every write callback still owed
 * runs before @p cb, so @p cb may free the write requests with the stream. Closing twice is a
 * programming error (asserted). Pending data is not flushed: to close after the last write, close
 * from that write's callback.
 */
HP_API void hp_stream_close(struct hp_stream *s, hp_close_cb *cb);

/** True from hp_stream_close() on. */
HP_API bool hp_stream_is_closing(const struct hp_stream *s);

/** The stream's descriptor (for setsockopt and the like; do not close it). */
HP_API int hp_stream_fd(const struct hp_stream *s);

/** Set TCP_NODELAY on a TCP stream. @return 0 or a negative errno. */
HP_API int hp_stream_set_nodelay(struct hp_stream *s, bool on);

/* ---- listeners --------------------------------------------------------- */

/**
 * A connection arrived, or accepting failed.
 * @param fd     with status 0: the new connection, non-blocking and
 *               close-on-exec, now owned by the callee (hp_stream_init() it,
 *               or close it).
 * @param status 0, or a negative errno: -EMFILE/-ENFILE/-ENOBUFS/-ENOMEM
 *               pause accepting for the listener's pause time (no busy
 *               loop), then it resumes by itself; other errors are reported
 *               and accepting goes on.
 */
typedef void hp_accept_cb(struct hp_listener *l, int fd, int status);

/** Options for hp_listener_start(). Zero means the default for each field. */
struct hp_listener_opts {
    /** Numeric address to bind; NULL means "::" (dual-stack IPv6 and IPv4). */
    const char *host;
    /** Port; 0 picks a free one (see hp_listener_port()). */
    uint16_t port;
    /** listen(2) backlog; default 511. */
    int backlog;
    /** Set SO_REUSEPORT, so several loops or processes share the port. */
    bool reuseport;
    /** For an IPv6 host: accept IPv6 only (no v4-mapped). */
    bool ipv6_only;
    /** After EMFILE/ENFILE, pause accepting this long; default 100 ms. */
    unsigned pause_ms;
};

/** A listening socket. */
struct hp_listener {
    void *data;           /**< User pointer, free for the caller. */
    struct hp_loop *loop; /**< Read-only. */
    struct hp_io _io;
    struct hp_timer _pause;
    hp_accept_cb *_cb;
    unsigned _pause_ms;
    bool _paused; /* by hp_listener_pause() */
};

/**
 * Bind, listen and start accepting. Accepts until EAGAIN on every readiness
 * event. SO_REUSEADDR is always set.
 * @return 0, -EINVAL (host not a numeric address), -ENOMEM (the loop's fd
 *         table could not grow), or the -errno of socket/bind/listen
 *         (-EADDRINUSE, -EACCES, ...).
 */
HP_API HP_NODISCARD int hp_listener_start(struct hp_loop *loop, struct hp_listener *l,
                                          const struct hp_listener_opts *opts, hp_accept_cb *cb);

/** The bound port, or a negative errno. */
HP_API int hp_listener_port(const struct hp_listener *l);

/**
 * Stop accepting for now (e.g. at a connection limit); the socket stays open
 * and new connections wait in its backlog. Idempotent.
 */
HP_API void hp_listener_pause(struct hp_listener *l);

/**
 * Accept again after hp_listener_pause(). If an EMFILE pause is running,
 * accepting resumes when it ends. @return 0, HP_ECLOSED after stop, or the
 * driver's -errno.
 */
HP_API int hp_listener_resume(struct hp_listener *l);

/** Stop accepting and close the socket at once; the memory may then be freed. */
HP_API void hp_listener_stop(struct hp_listener *l);

#endif
