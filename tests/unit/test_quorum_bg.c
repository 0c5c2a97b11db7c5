/* test_quorum_bg.c -- replication/quorum_bg: anti-entropy and hinted
 * hand-off against real redis-server 7.0 processes.
 *
 * Each test (criterion runs each in its own worker process) starts its
 * servers on free 127.0.0.1 ports in a temp dir (--save "" --appendonly
 * no), loads the function library on them with a test-side hiredis client
 * and runs the module on a private ev loop.  The suite's .fini kills every
 * server (SIGKILL works on SIGSTOPped ones too, reaped) and removes the temp
 * dir, also after a failed assertion; the children carry PR_SET_PDEATHSIG.
 * Every wait is bounded in time.  Under -Db_sanitize=address the free tests
 * also run LSan's leak check. */
#include "replication/quorum_bg.h"

#include <criterion/criterion.h>

#include "replication/quorum_ring.h"
#include "replication/quorum_scripts.h"
#include "tests/support/ts.h"

#include <ev.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* redis-server processes                                                    */

#define MAX_SERVERS 4

typedef ts_redis qserver; /* the process, its port, the test-side client */

static char tmpdir[64];
static qserver servers[MAX_SERVERS];
static int nservers;
static const char *password; /* requirepass of the servers, NULL: none */

/* Start (or restart, empty) s on its port and connect; load the library
 * when with_lib (else only the module's handshake loads it). */
static void server_spawn_lib(qserver *s, int with_lib) {
    cr_assert_eq(ts_redis_start(s, tmpdir, password, NULL), 0,
                 "redis-server on port %d did not start", s->port);
    if (!with_lib)
        return;
    redisReply *r = redisCommand(s->c, "FUNCTION LOAD REPLACE %s", REPL_QUORUM_LIBRARY);
    cr_assert_not_null(r);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "FUNCTION LOAD: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
}

static void server_spawn(qserver *s) {
    server_spawn_lib(s, 1);
}

/* A new server on a free port, with the library; asserts. */
static qserver *server_start(void) {
    cr_assert(nservers < MAX_SERVERS);
    qserver *s = &servers[nservers++];
    memset(s, 0, sizeof *s);
    server_spawn(s);
    return s;
}

/* A worker killed by criterion's timeout runs no fini: its servers die with
 * it (PDEATHSIG) and ts_make_tmpdir removes its temp dir. */
static void q_init(void) {
    signal(SIGPIPE, SIG_IGN);
    nservers = 0;
    password = NULL;
    cr_assert_eq(ts_make_tmpdir(tmpdir, sizeof tmpdir, "rcproxy-qbg"), 0);
}

static void q_fini(void) {
    for (int i = 0; i < nservers; i++)
        ts_redis_stop(&servers[i]);
    ts_remove_dir(tmpdir);
}

TestSuite(qbg, .init = q_init, .fini = q_fini, .timeout = 120);

/* ------------------------------------------------------------------------ */
/* test-side commands                                                        */

static redisReply *cmd(qserver *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "%s: %s", fmt, s->c->errstr);
    return r;
}

static long long cmd_int(qserver *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "%s: %s", fmt, s->c->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "%s: type %d (%s)", fmt, r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void expect_applied(redisReply *r) {
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "write: type %d (%s)", r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->element[0]->integer, 1);
    freeReplyObject(r);
}

static void vset(qserver *s, const char *key, const char *v, const char *val, long long ttl) {
    expect_applied(cmd(s, "FCALL rcp_vset 1 %s %s %s %lld", key, v, val, ttl));
}

static void vdel(qserver *s, const char *key, const char *v, long long ttl) {
    expect_applied(cmd(s, "FCALL rcp_vdel 1 %s %s %lld", key, v, ttl));
}

/* The copy of key on s: 0 when missing, else 1 with *out filled. */
typedef struct {
    char ver[33];
    int tomb;
    char val[64];
    long long pttl;
} qcopy;

static int vget(qserver *s, const char *key, qcopy *out) {
    redisReply *r = cmd(s, "FCALL_RO rcp_vget 1 %s", key);
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return 0;
    }
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "vget %s: type %d (%s)", key, r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    cr_assert_eq(r->elements, 4);
    snprintf(out->ver, sizeof out->ver, "%s", r->element[0]->str);
    out->tomb = (int)r->element[1]->integer;
    snprintf(out->val, sizeof out->val, "%s", r->element[2]->str);
    out->pttl = r->element[3]->integer;
    freeReplyObject(r);
    return 1;
}

static void expect_copy(qserver *s, const char *key, const char *v, int tomb, const char *val) {
    qcopy c;
    cr_assert(vget(s, key, &c), "%s missing on port %d", key, s->port);
    cr_assert_str_eq(c.ver, v, "%s on port %d: version %s, want %s", key, s->port, c.ver, v);
    cr_assert_eq(c.tomb, tomb, "%s on port %d: tombstone %d", key, s->port, c.tomb);
    cr_assert_str_eq(c.val, val, "%s on port %d: value '%s', want '%s'", key, s->port, c.val, val);
}

/* Keys "<prefix>:<i>" for i < n, each with version key_ver(i). */
static ts_qver key_ver(int i) {
    return ts_qver_of(1700000000000ULL + (unsigned long long)i, 0, 1);
}

static void key_name(char *out, size_t cap, const char *prefix, int i) {
    snprintf(out, cap, "%s:%05d", prefix, i);
}

/* Write the n keys to s, pipelined; every 10th with a 600 s TTL. */
static void fill(qserver *s, const char *prefix, int n) {
    char key[32], val[32];
    for (int i = 0; i < n; i++) {
        ts_qver v = key_ver(i);
        key_name(key, sizeof key, prefix, i);
        snprintf(val, sizeof val, "value-%d", i);
        redisAppendCommand(s->c, "FCALL rcp_vset 1 %s %s %s %d", key, v.s, val,
                           i % 10 == 0 ? 600000 : 0);
    }
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(s->c, (void **)&r), REDIS_OK);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "fill: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "?");
        freeReplyObject(r);
    }
}

/* How many of the n keys s holds live with exactly key_ver(i) (one VHEAD). */
static int count_synced(qserver *s, const char *prefix, int n) {
    const char **argv = calloc((size_t)n + 3, sizeof *argv);
    char (*keys)[32] = calloc((size_t)n, sizeof *keys);
    char num[16];
    int ok = 0;
    cr_assert(argv != NULL && keys != NULL);
    snprintf(num, sizeof num, "%d", n);
    argv[0] = "FCALL_RO";
    argv[1] = "rcp_vhead";
    argv[2] = num;
    for (int i = 0; i < n; i++) {
        key_name(keys[i], sizeof keys[i], prefix, i);
        argv[3 + i] = keys[i];
    }
    redisReply *r = redisCommandArgv(s->c, n + 3, argv, NULL);
    cr_assert_not_null(r);
    /* an error: the node has no library (yet): nothing is in sync */
    cr_assert(r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_ERROR);
    for (int i = 0; r->type == REDIS_REPLY_ARRAY && i < n; i++) {
        const redisReply *e = r->element[i];
        ts_qver v = key_ver(i);
        if (e->type == REDIS_REPLY_ARRAY && strcmp(e->element[0]->str, v.s) == 0 &&
            e->element[1]->integer == 0)
            ok++;
    }
    freeReplyObject(r);
    free(argv);
    free(keys);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* the module on a private loop                                              */

typedef struct {
    struct ev_loop *loop;
    repl_ring *ring;
    conf_addr addrs[MAX_SERVERS];
    repl_qbg_config cfg;
    repl_qbg *bg;
} harness;

/* A ring and a config over the first nnodes servers (or the given ports). */
static void harness_init(harness *h, int nnodes, const int *ports, int n, int rate) {
    memset(h, 0, sizeof *h);
    h->loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(h->loop);
    h->ring = repl_ring_new(0);
    cr_assert_not_null(h->ring);
    for (int i = 0; i < nnodes; i++) {
        char id[64];
        snprintf(h->addrs[i].host, sizeof h->addrs[i].host, "127.0.0.1");
        h->addrs[i].port = ports != NULL ? ports[i] : servers[i].port;
        snprintf(id, sizeof id, "127.0.0.1:%d", h->addrs[i].port);
        cr_assert_eq(repl_ring_add_node(h->ring, i, id), 0);
    }
    h->cfg.nodes = h->addrs;
    h->cfg.nnodes = nnodes;
    h->cfg.ring = h->ring;
    h->cfg.n = n;
    h->cfg.rate = rate;
    h->cfg.tombstone_ttl_ms = 60000;
    h->cfg.user = "";
    h->cfg.password = password != NULL ? password : "";
    h->cfg.connect_timeout_ms = 300;
}

static void harness_start(harness *h) {
    h->bg = repl_qbg_new(h->loop, &h->cfg);
    cr_assert_not_null(h->bg);
    repl_qbg_start(h->bg);
}

/* Free the module; the loop must then have nothing left to run. */
static void harness_stop(harness *h) {
    repl_qbg_free(h->bg);
    h->bg = NULL;
    cr_assert(ts_drain_loop(h->loop, 2000), "a watcher was left on the loop after repl_qbg_free");
}

static void harness_fini(harness *h) {
    if (h->bg != NULL)
        harness_stop(h);
    ev_loop_destroy(h->loop);
    repl_ring_free(h->ring);
}

static repl_qbg_stats stats(const harness *h) {
    repl_qbg_stats st;
    repl_qbg_stats_get(h->bg, &st);
    return st;
}

/* Wait conditions, each checked at most every 50 ms (they ask servers). */
typedef struct {
    harness *h;
    qserver *s;
    const char *prefix;
    int n;
    int target; /* check_synced: how many of the n keys must be in sync */
    long long last_ms;
    int (*check)(void *);
} waiter;

static int throttled(void *arg) {
    waiter *w = arg;
    long long now = ts_now_ms();
    if (now - w->last_ms < 50)
        return 0;
    w->last_ms = now;
    return w->check(w);
}

static int check_synced(void *arg) {
    waiter *w = arg;
    return count_synced(w->s, w->prefix, w->n) >= w->target;
}

/* Run until s holds `target` of the n keys with their own version. */
static int wait_synced(harness *h, qserver *s, const char *prefix, int n, int target, int ms) {
    waiter w = {h, s, prefix, n, target, 0, check_synced};
    return ts_run_until(h->loop, throttled, &w, ms);
}

static int check_passes(void *arg) {
    waiter *w = arg;
    return stats(w->h).ae_passes >= w->n;
}

static int check_nodes_up(void *arg) {
    waiter *w = arg;
    return stats(w->h).nodes_up == w->n;
}

static int check_repaired(void *arg) {
    waiter *w = arg;
    return stats(w->h).ae_keys_repaired >= w->n;
}

static int wait_stat(harness *h, int (*check)(void *), int n, int ms) {
    waiter w = {h, NULL, NULL, n, 0, 0, check};
    return ts_run_until(h->loop, throttled, &w, ms);
}

/* ------------------------------------------------------------------------ */
/* anti-entropy                                                              */

Test(qbg, anti_entropy_converges_three_nodes) {
    const int n = 2000;
    qserver *s0 = server_start(), *s1 = server_start(), *s2 = server_start();
    fill(s0, "k", n);
    fill(s1, "k", n);
    /* node 1 has a newer k:00005 */
    ts_qver newer = ts_qver_of(1800000000000ULL, 0, 2);
    char k5[32];
    key_name(k5, sizeof k5, "k", 5);
    vset(s1, k5, newer.s, "newer", 0);
    /* a tombstone on 0 and 1 over an older live copy on 2 */
    ts_qver old = ts_qver_of(1000, 0, 2), tomb = ts_qver_of(2000, 0, 1),
            only = ts_qver_of(3000, 0, 3);
    vdel(s0, "tomb", tomb.s, 100000);
    vdel(s1, "tomb", tomb.s, 100000);
    vset(s2, "tomb", old.s, "old", 0);
    /* a key only node 2 has */
    vset(s2, "only2", only.s, "two", 0);
    /* not ours: a plain string (foreign) and a reserved key */
    freeReplyObject(cmd(s0, "SET foreign x"));
    freeReplyObject(cmd(s0, "SET rcproxy:other y"));

    harness h;
    harness_init(&h, 3, NULL, 3, 20000);
    long long t0 = ts_now_ms();
    harness_start(&h);
    /* k:00005 ends up newer than its key_ver everywhere */
    cr_assert(wait_synced(&h, s2, "k", n, n - 1, 20000), "node 2 did not converge: %d of %d",
              count_synced(s2, "k", n), n - 1);
    cr_assert(wait_stat(&h, check_passes, 1, 20000), "no full pass within 20 s");
    long long took = ts_now_ms() - t0;
    cr_assert_eq(count_synced(s2, "k", n), n - 1); /* k:00005 is newer */
    cr_assert_eq(count_synced(s0, "k", n), n - 1);

    /* values and TTLs */
    char key[32], val[32];
    for (int i = 0; i < n; i += 97) {
        if (i == 5)
            continue;
        qcopy c;
        key_name(key, sizeof key, "k", i);
        snprintf(val, sizeof val, "value-%d", i);
        expect_copy(s2, key, key_ver(i).s, 0, val);
        cr_assert(vget(s2, key, &c));
        if (i % 10 == 0)
            cr_assert(c.pttl > 500000 && c.pttl <= 600000, "%s pttl %lld", key, c.pttl);
        else
            cr_assert_eq(c.pttl, -1, "%s pttl %lld", key, c.pttl);
    }
    expect_copy(s0, k5, newer.s, 0, "newer");
    expect_copy(s2, k5, newer.s, 0, "newer");
    qcopy c;
    expect_copy(s2, "tomb", tomb.s, 1, "");
    cr_assert(vget(s2, "tomb", &c));
    cr_assert(c.pttl > 50000 && c.pttl <= 100000, "tombstone pttl %lld", c.pttl);
    expect_copy(s0, "only2", only.s, 0, "two");
    expect_copy(s1, "only2", only.s, 0, "two");
    /* foreign and reserved keys are not copied */
    cr_assert_eq(cmd_int(s2, "EXISTS foreign rcproxy:other"), 0);
    cr_assert_eq(cmd_int(s1, "EXISTS foreign rcproxy:other"), 0);
    /* the cursor is stored on every node */
    for (int i = 0; i < 3; i++)
        cr_assert_eq(cmd_int(&servers[i], "EXISTS rcproxy:ae:cursor"), 1);

    repl_qbg_stats st = stats(&h);
    cr_assert(st.ae_passes >= 1);
    /* 2000 keys to node 2 (k:00005 the newer one), the tombstone, only2
     * twice, k:00005 to node 0 */
    cr_assert(st.ae_keys_repaired >= n + 4, "repaired %lld", st.ae_keys_repaired);
    cr_assert(st.ae_keys_scanned >= 3 * n, "scanned %lld", st.ae_keys_scanned);
    cr_assert_eq(st.errors, 0, "errors %lld", st.errors);
    cr_assert_eq(st.nodes_up, 3);
    /* ~6000 keys at 20000/s: the rate limit shows */
    cr_assert(took >= 150, "a full pass took only %lld ms", took);

    char info[1024];
    size_t len = repl_qbg_info(h.bg, info, sizeof info);
    cr_assert_eq(len, strlen(info));
    cr_assert_not_null(strstr(info, "anti_entropy_rate:20000\r\n"), "%s", info);
    cr_assert_not_null(strstr(info, "anti_entropy_passes:"));
    cr_assert_not_null(strstr(info, "anti_entropy_keys_repaired:"));
    cr_assert_not_null(strstr(info, "anti_entropy_cursor:"));
    cr_assert_not_null(strstr(info, "hints_pending:0\r\n"), "%s", info);
    /* truncation keeps whole lines */
    char small[40];
    size_t sl = repl_qbg_info(h.bg, small, sizeof small);
    cr_assert_eq(sl, strlen(small));
    cr_assert(sl > 0 && sl < sizeof small && small[sl - 1] == '\n', "'%s'", small);
    cr_assert_eq(repl_qbg_info(h.bg, small, 0), 0);
    harness_fini(&h);
}

Test(qbg, anti_entropy_rate_limit_and_resume) {
    const int n = 3000;
    qserver *s0 = server_start();
    fill(s0, "r", n);
    harness h;
    harness_init(&h, 1, NULL, 1, 1000);
    harness_start(&h);
    ts_run_until(h.loop, NULL, NULL, 1000);
    repl_qbg_stats st = stats(&h);
    /* 1 s at 1000 keys/s: one burst (200) and one batch (100) of slack */
    cr_assert(st.ae_keys_scanned >= 500 && st.ae_keys_scanned <= 1400, "scanned %lld in 1 s",
              st.ae_keys_scanned);
    cr_assert_eq(st.ae_passes, 0);
    long long first = st.ae_keys_scanned;
    harness_stop(&h);
    /* the cursor on the node is where the walk stopped */
    redisReply *r = cmd(s0, "GET rcproxy:ae:cursor");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_neq(strcmp(r->str, "0"), 0);
    freeReplyObject(r);
    harness_fini(&h);

    /* a new module resumes there: its first pass scans only the rest */
    harness_init(&h, 1, NULL, 1, 20000);
    harness_start(&h);
    cr_assert(wait_stat(&h, check_passes, 1, 20000));
    st = stats(&h);
    cr_assert(st.ae_keys_scanned < n && st.ae_keys_scanned + first >= n,
              "first run %lld, resumed run %lld of %d", first, st.ae_keys_scanned, n);
    cr_assert_eq(st.ae_keys_repaired, 0);
    cr_assert_eq(st.errors, 0);
    harness_fini(&h);
}

Test(qbg, anti_entropy_survives_a_stopped_node) {
    const int n = 1500;
    qserver *s0 = server_start(), *s1 = server_start(), *s2 = server_start();
    fill(s0, "d", n);
    harness h;
    harness_init(&h, 3, NULL, 3, 3000);
    harness_start(&h);
    ts_run_until(h.loop, NULL, NULL, 150);
    cr_assert_eq(stats(&h).nodes_up, 3);
    /* node 2 freezes mid-scan: its commands hang until the link times out */
    kill(s2->pid, SIGSTOP);
    cr_assert(wait_synced(&h, s1, "d", n, n, 20000), "node 1 did not converge: %d of %d",
              count_synced(s1, "d", n), n);
    cr_assert(wait_stat(&h, check_nodes_up, 2, 5000), "the stopped node still counts as up");

    /* it dies and comes back empty on the same port, without the library:
     * the module's handshake loads it */
    ts_redis_stop(s2);
    server_spawn_lib(s2, 0);
    cr_assert(wait_synced(&h, s2, "d", n, n, 30000), "node 2 did not converge: %d of %d",
              count_synced(s2, "d", n), n);
    cr_assert(wait_stat(&h, check_nodes_up, 3, 5000));
    /* the replies to the last repair batch may still be unread: count them in */
    wait_stat(&h, check_repaired, 2 * n, 5000);
    repl_qbg_stats st = stats(&h);
    cr_assert(st.ae_keys_repaired >= 2 * n, "repaired %lld", st.ae_keys_repaired);
    harness_fini(&h);
}

Test(qbg, anti_entropy_reloads_a_flushed_library) {
    const int n = 500;
    qserver *s0 = server_start(), *s1 = server_start();
    harness h;
    harness_init(&h, 2, NULL, 2, 20000);
    harness_start(&h);
    cr_assert(wait_stat(&h, check_nodes_up, 2, 5000));
    /* node 1 loses the functions behind the module's back */
    freeReplyObject(cmd(s1, "FUNCTION FLUSH"));
    fill(s0, "l", n);
    cr_assert(wait_synced(&h, s1, "l", n, n, 20000), "node 1 did not converge: %d of %d",
              count_synced(s1, "l", n), n);
    harness_fini(&h);
}

/* ------------------------------------------------------------------------ */
/* hinted hand-off                                                           */

/* A key "<prefix><i>" whose home list (n of the ring) contains `in` and not
 * `out` (-1: no condition). */
static void find_key(const repl_ring *ring, int n, const char *prefix, int in1, int in2, int out,
                     char *key, size_t cap) {
    int home[8];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, cap, "%s%d", prefix, i);
        int k = repl_ring_preference(ring, key, strlen(key), n, home);
        int has1 = 0, has2 = 0, hasout = 0;
        for (int j = 0; j < k; j++) {
            has1 |= home[j] == in1;
            has2 |= home[j] == in2;
            hasout |= home[j] == out;
        }
        if (has1 && has2 && !hasout)
            return;
    }
    cr_assert_fail("no key found");
}

static void hint_add(qserver *holder, const char *stream, const char *id, const char *op,
                     const char *key, const char *v, const char *ttl, const char *mode,
                     const char *val) {
    redisReply *r;
    if (val != NULL)
        r = cmd(holder, "XADD %s %s op %s key %s ver %s ttl %s mode %s val %s", stream, id, op, key,
                v, ttl, mode, val);
    else
        r = cmd(holder, "XADD %s %s op %s key %s ver %s ttl %s mode %s", stream, id, op, key, v,
                ttl, mode);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "XADD: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
}

static int check_stream_empty(void *arg) {
    waiter *w = arg;
    return cmd_int(w->s, "XLEN %s", w->prefix) == 0;
}

static int check_pending_zero(void *arg) {
    waiter *w = arg;
    return stats(w->h).hints_pending == 0;
}

Test(qbg, hints_handed_off_when_the_owner_returns) {
    password = "s3cret pw"; /* AUTH on every link */
    qserver *s0 = server_start(), *s2;
    server_start();
    s2 = server_start();
    harness h;
    harness_init(&h, 3, NULL, 2, 0); /* n 2, anti-entropy off */
    char ka[32], kb[32], kc[32], stream[64], at[32];
    find_key(h.ring, 2, "a", 1, 2, 0, ka, sizeof ka); /* home {1,2}: node 0 is a stand-in */
    find_key(h.ring, 2, "b", 0, 2, -1, kb, sizeof kb); /* home {0,2}: node 0 keeps it */
    snprintf(kc, sizeof kc, "ancient");
    snprintf(stream, sizeof stream, REPL_QUORUM_HINT_PREFIX "127.0.0.1:%d", s2->port);
    snprintf(at, sizeof at, "%lld", ts_wall_ms() + 100000);
    ts_qver va = ts_qver_of(5000, 0, 1), vb = ts_qver_of(6000, 0, 1), vc = ts_qver_of(4000, 0, 1);

    ts_redis_stop(s2); /* the owner is down while the writes happen */
    vset(s0, ka, va.s, "alpha", 0);
    vdel(s0, kb, vb.s, 100000);
    /* older than tombstone-ttl (60 s): trimmed, never replayed */
    hint_add(s0, stream, "1000-0", "VSET", kc, vc.s, "0", "PXAT", "old");
    hint_add(s0, stream, "*", "VSET", ka, va.s, "0", "PXAT", "alpha");
    hint_add(s0, stream, "*", "VDEL", kb, vb.s, at, "PXAT", NULL);
    hint_add(s0, stream, "*", "BOGUS", kb, vb.s, "0", "PX", NULL); /* malformed: dropped */

    harness_start(&h);
    ts_run_until(h.loop, NULL, NULL, 1200);
    repl_qbg_stats st = stats(&h);
    cr_assert_eq(st.nodes_up, 2);
    cr_assert_eq(st.hints_pending, 4, "pending %lld", st.hints_pending);
    cr_assert_eq(st.hints_replayed, 0);
    cr_assert_eq(cmd_int(s0, "XLEN %s", stream), 4);

    server_spawn(s2); /* back, empty */
    waiter w = {&h, s0, stream, 0, 0, 0, check_stream_empty};
    cr_assert(ts_run_until(h.loop, throttled, &w, 15000), "hints left: %lld",
              cmd_int(s0, "XLEN %s", stream));
    cr_assert(wait_stat(&h, check_pending_zero, 0, 5000));

    qcopy c;
    expect_copy(s2, ka, va.s, 0, "alpha");
    cr_assert(vget(s2, ka, &c));
    cr_assert_eq(c.pttl, -1, "PXAT 0 must mean no expiry, pttl %lld", c.pttl);
    expect_copy(s2, kb, vb.s, 1, "");
    cr_assert(vget(s2, kb, &c));
    cr_assert(c.pttl > 90000 && c.pttl <= 100000, "tombstone pttl %lld", c.pttl);
    cr_assert_eq(cmd_int(s2, "EXISTS %s", kc), 0, "a trimmed hint was replayed");
    /* the stand-in copy of a is dropped, the home copy of b stays */
    cr_assert_eq(cmd_int(s0, "EXISTS %s", ka), 0, "stand-in copy not dropped");
    expect_copy(s0, kb, vb.s, 1, "");

    st = stats(&h);
    cr_assert_eq(st.hints_replayed, 2);
    cr_assert_eq(st.hint_errors, 1, "hint errors %lld", st.hint_errors);
    cr_assert_eq(st.nodes_up, 3);
    harness_fini(&h);
}

/* ------------------------------------------------------------------------ */
/* lifetime                                                                  */

static void leak_check(void) {
    cr_assert_eq(ts_leak_check(), 0, "memory leaked (see the LSan report)");
}

Test(qbg, bad_config_is_refused) {
    harness h;
    int ports[1] = {7};
    harness_init(&h, 1, ports, 1, 10);
    cr_assert_null(repl_qbg_new(NULL, &h.cfg));
    cr_assert_null(repl_qbg_new(h.loop, NULL));
    repl_qbg_config bad = h.cfg;
    bad.nnodes = 0;
    cr_assert_null(repl_qbg_new(h.loop, &bad));
    bad = h.cfg;
    bad.ring = NULL;
    cr_assert_null(repl_qbg_new(h.loop, &bad));
    conf_addr a = h.addrs[0];
    a.port = 70000;
    bad = h.cfg;
    bad.nodes = &a;
    cr_assert_null(repl_qbg_new(h.loop, &bad));
    /* new + free without start; free(NULL) */
    repl_qbg *bg = repl_qbg_new(h.loop, &h.cfg);
    cr_assert_not_null(bg);
    repl_qbg_free(bg);
    repl_qbg_free(NULL);
    harness_fini(&h);
    leak_check();
}

Test(qbg, free_while_nodes_are_down) {
    int ports[3];
    for (int i = 0; i < 3; i++)
        ports[i] = ts_free_port(); /* nothing listens there */
    harness h;
    harness_init(&h, 3, ports, 2, 10000);
    harness_start(&h);
    ts_run_until(h.loop, NULL, NULL, 600);
    repl_qbg_stats st = stats(&h);
    cr_assert_eq(st.nodes_up, 0);
    cr_assert_eq(st.ae_keys_scanned, 0);
    harness_fini(&h);
    leak_check();
}

Test(qbg, free_with_commands_in_flight) {
    qserver *s0 = server_start(), *s1 = server_start();
    server_start();
    fill(s0, "f", 3000);
    fill(s1, "g", 500);
    kill(s1->pid, SIGSTOP); /* its handshake and commands hang */
    /* free at different moments of the scan: before the first reply, mid-batch... */
    static const int delays[] = {0, 1, 3, 8, 20, 50, 120, 400};
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        harness h;
        harness_init(&h, 3, NULL, 3, 20000);
        harness_start(&h);
        ts_run_until(h.loop, NULL, NULL, delays[i]);
        harness_fini(&h);
    }
    kill(s1->pid, SIGCONT);
    leak_check();
}
