/*
 * bench/mustache/fortunes_data.h - the TechEmpower fortunes page shared by
 * bench.c and page_server.c: its standard template (without the optional
 * whitespace) and the 13 rows (the 12 of the database, the <script> one and
 * the Japanese one included, plus the one added at request time), sorted by
 * message, described for the struct binding.
 */
#ifndef BENCH_MUSTACHE_FORTUNES_DATA_H
#define BENCH_MUSTACHE_FORTUNES_DATA_H

#include <hellepoll/mustache.h>

struct fortune {
    int id;
    const char *message;
};
struct fortunes {
    const struct fortune *fortunes;
    size_t n;
};
static const struct hp_mustache_field fortune_fields[] = {
    HP_MUSTACHE_FIELD(struct fortune, id, &hp_mustache_type_int),
    HP_MUSTACHE_FIELD(struct fortune, message, &hp_mustache_type_cstr),
};
static const struct hp_mustache_type fortune_type =
    HP_MUSTACHE_STRUCT_TYPE(struct fortune, fortune_fields);
static const struct hp_mustache_field fortunes_fields[] = {
    HP_MUSTACHE_LIST_FIELD(struct fortunes, fortunes, n, &fortune_type),
};
static const struct hp_mustache_type fortunes_type =
    HP_MUSTACHE_STRUCT_TYPE(struct fortunes, fortunes_fields);
/* Sorted by message, as the benchmark requires. */
static const struct fortune fortune_rows[] = {
    {11, "<script>alert(\"This should not be displayed in a browser alert box.\");</script>"},
    {4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"},
    {5, "A computer program does what you tell it to do, not what you want it to do."},
    {2, "A computer scientist is someone who fixes things that aren't broken."},
    {8, "A list is only as strong as its weakest link. \xe2\x80\x94 Donald Knuth"},
    {0, "Additional fortune added at request time."},
    {3, "After enough decimal places, nobody gives a damn."},
    {7, "Any program that runs right is obsolete."},
    {10, "Computers make very fast, very accurate mistakes."},
    {6, "Emacs is a nice operating system, but I prefer UNIX. \xe2\x80\x94 Tom Christaensen"},
    {9, "Feature: A bug with seniority."},
    {1, "fortune: No such file or directory"},
    {12, "\xe3\x83\x95\xe3\x83\xac\xe3\x83\xbc\xe3\x83\xa0\xe3\x83\xaf\xe3\x83\xbc\xe3\x82\xaf\xe3"
         "\x81\xae\xe3\x83\x99\xe3\x83\xb3\xe3\x83\x81\xe3\x83\x9e\xe3\x83\xbc\xe3\x82\xaf"},
};
static const struct fortunes fortunes = {fortune_rows, 13};
static const char fortunes_tpl[] =
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th>"
    "<th>message</th></tr>{{#fortunes}}<tr><td>{{id}}</td><td>{{message}}</td></tr>"
    "{{/fortunes}}</table></body></html>";

#endif
