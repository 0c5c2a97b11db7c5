/* test_quorum_scripts.c -- the `mode quorum` Lua scripts of
 * replication/quorum_scripts.h against a real redis-server 7.0.
 *
 * Every test gets its own redis-server (criterion runs each test in its own
 * worker process; .init starts it on a free 127.0.0.1 port in a temp dir,
 * --save "" --appendonly no) and loads the scripts with SCRIPT LOAD.  The
 * suite's .fini kills every server the test started (SIGKILL, reaped) and
 * removes the temp dir, also after a failed assertion; the children carry
 * PR_SET_PDEATHSIG so a killed worker cannot leave one behind, and .init
 * removes temp dirs left by workers that no longer exist.  Every wait
 * is bounded in time.
 *
 * Build by hand:
 *   gcc -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I/work/main \
 *       tests/unit/test_quorum_scripts.c tests/support/ts.c \
 *       -lcriterion -lhiredis -lev -o /tmp/t */
#include "replication/quorum_scripts.h"

#include <ctype.h>

#include <criterion/criterion.h>

#include "tests/support/ts.h"
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* The scripts must write exactly what quorum_version.h's codec reads. */
#if defined(__has_include)
#if __has_include("replication/quorum_version.h")
#include "replication/quorum_version.h"
_Static_assert(REPL_QUORUM_HEADER_LEN == REPL_STORED_HEADER_LEN, "header length");
_Static_assert(REPL_QUORUM_VERSION_LEN == REPL_VERSION_TEXT_LEN, "version length");
_Static_assert(REPL_QUORUM_VERSION_OFFSET == REPL_STORED_VERSION_OFFSET, "version offset");
_Static_assert(REPL_QUORUM_FORMAT == REPL_STORED_FORMAT, "format");
_Static_assert(REPL_QUORUM_F_TOMBSTONE == REPL_STORED_F_TOMBSTONE, "tombstone flag");
#endif
#endif

/* flags as VGET / VHEAD answer them */
#define LIVE 0
#define TOMB REPL_QUORUM_F_TOMBSTONE

/* ------------------------------------------------------------------------ */
/* redis-server processes                                                    */

#define MAX_SERVERS 2

typedef struct {
    ts_redis r;                            /* the process, its port, its client */
    char sha[REPL_QUORUM_NSCRIPTS][41];    /* SCRIPT LOAD answers */
} qserver;

static char tmpdir[64];
static qserver servers[MAX_SERVERS];
static int nservers;

/* The data path calls the function library (FCALL rcp_vset...); the EVAL
 * form of the same scripts is checked by the test that sets this. */
static int use_evalsha;

static void load_scripts(qserver *s) {
    redisReply *lib = redisCommand(s->r.c, "FUNCTION LOAD REPLACE %s", REPL_QUORUM_LIBRARY);
    cr_assert_not_null(lib, "FUNCTION LOAD: %s", s->r.c->errstr);
    cr_assert_eq(lib->type, REDIS_REPLY_STRING, "FUNCTION LOAD: %s",
                 lib->type == REDIS_REPLY_ERROR ? lib->str : "?");
    cr_assert_str_eq(lib->str, REPL_QUORUM_LIBRARY_NAME);
    freeReplyObject(lib);
    for (int i = 0; i < REPL_QUORUM_NSCRIPTS; i++) {
        redisReply *r = redisCommand(s->r.c, "SCRIPT LOAD %s", repl_quorum_script_src[i]);
        cr_assert_not_null(r, "SCRIPT LOAD %s: %s", repl_quorum_script_name[i], s->r.c->errstr);
        cr_assert_eq(r->type, REDIS_REPLY_STRING, "SCRIPT LOAD %s: %s",
                     repl_quorum_script_name[i], r->type == REDIS_REPLY_ERROR ? r->str : "?");
        cr_assert_eq(r->len, 40);
        memcpy(s->sha[i], r->str, 41);
        freeReplyObject(r);
    }
}

/* Start a redis-server, connect a client and load the scripts; asserts. */
static qserver *server_start(void) {
    cr_assert(nservers < MAX_SERVERS);
    qserver *s = &servers[nservers++];
    memset(s, 0, sizeof *s);
    cr_assert_eq(ts_redis_start(&s->r, tmpdir, NULL, NULL), 0,
                 "redis-server on port %d did not start", s->r.port);
    load_scripts(s);
    return s;
}

/* A worker killed by criterion's timeout runs no fini: its servers die with
 * it (PDEATHSIG) and ts_make_tmpdir removes its /tmp/rcproxy-qlua-<pid>-*
 * dir. */
static void q_init(void) {
    signal(SIGPIPE, SIG_IGN);
    nservers = 0;
    cr_assert_eq(ts_make_tmpdir(tmpdir, sizeof tmpdir, "rcproxy-qlua"), 0);
    server_start();
}

static void q_fini(void) {
    for (int i = 0; i < nservers; i++)
        ts_redis_stop(&servers[i].r);
    ts_remove_dir(tmpdir);
}

TestSuite(qlua, .init = q_init, .fini = q_fini, .timeout = 60);

/* ------------------------------------------------------------------------ */
/* calling the scripts                                                       */

/* A binary-safe argument. */
typedef struct {
    const char *p;
    size_t len;
} qarg;

#define S(str) ((qarg){(str), strlen(str)})
#define B(ptr, n) ((qarg){(ptr), (n)})

/* EVALSHA script on s with nkeys keys followed by args; the reply (never
 * NULL: asserts on a connection error).  Caller frees. */
static redisReply *qcall_on(qserver *s, repl_quorum_script id, int nkeys, int nargs, const qarg *args) {
    const char *argv[64];
    size_t lens[64];
    char nk[16], fn[32];
    cr_assert(nargs + 3 <= 64);
    snprintf(nk, sizeof nk, "%d", nkeys);
    if (use_evalsha) {
        argv[0] = "EVALSHA";
        argv[1] = s->sha[id];
    } else {
        /* rcp_<name in lowercase> */
        const char *name = repl_quorum_script_name[id];
        size_t n = strlen(name);
        memcpy(fn, "rcp_", 4);
        for (size_t i = 0; i <= n; i++) fn[4 + i] = (char)tolower((unsigned char)name[i]);
        argv[0] = "FCALL";
        argv[1] = fn;
    }
    lens[0] = strlen(argv[0]);
    lens[1] = strlen(argv[1]);
    argv[2] = nk;
    lens[2] = strlen(nk);
    for (int i = 0; i < nargs; i++) {
        argv[3 + i] = args[i].p;
        lens[3 + i] = args[i].len;
    }
    redisReply *r = redisCommandArgv(s->r.c, nargs + 3, argv, lens);
    cr_assert_not_null(r, "EVALSHA %s: %s", repl_quorum_script_name[id], s->r.c->errstr);
    return r;
}

/* One key, then the args: the usual shape. */
#define QCALL(id, ...)                                                                    \
    qcall_on(&servers[0], (id), 1, (int)(sizeof((qarg[]){__VA_ARGS__}) / sizeof(qarg)), \
             (qarg[]){__VA_ARGS__})

static redisReply *cmd(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(servers[0].r.c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "%s: %s", fmt, servers[0].r.c->errstr);
    return r;
}

/* Assert a write reply [code, version, prev] and free it. */
static void expect_write(redisReply *r, long long code, const char *version, long long prev) {
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "write reply type %d (%s)", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->elements, 3);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->element[0]->integer, code, "code %lld, expected %lld",
                 r->element[0]->integer, code);
    if (version == NULL) {
        cr_assert_eq(r->element[1]->type, REDIS_REPLY_NIL);
    } else {
        cr_assert_eq(r->element[1]->type, REDIS_REPLY_STRING);
        cr_assert_str_eq(r->element[1]->str, version);
    }
    cr_assert_eq(r->element[2]->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->element[2]->integer, prev, "prev %lld, expected %lld",
                 r->element[2]->integer, prev);
    freeReplyObject(r);
}

/* Assert an error reply whose text contains what, and free it. */
static void expect_error(redisReply *r, const char *what) {
    cr_assert_eq(r->type, REDIS_REPLY_ERROR, "expected an error containing '%s', got type %d",
                 what, r->type);
    cr_assert_not_null(strstr(r->str, what), "error '%s' lacks '%s'", r->str, what);
    freeReplyObject(r);
}

/* VGET of key on s; asserts the reply shape.  Returns the reply (freed by
 * the caller) or NULL for a missing key. */
static redisReply *vget_on(qserver *s, qarg key) {
    redisReply *r = qcall_on(s, REPL_QUORUM_VGET, 1, 1, &key);
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return NULL;
    }
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "VGET reply type %d (%s)", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->elements, 4);
    cr_assert_eq(r->element[0]->type, REDIS_REPLY_STRING);
    cr_assert_eq(r->element[0]->len, REPL_QUORUM_VERSION_LEN);
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->element[2]->type, REDIS_REPLY_STRING);
    cr_assert_eq(r->element[3]->type, REDIS_REPLY_INTEGER);
    return r;
}

/* Assert VGET of key: version, flag, exact value bytes; returns the PTTL. */
static long long expect_vget_on(qserver *s, qarg key, const char *version, long long flags,
                                const char *val, size_t vlen) {
    redisReply *r = vget_on(s, key);
    cr_assert_not_null(r, "key missing, expected version %s", version);
    cr_assert_str_eq(r->element[0]->str, version);
    cr_assert_eq(r->element[1]->integer, flags, "flags %lld, expected %lld",
                 r->element[1]->integer, flags);
    cr_assert_eq(r->element[2]->len, vlen, "value length %zu, expected %zu",
                 r->element[2]->len, vlen);
    cr_assert(memcmp(r->element[2]->str, val, vlen) == 0, "value bytes differ");
    long long pttl = r->element[3]->integer;
    freeReplyObject(r);
    return pttl;
}

static long long expect_vget(const char *key, const char *version, long long flags,
                             const char *val) {
    return expect_vget_on(&servers[0], S(key), version, flags, val, strlen(val));
}

static void expect_missing(const char *key) {
    cr_assert_null(vget_on(&servers[0], S(key)), "key %s should be missing", key);
}

/* Poll VGET until key is gone (at most ms); asserts it went. */
static void wait_gone(const char *key, int ms) {
    long long end = ts_wall_ms() + ms;
    for (;;) {
        redisReply *r = vget_on(&servers[0], S(key));
        if (r == NULL)
            return;
        freeReplyObject(r);
        cr_assert(ts_wall_ms() < end, "key %s still there after %d ms", key, ms);
        usleep(10 * 1000);
    }
}

/* ------------------------------------------------------------------------ */
/* loading                                                                   */

Test(qlua, scripts_load_and_reload_after_flush) {
    qserver *s = &servers[0];
    use_evalsha = 1;
    char before[REPL_QUORUM_NSCRIPTS][41];
    memcpy(before, s->sha, sizeof before);
    ts_qver v1 = ts_qver_of(1, 0, 1);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v1.s), S("x"), S("0")), 1, v1.s, 0);
    /* a node that lost its script cache answers NOSCRIPT; reloading gives the same SHA */
    freeReplyObject(cmd("SCRIPT FLUSH"));
    expect_error(QCALL(REPL_QUORUM_VGET, S("k")), "NOSCRIPT");
    load_scripts(s);
    cr_assert(memcmp(before, s->sha, sizeof before) == 0);
    expect_vget("k", v1.s, LIVE, "x");
    /* the read scripts are no-writes: EVALSHA_RO accepts them */
    redisReply *r = redisCommand(s->r.c, "EVALSHA_RO %s 1 k", s->sha[REPL_QUORUM_VGET]);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    r = redisCommand(s->r.c, "EVALSHA_RO %s 1 k %s x 0", s->sha[REPL_QUORUM_VSET], v1.s);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

Test(qlua, function_library_reloads_and_vdrop) {
    qserver *s = &servers[0];
    ts_qver v1 = ts_qver_of(1, 0, 1), v2 = ts_qver_of(2, 0, 1);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v2.s), S("x"), S("0")), 1, v2.s, 0);
    load_scripts(s);   /* FUNCTION LOAD REPLACE again: the data survives */
    expect_vget("k", v2.s, LIVE, "x");
    /* VDROP deletes only a copy no newer than the version named */
    redisReply *r = QCALL(REPL_QUORUM_VDROP, S("k"), S(v1.s));
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
    expect_vget("k", v2.s, LIVE, "x");
    r = QCALL(REPL_QUORUM_VDROP, S("k"), S(v2.s));
    cr_assert_eq(r->integer, 1);
    freeReplyObject(r);
    expect_missing("k");
    r = QCALL(REPL_QUORUM_VDROP, S("k"), S(v2.s));
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
    /* read-only functions run with FCALL_RO */
    r = redisCommand(s->r.c, "FCALL_RO rcp_vget 1 k");
    cr_assert_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
}

/* ------------------------------------------------------------------------ */
/* VSET                                                                      */

Test(qlua, vset_stored_format) {
    ts_qver v = ts_qver_of(0x18c2b3a4f5eULL, 1, 3);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v.s), S("hello"), S("0")), 1, v.s, 0);
    redisReply *r = cmd("GET k");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_eq(r->len, REPL_QUORUM_HEADER_LEN + 5);
    cr_assert(memcmp(r->str, "\xf5\x01\x00" "0000018c2b3a4f5e0000000100000003" "hello",
                     REPL_QUORUM_HEADER_LEN + 5) == 0, "stored bytes differ");
    freeReplyObject(r);
    cr_assert_eq(expect_vget("k", v.s, LIVE, "hello"), -1);
}

Test(qlua, vset_newer_wins_older_rejected) {
    ts_qver v1 = ts_qver_of(1000, 0, 1), v2 = ts_qver_of(1000, 1, 1), v3 = ts_qver_of(2000, 0, 2);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v2.s), S("two"), S("0")), 1, v2.s, 0);
    /* older: rejected, the stored (newer) version returned */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v1.s), S("one"), S("0")), 0, v2.s, 1);
    expect_vget("k", v2.s, LIVE, "two");
    /* newer: replaces */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v3.s), S("three"), S("0")), 1, v3.s, 1);
    expect_vget("k", v3.s, LIVE, "three");
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v2.s), S("two"), S("0")), 0, v3.s, 1);
    expect_vget("k", v3.s, LIVE, "three");
}

Test(qlua, vset_equal_version_is_idempotent) {
    ts_qver v = ts_qver_of(5000, 7, 9);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v.s), S("val"), S("100000")), 1, v.s, 0);
    /* a replay (hint, read repair) changes nothing, not even the TTL */
    for (int i = 0; i < 3; i++)
        expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v.s), S("other"), S("0")), 2, v.s, 1);
    long long pttl = expect_vget("k", v.s, LIVE, "val");
    cr_assert(pttl > 90000 && pttl <= 100000, "pttl %lld", pttl);
}

Test(qlua, version_order_is_string_order) {
    /* pairs (lower, higher) across every chunk boundary and digit/letter */
    const char *pairs[][2] = {
        {"00000000000000000000000000000009", "0000000000000000000000000000000a"},
        {"0000000000000000000000000000000f", "00000000000000000000000000000010"},
        {"0000000000000000000000000fffffff", "00000000000000000000000010000000"},
        {"00000000ffffffffffffffffffffffff", "00000001000000000000000000000000"},
        {"7fffffffffffffffffffffffffffffff", "80000000000000000000000000000000"},
        {"fffffffffffffffffffffffffffffffe", "ffffffffffffffffffffffffffffffff"},
        {"0000018c2b3a4f5e00000001ffffffff", "0000018c2b3a4f5e0000000200000000"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%zu", i);
        cr_assert_lt(strcmp(pairs[i][0], pairs[i][1]), 0);
        expect_write(QCALL(REPL_QUORUM_VSET, S(key), S(pairs[i][1]), S("hi"), S("0")), 1,
                     pairs[i][1], 0);
        expect_write(QCALL(REPL_QUORUM_VSET, S(key), S(pairs[i][0]), S("lo"), S("0")), 0,
                     pairs[i][1], 1);
        snprintf(key, sizeof key, "r%zu", i);
        expect_write(QCALL(REPL_QUORUM_VSET, S(key), S(pairs[i][0]), S("lo"), S("0")), 1,
                     pairs[i][0], 0);
        expect_write(QCALL(REPL_QUORUM_VSET, S(key), S(pairs[i][1]), S("hi"), S("0")), 1,
                     pairs[i][1], 1);
        expect_vget(key, pairs[i][1], LIVE, "hi");
    }
}

Test(qlua, px_applied_and_replaced) {
    ts_qver v[8];
    for (int i = 0; i < 8; i++)
        v[i] = ts_qver_of(100, (unsigned)i, 1);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v[0].s), S("a"), S("100000")), 1, v[0].s, 0);
    long long pttl = expect_vget("k", v[0].s, LIVE, "a");
    cr_assert(pttl > 90000 && pttl <= 100000, "pttl %lld", pttl);
    /* ttl 0 removes the TTL (as SET does) */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v[1].s), S("b"), S("0")), 1, v[1].s, 1);
    cr_assert_eq(expect_vget("k", v[1].s, LIVE, "b"), -1);
    /* a new PX replaces the TTL; mode is case-insensitive */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v[2].s), S("c"), S("5000"), S("px")), 1,
                 v[2].s, 1);
    pttl = expect_vget("k", v[2].s, LIVE, "c");
    cr_assert(pttl > 4000 && pttl <= 5000, "pttl %lld", pttl);
    /* KEEPTTL keeps the TTL of the live value it replaces */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v[3].s), S("d"), S("0"), S("KEEPTTL")), 1,
                 v[3].s, 1);
    pttl = expect_vget("k", v[3].s, LIVE, "d");
    cr_assert(pttl > 4000 && pttl <= 5000, "pttl %lld", pttl);
    /* PXAT: absolute ms */
    char at[32];
    snprintf(at, sizeof at, "%lld", ts_wall_ms() + 60000);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v[4].s), S("e"), S(at), S("PXAT")), 1,
                 v[4].s, 1);
    pttl = expect_vget("k", v[4].s, LIVE, "e");
    cr_assert(pttl > 55000 && pttl <= 60000, "pttl %lld", pttl);
    /* a stale write does not touch the TTL either */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v[0].s), S("z"), S("0")), 0, v[4].s, 1);
    pttl = expect_vget("k", v[4].s, LIVE, "e");
    cr_assert(pttl > 55000 && pttl <= 60000, "pttl %lld", pttl);
    /* PXAT in the past: the value is gone at once, as with SET PXAT */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v[5].s), S("f"), S("1000"), S("PXAT")), 1,
                 v[5].s, 1);
    expect_missing("k");
    /* a short PX expires */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v[6].s), S("g"), S("50")), 1, v[6].s, 0);
    wait_gone("k", 3000);
}

/* ------------------------------------------------------------------------ */
/* VDEL / tombstones                                                         */

Test(qlua, tombstone_beats_older_loses_to_newer) {
    ts_qver v1 = ts_qver_of(10, 0, 1), v2 = ts_qver_of(20, 0, 1), v3 = ts_qver_of(30, 0, 2),
            v0 = ts_qver_of(5, 0, 3);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v1.s), S("live"), S("0")), 1, v1.s, 0);
    /* prev 1: there was a live value (what DEL counts) */
    expect_write(QCALL(REPL_QUORUM_VDEL, S("k"), S(v2.s), S("600000")), 1, v2.s, 1);
    long long pttl = expect_vget("k", v2.s, TOMB, "");
    cr_assert(pttl > 590000 && pttl <= 600000, "tombstone pttl %lld", pttl);
    redisReply *r = cmd("GET k");
    cr_assert_eq(r->len, REPL_QUORUM_HEADER_LEN);
    cr_assert(memcmp(r->str, "\xf5\x01\x01", 3) == 0, "tombstone header");
    cr_assert(memcmp(r->str + REPL_QUORUM_VERSION_OFFSET, v2.s, REPL_QUORUM_VERSION_LEN) == 0);
    freeReplyObject(r);
    /* an older write loses to the tombstone */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v1.s), S("live"), S("0")), 0, v2.s, 2);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v0.s), S("old"), S("0")), 0, v2.s, 2);
    /* an older delete and a replayed delete change nothing */
    expect_write(QCALL(REPL_QUORUM_VDEL, S("k"), S(v1.s), S("1000")), 0, v2.s, 2);
    expect_write(QCALL(REPL_QUORUM_VDEL, S("k"), S(v2.s), S("1000")), 2, v2.s, 2);
    pttl = expect_vget("k", v2.s, TOMB, "");
    cr_assert(pttl > 590000, "tombstone pttl %lld", pttl);
    /* a newer write wins and does not inherit the tombstone's TTL, even with KEEPTTL */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v3.s), S("back"), S("0"), S("KEEPTTL")), 1,
                 v3.s, 2);
    cr_assert_eq(expect_vget("k", v3.s, LIVE, "back"), -1);
    /* a delete of a missing key still writes a tombstone (prev 0) */
    expect_write(QCALL(REPL_QUORUM_VDEL, S("gone"), S(v2.s), S("600000")), 1, v2.s, 0);
    expect_vget("gone", v2.s, TOMB, "");
    expect_write(QCALL(REPL_QUORUM_VSET, S("gone"), S(v1.s), S("late"), S("0")), 0, v2.s, 2);
    /* a tombstone over a tombstone */
    expect_write(QCALL(REPL_QUORUM_VDEL, S("gone"), S(v3.s), S("600000")), 1, v3.s, 2);
}

Test(qlua, tombstone_expires) {
    ts_qver v1 = ts_qver_of(10, 0, 1), v2 = ts_qver_of(20, 0, 1);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v1.s), S("live"), S("0")), 1, v1.s, 0);
    char at[32];
    snprintf(at, sizeof at, "%lld", ts_wall_ms() + 150);
    expect_write(QCALL(REPL_QUORUM_VDEL, S("k"), S(v2.s), S(at), S("PXAT")), 1, v2.s, 1);
    long long pttl = expect_vget("k", v2.s, TOMB, "");
    cr_assert(pttl >= 0 && pttl <= 150, "pttl %lld", pttl);
    wait_gone("k", 3000);
    redisReply *r = cmd("EXISTS k");
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
    /* documented limit: once the tombstone expired, an older write is accepted */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v1.s), S("live"), S("0")), 1, v1.s, 0);
}

/* ------------------------------------------------------------------------ */
/* VEXPIRE                                                                   */

Test(qlua, vexpire_bumps_version_keeps_value) {
    ts_qver v1 = ts_qver_of(10, 0, 1), v2 = ts_qver_of(20, 0, 1), v3 = ts_qver_of(30, 0, 1),
            v4 = ts_qver_of(40, 0, 1);
    static const char val[] = "a\0b\r\nc";
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v1.s), B(val, sizeof val), S("0")), 1, v1.s, 0);
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("k"), S(v2.s), S("30000")), 1, v2.s, 1);
    long long pttl = expect_vget_on(&servers[0], S("k"), v2.s, LIVE, val, sizeof val);
    cr_assert(pttl > 25000 && pttl <= 30000, "pttl %lld", pttl);
    /* stale and replayed */
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("k"), S(v1.s), S("10")), 0, v2.s, 1);
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("k"), S(v2.s), S("10")), 2, v2.s, 1);
    /* ttl 0 persists */
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("k"), S(v3.s), S("0")), 1, v3.s, 1);
    cr_assert_eq(expect_vget_on(&servers[0], S("k"), v3.s, LIVE, val, sizeof val), -1);
    /* an older VSET loses to the bumped version */
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v2.s), S("x"), S("0")), 0, v3.s, 1);
    /* nothing to expire: missing key, or an older tombstone; a newer tombstone wins */
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("none"), S(v2.s), S("1000")), 3, NULL, 0);
    expect_missing("none");
    expect_write(QCALL(REPL_QUORUM_VDEL, S("t"), S(v2.s), S("600000")), 1, v2.s, 0);
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("t"), S(v3.s), S("1000")), 3, v2.s, 2);
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("t"), S(v1.s), S("1000")), 0, v2.s, 2);
    expect_vget("t", v2.s, TOMB, "");
    /* PXAT */
    char at[32];
    snprintf(at, sizeof at, "%lld", ts_wall_ms() + 40000);
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("k"), S(v4.s), S(at), S("PXAT")), 1, v4.s, 1);
    pttl = expect_vget_on(&servers[0], S("k"), v4.s, LIVE, val, sizeof val);
    cr_assert(pttl > 35000 && pttl <= 40000, "pttl %lld", pttl);
}

/* ------------------------------------------------------------------------ */
/* VHEAD                                                                     */

Test(qlua, vhead_versions_without_values) {
    ts_qver v1 = ts_qver_of(10, 0, 1), v2 = ts_qver_of(20, 0, 1);
    expect_write(QCALL(REPL_QUORUM_VSET, S("a"), S(v1.s), S("aaaa"), S("50000")), 1, v1.s, 0);
    expect_write(QCALL(REPL_QUORUM_VDEL, S("b"), S(v2.s), S("600000")), 1, v2.s, 0);
    freeReplyObject(cmd("SET plain x"));
    qarg keys[] = {S("a"), S("missing"), S("b"), S("plain")};
    redisReply *r = qcall_on(&servers[0], REPL_QUORUM_VHEAD, 4, 4, keys);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 4);
    redisReply *a = r->element[0];
    cr_assert_eq(a->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(a->elements, 3);
    cr_assert_str_eq(a->element[0]->str, v1.s);
    cr_assert_eq(a->element[1]->integer, LIVE);
    cr_assert(a->element[2]->integer > 40000 && a->element[2]->integer <= 50000);
    cr_assert_eq(r->element[1]->type, REDIS_REPLY_NIL);
    redisReply *b = r->element[2];
    cr_assert_eq(b->type, REDIS_REPLY_ARRAY);
    cr_assert_str_eq(b->element[0]->str, v2.s);
    cr_assert_eq(b->element[1]->integer, TOMB);
    cr_assert_eq(r->element[3]->type, REDIS_REPLY_ERROR);
    cr_assert_not_null(strstr(r->element[3]->str, "not written by rcproxy"));
    freeReplyObject(r);
}

/* ------------------------------------------------------------------------ */
/* binary safety                                                             */

Test(qlua, binary_values_and_keys) {
    ts_qver v1 = ts_qver_of(10, 0, 1), v2 = ts_qver_of(20, 0, 1), v3 = ts_qver_of(30, 0, 1);
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    static const char key[] = "bin\0key\r\n";
    expect_write(QCALL(REPL_QUORUM_VSET, B(key, sizeof key), S(v1.s), B(all, sizeof all), S("0")),
                 1, v1.s, 0);
    expect_vget_on(&servers[0], B(key, sizeof key), v1.s, LIVE, all, sizeof all);
    /* a different key that shares the prefix up to the NUL is untouched */
    expect_missing("bin");
    /* empty value */
    expect_write(QCALL(REPL_QUORUM_VSET, B(key, sizeof key), S(v2.s), S(""), S("0")), 1, v2.s, 1);
    expect_vget_on(&servers[0], B(key, sizeof key), v2.s, LIVE, "", 0);

    /* 1 MB of pseudo-random bytes (NULs included) */
    size_t n = 1 << 20;
    char *big = malloc(n);
    cr_assert_not_null(big);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (char)(x >> 16);
    }
    big[0] = '\0';
    big[n - 1] = '\0';
    expect_write(QCALL(REPL_QUORUM_VSET, S("big"), S(v1.s), B(big, n), S("0")), 1, v1.s, 0);
    expect_vget_on(&servers[0], S("big"), v1.s, LIVE, big, n);
    redisReply *r = cmd("STRLEN big");
    cr_assert_eq(r->integer, (long long)n + REPL_QUORUM_HEADER_LEN);
    freeReplyObject(r);
    /* VEXPIRE rewrites the header only; the value stays byte-identical */
    expect_write(QCALL(REPL_QUORUM_VEXPIRE, S("big"), S(v2.s), S("60000")), 1, v2.s, 1);
    expect_vget_on(&servers[0], S("big"), v2.s, LIVE, big, n);
    /* a stale 1 MB write leaves it alone */
    big[5] ^= 1;
    expect_write(QCALL(REPL_QUORUM_VSET, S("big"), S(v1.s), B(big, n), S("0")), 0, v2.s, 1);
    big[5] ^= 1;
    expect_vget_on(&servers[0], S("big"), v2.s, LIVE, big, n);
    expect_write(QCALL(REPL_QUORUM_VDEL, S("big"), S(v3.s), S("60000")), 1, v3.s, 1);
    expect_vget("big", v3.s, TOMB, "");
    free(big);
}

/* ------------------------------------------------------------------------ */
/* bad input                                                                 */

Test(qlua, bad_arguments_give_clear_errors) {
    ts_qver v1 = ts_qver_of(10, 0, 1), v2 = ts_qver_of(20, 0, 1);
    expect_write(QCALL(REPL_QUORUM_VSET, S("k"), S(v1.s), S("keep"), S("0")), 1, v1.s, 0);
    const char *V = v2.s;
    struct {
        repl_quorum_script id;
        int nkeys, nargs;
        qarg args[6];
        const char *err;
    } cases[] = {
        {REPL_QUORUM_VSET, 0, 3, {S(V), S("x"), S("0")}, "VSET wants 1 key"},
        {REPL_QUORUM_VSET, 2, 5, {S("k"), S("k2"), S(V), S("x"), S("0")}, "VSET wants 1 key"},
        {REPL_QUORUM_VSET, 1, 3, {S("k"), S(V), S("x")}, "VSET wants 1 key"},
        {REPL_QUORUM_VSET, 1, 6, {S("k"), S(V), S("x"), S("0"), S("PX"), S("y")}, "VSET wants"},
        {REPL_QUORUM_VSET, 1, 4, {S("k"), S(V), S("x"), S("-5")}, "ttl must be"},
        {REPL_QUORUM_VSET, 1, 4, {S("k"), S(V), S("x"), S("abc")}, "ttl must be"},
        {REPL_QUORUM_VSET, 1, 4, {S("k"), S(V), S("x"), S("1.5")}, "ttl must be"},
        {REPL_QUORUM_VSET, 1, 4, {S("k"), S(V), S("x"), S("007")}, "ttl must be"},
        {REPL_QUORUM_VSET, 1, 4, {S("k"), S(V), S("x"), S("1e3")}, "ttl must be"},
        {REPL_QUORUM_VSET, 1, 4, {S("k"), S(V), S("x"), S("")}, "ttl must be"},
        {REPL_QUORUM_VSET, 1, 4, {S("k"), S(V), S("x"), S("1234567890123456")}, "ttl must be"},
        {REPL_QUORUM_VSET, 1, 5, {S("k"), S(V), S("x"), S("10"), S("EX")}, "bad ttl mode"},
        {REPL_QUORUM_VSET, 1, 5, {S("k"), S(V), S("x"), S("10"), S("KEEPTTL")}, "KEEPTTL takes"},
        {REPL_QUORUM_VDEL, 1, 2, {S("k"), S(V)}, "VDEL wants 1 key"},
        {REPL_QUORUM_VDEL, 1, 3, {S("k"), S(V), S("0")}, "tombstone needs a ttl"},
        {REPL_QUORUM_VDEL, 1, 4, {S("k"), S(V), S("10"), S("KEEPTTL")}, "bad ttl mode"},
        {REPL_QUORUM_VEXPIRE, 1, 2, {S("k"), S(V)}, "VEXPIRE wants 1 key"},
        {REPL_QUORUM_VEXPIRE, 1, 3, {S("k"), S(V), S("-1")}, "ttl must be"},
        {REPL_QUORUM_VGET, 1, 2, {S("k"), S("extra")}, "VGET wants 1 key"},
        {REPL_QUORUM_VGET, 0, 0, {S("")}, "VGET wants 1 key"},
        {REPL_QUORUM_VHEAD, 0, 0, {S("")}, "VHEAD wants 1 or more keys"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        redisReply *r = qcall_on(&servers[0], cases[i].id, cases[i].nkeys, cases[i].nargs,
                                 cases[i].args);
        cr_assert_eq(r->type, REDIS_REPLY_ERROR, "case %zu: no error", i);
        cr_assert_eq(strncmp(r->str, "ERR rcproxy: ", 13), 0, "case %zu: '%s'", i, r->str);
        expect_error(r, cases[i].err);
    }
    /* nothing was written and the server is fine */
    expect_vget("k", v1.s, LIVE, "keep");
    redisReply *r = cmd("PING");
    cr_assert_str_eq(r->str, "PONG");
    freeReplyObject(r);
}

Test(qlua, bad_versions_rejected) {
    const char *bad[] = {
        "",
        "0",
        "0000018c2b3a4f5e000000010000000",   /* 31 */
        "0000018c2b3a4f5e00000001000000033", /* 33 */
        "0000018C2B3A4F5E0000000100000003",  /* upper case */
        "0000018c2b3a4f5e000000010000000g",
        "0000018c2b3a4f5e00000001 0000003",
        "-000018c2b3a4f5e0000000100000003",
        "0x00018c2b3a4f5e0000000100000003",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_error(QCALL(REPL_QUORUM_VSET, S("k"), S(bad[i]), S("x"), S("0")),
                     "ERR rcproxy: version must be 32 lowercase hex characters");
        expect_error(QCALL(REPL_QUORUM_VDEL, S("k"), S(bad[i]), S("1000")), "version must be");
        expect_error(QCALL(REPL_QUORUM_VEXPIRE, S("k"), S(bad[i]), S("1000")), "version must be");
    }
    char nul[33];
    memset(nul, '0', 32);
    nul[31] = '\0';
    nul[32] = '\0';
    expect_error(QCALL(REPL_QUORUM_VSET, S("k"), B(nul, 32), S("x"), S("0")), "version must be");
    expect_missing("k");
}

/* SET key to head (3 bytes, or 1 when it starts with '1'), version, tail. */
static void set_raw(const char *key, const char *head, const char *version, const char *tail) {
    char buf[128];
    size_t hl = head[0] == '1' ? 1 : 3, vl = strlen(version), tl = strlen(tail);
    cr_assert(hl + vl + tl <= sizeof buf);
    memcpy(buf, head, hl);
    memcpy(buf + hl, version, vl);
    memcpy(buf + hl + vl, tail, tl);
    redisReply *r = cmd("SET %s %b", key, buf, hl + vl + tl);
    cr_assert_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

Test(qlua, foreign_values_are_never_overwritten) {
    ts_qver v = ts_qver_of(~0ULL, ~0u, ~0u); /* even the highest version */
    freeReplyObject(cmd("SET str plainvalue"));
    freeReplyObject(cmd("SET num 12345"));
    freeReplyObject(cmd("SET empty %s", ""));
    /* one thing wrong each */
    set_raw("badflags", "\xf5\x01\x02", v.s, "");
    set_raw("badformat", "\xf5\x02\x00", v.s, "");
    set_raw("badmagic", "\xf4\x01\x00", v.s, "");
    set_raw("upper", "\xf5\x01\x00", "0000018C2B3A4F5E0000000100000003", "");
    set_raw("short", "\xf5\x01\x00", "0000018c2b3a4f5e000000010000000", "");
    set_raw("oldlayout", "1", v.s, "V");
    set_raw("fattomb", "\xf5\x01\x01", v.s, "x"); /* a tombstone with a value */
    set_raw("good", "\xf5\x01\x00", v.s, "x");    /* the control: well-formed */
    expect_vget("good", v.s, LIVE, "x");
    freeReplyObject(cmd("HSET h f v"));
    const char *foreign[] = {"str",   "num",   "empty",     "badflags", "badformat",
                             "badmagic", "upper", "short", "oldlayout", "fattomb"};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        const char *k = foreign[i];
        expect_error(QCALL(REPL_QUORUM_VGET, S(k)), "key holds a value not written by rcproxy");
        expect_error(QCALL(REPL_QUORUM_VSET, S(k), S(v.s), S("x"), S("0")), "not written by rcproxy");
        expect_error(QCALL(REPL_QUORUM_VDEL, S(k), S(v.s), S("10")), "not written by rcproxy");
        expect_error(QCALL(REPL_QUORUM_VEXPIRE, S(k), S(v.s), S("10")), "not written by rcproxy");
    }
    expect_error(QCALL(REPL_QUORUM_VGET, S("h")), "WRONGTYPE");
    expect_error(QCALL(REPL_QUORUM_VSET, S("h"), S(v.s), S("x"), S("0")), "WRONGTYPE");
    redisReply *r = cmd("GET str");
    cr_assert_str_eq(r->str, "plainvalue");
    freeReplyObject(r);
    r = cmd("HGET h f");
    cr_assert_str_eq(r->str, "v");
    freeReplyObject(r);
}

/* ------------------------------------------------------------------------ */
/* hints: plain XADD / XRANGE / XDEL between a holder and an owner           */

/* Append a hint on the holder; returns nothing, asserts an ID came back. */
static void hint_add(qserver *holder, const char *stream, const char *id, const char *op,
                     const char *key, const char *version, qarg val, const char *ttl,
                     const char *mode) {
    const char *argv[20];
    size_t lens[20];
    int n = 0;
#define PUSH(p, l) (argv[n] = (p), lens[n] = (l), n++)
#define PUSHS(p) PUSH((p), strlen(p))
    PUSHS("XADD");
    PUSHS(stream);
    PUSHS("MAXLEN");
    PUSHS("~");
    PUSHS("100000");
    PUSHS(id);
    PUSHS("op");
    PUSHS(op);
    PUSHS("key");
    PUSHS(key);
    PUSHS("ver");
    PUSHS(version);
    PUSHS("ttl");
    PUSHS(ttl);
    PUSHS("mode");
    PUSHS(mode);
    if (val.p != NULL) {
        PUSHS("val");
        PUSH(val.p, val.len);
    }
#undef PUSH
#undef PUSHS
    redisReply *r = redisCommandArgv(holder->r.c, n, argv, lens);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "XADD: %s", r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
}

static const redisReply *field(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1];
    return NULL;
}

/* Replay every hint of stream (XRANGE) to owner, newest first when reverse;
 * XDEL each one after the owner answered when ack.  Returns the number of
 * hints replayed and stores each reply code in codes[] (in replay order). */
static size_t hint_replay(qserver *holder, const char *stream, qserver *owner, int reverse,
                          int ack, long long *codes, size_t max) {
    redisReply *list = redisCommand(holder->r.c, "XRANGE %s - + COUNT 100", stream);
    cr_assert_not_null(list);
    cr_assert_eq(list->type, REDIS_REPLY_ARRAY);
    cr_assert_leq(list->elements, max);
    for (size_t j = 0; j < list->elements; j++) {
        const redisReply *e = list->element[reverse ? list->elements - 1 - j : j];
        const redisReply *id = e->element[0], *f = e->element[1];
        const redisReply *op = field(f, "op"), *key = field(f, "key"), *ver = field(f, "ver"),
                         *ttl = field(f, "ttl"), *mode = field(f, "mode"), *val = field(f, "val");
        cr_assert(op && key && ver && ttl && mode);
        qarg args[6];
        int n = 0;
        repl_quorum_script sid;
        args[n++] = B(key->str, key->len);
        args[n++] = B(ver->str, ver->len);
        if (strcmp(op->str, "VSET") == 0) {
            cr_assert_not_null(val);
            sid = REPL_QUORUM_VSET;
            args[n++] = B(val->str, val->len);
        } else {
            sid = strcmp(op->str, "VDEL") == 0 ? REPL_QUORUM_VDEL : REPL_QUORUM_VEXPIRE;
        }
        args[n++] = B(ttl->str, ttl->len);
        args[n++] = B(mode->str, mode->len);
        redisReply *r = qcall_on(owner, sid, 1, n, args);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "replay %s: %s", op->str,
                     r->type == REDIS_REPLY_ERROR ? r->str : "");
        codes[j] = r->element[0]->integer;
        freeReplyObject(r);
        if (ack) {
            redisReply *d = redisCommand(holder->r.c, "XDEL %s %b", stream, id->str, id->len);
            cr_assert_not_null(d);
            cr_assert_eq(d->integer, 1);
            freeReplyObject(d);
        }
    }
    size_t n = list->elements;
    freeReplyObject(list);
    return n;
}

Test(qlua, hints_replay_idempotent_in_any_order) {
    qserver *holder = &servers[0];
    qserver *owner = server_start();
    char stream[64], at_val[32], at_exp[32], at_tomb[32];
    snprintf(stream, sizeof stream, REPL_QUORUM_HINT_PREFIX "127.0.0.1:%d", owner->r.port);
    long long t = ts_wall_ms();
    snprintf(at_val, sizeof at_val, "%lld", t + 60000);
    snprintf(at_exp, sizeof at_exp, "%lld", t + 30000);
    snprintf(at_tomb, sizeof at_tomb, "%lld", t + REPL_QUORUM_TOMBSTONE_TTL_MS_DEFAULT);
    ts_qver v1 = ts_qver_of(100, 0, 1), v2 = ts_qver_of(200, 0, 2), v3 = ts_qver_of(300, 0, 1),
            v4 = ts_qver_of(400, 0, 3);
    static const char bin[] = "three\0bin";
    hint_add(holder, stream, "*", "VSET", "key", v1.s, S("one"), at_val, "PXAT");
    hint_add(holder, stream, "*", "VSET", "key", v3.s, B(bin, sizeof bin), "0", "PXAT");
    hint_add(holder, stream, "*", "VDEL", "key2", v2.s, B(NULL, 0), at_tomb, "PXAT");
    hint_add(holder, stream, "*", "VSET", "key2", v1.s, S("old"), "0", "PXAT");
    hint_add(holder, stream, "*", "VEXPIRE", "key", v4.s, B(NULL, 0), at_exp, "PXAT");

    /* newest first, no ack: the VEXPIRE finds no value (3), key2 gets "old" then
     * its tombstone, the older VSET of key is stale */
    long long codes[8];
    cr_assert_eq(hint_replay(holder, stream, owner, 1, 0, codes, 8), 5);
    long long want_rev[] = {3, 1, 1, 1, 0};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(codes[i], want_rev[i], "reverse replay %d: code %lld", i, codes[i]);
    cr_assert_eq(expect_vget_on(owner, S("key"), v3.s, LIVE, bin, sizeof bin), -1);
    expect_vget_on(owner, S("key2"), v2.s, TOMB, "", 0);

    /* again in stream order, with ack: replays are no-ops, the VEXPIRE applies now */
    cr_assert_eq(hint_replay(holder, stream, owner, 0, 1, codes, 8), 5);
    long long want_fwd[] = {0, 2, 2, 0, 1};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(codes[i], want_fwd[i], "forward replay %d: code %lld", i, codes[i]);
    long long pttl = expect_vget_on(owner, S("key"), v4.s, LIVE, bin, sizeof bin);
    cr_assert(pttl > 25000 && pttl <= 30000, "pttl %lld", pttl);
    long long tpttl = expect_vget_on(owner, S("key2"), v2.s, TOMB, "", 0);
    cr_assert(tpttl > REPL_QUORUM_TOMBSTONE_TTL_MS_DEFAULT - 60000, "tombstone pttl %lld", tpttl);
    redisReply *r = redisCommand(holder->r.c, "XLEN %s", stream);
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
    /* the holder's data keyspace was never touched by the hand-off */
    r = redisCommand(holder->r.c, "EXISTS key key2");
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);

    /* hints older than tombstone-ttl are trimmed by stream ID time, not
     * replayed (an explicit old ID stands in for a hint that waited a day;
     * a fresh stream, since IDs only grow) */
    char old[64];
    snprintf(old, sizeof old, REPL_QUORUM_HINT_PREFIX "127.0.0.1:%d", holder->r.port);
    hint_add(holder, old, "1000-0", "VSET", "key", v1.s, S("ancient"), "0", "PXAT");
    hint_add(holder, old, "*", "VSET", "key", v4.s, S("fresh"), "0", "PXAT");
    r = redisCommand(holder->r.c, "XTRIM %s MINID %lld", old,
                     ts_wall_ms() - REPL_QUORUM_TOMBSTONE_TTL_MS_DEFAULT);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->integer, 1);
    freeReplyObject(r);
    r = redisCommand(holder->r.c, "XRANGE %s - +", old);
    cr_assert_eq(r->elements, 1);
    cr_assert_str_eq(field(r->element[0]->element[1], "val")->str, "fresh");
    freeReplyObject(r);
}

/* ------------------------------------------------------------------------ */
/* memory overhead                                                           */

static long long memory_usage(const char *key) {
    redisReply *r = cmd("MEMORY USAGE %s SAMPLES 0", key);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static long long used_memory(void) {
    redisReply *r = cmd("INFO memory");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "used_memory:");
    cr_assert_not_null(p);
    long long n = atoll(p + strlen("used_memory:"));
    freeReplyObject(r);
    return n;
}

/* Write n keys "<prefix>:<i>" with a 100-byte value, plain SET or VSET,
 * pipelined; returns the growth of used_memory. */
static long long fill(const char *prefix, int n, int versioned) {
    qserver *s = &servers[0];
    char val[100], key[32];
    memset(val, 'x', sizeof val);
    ts_qver v = ts_qver_of(0x18c2b3a4f5eULL, 1, 3);
    long long before = used_memory();
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s:%06d", prefix, i);
        if (versioned)
            redisAppendCommand(s->r.c, "EVALSHA %s 1 %s %s %b 0", s->sha[REPL_QUORUM_VSET], key,
                               v.s, val, sizeof val);
        else
            redisAppendCommand(s->r.c, "SET %s %b", key, val, sizeof val);
    }
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(s->r.c, (void **)&r), REDIS_OK);
        cr_assert(r->type != REDIS_REPLY_ERROR, "%s", r->str);
        freeReplyObject(r);
    }
    return used_memory() - before;
}

Test(qlua, memory_overhead_vs_plain_set) {
    char val[100];
    memset(val, 'x', sizeof val);
    ts_qver v = ts_qver_of(0x18c2b3a4f5eULL, 1, 3);
    freeReplyObject(cmd("SET plain:000000 %b", val, sizeof val));
    expect_write(QCALL(REPL_QUORUM_VSET, S("vers:000000"), S(v.s), B(val, sizeof val), S("0")), 1,
                 v.s, 0);
    long long plain = memory_usage("plain:000000"), vers = memory_usage("vers:000000");
    /* with a TTL (same expires entry for both) */
    freeReplyObject(cmd("SET plainx:000000 %b PX 100000", val, sizeof val));
    expect_write(QCALL(REPL_QUORUM_VSET, S("versx:000000"), S(v.s), B(val, sizeof val), S("100000")),
                 1, v.s, 0);
    long long plainx = memory_usage("plainx:000000"), versx = memory_usage("versx:000000");
    freeReplyObject(cmd("FLUSHALL SYNC"));

    const int n = 5000;
    long long dplain = fill("plain", n, 0);
    freeReplyObject(cmd("FLUSHALL SYNC"));
    long long dvers = fill("vers", n, 1);
    fprintf(stderr,
            "quorum format, 100-byte value: MEMORY USAGE plain SET %lld, versioned %lld (+%lld); "
            "with PX: %lld vs %lld (+%lld); used_memory over %d keys: plain %.1f B/key, "
            "versioned %.1f B/key (+%.1f)\n",
            plain, vers, vers - plain, plainx, versx, versx - plainx, n, (double)dplain / n,
            (double)dvers / n, (double)(dvers - dplain) / n);
    /* the header is 34 bytes; jemalloc size classes round it to at most 64 */
    cr_assert(vers - plain >= REPL_QUORUM_HEADER_LEN && vers - plain <= 64,
              "overhead %lld", vers - plain);
    cr_assert_eq(versx - plainx, vers - plain);
    cr_assert((dvers - dplain) / n <= 64, "used_memory overhead %lld B/key", (dvers - dplain) / n);
}
