/* ts.c -- see ts.h. */
#include "tests/support/ts.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

long long ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ts_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0) return -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

void ts_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

typedef struct {
    ts_cond_fn *cond;
    void *arg;
    long long deadline;
    int met;
} waiter;

static void waiter_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    waiter *wt = w->data;
    (void)revents;
    if (wt->cond != NULL && wt->cond(wt->arg)) {
        wt->met = 1;
        ev_break(loop, EVBREAK_ONE);
    } else if (ts_now_ms() >= wt->deadline) {
        ev_break(loop, EVBREAK_ONE);
    }
}

int ts_run_until(struct ev_loop *loop, ts_cond_fn *cond, void *arg, int ms)
{
    waiter wt = {cond, arg, ts_now_ms() + ms, 0};
    ev_timer t;
    if (cond != NULL && cond(arg)) return 1;
    ev_timer_init(&t, waiter_tick, 0.005, 0.005);
    t.data = &wt;
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
    return wt.met || (cond != NULL && cond(arg));
}

static void guard_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(int *)w->data = 1;
    ev_break(loop, EVBREAK_ALL);
}

int ts_drain_loop(struct ev_loop *loop, int ms)
{
    int fired = 0;
    ev_timer guard;
    ev_timer_init(&guard, guard_fired, ms / 1000.0, 0.);
    guard.data = &fired;
    ev_timer_start(loop, &guard);
    ev_unref(loop);
    ev_run(loop, 0);
    ev_ref(loop);
    ev_timer_stop(loop, &guard);
    return !fired;
}
