/*
 * request.h - formatting meta requests into an output buffer, and keys
 * (validation, base64). Internal to the memcached module.
 */
#ifndef HP_MC_REQUEST_H
#define HP_MC_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include <hellepoll/memcached.h>

/* A growable byte buffer (malloc'ed). */
struct hp__mc_buf {
    char *p;
    size_t len, cap;
};

enum hp__mc_cmd { HP__MC_CMD_MG, HP__MC_CMD_MS, HP__MC_CMD_MD, HP__MC_CMD_MA, HP__MC_CMD_MN };

/* Append one request; @p opaque goes as O<opaque>. @return 0, -EINVAL (key), -ENOMEM. */
int hp__mc_format(struct hp__mc_buf *b, enum hp__mc_cmd cmd, struct hp_str key,
                  const struct hp_mc_req *o, uint32_t opaque, const void *value, size_t vlen);

void hp__mc_buf_free(struct hp__mc_buf *b);

#endif
