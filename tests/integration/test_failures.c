/*
 * test_failures.c -- backends failing under load, and bad clients.
 *
 *   failures.replica_killed_restarted  steady reads from 2 clients survive a
 *                                      replica SIGKILL and its restart
 *   failures.leader_killed             writes fail fast with "leader ...
 *                                      unavailable", reads continue; writes
 *                                      work again once the leader is back
 *   failures.all_backends_down         every backend killed: PING, INFO rcproxy
 *                                      answer, commands fail fast; recovery
 *   failures.protocol_garbage          malformed input gets Redis's protocol
 *                                      error then EOF; a concurrent client
 *                                      is unaffected
 *   failures.pipeline_leader_killed    leader SIGSTOPped then SIGKILLed with
 *                                      19,000 writes in flight
 *   failures.pipeline_links_killed     rcproxy's leader links killed (CLIENT
 *                                      KILL under CLIENT PAUSE WRITE) with
 *                                      19,000 writes in flight
 * In direct mode the fault injections that need rcproxy are left out and
 * the rest of each test (setup, load, restart, checks) still runs.
 */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NKEYS 200
#define MAX_LOOP 10000000L

/* Write NKEYS keys <prefix>k_i = <prefix>v_i through c. */
static void write_keys(redisContext *c, const char *prefix)
{
    for (int i = 0; i < NKEYS; i++)
        redisAppendCommand(c, "SET %sk_%d %sv_%d", prefix, i, prefix, i);
    for (int i = 0; i < NKEYS; i++) {
        redisReply *r = NULL;
        cr_assert(redisGetReply(c, (void **)&r) == REDIS_OK && r, "SET #%d: %s", i,
                  c->errstr);
        cr_assert(r->type == REDIS_REPLY_STATUS, "SET #%d: %s", i, it_reply_desc(r));
        freeReplyObject(r);
    }
}

/* ------------------------------------------------------------------------ */
/* background load: a thread doing checked commands until told to stop     */

typedef struct loader {
    pthread_t th;
    redisContext *c;
    int id;
    bool writes;             /* also SET fresh keys */
    int stop;                /* atomic */
    long ok;                 /* atomic */
    long fail;               /* atomic */
    char first_err[256];
} loader;

static bool check_get(redisContext *c, int k, char *err, size_t cap)
{
    redisReply *r = redisCommand(c, "GET rk_%d", k);
    char want[32];
    int wl = snprintf(want, sizeof want, "rv_%d", k);
    bool ok = r && r->type == REDIS_REPLY_STRING && r->len == (size_t)wl &&
              memcmp(r->str, want, (size_t)wl) == 0;
    if (!ok)
        snprintf(err, cap, "GET rk_%d -> %s (%s)", k, it_reply_desc(r),
                 r ? "" : c->errstr);
    if (r)
        freeReplyObject(r);
    return ok;
}

static bool check_set(redisContext *c, int id, long i, char *err, size_t cap)
{
    redisReply *r = redisCommand(c, "SET w%d_%ld %ld", id, i % 1000, i);
    bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    if (!ok)
        snprintf(err, cap, "SET w%d_%ld -> %s (%s)", id, i % 1000, it_reply_desc(r),
                 r ? "" : c->errstr);
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Loop of GET rk_<i> (and SET w<id>_<i> when writes), each reply checked;
 * counts successes and failures, remembers the first failure; stops on the
 * stop flag, after MAX_LOOP commands, or when the connection is lost. */
static void *loader_main(void *arg)
{
    loader *ld = arg;
    char err[256];
    for (long i = 0; i < MAX_LOOP && !__atomic_load_n(&ld->stop, __ATOMIC_ACQUIRE); i++) {
        bool ok = (ld->writes && i % 2 == 1)
                      ? check_set(ld->c, ld->id, i, err, sizeof err)
                      : check_get(ld->c, (int)((i * 7 + ld->id) % NKEYS), err, sizeof err);
        if (ok) {
            __atomic_add_fetch(&ld->ok, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (__atomic_add_fetch(&ld->fail, 1, __ATOMIC_RELAXED) == 1)
            snprintf(ld->first_err, sizeof ld->first_err, "%s", err);
        if (ld->c->err)
            break;
    }
    return NULL;
}

static void loader_start(loader *ld, int id, bool writes)
{
    memset(ld, 0, sizeof *ld);
    ld->id = id;
    ld->writes = writes;
    ld->c = it_connect();
    it_set_timeout(ld->c, 5000);
    cr_assert(pthread_create(&ld->th, NULL, loader_main, ld) == 0);
}

static long loaders_ok(loader *ls, int n)
{
    long s = 0;
    for (int i = 0; i < n; i++)
        s += __atomic_load_n(&ls[i].ok, __ATOMIC_RELAXED);
    return s;
}

static void loaders_stop(loader *ls, int n)
{
    for (int i = 0; i < n; i++)
        __atomic_store_n(&ls[i].stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < n; i++) {
        pthread_join(ls[i].th, NULL);
        redisFree(ls[i].c);
        ls[i].c = NULL;
    }
}

static void loaders_assert_clean(loader *ls, int n)
{
    for (int i = 0; i < n; i++)
        cr_assert(ls[i].fail == 0, "client %d: %ld of %ld commands failed; first: %s", i,
                  ls[i].fail, ls[i].fail + ls[i].ok, ls[i].first_err);
}

/* The replica that served the most reads (proxy), or replica 0 (direct). */
static it_server *busiest_replica(void)
{
    it_server *best = it_replica(0);
    long long most = -1;
    for (int i = 0; !it_direct() && i < it_replica_count(); i++) {
        char v[32];
        if (it_backend_field(it_replica(i), "requests", v, sizeof v) && atoll(v) > most) {
            most = atoll(v);
            best = it_replica(i);
        }
    }
    return best;
}

IT_TEST(failures, replica_killed_restarted, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    write_keys(c, "r");
    it_wait_ready(10000);

    loader ls[2];
    loader_start(&ls[0], 0, false);
    loader_start(&ls[1], 1, false);
    it_sleep_ms(1000);
    long before = loaders_ok(ls, 2);

    it_server *victim = busiest_replica();
    it_kill(victim);
    bool noticed = it_wait_backend_field(victim, "status", "down", 5000);
    it_sleep_ms(1500);
    long during = loaders_ok(ls, 2);

    it_restart(victim);
    bool back = it_wait_backend_field(victim, "in_rotation", "yes", 15000);
    long at_back = loaders_ok(ls, 2);
    it_sleep_ms(1000);
    long after = loaders_ok(ls, 2);
    loaders_stop(ls, 2);

    cr_log_info("reads ok: before %ld, during outage %ld, until back %ld, after %ld",
                before, during - before, at_back - during, after - at_back);
    loaders_assert_clean(ls, 2);
    cr_assert(noticed, "rcproxy never showed the killed replica %d status=down",
              victim->port);
    cr_assert(back, "restarted replica %d never back in_rotation=yes", victim->port);
    cr_assert(before > 0 && during > before && after > at_back,
              "reads stalled: %ld / %ld / %ld / %ld", before, during, at_back, after);
    it_expect_str(c, "rv_5", "GET rk_5");
    redisFree(c);
}

/* Poll: a write through c succeeds. */
static bool write_works(void *arg)
{
    redisContext *c = arg;
    redisReply *r = redisCommand(c, "SET after_restart yes");
    bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    if (r)
        freeReplyObject(r);
    return ok;
}

IT_TEST(failures, leader_killed, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    write_keys(c, "l");
    it_wait_ready(10000);
    it_server *leader = it_leader_server();

    it_kill(leader);
    if (!it_direct()) {
        cr_assert(it_wait_backend_field(leader, "status", "down", 5000),
                  "rcproxy never showed the killed leader status=down");
        static const char *const writes[] = {
            "SET lk_new x", "INCR lctr", "DEL lk_1", "LPUSH llist a", "EXPIRE lk_2 100",
        };
        for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
            long long t0 = it_now_ms();
            it_expect_err(c, "leader|unavailable", writes[i]);
            long long ms = it_now_ms() - t0;
            cr_assert(ms < 1000, "\"%s\" took %lld ms to fail", writes[i], ms);
        }
        /* reads of existing keys continue from the replicas */
        for (int i = 0; i < NKEYS; i++) {
            char k[32], v[32];
            snprintf(k, sizeof k, "lk_%d", i);
            snprintf(v, sizeof v, "lv_%d", i);
            it_expect_str(c, v, "GET %s", k);
        }
        redisContext *fresh = it_connect();
        it_expect_str(fresh, "lv_7", "GET lk_7");
        redisReply *r = it_cmd(fresh, "MGET lk_1 lk_2");
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[1]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[1]->str, "lv_2") == 0, "MGET: %s", it_reply_desc(r));
        freeReplyObject(r);
        /* INFO rcproxy answers with the leader down */
        r = it_cmd(fresh, "INFO rcproxy");
        cr_assert(r->type == REDIS_REPLY_STRING && strstr(r->str, "# rcproxy"),
                  "INFO rcproxy: %s", it_reply_desc(r));
        freeReplyObject(r);
        it_expect_status(c, "PONG", "PING");
        redisFree(fresh);
    }

    it_restart(leader);
    if (it_direct()) {
        redisFree(c);
        c = it_connect();
    }
    cr_assert(it_wait_until(write_works, c, 10000, 50),
              "writes did not work again within 10 s of the leader restart");
    it_wait_ready(15000);
    /* the leader came back empty and the replicas resynced from it */
    it_expect_nil(it_leader(), "GET lk_0");
    it_expect_str(c, "yes", "GET after_restart");
    it_expect_int(c, 1, "INCR lctr");
    redisFree(c);
}

IT_TEST(failures, all_backends_down, 60)
{
    IT_SKIP_IF_DIRECT();
    it_start(NULL);
    redisContext *c = it_connect();
    it_ok(c, "SET ab 1");
    it_wait_ready(10000);
    it_server *all[1 + IT_MAX_REPLICAS];
    int n = 0;
    all[n++] = it_leader_server();
    for (int i = 0; i < it_replica_count(); i++)
        all[n++] = it_replica(i);
    for (int i = 0; i < n; i++)
        it_kill(all[i]);
    for (int i = 0; i < n; i++)
        cr_assert(it_wait_backend_field(all[i], "status", "down", 5000),
                  "rcproxy never showed backend %d status=down", all[i]->port);

    /* proxy-local commands and INFO rcproxy still answer; the rest fail fast */
    it_expect_status(c, "PONG", "PING");
    it_expect_str(c, "x", "ECHO x");
    redisReply *r = it_cmd(c, "INFO rcproxy");
    cr_assert(r->type == REDIS_REPLY_STRING && strstr(r->str, "# rcproxy") &&
              strstr(r->str, "backend_count:3"), "INFO rcproxy: %s", it_reply_desc(r));
    freeReplyObject(r);
    long long t0 = it_now_ms();
    it_expect_err(c, "leader|unavailable", "SET ab 2");
    r = it_cmd(c, "GET ab");
    cr_assert(r->type == REDIS_REPLY_ERROR, "GET with every backend down: %s",
              it_reply_desc(r));
    freeReplyObject(r);
    cr_assert(it_now_ms() - t0 < 2000, "failing took %lld ms", it_now_ms() - t0);

    /* everything comes back */
    for (int i = 0; i < n; i++)
        it_restart(all[i]);
    cr_assert(it_wait_until(write_works, c, 10000, 50),
              "writes did not work again within 10 s of the restarts");
    it_wait_ready(15000);
    it_ok(c, "SET ab 3");
    it_wait_ready(10000);
    it_expect_str(c, "3", "GET ab");
    redisFree(c);
}

/* ------------------------------------------------------------------------ */
/* protocol garbage                                                         */

/* Send payload on a fresh raw connection and expect exactly `reply`
 * followed by the connection being closed. */
static void garbage_case(const char *what, const char *payload, size_t len,
                         const char *reply)
{
    int fd = it_raw_connect(it_client_port());
    cr_assert(fd >= 0, "%s: cannot connect", what);
    cr_assert(it_raw_send(fd, payload, len), "%s: send failed", what);
    char buf[1024];
    bool eof = false;
    size_t n = it_raw_read_all(fd, buf, sizeof buf - 1, 5000, &eof);
    close(fd);
    cr_assert(n == strlen(reply) && memcmp(buf, reply, n) == 0,
              "%s: expected \"%s\", got %zu bytes \"%s\"", what, reply, n, buf);
    cr_assert(eof, "%s: connection not closed after the protocol error", what);
}

IT_TEST(failures, protocol_garbage, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    write_keys(c, "r");
    it_wait_ready(10000);
    loader ld;
    loader_start(&ld, 0, true);

    static const char bad_bulk[] = "*1\r\n$abc\r\n";
    garbage_case("bad bulk length", bad_bulk, sizeof bad_bulk - 1,
                 "-ERR Protocol error: invalid bulk length\r\n");
    static const char negative_bulk[] = "*2\r\n$3\r\nGET\r\n$-5\r\n";
    garbage_case("negative bulk length", negative_bulk, sizeof negative_bulk - 1,
                 "-ERR Protocol error: invalid bulk length\r\n");
    static const char huge_count[] = "*3000000000\r\n";
    garbage_case("huge multibulk count", huge_count, sizeof huge_count - 1,
                 "-ERR Protocol error: invalid multibulk length\r\n");
    static const char junk_count[] = "*\xff\xfe\x01junk\r\n";
    garbage_case("junk multibulk count", junk_count, sizeof junk_count - 1,
                 "-ERR Protocol error: invalid multibulk length\r\n");
    static const char after_ping[] = "*1\r\n$4\r\nPING\r\n*1\r\n$abc\r\n";
    garbage_case("good then bad", after_ping, sizeof after_ping - 1,
                 "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    static const char quotes[] = "ECHO \"unbalanced\r\n";
    garbage_case("unbalanced quotes", quotes, sizeof quotes - 1,
                 "-ERR Protocol error: unbalanced quotes in request\r\n");

    size_t inline_len = 70 * 1024;
    char *line = malloc(inline_len);
    cr_assert_not_null(line);
    memset(line, 'a', inline_len);
    garbage_case("70 KB inline line", line, inline_len,
                 "-ERR Protocol error: too big inline request\r\n");
    free(line);

    /* binary noise, then half-close: only error replies, then EOF */
    char noise[4096];
    unsigned x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (char)(x >> 16);
    }
    for (int round = 0; round < 3; round++) {
        int fd = it_raw_connect(it_client_port());
        cr_assert(fd >= 0);
        cr_assert(it_raw_send(fd, noise + round * 1000, sizeof noise - (size_t)round * 1000));
        shutdown(fd, SHUT_WR);
        char buf[65536];
        bool eof = false;
        size_t n = it_raw_read_all(fd, buf, sizeof buf - 1, 5000, &eof);
        close(fd);
        cr_assert(eof, "noise %d: connection not closed", round);
        for (char *p = buf; p < buf + n;) {
            cr_assert(*p == '-', "noise %d: non-error reply \"%.60s\"", round, p);
            char *nl = memchr(p, '\n', (size_t)(buf + n - p));
            if (!nl)
                break;
            p = nl + 1;
        }
        cr_log_info("noise %d: %zu bytes of errors then EOF", round, n);
    }

    /* everyone else was served throughout, and still is */
    it_sleep_ms(200);
    long ok = __atomic_load_n(&ld.ok, __ATOMIC_RELAXED);
    loaders_stop(&ld, 1);
    loaders_assert_clean(&ld, 1);
    cr_assert(ok > 10, "the concurrent client did only %ld commands", ok);
    it_ok(c, "SET after_garbage 1");
    it_expect_str(c, "rv_3", "GET rk_3");
    it_expect_status(c, "PONG", "PING");
    redisFree(c);
}

/* ------------------------------------------------------------------------ */
/* a backend failing under a deep pipeline                                  */

#define PHASE1 1000
#define PHASE2 19000

typedef enum { INJECT_SIGKILL, INJECT_CLIENT_KILL } inject_kind;

typedef struct injector {
    pthread_t th;
    inject_kind kind;
    int delay_ms;
    pid_t pid;                  /* INJECT_SIGKILL */
    redisContext *lc;           /* INJECT_CLIENT_KILL: direct leader link */
    char result[128];
} injector;

static void *injector_main(void *arg)
{
    injector *in = arg;
    it_sleep_ms(in->delay_ms);
    if (in->kind == INJECT_SIGKILL) {
        kill(in->pid, SIGKILL);
        snprintf(in->result, sizeof in->result, "SIGKILL sent");
        return NULL;
    }
    redisReply *r = redisCommand(in->lc, "CLIENT KILL TYPE normal");
    snprintf(in->result, sizeof in->result, "CLIENT KILL -> %s", it_reply_desc(r));
    if (r)
        freeReplyObject(r);
    r = redisCommand(in->lc, "CLIENT UNPAUSE");
    if (r)
        freeReplyObject(r);
    return NULL;
}

typedef struct tally {
    long ints, errs, first_int, last_int;
    long bad;                   /* wrong type, wording, or order */
    char first_bad[256];
} tally;

/* Read n pipelined INCR replies from c: integers must be consecutive
 * (each one more than the previous integer, starting at prev+1), errors must
 * say "may or may not have been applied" or "unavailable". */
static void read_incr_replies(redisContext *c, long n, long prev, tally *t)
{
    memset(t, 0, sizeof *t);
    t->first_int = -1;
    long expect = prev + 1;
    for (long i = 0; i < n; i++) {
        redisReply *r = NULL;
        cr_assert(redisGetReply(c, (void **)&r) == REDIS_OK && r,
                  "reply %ld of %ld missing (%ld ints, %ld errors so far): %s", i, n,
                  t->ints, t->errs, c->errstr);
        bool good;
        if (r->type == REDIS_REPLY_INTEGER) {
            good = r->integer == expect;
            expect = r->integer + 1;
            if (t->first_int < 0)
                t->first_int = (long)r->integer;
            t->last_int = (long)r->integer;
            t->ints++;
        } else {
            good = it_err_has(r, "may or may not have been applied") ||
                   it_err_has(r, "unavailable");
            t->errs++;
        }
        if (!good && t->bad++ == 0)
            snprintf(t->first_bad, sizeof t->first_bad, "reply %ld: %s", i,
                     it_reply_desc(r));
        freeReplyObject(r);
    }
}

static void append_incrs(redisContext *c, long n)
{
    for (long i = 0; i < n; i++)
        cr_assert(redisAppendCommand(c, "INCR ctr") == REDIS_OK);
}

IT_TEST(failures, pipeline_leader_killed, 60)
{
    it_opts o = { .replicas = 1 };
    it_start(&o);
    redisContext *c = it_connect();
    it_set_timeout(c, 15000);
    it_server *leader = it_leader_server();

    tally t;
    append_incrs(c, PHASE1);
    read_incr_replies(c, PHASE1, 0, &t);
    cr_assert(t.ints == PHASE1 && t.bad == 0, "phase 1: %ld ints, %s", t.ints, t.first_bad);

    injector in = { .kind = INJECT_SIGKILL, .delay_ms = 300, .pid = leader->pid };
    if (!it_direct()) {
        it_pause(leader);
        cr_assert(pthread_create(&in.th, NULL, injector_main, &in) == 0);
    }
    long long t0 = it_now_ms();
    append_incrs(c, PHASE2);
    read_incr_replies(c, PHASE2, PHASE1, &t);
    long long ms = it_now_ms() - t0;
    if (!it_direct())
        pthread_join(in.th, NULL);
    cr_log_info("phase 2: %ld ints, %ld errors in %lld ms (%s)", t.ints, t.errs, ms,
                in.result);
    cr_assert(t.bad == 0, "phase 2: %ld bad replies; first %s", t.bad, t.first_bad);
    cr_assert(ms < 30000, "phase 2 took %lld ms", ms);
    if (it_direct()) {
        cr_assert(t.ints == PHASE2);
        it_expect_int(c, PHASE1 + PHASE2 + 1, "INCR ctr");
        redisFree(c);
        return;
    }
    /* the leader was stopped before phase 2 was sent: nothing can have run */
    cr_assert(t.errs == PHASE2, "phase 2: %ld errors, %ld ints", t.errs, t.ints);
    it_kill(leader);
    it_expect_status(c, "PONG", "PING");

    it_restart(leader);
    cr_assert(it_wait_until(write_works, c, 10000, 50),
              "writes did not work again within 10 s of the leader restart");
    it_expect_int(c, 1, "INCR ctr");
    it_expect_status(c, "PONG", "PING");
    redisFree(c);
}

IT_TEST(failures, pipeline_links_killed, 60)
{
    it_opts o = { .replicas = 1 };
    it_start(&o);
    redisContext *c = it_connect();
    it_set_timeout(c, 15000);

    tally t;
    append_incrs(c, PHASE1);
    read_incr_replies(c, PHASE1, 0, &t);
    cr_assert(t.ints == PHASE1 && t.bad == 0, "phase 1: %ld ints, %s", t.ints, t.first_bad);

    injector in = { .kind = INJECT_CLIENT_KILL, .delay_ms = 300 };
    if (!it_direct()) {
        in.lc = it_try_connect(it_leader_server()->port, NULL, 5000);
        cr_assert_not_null(in.lc);
        /* writes queue up on the leader until the links are killed */
        it_ok(in.lc, "CLIENT PAUSE 10000 WRITE");
        cr_assert(pthread_create(&in.th, NULL, injector_main, &in) == 0);
    }
    long long t0 = it_now_ms();
    append_incrs(c, PHASE2);
    read_incr_replies(c, PHASE2, PHASE1, &t);
    long long ms = it_now_ms() - t0;
    if (!it_direct()) {
        pthread_join(in.th, NULL);
        redisFree(in.lc);
    }
    cr_log_info("phase 2: %ld ints (%ld..%ld), %ld errors in %lld ms (%s)", t.ints,
                t.first_int, t.last_int, t.errs, ms, in.result);
    cr_assert(t.bad == 0, "phase 2: %ld bad replies; first %s", t.bad, t.first_bad);
    cr_assert(ms < 30000, "phase 2 took %lld ms", ms);
    if (it_direct())
        cr_assert(t.ints == PHASE2);
    else
        cr_assert(t.errs >= 1, "no request was failed by the killed links (%s)", in.result);
    it_expect_status(c, "PONG", "PING");

    /* exactly the requests answered with an integer ran (the others were
     * paused when their link died) */
    cr_assert(it_wait_until(write_works, c, 10000, 50), "writes do not work again");
    it_expect_int(c, PHASE1 + t.ints + 1, "INCR ctr");
    redisFree(c);
}

/* A client that sends requests and never reads the replies is cut off at
 * client-output-buffer-limit (here 1 MB hard) instead of being buffered
 * without bound; everyone else keeps being served. */
IT_TEST(failures, slow_consumer_cut_off, 60)
{
    IT_SKIP_IF_DIRECT();
    it_opts o = { .replicas = 0,
                  .proxy_args = { "--client-output-buffer-limit", "normal", "1mb", "0", "0", NULL } };
    it_start(&o);
    redisContext *c = it_connect();
    char *big = malloc(100 * 1024);
    cr_assert_not_null(big);
    memset(big, 'x', 100 * 1024);
    it_ok(c, "SET big %b", big, (size_t)(100 * 1024));
    free(big);

    char base[32] = "";
    char *info0 = it_try_info(c, "rcproxy");
    cr_assert(info0 && it_info_value(info0, "connected_clients", base, sizeof base));
    free(info0);

    /* 300 GETs of 100 KB = 30 MB of replies, none of them read */
    int fd = it_raw_connect(it_client_port());
    cr_assert(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    static const char get[] = "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
    for (int i = 0; i < 300; i++) cr_assert(it_raw_send(fd, get, sizeof get - 1));

    /* rcproxy drops it: back to the clients connected before */
    char n[32] = "";
    long long deadline = it_now_ms() + 10000;
    for (;;) {
        char *info = it_try_info(c, "rcproxy");
        cr_assert_not_null(info, "INFO rcproxy failed");
        bool got = it_info_value(info, "connected_clients", n, sizeof n);
        free(info);
        if (got && strcmp(n, base) == 0)
            break;
        cr_assert(it_now_ms() < deadline,
                  "the slow consumer was not disconnected (connected_clients:%s, before it:%s)",
                  n, base);
        it_sleep_ms(50);
    }
    close(fd);

    /* the others are fine */
    it_expect_status(c, "PONG", "PING");
    it_ok(c, "SET after %s", "ok");
    redisFree(c);
}
