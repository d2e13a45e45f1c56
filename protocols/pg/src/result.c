/*
 * result.c - typed accessors over a query's answer (struct hp_pg_result,
 * wire.h): its values are NUL-terminated texts in one block. A failure has
 * no rows and an error text.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
    return col >= 0 && col < res->cols ? res->data + res->names[col] : NULL;
}

/*
 * As libpq's PQfnumber: @p name is read as an SQL identifier, folded to
 * lower case unless double-quoted (a doubled quote inside stands for one).
 */
int hp_pg_result_col_index(const struct hp_pg_result *res, const char *name)
{
    char buf[256];
    size_t n = 0;
    bool quoted = false;

    for (const char *s = name; *s; s++) {
        char ch = *s;

        if (ch == '"') {
            if (quoted && s[1] == '"') {
                s++;
            } else {
                quoted = !quoted;
                continue;
            }
        } else if (!quoted && ch >= 'A' && ch <= 'Z') {
            ch = (char)(ch - 'A' + 'a');
        }
        if (n + 1 >= sizeof(buf))
            return -1; /* longer than any identifier PostgreSQL keeps (63 bytes) */
        buf[n++] = ch;
    }
    buf[n] = '\0';
    for (int i = 0; i < res->cols; i++) {
        if (strcmp(res->data + res->names[i], buf) == 0)
            return i;
    }
    return -1;
}

static bool in_range(const struct hp_pg_result *res, int row, int col)
{
    return row >= 0 && col >= 0 && row < res->rows && col < res->cols;
}

const char *hp_pg_result_text(const struct hp_pg_result *res, int row, int col)
{
    if (!in_range(res, row, col) || res->cells[row * res->cols + col].len < 0)
        return "";
    return res->data + res->cells[row * res->cols + col].off;
}

size_t hp_pg_result_len(const struct hp_pg_result *res, int row, int col)
{
    int32_t n = in_range(res, row, col) ? res->cells[row * res->cols + col].len : 0;

    return n > 0 ? (size_t)n : 0;
}

bool hp_pg_result_is_null(const struct hp_pg_result *res, int row, int col)
{
    return !in_range(res, row, col) || res->cells[row * res->cols + col].len < 0;
}

/* The value's text for parsing, or an error. */
static int value(const struct hp_pg_result *res, int row, int col, const char **out)
{
    const struct pgcell *c;

    if (!in_range(res, row, col))
        return -ERANGE;
    c = &res->cells[row * res->cols + col];
    if (c->len < 0)
        return -ENODATA;
    *out = res->data + c->off;
    return c->len > 0 ? 0 : -EINVAL;
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
    return res->status == 0 && res->cmd ? res->cmd : "";
}

/* As libpq's PQcmdTuples: the count in the tag of the commands that have one. */
int64_t hp_pg_result_affected(const struct hp_pg_result *res)
{
    static const char *const with_count[] = {"INSERT ", "UPDATE ", "DELETE ", "SELECT ",
                                             "MOVE ",   "FETCH ",  "COPY ",   "MERGE "};
    const char *s = hp_pg_result_command(res), *num = NULL;
    int64_t v;

    for (size_t i = 0; i < sizeof(with_count) / sizeof(with_count[0]); i++) {
        size_t n = strlen(with_count[i]);

        if (strncmp(s, with_count[i], n) == 0) {
            num = s + n;
            break;
        }
    }
    if (num && strncmp(s, "INSERT ", 7) == 0) {
        num = strchr(num, ' '); /* INSERT oid rows */
        num = num ? num + 1 : NULL;
    }
    if (!num || parse_int64(num, &v) != 0 || v < 0)
        return -1;
    return v;
}

const char *hp_pg_result_error(const struct hp_pg_result *res)
{
    if (res->status == 0)
        return "";
    if (res->msg && *res->msg)
        return res->msg;
    return hp_pg_strerror(res->status);
}

const char *hp_pg_result_sqlstate(const struct hp_pg_result *res)
{
    return res->status != 0 ? res->sqlstate : NULL;
}

const char *hp_pg_strerror(int status)
{
    if (status == HP_PG_ESERVER)
        return "the server reported an error";
    return hp_strerror(status);
}
