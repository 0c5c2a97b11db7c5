/* quorum.c -- mode quorum: per-key read and write operations over the
 * nodes' links, read repair, sloppy quorum with hints, and the process-level
 * set-up (ring, clock, function library, background repair).  The client
 * commands are built on top in quorum_cmd.c; see quorum_op.h.
 *
 * One operation (repl_qop) covers one key.  Its candidate nodes are the
 * key's preference list (sloppy quorum: the healthy walk of the ring, with
 * stand-ins for down home nodes).  Node replies and link failures arrive
 * through repl_quorum_on_reply / repl_quorum_on_fail and move it along:
 *
 *   read:   send to R usable candidates (all with quorum-read-all)
 *           ─ a node fails ─> send to the next unused candidate
 *           ─ R answered ───> report the newest (unless read-repair sync)
 *           ─ all answered ─> stale nodes? fetch the newest with its TTL
 *                             (rcp_vget) and rcp_vset/rcp_vdel it to them
 *   write:  send the versioned write to every usable candidate
 *           ─ W acknowledged ─> report success
 *           ─ W impossible ───> report "quorum not reached"
 *
 * The operation is freed once nothing is outstanding; it reports to its
 * command at most once (op->cmd is NULL afterwards). */
#include "replication/quorum.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "proxy/backend.h"
#include "proxy/client.h"
#include "proxy/log.h"
#include "replication/quorum_bg.h"
#include "replication/quorum_op.h"
#include "replication/quorum_scripts.h"
#include "resp/resp_value.h"

#define HINT_STREAM_MAXLEN "1000000"

enum { QN_IDLE = 0, QN_SENT, QN_OK, QN_FAIL };
enum { QREQ_GET = 0, QREQ_VGET, QREQ_WRITE, QREQ_FETCH, QREQ_REPAIR };

typedef struct qnode {
    int node;             /* backend index */
    int hint_for;         /* -1: a home node; else the down home node it stands in for */
    uint8_t state;        /* QN_* */
    uint8_t req;          /* QREQ_* outstanding or last answered */
    uint8_t has;          /* read: it holds a version of the key */
    uint8_t stale;        /* read: repair target */
    repl_version ver;
} qnode;

typedef struct repl_qop {
    repl_quorum *q;
    repl_qcmd *cmd;       /* NULL once reported */
    int k;                /* the key's index in cmd */
    int is_write;
    int want_ttl;
    char *key;            /* own copy after nodes[]: the operation may outlive cmd */
    size_t klen;
    int need;             /* R or W */
    uint64_t affinity;    /* the client's id: its requests to a node share one link, in order */
    int outstanding, ok, failed;
    int repairing;
    char err[256];        /* first error reply of a node (sent to the client if it fails) */
    char why[160];        /* last link failure */
    /* read */
    int best;             /* candidate with the newest version, -1 none */
    int best_tomb;
    px_buf value;         /* the newest live value */
    long long pttl;
    int have_pttl;
    /* write */
    int prev_live, applied;
    /* reads waiting for their R answers (repl_quorum_cron) */
    struct repl_qop *prev_waiting, *next_waiting;
    double started;
    int waiting, speculated;
    int nn;
    qnode nodes[];
} repl_qop;

long long repl_q_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static repl_quorum *quorum_of(px_ctx *ctx)
{
    return ctx->quorum;
}

/* ---- candidates ----------------------------------------------------------- */

static int node_up(int node, void *arg)
{
    px_ctx *ctx = arg;
    return node >= 0 && node < ctx->nbackends && px_backend_usable(ctx->backends[node], NULL);
}

/* A new operation on key for cmd's key k with its candidate nodes. */
static repl_qop *op_new(repl_qcmd *cmd, int k, int is_write)
{
    repl_quorum *q = cmd->q;
    px_ctx *ctx = q->ctx;
    int n = ctx->cfg.quorum_n;
    int nodes[REPL_RING_MAX_NODES], hints[REPL_RING_MAX_NODES];
    const char *key = cmd->keys[k].key;
    size_t klen = cmd->keys[k].klen;
    int nn;
    if (ctx->cfg.sloppy_quorum)
        nn = repl_ring_next_healthy(q->ring, key, klen, n, node_up, ctx, nodes, hints);
    else
        nn = repl_ring_preference(q->ring, key, klen, n, nodes);
    if (nn < 0) nn = 0;
    /* one allocation: the operation, its candidates, then its copy of the key */
    repl_qop *op = calloc(1, sizeof *op + (size_t)nn * sizeof(qnode) + klen + 1);
    if (!op) abort();
    op->q = q;
    op->cmd = cmd;
    op->k = k;
    op->is_write = is_write;
    op->affinity = cmd->slot && cmd->slot->client ? cmd->slot->client->id : 0;
    op->key = (char *)&op->nodes[nn];
    memcpy(op->key, key, klen);
    op->key[klen] = 0;
    op->klen = klen;
    op->best = -1;
    op->pttl = -1;
    op->nn = nn;
    for (int i = 0; i < nn; i++) {
        op->nodes[i].node = nodes[i];
        op->nodes[i].hint_for = ctx->cfg.sloppy_quorum ? hints[i] : -1;
    }
    return op;
}

static void waiting_remove(repl_qop *op);

static void op_free(repl_qop *op)
{
    waiting_remove(op);
    px_buf_release(&op->value);
    free(op);
}

/* Can node take a request now (usable, and a shared link not closed)? */
static int node_ready(px_ctx *ctx, int node)
{
    px_backend *b = ctx->backends[node];
    return px_backend_usable(b, NULL) && px_backend_pick_shared(b, 0) != NULL;
}

/* Has node stopped answering (a request outstanding on a link that read
 * nothing for SLOW_NODE_S)?  Reads go to other nodes first, so one hung node
 * does not hold a share of the reads until backend-timeout fails it. */
#define SLOW_NODE_S 0.1
#define SPECULATE_S 0.05
static int node_slow(px_ctx *ctx, int node)
{
    px_backend *b = ctx->backends[node];
    double now = ev_now(ctx->loop);
    for (int i = 0; i < b->nshared; i++) {
        px_link *l = b->shared[i];
        if (l->fifo_count > 0 && now - l->last_progress > SLOW_NODE_S) return 1;
    }
    return 0;
}

/* Queue bytes on a shared link of candidate i (with a hint first for a
 * stand-in's write).  Returns 0, or -1 when the node cannot take requests
 * now (down, or shutting down). */
static int op_send(repl_qop *op, int i, int req, const char *bytes, size_t len, const px_buf *hint)
{
    px_ctx *ctx = op->q->ctx;
    if (op->q->stopped) return -1;
    px_backend *b = ctx->backends[op->nodes[i].node];
    if (!px_backend_usable(b, NULL)) return -1;
    px_link *l = px_backend_pick_shared(b, op->affinity);
    if (!l) return -1;
    if (l->fifo_count == 0) l->last_progress = ev_now(ctx->loop);
    if (hint) px_link_send_raw(l, hint->data, hint->len, PX_PEND_CONTROL);
    px_pending *p = px_link_send_raw(l, bytes, len, PX_PEND_QUORUM);
    p->qop = op;
    p->qnode = (uint16_t)i;
    b->requests++;
    op->nodes[i].state = QN_SENT;
    op->nodes[i].req = (uint8_t)req;
    op->outstanding++;
    return 0;
}

/* The list of reads not answered yet, for the speculative retry. */
static void waiting_remove(repl_qop *op)
{
    if (!op->waiting) return;
    repl_quorum *q = op->q;
    if (op->prev_waiting) op->prev_waiting->next_waiting = op->next_waiting;
    else q->waiting = op->next_waiting;
    if (op->next_waiting) op->next_waiting->prev_waiting = op->prev_waiting;
    op->waiting = 0;
}

static void waiting_add(repl_qop *op)
{
    repl_quorum *q = op->q;
    op->waiting = 1;
    op->started = ev_now(q->ctx->loop);
    op->prev_waiting = NULL;
    op->next_waiting = q->waiting;
    if (q->waiting) q->waiting->prev_waiting = op;
    q->waiting = op;
}

/* Report the outcome to the command (once). */
static void op_report(repl_qop *op)
{
    repl_qcmd *cmd = op->cmd;
    if (!cmd) return;
    op->cmd = NULL;
    waiting_remove(op);
    repl_qkey *r = &cmd->keys[op->k];
    repl_quorum *q = op->q;
    const char *what = cmd->argc ? cmd->argv[0] : "?";
    int ok = op->ok >= op->need;
    if (!ok) {
        r->failed = 1;
        if (op->err[0]) {
            snprintf(r->err, sizeof r->err, "%s", op->err);
        } else if (op->is_write) {
            int sent = op->ok + op->failed + op->outstanding;
            if (sent == 0)
                snprintf(r->err, sizeof r->err,
                         "ERR rcproxy: quorum not reached for '%.32s': no node for this key is "
                         "available (quorum-w %d); the write was not applied", what, op->need);
            else
                snprintf(r->err, sizeof r->err,
                         "ERR rcproxy: quorum not reached for '%.32s': %d of %d required nodes "
                         "acknowledged%s%s%s; the write may have been applied on some nodes",
                         what, op->ok, op->need, op->why[0] ? " (" : "", op->why,
                         op->why[0] ? ")" : "");
        } else {
            snprintf(r->err, sizeof r->err,
                     "ERR rcproxy: quorum not reached for '%.32s': %d of %d required nodes answered%s%s%s",
                     what, op->ok, op->need, op->why[0] ? " (" : "", op->why, op->why[0] ? ")" : "");
        }
        if (op->is_write) q->write_errors++;
        else q->read_errors++;
    } else if (op->is_write) {
        r->prev_live = op->prev_live;
        r->applied = op->applied;
    } else if (op->best >= 0) {
        r->has_version = 1;
        r->version = op->nodes[op->best].ver;
        r->found = !op->best_tomb;
        r->pttl = op->pttl;
        if (r->found) {
            r->value.len = r->value.rpos = 0;
            if (op->have_pttl && q->ctx->cfg.read_repair != CONF_REPAIR_OFF) {
                /* a repair may still write this very value */
                px_buf_append(&r->value, op->value.data, op->value.len);
            } else {
                px_buf tmp = r->value;   /* a repair re-fetches it with rcp_vget */
                r->value = op->value;
                op->value = tmp;
            }
        }
    }
    repl_q_key_done(cmd);
}

/* ---- reads ----------------------------------------------------------------- */

/* Send the read to unused candidates until `want` are in flight or
 * answered.  Returns how many more could not be found. */
static int read_fill(repl_qop *op, int want)
{
    const char *get_argv[2] = {"GET", NULL};
    const char *vget_argv[4] = {"FCALL_RO", "rcp_vget", "1", NULL};
    px_buf req = PX_BUF_INIT;
    size_t lens[4];
    if (op->want_ttl) {
        vget_argv[3] = op->key;
        lens[0] = 8, lens[1] = 8, lens[2] = 1, lens[3] = op->klen;
        px_buf_add_multibulk(&req, 4, vget_argv, lens);
    } else {
        get_argv[1] = op->key;
        lens[0] = 3, lens[1] = op->klen;
        px_buf_add_multibulk(&req, 2, get_argv, lens);
    }
    /* nodes that answer first, then (if R is not reached) the slow ones */
    int busy = op->ok + op->outstanding;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < op->nn && busy < want; i++) {
            if (op->nodes[i].state != QN_IDLE) continue;
            if (pass == 0 && node_slow(op->q->ctx, op->nodes[i].node)) continue;
            if (op_send(op, i, op->want_ttl ? QREQ_VGET : QREQ_GET, req.data, req.len, NULL) == 0) busy++;
            else op->nodes[i].state = QN_FAIL;
        }
    px_buf_release(&req);
    return want - busy;
}

void repl_q_read(repl_qcmd *cmd, int k, int want_ttl)
{
    repl_quorum *q = cmd->q;
    const conf *cfg = &q->ctx->cfg;
    repl_qop *op = op_new(cmd, k, 0);
    op->want_ttl = want_ttl;
    op->need = cfg->quorum_r;
    q->reads++;
    int want = cfg->quorum_read_all ? op->nn : op->need;
    if (want < op->need) want = op->need;
    read_fill(op, want);
    if (op->outstanding < op->need) {
        snprintf(op->why, sizeof op->why, "%d of %d nodes for this key are available",
                 op->outstanding, op->nn);
        op_report(op);
        if (op->outstanding == 0) op_free(op);
        return;
    }
    waiting_add(op);
}

void repl_quorum_cron(px_ctx *ctx)
{
    repl_quorum *q = quorum_of(ctx);
    if (!q || q->stopped) return;
    double now = ev_now(ctx->loop);
    /* a read still short of R answers after SPECULATE_S also asks one more
     * node of its list (once), so a hung node costs it ~0.1 s, not
     * backend-timeout; its late answer only feeds read repair */
    for (repl_qop *op = q->waiting, *next; op; op = next) {
        next = op->next_waiting;
        if (op->speculated || now - op->started < SPECULATE_S) continue;
        op->speculated = 1;
        if (op->cmd && !op->repairing) read_fill(op, op->ok + op->outstanding + 1);
    }
}

/* Decode a stored blob (GET reply) or an rcp_vget reply into node i; the
 * copy becomes the newest when it is newer than the newest so far (or as
 * new, with take_equal).  Returns 0, or -1 for a reply in no known shape. */
static int read_parse(repl_qop *op, int i, const resp_value *v, int take_equal)
{
    qnode *n = &op->nodes[i];
    const char *value = NULL;
    size_t vlen = 0;
    long long pttl = -1;
    int tomb = 0;
    n->has = 0;
    if (v->type == 'n') return 0;
    if (v->type == '$') {
        repl_stored_view sv;
        if (repl_stored_decode(v->str, v->len, &sv) != REPL_STORED_OK) return -1;
        n->ver = sv.version;
        tomb = sv.tombstone;
        value = sv.value;
        vlen = sv.value_len;
    } else if (v->type == '*' && v->integer == 4) {
        resp_value e[4];
        size_t pos = 0;
        for (int j = 0; j < 4; j++)
            if (!resp_value_next(v, &pos, &e[j])) return -1;
        if (e[0].type != '$' || repl_version_decode(e[0].str, e[0].len, &n->ver) < 0) return -1;
        if (e[1].type != ':' || e[2].type != '$' || e[3].type != ':') return -1;
        tomb = e[1].integer == 1;
        value = e[2].str;
        vlen = e[2].len;
        pttl = e[3].integer;
    } else {
        return -1;
    }
    n->has = 1;
    repl_hlc_observe(&op->q->hlc, &n->ver, (uint64_t)repl_q_wall_ms());
    int cmp = op->best < 0 ? 1 : repl_version_cmp(&n->ver, &op->nodes[op->best].ver);
    if (cmp > 0 || (cmp == 0 && take_equal)) {
        op->best = i;
        op->best_tomb = tomb;
        op->value.len = op->value.rpos = 0;
        if (!tomb) px_buf_append(&op->value, value, vlen);
        op->pttl = pttl;
        op->have_pttl = v->type == '*';
    }
    return 0;
}

/* The ttl words of a repair write for the newest copy. */
static void repair_ttl(const repl_qop *op, char *ttl, size_t cap)
{
    long long ms = op->pttl;
    if (op->best_tomb && ms <= 0) ms = op->q->tombstone_ttl_ms;
    if (ms < 0) ms = 0;
    snprintf(ttl, cap, "%lld", ms);
}

/* Write the newest copy (version, value, TTL all known) to every stale node. */
static void repair_write(repl_qop *op)
{
    char ver[REPL_VERSION_TEXT_LEN], ttl[32];
    repl_version_encode(&op->nodes[op->best].ver, ver);
    repair_ttl(op, ttl, sizeof ttl);
    px_buf req = PX_BUF_INIT;
    if (op->best_tomb) {
        const char *argv[7] = {"FCALL", "rcp_vdel", "1", op->key, ver, ttl, "PX"};
        size_t lens[7] = {5, 8, 1, op->klen, REPL_VERSION_TEXT_LEN, strlen(ttl), 2};
        px_buf_add_multibulk(&req, 7, argv, lens);
    } else {
        const char *argv[8] = {"FCALL", "rcp_vset", "1", op->key, ver, op->value.data ? op->value.data : "",
                               ttl, "PX"};
        size_t lens[8] = {5, 8, 1, op->klen, REPL_VERSION_TEXT_LEN, op->value.len, strlen(ttl), 2};
        px_buf_add_multibulk(&req, 8, argv, lens);
    }
    for (int i = 0; i < op->nn; i++)
        if (op->nodes[i].stale) {
            op->nodes[i].stale = 0;
            if (op_send(op, i, QREQ_REPAIR, req.data, req.len, NULL) == 0) op->q->read_repairs++;
        }
    px_buf_release(&req);
}

/* Every read reply is in: mark the nodes older than the newest and start
 * repairing them.  Returns 1 if repair requests are in flight. */
static int repair_start(repl_qop *op)
{
    const conf *cfg = &op->q->ctx->cfg;
    if (op->best < 0 || cfg->read_repair == CONF_REPAIR_OFF || op->repairing) return 0;
    int stale = 0;
    for (int i = 0; i < op->nn; i++) {
        qnode *n = &op->nodes[i];
        if (n->state != QN_OK || i == op->best) continue;
        if (!n->has || repl_version_cmp(&n->ver, &op->nodes[op->best].ver) < 0) n->stale = 1, stale++;
    }
    if (!stale) return 0;
    op->repairing = 1;
    if (op->have_pttl) {
        repair_write(op);
    } else {
        /* the newest copy's TTL: ask its node (atomically with its version) */
        const char *argv[4] = {"FCALL_RO", "rcp_vget", "1", op->key};
        size_t lens[4] = {8, 8, 1, op->klen};
        px_buf req = PX_BUF_INIT;
        px_buf_add_multibulk(&req, 4, argv, lens);
        op_send(op, op->best, QREQ_FETCH, req.data, req.len, NULL);
        px_buf_release(&req);
    }
    return op->outstanding > 0;
}

/* A read operation made progress: report, retry, repair or finish. */
static void read_progress(repl_qop *op)
{
    const conf *cfg = &op->q->ctx->cfg;
    int sync_repair = cfg->read_repair == CONF_REPAIR_SYNC;
    if (op->cmd && !op->repairing && op->ok + op->outstanding < op->need) read_fill(op, op->need);
    if (op->cmd && op->ok >= op->need && !sync_repair) op_report(op);
    if (op->outstanding > 0) return;
    if (op->ok >= op->need && !op->repairing && repair_start(op)) return;
    op_report(op);
    op_free(op);
}

/* The reply to the repair's rcp_vget on the newest node: spread what it
 * holds now (its TTL known) if that is still at least as new; else give up
 * (anti-entropy will see to it). */
static void fetch_done(repl_qop *op, int i, const resp_value *v)
{
    repl_version seen = op->nodes[op->best].ver;
    if (v && v->type == '*' && read_parse(op, i, v, 1) == 0 && op->nodes[i].has &&
        op->best == i && repl_version_cmp(&op->nodes[i].ver, &seen) >= 0) {
        repair_write(op);
        return;
    }
    for (int j = 0; j < op->nn; j++) op->nodes[j].stale = 0;
}

/* ---- writes ---------------------------------------------------------------- */

static const char *const write_fn[] = {"rcp_vset", "rcp_vdel", "rcp_vexpire"};
static const char *const hint_op[] = {"VSET", "VDEL", "VEXPIRE"};

void repl_q_write(repl_qcmd *cmd, int k, repl_qwrite_kind kind, const char *value, size_t vlen,
                  repl_qttl_mode ttl_mode, long long at_ms)
{
    repl_quorum *q = cmd->q;
    px_ctx *ctx = q->ctx;
    repl_qop *op = op_new(cmd, k, 1);
    op->need = ctx->cfg.quorum_w;
    q->writes++;

    repl_version v = repl_hlc_now(&q->hlc, (uint64_t)repl_q_wall_ms());
    char ver[REPL_VERSION_TEXT_LEN], ttl[32];
    const char *mode = "PX";
    repl_version_encode(&v, ver);
    if (kind == REPL_QW_DEL) {
        snprintf(ttl, sizeof ttl, "%lld", q->tombstone_ttl_ms);
    } else if (ttl_mode == REPL_QTTL_AT) {
        snprintf(ttl, sizeof ttl, "%lld", at_ms);
        mode = "PXAT";
    } else {
        snprintf(ttl, sizeof ttl, "0");
        if (ttl_mode == REPL_QTTL_KEEP) mode = "KEEPTTL";
    }

    const char *argv[8];
    size_t lens[8];
    int argc = 0;
#define ARG(s, l) (argv[argc] = (s), lens[argc] = (l), argc++)
    ARG("FCALL", 5);
    ARG(write_fn[kind], strlen(write_fn[kind]));
    ARG("1", 1);
    ARG(op->key, op->klen);
    ARG(ver, REPL_VERSION_TEXT_LEN);
    if (kind == REPL_QW_SET) ARG(value ? value : "", vlen);
    ARG(ttl, strlen(ttl));
    ARG(mode, strlen(mode));
#undef ARG
    int ready = 0;
    for (int i = 0; i < op->nn; i++) ready += node_ready(ctx, op->nodes[i].node);
    if (ready < op->need || q->stopped) {
        snprintf(op->err, sizeof op->err,
                 "ERR rcproxy: quorum not reached for '%.32s': only %d of the %d nodes for this key "
                 "are available (quorum-w %d); the write was not applied",
                 cmd->argc ? cmd->argv[0] : "?", ready, op->nn, op->need);
        op_report(op);
        op_free(op);
        return;
    }
    px_buf req = PX_BUF_INIT;
    px_buf_add_multibulk(&req, argc, argv, lens);

    for (int i = 0; i < op->nn; i++) {
        px_buf hint = PX_BUF_INIT;
        int owner = op->nodes[i].hint_for;
        if (owner >= 0) {
            char stream[400];
            snprintf(stream, sizeof stream, "%s%s", REPL_QUORUM_HINT_PREFIX, ctx->backends[owner]->name);
            const char *h[20] = {"XADD", stream, "MAXLEN", "~", HINT_STREAM_MAXLEN, "*",
                                 "op", hint_op[kind], "key", op->key, "ver", ver,
                                 "ttl", ttl, "mode", mode, "val", value ? value : ""};
            size_t hl[20] = {4, strlen(stream), 6, 1, strlen(HINT_STREAM_MAXLEN), 1,
                             2, strlen(hint_op[kind]), 3, op->klen, 3, REPL_VERSION_TEXT_LEN,
                             3, strlen(ttl), 4, strlen(mode), 3, vlen};
            px_buf_add_multibulk(&hint, kind == REPL_QW_SET ? 18 : 16, h, hl);
        }
        if (op_send(op, i, QREQ_WRITE, req.data, req.len, owner >= 0 ? &hint : NULL) < 0)
            op->nodes[i].state = QN_FAIL;
        else if (owner >= 0)
            q->hints_written++;
        px_buf_release(&hint);
    }
    px_buf_release(&req);
    if (op->outstanding < op->need) {
        op_report(op);
        if (op->outstanding == 0) op_free(op);
    }
}

/* A write reply [code, version, prev]: 0 ok, -1 not in that shape. */
static int write_parse(repl_qop *op, const resp_value *v)
{
    resp_value code, ver, prev;
    size_t pos = 0;
    if (v->type != '*' || v->integer != 3 || !resp_value_next(v, &pos, &code) ||
        !resp_value_next(v, &pos, &ver) || !resp_value_next(v, &pos, &prev) || code.type != ':' ||
        prev.type != ':')
        return -1;
    if (prev.integer == REPL_QUORUM_PREV_LIVE) op->prev_live = 1;
    if (code.integer == REPL_QUORUM_APPLIED || code.integer == REPL_QUORUM_SAME) op->applied = 1;
    if (code.integer == REPL_QUORUM_STALE) op->q->stale_answers++;
    return 0;
}

static void write_progress(repl_qop *op)
{
    if (op->cmd && (op->ok >= op->need || op->ok + op->outstanding < op->need)) op_report(op);
    if (op->outstanding == 0) {
        op_report(op);
        op_free(op);
    }
}

/* ---- replies from the links ----------------------------------------------- */

static void op_progress(repl_qop *op)
{
    if (op->is_write) write_progress(op);
    else if (op->repairing) {
        if (op->outstanding == 0) {
            op_report(op);
            op_free(op);
        }
    } else read_progress(op);
}

static void node_error(repl_qop *op, const resp_value *v, const char *fallback)
{
    if (op->err[0]) return;
    if (v && v->type == '-')
        snprintf(op->err, sizeof op->err, "%.*s", (int)(v->len < 250 ? v->len : 250), v->str);
    else
        snprintf(op->err, sizeof op->err, "%s", fallback);
}

void repl_quorum_on_reply(px_link *l, const px_pending *p, const char *bytes, size_t len)
{
    (void)l;
    repl_qop *op = p->qop;
    int i = p->qnode;
    qnode *n = &op->nodes[i];
    resp_value v;
    int good = resp_value_decode(bytes, len, &v) == len;
    op->outstanding--;
    n->state = QN_OK;
    switch (n->req) {
    case QREQ_GET:
    case QREQ_VGET:
        if (good && v.type != '-' && read_parse(op, i, &v, 0) == 0) {
            op->ok++;
        } else {
            n->state = QN_FAIL;
            op->failed++;
            node_error(op, good ? &v : NULL,
                       "ERR rcproxy: key holds a value not written by rcproxy quorum mode");
        }
        break;
    case QREQ_WRITE:
        if (good && v.type != '-' && write_parse(op, &v) == 0) {
            op->ok++;
        } else {
            n->state = QN_FAIL;
            op->failed++;
            node_error(op, good ? &v : NULL, "ERR rcproxy: unexpected reply from a node");
        }
        break;
    case QREQ_FETCH:
        fetch_done(op, i, good ? &v : NULL);
        break;
    default: /* QREQ_REPAIR: best effort, anti-entropy covers what fails */
        break;
    }
    op_progress(op);
}

void repl_quorum_on_fail(px_link *l, const px_pending *p, const char *why)
{
    repl_qop *op = p->qop;
    qnode *n = &op->nodes[p->qnode];
    op->outstanding--;
    if (n->req == QREQ_GET || n->req == QREQ_VGET || n->req == QREQ_WRITE) {
        n->state = QN_FAIL;
        op->failed++;
        snprintf(op->why, sizeof op->why, "%.60s: %.90s", l->backend->name, why);
    } else if (n->req == QREQ_FETCH) {
        for (int j = 0; j < op->nn; j++) op->nodes[j].stale = 0;
    }
    op_progress(op);
}

/* ---- commands' bookkeeping ------------------------------------------------ */

void repl_q_key_done(repl_qcmd *cmd)
{
    if (--cmd->waiting == 0) cmd->step(cmd);
}

/* ---- process level --------------------------------------------------------- */

void repl_quorum_link_prepare(px_link *l)
{
    static const char *argv[4] = {"FUNCTION", "LOAD", "REPLACE", REPL_QUORUM_LIBRARY};
    px_buf tmp = PX_BUF_INIT;
    px_buf_add_multibulk(&tmp, 4, argv, NULL);
    px_link_send_raw(l, tmp.data, tmp.len, PX_PEND_CONTROL);
    px_buf_release(&tmp);
}

static void quorum_on_health(px_ctx *ctx, px_backend *b, const repl_health_state *st)
{
    (void)ctx;
    b->hs = *st;
}

static px_backend *quorum_no_route(px_ctx *ctx, px_client *c)
{
    (void)ctx; (void)c;
    return NULL;
}

const px_strategy repl_quorum_strategy = {
    .name = "quorum",
    .route_write = quorum_no_route,
    .on_health = quorum_on_health,
};

/* A random instance id when none is configured: two sidecars must differ. */
static uint32_t pick_instance_id(const conf *cfg)
{
    if (cfg->instance_id >= 0) return (uint32_t)cfg->instance_id;
    uint32_t id = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&id, sizeof id, 1, f) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16) ^ (uint32_t)cfg->port;
    }
    if (f) fclose(f);
    return id & 0x7fffffff;
}

int repl_quorum_init(px_ctx *ctx, char *err, size_t errlen)
{
    const conf *cfg = &ctx->cfg;
    repl_quorum *q = calloc(1, sizeof *q);
    if (!q) abort();
    q->ctx = ctx;
    q->tombstone_ttl_ms = (long long)cfg->tombstone_ttl * 1000;
    q->ring = repl_ring_new(0);
    if (!q->ring) {
        snprintf(err, errlen, "cannot create the hash ring");
        free(q);
        return -1;
    }
    for (int i = 0; i < ctx->nbackends; i++)
        if (repl_ring_add_node(q->ring, i, ctx->backends[i]->name) < 0) {
            snprintf(err, errlen, "node %s is listed twice or cannot be placed on the ring",
                     ctx->backends[i]->name);
            repl_ring_free(q->ring);
            free(q);
            return -1;
        }
    repl_hlc_init(&q->hlc, pick_instance_id(cfg));
    ctx->quorum = q;
    return 0;
}

void repl_quorum_start(px_ctx *ctx)
{
    repl_quorum *q = quorum_of(ctx);
    const conf *cfg = &ctx->cfg;
    repl_qbg_config bc = {
        .nodes = cfg->nodes,
        .nnodes = cfg->node_count,
        .ring = q->ring,
        .n = cfg->quorum_n,
        .rate = cfg->anti_entropy_rate,
        .tombstone_ttl_ms = q->tombstone_ttl_ms,
        .user = cfg->backend_user,
        .password = cfg->backend_password,
        .connect_timeout_ms = cfg->backend_connect_timeout,
    };
    q->bg = repl_qbg_new(ctx->loop, &bc);
    if (q->bg) repl_qbg_start(q->bg);
    px_notice("Mode quorum: %d nodes, n=%d w=%d r=%d, read-repair %s, sloppy-quorum %s, instance id %u",
              ctx->nbackends, cfg->quorum_n, cfg->quorum_w, cfg->quorum_r,
              cfg->read_repair == CONF_REPAIR_SYNC ? "sync" : cfg->read_repair == CONF_REPAIR_ASYNC ? "async" : "off",
              cfg->sloppy_quorum ? "yes" : "no", q->hlc.node);
}

void repl_quorum_stop(px_ctx *ctx)
{
    repl_quorum *q = quorum_of(ctx);
    if (!q) return;
    q->stopped = 1;
    if (q->bg) repl_qbg_free(q->bg);
    q->bg = NULL;
}

void repl_quorum_free(px_ctx *ctx)
{
    repl_quorum *q = quorum_of(ctx);
    if (!q) return;
    if (q->bg) repl_qbg_free(q->bg);
    repl_ring_free(q->ring);
    free(q);
    ctx->quorum = NULL;
}

px_dispatch_result repl_quorum_dispatch(px_client *c, const char *buf)
{
    return (px_dispatch_result)repl_qcmd_dispatch(quorum_of(c->ctx), c, buf);
}

void repl_quorum_info(px_ctx *ctx, px_buf *out)
{
    repl_quorum *q = quorum_of(ctx);
    if (!q) return;
    const conf *cfg = &ctx->cfg;
    char tmp[2048];
    int n = snprintf(tmp, sizeof tmp,
                     "quorum_n:%d\r\nquorum_w:%d\r\nquorum_r:%d\r\nquorum_read_all:%s\r\n"
                     "read_repair:%s\r\nsloppy_quorum:%s\r\ninstance_id:%u\r\n"
                     "quorum_reads:%lld\r\nquorum_writes:%lld\r\nquorum_read_errors:%lld\r\n"
                     "quorum_write_errors:%lld\r\nread_repairs:%lld\r\nhints_written:%lld\r\n"
                     "stale_write_answers:%lld\r\n",
                     cfg->quorum_n, cfg->quorum_w, cfg->quorum_r, cfg->quorum_read_all ? "yes" : "no",
                     cfg->read_repair == CONF_REPAIR_SYNC ? "sync" : cfg->read_repair == CONF_REPAIR_ASYNC ? "async" : "off",
                     cfg->sloppy_quorum ? "yes" : "no", q->hlc.node, q->reads, q->writes,
                     q->read_errors, q->write_errors, q->read_repairs, q->hints_written,
                     q->stale_answers);
    px_buf_append(out, tmp, (size_t)n);
    if (q->bg) {
        size_t m = repl_qbg_info(q->bg, tmp, sizeof tmp);
        px_buf_append(out, tmp, m);
    }
}
