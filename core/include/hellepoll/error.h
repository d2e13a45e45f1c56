/**
 * @file error.h
 * Error codes. Every fallible hellepoll function returns 0 (or a count) on
 * success and a negative errno value on failure, e.g. -EINVAL or -ENOMEM.
 * The few conditions that are not errno values have codes of their own
 * below, outside the errno range.
 */
#ifndef HP_ERROR_H
#define HP_ERROR_H

#include <hellepoll/defs.h>

/** Codes of hellepoll's own; all are negative and below any -errno. */
enum hp_error {
    HP_EOF = -4095,     /**< The peer closed its sending side. */
    HP_ECLOSED = -4094, /**< The handle is closing or closed. */
    HP_ESERVER = -4093, /**< A server answered with an error; its message comes with the reply. */
};

/**
 * Describe an error code, as strerror() does, for a negative errno value or
 * one of the HP_ codes. Never returns NULL; the string is static.
 */
HP_API const char *hp_strerror(int err);

/**
 * Name an error code ("EINVAL", "HP_EOF"). Unknown codes give "UNKNOWN".
 * The string is static.
 */
HP_API const char *hp_err_name(int err);

#endif
