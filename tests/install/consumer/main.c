/*
 * A program outside the tree, built against the installed hellepoll: a timer,
 * a cross-thread post and an HTTP server that listens and is freed again.
 */
#include <stdio.h>

#include <hellepoll/hellepoll.h>
#include <hellepoll/http.h>

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

static int on_request(struct hp_http_req *req)
{
    return hp_http_reply(req, 200, HP_STR_LIT("text/plain"), "ok", 2);
}

int main(void)
{
    struct hp_http_server_opts opts = {.on_request = on_request, .listen.host = "127.0.0.1"};
    struct hp_http_server *srv;
    struct hp_loop *loop;
    struct hp_timer t;
    int posted = 0, port;

    if (hp_loop_new(&loop, NULL) != 0 || hp_http_server_new(&srv, loop, &opts) != 0)
        return 1;
    port = hp_http_server_port(srv);
    if (hp_http_server_free(srv) != 0)
        return 1;
    hp_timer_init(loop, &t, on_timer);
    if (hp_timer_start(&t, 1, 0) != 0 || hp_loop_post(loop, on_post, &posted) != 0)
        return 1;
    if (hp_loop_run(loop) != 0 || hp_loop_free(loop) != 0)
        return 1;
    printf("consumer: http port %d, timer %d, post %d\n", port, fired, posted);
    return port > 0 && fired == 1 && posted == 1 ? 0 : 1;
}
