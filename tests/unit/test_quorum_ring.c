/* test_quorum_ring.c -- replication/quorum_ring: placement of keys on the
 * consistent-hash ring of quorum nodes.
 *
 * The five-node ring used throughout is the demo config's node set,
 * 127.0.0.1:7001 .. 127.0.0.1:7005, with the default 160 virtual nodes. */
#include "replication/quorum_ring.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define NKEYS 100000

static repl_ring *ring5(void) {
    repl_ring *r = repl_ring_new(0);
    cr_assert_not_null(r);
    char id[48];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "127.0.0.1:%d", 7001 + i);
        cr_assert_eq(repl_ring_add_node(r, i, id), 0);
    }
    return r;
}

static size_t keyname(char *buf, size_t cap, int i) {
    return (size_t)snprintf(buf, cap, "key:%d", i);
}

static int pref(const repl_ring *r, const char *key, int n, int *out) {
    return repl_ring_preference(r, key, strlen(key), n, out);
}

/* ------------------------------------------------------------------------ */

Test(quorum_ring, hash_is_pinned) {
    /* The placement of every key depends on this function: a change here
     * moves data on upgrade, so its values are pinned. */
    cr_assert_eq(repl_ring_hash64("", 0), 0x58b38626cd777bb0ULL);
    cr_assert_eq(repl_ring_hash64("a", 1), 0x5805e5dbab0d3a0cULL);
    cr_assert_eq(repl_ring_hash64("foo", 3), 0x0c53b8a989888ed9ULL);
    cr_assert_eq(repl_ring_hash64("127.0.0.1:7001", 14), 0x56b3b4eb7e5aa8c9ULL);
    cr_assert_eq(repl_ring_hash64("0123456789abcdef0", 17), 0x021f66a1c68a4f11ULL);
}

Test(quorum_ring, placement_is_pinned) {
    repl_ring *r = ring5();
    int out[5];
    static const int foo[5] = {4, 0, 2, 1, 3}, bar[5] = {2, 3, 4, 1, 0};
    cr_assert_eq(pref(r, "foo", 5, out), 5);
    cr_assert_arr_eq(out, foo, sizeof(foo));
    cr_assert_eq(pref(r, "bar", 5, out), 5);
    cr_assert_arr_eq(out, bar, sizeof(bar));
    repl_ring_free(r);
}

Test(quorum_ring, hash_avalanche) {
    /* Flipping any one input bit flips each output bit about half the time. */
    static int flips[16 * 8][64];
    unsigned char b[16];
    uint64_t x = 0x1234567;
    const int samples = 1000;
    for (int s = 0; s < samples; s++) {
        for (int i = 0; i < 16; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char)(x >> 56);
        }
        uint64_t h = repl_ring_hash64(b, sizeof(b));
        for (int bit = 0; bit < 16 * 8; bit++) {
            b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            uint64_t d = repl_ring_hash64(b, sizeof(b)) ^ h;
            b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            for (int o = 0; o < 64; o++)
                flips[bit][o] += (int)((d >> o) & 1);
        }
    }
    for (int bit = 0; bit < 16 * 8; bit++)
        for (int o = 0; o < 64; o++)
            cr_assert(flips[bit][o] > samples * 40 / 100 && flips[bit][o] < samples * 60 / 100,
                      "input bit %d -> output bit %d flipped %d/%d", bit, o, flips[bit][o], samples);
}

Test(quorum_ring, deterministic_and_independent_of_index) {
    /* Same identities under other indexes and in another order: the same
     * identities in the same order for every key. */
    repl_ring *a = ring5();
    repl_ring *b = repl_ring_new(160);
    char id[48];
    for (int i = 4; i >= 0; i--) {
        snprintf(id, sizeof(id), "127.0.0.1:%d", 7001 + i);
        cr_assert_eq(repl_ring_add_node(b, 40 + (4 - i) * 3, id), 0);
    }
    char key[32];
    for (int i = 0; i < 10000; i++) {
        size_t len = keyname(key, sizeof(key), i);
        int oa[5], oa2[5], ob[5];
        cr_assert_eq(repl_ring_preference(a, key, len, 5, oa), 5);
        cr_assert_eq(repl_ring_preference(a, key, len, 5, oa2), 5);
        cr_assert_eq(repl_ring_preference(b, key, len, 5, ob), 5);
        for (int j = 0; j < 5; j++) {
            cr_assert_eq(oa[j], oa2[j]);
            cr_assert_str_eq(repl_ring_node_id(a, oa[j]), repl_ring_node_id(b, ob[j]));
        }
    }
    repl_ring_free(a);
    repl_ring_free(b);
}

Test(quorum_ring, distinct_nodes_and_clipping) {
    repl_ring *r = ring5();
    char key[32];
    for (int i = 0; i < 10000; i++) {
        size_t len = keyname(key, sizeof(key), i);
        int out[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
        int seen = 0;
        cr_assert_eq(repl_ring_preference(r, key, len, 8, out), 5); /* n > M: clipped */
        for (int j = 0; j < 5; j++) {
            cr_assert(out[j] >= 0 && out[j] < 5);
            cr_assert_eq(seen & (1 << out[j]), 0, "node %d twice for %s", out[j], key);
            seen |= 1 << out[j];
        }
        cr_assert_eq(out[5], -7); /* nothing written past the count */
        int three[3];
        cr_assert_eq(repl_ring_preference(r, key, len, 3, three), 3);
        cr_assert_arr_eq(three, out, sizeof(three)); /* a prefix of the full order */
    }
    int out[1];
    cr_assert_eq(pref(r, "x", 0, out), 0);
    cr_assert_eq(pref(r, "x", -3, out), 0);
    cr_assert_eq(repl_ring_preference(r, "x", 1, 0, NULL), 0);
    cr_assert_eq(repl_ring_preference(r, "x", 1, 1, NULL), -1);
    cr_assert_eq(repl_ring_preference(NULL, "x", 1, 1, out), -1);
    cr_assert_eq(repl_ring_preference(r, NULL, 0, 1, out), 1); /* empty key is a key */
    cr_assert_eq(repl_ring_preference(r, NULL, 3, 1, out), -1);
    repl_ring_free(r);
}

Test(quorum_ring, empty_and_single_node) {
    repl_ring *r = repl_ring_new(0);
    int out[3];
    cr_assert_eq(pref(r, "foo", 3, out), 0);
    cr_assert_eq(repl_ring_add_node(r, 7, "127.0.0.1:7001"), 0);
    cr_assert_eq(pref(r, "foo", 3, out), 1);
    cr_assert_eq(out[0], 7);
    cr_assert_eq(repl_ring_remove_node(r, 7), 0);
    cr_assert_eq(repl_ring_node_count(r), 0);
    cr_assert_eq(pref(r, "foo", 3, out), 0);
    repl_ring_free(r);
}

Test(quorum_ring, hash_tag_rule) {
    static const struct {
        const char *key, *part;
    } cases[] = {
        {"{user1}.a", "user1"}, {"{user1}.b", "user1"}, {"a{b}c", "b"},
        {"{}", "{}"},           {"{", "{"},             {"}", "}"},
        {"}{", "}{"},           {"{}{a}", "{}{a}"},     {"{{a}}", "{a"},
        {"a{b", "a{b"},         {"ab}c{", "ab}c{"},     {"x{}}y{z}", "x{}}y{z}"},
        {"{a}{b}", "a"},        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].key);
        const char *p = repl_ring_hash_part(cases[i].key, &len);
        cr_assert_eq(len, strlen(cases[i].part), "key %s", cases[i].key);
        cr_assert_eq(memcmp(p, cases[i].part, len), 0, "key %s", cases[i].key);
    }
    /* binary-safe: a NUL inside the tag is hashed like any other byte */
    size_t len = 6;
    const char *p = repl_ring_hash_part("{a\0b}x", &len);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(p, "a\0b", 3), 0);
}

Test(quorum_ring, hash_tags_share_a_list) {
    repl_ring *r = ring5();
    int a[3], b[3], plain[3], c[3];
    char key[48];
    int differs = 0;
    for (int i = 0; i < 200; i++) {
        char tag[16];
        snprintf(tag, sizeof(tag), "user%d", i);
        snprintf(key, sizeof(key), "{%s}.a", tag);
        cr_assert_eq(pref(r, key, 3, a), 3);
        snprintf(key, sizeof(key), "{%s}.b", tag);
        cr_assert_eq(pref(r, key, 3, b), 3);
        snprintf(key, sizeof(key), "prefix{%s}suffix{other}", tag);
        cr_assert_eq(pref(r, key, 3, c), 3);
        cr_assert_eq(pref(r, tag, 3, plain), 3);
        cr_assert_arr_eq(a, b, sizeof(a));
        cr_assert_arr_eq(a, c, sizeof(a));
        cr_assert_arr_eq(a, plain, sizeof(a));
        /* without a tag the two names are placed independently */
        int x[1], y[1];
        snprintf(key, sizeof(key), "%s.a", tag);
        pref(r, key, 1, x);
        snprintf(key, sizeof(key), "%s.b", tag);
        pref(r, key, 1, y);
        differs += x[0] != y[0];
    }
    cr_assert(differs > 100, "untagged keys spread: %d of 200 differ", differs);
    /* "{}" and a lone "{" are no tag: the whole key is hashed, so such keys
     * spread like untagged ones instead of all sharing one list */
    static const char *fmts[] = {"{}.%d", "{.%d", "x{}{y}.%d"};
    for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
        int count[5] = {0};
        for (int i = 0; i < 1000; i++) {
            snprintf(key, sizeof(key), fmts[f], i);
            cr_assert_eq(pref(r, key, 1, a), 1);
            count[a[0]]++;
        }
        for (int n = 0; n < 5; n++)
            cr_assert(count[n] > 100, "%s: node %d got %d of 1000", fmts[f], n, count[n]);
    }
    repl_ring_free(r);
}

Test(quorum_ring, balance) {
    repl_ring *r = ring5();
    int count[5] = {0};
    char key[32];
    for (int i = 0; i < NKEYS; i++) {
        size_t len = keyname(key, sizeof(key), i);
        int out[1];
        cr_assert_eq(repl_ring_preference(r, key, len, 1, out), 1);
        count[out[0]]++;
    }
    double mean = NKEYS / 5.0;
    for (int i = 0; i < 5; i++)
        cr_assert(count[i] > mean * 0.85 && count[i] < mean * 1.15, "node %d has %d keys (mean %.0f)",
                  i, count[i], mean);
    repl_ring_free(r);
}

Test(quorum_ring, balance_holds_broadly_with_more_vnodes) {
    /* With 160 points a node's share has a relative spread of ~1/sqrt(160),
     * about 8%, so +-15% is not guaranteed for every node set; with the
     * maximum of 1024 points it holds for any. 10 other node sets, 20k keys. */
    char id[48], key[32];
    for (int set = 0; set < 10; set++) {
        repl_ring *r = repl_ring_new(REPL_RING_MAX_VNODES);
        for (int i = 0; i < 5; i++) {
            snprintf(id, sizeof(id), "10.0.%d.%d:6379", set, i + 1);
            cr_assert_eq(repl_ring_add_node(r, i, id), 0);
        }
        int count[5] = {0};
        for (int i = 0; i < 20000; i++) {
            size_t len = keyname(key, sizeof(key), i);
            int out[1];
            repl_ring_preference(r, key, len, 1, out);
            count[out[0]]++;
        }
        for (int i = 0; i < 5; i++)
            cr_assert(count[i] > 4000 * 0.85 && count[i] < 4000 * 1.15, "set %d node %d: %d", set, i,
                      count[i]);
        repl_ring_free(r);
    }
}

/* For every key: after adding node `added`, its list (n) with `added` taken
 * out must be a prefix of its old list: the old order kept, the new node
 * inserted.  Returns how many primaries changed; every change must be to
 * the added node. */
static int check_insertion(const repl_ring *before, const repl_ring *after, int added, int n) {
    char key[32];
    int moved = 0;
    for (int i = 0; i < NKEYS; i++) {
        size_t len = keyname(key, sizeof(key), i);
        int o[8], nw[8];
        cr_assert_eq(repl_ring_preference(before, key, len, n, o), n);
        cr_assert_eq(repl_ring_preference(after, key, len, n, nw), n);
        int j = 0;
        for (int k = 0; k < n; k++) {
            if (nw[k] == added)
                continue;
            cr_assert_eq(nw[k], o[j], "key %s: position %d was %d, now %d", key, k, o[j], nw[k]);
            j++;
        }
        cr_assert(j >= n - 1);
        if (nw[0] != o[0]) {
            cr_assert_eq(nw[0], added, "key %s moved to %d, not to the new node", key, nw[0]);
            moved++;
        }
    }
    return moved;
}

Test(quorum_ring, adding_a_node_moves_about_one_sixth) {
    repl_ring *before = ring5();
    repl_ring *after = ring5();
    cr_assert_eq(repl_ring_add_node(after, 5, "127.0.0.1:7006"), 0);
    int moved = check_insertion(before, after, 5, 3);
    double frac = (double)moved / NKEYS;
    cr_assert(frac > 1.0 / 6 * 0.75 && frac < 1.0 / 6 * 1.25, "%.3f of primaries moved", frac);
    repl_ring_free(before);
    repl_ring_free(after);
}

Test(quorum_ring, removal_is_symmetric) {
    /* Removing node 2 of five: every key's full order loses node 2 and is
     * otherwise unchanged; adding it back restores every list exactly. */
    repl_ring *r = ring5();
    repl_ring *ref = ring5();
    cr_assert_eq(repl_ring_remove_node(r, 2), 0);
    cr_assert_eq(repl_ring_node_count(r), 4);
    cr_assert_null(repl_ring_node_id(r, 2));
    char key[32];
    int moved = 0;
    for (int i = 0; i < NKEYS; i++) {
        size_t len = keyname(key, sizeof(key), i);
        int full[5], less[5];
        cr_assert_eq(repl_ring_preference(ref, key, len, 5, full), 5);
        cr_assert_eq(repl_ring_preference(r, key, len, 5, less), 4);
        int j = 0;
        for (int k = 0; k < 5; k++)
            if (full[k] != 2)
                cr_assert_eq(less[j++], full[k], "key %s", key);
        moved += full[0] == 2;
    }
    cr_assert(moved > NKEYS / 5 * 0.85 && moved < NKEYS / 5 * 1.15);
    /* removing the node just added (the reverse of the test above) */
    cr_assert_eq(repl_ring_add_node(r, 2, "127.0.0.1:7003"), 0);
    for (int i = 0; i < NKEYS; i += 7) {
        size_t len = keyname(key, sizeof(key), i);
        int a[5], b[5];
        repl_ring_preference(ref, key, len, 5, a);
        repl_ring_preference(r, key, len, 5, b);
        cr_assert_arr_eq(a, b, sizeof(a));
    }
    /* same identity back under another index: the same placement by identity */
    cr_assert_eq(repl_ring_remove_node(r, 2), 0);
    cr_assert_eq(repl_ring_add_node(r, 9, "127.0.0.1:7003"), 0);
    for (int i = 0; i < NKEYS; i += 7) {
        size_t len = keyname(key, sizeof(key), i);
        int a[5], b[5];
        repl_ring_preference(ref, key, len, 5, a);
        repl_ring_preference(r, key, len, 5, b);
        for (int k = 0; k < 5; k++)
            cr_assert_eq(b[k], a[k] == 2 ? 9 : a[k]);
    }
    repl_ring_free(r);
    repl_ring_free(ref);
}

Test(quorum_ring, bad_configuration_is_refused) {
    cr_assert_null(repl_ring_new(REPL_RING_MAX_VNODES + 1));
    repl_ring *r = repl_ring_new(8);
    char longid[REPL_RING_MAX_IDENTITY + 2];
    memset(longid, 'h', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    cr_assert_eq(repl_ring_add_node(r, 0, "a:1"), 0);
    cr_assert_eq(repl_ring_add_node(r, 0, "b:1"), -1, "index in use");
    cr_assert_eq(repl_ring_add_node(r, 1, "a:1"), -1, "identity in use");
    cr_assert_eq(repl_ring_add_node(r, 1, ""), -1);
    cr_assert_eq(repl_ring_add_node(r, 1, NULL), -1);
    cr_assert_eq(repl_ring_add_node(r, 1, longid), -1);
    longid[REPL_RING_MAX_IDENTITY] = '\0'; /* exactly the limit: fine */
    cr_assert_eq(repl_ring_add_node(r, 1, longid), 0);
    cr_assert_eq(repl_ring_add_node(r, -1, "c:1"), -1);
    cr_assert_eq(repl_ring_add_node(r, REPL_RING_MAX_NODES, "c:1"), -1);
    cr_assert_eq(repl_ring_add_node(r, REPL_RING_MAX_NODES - 1, "c:1"), 0);
    cr_assert_eq(repl_ring_remove_node(r, 5), -1);
    cr_assert_eq(repl_ring_remove_node(r, -1), -1);
    cr_assert_eq(repl_ring_remove_node(r, REPL_RING_MAX_NODES), -1);
    cr_assert_eq(repl_ring_node_count(r), 3);
    cr_assert_eq(repl_ring_add_node(NULL, 0, "x:1"), -1);
    cr_assert_eq(repl_ring_remove_node(NULL, 0), -1);
    cr_assert_eq(repl_ring_node_count(NULL), 0);
    repl_ring_free(NULL);
    repl_ring_free(r);
}

Test(quorum_ring, many_nodes) {
    repl_ring *r = repl_ring_new(16);
    char id[48];
    for (int i = 0; i < REPL_RING_MAX_NODES; i++) {
        snprintf(id, sizeof(id), "node-%d:6379", i);
        cr_assert_eq(repl_ring_add_node(r, i, id), 0);
    }
    int out[REPL_RING_MAX_NODES];
    cr_assert_eq(pref(r, "k", REPL_RING_MAX_NODES + 5, out), REPL_RING_MAX_NODES);
    static char seen[REPL_RING_MAX_NODES];
    for (int i = 0; i < REPL_RING_MAX_NODES; i++) {
        cr_assert_eq(seen[out[i]], 0);
        seen[out[i]] = 1;
    }
    repl_ring_free(r);
}

/* ------------------------------------------------------------------------ */
/* sloppy quorum                                                             */

typedef struct {
    unsigned down; /* bit per node index */
    int calls;
} up_state;

static int is_up(int node, void *arg) {
    up_state *s = arg;
    s->calls++;
    return !(s->down & (1u << node));
}

Test(quorum_ring, next_healthy_all_up_is_the_preference_list) {
    repl_ring *r = ring5();
    up_state st = {0, 0};
    int pl[3], out[3], hint[3];
    cr_assert_eq(pref(r, "foo", 3, pl), 3);
    cr_assert_eq(repl_ring_next_healthy(r, "foo", 3, 3, is_up, &st, out, hint), 3);
    cr_assert_arr_eq(out, pl, sizeof(pl));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(hint[i], -1);
    cr_assert_eq(st.calls, 3);
    repl_ring_free(r);
}

Test(quorum_ring, next_healthy_substitutes_in_ring_order) {
    /* Every combination of down nodes, on many keys, against a reference
     * computed from the key's full ring order. */
    repl_ring *r = ring5();
    char key[32];
    for (int i = 0; i < 300; i++) {
        size_t len = keyname(key, sizeof(key), i);
        int full[5];
        cr_assert_eq(repl_ring_preference(r, key, len, 5, full), 5);
        for (unsigned down = 0; down < 32; down++) {
            int want[5], whint[5], nwant = 0, homes_down[5], nhd = 0;
            for (int k = 0; k < 3; k++) {
                if (down & (1u << full[k]))
                    homes_down[nhd++] = full[k];
                else
                    want[nwant] = full[k], whint[nwant++] = -1;
            }
            for (int k = 3, d = 0; k < 5 && d < nhd; k++)
                if (!(down & (1u << full[k])))
                    want[nwant] = full[k], whint[nwant++] = homes_down[d++];
            up_state st = {down, 0};
            int out[5] = {-9, -9, -9, -9, -9}, hint[5];
            int got = repl_ring_next_healthy(r, key, len, 3, is_up, &st, out, hint);
            cr_assert_eq(got, nwant, "key %s down %#x", key, down);
            for (int k = 0; k < got; k++) {
                cr_assert_eq(out[k], want[k], "key %s down %#x pos %d", key, down, k);
                cr_assert_eq(hint[k], whint[k], "key %s down %#x pos %d", key, down, k);
            }
            cr_assert_eq(out[got], -9); /* got <= n = 3: nothing written past it */
            cr_assert(st.calls <= 5);
        }
    }
    repl_ring_free(r);
}

Test(quorum_ring, next_healthy_edges) {
    repl_ring *r = ring5();
    up_state all_down = {0x1f, 0};
    int out[5], hint[5];
    cr_assert_eq(repl_ring_next_healthy(r, "k", 1, 3, is_up, &all_down, out, hint), 0);
    up_state none = {0, 0};
    cr_assert_eq(repl_ring_next_healthy(r, "k", 1, 9, is_up, &none, out, NULL), 5); /* clipped */
    cr_assert_eq(repl_ring_next_healthy(r, "k", 1, 0, is_up, &none, out, hint), 0);
    cr_assert_eq(repl_ring_next_healthy(r, "k", 1, 3, NULL, &none, out, hint), -1);
    cr_assert_eq(repl_ring_next_healthy(r, "k", 1, 3, is_up, &none, NULL, hint), -1);
    cr_assert_eq(repl_ring_next_healthy(NULL, "k", 1, 3, is_up, &none, out, hint), -1);
    cr_assert_eq(repl_ring_next_healthy(r, NULL, 1, 3, is_up, &none, out, hint), -1);
    /* hash tags apply here too */
    int a[3], b[3];
    up_state d = {1u << 0, 0};
    cr_assert_eq(repl_ring_next_healthy(r, "{t}1", 4, 3, is_up, &d, a, NULL), 3);
    d.calls = 0;
    cr_assert_eq(repl_ring_next_healthy(r, "{t}2", 4, 3, is_up, &d, b, NULL), 3);
    cr_assert_arr_eq(a, b, sizeof(a));
    repl_ring_free(r);
}
