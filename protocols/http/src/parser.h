/*
 * parser.h - the HTTP/1.1 request-head parser and chunked decoder (internal).
 *
 * Both are incremental state machines over a buffer that only grows at the
 * end between calls: the caller passes the whole buffer (from the start of
 * the request) every time, and the parser resumes at the byte where it
 * stopped, so a request arriving one byte per read costs O(n) in total.
 * Nothing is copied and nothing is allocated: the results are offsets into
 * the caller's buffer, which the caller turns into views. Offsets (not
 * pointers) are kept because the buffer may move between calls.
 *
 * Errors are returned as the negative HTTP status to answer with
 * (-400, -413, -414, -431, -501, -505), with a one-line reason in
 * p->reason. After an error the parser must be reset before reuse.
 */
#ifndef HP_HTTP_PARSER_H
#define HP_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One header field: offsets into the request buffer. */
struct hp__http_field {
    uint32_t name_off;
    uint32_t value_off;
    uint16_t name_len;
    uint16_t _pad;
    uint32_t value_len;
};

/** Request flags found while parsing the head. */
enum {
    HP__REQ_CLOSE = 1u << 0,      /* Connection: close */
    HP__REQ_KEEPALIVE = 1u << 1,  /* Connection: keep-alive */
    HP__REQ_CHUNKED = 1u << 2,    /* Transfer-Encoding: ..., chunked */
    HP__REQ_HAS_LENGTH = 1u << 3, /* a Content-Length was given */
    HP__REQ_EXPECT_100 = 1u << 4, /* Expect: 100-continue */
    HP__REQ_HAS_HOST = 1u << 5,   /* a Host field was seen */
    HP__REQ_ABSOLUTE = 1u << 6,   /* absolute-form target */
    HP__REQ_TE_SEEN = 1u << 7,    /* a Transfer-Encoding field was seen */
    HP__REQ_TE_UNKNOWN = 1u << 8, /* a coding other than chunked was listed */
    HP__REQ_TE_CHUNKED_TWICE = 1u << 9,
};

/** Limits applied by the head parser. */
struct hp__http_limits {
    uint32_t max_target;  /* bytes of request-target (414) */
    uint32_t max_head;    /* bytes of the whole head, request line included (431) */
    uint32_t max_headers; /* number of header fields (431); <= field array capacity */
    uint64_t max_body;    /* Content-Length above this is 413 */
};

/** Head parser state; zero it (hp__http_parser_reset) before each request. */
struct hp__http_parser {
    /* Results, valid once hp__http_parse_head() returned > 0. */
    uint32_t method_off, target_off;
    uint16_t method_len;
    uint8_t version_minor; /* 0 or 1 */
    uint8_t method_id;     /* enum hp__http_method */
    uint32_t target_len;
    uint32_t path_len;  /* path = target[path_off .. +path_len) */
    uint32_t path_off;  /* (absolute-form skips scheme://authority) */
    uint32_t query_off; /* 0 if there is no '?' */
    uint32_t query_len;
    uint32_t nfields;
    unsigned flags;
    uint64_t content_length;
    const char *reason; /* set with every error: one line, no newline */

    /* Private resumable state. */
    uint32_t pos;  /* next byte to examine */
    uint32_t mark; /* start of the token being scanned */
    uint32_t vend; /* end of the value without trailing whitespace */
    uint32_t skip; /* leading empty lines skipped (bounded) */
    uint8_t state;
    uint8_t host_count;
    uint16_t _pad;
    struct hp__http_field *fields; /* caller-owned array of max_headers entries */
    const struct hp__http_limits *limits;
};

/** Methods recognised without string compares; others are HP__M_OTHER. */
enum hp__http_method {
    HP__M_OTHER = 0,
    HP__M_GET,
    HP__M_HEAD,
    HP__M_POST,
    HP__M_PUT,
    HP__M_DELETE,
    HP__M_OPTIONS,
    HP__M_CONNECT,
    HP__M_TRACE,
    HP__M_PATCH,
};

/**
 * Prepare @p p for a new request. @p fields (capacity limits->max_headers)
 * and @p limits are borrowed for as long as the parser is used.
 */
void hp__http_parser_reset(struct hp__http_parser *p, struct hp__http_field *fields,
                           const struct hp__http_limits *limits);

/**
 * Parse the request head in buf[0..len), resuming where the last call
 * stopped. The buffer must hold the same bytes as before, plus any new ones.
 * @return 0 when more bytes are needed; the length of the head (through the
 *         empty line) when it is complete and valid; or a negative HTTP
 *         status on error (p->reason explains).
 */
int64_t hp__http_parse_head(struct hp__http_parser *p, const char *buf, size_t len);

/** Chunked-body decoder state; zero it before the body. */
struct hp__http_chunked {
    uint64_t remaining; /* data bytes left in the current chunk */
    uint64_t total;     /* data bytes decoded so far */
    uint32_t line;      /* bytes in the current size/extension/trailer line */
    uint32_t trailer;   /* trailer bytes so far */
    uint8_t state;
    uint8_t digits;
    const char *reason;
};

/**
 * Decode chunked data in place. Reads buf[*rpos..len) and writes the data
 * bytes at buf[*wpos..), which never passes *rpos; both positions advance.
 * Chunk extensions and trailer fields are checked and dropped.
 * @param max_body more data bytes than this in total is 413.
 * @param max_meta bytes allowed per size line and for the trailer section.
 * @return 0 when more input is needed (all of buf was read), 1 when the
 *         final CRLF was read (*rpos is just past it), or a negative HTTP
 *         status (c->reason explains).
 */
int hp__http_chunked_decode(struct hp__http_chunked *c, char *buf, size_t len, size_t *rpos,
                            size_t *wpos, uint64_t max_body, uint32_t max_meta);

/** Case-insensitive ASCII compare of two byte ranges of equal length. */
bool hp__http_ieq(const char *a, const char *b, size_t n);

/** True if @p c may appear in a token (RFC 9110 tchar). */
bool hp__http_is_tchar(unsigned char c);

#endif
