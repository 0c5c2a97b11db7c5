/* quorum_ring.h -- mode quorum placement: a consistent-hash ring of the M
 * quorum nodes, giving every key its preference list (the N distinct nodes
 * that hold its replicas).  Pure computation: no I/O, no allocation per
 * lookup.
 *
 * Each node is added under the index the caller uses for it (its position in
 * the `node` lines of the config, say) and under an identity string, normally
 * "host:port" exactly as configured.  The ring positions of a node's virtual
 * nodes are hashes of its identity, never of its index, so every rcproxy with
 * the same node set computes the same placement whatever order the `node`
 * lines come in.  Identities must therefore be spelled the same way on every
 * rcproxy ("127.0.0.1:7001" and "localhost:7001" are different nodes).
 *
 *        key --hash--> h
 *                      |
 *   ... [p0 n2] [p1 n0] [p2 n2] [p3 n1] [p4 n0] ...   points sorted by position
 *                      ^ first point with position >= h (wrapping)
 *   walk clockwise, keep each node the first time it is seen:  n0, n2, n1
 *
 * Adding a node only inserts its points: for every key the new list is the old
 * list with the new node inserted somewhere (and the last entry pushed out),
 * so only keys whose walk meets one of the new points change, about 1/(M+1)
 * of primaries.  Removing a node is the exact inverse.
 *
 * Hash tags follow Redis Cluster: if the key contains '{' and a later '}'
 * with at least one byte between the first '{' and the first '}' after it,
 * only those bytes are hashed, so "{user1}.a" and "{user1}.b" share a list. */
#ifndef REPL_QUORUM_RING_H
#define REPL_QUORUM_RING_H

#include <stddef.h>
#include <stdint.h>

#define REPL_RING_DEFAULT_VNODES 160 /* virtual nodes per node (ketama's count) */
#define REPL_RING_MAX_VNODES 1024    /* upper bound for vnodes_per_node */
#define REPL_RING_MAX_NODES 256      /* node indexes are 0 .. REPL_RING_MAX_NODES-1 */
#define REPL_RING_MAX_IDENTITY 255   /* longest identity string, in bytes */

typedef struct repl_ring repl_ring;

/* Says whether node index `node` is up right now (non-zero) or down (0). */
typedef int repl_ring_up_fn(int node, void *arg);

/* An empty ring whose nodes get vnodes_per_node points each (0 or less:
 * REPL_RING_DEFAULT_VNODES).  Returns NULL when vnodes_per_node is above
 * REPL_RING_MAX_VNODES or memory runs out.  Free with repl_ring_free. */
repl_ring *repl_ring_new(int vnodes_per_node);
void repl_ring_free(repl_ring *r);

/* Add node `index` (0 <= index < REPL_RING_MAX_NODES) with identity `id`
 * (NUL-terminated, 1..REPL_RING_MAX_IDENTITY bytes; copied).  Returns 0, or
 * -1 with the ring unchanged when the index is out of range or already used,
 * the identity is empty, too long or already on the ring, or memory runs
 * out.  O(P log P) in the number of points: meant for configuration time. */
int repl_ring_add_node(repl_ring *r, int index, const char *id);

/* Take node `index` off the ring.  Returns 0, or -1 when it is not on it. */
int repl_ring_remove_node(repl_ring *r, int index);

/* Number of nodes on the ring. */
int repl_ring_node_count(const repl_ring *r);

/* Identity of node `index`, or NULL when it is not on the ring.  Owned by the
 * ring, valid until the node is removed. */
const char *repl_ring_node_id(const repl_ring *r, int index);

/* The part of a key that is hashed (Redis Cluster hash tag rule): sets *len
 * and returns a pointer into key. */
const char *repl_ring_hash_part(const char *key, size_t *len);

/* 64-bit hash of key[0..len) (the whole bytes, no hash-tag rule).  Stable
 * across platforms and runs: the ring's placement depends on it. */
uint64_t repl_ring_hash64(const void *data, size_t len);

/* The key's preference list: writes the first n DISTINCT nodes clockwise from
 * the key's hash (hash tag applied) into out_nodes, primary first.  Returns
 * how many were written: min(n, node count); 0 on an empty ring or n <= 0;
 * -1 when r is NULL, out_nodes is NULL with n > 0 or key is NULL with
 * len > 0.  Passing n = node count
 * gives the whole ring order for the key (the "extended" preference list). */
int repl_ring_preference(const repl_ring *r, const char *key, size_t len, int n, int *out_nodes);

/* Sloppy quorum for hinted handoff.  The key's home replicas are its first n
 * distinct nodes (as repl_ring_preference).  Walking the ring from the key,
 * this writes up to n nodes that is_up(node, arg) reports up: every home
 * node that is up, and for each home node that is down, the next up node
 * beyond the first n (in ring order) as its stand-in.  out_hint[i] is -1
 * when out_nodes[i] is a home node, else the index of the down home node
 * whose write out_nodes[i] holds (the hint to hand back later); out_hint may
 * be NULL.  Entries come in ring order; is_up is asked at most once per
 * node.  Returns how many were written (less than n when too few nodes are
 * up), -1 on bad arguments as repl_ring_preference or a NULL is_up. */
int repl_ring_next_healthy(const repl_ring *r, const char *key, size_t len, int n,
                           repl_ring_up_fn *is_up, void *arg, int *out_nodes, int *out_hint);

#endif
