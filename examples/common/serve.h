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
    /** Optional on_head handler of every server. */
    hp_http_handler *on_head;
    /**
     * Optional. Called on the main thread once worker @p data's loop exists,
     * before its server is created (connect clients, start timers).
     * @return 0, or a negative errno: the program stops with a message.
     */
    int (*worker_start)(void *data, struct hp_loop *loop);
    /**
     * Optional. Called on the worker's thread at SIGINT/SIGTERM, before its
     * server shuts down: close what worker_start opened, so that the loop
     * can end once the last request is finished.
     */
    void (*worker_stop)(void *data);
    /**
     * Optional: the program's own options. Called for every option the
     * common ones do not know, with its value (the next argument, or NULL).
     * @return 2 if it took the option and its value, 1 if it took the
     *         option alone (a flag), 0 if it does not know it, -1 for a bad
     *         value (it printed why; the program exits with status 2).
     */
    int (*option)(const char *opt, const char *value);
    /** Usage lines of those options ("[--root DIR] [--listing]\n"), or NULL. */
    const char *options_usage;
};

/**
 * Parse @p argv, serve until SIGINT or SIGTERM and return the exit status
 * for main(): 0 after a clean stop, 1 on failure. Exits by itself after
 * --help (0) and on a bad option (2).
 */
int hp_example_serve(const struct hp_example *ex, int argc, char **argv);

#endif
