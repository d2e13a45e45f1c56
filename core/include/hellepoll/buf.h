/**
 * @file buf.h
 * Byte views. struct hp_buf has the layout of struct iovec (checked at
 * compile time in the library), so an array of them goes straight to
 * writev(2) without copying.
 */
#ifndef HP_BUF_H
#define HP_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** A mutable byte range: the same members, in the same order, as struct iovec. */
struct hp_buf {
    void *base;
    size_t len;
};

/** A read-only string view; never NUL-terminated (print with %.*s). */
struct hp_str {
    const char *ptr;
    size_t len;
};

/** Make an hp_buf from a pointer and length. */
static inline struct hp_buf hp_buf_make(const void *base, size_t len)
{
    struct hp_buf b;

    b.base = (void *)(uintptr_t)base; /* iovec has no const; writers never write through it */
    b.len = len;
    return b;
}

/** An hp_str over a string literal, without strlen at run time. */
#define HP_STR_LIT(s) ((struct hp_str){"" s, sizeof(s) - 1})

/** An hp_str over a NUL-terminated string. */
static inline struct hp_str hp_str_make(const char *s)
{
    struct hp_str v;

    v.ptr = s;
    v.len = strlen(s);
    return v;
}

#endif
