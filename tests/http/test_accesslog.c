/*
 * tests/http/test_accesslog.c - the access log end to end over loopback TCP:
 * every request of several pipelining connections is logged, in each
 * connection's order, across batches that fill the buffer, and nothing is
 * lost at shutdown (to a sink and to a file); the client fields are escaped
 * exactly as accesslog.h says at every length and at every position of a
 * byte that needs it, wherever the field sits in the head (the escaper
 * tests sixteen bytes at a time, so each path of it is reached). The loop
 * is driven with bounded run_once calls; nothing sleeps.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/accesslog.h>
#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

#include "rawclient.h"
#include "testutil.h"

#define NCLIENTS 3

static struct {
    struct hp_loop *loop;
    struct hp_http_server *srv;
    struct hp_accesslog *log;
    struct rc_client c[NCLIENTS];
    char *sunk; /* what the sink received */
    size_t sunk_len, sunk_cap, batches;
    size_t requests;
    bool down;
} S;

static int on_request(struct hp_http_req *req)
{
    S.requests++;
    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), "ok", 2);
}

static void sink(void *ctx, const char *lines, size_t len)
{
    (void)ctx;
    assert_true(len > 0 && lines[len - 1] == '\n'); /* whole lines only */
    if (S.sunk_len + len + 1 > S.sunk_cap) {
        S.sunk_cap = (S.sunk_len + len + 1) * 2;
        S.sunk = realloc(S.sunk, S.sunk_cap);
        assert_non_null(S.sunk);
    }
    memcpy(S.sunk + S.sunk_len, lines, len);
    S.sunk_len += len;
    S.sunk[S.sunk_len] = '\0';
    S.batches++;
}

/* A listening server logging to @p lo (path NULL: to the sink). */
static void start(enum hp_accesslog_format format, const char *path, uint32_t flush_ms)
{
    struct hp_accesslog_opts lo = {
        .format = format, .path = path, .sink = path == NULL ? sink : NULL, .flush_ms = flush_ms};
    struct hp_http_server_opts opts = {
        .on_request = on_request, .listen.host = "127.0.0.1", .max_keepalive_requests = 100000};

    memset(&S, 0, sizeof(S));
    for (int i = 0; i < NCLIENTS; i++)
        S.c[i].fd = -1;
    S.loop = hp_test_loop_new(NULL);
    assert_int_equal(hp_accesslog_new(&S.log, S.loop, &lo), 0);
    hp_accesslog_attach(S.log, &opts);
    assert_int_equal(hp_http_server_new(&S.srv, S.loop, &opts), 0);
}

static void on_down(struct hp_http_server *srv)
{
    (void)srv;
    S.down = true;
}

/* Close the clients, shut the server down and free it, then the log (which flushes). */
static void stop(void)
{
    for (int i = 0; i < NCLIENTS; i++)
        rc_close(&S.c[i], false);
    hp_http_server_shutdown(S.srv, 0, on_down);
    hp_test_run_until(S.loop, &S.down);
    assert_int_equal(hp_http_server_free(S.srv), 0);
    hp_accesslog_free(S.log);
    hp_test_loop_free(S.loop);
}

static void cleanup(void)
{
    free(S.sunk);
    S.sunk = NULL;
}

/* Pump the clients and the loop until @p want responses in all arrived. */
static void run_until_answered(size_t nclients, size_t want)
{
    for (int i = 0; i < 20000; i++) {
        size_t got = 0;

        for (size_t k = 0; k < nclients; k++) {
            rc_pump(&S.c[k]);
            got += rc_count(&S.c[k], "HTTP/1.1 200 OK\r\n");
        }
        if (got >= want)
            return;
        assert_true(hp_loop_run_once(S.loop, 5) >= 0);
    }
    fail_msg("only %zu requests answered of %zu", S.requests, want);
}

/* The lines of @p text (modified in place); their count. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;

    for (char *p = text, *nl; p != NULL && *p != '\0'; p = nl + 1) {
        nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(n < max);
        lines[n++] = p;
    }
    return n;
}

/* ---- every line, in order --------------------------------------------- */

#define PER_CLIENT 200

/*
 * Each client pipelines PER_CLIENT requests "/c<k>/<i>" with a long user
 * agent (so lines fill the buffer several times over); every request is in
 * the log once, each client's in order.
 */
static void send_numbered(void)
{
    static char agent[4000];

    memset(agent, 'u', sizeof(agent) - 1);
    for (int k = 0; k < NCLIENTS; k++) {
        rc_open_tcp(&S.c[k], (uint16_t)hp_http_server_port(S.srv));
        for (int i = 0; i < PER_CLIENT; i++) {
            char req[4200];
            int n =
                snprintf(req, sizeof(req),
                         "GET /c%d/%d HTTP/1.1\r\nHost: t\r\nUser-Agent: %s\r\n\r\n", k, i, agent);

            rc_send(&S.c[k], req, (size_t)n);
        }
    }
    run_until_answered(NCLIENTS, NCLIENTS * PER_CLIENT);
}

static void check_numbered(char *text)
{
    static char *lines[NCLIENTS * PER_CLIENT + 1];
    size_t n = split_lines(text, lines, NCLIENTS * PER_CLIENT + 1);
    int next[NCLIENTS] = {0};

    assert_int_equal(n, NCLIENTS * PER_CLIENT);
    for (size_t j = 0; j < n; j++) {
        const char *t = strstr(lines[j], "\"GET /c");
        int k, i;

        assert_non_null(t);
        assert_int_equal(sscanf(t, "\"GET /c%d/%d HTTP/1.1\" 200 2 ", &k, &i), 2);
        assert_true(k >= 0 && k < NCLIENTS);
        assert_int_equal(i, next[k]); /* each connection's lines in its order, none twice */
        next[k]++;
        assert_true(strncmp(lines[j], "127.0.0.1 - - [", 15) == 0);
    }
}

static void test_every_request_is_logged_in_order_and_flushed_at_shutdown(void **state)
{
    (void)state;
    start(HP_ACCESSLOG_COMBINED, NULL, 60000);
    send_numbered();
    /* 600 lines of 4 KB: batches went out as the buffer filled, not all yet. */
    assert_true(S.batches >= 2);
    assert_true(S.sunk_len < NCLIENTS * PER_CLIENT * 4000);
    stop(); /* the rest is flushed here */
    check_numbered(S.sunk);
    cleanup();
}

static void test_a_log_file_gets_every_line_by_shutdown(void **state)
{
    char dir[] = "/tmp/hp-accesslog-XXXXXX", path[64];
    static char text[NCLIENTS * PER_CLIENT * 4200];
    ssize_t n;
    int fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/access.log", dir);
    start(HP_ACCESSLOG_COMBINED, path, 60000);
    send_numbered();
    stop();
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    assert_true(n > 0 && (size_t)n < sizeof(text) - 1);
    text[n] = '\0';
    check_numbered(text);
    unlink(path);
    rmdir(dir);
    cleanup();
}

/* ---- escaping ----------------------------------------------------------- */

/* What accesslog.h says a field becomes (text formats, or JSON). */
static size_t expect_escaped(char *out, const unsigned char *p, size_t n, bool json)
{
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];

        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            out[w++] = (char)ch;
        else if (json && (ch == '"' || ch == '\\'))
            w += (size_t)sprintf(out + w, "\\%c", ch);
        else
            w += (size_t)sprintf(out + w, json ? "\\u00%02x" : "\\x%02x", ch);
    }
    out[w] = '\0';
    return w;
}

#define MAXLEN 40

/* One case: a target and a user agent of one length, with one special byte at one position. */
struct esc_case {
    unsigned char target[MAXLEN + 2];
    size_t target_len;
    unsigned char agent[MAXLEN + 1];
    size_t agent_len;
    bool agent_last; /* the user agent as the last field: near the head's end */
};

#define NCASES ((MAXLEN + 1) * (MAXLEN + 1) * 2)

static struct esc_case cases[NCASES];

/*
 * Fill the cases: lengths 0..MAXLEN, the special byte at each position (or
 * none), the user agent first or last among the fields. Targets take '"'
 * and '\' (all the parser lets through that needs escaping); values take
 * those, obs-text and HTAB (inside only: the parser trims it at the ends).
 */
static size_t make_cases(void)
{
    static const unsigned char tspecial[] = {'"', '\\'};
    static const unsigned char vspecial[] = {'"', '\\', 0x80, 0xff, '\t', 0xc3};
    size_t n = 0;

    for (size_t len = 0; len <= MAXLEN; len++) {
        for (size_t pos = 0; pos <= len; pos++) { /* pos == len: no special byte */
            for (int last = 0; last < 2; last++) {
                struct esc_case *c = &cases[n];
                unsigned char vs = vspecial[(n / 2) % sizeof(vspecial)];

                c->target[0] = '/';
                for (size_t i = 0; i < len; i++)
                    c->target[1 + i] = (unsigned char)('a' + (i + len) % 26);
                c->target_len = len + 1;
                if (pos < len)
                    c->target[1 + pos] = tspecial[n % 2];
                for (size_t i = 0; i < len; i++)
                    c->agent[i] = (unsigned char)('A' + (i * 7 + len) % 26);
                c->agent_len = len;
                if (pos < len && !(vs == '\t' && (pos == 0 || pos == len - 1)))
                    c->agent[pos] = vs;
                c->agent_last = last != 0;
                n++;
            }
        }
    }
    return n;
}

static void send_case(struct rc_client *c, const struct esc_case *e)
{
    static const char tail[] = "Accept: */*\r\n";
    char agent_line[MAXLEN + 32];
    size_t al = 0;

    rc_send_str(c, "GET ");
    rc_send(c, e->target, e->target_len);
    rc_send_str(c, " HTTP/1.1\r\nHost: t\r\n");
    if (e->agent_len > 0) {
        memcpy(agent_line, "User-Agent: ", 12);
        memcpy(agent_line + 12, e->agent, e->agent_len);
        al = 12 + e->agent_len;
        memcpy(agent_line + al, "\r\n", 2);
        al += 2;
    }
    if (!e->agent_last)
        rc_send(c, agent_line, al);
    rc_send_str(c, tail);
    if (e->agent_last)
        rc_send(c, agent_line, al);
    rc_send_str(c, "\r\n");
}

/* The text between @p open and @p close in @p line. */
static void field_between(const char *line, const char *open, const char *close, char *out)
{
    const char *a = strstr(line, open), *b;

    assert_non_null(a);
    a += strlen(open);
    b = strstr(a, close);
    assert_non_null(b);
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
}

static void check_case(const char *line, const struct esc_case *e, bool json)
{
    char want[MAXLEN * 6 + 320], got[1024], target[MAXLEN * 6 + 16];

    expect_escaped(target, e->target, e->target_len, json);
    if (json) {
        field_between(line, "\"target\":\"", "\",\"version\"", got);
        assert_string_equal(got, target);
        field_between(line, "\"user_agent\":\"", "\"}", got);
        expect_escaped(want, e->agent, e->agent_len, true);
        assert_string_equal(got, want);
        return;
    }
    snprintf(want, sizeof(want), "\"GET %s HTTP/1.1\" 200 2 \"-\" \"", target);
    assert_non_null(strstr(line, want));
    field_between(strstr(line, want), want, "\"", got);
    if (e->agent_len == 0)
        strcpy(want, "-");
    else
        expect_escaped(want, e->agent, e->agent_len, false);
    assert_string_equal(got, want);
}

static void run_escaping(enum hp_accesslog_format format)
{
    static char *lines[NCASES + 1];
    size_t n = make_cases(), got;

    start(format, NULL, 60000);
    rc_open_tcp(&S.c[0], (uint16_t)hp_http_server_port(S.srv));
    for (size_t i = 0; i < n; i++)
        send_case(&S.c[0], &cases[i]);
    run_until_answered(1, n);
    stop();
    got = split_lines(S.sunk, lines, NCASES + 1);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++)
        check_case(lines[i], &cases[i], format == HP_ACCESSLOG_JSON);
    cleanup();
}

static void test_text_fields_are_escaped_at_every_length_and_position(void **state)
{
    (void)state;
    run_escaping(HP_ACCESSLOG_COMBINED);
}

static void test_json_fields_are_escaped_at_every_length_and_position(void **state)
{
    (void)state;
    run_escaping(HP_ACCESSLOG_JSON);
}

/* A field beyond 4096 bytes is cut with "..."; a head shorter than 16 bytes still logs. */
static void test_long_fields_are_cut_and_tiny_heads_logged(void **state)
{
    static char req[8300], want[4200];
    static char *lines[4];
    char agent[6000];
    int n;

    (void)state;
    memset(agent, 'z', sizeof(agent) - 1);
    agent[sizeof(agent) - 1] = '\0';
    agent[4095] = '"'; /* the last byte kept needs escaping */
    start(HP_ACCESSLOG_COMBINED, NULL, 60000);
    rc_open_tcp(&S.c[0], (uint16_t)hp_http_server_port(S.srv));
    rc_send_str(&S.c[0], "X / HTTP/1.0\nConnection: keep-alive\n\n");
    n = snprintf(req, sizeof(req), "GET /l HTTP/1.1\r\nHost: t\r\nUser-Agent: %s\r\n\r\n", agent);
    rc_send(&S.c[0], req, (size_t)n);
    rc_send_str(&S.c[0], "Y / HTTP/1.0\n\n");
    for (int i = 0; i < 20000 && S.requests < 3; i++) {
        rc_pump(&S.c[0]);
        assert_true(hp_loop_run_once(S.loop, 5) >= 0);
    }
    assert_int_equal(S.requests, 3);
    stop();
    assert_int_equal(split_lines(S.sunk, lines, 4), 3);
    assert_non_null(strstr(lines[0], "\"X / HTTP/1.0\" 200 2 \"-\" \"-\""));
    memset(want, 'z', 4095);
    memcpy(want + 4095, "\\x22...\"", 9);
    assert_non_null(strstr(lines[1], want));
    assert_non_null(strstr(lines[2], "\"Y / HTTP/1.0\" 200 2 \"-\" \"-\""));
    cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_request_is_logged_in_order_and_flushed_at_shutdown),
        cmocka_unit_test(test_a_log_file_gets_every_line_by_shutdown),
        cmocka_unit_test(test_text_fields_are_escaped_at_every_length_and_position),
        cmocka_unit_test(test_json_fields_are_escaped_at_every_length_and_position),
        cmocka_unit_test(test_long_fields_are_cut_and_tiny_heads_logged),
    };

    return cmocka_run_group_tests_name("http/accesslog", tests, NULL, NULL);
}
