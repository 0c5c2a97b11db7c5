/*
 * harness.c -- see harness.h.
 *
 * One topology per criterion worker process, kept in the file-level `T`.
 * Processes are started with fork/execv (no shell), each with its own
 * stdout/stderr file in the topology's temporary directory, all fds above 2
 * closed and PR_SET_PDEATHSIG so that nothing outlives the worker.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#ifndef RCPROXY_BIN
#error "RCPROXY_BIN must be defined by the build"
#endif
#ifndef REDIS_SERVER_BIN
#error "REDIS_SERVER_BIN must be defined by the build"
#endif
#ifndef DELAY_RELAY_BIN
#define DELAY_RELAY_BIN ""      /* only needed by tests that set relay_delay_ms */
#endif

#define START_TIMEOUT_MS 10000
#define SPAWN_ATTEMPTS 3
#define REAP_TIMEOUT_MS 5000
#define POLL_INTERVAL_MS 20
#define LOG_TAIL_BYTES 4000
#define MAX_ARGS 96
#define ARG_POOL 8192

typedef struct topo {
    bool initialised;
    bool direct;
    bool passed;
    bool skipped;
    char dir[64];                  /* "" until created */
    it_opts opts;
    it_server leader;
    it_server replicas[IT_MAX_REPLICAS];
    int nreplicas;
    int proxy_port;
    pid_t proxy_pid;
    int proxy2_port;               /* second rcproxy, see it_start_proxy2() */
    pid_t proxy2_pid;
    int relay_port;                /* delay relay in front of the leader, */
    pid_t relay_pid;               /* used by replica 0 (relay_delay_ms) */
    redisContext *leader_ctx;      /* cached, see it_leader() */
    redisContext *proxy_ctx;       /* cached admin link for INFO rcproxy */
    int sentinel_ports[IT_MAX_SENTINELS];   /* it_opts.sentinels */
    pid_t sentinel_pids[IT_MAX_SENTINELS];
    int nsentinels;
    char proxy_conf[96];           /* "<dir>/rcproxy.conf" or "" */
    it_server nodes[IT_MAX_QUORUM_NODES];   /* it_opts.quorum_nodes */
    int nnodes;
    pid_t tool_pids[IT_MAX_TOOLS];          /* it_spawn_tool */
} topo;

static topo T;

/* Every pid we started, for the signal/atexit safety net (only kill() is
 * used there, which is async-signal-safe). */
static volatile pid_t g_pids[IT_MAX_REPLICAS + IT_MAX_SENTINELS + IT_MAX_QUORUM_NODES +
                             IT_MAX_TOOLS + 4];

/* ------------------------------------------------------------------------ */
/* small utilities                                                          */

long long it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void it_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

bool it_wait_until(bool (*pred)(void *), void *arg, int timeout_ms,
                   int interval_ms)
{
    long long deadline = it_now_ms() + timeout_ms;
    for (;;) {
        if (pred(arg))
            return true;
        if (it_now_ms() >= deadline)
            return false;
        it_sleep_ms(interval_ms > 0 ? interval_ms : POLL_INTERVAL_MS);
    }
}

bool it_direct(void)
{
    const char *e = getenv("RCPROXY_TEST_DIRECT");
    return e && strcmp(e, "1") == 0;
}

static void pid_register(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++) {
        if (g_pids[i] == 0) {
            g_pids[i] = pid;
            return;
        }
    }
}

static void pid_unregister(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (g_pids[i] == pid)
            g_pids[i] = 0;
}

static void emergency_kill(void)
{
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (g_pids[i] > 0)
            kill(g_pids[i], SIGKILL);
}

static void emergency_signal(int sig)
{
    emergency_kill();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* An argv under construction: pointers into a fixed pool.  Overflow is
 * sticky and reported by the caller (never truncates silently). */
typedef struct argv_b {
    char *v[MAX_ARGS + 1];
    int n;
    char pool[ARG_POOL];
    size_t used;
    bool overflow;
} argv_b;

static void arg_add(argv_b *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void arg_add(argv_b *a, const char *fmt, ...)
{
    if (a->overflow || a->n >= MAX_ARGS) {
        a->overflow = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(a->pool + a->used, ARG_POOL - a->used, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= ARG_POOL - a->used) {
        a->overflow = true;
        return;
    }
    a->v[a->n++] = a->pool + a->used;
    a->v[a->n] = NULL;
    a->used += (size_t)len + 1;
}

/* Pick a free 127.0.0.1 port below the kernel's ephemeral range (32768+),
 * so that no outgoing connection -- e.g. rcproxy reconnecting to a killed
 * backend, which could even connect to itself -- can hold a port we want to
 * (re)start a server on.  Random candidates are probed by binding them; a
 * collision with a parallel test is still possible and is handled by the
 * callers' retry when the server fails to bind.  Returns -1 if none found. */
static int free_port(void)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)it_now_ms();
    for (int attempt = 0; attempt < 200; attempt++) {
        int port = 20000 + (int)(rand_r(&seed) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa);
        close(fd);
        if (ok == 0)
            return port;
    }
    return -1;
}

/* fork + execv argv with stdin from /dev/null and stdout/stderr appended to
 * out_path.  The child dies with us (PDEATHSIG).  Returns the pid or -1. */
static pid_t spawn(char *const argv[], const char *out_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;     /* parent, or -1 */

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int nul = open("/dev/null", O_RDONLY);
    if (out < 0 || nul < 0)
        _exit(126);
    dup2(nul, 0);
    dup2(out, 1);
    dup2(out, 2);
    close_range(3, ~0U, 0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    _exit(127);
}

/* Reap pid, waiting at most timeout_ms.  Returns true when reaped. */
static bool reap(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = it_now_ms() + timeout_ms;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            if (status)
                *status = st;
            pid_unregister(pid);
            return true;
        }
        if (it_now_ms() >= deadline)
            return false;
        it_sleep_ms(5);
    }
}

/* True if pid has exited (and reaps it). */
static bool has_exited(pid_t pid)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
        pid_unregister(pid);
        return true;
    }
    return false;
}

static void kill_and_reap(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    if (!reap(*pid, REAP_TIMEOUT_MS, NULL))
        fprintf(stderr, "harness: pid %d did not die after SIGKILL\n", (int)*pid);
    *pid = 0;
}

static void print_tail(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    struct stat st;
    char buf[LOG_TAIL_BYTES + 1];
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        off_t from = st.st_size > LOG_TAIL_BYTES ? st.st_size - LOG_TAIL_BYTES : 0;
        ssize_t n = pread(fd, buf, LOG_TAIL_BYTES, from);
        if (n > 0) {
            buf[n] = '\0';
            fprintf(stderr, "---- tail of %s ----\n%s\n---- end of %s ----\n",
                    path, buf, path);
        }
    }
    close(fd);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* hiredis helpers                                                          */

static struct timeval tv_ms(int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    return tv;
}

void it_set_timeout(redisContext *c, int timeout_ms)
{
    redisSetTimeout(c, tv_ms(timeout_ms));
}

redisContext *it_try_connect(int port, const char *password, int timeout_ms)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv_ms(timeout_ms));
    if (!c)
        return NULL;
    if (c->err)
        goto fail;
    if (redisSetTimeout(c, tv_ms(timeout_ms)) != REDIS_OK)
        goto fail;
    if (password) {
        redisReply *r = redisCommand(c, "AUTH %s", password);
        bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
        if (r)
            freeReplyObject(r);
        if (!ok)
            goto fail;
    }
    return c;
fail:
    redisFree(c);
    return NULL;
}

static __thread char desc_buf[320];

const char *it_reply_desc(const redisReply *r)
{
    if (!r)
        return "(no reply)";
    switch (r->type) {
    case REDIS_REPLY_STRING:
        snprintf(desc_buf, sizeof desc_buf, "bulk(%zu) \"%.200s\"", r->len, r->str);
        break;
    case REDIS_REPLY_STATUS:
        snprintf(desc_buf, sizeof desc_buf, "status \"%.200s\"", r->str);
        break;
    case REDIS_REPLY_ERROR:
        snprintf(desc_buf, sizeof desc_buf, "error \"%.200s\"", r->str);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(desc_buf, sizeof desc_buf, "integer %lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        snprintf(desc_buf, sizeof desc_buf, "nil");
        break;
    case REDIS_REPLY_ARRAY:
        snprintf(desc_buf, sizeof desc_buf, "array(%zu)", r->elements);
        break;
    default:
        snprintf(desc_buf, sizeof desc_buf, "type %d", r->type);
        break;
    }
    return desc_buf;
}

bool it_err_has(const redisReply *r, const char *parts)
{
    if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
        return false;
    const char *p = parts;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len > 0 && !memmem(r->str, r->len, p, len))
            return false;
        if (!bar)
            break;
        p = bar + 1;
    }
    return true;
}

static redisReply *vcmd(redisContext *c, const char *fmt, va_list ap)
{
    cr_assert_not_null(c, "no connection for \"%s\"", fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    cr_assert_not_null(r, "\"%s\": no reply (connection error %d: %s)", fmt,
                       c->err, c->errstr);
    return r;
}

void it_flush(redisContext *c)
{
    int done = 0;
    for (int i = 0; i < 1000 && !done; i++)
        cr_assert(redisBufferWrite(c, &done) == REDIS_OK, "write: %s", c->errstr);
    cr_assert(done, "client output not flushed");
}

redisReply *it_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    return r;
}

void it_ok(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0,
              "\"%s\": expected +OK, got %s", fmt, it_reply_desc(r));
    freeReplyObject(r);
}

long long it_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    cr_assert(r->type == REDIS_REPLY_INTEGER, "\"%s\": expected an integer, got %s",
              fmt, it_reply_desc(r));
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

void it_expect_int(redisContext *c, long long want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer == want,
              "\"%s\": expected integer %lld, got %s", fmt, want, it_reply_desc(r));
    freeReplyObject(r);
}

void it_expect_str(redisContext *c, const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    cr_assert(r->type == REDIS_REPLY_STRING && r->len == strlen(want) &&
              memcmp(r->str, want, r->len) == 0,
              "\"%s\": expected bulk \"%s\", got %s", fmt, want, it_reply_desc(r));
    freeReplyObject(r);
}

void it_expect_status(redisContext *c, const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0,
              "\"%s\": expected status \"%s\", got %s", fmt, want, it_reply_desc(r));
    freeReplyObject(r);
}

void it_expect_nil(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    cr_assert(r->type == REDIS_REPLY_NIL, "\"%s\": expected nil, got %s", fmt,
              it_reply_desc(r));
    freeReplyObject(r);
}

void it_expect_err(redisContext *c, const char *parts, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(c, fmt, ap);
    va_end(ap);
    cr_assert(it_err_has(r, parts), "\"%s\": expected an error containing \"%s\", got %s",
              fmt, parts, it_reply_desc(r));
    cr_log_info("\"%s\" -> %s", fmt, r->str);
    freeReplyObject(r);
}

char *it_try_info(redisContext *c, const char *section)
{
    if (!c || c->err)
        return NULL;
    redisReply *r = redisCommand(c, "INFO %s", section);
    char *s = NULL;
    if (r && r->type == REDIS_REPLY_STRING)
        s = strndup(r->str, r->len);
    if (r)
        freeReplyObject(r);
    return s;
}

bool it_info_value(const char *info, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = info;
    while (p && *p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, "\r\n");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* processes                                                                */

static const char *backend_pw(void)
{
    return T.opts.backend_password;
}

/* Password a client of it_client_port() must send, or NULL. */
static const char *client_pw(void)
{
    return T.direct || T.opts.no_proxy ? T.opts.backend_password : T.opts.proxy_password;
}

/* Start the process described by a (which this frees) with its output in
 * <tmpdir>/<out_name>; *pid gets its pid, or 0 on failure.  Returns true
 * when started (not necessarily ready). */
static bool launch(argv_b *a, const char *out_name, pid_t *pid)
{
    *pid = 0;
    char out[128];
    snprintf(out, sizeof out, "%s/%s", T.dir, out_name);
    if (!a->overflow)
        *pid = spawn(a->v, out);
    if (*pid < 0)
        *pid = 0;
    if (*pid > 0)
        pid_register(*pid);
    free(a);
    return *pid > 0;
}

/* True if s is one of the mode quorum nodes (T.nodes). */
static bool is_node(const it_server *s)
{
    return s >= T.nodes && s < T.nodes + IT_MAX_QUORUM_NODES;
}

static bool redis_spawn(it_server *s)
{
    argv_b *a = calloc(1, sizeof *a);
    if (!a)
        return false;
    arg_add(a, "%s", REDIS_SERVER_BIN);
    arg_add(a, "--port"); arg_add(a, "%d", s->port);
    arg_add(a, "--bind"); arg_add(a, "127.0.0.1");
    arg_add(a, "--dir"); arg_add(a, "%s", T.dir);
    arg_add(a, "--save"); arg_add(a, "%s", "");
    if (is_node(s) && T.opts.quorum_persist) {
        /* every acknowledged write is on disk before the reply; each node
         * has its own AOF directory (they share T.dir) */
        arg_add(a, "--appendonly"); arg_add(a, "yes");
        arg_add(a, "--appendfsync"); arg_add(a, "always");
        arg_add(a, "--appenddirname"); arg_add(a, "aof-%d", s->port);
    } else {
        arg_add(a, "--appendonly"); arg_add(a, "no");
    }
    arg_add(a, "--daemonize"); arg_add(a, "no");
    arg_add(a, "--logfile"); arg_add(a, "%s/redis-%d.log", T.dir, s->port);
    arg_add(a, "--dbfilename"); arg_add(a, "dump-%d.rdb", s->port);
    /* disk-based full sync puts the replica online at once; a diskless one
     * waits for the replica's first REPLCONF ACK (up to a second) */
    arg_add(a, "--repl-diskless-sync"); arg_add(a, "no");
    arg_add(a, "--repl-diskless-sync-delay"); arg_add(a, "0");
    arg_add(a, "--client-output-buffer-limit");
    arg_add(a, "replica"); arg_add(a, "0"); arg_add(a, "0"); arg_add(a, "0");
    if (!s->is_leader && !is_node(s)) {
        /* replica 0 stays behind the delay relay, also when restarted */
        int master = s == &T.replicas[0] && T.relay_port > 0 ? T.relay_port : T.leader.port;
        arg_add(a, "--replicaof"); arg_add(a, "127.0.0.1"); arg_add(a, "%d", master);
    }
    if (backend_pw()) {
        arg_add(a, "--requirepass"); arg_add(a, "%s", backend_pw());
        arg_add(a, "--masterauth"); arg_add(a, "%s", backend_pw());
    }
    char out[32];
    snprintf(out, sizeof out, "redis-%d.out", s->port);
    return launch(a, out, &s->pid);
}

/* One readiness probe: PING answers PONG; for a replica whose leader runs,
 * INFO replication also says master_link_status:up.  Without need_link,
 * any reply to PING (LOADING included) will do. */
static bool redis_ready_once(const it_server *s, bool need_link)
{
    redisContext *c = it_try_connect(s->port, backend_pw(), 1000);
    if (!c)
        return false;
    bool ok = false;
    redisReply *r = redisCommand(c, "PING");
    if (!need_link) {
        ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
        goto done;
    }
    if (!r || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)
        goto done;
    if (s->is_leader || is_node(s) || T.leader.pid == 0) {
        ok = true;
        goto done;
    }
    char *info = it_try_info(c, "replication");
    char v[32];
    ok = info && it_info_value(info, "master_link_status", v, sizeof v) &&
         strcmp(v, "up") == 0;
    free(info);
done:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Wait until s is ready (see redis_ready_once) or has died.  Returns true
 * when ready. */
static bool redis_wait(it_server *s, int timeout_ms, bool need_link, bool *died)
{
    long long deadline = it_now_ms() + timeout_ms;
    *died = false;
    for (;;) {
        if (has_exited(s->pid)) {
            s->pid = 0;
            *died = true;
            return false;
        }
        if (redis_ready_once(s, need_link))
            return true;
        if (it_now_ms() >= deadline)
            return false;
        it_sleep_ms(POLL_INTERVAL_MS);
    }
}

/* Start servers[0..n) (fresh ports unless keep_port) and wait for all of
 * them (need_link: see redis_ready_once); a server that dies at start (port
 * taken) is retried on a new port (or the same one with keep_port).
 * Asserts on failure. */
static void redis_start_all(it_server **servers, int n, bool keep_port, bool need_link)
{
    for (int attempt = 0; attempt < SPAWN_ATTEMPTS; attempt++) {
        for (int i = 0; i < n; i++) {
            if (servers[i]->pid)
                continue;
            if (!keep_port)
                servers[i]->port = free_port();
            cr_assert(servers[i]->port > 0, "no free port");
            cr_assert(redis_spawn(servers[i]), "cannot start redis-server");
        }
        bool all = true;
        for (int i = 0; i < n; i++) {
            bool died = false;
            if (redis_wait(servers[i], START_TIMEOUT_MS, need_link, &died))
                continue;
            all = false;
            cr_assert(died, "redis-server on port %d not ready after %d ms (see %s)",
                      servers[i]->port, START_TIMEOUT_MS, T.dir);
            fprintf(stderr, "harness: redis-server on port %d exited at start, retrying\n",
                    servers[i]->port);
            it_sleep_ms(100);
        }
        if (all)
            return;
    }
    cr_assert_fail("redis-server could not be started after %d attempts (see %s)",
                   SPAWN_ATTEMPTS, T.dir);
}

/* The directives rcproxy `name` runs with, as pairs in d (d->v[2k] is a
 * directive, d->v[2k+1] its value), in the order they are passed on the
 * command line: port and bind, mode, the leader and replicas (only those
 * running with running_only) or the sentinels and the master name,
 * logging, health checks, passwords. */
static void proxy_directives(argv_b *d, int port, const char *name, bool running_only)
{
    arg_add(d, "port"); arg_add(d, "%d", port);
    arg_add(d, "bind"); arg_add(d, "127.0.0.1");
    if (T.nnodes > 0) {
        /* mode quorum: the node set is static, listed in node order */
        arg_add(d, "mode"); arg_add(d, "quorum");
        for (int i = 0; i < T.nnodes; i++) {
            arg_add(d, "node"); arg_add(d, "127.0.0.1:%d", T.nodes[i].port);
        }
    } else if (T.nsentinels > 0 && !T.opts.proxy_static) {
        arg_add(d, "mode"); arg_add(d, "leader");
        for (int i = 0; i < T.nsentinels; i++) {
            arg_add(d, "sentinel"); arg_add(d, "127.0.0.1:%d", T.sentinel_ports[i]);
        }
        arg_add(d, "sentinel-master"); arg_add(d, "%s", IT_SENTINEL_MASTER);
    } else {
        arg_add(d, "mode"); arg_add(d, "leader");
        arg_add(d, "leader"); arg_add(d, "127.0.0.1:%d", T.leader.port);
        for (int i = 0; i < T.nreplicas; i++) {
            if (running_only && T.replicas[i].pid == 0)
                continue;
            arg_add(d, "replica"); arg_add(d, "127.0.0.1:%d", T.replicas[i].port);
        }
    }
    arg_add(d, "loglevel"); arg_add(d, "warning");
    arg_add(d, "logfile"); arg_add(d, "%s/%s.log", T.dir, name);
    arg_add(d, "health-check-interval"); arg_add(d, "100");
    if (T.opts.proxy_password) {
        arg_add(d, "requirepass"); arg_add(d, "%s", T.opts.proxy_password);
    }
    if (backend_pw()) {
        arg_add(d, "backend-password"); arg_add(d, "%s", backend_pw());
    }
}

/* Write value v to fp as one redis.conf word: as it is when it needs no
 * quoting, else in double quotes with \, \" and \xHH escapes. */
static void conf_put_word(FILE *fp, const char *v)
{
    bool plain = v[0] != '\0';
    for (const char *p = v; *p && plain; p++)
        plain = *p > ' ' && *p < 127 && *p != '"' && *p != '\'' && *p != '\\' &&
                *p != '#';
    if (plain) {
        fputs(v, fp);
        return;
    }
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(fp, "\\%c", *p);
        else if (*p < ' ' || *p >= 127)
            fprintf(fp, "\\x%02x", *p);
        else
            fputc(*p, fp);
    }
    fputc('"', fp);
}

/* Write the directive pairs d to the config file `path` (through a
 * temporary file renamed over it).  Returns false on any I/O error. */
static bool proxy_write_conf(const char *path, const argv_b *d)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return false;
    fprintf(fp, "# written by the integration-test harness\n");
    for (int i = 0; i + 1 < d->n; i += 2) {
        fprintf(fp, "%s ", d->v[i]);
        conf_put_word(fp, d->v[i + 1]);
        fputc('\n', fp);
    }
    bool ok = !ferror(fp);
    ok = fclose(fp) == 0 && ok;
    return ok && rename(tmp, path) == 0;
}

/* Start an rcproxy on `port` in front of the topology, logging to
 * <tmpdir>/<name>.log and <name>.out; *pid gets its pid (0 on failure).
 * With it_opts.proxy_config_file the directives go to <tmpdir>/<name>.conf
 * (rewritten at each start) and rcproxy is started from that file.  The
 * extra arguments are it_opts.proxy_args, or for the second rcproxy
 * (second) it_opts.proxy2_args when those are set. */
static bool proxy_spawn(int port, const char *name, bool second, pid_t *pid)
{
    bool ok = false;
    *pid = 0;
    argv_b *d = calloc(1, sizeof *d);
    argv_b *a = calloc(1, sizeof *a);
    if (!d || !a)
        goto done;
    proxy_directives(d, port, name, false);
    if (d->overflow)
        goto done;
    arg_add(a, "%s", RCPROXY_BIN);
    if (T.opts.proxy_config_file) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s.conf", T.dir, name);
        if (!proxy_write_conf(path, d))
            goto done;
        arg_add(a, "%s", path);
    } else {
        for (int i = 0; i + 1 < d->n; i += 2) {
            arg_add(a, "--%s", d->v[i]);
            arg_add(a, "%s", d->v[i + 1]);
        }
    }
    const char *const *extra = second && T.opts.proxy2_args[0] ? T.opts.proxy2_args
                                                               : T.opts.proxy_args;
    for (int i = 0; i < IT_MAX_PROXY_ARGS && extra[i]; i++)
        arg_add(a, "%s", extra[i]);
    char out[64];
    snprintf(out, sizeof out, "%s.out", name);
    ok = launch(a, out, pid);   /* frees a */
    a = NULL;
done:
    free(d);
    free(a);
    return ok;
}

/* rcproxy is up when a PING gets any reply (PONG, or NOAUTH before AUTH). */
static bool proxy_answers(int port)
{
    redisContext *c = it_try_connect(port, NULL, 1000);
    if (!c)
        return false;
    redisReply *r = redisCommand(c, "PING");
    bool ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Copy the last (up to 3) non-empty lines of file path into out (cap
 * bytes), joined with " | "; "" if none.  Used to say why a process exited
 * at start (rcproxy's config errors take 3 lines). */
static void last_lines(const char *path, char *out, size_t cap)
{
    enum { KEEP = 3 };
    char lines[KEEP][160];
    int n = 0;
    out[0] = '\0';
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    char line[512];
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0]) {
            char *dst = lines[n++ % KEEP];
            size_t len = strnlen(line, sizeof lines[0] - 1);
            memcpy(dst, line, len);
            dst[len] = '\0';
        }
    }
    fclose(fp);
    size_t used = 0;
    for (int i = n > KEEP ? n - KEEP : 0; i < n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", used ? " | " : "", lines[i % KEEP]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Start an rcproxy (see proxy_spawn) on a free port and wait until it
 * answers; one that exits at start (port taken) is retried on another port.
 * Asserts on failure, quoting the last lines of its output (e.g. a config
 * error for a directive it does not know). */
static void proxy_start_as(const char *name, bool second, int *port, pid_t *pid)
{
    char out[128], why[512] = "";
    snprintf(out, sizeof out, "%s/%s.out", T.dir, name);
    for (int attempt = 0; attempt < SPAWN_ATTEMPTS; attempt++) {
        *port = free_port();
        cr_assert(*port > 0, "no free port");
        cr_assert(proxy_spawn(*port, name, second, pid), "cannot start %s", RCPROXY_BIN);
        long long deadline = it_now_ms() + START_TIMEOUT_MS;
        for (;;) {
            if (has_exited(*pid)) {
                *pid = 0;
                break;
            }
            if (proxy_answers(*port))
                return;
            cr_assert(it_now_ms() < deadline, "rcproxy not answering PING after %d ms",
                      START_TIMEOUT_MS);
            it_sleep_ms(POLL_INTERVAL_MS);
        }
        fprintf(stderr, "harness: rcproxy exited at start (attempt %d)\n", attempt + 1);
        it_sleep_ms(100);
    }
    last_lines(out, why, sizeof why);
    cr_assert_fail("rcproxy exited at start %d times (%s); its last output: %s",
                   SPAWN_ATTEMPTS, RCPROXY_BIN, why[0] ? why : "(none)");
}

static void proxy_start(void)
{
    proxy_start_as("rcproxy", false, &T.proxy_port, &T.proxy_pid);
}

/* True once <tmpdir>/delay_relay.out has a "ready" line. */
static bool relay_said_ready(void)
{
    char path[128], line[256];
    snprintf(path, sizeof path, "%s/delay_relay.out", T.dir);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return false;
    bool ready = false;
    while (!ready && fgets(line, sizeof line, fp))
        ready = strcmp(line, "ready\n") == 0;
    fclose(fp);
    return ready;
}

/* Start tools/delay_relay on a free port in front of the leader, holding
 * the leader->replica direction relay_delay_ms, and wait for its "ready".
 * A relay that exits at start (port taken) is retried on another port. */
static void relay_start(void)
{
    cr_assert(DELAY_RELAY_BIN[0] && access(DELAY_RELAY_BIN, X_OK) == 0,
              "delay relay binary \"%s\" missing: build it (ninja -C <builddir> "
              "delay_relay)", DELAY_RELAY_BIN);
    for (int attempt = 0; attempt < SPAWN_ATTEMPTS; attempt++) {
        T.relay_port = free_port();
        cr_assert(T.relay_port > 0, "no free port");
        argv_b *a = calloc(1, sizeof *a);
        cr_assert_not_null(a, "out of memory");
        arg_add(a, "%s", DELAY_RELAY_BIN);
        arg_add(a, "--listen"); arg_add(a, "%d", T.relay_port);
        arg_add(a, "--target"); arg_add(a, "127.0.0.1:%d", T.leader.port);
        arg_add(a, "--delay"); arg_add(a, "%d", T.opts.relay_delay_ms);
        cr_assert(launch(a, "delay_relay.out", &T.relay_pid), "cannot start %s",
                  DELAY_RELAY_BIN);
        long long deadline = it_now_ms() + START_TIMEOUT_MS;
        for (;;) {
            if (has_exited(T.relay_pid)) {
                T.relay_pid = 0;
                break;
            }
            if (relay_said_ready())
                return;
            cr_assert(it_now_ms() < deadline, "delay relay not ready after %d ms",
                      START_TIMEOUT_MS);
            it_sleep_ms(POLL_INTERVAL_MS);
        }
        fprintf(stderr, "harness: delay relay exited at start (attempt %d)\n", attempt + 1);
        it_sleep_ms(100);
    }
    T.relay_port = 0;
    cr_assert_fail("delay relay exited at start %d times (see %s/delay_relay.out)",
                   SPAWN_ATTEMPTS, T.dir);
}

/* ------------------------------------------------------------------------ */
/* Redis Sentinel (it_opts.sentinels)                                       */

#define SENTINEL_SYNC_TIMEOUT_MS 20000

/* Write <tmpdir>/sentinel-<port>.conf (path copied into path) for a
 * sentinel on `port` monitoring the current leader.  Sentinel rewrites the
 * file as it learns (myid, known replicas and sentinels).  Returns false on
 * an I/O error. */
static bool sentinel_write_conf(int port, char *path, size_t cap)
{
    snprintf(path, cap, "%s/sentinel-%d.conf", T.dir, port);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return false;
    const char *m = IT_SENTINEL_MASTER;
    fprintf(fp,
            "port %d\n"
            "bind 127.0.0.1\n"
            "daemonize no\n"
            "dir %s\n"
            "logfile %s/sentinel-%d.log\n"
            "sentinel resolve-hostnames no\n"
            "sentinel monitor %s 127.0.0.1 %d %d\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 5000\n"
            "sentinel parallel-syncs %s 1\n",
            port, T.dir, T.dir, port, m, T.leader.port, T.nsentinels / 2 + 1, m, m, m);
    if (backend_pw()) {
        fprintf(fp, "sentinel auth-pass %s ", m);
        conf_put_word(fp, backend_pw());
        fputc('\n', fp);
    }
    bool ok = !ferror(fp);
    return fclose(fp) == 0 && ok;
}

/* Start sentinel i (redis-server <conf> --sentinel) on T.sentinel_ports[i]. */
static bool sentinel_spawn(int i)
{
    int port = T.sentinel_ports[i];
    char conf[128], out[64];
    if (!sentinel_write_conf(port, conf, sizeof conf))
        return false;
    argv_b *a = calloc(1, sizeof *a);
    if (!a)
        return false;
    arg_add(a, "%s", REDIS_SERVER_BIN);
    arg_add(a, "%s", conf);
    arg_add(a, "--sentinel");
    snprintf(out, sizeof out, "sentinel-%d.out", port);
    return launch(a, out, &T.sentinel_pids[i]);
}

static bool sentinel_answers(int port)
{
    redisContext *c = it_try_connect(port, NULL, 1000);
    if (!c)
        return false;
    redisReply *r = redisCommand(c, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Start T.nsentinels sentinels on free ports and wait until each answers
 * PING; one that exits at start (port taken) is retried on another port.
 * Asserts on failure. */
static void sentinel_start_all(void)
{
    for (int attempt = 0; attempt < SPAWN_ATTEMPTS; attempt++) {
        for (int i = 0; i < T.nsentinels; i++) {
            if (T.sentinel_pids[i])
                continue;
            T.sentinel_ports[i] = free_port();
            cr_assert(T.sentinel_ports[i] > 0, "no free port");
            cr_assert(sentinel_spawn(i), "cannot start redis-sentinel (%s --sentinel)",
                      REDIS_SERVER_BIN);
        }
        bool all = true;
        for (int i = 0; i < T.nsentinels; i++) {
            long long deadline = it_now_ms() + START_TIMEOUT_MS;
            while (!sentinel_answers(T.sentinel_ports[i])) {
                if (has_exited(T.sentinel_pids[i])) {
                    T.sentinel_pids[i] = 0;
                    all = false;
                    fprintf(stderr, "harness: sentinel on port %d exited at start, retrying\n",
                            T.sentinel_ports[i]);
                    break;
                }
                cr_assert(it_now_ms() < deadline, "sentinel on port %d not answering after %d ms"
                          " (see %s)", T.sentinel_ports[i], START_TIMEOUT_MS, T.dir);
                it_sleep_ms(POLL_INTERVAL_MS);
            }
        }
        if (all)
            return;
        it_sleep_ms(100);
    }
    cr_assert_fail("redis-sentinel could not be started after %d attempts (see %s)",
                   SPAWN_ATTEMPTS, T.dir);
}

/* Value of `key` in e, an array of alternating field names and values (one
 * entry of SENTINEL REPLICAS / SENTINELS), or NULL. */
static const char *kv_field(const redisReply *e, const char *key)
{
    if (!e || e->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < e->elements; i += 2) {
        const redisReply *k = e->element[i], *v = e->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, key) == 0)
            return v->str;
    }
    return NULL;
}

/* The entry for 127.0.0.1:port in a SENTINEL REPLICAS / SENTINELS reply. */
static const redisReply *find_instance(const redisReply *list, int port)
{
    if (!list || list->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i < list->elements; i++) {
        const char *p = kv_field(list->element[i], "port");
        const char *ip = kv_field(list->element[i], "ip");
        if (p && ip && atoi(p) == port && strcmp(ip, "127.0.0.1") == 0)
            return list->element[i];
    }
    return NULL;
}

static int sentinel_master_port_on(redisContext *c)
{
    redisReply *r = redisCommand(c, "SENTINEL GET-MASTER-ADDR-BY-NAME %s", IT_SENTINEL_MASTER);
    int port = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        port = atoi(r->element[1]->str);
    if (r)
        freeReplyObject(r);
    return port;
}

int it_sentinel_count(void)
{
    return T.nsentinels;
}

int it_sentinel_port(int i)
{
    cr_assert(i >= 0 && i < T.nsentinels, "no sentinel %d", i);
    return T.sentinel_ports[i];
}

int it_sentinel_master_port(int i)
{
    if (i < 0 || i >= T.nsentinels || T.sentinel_pids[i] == 0)
        return -1;
    redisContext *c = it_try_connect(T.sentinel_ports[i], NULL, 1000);
    if (!c)
        return -1;
    int port = sentinel_master_port_on(c);
    redisFree(c);
    return port;
}

bool it_sentinel_replica_flags(int i, int port, char *flags, size_t cap)
{
    if (i < 0 || i >= T.nsentinels || T.sentinel_pids[i] == 0 || cap == 0)
        return false;
    redisContext *c = it_try_connect(T.sentinel_ports[i], NULL, 1000);
    if (!c)
        return false;
    redisReply *r = redisCommand(c, "SENTINEL REPLICAS %s", IT_SENTINEL_MASTER);
    const char *f = kv_field(find_instance(r, port), "flags");
    if (f)
        snprintf(flags, cap, "%s", f);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return f != NULL;
}

/* One check of sentinel i: it names the current leader, lists every
 * running replica with healthy flags and knows the other sentinels.  On
 * false, why says what is missing. */
static bool sentinel_synced_once(int i, char *why, size_t cap)
{
    bool ok = false;
    redisReply *reps = NULL, *sents = NULL;
    redisContext *c = it_try_connect(T.sentinel_ports[i], NULL, 1000);
    if (!c) {
        snprintf(why, cap, "sentinel %d does not answer", T.sentinel_ports[i]);
        return false;
    }
    int mp = sentinel_master_port_on(c);
    if (mp != T.leader.port) {
        snprintf(why, cap, "sentinel %d names master %d, not the leader %d",
                 T.sentinel_ports[i], mp, T.leader.port);
        goto done;
    }
    reps = redisCommand(c, "SENTINEL REPLICAS %s", IT_SENTINEL_MASTER);
    for (int k = 0; k < T.nreplicas; k++) {
        if (T.replicas[k].pid == 0)
            continue;
        const char *f = kv_field(find_instance(reps, T.replicas[k].port), "flags");
        if (!f || strstr(f, "s_down") || strstr(f, "o_down") || strstr(f, "disconnected")) {
            snprintf(why, cap, "sentinel %d: replica %d %s%s", T.sentinel_ports[i],
                     T.replicas[k].port, f ? "has flags " : "not listed", f ? f : "");
            goto done;
        }
    }
    sents = redisCommand(c, "SENTINEL SENTINELS %s", IT_SENTINEL_MASTER);
    size_t others = sents && sents->type == REDIS_REPLY_ARRAY ? sents->elements : 0;
    if (others != (size_t)(T.nsentinels - 1)) {
        snprintf(why, cap, "sentinel %d knows %zu other sentinels, not %d",
                 T.sentinel_ports[i], others, T.nsentinels - 1);
        goto done;
    }
    ok = true;
done:
    if (reps)
        freeReplyObject(reps);
    if (sents)
        freeReplyObject(sents);
    redisFree(c);
    return ok;
}

void it_sentinel_wait_synced(int timeout_ms)
{
    long long deadline = it_now_ms() + timeout_ms;
    char why[256] = "";
    for (int i = 0; i < T.nsentinels; i++) {
        if (T.sentinel_pids[i] == 0)
            continue;
        while (!sentinel_synced_once(i, why, sizeof why)) {
            cr_assert(it_now_ms() < deadline, "sentinels not in sync after %d ms: %s",
                      timeout_ms, why);
            it_sleep_ms(50);
        }
    }
}

/* True if the server on port answers INFO replication with role:master. */
static bool server_is_master(int port)
{
    redisContext *c = it_try_connect(port, backend_pw(), 1000);
    if (!c)
        return false;
    char *info = it_try_info(c, "replication");
    char role[32];
    bool ok = info && it_info_value(info, "role", role, sizeof role) &&
              strcmp(role, "master") == 0;
    free(info);
    redisFree(c);
    return ok;
}

/* The master port a majority of the running sentinels names, other than
 * `old`, or -1; `seen` gets a description of what each one said. */
static int sentinel_majority_master(int old, char *seen, size_t cap)
{
    int ports[IT_MAX_SENTINELS];
    size_t used = 0;
    seen[0] = '\0';
    for (int i = 0; i < T.nsentinels; i++) {
        ports[i] = it_sentinel_master_port(i);
        int w = snprintf(seen + used, cap - used, "%s%d->%d", i ? ", " : "",
                         T.sentinel_ports[i], ports[i]);
        if (w > 0 && (size_t)w < cap - used)
            used += (size_t)w;
    }
    for (int i = 0; i < T.nsentinels; i++) {
        if (ports[i] <= 0 || ports[i] == old)
            continue;
        int votes = 0;
        for (int j = 0; j < T.nsentinels; j++)
            votes += ports[j] == ports[i];
        if (votes > T.nsentinels / 2)
            return ports[i];
    }
    return -1;
}

/* The index of the running replica that a majority of the sentinels name
 * as master instead of old, if it is a master already; -1 otherwise. */
static int promoted_replica(int old, char *seen, size_t cap)
{
    int port = sentinel_majority_master(old, seen, cap);
    for (int i = 0; port > 0 && i < T.nreplicas; i++)
        if (T.replicas[i].port == port && T.replicas[i].pid > 0)
            return server_is_master(port) ? i : -1;
    return -1;
}

/* Swap the leader slot with replica idx (promoted by Sentinel). */
static it_server *adopt_promoted(int idx, it_server **old_leader)
{
    if (T.leader_ctx) {
        redisFree(T.leader_ctx);
        T.leader_ctx = NULL;
    }
    it_server promoted = T.replicas[idx];
    T.replicas[idx] = T.leader;
    T.replicas[idx].is_leader = false;
    T.leader = promoted;
    T.leader.is_leader = true;
    if (old_leader)
        *old_leader = &T.replicas[idx];
    return &T.leader;
}

it_server *it_sentinel_wait_failover(int timeout_ms, it_server **old_leader)
{
    cr_assert(T.nsentinels > 0, "it_sentinel_wait_failover: no sentinels (it_opts.sentinels)");
    int old = T.leader.port;
    long long deadline = it_now_ms() + timeout_ms;
    char seen[256];
    int idx;
    while ((idx = promoted_replica(old, seen, sizeof seen)) < 0) {
        cr_assert(it_now_ms() < deadline,
                  "no failover within %d ms: the sentinels name (sentinel->master) %s; "
                  "the old leader was %d", timeout_ms, seen, old);
        it_sleep_ms(POLL_INTERVAL_MS);
    }
    return adopt_promoted(idx, old_leader);
}

it_server *it_sentinel_adopt_failover(it_server **old_leader)
{
    char seen[256];
    int idx = T.nsentinels > 0 ? promoted_replica(T.leader.port, seen, sizeof seen) : -1;
    return idx < 0 ? NULL : adopt_promoted(idx, old_leader);
}

/* ------------------------------------------------------------------------ */
/* public: lifecycle                                                        */

static void proxy_wait_sentinel_leader(int timeout_ms);
static void quorum_wait_ready(int port, const char *what, int timeout_ms);

static bool keep_dirs(void)
{
    const char *keep = getenv("RCPROXY_TEST_KEEP");
    return keep && strcmp(keep, "1") == 0;
}

/* Remove /tmp/rcproxy-it-<pid>-* directories whose worker no longer exists:
 * left behind by a worker that crashed or was killed at its timeout (its
 * servers died with it through PDEATHSIG, but .fini never ran). */
static void remove_stale_dirs(void)
{
    DIR *d = opendir("/tmp");
    if (!d)
        return;
    struct dirent *e;
    for (int n = 0; n < 100000 && (e = readdir(d)) != NULL; n++) {
        int pid = 0;
        char c = 0;
        if (sscanf(e->d_name, "rcproxy-it-%d-%c", &pid, &c) != 2 || pid <= 0)
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[320];
        snprintf(path, sizeof path, "/tmp/%s", e->d_name);
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(d);
}

void it_init(void)
{
    memset(&T, 0, sizeof T);
    T.initialised = true;
    T.direct = it_direct();
    signal(SIGPIPE, SIG_IGN);
    static bool nets;
    if (!nets) {
        nets = true;
        atexit(emergency_kill);
        signal(SIGTERM, emergency_signal);
        signal(SIGINT, emergency_signal);
        signal(SIGHUP, emergency_signal);
    }
    if (!keep_dirs())
        remove_stale_dirs();
}

/* SIGTERM the rcproxy *pid (output in <tmpdir>/<name>.out) and assert a
 * clean exit; see it_check_proxy_exit(). */
static void check_proxy_exit(const char *name, pid_t *ppid)
{
    if (T.direct || *ppid <= 0)
        return;
    pid_t pid = *ppid;
    int status = 0;
    kill(pid, SIGTERM);
    bool reaped = reap(pid, 10000, &status);
    if (!reaped)
        kill_and_reap(ppid);
    *ppid = 0;
    cr_assert(reaped, "%s did not exit within 10 s of SIGTERM", name);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s exited abnormally after SIGTERM (status 0x%x)", name, status);
    char path[128], line[512];
    snprintf(path, sizeof path, "%s/%s.out", T.dir, name);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    bool dirty = false;
    while (fgets(line, sizeof line, fp))
        if (strstr(line, "AddressSanitizer") || strstr(line, "LeakSanitizer") ||
            strstr(line, "runtime error:"))
            dirty = true;
    fclose(fp);
    cr_assert(!dirty, "sanitizer report in %s (see its tail below)", path);
}

void it_check_proxy_exit(void)
{
    check_proxy_exit("rcproxy", &T.proxy_pid);
    check_proxy_exit("rcproxy2", &T.proxy2_pid);
}

void it_mark_passed(void)
{
    T.passed = true;
}

void it_mark_skipped(void)
{
    T.skipped = true;
}

void it_fini(void)
{
    if (T.leader_ctx)
        redisFree(T.leader_ctx);
    if (T.proxy_ctx)
        redisFree(T.proxy_ctx);
    T.leader_ctx = T.proxy_ctx = NULL;
    for (int i = 0; i < T.nsentinels; i++)
        kill_and_reap(&T.sentinel_pids[i]);
    kill_and_reap(&T.proxy_pid);
    kill_and_reap(&T.proxy2_pid);
    for (int i = 0; i < T.nreplicas; i++)
        kill_and_reap(&T.replicas[i].pid);
    for (int i = 0; i < T.nnodes; i++)
        kill_and_reap(&T.nodes[i].pid);
    for (int i = 0; i < IT_MAX_TOOLS; i++)
        kill_and_reap(&T.tool_pids[i]);
    kill_and_reap(&T.relay_pid);
    kill_and_reap(&T.leader.pid);
    if (!T.dir[0])
        return;
    if (!T.passed && !T.skipped) {
        fprintf(stderr, "harness: test failed; topology dir %s (leader %d, proxy %d)\n",
                T.dir, T.leader.port, T.proxy_port);
        for (int i = 0; i < T.nnodes; i++)
            fprintf(stderr, "harness: quorum node %d on port %d\n", i, T.nodes[i].port);
        char path[128];
        snprintf(path, sizeof path, "%s/rcproxy.log", T.dir);
        print_tail(path);
        snprintf(path, sizeof path, "%s/rcproxy.out", T.dir);
        print_tail(path);
        if (T.proxy2_port > 0) {
            snprintf(path, sizeof path, "%s/rcproxy2.log", T.dir);
            print_tail(path);
            snprintf(path, sizeof path, "%s/rcproxy2.out", T.dir);
            print_tail(path);
        }
        if (T.relay_port > 0) {
            snprintf(path, sizeof path, "%s/delay_relay.out", T.dir);
            print_tail(path);
        }
        for (int i = 0; i < T.nsentinels; i++) {
            snprintf(path, sizeof path, "%s/sentinel-%d.log", T.dir, T.sentinel_ports[i]);
            print_tail(path);
        }
    }
    if (keep_dirs())
        fprintf(stderr, "harness: kept %s\n", T.dir);
    else
        nftw(T.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    T.dir[0] = '\0';
}

/* it_start for mode quorum: the nodes, then rcproxy (unless direct or
 * no_proxy) and its readiness. */
static void quorum_start(void)
{
    T.nnodes = T.opts.quorum_nodes;
    it_server *nodes[IT_MAX_QUORUM_NODES];
    for (int i = 0; i < T.nnodes; i++)
        nodes[i] = &T.nodes[i];
    redis_start_all(nodes, T.nnodes, false, true);
    if (T.opts.proxy_config_file)
        snprintf(T.proxy_conf, sizeof T.proxy_conf, "%s/rcproxy.conf", T.dir);
    if (T.direct || T.opts.no_proxy)
        return;
    proxy_start();
    if (!T.opts.no_rotation_wait)
        quorum_wait_ready(T.proxy_port, "rcproxy", START_TIMEOUT_MS);
}

void it_start(const it_opts *o)
{
    static const it_opts defaults = { .replicas = 2 };
    cr_assert(T.initialised, "it_start outside an IT_TEST");
    cr_assert(!T.dir[0], "it_start called twice");
    T.opts = o ? *o : defaults;
    cr_assert(T.opts.replicas >= 0 && T.opts.replicas <= IT_MAX_REPLICAS,
              "bad replica count %d", T.opts.replicas);
    cr_assert(T.opts.sentinels >= 0 && T.opts.sentinels <= IT_MAX_SENTINELS,
              "bad sentinel count %d", T.opts.sentinels);
    cr_assert(T.opts.sentinels == 0 || T.opts.relay_delay_ms == 0,
              "sentinels and the delay relay do not go together");
    cr_assert(T.opts.quorum_nodes >= 0 && T.opts.quorum_nodes <= IT_MAX_QUORUM_NODES,
              "bad quorum node count %d", T.opts.quorum_nodes);
    cr_assert(T.opts.quorum_nodes == 0 ||
              (T.opts.replicas == 0 && T.opts.sentinels == 0 && T.opts.relay_delay_ms == 0),
              "quorum_nodes goes with no replicas, sentinels or delay relay");

    snprintf(T.dir, sizeof T.dir, "/tmp/rcproxy-it-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(T.dir)) {
        T.dir[0] = '\0';
        cr_assert_fail("mkdtemp: %s", strerror(errno));
    }

    if (T.opts.quorum_nodes > 0) {
        quorum_start();
        return;
    }

    T.leader.is_leader = true;
    it_server *lead = &T.leader;
    redis_start_all(&lead, 1, false, true);

    T.nreplicas = T.opts.replicas;
    cr_assert(T.opts.relay_delay_ms >= 0, "bad relay_delay_ms %d", T.opts.relay_delay_ms);
    if (T.opts.relay_delay_ms > 0 && T.nreplicas > 0)
        relay_start();
    it_server *reps[IT_MAX_REPLICAS];
    for (int i = 0; i < T.nreplicas; i++) {
        T.replicas[i].is_leader = false;
        reps[i] = &T.replicas[i];
    }
    if (T.nreplicas > 0)
        redis_start_all(reps, T.nreplicas, false, true);

    if (T.opts.sentinels > 0) {
        T.nsentinels = T.opts.sentinels;
        sentinel_start_all();
        it_sentinel_wait_synced(SENTINEL_SYNC_TIMEOUT_MS);
    }

    if (T.opts.proxy_config_file)
        snprintf(T.proxy_conf, sizeof T.proxy_conf, "%s/rcproxy.conf", T.dir);
    if (!T.direct && !T.opts.no_proxy) {
        proxy_start();
        if (T.nsentinels > 0 && !T.opts.proxy_static)
            proxy_wait_sentinel_leader(START_TIMEOUT_MS);
        if (!T.opts.no_rotation_wait)
            it_wait_ready(START_TIMEOUT_MS);
    }
}

it_server *it_leader_server(void)
{
    return &T.leader;
}

it_server *it_replica(int i)
{
    cr_assert(i >= 0 && i < T.nreplicas, "no replica %d", i);
    return &T.replicas[i];
}

int it_replica_count(void)
{
    return T.nreplicas;
}

int it_client_port(void)
{
    if (T.direct || T.opts.no_proxy)
        return T.nnodes > 0 ? T.nodes[0].port : T.leader.port;
    return T.proxy_port;
}

int it_node_count(void)
{
    return T.nnodes;
}

it_server *it_node(int i)
{
    cr_assert(i >= 0 && i < T.nnodes, "no quorum node %d (%d nodes)", i, T.nnodes);
    return &T.nodes[i];
}

redisContext *it_node_connect(int i)
{
    it_server *s = it_node(i);
    redisContext *c = it_try_connect(s->port, backend_pw(), IT_DEFAULT_TIMEOUT_MS);
    cr_assert_not_null(c, "cannot connect to quorum node %d (port %d)", i, s->port);
    return c;
}

const char *it_build_path(const char *name)
{
    static char path[512];
    const char *slash = strrchr(RCPROXY_BIN, '/');
    int dirlen = slash ? (int)(slash - RCPROXY_BIN) : 1;
    snprintf(path, sizeof path, "%.*s/%s", dirlen, slash ? RCPROXY_BIN : ".", name);
    return path;
}

pid_t it_spawn_tool(const char *const argv[], const char *out_name)
{
    cr_assert(T.dir[0], "it_spawn_tool before it_start");
    int slot = -1;
    for (int i = 0; i < IT_MAX_TOOLS && slot < 0; i++)
        if (T.tool_pids[i] == 0)
            slot = i;
    cr_assert(slot >= 0, "it_spawn_tool: already %d tools running", IT_MAX_TOOLS);
    cr_assert(access(argv[0], X_OK) == 0, "tool \"%s\" missing: build it (ninja -C "
              "<builddir> %s)", argv[0], strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1
                                                              : argv[0]);
    argv_b *a = calloc(1, sizeof *a);
    cr_assert_not_null(a, "out of memory");
    for (int i = 0; argv[i]; i++)
        arg_add(a, "%s", argv[i]);
    cr_assert(!a->overflow, "it_spawn_tool: too many arguments");
    cr_assert(launch(a, out_name, &T.tool_pids[slot]), "cannot start %s", argv[0]);
    return T.tool_pids[slot];
}

bool it_wait_tool(pid_t pid, int timeout_ms, int *status)
{
    int slot = -1;
    for (int i = 0; i < IT_MAX_TOOLS; i++)
        if (T.tool_pids[i] == pid && pid > 0)
            slot = i;
    cr_assert(slot >= 0, "it_wait_tool: %d is not a running tool", (int)pid);
    int st = 0;
    bool done = reap(pid, timeout_ms, &st);
    if (!done)
        kill_and_reap(&T.tool_pids[slot]);
    T.tool_pids[slot] = 0;
    if (done && status)
        *status = st;
    return done;
}

pid_t it_proxy_pid(void)
{
    return T.proxy_pid;
}

int it_relay_port(void)
{
    return T.relay_port;
}

pid_t it_relay_pid(void)
{
    return T.relay_pid;
}

void it_relay_delay(bool on)
{
    cr_assert(T.relay_pid > 0, "no delay relay running (it_opts.relay_delay_ms)");
    kill(T.relay_pid, on ? SIGUSR2 : SIGUSR1);
}

int it_proxy2_port(void)
{
    return T.proxy2_port;
}

const char *it_tmpdir(void)
{
    return T.dir;
}

void it_kill(it_server *s)
{
    if (s->is_leader && T.leader_ctx) {
        redisFree(T.leader_ctx);
        T.leader_ctx = NULL;
    }
    kill_and_reap(&s->pid);
}

void it_pause(it_server *s)
{
    cr_assert(s->pid > 0, "pause: server %d not running", s->port);
    kill(s->pid, SIGSTOP);
}

void it_resume(it_server *s)
{
    cr_assert(s->pid > 0, "resume: server %d not running", s->port);
    kill(s->pid, SIGCONT);
}

/* it_restart / it_restart_nowait: need_link as in redis_ready_once. */
static void restart(it_server *s, bool need_link)
{
    cr_assert(s->pid == 0, "restart: server %d is still running", s->port);
    /* no persistence: the server comes back empty (the RDB a replica got
     * at its last full sync is dropped, so it cannot reload stale data) */
    char dump[128];
    snprintf(dump, sizeof dump, "%s/dump-%d.rdb", T.dir, s->port);
    unlink(dump);
    if (s->is_leader) {
        if (T.leader_ctx) {
            redisFree(T.leader_ctx);
            T.leader_ctx = NULL;
        }
    }
    redis_start_all(&s, 1, true, need_link);
}

void it_restart(it_server *s)
{
    restart(s, true);
}

void it_restart_nowait(it_server *s)
{
    restart(s, false);
}

it_server *it_add_replica(bool wait_sync)
{
    cr_assert(T.dir[0], "it_add_replica before it_start");
    cr_assert(T.nreplicas < IT_MAX_REPLICAS, "it_add_replica: already %d replicas (max %d)",
              T.nreplicas, IT_MAX_REPLICAS);
    it_server *s = &T.replicas[T.nreplicas++];
    memset(s, 0, sizeof *s);
    redis_start_all(&s, 1, false, wait_sync);
    return s;
}

/* ------------------------------------------------------------------------ */
/* public: rcproxy config file                                              */

const char *it_proxy_conf_path(void)
{
    return T.proxy_conf;
}

void it_proxy_conf_append(const char *fmt, ...)
{
    cr_assert(T.proxy_conf[0], "no rcproxy config file (it_opts.proxy_config_file)");
    FILE *fp = fopen(T.proxy_conf, "a");
    cr_assert_not_null(fp, "%s: %s", T.proxy_conf, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
    fputc('\n', fp);
    bool ok = !ferror(fp);
    ok = fclose(fp) == 0 && ok;
    cr_assert(ok, "cannot append to %s", T.proxy_conf);
}

void it_proxy_conf_rewrite(void)
{
    cr_assert(T.proxy_conf[0], "no rcproxy config file (it_opts.proxy_config_file)");
    argv_b *d = calloc(1, sizeof *d);
    cr_assert_not_null(d, "out of memory");
    proxy_directives(d, T.proxy_port, "rcproxy", true);
    bool ok = !d->overflow && proxy_write_conf(T.proxy_conf, d);
    free(d);
    cr_assert(ok, "cannot rewrite %s", T.proxy_conf);
}

void it_proxy_conf_remove_line(const char *line)
{
    cr_assert(T.proxy_conf[0], "no rcproxy config file (it_opts.proxy_config_file)");
    char tmp[128], buf[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", T.proxy_conf);
    FILE *in = fopen(T.proxy_conf, "r");
    cr_assert_not_null(in, "%s: %s", T.proxy_conf, strerror(errno));
    FILE *out = fopen(tmp, "w");
    if (!out)
        fclose(in);
    cr_assert_not_null(out, "%s: %s", tmp, strerror(errno));
    size_t want = strlen(line);
    int removed = 0;
    bool at_start = true;       /* buf begins a line (not the rest of a long one) */
    while (fgets(buf, sizeof buf, in)) {
        size_t n = strcspn(buf, "\r\n");
        bool whole = buf[n] != '\0' || feof(in);
        if (at_start && whole && n == want && memcmp(buf, line, n) == 0)
            removed++;
        else
            fputs(buf, out);
        at_start = strchr(buf, '\n') != NULL;
    }
    bool ok = !ferror(in) && !ferror(out);
    fclose(in);
    ok = fclose(out) == 0 && ok;
    ok = ok && rename(tmp, T.proxy_conf) == 0;
    cr_assert(ok, "cannot rewrite %s", T.proxy_conf);
    cr_assert(removed > 0, "no line \"%s\" in %s", line, T.proxy_conf);
}

bool it_proxy_signal_wait(int sig, int timeout_ms, int *status)
{
    cr_assert(T.proxy_pid > 0, "rcproxy is not running");
    kill(T.proxy_pid, sig);
    if (!reap(T.proxy_pid, timeout_ms, status))
        return false;
    T.proxy_pid = 0;
    return true;
}

/* ------------------------------------------------------------------------ */
/* public: readiness                                                        */

/* Free a cached idle link that broke or has something to read (it was
 * closed by the peer: CLIENT KILL, restart), so that it gets reconnected
 * instead of failing on first use. */
static void drop_if_dead(redisContext **c)
{
    if (!*c)
        return;
    struct pollfd p = { .fd = (*c)->fd, .events = POLLIN };
    if ((*c)->err || poll(&p, 1, 0) != 0) {
        redisFree(*c);
        *c = NULL;
    }
}

redisContext *it_leader(void)
{
    cr_assert(T.leader.pid > 0, "it_leader: the leader is not running");
    drop_if_dead(&T.leader_ctx);
    if (!T.leader_ctx)
        T.leader_ctx = it_try_connect(T.leader.port, backend_pw(), IT_DEFAULT_TIMEOUT_MS);
    cr_assert_not_null(T.leader_ctx, "cannot connect to the leader on port %d",
                       T.leader.port);
    return T.leader_ctx;
}

static bool replica_caught_up(const it_server *s, long long offset)
{
    redisContext *c = it_try_connect(s->port, backend_pw(), 1000);
    if (!c)
        return false;
    char *info = it_try_info(c, "replication");
    char link[32], off[32];
    bool ok = info && it_info_value(info, "master_link_status", link, sizeof link) &&
              strcmp(link, "up") == 0 &&
              it_info_value(info, "slave_repl_offset", off, sizeof off) &&
              atoll(off) >= offset;
    free(info);
    redisFree(c);
    return ok;
}

void it_wait_replication(int timeout_ms)
{
    if (T.leader.pid == 0)
        return;
    char *info = it_try_info(it_leader(), "replication");
    char off[32];
    cr_assert(info && it_info_value(info, "master_repl_offset", off, sizeof off),
              "cannot read the leader's master_repl_offset");
    free(info);
    long long offset = atoll(off);
    long long deadline = it_now_ms() + timeout_ms;
    for (int i = 0; i < T.nreplicas; i++) {
        it_server *s = &T.replicas[i];
        while (s->pid > 0 && !replica_caught_up(s, offset)) {
            cr_assert(it_now_ms() < deadline,
                      "replica %d did not reach offset %lld within %d ms", s->port,
                      offset, timeout_ms);
            it_sleep_ms(10);
        }
    }
}

/* Mode quorum readiness: wait until the rcproxy on port (`what`, for the
 * message) answers GET of a key no test writes with nil, i.e. it has links
 * to at least R nodes.  Asserts on timeout, quoting the last reply. */
static void quorum_wait_ready(int port, const char *what, int timeout_ms)
{
    long long deadline = it_now_ms() + timeout_ms;
    char last[320] = "(no connection)";
    for (;;) {
        redisContext *c = it_try_connect(port, T.opts.proxy_password, 2000);
        redisReply *r = c ? redisCommand(c, "GET it:quorum-ready-probe") : NULL;
        bool ok = r && r->type == REDIS_REPLY_NIL;
        if (c)
            snprintf(last, sizeof last, "%s", r ? it_reply_desc(r) : c->errstr);
        if (r)
            freeReplyObject(r);
        if (c)
            redisFree(c);
        if (ok)
            return;
        cr_assert(it_now_ms() < deadline, "%s (port %d) in mode quorum never answered "
                  "GET of a missing key with nil within %d ms; last reply: %s", what, port,
                  timeout_ms, last);
        it_sleep_ms(50);
    }
}

/* INFO rcproxy through the cached admin connection; NULL on failure. */
static char *proxy_info(void)
{
    if (T.proxy_pid == 0)
        return NULL;
    drop_if_dead(&T.proxy_ctx);
    if (!T.proxy_ctx)
        T.proxy_ctx = it_try_connect(T.proxy_port, T.opts.proxy_password, 2000);
    return T.proxy_ctx ? it_try_info(T.proxy_ctx, "rcproxy") : NULL;
}

/* Find backend `port`'s line ("backendN:addr=127.0.0.1:PORT,...") in an
 * INFO rcproxy text and copy the value of `field` into out. */
static bool backend_field_in(const char *info, int port, const char *field,
                             char *out, size_t cap)
{
    char addr[48];
    int alen = snprintf(addr, sizeof addr, "addr=127.0.0.1:%d", port);
    size_t flen = strlen(field);
    for (const char *line = info; line && *line;) {
        const char *end = line + strcspn(line, "\r\n");
        const char *colon = memchr(line, ':', (size_t)(end - line));
        /* "backend<i>:" in mode leader, "node<i>:" in mode quorum */
        size_t plen = strncmp(line, "backend", 7) == 0 ? 7 : strncmp(line, "node", 4) == 0 ? 4 : 0;
        if (plen && colon && line[plen] >= '0' && line[plen] <= '9') {
            const char *v = colon + 1;
            const char *a = memmem(v, (size_t)(end - v), addr, (size_t)alen);
            if (a && (a == v || a[-1] == ',') &&
                (a + alen == end || a[alen] == ',')) {
                /* scan key=value pairs */
                for (const char *kv = v; kv < end;) {
                    const char *comma = memchr(kv, ',', (size_t)(end - kv));
                    const char *stop = comma ? comma : end;
                    if ((size_t)(stop - kv) > flen && strncmp(kv, field, flen) == 0 &&
                        kv[flen] == '=') {
                        size_t n = (size_t)(stop - kv) - flen - 1;
                        if (n >= cap)
                            n = cap - 1;
                        memcpy(out, kv + flen + 1, n);
                        out[n] = '\0';
                        return true;
                    }
                    kv = stop + 1;
                }
                return false;
            }
        }
        line = end + strspn(end, "\r\n");
    }
    return false;
}

bool it_backend_field(const it_server *s, const char *field, char *out, size_t cap)
{
    char *info = proxy_info();
    bool ok = info && backend_field_in(info, s->port, field, out, cap);
    free(info);
    return ok;
}

bool it_wait_backend_field(const it_server *s, const char *field,
                           const char *value, int timeout_ms)
{
    if (T.direct)
        return true;
    long long deadline = it_now_ms() + timeout_ms;
    for (;;) {
        char v[64];
        if (it_backend_field(s, field, v, sizeof v) && strcmp(v, value) == 0)
            return true;
        if (it_now_ms() >= deadline)
            return false;
        it_sleep_ms(POLL_INTERVAL_MS);
    }
}

void it_wait_ready(int timeout_ms)
{
    long long start = it_now_ms();
    if (T.nnodes > 0) {
        if (T.direct)
            return;
        if (T.proxy_pid > 0)
            quorum_wait_ready(T.proxy_port, "rcproxy", timeout_ms);
        if (T.proxy2_pid > 0)
            quorum_wait_ready(T.proxy2_port, "second rcproxy", timeout_ms);
        return;
    }
    it_wait_replication(timeout_ms);
    if (T.direct || T.proxy_pid == 0)
        return;
    int left = (int)(timeout_ms - (it_now_ms() - start));
    if (left < 100)
        left = 100;
    if (T.leader.pid > 0)
        cr_assert(it_wait_backend_field(&T.leader, "status", "up", left),
                  "rcproxy never showed the leader (port %d) status=up", T.leader.port);
    for (int i = 0; i < T.nreplicas; i++) {
        if (T.replicas[i].pid == 0)
            continue;
        left = (int)(timeout_ms - (it_now_ms() - start));
        if (left < 100)
            left = 100;
        cr_assert(it_wait_backend_field(&T.replicas[i], "in_rotation", "yes", left),
                  "rcproxy never showed replica %d in_rotation=yes", T.replicas[i].port);
    }
}

/* Sentinel mode, right after rcproxy started: wait until INFO rcproxy
 * lists the leader Sentinel names as role=leader.  Asserts with a message
 * that points at rcproxy's Sentinel support when it never does. */
static void proxy_wait_sentinel_leader(int timeout_ms)
{
    long long deadline = it_now_ms() + timeout_ms;
    char role[32];
    while (!it_backend_field(&T.leader, "role", role, sizeof role) ||
           strcmp(role, "leader") != 0) {
        if (it_now_ms() >= deadline) {
            char b0[256] = "(no backend0 line)";
            char *info = proxy_info();
            if (info)
                it_info_value(info, "backend0", b0, sizeof b0);
            free(info);
            cr_assert_fail("rcproxy started with --sentinel-master %s and %d --sentinel never "
                           "listed the leader Sentinel names (127.0.0.1:%d) as role=leader "
                           "within %d ms (INFO rcproxy backend0:%s): rcproxy's Sentinel "
                           "support is missing or broken", IT_SENTINEL_MASTER, T.nsentinels,
                           T.leader.port, timeout_ms, b0);
        }
        it_sleep_ms(POLL_INTERVAL_MS);
    }
}

int it_start_proxy2(void)
{
    cr_assert(!T.direct, "it_start_proxy2: needs rcproxy (not in direct mode)");
    cr_assert(T.dir[0] && T.proxy2_pid == 0, "it_start_proxy2: once, after it_start");
    proxy_start_as("rcproxy2", true, &T.proxy2_port, &T.proxy2_pid);
    if (T.opts.no_rotation_wait)
        return T.proxy2_port;
    if (T.nnodes > 0) {
        quorum_wait_ready(T.proxy2_port, "second rcproxy", START_TIMEOUT_MS);
        return T.proxy2_port;
    }
    long long deadline = it_now_ms() + START_TIMEOUT_MS;
    redisContext *c = NULL;
    for (int i = 0; i < T.nreplicas; i++) {
        const it_server *s = &T.replicas[i];
        bool ok = s->pid == 0;
        while (!ok) {
            if (!c)
                c = it_try_connect(T.proxy2_port, T.opts.proxy_password, 2000);
            char *info = c ? it_try_info(c, "rcproxy") : NULL;
            char v[16];
            ok = info && backend_field_in(info, s->port, "in_rotation", v, sizeof v) &&
                 strcmp(v, "yes") == 0;
            free(info);
            if (c && c->err) {
                redisFree(c);
                c = NULL;
            }
            if (ok || it_now_ms() >= deadline)
                break;
            it_sleep_ms(POLL_INTERVAL_MS);
        }
        if (!ok) {
            if (c)
                redisFree(c);
            cr_assert_fail("second rcproxy never showed replica %d in_rotation=yes", s->port);
        }
    }
    if (c)
        redisFree(c);
    return T.proxy2_port;
}

/* ------------------------------------------------------------------------ */
/* public: clients                                                          */

redisContext *it_connect(void)
{
    redisContext *c = it_try_connect(it_client_port(), client_pw(), IT_DEFAULT_TIMEOUT_MS);
    cr_assert_not_null(c, "cannot connect (and authenticate) to port %d", it_client_port());
    return c;
}

redisContext *it_connect_noauth(void)
{
    redisContext *c = it_try_connect(it_client_port(), NULL, IT_DEFAULT_TIMEOUT_MS);
    cr_assert_not_null(c, "cannot connect to port %d", it_client_port());
    return c;
}

/* ------------------------------------------------------------------------ */
/* public: raw sockets                                                      */

int it_raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = tv_ms(10000);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

bool it_raw_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

size_t it_raw_read_all(int fd, char *buf, size_t cap, int timeout_ms, bool *eof)
{
    size_t got = 0;
    long long deadline = it_now_ms() + timeout_ms;
    *eof = false;
    while (got < cap) {
        long long left = deadline - it_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            *eof = true;
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}
