/*
 * server.c - start and stop real servers for client tests (see server.h).
 * Readiness is polled by connecting, with a deadline; never a fixed sleep.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cmocka.h>

static const char *const names[] = {"redis-server", "memcached"};

bool hp_test_server_find(struct hp_test_server *s, enum hp_test_server_kind kind)
{
    const char *path = getenv("PATH");
    char buf[1024];

    memset(s, 0, sizeof(*s));
    s->kind = kind;
    snprintf(buf, sizeof(buf), "%s:/usr/sbin:/usr/bin:/usr/local/bin", path ? path : "");
    for (char *dir = strtok(buf, ":"); dir; dir = strtok(NULL, ":")) {
        snprintf(s->bin, sizeof(s->bin), "%s/%s", dir, names[kind]);
        if (access(s->bin, X_OK) == 0)
            return true;
    }
    fprintf(stderr,
            "\n*** SKIPPED: %s not found on PATH; install it (tests/install-deps.sh) "
            "to run these tests ***\n\n",
            names[kind]);
    return false;
}

uint16_t hp_test_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        fail_msg("free port: %s", strerror(errno));
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static bool accepts(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

void hp_test_server_start(struct hp_test_server *s)
{
    char port[16];
    pid_t pid;
    struct timespec t0, t;

    if (s->dir[0] == 0) {
        snprintf(s->dir, sizeof(s->dir), "/tmp/hp-%s-XXXXXX", names[s->kind]);
        if (mkdtemp(s->dir) == NULL)
            fail_msg("mkdtemp: %s", strerror(errno));
    }
    if (s->port == 0)
        s->port = hp_test_free_port();
    snprintf(port, sizeof(port), "%u", (unsigned)s->port);
    pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);

#ifdef __linux__
        /* A test that crashes (or is killed by its timeout) takes its server along. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(125);
#endif
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        if (chdir(s->dir) != 0)
            _exit(126);
        if (s->kind == HP_TEST_REDIS)
            execl(s->bin, s->bin, "--port", port, "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", s->dir, "--daemonize", "no", (char *)NULL);
        else
            execl(s->bin, s->bin, "-p", port, "-l", "127.0.0.1", "-U", "0", "-m", "64", "-u",
                  "root", (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int status;

        if (accepts(s->port))
            return;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            fail_msg("%s exited during start (status %d)", names[s->kind], status);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            fail_msg("%s did not accept connections on port %u", names[s->kind], s->port);
        poll(NULL, 0, 10); /* readiness of another process: polled with a deadline */
    }
}

static void reap(struct hp_test_server *s, int sig)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, sig); /* SIGKILL works on a stopped process too: no SIGCONT first */
    if (sig != SIGKILL)
        kill(s->pid, SIGCONT);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
}

void hp_test_server_kill(struct hp_test_server *s)
{
    reap(s, SIGKILL);
}

void hp_test_server_pause(struct hp_test_server *s, bool pause)
{
    int st;

    if (s->pid <= 0)
        return;
    kill(s->pid, pause ? SIGSTOP : SIGCONT);
    /* kill() returns before every thread has stopped: wait until it has. */
    while (waitpid(s->pid, &st, pause ? WUNTRACED : WCONTINUED) < 0 && errno == EINTR)
        ;
}

void hp_test_server_stop(struct hp_test_server *s)
{
    char cmd[300];

    reap(s, SIGKILL);
    if (s->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
        s->dir[0] = 0;
    }
}
