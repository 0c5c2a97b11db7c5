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

#endif
