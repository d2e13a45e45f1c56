/**
 * @file fs.h
 * File operations off the loop: each request runs the blocking call on the
 * loop's thread pool (pool.h) and reports on the loop's thread; plus the
 * few non-blocking helpers a file server needs on the loop itself (a read
 * that only succeeds from the page cache, sendfile to a socket).
 *
 * Requests follow pool.h's rules: struct hp_fs_req is caller-allocated and
 * must stay valid, with the path and buffer it names, until its callback
 * has started; the callback runs exactly once, never inside the call that
 * started it, with req->result set (>= 0 on success, a negative errno, or
 * -ECANCELED when it never ran). A cancelled open opened nothing. The
 * operation is recorded in the request, so another backend (io_uring) can
 * take the same requests later without changing callers.
 */
#ifndef HP_FS_H
#define HP_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <hellepoll/defs.h>
#include <hellepoll/loop.h>
#include <hellepoll/pool.h>

struct hp_fs_req;

/** Completion of a file request: read req->result (and req->st). */
typedef void hp_fs_cb(struct hp_fs_req *req);

/** Operations (req->op; read-only). */
enum hp_fs_op {
    HP_FS_OPENAT = 1,   /**< result: the descriptor (close-on-exec always set) */
    HP_FS_OPEN_BENEATH, /**< as hp_fs_open_beneath(); result: the descriptor */
    HP_FS_STAT,         /**< fstatat(); result 0, req->st filled */
    HP_FS_FSTAT,        /**< fstat(); result 0, req->st filled */
    HP_FS_PREAD,        /**< pread(); offset -1 means read(); result: bytes read */
    HP_FS_CLOSE,        /**< close(); result 0 */
};

/** A file request; zero it before the first use. */
struct hp_fs_req {
    void *data;           /**< User pointer, free for the caller. */
    struct hp_loop *loop; /**< Read-only. */
    int64_t result;       /**< Read-only: see the operation. */
    struct stat st;       /**< Filled by the stat operations. */
    int op;               /**< enum hp_fs_op; read-only. */
    int fd, flags;
    unsigned mode;
    const char *path;
    void *buf;
    size_t len;
    int64_t offset;
    hp_fs_cb *_cb;
    struct hp_work _work;
};

/**
 * openat(@p dirfd, @p path, @p flags | O_CLOEXEC, @p mode) on the pool
 * (AT_FDCWD for a plain open()). The request may be cancelled with
 * hp_fs_cancel() until a worker takes it.
 * @return 0, or hp_work_submit()'s errors (then @p cb never runs).
 */
HP_API HP_NODISCARD int hp_fs_openat(struct hp_loop *loop, struct hp_fs_req *req, int dirfd,
                                     const char *path, int flags, unsigned mode, hp_fs_cb *cb);

/** hp_fs_open_beneath(@p dirfd, @p path, @p flags, 0) on the pool. */
HP_API HP_NODISCARD int hp_fs_openat_beneath(struct hp_loop *loop, struct hp_fs_req *req, int dirfd,
                                             const char *path, int flags, hp_fs_cb *cb);

/** fstatat(@p dirfd, @p path, &req->st, @p flags) on the pool. */
HP_API HP_NODISCARD int hp_fs_stat(struct hp_loop *loop, struct hp_fs_req *req, int dirfd,
                                   const char *path, int flags, hp_fs_cb *cb);

/** fstat(@p fd, &req->st) on the pool. */
HP_API HP_NODISCARD int hp_fs_fstat(struct hp_loop *loop, struct hp_fs_req *req, int fd,
                                    hp_fs_cb *cb);

/**
 * pread(@p fd, @p buf, @p len, @p offset) on the pool; @p offset -1 reads
 * at the file position (read()). Short reads are not retried (0: end of
 * file).
 */
HP_API HP_NODISCARD int hp_fs_pread(struct hp_loop *loop, struct hp_fs_req *req, int fd, void *buf,
                                    size_t len, int64_t offset, hp_fs_cb *cb);

/** close(@p fd) on the pool (closing can block on some file systems). */
HP_API HP_NODISCARD int hp_fs_close(struct hp_loop *loop, struct hp_fs_req *req, int fd,
                                    hp_fs_cb *cb);

/**
 * Cancel a request no worker has taken yet; its callback then runs with
 * result -ECANCELED. @return as hp_work_cancel().
 */
HP_API int hp_fs_cancel(struct hp_fs_req *req);

/* ---- blocking and non-blocking helpers --------------------------------- */

/** For hp_fs_open_beneath()'s @p how: skip openat2(), use the portable walk. */
#define HP_FS_PORTABLE 1u

/**
 * BLOCKING (call it from a hp_work_fn): open @p path relative to @p dirfd,
 * refusing to leave that directory by any route: ".." past it, an absolute
 * path, or a symbolic link (at any depth) whose target resolves outside it
 * (-EXDEV); links that stay inside are followed. On Linux this is openat2()
 * with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS; where the kernel lacks it
 * (and elsewhere, or with HP_FS_PORTABLE in @p how) the path is walked one
 * component at a time with O_NOFOLLOW, links resolved by hand (at most 40).
 * O_CLOEXEC is always added.
 * @return the descriptor, or a negative errno (-EXDEV: it would escape;
 *         -ELOOP: too many links; the open's own errors).
 */
HP_API int hp_fs_open_beneath(int dirfd, const char *path, int flags, unsigned how);

/**
 * Non-blocking pread: read only what the page cache holds (Linux
 * preadv2(RWF_NOWAIT)), never waiting for the disk.
 * @return bytes read (0: end of file); -EAGAIN (the data is not cached, or
 *         the platform cannot tell: use hp_fs_pread()); a negative errno.
 */
HP_API ssize_t hp_fs_pread_nowait(int fd, void *buf, size_t len, int64_t offset);

/**
 * Send up to @p len bytes of file @p in_fd from *@p offset to the socket
 * @p out_fd (non-blocking), advancing *@p offset by what was sent: Linux
 * and FreeBSD/macOS sendfile(2) (each with its own signature), elsewhere
 * pread() + send(). Linux sendfile cannot be told not to raise SIGPIPE: the
 * first call on a thread blocks SIGPIPE in that thread (unless the signal is
 * ignored or blocked already), and one a failing call raised is consumed.
 * For queued, in-order file output on a stream see hp_stream_sendfile().
 * @return bytes sent (> 0); 0 if the file ends before *offset + 1 (it
 *         shrank); -EAGAIN (socket buffer full, nothing sent); a negative
 *         errno.
 */
HP_API ssize_t hp_fs_sendfile(int out_fd, int in_fd, int64_t *offset, size_t len);

#endif
