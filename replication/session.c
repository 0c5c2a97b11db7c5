/* session.c -- read-your-writes, monotonic reads, tokens and write-ack on
 * top of Redis replication offsets.  See session.h for the design. */
#include "replication/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/backend.h"
#include "proxy/client.h"
#include "proxy/log.h"
#include "replication/leader.h"

#define PARK_INTERVAL 0.002   /* seconds between tries of parked reads */
#define OFFSET_INF ((long long)1 << 62)  /* "only the leader can serve this session" */
#define OFFSET_UNKNOWN (-2)              /* a ROLE whose answer never came */
#define TOKEN_PREFIX "rcp1-"

/* A read waiting for a replica to catch up (rare path: owns a copy). */
typedef struct repl_parked {
    struct repl_parked *next;
    px_slot *slot;
    char *req;
    size_t len;
    int db;
    double first_sent;
} repl_parked;

void repl_session_init(px_client *c)
{
    c->write_ack = (uint8_t)c->ctx->cfg.write_ack;
    c->consistency = (uint8_t)c->ctx->cfg.read_consistency;
    c->min_offset = 0;
    c->after_offset = 0;
    c->w_link = c->r_link = NULL;
    c->w_seq = c->r_seq = c->w_global = 0;
}

/* ---- resolving what a session must see ------------------------------------ */

/* Fold answered ROLEs into c->min_offset.  After it, w_link / r_link are
 * non-NULL only while their ROLE is still in flight. */
static px_link *leader_link(px_ctx *ctx, px_client *c, px_backend *avoid);
static uint64_t want_role_after(px_link *l);

/* A ROLE that never answered (its link failed): any leader ROLE sent from
 * now on bounds what the session wrote or read. */
static void resolve_later(px_ctx *ctx, px_client *c)
{
    c->w_global = ctx->role_global_sent + 1;
    px_link *l = leader_link(ctx, c, NULL);
    if (l) want_role_after(l);
}

static void raise_min(px_client *c, long long off)
{
    if (off > c->min_offset) c->min_offset = off;
}

static void session_resolve(px_ctx *ctx, px_client *c)
{
    if (c->w_link && c->w_link->role_done >= c->w_seq) {
        if (c->w_link->role_offset == OFFSET_UNKNOWN) resolve_later(ctx, c);
        else raise_min(c, c->w_link->role_offset);
        c->w_link = NULL;
    }
    if (c->r_link && c->r_link->role_done >= c->r_seq) {
        if (c->r_link->role_offset == OFFSET_UNKNOWN) resolve_later(ctx, c);
        else raise_min(c, c->r_link->role_offset);
        c->r_link = NULL;
    }
    if (c->w_global && ctx->role_global_done >= c->w_global) {
        raise_min(c, ctx->role_global_offset);
        c->w_global = 0;
    }
}

/* Queue a ROLE on l now (before whatever comes next on it). */
static void queue_role(px_link *l)
{
    static const char role[] = "*1\r\n$4\r\nROLE\r\n";
    px_ctx *ctx = l->ctx;
    px_pending *p = px_link_send_raw(l, role, sizeof role - 1, PX_PEND_ROLE);
    p->seq = ++l->role_sent;
    if (l->backend->role == PX_ROLE_LEADER && l->kind == PX_LINK_SHARED)
        p->global_seq = ++ctx->role_global_sent;
    l->role_turn = ctx->turn;
    l->role_wanted = 0;
}

/* Ask for a ROLE after what is queued on l this turn; return its number. */
static uint64_t want_role_after(px_link *l)
{
    if (!l->role_wanted) {
        l->role_wanted = 1;
        px_link_mark_dirty(l);
    }
    return l->role_sent + 1;
}

static long long leader_offset(px_ctx *ctx)
{
    return ctx->nbackends ? ctx->backends[0]->known_offset : -1;
}

/* A replica for eventual reads: in rotation and within replica-max-lag. */
static int within_lag(px_ctx *ctx, const px_backend *b)
{
    long long max = ctx->cfg.replica_max_lag, lead = leader_offset(ctx);
    if (max <= 0 || lead < 0 || b->known_offset < 0) return 1;
    return lead - b->known_offset <= max;
}

static int serving(const px_backend *b, const px_backend *avoid)
{
    return b != avoid && b->role == PX_ROLE_REPLICA && repl_leader_replica_ok(b, NULL);
}

/* The replica for a read that must see offset need (0: any): the client's
 * own replica if fit, else the fittest one.  *fresh = 1 when its known
 * offset already proves it (no check needed). */
static px_backend *pick_replica(px_ctx *ctx, px_client *c, long long need, px_backend *avoid,
                                int *fresh)
{
    px_backend *best = NULL;
    *fresh = 0;
    if (c->read_backend > 0 && c->read_backend < ctx->nbackends) {
        px_backend *b = ctx->backends[c->read_backend];
        if (serving(b, avoid) && within_lag(ctx, b) && (need <= 0 || b->known_offset >= need)) {
            *fresh = 1;
            return b;
        }
    }
    unsigned n = (unsigned)ctx->nbackends - 1;
    for (unsigned i = 0; i < n; i++) {
        px_backend *b = ctx->backends[1 + (ctx->next_replica + i) % n];
        if (!serving(b, avoid) || !within_lag(ctx, b)) continue;
        if (need <= 0 || b->known_offset >= need) {
            ctx->next_replica = (ctx->next_replica + i + 1) % n;
            c->read_backend = b->index;
            *fresh = 1;
            return b;
        }
        if (!best || b->known_offset > best->known_offset) best = b;
    }
    return best;
}

static px_link *leader_link(px_ctx *ctx, px_client *c, px_backend *avoid)
{
    px_backend *b = ctx->strategy->route_write(ctx, NULL);
    if (!b || b == avoid) return NULL;
    return px_backend_pick_shared(b, c->id);
}

int repl_session_send_read(px_ctx *ctx, px_client *c, px_slot *s, const char *bytes, size_t len,
                           int db, px_backend *avoid, double first_sent, int tries)
{
    double now = ev_now(ctx->loop);
    px_link *l = NULL;
    long long check = 0;
    int eventual = c->consistency == CONF_READ_EVENTUAL;
    session_resolve(ctx, c);
    if (c->consistency == CONF_READ_STRONG) {
        l = leader_link(ctx, c, avoid);
    } else if (!eventual && c->w_link && c->w_link->state != PX_LINK_CLOSED &&
               c->w_link->backend != avoid) {
        l = c->w_link;                 /* offset of the write not known yet: read behind it */
    } else if (!eventual && c->w_global && (l = leader_link(ctx, c, avoid)) != NULL) {
        /* written on another link and answered: the leader has it */
    } else if (c->consistency == CONF_READ_MONOTONIC && c->r_link &&
               c->r_link->state != PX_LINK_CLOSED && c->r_link->backend != avoid) {
        l = c->r_link;                 /* bound of the last read not known yet: read behind it */
    } else {
        /* eventual reads honour only tokens (RCPROXY AFTER); the others also
         * the session's own writes and reads */
        long long need = eventual ? 0 : c->min_offset;
        if (c->after_offset > need) need = c->after_offset;
        int fresh = 0;
        px_backend *b = need >= OFFSET_INF ? NULL : pick_replica(ctx, c, need, avoid, &fresh);
        if (b && !fresh && first_sent > 0 && now - first_sent >= ctx->cfg.ryw_wait_timeout / 1000.0)
            b = NULL;                  /* waited long enough: the leader answers */
        if (b) {
            l = px_backend_pick_shared(b, c->id);
            if (l && !fresh) {
                check = need;
                if (l->role_turn != ctx->turn || l->role_sent == 0) queue_role(l);
            }
        }
        if (!l) {
            check = 0;
            l = leader_link(ctx, c, avoid);
        }
    }
    if (!l && c->consistency != CONF_READ_STRONG) {
        /* The leader is down: nothing can prove a replica fresh any more, and
         * nothing newer than the freshest replica can be read anywhere.  Serve
         * the read from the most up-to-date replica rather than fail it. */
        int fresh;
        px_backend *b = pick_replica(ctx, c, OFFSET_INF - 1, avoid, &fresh);
        if (b) l = px_backend_pick_shared(b, c->id);
        check = 0;
    }
    if (!l) return -1;
    px_pending *p = px_link_send(l, s, bytes, len, db, 1);
    p->check_offset = check;
    p->first_sent = first_sent > 0 ? first_sent : now;
    p->tries = (uint8_t)tries;
    if (c->consistency == CONF_READ_MONOTONIC) {
        c->r_link = l;
        c->r_seq = want_role_after(l);
    }
    return 0;
}

/* ---- writes ------------------------------------------------------------------ */

void repl_session_wrote(px_client *c, px_link *l, px_pending *p)
{
    px_ctx *ctx = c->ctx;
    c->w_link = l;
    /* The ROLE that tells the write's offset is only worth sending when
     * replica reads depend on it; otherwise the next ROLE on l (or the one
     * RCPROXY TOKEN sends) resolves it, and reads meanwhile go behind the
     * write on l. */
    int needed = ctx->nbackends > 1 &&
                 (c->consistency == CONF_READ_RYW || c->consistency == CONF_READ_MONOTONIC);
    c->w_seq = needed ? want_role_after(l) : l->role_sent + 1;
    int replicas = ctx->nbackends - 1;
    if (c->write_ack == CONF_ACK_ASYNC || replicas <= 0) return;
    int need = c->write_ack == CONF_ACK_SYNC ? replicas : 1;
    p->hold = 1;
    p->need = (uint8_t)(need > 255 ? 255 : need);
    if (need > l->wait_need) l->wait_need = (uint8_t)need;
}

void repl_session_wrote_elsewhere(px_client *c)
{
    px_ctx *ctx = c->ctx;
    c->w_global = ctx->role_global_sent + 1;
    px_link *l = leader_link(ctx, c, NULL);
    if (l) want_role_after(l);
}

void repl_session_flush_link(px_link *l)
{
    /* One WAIT at a time: Redis blocks the link until it returns, so writes
     * queued meanwhile are covered together by the next one. */
    if (l->wait_need && !l->wait_inflight) {
        l->wait_inflight = 1;
        char tmp[64];
        int n = snprintf(tmp, sizeof tmp, "*3\r\n$4\r\nWAIT\r\n$%d\r\n%d\r\n", l->wait_need >= 10 ? 2 : 1,
                         l->wait_need);
        char ms[24];
        int m = snprintf(ms, sizeof ms, "%d", l->ctx->cfg.write_ack_timeout);
        n += snprintf(tmp + n, sizeof tmp - (size_t)n, "$%d\r\n%s\r\n", m, ms);
        px_pending *p = px_link_send_raw(l, tmp, (size_t)n, PX_PEND_WAIT);
        p->seq = l->wait_need;
        l->wait_need = 0;
    }
    if (l->role_wanted) queue_role(l);
}

/* ---- replies of the proxy's ROLE and WAIT ------------------------------------- */

/* Read one RESP integer or bulk element at *p; skips bulks.  For an integer
 * sets *v.  Returns 0 or -1. */
static int next_elem(const char **p, const char *end, long long *v, const char **bulk, size_t *blen)
{
    const char *s = *p;
    if (s >= end) return -1;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) return -1;
    char type = s[0];
    long long n = strtoll(s + 1, NULL, 10);
    s = nl + 1;
    if (type == ':') {
        *v = n;
    } else if (type == '$') {
        if (n < 0) n = 0;
        if (s + n + 2 > end) return -1;
        if (bulk) *bulk = s, *blen = (size_t)n;
        s += n + 2;
    } else if (type == '*') {
        *v = n;
    } else {
        return -1;
    }
    *p = s;
    return 0;
}

int repl_parse_role_offset(const char *reply, size_t len, long long *offset)
{
    const char *p = reply, *end = reply + len, *role = NULL;
    size_t rlen = 0;   /* stays 0 when the second element is not a string */
    long long v = 0;
    if (len < 4 || reply[0] != '*') return -1;
    if (next_elem(&p, end, &v, NULL, NULL) < 0) return -1;      /* *N */
    if (next_elem(&p, end, &v, &role, &rlen) < 0) return -1;   /* role name */
    if (rlen == 6 && memcmp(role, "master", 6) == 0) {
        if (next_elem(&p, end, &v, NULL, NULL) < 0) return -1;
        *offset = v;
        return 0;
    }
    if (rlen == 5 && memcmp(role, "slave", 5) == 0) {
        for (int i = 0; i < 4; i++)                            /* host, port, state, offset */
            if (next_elem(&p, end, &v, NULL, NULL) < 0) return -1;
        *offset = v;
        return 0;
    }
    return -1;
}

void repl_session_on_role(px_link *l, const px_pending *p, const char *reply, size_t len)
{
    px_ctx *ctx = l->ctx;
    long long off = -1;
    l->role_done = p->seq;
    if (repl_parse_role_offset(reply, len, &off) < 0) off = OFFSET_UNKNOWN;
    l->role_offset = off;
    if (off >= 0) l->backend->known_offset = off;
    if (p->global_seq && off >= 0) {
        if (p->global_seq > ctx->role_global_done) ctx->role_global_done = p->global_seq;
        if (off > ctx->role_global_offset) ctx->role_global_offset = off;
    }
}

int repl_session_read_fresh(const px_link *l, const px_pending *p)
{
    return p->check_offset <= 0 || l->role_offset >= p->check_offset;
}

static void held_push(px_link *l, px_slot *s)
{
    if (l->held_count == l->held_cap) {
        size_t cap = l->held_cap ? l->held_cap * 2 : 16;
        px_slot **h = malloc(cap * sizeof *h);
        if (!h) abort();
        for (size_t i = 0; i < l->held_count; i++) h[i] = l->held[(l->held_head + i) % l->held_cap];
        free(l->held);
        l->held = h;
        l->held_cap = cap;
        l->held_head = 0;
    }
    l->held[(l->held_head + l->held_count) % l->held_cap] = s;
    l->held_count++;
}

static px_slot *held_pop(px_link *l)
{
    px_slot *s = l->held[l->held_head];
    l->held_head = (l->held_head + 1) % l->held_cap;
    l->held_count--;
    return s;
}

void repl_session_hold(px_link *l, px_slot *s, const char *reply, size_t len, int need)
{
    px_buf_append(&s->reply, reply, len);
    s->need = (uint8_t)need;
    held_push(l, s);
}

/* Deliver a held write: its own reply if it failed or got enough acks. */
static void release_held(px_ctx *ctx, px_slot *s, long long acked, const char *why)
{
    px_buf reply = s->reply;              /* take it out: delivery may park into s->reply */
    s->reply = (px_buf)PX_BUF_INIT;
    if (reply.len > 0 && reply.data[0] == '-') {
        px_slot_deliver(ctx, s, reply.data, reply.len);
    } else if (!why && acked >= s->need) {
        px_slot_deliver(ctx, s, reply.data, reply.len);
    } else if (why) {
        px_slot_deliver_error(ctx, s, "ERR rcproxy: write applied on the leader but its replication "
                                      "could not be confirmed (%s)", why);
    } else {
        px_slot_deliver_error(ctx, s, "ERR rcproxy: write applied on the leader but confirmed by only "
                                      "%lld of %d replicas within write-ack-timeout (%d ms)",
                              acked, s->need, ctx->cfg.write_ack_timeout);
    }
    px_buf_release(&reply);
}

void repl_session_on_wait(px_link *l, const px_pending *p, const char *reply, size_t len)
{
    (void)p;
    long long acked = -1;
    const char *why = NULL;
    if (len > 1 && reply[0] == ':') acked = strtoll(reply + 1, NULL, 10);
    else why = "WAIT failed";
    l->wait_inflight = 0;
    while (l->held_count) release_held(l->ctx, held_pop(l), acked, why);
    if (l->wait_need) px_link_mark_dirty(l);   /* writes arrived meanwhile: their WAIT */
}

void repl_session_link_failed(px_link *l)
{
    while (l->held_count) release_held(l->ctx, held_pop(l), -1, "connection to the leader lost");
    free(l->held);
    l->held = NULL;
    l->held_cap = l->held_head = 0;
    l->wait_need = 0;
    l->wait_inflight = 0;
    l->role_wanted = 0;
    /* pending ROLEs will never answer: whoever waits on them learns later */
    l->role_done = l->role_sent;
    l->role_offset = OFFSET_UNKNOWN;
}

/* ---- parked reads --------------------------------------------------------------- */

static void parked_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    px_ctx *ctx = w->data;
    repl_parked *list = ctx->parked;
    ctx->parked = NULL;
    while (list) {
        repl_parked *pk = list;
        list = pk->next;
        px_client *c = pk->slot->client;
        if (!c) {
            px_slot_deliver(ctx, pk->slot, NULL, 0);
        } else if (repl_session_send_read(ctx, c, pk->slot, pk->req, pk->len, pk->db, NULL,
                                          pk->first_sent, 0) < 0) {
            /* nothing can serve it right now (links reconnecting after a
             * failover): wait up to backend-connect-timeout, then fail */
            if (ev_now(ctx->loop) - pk->first_sent < ctx->cfg.backend_connect_timeout / 1000.0) {
                pk->next = ctx->parked;
                ctx->parked = pk;
                continue;
            }
            px_slot_deliver_error(ctx, pk->slot, "ERR rcproxy: no backend is available for reads");
        }
        free(pk->req);
        free(pk);
    }
    if (!ctx->parked) ev_timer_stop(ctx->loop, &ctx->parked_timer);
}

void repl_session_park_read(px_ctx *ctx, px_slot *s, const char *req, size_t len, int db,
                             double first_sent)
{
    repl_parked *pk = calloc(1, sizeof *pk);
    if (!pk) abort();
    pk->slot = s;
    pk->req = malloc(len);
    if (!pk->req) abort();
    memcpy(pk->req, req, len);
    pk->len = len;
    pk->db = db;
    pk->first_sent = first_sent > 0 ? first_sent : ev_now(ctx->loop);
    pk->next = ctx->parked;
    ctx->parked = pk;
    if (!ev_is_active(&ctx->parked_timer)) {
        ev_timer_init(&ctx->parked_timer, parked_retry, PARK_INTERVAL, PARK_INTERVAL);
        ctx->parked_timer.data = ctx;
        ev_timer_start(ctx->loop, &ctx->parked_timer);
    }
}

void repl_session_free_parked(px_ctx *ctx)
{
    ev_timer_stop(ctx->loop, &ctx->parked_timer);
    while (ctx->parked) {
        repl_parked *pk = ctx->parked;
        ctx->parked = pk->next;
        free(pk->req);
        free(pk);
    }
}

/* ---- tokens ------------------------------------------------------------------------ */

int repl_session_token(px_client *c, char *out, size_t outlen)
{
    px_ctx *ctx = c->ctx;
    session_resolve(ctx, c);
    if (c->w_link || c->w_global) return 0;
    const char *replid = ctx->nbackends ? ctx->backends[0]->hs.master_replid : "";
    snprintf(out, outlen, TOKEN_PREFIX "%s-%lld", replid[0] ? replid : "none", c->min_offset);
    return 1;
}

int repl_session_after(px_client *c, const char *tok, size_t len)
{
    px_ctx *ctx = c->ctx;
    char buf[128], replid[64];
    long long off;
    if (len >= sizeof buf || len <= strlen(TOKEN_PREFIX)) return -1;
    memcpy(buf, tok, len);
    buf[len] = 0;
    if (strncmp(buf, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0) return -1;
    const char *body = buf + strlen(TOKEN_PREFIX);
    const char *dash = strrchr(body, '-');
    if (!dash || dash == body || (size_t)(dash - body) >= sizeof replid) return -1;
    memcpy(replid, body, (size_t)(dash - body));
    replid[dash - body] = 0;
    char *end;
    off = strtoll(dash + 1, &end, 10);
    if (*end || off < 0 || end == dash + 1) return -1;
    const repl_health_state *h = &ctx->backends[0]->hs;
    if (off == 0) return 0;                        /* constrains nothing */
    if (strcmp(replid, h->master_replid) == 0 ||
        (strcmp(replid, h->master_replid2) == 0 && h->second_repl_offset >= 0 &&
         off <= h->second_repl_offset)) {
        if (off > c->after_offset) c->after_offset = off;
    } else {
        /* another history (or not known yet): only the leader is safe */
        c->after_offset = OFFSET_INF;
    }
    return 0;
}
