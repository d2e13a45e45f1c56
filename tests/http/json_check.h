/*
 * json_check.h - parse a document written by the JSON writer back with
 * jansson (when the tests are built with it; otherwise only the framing is
 * checked) and compare the first member's value with the bytes it was
 * written from.
 */
#ifndef HP_TEST_JSON_CHECK_H
#define HP_TEST_JSON_CHECK_H

#include <stddef.h>

/*
 * Fail the test unless @p json (@p len bytes) is one valid JSON document.
 * If @p bytes is not NULL, the document is an object whose first member's
 * value was written from @p n bytes with @p flags: check that it decodes to
 * them (UTF-8 input that is well-formed; any input in Latin-1 mode).
 */
void hp_test_json_check(const char *json, size_t len, const void *bytes, size_t n, unsigned flags);

#endif
