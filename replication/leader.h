/* leader.h -- mode leader: writes to the leader, reads spread over healthy,
 * in-sync replicas (the leader when none is). */
#ifndef REPL_LEADER_H
#define REPL_LEADER_H

#include "proxy/proxy.h"

extern const px_strategy repl_leader_strategy;

/* Should replica b get reads, given its last health poll? why (may be NULL)
 * gets the reason when not. */
int repl_leader_replica_ok(const px_backend *b, const char **why);

#endif
