/*
 * pgserver.c - see pgserver.h.
 */
#include "pgserver.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef HP_PGTMP
#error "define HP_PGTMP as the path of tests/support/pgtmp.sh"
#endif

static void run_start(struct hp_test_pg *pg, const char *port)
{
    char cmd[768], line[512];
    FILE *f;
    long pid = 0;
    int p = 0;

    /* The watchdog stops the server if this process dies before its cleanup. */
    snprintf(cmd, sizeof(cmd), "HP_PGTMP_OWNER=%ld '%s' start '%s' %s", (long)getpid(), HP_PGTMP,
             pg->dir, port);
    f = popen(cmd, "r");
    if (!f)
        fail_msg("cannot run %s", cmd);
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "PORT=%d PID=%ld", &p, &pid) == 2)
            break;
    }
    if (pclose(f) != 0 || p == 0 || pid == 0)
        fail_msg("pgtmp start failed (see %s/server.log)", pg->dir);
    pg->port = p;
    pg->pid = (pid_t)pid;
    pg->running = true;
    snprintf(pg->conninfo, sizeof(pg->conninfo),
             "host=127.0.0.1 port=%d user=postgres dbname=postgres", p);
}

bool hp_test_pg_start(struct hp_test_pg *pg)
{
    char cmd[768];
    int rc;

    memset(pg, 0, sizeof(*pg));
    snprintf(cmd, sizeof(cmd), "'%s' bin >/dev/null 2>&1", HP_PGTMP);
    if (system(cmd) != 0) {
        fprintf(stderr, "\n*** SKIP: PostgreSQL server binaries not found (Debian: apt-get install "
                        "postgresql); the PostgreSQL tests did NOT run ***\n\n");
        return false;
    }
    snprintf(pg->dir, sizeof(pg->dir), "/tmp/hp-pgtest-XXXXXX");
    if (!mkdtemp(pg->dir))
        fail_msg("mkdtemp failed");
    snprintf(cmd, sizeof(cmd), "'%s' init '%s'", HP_PGTMP, pg->dir);
    rc = system(cmd);
    if (rc != 0)
        fail_msg("pgtmp init failed (%d)", rc);
    run_start(pg, "");
    return true;
}

void hp_test_pg_stop(struct hp_test_pg *pg)
{
    char cmd[768];

    if (!pg->running)
        return;
    snprintf(cmd, sizeof(cmd), "'%s' stop '%s'", HP_PGTMP, pg->dir);
    if (system(cmd) != 0)
        fail_msg("pgtmp stop failed");
    pg->running = false;
}

void hp_test_pg_restart(struct hp_test_pg *pg)
{
    char port[16];

    snprintf(port, sizeof(port), "%d", pg->port);
    run_start(pg, port);
}

void hp_test_pg_destroy(struct hp_test_pg *pg)
{
    char cmd[768];

    if (!pg->dir[0])
        return;
    hp_test_pg_stop(pg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", pg->dir);
    pg->dir[0] = '\0';
}

void hp_test_pg_sql(struct hp_test_pg *pg, const char *sql)
{
    char cmd[4096];

    snprintf(cmd, sizeof(cmd), "'%s' psql '%s' -c \"%s\" >/dev/null", HP_PGTMP, pg->dir, sql);
    if (system(cmd) != 0)
        fail_msg("psql failed: %s", sql);
}
