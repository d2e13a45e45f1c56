/*
 * pgserver.h - a real PostgreSQL server for a test program, through
 * tests/support/pgtmp.sh: initdb into a temporary directory, start on a
 * free loopback port (as the user "postgres" when running as root), stop by
 * PID. Link tests/support/pgserver.c and define HP_PGTMP as the script's
 * path (see tests/pg/CMakeLists.txt).
 */
#ifndef HP_PGSERVER_H
#define HP_PGSERVER_H

#include <stdbool.h>
#include <sys/types.h>

struct hp_test_pg {
    char dir[256];      /* temporary directory: data/, socket, logs */
    char conninfo[512]; /* "host=127.0.0.1 port=... user=postgres dbname=postgres" */
    int port;
    pid_t pid; /* the postmaster's */
    bool running;
};

/*
 * initdb and start. Returns false, after printing a loud SKIP line, if the
 * PostgreSQL binaries are missing; any other failure fails the test.
 */
bool hp_test_pg_start(struct hp_test_pg *pg);

/* Fast shutdown by PID (waits until the postmaster has exited). */
void hp_test_pg_stop(struct hp_test_pg *pg);

/* Start again on the same port and directory after hp_test_pg_stop(). */
void hp_test_pg_restart(struct hp_test_pg *pg);

/* Stop the server if running and remove the directory. */
void hp_test_pg_destroy(struct hp_test_pg *pg);

/* Run SQL through psql (blocking; for setting up fixtures); fails the test on error. */
void hp_test_pg_sql(struct hp_test_pg *pg, const char *sql);

#endif
