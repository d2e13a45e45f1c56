/*
 * fs.c - file requests on the thread pool, and the platform split for the
 * helpers that run on the loop (see fs.h).
 *
 * A request is one hp_work: run() performs req->op on a worker, done()
 * hands req->result to the caller's callback on the loop. Everything
 * platform-specific sits in the three helpers at the end: the beneath-open
 * (openat2 or a component walk), the cache-only read and sendfile.
 */
#if defined(__APPLE__)
/* macOS declares sendfile(2) only when _POSIX_C_SOURCE is not defined. */
#undef _POSIX_C_SOURCE
#endif
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <hellepoll/fs.h>

#include "internal.h"

#if defined(__linux__)
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#if defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define HP__HAVE_OPENAT2 1
#endif
#endif
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__DragonFly__)
#define HP__BSD_SENDFILE 1
#endif

static void run(struct hp_work *w)
{
    struct hp_fs_req *req = hp_container_of(w, struct hp_fs_req, _work);
    int64_t r;

    switch (req->op) {
    case HP_FS_OPENAT:
        r = openat(req->fd, req->path, req->flags | O_CLOEXEC, (mode_t)req->mode);
        break;
    case HP_FS_OPEN_BENEATH:
        req->result = hp_fs_open_beneath(req->fd, req->path, req->flags, 0);
        return;
    case HP_FS_STAT:
        r = fstatat(req->fd, req->path, &req->st, req->flags);
        break;
    case HP_FS_FSTAT:
        r = fstat(req->fd, &req->st);
        break;
    case HP_FS_PREAD:
        do
            r = req->offset < 0 ? read(req->fd, req->buf, req->len)
                                : pread(req->fd, req->buf, req->len, (off_t)req->offset);
        while (r < 0 && errno == EINTR);
        break;
    case HP_FS_CLOSE:
        /* EINTR from close() leaves the descriptor closed on Linux and the BSDs: no retry. */
        r = close(req->fd);
        break;
    default:
        r = -1;
        errno = EINVAL;
    }
    req->result = r < 0 ? -errno : r;
}

static void done(struct hp_work *w, int status)
{
    struct hp_fs_req *req = hp_container_of(w, struct hp_fs_req, _work);

    if (status)
        req->result = status;
    req->_cb(req);
}

static int submit(struct hp_loop *loop, struct hp_fs_req *req, int op, hp_fs_cb *cb)
{
    if (!cb)
        return -EINVAL;
    req->loop = loop;
    req->op = op;
    req->result = 0;
    req->_cb = cb;
    return hp_work_submit(loop, &req->_work, run, done);
}

int hp_fs_openat(struct hp_loop *loop, struct hp_fs_req *req, int dirfd, const char *path,
                 int flags, unsigned mode, hp_fs_cb *cb)
{
    req->fd = dirfd;
    req->path = path;
    req->flags = flags;
    req->mode = mode;
    return submit(loop, req, HP_FS_OPENAT, cb);
}

int hp_fs_openat_beneath(struct hp_loop *loop, struct hp_fs_req *req, int dirfd, const char *path,
                         int flags, hp_fs_cb *cb)
{
    req->fd = dirfd;
    req->path = path;
    req->flags = flags;
    return submit(loop, req, HP_FS_OPEN_BENEATH, cb);
}

int hp_fs_stat(struct hp_loop *loop, struct hp_fs_req *req, int dirfd, const char *path, int flags,
               hp_fs_cb *cb)
{
    req->fd = dirfd;
    req->path = path;
    req->flags = flags;
    return submit(loop, req, HP_FS_STAT, cb);
}

int hp_fs_fstat(struct hp_loop *loop, struct hp_fs_req *req, int fd, hp_fs_cb *cb)
{
    req->fd = fd;
    return submit(loop, req, HP_FS_FSTAT, cb);
}

int hp_fs_pread(struct hp_loop *loop, struct hp_fs_req *req, int fd, void *buf, size_t len,
                int64_t offset, hp_fs_cb *cb)
{
    req->fd = fd;
    req->buf = buf;
    req->len = len;
    req->offset = offset;
    return submit(loop, req, HP_FS_PREAD, cb);
}

int hp_fs_close(struct hp_loop *loop, struct hp_fs_req *req, int fd, hp_fs_cb *cb)
{
    req->fd = fd;
    return submit(loop, req, HP_FS_CLOSE, cb);
}

int hp_fs_cancel(struct hp_fs_req *req)
{
    return hp_work_cancel(&req->_work);
}

/* ---- open beneath a directory ------------------------------------------ */

#define WALK_DEPTH 128 /* directory levels below the root */
#define WALK_LINKS 40

/* The errors O_NOFOLLOW gives for a final symlink: ELOOP (Linux, macOS), EMLINK (FreeBSD). */
static bool maybe_link(int err)
{
    return err == ELOOP || err == EMLINK || err == ENOTDIR;
}

/*
 * Walk @p path from @p root one component at a time. fds[0..depth] are the
 * directories passed (fds[0] is root, not ours); ".." pops one and may not
 * pop the root. A symlink's target replaces its component in the path
 * still to walk (absolute targets leave the root: refused).
 */
static int walk_beneath(int root, const char *path, int flags)
{
    char buf[2 * PATH_MAX + 2];
    int fds[WALK_DEPTH + 1];
    int depth = 0, links = 0, ret;
    size_t rest_len = strlen(path);
    char *p;

    if (path[0] == '/')
        return -EXDEV;
    if (rest_len >= sizeof(buf) / 2)
        return -ENAMETOOLONG;
    /* The path still to walk sits at the end of buf, so a link target can be put in front. */
    p = buf + sizeof(buf) - rest_len - 1;
    memcpy(p, path, rest_len + 1);
    fds[0] = root;
    for (;;) {
        char name[NAME_MAX + 1];
        size_t n = strcspn(p, "/");
        bool last;
        int fd;

        if (n > NAME_MAX) {
            ret = -ENAMETOOLONG;
            goto out;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
        while (*p == '/')
            p++;
        last = *p == '\0';
        if (n == 0 || strcmp(name, ".") == 0) {
            if (!last)
                continue;
            strcpy(name, ".");
        } else if (strcmp(name, "..") == 0) {
            if (depth == 0) {
                ret = -EXDEV;
                goto out;
            }
            close(fds[depth--]);
            if (!last)
                continue;
            strcpy(name, ".");
        }
        if (last)
            fd = openat(fds[depth], name, flags | O_NOFOLLOW | O_CLOEXEC);
        else
            fd = openat(fds[depth], name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && maybe_link(errno)) {
            int err = errno;
            char target[PATH_MAX];
            ssize_t tl = readlinkat(fds[depth], name, target, sizeof(target));
            size_t left = strlen(p);

            if (tl < 0) { /* not a link after all */
                ret = -err;
                goto out;
            }
            if (++links > WALK_LINKS) {
                ret = -ELOOP;
                goto out;
            }
            if (tl == 0 || target[0] == '/') {
                ret = -EXDEV;
                goto out;
            }
            if ((size_t)tl + 1 + left + 1 > sizeof(buf)) {
                ret = -ENAMETOOLONG;
                goto out;
            }
            /* buf = target "/" rest, at the end of buf (memmove: rest may overlap). */
            memmove(buf + sizeof(buf) - left - 1, p, left + 1);
            p = buf + sizeof(buf) - left - 1;
            if (left) {
                *--p = '/';
            }
            p -= tl;
            memcpy(p, target, (size_t)tl);
            continue;
        }
        if (fd < 0) {
            ret = -errno;
            goto out;
        }
        if (last) {
            ret = fd;
            goto out;
        }
        if (depth == WALK_DEPTH) {
            close(fd);
            ret = -ENAMETOOLONG;
            goto out;
        }
        fds[++depth] = fd;
    }
out:
    while (depth > 0)
        close(fds[depth--]);
    return ret;
}

#ifdef HP__HAVE_OPENAT2
static atomic_bool no_openat2;
#endif

int hp_fs_open_beneath(int dirfd, const char *path, int flags, unsigned how)
{
#ifdef HP__HAVE_OPENAT2
    if (!(how & HP_FS_PORTABLE) && !atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
        struct open_how oh;
        long fd;

        memset(&oh, 0, sizeof(oh));
        oh.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC);
        oh.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        do
            fd = syscall(SYS_openat2, dirfd, path, &oh, sizeof(oh));
        while (fd < 0 && errno == EINTR);
        if (fd >= 0)
            return (int)fd;
        /* ENOSYS: an old kernel; EPERM: a seccomp filter that does not know it. */
        if (errno != ENOSYS && errno != EPERM)
            return -errno;
        atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
    }
#else
    (void)how;
#endif
    return walk_beneath(dirfd, path, flags);
}

/* ---- on the loop --------------------------------------------------------- */

ssize_t hp_fs_pread_nowait(int fd, void *buf, size_t len, int64_t offset)
{
#if defined(__linux__) && defined(RWF_NOWAIT)
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    ssize_t n;

    do
        n = preadv2(fd, &iov, 1, (off_t)offset, RWF_NOWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EOPNOTSUPP || errno == ENOSYS ? -EAGAIN : -errno;
    return n;
#else
    (void)fd;
    (void)buf;
    (void)len;
    (void)offset;
    return -EAGAIN;
#endif
}

#if defined(__linux__)
/*
 * Linux sendfile(2) has no MSG_NOSIGNAL: to a socket whose peer is gone it
 * raises SIGPIPE, which by default kills the process. So the first call on
 * a thread blocks SIGPIPE in that thread (unless it is ignored or blocked
 * already: one sigaction and one sigprocmask per thread, ever), and a
 * SIGPIPE a failed call raised is taken back, so -EPIPE is all anyone sees.
 */
static _Thread_local int sigpipe_state; /* 0: not looked yet; 1: nothing to do; 2: blocked by us */

static void sigpipe_guard(void)
{
    struct sigaction sa;
    sigset_t set, old;

    sigpipe_state = 1;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
        return;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &set, &old) == 0 && !sigismember(&old, SIGPIPE))
        sigpipe_state = 2;
}

static void sigpipe_take(void)
{
    struct timespec zero = {0, 0};
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
        continue;
}
#endif

ssize_t hp_fs_sendfile(int out_fd, int in_fd, int64_t *offset, size_t len)
{
#if defined(__linux__)
    off_t off = (off_t)*offset;
    ssize_t n;

    if (sigpipe_state == 0)
        sigpipe_guard();
    do
        n = sendfile(out_fd, in_fd, &off, len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;

        if (err == EPIPE && sigpipe_state == 2)
            sigpipe_take();
        return -err;
    }
    *offset = (int64_t)off;
    return n;
#elif defined(__APPLE__)
    off_t sent = (off_t)len;
    int r;

    do
        r = sendfile(in_fd, out_fd, (off_t)*offset, &sent, NULL, 0);
    while (r < 0 && errno == EINTR && sent == 0);
    if (sent > 0) {
        *offset += (int64_t)sent;
        return (ssize_t)sent;
    }
    return r < 0 ? -errno : 0;
#elif defined(HP__BSD_SENDFILE)
    off_t sent = 0;
    int r;

    do
        r = sendfile(in_fd, out_fd, (off_t)*offset, len, NULL, &sent, 0);
    while (r < 0 && errno == EINTR && sent == 0);
    if (sent > 0) {
        *offset += (int64_t)sent;
        return (ssize_t)sent;
    }
    return r < 0 ? -errno : 0;
#else
    char buf[16384];
    ssize_t n, w;

    if (len > sizeof(buf))
        len = sizeof(buf);
    do
        n = pread(in_fd, buf, len, (off_t)*offset);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    do
        w = send(out_fd, buf, (size_t)n, HP__MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return -errno;
    *offset += w;
    return w;
#endif
}
