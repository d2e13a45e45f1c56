/*
 * error.c - names and descriptions for negative errno values and
 * hellepoll's own codes.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define NAME(e) \
    {           \
        e, #e   \
    }

/* The errno values the library and its users meet; others are "UNKNOWN". */
static const struct {
    int code;
    const char *name;
} errno_names[] = {
    NAME(EPERM),        NAME(ENOENT),       NAME(EINTR),           NAME(EIO),
    NAME(EBADF),        NAME(EAGAIN),       NAME(ENOMEM),          NAME(EACCES),
    NAME(EFAULT),       NAME(EBUSY),        NAME(EEXIST),          NAME(ENODEV),
    NAME(EINVAL),       NAME(ENFILE),       NAME(EMFILE),          NAME(ENOSPC),
    NAME(EPIPE),        NAME(ERANGE),       NAME(ENAMETOOLONG),    NAME(ENOSYS),
    NAME(ENOTSOCK),     NAME(EMSGSIZE),     NAME(EPROTONOSUPPORT), NAME(EOPNOTSUPP),
    NAME(EAFNOSUPPORT), NAME(EADDRINUSE),   NAME(EADDRNOTAVAIL),   NAME(ENETDOWN),
    NAME(ENETUNREACH),  NAME(ECONNABORTED), NAME(ECONNRESET),      NAME(ENOBUFS),
    NAME(EISCONN),      NAME(ENOTCONN),     NAME(ETIMEDOUT),       NAME(ECONNREFUSED),
    NAME(EHOSTUNREACH), NAME(EALREADY),     NAME(EINPROGRESS),     NAME(ECANCELED),
    NAME(EOVERFLOW),    NAME(E2BIG),        NAME(EFBIG),           NAME(EDOM),
    NAME(EBADMSG),      NAME(EILSEQ),       NAME(EPROTO),
};

static const char *errno_name(int e)
{
    /* A scan, not a switch: EWOULDBLOCK, ENOTSUP and friends alias others on some systems. */
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++) {
        if (errno_names[i].code == e)
            return errno_names[i].name;
    }
    return "UNKNOWN";
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
    case HP_ESERVER:
        return "HP_ESERVER";
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
    case HP_ESERVER:
        return "the server answered with an error";
    default:
        break;
    }
    if (err < 0 && err > HP_EOF)
        return strerror(-err);
    return "unknown error";
}
