/* json_value.c - jansson -> struct hp_mustache_value (see json_value.h). */
#include "json_value.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int hp_json_to_value(const json_t *j, struct hp_mustache_value *v, hp_json_hook *hook, void *ud)
{
    memset(v, 0, sizeof(*v));
    switch (json_typeof(j)) {
    case JSON_NULL:
        v->type = HP_MUSTACHE_V_NULL;
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        v->type = HP_MUSTACHE_V_BOOL;
        v->u.b = json_is_true(j);
        return 0;
    case JSON_INTEGER:
        v->type = HP_MUSTACHE_V_INT;
        v->u.i = (int64_t)json_integer_value(j);
        return 0;
    case JSON_REAL:
        v->type = HP_MUSTACHE_V_DOUBLE;
        v->u.d = json_real_value(j);
        return 0;
    case JSON_STRING:
        v->type = HP_MUSTACHE_V_STRING;
        v->u.s.ptr = json_string_value(j);
        v->u.s.len = json_string_length(j);
        return 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        struct hp_mustache_value *items = calloc(n ? n : 1, sizeof(*items));
        v->type = HP_MUSTACHE_V_LIST;
        if (!items)
            return -ENOMEM;
        v->u.list.items = items;
        v->u.list.n = n;
        for (size_t k = 0; k < n; k++) {
            int rc = hp_json_to_value(json_array_get(j, k), &items[k], hook, ud);
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j), k = 0;
        struct hp_mustache_member *items;
        const char *key;
        json_t *val;

        if (hook && hook(ud, j, v))
            return 0;
        v->type = HP_MUSTACHE_V_MAP;
        if (!(items = calloc(n ? n : 1, sizeof(*items))))
            return -ENOMEM;
        v->u.map.items = items;
        v->u.map.n = n;
        json_object_foreach((json_t *)(uintptr_t)j, key, val)
        {
            items[k].key.ptr = key;
            items[k].key.len = strlen(key);
            int rc = hp_json_to_value(val, &items[k].value, hook, ud);
            if (rc)
                return rc;
            k++;
        }
        return 0;
    }
    }
    return 0;
}

void hp_json_value_free(struct hp_mustache_value *v)
{
    if (v->type == HP_MUSTACHE_V_LIST) {
        for (size_t k = 0; k < v->u.list.n; k++)
            hp_json_value_free((struct hp_mustache_value *)(uintptr_t)&v->u.list.items[k]);
        free((void *)(uintptr_t)v->u.list.items);
    } else if (v->type == HP_MUSTACHE_V_MAP) {
        for (size_t k = 0; k < v->u.map.n; k++)
            hp_json_value_free((struct hp_mustache_value *)(uintptr_t)&v->u.map.items[k].value);
        free((void *)(uintptr_t)v->u.map.items);
    }
    memset(v, 0, sizeof(*v));
}
