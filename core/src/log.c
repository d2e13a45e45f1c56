/*
 * log.c - the per-loop log sink. Messages below the loop's threshold are
 * dropped before formatting; with no callback nothing is formatted at all.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

const char *hp_log_level_name(enum hp_log_level level)
{
    switch (level) {
    case HP_LOG_DEFAULT:
        break;
    case HP_LOG_ERROR:
        return "error";
    case HP_LOG_WARN:
        return "warn";
    case HP_LOG_INFO:
        return "info";
    case HP_LOG_DEBUG:
        return "debug";
    }
    return "unknown";
}

void hp__log(struct hp_loop *loop, enum hp_log_level level, const char *file, int line,
             const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (!loop->log || level > loop->log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    loop->log(loop->log_ctx, level, file, line, msg);
}
