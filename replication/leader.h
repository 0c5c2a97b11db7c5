/* leader.h -- mode leader: writes to the leader, reads spread over healthy,
 * in-sync replicas (the leader when none is). */
#ifndef REPL_LEADER_H
#define REPL_LEADER_H

#include "proxy/proxy.h"

extern const px_strategy repl_leader_strategy;

/* Should replica b get reads, given its last health poll? why (may be NULL)
 * gets the reason when not. */
int repl_leader_replica_ok(const px_backend *b, const char **why);

/* Make the topology leader + replicas (Sentinel's view, or a reloaded
 * config).  Backends already known keep their links; new ones are connected
 * (and serve reads once a health poll says they are in sync); removed ones
 * are retired, their requests in flight answered (writes: outcome unknown).
 * When the leader changes, new writes go to the new one at once.
 * Returns 0, or -1 for a bad list (nothing changed). */
int repl_leader_set_topology(px_ctx *ctx, const conf_addr *leader, const conf_addr *replicas,
                             int nreplicas, const char *reason);

/* Sentinel is failing the leader over (active=1): it gets no more writes
 * ("leader ... unavailable (Sentinel failover in progress)") and the
 * requests in flight on it are answered as for a broken link (writes:
 * outcome unknown, reads: resent), so that nothing the old leader applies
 * while a replica is promoted is acknowledged.  active=0 (the failover
 * ended without a switch): writes go to it again.  A new leader
 * (repl_leader_set_topology) ends it too. */
void repl_leader_failover(px_ctx *ctx, int active, const char *why);

#endif
