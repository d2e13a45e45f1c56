/*
 * error.c - names and descriptions for negative errno values and
 * hellepoll's own codes.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define HP_ERRNO_NAMES(X)                                                                      \
    X(EPERM)                                                                                   \
    X(ENOENT)                                                                                  \
    X(EINTR)                                                                                   \
    X(EIO)                                                                                     \
    X(EBADF)                                                                                   \
    X(EAGAIN)                                                                                  \
    X(ENOMEM) X(EACCES) X(EFAULT) X(EBUSY) X(EEXIST) X(ENODEV) X(EINVAL) X(ENFILE) X(EMFILE)   \
        X(ENOSPC) X(EPIPE) X(ERANGE) X(ENAMETOOLONG) X(ENOSYS) X(ENOTSOCK) X(EMSGSIZE)         \
            X(EPROTONOSUPPORT) X(EOPNOTSUPP) X(EAFNOSUPPORT) X(EADDRINUSE) X(EADDRNOTAVAIL)    \
                X(ENETDOWN) X(ENETUNREACH) X(ECONNABORTED) X(ECONNRESET) X(ENOBUFS) X(EISCONN) \
                    X(ENOTCONN) X(ETIMEDOUT) X(ECONNREFUSED) X(EHOSTUNREACH) X(EALREADY)       \
                        X(EINPROGRESS) X(ECANCELED) X(EOVERFLOW)

#define HP_ERRNO_CASE(e) \
    case e:              \
        return #e;

static const char *errno_name(int e)
{
    /* EWOULDBLOCK and EOPNOTSUPP alias other codes on some systems. */
    switch (e) {
        HP_ERRNO_NAMES(HP_ERRNO_CASE)
    default:
        return "UNKNOWN";
    }
}

const char *hp_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
    case HP_EOF:
        return "HP_EOF";
    case HP_ECLOSED:
        return "HP_ECLOSED";
    default:
        break;
    }
    if (err < 0 && err > HP_EOF)
        return errno_name(-err);
    return "UNKNOWN";
}

const char *hp_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case HP_EOF:
        return "end of file";
    case HP_ECLOSED:
        return "handle is closing or closed";
    default:
        break;
    }
    if (err < 0 && err > HP_EOF)
        return strerror(-err);
    return "unknown error";
}
