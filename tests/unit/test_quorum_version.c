/* test_quorum_version.c -- replication/quorum_version: the hybrid logical
 * clock, the version text form and the stored value format. */
#include "replication/quorum_version.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* A small deterministic generator (64-bit LCG, high bits used). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t hi = rng_state >> 32;
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (hi << 32) | (rng_state >> 32);
}

static repl_version ver(uint64_t ms, uint32_t counter, uint32_t node) {
    repl_version v = {ms, counter, node};
    return v;
}

static int sign(int x) {
    return (x > 0) - (x < 0);
}

/* ------------------------------------------------------------------------ */
/* clock                                                                     */

Test(quorum_version, init) {
    repl_hlc h;
    repl_hlc_init(&h, 42);
    cr_assert_eq(h.node, 42);
    cr_assert_eq(h.last.ms, 0);
    cr_assert_eq(h.last.counter, 0);
    cr_assert_eq(h.max_skew_ms, REPL_HLC_DEFAULT_MAX_SKEW_MS);
    repl_version v = repl_hlc_now(&h, 1000);
    cr_assert_eq(v.ms, 1000);
    cr_assert_eq(v.counter, 0);
    cr_assert_eq(v.node, 42);
}

Test(quorum_version, now_follows_the_wall_clock) {
    repl_hlc h;
    repl_hlc_init(&h, 1);
    static const struct {
        uint64_t wall, ms;
        uint32_t counter;
    } steps[] = {
        {100, 100, 0}, {100, 100, 1}, {100, 100, 2}, {101, 101, 0},
        {99, 101, 1},  /* wall clock stepped back: ms holds, counter runs */
        {50, 101, 2},  {101, 101, 3}, {102, 102, 0}, {1000, 1000, 0}, {10, 1000, 1},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        repl_version v = repl_hlc_now(&h, steps[i].wall);
        cr_assert_eq(v.ms, steps[i].ms, "step %zu", i);
        cr_assert_eq(v.counter, steps[i].counter, "step %zu", i);
    }
}

Test(quorum_version, monotonic_under_a_wild_wall_clock) {
    repl_hlc h;
    repl_hlc_init(&h, 7);
    repl_version prev = repl_hlc_now(&h, 5000);
    uint64_t wall = 5000, max_wall = 5000;
    for (int i = 0; i < 100000; i++) {
        uint64_t r = rnd() % 100;
        if (r < 60)
            wall += 0;            /* same millisecond */
        else if (r < 90)
            wall += rnd() % 3;    /* a little forward */
        else if (wall > 2000)
            wall -= rnd() % 2000; /* NTP step back */
        if (wall > max_wall)
            max_wall = wall;
        repl_version v = repl_hlc_now(&h, wall);
        cr_assert_gt(repl_version_cmp(&v, &prev), 0, "step %d", i);
        cr_assert_geq(v.ms, max_wall); /* never behind the newest wall time seen */
        cr_assert_eq(v.node, 7);
        prev = v;
    }
}

Test(quorum_version, counter_exhaustion_carries_into_ms) {
    repl_hlc h;
    repl_hlc_init(&h, 3);
    h.last = ver(500, UINT32_MAX - 1, 3);
    repl_version a = repl_hlc_now(&h, 400);
    repl_version b = repl_hlc_now(&h, 400);
    repl_version c = repl_hlc_now(&h, 400);
    cr_assert_eq(a.ms, 500);
    cr_assert_eq(a.counter, UINT32_MAX);
    cr_assert_eq(b.ms, 501);
    cr_assert_eq(b.counter, 0);
    cr_assert_eq(c.ms, 501);
    cr_assert_eq(c.counter, 1);
    /* the receive rule carries too */
    repl_version remote = ver(501, UINT32_MAX, 9);
    cr_assert_eq(repl_hlc_observe(&h, &remote, 501), 0);
    repl_version d = repl_hlc_now(&h, 501);
    cr_assert_gt(repl_version_cmp(&d, &remote), 0);
}

Test(quorum_version, observe_then_now_is_newer) {
    static const repl_version remotes[] = {
        {2000, 0, 9},  /* ahead of local wall (within skew) */
        {1000, 5, 9},  /* same ms as local, higher counter */
        {1000, 0, 9},  /* same ms, lower counter */
        {10, 77, 9},   /* far behind */
        {1000, 0, 0},  /* same ms and counter, lower node */
    };
    for (size_t i = 0; i < sizeof(remotes) / sizeof(remotes[0]); i++) {
        repl_hlc h;
        repl_hlc_init(&h, 5);
        repl_version mine = repl_hlc_now(&h, 1000);
        mine = repl_hlc_now(&h, 1000); /* 1000.1 */
        cr_assert_eq(repl_hlc_observe(&h, &remotes[i], 1000), 0);
        cr_assert_gt(repl_version_cmp(&h.last, &remotes[i]), 0, "case %zu", i);
        cr_assert_gt(repl_version_cmp(&h.last, &mine), 0, "case %zu", i);
        for (int k = 0; k < 3; k++) { /* whatever the wall clock says next */
            uint64_t wall = k == 0 ? 0 : k == 1 ? 1000 : 1500;
            repl_version after = repl_hlc_now(&h, wall);
            cr_assert_gt(repl_version_cmp(&after, &remotes[i]), 0, "case %zu", i);
            cr_assert_gt(repl_version_cmp(&after, &mine), 0, "case %zu", i);
        }
    }
}

Test(quorum_version, observe_rule_values) {
    repl_hlc h;
    repl_hlc_init(&h, 1);
    h.last = ver(100, 4, 1);
    repl_version r = ver(100, 9, 2);
    cr_assert_eq(repl_hlc_observe(&h, &r, 50), 0); /* all equal ms: max counter + 1 */
    cr_assert_eq(h.last.ms, 100);
    cr_assert_eq(h.last.counter, 10);
    r = ver(200, 3, 2);
    cr_assert_eq(repl_hlc_observe(&h, &r, 150), 0); /* remote ahead: its counter + 1 */
    cr_assert_eq(h.last.ms, 200);
    cr_assert_eq(h.last.counter, 4);
    r = ver(20, 3, 2);
    cr_assert_eq(repl_hlc_observe(&h, &r, 150), 0); /* local ahead: local counter + 1 */
    cr_assert_eq(h.last.ms, 200);
    cr_assert_eq(h.last.counter, 5);
    r = ver(20, 3, 2);
    cr_assert_eq(repl_hlc_observe(&h, &r, 300), 0); /* wall ahead of both: counter 0 */
    cr_assert_eq(h.last.ms, 300);
    cr_assert_eq(h.last.counter, 0);
    cr_assert_eq(h.last.node, 1);
}

Test(quorum_version, causality_across_sidecars_with_skewed_clocks) {
    /* Three sidecars whose wall clocks are off by up to a few seconds.  A
     * chain of writes, each made by a random sidecar after it read the
     * previous one, never goes backwards, although wall clocks disagree. */
    static const int64_t offset[3] = {0, -3000, 2500};
    repl_hlc h[3];
    for (int i = 0; i < 3; i++)
        repl_hlc_init(&h[i], (uint32_t)(100 + i));
    uint64_t now = 1700000000000ULL;
    repl_version prev = ver(0, 0, 0);
    for (int step = 0; step < 20000; step++) {
        now += rnd() % 3;
        int s = (int)(rnd() % 3);
        uint64_t wall = (uint64_t)((int64_t)now + offset[s]);
        cr_assert_eq(repl_hlc_observe(&h[s], &prev, wall), 0);
        repl_version v = repl_hlc_now(&h[s], wall);
        cr_assert_gt(repl_version_cmp(&v, &prev), 0, "step %d", step);
        cr_assert_eq(v.node, (uint32_t)(100 + s));
        prev = v;
    }
    /* and the slowest clock did not fall behind real time by more than its offset */
    cr_assert_geq(prev.ms, now - 3000);
}

Test(quorum_version, observe_refuses_far_future) {
    repl_hlc h;
    repl_hlc_init(&h, 1);
    h.max_skew_ms = 1000;
    repl_hlc_now(&h, 5000);
    repl_version before = h.last;
    repl_version r = ver(6001, 0, 2);
    cr_assert_eq(repl_hlc_observe(&h, &r, 5000), -1);
    cr_assert_eq(repl_version_cmp(&h.last, &before), 0, "refused: clock unchanged");
    r.ms = 6000; /* exactly at the limit: accepted */
    cr_assert_eq(repl_hlc_observe(&h, &r, 5000), 0);
    cr_assert_gt(repl_version_cmp(&h.last, &r), 0);
    /* no overflow at the top of the range */
    repl_hlc_init(&h, 1);
    r = ver(UINT64_MAX, 0, 2);
    cr_assert_eq(repl_hlc_observe(&h, &r, UINT64_MAX - 10), 0);
    cr_assert_eq(h.last.ms, UINT64_MAX);
    cr_assert_eq(h.last.counter, 1);
    cr_assert_eq(repl_hlc_observe(&h, &r, UINT64_MAX), 0);
    cr_assert_eq(h.last.counter, 2);
    h.last.counter = UINT32_MAX; /* the very top: saturates, never wraps to 0 */
    repl_version top = repl_hlc_now(&h, UINT64_MAX);
    cr_assert_eq(top.ms, UINT64_MAX);
    cr_assert_eq(top.counter, UINT32_MAX);
    r = ver(UINT64_MAX, 0, 2);
    repl_hlc_init(&h, 1);
    cr_assert_eq(repl_hlc_observe(&h, &r, 1000), -1);
}

Test(quorum_version, cmp_orders_ms_then_counter_then_node) {
    repl_version a = ver(10, 5, 9), b = ver(11, 0, 0), c = ver(10, 6, 0), d = ver(10, 5, 10);
    cr_assert_lt(repl_version_cmp(&a, &b), 0);
    cr_assert_gt(repl_version_cmp(&b, &a), 0);
    cr_assert_lt(repl_version_cmp(&a, &c), 0);
    cr_assert_lt(repl_version_cmp(&a, &d), 0, "tie-break by node id");
    cr_assert_gt(repl_version_cmp(&d, &a), 0);
    cr_assert_eq(repl_version_cmp(&a, &a), 0);
    /* two sidecars writing in the same ms with the same counter */
    repl_hlc h1, h2;
    repl_hlc_init(&h1, 1);
    repl_hlc_init(&h2, 2);
    repl_version v1 = repl_hlc_now(&h1, 777), v2 = repl_hlc_now(&h2, 777);
    cr_assert_lt(repl_version_cmp(&v1, &v2), 0);
    cr_assert_gt(repl_version_cmp(&v2, &v1), 0);
    /* extremes */
    repl_version lo = ver(0, 0, 0), hi = ver(UINT64_MAX, UINT32_MAX, UINT32_MAX);
    cr_assert_lt(repl_version_cmp(&lo, &hi), 0);
}

/* ------------------------------------------------------------------------ */
/* text                                                                      */

Test(quorum_version, text_form) {
    char buf[REPL_VERSION_TEXT_LEN + 1];
    memset(buf, '#', sizeof(buf));
    repl_version v = ver(0x0123456789abcdefULL, 0x10, 0xfffffffeU);
    repl_version_encode(&v, buf);
    cr_assert_eq(buf[REPL_VERSION_TEXT_LEN], '#', "no byte written past the text");
    buf[REPL_VERSION_TEXT_LEN] = '\0';
    cr_assert_str_eq(buf, "0123456789abcdef00000010fffffffe");
    repl_version w;
    cr_assert_eq(repl_version_decode(buf, REPL_VERSION_TEXT_LEN, &w), 0);
    cr_assert_eq(repl_version_cmp(&v, &w), 0);
    /* a real timestamp */
    v = ver(1700000000123ULL, 2, 1);
    repl_version_encode(&v, buf);
    cr_assert_str_eq(buf, "0000018bcfe5687b0000000200000001");
}

Test(quorum_version, text_round_trip_and_order_on_random_versions) {
    enum { N = 10000 };
    static repl_version v[N];
    static char t[N][REPL_VERSION_TEXT_LEN];
    for (int i = 0; i < N; i++) {
        /* draw from narrow ranges too, so equal fields (and equal versions) occur */
        uint64_t r = rnd();
        v[i].ms = (r & 1) ? rnd() : 1700000000000ULL + rnd() % 4;
        v[i].counter = (r & 2) ? (uint32_t)rnd() : (uint32_t)(rnd() % 3);
        v[i].node = (r & 4) ? (uint32_t)rnd() : (uint32_t)(rnd() % 3);
        repl_version_encode(&v[i], t[i]);
        repl_version back;
        cr_assert_eq(repl_version_decode(t[i], REPL_VERSION_TEXT_LEN, &back), 0);
        cr_assert_eq(repl_version_cmp(&v[i], &back), 0);
        cr_assert_eq(back.ms, v[i].ms);
        cr_assert_eq(back.counter, v[i].counter);
        cr_assert_eq(back.node, v[i].node);
    }
    int equal = 0;
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 20; k++) { /* each against 20 others: 200k pairs */
            int j = (int)(rnd() % N);
            if (k == 0)
                j = (i + 1) % N;
            int want = sign(repl_version_cmp(&v[i], &v[j]));
            int got = sign(memcmp(t[i], t[j], REPL_VERSION_TEXT_LEN));
            cr_assert_eq(got, want, "pair %d,%d", i, j);
            equal += want == 0 && i != j;
        }
    }
    cr_assert_gt(equal, 0, "the draw produced some equal versions");
}

Test(quorum_version, text_decode_is_strict) {
    const char *good = "0123456789abcdef00000010fffffffe";
    repl_version v = ver(1, 2, 3), untouched = v;
    static const char *bad[] = {
        "0123456789ABCDEF00000010fffffffe", /* uppercase */
        "0123456789abcdeg00000010fffffffe", /* g */
        "0123456789abcdef00000010fffffff ", /* space */
        " 123456789abcdef00000010fffffffe",
        "0x23456789abcdef00000010fffffffe",
        "-123456789abcdef00000010fffffffe",
        "+123456789abcdef00000010fffffffe",
        "0123456789abcdef0000:010fffffffe",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(repl_version_decode(bad[i], REPL_VERSION_TEXT_LEN, &v), -1, "%s", bad[i]);
        cr_assert_eq(repl_version_cmp(&v, &untouched), 0);
    }
    char withnul[REPL_VERSION_TEXT_LEN];
    memcpy(withnul, good, sizeof(withnul));
    withnul[20] = '\0';
    cr_assert_eq(repl_version_decode(withnul, sizeof(withnul), &v), -1);
    for (size_t len = 0; len <= REPL_VERSION_TEXT_LEN + 1; len++) {
        char buf[REPL_VERSION_TEXT_LEN + 2];
        memcpy(buf, good, REPL_VERSION_TEXT_LEN);
        buf[REPL_VERSION_TEXT_LEN] = '0';
        buf[REPL_VERSION_TEXT_LEN + 1] = '\0';
        int want = len == REPL_VERSION_TEXT_LEN ? 0 : -1;
        cr_assert_eq(repl_version_decode(buf, len, &v), want, "len %zu", len);
    }
    cr_assert_eq(repl_version_decode(NULL, REPL_VERSION_TEXT_LEN, &v), -1);
    /* every byte value in every position: only 0-9a-f pass */
    char buf[REPL_VERSION_TEXT_LEN];
    for (int pos = 0; pos < REPL_VERSION_TEXT_LEN; pos++) {
        for (int c = 0; c < 256; c++) {
            memcpy(buf, good, sizeof(buf));
            buf[pos] = (char)c;
            int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            cr_assert_eq(repl_version_decode(buf, sizeof(buf), &v), hex ? 0 : -1, "pos %d byte %d",
                         pos, c);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* stored format                                                             */

Test(quorum_version, stored_layout_and_round_trip) {
    repl_version v = ver(1700000000123ULL, 2, 1);
    const char value[] = "hello\0world\xff";
    char out[128];
    size_t n = 0;
    cr_assert_eq(repl_stored_encode(&v, 0, value, sizeof(value) - 1, out, sizeof(out), &n), REPL_STORED_OK);
    cr_assert_eq(n, REPL_STORED_HEADER_LEN + sizeof(value) - 1);
    cr_assert_eq(REPL_STORED_HEADER_LEN, 35);
    cr_assert_eq((unsigned char)out[0], 0xF5);
    cr_assert_eq(out[1], 1);
    cr_assert_eq(out[2], 0);
    cr_assert_eq(memcmp(out + 3, "0000018bcfe5687b0000000200000001", 32), 0);
    cr_assert_eq(memcmp(out + 35, value, sizeof(value) - 1), 0);

    repl_stored_view sv;
    cr_assert_eq(repl_stored_decode(out, n, &sv), REPL_STORED_OK);
    cr_assert_eq(repl_version_cmp(&sv.version, &v), 0);
    cr_assert_eq(sv.tombstone, 0);
    cr_assert_eq(sv.value, out + REPL_STORED_HEADER_LEN, "the view points into the buffer");
    cr_assert_eq(sv.value_len, sizeof(value) - 1);

    /* empty value, NULL pointer allowed */
    cr_assert_eq(repl_stored_encode(&v, 0, NULL, 0, out, sizeof(out), &n), REPL_STORED_OK);
    cr_assert_eq(n, REPL_STORED_HEADER_LEN);
    cr_assert_eq(repl_stored_decode(out, n, &sv), REPL_STORED_OK);
    cr_assert_eq(sv.value_len, 0);
    cr_assert_eq(sv.tombstone, 0);

    /* tombstone */
    cr_assert_eq(repl_stored_encode(&v, 1, NULL, 0, out, sizeof(out), &n), REPL_STORED_OK);
    cr_assert_eq(out[2], REPL_STORED_F_TOMBSTONE);
    cr_assert_eq(repl_stored_decode(out, n, &sv), REPL_STORED_OK);
    cr_assert_eq(sv.tombstone, 1);
    cr_assert_eq(sv.value_len, 0);

    /* header alone (for writev) equals the encoded prefix */
    char hdr[REPL_STORED_HEADER_LEN];
    repl_stored_header(&v, 1, hdr);
    cr_assert_eq(memcmp(hdr, out, sizeof(hdr)), 0);
}

Test(quorum_version, stored_versions_compare_as_bytes) {
    /* bytes 3..34 of two stored values order as their versions */
    char a[64], b[64];
    size_t na, nb;
    for (int i = 0; i < 2000; i++) {
        repl_version va = ver(rnd() % 5, (uint32_t)(rnd() % 5), (uint32_t)(rnd() % 5));
        repl_version vb = ver(rnd() % 5, (uint32_t)(rnd() % 5), (uint32_t)(rnd() % 5));
        cr_assert_eq(repl_stored_encode(&va, 0, "x", 1, a, sizeof(a), &na), 0);
        cr_assert_eq(repl_stored_encode(&vb, 1, NULL, 0, b, sizeof(b), &nb), 0);
        cr_assert_eq(sign(memcmp(a + REPL_STORED_VERSION_OFFSET, b + REPL_STORED_VERSION_OFFSET,
                                 REPL_VERSION_TEXT_LEN)),
                     sign(repl_version_cmp(&va, &vb)));
    }
}

Test(quorum_version, stored_encode_refuses) {
    repl_version v = ver(1, 2, 3);
    char out[REPL_STORED_HEADER_LEN + 8];
    size_t n = 12345;
    memset(out, '#', sizeof(out));
    /* one byte short: nothing written */
    cr_assert_eq(repl_stored_encode(&v, 0, "abcdefgh", 8, out, sizeof(out) - 1, &n), REPL_STORED_ESPACE);
    cr_assert_eq(n, 12345);
    for (size_t i = 0; i < sizeof(out); i++)
        cr_assert_eq(out[i], '#');
    cr_assert_eq(repl_stored_encode(&v, 0, "abcdefgh", 8, out, sizeof(out), &n), REPL_STORED_OK);
    cr_assert_eq(n, sizeof(out));
    cr_assert_eq(repl_stored_encode(&v, 1, "x", 1, out, sizeof(out), &n), REPL_STORED_ETOMBSTONE);
    cr_assert_eq(repl_stored_encode(&v, 0, "x", REPL_STORED_MAX_VALUE + 1, out, sizeof(out), &n),
                 REPL_STORED_ETOOBIG);
    cr_assert_eq(repl_stored_encode(&v, 0, "x", 1, NULL, 100, &n), REPL_STORED_ESPACE);
}

Test(quorum_version, stored_decode_rejects_garbage) {
    repl_version v = ver(1700000000123ULL, 2, 1);
    char good[REPL_STORED_HEADER_LEN + 3];
    size_t n;
    cr_assert_eq(repl_stored_encode(&v, 0, "abc", 3, good, sizeof(good), &n), 0);
    repl_stored_view sv, untouched;
    memset(&untouched, 0x5a, sizeof(untouched));
    char buf[sizeof(good)];

#define EXPECT(len, code)                                                                   \
    do {                                                                                    \
        sv = untouched;                                                                     \
        cr_assert_eq(repl_stored_decode(buf, (len), &sv), (code), "%s", repl_stored_strerror(code)); \
        cr_assert_eq(memcmp(&sv, &untouched, sizeof(sv)), 0, "out untouched on error");     \
    } while (0)

    /* every truncation inside the header */
    memcpy(buf, good, sizeof(buf));
    for (size_t len = 0; len < REPL_STORED_HEADER_LEN; len++)
        EXPECT(len, REPL_STORED_ESHORT);
    cr_assert_eq(repl_stored_decode(NULL, 0, &sv), REPL_STORED_ESHORT);
    /* a plain value written straight to the node */
    memcpy(buf, "this is a plain string value, not ours", sizeof(buf));
    EXPECT(sizeof(buf), REPL_STORED_EMAGIC);
    memcpy(buf, good, sizeof(buf));
    buf[0] = 'x';
    EXPECT(sizeof(buf), REPL_STORED_EMAGIC);
    memcpy(buf, good, sizeof(buf));
    buf[1] = 2;
    EXPECT(sizeof(buf), REPL_STORED_EFORMAT);
    memcpy(buf, good, sizeof(buf));
    buf[1] = 0;
    EXPECT(sizeof(buf), REPL_STORED_EFORMAT);
    for (int bit = 1; bit < 8; bit++) {
        memcpy(buf, good, sizeof(buf));
        buf[2] = (char)(1 << bit);
        EXPECT(sizeof(buf), REPL_STORED_EFLAGS);
    }
    memcpy(buf, good, sizeof(buf));
    buf[3 + 31] = 'F';
    EXPECT(sizeof(buf), REPL_STORED_EVERSION);
    memcpy(buf, good, sizeof(buf));
    buf[3] = '\0';
    EXPECT(sizeof(buf), REPL_STORED_EVERSION);
    /* a tombstone must not carry a value */
    memcpy(buf, good, sizeof(buf));
    buf[2] = REPL_STORED_F_TOMBSTONE;
    EXPECT(sizeof(buf), REPL_STORED_ETOMBSTONE);
#undef EXPECT
    cr_assert_eq(repl_stored_decode(buf, REPL_STORED_HEADER_LEN, &sv), REPL_STORED_OK,
                 "a header-only tombstone is fine");
    cr_assert_eq(sv.tombstone, 1);
    for (int e = 0; e >= -8; e--)
        cr_assert_neq(strcmp(repl_stored_strerror(e), "unknown error"), 0);
    cr_assert_str_eq(repl_stored_strerror(-99), "unknown error");
}

Test(quorum_version, stored_decode_random_mutations) {
    /* Random byte flips and lengths: decode either fails or returns a view
     * that lies inside the buffer and re-encodes to the same bytes. */
    repl_version v = ver(1700000000123ULL, 2, 1);
    char good[REPL_STORED_HEADER_LEN + 16], buf[sizeof(good)], re[sizeof(good)];
    size_t n, m;
    cr_assert_eq(repl_stored_encode(&v, 0, "0123456789abcdef", 16, good, sizeof(good), &n), 0);
    int ok = 0;
    for (int i = 0; i < 50000; i++) {
        memcpy(buf, good, sizeof(buf));
        int flips = 1 + (int)(rnd() % 3);
        for (int f = 0; f < flips; f++)
            buf[rnd() % sizeof(buf)] = (char)rnd();
        size_t len = (size_t)(rnd() % (sizeof(buf) + 1));
        repl_stored_view sv;
        if (repl_stored_decode(buf, len, &sv) != REPL_STORED_OK)
            continue;
        ok++;
        cr_assert(sv.value >= buf && sv.value + sv.value_len <= buf + len);
        cr_assert_eq(repl_stored_encode(&sv.version, sv.tombstone, sv.value, sv.value_len, re,
                                        sizeof(re), &m), 0);
        cr_assert_eq(m, len);
        cr_assert_eq(memcmp(re, buf, len), 0);
    }
    cr_assert_gt(ok, 0);
}
