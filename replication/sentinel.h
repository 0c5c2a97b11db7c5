/* sentinel.h -- following Redis Sentinel: where the leader and replicas are.
 *
 * rcproxy does not elect leaders: Sentinel does, and this module tells the
 * proxy what Sentinel decided.  It asks the configured sentinels in turn for
 * the leader (SENTINEL GET-MASTER-ADDR-BY-NAME) and the replicas (SENTINEL
 * REPLICAS), verifies the leader answers ROLE as master, and subscribes on
 * every sentinel to +switch-master, +sdown, -sdown, +slave, +reboot (and
 * +odown, -odown, +convert-to-slave) to refresh at once on any change, plus
 * a periodic refresh.  All I/O is hiredis async on the proxy's libev loop. */
#ifndef REPL_SENTINEL_H
#define REPL_SENTINEL_H

#include "conf/config.h"

struct ev_loop;

typedef struct repl_sentinel repl_sentinel;

/* What Sentinel says the topology is.  replicas excludes those Sentinel
 * flags s_down/o_down/disconnected. */
typedef struct repl_sentinel_view {
    conf_addr leader;
    conf_addr replicas[CONF_MAX_BACKENDS];
    int replica_count;
} repl_sentinel_view;

/* Called on the loop thread with every new view that differs from the last
 * one delivered (and once for the first view); reason says what triggered
 * it ("start", "+switch-master", "refresh", ...). */
typedef void repl_sentinel_cb(const repl_sentinel_view *view, const char *reason, void *arg);

/* Start following master `name` through the sentinels (addresses copied).
 * password: for the sentinels (AUTH), leader_password: for the ROLE check
 * on the leader (backend-password); either may be "" or NULL.  refresh_ms:
 * period of the full refresh (e.g. 1000).  Never NULL. */
repl_sentinel *repl_sentinel_new(struct ev_loop *loop, const conf_addr *sentinels, int n,
                                 const char *name, const char *password,
                                 const char *leader_password, int refresh_ms,
                                 repl_sentinel_cb *cb, void *arg);
void repl_sentinel_free(repl_sentinel *s);

/* Called with active=1 when a sentinel announces a failover of the leader
 * (+try-failover, +elected-leader, +selected-slave, ... on its pub/sub
 * link, naming the leader's address) and with active=0 when every such
 * failover ended without a switch (-failover-abort-*, the announcing
 * sentinel's link lost, or 60 s without news).  A switch ends it through
 * the view callback instead (a new leader), without a call here.  why is
 * the event.  The callback may call repl_sentinel_free(). */
typedef void repl_sentinel_failover_cb(int active, const char *why, void *arg);
void repl_sentinel_on_failover(repl_sentinel *s, repl_sentinel_failover_cb *cb, void *arg);

/* Blocking query at start-up (hiredis sync API, each sentinel in turn, each
 * bounded by timeout_ms): fills view and returns 0, or -1 with a reason in
 * err when no sentinel could say (or the leader it names does not answer
 * ROLE as master). */
int repl_sentinel_query_sync(const conf_addr *sentinels, int n, const char *name,
                             const char *password, const char *leader_password, int timeout_ms,
                             repl_sentinel_view *view, char *err, size_t errlen);

#endif
