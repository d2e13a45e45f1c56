/**
 * @file log.h
 * Diagnostics. hellepoll prints nothing by itself: every message goes to the
 * log callback of the loop it concerns (struct hp_loop_opts.log). There is no
 * process-wide logger.
 */
#ifndef HP_LOG_H
#define HP_LOG_H

#include <hellepoll/defs.h>

/** Severity of a log message, most severe first. */
enum hp_log_level {
    HP_LOG_DEFAULT = 0, /**< In hp_loop_opts: the default threshold, HP_LOG_WARN. */
    HP_LOG_ERROR = 1,
    HP_LOG_WARN = 2,
    HP_LOG_INFO = 3,
    HP_LOG_DEBUG = 4,
};

/**
 * Receives one log message.
 * @param ctx  the loop's hp_loop_opts.log_ctx.
 * @param file source file of the message (static string).
 * @param line source line.
 * @param msg  the message: one line, lower case, no trailing newline;
 *             borrowed for the call.
 * Runs on the loop's thread, from inside whatever call produced the
 * message. It must not call back into the loop.
 */
typedef void hp_log_cb(void *ctx, enum hp_log_level level, const char *file, int line,
                       const char *msg);

/** Name a level ("error", "warn", "info", "debug"). */
HP_API const char *hp_log_level_name(enum hp_log_level level);

#endif
