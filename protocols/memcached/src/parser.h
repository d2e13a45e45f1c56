/*
 * parser.h - strict, incremental parser of memcached meta protocol
 * responses (internal to the memcached module; the fuzz target and the
 * unit test compile parser.c directly).
 */
#ifndef HP_MC_PARSER_H
#define HP_MC_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest response line accepted (flags included). */
#define HP__MC_MAX_LINE 2048

enum hp__mc_rc {
    HP__MC_VA, /* value follows */
    HP__MC_HD,
    HP__MC_EN,
    HP__MC_NS,
    HP__MC_EX,
    HP__MC_NF,
    HP__MC_MN,
    HP__MC_ERROR,        /* ERROR: unknown command */
    HP__MC_CLIENT_ERROR, /* CLIENT_ERROR <msg> */
    HP__MC_SERVER_ERROR, /* SERVER_ERROR <msg> */
};

struct hp__mc_resp {
    enum hp__mc_rc rc;
    const char *data; /* VA: the data block; errors: the line without CRLF */
    size_t data_len;
    uint64_t cas;
    uint32_t flags;
    int64_t ttl;
    uint32_t opaque;
    bool has_opaque, has_cas, has_flags, has_ttl;
};

struct hp__mc_parser {
    size_t max_value; /* largest VA data block accepted */
    size_t scanned;   /* bytes of an unfinished line already searched for CRLF */
    size_t need;      /* total bytes an unfinished VA response needs (0: unknown) */
};

/* Start a parser; @p max_value caps data blocks. */
void hp__mc_parser_init(struct hp__mc_parser *p, size_t max_value);

/*
 * Parse one response from the front of buf[0..len). Call again with the
 * same bytes (and more appended) after 0; the parser remembers how far it
 * looked, so a response arriving byte by byte costs O(n) overall.
 * @return bytes consumed (> 0) with @p out filled (views into @p buf);
 *         0 when more bytes are needed; -EPROTO for anything that is not a
 *         well-formed response; -EMSGSIZE for a data block over max_value.
 */
ssize_t hp__mc_parse(struct hp__mc_parser *p, const char *buf, size_t len, struct hp__mc_resp *out);

#endif
