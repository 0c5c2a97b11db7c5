/* quorum_bg.c -- mode quorum background repair: anti-entropy and hinted
 * hand-off (see quorum_bg.h for what they do).
 *
 * Layers, bottom up:
 *
 *   links     one hiredis async link per node (qnode).  A 100 ms tick
 *             reconnects down nodes when their back-off ran out and drops
 *             links that stall (connect not done in connect_timeout_ms, a
 *             command unanswered for cmd_timeout_ms).
 *   commands  qbg_send() queues one command with a reply function and a
 *             context; the function runs exactly once, with the reply or
 *             with NULL when the link is lost or the module is freed.
 *   tasks     an anti-entropy batch (ae_batch) and a hint round
 *             (hint_round / hint_job) are reference counted by the
 *             commands they have in flight; when the count drops to zero the
 *             task moves to its next phase or ends.
 *
 * hiredis 0.14.1 lifetime rules (as in health.c): a reply callback may call
 * redisAsyncFree() on its own context (hiredis defers it until the callback
 * returns, then runs the remaining callbacks with NULL); onConnect(error) and
 * onDisconnect() run while hiredis is already freeing the context, so there
 * we only detach (ac->data = NULL).  A non-NULL reply therefore only ever
 * comes from the node's current link.  Our hiredis privdata (qcmd) does not
 * point into anything that can go away before it runs: the module itself is
 * kept alive by its count of commands in flight (bg->ops) and only destroyed
 * when repl_qbg_free was called and that count is zero.
 *
 * Anti-entropy batch:
 *
 *   SCAN on node s ──> keys ──> per up node j: FCALL_RO rcp_vhead (the keys
 *   homed on j) ──> per key: newest version among the answers; every home
 *   node that answered "missing" or older is a target
 *        tombstone newest: FCALL rcp_vdel to each target (ver, its pttl)
 *        live newest:      FCALL_RO rcp_vget on a holder ──> rcp_vset to each
 *   ──> SET rcproxy:ae:cursor <next> on s, next batch (token bucket).
 */
#include "replication/quorum_bg.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h> /* static functions: included here only */

#include "replication/quorum_scripts.h"
#include "replication/repl_mem.h"

#define QBG_TICK_S 0.1               /* housekeeping, token refill */
#define QBG_DEFAULT_CONNECT_MS 1000
#define QBG_CMD_TIMEOUT_FACTOR 3     /* a reply may take this many connect timeouts */
#define QBG_BACKOFF_MIN_MS 100
#define QBG_BACKOFF_MAX_MS 2000
#define QBG_AE_BATCH_MIN 10          /* SCAN COUNT bounds */
#define QBG_AE_BATCH_MAX 1000
#define QBG_AE_PAUSE_MS 1000         /* after a pass that repaired nothing */
#define QBG_HINT_INTERVAL_MS 500
#define QBG_HINT_CHUNK 100           /* XRANGE COUNT */
#define QBG_HINT_MAX_CHUNKS 10       /* per stream per round */
#define QBG_CURSOR_KEY "rcproxy:ae:cursor"
#define QBG_RESERVED_PREFIX "rcproxy:"
#define QBG_ID_MAX 272               /* "host:port": 255 + ':' + 5 digits, rounded up */
#define QBG_STREAM_MAX (QBG_ID_MAX + sizeof REPL_QUORUM_HINT_PREFIX)
#define QBG_ENTRY_ID_MAX 48          /* "<ms>-<seq>": two 20-digit numbers */

#define VLEN REPL_QUORUM_VERSION_LEN

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parse an unsigned decimal that fills s[0..n) exactly.  Returns 0 or -1. */
static int parse_ull(const char *s, size_t n, unsigned long long *out) {
    unsigned long long v = 0;
    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int reply_is_str(const redisReply *r) {
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static int bytes_eq(const char *p, size_t n, const char *s) {
    return strlen(s) == n && memcmp(p, s, n) == 0;
}

/* ------------------------------------------------------------------------ */
/* state                                                                     */

typedef enum { QN_DOWN = 0, QN_CONNECTING, QN_UP } qn_state;

typedef struct qnode {
    struct repl_qbg *bg;
    int idx;
    char host[256];
    int port;
    char id[QBG_ID_MAX];             /* "host:port" */
    char stream[QBG_STREAM_MAX];     /* rcproxy:hints:<id>: the hints FOR this node */
    redisAsyncContext *ac;           /* NULL while down */
    qn_state state;
    unsigned gen;                    /* bumped whenever the link changes */
    int tcp_up;                      /* onConnect(OK) seen */
    int handshake_left;              /* handshake replies still expected */
    int inflight;                    /* commands queued on the link, not answered */
    long long progress_ms;           /* last reply, or when inflight left 0 */
    long long connect_ms;            /* when the current connect started */
    long long retry_ms;              /* down: reconnect at or after this */
    int backoff_ms;                  /* the next back-off */
    int cursor_loaded;               /* rcproxy:ae:cursor was read from the node */
    unsigned long long cursor;       /* anti-entropy SCAN cursor on this node */
} qnode;

struct ae_batch;
struct hint_round;

struct repl_qbg {
    struct ev_loop *loop;
    const repl_ring *ring;
    qnode *nodes;
    int nnodes, n, rate;
    long long tombstone_ttl_ms;
    char *user, *password;           /* NULL: none */
    int connect_timeout_ms, cmd_timeout_ms;
    ev_timer tick;                   /* every QBG_TICK_S */
    ev_timer kick;                   /* 0 s one-shot: next AE batch at once */
    int started, closing;
    long ops;                        /* commands in flight + holds by repl_qbg_free */
    int *scratch_home;               /* n ints for a preference list */

    /* anti-entropy */
    double tokens;                   /* keys that may be scanned now */
    long long tokens_ms;             /* last refill */
    int batch_count;                 /* SCAN COUNT */
    struct ae_batch *ae_cur;         /* the batch in flight, NULL: idle */
    int ae_node;                     /* node being walked in this pass */
    int pass_skipped;                /* a node was down in this pass */
    long long pass_work;             /* keys found needing repair in this pass */
    long long pause_until_ms;

    /* hinted hand-off */
    struct hint_round *hint_cur;
    long long hint_next_ms;

    repl_qbg_stats st;
};

static void node_connect(qnode *node);
static void ae_kick(repl_qbg *bg);

/* ------------------------------------------------------------------------ */
/* links                                                                     */

/* The link of node is gone or going (hiredis frees it, or node_drop does):
 * forget it and schedule the reconnect after the back-off.  Never frees. */
static void node_detach(qnode *node) {
    if (node->ac != NULL)
        node->ac->data = NULL;
    node->ac = NULL;
    node->state = QN_DOWN;
    node->gen++;
    node->tcp_up = 0;
    node->handshake_left = 0;
    node->inflight = 0;
    node->retry_ms = mono_ms() + node->backoff_ms;
    node->backoff_ms *= 2;
    if (node->backoff_ms > QBG_BACKOFF_MAX_MS)
        node->backoff_ms = QBG_BACKOFF_MAX_MS;
}

/* Let go of node's link ourselves: detach, then free it (at once, running
 * every pending callback with NULL; or deferred by hiredis when called from
 * a reply callback of that link).  Not for onConnect/onDisconnect. */
static void node_drop(qnode *node) {
    redisAsyncContext *ac = node->ac;
    node_detach(node);
    if (ac != NULL)
        redisAsyncFree(ac);
}

static void node_on_connect(const redisAsyncContext *cac, int status) {
    qnode *node = cac->data;
    if (node == NULL)
        return;
    if (status != REDIS_OK) {
        node_detach(node); /* hiredis frees the context when we return */
        return;
    }
    node->tcp_up = 1;
    node->progress_ms = mono_ms(); /* the handshake's replies are timed from here */
}

static void node_on_disconnect(const redisAsyncContext *cac, int status) {
    qnode *node = cac->data;
    (void)status;
    if (node != NULL)
        node_detach(node);
}

/* ------------------------------------------------------------------------ */
/* commands                                                                  */

/* Runs once per queued command: r is the reply, or NULL when the link was
 * lost or the module is being freed (then nothing new may be started: sends
 * fail).  r is freed by hiredis after the function returns. */
typedef void qbg_reply_fn(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                          intptr_t aux);

typedef struct qcmd {
    repl_qbg *bg;
    int node;
    unsigned gen;
    qbg_reply_fn *fn;
    void *ctx;
    intptr_t aux;
} qcmd;

static void qbg_destroy(repl_qbg *bg) {
    free(bg->scratch_home);
    free(bg->nodes);
    free(bg->user);
    free(bg->password);
    free(bg);
}

static void qbg_unref(repl_qbg *bg) {
    if (--bg->ops == 0 && bg->closing)
        qbg_destroy(bg);
}

/* The hiredis reply callback of every command: link bookkeeping, then the
 * command's function, then the module reference it held. */
static void qbg_on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    qcmd *c = privdata;
    repl_qbg *bg = c->bg;
    qnode *node = &bg->nodes[c->node];
    const redisReply *reply = r;

    if (node->ac == ac && node->gen == c->gen) {
        if (reply == NULL) {
            node_detach(node); /* hiredis is tearing the link down */
        } else {
            node->inflight--;
            node->progress_ms = mono_ms();
        }
    }
    c->fn(bg, node, reply, c->ctx, c->aux);
    /* the node lost the library (FUNCTION FLUSH, a restart we did not see):
     * a new link loads it again */
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && node->ac == ac &&
        node->gen == c->gen && strncmp(reply->str, "ERR Function not found", 22) == 0)
        node_drop(node);
    free(c);
    qbg_unref(bg);
}

/* Queue argv (lens NULL: NUL-terminated strings) on node's link.  Returns 0
 * when queued: fn then runs exactly once, later (never inside this call).
 * Returns -1 when not queued -- module closing, node not up (handshake: also
 * while connecting), hiredis refused -- and fn never runs. */
static int qbg_send(qnode *node, int handshake, qbg_reply_fn *fn, void *ctx, intptr_t aux,
                    int argc, const char **argv, const size_t *lens) {
    repl_qbg *bg = node->bg;
    qcmd *c;
    if (bg->closing || node->ac == NULL)
        return -1;
    if (node->state != QN_UP && !(handshake && node->state == QN_CONNECTING))
        return -1;
    c = repl_xcalloc(1, sizeof *c);
    c->bg = bg;
    c->node = node->idx;
    c->gen = node->gen;
    c->fn = fn;
    c->ctx = ctx;
    c->aux = aux;
    if (redisAsyncCommandArgv(node->ac, qbg_on_reply, c, argc, argv, lens) != REDIS_OK) {
        free(c);
        return -1;
    }
    if (node->inflight++ == 0)
        node->progress_ms = mono_ms();
    bg->ops++;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the handshake: AUTH, FUNCTION LOAD REPLACE, the stored cursor             */

enum { HS_AUTH = 1, HS_LOAD, HS_CURSOR };

static void hs_on_reply(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                        intptr_t step) {
    (void)ctx;
    if (r == NULL || node->state != QN_CONNECTING)
        return; /* link lost: the node is down already */
    if (r->type == REDIS_REPLY_ERROR && step != HS_CURSOR) {
        node_drop(node); /* AUTH or FUNCTION LOAD refused: retry after the back-off */
        return;
    }
    if (step == HS_CURSOR) {
        /* nil, an error or garbage: start the walk from the beginning */
        unsigned long long cur;
        if (!reply_is_str(r) || parse_ull(r->str, r->len, &cur) != 0)
            cur = 0;
        if (r->type == REDIS_REPLY_ERROR)
            bg->st.ae_errors++;
        node->cursor = cur;
        node->cursor_loaded = 1;
    }
    if (--node->handshake_left == 0) {
        node->state = QN_UP;
        node->backoff_ms = QBG_BACKOFF_MIN_MS;
    }
}

/* Open node's link and queue the handshake.  On an immediate failure the
 * node stays down with its back-off advanced. */
static void node_connect(qnode *node) {
    repl_qbg *bg = node->bg;
    redisAsyncContext *ac = redisAsyncConnect(node->host, node->port);
    const char *argv[4];
    int argc;

    if (ac == NULL)
        goto fail_noctx;
    if (ac->err != 0 || redisLibevAttach(bg->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac); /* not connected, no callbacks set: nothing runs */
        goto fail_noctx;
    }
    ac->data = node;
    redisAsyncSetConnectCallback(ac, node_on_connect);
    redisAsyncSetDisconnectCallback(ac, node_on_disconnect);
    node->ac = ac;
    node->state = QN_CONNECTING;
    node->gen++;
    node->tcp_up = 0;
    node->inflight = 0;
    node->handshake_left = 0;
    node->connect_ms = mono_ms();

    if (bg->password != NULL) {
        argc = 0;
        argv[argc++] = "AUTH";
        if (bg->user != NULL)
            argv[argc++] = bg->user;
        argv[argc++] = bg->password;
        if (qbg_send(node, 1, hs_on_reply, NULL, HS_AUTH, argc, argv, NULL) != 0)
            goto fail;
        node->handshake_left++;
    }
    argv[0] = "FUNCTION";
    argv[1] = "LOAD";
    argv[2] = "REPLACE";
    argv[3] = REPL_QUORUM_LIBRARY;
    if (qbg_send(node, 1, hs_on_reply, NULL, HS_LOAD, 4, argv, NULL) != 0)
        goto fail;
    node->handshake_left++;
    if (!node->cursor_loaded) {
        argv[0] = "GET";
        argv[1] = QBG_CURSOR_KEY;
        if (qbg_send(node, 1, hs_on_reply, NULL, HS_CURSOR, 2, argv, NULL) != 0)
            goto fail;
        node->handshake_left++;
    }
    return;

fail:
    node_drop(node);
    return;
fail_noctx:
    node_detach(node);
}

/* Per tick: reconnect a down node when its back-off ran out; drop a link
 * whose connect or oldest unanswered command took too long. */
static void node_watch(qnode *node, long long now) {
    repl_qbg *bg = node->bg;
    if (node->ac == NULL) {
        if (now >= node->retry_ms)
            node_connect(node);
        return;
    }
    if (!node->tcp_up && now - node->connect_ms > bg->connect_timeout_ms) {
        node_drop(node);
        return;
    }
    if (node->inflight > 0 && now - node->progress_ms > bg->cmd_timeout_ms)
        node_drop(node);
}

static int node_up(const qnode *node) {
    return node->state == QN_UP;
}

/* The key's home nodes (bg->n entries of room) into out; returns how many
 * were written (0 on a bad key or ring). */
static int home_of(repl_qbg *bg, const char *key, size_t len, int *out) {
    int k = repl_ring_preference(bg->ring, key, len, bg->n, out);
    return k < 0 ? 0 : k;
}

static int is_reserved(const char *key, size_t len) {
    size_t p = sizeof QBG_RESERVED_PREFIX - 1;
    return len >= p && memcmp(key, QBG_RESERVED_PREFIX, p) == 0;
}

/* ------------------------------------------------------------------------ */
/* anti-entropy                                                              */

enum { AEH_NONE = 0, AEH_MISSING, AEH_PRESENT, AEH_FOREIGN };
enum { AE_SCAN = 0, AE_HEAD, AE_REPAIR };

/* One home node's answer about one key. */
typedef struct ae_head {
    signed char st;          /* AEH_*: NONE = not asked or no answer */
    unsigned char tomb;      /* 1: the copy is a tombstone */
    char ver[VLEN];
    long long pttl;
} ae_head;

typedef struct ae_batch {
    repl_qbg *bg;
    int scan_node;
    int refs;                /* commands in flight + the phase's own hold */
    int phase;
    int scan_ok;             /* the SCAN answered: next_cursor is valid */
    unsigned long long next_cursor;
    size_t nkeys;
    char **keys;             /* copies; klen[i] bytes each */
    size_t *klen;
    int *home;               /* nkeys * n: home nodes of key i at [i * n] */
    int *nhome;
    ae_head *heads;          /* parallel to home */
    int *newest;             /* slot of the newest copy, -1: nothing to repair */
    size_t **sent;           /* per node: key indexes of its VHEAD, in order */
    size_t *nsent;
} ae_batch;

static void ae_batch_free(ae_batch *b) {
    repl_qbg *bg = b->bg;
    for (size_t i = 0; i < b->nkeys; i++)
        free(b->keys[i]);
    if (b->sent != NULL)
        for (int j = 0; j < bg->nnodes; j++)
            free(b->sent[j]);
    free(b->sent);
    free(b->nsent);
    free(b->keys);
    free(b->klen);
    free(b->home);
    free(b->nhome);
    free(b->heads);
    free(b->newest);
    free(b);
}

static void ae_release(ae_batch *b);

static void ae_on_cursor_set(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                             intptr_t aux) {
    (void)node;
    (void)ctx;
    (void)aux;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        bg->st.ae_errors++;
}

/* The batch is over: store the cursor on the scanned node, advance the walk,
 * free the batch and ask for the next one. */
static void ae_finish(ae_batch *b) {
    repl_qbg *bg = b->bg;
    qnode *node = &bg->nodes[b->scan_node];

    bg->ae_cur = NULL;
    if (!bg->closing) {
        if (b->scan_ok) {
            char cur[24];
            const char *argv[3] = {"SET", QBG_CURSOR_KEY, cur};
            node->cursor = b->next_cursor;
            snprintf(cur, sizeof cur, "%llu", b->next_cursor);
            /* a lost update only repeats batches after a restart */
            (void)qbg_send(node, 0, ae_on_cursor_set, NULL, 0, 3, argv, NULL);
            if (b->next_cursor == 0)
                bg->ae_node++; /* this node's walk is complete */
        } else {
            bg->pass_skipped = 1;
            bg->ae_node++;
        }
        bg->st.ae_node = bg->ae_node < bg->nnodes ? bg->ae_node : 0;
        bg->st.ae_cursor = bg->nodes[bg->st.ae_node].cursor;
        ae_kick(bg);
    }
    ae_batch_free(b);
}

/* Answer of a write (rcp_vset / rcp_vdel) to a stale home node. */
static void ae_on_write(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                        intptr_t aux) {
    (void)node;
    (void)aux;
    if (r != NULL) {
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[0]->type == REDIS_REPLY_INTEGER) {
            if (r->element[0]->integer == REPL_QUORUM_APPLIED)
                bg->st.ae_keys_repaired++;
        } else {
            bg->st.ae_errors++;
        }
    }
    ae_release(ctx);
}

/* Copy (ver, tomb, value, pttl) of key k to home node `target`.  A copy
 * whose TTL ran out (pttl 0 / -2) is not written. */
static void ae_write(ae_batch *b, size_t k, int target, int tomb, const char *ver,
                     const char *val, size_t vlen, long long pttl) {
    repl_qbg *bg = b->bg;
    char ttl[24];
    const char *argv[8];
    size_t lens[8];
    int argc = 0;

    if (pttl == 0 || pttl < -1)
        return;
    if (tomb)
        snprintf(ttl, sizeof ttl, "%lld", pttl > 0 ? pttl : bg->tombstone_ttl_ms);
    else
        snprintf(ttl, sizeof ttl, "%lld", pttl > 0 ? pttl : 0LL);
#define ARG(p, l) (argv[argc] = (p), lens[argc] = (l), argc++)
    ARG("FCALL", 5);
    ARG(tomb ? "rcp_vdel" : "rcp_vset", 8);
    ARG("1", 1);
    ARG(b->keys[k], b->klen[k]);
    ARG(ver, VLEN);
    if (!tomb)
        ARG(val, vlen);
    ARG(ttl, strlen(ttl));
    ARG("PX", 2);
#undef ARG
    if (qbg_send(&bg->nodes[target], 0, ae_on_write, b, 0, argc, argv, lens) == 0)
        b->refs++;
}

/* Slot s of key k must get the newest copy: it answered missing or older. */
static int ae_is_target(const ae_batch *b, size_t k, int s) {
    const ae_head *h = &b->heads[k * b->bg->n + s];
    const ae_head *best = &b->heads[k * b->bg->n + b->newest[k]];
    if (s == b->newest[k])
        return 0;
    return h->st == AEH_MISSING || (h->st == AEH_PRESENT && memcmp(h->ver, best->ver, VLEN) < 0);
}

/* rcp_vget from the holder of the newest copy of key aux: write it to every
 * target.  The reply is the holder's current copy, which may be newer than
 * the one VHEAD saw (the write functions keep the newest anyway). */
static void ae_on_vget(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                       intptr_t aux) {
    ae_batch *b = ctx;
    size_t k = (size_t)aux;
    (void)node;
    if (r == NULL || r->type == REDIS_REPLY_NIL)
        goto done; /* link lost, or the key is gone (expired) */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len != VLEN ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_STRING ||
        r->element[3]->type != REDIS_REPLY_INTEGER) {
        bg->st.ae_errors++;
        goto done;
    }
    for (int s = 0; s < b->nhome[k]; s++)
        if (ae_is_target(b, k, s))
            ae_write(b, k, b->home[k * bg->n + s], r->element[1]->integer != 0,
                     r->element[0]->str, r->element[2]->str, r->element[2]->len,
                     r->element[3]->integer);
done:
    ae_release(b);
}

/* After every VHEAD answered: find each key's newest copy and repair the
 * home nodes that answered missing or older.  A key with a foreign copy on
 * any home node is left alone. */
static void ae_repair(ae_batch *b) {
    repl_qbg *bg = b->bg;
    b->phase = AE_REPAIR;
    b->refs = 1;
    for (size_t k = 0; k < b->nkeys; k++) {
        const ae_head *hs = &b->heads[k * bg->n];
        int best = -1, foreign = 0, targets = 0;
        for (int s = 0; s < b->nhome[k]; s++) {
            if (hs[s].st == AEH_FOREIGN)
                foreign = 1;
            else if (hs[s].st == AEH_PRESENT &&
                     (best < 0 || memcmp(hs[s].ver, hs[best].ver, VLEN) > 0))
                best = s;
        }
        b->newest[k] = best;
        if (foreign || best < 0)
            continue;
        for (int s = 0; s < b->nhome[k]; s++)
            targets += ae_is_target(b, k, s);
        if (targets == 0)
            continue;
        bg->pass_work++;
        if (hs[best].tomb) {
            /* a tombstone has no value: VHEAD told us everything */
            for (int s = 0; s < b->nhome[k]; s++)
                if (ae_is_target(b, k, s))
                    ae_write(b, k, b->home[k * bg->n + s], 1, hs[best].ver, NULL, 0,
                             hs[best].pttl);
        } else {
            const char *argv[4] = {"FCALL_RO", "rcp_vget", "1", b->keys[k]};
            size_t lens[4] = {8, 8, 1, b->klen[k]};
            if (qbg_send(&bg->nodes[b->home[k * bg->n + best]], 0, ae_on_vget, b, (intptr_t)k,
                         4, argv, lens) == 0)
                b->refs++;
        }
    }
    ae_release(b);
}

/* Fill one key's head from a VHEAD element. */
static void ae_head_set(repl_qbg *bg, ae_head *h, const redisReply *e) {
    if (e->type == REDIS_REPLY_NIL) {
        h->st = AEH_MISSING;
    } else if (e->type == REDIS_REPLY_ARRAY && e->elements == 3 &&
               e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len == VLEN &&
               e->element[1]->type == REDIS_REPLY_INTEGER &&
               e->element[2]->type == REDIS_REPLY_INTEGER) {
        h->st = AEH_PRESENT;
        memcpy(h->ver, e->element[0]->str, VLEN);
        h->tomb = e->element[1]->integer != 0;
        h->pttl = e->element[2]->integer;
    } else {
        h->st = AEH_FOREIGN; /* an error element: not our format (or not understood) */
        if (e->type != REDIS_REPLY_ERROR)
            bg->st.ae_errors++;
    }
}

static void ae_on_head(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                       intptr_t aux) {
    ae_batch *b = ctx;
    int j = (int)aux;
    (void)node;
    if (r == NULL)
        goto done;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != b->nsent[j]) {
        bg->st.ae_errors++;
        goto done;
    }
    for (size_t i = 0; i < r->elements; i++) {
        size_t k = b->sent[j][i];
        for (int s = 0; s < b->nhome[k]; s++)
            if (b->home[k * bg->n + s] == j)
                ae_head_set(bg, &b->heads[k * bg->n + s], r->element[i]);
    }
done:
    ae_release(b);
}

/* Ask every up node for the heads of the batch's keys homed on it (one
 * FCALL_RO rcp_vhead per node). */
static void ae_send_heads(ae_batch *b) {
    repl_qbg *bg = b->bg;
    const char **argv = repl_xcalloc(b->nkeys + 3, sizeof *argv);
    size_t *lens = repl_xcalloc(b->nkeys + 3, sizeof *lens);
    char num[24];

    b->phase = AE_HEAD;
    b->refs = 1;
    b->sent = repl_xcalloc((size_t)bg->nnodes, sizeof *b->sent);
    b->nsent = repl_xcalloc((size_t)bg->nnodes, sizeof *b->nsent);
    for (int j = 0; j < bg->nnodes; j++) {
        size_t cnt = 0;
        if (!node_up(&bg->nodes[j]))
            continue;
        b->sent[j] = repl_xcalloc(b->nkeys, sizeof **b->sent);
        for (size_t k = 0; k < b->nkeys; k++)
            for (int s = 0; s < b->nhome[k]; s++)
                if (b->home[k * bg->n + s] == j) {
                    b->sent[j][cnt] = k;
                    argv[3 + cnt] = b->keys[k];
                    lens[3 + cnt] = b->klen[k];
                    cnt++;
                    break;
                }
        b->nsent[j] = cnt;
        if (cnt == 0)
            continue;
        snprintf(num, sizeof num, "%zu", cnt);
        argv[0] = "FCALL_RO";
        lens[0] = 8;
        argv[1] = "rcp_vhead";
        lens[1] = 9;
        argv[2] = num;
        lens[2] = strlen(num);
        if (qbg_send(&bg->nodes[j], 0, ae_on_head, b, j, (int)(cnt + 3), argv, lens) == 0)
            b->refs++;
    }
    free(argv);
    free(lens);
    ae_release(b);
}

/* Drop a reference of the batch; at zero the current phase is over. */
static void ae_release(ae_batch *b) {
    if (--b->refs > 0)
        return;
    if (b->bg->closing) {
        b->bg->ae_cur = NULL;
        ae_batch_free(b);
        return;
    }
    if (b->phase == AE_SCAN && b->scan_ok && b->nkeys > 0)
        ae_send_heads(b);
    else if (b->phase == AE_HEAD)
        ae_repair(b);
    else
        ae_finish(b);
}

static void ae_on_scan(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                       intptr_t aux) {
    ae_batch *b = ctx;
    const redisReply *keys;
    unsigned long long next;
    (void)node;
    (void)aux;
    if (r == NULL)
        goto done;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !reply_is_str(r->element[0]) ||
        parse_ull(r->element[0]->str, r->element[0]->len, &next) != 0 ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        bg->st.ae_errors++;
        goto done;
    }
    keys = r->element[1];
    bg->tokens -= (double)keys->elements;
    b->next_cursor = next;
    b->scan_ok = 1;
    b->keys = repl_xcalloc(keys->elements, sizeof *b->keys);
    b->klen = repl_xcalloc(keys->elements, sizeof *b->klen);
    b->home = repl_xcalloc(keys->elements * (size_t)bg->n, sizeof *b->home);
    b->nhome = repl_xcalloc(keys->elements, sizeof *b->nhome);
    b->heads = repl_xcalloc(keys->elements * (size_t)bg->n, sizeof *b->heads);
    b->newest = repl_xcalloc(keys->elements, sizeof *b->newest);
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *e = keys->element[i];
        size_t k = b->nkeys;
        if (e->type != REDIS_REPLY_STRING || is_reserved(e->str, e->len))
            continue;
        b->nhome[k] = home_of(bg, e->str, e->len, &b->home[k * (size_t)bg->n]);
        if (b->nhome[k] == 0)
            continue;
        b->keys[k] = repl_memdup(e->str, e->len);
        b->klen[k] = e->len;
        b->nkeys++;
    }
    bg->st.ae_keys_scanned += (long long)b->nkeys;
done:
    ae_release(b);
}

/* Start the next batch if the anti-entropy is idle, has tokens and is not
 * pausing: SCAN the current node of the pass, skipping nodes that are down;
 * past the last node the pass is over. */
static void ae_step(repl_qbg *bg) {
    long long now = mono_ms();
    if (bg->rate <= 0 || bg->closing || bg->ae_cur != NULL || bg->tokens <= 0 ||
        now < bg->pause_until_ms)
        return;
    for (int tries = 0; tries <= bg->nnodes; tries++) {
        if (bg->ae_node >= bg->nnodes) {
            if (!bg->pass_skipped)
                bg->st.ae_passes++;
            if (bg->pass_work == 0 || bg->pass_skipped)
                bg->pause_until_ms = now + QBG_AE_PAUSE_MS;
            bg->ae_node = 0;
            bg->pass_skipped = 0;
            bg->pass_work = 0;
            bg->st.ae_node = 0;
            bg->st.ae_cursor = bg->nodes[0].cursor;
            if (now < bg->pause_until_ms)
                return;
        }
        qnode *node = &bg->nodes[bg->ae_node];
        if (!node_up(node) || !node->cursor_loaded) {
            bg->pass_skipped = 1;
            bg->ae_node++;
            continue;
        }
        char cur[24], cnt[24];
        const char *argv[6] = {"SCAN", cur, "COUNT", cnt, "TYPE", "string"};
        snprintf(cur, sizeof cur, "%llu", node->cursor);
        snprintf(cnt, sizeof cnt, "%d", bg->batch_count);
        ae_batch *b = repl_xcalloc(1, sizeof *b);
        b->bg = bg;
        b->scan_node = bg->ae_node;
        b->phase = AE_SCAN;
        bg->st.ae_node = bg->ae_node;
        bg->st.ae_cursor = node->cursor;
        if (qbg_send(node, 0, ae_on_scan, b, 0, 6, argv, NULL) != 0) {
            free(b);
            bg->pass_skipped = 1;
            bg->ae_node++;
            continue;
        }
        b->refs = 1;
        bg->ae_cur = b;
        return;
    }
}

static void ae_on_kick(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    ae_step(w->data);
}

/* Run ae_step from the loop soon (never from inside a reply callback). */
static void ae_kick(repl_qbg *bg) {
    if (bg->closing || bg->rate <= 0 || ev_is_active(&bg->kick))
        return;
    ev_timer_set(&bg->kick, 0., 0.);
    ev_timer_start(bg->loop, &bg->kick);
}

static void ae_refill(repl_qbg *bg, long long now) {
    double cap = bg->rate / 5.0;
    if (cap < bg->batch_count)
        cap = bg->batch_count;
    bg->tokens += (double)bg->rate * (double)(now - bg->tokens_ms) / 1000.0;
    if (bg->tokens > cap)
        bg->tokens = cap;
    bg->tokens_ms = now;
}

/* ------------------------------------------------------------------------ */
/* hinted hand-off                                                           */

enum { HR_XLEN = 0, HR_JOBS };

typedef struct hint_round {
    repl_qbg *bg;
    int refs;
    int phase;
    long long *xlen;         /* [holder * nnodes + owner], -1: unknown */
} hint_round;

/* The stream of one owner on one holder. */
typedef struct hint_job {
    hint_round *round;
    int holder, owner;
    int refs;
    int chunks;              /* XRANGEs sent */
    size_t last_n;           /* entries in the last XRANGE answer */
    char last_id[QBG_ENTRY_ID_MAX];
} hint_job;

/* One entry replayed to the owner, waiting for its answer. */
typedef struct hint_entry {
    hint_job *job;
    char id[QBG_ENTRY_ID_MAX];
    char ver[VLEN];
    char *key;
    size_t klen;
} hint_entry;

static void round_release(hint_round *r);
static void job_release(hint_job *j);

/* Answer of a holder-side command of a job (XTRIM, XDEL, rcp_vdrop). */
static void hint_on_ack(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                        intptr_t aux) {
    (void)node;
    (void)aux;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        bg->st.hint_errors++;
    job_release(ctx);
}

/* Queue a command of job j on its holder. */
static void job_holder_cmd(hint_job *j, int argc, const char **argv, const size_t *lens) {
    repl_qbg *bg = j->round->bg;
    if (qbg_send(&bg->nodes[j->holder], 0, hint_on_ack, j, 0, argc, argv, lens) == 0)
        j->refs++;
}

static void job_xdel(hint_job *j, const char *id) {
    repl_qbg *bg = j->round->bg;
    /* XDEL, and DEL of the stream once empty, atomically on the holder */
    const char *argv[5] = {"FCALL", "rcp_hdel", "1", bg->nodes[j->owner].stream, id};
    job_holder_cmd(j, 5, argv, NULL);
}

/* The owner answered a replayed entry: any write reply (code 0..3) means
 * the owner has the write or something newer, so the entry is XDELed and the
 * holder's stand-in copy dropped unless the holder is a home node of the
 * key.  An error keeps the entry for the next round. */
static void hint_on_replay(repl_qbg *bg, qnode *owner, const redisReply *r, void *ctx,
                           intptr_t aux) {
    hint_entry *e = ctx;
    hint_job *j = e->job;
    (void)owner;
    (void)aux;
    if (r == NULL)
        goto done; /* owner lost: the entry stays */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[0]->integer < 0 ||
        r->element[0]->integer > REPL_QUORUM_NO_VALUE) {
        bg->st.hint_errors++;
        goto done;
    }
    bg->st.hints_replayed++;
    job_xdel(j, e->id);
    int nh = home_of(bg, e->key, e->klen, bg->scratch_home), home = 0;
    for (int i = 0; i < nh; i++)
        home |= bg->scratch_home[i] == j->holder;
    if (!home) {
        const char *argv[5] = {"FCALL", "rcp_vdrop", "1", e->key, e->ver};
        size_t lens[5] = {5, 9, 1, e->klen, VLEN};
        job_holder_cmd(j, 5, argv, lens);
    }
done:
    free(e->key);
    free(e);
    job_release(j);
}

/* The value of field name in a flat [name, value, ...] array, or NULL. */
static const redisReply *entry_field(const redisReply *f, const char *name) {
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (bytes_eq(f->element[i]->str, f->element[i]->len, name))
            return f->element[i + 1];
    return NULL;
}

/* Replay one XRANGE entry [id, [field, value, ...]] of job j to its owner.
 * A malformed entry is counted and XDELed (it can never be replayed). */
static void hint_replay(hint_job *j, const redisReply *ent) {
    repl_qbg *bg = j->round->bg;
    const redisReply *id, *f, *op, *key, *ver, *ttl, *mode, *val;
    const char *argv[9], *fn, *m;
    size_t lens[9];
    int argc = 0, is_set = 0;

    if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 || !reply_is_str(ent->element[0]) ||
        ent->element[0]->len == 0 || ent->element[0]->len >= QBG_ENTRY_ID_MAX) {
        bg->st.hint_errors++;
        return; /* no usable id: cannot even XDEL it; XTRIM will age it out */
    }
    id = ent->element[0];
    memcpy(j->last_id, id->str, id->len);
    j->last_id[id->len] = '\0';
    f = ent->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        goto bad;
    for (size_t i = 0; i < f->elements; i++)
        if (!reply_is_str(f->element[i]))
            goto bad;
    op = entry_field(f, "op");
    key = entry_field(f, "key");
    ver = entry_field(f, "ver");
    ttl = entry_field(f, "ttl");
    mode = entry_field(f, "mode");
    val = entry_field(f, "val");
    if (op == NULL || key == NULL || ver == NULL || ver->len != VLEN || ttl == NULL ||
        mode == NULL)
        goto bad;
    if (bytes_eq(op->str, op->len, "VSET") && val != NULL) {
        fn = "rcp_vset";
        is_set = 1;
    }
    else if (bytes_eq(op->str, op->len, "VDEL"))
        fn = "rcp_vdel";
    else if (bytes_eq(op->str, op->len, "VEXPIRE"))
        fn = "rcp_vexpire";
    else
        goto bad;
    /* PXAT with ttl 0 means "no expiry": send it as 0 PX */
    m = bytes_eq(mode->str, mode->len, "PXAT") && bytes_eq(ttl->str, ttl->len, "0") ? "PX" : NULL;

#define ARG(p, l) (argv[argc] = (p), lens[argc] = (l), argc++)
    ARG("FCALL", 5);
    ARG(fn, strlen(fn));
    ARG("1", 1);
    ARG(key->str, key->len);
    ARG(ver->str, VLEN);
    if (is_set)
        ARG(val->str, val->len);
    ARG(ttl->str, ttl->len);
    if (m != NULL)
        ARG(m, 2);
    else
        ARG(mode->str, mode->len);
#undef ARG
    hint_entry *e = repl_xcalloc(1, sizeof *e);
    e->job = j;
    memcpy(e->id, j->last_id, id->len + 1);
    memcpy(e->ver, ver->str, VLEN);
    e->key = repl_memdup(key->str, key->len);
    e->klen = key->len;
    if (qbg_send(&bg->nodes[j->owner], 0, hint_on_replay, e, 0, argc, argv, lens) == 0) {
        j->refs++;
    } else {
        free(e->key);
        free(e);
    }
    return;

bad:
    bg->st.hint_errors++;
    job_xdel(j, j->last_id);
}

static void hint_on_range(repl_qbg *bg, qnode *holder, const redisReply *r, void *ctx,
                          intptr_t aux) {
    hint_job *j = ctx;
    (void)holder;
    (void)aux;
    if (r == NULL)
        goto done;
    if (r->type != REDIS_REPLY_ARRAY) {
        bg->st.hint_errors++;
        goto done;
    }
    j->last_n = r->elements;
    for (size_t i = 0; i < r->elements; i++)
        hint_replay(j, r->element[i]);
done:
    job_release(j);
}

/* Send the next XRANGE of job j (after last_id, exclusive).  Returns 0 if
 * it is in flight (with its reference on j), -1 if not. */
static int job_range(hint_job *j) {
    repl_qbg *bg = j->round->bg;
    char start[QBG_ENTRY_ID_MAX + 1], cnt[16];
    const char *argv[6] = {"XRANGE", bg->nodes[j->owner].stream, start, "+", "COUNT", cnt};
    if (j->last_id[0] == '\0')
        snprintf(start, sizeof start, "-");
    else
        snprintf(start, sizeof start, "(%s", j->last_id);
    snprintf(cnt, sizeof cnt, "%d", QBG_HINT_CHUNK);
    j->last_n = 0;
    j->chunks++;
    if (qbg_send(&bg->nodes[j->holder], 0, hint_on_range, j, 0, 6, argv, NULL) != 0)
        return -1;
    j->refs++;
    return 0;
}

/* Drop a reference of job j; at zero, read the next chunk if the last one
 * was full (bounded per round), else the job is over. */
static void job_release(hint_job *j) {
    repl_qbg *bg = j->round->bg;
    if (--j->refs > 0)
        return;
    if (!bg->closing && j->last_n >= QBG_HINT_CHUNK && j->chunks < QBG_HINT_MAX_CHUNKS &&
        node_up(&bg->nodes[j->holder]) && node_up(&bg->nodes[j->owner]) && job_range(j) == 0)
        return;
    round_release(j->round);
    free(j);
}

/* Hand off the hints for owner that holder keeps: trim the ones older than
 * tombstone-ttl, then replay the rest chunk by chunk. */
static void job_start(hint_round *r, int holder, int owner) {
    repl_qbg *bg = r->bg;
    hint_job *j = repl_xcalloc(1, sizeof *j);
    char minid[24];
    long long min = wall_ms() - bg->tombstone_ttl_ms;
    j->round = r;
    j->holder = holder;
    j->owner = owner;
    j->refs = 1;
    r->refs++;
    if (min > 0) {
        const char *argv[4] = {"XTRIM", bg->nodes[owner].stream, "MINID", minid};
        snprintf(minid, sizeof minid, "%lld", min);
        job_holder_cmd(j, 4, argv, NULL);
    }
    (void)job_range(j);
    job_release(j);
}

static void hint_on_xlen(repl_qbg *bg, qnode *node, const redisReply *r, void *ctx,
                         intptr_t aux) {
    hint_round *round = ctx;
    (void)node;
    if (r != NULL) {
        if (r->type == REDIS_REPLY_INTEGER)
            round->xlen[aux] = r->integer;
        else
            bg->st.hint_errors++;
    }
    round_release(round);
}

/* Drop a reference of round r; at zero the XLEN phase ends (start a job for
 * every non-empty stream whose holder and owner are up) or the round ends. */
static void round_release(hint_round *r) {
    repl_qbg *bg = r->bg;
    int nn = bg->nnodes;
    if (--r->refs > 0)
        return;
    if (r->phase == HR_XLEN && !bg->closing) {
        long long total = 0;
        r->phase = HR_JOBS;
        r->refs = 1;
        for (int i = 0; i < nn * nn; i++)
            if (r->xlen[i] > 0)
                total += r->xlen[i];
        bg->st.hints_pending = total;
        for (int h = 0; h < nn; h++)
            for (int o = 0; o < nn; o++)
                if (r->xlen[h * nn + o] > 0 && node_up(&bg->nodes[h]) && node_up(&bg->nodes[o]))
                    job_start(r, h, o);
        round_release(r);
        return;
    }
    bg->hint_cur = NULL;
    free(r->xlen);
    free(r);
}

/* Every QBG_HINT_INTERVAL_MS: XLEN every owner's stream on every up holder. */
static void hint_round_start(repl_qbg *bg) {
    int nn = bg->nnodes;
    hint_round *r = repl_xcalloc(1, sizeof *r);
    r->bg = bg;
    r->xlen = repl_xcalloc((size_t)nn * (size_t)nn, sizeof *r->xlen);
    for (int i = 0; i < nn * nn; i++)
        r->xlen[i] = -1;
    r->phase = HR_XLEN;
    r->refs = 1;
    bg->hint_cur = r;
    bg->hint_next_ms = mono_ms() + QBG_HINT_INTERVAL_MS;
    for (int h = 0; h < nn; h++) {
        if (!node_up(&bg->nodes[h]))
            continue;
        for (int o = 0; o < nn; o++) {
            const char *argv[2] = {"XLEN", bg->nodes[o].stream};
            intptr_t pair = (intptr_t)h * nn + o;
            if (o != h && qbg_send(&bg->nodes[h], 0, hint_on_xlen, r, pair, 2, argv, NULL) == 0)
                r->refs++;
        }
    }
    round_release(r);
}

/* ------------------------------------------------------------------------ */
/* the module                                                                */

static void qbg_on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
    repl_qbg *bg = w->data;
    long long now = mono_ms();
    (void)loop;
    (void)revents;
    for (int i = 0; i < bg->nnodes; i++)
        node_watch(&bg->nodes[i], now);
    ae_refill(bg, now);
    ae_step(bg);
    if (bg->hint_cur == NULL && now >= bg->hint_next_ms)
        hint_round_start(bg);
}

repl_qbg *repl_qbg_new(struct ev_loop *loop, const repl_qbg_config *cfg) {
    repl_qbg *bg;
    if (loop == NULL || cfg == NULL || cfg->nodes == NULL || cfg->ring == NULL ||
        cfg->nnodes < 1 || cfg->nnodes > REPL_RING_MAX_NODES)
        return NULL;
    for (int i = 0; i < cfg->nnodes; i++)
        if (cfg->nodes[i].host[0] == '\0' ||
            memchr(cfg->nodes[i].host, '\0', sizeof cfg->nodes[i].host) == NULL ||
            cfg->nodes[i].port < 1 || cfg->nodes[i].port > 65535)
            return NULL;

    bg = repl_xcalloc(1, sizeof *bg);
    bg->loop = loop;
    bg->ring = cfg->ring;
    bg->nnodes = cfg->nnodes;
    bg->n = cfg->n > 0 && cfg->n <= cfg->nnodes ? cfg->n : cfg->nnodes;
    bg->rate = cfg->rate > 0 ? cfg->rate : 0;
    bg->tombstone_ttl_ms =
        cfg->tombstone_ttl_ms > 0 ? cfg->tombstone_ttl_ms : REPL_QUORUM_TOMBSTONE_TTL_MS_DEFAULT;
    bg->user = repl_opt_strdup(cfg->user);
    bg->password = repl_opt_strdup(cfg->password);
    bg->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : QBG_DEFAULT_CONNECT_MS;
    bg->cmd_timeout_ms = bg->connect_timeout_ms * QBG_CMD_TIMEOUT_FACTOR;
    bg->scratch_home = repl_xcalloc((size_t)bg->n, sizeof *bg->scratch_home);
    bg->batch_count = bg->rate / 10;
    if (bg->batch_count < QBG_AE_BATCH_MIN)
        bg->batch_count = QBG_AE_BATCH_MIN;
    if (bg->batch_count > QBG_AE_BATCH_MAX)
        bg->batch_count = QBG_AE_BATCH_MAX;
    bg->tokens = bg->batch_count; /* the first batch need not wait */
    bg->st.rate = bg->rate;

    bg->nodes = repl_xcalloc((size_t)bg->nnodes, sizeof *bg->nodes);
    for (int i = 0; i < bg->nnodes; i++) {
        qnode *node = &bg->nodes[i];
        node->bg = bg;
        node->idx = i;
        snprintf(node->host, sizeof node->host, "%s", cfg->nodes[i].host);
        node->port = cfg->nodes[i].port;
        /* the ring's identity, which the data path also names hint streams
         * after; "host:port" when node i is not on the ring */
        const char *rid = repl_ring_node_id(cfg->ring, i);
        if (rid != NULL)
            snprintf(node->id, sizeof node->id, "%s", rid);
        else
            snprintf(node->id, sizeof node->id, "%s:%d", node->host, node->port);
        snprintf(node->stream, sizeof node->stream, "%s%s", REPL_QUORUM_HINT_PREFIX, node->id);
        node->backoff_ms = QBG_BACKOFF_MIN_MS;
    }
    ev_timer_init(&bg->tick, qbg_on_tick, QBG_TICK_S, QBG_TICK_S);
    bg->tick.data = bg;
    ev_timer_init(&bg->kick, ae_on_kick, 0., 0.);
    bg->kick.data = bg;
    return bg;
}

void repl_qbg_start(repl_qbg *bg) {
    long long now;
    if (bg == NULL || bg->started || bg->closing)
        return;
    bg->started = 1;
    now = mono_ms();
    bg->tokens_ms = now;
    bg->hint_next_ms = now;
    for (int i = 0; i < bg->nnodes; i++)
        node_connect(&bg->nodes[i]);
    ev_timer_start(bg->loop, &bg->tick);
}

void repl_qbg_free(repl_qbg *bg) {
    if (bg == NULL || bg->closing)
        return;
    bg->closing = 1;
    ev_timer_stop(bg->loop, &bg->tick);
    ev_timer_stop(bg->loop, &bg->kick);
    bg->ops++; /* callbacks run by the drops below must not destroy bg under us */
    for (int i = 0; i < bg->nnodes; i++)
        if (bg->nodes[i].ac != NULL)
            node_drop(&bg->nodes[i]);
    qbg_unref(bg); /* destroys bg unless a deferred hiredis free still holds a command */
}

void repl_qbg_stats_get(const repl_qbg *bg, repl_qbg_stats *out) {
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (bg == NULL)
        return;
    *out = bg->st;
    out->errors = bg->st.ae_errors + bg->st.hint_errors;
    out->nodes_up = 0;
    for (int i = 0; i < bg->nnodes; i++)
        out->nodes_up += node_up(&bg->nodes[i]);
    out->rate = bg->rate;
}

size_t repl_qbg_info(const repl_qbg *bg, char *out, size_t cap) {
    repl_qbg_stats s;
    char line[96];
    size_t len = 0;
    if (out == NULL || cap == 0)
        return 0;
    out[0] = '\0';
    repl_qbg_stats_get(bg, &s);
    /* every counter is >= 0: one unsigned format fits them all */
    struct {
        const char *name;
        unsigned long long v;
    } rows[] = {
        {"anti_entropy_rate", (unsigned long long)s.rate},
        {"anti_entropy_passes", (unsigned long long)s.ae_passes},
        {"anti_entropy_keys_scanned", (unsigned long long)s.ae_keys_scanned},
        {"anti_entropy_keys_repaired", (unsigned long long)s.ae_keys_repaired},
        {"anti_entropy_node", (unsigned long long)s.ae_node},
        {"anti_entropy_cursor", s.ae_cursor},
        {"anti_entropy_errors", (unsigned long long)s.ae_errors},
        {"anti_entropy_nodes_up", (unsigned long long)s.nodes_up},
        {"hints_replayed", (unsigned long long)s.hints_replayed},
        {"hints_pending", (unsigned long long)s.hints_pending},
        {"hints_errors", (unsigned long long)s.hint_errors},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int n = snprintf(line, sizeof line, "%s:%llu\r\n", rows[i].name, rows[i].v);
        if (n < 0 || (size_t)n >= sizeof line || len + (size_t)n + 1 > cap)
            break;
        memcpy(out + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    return len;
}
