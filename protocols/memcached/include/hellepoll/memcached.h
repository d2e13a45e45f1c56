/**
 * @file memcached.h
 * A memcached client on the loop speaking the meta protocol (mg, ms, md,
 * ma, mn; memcached 1.6+), on hellepoll streams (target hellepoll::memcached,
 * pkg-config hellepoll-memcached). No external library.
 *
 * One struct hp_mc holds one or more servers, chosen per key by ketama
 * consistent hashing computed as libmemcached does with
 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (MD5, 160 points per server of equal
 * weight, "host:port-N" points, "host-N" for port 11211), so both clients put
 * a key on the same server. Each server has a small pool of connections;
 * a request goes to the one with the fewest requests in flight.
 *
 * Pipelining. Requests from any number of callers are appended to a
 * connection's output as they are issued; everything issued during one loop
 * iteration goes out in one write. Every request carries an opaque token
 * (O flag) and responses are matched in order and checked against it.
 * Quiet requests (HP_MC_QUIET: the server stays silent on the usual outcome,
 * a miss for mg and success for the others) are terminated by an mn the
 * client adds itself, so their callbacks still run exactly once.
 *
 * Keys are any bytes. A key of 1..250 bytes without spaces or control bytes
 * goes as it is; any other key of 1..186 bytes goes base64-encoded with the
 * b flag (memcached stores the decoded bytes, so both forms name the same
 * item); longer keys are refused with -EINVAL. hp_mc_key_check() tells in
 * advance.
 *
 * Callbacks. A call that returns 0 runs its callback exactly once, on a
 * later loop iteration, never inside the call: with the outcome, with the
 * server's error, -ETIMEDOUT, a connection error, or -ECANCELED from
 * hp_mc_free(). A call that returns an error never runs it. Nothing the
 * caller passes is kept after the call (keys and values are copied).
 *
 * Threading: like every handle, a client belongs to its loop's thread.
 */
#ifndef HP_MEMCACHED_H
#define HP_MEMCACHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/buf.h>
#include <hellepoll/defs.h>
#include <hellepoll/error.h>
#include <hellepoll/loop.h>

struct hp_mc;

/** The server's answer to a request that reached it. */
enum hp_mc_code {
    HP_MC_OK,         /**< HD or VA: hit, stored, deleted, counted. */
    HP_MC_MISS,       /**< EN: mg found no item. */
    HP_MC_NOT_STORED, /**< NS: ms condition (add, replace, ...) not met; ma not created. */
    HP_MC_EXISTS,     /**< EX: the CAS value did not match. */
    HP_MC_NOT_FOUND,  /**< NF: no item (ms with CAS, md, ma). */
};

/** What came back; valid only during the callback. */
struct hp_mc_reply {
    enum hp_mc_code code;
    /** mg with value: the value; ma: the new number as text; HP_ESERVER: the
     *  server's error line ("CLIENT_ERROR bad data chunk"). Not NUL-terminated. */
    struct hp_str value;
    uint64_t cas;   /**< With HP_MC_RETURN_CAS: the item's CAS value (0 if not sent). */
    uint32_t flags; /**< mg: the client flags stored with the item (0 if not sent). */
    int64_t ttl;    /**< With HP_MC_RETURN_TTL: seconds left, -1 unlimited, -2 not sent. */
    bool has_value; /**< A value (data block) came back. */
};

/**
 * A request finished.
 * @param status 0: @p reply holds the server's answer. HP_ESERVER: the
 *               server answered CLIENT_ERROR, SERVER_ERROR or ERROR (its line
 *               in reply->value). -ETIMEDOUT: no answer within the request
 *               timeout. -ECONNREFUSED (or another connect errno): the
 *               connection failed before the request was sent. -ECONNRESET:
 *               the connection was lost (the request may have run). -EPROTO:
 *               the server's answer was not the meta protocol. -ECANCELED:
 *               hp_mc_free().
 * @param reply  NULL unless status is 0 or HP_ESERVER.
 * The callback may issue requests and may call hp_mc_free() on @p mc.
 */
typedef void hp_mc_cb(struct hp_mc *mc, int status, const struct hp_mc_reply *reply, void *arg);

/** Request flags (struct hp_mc_req.flags). */
enum hp_mc_flag {
    HP_MC_QUIET = 1u << 0,      /**< q: no answer on the usual outcome (see the file doc). */
    HP_MC_RETURN_CAS = 1u << 1, /**< c: return the CAS value. */
    HP_MC_RETURN_TTL = 1u << 2, /**< t: return the remaining TTL (mg, ma). */
    HP_MC_NO_VALUE = 1u << 3,   /**< mg without v: HD on a hit, no data (an existence test). */
    HP_MC_BASE64 = 1u << 4,     /**< Send the key base64-encoded (b) even if it is plain. */
    HP_MC_SET_TTL = 1u << 5,    /**< T: set the TTL to .ttl (mg: touch; ma: on success). */
};

/** How ms stores (M flag). */
enum hp_mc_set_mode {
    HP_MC_SET = 0, /**< S: store unconditionally. */
    HP_MC_ADD,     /**< E: only if absent (NOT_STORED otherwise). */
    HP_MC_REPLACE, /**< R: only if present. */
    HP_MC_APPEND,  /**< A: append to an existing value. */
    HP_MC_PREPEND, /**< P: prepend to an existing value. */
};

/** Per-request options; borrowed for the call. NULL means all zero. */
struct hp_mc_req {
    unsigned flags;           /**< enum hp_mc_flag bits. */
    uint32_t ttl;             /**< ms: the item's TTL in seconds (0 = never expires);
                                   with HP_MC_SET_TTL: the new TTL (mg, ma, md with...). */
    uint64_t cas;             /**< ms, md, ma: compare-and-swap value (C flag); 0 = none. */
    uint32_t client_flags;    /**< ms: stored client flags (F flag). */
    enum hp_mc_set_mode mode; /**< ms: storage mode. */
    uint64_t delta;           /**< ma: the delta (default 1 when 0). */
    bool decrement;           /**< ma: decrement instead of increment. */
    bool autovivify;          /**< ma: create on miss with .initial and .ttl (N, J flags). */
    uint64_t initial;         /**< ma with autovivify: the starting value. */
};

/** Options for hp_mc_new(). Zero means the default for each field. */
struct hp_mc_opts {
    /** Servers as "IPv4:port", "[IPv6]:port" or a bare numeric address (port
     *  11211), in the order libmemcached would be given them. Copied. */
    const char *const *servers;
    size_t nservers;
    /** Connections per server; default 1 (pipelining makes one go far). */
    unsigned connections;
    /** Connect attempt limit; default 2000 ms. */
    unsigned connect_timeout_ms;
    /** Answer limit per request; default 2000 ms. A request not answered in
     *  time fails with -ETIMEDOUT, and so does everything else in flight on
     *  its connection, which is closed and opened again. */
    unsigned request_timeout_ms;
    /** Reconnect delay after a failure, doubling up to the maximum. Default 50 / 2000 ms. */
    unsigned reconnect_min_ms, reconnect_max_ms;
    /** Requests in flight per connection at most; more get -ENOBUFS. Default 4096. */
    unsigned max_pending;
    /** Largest value accepted in an answer (and sent); default 1 MiB. */
    size_t max_value;
    /** User pointer, see hp_mc_data(). */
    void *data;
};

/**
 * Create a client and start connecting to every server (in the background:
 * requests may be issued at once).
 * @return 0, -EINVAL (no servers, a server that is not a numeric address, a
 *         bad option), -ENOMEM.
 */
HP_API HP_NODISCARD int hp_mc_new(struct hp_mc **out, struct hp_loop *loop,
                                  const struct hp_mc_opts *opts);

/**
 * Free the client: every request still waiting gets -ECANCELED (from inside
 * this call) and the connections close. Callable from any callback,
 * including the client's own; no callback of @p mc runs afterwards. The
 * sockets finish closing on the next loop iteration, after which the memory
 * is released: run the loop (hp_loop_run() returns once that is done)
 * before hp_loop_free().
 */
HP_API void hp_mc_free(struct hp_mc *mc);

/**
 * mg: fetch @p key (its value, unless HP_MC_NO_VALUE; client flags always).
 * @return 0; -EINVAL (key refused, see hp_mc_key_check(), or @p cb NULL);
 *         -ENOTCONN (the key's server is down, waiting to reconnect);
 *         -ENOBUFS (max_pending reached); HP_ECLOSED (being freed); -ENOMEM.
 */
HP_API HP_NODISCARD int hp_mc_get(struct hp_mc *mc, struct hp_str key, const struct hp_mc_req *o,
                                  hp_mc_cb *cb, void *arg);

/** ms: store @p value (copied) under @p key; returns as hp_mc_get() (-EMSGSIZE: over max_value). */
HP_API HP_NODISCARD int hp_mc_set(struct hp_mc *mc, struct hp_str key, const void *value,
                                  size_t len, const struct hp_mc_req *o, hp_mc_cb *cb, void *arg);

/** md: delete @p key; returns as hp_mc_get(). */
HP_API HP_NODISCARD int hp_mc_delete(struct hp_mc *mc, struct hp_str key, const struct hp_mc_req *o,
                                     hp_mc_cb *cb, void *arg);

/** ma: add (or subtract) o->delta to the number under @p key; the new value comes back. */
HP_API HP_NODISCARD int hp_mc_arith(struct hp_mc *mc, struct hp_str key, const struct hp_mc_req *o,
                                    hp_mc_cb *cb, void *arg);

/** mn to server @p server (0-based, in the order given): runs @p cb once everything
 *  sent to that connection before it is answered. -ERANGE for a bad index. */
HP_API HP_NODISCARD int hp_mc_noop(struct hp_mc *mc, size_t server, hp_mc_cb *cb, void *arg);

/**
 * Can @p key be sent? @return 0 (as it is), 1 (base64-encoded), or -EINVAL
 * (empty, or too long: over 250 bytes plain, over 186 binary).
 */
HP_API int hp_mc_key_check(struct hp_str key);

/** The server (index in opts.servers) that @p key maps to. */
HP_API size_t hp_mc_server_for(const struct hp_mc *mc, struct hp_str key);

/** True if server @p server has at least one connection up. */
HP_API bool hp_mc_server_is_up(const struct hp_mc *mc, size_t server);

/** Connections made so far over all servers (grows with reconnects). */
HP_API unsigned hp_mc_connects(const struct hp_mc *mc);

/** Requests issued whose callback has not run yet. */
HP_API size_t hp_mc_pending(const struct hp_mc *mc);

/** The user pointer from the options. */
HP_API void *hp_mc_data(const struct hp_mc *mc);

#endif
