/*
 * date.c - the Date and Server header lines, rendered into the server's
 * "common" bytes at most once per wall-clock second and copied into every
 * response. The refresh is due when the loop's cached monotonic time passes
 * date_next, which points at the next wall-clock second boundary
 * (hp__http_date_check()); date_gen tells the pre-rendered heads built from
 * the old lines that they are stale.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static void format_date(char *out, size_t cap, time_t t)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    snprintf(out, cap, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

void hp__http_date_refresh(struct hp_http_server *srv)
{
    struct timespec ts;
    uint64_t now = hp_loop_now(srv->loop);
    const char *name = srv->server_name;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    format_date(srv->common, sizeof(srv->common), ts.tv_sec);
    n = (int)strlen(srv->common);
    if (name[0] != '\0')
        n += snprintf(srv->common + n, sizeof(srv->common) - (size_t)n, "Server: %s\r\n", name);
    srv->common_len = (size_t)n < sizeof(srv->common) ? (size_t)n : sizeof(srv->common) - 1;
    srv->date_next = now + 1000 - (uint64_t)(ts.tv_nsec / 1000000);
    srv->date_gen++;
}
