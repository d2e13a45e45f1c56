/*
 * tcp.c - byte streams and TCP listeners.
 *
 * A stream registers its descriptor once, edge-triggered, for reading; the
 * first write that meets a full socket buffer adds writability for good (one
 * epoll_ctl in the life of a busy stream, none in that of a typical one).
 * Reads happen while the user reads, writes while data is queued. Invariants:
 *  - the input buffer exists iff it holds unconsumed bytes or a read is in
 *    progress; empty buffers go back to the loop's pool;
 *  - everything the user must be told (write completions, the connect
 *    result, buffered input after read_start, reading resumed after the
 *    per-event cap, the close) happens from the loop's stream work phase (a
 *    doubly linked list of streams with work pending, run from one hp_defer
 *    of the loop's), never
 *    inside the API call that caused it;
 *  - a closing stream touches no descriptor; its memory is the user's again
 *    once the close callback has run.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <hellepoll/fs.h>

#include "internal.h"

/* Bits of hp_stream._flags. */
enum {
    S_READING = 1u << 0,    /* the user wants input */
    S_READ_ENDED = 1u << 1, /* EOF or error seen: no more input */
    S_CLOSING = 1u << 2,
    S_SHUT_WANTED = 1u << 3, /* shutdown(SHUT_WR) once the queue is flushed */
    S_SHUT_DONE = 1u << 4,
    S_CONNECTING = 1u << 5,
    S_CONNECT_DONE = 1u << 6, /* connect result waits for the defer */
    S_READ_AGAIN = 1u << 7,   /* the defer should read (or deliver buffered input) */
    S_IN_READ = 1u << 8,      /* inside do_read(): keep the buffer */
    S_FULL = 1u << 9,         /* input at its limit; -ENOBUFS reported */
    S_DELIVER = 1u << 10,     /* read_start: hand buffered input over first */
    S_PEER_HUP = 1u << 11,    /* the peer's FIN came: read to EOF, never stop short */
    S_QUEUED = 1u << 12,      /* on the loop's list of streams with work pending */
    S_WANT_W = 1u << 13,      /* writability is watched (from the first EAGAIN, or connect) */
    S_WRITE_AGAIN = 1u << 14, /* a file write yielded: the defer goes on with it */
    S_NO_SENDFILE = 1u << 15, /* sendfile refused this descriptor pair: pread + write */
};

#define REQ_BUSY            0x5eb05e /* hp_write_req._busy from write to callback; unlikely in garbage */
#define READ_BUDGET         (256u * 1024u) /* bytes read per event before yielding */
#define WRITE_IOVS          64             /* iovecs gathered per writev */
#define FILE_BUDGET         (2u << 20)     /* file bytes sent per flush before yielding */
#define FILE_BOUNCE         16384          /* bounce buffer of the pread + write fallback */
#define CORK_FILE_MAX       (256u * 1024u) /* MSG_MORE on buffers before a file part up to this */
#define DEFAULT_INPUT_LIMIT (64u * 1024u)

/* ---- input buffers ----------------------------------------------------- */

static char *buf_get(struct hp_loop *loop)
{
    if (loop->buf_pool_n)
        return loop->buf_pool[--loop->buf_pool_n];
    return hp__alloc(loop, HP__BUF_SIZE);
}

static void buf_put(struct hp_loop *loop, char *buf, size_t cap)
{
    if (cap == HP__BUF_SIZE && loop->buf_pool_n < HP__BUF_POOL)
        loop->buf_pool[loop->buf_pool_n++] = buf;
    else
        hp__free(loop, buf);
}

void hp__buf_pool_free(struct hp_loop *loop)
{
    while (loop->buf_pool_n)
        hp__free(loop, loop->buf_pool[--loop->buf_pool_n]);
}

static void input_release(struct hp_stream *s)
{
    if (!s->_in)
        return;
    buf_put(s->loop, s->_in, s->_in_cap);
    s->_in = NULL;
    s->_in_off = s->_in_len = s->_in_cap = 0;
}

/* Where reading must stop: the buffer's end, or the limit if that is lower. */
static size_t input_room_end(const struct hp_stream *s)
{
    return s->_in_cap < s->_in_limit ? s->_in_cap : s->_in_limit;
}

/* Make room at the end of the input; 0, -ENOMEM, or -ENOBUFS at the limit. */
static int input_reserve(struct hp_stream *s)
{
    uint32_t cap;
    char *p;

    if (!s->_in) {
        if (!(s->_in = buf_get(s->loop)))
            return -ENOMEM;
        s->_in_cap = HP__BUF_SIZE;
        return 0;
    }
    if (s->_in_off + s->_in_len < input_room_end(s))
        return 0;
    if (s->_in_off) {
        memmove(s->_in, s->_in + s->_in_off, s->_in_len);
        s->_in_off = 0;
        return 0;
    }
    if (s->_in_cap >= s->_in_limit)
        return -ENOBUFS;
    /* Both are at most 1 GiB, so doubling cannot overflow. */
    cap = s->_in_cap * 2 > s->_in_limit ? s->_in_limit : s->_in_cap * 2;
    if (s->_in_cap == HP__BUF_SIZE) {
        /* A pooled buffer is not ours to realloc in place: copy out. */
        if (!(p = hp__alloc(s->loop, cap)))
            return -ENOMEM;
        memcpy(p, s->_in, s->_in_len);
        buf_put(s->loop, s->_in, s->_in_cap);
    } else if (!(p = hp__realloc_array(s->loop, s->_in, cap, 1))) {
        return -ENOMEM;
    }
    s->_in = p;
    s->_in_cap = cap;
    return 0;
}

/* ---- deferred notifications ------------------------------------------- */

static void schedule(struct hp_stream *s)
{
    struct hp_loop *loop = s->loop;

    if (s->_flags & S_QUEUED)
        return;
    s->_flags |= S_QUEUED;
    s->_pnext = NULL;
    s->_pprev = loop->streams_tail;
    if (loop->streams_tail)
        loop->streams_tail->_pnext = s;
    else
        loop->streams_head = s;
    loop->streams_tail = s;
    loop->streams_n++;
    hp_defer_start(&loop->streams_defer);
}

static void unqueue(struct hp_stream *s)
{
    struct hp_loop *loop = s->loop;

    if (!(s->_flags & S_QUEUED))
        return;
    s->_flags &= ~(unsigned)S_QUEUED;
    if (s->_pprev)
        s->_pprev->_pnext = s->_pnext;
    else
        loop->streams_head = s->_pnext;
    if (s->_pnext)
        s->_pnext->_pprev = s->_pprev;
    else
        loop->streams_tail = s->_pprev;
    s->_pnext = s->_pprev = NULL;
    /* Nothing left: the phase need not run (and must not keep the loop alive). */
    if (--loop->streams_n == 0)
        hp_defer_stop(&loop->streams_defer);
}

static void complete(struct hp_stream *s, struct hp_write_req *req, int status)
{
    req->_status = status;
    req->_next = NULL;
    if (s->_done_tail)
        s->_done_tail->_next = req;
    else
        s->_done_head = req;
    s->_done_tail = req;
    schedule(s);
}

static void req_release(struct hp_stream *s, struct hp_write_req *req)
{
    if (req->_bufs != req->_inline)
        hp__free(s->loop, req->_bufs);
    req->_bufs = NULL;
}

static void run_completions(struct hp_stream *s)
{
    while (s->_done_head) {
        struct hp_write_req *req = s->_done_head;

        s->_done_head = req->_next;
        if (!s->_done_head)
            s->_done_tail = NULL;
        req_release(s, req);
        req->_busy = 0;
        if (req->_cb)
            req->_cb(req, req->_status);
    }
}

static void do_read(struct hp_stream *s);
static void flush(struct hp_stream *s);

static void stream_work(struct hp_stream *s)
{
    run_completions(s);
    if (s->_flags & S_CLOSING) {
        if (s->_done_head)
            return; /* a callback wrote again; its completion is already scheduled */
        /* A completion callback may have queued s again: drop it, s is leaving us. */
        unqueue(s);
        s->loop->closing_n--;
        if (s->_cb.close)
            s->_cb.close(s);
        return;
    }
    if (s->_flags & S_CONNECT_DONE) {
        s->_flags &= ~(unsigned)S_CONNECT_DONE;
        s->_cb.connect(s, s->_error);
        if (s->_flags & S_CLOSING)
            return;
    }
    if ((s->_flags & (S_DELIVER | S_READING)) == (S_DELIVER | S_READING) && s->_in_len) {
        s->_flags &= ~(unsigned)S_DELIVER;
        s->_read_cb(s, 0);
    }
    s->_flags &= ~(unsigned)S_DELIVER;
    if ((s->_flags & (S_WRITE_AGAIN | S_CLOSING)) == S_WRITE_AGAIN) {
        s->_flags &= ~(unsigned)S_WRITE_AGAIN;
        flush(s);
    }
    if ((s->_flags & (S_READ_AGAIN | S_CLOSING)) == S_READ_AGAIN) {
        s->_flags &= ~(unsigned)S_READ_AGAIN;
        do_read(s);
    }
}

/* The loop's stream phase: the streams queued when it began, in order. */
static void run_streams(struct hp_defer *d)
{
    struct hp_loop *loop = hp_container_of(d, struct hp_loop, streams_defer);

    for (size_t n = loop->streams_n; n > 0 && loop->streams_head; n--) {
        struct hp_stream *s = loop->streams_head;

        unqueue(s);
        stream_work(s);
    }
}

void hp__streams_init(struct hp_loop *loop)
{
    hp_defer_init(loop, &loop->streams_defer, run_streams);
}

/* ---- reading ----------------------------------------------------------- */

static void end_reading(struct hp_stream *s, int status)
{
    s->_flags |= S_READ_ENDED;
    if (s->_flags & S_READING)
        s->_read_cb(s, status);
}

/* Read what the socket has (up to the budget), delivering each read. */
static void do_read(struct hp_stream *s)
{
    size_t budget = READ_BUDGET;

    s->_flags |= S_IN_READ;
    while ((s->_flags & (S_READING | S_READ_ENDED | S_CLOSING)) == S_READING) {
        int err = input_reserve(s);
        size_t room;
        ssize_t n;

        if (err) {
            if (err == -ENOBUFS)
                s->_flags |= S_FULL;
            hp__io_will_continue(&s->_io);
            s->_read_cb(s, err);
            break;
        }
        room = input_room_end(s) - s->_in_off - s->_in_len;
        n = hp_io_read(&s->_io, s->_in + s->_in_off + s->_in_len, room);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            end_reading(s, (int)n);
            break;
        }
        s->_in_len += (uint32_t)n; /* n <= room < 1 GiB */
        s->_read_cb(s, 0);
        if ((size_t)n < room && !(s->_flags & S_PEER_HUP)) {
            /* A short read emptied the socket: the next arrival is a new edge. */
            hp_io_drained(&s->_io, HP_READABLE);
            break;
        }
        if ((budget -= (size_t)n > budget ? budget : (size_t)n) == 0) {
            /* Fairness: let other watchers run, carry on next iteration. */
            hp__io_will_continue(&s->_io);
            s->_flags |= S_READ_AGAIN;
            schedule(s);
            break;
        }
    }
    if (!(s->_flags & S_READING))
        hp__io_will_continue(&s->_io); /* paused: read_start resumes */
    s->_flags &= ~(unsigned)S_IN_READ;
    if (!(s->_flags & S_CLOSING) && s->_in_len == 0)
        input_release(s);
}

/* ---- writing ----------------------------------------------------------- */

static size_t bufs_total(const struct hp_buf *bufs, size_t n)
{
    size_t total = 0;

    for (size_t i = 0; i < n; i++)
        total += bufs[i].len;
    return total;
}

/* Drop @p n written bytes from the front of @p req; true when it is done. */
static bool req_advance(struct hp_write_req *req, size_t *n)
{
    while (req->_pos < req->_nbufs) {
        struct hp_buf *b = &req->_bufs[req->_pos];

        if (*n < b->len) {
            b->base = (char *)b->base + *n;
            b->len -= *n;
            *n = 0;
            return false;
        }
        *n -= b->len;
        req->_pos++;
    }
    return true;
}

static void fail_queue(struct hp_stream *s, int status)
{
    while (s->_wq_head) {
        struct hp_write_req *req = s->_wq_head;

        s->_wq_head = req->_next;
        complete(s, req, status);
    }
    s->_wq_tail = NULL;
    s->_wq_bytes = 0;
}

static void maybe_shutdown(struct hp_stream *s)
{
    if ((s->_flags & (S_SHUT_WANTED | S_SHUT_DONE)) == S_SHUT_WANTED && !s->_wq_head) {
        s->_flags |= S_SHUT_DONE;
        shutdown(s->_io.fd, SHUT_WR);
    }
}

/*
 * A write hit EAGAIN: watch for room from now on. Streams start watching
 * readability only, so the usual connection, whose replies always fit the
 * socket buffer, costs the kernel no write wakeup per ACK; the first full
 * buffer adds writability (one epoll_ctl, which also reports room that came
 * meanwhile) and it stays.
 */
static void want_writable(struct hp_stream *s)
{
    int err;

    if (s->_flags & S_WANT_W)
        return;
    s->_flags |= S_WANT_W;
    if ((err = hp_io_start(&s->_io, HP_READABLE | HP_WRITABLE | HP_EDGE)) != 0) {
        s->_error = err;
        fail_queue(s, err);
    }
}

/*
 * Send up to @p want bytes of @p r's file part: sendfile, or where it is
 * refused for this descriptor pair (not a socket on the BSDs, no sendfile)
 * a pread into a bounce buffer and a write. Bytes sent (> 0), 0 if the
 * file ended first, -EAGAIN (the watcher told), or a negative errno.
 */
static ssize_t file_send(struct hp_stream *s, struct hp_write_req *r, size_t want)
{
    char bounce[FILE_BOUNCE];
    struct hp_buf b;
    ssize_t n;

    if (!(s->_flags & S_NO_SENDFILE)) {
        n = hp_fs_sendfile(s->_io.fd, r->_file_fd, &r->_file_off, want);
        if (n == -EAGAIN) {
            hp_io_drained(&s->_io, HP_WRITABLE);
            return n;
        }
        if (n != -EINVAL && n != -ENOSYS && n != -ENOTSOCK && n != -EOPNOTSUPP)
            return n;
        s->_flags |= S_NO_SENDFILE;
    }
    if (want > sizeof(bounce))
        want = sizeof(bounce);
    do
        n = pread(r->_file_fd, bounce, want, (off_t)r->_file_off);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    b = hp_buf_make(bounce, (size_t)n);
    n = hp_io_writev(&s->_io, &b, 1); /* EAGAIN: hp_io_writev told the watcher */
    if (n > 0)
        r->_file_off += n;
    return n;
}

/*
 * writev for buffers a file part follows (a response head): on Linux with
 * MSG_MORE, so the kernel holds them for the first segment of the file
 * instead of sending a small packet of their own (sendfile pushes at its end).
 * Only for file parts up to CORK_FILE_MAX: measured (bench/static), it saves
 * ~10% of the server's CPU per 64 KiB response, while for 1 MiB ones the
 * packet saved is noise and the server's CPU per response came out higher.
 */
static ssize_t writev_before_file(struct hp_stream *s, const struct hp_buf *iov, size_t niov)
{
#ifdef MSG_MORE
    if (!(s->_io._flags & HP__IO_NOTSOCK)) {
        struct msghdr msg = {0};
        ssize_t n;

        msg.msg_iov = (struct iovec *)(void *)(uintptr_t)iov;
        msg.msg_iovlen = (__typeof__(msg.msg_iovlen))niov;
        do
            n = sendmsg(s->_io.fd, &msg, HP__MSG_NOSIGNAL | MSG_MORE);
        while (n < 0 && errno == EINTR);
        if (n >= 0)
            return n;
        if (errno == EAGAIN) {
            hp_io_drained(&s->_io, HP_WRITABLE);
            return -EAGAIN;
        }
        if (errno != ENOTSOCK)
            return -errno;
    }
#endif
    return hp_io_writev(&s->_io, iov, niov);
}

static void write_failed(struct hp_stream *s, int err)
{
    s->_error = err;
    fail_queue(s, err);
}

static void pop_done(struct hp_stream *s)
{
    struct hp_write_req *req = s->_wq_head;

    s->_wq_head = req->_next;
    if (!s->_wq_head)
        s->_wq_tail = NULL;
    complete(s, req, 0);
}

/*
 * Write queued requests until the queue is empty or the kernel is full.
 * Buffers of consecutive requests go in one writev, up to the next file
 * part, which goes alone (sendfile) once everything before it is out.
 */
static void flush(struct hp_stream *s)
{
    size_t file_budget = FILE_BUDGET;

    while (s->_wq_head && !s->_error) {
        struct hp_write_req *h = s->_wq_head;
        struct hp_buf iov[WRITE_IOVS];
        size_t niov = 0;
        bool file_next = false;
        ssize_t n;

        if (h->_pos == h->_nbufs) {
            size_t want = h->_file_left < file_budget ? h->_file_left : file_budget;

            if (h->_file_left == 0) {
                pop_done(s);
                continue;
            }
            if (want == 0) {
                /* Fairness: others get their turn, this goes on next iteration. */
                s->_flags |= S_WRITE_AGAIN;
                schedule(s);
                return;
            }
            n = file_send(s, h, want);
            if (n == -EAGAIN) {
                want_writable(s);
                return;
            }
            if (n <= 0) {
                write_failed(s, n == 0 ? -ENODATA : (int)n);
                return;
            }
            s->_wq_bytes -= (size_t)n;
            h->_file_left -= (size_t)n;
            file_budget -= (size_t)n;
            continue;
        }
        for (struct hp_write_req *r = h; r && niov < WRITE_IOVS; r = r->_next) {
            size_t i;

            for (i = r->_pos; i < r->_nbufs && niov < WRITE_IOVS; i++)
                iov[niov++] = r->_bufs[i];
            if (r->_file_left) {
                /* All of its buffers are in, and the file part is small (see writev_before_file()).
                 */
                file_next = i == r->_nbufs && r->_file_left <= CORK_FILE_MAX;
                break; /* its file part must come next */
            }
        }
        n = file_next ? writev_before_file(s, iov, niov) : hp_io_writev(&s->_io, iov, niov);
        if (n == -EAGAIN) {
            want_writable(s);
            return;
        }
        if (n < 0) {
            write_failed(s, (int)n);
            return;
        }
        s->_wq_bytes -= (size_t)n;
        size_t left = (size_t)n;
        while (s->_wq_head && req_advance(s->_wq_head, &left) && s->_wq_head->_file_left == 0)
            pop_done(s);
    }
    maybe_shutdown(s);
}

static int req_prepare(struct hp_stream *s, struct hp_write_req *req, const struct hp_buf *bufs,
                       size_t nbufs, hp_write_cb *cb)
{
    req->_bufs = req->_inline;
    if (nbufs > HP_WRITE_INLINE_BUFS) {
        req->_bufs = hp__realloc_array(s->loop, NULL, nbufs, sizeof(*bufs));
        if (!req->_bufs)
            return -ENOMEM;
    }
    if (nbufs != 0) /* a file range alone has no buffers (bufs may be NULL) */
        memcpy(req->_bufs, bufs, nbufs * sizeof(*bufs));
    req->_nbufs = nbufs;
    req->_pos = 0;
    req->_file_left = 0;
    req->stream = s;
    req->_cb = cb;
    req->_next = NULL;
    req->_status = 0;
    req->_busy = REQ_BUSY;
    return 0;
}

/* Append a prepared @p req of @p bytes; with nothing ahead of it, try at once
 * (usually one writev and done). */
static void enqueue(struct hp_stream *s, struct hp_write_req *req, size_t bytes)
{
    s->_wq_bytes += bytes;
    if (s->_wq_tail)
        s->_wq_tail->_next = req;
    else
        s->_wq_head = req;
    s->_wq_tail = req;
    if (s->_wq_head == req && !(s->_flags & S_CONNECTING))
        flush(s);
}

/*
 * Nothing queued: write straight from the caller's buffers, the usual case
 * of one writev and done, without copying descriptors. Whatever the kernel
 * did not take is queued, and flush() goes on until EAGAIN (an edge watcher
 * must see EAGAIN before it is told of room again).
 */
static int write_now(struct hp_stream *s, struct hp_write_req *req, const struct hp_buf *bufs,
                     size_t nbufs, hp_write_cb *cb)
{
    size_t total = bufs_total(bufs, nbufs), done;
    ssize_t n = hp_io_writev(&s->_io, bufs, nbufs);

    if (n == (ssize_t)total) {
        req->stream = s;
        req->_cb = cb;
        req->_bufs = NULL;
        req->_nbufs = req->_pos = req->_file_left = 0;
        req->_busy = REQ_BUSY;
        complete(s, req, 0);
        return 0;
    }
    (void)req_prepare(s, req, bufs, nbufs, cb); /* cannot fail: the descriptors fit inline */
    if (n < 0 && n != -EAGAIN) {
        s->_error = (int)n;
        complete(s, req, (int)n);
        return 0;
    }
    done = n > 0 ? (size_t)n : 0;
    req_advance(req, &done);
    s->_wq_bytes = total - (n > 0 ? (size_t)n : 0);
    s->_wq_head = s->_wq_tail = req;
    if (n > 0)
        flush(s);
    else
        want_writable(s);
    return 0;
}

int hp_stream_write(struct hp_stream *s, struct hp_write_req *req, const struct hp_buf *bufs,
                    size_t nbufs, hp_write_cb *cb)
{
    int err;

    if (nbufs == 0 || req->_busy == REQ_BUSY)
        return -EINVAL;
    if (s->_flags & (S_CLOSING | S_SHUT_WANTED))
        return HP_ECLOSED;
    if (s->_error)
        return s->_error;
    if (!s->_wq_head && !(s->_flags & S_CONNECTING) && nbufs <= HP_WRITE_INLINE_BUFS)
        return write_now(s, req, bufs, nbufs, cb);
    if ((err = req_prepare(s, req, bufs, nbufs, cb)) != 0)
        return err;
    enqueue(s, req, bufs_total(bufs, nbufs));
    return 0;
}

int hp_stream_sendfile(struct hp_stream *s, struct hp_write_req *req, const struct hp_buf *bufs,
                       size_t nbufs, int fd, int64_t offset, size_t len, hp_write_cb *cb)
{
    int err;

    if ((nbufs != 0 && bufs == NULL) || req->_busy == REQ_BUSY || offset < 0)
        return -EINVAL;
    if (len != 0 && fd < 0)
        return -EBADF;
    if (s->_flags & (S_CLOSING | S_SHUT_WANTED))
        return HP_ECLOSED;
    if (s->_error)
        return s->_error;
    if ((err = req_prepare(s, req, bufs, nbufs, cb)) != 0)
        return err;
    req->_file_fd = fd;
    req->_file_off = offset;
    req->_file_left = len;
    enqueue(s, req, bufs_total(req->_bufs, nbufs) + len);
    return 0;
}

ssize_t hp_stream_try_write(struct hp_stream *s, const struct hp_buf *bufs, size_t nbufs)
{
    ssize_t n;

    if (s->_flags & (S_CLOSING | S_SHUT_WANTED))
        return HP_ECLOSED;
    if (s->_error)
        return s->_error;
    if (s->_wq_head || (s->_flags & S_CONNECTING))
        return -EAGAIN;
    n = hp_io_writev(&s->_io, bufs, nbufs);
    if (n < 0 && n != -EAGAIN)
        s->_error = (int)n;
    return n;
}

size_t hp_stream_write_queue_size(const struct hp_stream *s)
{
    return s->_wq_bytes;
}

int hp_stream_shutdown(struct hp_stream *s)
{
    if (s->_flags & (S_CLOSING | S_SHUT_WANTED))
        return HP_ECLOSED;
    s->_flags |= S_SHUT_WANTED;
    if (!(s->_flags & S_CONNECTING))
        maybe_shutdown(s);
    return 0;
}

/* ---- events ------------------------------------------------------------ */

static void connected(struct hp_stream *s, int status)
{
    s->_flags &= ~(unsigned)S_CONNECTING;
    s->_flags |= S_CONNECT_DONE;
    s->_error = status;
    schedule(s);
    if (status)
        fail_queue(s, status);
    else
        flush(s);
}

static void on_io(struct hp_io *io, unsigned events, int status)
{
    struct hp_stream *s = hp_container_of(io, struct hp_stream, _io);

    if (s->_flags & S_CONNECTING) {
        if (events & HP_ERROR)
            connected(s, status);
        else if (events & (HP_WRITABLE | HP_HUP))
            connected(s, 0);
        else
            return;
        hp__io_will_continue(io);
        return;
    }
    if (events & HP_ERROR) {
        s->_error = status;
        fail_queue(s, status);
        if (!(s->_flags & S_READ_ENDED))
            end_reading(s, status);
        return;
    }
    if (events & HP_HUP)
        s->_flags |= S_PEER_HUP;
    if ((events & HP_WRITABLE) && s->_wq_head)
        flush(s);
    if (events & HP_READABLE) {
        if (s->_flags & S_READING)
            do_read(s);
        else
            hp__io_will_continue(io); /* read_start will look */
    }
}

/* ---- lifecycle --------------------------------------------------------- */

static void set_nosigpipe(int fd)
{
#ifdef SO_NOSIGPIPE
    int on = 1;

    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
#else
    (void)fd; /* MSG_NOSIGNAL on every send instead */
#endif
}

static int ensure_nonblock(struct hp_loop *loop, int fd)
{
    int fl;

    /* Straight from our accept callback: non-blocking already, no syscall. */
    if (fd == loop->accepted_fd)
        return 0;
    fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static int stream_open(struct hp_loop *loop, struct hp_stream *s, int fd, unsigned events)
{
    int err;

    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->_in_limit = DEFAULT_INPUT_LIMIT;
    hp_io_init(loop, &s->_io, fd, on_io);
    if ((err = ensure_nonblock(loop, fd)) != 0)
        return err;
    set_nosigpipe(fd);
    if (events & HP_WRITABLE)
        s->_flags |= S_WANT_W;
    return hp_io_start(&s->_io, events | HP_EDGE);
}

int hp_stream_init(struct hp_loop *loop, struct hp_stream *s, int fd)
{
    if (fd < 0)
        return -EBADF;
    return stream_open(loop, s, fd, HP_READABLE);
}

/* Parse a numeric address; 0 or -EINVAL. */
static int make_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
}

int hp_stream_connect(struct hp_loop *loop, struct hp_stream *s, const char *host, uint16_t port,
                      hp_connect_cb *cb)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, err;

    if (!cb || make_addr(host, port, &ss, &len) != 0)
        return -EINVAL;
    if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
        return -errno;
    if ((err = hp__fd_nonblock_cloexec(fd)) != 0 ||
        (err = stream_open(loop, s, fd, HP_READABLE | HP_WRITABLE)) != 0)
        goto err_close;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
        err = -errno;
        hp_io_stop(&s->_io);
        goto err_close;
    }
    s->_cb.connect = cb;
    s->_flags |= S_CONNECTING;
    return 0;

err_close:
    close(fd);
    return err;
}

int hp_stream_read_start(struct hp_stream *s, hp_read_cb *cb)
{
    if (s->_flags & (S_CLOSING | S_READ_ENDED))
        return HP_ECLOSED;
    s->_read_cb = cb;
    if (s->_flags & S_READING)
        return 0;
    s->_flags |= S_READING;
    /* Data may be buffered, or have arrived (edge already spent): look next iteration. */
    s->_flags |= S_READ_AGAIN | S_DELIVER;
    if (!(s->_flags & S_CONNECTING))
        schedule(s);
    return 0;
}

void hp_stream_read_stop(struct hp_stream *s)
{
    s->_flags &= ~(unsigned)(S_READING | S_READ_AGAIN | S_DELIVER);
}

struct hp_buf hp_stream_input(const struct hp_stream *s)
{
    return hp_buf_make(s->_in ? s->_in + s->_in_off : NULL, s->_in_len);
}

/* @p n > 0 bytes left the input: room again after -ENOBUFS, resume reading. */
static void input_left(struct hp_stream *s, size_t n)
{
    if ((s->_flags & S_FULL) && n) {
        s->_flags &= ~(unsigned)S_FULL;
        if (s->_flags & S_READING) {
            s->_flags |= S_READ_AGAIN;
            schedule(s);
        }
    }
}

void hp_stream_consume(struct hp_stream *s, size_t n)
{
    if (n > s->_in_len)
        n = s->_in_len;
    s->_in_off += (uint32_t)n; /* n <= _in_len */
    s->_in_len -= (uint32_t)n;
    if (s->_in_len == 0) {
        s->_in_off = 0;
        if (!(s->_flags & S_IN_READ))
            input_release(s);
    }
    input_left(s, n);
}

int hp_stream_take_input(struct hp_stream *s, size_t n, struct hp_stream_chunk *out)
{
    size_t rest;
    uint32_t cap = 0;
    char *p = NULL;

    if (n == 0 || n > s->_in_len || out->_mem != NULL)
        return -EINVAL;
    rest = s->_in_len - n;
    if (rest != 0) {
        /* rest < _in_cap <= 1 GiB */
        cap = rest <= HP__BUF_SIZE ? HP__BUF_SIZE : (uint32_t)rest;
        p = cap == HP__BUF_SIZE ? buf_get(s->loop) : hp__alloc(s->loop, cap);
        if (p == NULL)
            return -ENOMEM;
        memcpy(p, s->_in + s->_in_off + n, rest);
    }
    out->_mem = s->_in;
    out->_cap = s->_in_cap;
    s->_in = p;
    s->_in_off = 0;
    s->_in_len = (uint32_t)rest;
    s->_in_cap = cap;
    input_left(s, n);
    return 0;
}

void hp_stream_chunk_free(struct hp_loop *loop, struct hp_stream_chunk *c)
{
    if (c->_mem != NULL)
        buf_put(loop, c->_mem, c->_cap);
    c->_mem = NULL;
    c->_cap = 0;
}

void hp_stream_set_input_limit(struct hp_stream *s, size_t limit)
{
    if (limit < 1024)
        limit = 1024;
    s->_in_limit = limit > (1u << 30) ? 1u << 30 : (uint32_t)limit;
}

void hp_stream_close(struct hp_stream *s, hp_close_cb *cb)
{
    assert(!(s->_flags & S_CLOSING));
    s->_flags |= S_CLOSING;
    s->_flags &= ~(unsigned)(S_READING | S_READ_AGAIN | S_CONNECT_DONE);
    s->_cb.close = cb;
    /* The stream owns its fd alone: close(2) also drops it from epoll or kqueue. */
    hp__io_stop_closing(&s->_io);
    close(s->_io.fd);
    fail_queue(s, -ECANCELED);
    input_release(s);
    s->loop->closing_n++;
    schedule(s);
}

bool hp_stream_is_closing(const struct hp_stream *s)
{
    return (s->_flags & S_CLOSING) != 0;
}

int hp_stream_fd(const struct hp_stream *s)
{
    return s->_io.fd;
}

int hp_stream_set_nodelay(struct hp_stream *s, bool on)
{
    int v = on;

    if (setsockopt(s->_io.fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) != 0)
        return -errno;
    return 0;
}

/* ---- listeners --------------------------------------------------------- */

#ifdef __linux__
static int accept_one(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    return fd >= 0 ? fd : -errno;
}
#else
static int accept_one(int lfd)
{
    int fd = accept(lfd, NULL, NULL), err;

    if (fd < 0)
        return -errno;
    if ((err = hp__fd_nonblock_cloexec(fd)) != 0) {
        close(fd);
        return err;
    }
    return fd;
}
#endif

static bool out_of_resources(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

static void on_pause_end(struct hp_timer *t)
{
    struct hp_listener *l = hp_container_of(t, struct hp_listener, _pause);

    /* Level-triggered: connections that waited are reported at once. */
    if (!l->_paused)
        (void)hp_io_start(&l->_io, HP_READABLE);
}

static void on_accept(struct hp_io *io, unsigned events, int status)
{
    struct hp_listener *l = hp_container_of(io, struct hp_listener, _io);
    struct hp_loop *loop = io->loop;

    (void)events;
    if (status) {
        l->_cb(l, -1, status);
        return;
    }
    /* Accept until EAGAIN. The callback may pause, stop or free the listener:
     * those clear loop->accepting, and then l must not be touched again. */
    for (loop->accepting = l; loop->accepting == l;) {
        int fd = accept_one(io->fd);

        if (fd >= 0) {
            loop->accepted_fd = fd;
            l->_cb(l, fd, 0);
            loop->accepted_fd = -1;
            continue;
        }
        if (fd == -EAGAIN)
            break;
        if (fd == -EINTR || fd == -ECONNABORTED)
            continue;
        if (out_of_resources(fd)) {
            /* Pause instead of spinning on a queue we cannot drain. */
            hp_io_stop(io);
            (void)hp_timer_start(&l->_pause, l->_pause_ms, 0);
        }
        l->_cb(l, -1, fd);
        break;
    }
    if (loop->accepting == l)
        loop->accepting = NULL;
}

static int listen_socket(const struct hp_listener_opts *o, int *out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, on = 1, err;

    if (make_addr(o->host ? o->host : "::", o->port, &ss, &len) != 0)
        return -EINVAL;
    if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0)
        return -errno;
    if ((err = hp__fd_nonblock_cloexec(fd)) != 0)
        goto err_close;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0)
        goto err_errno;
#ifdef SO_REUSEPORT
    if (o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
        goto err_errno;
#endif
    if (ss.ss_family == AF_INET6) {
        int v6only = o->ipv6_only;

        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0)
            goto err_errno;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        listen(fd, o->backlog > 0 ? o->backlog : 511) != 0)
        goto err_errno;
    *out = fd;
    return 0;

err_errno:
    err = -errno;
err_close:
    close(fd);
    return err;
}

int hp_listener_start(struct hp_loop *loop, struct hp_listener *l,
                      const struct hp_listener_opts *opts, hp_accept_cb *cb)
{
    struct hp_listener_opts none = {0};
    int fd = -1, err;

    if (!opts)
        opts = &none;
#ifndef SO_REUSEPORT
    if (opts->reuseport)
        return -ENOTSUP;
#endif
    if ((err = listen_socket(opts, &fd)) != 0)
        return err;
    l->data = NULL;
    l->loop = loop;
    l->_cb = cb;
    l->_pause_ms = opts->pause_ms ? opts->pause_ms : 100;
    l->_paused = false;
    hp_timer_init(loop, &l->_pause, on_pause_end);
    hp_io_init(loop, &l->_io, fd, on_accept);
    if ((err = hp_io_start(&l->_io, HP_READABLE)) != 0) {
        close(fd);
        return err;
    }
    return 0;
}

int hp_listener_port(const struct hp_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(l->_io.fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
}

void hp_listener_pause(struct hp_listener *l)
{
    if (l->loop->accepting == l)
        l->loop->accepting = NULL;
    l->_paused = true;
    hp_io_stop(&l->_io);
}

int hp_listener_resume(struct hp_listener *l)
{
    if (l->_io.fd < 0)
        return HP_ECLOSED;
    l->_paused = false;
    if (hp_timer_is_active(&l->_pause))
        return 0; /* out of descriptors: the pause timer resumes */
    return hp_io_start(&l->_io, HP_READABLE);
}

void hp_listener_stop(struct hp_listener *l)
{
    if (l->_io.fd < 0)
        return;
    if (l->loop->accepting == l)
        l->loop->accepting = NULL;
    hp_io_stop(&l->_io);
    hp_timer_stop(&l->_pause);
    close(l->_io.fd);
    l->_io.fd = -1;
}
