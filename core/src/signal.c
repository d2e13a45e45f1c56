/*
 * signal.c - signals as loop events, through a self-pipe per loop.
 *
 * Signal dispositions are process-wide, so this is the one module with
 * global state: a table of the write ends of the loops' signal pipes (the
 * async-signal-safe handler writes the signal number to each), and per
 * signal the count of active watchers plus the disposition to restore. The
 * tables are changed under a mutex, never from the handler; the handler only
 * reads atomics and calls write(2). Each loop reads its pipe with an internal
 * watcher and calls the watchers of the signals it saw.
 *
 * The handoff at detach: a handler (on any thread) marks the slot busy before
 * it loads the descriptor and unmarks it after its write; loop_detach() first
 * clears the descriptor, then waits until no handler is inside the slot, and
 * only then closes the pipe. So a handler never writes into a descriptor
 * number that close(2) gave back and another thread opened again.
 */
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MAX_SIGNAL_LOOPS 64
#define MAX_SIGNUM       65

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int sig_fds[MAX_SIGNAL_LOOPS];
static atomic_uint sig_busy[MAX_SIGNAL_LOOPS]; /* handlers between load and write */
static bool sig_slot_used[MAX_SIGNAL_LOOPS];
static unsigned sig_watchers[MAX_SIGNUM];
static struct sigaction sig_saved[MAX_SIGNUM];

static void on_signal(int signum)
{
    int saved = errno;
    unsigned char b = (unsigned char)signum;

    for (int i = 0; i < MAX_SIGNAL_LOOPS; i++) {
        int fd;

        atomic_fetch_add(&sig_busy[i], 1);
        fd = atomic_load(&sig_fds[i]) - 1; /* stored +1: zero means unused */
        if (fd >= 0)
            (void)!write(fd, &b, 1);
        atomic_fetch_sub(&sig_busy[i], 1);
    }
    errno = saved;
}

static bool refused(int signum)
{
    return signum <= 0 || signum >= MAX_SIGNUM || signum == SIGKILL || signum == SIGSTOP ||
           signum == SIGSEGV || signum == SIGBUS || signum == SIGFPE || signum == SIGILL;
}

static void on_pipe(struct hp_io *io, unsigned events, int status)
{
    struct hp_loop *loop = io->loop;
    unsigned char buf[64];
    bool seen[MAX_SIGNUM] = {false};
    ssize_t n;

    (void)events;
    (void)status;
    while ((n = read(loop->sig_rfd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] < MAX_SIGNUM)
                seen[buf[i]] = true;
    }
    loop->sig_dispatching = true;
    for (int signum = 1; signum < MAX_SIGNUM; signum++) {
        if (!seen[signum])
            continue;
        /* A callback may stop any watcher: hp_signal_stop() advances sig_next past it. */
        for (struct hp_signal *s = loop->signals; s; s = loop->sig_next) {
            loop->sig_next = s->_next;
            if (s->signum == signum)
                s->_cb(s, signum);
        }
        loop->sig_next = NULL;
    }
    loop->sig_dispatching = false;
    if (!loop->signal_n)
        hp__signal_free(loop);
}

/* Give the loop a signal pipe and a slot in the handler's table (under sig_lock). */
static int loop_attach(struct hp_loop *loop)
{
    int fds[2], err, slot = -1;

    if (loop->sig_slot >= 0)
        return 0;
    for (int i = 0; i < MAX_SIGNAL_LOOPS && slot < 0; i++)
        if (!sig_slot_used[i])
            slot = i;
    if (slot < 0)
        return -EBUSY;
    if ((err = hp__pipe(fds)) != 0)
        return err;
    loop->sig_rfd = fds[0];
    loop->sig_wfd = fds[1];
    hp_io_init(loop, &loop->sig_io, fds[0], on_pipe);
    hp__io_set_internal(&loop->sig_io);
    if ((err = hp_io_start(&loop->sig_io, HP_READABLE)) != 0) {
        close(fds[0]);
        close(fds[1]);
        loop->sig_rfd = loop->sig_wfd = -1;
        return err;
    }
    sig_slot_used[slot] = true;
    loop->sig_slot = slot;
    atomic_store(&sig_fds[slot], fds[1] + 1);
    return 0;
}

static int install(int signum)
{
    struct sigaction sa;

    if (sig_watchers[signum]++ > 0)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(signum, &sa, &sig_saved[signum]) != 0) {
        sig_watchers[signum]--;
        return -errno;
    }
    return 0;
}

static void uninstall(int signum)
{
    if (--sig_watchers[signum] == 0)
        sigaction(signum, &sig_saved[signum], NULL);
}

/* Give the slot and the pipe back (under sig_lock). */
static void loop_detach(struct hp_loop *loop)
{
    if (loop->sig_slot < 0)
        return;
    atomic_store(&sig_fds[loop->sig_slot], 0);
    /* A handler that loaded the descriptor before the store is still writing to it. */
    while (atomic_load(&sig_busy[loop->sig_slot]) != 0)
        sched_yield();
    sig_slot_used[loop->sig_slot] = false;
    hp_io_stop(&loop->sig_io);
    close(loop->sig_rfd);
    close(loop->sig_wfd);
    loop->sig_rfd = loop->sig_wfd = -1;
    loop->sig_slot = -1;
}

void hp_signal_init(struct hp_loop *loop, struct hp_signal *s, hp_signal_cb *cb)
{
    s->data = NULL;
    s->loop = loop;
    s->signum = 0;
    s->_cb = cb;
    s->_next = NULL;
}

int hp_signal_start(struct hp_signal *s, int signum)
{
    struct hp_loop *loop = s->loop;
    int err;

    if (refused(signum) || s->signum)
        return -EINVAL;
    pthread_mutex_lock(&sig_lock);
    err = loop_attach(loop);
    if (!err)
        err = install(signum);
    pthread_mutex_unlock(&sig_lock);
    if (err)
        return err;
    s->signum = signum;
    s->_next = loop->signals;
    loop->signals = s;
    loop->signal_n++;
    return 0;
}

void hp_signal_stop(struct hp_signal *s)
{
    struct hp_loop *loop = s->loop;
    struct hp_signal **pp;
    int signum = s->signum;

    if (!signum)
        return;
    for (pp = &loop->signals; *pp != s; pp = &(*pp)->_next)
        continue;
    *pp = s->_next;
    if (loop->sig_next == s)
        loop->sig_next = s->_next;
    s->signum = 0;
    s->_next = NULL;
    loop->signal_n--;
    pthread_mutex_lock(&sig_lock);
    uninstall(signum);
    /* The last watcher gone: free the slot for other loops (not while dispatching). */
    if (!loop->signal_n && !loop->sig_dispatching)
        loop_detach(loop);
    pthread_mutex_unlock(&sig_lock);
}

void hp__signal_free(struct hp_loop *loop)
{
    pthread_mutex_lock(&sig_lock);
    loop_detach(loop);
    pthread_mutex_unlock(&sig_lock);
}
