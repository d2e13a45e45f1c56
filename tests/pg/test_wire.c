/*
 * tests/pg/test_wire.c - the module's own protocol code (wire mode) against
 * a scripted server: a thread that accepts libpq's connection, answers its
 * startup as PostgreSQL does (trust), and answers each query's Sync with the
 * next reply of its script, as given. Answers cut into single bytes, a value
 * larger than the input buffer, a notification inside an answer, and
 * hostile replies: each of those must break the connection with -EPROTO,
 * run the query's callback once, and leave the pool usable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/pg.h>

#include "testutil.h"

#define IO_TIMEOUT_MS 10000

/* ---- building backend messages ----------------------------------------- */

struct bytes {
    char *p;
    size_t len;
};

static void put(struct bytes *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->len + n);
    assert_non_null(b->p);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put32(struct bytes *b, uint32_t v)
{
    uint32_t n = htonl(v);

    put(b, &n, 4);
}

static void put16(struct bytes *b, uint16_t v)
{
    uint16_t n = htons(v);

    put(b, &n, 2);
}

/* A message: type, length, then the body given as (pointer, length) pairs up to NULL. */
static void msg(struct bytes *b, char type, const void *body, size_t len)
{
    put(b, &type, 1);
    put32(b, (uint32_t)len + 4);
    if (len)
        put(b, body, len);
}

static void rowdesc(struct bytes *b, int cols, const char *const *names)
{
    struct bytes m = {0};

    put16(&m, (uint16_t)cols);
    for (int i = 0; i < cols; i++) {
        put(&m, names[i], strlen(names[i]) + 1);
        put32(&m, 0);  /* table */
        put16(&m, 0);  /* column */
        put32(&m, 25); /* text */
        put16(&m, 0xffff);
        put32(&m, 0xffffffff);
        put16(&m, 0); /* text format */
    }
    msg(b, 'T', m.p, m.len);
    free(m.p);
}

static void datarow(struct bytes *b, int cols, const char *const *vals, const size_t *lens)
{
    struct bytes m = {0};

    put16(&m, (uint16_t)cols);
    for (int i = 0; i < cols; i++) {
        if (!vals[i]) {
            put32(&m, 0xffffffff);
            continue;
        }
        put32(&m, (uint32_t)lens[i]);
        put(&m, vals[i], lens[i]);
    }
    msg(b, 'D', m.p, m.len);
    free(m.p);
}

static void ready(struct bytes *b)
{
    msg(b, 'Z', "I", 1);
}

/* A whole answer to a query: one column "v" and one row of @p n bytes of @p v. */
static void answer(struct bytes *b, const char *v, size_t n)
{
    const char *names[] = {"v"};

    msg(b, '1', NULL, 0);
    msg(b, '2', NULL, 0);
    rowdesc(b, 1, names);
    datarow(b, 1, &v, &n);
    msg(b, 'C', "SELECT 1", 9);
    ready(b);
}

/* ---- the scripted server ----------------------------------------------- */

struct script {
    struct bytes replies[4]; /* one per Sync, in order */
    int nreplies;
    bool bytewise; /* each reply written one byte per send(2) */
    int lfd;
    uint16_t port;
    pthread_t thread;
    atomic_int conns; /* connections accepted */
    /* gate_at > 0: the reply to Sync number gate_at (1, 2, ...) waits until gate[0] is readable. */
    int gate_at;
    int gate[2];
    atomic_bool at_gate; /* that Sync has arrived */
    atomic_int early;    /* when the gate opened, more was already readable: 1, else 0 */
};

static bool wait_fd(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};

    return poll(&p, 1, IO_TIMEOUT_MS) == 1;
}

static bool read_n(int fd, void *buf, size_t n)
{
    char *p = buf;

    while (n) {
        ssize_t r;

        if (!wait_fd(fd, POLLIN) || (r = read(fd, p, n)) <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool write_n(int fd, const char *p, size_t n, bool bytewise)
{
    while (n) {
        ssize_t w = send(fd, p, bytewise ? 1 : n, MSG_NOSIGNAL);

        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Startup: the packet, then trust, a cancel key, one parameter, ready. */
static bool handshake(int fd)
{
    uint32_t len;
    char buf[1024];
    struct bytes b = {0};
    bool ok;

    if (!read_n(fd, &len, 4) || (len = ntohl(len)) < 8 || len > sizeof(buf) ||
        !read_n(fd, buf, len - 4))
        return false;
    put(&b, "R", 1);
    put32(&b, 8);
    put32(&b, 0); /* AuthenticationOk */
    put(&b, "K", 1);
    put32(&b, 12);
    put32(&b, 4242);
    put32(&b, 99);
    msg(&b, 'S', "server_version\00015.0", 20);
    ready(&b);
    ok = write_n(fd, b.p, b.len, false);
    free(b.p);
    return ok;
}

static void *serve(void *arg)
{
    struct script *s = arg;

    while (wait_fd(s->lfd, POLLIN)) {
        int fd = accept(s->lfd, NULL, NULL);
        int next = 0;

        if (fd < 0)
            break;
        s->conns++;
        if (!handshake(fd)) {
            close(fd);
            continue;
        }
        /* Frontend messages: type and length; each Sync gets the next reply. */
        for (;;) {
            char type;
            uint32_t len;
            char body[4096];

            if (!read_n(fd, &type, 1) || !read_n(fd, &len, 4))
                break;
            len = ntohl(len) - 4;
            while (len) {
                size_t n = len < sizeof(body) ? len : sizeof(body);

                if (!read_n(fd, body, n))
                    break;
                len -= (uint32_t)n;
            }
            if (type == 'X' || len)
                break;
            if (type == 'S' && next < s->nreplies) {
                const struct bytes *r = &s->replies[next++];

                if (next == s->gate_at && s->conns == 1) {
                    struct pollfd more = {.fd = fd, .events = POLLIN};

                    s->at_gate = true;
                    if (!wait_fd(s->gate[0], POLLIN))
                        break;
                    s->early = poll(&more, 1, 0) == 1;
                }

                if (!write_n(fd, r->p, r->len, s->bytewise))
                    break;
            }
        }
        close(fd);
        if (s->conns >= 8)
            break;
    }
    return NULL;
}

static void script_start(struct script *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(sa);

    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &n), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void script_stop(struct script *s)
{
    shutdown(s->lfd, SHUT_RDWR); /* ends the thread's wait for another connection */
    pthread_join(s->thread, NULL);
    close(s->lfd);
    for (int i = 0; i < s->nreplies; i++)
        free(s->replies[i].p);
}

/* ---- the client side --------------------------------------------------- */

struct got {
    bool done;
    unsigned calls;
    int status;
    char err[128];
    char cmd[32];
    int rows;
    size_t len;
    char *text; /* the first value, copied */
};

static void on_got(const struct hp_pg_result *res, int status, void *arg)
{
    struct got *g = arg;

    g->calls++;
    g->done = true;
    g->status = status;
    g->rows = hp_pg_result_rows(res);
    g->len = hp_pg_result_len(res, 0, 0);
    free(g->text);
    g->text = strdup(hp_pg_result_text(res, 0, 0));
    snprintf(g->err, sizeof(g->err), "%s", hp_pg_result_error(res));
    snprintf(g->cmd, sizeof(g->cmd), "%s", hp_pg_result_command(res));
}

struct notified {
    bool done;
    char text[64];
};

static void on_notify(struct hp_pg_pool *pool, const char *channel, const char *payload, int pid,
                      void *arg)
{
    struct notified *n = arg;

    (void)pool;
    snprintf(n->text, sizeof(n->text), "%s:%s:%d", channel, payload, pid);
    n->done = true;
}

struct fixture {
    struct hp_loop *loop;
    struct hp_test_log log;
    struct script s;
    struct hp_pg_pool *pool;
    struct notified note;
    char conninfo[160];
    const struct hostile_case *hostile; /* the test's, if it runs one */
};

/* A hostile reply, made into the script by make(). */
struct hostile_case {
    void (*make)(struct bytes *);
};

/* *state: NULL, or the hostile_case of the test (cmocka's initial state). */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->hostile = *state;
    f->loop = hp_test_loop_new(&f->log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (f->pool)
        hp_pg_pool_free(f->pool);
    for (int i = 0; i < 3; i++)
        hp_loop_run_once(f->loop, 0);
    hp_test_loop_free(f->loop);
    script_stop(&f->s);
    free(f);
    return 0;
}

static void start(struct fixture *f, unsigned pipeline_hold)
{
    struct hp_pg_pool_opts o = {.max_conns = 1,
                                .pipeline_hold = pipeline_hold,
                                .reconnect_min_ms = 5,
                                .reconnect_max_ms = 5,
                                .query_timeout_ms = IO_TIMEOUT_MS,
                                .on_notify = on_notify,
                                .notify_arg = &f->note};

    script_start(&f->s);
    snprintf(f->conninfo, sizeof(f->conninfo),
             "host=127.0.0.1 port=%u user=u dbname=d sslmode=disable gssencmode=disable",
             f->s.port);
    o.conninfo = f->conninfo;
    assert_int_equal(hp_pg_pool_new(&f->pool, f->loop, &o), 0);
}

static void run_query(struct fixture *f, struct got *g)
{
    free(g->text);
    memset(g, 0, sizeof(*g));
    assert_int_equal(hp_pg_query(f->pool, "SELECT v", 0, NULL, NULL, 0, on_got, g), 0);
    hp_test_run_until(f->loop, &g->done);
    assert_int_equal(g->calls, 1);
}

static void test_answers_cut_into_single_bytes_are_read_whole(void **state)
{
    struct fixture *f = *state;
    struct bytes *r = &f->s.replies[0];
    size_t big = 100000; /* larger than the input buffer's first size */
    char *v = malloc(big);
    struct got g = {0};

    memset(v, 'x', big);
    f->s.bytewise = true;
    msg(r, 'N', "SNOTICE\0Mjust so\0", 18); /* a notice, ignored */
    msg(r, 'A', "\0\0\0\7chan\0hi there\0", 18);
    answer(r, "7777", 4);
    answer(&f->s.replies[1], v, big);
    f->s.nreplies = 2;
    start(f, 0);
    run_query(f, &g);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.rows, 1);
    assert_string_equal(g.text, "7777");
    assert_string_equal(g.cmd, "SELECT 1");
    assert_true(f->note.done);
    assert_string_equal(f->note.text, "chan:hi there:7");
    f->s.bytewise = false;
    run_query(f, &g);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.len, big);
    assert_int_equal(memcmp(g.text, v, big), 0);
    free(g.text);
    free(v);
}

/*
 * The server holds its answer to the first query while two more are
 * written (and the loop turns); returns whether they had reached it by
 * then. Each query gets its own answer in the end.
 */
static bool sent_while_the_server_works(struct fixture *f, unsigned pipeline_hold)
{
    struct got g[3] = {{0}};
    const char *want[3] = {"a", "b", "c"};

    for (int i = 0; i < 3; i++)
        answer(&f->s.replies[i], want[i], 1);
    f->s.nreplies = 3;
    f->s.gate_at = 1;
    assert_int_equal(pipe(f->s.gate), 0);
    start(f, pipeline_hold);
    assert_int_equal(hp_pg_query(f->pool, "SELECT v", 0, NULL, NULL, 0, on_got, &g[0]), 0);
    for (int i = 0; i < 1000 && !f->s.at_gate; i++)
        assert_true(hp_loop_run_once(f->loop, 10) >= 0);
    assert_true(f->s.at_gate);
    for (int i = 1; i < 3; i++)
        assert_int_equal(hp_pg_query(f->pool, "SELECT v", 0, NULL, NULL, 0, on_got, &g[i]), 0);
    for (int i = 0; i < 3; i++) /* each iteration's end sends what it wrote, or holds it */
        assert_true(hp_loop_run_once(f->loop, 0) >= 0);
    assert_int_equal(write(f->s.gate[1], "x", 1), 1);
    hp_test_run_until(f->loop, &g[2].done);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].status, 0);
        assert_string_equal(g[i].text, want[i]);
        free(g[i].text);
    }
    close(f->s.gate[0]);
    close(f->s.gate[1]);
    return f->s.early;
}

static void test_queries_leave_at_the_end_of_their_iteration(void **state)
{
    assert_true(sent_while_the_server_works(*state, 0));
}

static void test_pipeline_hold_keeps_queries_for_the_next_answer(void **state)
{
    assert_false(sent_while_the_server_works(*state, 1));
}

/* A hostile reply: the query fails with -EPROTO, once; the next query gets a new connection. */
static void test_hostile_reply(void **state)
{
    struct fixture *f = *state;
    struct got g = {0};

    f->hostile->make(&f->s.replies[0]);
    answer(&f->s.replies[1], "ok", 2); /* never sent on the broken connection */
    f->s.nreplies = 2;
    start(f, 0);
    run_query(f, &g);
    assert_int_equal(g.status, -EPROTO);
    assert_string_equal(g.err, "malformed message from the server");
    free(g.text);
}

static void bad_length(struct bytes *b)
{
    put(b, "D", 1);
    put32(b, 3); /* shorter than its own length field */
}

static void huge_length(struct bytes *b)
{
    put(b, "D", 1);
    put32(b, 0x7fffffff); /* over the 1 GiB a message may have */
    put(b, "\0\1", 2);
}

static void row_wider_than_description(struct bytes *b)
{
    const char *names[] = {"v"};
    const char *vals[] = {"1", "2"};
    size_t lens[] = {1, 1};

    rowdesc(b, 1, names);
    datarow(b, 2, vals, lens);
}

static void value_past_the_message(struct bytes *b)
{
    const char *names[] = {"v"};
    struct bytes m = {0};

    rowdesc(b, 1, names);
    put16(&m, 1);
    put32(&m, 50); /* 50 bytes said, 3 given */
    put(&m, "abc", 3);
    msg(b, 'D', m.p, m.len);
    free(m.p);
}

static void unknown_message(struct bytes *b)
{
    msg(b, 'q', "?", 1);
}

static void unterminated_error(struct bytes *b)
{
    msg(b, 'E', "SERROR\0Mno end", 14);
}

static void row_before_description(struct bytes *b)
{
    const char *vals[] = {"1"};
    size_t lens[] = {1};

    datarow(b, 1, vals, lens);
}

static void test_pool_recovers_after_a_hostile_reply(void **state)
{
    struct fixture *f = *state;
    struct got g = {0};

    unknown_message(&f->s.replies[0]);
    answer(&f->s.replies[1], "later", 5); /* the second connection's first answer */
    f->s.nreplies = 2;
    start(f, 0);
    run_query(f, &g);
    assert_int_equal(g.status, -EPROTO);
    /* The scripted server starts each connection's script over: reply 0 again. */
    f->s.replies[0].len = 0;
    answer(&f->s.replies[0], "again", 5);
    run_query(f, &g);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.text, "again");
    assert_true(f->s.conns >= 2);
    free(g.text);
}

/* One test per hostile reply, named after the function that makes it. */
#define HOSTILE(make)                                                          \
    {                                                                          \
        .name = "test_hostile_reply: " #make, .test_func = test_hostile_reply, \
        .setup_func = setup, .teardown_func = teardown,                        \
        .initial_state = &(struct hostile_case){make},                         \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answers_cut_into_single_bytes_are_read_whole, setup,
                                        teardown),
        HOSTILE(bad_length),
        HOSTILE(huge_length),
        HOSTILE(row_wider_than_description),
        HOSTILE(value_past_the_message),
        HOSTILE(unknown_message),
        HOSTILE(unterminated_error),
        HOSTILE(row_before_description),
        cmocka_unit_test_setup_teardown(test_pool_recovers_after_a_hostile_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_leave_at_the_end_of_their_iteration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_hold_keeps_queries_for_the_next_answer, setup,
                                        teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("pg/wire", tests, NULL, NULL);
}
