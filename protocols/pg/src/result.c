/*
 * result.c - typed accessors over a PGresult. A result without a PGresult
 * (a failure before the server answered) has no rows and an error text.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int hp__pg_status_of(const PGresult *res)
{
    if (!res)
        return -EPROTO;
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
    case PGRES_SINGLE_TUPLE:
        return 0;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR:
    case PGRES_PIPELINE_ABORTED:
        return HP_PG_ESERVER;
    default:
        return -EPROTO;
    }
}

int hp_pg_result_rows(const struct hp_pg_result *res)
{
    return res->rows;
}

int hp_pg_result_cols(const struct hp_pg_result *res)
{
    return res->cols;
}

const char *hp_pg_result_col_name(const struct hp_pg_result *res, int col)
{
    return res->res ? PQfname(res->res, col) : NULL;
}

int hp_pg_result_col_index(const struct hp_pg_result *res, const char *name)
{
    return res->res ? PQfnumber(res->res, name) : -1;
}

static bool in_range(const struct hp_pg_result *res, int row, int col)
{
    return row >= 0 && col >= 0 && row < res->rows && col < res->cols; /* 0 without a PGresult */
}

const char *hp_pg_result_text(const struct hp_pg_result *res, int row, int col)
{
    return in_range(res, row, col) ? PQgetvalue(res->res, row, col) : "";
}

size_t hp_pg_result_len(const struct hp_pg_result *res, int row, int col)
{
    return in_range(res, row, col) ? (size_t)PQgetlength(res->res, row, col) : 0;
}

bool hp_pg_result_is_null(const struct hp_pg_result *res, int row, int col)
{
    return !in_range(res, row, col) || PQgetisnull(res->res, row, col);
}

/* The value's text for parsing, or an error. */
static int value(const struct hp_pg_result *res, int row, int col, const char **out)
{
    if (!in_range(res, row, col))
        return -ERANGE;
    if (PQgetisnull(res->res, row, col))
        return -ENODATA;
    *out = PQgetvalue(res->res, row, col);
    return **out ? 0 : -EINVAL;
}

/* Decimal integer text as PostgreSQL prints it: [-]digits. No locale, no strtoll. */
static int parse_int64(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v = 0, limit;

    if (neg || *s == '+')
        s++;
    if (!*s)
        return -EINVAL;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t n = 0; *s; s++, n++) {
        unsigned d = (unsigned)(*s - '0');

        if (d > 9)
            return -EINVAL;
        if (n >= 18 && v > (limit - d) / 10) /* 18 digits cannot overflow */
            return -ERANGE;
        v = v * 10 + d;
    }
    /* Two's complement negation in unsigned arithmetic, then back: no overflow. */
    *out = neg ? (int64_t)(~v + 1) : (int64_t)v;
    return 0;
}

int hp_pg_result_int64(const struct hp_pg_result *res, int row, int col, int64_t *out)
{
    const char *s;
    int err = value(res, row, col, &s);

    return err ? err : parse_int64(s, out);
}

int hp_pg_result_int(const struct hp_pg_result *res, int row, int col, int *out)
{
    int64_t v;
    int err = hp_pg_result_int64(res, row, col, &v);

    if (err)
        return err;
    if (v < -2147483647 - 1 || v > 2147483647)
        return -ERANGE;
    *out = (int)v;
    return 0;
}

int hp_pg_result_double(const struct hp_pg_result *res, int row, int col, double *out)
{
    const char *s;
    char *end;
    double v;
    int err = value(res, row, col, &s);

    if (err)
        return err;
    errno = 0;
    v = strtod(s, &end);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
        return -ERANGE;
    *out = v;
    return 0;
}

int hp_pg_result_bool(const struct hp_pg_result *res, int row, int col, bool *out)
{
    const char *s;
    int err = value(res, row, col, &s);

    if (err)
        return err;
    if (strcmp(s, "t") == 0 || strcmp(s, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "f") == 0 || strcmp(s, "false") == 0) {
        *out = false;
        return 0;
    }
    return -EINVAL;
}

const char *hp_pg_result_command(const struct hp_pg_result *res)
{
    return res->res && res->status == 0 ? PQcmdStatus(res->res) : "";
}

int64_t hp_pg_result_affected(const struct hp_pg_result *res)
{
    const char *s = res->res && res->status == 0 ? PQcmdTuples(res->res) : "";

    return *s ? (int64_t)strtoll(s, NULL, 10) : -1;
}

const char *hp_pg_result_error(const struct hp_pg_result *res)
{
    const char *m;

    if (res->status == 0)
        return "";
    if (res->res && (m = PQresultErrorField(res->res, PG_DIAG_MESSAGE_PRIMARY)) != NULL)
        return m;
    if (res->msg && *res->msg)
        return res->msg;
    return hp_pg_strerror(res->status);
}

const char *hp_pg_result_sqlstate(const struct hp_pg_result *res)
{
    return res->res && res->status != 0 ? PQresultErrorField(res->res, PG_DIAG_SQLSTATE) : NULL;
}

const char *hp_pg_strerror(int status)
{
    if (status == HP_PG_ESERVER)
        return "the server reported an error";
    return hp_strerror(status);
}
