/* quorum_ring.c -- consistent-hash ring for mode quorum (see quorum_ring.h).
 *
 * The ring is one array of points (position, node, vnode ordinal) sorted by
 * position; ties between equal positions (astronomically rare with 64-bit
 * positions, but they must still be broken the same way on every rcproxy)
 * are broken by the node's identity string, then the vnode ordinal, never by
 * the node index.  A lookup is one binary search plus a clockwise walk that
 * keeps a bitmap of nodes already seen on the stack. */
#include "replication/quorum_ring.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t pos;    /* position on the ring */
    uint32_t node;   /* node index */
    uint32_t vnode;  /* 0 .. vnodes-1 */
} ring_point;

struct repl_ring {
    int vnodes;                        /* points per node */
    int nnodes;                        /* nodes on the ring */
    char *ids[REPL_RING_MAX_NODES];    /* identity per index, NULL = absent */
    ring_point *points;                /* sorted, nnodes * vnodes entries */
    size_t npoints;
};

/* ------------------------------------------------------------------------ */
/* hash                                                                      */

/* A small multiply-rotate hash: 8-byte little-endian words are pre-mixed
 * and folded into the state, the tail is folded as one zero-padded word, the
 * length is folded into the seed, and a final xor-shift-multiply avalanche
 * spreads every input bit over all 64 output bits.  Words are assembled
 * byte by byte so the result does not depend on the host's byte order. */
#define H_K1 0x9e3779b97f4a7c15ULL
#define H_K2 0xc2b2ae3d27d4eb4fULL
#define H_K3 0x94d049bb133111ebULL
#define H_K4 0xbf58476d1ce4e5b9ULL

static inline uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t load_le(const unsigned char *p, size_t n) {
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

static inline uint64_t premix(uint64_t w) {
    w *= H_K2;
    w = rotl64(w, 31);
    return w * H_K1;
}

static inline uint64_t avalanche(uint64_t h) {
    h ^= h >> 31;
    h *= H_K4;
    h ^= h >> 27;
    h *= H_K3;
    h ^= h >> 33;
    return h;
}

uint64_t repl_ring_hash64(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = H_K1 ^ ((uint64_t)len * H_K3);
    size_t left = len;

    while (left >= 8) {
        h ^= premix(load_le(p, 8));
        h = rotl64(h, 27) * H_K4 + H_K2;
        p += 8;
        left -= 8;
    }
    if (left > 0) {
        h ^= premix(load_le(p, left));
        h = rotl64(h, 29) * H_K4 + H_K1;
    }
    return avalanche(h);
}

const char *repl_ring_hash_part(const char *key, size_t *len) {
    if (key == NULL || *len == 0)
        return key;
    const char *open = memchr(key, '{', *len);
    if (open == NULL)
        return key;
    size_t after = *len - (size_t)(open - key) - 1;
    const char *close = after > 0 ? memchr(open + 1, '}', after) : NULL;
    if (close == NULL || close == open + 1)
        return key; /* no '}' or "{}": the whole key, as Redis Cluster */
    *len = (size_t)(close - open - 1);
    return open + 1;
}

/* Position of vnode ordinal v of identity id: the hash of the identity's bytes
 * followed by v as 4 little-endian bytes. */
static uint64_t vnode_pos(const char *id, size_t idlen, uint32_t v) {
    unsigned char buf[REPL_RING_MAX_IDENTITY + 4];
    memcpy(buf, id, idlen);
    for (size_t i = 0; i < 4; i++)
        buf[idlen + i] = (unsigned char)(v >> (8 * i));
    return repl_ring_hash64(buf, idlen + 4);
}

/* ------------------------------------------------------------------------ */
/* building                                                                  */

repl_ring *repl_ring_new(int vnodes_per_node) {
    if (vnodes_per_node <= 0)
        vnodes_per_node = REPL_RING_DEFAULT_VNODES;
    if (vnodes_per_node > REPL_RING_MAX_VNODES)
        return NULL;
    repl_ring *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->vnodes = vnodes_per_node;
    return r;
}

void repl_ring_free(repl_ring *r) {
    if (r == NULL)
        return;
    for (int i = 0; i < REPL_RING_MAX_NODES; i++)
        free(r->ids[i]);
    free(r->points);
    free(r);
}

static int point_cmp(const void *a, const void *b, void *arg) {
    const ring_point *pa = a, *pb = b;
    const repl_ring *r = arg;
    if (pa->pos != pb->pos)
        return pa->pos < pb->pos ? -1 : 1;
    if (pa->node != pb->node) {
        int c = strcmp(r->ids[pa->node], r->ids[pb->node]);
        if (c != 0)
            return c;
    }
    if (pa->vnode != pb->vnode)
        return pa->vnode < pb->vnode ? -1 : 1;
    return 0;
}

static int id_in_use(const repl_ring *r, const char *id) {
    for (int i = 0; i < REPL_RING_MAX_NODES; i++)
        if (r->ids[i] != NULL && strcmp(r->ids[i], id) == 0)
            return 1;
    return 0;
}

int repl_ring_add_node(repl_ring *r, int index, const char *id) {
    if (r == NULL || id == NULL || index < 0 || index >= REPL_RING_MAX_NODES)
        return -1;
    size_t idlen = strnlen(id, REPL_RING_MAX_IDENTITY + 1);
    if (idlen == 0 || idlen > REPL_RING_MAX_IDENTITY)
        return -1;
    if (r->ids[index] != NULL || id_in_use(r, id))
        return -1;

    char *copy = malloc(idlen + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, id, idlen + 1);
    size_t total = r->npoints + (size_t)r->vnodes;
    ring_point *pts = realloc(r->points, total * sizeof(*pts));
    if (pts == NULL) {
        free(copy);
        return -1;
    }
    r->points = pts;
    for (int v = 0; v < r->vnodes; v++) {
        ring_point *p = &pts[r->npoints + (size_t)v];
        p->pos = vnode_pos(copy, idlen, (uint32_t)v);
        p->node = (uint32_t)index;
        p->vnode = (uint32_t)v;
    }
    r->ids[index] = copy;
    r->npoints = total;
    r->nnodes++;
    qsort_r(r->points, r->npoints, sizeof(*r->points), point_cmp, r);
    return 0;
}

int repl_ring_remove_node(repl_ring *r, int index) {
    if (r == NULL || index < 0 || index >= REPL_RING_MAX_NODES || r->ids[index] == NULL)
        return -1;
    size_t keep = 0;
    for (size_t i = 0; i < r->npoints; i++)
        if (r->points[i].node != (uint32_t)index)
            r->points[keep++] = r->points[i]; /* order is preserved: stays sorted */
    r->npoints = keep;
    if (keep == 0) {
        free(r->points);
        r->points = NULL;
    } else {
        ring_point *pts = realloc(r->points, keep * sizeof(*pts));
        if (pts != NULL) /* a failed shrink leaves the larger block: harmless */
            r->points = pts;
    }
    free(r->ids[index]);
    r->ids[index] = NULL;
    r->nnodes--;
    return 0;
}

int repl_ring_node_count(const repl_ring *r) {
    return r == NULL ? 0 : r->nnodes;
}

const char *repl_ring_node_id(const repl_ring *r, int index) {
    if (r == NULL || index < 0 || index >= REPL_RING_MAX_NODES)
        return NULL;
    return r->ids[index];
}

/* ------------------------------------------------------------------------ */
/* lookup                                                                    */

/* A clockwise walk over distinct nodes, starting at the key's position. */
typedef struct {
    const repl_ring *r;
    size_t start;   /* first point at or after the key's hash */
    size_t step;    /* points visited so far */
    int found;      /* distinct nodes returned so far */
    uint64_t seen[(REPL_RING_MAX_NODES + 63) / 64];
} ring_walk;

static void walk_init(ring_walk *w, const repl_ring *r, const char *key, size_t len) {
    memset(w, 0, sizeof(*w));
    w->r = r;
    if (r->npoints == 0)
        return;
    size_t hlen = len;
    const char *part = repl_ring_hash_part(key, &hlen);
    uint64_t h = repl_ring_hash64(part, hlen);
    size_t lo = 0, hi = r->npoints; /* lower bound: first pos >= h */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->points[mid].pos < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    w->start = lo == r->npoints ? 0 : lo;
}

/* The next node not yet seen on the walk, or -1 when every node was seen. */
static int walk_next(ring_walk *w) {
    const repl_ring *r = w->r;
    while (w->found < r->nnodes && w->step < r->npoints) {
        size_t i = w->start + w->step;
        if (i >= r->npoints)
            i -= r->npoints;
        w->step++;
        uint32_t node = r->points[i].node;
        uint64_t bit = 1ULL << (node % 64);
        if (w->seen[node / 64] & bit)
            continue;
        w->seen[node / 64] |= bit;
        w->found++;
        return (int)node;
    }
    return -1;
}

int repl_ring_preference(const repl_ring *r, const char *key, size_t len, int n, int *out_nodes) {
    if (r == NULL || (out_nodes == NULL && n > 0) || (key == NULL && len > 0))
        return -1;
    ring_walk w;
    walk_init(&w, r, key, len);
    int count = 0, node;
    while (count < n && (node = walk_next(&w)) >= 0)
        out_nodes[count++] = node;
    return count;
}

int repl_ring_next_healthy(const repl_ring *r, const char *key, size_t len, int n,
                           repl_ring_up_fn *is_up, void *arg, int *out_nodes, int *out_hint) {
    if (r == NULL || is_up == NULL || (out_nodes == NULL && n > 0) || (key == NULL && len > 0))
        return -1;
    if (n > r->nnodes)
        n = r->nnodes;
    int down[REPL_RING_MAX_NODES]; /* home nodes that are down, ring order */
    int ndown = 0, count = 0, node;
    ring_walk w;
    walk_init(&w, r, key, len);

    for (int i = 0; i < n && (node = walk_next(&w)) >= 0; i++) {
        if (is_up(node, arg)) {
            out_nodes[count] = node;
            if (out_hint != NULL)
                out_hint[count] = -1;
            count++;
        } else {
            down[ndown++] = node;
        }
    }
    for (int d = 0; d < ndown && (node = walk_next(&w)) >= 0;) {
        if (!is_up(node, arg))
            continue;
        out_nodes[count] = node;
        if (out_hint != NULL)
            out_hint[count] = down[d];
        count++;
        d++;
    }
    return count;
}
