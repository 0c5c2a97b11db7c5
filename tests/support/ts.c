/* ts.c -- see ts.h. */
#include "tests/support/ts.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#define TS_MAX_EXTRA_ARGS 16

long long ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long ts_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
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

/* The pid of a /tmp entry named <prefix>-<pid>-..., or 0 when the name has
 * another shape. */
static long stale_dir_pid(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    char *end;
    long pid;
    if (strncmp(name, prefix, n) != 0 || name[n] != '-' ||
        name[n + 1] < '0' || name[n + 1] > '9')
        return 0;
    errno = 0;
    pid = strtol(name + n + 1, &end, 10);
    if (errno != 0 || *end != '-' || pid <= 0 || pid != (pid_t)pid)
        return 0;
    return pid;
}

void ts_remove_stale_dirs(const char *prefix)
{
    DIR *d = opendir("/tmp");
    struct dirent *e;
    char path[512];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        long pid = stale_dir_pid(e->d_name, prefix);
        if (pid == 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof path, "/tmp/%s", e->d_name);
        ts_remove_dir(path);
    }
    closedir(d);
}

int ts_make_tmpdir(char *buf, size_t cap, const char *prefix)
{
    int n;
    ts_remove_stale_dirs(prefix);
    n = snprintf(buf, cap, "/tmp/%s-%d-XXXXXX", prefix, (int)getpid());
    if (n < 0 || (size_t)n >= cap || mkdtemp(buf) == NULL) {
        if (cap > 0)
            buf[0] = '\0';
        return -1;
    }
    return 0;
}

pid_t ts_spawn(const char *const *argv)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    int fd;
    if (pid != 0)
        return pid; /* the parent: the child's pid, or -1 */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before prctl */
        _exit(127);
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

pid_t ts_spawn_redis(int port, const char *dir, const char *password,
                     const char *const *extra_args)
{
    char port_s[16], log[512], db[64];
    const char *argv[24 + TS_MAX_EXTRA_ARGS + 1];
    int argc = 0, n;
    snprintf(port_s, sizeof port_s, "%d", port);
    n = snprintf(log, sizeof log, "%s/redis-%d.log", dir, port);
    if (n < 0 || (size_t)n >= sizeof log)
        return -1;
    snprintf(db, sizeof db, "dump-%d.rdb", port);
    const char *base[] = {"redis-server", "--port", port_s, "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", dir,
                          "--daemonize", "no", "--logfile", log, "--dbfilename", db,
                          "--repl-diskless-sync-delay", "0"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        argv[argc++] = base[i];
    if (password != NULL) {
        argv[argc++] = "--requirepass";
        argv[argc++] = password;
    }
    for (int i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
        if (i == TS_MAX_EXTRA_ARGS)
            return -1;
        argv[argc++] = extra_args[i];
    }
    argv[argc] = NULL;
    return ts_spawn(argv);
}

redisContext *ts_connect(int port, const char *password, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK)
        goto fail;
    if (password != NULL) {
        redisReply *r = redisCommand(c, "AUTH %s", password);
        if (r == NULL)
            goto fail;
        freeReplyObject(r);
    }
    return c;
fail:
    if (c != NULL)
        redisFree(c);
    return NULL;
}

/* Whether c answers PING with PONG. */
static int answers_pong(redisContext *c)
{
    redisReply *r = redisCommand(c, "PING");
    int up = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r != NULL)
        freeReplyObject(r);
    return up;
}

redisContext *ts_connect_retry(pid_t *pid, int port, const char *password, int ms)
{
    long long end = ts_now_ms() + ms;
    while (ts_now_ms() < end) {
        if (pid != NULL && *pid > 0 && waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return NULL;
        }
        redisContext *c = ts_connect(port, password, 500);
        if (c != NULL && answers_pong(c)) {
            struct timeval tv = {10, 0};
            redisSetTimeout(c, tv);
            return c;
        }
        if (c != NULL)
            redisFree(c);
        usleep(20 * 1000);
    }
    return NULL;
}

void ts_kill(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL); /* ends a SIGSTOPped one too, without it running again */
    while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
        ;
    *pid = 0;
}

int ts_redis_start(ts_redis *s, const char *dir, const char *password,
                   const char *const *extra_args)
{
    s->c = NULL;
    if (s->port <= 0)
        s->port = ts_free_port();
    if (s->port <= 0)
        return -1;
    s->pid = ts_spawn_redis(s->port, dir, password, extra_args);
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    s->c = ts_connect_retry(&s->pid, s->port, password, 10000);
    return s->c != NULL ? 0 : -1;
}

void ts_redis_stop(ts_redis *s)
{
    if (s->c != NULL)
        redisFree(s->c);
    s->c = NULL;
    ts_kill(&s->pid);
}

ts_qver ts_qver_of(unsigned long long ms, unsigned counter, unsigned node)
{
    ts_qver v;
    snprintf(v.s, sizeof v.s, "%016llx%08x%08x", ms, counter, node);
    return v;
}

int ts_leak_check(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __lsan_do_recoverable_leak_check();
#else
    return 0;
#endif
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
