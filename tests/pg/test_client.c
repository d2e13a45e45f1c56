/*
 * tests/pg/test_client.c - the PostgreSQL client against a real server
 * started by the test (tests/support/pgtmp.sh): queries, typed results,
 * errors, pipelining, prepared statements, the pool, transactions,
 * LISTEN/NOTIFY, timeouts and cancellation, and faults (refused, garbage,
 * a killed backend, a restart, a stopped server, freeing with queries in
 * flight). Every callback is counted: exactly once, never inside the call.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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

#include "pgserver.h"
#include "testutil.h"

static struct hp_test_pg server;
static bool have_server;
/* HP_TEST_PG_LIBPQ_IO=1: every query through libpq (opts.libpq_io), as on TLS connections. */
static bool libpq_io;

/* One expected answer. */
struct call {
    int status;
    unsigned calls; /* must end at exactly 1 */
    bool in_call;   /* set while the starting call runs: a callback then is a bug */
    char text[128];
    char sqlstate[8];
    char err[256];
    int64_t num;
    size_t *done;
};

static bool g_in_call;

static void on_result(const struct hp_pg_result *res, int status, void *arg)
{
    struct call *c = arg;
    const char *st = hp_pg_result_sqlstate(res);

    assert_false(g_in_call);
    c->calls++;
    c->status = status;
    snprintf(c->text, sizeof(c->text), "%s", hp_pg_result_text(res, 0, 0));
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st ? st : "");
    snprintf(c->err, sizeof(c->err), "%s", hp_pg_result_error(res));
    if (hp_pg_result_int64(res, 0, 0, &c->num) != 0)
        c->num = -1;
    if (c->done)
        (*c->done)++;
}

struct fixture {
    struct hp_loop *loop;
    struct hp_pg_pool *pool;
    struct hp_test_log log;
    size_t done;
};

static struct hp_pg_pool *pool_new(struct fixture *f, struct hp_pg_pool_opts *o)
{
    struct hp_pg_pool *pool = NULL;

    if (!o->conninfo)
        o->conninfo = server.conninfo;
    o->libpq_io = libpq_io;
    assert_int_equal(hp_pg_pool_new(&pool, f->loop, o), 0);
    return pool;
}

static int setup(void **state)
{
    struct fixture *f;

    if (!have_server)
        return 0;
    f = calloc(1, sizeof(*f));
    f->loop = hp_test_loop_new(&f->log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (!f)
        return 0;
    if (f->pool)
        hp_pg_pool_free(f->pool);
    /* Let anything still posted (cancel outcomes) run, then the loop must be empty. */
    for (int i = 0; i < 3; i++)
        hp_loop_run_once(f->loop, 0);
    hp_test_loop_free(f->loop);
    free(f);
    return 0;
}

#define NEED_SERVER()       \
    do {                    \
        if (!have_server) { \
            skip();         \
        }                   \
    } while (0)

static int query(struct fixture *f, const char *sql, int n, const char *const *v, struct call *c)
{
    int err;

    c->done = &f->done;
    g_in_call = true;
    err = hp_pg_query(f->pool, sql, n, v, NULL, 0, on_result, c);
    g_in_call = false;
    return err;
}

static void run_count(struct fixture *f, size_t want)
{
    hp_test_run_until_count(f->loop, &f->done, want);
}

/* Run a query on the pool and wait for it. */
static void sync_query(struct fixture *f, const char *sql, struct call *c)
{
    size_t want = f->done + 1;

    memset(c, 0, sizeof(*c));
    assert_int_equal(query(f, sql, 0, NULL, c), 0);
    run_count(f, want);
    assert_int_equal(c->calls, 1);
}

/* ---- queries and results ------------------------------------------------ */

struct typed {
    bool ran;
};

static void on_typed(const struct hp_pg_result *res, int status, void *arg)
{
    struct typed *t = arg;
    int i = 0;
    int64_t big = 0;
    double d = 0;
    bool b = false;

    assert_int_equal(status, 0);
    assert_int_equal(hp_pg_result_rows(res), 1);
    assert_int_equal(hp_pg_result_cols(res), 10);
    assert_string_equal(hp_pg_result_col_name(res, 0), "a");
    assert_int_equal(hp_pg_result_col_index(res, "txt"), 1);
    assert_int_equal(hp_pg_result_int(res, 0, 0, &i), 0);
    assert_int_equal(i, 42);
    assert_string_equal(hp_pg_result_text(res, 0, 1), "it's \"quoted\"");
    assert_int_equal(hp_pg_result_len(res, 0, 1), 13);
    assert_true(hp_pg_result_is_null(res, 0, 2));
    assert_int_equal(hp_pg_result_int(res, 0, 2, &i), -ENODATA);
    assert_string_equal(hp_pg_result_text(res, 0, 2), "");
    assert_int_equal(hp_pg_result_double(res, 0, 3, &d), 0);
    assert_true(d > 3.49 && d < 3.51);
    assert_int_equal(hp_pg_result_bool(res, 0, 4, &b), 0);
    assert_true(b);
    assert_int_equal(hp_pg_result_int64(res, 0, 5, &big), 0);
    assert_true(big == 9000000000LL);
    assert_int_equal(hp_pg_result_int(res, 0, 5, &i), -ERANGE);
    assert_int_equal(hp_pg_result_int(res, 0, 6, &i), -EINVAL);
    assert_int_equal(hp_pg_result_int(res, 1, 0, &i), -ERANGE);
    assert_int_equal(hp_pg_result_int64(res, 0, 7, &big), 0);
    assert_true(big == INT64_MIN);
    assert_int_equal(hp_pg_result_int64(res, 0, 8, &big), -ERANGE);
    assert_int_equal(hp_pg_result_int(res, 0, 9, &i), 0);
    assert_true(i == INT32_MIN);
    assert_int_equal(hp_pg_result_int(res, 0, 1, &i), -EINVAL);
    assert_int_equal(hp_pg_result_double(res, 0, 1, &d), -EINVAL);
    assert_int_equal(hp_pg_result_bool(res, 0, 0, &b), -EINVAL);
    assert_int_equal(hp_pg_result_int(res, 0, 10, &i), -ERANGE);
    assert_true(hp_pg_result_is_null(res, 5, 0));
    assert_string_equal(hp_pg_result_command(res), "SELECT 1");
    assert_int_equal(hp_pg_result_affected(res), 1);
    assert_string_equal(hp_pg_result_error(res), "");
    assert_null(hp_pg_result_sqlstate(res));
    t->ran = true;
}

static void test_query_with_parameters_gives_typed_values(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {0};
    const char *v[] = {"42",
                       "it's \"quoted\"",
                       NULL,
                       "3.5",
                       "true",
                       "9000000000",
                       "12abc",
                       "-9223372036854775808",
                       "9223372036854775808",
                       "-2147483648"};
    struct typed t = {0};

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    assert_int_equal(hp_pg_query(f->pool,
                                 "SELECT $1::int AS a, $2::text AS txt, $3::int, $4::float8, "
                                 "$5::bool, $6::int8, $7::text, $8::int8, $9::numeric, $10::int",
                                 10, v, NULL, 0, on_typed, &t),
                     0);
    hp_test_run_until(f->loop, &t.ran);
}

/*
 * The module's own protocol code and libpq answer alike: the same queries on
 * a pool of each kind, every accessor compared (names with identifier case
 * folding, NULLs, empty strings, multi-byte text, command tags and counts,
 * server errors with their SQLSTATE).
 */
#define SAME_MAX 9

struct answer {
    int status, rows, cols;
    char dump[1024];
};

struct same_run {
    struct answer a[2][SAME_MAX];
    struct answer p[2][3];
    size_t done;
};

struct same_call {
    struct answer *a;
    size_t *done;
};

static void on_same(const struct hp_pg_result *res, int status, void *arg)
{
    struct same_call *sc = arg;
    struct answer *a = sc->a;
    size_t n = 0;
    const char *st = hp_pg_result_sqlstate(res);

    a->status = status;
    a->rows = hp_pg_result_rows(res);
    a->cols = hp_pg_result_cols(res);
    n += (size_t)snprintf(
        a->dump + n, sizeof(a->dump) - n, "[%s|%s|%lld|%s|%d|%d]", hp_pg_result_command(res),
        hp_pg_result_error(res), (long long)hp_pg_result_affected(res), st ? st : "-",
        hp_pg_result_col_index(res, "MixedCase"), hp_pg_result_col_index(res, "\"MixedCase\""));
    for (int c = 0; c < a->cols && n < sizeof(a->dump); c++)
        n += (size_t)snprintf(a->dump + n, sizeof(a->dump) - n, "<%s>",
                              hp_pg_result_col_name(res, c));
    for (int r = 0; r < a->rows && n < sizeof(a->dump); r++) {
        for (int c = 0; c < a->cols && n < sizeof(a->dump); c++)
            n += (size_t)snprintf(a->dump + n, sizeof(a->dump) - n, "%s%zu:%s,",
                                  hp_pg_result_is_null(res, r, c) ? "N" : "",
                                  hp_pg_result_len(res, r, c), hp_pg_result_text(res, r, c));
    }
    (*sc->done)++;
}

static void test_own_protocol_code_and_libpq_give_the_same_answers(void **state)
{
    static const char *const sqls[SAME_MAX] = {
        "SELECT 1 a, '' \"MixedCase\", NULL::text mixedcase, 'h\u00e9llo \u65e5\u672c' u",
        "SELECT g, g * 2 AS twice FROM generate_series(1, 5) g",
        "SELECT 1 WHERE false",
        "CREATE TEMP TABLE IF NOT EXISTS same_t (id int)",
        "INSERT INTO same_t SELECT generate_series(1, 3)",
        "UPDATE same_t SET id = id + 10 WHERE id > 1",
        "SELECT * FROM no_such_table_here",
        "",
        "SELECT FROM generate_series(1, 3)",
    };
    struct fixture *f = *state;
    struct hp_pg_pool *pools[2];
    struct same_run *run = calloc(1, sizeof(*run));
    struct same_call calls[2][SAME_MAX];
    struct same_call pcalls[2][3];

    NEED_SERVER();
    for (int m = 0; m < 2; m++) {
        struct hp_pg_pool_opts o = {.max_conns = 1};

        pools[m] = pool_new(f, &o);
        hp_pg_pool_free(pools[m]); /* pool_new() set libpq_io from the environment: make it ours */
        o.libpq_io = m == 1;
        assert_int_equal(hp_pg_pool_new(&pools[m], f->loop, &o), 0);
        for (int i = 0; i < SAME_MAX; i++) {
            calls[m][i] = (struct same_call){&run->a[m][i], &run->done};
            assert_int_equal(
                hp_pg_query(pools[m], sqls[i], 0, NULL, NULL, 0, on_same, &calls[m][i]), 0);
        }
        /* A prepared statement three times: the first run describes it, the others reuse that. */
        for (int i = 0; i < 3; i++) {
            const char *v[1] = {i == 1 ? NULL : "x"};

            pcalls[m][i] = (struct same_call){&run->p[m][i], &run->done};
            assert_int_equal(hp_pg_query_prepared(pools[m], "same_p",
                                                  "SELECT $1::text AS \"Val\", 2 AS two, NULL AS n",
                                                  1, v, NULL, 0, on_same, &pcalls[m][i]),
                             0);
        }
    }
    hp_test_run_until_count(f->loop, &run->done, 2 * (SAME_MAX + 3));
    for (int i = 0; i < 3; i++) {
        assert_string_equal(run->p[0][i].dump, run->p[1][i].dump);
        assert_string_equal(run->p[0][i].dump,
                            i == 1 ? "[SELECT 1||1|-|-1|-1]<Val><two><n>N0:,1:2,N0:,"
                                   : "[SELECT 1||1|-|-1|-1]<Val><two><n>1:x,1:2,N0:,");
    }
    for (int i = 0; i < SAME_MAX; i++) {
        assert_int_equal(run->a[0][i].status, run->a[1][i].status);
        assert_int_equal(run->a[0][i].rows, run->a[1][i].rows);
        assert_int_equal(run->a[0][i].cols, run->a[1][i].cols);
        assert_string_equal(run->a[0][i].dump, run->a[1][i].dump);
    }
    /* And they are what PostgreSQL means. */
    assert_string_equal(run->a[0][0].dump,
                        "[SELECT 1||1|-|2|1]<a><MixedCase><mixedcase><u>1:1,0:,N0:,13:h\u00e9llo "
                        "\u65e5\u672c,");
    assert_int_equal(run->a[0][1].rows, 5);
    assert_string_equal(run->a[0][2].dump, "[SELECT 0||0|-|-1|-1]<?column?>");
    assert_string_equal(run->a[0][4].dump, "[INSERT 0 3||3|-|-1|-1]");
    assert_string_equal(run->a[0][5].dump, "[UPDATE 2||2|-|-1|-1]");
    assert_int_equal(run->a[0][6].status, HP_PG_ESERVER);
    assert_true(strstr(run->a[0][6].dump, "|42P01|") != NULL);
    assert_string_equal(run->a[0][7].dump, "[||-1|-|-1|-1]");
    assert_int_equal(run->a[0][8].rows, 3); /* rows without columns */
    assert_int_equal(run->a[0][8].cols, 0);
    for (int m = 0; m < 2; m++)
        hp_pg_pool_free(pools[m]);
    free(run);
}

/* COPY out completes with its tag and no rows; COPY in breaks the connection, not the pool. */
static void test_copy_out_completes_and_copy_in_is_refused(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct call c;

    NEED_SERVER();
    if (libpq_io) {
        print_message("skipped with libpq_io: libpq's pipeline mode has no COPY\n");
        return;
    }
    f->pool = pool_new(f, &o);
    sync_query(f, "COPY (SELECT g FROM generate_series(1, 3) g) TO STDOUT", &c);
    assert_int_equal(c.status, 0);
    assert_string_equal(c.text, "");
    sync_query(f, "CREATE TEMP TABLE copy_in (v int)", &c);
    assert_int_equal(c.status, 0);
    sync_query(f, "COPY copy_in FROM STDIN", &c);
    assert_int_equal(c.status, -EPROTO);
    assert_string_equal(c.err, "COPY FROM STDIN is not supported");
    sync_query(f, "SELECT 5", &c);
    assert_int_equal(c.status, 0);
    assert_string_equal(c.text, "5");
}

static void test_lengths_and_copies_of_parameters(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {0};
    char buf[2][16];
    const char *v[2] = {buf[0], buf[1]};
    int lens[2] = {3, 2};
    struct call c = {0}, d = {0};

    NEED_SERVER();
    f->pool = pool_new(f, &o); /* not connected yet: both queries wait, with copies */
    memcpy(buf[0], "abcdef", 6);
    memcpy(buf[1], "xyz", 3);
    c.done = d.done = &f->done;
    assert_int_equal(
        hp_pg_query(f->pool, "SELECT $1::text || $2::text", 2, v, lens, 0, on_result, &c), 0);
    strcpy(buf[0], "77");
    strcpy(buf[1], "1");
    assert_int_equal(hp_pg_query(f->pool, "SELECT $1::int + $2::int", 2, v, NULL, 0, on_result, &d),
                     0);
    memset(buf, 'Z', sizeof(buf)); /* the call kept nothing of ours */
    run_count(f, 2);
    assert_int_equal(c.status, 0);
    assert_string_equal(c.text, "abcxy");
    assert_int_equal(d.status, 0);
    assert_int_equal(d.num, 78);
}

static void test_large_parameters_and_results_flow_without_blocking(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    enum { BIG = 8 << 20 };
    char *big = malloc(BIG + 1);
    const char *v[1] = {big};
    struct call c[3] = {{0}}, rows = {0}, warm;

    NEED_SERVER();
    memset(big, 'x', BIG);
    big[BIG] = '\0';
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm);
    /* 24 MiB of parameters on one connection: more than the socket takes at once. */
    for (int i = 0; i < 3; i++) {
        c[i].done = &f->done;
        assert_int_equal(hp_pg_query(f->pool, "SELECT length($1)", 1, v, NULL, 0, on_result, &c[i]),
                         0);
    }
    free(big); /* copied or sent: the call kept nothing */
    rows.done = &f->done;
    assert_int_equal(hp_pg_query(f->pool,
                                 "SELECT count(*) FROM (SELECT repeat('y', 100) "
                                 "FROM generate_series(1, 200000)) s",
                                 0, NULL, NULL, 0, on_result, &rows),
                     0);
    run_count(f, 5);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].status, 0);
        assert_int_equal(c[i].num, BIG);
    }
    assert_int_equal(rows.num, 200000);
}

static void test_server_error_carries_message_and_sqlstate(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {0};
    struct call c;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT * FROM no_such_table", &c);
    assert_int_equal(c.status, HP_PG_ESERVER);
    assert_string_equal(c.sqlstate, "42P01");
    assert_non_null(strstr(c.err, "no_such_table"));
    assert_string_equal(hp_pg_strerror(HP_PG_ESERVER), "the server reported an error");
}

static void test_bad_arguments_are_refused_without_callback(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {0};
    struct call c = {0};

    NEED_SERVER();
    assert_int_equal(hp_pg_pool_new(&f->pool, f->loop, &o), -EINVAL); /* no conninfo */
    o.conninfo = server.conninfo;
    o.min_conns = 3;
    o.max_conns = 2;
    assert_int_equal(hp_pg_pool_new(&f->pool, f->loop, &o), -EINVAL);
    assert_null(f->pool);
    o.min_conns = o.max_conns = 0;
    f->pool = pool_new(f, &o);
    assert_int_equal(hp_pg_query(f->pool, NULL, 0, NULL, NULL, 0, on_result, &c), -EINVAL);
    assert_int_equal(hp_pg_query(f->pool, "SELECT 1", 0, NULL, NULL, 0, NULL, &c), -EINVAL);
    assert_int_equal(hp_pg_query(f->pool, "SELECT 1", 1, NULL, NULL, 0, on_result, &c), -EINVAL);
    assert_int_equal(hp_pg_query_prepared(f->pool, "", "SELECT 1", 0, NULL, NULL, 0, on_result, &c),
                     -EINVAL);
    assert_int_equal(hp_pg_listen(f->pool, "", NULL, NULL), -EINVAL);
    for (int i = 0; i < 5; i++)
        hp_loop_run_once(f->loop, 10);
    assert_int_equal(c.calls, 0);
}

/* ---- pipelining ---------------------------------------------------------- */

static void test_failing_query_does_not_abort_its_neighbours(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct call c[3] = {{0}};
    struct call warm;
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm); /* connected */
    assert_int_equal(query(f, "SELECT 1", 0, NULL, &c[0]), 0);
    assert_int_equal(query(f, "SELECT 1/0", 0, NULL, &c[1]), 0);
    assert_int_equal(query(f, "SELECT 3", 0, NULL, &c[2]), 0);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.in_flight, 3); /* all three sent back to back on one connection */
    assert_int_equal(st.conns, 1);
    run_count(f, 4);
    assert_int_equal(c[0].status, 0);
    assert_int_equal(c[0].num, 1);
    assert_int_equal(c[1].status, HP_PG_ESERVER);
    assert_string_equal(c[1].sqlstate, "22012");
    assert_int_equal(c[2].status, 0);
    assert_int_equal(c[2].num, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c[i].calls, 1);
}

/* 3000 callers at once on two connections, one in seven failing on the server. */
static void many_callers(struct fixture *f, unsigned pipeline_hold)
{
    struct hp_pg_pool_opts o = {
        .max_conns = 2, .max_pipeline = 64, .max_waiting = 4096, .pipeline_hold = pipeline_hold};
    enum { N = 3000 };
    struct call *c = calloc(N, sizeof(*c));
    char num[N][12];

    f->pool = pool_new(f, &o);
    for (int i = 0; i < N; i++) {
        const char *v[1] = {num[i]};

        snprintf(num[i], sizeof(num[i]), "%d", i);
        c[i].done = &f->done;
        if (i % 7 == 3)
            assert_int_equal(query(f, "SELECT 1/0", 0, NULL, &c[i]), 0);
        else
            assert_int_equal(hp_pg_query_prepared(f->pool, "plus", "SELECT $1::int * 2", 1, v, NULL,
                                                  0, on_result, &c[i]),
                             0);
    }
    run_count(f, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].calls, 1);
        if (i % 7 == 3) {
            assert_int_equal(c[i].status, HP_PG_ESERVER);
            assert_string_equal(c[i].sqlstate, "22012");
        } else {
            assert_int_equal(c[i].status, 0);
            assert_int_equal(c[i].num, 2 * i);
        }
    }
    free(c);
}

static void test_many_concurrent_callers_get_their_own_answers(void **state)
{
    NEED_SERVER();
    many_callers(*state, 0);
}

/*
 * With pipeline_hold, the queries written while the server works on
 * earlier ones leave with the next answers: every caller still gets its own.
 */
static void test_held_back_queries_get_their_own_answers(void **state)
{
    NEED_SERVER();
    many_callers(*state, 2);
}

static void test_prepared_once_per_connection(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct call c[20] = {{0}}, n, bad1 = {0}, bad2 = {0};

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    for (int i = 0; i < 20; i++) {
        c[i].done = &f->done;
        assert_int_equal(
            hp_pg_query_prepared(f->pool, "one", "SELECT 1", 0, NULL, NULL, 0, on_result, &c[i]),
            0);
    }
    run_count(f, 20);
    sync_query(f, "SELECT count(*) FROM pg_prepared_statements", &n);
    assert_int_equal(n.num, 1);
    /* A statement that does not prepare reports the server's error, every time. */
    bad1.done = bad2.done = &f->done;
    {
        char *name = strdup("bad"), *sql = strdup("SELEKT 1");

        assert_int_equal(
            hp_pg_query_prepared(f->pool, name, sql, 0, NULL, NULL, 0, on_result, &bad1), 0);
        free(name); /* the call kept neither */
        free(sql);
    }
    run_count(f, 22);
    assert_int_equal(
        hp_pg_query_prepared(f->pool, "bad", "SELEKT 1", 0, NULL, NULL, 0, on_result, &bad2), 0);
    run_count(f, 23);
    assert_int_equal(bad1.status, HP_PG_ESERVER);
    assert_string_equal(bad1.sqlstate, "42601");
    assert_int_equal(bad2.status, HP_PG_ESERVER);
    assert_string_equal(bad2.sqlstate, "42601");
    /* Deallocated behind the pool's back: one failure, then prepared again. */
    {
        struct call gone, d1 = {0}, d2 = {0};

        sync_query(f, "DEALLOCATE ALL", &gone);
        assert_int_equal(gone.status, 0);
        d1.done = d2.done = &f->done;
        assert_int_equal(
            hp_pg_query_prepared(f->pool, "one", "SELECT 1", 0, NULL, NULL, 0, on_result, &d1), 0);
        run_count(f, 25);
        assert_int_equal(d1.status, HP_PG_ESERVER);
        assert_string_equal(d1.sqlstate, "26000");
        assert_int_equal(
            hp_pg_query_prepared(f->pool, "one", "SELECT 1", 0, NULL, NULL, 0, on_result, &d2), 0);
        run_count(f, 26);
        assert_int_equal(d2.status, 0);
        assert_int_equal(d2.num, 1);
    }
}

/* ---- the pool ------------------------------------------------------------ */

static void test_full_wait_queue_is_an_immediate_error(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1, .max_waiting = 2};
    struct call c[3] = {{0}};

    NEED_SERVER();
    f->pool = pool_new(f, &o); /* nothing connected yet: queries wait */
    assert_int_equal(query(f, "SELECT 1", 0, NULL, &c[0]), 0);
    assert_int_equal(query(f, "SELECT 2", 0, NULL, &c[1]), 0);
    assert_int_equal(query(f, "SELECT 3", 0, NULL, &c[2]), -ENOBUFS);
    run_count(f, 2);
    assert_int_equal(c[0].num, 1);
    assert_int_equal(c[1].num, 2);
    assert_int_equal(c[2].calls, 0);
}

static void test_pool_grows_up_to_max_conns(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.min_conns = 1, .max_conns = 3, .max_pipeline = 1};
    struct call c[12] = {{0}};
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    for (int i = 0; i < 12; i++)
        assert_int_equal(query(f, "SELECT pg_sleep(0.05)", 0, NULL, &c[i]), 0);
    run_count(f, 12);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.conns, 3);
    assert_int_equal(st.connects, 3);
    for (int i = 0; i < 12; i++)
        assert_int_equal(c[i].status, 0);
}

static void test_pool_grows_when_pipelines_fill_and_not_before(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 3};
    struct call c[40] = {{0}}, one;
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    for (int i = 0; i < 10; i++) { /* one at a time: one connection is plenty */
        sync_query(f, "SELECT 1", &one);
        assert_int_equal(one.status, 0);
    }
    for (int i = 0; i < 5; i++)
        hp_loop_run_once(f->loop, 5);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.connects, 1);
    f->done = 0;
    for (int i = 0; i < 40; i++)
        assert_int_equal(query(f, "SELECT pg_sleep(0.05)", 0, NULL, &c[i]), 0);
    run_count(f, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(c[i].status, 0);
    /* 40 in flight on one connection: more were opened (as queries kept coming, up to 3). */
    for (int r = 0; r < 3; r++) {
        f->done = 0;
        memset(c, 0, sizeof(c));
        for (int i = 0; i < 40; i++)
            assert_int_equal(query(f, "SELECT pg_sleep(0.01)", 0, NULL, &c[i]), 0);
        run_count(f, 40);
    }
    hp_pg_pool_stats(f->pool, &st);
    assert_true(st.connects >= 2);
    assert_true(st.conns <= 3);
}

static void test_timeout_cancels_the_query_on_the_server(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct call slow = {0}, next;
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &next);
    slow.done = &f->done;
    assert_int_equal(
        hp_pg_query(f->pool, "SELECT pg_sleep(60)", 0, NULL, NULL, 200, on_result, &slow), 0);
    run_count(f, 2);
    assert_int_equal(slow.status, -ETIMEDOUT);
    /* The same (only) connection answers the next query at once: the sleep was cancelled. */
    sync_query(f, "SELECT 5", &next);
    assert_int_equal(next.status, 0);
    assert_int_equal(next.num, 5);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.cancels, 1);
    assert_int_equal(st.connects, 1);
    assert_int_equal(slow.calls, 1);
}

static void test_shorter_timeout_behind_a_slow_query(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct call warm, slow = {0}, quick = {0}, after;
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm);
    slow.done = quick.done = &f->done;
    assert_int_equal(
        hp_pg_query(f->pool, "SELECT 7 FROM pg_sleep(0.6)", 0, NULL, NULL, 5000, on_result, &slow),
        0);
    assert_int_equal(hp_pg_query(f->pool, "SELECT 8", 0, NULL, NULL, 100, on_result, &quick), 0);
    run_count(f, 2); /* the second, queued behind the sleep, times out first */
    assert_int_equal(quick.calls, 1);
    assert_int_equal(quick.status, -ETIMEDOUT);
    assert_int_equal(slow.calls, 0);
    run_count(f, 3);
    assert_int_equal(slow.status, 0); /* and its neighbour was not cancelled */
    assert_int_equal(slow.num, 7);
    sync_query(f, "SELECT 9", &after);
    assert_int_equal(after.num, 9);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(quick.calls, 1);
}

static void test_waiting_query_keeps_its_deadline_in_flight(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1, .max_pipeline = 1};
    struct call warm, a = {0}, b = {0};
    uint64_t t0;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm);
    a.done = b.done = &f->done;
    hp_loop_update_time(f->loop);
    t0 = hp_loop_now(f->loop);
    assert_int_equal(hp_pg_query(f->pool, "SELECT pg_sleep(0.3)", 0, NULL, NULL, 0, on_result, &a),
                     0);
    /* Waits ~300 ms for the only slot, then runs 10 s: times out 500 ms after the call. */
    assert_int_equal(hp_pg_query(f->pool, "SELECT pg_sleep(10)", 0, NULL, NULL, 500, on_result, &b),
                     0);
    run_count(f, 3);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, -ETIMEDOUT);
    assert_true(hp_loop_now(f->loop) - t0 < 2000);
}

static void test_caller_cancels_a_running_query(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct call warm, slow = {0}, next;
    struct hp_pg_pool_stats st;
    uint64_t t0;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm);
    assert_int_equal(query(f, "SELECT pg_sleep(30)", 0, NULL, &slow), 0);
    for (int i = 0; i < 3; i++)
        hp_loop_run_once(f->loop, 10);
    hp_loop_update_time(f->loop);
    t0 = hp_loop_now(f->loop);
    g_in_call = true;
    assert_int_equal(hp_pg_cancel(f->pool, &slow), 1);
    g_in_call = false;
    assert_int_equal(slow.calls, 0); /* later, not inside the call */
    run_count(f, 2);
    assert_int_equal(slow.status, -ECANCELED);
    assert_int_equal(hp_pg_cancel(f->pool, &slow), 0); /* nothing left to cancel */
    sync_query(f, "SELECT 6", &next); /* the connection is free again: cancelled on the server */
    assert_int_equal(next.num, 6);
    assert_true(hp_loop_now(f->loop) - t0 < 5000);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.cancels, 1);
    assert_int_equal(st.connects, 1);
    assert_int_equal(slow.calls, 1);
}

/*
 * Cancelled in the iteration that wrote it, before it left: the cancel goes
 * to the server once the query has (wire mode: not before, when the server
 * would not have it). Whether it lands is a race the server decides (it
 * ignores a cancel that comes while it is still reading the query), so the
 * query sleeps for 2 s only and the test checks that the cancel was sent.
 */
static void test_caller_cancels_a_query_before_it_left(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct call warm, slow = {0}, next;
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm);
    assert_int_equal(query(f, "SELECT pg_sleep(2)", 0, NULL, &slow), 0);
    assert_int_equal(hp_pg_cancel(f->pool, &slow), 1);
    run_count(f, 2);
    assert_int_equal(slow.status, -ECANCELED);
    sync_query(f, "SELECT 6", &next); /* behind it, or after it was cancelled there */
    assert_int_equal(next.num, 6);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.cancels, 1);
    assert_int_equal(slow.calls, 1);
}

static void test_caller_cancels_queued_and_waiting_queries_only(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1, .max_pipeline = 3};
    struct call warm, head = {0}, mine = {0}, other = {0}, after;
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm);
    head.done = other.done = &f->done;
    assert_int_equal(
        hp_pg_query(f->pool, "SELECT 1 FROM pg_sleep(0.3)", 0, NULL, NULL, 0, on_result, &head), 0);
    /* Two queued behind it on the connection and one waiting, all with one argument. */
    mine.done = &f->done;
    for (int i = 0; i < 3; i++)
        assert_int_equal(hp_pg_query(f->pool, "SELECT 2", 0, NULL, NULL, 0, on_result, &mine), 0);
    assert_int_equal(hp_pg_query(f->pool, "SELECT 3", 0, NULL, NULL, 0, on_result, &other), 0);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.waiting, 2);
    assert_int_equal(hp_pg_cancel(f->pool, &mine), 3);
    assert_int_equal(mine.calls, 0);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.waiting, 1);
    run_count(f, 1 + 5); /* warm-up, then three -ECANCELED; head and other untouched */
    assert_int_equal(mine.calls, 3);
    assert_int_equal(mine.status, -ECANCELED);
    assert_int_equal(head.status, 0);
    assert_int_equal(head.num, 1);
    assert_int_equal(other.status, 0);
    assert_int_equal(other.num, 3);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.cancels, 0); /* nothing the server was running was cancelled */
    sync_query(f, "SELECT 4", &after);
    assert_int_equal(after.num, 4);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.in_flight, 0);
}

/* ---- transactions -------------------------------------------------------- */

struct txn_state {
    struct hp_pg_txn *txn;
    int status;
    bool done;
};

static void on_begin(struct hp_pg_txn *txn, int status, void *arg)
{
    struct txn_state *t = arg;

    assert_false(g_in_call);
    assert_false(t->done);
    t->txn = txn;
    t->status = status;
    t->done = true;
}

static void test_transaction_is_pinned_to_one_connection(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 2};
    struct txn_state t = {0};
    struct call in = {0}, out, end = {0}, after, late = {0};

    NEED_SERVER();
    hp_test_pg_sql(&server, "DROP TABLE IF EXISTS t; CREATE TABLE t (v int)");
    f->pool = pool_new(f, &o);
    assert_int_equal(hp_pg_begin(f->pool, 0, on_begin, &t), 0);
    hp_test_run_until(f->loop, &t.done);
    assert_int_equal(t.status, 0);
    assert_non_null(t.txn);
    in.done = &f->done;
    assert_int_equal(
        hp_pg_txn_query(t.txn, "INSERT INTO t VALUES (1)", 0, NULL, NULL, 0, on_result, &in), 0);
    run_count(f, 1);
    assert_int_equal(in.status, 0);
    sync_query(f, "SELECT count(*) FROM t", &out); /* another connection: not visible */
    assert_int_equal(out.num, 0);
    end.done = &f->done;
    assert_int_equal(hp_pg_txn_rollback(t.txn, on_result, &end), 0);
    assert_int_equal(hp_pg_txn_commit(t.txn, on_result, &late), HP_ECLOSED);
    run_count(f, 3);
    assert_int_equal(end.status, 0);
    sync_query(f, "SELECT count(*) FROM t", &after);
    assert_int_equal(after.num, 0);

    /* And a committed one is visible. */
    memset(&t, 0, sizeof(t));
    assert_int_equal(hp_pg_begin(f->pool, 0, on_begin, &t), 0);
    hp_test_run_until(f->loop, &t.done);
    memset(&in, 0, sizeof(in));
    in.done = &f->done;
    assert_int_equal(
        hp_pg_txn_query(t.txn, "INSERT INTO t VALUES (2)", 0, NULL, NULL, 0, on_result, &in), 0);
    memset(&end, 0, sizeof(end));
    end.done = &f->done;
    assert_int_equal(hp_pg_txn_commit(t.txn, on_result, &end), 0); /* pipelined after the insert */
    run_count(f, 6);
    assert_int_equal(in.status, 0);
    assert_int_equal(end.status, 0);
    sync_query(f, "SELECT count(*) FROM t", &after);
    assert_int_equal(after.num, 1);
    assert_int_equal(late.calls, 0);
}

struct order {
    unsigned seq;
    unsigned begin_at;
    struct hp_pg_txn *txn;
    bool begun;
};

static struct order *g_order;

static void on_ordered(const struct hp_pg_result *res, int status, void *arg)
{
    struct call *c = arg;

    on_result(res, status, arg);
    c->num = ++g_order->seq; /* when it finished, relative to the others */
}

static void on_begin_ordered(struct hp_pg_txn *txn, int status, void *arg)
{
    struct order *o = arg;

    assert_int_equal(status, 0);
    o->txn = txn;
    o->begun = true;
    o->begin_at = ++o->seq;
}

static void test_begin_waits_for_an_idle_connection_and_pins_it(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct order ord = {0};
    struct call before[8] = {{0}}, after[4] = {{0}}, in = {0}, end = {0}, warm;

    NEED_SERVER();
    g_order = &ord;
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm);
    for (int i = 0; i < 8; i++) {
        before[i].done = &f->done;
        assert_int_equal(
            hp_pg_query(f->pool, "SELECT pg_sleep(0.01)", 0, NULL, NULL, 0, on_ordered, &before[i]),
            0);
    }
    assert_int_equal(hp_pg_begin(f->pool, 0, on_begin_ordered, &ord), 0);
    for (int i = 0; i < 4; i++) { /* made after the BEGIN: wait while the connection is pinned */
        after[i].done = &f->done;
        assert_int_equal(hp_pg_query(f->pool, "SELECT 1", 0, NULL, NULL, 0, on_ordered, &after[i]),
                         0);
    }
    hp_test_run_until(f->loop, &ord.begun);
    assert_int_equal(ord.begin_at, 9); /* after the 8 that were in flight */
    in.done = end.done = &f->done;
    assert_int_equal(hp_pg_txn_query(ord.txn, "SELECT 2", 0, NULL, NULL, 0, on_ordered, &in), 0);
    assert_int_equal(hp_pg_txn_commit(ord.txn, on_ordered, &end), 0);
    run_count(f, 1 + 8 + 4 + 2);
    assert_int_equal(in.num, 10);
    assert_int_equal(end.num, 11);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(after[i].status, 0);
        assert_true(after[i].num > 11);
    }
}

/*
 * Many queries made in one loop iteration (as one TFB /queries request, or
 * many requests read in one iteration, makes them): they go out together
 * (corked into one segment per connection unless no_cork), most of them
 * waiting for room in the pipelines, and one in the middle divides by
 * zero. Each gets its own answer; the failing one its error and nothing
 * else; a BEGIN waiting in front of the line gets the connection it
 * reserved, and its transaction commits.
 */
static void many_in_one_iteration(struct fixture *f, bool no_cork)
{
    struct hp_pg_pool_opts o = {
        .min_conns = 2, .max_conns = 2, .max_pipeline = 8, .max_waiting = 4096, .no_cork = no_cork};
    enum { N = 600, BAD = 300, BEGIN_AT = 12 };
    struct call *c = calloc(N, sizeof(*c));
    char num[N][12], div[N][4];
    struct txn_state t = {0};
    struct call end = {0};
    struct hp_pg_pool_stats st;

    f->pool = pool_new(f, &o);
    for (int i = 0; i < 500; i++) { /* both connections up */
        hp_pg_pool_stats(f->pool, &st);
        if (st.conns_up == 2)
            break;
        hp_loop_run_once(f->loop, 20);
    }
    assert_int_equal(st.conns_up, 2);
    f->done = 0;
    for (int i = 0; i < N; i++) {
        const char *v[2] = {num[i], div[i]};

        snprintf(num[i], sizeof(num[i]), "%d", i * 3);
        snprintf(div[i], sizeof(div[i]), "%d", i == BAD ? 0 : 3);
        c[i].done = &f->done;
        if (i == BEGIN_AT)
            assert_int_equal(hp_pg_begin(f->pool, 0, on_begin, &t), 0);
        g_in_call = true;
        assert_int_equal(hp_pg_query_prepared(f->pool, "div", "SELECT $1::int / $2::int", 2, v,
                                              NULL, 0, on_result, &c[i]),
                         0);
        g_in_call = false;
    }
    hp_pg_pool_stats(f->pool, &st);
    /* 6 + 6 sent; the BEGIN waits (reserving one connection) and the rest behind it. */
    assert_int_equal(st.in_flight, 12);
    assert_int_equal(st.waiting, N - 12 + 1);
    run_count(f, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].calls, 1);
        if (i == BAD) {
            assert_int_equal(c[i].status, HP_PG_ESERVER);
            assert_string_equal(c[i].sqlstate, "22012");
        } else {
            assert_int_equal(c[i].status, 0);
            assert_int_equal(c[i].num, i);
        }
    }
    hp_test_run_until(f->loop, &t.done);
    assert_int_equal(t.status, 0);
    end.done = &f->done;
    assert_int_equal(hp_pg_txn_commit(t.txn, on_result, &end), 0);
    run_count(f, N + 1);
    assert_int_equal(end.status, 0);
    assert_string_equal(end.err, "");
    free(c);
}

/*
 * Which backend runs the queries of one loop iteration: by default each goes
 * on an idle connection (three backends for three queries); with max_batch
 * 3, three share a connection before the next one is used.
 */
static void backends_of_one_iteration(struct fixture *f, unsigned max_batch, int64_t pid[6])
{
    struct hp_pg_pool_opts o = {.min_conns = 3, .max_conns = 3, .max_batch = max_batch};
    struct call c[6] = {{0}};
    struct hp_pg_pool_stats st;

    f->pool = pool_new(f, &o);
    for (int i = 0; i < 500; i++) {
        hp_pg_pool_stats(f->pool, &st);
        if (st.conns_up == 3)
            break;
        hp_loop_run_once(f->loop, 20);
    }
    assert_int_equal(st.conns_up, 3);
    f->done = 0;
    for (int i = 0; i < 6; i++)
        assert_int_equal(query(f, "SELECT pg_backend_pid()", 0, NULL, &c[i]), 0);
    run_count(f, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(c[i].status, 0);
        pid[i] = c[i].num;
    }
}

static void test_queries_of_one_iteration_spread_over_idle_connections(void **state)
{
    struct fixture *f = *state;
    int64_t pid[6];

    NEED_SERVER();
    backends_of_one_iteration(f, 0, pid);
    assert_true(pid[0] != pid[1] && pid[1] != pid[2] && pid[0] != pid[2]);
}

static void test_max_batch_keeps_queries_of_one_iteration_together(void **state)
{
    struct fixture *f = *state;
    int64_t pid[6];

    NEED_SERVER();
    backends_of_one_iteration(f, 3, pid);
    assert_true(pid[0] == pid[1] && pid[1] == pid[2]);
    assert_true(pid[3] == pid[4] && pid[4] == pid[5]);
    assert_true(pid[0] != pid[3]);
}

static void test_many_queries_of_one_iteration_one_failing(void **state)
{
    struct fixture *f = *state;

    NEED_SERVER();
    many_in_one_iteration(f, false);
    hp_pg_pool_free(f->pool);
    f->pool = NULL;
    many_in_one_iteration(f, true);
}

/* ---- LISTEN / NOTIFY ----------------------------------------------------- */

struct notes {
    unsigned n;
    char channel[64], payload[64];
};

static void on_notify(struct hp_pg_pool *pool, const char *channel, const char *payload,
                      int server_pid, void *arg)
{
    struct notes *nt = arg;

    (void)pool;
    assert_true(server_pid > 0);
    nt->n++;
    snprintf(nt->channel, sizeof(nt->channel), "%s", channel);
    snprintf(nt->payload, sizeof(nt->payload), "%s", payload);
}

static void test_notify_arrives_as_a_loop_event(void **state)
{
    struct fixture *f = *state;
    struct notes nt = {0};
    struct hp_pg_pool_opts o = {.on_notify = on_notify, .notify_arg = &nt};
    struct call l = {0}, n;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    l.done = &f->done;
    assert_int_equal(hp_pg_listen(f->pool, "my \"chan\"", on_result, &l), 0);
    run_count(f, 1);
    assert_int_equal(l.status, 0);
    sync_query(f, "NOTIFY \"my \"\"chan\"\"\", 'hello'", &n);
    assert_int_equal(n.status, 0);
    while (nt.n == 0) {
        assert_true(hp_loop_run_once(f->loop, 50) >= 0);
    }
    assert_int_equal(nt.n, 1);
    assert_string_equal(nt.channel, "my \"chan\"");
    assert_string_equal(nt.payload, "hello");
}

static void test_unlisten_stops_the_notifications(void **state)
{
    struct fixture *f = *state;
    struct notes nt = {0};
    struct hp_pg_pool_opts o = {.on_notify = on_notify, .notify_arg = &nt};
    struct call la = {0}, lb = {0}, ua = {0}, early = {0}, n;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    /* Before any listen connection exists: nothing to send, still one callback, later. */
    early.done = &f->done;
    g_in_call = true;
    assert_int_equal(hp_pg_unlisten(f->pool, "never", on_result, &early), 0);
    g_in_call = false;
    assert_int_equal(hp_pg_unlisten(f->pool, "", on_result, &early), -EINVAL);
    run_count(f, 1);
    assert_int_equal(early.calls, 1);
    assert_int_equal(early.status, 0);
    la.done = lb.done = ua.done = &f->done;
    assert_int_equal(hp_pg_listen(f->pool, "a", on_result, &la), 0);
    assert_int_equal(hp_pg_listen(f->pool, "b", on_result, &lb), 0);
    run_count(f, 3);
    assert_int_equal(la.status, 0);
    assert_int_equal(lb.status, 0);
    sync_query(f, "NOTIFY a, 'one'", &n);
    while (nt.n < 1)
        assert_true(hp_loop_run_once(f->loop, 50) >= 0);
    assert_string_equal(nt.channel, "a");
    g_in_call = true;
    assert_int_equal(hp_pg_unlisten(f->pool, "a", on_result, &ua), 0);
    g_in_call = false;
    run_count(f, f->done + 1);
    assert_int_equal(ua.calls, 1);
    assert_int_equal(ua.status, 0);
    /* a is not delivered any more; b, notified after it, is. */
    sync_query(f, "NOTIFY a, 'two'", &n);
    sync_query(f, "NOTIFY b, 'three'", &n);
    while (nt.n < 2)
        assert_true(hp_loop_run_once(f->loop, 50) >= 0);
    for (int i = 0; i < 5; i++)
        hp_loop_run_once(f->loop, 10);
    assert_int_equal(nt.n, 2);
    assert_string_equal(nt.channel, "b");
    assert_string_equal(nt.payload, "three");
}

/*
 * A LISTEN made while a long line of queries waits for a full pipeline goes
 * on the listen connection as soon as that is up, not after the line.
 */
static void test_listen_is_not_held_behind_waiting_queries(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1, .max_pipeline = 1, .max_waiting = 64};
    enum { N = 40 };
    /* Static: after a failed assertion the pool's callbacks still write here. */
    static struct call c[N], l;
    size_t listened_at = 0;

    memset(c, 0, sizeof(c));
    memset(&l, 0, sizeof(l));

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    {
        struct call warm;

        sync_query(f, "SELECT 1", &warm);
    }
    f->done = 0;
    for (int i = 0; i < N; i++) /* 25 ms each, one at a time: a second in all */
        assert_int_equal(query(f, "SELECT pg_sleep(0.025)", 0, NULL, &c[i]), 0);
    assert_int_equal(hp_pg_listen(f->pool, "line", on_result, &l), 0);
    for (int i = 0; i < 1000 && l.calls == 0; i++) {
        hp_loop_run_once(f->loop, 20);
        listened_at = f->done;
    }
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.status, 0);
    /* Held behind the line, it would be answered after the last one but one. */
    assert_true(listened_at < N - 8);
    run_count(f, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(c[i].status, 0);
}

/* ---- faults -------------------------------------------------------------- */

static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd); /* nothing listens there now */
    return ntohs(a.sin_port);
}

/*
 * host=localhost: the name is looked up on the loop's thread pool and each
 * of its addresses tried in turn (the server listens on 127.0.0.1 only, so
 * an ::1 that comes first is refused and the next one taken); the host
 * name is still the one libpq knows. A name that does not resolve fails
 * the query with -EHOSTUNREACH and the resolver's message.
 */
static void test_host_names_resolve_off_the_loop(void **state)
{
    struct fixture *f = *state;
    char ci[160];
    struct hp_pg_pool_opts o = {.conninfo = ci};
    struct call c = {0}, h;

    NEED_SERVER();
    snprintf(ci, sizeof(ci), "host=localhost port=%d user=postgres dbname=postgres", server.port);
    f->pool = pool_new(f, &o);
    assert_int_equal(query(f, "SELECT 41 + 1", 0, NULL, &c), 0);
    run_count(f, 1);
    if (c.status != 0)
        fail_msg("status %s, %s", hp_err_name(c.status), c.err);
    assert_int_equal(c.num, 42);
    sync_query(f, "SELECT host(inet_server_addr())", &h);
    assert_string_equal(h.text, "127.0.0.1");
    hp_pg_pool_free(f->pool);
    f->pool = NULL;

    /* A list: a name, then a numeric host; the port given once for both. */
    snprintf(ci, sizeof(ci), "host=localhost,127.0.0.1 port=%d user=postgres dbname=postgres",
             server.port);
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 7", &h);
    assert_int_equal(h.status, 0);
    assert_int_equal(h.num, 7);
    hp_pg_pool_free(f->pool);
    f->pool = NULL;

    snprintf(ci, sizeof(ci), "host=no-such-host.invalid port=%d user=postgres", server.port);
    f->pool = pool_new(f, &o);
    memset(&c, 0, sizeof(c));
    assert_int_equal(query(f, "SELECT 1", 0, NULL, &c), 0);
    run_count(f, f->done + 1);
    assert_int_equal(c.status, -EHOSTUNREACH);
    assert_non_null(strstr(c.err, "no-such-host.invalid"));
}

static void test_connection_refused_fails_fast(void **state)
{
    struct fixture *f = *state;
    char ci[128];
    struct hp_pg_pool_opts o = {.conninfo = ci};
    struct call c = {0};
    uint64_t t0;

    NEED_SERVER();
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=postgres", closed_port());
    f->pool = pool_new(f, &o);
    hp_loop_update_time(f->loop);
    t0 = hp_loop_now(f->loop);
    assert_int_equal(query(f, "SELECT 1", 0, NULL, &c), 0);
    run_count(f, 1);
    if (c.status != -ECONNREFUSED)
        fail_msg("status %s, %s", hp_err_name(c.status), c.err);
    assert_true(strlen(c.err) > 0);
    assert_true(hp_loop_now(f->loop) - t0 < 2000);
    /* Later queries fail fast too while the pool backs off. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(query(f, "SELECT 1", 0, NULL, &c), 0);
    run_count(f, 2);
    assert_int_equal(c.status, -ECONNREFUSED);
}

static void test_refused_address_falls_back_to_the_next_host(void **state)
{
    struct fixture *f = *state;
    char ci[160];
    struct hp_pg_pool_opts o = {.conninfo = ci};
    struct call c;
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    snprintf(ci, sizeof(ci), "host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=postgres",
             closed_port(), server.port);
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 1", &c); /* libpq moved on to the second host: a new socket */
    assert_int_equal(c.status, 0);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.connects, 1);
}

/* A port that answers every connection with garbage. */
struct garbage {
    struct hp_io io;
    int fd;
    unsigned accepted;
    int clients[16]; /* kept open: the client reads the garbage, not a reset */
};

static void on_garbage(struct hp_io *io, unsigned events, int status)
{
    struct garbage *g = io->data;
    int fd;

    (void)events;
    (void)status;
    while ((fd = hp_test_accept(g->fd)) >= 0) {
        static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\nnot postgres at all";

        if (write(fd, junk, sizeof(junk) - 1) < 0)
            fail_msg("write failed");
        if (g->accepted < 16)
            g->clients[g->accepted] = fd;
        else
            close(fd);
        g->accepted++;
    }
}

static void test_garbage_from_the_port_is_a_protocol_error(void **state)
{
    struct fixture *f = *state;
    struct garbage g = {0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    char ci[128];
    struct hp_pg_pool_opts o = {.conninfo = ci};
    struct call c = {0};

    NEED_SERVER();
    g.fd = hp_test_socket(AF_INET, SOCK_STREAM, true);
    assert_int_equal(bind(g.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(g.fd, 16), 0);
    assert_int_equal(getsockname(g.fd, (struct sockaddr *)&a, &len), 0);
    hp_io_init(f->loop, &g.io, g.fd, on_garbage);
    g.io.data = &g;
    assert_int_equal(hp_io_start(&g.io, HP_READABLE), 0);
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=postgres sslmode=disable",
             ntohs(a.sin_port));
    f->pool = pool_new(f, &o);
    assert_int_equal(query(f, "SELECT 1", 0, NULL, &c), 0);
    run_count(f, 1);
    if (c.status != -EPROTO)
        fail_msg("status %d, %s", c.status, c.err);
    assert_true(g.accepted >= 1);
    assert_true(strlen(c.err) > 0);
    hp_pg_pool_free(f->pool);
    f->pool = NULL;
    hp_io_stop(&g.io);
    close(g.fd);
    for (unsigned i = 0; i < g.accepted && i < 16; i++)
        close(g.clients[i]);
}

/* Run queries until one succeeds (the pool reconnecting on its own). */
static void until_success(struct fixture *f, const char *sql)
{
    for (int i = 0; i < 200; i++) {
        struct call c;

        sync_query(f, sql, &c);
        if (c.status == 0)
            return;
        for (int k = 0; k < 5; k++)
            hp_loop_run_once(f->loop, 20);
    }
    fail_msg("the pool never recovered");
}

static void test_backend_killed_mid_query_then_recovery(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1, .reconnect_min_ms = 20, .reconnect_max_ms = 200};
    struct call pid, slow = {0}, neighbour = {0};

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT pg_backend_pid()", &pid);
    assert_true(pid.num > 0);
    assert_int_equal(query(f, "SELECT pg_sleep(30)", 0, NULL, &slow), 0);
    assert_int_equal(query(f, "SELECT 2", 0, NULL, &neighbour), 0);
    for (int i = 0; i < 5; i++)
        hp_loop_run_once(f->loop, 10); /* let the queries reach the server */
    assert_int_equal(kill((pid_t)pid.num, SIGKILL), 0);
    run_count(f, 3);
    assert_int_equal(slow.calls, 1);
    assert_int_equal(neighbour.calls, 1);
    assert_true(slow.status == -ECONNRESET || slow.status == HP_PG_ESERVER);
    assert_true(neighbour.status != 0);
    assert_true(slow.err[0] != '\0');
    until_success(f, "SELECT 1"); /* the server restarts its backends; the pool reconnects */
    /* A later failure of one query carries its own text, not the lost connection's. */
    memset(&slow, 0, sizeof(slow));
    assert_int_equal(query(f, "SELECT pg_sleep(30)", 0, NULL, &slow), 0);
    assert_int_equal(hp_pg_cancel(f->pool, &slow), 1);
    run_count(f, f->done + 1);
    assert_int_equal(slow.status, -ECANCELED);
    assert_string_equal(slow.err, "cancelled by hp_pg_cancel()");
    assert_string_not_equal(slow.err, neighbour.err);
}

static void test_server_restart_is_recovered_without_a_new_pool(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1, .reconnect_min_ms = 20, .reconnect_max_ms = 100};
    struct call c;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    until_success(f, "SELECT 1"); /* an earlier kill -9 may still be resetting backends */
    hp_test_pg_stop(&server);
    for (int i = 0; i < 10; i++)
        hp_loop_run_once(f->loop, 10);
    sync_query(f, "SELECT 1", &c);
    assert_true(c.status == -ECONNREFUSED || c.status == -ECONNRESET || c.status == HP_PG_ESERVER);
    hp_test_pg_restart(&server);
    until_success(f, "SELECT 1");
}

static void test_stopped_server_gives_timeouts_then_recovers(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1,
                                .query_timeout_ms = 300,
                                .connect_timeout_ms = 300,
                                .reconnect_min_ms = 20,
                                .reconnect_max_ms = 100};
    struct call pid, c[3] = {{0}};
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    until_success(f, "SELECT 1"); /* an earlier kill -9 may still be resetting backends */
    sync_query(f, "SELECT pg_backend_pid()", &pid);
    assert_int_equal(kill(server.pid, SIGSTOP), 0);
    assert_int_equal(kill((pid_t)pid.num, SIGSTOP), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(query(f, "SELECT 1", 0, NULL, &c[i]), 0);
    run_count(f, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].status, -ETIMEDOUT);
    }
    /* The silent connection is given up and reconnecting times out too. */
    for (int i = 0; i < 100; i++) {
        hp_pg_pool_stats(f->pool, &st);
        if (st.failures >= 2)
            break;
        hp_loop_run_once(f->loop, 50);
    }
    assert_true(st.failures >= 2);
    sync_query(f, "SELECT 1", &c[0]);
    assert_int_equal(c[0].status, -ETIMEDOUT);
    assert_int_equal(kill((pid_t)pid.num, SIGCONT), 0);
    assert_int_equal(kill(server.pid, SIGCONT), 0);
    until_success(f, "SELECT 1");
}

static void test_health_check_replaces_a_silent_idle_connection(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {
        .max_conns = 1, .health_interval_ms = 50, .query_timeout_ms = 200, .reconnect_min_ms = 20};
    struct call pid;
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    until_success(f, "SELECT 1"); /* an earlier kill -9 may still be resetting backends */
    sync_query(f, "SELECT pg_backend_pid()", &pid);
    assert_int_equal(kill((pid_t)pid.num, SIGSTOP), 0);
    for (int i = 0; i < 200; i++) {
        hp_pg_pool_stats(f->pool, &st);
        if (st.connects >= 2 && st.conns_up == 1)
            break;
        hp_loop_run_once(f->loop, 20);
    }
    assert_int_equal(kill((pid_t)pid.num, SIGCONT), 0);
    assert_true(st.failures >= 1);
    assert_true(st.connects >= 2);
    assert_int_equal(st.conns_up, 1);
}

/* ---- freeing with work outstanding --------------------------------------- */

static void test_free_with_queries_in_flight_cancels_each_once(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1, .max_pipeline = 4};
    struct call c[10] = {{0}};
    struct txn_state t = {0};

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    until_success(f, "SELECT 1");
    for (int i = 0; i < 10; i++) /* 4 in flight, 6 waiting */
        assert_int_equal(query(f, "SELECT pg_sleep(5)", 0, NULL, &c[i]), 0);
    assert_int_equal(hp_pg_begin(f->pool, 0, on_begin, &t), 0);
    hp_loop_run_once(f->loop, 10);
    hp_pg_pool_free(f->pool);
    f->pool = NULL;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(c[i].calls, 1);
        assert_int_equal(c[i].status, -ECANCELED);
    }
    assert_true(t.done);
    assert_int_equal(t.status, -ECANCELED);
}

static void test_free_while_a_cancel_is_blocked(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct call pid, slow = {0};
    struct hp_pg_pool_stats st;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    until_success(f, "SELECT 1");
    sync_query(f, "SELECT pg_backend_pid()", &pid);
    slow.done = &f->done;
    assert_int_equal(
        hp_pg_query(f->pool, "SELECT pg_sleep(30)", 0, NULL, NULL, 100, on_result, &slow), 0);
    for (int i = 0; i < 3; i++)
        hp_loop_run_once(f->loop, 10);
    /* A stopped postmaster: the cancel request's thread blocks until it resumes. */
    assert_int_equal(kill(server.pid, SIGSTOP), 0);
    run_count(f, 3);
    assert_int_equal(slow.status, -ETIMEDOUT);
    hp_pg_pool_stats(f->pool, &st);
    assert_int_equal(st.cancels, 1);
    hp_pg_pool_free(f->pool); /* the thread is left to finish on its own */
    f->pool = NULL;
    assert_int_equal(kill(server.pid, SIGCONT), 0);
    assert_int_equal(slow.calls, 1);
}

struct freer {
    struct fixture *f;
    unsigned calls;
};

static void on_free_pool(const struct hp_pg_result *res, int status, void *arg)
{
    struct freer *fr = arg;

    (void)res;
    (void)status;
    fr->calls++;
    hp_pg_pool_free(fr->f->pool);
    fr->f->pool = NULL;
}

static void test_free_from_inside_a_callback(void **state)
{
    struct fixture *f = *state;
    struct hp_pg_pool_opts o = {.max_conns = 1};
    struct freer fr = {.f = f};
    struct call rest[5] = {{0}};

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    until_success(f, "SELECT 1");
    assert_int_equal(hp_pg_query(f->pool, "SELECT 1", 0, NULL, NULL, 0, on_free_pool, &fr), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(query(f, "SELECT 2", 0, NULL, &rest[i]), 0);
    while (fr.calls == 0)
        assert_true(hp_loop_run_once(f->loop, 50) >= 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rest[i].calls, 1);
        assert_true(rest[i].status == -ECANCELED || rest[i].status == 0);
    }
    assert_int_equal(fr.calls, 1);
}

/* ---- out of memory ------------------------------------------------------ */

struct failing {
    long left; /* allocations that succeed before they all fail; -1: never fail */
    long live;
    bool failed;
};

static void *failing_realloc(void *ctx, void *p, size_t n)
{
    struct failing *fa = ctx;

    if (fa->left == 0) {
        fa->failed = true;
        return NULL;
    }
    if (fa->left > 0)
        fa->left--;
    if (!p)
        fa->live++;
    return realloc(p, n);
}

static void failing_free(void *ctx, void *p)
{
    struct failing *fa = ctx;

    if (p)
        fa->live--;
    free(p);
}

struct oom_run {
    struct fixture *f;
    size_t expected;
    struct call c[4];
    struct txn_state t;
    struct call end;
};

static void on_oom_begin(struct hp_pg_txn *txn, int status, void *arg)
{
    struct oom_run *r = arg;

    on_begin(txn, status, &r->t);
    r->f->done++;
    if (status == 0) {
        r->end.done = &r->f->done;
        if (hp_pg_txn_commit(txn, on_result, &r->end) == 0)
            r->expected++;
    }
}

static void test_out_of_memory_anywhere_keeps_every_promise(void **state)
{
    struct fixture *f = *state;
    const char *v[1] = {"41"};
    int lens[1] = {2};
    bool clean = false;

    NEED_SERVER();
    for (long n = 0; !clean && n < 400; n++) {
        struct failing fa = {.left = n};
        struct hp_pg_pool_opts o = {.alloc = {failing_realloc, failing_free, &fa},
                                    .reconnect_min_ms = 5,
                                    .reconnect_max_ms = 5,
                                    .query_timeout_ms = 3000};
        struct oom_run r = {.f = f};
        int err;

        f->done = 0;
        o.conninfo = server.conninfo;
        o.libpq_io = libpq_io;
        err = hp_pg_pool_new(&f->pool, f->loop, &o);
        if (err) {
            assert_int_equal(err, -ENOMEM);
            assert_int_equal(fa.live, 0);
            continue;
        }
        for (int i = 0; i < 4; i++)
            r.c[i].done = &f->done;
        r.expected += query(f, "SELECT 1", 0, NULL, &r.c[0]) == 0;
        r.expected += hp_pg_query_prepared(f->pool, "p", "SELECT $1::int + 1", 1, v, lens, 0,
                                           on_result, &r.c[1]) == 0;
        r.expected += hp_pg_listen(f->pool, "oom", on_result, &r.c[2]) == 0;
        r.expected += hp_pg_begin(f->pool, 0, on_oom_begin, &r) == 0;
        r.expected += query(f, "SELECT 2", 0, NULL, &r.c[3]) == 0;
        while (f->done < r.expected) /* the commit, made from a callback, adds one */
            run_count(f, r.expected);
        if (getenv("HP_TEST_OOM_VERBOSE"))
            fprintf(stderr, "before free: done=%zu calls %u %u %u %u begin %d end %u\n", f->done,
                    r.c[0].calls, r.c[1].calls, r.c[2].calls, r.c[3].calls, r.t.done, r.end.calls);
        hp_pg_pool_free(f->pool);
        f->pool = NULL;
        for (int i = 0; i < 3; i++)
            hp_loop_run_once(f->loop, 0);
        for (int i = 0; i < 4; i++)
            assert_true(r.c[i].calls <= 1);
        assert_true(r.end.calls <= 1);
        assert_int_equal(f->done, r.expected);
        assert_int_equal(fa.live, 0);
        clean = !fa.failed;
        if (getenv("HP_TEST_OOM_VERBOSE"))
            fprintf(stderr, "n=%ld expected=%zu statuses %d %d %d %d begin %d end %d\n", n,
                    r.expected, r.c[0].status, r.c[1].status, r.c[2].status, r.c[3].status,
                    r.t.status, r.end.status);
        if (clean) { /* nothing failed: everything worked */
            assert_int_equal(r.expected, 6);
            assert_int_equal(r.c[1].num, 42);
        }
    }
    assert_true(clean);
}

/*
 * A rolling pipeline on one connection that is never idle: DEALLOCATE ALL,
 * then the prepared statement (26000, dropped: its description retired),
 * then it again, prepared and described anew, and so on. Each callback sends
 * the next query, so three are always in flight.
 */
struct rolling {
    struct fixture *f;
    struct failing *fa;
    unsigned sent, ended, failed;
    long live_at[2]; /* the pool's live allocations after 60 and after 300 queries */
};

static void roll(struct rolling *r);

static void on_rolled(const struct hp_pg_result *res, int status, void *arg)
{
    struct rolling *r = arg;

    (void)res;
    r->ended++;
    r->failed += status != 0;
    if (r->ended == 60)
        r->live_at[0] = r->fa->live;
    if (r->ended == 300)
        r->live_at[1] = r->fa->live;
    r->f->done++;
    if (r->sent < 303)
        roll(r);
}

static void roll(struct rolling *r)
{
    unsigned k = r->sent++;
    int err = k % 6 == 0 ? hp_pg_query(r->f->pool, "DEALLOCATE ALL", 0, NULL, NULL, 0, on_rolled, r)
                         : hp_pg_query_prepared(r->f->pool, "roll", "SELECT 1 AS one", 0, NULL,
                                                NULL, 0, on_rolled, r);

    assert_int_equal(err, 0);
}

static void test_dropped_statements_under_constant_load_do_not_pile_up(void **state)
{
    struct fixture *f = *state;
    struct failing fa = {.left = -1};
    struct hp_pg_pool_opts o = {.max_conns = 1, .alloc = {failing_realloc, failing_free, &fa}};
    struct rolling r = {.f = f, .fa = &fa};
    struct call warm;

    NEED_SERVER();
    f->pool = pool_new(f, &o);
    sync_query(f, "SELECT 0", &warm);
    f->done = 0;
    for (int i = 0; i < 3; i++)
        roll(&r);
    run_count(f, 303);
    assert_int_equal(r.ended, 303);
    assert_true(r.failed >= 50);      /* at least one 26000 after each DEALLOCATE */
    assert_true(r.failed < 303 - 50); /* and the statement prepared again after each */
    /* 40 statements were dropped between the two counts: none of them is still held. */
    assert_true(r.live_at[1] - r.live_at[0] <= 2);
    hp_pg_pool_free(f->pool);
    f->pool = NULL;
    assert_int_equal(fa.live, 0);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    have_server = hp_test_pg_start(&server);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (have_server)
        hp_test_pg_destroy(&server);
    return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_query_with_parameters_gives_typed_values),
        T(test_own_protocol_code_and_libpq_give_the_same_answers),
        T(test_copy_out_completes_and_copy_in_is_refused),
        T(test_lengths_and_copies_of_parameters),
        T(test_large_parameters_and_results_flow_without_blocking),
        T(test_server_error_carries_message_and_sqlstate),
        T(test_bad_arguments_are_refused_without_callback),
        T(test_failing_query_does_not_abort_its_neighbours),
        T(test_many_concurrent_callers_get_their_own_answers),
        T(test_held_back_queries_get_their_own_answers),
        T(test_queries_of_one_iteration_spread_over_idle_connections),
        T(test_max_batch_keeps_queries_of_one_iteration_together),
        T(test_many_queries_of_one_iteration_one_failing),
        T(test_prepared_once_per_connection),
        T(test_full_wait_queue_is_an_immediate_error),
        T(test_pool_grows_up_to_max_conns),
        T(test_pool_grows_when_pipelines_fill_and_not_before),
        T(test_caller_cancels_a_running_query),
        T(test_caller_cancels_a_query_before_it_left),
        T(test_caller_cancels_queued_and_waiting_queries_only),
        T(test_timeout_cancels_the_query_on_the_server),
        T(test_shorter_timeout_behind_a_slow_query),
        T(test_waiting_query_keeps_its_deadline_in_flight),
        T(test_transaction_is_pinned_to_one_connection),
        T(test_begin_waits_for_an_idle_connection_and_pins_it),
        T(test_notify_arrives_as_a_loop_event),
        T(test_unlisten_stops_the_notifications),
        T(test_listen_is_not_held_behind_waiting_queries),
        T(test_host_names_resolve_off_the_loop),
        T(test_connection_refused_fails_fast),
        T(test_refused_address_falls_back_to_the_next_host),
        T(test_garbage_from_the_port_is_a_protocol_error),
        T(test_backend_killed_mid_query_then_recovery),
        T(test_server_restart_is_recovered_without_a_new_pool),
        T(test_stopped_server_gives_timeouts_then_recovers),
        T(test_health_check_replaces_a_silent_idle_connection),
        T(test_free_with_queries_in_flight_cancels_each_once),
        T(test_free_from_inside_a_callback),
        T(test_free_while_a_cancel_is_blocked),
        T(test_out_of_memory_anywhere_keeps_every_promise),
        T(test_dropped_statements_under_constant_load_do_not_pile_up),
    };

    libpq_io = getenv("HP_TEST_PG_LIBPQ_IO") && strcmp(getenv("HP_TEST_PG_LIBPQ_IO"), "1") == 0;
    if (getenv("HP_TEST_FILTER"))
        cmocka_set_test_filter(getenv("HP_TEST_FILTER"));
    return cmocka_run_group_tests_name(libpq_io ? "pg/client (libpq)" : "pg/client", tests,
                                       group_setup, group_teardown);
}
