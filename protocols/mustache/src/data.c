/*
 * data.c - reading the two data bindings: application structs described by
 * struct hp_mustache_type (fields read in place at their offsets) and the
 * generic struct hp_mustache_value tree. A cursor (type, pointer, count)
 * names any value of either; the renderer never looks inside one itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const struct hp_mustache_type hp__type_none = {HP_MUSTACHE_NONE, 0, NULL, 0, NULL};
const struct hp_mustache_type hp_mustache_type_cstr = {HP_MUSTACHE_CSTR, sizeof(const char *), NULL,
                                                       0, NULL};
const struct hp_mustache_type hp_mustache_type_str = {HP_MUSTACHE_STR, sizeof(struct hp_str), NULL,
                                                      0, NULL};
const struct hp_mustache_type hp_mustache_type_int = {HP_MUSTACHE_INT, sizeof(int), NULL, 0, NULL};
const struct hp_mustache_type hp_mustache_type_i64 = {HP_MUSTACHE_I64, sizeof(int64_t), NULL, 0,
                                                      NULL};
const struct hp_mustache_type hp_mustache_type_double = {HP_MUSTACHE_DOUBLE, sizeof(double), NULL,
                                                         0, NULL};
const struct hp_mustache_type hp_mustache_type_bool = {HP_MUSTACHE_BOOL, sizeof(bool), NULL, 0,
                                                       NULL};
const struct hp_mustache_type hp_mustache_type_value = {
    HP_MUSTACHE_VALUE, sizeof(struct hp_mustache_value), NULL, 0, NULL};
const struct hp_mustache_type hp_mustache_type_lambda = {
    HP_MUSTACHE_LAMBDA, sizeof(struct hp_mustache_lambda), NULL, 0, NULL};

const struct hp_mustache_field *hp__field(const struct hp_mustache_type *t, const char *name,
                                          size_t len)
{
    const struct hp_mustache_field *f = t->fields;

    for (size_t k = 0; k < t->nfields; k++, f++)
        if (f->name[0] == name[0] && strncmp(f->name, name, len) == 0 && f->name[len] == 0)
            return f;
    return NULL;
}

bool hp__lookup(const struct hp__cur *in, const char *name, size_t len, struct hp__cur *out)
{
    const struct hp_mustache_type *t = in->t;

    if (t->kind == HP_MUSTACHE_STRUCT) {
        const struct hp_mustache_field *f = hp__field(t, name, len);

        if (f)
            hp__field_cur(in->p, f, out);
        return f != NULL;
    }
    if (t->kind == HP_MUSTACHE_VALUE) {
        const struct hp_mustache_value *v = (const void *)in->p;

        if (v->type != HP_MUSTACHE_V_MAP)
            return false;
        for (size_t k = 0; k < v->u.map.n; k++) {
            const struct hp_mustache_member *m = &v->u.map.items[k];
            if (m->key.len == len && memcmp(m->key.ptr, name, len) == 0) {
                out->t = &hp_mustache_type_value;
                out->p = (const char *)&m->value;
                out->n = 0;
                hp__cur_norm(out);
                return true;
            }
        }
    }
    return false;
}

void hp__cur_norm(struct hp__cur *c)
{
    const struct hp_mustache_value *v;

    if (c->t->kind != HP_MUSTACHE_VALUE)
        return;
    v = (const void *)c->p;
    if (v->type == HP_MUSTACHE_V_LIST) {
        static const struct hp_mustache_type list_of_values = {HP_MUSTACHE_LIST, 0, NULL, 0,
                                                               &hp_mustache_type_value};
        c->t = &list_of_values;
        c->p = (const char *)v->u.list.items;
        c->n = v->u.list.items ? v->u.list.n : 0;
    } else if (v->type == HP_MUSTACHE_V_LAMBDA) {
        c->t = &hp_mustache_type_lambda;
        c->p = (const char *)&v->u.lambda;
    }
}

bool hp__truthy(const struct hp__cur *c)
{
    const char *p = c->p;

    switch (c->t->kind) {
    case HP_MUSTACHE_NONE:
        return false;
    case HP_MUSTACHE_CSTR: {
        const char *s;
        memcpy(&s, p, sizeof(s));
        return s && *s;
    }
    case HP_MUSTACHE_STR:
        return ((const struct hp_str *)(const void *)p)->len != 0;
    case HP_MUSTACHE_INT:
        return *(const int *)(const void *)p != 0;
    case HP_MUSTACHE_I64:
        return *(const int64_t *)(const void *)p != 0;
    case HP_MUSTACHE_DOUBLE:
        return *(const double *)(const void *)p != 0;
    case HP_MUSTACHE_BOOL:
        return *(const bool *)(const void *)p;
    case HP_MUSTACHE_LIST:
        return c->n != 0;
    case HP_MUSTACHE_VALUE: {
        const struct hp_mustache_value *v = (const void *)p;
        switch (v->type) {
        case HP_MUSTACHE_V_NULL:
            return false;
        case HP_MUSTACHE_V_BOOL:
            return v->u.b;
        case HP_MUSTACHE_V_INT:
            return v->u.i != 0;
        case HP_MUSTACHE_V_DOUBLE:
            return v->u.d != 0;
        case HP_MUSTACHE_V_STRING:
            return v->u.s.len != 0;
        default:
            return true;
        }
    }
    default:
        return true;
    }
}

bool hp__cur_string(const struct hp__cur *c, const char **p, size_t *n)
{
    switch (c->t->kind) {
    case HP_MUSTACHE_CSTR: {
        const char *s;
        memcpy(&s, c->p, sizeof(s));
        *p = s ? s : "";
        *n = s ? strlen(s) : 0;
        return true;
    }
    case HP_MUSTACHE_STR: {
        const struct hp_str *s = (const void *)c->p;
        *p = s->ptr;
        *n = s->len;
        return true;
    }
    case HP_MUSTACHE_VALUE: {
        const struct hp_mustache_value *v = (const void *)c->p;
        if (v->type != HP_MUSTACHE_V_STRING)
            return false;
        *p = v->u.s.ptr;
        *n = v->u.s.len;
        return true;
    }
    default:
        return false;
    }
}

const char hp__digits2[201] = "00010203040506070809"
                              "10111213141516171819"
                              "20212223242526272829"
                              "30313233343536373839"
                              "40414243444546474849"
                              "50515253545556575859"
                              "60616263646566676869"
                              "70717273747576777879"
                              "80818283848586878889"
                              "90919293949596979899";

size_t hp__fmt_u64(char *dst, uint64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof(tmp), *p = e;

    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, hp__digits2 + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, hp__digits2 + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    memcpy(dst, p, (size_t)(e - p));
    return (size_t)(e - p);
}

static size_t fmt_i64(char *buf, int64_t v)
{
    if (v < 0) {
        buf[0] = '-';
        /* negate in unsigned arithmetic: INT64_MIN has no positive int64 */
        return 1 + hp__fmt_u64(buf + 1, (uint64_t)0 - (uint64_t)v);
    }
    return hp__fmt_u64(buf, (uint64_t)v);
}

static size_t fmt_double(char *buf, double d)
{
    int n;

    if (d == (double)(int64_t)d && d < 1e15 && d > -1e15)
        return fmt_i64(buf, (int64_t)d);
    n = snprintf(buf, 32, "%.15g", d);
    if (n > 0 && strtod(buf, NULL) != d)
        n = snprintf(buf, 32, "%.17g", d);
    return n > 0 ? (size_t)n : 0;
}

static size_t fmt_bool(char *buf, bool b)
{
    memcpy(buf, b ? "true" : "false", b ? 4 : 5);
    return b ? 4 : 5;
}

size_t hp__format_scalar(const struct hp__cur *c, char *buf, const char **sp, size_t *sn,
                         bool *is_str)
{
    const char *p = c->p;

    *is_str = false;
    switch (c->t->kind) {
    case HP_MUSTACHE_INT:
        return fmt_i64(buf, *(const int *)(const void *)p);
    case HP_MUSTACHE_I64:
        return fmt_i64(buf, *(const int64_t *)(const void *)p);
    case HP_MUSTACHE_DOUBLE:
        return fmt_double(buf, *(const double *)(const void *)p);
    case HP_MUSTACHE_BOOL:
        return fmt_bool(buf, *(const bool *)(const void *)p);
    case HP_MUSTACHE_VALUE: {
        const struct hp_mustache_value *v = (const void *)p;
        switch (v->type) {
        case HP_MUSTACHE_V_BOOL:
            return fmt_bool(buf, v->u.b);
        case HP_MUSTACHE_V_INT:
            return fmt_i64(buf, v->u.i);
        case HP_MUSTACHE_V_DOUBLE:
            return fmt_double(buf, v->u.d);
        case HP_MUSTACHE_V_STRING:
            *is_str = true;
            *sp = v->u.s.ptr;
            *sn = v->u.s.len;
            return 0;
        default:
            return 0;
        }
    }
    default:
        if (hp__cur_string(c, sp, sn))
            *is_str = true;
        return 0;
    }
}
