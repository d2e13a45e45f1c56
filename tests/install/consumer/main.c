/* A program outside the tree, built against the installed hellepoll: a timer and a post. */
#include <stdio.h>

#include <hellepoll/hellepoll.h>

static int fired;

static void on_timer(struct hp_timer *t)
{
    (void)t;
    fired++;
}

static void on_post(struct hp_loop *loop, int status, void *arg)
{
    (void)loop;
    if (status == 0)
        ++*(int *)arg;
}

int main(void)
{
    struct hp_loop *loop;
    struct hp_timer t;
    int posted = 0;

    if (hp_loop_new(&loop, NULL) != 0)
        return 1;
    hp_timer_init(loop, &t, on_timer);
    if (hp_timer_start(&t, 1, 0) != 0 || hp_loop_post(loop, on_post, &posted) != 0)
        return 1;
    if (hp_loop_run(loop) != 0 || hp_loop_free(loop) != 0)
        return 1;
    printf("consumer: backend %s, timer %d, post %d\n", "ok", fired, posted);
    return fired == 1 && posted == 1 ? 0 : 1;
}
