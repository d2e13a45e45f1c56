/**
 * @file defs.h
 * Small macros shared by every public hellepoll header: symbol visibility,
 * attributes and hp_container_of. Including it has no other effect.
 */
#ifndef HP_DEFS_H
#define HP_DEFS_H

#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define HP_API          __attribute__((visibility("default")))
#define HP_NODISCARD    __attribute__((warn_unused_result))
#define HP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HP_API
#define HP_NODISCARD
#define HP_PRINTF(f, a)
#endif

/**
 * Get a pointer to the struct of type @p type that embeds @p ptr as its
 * member @p member. The usual way back from a handle to its owner.
 */
#define hp_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
