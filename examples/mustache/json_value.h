/*
 * json_value.h - a jansson document as a struct hp_mustache_value tree
 * (shared by the mustache CLI and its tests; the engine itself has no JSON).
 */
#ifndef HP_EXAMPLE_JSON_VALUE_H
#define HP_EXAMPLE_JSON_VALUE_H

#include <jansson.h>

#include <hellepoll/mustache.h>

/*
 * Build the tree for @p j into *out. Strings point into @p j, which must
 * outlive the tree. @p hook (may be NULL) may replace an object: it returns
 * true after filling *v itself (the tests turn {"__tag__": "code"} objects
 * into lambdas). 0 or -ENOMEM.
 */
typedef int hp_json_hook(void *ud, const json_t *obj, struct hp_mustache_value *v);
int hp_json_to_value(const json_t *j, struct hp_mustache_value *out, hp_json_hook *hook, void *ud);

/* Free what hp_json_to_value() allocated. */
void hp_json_value_free(struct hp_mustache_value *v);

#endif
