/*
 * rawclient.h - raw HTTP clients for the HTTP module's tests: a
 * non-blocking socket with an outbox and an inbox, pumped between loop
 * iterations (so a client can send megabytes to a server on the same
 * thread without blocking it), and a strict parser for the responses it
 * receives. Nothing here sleeps.
 */
#ifndef HP_RAWCLIENT_H
#define HP_RAWCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

struct rc_client {
    int fd;    /* -1: none */
    bool deaf; /* never reads (the server's output backs up) */
    bool eof;  /* the server closed (end of file or reset) */
    int err;   /* errno of a failed read (ECONNRESET), or 0 */
    char *out;
    size_t out_len, out_off, out_cap;
    char *in;                      /* received bytes, always NUL-terminated */
    size_t in_len, in_off, in_cap; /* in_off: bytes already parsed by rc_next() */
};

/* A socketpair: one end adopted by @p srv, the other is the client's. */
void rc_open_adopted(struct rc_client *c, struct hp_http_server *srv);

/* A loopback TCP connection to @p port (blocking connect, then non-blocking). */
void rc_open_tcp(struct rc_client *c, uint16_t port);

/* Close the client's socket (with SO_LINGER 0 first if @p reset) and free its buffers. */
void rc_close(struct rc_client *c, bool reset);

/* Queue @p len bytes (or the string @p s) for sending. */
void rc_send(struct rc_client *c, const void *data, size_t len);
void rc_send_str(struct rc_client *c, const char *s);

/* Send what the socket takes and (unless deaf) read what has arrived. */
void rc_pump(struct rc_client *c);

/* Bytes still waiting in the outbox. */
size_t rc_unsent(const struct rc_client *c);

/* A parsed response; body is de-chunked and malloc'd (rc_resp_free()). */
struct rc_resp {
    int status;
    bool chunked, close;
    bool has_length;
    uint64_t content_length;
    size_t head_len, len; /* bytes of the head, of the whole response */
    char *body;
    size_t body_len;
};

/*
 * Parse the response at @p p (@p n bytes): its length, or 0 if incomplete
 * (a body delimited by the end of the connection counts as incomplete).
 * @p head: it answers a HEAD request (no body). Fails the test on bytes
 * that are not a well-formed response.
 */
size_t rc_parse(const char *p, size_t n, bool head, struct rc_resp *r);
void rc_resp_free(struct rc_resp *r);

/* rc_parse() at the client's unparsed input; true (and in_off advanced) if complete. */
bool rc_next(struct rc_client *c, bool head, struct rc_resp *r);

/* Occurrences of @p needle in what the client received. */
size_t rc_count(const struct rc_client *c, const char *needle);

#endif
