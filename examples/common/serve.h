/*
 * The part of the HTTP examples that is not their handler: command-line
 * options, one loop and server per worker thread on the same port
 * (SO_REUSEPORT), a graceful stop on SIGINT or SIGTERM, and the
 * "NAME: listening on http://HOST:PORT/ ..." line that tests/http parses.
 */
#ifndef HP_SERVE_H
#define HP_SERVE_H

#include <hellepoll/http.h>

/** --workers accepts 1..HP_EXAMPLE_MAX_WORKERS. */
#define HP_EXAMPLE_MAX_WORKERS 64

/** What one example passes to hp_example_serve(). */
struct hp_example {
    /** Program name, used in --help and in every message. */
    const char *name;
    /** One line of --help after the usage, newline included. */
    const char *summary;
    /** The server's request handler. */
    hp_http_handler *on_request;
    /**
     * Optional: options of the example's own, tried before the common ones.
     * @p value is the next argument (NULL at the end). Return how many
     * arguments were used (1 for a flag, 2 for an option with its value),
     * 0 if @p name is not the example's, or -1 to exit with status 2 (after
     * printing why).
     */
    int (*option)(const char *name, const char *value);
    /** Optional: the example's own options for the usage line ("[--root DIR]"). */
    const char *options_usage;
    /**
     * Optional. Called on the main thread before worker @p index (0-based)
     * creates its server; the result becomes the server's data pointer
     * (hp_http_server_data()).
     */
    void *(*worker_data)(unsigned index);
    /**
     * Optional. Called on the worker's own thread after its loop and server
     * are freed, with what worker_data returned. Not called for a worker
     * whose server could not be started.
     */
    void (*worker_done)(void *data);
};

/**
 * Parse @p argv, serve until SIGINT or SIGTERM and return the exit status
 * for main(): 0 after a clean stop, 1 on failure. Exits by itself after
 * --help (0) and on a bad option (2).
 */
int hp_example_serve(const struct hp_example *ex, int argc, char **argv);

#endif
