/* health.c -- control-plane links to backends over hiredis's async API.
 *
 * Two users share one small "link" layer:
 *
 *   repl_health   a long-lived poller: every interval it sends
 *                 `INFO replication persistence` (one command, two sections,
 *                 Redis >= 7) on its link, reconnecting on the tick after a
 *                 failure, and reports each outcome through its callback.
 *   oneshot       a throw-away link: connect, AUTH, one command, callback
 *                 exactly once, free.
 *
 * hiredis 0.14.1 lifetime rules this file is built around:
 *
 *   - A reply callback runs with REDIS_IN_CALLBACK set: redisAsyncFree() from
 *     there only marks the context, hiredis frees it when the callback
 *     returns.  Every pending reply callback then runs with a NULL reply.
 *   - onConnect(REDIS_ERR) and onDisconnect() run WITHOUT that flag while
 *     hiredis is already tearing the context down: calling redisAsyncFree()
 *     there would free it twice.  onConnect(REDIS_OK) runs inside
 *     redisAsyncHandleWrite(), which keeps using the context afterwards, so
 *     it must not be freed there either.
 *   - A NULL reply only happens while hiredis tears the context down.
 *
 * So: ac->data points at our owner while the owner wants the link, and is
 * set to NULL the moment we let go of it (every hiredis callback first checks
 * ac->data and ignores a detached context).  We call redisAsyncFree() only
 * from our own timers, from user code outside hiredis, or from a reply
 * callback of the same context (deferred by hiredis); in the two teardown
 * callbacks we merely detach, hiredis frees the context itself.  User
 * callbacks are never invoked from onConnect(REDIS_OK). */
#include <stddef.h> /* health.h uses size_t without including it */

#include "replication/health.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h> /* static functions: included here only */

#include "replication/repl_mem.h"

/* What a queued command was, carried in hiredis's privdata (never a pointer
 * to our objects: those may be gone when hiredis runs a NULL reply). */
enum { TAG_AUTH = 1, TAG_INFO, TAG_CMD };
#define TAG_PTR(t) ((void *)(intptr_t)(t))
#define PTR_TAG(p) ((int)(intptr_t)(p))

#define HEALTH_DEFAULT_INTERVAL_MS 1000

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

long long repl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The text of a hiredis context's error, or fallback when there is none. */
static const char *link_errstr(const redisAsyncContext *ac, const char *fallback) {
    if (ac != NULL && ac->c.err != 0 && ac->c.errstr[0] != '\0')
        return ac->c.errstr;
    return fallback;
}

/* ------------------------------------------------------------------------ */
/* the link layer                                                            */

/* Open a non-blocking control link to host:port on loop with owner as
 * ac->data and the given connect/disconnect callbacks.  Returns the context,
 * or NULL with a reason in err when the attempt failed at once (the context,
 * if any, is freed; no callback of it will run). */
static redisAsyncContext *link_open(struct ev_loop *loop, const char *host, int port,
                                    void *owner, redisConnectCallback *on_connect,
                                    redisDisconnectCallback *on_disconnect,
                                    char *err, size_t errlen) {
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (ac == NULL) {
        snprintf(err, errlen, "connect to %s:%d: out of memory", host, port);
        return NULL;
    }
    if (ac->err != 0) {
        snprintf(err, errlen, "connect to %s:%d: %s", host, port,
                 link_errstr(ac, "connection failed"));
        goto fail;
    }
    if (redisLibevAttach(loop, ac) != REDIS_OK) {
        snprintf(err, errlen, "connect to %s:%d: cannot attach to the event loop", host, port);
        goto fail;
    }
    ac->data = owner;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;

fail:
    redisAsyncFree(ac); /* not connected, not attached to us: no callbacks */
    return NULL;
}

/* Queue AUTH on a fresh link when a password is given (`AUTH password`, or
 * `AUTH user password` when user is set).  Returns 0 if nothing had to be
 * sent or it was queued, -1 if hiredis refused the command. */
static int link_auth(redisAsyncContext *ac, redisCallbackFn *fn,
                     const char *user, const char *password) {
    const char *argv[3];
    int argc = 0;
    if (password == NULL)
        return 0;
    argv[argc++] = "AUTH";
    if (user != NULL)
        argv[argc++] = user;
    argv[argc++] = password;
    return redisAsyncCommandArgv(ac, fn, TAG_PTR(TAG_AUTH), argc, argv, NULL) == REDIS_OK ? 0 : -1;
}

/* Let go of a link we still own: detach it, then free it (at once, or
 * deferred by hiredis when called from one of its reply callbacks).  Must
 * not be called from onConnect/onDisconnect of this context: there the
 * callers detach only. */
static void link_close(redisAsyncContext *ac) {
    ac->data = NULL;
    redisAsyncFree(ac);
}

/* ------------------------------------------------------------------------ */
/* INFO parsing                                                              */

typedef enum { F_FLAG, F_INT, F_LL, F_OFFSET, F_TEXT, F_ROLE, F_LINK } info_kind;

/* One INFO field we read: where it goes in repl_health_state and how it is
 * checked.  F_INT values outside [0, max] are ignored; F_TEXT values that do
 * not fit (with their NUL) in size bytes are ignored rather than truncated. */
typedef struct {
    const char *key;
    info_kind kind;
    size_t off;
    size_t size;
    long long max;
} info_field;

#define FIELD(k, kind, member, max)                                             \
    { k, kind, offsetof(repl_health_state, member),                             \
      sizeof(((repl_health_state *)0)->member), max }

static const info_field info_fields[] = {
    FIELD("role",                    F_ROLE,   role,               0),
    FIELD("master_link_status",      F_LINK,   link_up,            0),
    FIELD("master_sync_in_progress", F_FLAG,   sync_in_progress,   0),
    FIELD("loading",                 F_FLAG,   loading,            0),
    FIELD("async_loading",           F_FLAG,   async_loading,      0),
    FIELD("master_repl_offset",      F_OFFSET, master_repl_offset, 0),
    FIELD("master_replid",           F_TEXT,   master_replid,      0),
    FIELD("master_replid2",          F_TEXT,   master_replid2,     0),
    FIELD("second_repl_offset",      F_LL,     second_repl_offset, 0),
    FIELD("master_host",             F_TEXT,   master_host,        0),
    FIELD("master_port",             F_INT,    master_port,        65535),
    FIELD("connected_slaves",        F_INT,    connected_slaves,   INT_MAX),
};

/* Scratch of one parse: offsets whose meaning depends on the final role. */
typedef struct {
    int have_slave_offset, have_master_offset;
    long long slave_offset, master_offset;
} info_scratch;

/* Parse a decimal integer that fills s[0..n) exactly (optional '-', at most
 * LLONG range).  Returns 0 and sets *out, or -1 for anything else. */
static int parse_ll(const char *s, size_t n, long long *out) {
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0, limit;
    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n)
        return -1;
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < n; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

static int key_is(const char *key, const char *s, size_t n) {
    return strlen(key) == n && memcmp(key, s, n) == 0;
}

/* Store one value into its field of st (see info_field for the checks). */
static void info_store(const info_field *f, const char *val, size_t n,
                       repl_health_state *st, info_scratch *sc) {
    char *dst = (char *)st + f->off;
    long long v;

    switch (f->kind) {
    case F_ROLE: {
        repl_role role = REPL_ROLE_UNKNOWN;
        if (key_is("master", val, n))
            role = REPL_ROLE_MASTER;
        else if (key_is("slave", val, n) || key_is("replica", val, n))
            role = REPL_ROLE_REPLICA;
        memcpy(dst, &role, sizeof role);
        break;
    }
    case F_LINK: {
        int up = key_is("up", val, n);
        memcpy(dst, &up, sizeof up);
        break;
    }
    case F_FLAG:
        if (parse_ll(val, n, &v) == 0) {
            int flag = v != 0;
            memcpy(dst, &flag, sizeof flag);
        }
        break;
    case F_INT:
        if (parse_ll(val, n, &v) == 0 && v >= 0 && v <= f->max) {
            int iv = (int)v;
            memcpy(dst, &iv, sizeof iv);
        }
        break;
    case F_LL:
        if (parse_ll(val, n, &v) == 0)
            memcpy(dst, &v, sizeof v);
        break;
    case F_OFFSET:
        if (parse_ll(val, n, &v) == 0) {
            memcpy(dst, &v, sizeof v);
            sc->have_master_offset = 1;
            sc->master_offset = v;
        }
        break;
    case F_TEXT:
        if (n >= f->size)
            break;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f)
                return;
        memcpy(dst, val, n);
        dst[n] = '\0';
        break;
    }
}

/* One line without its terminator: `key:value`; '#' headers, blank lines
 * and unknown keys are skipped. */
static void info_line(const char *line, size_t n, repl_health_state *st, info_scratch *sc) {
    const char *colon;
    size_t klen;
    if (n == 0 || line[0] == '#')
        return;
    colon = memchr(line, ':', n);
    if (colon == NULL)
        return;
    klen = (size_t)(colon - line);
    const char *val = colon + 1;
    size_t vlen = n - klen - 1;

    if (key_is("slave_repl_offset", line, klen)) {
        long long v;
        if (parse_ll(val, vlen, &v) == 0) {
            sc->have_slave_offset = 1;
            sc->slave_offset = v;
        }
        return;
    }
    for (size_t i = 0; i < sizeof info_fields / sizeof info_fields[0]; i++) {
        if (key_is(info_fields[i].key, line, klen)) {
            info_store(&info_fields[i], val, vlen, st, sc);
            return;
        }
    }
}

void repl_health_parse_info(const char *text, size_t len, repl_health_state *st) {
    info_scratch sc = {0, 0, 0, 0};
    const char *p = text, *end;

    if (text == NULL || st == NULL)
        return;
    end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl != NULL ? nl : end;
        const char *next = nl != NULL ? nl + 1 : end;
        if (eol > p && eol[-1] == '\r')
            eol--;
        info_line(p, (size_t)(eol - p), st, &sc);
        p = next;
    }
    /* repl_offset: what this node has applied, read per its role */
    if (st->role == REPL_ROLE_REPLICA && sc.have_slave_offset)
        st->repl_offset = sc.slave_offset;
    else if (st->role == REPL_ROLE_MASTER && sc.have_master_offset)
        st->repl_offset = sc.master_offset;
}

/* Reset the fields a poll reports, so a poll shows only what the node said
 * (a replica promoted to master must not keep link_up from before). */
static void state_clear_info(repl_health_state *st) {
    st->loading = 0;
    st->async_loading = 0;
    st->role = REPL_ROLE_UNKNOWN;
    st->link_up = 0;
    st->sync_in_progress = 0;
    st->repl_offset = -1;
    st->master_repl_offset = -1;
    st->master_replid[0] = '\0';
    st->master_replid2[0] = '\0';
    st->second_repl_offset = -1;
    st->master_host[0] = '\0';
    st->master_port = 0;
    st->connected_slaves = 0;
}

/* ------------------------------------------------------------------------ */
/* the poller                                                                */

struct repl_health {
    struct ev_loop *loop;
    char *host;
    int port;
    char *user;              /* NULL: `AUTH password` */
    char *password;          /* NULL: no AUTH */
    int timeout_ms;
    repl_health_cb *cb;
    void *arg;

    redisAsyncContext *ac;   /* the link; NULL while down */
    int inflight;            /* a poll was sent and has no outcome yet */
    ev_timer tick;           /* every interval: poll, reconnecting if down */
    ev_timer deadline;       /* armed while a poll is in flight */

    int in_cb;               /* user callbacks on the stack */
    int closing;             /* repl_health_free() was called */
    repl_health_state st;
};

static void health_destroy(repl_health *h) {
    free(h->host);
    free(h->user);
    free(h->password);
    free(h);
}

/* Run the user callback.  The callback may free h (repl_health_free only
 * marks it while a callback is on the stack; the outermost notify frees it),
 * so callers must return without touching h afterwards. */
static void health_notify(repl_health *h) {
    h->in_cb++;
    h->cb(h, &h->st, h->arg);
    h->in_cb--;
    if (h->closing && h->in_cb == 0)
        health_destroy(h);
}

/* Record a failed poll (reason printf-style), drop the link if we still own
 * it (see link_close for where that is allowed) and tell the user.  The
 * next tick reconnects.  h may be gone afterwards (see health_notify). */
static void health_fail(repl_health *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void health_fail(repl_health *h, const char *fmt, ...) {
    va_list ap;
    ev_timer_stop(h->loop, &h->deadline);
    h->inflight = 0;
    if (h->ac != NULL) {
        redisAsyncContext *ac = h->ac;
        h->ac = NULL;
        link_close(ac);
    }
    h->st.reachable = 0;
    h->st.failures++;
    va_start(ap, fmt);
    vsnprintf(h->st.last_error, sizeof h->st.last_error, fmt, ap);
    va_end(ap);
    health_notify(h);
}

/* A poll answered: take the INFO text into the state and tell the user. */
static void health_ok(repl_health *h, const char *text, size_t len) {
    repl_health_state fresh = h->st;
    ev_timer_stop(h->loop, &h->deadline);
    h->inflight = 0;
    state_clear_info(&fresh);
    repl_health_parse_info(text, len, &fresh);
    fresh.reachable = 1;
    fresh.last_ok_ms = repl_now_ms();
    fresh.polls++;
    h->st = fresh;
    health_notify(h);
}

/* Reply callback for AUTH and INFO on the poller's link. */
static void health_on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    repl_health *h = ac->data;
    redisReply *reply = r;
    if (h == NULL)
        return; /* detached: a link we already let go of */
    if (reply == NULL) {
        /* hiredis is tearing the link down (read/write error, EOF) */
        ac->data = NULL;
        h->ac = NULL;
        health_fail(h, "connection lost: %s", link_errstr(ac, "closed"));
        return;
    }
    if (PTR_TAG(privdata) == TAG_AUTH) {
        if (reply->type == REDIS_REPLY_ERROR)
            health_fail(h, "AUTH failed: %.100s", reply->str);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        health_fail(h, "INFO failed: %.100s", reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        health_fail(h, "INFO: unexpected reply type %d", reply->type);
        return;
    }
    health_ok(h, reply->str, reply->len);
}

static void health_on_connect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    repl_health *h = ac->data;
    if (h == NULL || status == REDIS_OK)
        return; /* the queued AUTH/INFO go out now */
    /* hiredis frees the context right after we return: detach only */
    ac->data = NULL;
    h->ac = NULL;
    health_fail(h, "connect to %s:%d: %s", h->host, h->port, link_errstr(ac, "failed"));
}

static void health_on_disconnect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    repl_health *h = ac->data;
    (void)status;
    if (h == NULL)
        return;
    /* an idle link dropped (a poll in flight would have seen a NULL reply) */
    ac->data = NULL;
    h->ac = NULL;
    health_fail(h, "connection lost: %s", link_errstr(ac, "closed by server"));
}

/* Every interval: connect if the link is down, send one poll unless one is
 * still in flight (its deadline decides), arm the deadline. */
static void health_on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
    repl_health *h = w->data;
    char err[192];
    (void)loop;
    (void)revents;

    if (h->inflight)
        return;
    if (h->ac == NULL) {
        h->ac = link_open(h->loop, h->host, h->port, h, health_on_connect,
                          health_on_disconnect, err, sizeof err);
        if (h->ac == NULL) {
            health_fail(h, "%s", err);
            return;
        }
        if (link_auth(h->ac, health_on_reply, h->user, h->password) != 0) {
            health_fail(h, "AUTH could not be queued");
            return;
        }
    }
    static const char *info_argv[] = {"INFO", "replication", "persistence"};
    if (redisAsyncCommandArgv(h->ac, health_on_reply, TAG_PTR(TAG_INFO), 3, info_argv, NULL)
        != REDIS_OK) {
        health_fail(h, "INFO could not be queued");
        return;
    }
    h->inflight = 1;
    ev_timer_set(&h->deadline, h->timeout_ms / 1000.0, 0.);
    ev_timer_start(h->loop, &h->deadline);
}

static void health_on_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
    repl_health *h = w->data;
    (void)loop;
    (void)revents;
    health_fail(h, "timeout: no answer from %s:%d within %d ms", h->host, h->port,
                h->timeout_ms);
}

repl_health *repl_health_new(struct ev_loop *loop, const char *host, int port,
                             const char *user, const char *password,
                             int interval_ms, int timeout_ms,
                             repl_health_cb *cb, void *arg) {
    repl_health *h = repl_xcalloc(1, sizeof *h);
    if (interval_ms <= 0)
        interval_ms = HEALTH_DEFAULT_INTERVAL_MS;
    if (timeout_ms <= 0)
        timeout_ms = interval_ms;

    h->loop = loop;
    h->host = repl_opt_strdup(host != NULL && host[0] != '\0' ? host : "127.0.0.1");
    h->port = port;
    h->user = repl_opt_strdup(user);
    h->password = repl_opt_strdup(password);
    h->timeout_ms = timeout_ms;
    h->cb = cb;
    h->arg = arg;
    h->st.repl_offset = -1;
    h->st.master_repl_offset = -1;

    ev_now_update(loop);
    ev_timer_init(&h->tick, health_on_tick, 0., interval_ms / 1000.0); /* first at once */
    h->tick.data = h;
    ev_timer_init(&h->deadline, health_on_deadline, timeout_ms / 1000.0, 0.);
    h->deadline.data = h;
    ev_timer_start(loop, &h->tick);
    return h;
}

void repl_health_free(repl_health *h) {
    if (h == NULL || h->closing)
        return;
    h->closing = 1;
    ev_timer_stop(h->loop, &h->tick);
    ev_timer_stop(h->loop, &h->deadline);
    if (h->ac != NULL) {
        redisAsyncContext *ac = h->ac;
        h->ac = NULL;
        link_close(ac);
    }
    if (h->in_cb == 0)
        health_destroy(h); /* else the outermost health_notify frees it */
}

const repl_health_state *repl_health_get(const repl_health *h) {
    return &h->st;
}

/* ------------------------------------------------------------------------ */
/* one-shot commands                                                         */

typedef struct oneshot {
    redisAsyncContext *ac;   /* NULL once detached */
    struct ev_loop *loop;
    ev_timer deadline;       /* the timeout; also reports an early failure */
    int timeout_ms;
    repl_oneshot_cb *cb;
    void *arg;
    char early_err[192];     /* set when the connect failed at once */
} oneshot;

/* The one exit of a one-shot: let go of the link (unless the caller already
 * detached it from a hiredis teardown callback), call cb once, free. */
static void oneshot_finish(oneshot *os, const redisReply *reply, const char *err) {
    ev_timer_stop(os->loop, &os->deadline);
    if (os->ac != NULL) {
        redisAsyncContext *ac = os->ac;
        os->ac = NULL;
        link_close(ac); /* deferred by hiredis if in its reply callback */
    }
    os->cb(reply, err, os->arg);
    free(os);
}

static void oneshot_on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    oneshot *os = ac->data;
    redisReply *reply = r;
    char err[160];
    if (os == NULL)
        return;
    if (reply == NULL) {
        ac->data = NULL;
        os->ac = NULL;
        snprintf(err, sizeof err, "connection lost: %s", link_errstr(ac, "closed"));
        oneshot_finish(os, NULL, err);
        return;
    }
    if (PTR_TAG(privdata) == TAG_AUTH) {
        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof err, "AUTH failed: %.120s", reply->str);
            oneshot_finish(os, NULL, err);
        }
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, sizeof err, "error reply: %.120s", reply->str);
        oneshot_finish(os, NULL, err);
        return;
    }
    oneshot_finish(os, reply, NULL); /* hiredis frees reply after we return */
}

static void oneshot_on_connect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    oneshot *os = ac->data;
    char err[192];
    if (os == NULL || status == REDIS_OK)
        return;
    ac->data = NULL;
    os->ac = NULL;
    snprintf(err, sizeof err, "connect failed: %s", link_errstr(ac, "error"));
    oneshot_finish(os, NULL, err);
}

static void oneshot_on_disconnect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    oneshot *os = ac->data;
    (void)status;
    if (os == NULL)
        return;
    ac->data = NULL;
    os->ac = NULL;
    oneshot_finish(os, NULL, "connection lost before the reply");
}

static void oneshot_on_deadline(struct ev_loop *loop, ev_timer *w, int revents) {
    oneshot *os = w->data;
    char err[64];
    (void)loop;
    (void)revents;
    if (os->early_err[0] != '\0') {
        oneshot_finish(os, NULL, os->early_err);
        return;
    }
    snprintf(err, sizeof err, "timeout: no reply within %d ms", os->timeout_ms);
    oneshot_finish(os, NULL, err);
}

/* Contract beyond the header: returns -1 (and never calls cb) only for bad
 * arguments (NULL loop/host/cb/argv, argc < 1, timeout_ms <= 0).  Otherwise
 * returns 0 and cb runs exactly once, always later from the loop, never
 * before this function returns -- even when the connect fails at once.  An
 * error reply to the command comes back as reply NULL with the server's
 * message in err. */
int repl_oneshot_command(struct ev_loop *loop, const char *host, int port,
                         const char *user, const char *password, int timeout_ms,
                         int argc, const char **argv, repl_oneshot_cb *cb, void *arg) {
    oneshot *os;
    if (loop == NULL || host == NULL || cb == NULL || argv == NULL || argc < 1 || timeout_ms <= 0)
        return -1;
    for (int i = 0; i < argc; i++)
        if (argv[i] == NULL)
            return -1;

    os = repl_xcalloc(1, sizeof *os);
    os->loop = loop;
    os->timeout_ms = timeout_ms;
    os->cb = cb;
    os->arg = arg;
    ev_now_update(loop);
    ev_timer_init(&os->deadline, oneshot_on_deadline, timeout_ms / 1000.0, 0.);
    os->deadline.data = os;

    os->ac = link_open(loop, host, port, os, oneshot_on_connect, oneshot_on_disconnect,
                       os->early_err, sizeof os->early_err);
    if (os->ac != NULL) {
        const char *u = user != NULL && user[0] != '\0' ? user : NULL;
        const char *p = password != NULL && password[0] != '\0' ? password : NULL;
        if (link_auth(os->ac, oneshot_on_reply, u, p) != 0 ||
            redisAsyncCommandArgv(os->ac, oneshot_on_reply, TAG_PTR(TAG_CMD), argc, argv, NULL)
                != REDIS_OK) {
            snprintf(os->early_err, sizeof os->early_err, "command could not be queued");
            link_close(os->ac);
            os->ac = NULL;
        }
    }
    if (os->ac == NULL)
        ev_timer_set(&os->deadline, 0., 0.); /* report from the loop, not from here */
    ev_timer_start(loop, &os->deadline);
    return 0;
}
