// bench/mustache/peer_kainjow.cpp - the same three workloads as bench.c on
// kainjow/mustache (Debian libkainjow-mustache-dev, a header-only C++11
// engine), for bench/mustache/run.sh to compare against. Template parsed
// and data built once, outside the measured renders, as for hellepoll.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <kainjow/mustache.hpp>
#include <valgrind/callgrind.h>

using kainjow::mustache::data;
using kainjow::mustache::mustache;

static double now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const char *fortune_rows[][2] = {
    {"11", "<script>alert(\"This should not be displayed in a browser alert box.\");</script>"},
    {"4", "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"},
    {"5", "A computer program does what you tell it to do, not what you want it to do."},
    {"2", "A computer scientist is someone who fixes things that aren't broken."},
    {"8", "A list is only as strong as its weakest link. \xe2\x80\x94 Donald Knuth"},
    {"0", "Additional fortune added at request time."},
    {"3", "After enough decimal places, nobody gives a damn."},
    {"7", "Any program that runs right is obsolete."},
    {"10", "Computers make very fast, very accurate mistakes."},
    {"6", "Emacs is a nice operating system, but I prefer UNIX. \xe2\x80\x94 Tom Christaensen"},
    {"9", "Feature: A bug with seniority."},
    {"1", "fortune: No such file or directory"},
    {"12", "\xe3\x83\x95\xe3\x83\xac\xe3\x83\xbc\xe3\x83\xa0\xe3\x83\xaf\xe3\x83\xbc\xe3\x82\xaf\xe3"
           "\x81\xae\xe3\x83\x99\xe3\x83\xb3\xe3\x83\x81\xe3\x83\x9e\xe3\x83\xbc\xe3\x82\xaf"},
};

int main(int argc, char **argv)
{
    std::string w = argc > 1 ? argv[1] : "bigtable";
    long n = argc > 2 ? atol(argv[2]) : 1000;
    std::string tpl, out;
    data d;

    if (w == "bigtable") {
        tpl = "<table>{{#rows}}<tr>{{#cols}}<td>{{.}}</td>{{/cols}}</tr>{{/rows}}</table>";
        data rows{data::type::list};
        for (int r = 0; r < 100; r++) {
            data cols{data::type::list};
            for (int c = 0; c < 100; c++)
                cols.push_back(std::to_string(r * 100 + c));
            data row;
            row.set("cols", cols);
            rows.push_back(row);
        }
        d.set("rows", rows);
    } else if (w == "fortunes") {
        tpl = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id"
              "</th><th>message</th></tr>{{#fortunes}}<tr><td>{{id}}</td><td>{{message}}</td>"
              "</tr>{{/fortunes}}</table></body></html>";
        data list{data::type::list};
        for (auto &f : fortune_rows) {
            data row;
            row.set("id", f[0]);
            row.set("message", f[1]);
            list.push_back(row);
        }
        d.set("fortunes", list);
    } else if (w != "escape" && w != "escape-plain") {
        fprintf(stderr, "usage: bench_mustache_kainjow bigtable|fortunes|escape|escape-plain [N]\n");
        return 2;
    }
    std::string esc(65536, 'a');
    static const char prose[] = "Any program that runs right is obsolete, 1, 2, 3. ";
    for (size_t k = 0; k < esc.size(); k++)
        esc[k] = w == "escape-plain"   ? prose[k % (sizeof(prose) - 1)]
                 : k % 32 == 31        ? "&<>\"'"[(k / 32) % 5]
                                       : (char)('a' + k % 26);
    if (w == "escape-plain")
        w = "escape";
    mustache m{tpl};
    out = w == "escape" ? kainjow::mustache::html_escape(esc) : m.render(d);
    size_t bytes = out.size();
    double t0 = now_ns();
    CALLGRIND_START_INSTRUMENTATION;
    for (long i = 0; i < n; i++)
        out = w == "escape" ? kainjow::mustache::html_escape(esc) : m.render(d);
    CALLGRIND_STOP_INSTRUMENTATION;
    double t1 = now_ns();
    if (out.size() != bytes)
        return 1;
    if (getenv("HP_BENCH_PRINT"))
        fwrite(out.data(), 1, out.size(), stdout);
    printf("RESULT workload=%s n=%ld out_bytes=%zu ns_per_render=%.1f\n", w.c_str(), n, bytes,
           (t1 - t0) / (double)n);
    return 0;
}
