/* quorum_bg.h -- mode quorum background repair: anti-entropy and hinted
 * hand-off, over the module's own control links to the quorum nodes.
 *
 * The data path (replication/quorum.c) never waits on this module.  It keeps
 * one hiredis async link per node on the proxy's libev loop (AUTH when a
 * password is set, then `FUNCTION LOAD REPLACE <REPL_QUORUM_LIBRARY>`), and
 * runs two tasks on it:
 *
 *   anti-entropy   walks the nodes one after the other with
 *                  `SCAN <cursor> COUNT <batch> TYPE string`, compares every
 *                  key's versions on its home nodes (`FCALL_RO rcp_vhead`)
 *                  and copies the newest (`rcp_vget` -> `rcp_vset`/`rcp_vdel`)
 *                  to the home nodes that miss it or hold an older one; at
 *                  most `rate` keys scanned per second on average.  The cursor
 *                  of each node is kept in memory and stored on the node
 *                  (`SET rcproxy:ae:cursor <cursor>`) after every batch, so a
 *                  restarted rcproxy resumes where the last one stopped.
 *   hand-off       every ~500 ms, `XLEN rcproxy:hints:<owner>` for every
 *                  (holder, owner) pair of up nodes; each non-empty stream
 *                  whose owner is up is trimmed (`XTRIM MINID now -
 *                  tombstone_ttl_ms`), read 100 entries at a time and
 *                  replayed to the owner; an entry the owner answered
 *                  (any code) is XDELed and the holder's stand-in copy
 *                  dropped (`rcp_vdrop`) when the holder is not a home node
 *                  of the key.
 *
 * A node is "up" from the moment its link answered the handshake until the
 * link drops; a down node is reconnected with back-off (100 ms doubling to
 * 2 s).  Every wait is bounded: a connect that has not completed within
 * connect_timeout_ms, or a link with a command unanswered for
 * 3 * connect_timeout_ms (a SIGSTOPped node), is dropped.  Single-threaded:
 * every function runs on the loop's thread. */
#ifndef REPL_QUORUM_BG_H
#define REPL_QUORUM_BG_H

#include <stddef.h>

#include "conf/config.h"
#include "replication/quorum_ring.h"

struct ev_loop;

typedef struct repl_qbg repl_qbg;

typedef struct repl_qbg_config {
    const conf_addr *nodes;    /* node i = ring index i; its identity (hint stream
                                * rcproxy:hints:<identity>) is repl_ring_node_id(ring, i),
                                * or "host:port" ("%s:%d") when i is not on the ring */
    int nnodes;                /* 1 .. REPL_RING_MAX_NODES */
    const repl_ring *ring;     /* owned by the caller, outlives the module */
    int n;                     /* quorum-n: home nodes = repl_ring_preference(ring, key, n);
                                * <= 0 or > nnodes: nnodes */
    int rate;                  /* anti-entropy keys per second, 0 = anti-entropy off */
    long long tombstone_ttl_ms;/* hints older than this are dropped (XTRIM MINID); also the
                                * ttl of a copied tombstone whose own TTL is unknown;
                                * <= 0: REPL_QUORUM_TOMBSTONE_TTL_MS_DEFAULT */
    const char *user, *password; /* AUTH for the nodes (NULL or "" = none) */
    int connect_timeout_ms;    /* connects; command replies get 3x this; <= 0: 1000 */
} repl_qbg_config;

typedef struct repl_qbg_stats {
    long long ae_passes;                         /* completed full scans of all nodes */
    long long ae_keys_scanned, ae_keys_repaired; /* repaired = (key, node) copies written */
    int ae_node;                                 /* the node being scanned */
    unsigned long long ae_cursor;                /* its SCAN cursor */
    long long hints_replayed;                    /* entries the owner answered (then XDELed) */
    long long hints_pending;                     /* total XLEN seen at the last check */
    long long errors;                            /* ae_errors + hint_errors */
    /* added fields */
    long long ae_errors;                         /* error replies / malformed replies in AE */
    long long hint_errors;                       /* owner errors, malformed entries, ... */
    int nodes_up;                                /* links up right now */
    int rate;                                    /* the configured anti-entropy rate */
} repl_qbg_stats;

/* A stopped module for cfg: nothing is connected until repl_qbg_start.
 * Copies cfg (the nodes array and the strings; not the ring, which must
 * outlive the module).  Returns NULL when loop or cfg is NULL, nnodes is out
 * of 1..REPL_RING_MAX_NODES, ring is NULL or a node has no host / a port
 * outside 1..65535.  Free with repl_qbg_free. */
repl_qbg *repl_qbg_new(struct ev_loop *loop, const repl_qbg_config *cfg);

/* Start the timers and the first connects (a second call does nothing).
 * Harmless when nodes are down: they are retried with back-off. */
void repl_qbg_start(repl_qbg *bg);

/* Stop everything and free: every link is closed (commands in flight get
 * their failure callbacks inside this call and are freed), every timer of
 * the module is stopped.  NULL is ignored. */
void repl_qbg_free(repl_qbg *bg);

/* A snapshot of the counters into *out. */
void repl_qbg_stats_get(const repl_qbg *bg, repl_qbg_stats *out);

/* Append INFO lines "anti_entropy_rate:..\r\nanti_entropy_passes:..\r\n..."
 * (every stats field, named anti_entropy_* / hints_*) to out[0..cap).  Only
 * whole lines are written and out stays NUL-terminated when cap > 0.
 * Returns the bytes written, without the NUL. */
size_t repl_qbg_info(const repl_qbg *bg, char *out, size_t cap);

#endif
