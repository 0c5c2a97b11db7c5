/* sentinel.c -- following Redis Sentinel: where the leader and replicas are.
 *
 * Live part (repl_sentinel_new), all hiredis async on the caller's loop:
 *
 *   per sentinel   a command link (the queries below, opened on demand) and
 *                  a pub/sub link (SUBSCRIBE to the events that mean "the
 *                  topology may have changed"), each reconnected at most
 *                  once per SENT_RECONNECT_MS.
 *
 *   a refresh      asks one sentinel at a time, starting with the one that
 *                  answered last (or announced the event):
 *
 *        sentinel i: [AUTH] GET-MASTER-ADDR-BY-NAME, REPLICAS (pipelined)
 *             |  both answered and parsed
 *             v
 *        leader:     [AUTH] ROLE  --"master"-->  deliver (if it differs)
 *             |  error / timeout / not master
 *             v
 *        next sentinel ... none left: wait for the next trigger
 *
 *                  Each attempt is bounded by SENT_ATTEMPT_MS.  Events
 *                  that arrive while a refresh runs fold into one more
 *                  refresh right after it; a periodic tick is skipped.
 *                  The leader is asked with its own password (backend-password)
 *                  (an AUTH error there is ignored: ROLE decides).
 *
 *   triggers       the refresh timer (every refresh_ms, first at once), an
 *                  event on a pub/sub link naming our master, a pub/sub
 *                  link that subscribed again after a drop.  +switch-master
 *                  also delivers at once the view its payload implies.
 *
 * hiredis 0.14.1 lifetime rules (as in replication/health.c): ac->data
 * points at our object while we own the link and is set to NULL the moment
 * we let go; every callback ignores a detached context.  We call
 * redisAsyncFree() only from our timers, from user code, or from a reply
 * callback of that same context (hiredis defers it); in onConnect/
 * onDisconnect we only detach, hiredis frees the context itself.  Replies
 * carry a tag and the sequence number of the attempt that sent them in
 * privdata, so a late reply to an abandoned attempt is recognised and
 * dropped.  The user callback may call repl_sentinel_free(): the free then
 * only marks the object and the outermost delivery destroys it.
 *
 * Sync part (repl_sentinel_query_sync): the same questions over hiredis's
 * blocking API, each sentinel bounded by the caller's timeout. */
#include "replication/sentinel.h"
#include "replication/health.h"   /* repl_now_ms */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h> /* all static: one copy per translation unit */

#include "replication/repl_mem.h"

#define SENT_DEFAULT_REFRESH_MS 1000
#define SENT_ATTEMPT_MS 1000    /* one sentinel + leader check, live */
#define SENT_RECONNECT_MS 500   /* at most one connect per link per this */
#define SENT_DEFAULT_SYNC_MS 1000
#define SENT_ERR_MAX 512

/* privdata of a queued command: tag in the low bits, attempt seq above */
enum { TAG_AUTH = 1, TAG_MASTER, TAG_REPLICAS, TAG_ROLE, TAG_SUB };
#define TAG_BITS 4
#define SEQ_MASK (UINTPTR_MAX >> TAG_BITS)
#define MAKE_PRIV(tag, seq) ((void *)(((uintptr_t)(seq) << TAG_BITS) | (uintptr_t)(tag)))
#define PRIV_TAG(p) ((int)((uintptr_t)(p) & ((1u << TAG_BITS) - 1)))
#define PRIV_SEQ(p) ((uintptr_t)(p) >> TAG_BITS)

/* The events we subscribe to; each is also the `reason` of what it causes.
 * TOPOLOGY ones ask for a refresh (the first, +switch-master, delivers at
 * once).  FO_START ones, from the sentinel that runs it, say a failover of
 * the leader is under way; FO_END ones that it was aborted.  One that
 * succeeds ends with the new leader's view. */
typedef enum { EV_TOPOLOGY, EV_FO_START, EV_FO_END } sent_ev_kind;
static const struct {
    const char *name;
    sent_ev_kind kind;
} sent_channels[] = {
    {"+switch-master", EV_TOPOLOGY},
    {"+sdown", EV_TOPOLOGY},
    {"-sdown", EV_TOPOLOGY},
    {"+odown", EV_TOPOLOGY},
    {"-odown", EV_TOPOLOGY},
    {"+slave", EV_TOPOLOGY},
    {"+reboot", EV_TOPOLOGY},
    {"+convert-to-slave", EV_TOPOLOGY},
    {"+try-failover", EV_FO_START},
    {"+elected-leader", EV_FO_START},
    {"+failover-state-select-slave", EV_FO_START},
    {"+selected-slave", EV_FO_START},
    {"+failover-state-send-slaveof-noone", EV_FO_START},
    {"+failover-state-wait-promotion", EV_FO_START},
    {"+promoted-slave", EV_FO_START},
    {"+failover-state-reconf-slaves", EV_FO_START},
    {"-failover-abort-not-elected", EV_FO_END},
    {"-failover-abort-no-good-slave", EV_FO_END},
    {"-failover-abort-slave-timeout", EV_FO_END},
    /* not +failover-end: it comes just before +switch-master, and ending the
     * watch there would let a write reach the old leader in between */
};
#define SENT_NCHANNELS ((int)(sizeof sent_channels / sizeof sent_channels[0]))
/* A failover announced and never heard of again stops counting after this
 * (Sentinel's own stages each end well within it, or abort) */
#define SENT_FAILOVER_MAX_MS 60000

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

static int str_is(const char *s, size_t n, const char *lit) {
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* A TCP port written in exactly s[0..n): 1..65535, digits only. */
static int parse_port(const char *s, size_t n) {
    int v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

/* Fill a conf_addr from a host of n bytes and a port text.  Returns 0, or
 * -1 when the host is empty, too long, holds a NUL/space/control byte, or
 * the port is not a port. */
static int addr_set(conf_addr *a, const char *host, size_t n, const char *port, size_t pn) {
    int p = parse_port(port, pn);
    if (p < 0 || n == 0 || n >= sizeof a->host)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)host[i] <= 0x20 || host[i] == 0x7f)
            return -1;
    memcpy(a->host, host, n);
    a->host[n] = '\0';
    a->port = p;
    return 0;
}

static int addr_eq(const conf_addr *a, const conf_addr *b) {
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int addr_cmp(const void *x, const void *y) {
    const conf_addr *a = x, *b = y;
    int c = strcmp(a->host, b->host);
    if (c != 0)
        return c;
    return (a->port > b->port) - (a->port < b->port);
}

/* Sort the replicas and drop duplicates, so equal topologies compare equal. */
static void view_normalize(repl_sentinel_view *v) {
    int out = 0;
    qsort(v->replicas, (size_t)v->replica_count, sizeof v->replicas[0], addr_cmp);
    for (int i = 0; i < v->replica_count; i++)
        if (out == 0 || !addr_eq(&v->replicas[out - 1], &v->replicas[i]))
            v->replicas[out++] = v->replicas[i];
    v->replica_count = out;
}

static int view_eq(const repl_sentinel_view *a, const repl_sentinel_view *b) {
    if (!addr_eq(&a->leader, &b->leader) || a->replica_count != b->replica_count)
        return 0;
    for (int i = 0; i < a->replica_count; i++)
        if (!addr_eq(&a->replicas[i], &b->replicas[i]))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* reply parsing, shared by the sync and async paths                         */

static int reply_is_text(const redisReply *r) {
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* SENTINEL GET-MASTER-ADDR-BY-NAME: [ip, port].  Returns 0 with *out set,
 * or -1 with a reason (nil = the sentinel does not monitor `name`). */
static int parse_master_addr(const redisReply *r, const char *name, conf_addr *out,
                             char *err, size_t errlen) {
    if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "sentinel monitors no master named '%.64s'", name);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "GET-MASTER-ADDR-BY-NAME failed: %.120s", r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !reply_is_text(r->element[0]) ||
        !reply_is_text(r->element[1]) ||
        addr_set(out, r->element[0]->str, r->element[0]->len, r->element[1]->str,
                 r->element[1]->len) != 0) {
        snprintf(err, errlen, "GET-MASTER-ADDR-BY-NAME: malformed reply");
        return -1;
    }
    return 0;
}

/* Whether the comma-separated flags text holds s_down, o_down or
 * disconnected as a whole token. */
static int flags_exclude(const char *f, size_t n) {
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && f[j] != ',')
            j++;
        if (str_is(f + i, j - i, "s_down") || str_is(f + i, j - i, "o_down") ||
            str_is(f + i, j - i, "disconnected"))
            return 1;
        i = j + 1;
    }
    return 0;
}

/* One entry of SENTINEL REPLICAS (a flat key/value array) into *out.
 * Returns 1 if it is a usable replica, 0 if it is malformed or flagged
 * down/disconnected. */
static int parse_replica_entry(const redisReply *e, conf_addr *out) {
    const redisReply *ip = NULL, *port = NULL, *flags = NULL;
    if (e->type != REDIS_REPLY_ARRAY || e->elements % 2 != 0)
        return 0;
    for (size_t k = 0; k + 1 < e->elements; k += 2) {
        const redisReply *key = e->element[k], *val = e->element[k + 1];
        if (!reply_is_text(key) || !reply_is_text(val))
            continue;
        if (str_is(key->str, key->len, "ip"))
            ip = val;
        else if (str_is(key->str, key->len, "port"))
            port = val;
        else if (str_is(key->str, key->len, "flags"))
            flags = val;
    }
    if (ip == NULL || port == NULL || flags == NULL || flags_exclude(flags->str, flags->len))
        return 0;
    return addr_set(out, ip->str, ip->len, port->str, port->len) == 0;
}

/* SENTINEL REPLICAS into v->replicas (usable ones, never the leader, at
 * most CONF_MAX_BACKENDS, sorted).  Returns 0, or -1 with a reason. */
static int parse_replicas(const redisReply *r, repl_sentinel_view *v, char *err, size_t errlen) {
    v->replica_count = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "SENTINEL REPLICAS failed: %.120s", r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "SENTINEL REPLICAS: malformed reply");
        return -1;
    }
    for (size_t i = 0; i < r->elements && v->replica_count < CONF_MAX_BACKENDS; i++) {
        conf_addr a;
        if (parse_replica_entry(r->element[i], &a) && !addr_eq(&a, &v->leader))
            v->replicas[v->replica_count++] = a;
    }
    view_normalize(v);
    return 0;
}

/* ROLE from the leader: 0 if it says master, else -1 with a reason. */
static int check_role(const redisReply *r, const conf_addr *leader, char *err, size_t errlen) {
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "leader %.128s:%d: ROLE failed: %.120s", leader->host, leader->port,
                 r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || !reply_is_text(r->element[0])) {
        snprintf(err, errlen, "leader %.128s:%d: ROLE: malformed reply", leader->host,
                 leader->port);
        return -1;
    }
    if (!str_is(r->element[0]->str, r->element[0]->len, "master")) {
        snprintf(err, errlen, "leader %.128s:%d answers ROLE as %.32s, not master", leader->host,
                 leader->port, r->element[0]->str);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the live follower                                                         */

typedef struct sent_node {
    struct repl_sentinel *owner;
    int index;
    conf_addr addr;
    redisAsyncContext *cmd;       /* command link; NULL while down */
    redisAsyncContext *sub;       /* pub/sub link; NULL while down */
    long long cmd_tried_ms;       /* last connect attempt of each link */
    long long sub_tried_ms;
    int subscribed_once;          /* a later subscription means "we were away" */
    long long failover_ms;        /* it announced a failover of the leader then; 0: none */
} sent_node;

typedef enum { STAGE_SENTINEL, STAGE_VERIFY } sent_stage;

/* One refresh: which sentinel is being asked and what it said so far. */
typedef struct sent_query {
    int active;
    const char *reason;
    int again;                    /* a trigger arrived meanwhile: run once more */
    const char *again_reason;
    int again_prefer;
    int start, tried;             /* sentinels are tried start, start+1, ... */
    int node;                     /* being asked, -1 none */
    sent_stage stage;
    uintptr_t seq;                /* of the current attempt (SEQ_MASK wide); replies carry it */
    repl_sentinel_view view;      /* being assembled */
    redisAsyncContext *verify;    /* ROLE link to the named leader */
    ev_timer deadline;
} sent_query;

struct repl_sentinel {
    struct ev_loop *loop;
    sent_node *nodes;
    int n;
    char *name;
    char *password;               /* NULL: no AUTH */
    char *leader_password;        /* for the ROLE check on the leader; NULL: no AUTH */
    repl_sentinel_cb *cb;
    void *arg;
    repl_sentinel_failover_cb *fo_cb;
    void *fo_arg;
    int failover;                 /* what fo_cb was last told */

    ev_timer refresh;             /* every refresh_ms, first at once */
    ev_timer reconnect;           /* re-opens dropped pub/sub links */
    int started;                  /* the timers run (loop and cb were given) */
    sent_query q;
    int good;                     /* the sentinel that answered last */

    repl_sentinel_view last;      /* last delivered, normalized */
    int have_last;
    int in_cb, closing;
    char last_error[SENT_ERR_MAX]; /* why the last attempt failed (debugging) */
};

static void query_attempt_next(repl_sentinel *s);

static void sent_destroy(repl_sentinel *s) {
    free(s->nodes);
    free(s->name);
    free(s->password);
    free(s->leader_password);
    free(s);
}

/* Let go of a link we own: detach, then free (deferred by hiredis inside
 * one of its reply callbacks).  Not for onConnect/onDisconnect. */
static void link_close(redisAsyncContext **slot) {
    redisAsyncContext *ac = *slot;
    if (ac == NULL)
        return;
    *slot = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
}

/* Open a non-blocking link to a with owner as ac->data, with TCP
 * keepalive (a pub/sub link is otherwise silent: a vanished peer would
 * never be noticed).  Returns the context, or NULL when the attempt failed
 * at once (nothing to free, no callback will run). */
static redisAsyncContext *link_open(struct ev_loop *loop, const conf_addr *a, void *owner,
                                    redisConnectCallback *on_connect,
                                    redisDisconnectCallback *on_disconnect) {
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (ac == NULL)
        return NULL;
    if (ac->err != 0 || redisLibevAttach(loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisEnableKeepAlive(&ac->c); /* best effort */
    ac->data = owner;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* Queue AUTH password when one is set.  0 when queued or not needed. */
static int link_auth(redisAsyncContext *ac, redisCallbackFn *fn, const char *password,
                     uintptr_t seq) {
    const char *argv[2] = {"AUTH", password};
    if (password == NULL)
        return 0;
    return redisAsyncCommandArgv(ac, fn, MAKE_PRIV(TAG_AUTH, seq), 2, argv, NULL) == REDIS_OK
               ? 0 : -1;
}

static const char *ac_errstr(const redisAsyncContext *ac, const char *fallback) {
    return ac->c.err != 0 && ac->c.errstr[0] != '\0' ? ac->c.errstr : fallback;
}

/* Hand a view to the user if it differs from the last one.  Returns 1 when
 * s was freed by the callback (callers must return at once), else 0. */
static int sent_deliver(repl_sentinel *s, const repl_sentinel_view *v, const char *reason) {
    int gone;
    if (s->have_last && view_eq(&s->last, v))
        return 0;
    if (!s->have_last)
        reason = "start";
    if (!s->have_last || !addr_eq(&s->last.leader, &v->leader)) {
        /* a new leader: the failover (if one was announced) is over; the
         * user learns it from this view, fo_cb is not called for it */
        for (int i = 0; i < s->n; i++)
            s->nodes[i].failover_ms = 0;
        s->failover = 0;
    }
    s->last = *v;
    s->have_last = 1;
    s->in_cb++;
    s->cb(&s->last, reason, s->arg);
    s->in_cb--;
    gone = s->closing;
    if (gone && s->in_cb == 0)
        sent_destroy(s);
    return gone;
}

/* Start a refresh (or fold it into the running one).  prefer: the sentinel
 * to ask first, -1 for the one that answered last. */
static void sent_refresh(repl_sentinel *s, const char *reason, int prefer) {
    sent_query *q = &s->q;
    if (s->closing || s->n == 0)
        return;
    if (q->active) {
        if (!q->again || prefer >= 0) {
            q->again_reason = reason;
            q->again_prefer = prefer;
        }
        q->again = 1;
        return;
    }
    q->active = 1;
    q->reason = reason;
    q->start = prefer >= 0 ? prefer : s->good;
    q->tried = 0;
    q->node = -1;
    query_attempt_next(s);
}

/* The refresh ended (ok: q->view is verified).  Delivers, then runs the
 * folded-in refresh if any.  s may be gone afterwards. */
static void query_finish(repl_sentinel *s, int ok) {
    sent_query *q = &s->q;
    ev_timer_stop(s->loop, &q->deadline);
    link_close(&q->verify);
    q->active = 0;
    q->node = -1;
    q->seq = (q->seq + 1) & SEQ_MASK;
    if (ok && sent_deliver(s, &q->view, q->reason))
        return;
    if (q->again) {
        q->again = 0;
        sent_refresh(s, q->again_reason, q->again_prefer);
    }
}

/* The current attempt failed (reason printf-style): abandon its replies
 * and its leader link, ask the next sentinel. */
static void attempt_fail(repl_sentinel *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void attempt_fail(repl_sentinel *s, const char *fmt, ...) {
    sent_query *q = &s->q;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
    va_end(ap);
    ev_timer_stop(s->loop, &q->deadline);
    link_close(&q->verify);
    q->node = -1;
    q->seq = (q->seq + 1) & SEQ_MASK;
    query_attempt_next(s);
}

static void cmd_on_reply(redisAsyncContext *ac, void *r, void *privdata);
static void cmd_on_connect(const redisAsyncContext *cac, int status);
static void cmd_on_disconnect(const redisAsyncContext *cac, int status);
static void verify_on_reply(redisAsyncContext *ac, void *r, void *privdata);
static void verify_on_connect(const redisAsyncContext *cac, int status);
static void verify_on_disconnect(const redisAsyncContext *cac, int status);

/* Send the two questions to sentinel i, opening its command link when it
 * is down and the reconnect rate allows.  Returns 0 when queued (the
 * deadline is armed), -1 when this sentinel cannot be asked now. */
static int attempt_start(repl_sentinel *s, int i) {
    sent_query *q = &s->q;
    sent_node *node = &s->nodes[i];
    const char *master_argv[] = {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", s->name};
    const char *replicas_argv[] = {"SENTINEL", "REPLICAS", s->name};

    q->seq = (q->seq + 1) & SEQ_MASK;
    if (node->cmd == NULL) {
        long long now = repl_now_ms();
        if (node->cmd_tried_ms != 0 && now - node->cmd_tried_ms < SENT_RECONNECT_MS)
            return -1;
        node->cmd_tried_ms = now;
        node->cmd = link_open(s->loop, &node->addr, node, cmd_on_connect, cmd_on_disconnect);
        if (node->cmd == NULL)
            return -1;
        if (link_auth(node->cmd, cmd_on_reply, s->password, q->seq) != 0)
            goto fail;
    }
    if (redisAsyncCommandArgv(node->cmd, cmd_on_reply, MAKE_PRIV(TAG_MASTER, q->seq), 3,
                              master_argv, NULL) != REDIS_OK ||
        redisAsyncCommandArgv(node->cmd, cmd_on_reply, MAKE_PRIV(TAG_REPLICAS, q->seq), 3,
                              replicas_argv, NULL) != REDIS_OK)
        goto fail;
    q->node = i;
    q->stage = STAGE_SENTINEL;
    memset(&q->view, 0, sizeof q->view);
    ev_timer_set(&q->deadline, SENT_ATTEMPT_MS / 1000.0, 0.);
    ev_timer_start(s->loop, &q->deadline);
    return 0;

fail:
    link_close(&node->cmd);
    return -1;
}

/* Ask the next untried sentinel; when none is left, the refresh failed. */
static void query_attempt_next(repl_sentinel *s) {
    sent_query *q = &s->q;
    while (q->tried < s->n) {
        int i = (q->start + q->tried) % s->n;
        q->tried++;
        if (attempt_start(s, i) == 0)
            return;
    }
    query_finish(s, 0);
}

/* Both sentinel answers are in: ask the named leader for its ROLE. */
static void verify_start(repl_sentinel *s) {
    sent_query *q = &s->q;
    static const char *role_argv[] = {"ROLE"};
    q->stage = STAGE_VERIFY;
    q->verify = link_open(s->loop, &q->view.leader, s, verify_on_connect, verify_on_disconnect);
    if (q->verify == NULL) {
        attempt_fail(s, "leader %.128s:%d: connect failed", q->view.leader.host,
                     q->view.leader.port);
        return;
    }
    /* the leader's own password (backend-password); ROLE decides */
    if (link_auth(q->verify, verify_on_reply, s->leader_password, q->seq) != 0 ||
        redisAsyncCommandArgv(q->verify, verify_on_reply, MAKE_PRIV(TAG_ROLE, q->seq), 1,
                              role_argv, NULL) != REDIS_OK)
        attempt_fail(s, "leader %.128s:%d: ROLE could not be queued", q->view.leader.host,
                     q->view.leader.port);
}

/* Whether a reply with this privdata belongs to the current attempt on
 * node (at the given stage). */
static int query_owns(const repl_sentinel *s, int node, sent_stage stage, void *privdata) {
    return s->q.active && s->q.node == node && s->q.stage == stage &&
           PRIV_SEQ(privdata) == s->q.seq;
}

/* The command link of node dropped (already detached by the caller):
 * fail the attempt that was waiting on it. */
static void cmd_lost(sent_node *node, const char *why, const char *detail) {
    repl_sentinel *s = node->owner;
    node->cmd = NULL;
    if (s->q.active && s->q.node == node->index && s->q.stage == STAGE_SENTINEL)
        attempt_fail(s, "sentinel %.128s:%d: %s: %s", node->addr.host, node->addr.port, why,
                     detail);
}

static void cmd_on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    sent_node *node = ac->data;
    const redisReply *reply = r;
    repl_sentinel *s;
    char err[SENT_ERR_MAX];
    if (node == NULL)
        return;
    s = node->owner;
    if (reply == NULL) {
        ac->data = NULL;
        cmd_lost(node, "connection lost", ac_errstr(ac, "closed"));
        return;
    }
    if (PRIV_TAG(privdata) == TAG_AUTH) {
        if (reply->type == REDIS_REPLY_ERROR) {
            snprintf(err, sizeof err, "%.120s", reply->str);
            link_close(&node->cmd); /* deferred: we are in its callback */
            cmd_lost(node, "AUTH failed", err);
        }
        return;
    }
    if (!query_owns(s, node->index, STAGE_SENTINEL, privdata))
        return; /* a late answer to an abandoned attempt */
    if (PRIV_TAG(privdata) == TAG_MASTER) {
        if (parse_master_addr(reply, s->name, &s->q.view.leader, err, sizeof err) != 0)
            attempt_fail(s, "sentinel %.128s:%d: %s", node->addr.host, node->addr.port, err);
        return;
    }
    if (PRIV_TAG(privdata) == TAG_REPLICAS) {
        if (parse_replicas(reply, &s->q.view, err, sizeof err) != 0) {
            attempt_fail(s, "sentinel %.128s:%d: %s", node->addr.host, node->addr.port, err);
            return;
        }
        verify_start(s);
    }
}

static void cmd_on_connect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    sent_node *node = ac->data;
    if (node == NULL || status == REDIS_OK)
        return;
    ac->data = NULL; /* hiredis frees it after we return */
    cmd_lost(node, "connect failed", ac_errstr(ac, "error"));
}

static void cmd_on_disconnect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    sent_node *node = ac->data;
    (void)status;
    if (node == NULL)
        return;
    ac->data = NULL;
    cmd_lost(node, "connection lost", ac_errstr(ac, "closed by server"));
}

/* The leader link dropped (already detached): fail the attempt. */
static void verify_lost(repl_sentinel *s, const char *why, const char *detail) {
    s->q.verify = NULL;
    if (s->q.active && s->q.stage == STAGE_VERIFY)
        attempt_fail(s, "leader %.128s:%d: %s: %s", s->q.view.leader.host, s->q.view.leader.port,
                     why, detail);
}

static void verify_on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    repl_sentinel *s = ac->data;
    const redisReply *reply = r;
    char err[SENT_ERR_MAX];
    if (s == NULL)
        return;
    if (reply == NULL) {
        ac->data = NULL;
        verify_lost(s, "connection lost", ac_errstr(ac, "closed"));
        return;
    }
    if (PRIV_TAG(privdata) != TAG_ROLE || !query_owns(s, s->q.node, STAGE_VERIFY, privdata))
        return; /* AUTH on the leader: its answer does not matter, ROLE's does */
    if (check_role(reply, &s->q.view.leader, err, sizeof err) != 0) {
        attempt_fail(s, "%s", err);
        return;
    }
    s->good = s->q.node;
    query_finish(s, 1); /* closes this link (deferred by hiredis) */
}

static void verify_on_connect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    repl_sentinel *s = ac->data;
    if (s == NULL || status == REDIS_OK)
        return;
    ac->data = NULL;
    verify_lost(s, "connect failed", ac_errstr(ac, "error"));
}

static void verify_on_disconnect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    repl_sentinel *s = ac->data;
    (void)status;
    if (s == NULL)
        return;
    ac->data = NULL;
    verify_lost(s, "connection lost", ac_errstr(ac, "closed by server"));
}

static void deadline_fired(struct ev_loop *loop, ev_timer *w, int revents) {
    repl_sentinel *s = w->data;
    sent_query *q = &s->q;
    (void)loop;
    (void)revents;
    if (!q->active || q->node < 0)
        return;
    if (q->stage == STAGE_SENTINEL) {
        sent_node *node = &s->nodes[q->node];
        link_close(&node->cmd); /* an unresponsive link: a fresh one next time */
        attempt_fail(s, "sentinel %.128s:%d: no answer within %d ms", node->addr.host,
                     node->addr.port, SENT_ATTEMPT_MS);
    } else {
        attempt_fail(s, "leader %.128s:%d: no ROLE answer within %d ms", q->view.leader.host,
                     q->view.leader.port, SENT_ATTEMPT_MS);
    }
}

/* ---- pub/sub ------------------------------------------------------------ */

typedef struct {
    const char *p;
    size_t n;
} sent_tok;

/* Split a payload on spaces into at most max tokens; returns the count
 * (max + 1 when there were more). */
static int tokenize(const char *s, size_t n, sent_tok *t, int max) {
    int count = 0;
    size_t i = 0;
    while (i < n) {
        size_t j;
        while (i < n && s[i] == ' ')
            i++;
        if (i == n)
            break;
        j = i;
        while (j < n && s[j] != ' ')
            j++;
        if (count == max)
            return max + 1;
        t[count].p = s + i;
        t[count].n = j - i;
        count++;
        i = j;
    }
    return count;
}

static int tok_is(const sent_tok *t, const char *s) {
    return strlen(s) == t->n && memcmp(t->p, s, t->n) == 0;
}

/* The master an instance event ("<type> <name> <ip> <port> [@ <master> <ip>
 * <port>]") is about: its three tokens name, ip, port (in t), or NULL. */
static const sent_tok *event_master(const char *payload, size_t n, sent_tok t[8]) {
    int c = tokenize(payload, n, t, 8);
    if (c == 8 && tok_is(&t[4], "@"))
        return &t[5];
    return c == 4 && tok_is(&t[0], "master") ? &t[1] : NULL;
}

/* Whether an instance event concerns master `name`. */
static int event_mentions(const char *payload, size_t n, const char *name) {
    sent_tok t[8];
    const sent_tok *m = event_master(payload, n, t);
    return m != NULL && tok_is(&m[0], name);
}

/* Whether an instance event concerns our master at the leader's address
 * (one about an address we no longer follow is stale). */
static int event_about_leader(const repl_sentinel *s, const char *payload, size_t n) {
    sent_tok t[8];
    conf_addr a;
    const sent_tok *m = event_master(payload, n, t);
    return m != NULL && tok_is(&m[0], s->name) && s->have_last &&
           addr_set(&a, m[1].p, m[1].n, m[2].p, m[2].n) == 0 && addr_eq(&a, &s->last.leader);
}

/* Tell fo_cb whether some sentinel has a failover of the leader under way,
 * if that changed (announcements older than SENT_FAILOVER_MAX_MS lapse).
 * Returns 1 when s was freed inside the callback. */
static int failover_update(repl_sentinel *s, const char *why) {
    long long now = repl_now_ms();
    int active = 0, gone;
    for (int i = 0; i < s->n; i++) {
        sent_node *node = &s->nodes[i];
        if (node->failover_ms != 0 && now - node->failover_ms > SENT_FAILOVER_MAX_MS) {
            node->failover_ms = 0;
            why = "no news of the failover for 60 s";
        }
        active |= node->failover_ms != 0;
    }
    if (active == s->failover || s->fo_cb == NULL) {
        s->failover = active;
        return 0;
    }
    s->failover = active;
    s->in_cb++;
    s->fo_cb(active, why, s->fo_arg);
    s->in_cb--;
    gone = s->closing;
    if (gone && s->in_cb == 0)
        sent_destroy(s);
    return gone;
}

/* +switch-master "<name> <oldip> <oldport> <newip> <newport>" for our
 * master: deliver the view it implies (the new leader, the replicas we knew
 * minus it), then refresh, asking the announcing sentinel first. */
static void on_switch_master(repl_sentinel *s, sent_node *node, const char *payload, size_t n,
                             const char *reason) {
    sent_tok t[5];
    repl_sentinel_view v;
    if (tokenize(payload, n, t, 5) != 5 || !tok_is(&t[0], s->name))
        return;
    if (s->have_last) {
        memset(&v, 0, sizeof v);
        if (addr_set(&v.leader, t[3].p, t[3].n, t[4].p, t[4].n) == 0) {
            for (int i = 0; i < s->last.replica_count; i++)
                if (!addr_eq(&s->last.replicas[i], &v.leader))
                    v.replicas[v.replica_count++] = s->last.replicas[i];
            if (sent_deliver(s, &v, reason))
                return;
        }
    }
    sent_refresh(s, reason, node->index);
}

/* One pub/sub message: [kind, channel, payload]. */
static void sub_message(repl_sentinel *s, sent_node *node, const redisReply *reply) {
    const redisReply *kind, *chan, *payload;
    const char *reason = NULL;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return;
    kind = reply->element[0];
    chan = reply->element[1];
    payload = reply->element[2];
    if (!reply_is_text(kind) || !reply_is_text(chan))
        return;
    if (str_is(kind->str, kind->len, "subscribe")) {
        /* the first channel confirmed again after a drop: we may have
         * missed events meanwhile */
        if (str_is(chan->str, chan->len, sent_channels[0].name)) {
            if (node->subscribed_once)
                sent_refresh(s, "sentinel reconnected", node->index);
            node->subscribed_once = 1;
        }
        return;
    }
    if (!str_is(kind->str, kind->len, "message") || !reply_is_text(payload))
        return;
    sent_ev_kind ev = EV_TOPOLOGY;
    for (int i = 0; i < SENT_NCHANNELS; i++)
        if (str_is(chan->str, chan->len, sent_channels[i].name)) {
            reason = sent_channels[i].name;
            ev = sent_channels[i].kind;
        }
    if (reason == NULL)
        return;
    if (ev != EV_TOPOLOGY) {
        if (event_about_leader(s, payload->str, payload->len)) {
            node->failover_ms = ev == EV_FO_START ? repl_now_ms() : 0;
            failover_update(s, reason);
        }
    } else if (reason == sent_channels[0].name) {
        on_switch_master(s, node, payload->str, payload->len, reason);
    } else if (event_mentions(payload->str, payload->len, s->name)) {
        sent_refresh(s, reason, -1);
    }
}

static void sub_on_reply(redisAsyncContext *ac, void *r, void *privdata);

/* Queue SUBSCRIBE to every channel on node's pub/sub link. */
static int sub_send_subscribe(sent_node *node) {
    const char *argv[1 + SENT_NCHANNELS];
    argv[0] = "SUBSCRIBE";
    for (int i = 0; i < SENT_NCHANNELS; i++)
        argv[1 + i] = sent_channels[i].name;
    return redisAsyncCommandArgv(node->sub, sub_on_reply, MAKE_PRIV(TAG_SUB, 0),
                                 1 + SENT_NCHANNELS, argv, NULL) == REDIS_OK ? 0 : -1;
}

static void sub_on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    sent_node *node = ac->data;
    const redisReply *reply = r;
    if (node == NULL)
        return;
    if (reply == NULL) {
        ac->data = NULL;
        node->sub = NULL; /* the reconnect timer brings it back */
        node->failover_ms = 0;
        return;
    }
    if (PRIV_TAG(privdata) == TAG_AUTH) {
        /* SUBSCRIBE goes out only after AUTH succeeded: a NOAUTH error in
         * subscribed mode would have no callback in hiredis 0.14 */
        if (reply->type == REDIS_REPLY_ERROR || sub_send_subscribe(node) != 0)
            link_close(&node->sub);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        link_close(&node->sub);
        return;
    }
    sub_message(node->owner, node, reply);
}

static void sub_on_connect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    sent_node *node = ac->data;
    if (node == NULL || status == REDIS_OK)
        return;
    ac->data = NULL;
    node->sub = NULL;
    node->failover_ms = 0;
}

static void sub_on_disconnect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    sent_node *node = ac->data;
    (void)status;
    if (node == NULL)
        return;
    ac->data = NULL;
    node->sub = NULL;
    node->failover_ms = 0;   /* unheard from: the next refresh tick tells fo_cb */
}

/* Open node's pub/sub link if it is down and the reconnect rate allows. */
static void sub_ensure(repl_sentinel *s, sent_node *node) {
    long long now = repl_now_ms();
    if (node->sub != NULL ||
        (node->sub_tried_ms != 0 && now - node->sub_tried_ms < SENT_RECONNECT_MS))
        return;
    node->sub_tried_ms = now;
    node->sub = link_open(s->loop, &node->addr, node, sub_on_connect, sub_on_disconnect);
    if (node->sub == NULL)
        return;
    if (s->password != NULL) {
        if (link_auth(node->sub, sub_on_reply, s->password, 0) != 0)
            link_close(&node->sub);
    } else if (sub_send_subscribe(node) != 0) {
        link_close(&node->sub);
    }
}

static void refresh_fired(struct ev_loop *loop, ev_timer *w, int revents) {
    repl_sentinel *s = w->data;
    (void)loop;
    (void)revents;
    if (failover_update(s, "the sentinel that announced the failover is gone"))
        return;
    for (int i = 0; i < s->n; i++)
        sub_ensure(s, &s->nodes[i]);
    if (!s->q.active) /* a slow refresh is not queued behind: the next tick */
        sent_refresh(s, "refresh", -1);
}

static void reconnect_fired(struct ev_loop *loop, ev_timer *w, int revents) {
    repl_sentinel *s = w->data;
    (void)loop;
    (void)revents;
    for (int i = 0; i < s->n; i++)
        sub_ensure(s, &s->nodes[i]);
}

/* Contract beyond the header: with no sentinel, a NULL loop/cb or an empty
 * name the object is inert (never calls cb) but still valid to free.
 * Sentinel addresses are copied; n <= 0 means none.  Nothing happens before
 * the loop runs: the first refresh and the subscriptions start from a timer
 * that fires at once. */
repl_sentinel *repl_sentinel_new(struct ev_loop *loop, const conf_addr *sentinels, int n,
                                 const char *name, const char *password,
                                 const char *leader_password, int refresh_ms,
                                 repl_sentinel_cb *cb, void *arg) {
    repl_sentinel *s = repl_xcalloc(1, sizeof *s);
    size_t len;

    if (sentinels == NULL || n < 0)
        n = 0;
    if (refresh_ms <= 0)
        refresh_ms = SENT_DEFAULT_REFRESH_MS;
    s->loop = loop;
    s->cb = cb;
    s->arg = arg;
    s->n = n;
    s->nodes = repl_xcalloc(n > 0 ? (size_t)n : 1, sizeof *s->nodes);
    for (int i = 0; i < n; i++) {
        s->nodes[i].owner = s;
        s->nodes[i].index = i;
        s->nodes[i].addr = sentinels[i];
        s->nodes[i].addr.host[sizeof s->nodes[i].addr.host - 1] = '\0';
    }
    len = name != NULL ? strlen(name) : 0;
    s->name = repl_xcalloc(len + 1, 1);
    if (len > 0)
        memcpy(s->name, name, len);
    if (password != NULL && password[0] != '\0') {
        len = strlen(password);
        s->password = repl_xcalloc(len + 1, 1);
        memcpy(s->password, password, len);
    }
    if (leader_password != NULL && leader_password[0] != '\0') {
        len = strlen(leader_password);
        s->leader_password = repl_xcalloc(len + 1, 1);
        memcpy(s->leader_password, leader_password, len);
    }
    s->q.node = -1;
    if (loop == NULL || cb == NULL || s->name[0] == '\0' || n == 0)
        return s; /* inert */

    ev_now_update(loop);
    ev_timer_init(&s->q.deadline, deadline_fired, SENT_ATTEMPT_MS / 1000.0, 0.);
    s->q.deadline.data = s;
    ev_timer_init(&s->refresh, refresh_fired, 0., refresh_ms / 1000.0);
    s->refresh.data = s;
    ev_timer_init(&s->reconnect, reconnect_fired, SENT_RECONNECT_MS / 1000.0,
                  SENT_RECONNECT_MS / 1000.0);
    s->reconnect.data = s;
    ev_timer_start(loop, &s->refresh);
    ev_timer_start(loop, &s->reconnect);
    s->started = 1;
    return s;
}

void repl_sentinel_on_failover(repl_sentinel *s, repl_sentinel_failover_cb *cb, void *arg) {
    s->fo_cb = cb;
    s->fo_arg = arg;
}

void repl_sentinel_free(repl_sentinel *s) {
    if (s == NULL || s->closing)
        return;
    s->closing = 1;
    if (s->started) {
        ev_timer_stop(s->loop, &s->refresh);
        ev_timer_stop(s->loop, &s->reconnect);
        ev_timer_stop(s->loop, &s->q.deadline);
    }
    link_close(&s->q.verify);
    for (int i = 0; i < s->n; i++) {
        link_close(&s->nodes[i].cmd);
        link_close(&s->nodes[i].sub);
    }
    if (s->in_cb == 0)
        sent_destroy(s); /* else the outermost sent_deliver does */
}

/* ------------------------------------------------------------------------ */
/* the blocking query                                                        */

/* Run one command on a blocking link with what is left of the time budget
 * (deadline_ms, monotonic).  Returns the reply (caller frees) or NULL with
 * a reason that names the command by label (never by its arguments: AUTH
 * carries the password). */
static redisReply *sync_command(redisContext *c, long long deadline_ms, const char *label,
                                int argc, const char **argv, char *err, size_t errlen) {
    long long left = deadline_ms - repl_now_ms();
    struct timeval tv;
    redisReply *r;
    if (left <= 0) {
        snprintf(err, errlen, "%s: timed out", label);
        return NULL;
    }
    tv.tv_sec = left / 1000;
    tv.tv_usec = (left % 1000) * 1000;
    redisSetTimeout(c, tv);
    r = redisCommandArgv(c, argc, argv, NULL);
    if (r == NULL)
        snprintf(err, errlen, "%s: %s", label, c->errstr[0] != '\0' ? c->errstr : "I/O error");
    return r;
}

/* Connect to a with what is left of the budget and AUTH when a password is
 * given.  strict_auth: an AUTH error fails the link (sentinels); otherwise
 * it is ignored (the leader, where ROLE decides).  Returns the context or
 * NULL with a reason. */
static redisContext *sync_connect(const conf_addr *a, const char *password, int strict_auth,
                                  long long deadline_ms, char *err, size_t errlen) {
    long long left = deadline_ms - repl_now_ms();
    struct timeval tv;
    redisContext *c;
    const char *auth_argv[2] = {"AUTH", password};
    redisReply *r;

    if (left <= 0) {
        snprintf(err, errlen, "connect: timed out");
        return NULL;
    }
    tv.tv_sec = left / 1000;
    tv.tv_usec = (left % 1000) * 1000;
    c = redisConnectWithTimeout(a->host, a->port, tv);
    if (c == NULL) {
        snprintf(err, errlen, "connect: out of memory");
        return NULL;
    }
    if (c->err != 0) {
        snprintf(err, errlen, "connect: %s", c->errstr);
        goto fail;
    }
    if (password == NULL)
        return c;
    r = sync_command(c, deadline_ms, "AUTH", 2, auth_argv, err, errlen);
    if (r == NULL)
        goto fail;
    if (r->type == REDIS_REPLY_ERROR && strict_auth) {
        snprintf(err, errlen, "AUTH failed: %.120s", r->str);
        freeReplyObject(r);
        goto fail;
    }
    freeReplyObject(r);
    return c;

fail:
    redisFree(c);
    return NULL;
}

/* Ask one sentinel and verify the leader it names, within timeout_ms.
 * Returns 0 with *v filled (normalized), or -1 with a reason. */
static int sync_ask(const conf_addr *sentinel, const char *name, const char *password,
                    const char *leader_password,
                    int timeout_ms, repl_sentinel_view *v, char *err, size_t errlen) {
    long long deadline = repl_now_ms() + timeout_ms;
    const char *master_argv[] = {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", name};
    const char *replicas_argv[] = {"SENTINEL", "REPLICAS", name};
    const char *role_argv[] = {"ROLE"};
    redisContext *sc = NULL, *lc = NULL;
    redisReply *r = NULL;
    int rc = -1;

    memset(v, 0, sizeof *v);
    sc = sync_connect(sentinel, password, 1, deadline, err, errlen);
    if (sc == NULL)
        goto done;
    if ((r = sync_command(sc, deadline, master_argv[1], 3, master_argv, err, errlen)) == NULL ||
        parse_master_addr(r, name, &v->leader, err, errlen) != 0)
        goto done;
    freeReplyObject(r);
    if ((r = sync_command(sc, deadline, "SENTINEL REPLICAS", 3, replicas_argv, err, errlen)) ==
            NULL ||
        parse_replicas(r, v, err, errlen) != 0)
        goto done;
    freeReplyObject(r);
    r = NULL;

    lc = sync_connect(&v->leader, leader_password, 0, deadline, err, errlen);
    if (lc == NULL) {
        char why[SENT_ERR_MAX];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "leader %.128s:%d: %.300s", v->leader.host, v->leader.port, why);
        goto done;
    }
    if ((r = sync_command(lc, deadline, "ROLE", 1, role_argv, err, errlen)) == NULL ||
        check_role(r, &v->leader, err, errlen) != 0)
        goto done;
    rc = 0;

done:
    if (r != NULL)
        freeReplyObject(r);
    if (sc != NULL)
        redisFree(sc);
    if (lc != NULL)
        redisFree(lc);
    return rc;
}

int repl_sentinel_query_sync(const conf_addr *sentinels, int n, const char *name,
                             const char *password, const char *leader_password, int timeout_ms,
                             repl_sentinel_view *view,
                             char *err, size_t errlen) {
    char scratch[SENT_ERR_MAX], why[SENT_ERR_MAX];
    size_t used;

    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    if (view == NULL) {
        snprintf(err, errlen, "sentinel query: no view to fill");
        return -1;
    }
    if (sentinels == NULL || n <= 0) {
        snprintf(err, errlen, "sentinel query: no sentinel configured");
        return -1;
    }
    if (name == NULL || name[0] == '\0') {
        snprintf(err, errlen, "sentinel query: no master name");
        return -1;
    }
    if (password != NULL && password[0] == '\0')
        password = NULL;
    if (leader_password != NULL && leader_password[0] == '\0')
        leader_password = NULL;
    if (timeout_ms <= 0)
        timeout_ms = SENT_DEFAULT_SYNC_MS;

    snprintf(err, errlen, "no sentinel could say where master '%.64s' is:", name);
    for (int i = 0; i < n; i++) {
        repl_sentinel_view v;
        if (sync_ask(&sentinels[i], name, password, leader_password, timeout_ms, &v, why,
                     sizeof why) == 0) {
            *view = v;
            err[0] = '\0';
            return 0;
        }
        used = strlen(err);
        if (used + 1 < errlen)
            snprintf(err + used, errlen - used, " [%.255s:%d] %s", sentinels[i].host,
                     sentinels[i].port, why);
    }
    return -1;
}
