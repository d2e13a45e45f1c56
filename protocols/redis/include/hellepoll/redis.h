/**
 * @file redis.h
 * A Redis client on the loop, built on hiredis's command formatter and
 * reply reader over a hellepoll stream (target hellepoll::redis, pkg-config
 * hellepoll-redis). Replies are hiredis's struct redisReply. For hiredis's
 * own asynchronous API on a hellepoll loop see <hellepoll/redis-adapter.h>.
 *
 * One struct hp_redis is one connection. Commands from any number of
 * callers are pipelined on it: each is appended to the output as it is
 * issued, everything issued during one loop iteration is written at once,
 * and replies are matched in order. The client connects in the background,
 * with a connect timeout, and reconnects with exponential backoff when the
 * connection is lost or cannot be made.
 *
 * Callbacks. A command whose call returns 0 gets its callback exactly once,
 * on a later loop iteration, never inside the call: with the reply, with
 * HP_ESERVER and the server's error reply, with -ETIMEDOUT, with a
 * connection error, or with -ECANCELED from hp_redis_free(). A call that
 * returns an error never calls its callback.
 *
 * Timeouts. A command not answered within command_timeout_ms means the
 * server has stopped answering: the connection is dropped, every command in
 * flight on it fails with -ETIMEDOUT and the client reconnects.
 *
 * Threading: like every handle, a client belongs to its loop's thread.
 */
#ifndef HP_REDIS_H
#define HP_REDIS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/defs.h>
#include <hellepoll/error.h>
#include <hellepoll/loop.h>

struct hp_redis;
struct redisReply;

/**
 * A command finished.
 * @param status 0: @p reply is the server's answer (any type but an error).
 *               HP_ESERVER: the server answered with an error; @p reply is
 *               that error (reply->str, reply->len: the server's message).
 *               -ETIMEDOUT: no answer within the command timeout, or the
 *               connection could not be made in time. -ECONNREFUSED (or
 *               another connect errno): the connection failed before the
 *               command was sent. -ECONNRESET: the connection was lost
 *               (the command may or may not have run). -EPROTO: the server
 *               sent something that is not Redis protocol. -ENOMEM: out of
 *               memory, or a reply array of more than 16M (2^24) elements,
 *               which is refused without allocating it (the connection is
 *               dropped like one that failed). -ECANCELED:
 *               hp_redis_free() was called. Other negative errno: as named.
 * @param reply  the reply (NULL unless status is 0 or HP_ESERVER), owned by
 *               the client and valid only during the callback (do not pass
 *               it to freeReplyObject()).
 * @param arg    as passed to the command.
 * The callback may issue commands and may call hp_redis_free() on @p r.
 */
typedef void hp_redis_cb(struct hp_redis *r, int status, struct redisReply *reply, void *arg);

/**
 * A published message arrived on a subscribed channel. @p channel and
 * @p msg are binary-safe views valid only during the callback. The
 * callback may unsubscribe, subscribe and free the client.
 */
typedef void hp_redis_msg_cb(struct hp_redis *r, const char *channel, size_t channel_len,
                             const char *msg, size_t msg_len, void *arg);

/** Options for hp_redis_new(). Zero means the default for each field. */
struct hp_redis_opts {
    /** Server: a numeric IPv4/IPv6 address, or a host name, looked up on the
     *  loop's thread pool (hellepoll/pool.h) at each connection attempt and
     *  its addresses tried in turn, all within connect_timeout_ms; a name
     *  that does not resolve fails the attempt (-EHOSTUNREACH, then
     *  reconnect). Copied. Default "127.0.0.1". */
    const char *host;
    /** Port; default 6379. */
    uint16_t port;
    /** Connect attempt limit; default 2000 ms. */
    unsigned connect_timeout_ms;
    /** Answer limit per command; default 5000 ms. */
    unsigned command_timeout_ms;
    /** First reconnect delay after a failure; doubles up to the maximum. Default 50 ms. */
    unsigned reconnect_min_ms;
    /** Largest reconnect delay; default 2000 ms. */
    unsigned reconnect_max_ms;
    /** Commands waiting for an answer at most; more get -ENOBUFS. Default 4096. */
    unsigned max_pending;
    /** User pointer, see hp_redis_data(). */
    void *data;
};

/**
 * Create a client and start connecting (in the background: commands may be
 * issued at once and are sent when the connection is up).
 * @param out receives the client; untouched on failure.
 * @param opts borrowed for the call; NULL for all defaults.
 * @return 0, -EINVAL (bad option), -ENOMEM.
 */
HP_API HP_NODISCARD int hp_redis_new(struct hp_redis **out, struct hp_loop *loop,
                                     const struct hp_redis_opts *opts);

/**
 * Free the client: every command still waiting gets -ECANCELED (from inside
 * this call), subscriptions end, the connection closes. May be called from
 * any callback, including the client's own; @p r is invalid afterwards and
 * no callback of it runs again. Call it before hp_loop_free().
 */
HP_API void hp_redis_free(struct hp_redis *r);

/**
 * Send a command formatted as for hiredis's redisCommand() (%s a C string,
 * %b a pointer and a size_t length, ...). The arguments are copied.
 * @return 0 (@p cb will run once); -ENOTCONN (the connection is down and
 *         waiting to reconnect); -ENOBUFS (max_pending commands are waiting);
 *         -EBUSY (the client has subscriptions: use another client for
 *         commands); -EINVAL (bad format or @p cb NULL); HP_ECLOSED (being
 *         freed); -ENOMEM.
 */
HP_API HP_NODISCARD int hp_redis_command(struct hp_redis *r, hp_redis_cb *cb, void *arg,
                                         const char *fmt, ...);

/** hp_redis_command() with a va_list. */
HP_API HP_NODISCARD int hp_redis_commandv(struct hp_redis *r, hp_redis_cb *cb, void *arg,
                                          const char *fmt, va_list ap);

/**
 * Send a command given as @p argc binary-safe arguments (copied).
 * @param argvlen the lengths, or NULL to use strlen() on each argument.
 * @return as hp_redis_command().
 */
HP_API HP_NODISCARD int hp_redis_command_argv(struct hp_redis *r, hp_redis_cb *cb, void *arg,
                                              int argc, const char *const *argv,
                                              const size_t *argvlen);

/**
 * Subscribe to @p channel (copied; NUL-terminated): @p cb runs for every
 * message until hp_redis_unsubscribe() or hp_redis_free(). The subscription
 * survives reconnects (it is sent again on every new connection; messages
 * published while disconnected are lost, as with Redis itself). From the
 * first subscription on, the client is a subscriber: hp_redis_command()
 * returns -EBUSY, until the server has confirmed the end of the last one.
 * @return 0, -EEXIST (already subscribed), -EINVAL, HP_ECLOSED, -ENOMEM.
 */
HP_API HP_NODISCARD int hp_redis_subscribe(struct hp_redis *r, const char *channel,
                                           hp_redis_msg_cb *cb, void *arg);

/**
 * End a subscription: its callback does not run again, even for messages
 * already received. @return 0 or -ENOENT.
 */
HP_API int hp_redis_unsubscribe(struct hp_redis *r, const char *channel);

/** True while subscriptions are confirmed by the server on the current connection. */
HP_API bool hp_redis_is_subscribed(const struct hp_redis *r);

/** True while the connection is established. */
HP_API bool hp_redis_is_connected(const struct hp_redis *r);

/** Commands issued whose callback has not run yet. */
HP_API size_t hp_redis_pending(const struct hp_redis *r);

/** Connections made so far (1 after the first connect; grows with reconnects). */
HP_API unsigned hp_redis_connects(const struct hp_redis *r);

/** The user pointer from the options. */
HP_API void *hp_redis_data(const struct hp_redis *r);

#endif
