/* leader.c -- mode leader: where writes go, which replicas may serve reads,
 * and changes of membership.  Which replica serves a given read is decided by
 * the session's consistency level in replication/session.c.
 *
 * A replica is in read rotation while its last health poll says: reachable,
 * polled since its data link last came back, not loading, role slave,
 * master_link_status up (unless the leader is down too), no sync in progress,
 * and within replica-max-lag. */
#include "replication/leader.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/backend.h"
#include "proxy/log.h"

int repl_leader_replica_ok(const px_backend *b, const char **why)
{
    const repl_health_state *h = &b->hs;
    const char *r = NULL;
    if (b->link_failed) r = "data link down";
    else if (!h->reachable) r = h->polls + h->failures == 0 ? "not checked yet" : "unreachable";
    else if (h->last_ok_ms <= b->link_down_ms) r = "not checked since its link came back";
    else if (h->loading || h->async_loading) r = "loading";
    else if (h->role != REPL_ROLE_REPLICA) r = "not a replica";
    else if (!h->link_up && px_backend_usable(b->ctx->backends[0], NULL))
        r = "replication link down";   /* (with the leader down too, it still has the latest data) */
    else if (h->sync_in_progress) r = "sync in progress";
    else if (b->ctx->cfg.replica_max_lag > 0 && b->ctx->backends[0]->known_offset >= 0 &&
             b->known_offset >= 0 &&
             b->ctx->backends[0]->known_offset - b->known_offset > b->ctx->cfg.replica_max_lag)
        r = "lagging more than replica-max-lag";
    if (why) *why = r;
    return r == NULL;
}

static px_backend *route_write(px_ctx *ctx, px_client *c)
{
    (void)c;
    px_backend *leader = ctx->backends[0];
    return px_backend_usable(leader, NULL) ? leader : NULL;
}

static void on_health(px_ctx *ctx, px_backend *b, const repl_health_state *st)
{
    (void)ctx;
    int was_reachable = b->hs.reachable;
    b->hs = *st;
    if (st->reachable && st->repl_offset >= 0) b->known_offset = st->repl_offset;
    if (b->role == PX_ROLE_LEADER) {
        if (was_reachable != st->reachable) {
            if (st->reachable) px_notice("Leader %s is reachable", b->name);
            else px_notice("Leader %s is unreachable: %s", b->name, st->last_error);
        }
        return;
    }
    const char *why = NULL;
    int ok = repl_leader_replica_ok(b, &why);
    if (ok != b->rotation_logged) {
        if (ok) px_notice("Replica %s is in read rotation", b->name);
        else px_notice("Replica %s is out of read rotation: %s", b->name, why);
        b->rotation_logged = ok;
    }
}

const px_strategy repl_leader_strategy = {
    .name = "leader",
    .route_write = route_write,
    .on_health = on_health,
};

/* ---- changing membership (Sentinel, SIGHUP) ------------------------------- */

static int same_addr(const conf_addr *a, const conf_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* The current backend at addr, or NULL. */
static px_backend *find_backend(px_ctx *ctx, const conf_addr *addr)
{
    for (int i = 0; i < ctx->nbackends; i++)
        if (same_addr(&ctx->backends[i]->addr, addr)) return ctx->backends[i];
    return NULL;
}

static px_backend *take_or_create(px_ctx *ctx, const conf_addr *addr, int index, px_role role,
                                  int *created)
{
    px_backend *b = find_backend(ctx, addr);
    *created = 0;
    if (!b) {
        b = px_backend_new(ctx, index, role, addr);
        *created = 1;
    }
    return b;
}

int repl_leader_set_topology(px_ctx *ctx, const conf_addr *leader, const conf_addr *replicas,
                             int nreplicas, const char *reason)
{
    int n = 1 + nreplicas, created[1 + CONF_MAX_BACKENDS];
    if (nreplicas < 0 || nreplicas > CONF_MAX_BACKENDS) return -1;
    px_backend **next = calloc((size_t)n, sizeof *next);
    if (!next) abort();
    px_backend *old_leader = ctx->nbackends ? ctx->backends[0] : NULL;

    next[0] = take_or_create(ctx, leader, 0, PX_ROLE_LEADER, &created[0]);
    for (int i = 0; i < nreplicas; i++) {
        next[i + 1] = take_or_create(ctx, &replicas[i], i + 1, PX_ROLE_REPLICA, &created[i + 1]);
        for (int k = 0; k <= i; k++)
            if (next[k] == next[i + 1]) {        /* duplicate address: change nothing */
                for (int j = 0; j <= i + 1; j++)
                    if (created[j] && (j == i + 1 || next[j] != next[i + 1])) px_backend_free(next[j]);
                free(next);
                return -1;
            }
    }
    /* what is no longer there is retired: its in-flight requests are answered */
    for (int i = 0; i < ctx->nbackends; i++) {
        px_backend *b = ctx->backends[i];
        int kept = 0;
        for (int k = 0; k < n; k++) kept |= next[k] == b;
        if (!kept) {
            px_notice("%s %s left the topology (%s)", b->role == PX_ROLE_LEADER ? "Leader" : "Replica",
                      b->name, reason);
            px_backend_retire(b, b->role == PX_ROLE_LEADER ? "the leader changed" : "removed from the topology");
        }
    }
    /* a leader demoted to replica: writes in flight on it have an unknown fate */
    for (int i = 1; i < n; i++)
        if (next[i]->role == PX_ROLE_LEADER) {
            px_notice("Former leader %s is now a replica (%s)", next[i]->name, reason);
            next[i]->role = PX_ROLE_REPLICA;
            px_backend_reset_links(next[i], "the leader changed");
        }
    if (next[0]->role != PX_ROLE_LEADER) next[0]->role = PX_ROLE_LEADER;
    if (old_leader != next[0]) {
        px_notice("Writes now go to leader %s (%s)", next[0]->name, reason);
        if (old_leader) old_leader->failover_fenced = 0;   /* its failover is over */
    }
    for (int i = 0; i < n; i++) {
        next[i]->index = i;
        next[i]->rotation_logged = 0;           /* logged again after a health poll */
    }
    free(ctx->backends);
    ctx->backends = next;
    ctx->nbackends = n;
    ctx->next_replica = 0;
    for (int i = 0; i < n; i++)
        if (created[i]) {
            px_notice("%s %s joined the topology (%s)", i == 0 ? "Leader" : "Replica", next[i]->name, reason);
            px_backend_start(next[i]);
        }
    return 0;
}

void repl_leader_failover(px_ctx *ctx, int active, const char *why)
{
    if (ctx->nbackends == 0) return;
    px_backend *leader = ctx->backends[0];
    if (active && !leader->failover_fenced) {
        px_warning("Sentinel is failing leader %s over (%s): it takes no writes until the "
                   "failover ends", leader->name, why);
        leader->failover_fenced = 1;
        px_backend_reset_links(leader, "Sentinel failover in progress");
    } else if (!active && leader->failover_fenced) {
        px_notice("The failover of leader %s ended without a switch (%s): writes go to it again",
                  leader->name, why);
        leader->failover_fenced = 0;
    }
}
