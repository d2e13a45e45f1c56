/*
 * post.c - hp_loop_post(), the one thread-safe entry point.
 *
 * Posts go on a mutex-protected FIFO. The first post after the loop last
 * drained the queue writes to the wakeup descriptor (an eventfd on Linux, a
 * pipe elsewhere), which an internal watcher on the loop reads; later posts
 * only queue, so a burst costs one wakeup. The watcher is internal: it does
 * not keep the loop alive, the queued posts do (loop->post_n).
 */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#ifdef __linux__
#include <sys/eventfd.h>

static int wake_open(struct hp_loop *loop)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd < 0)
        return -errno;
    loop->wake_rfd = loop->wake_wfd = fd;
    return 0;
}

static void wake_close(struct hp_loop *loop)
{
    close(loop->wake_rfd);
}
#else
static int wake_open(struct hp_loop *loop)
{
    int fds[2], err = hp__pipe(fds);

    if (err)
        return err;
    loop->wake_rfd = fds[0];
    loop->wake_wfd = fds[1];
    return 0;
}

static void wake_close(struct hp_loop *loop)
{
    close(loop->wake_rfd);
    close(loop->wake_wfd);
}
#endif

static void wake_signal(struct hp_loop *loop)
{
    uint64_t one = 1;
    ssize_t n;

    /* A full pipe already means "wake up"; eventfd cannot fill up here. */
    do
        n = write(loop->wake_wfd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
}

static void wake_drain(struct hp_loop *loop)
{
    uint64_t buf[16];

    while (read(loop->wake_rfd, buf, sizeof(buf)) > 0)
        continue;
}

/* Take the whole queue; posts made while it runs wait for the next wakeup. */
static struct hp__post_node *take_all(struct hp_loop *loop)
{
    struct hp__post_node *head;

    pthread_mutex_lock(&loop->post_lock);
    head = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    atomic_store(&loop->wake_armed, false);
    pthread_mutex_unlock(&loop->post_lock);
    return head;
}

static void run_posts(struct hp_loop *loop, struct hp__post_node *head, int status)
{
    while (head) {
        struct hp__post_node *next = head->next;

        atomic_fetch_sub(&loop->post_n, 1);
        head->cb(loop, status, head->arg);
        hp__free(loop, head);
        head = next;
    }
}

static void on_wake(struct hp_io *io, unsigned events, int status)
{
    struct hp_loop *loop = io->loop;

    (void)events;
    (void)status;
    wake_drain(loop);
    run_posts(loop, take_all(loop), 0);
    if (loop->pool)
        hp__pool_complete(loop);
}

void hp__loop_wake(struct hp_loop *loop)
{
    wake_signal(loop);
}

int hp__post_init(struct hp_loop *loop)
{
    int err;

    if ((err = pthread_mutex_init(&loop->post_lock, NULL)) != 0)
        return -err;
    if ((err = wake_open(loop)) != 0)
        goto err_destroy_lock;
    hp_io_init(loop, &loop->wake_io, loop->wake_rfd, on_wake);
    hp__io_set_internal(&loop->wake_io);
    if ((err = hp_io_start(&loop->wake_io, HP_READABLE)) != 0)
        goto err_close;
    return 0;

err_close:
    wake_close(loop);
err_destroy_lock:
    pthread_mutex_destroy(&loop->post_lock);
    return err;
}

void hp__post_free(struct hp_loop *loop)
{
    hp_io_stop(&loop->wake_io);
    run_posts(loop, take_all(loop), -ECANCELED);
    wake_close(loop);
    pthread_mutex_destroy(&loop->post_lock);
}

int hp_loop_post(struct hp_loop *loop, hp_post_cb *cb, void *arg)
{
    struct hp__post_node *node = hp__alloc(loop, sizeof(*node));
    bool wake;

    if (!node)
        return -ENOMEM;
    node->next = NULL;
    node->cb = cb;
    node->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    if (loop->post_tail)
        loop->post_tail->next = node;
    else
        loop->post_head = node;
    loop->post_tail = node;
    atomic_fetch_add(&loop->post_n, 1);
    wake = !atomic_exchange(&loop->wake_armed, true);
    pthread_mutex_unlock(&loop->post_lock);
    if (wake)
        wake_signal(loop);
    return 0;
}
