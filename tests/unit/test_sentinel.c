/* test_sentinel.c -- replication/sentinel against real processes: a
 * redis-server leader, one replica and one or three redis-sentinel
 * processes, all on free 127.0.0.1 ports in a per-test temp dir.
 *
 * Every process a test starts is registered in `procs[]`; the suite's fini
 * kills them (SIGKILL, reaped) and removes the temp dir even when
 * an assertion failed, and the children get PR_SET_PDEATHSIG so a crashed
 * test cannot leave one behind.  Every wait is bounded in time. */
#include "replication/sentinel.h"

#include <criterion/criterion.h>

#include "tests/support/ts.h"
#include <criterion/logging.h>
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
/* processes                                                                 */

#define MAX_PROCS 8

typedef struct {
    pid_t pid;
    int port;
    int sentinel;            /* redis-sentinel with conf, else redis-server */
    char conf[128];          /* sentinel: its own config file (it rewrites it) */
    char replicaof[32];      /* redis-server: "127.0.0.1 PORT" or "" */
} test_proc;

static char tmpdir[64];
static test_proc procs[MAX_PROCS];
static int nprocs;
static const char *cmd_password; /* test-side clients AUTH with it when set */

/* A command on a short-lived blocking test-side client (the test may
 * block; the module under test may not), after AUTH cmd_password when set
 * (its answer ignored: redis-server has none here).  NULL when no reply
 * came. */
static redisReply *cmd_at(int port, const char *fmt, ...) {
    redisContext *c = ts_connect(port, cmd_password, 1000);
    redisReply *r;
    va_list ap;
    if (c == NULL)
        return NULL;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* (Re)start p on its port (redis-sentinel on its config, or redis-server)
 * and wait until it answers PING; asserts. */
static void proc_spawn(test_proc *p) {
    const char *sentinel_argv[] = {"redis-sentinel", p->conf, NULL};
    const char *replica_args[] = {"--replicaof", p->replicaof, NULL};
    if (p->sentinel)
        p->pid = ts_spawn(sentinel_argv);
    else
        p->pid = ts_spawn_redis(p->port, tmpdir, NULL,
                                p->replicaof[0] != '\0' ? replica_args : NULL);
    cr_assert(p->pid > 0);
    redisContext *c = ts_connect_retry(&p->pid, p->port, cmd_password, 10000);
    cr_assert_not_null(c, "%s on port %d did not start",
                       p->sentinel ? "redis-sentinel" : "redis-server", p->port);
    redisFree(c);
}

static test_proc *proc_new(void) {
    cr_assert(nprocs < MAX_PROCS);
    test_proc *p = &procs[nprocs++];
    memset(p, 0, sizeof *p);
    p->port = ts_free_port();
    cr_assert(p->port > 0);
    return p;
}

/* redis-server, a replica of replica_of_port when that is > 0. */
static test_proc *server_start(int replica_of_port) {
    test_proc *p = proc_new();
    if (replica_of_port > 0)
        snprintf(p->replicaof, sizeof p->replicaof, "127.0.0.1 %d", replica_of_port);
    proc_spawn(p);
    return p;
}

/* redis-sentinel monitoring `name` at 127.0.0.1:master_port with quorum;
 * extra: more config text or NULL. */
static test_proc *sentinel_start_with(const char *name, int master_port, int quorum,
                                      const char *extra) {
    test_proc *p = proc_new();
    FILE *f;
    p->sentinel = 1;
    snprintf(p->conf, sizeof p->conf, "%s/sentinel-%d.conf", tmpdir, p->port);
    f = fopen(p->conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "port %d\n"
            "bind 127.0.0.1\n"
            "daemonize no\n"
            "logfile \"%s/sentinel-%d.log\"\n"
            "dir \"%s\"\n"
            "sentinel monitor %s 127.0.0.1 %d %d\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 5000\n",
            p->port, tmpdir, p->port, tmpdir, name, master_port, quorum, name, name);
    if (extra != NULL)
        fputs(extra, f);
    fclose(f);
    proc_spawn(p);
    return p;
}

static test_proc *sentinel_start(const char *name, int master_port, int quorum) {
    return sentinel_start_with(name, master_port, quorum, NULL);
}

static void live_init(void) {
    signal(SIGPIPE, SIG_IGN);
    nprocs = 0;
    cr_assert_eq(ts_make_tmpdir(tmpdir, sizeof tmpdir, "rcproxy-sentinel"), 0);
}

static void live_fini(void) {
    for (int i = 0; i < nprocs; i++)
        ts_kill(&procs[i].pid);
    ts_remove_dir(tmpdir);
}

static void assert_no_leaks(void) {
    cr_assert_eq(ts_leak_check(), 0, "memory leaked (see the LSan report)");
}

/* Wait (bounded) until the replica says its link to the leader is up. */
static void wait_replica_synced(int replica_port) {
    long long end = ts_now_ms() + 10000;
    while (ts_now_ms() < end) {
        redisReply *r = cmd_at(replica_port, "INFO replication");
        int up = r != NULL && r->type == REDIS_REPLY_STRING &&
                 strstr(r->str, "master_link_status:up") != NULL;
        if (r != NULL)
            freeReplyObject(r);
        if (up)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("replica on port %d did not sync", replica_port);
}

/* Wait (bounded) until every sentinel knows the other ones: only then can
 * they agree on a failover. */
static void wait_sentinels_meet(test_proc **s, int n, const char *name) {
    long long end = ts_now_ms() + 20000;
    while (ts_now_ms() < end) {
        int met = 0;
        for (int i = 0; i < n; i++) {
            redisReply *r = cmd_at(s[i]->port, "SENTINEL SENTINELS %s", name);
            if (r != NULL && r->type == REDIS_REPLY_ARRAY && (int)r->elements == n - 1)
                met++;
            if (r != NULL)
                freeReplyObject(r);
        }
        if (met == n)
            return;
        usleep(100 * 1000);
    }
    cr_assert_fail("the sentinels did not discover each other");
}

static conf_addr addr_of(int port) {
    conf_addr a;
    memset(&a, 0, sizeof a);
    snprintf(a.host, sizeof a.host, "127.0.0.1");
    a.port = port;
    return a;
}

/* Poll query_sync (bounded) until it reports the leader with
 * want_replicas replicas; returns the last view. */
static repl_sentinel_view wait_sync_view(const conf_addr *sentinels, int n, const char *name,
                                         int want_replicas) {
    repl_sentinel_view v;
    char err[512] = "";
    long long end = ts_now_ms() + 10000;
    while (ts_now_ms() < end) {
        memset(&v, 0, sizeof v);
        if (repl_sentinel_query_sync(sentinels, n, name, NULL, NULL, 1000, &v, err, sizeof err) == 0 &&
            v.replica_count == want_replicas)
            return v;
        usleep(100 * 1000);
    }
    cr_assert_fail("query_sync never showed %d replica(s): %s", want_replicas, err);
    return v;
}

/* ------------------------------------------------------------------------ */
/* the follower's callback                                                   */

/* What the follower delivered. */
#define MAX_VIEWS 32
typedef struct {
    int calls;
    repl_sentinel_view views[MAX_VIEWS];
    char reasons[MAX_VIEWS][64];
    long long at_ms[MAX_VIEWS];
    repl_sentinel *self;     /* free_in_cb: the follower to free */
    int free_in_cb;
    int want_leader_port;    /* for rec_leader_is */
    int want_replicas;       /* for rec_last_replicas */
} rec;

static void rec_cb(const repl_sentinel_view *v, const char *reason, void *arg) {
    rec *r = arg;
    cr_assert_not_null(v);
    cr_assert_not_null(reason);
    if (r->calls < MAX_VIEWS) {
        r->views[r->calls] = *v;
        snprintf(r->reasons[r->calls], sizeof r->reasons[0], "%s", reason);
        r->at_ms[r->calls] = ts_now_ms();
    }
    r->calls++;
    if (r->free_in_cb) {
        repl_sentinel_free(r->self);
        r->self = NULL;
    }
}

static const repl_sentinel_view *rec_last(const rec *r) {
    int i = r->calls < MAX_VIEWS ? r->calls : MAX_VIEWS;
    return i > 0 ? &r->views[i - 1] : NULL;
}

static int rec_called(void *arg) {
    return ((rec *)arg)->calls > 0;
}

static int rec_leader_is(void *arg) {
    rec *r = arg;
    const repl_sentinel_view *v = rec_last(r);
    return v != NULL && v->leader.port == r->want_leader_port;
}

static int rec_last_replicas(void *arg) {
    rec *r = arg;
    const repl_sentinel_view *v = rec_last(r);
    return v != NULL && v->replica_count == r->want_replicas;
}

/* ------------------------------------------------------------------------ */
/* the blocking query                                                        */

TestSuite(sentinel_sync, .init = live_init, .fini = live_fini, .timeout = 60);

Test(sentinel_sync, leader_and_replica) {
    test_proc *leader = server_start(0);
    test_proc *replica = server_start(leader->port);
    wait_replica_synced(replica->port);
    test_proc *s1 = sentinel_start("mymaster", leader->port, 2);
    test_proc *s2 = sentinel_start("mymaster", leader->port, 2);
    test_proc *s3 = sentinel_start("mymaster", leader->port, 2);
    /* the first address has nobody listening: the query goes on */
    conf_addr sents[4] = {addr_of(ts_free_port()), addr_of(s1->port), addr_of(s2->port),
                          addr_of(s3->port)};

    repl_sentinel_view v = wait_sync_view(sents, 4, "mymaster", 1);
    cr_assert_str_eq(v.leader.host, "127.0.0.1");
    cr_assert_eq(v.leader.port, leader->port);
    cr_assert_eq(v.replica_count, 1);
    cr_assert_str_eq(v.replicas[0].host, "127.0.0.1");
    cr_assert_eq(v.replicas[0].port, replica->port);

    /* err may be NULL when the caller does not want the reason */
    memset(&v, 0, sizeof v);
    cr_assert_eq(repl_sentinel_query_sync(sents + 1, 1, "mymaster", "", NULL, 1000, &v, NULL, 0), 0);
    cr_assert_eq(v.leader.port, leader->port);

    /* a dead replica (flagged disconnected, then s_down) is left out */
    ts_kill(&replica->pid);
    v = wait_sync_view(sents, 4, "mymaster", 0);
    cr_assert_eq(v.leader.port, leader->port);
    assert_no_leaks();
}

Test(sentinel_sync, dead_sentinel_fails_with_reason) {
    conf_addr dead = addr_of(ts_free_port());
    repl_sentinel_view v;
    char err[512] = "";
    char where[64];
    long long t0 = ts_now_ms();
    cr_assert_eq(repl_sentinel_query_sync(&dead, 1, "mymaster", NULL, NULL, 500, &v, err, sizeof err),
                 -1);
    cr_assert(ts_now_ms() - t0 < 3000, "a refused connect must not wait");
    snprintf(where, sizeof where, "127.0.0.1:%d", dead.port);
    cr_assert(strstr(err, where) != NULL, "reason names the sentinel: %s", err);
    cr_assert(strstr(err, "connect") != NULL, "reason says what failed: %s", err);
    cr_assert(strstr(err, "mymaster") != NULL, "reason names the master: %s", err);

    /* bad arguments: a reason, never a crash */
    cr_assert_eq(repl_sentinel_query_sync(&dead, 0, "mymaster", NULL, NULL, 500, &v, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "no sentinel") != NULL, "%s", err);
    cr_assert_eq(repl_sentinel_query_sync(NULL, 3, "mymaster", NULL, NULL, 500, &v, err, sizeof err),
                 -1);
    cr_assert_eq(repl_sentinel_query_sync(&dead, 1, "", NULL, NULL, 500, &v, err, sizeof err), -1);
    cr_assert(strstr(err, "no master name") != NULL, "%s", err);
    cr_assert_eq(repl_sentinel_query_sync(&dead, 1, NULL, NULL, NULL, 500, &v, err, sizeof err), -1);
    cr_assert_eq(repl_sentinel_query_sync(&dead, 1, "mymaster", NULL, NULL, 500, NULL, err, sizeof err),
                 -1);
    /* a tiny err buffer is truncated, not overrun */
    char small[8];
    cr_assert_eq(repl_sentinel_query_sync(&dead, 1, "mymaster", NULL, NULL, 500, &v, small, sizeof small),
                 -1);
    cr_assert_eq(strlen(small), sizeof small - 1);
    assert_no_leaks();
}

/* A stopped (SIGSTOP) sentinel accepts the TCP connection but never
 * answers: the timeout bounds the query. */
Test(sentinel_sync, silent_sentinel_times_out) {
    test_proc *leader = server_start(0);
    test_proc *s1 = sentinel_start("mymaster", leader->port, 1);
    conf_addr a = addr_of(s1->port);
    repl_sentinel_view v;
    char err[512] = "";
    kill(s1->pid, SIGSTOP);
    long long t0 = ts_now_ms();
    cr_assert_eq(repl_sentinel_query_sync(&a, 1, "mymaster", NULL, NULL, 300, &v, err, sizeof err), -1);
    long long took = ts_now_ms() - t0;
    kill(s1->pid, SIGCONT);
    cr_assert(took >= 250 && took < 1500, "took %lld ms", took);
    cr_assert(strstr(err, "GET-MASTER-ADDR-BY-NAME") != NULL, "%s", err);
    assert_no_leaks();
}

Test(sentinel_sync, wrong_master_name) {
    test_proc *leader = server_start(0);
    test_proc *s1 = sentinel_start("mymaster", leader->port, 1);
    conf_addr a = addr_of(s1->port);
    repl_sentinel_view v;
    char err[512] = "";
    /* the right name works, so the failure below is the name */
    wait_sync_view(&a, 1, "mymaster", 0);
    cr_assert_eq(repl_sentinel_query_sync(&a, 1, "nosuchmaster", NULL, NULL, 1000, &v, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "no master named 'nosuchmaster'") != NULL, "%s", err);
    assert_no_leaks();
}

/* A sentinel names a leader that answers ROLE as a replica: not accepted. */
Test(sentinel_sync, leader_must_answer_role_master) {
    test_proc *leader = server_start(0);
    test_proc *replica = server_start(leader->port);
    wait_replica_synced(replica->port);
    test_proc *s1 = sentinel_start("fake", replica->port, 1);
    conf_addr a = addr_of(s1->port);
    repl_sentinel_view v;
    char err[512] = "";
    cr_assert_eq(repl_sentinel_query_sync(&a, 1, "fake", NULL, NULL, 1000, &v, err, sizeof err), -1);
    cr_assert(strstr(err, "answers ROLE as slave") != NULL, "%s", err);
    assert_no_leaks();
}

/* ------------------------------------------------------------------------ */
/* the live follower                                                         */

TestSuite(sentinel_live, .init = live_init, .fini = live_fini, .timeout = 90);

/* Initial view, then SIGKILL of the leader: the sentinels fail over and the
 * follower reports the old replica as leader, driven by pub/sub alone (the
 * periodic refresh is set to a minute). */
Test(sentinel_live, initial_view_then_failover) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_proc *leader = server_start(0);
    test_proc *replica = server_start(leader->port);
    wait_replica_synced(replica->port);
    test_proc *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = sentinel_start("mymaster", leader->port, 2);
    conf_addr sents[4] = {addr_of(ts_free_port()), addr_of(s[0]->port), addr_of(s[1]->port),
                          addr_of(s[2]->port)};
    wait_sync_view(sents + 1, 3, "mymaster", 1);
    wait_sentinels_meet(s, 3, "mymaster");

    rec r;
    memset(&r, 0, sizeof r);
    repl_sentinel *fol = repl_sentinel_new(loop, sents, 4, "mymaster", NULL, NULL, 60000, rec_cb, &r);
    cr_assert_not_null(fol);
    cr_assert(ts_run_until(loop, rec_called, &r, 5000), "no initial view");
    cr_assert_str_eq(r.reasons[0], "start");
    cr_assert_eq(r.views[0].leader.port, leader->port);
    cr_assert_eq(r.views[0].replica_count, 1);
    cr_assert_eq(r.views[0].replicas[0].port, replica->port);

    /* nothing changes: nothing is delivered again */
    ts_run_until(loop, NULL, NULL, 1500);
    cr_assert_eq(r.calls, 1);

    long long t0 = ts_now_ms();
    ts_kill(&leader->pid);
    r.want_leader_port = replica->port;
    cr_assert(ts_run_until(loop, rec_leader_is, &r, 20000), "no failover view within 20 s");
    const repl_sentinel_view *v = rec_last(&r);
    int last = (r.calls < MAX_VIEWS ? r.calls : MAX_VIEWS) - 1;
    cr_log_info("failover view after %lld ms, reason %s", r.at_ms[last] - t0, r.reasons[last]);
    cr_assert(r.at_ms[last] - t0 < 15000, "failover view after %lld ms", r.at_ms[last] - t0);
    cr_assert_str_eq(v->leader.host, "127.0.0.1");
    cr_assert_eq(v->replica_count, 0, "the dead leader is not a replica");
    /* driven by an event, not by the (one-minute) periodic refresh */
    cr_assert(r.reasons[last][0] == '+' || r.reasons[last][0] == '-', "reason %s",
              r.reasons[last]);

    /* the refreshes that follow keep it so: the old leader, listed by the
     * sentinels as a down replica, is never offered */
    ts_run_until(loop, NULL, NULL, 2500);
    v = rec_last(&r);
    cr_assert_eq(v->leader.port, replica->port);
    cr_assert_eq(v->replica_count, 0, "a down replica was delivered");
    repl_sentinel_view sv;
    char err[512] = "";
    cr_assert_eq(repl_sentinel_query_sync(sents, 4, "mymaster", NULL, NULL, 1000, &sv, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(sv.leader.port, replica->port);
    cr_assert_eq(sv.replica_count, 0);

    repl_sentinel_free(fol);
    cr_assert(ts_drain_loop(loop, 3000), "the follower left watchers behind");
    ev_loop_destroy(loop);
    assert_no_leaks();
}

/* Unknown master name: no view ever, and freeing is clean. */
Test(sentinel_live, wrong_master_name_gives_no_view) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_proc *leader = server_start(0);
    test_proc *s1 = sentinel_start("mymaster", leader->port, 1);
    conf_addr a = addr_of(s1->port);
    rec r;
    memset(&r, 0, sizeof r);
    repl_sentinel *fol = repl_sentinel_new(loop, &a, 1, "nosuchmaster", "", NULL, 100, rec_cb, &r);
    ts_run_until(loop, NULL, NULL, 2500);
    cr_assert_eq(r.calls, 0, "a view for a master nobody monitors");
    repl_sentinel_free(fol);
    cr_assert(ts_drain_loop(loop, 3000), "the follower left watchers behind");

    /* and a leader that is really a replica is never delivered either */
    test_proc *replica = server_start(leader->port);
    wait_replica_synced(replica->port);
    test_proc *s2 = sentinel_start("fake", replica->port, 1);
    a = addr_of(s2->port);
    fol = repl_sentinel_new(loop, &a, 1, "fake", NULL, NULL, 100, rec_cb, &r);
    ts_run_until(loop, NULL, NULL, 2000);
    cr_assert_eq(r.calls, 0, "a leader that answers ROLE as replica was delivered");
    repl_sentinel_free(fol);
    cr_assert(ts_drain_loop(loop, 3000), "the follower left watchers behind");
    ev_loop_destroy(loop);
    assert_no_leaks();
}

/* A master that Sentinel starts monitoring later is found by the periodic
 * refresh (+monitor is no event we follow); its replica appears by a later
 * refresh; identical views are not delivered twice. */
Test(sentinel_live, periodic_refresh_and_no_duplicates) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_proc *leader = server_start(0);
    test_proc *replica = server_start(leader->port);
    wait_replica_synced(replica->port);
    test_proc *s1 = sentinel_start("mymaster", leader->port, 1);
    conf_addr a = addr_of(s1->port);
    rec r;
    memset(&r, 0, sizeof r);
    repl_sentinel *fol = repl_sentinel_new(loop, &a, 1, "late", NULL, NULL, 200, rec_cb, &r);
    ts_run_until(loop, NULL, NULL, 800);
    cr_assert_eq(r.calls, 0);

    redisReply *m = cmd_at(s1->port, "SENTINEL MONITOR late 127.0.0.1 %d 1", leader->port);
    cr_assert(m != NULL && m->type == REDIS_REPLY_STATUS, "SENTINEL MONITOR failed");
    freeReplyObject(m);
    cr_assert(ts_run_until(loop, rec_called, &r, 5000), "the late master was not found");
    cr_assert_str_eq(r.reasons[0], "start");
    cr_assert_eq(r.views[0].leader.port, leader->port);

    r.want_replicas = 1;
    cr_assert(ts_run_until(loop, rec_last_replicas, &r, 10000), "the replica never appeared");
    cr_assert_eq(rec_last(&r)->replicas[0].port, replica->port);
    int calls = r.calls;
    ts_run_until(loop, NULL, NULL, 1500); /* ~7 more refreshes, all the same */
    cr_assert_eq(r.calls, calls, "an unchanged view was delivered again");
    for (int i = 1; i < calls && i < MAX_VIEWS; i++)
        cr_assert_str_eq(r.reasons[i], "refresh");

    repl_sentinel_free(fol);
    cr_assert(ts_drain_loop(loop, 3000), "the follower left watchers behind");
    ev_loop_destroy(loop);
    assert_no_leaks();
}

/* repl_sentinel_free from inside the callback: everything is closed. */
Test(sentinel_live, free_inside_callback) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_proc *leader = server_start(0);
    test_proc *s1 = sentinel_start("mymaster", leader->port, 1);
    conf_addr a[2] = {addr_of(s1->port), addr_of(s1->port)};
    rec r;
    memset(&r, 0, sizeof r);
    r.free_in_cb = 1;
    r.self = repl_sentinel_new(loop, a, 2, "mymaster", NULL, NULL, 100, rec_cb, &r);
    cr_assert(ts_run_until(loop, rec_called, &r, 5000), "no view");
    cr_assert_null(r.self);
    cr_assert(ts_drain_loop(loop, 3000), "the freed follower left watchers behind");
    cr_assert_eq(r.calls, 1);

    /* inert followers (no sentinel, no name) are valid to free */
    repl_sentinel *inert = repl_sentinel_new(loop, NULL, 0, "mymaster", NULL, NULL, 100, rec_cb, &r);
    cr_assert_not_null(inert);
    repl_sentinel_free(inert);
    inert = repl_sentinel_new(loop, a, 1, NULL, NULL, NULL, 100, rec_cb, &r);
    cr_assert_not_null(inert);
    repl_sentinel_free(inert);
    /* freed before the loop ever ran */
    inert = repl_sentinel_new(loop, a, 1, "mymaster", NULL, NULL, 100, rec_cb, &r);
    repl_sentinel_free(inert);
    cr_assert(ts_drain_loop(loop, 1000));
    cr_assert_eq(r.calls, 1);
    ev_loop_destroy(loop);
    assert_no_leaks();
}

/* Tries SENTINEL FAILOVER from the loop until the sentinel accepts it. */
typedef struct {
    int port;
    int accepted;
    char last[128];
} failover_req;

static void failover_tick(struct ev_loop *loop, ev_timer *w, int revents) {
    failover_req *f = w->data;
    (void)revents;
    redisReply *r = cmd_at(f->port, "SENTINEL FAILOVER mymaster");
    if (r != NULL && r->type == REDIS_REPLY_STATUS) {
        f->accepted = 1;
        ev_timer_stop(loop, w);
    } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        snprintf(f->last, sizeof f->last, "%s", r->str);
    }
    if (r != NULL)
        freeReplyObject(r);
}

/* A sentinel that dies and comes back on the same port: the follower
 * reconnects its pub/sub link and sees the next failover. */
Test(sentinel_live, reconnects_to_restarted_sentinel) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_proc *leader = server_start(0);
    test_proc *replica = server_start(leader->port);
    wait_replica_synced(replica->port);
    test_proc *s1 = sentinel_start("mymaster", leader->port, 1);
    conf_addr a = addr_of(s1->port);
    wait_sync_view(&a, 1, "mymaster", 1);

    rec r;
    memset(&r, 0, sizeof r);
    repl_sentinel *fol = repl_sentinel_new(loop, &a, 1, "mymaster", NULL, NULL, 60000, rec_cb, &r);
    cr_assert(ts_run_until(loop, rec_called, &r, 5000), "no initial view");
    cr_assert_eq(r.views[0].leader.port, leader->port);

    ts_kill(&s1->pid);
    ts_run_until(loop, NULL, NULL, 700); /* the follower sees its links drop */
    proc_spawn(s1);                   /* same port, its rewritten config */
    ts_run_until(loop, NULL, NULL, 1500); /* reconnect (at most every 500 ms) */

    failover_req f = {s1->port, 0, ""};
    ev_timer t;
    ev_timer_init(&t, failover_tick, 0., 0.3);
    t.data = &f;
    ev_timer_start(loop, &t);
    r.want_leader_port = replica->port;
    int ok = ts_run_until(loop, rec_leader_is, &r, 20000);
    ev_timer_stop(loop, &t);
    cr_assert(f.accepted, "SENTINEL FAILOVER never accepted: %s", f.last);
    cr_assert(ok, "no view after the failover");
    int last = (r.calls < MAX_VIEWS ? r.calls : MAX_VIEWS) - 1;
    cr_assert(r.reasons[last][0] == '+', "reason %s", r.reasons[last]);

    repl_sentinel_free(fol);
    cr_assert(ts_drain_loop(loop, 3000), "the follower left watchers behind");
    ev_loop_destroy(loop);
    assert_no_leaks();
}

/* Sentinels with requirepass: the password goes to both links (the pub/sub
 * link subscribes only after AUTH), the leader without one still verifies. */
Test(sentinel_live, password) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_proc *leader = server_start(0);
    test_proc *replica = server_start(leader->port);
    wait_replica_synced(replica->port);
    cmd_password = "s3cret pass"; /* a space: sent as one argument */
    test_proc *s1 = sentinel_start_with("mymaster", leader->port, 1,
                                        "requirepass \"s3cret pass\"\n");
    conf_addr a = addr_of(s1->port);
    repl_sentinel_view v;
    char err[512] = "";

    cr_assert_eq(repl_sentinel_query_sync(&a, 1, "mymaster", NULL, NULL, 1000, &v, err, sizeof err), -1);
    cr_assert(strstr(err, "NOAUTH") != NULL, "%s", err);
    cr_assert_eq(repl_sentinel_query_sync(&a, 1, "mymaster", "wrong", NULL, 1000, &v, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "AUTH failed") != NULL, "%s", err);
    cr_assert(strstr(err, "wrong") == NULL, "the password leaked into the reason: %s", err);
    cr_assert_eq(repl_sentinel_query_sync(&a, 1, "mymaster", "s3cret pass", NULL, 1000, &v, err,
                                          sizeof err), 0, "%s", err);
    cr_assert_eq(v.leader.port, leader->port);

    /* wrong password live: nothing */
    rec r;
    memset(&r, 0, sizeof r);
    repl_sentinel *fol = repl_sentinel_new(loop, &a, 1, "mymaster", "wrong", NULL, 100, rec_cb, &r);
    ts_run_until(loop, NULL, NULL, 1000);
    cr_assert_eq(r.calls, 0);
    repl_sentinel_free(fol);
    cr_assert(ts_drain_loop(loop, 3000), "the follower left watchers behind");

    /* right password live: a view, then a failover seen through pub/sub */
    fol = repl_sentinel_new(loop, &a, 1, "mymaster", "s3cret pass", NULL, 60000, rec_cb, &r);
    cr_assert(ts_run_until(loop, rec_called, &r, 5000), "no initial view");
    cr_assert_eq(r.views[0].leader.port, leader->port);
    ts_run_until(loop, NULL, NULL, 300); /* the pub/sub link subscribes */
    failover_req f = {s1->port, 0, ""};
    ev_timer t;
    ev_timer_init(&t, failover_tick, 0., 0.3);
    t.data = &f;
    ev_timer_start(loop, &t);
    r.want_leader_port = replica->port;
    int ok = ts_run_until(loop, rec_leader_is, &r, 20000);
    ev_timer_stop(loop, &t);
    cr_assert(f.accepted, "SENTINEL FAILOVER never accepted: %s", f.last);
    cr_assert(ok, "no view after the failover");
    int last = (r.calls < MAX_VIEWS ? r.calls : MAX_VIEWS) - 1;
    cr_assert(r.reasons[last][0] == '+', "reason %s", r.reasons[last]);

    repl_sentinel_free(fol);
    cr_assert(ts_drain_loop(loop, 3000), "the follower left watchers behind");
    ev_loop_destroy(loop);
    assert_no_leaks();
}

/* ------------------------------------------------------------------------ */
/* failover announcements                                                    */

typedef struct {
    int calls;
    int active;
    char why[64];
    int want_calls;          /* for fo_reached */
    int fake_port;           /* for fake_subscribed */
} fo_rec;

static void fo_cb(int active, const char *why, void *arg) {
    fo_rec *f = arg;
    f->calls++;
    f->active = active;
    snprintf(f->why, sizeof f->why, "%s", why);
}

static int fo_reached(void *arg) {
    return ((fo_rec *)arg)->calls >= ((fo_rec *)arg)->want_calls;
}

/* The follower's pub/sub link to the stand-in is subscribed. */
static int fake_subscribed(void *arg) {
    redisReply *r = cmd_at(((fo_rec *)arg)->fake_port, "PUBSUB NUMSUB +try-failover");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 1;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Publish an event on the stand-in and run the loop ms; returns fo calls. */
static int announce(struct ev_loop *loop, fo_rec *f, const char *channel, const char *payload,
                    int ms) {
    redisReply *r = cmd_at(f->fake_port, "PUBLISH %s %s", channel, payload);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "PUBLISH %s", channel);
    freeReplyObject(r);
    f->want_calls = f->calls + 1;
    ts_run_until(loop, fo_reached, f, ms);
    return f->calls;
}

/* A redis-server stands in for a second sentinel: the follower subscribes
 * on it as on any sentinel, and the test publishes Sentinel's events there
 * (a real sentinel takes no PUBLISH).  The real sentinel gives the view.
 * A failover announced for the leader's address calls fo_cb(1); stages that
 * follow change nothing; an abort calls fo_cb(0); events about another
 * master or another address are ignored; a failover announced by a
 * "sentinel" whose link then drops ends at the next refresh tick. */
Test(sentinel_live, failover_announcements) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_proc *leader = server_start(0);
    test_proc *s0 = sentinel_start("mymaster", leader->port, 1);
    test_proc *fake = server_start(0);
    conf_addr sents[2] = {addr_of(s0->port), addr_of(fake->port)};
    wait_sync_view(sents, 1, "mymaster", 0);

    rec r;
    fo_rec f;
    memset(&r, 0, sizeof r);
    memset(&f, 0, sizeof f);
    f.fake_port = fake->port;
    repl_sentinel *fol = repl_sentinel_new(loop, sents, 2, "mymaster", NULL, NULL, 200, rec_cb, &r);
    repl_sentinel_on_failover(fol, fo_cb, &f);
    cr_assert(ts_run_until(loop, rec_called, &r, 5000), "no initial view");
    cr_assert(ts_run_until(loop, fake_subscribed, &f, 5000), "never subscribed on the stand-in");

    char ours[96], other_addr[96], other_master[96], stage[128];
    snprintf(ours, sizeof ours, "master mymaster 127.0.0.1 %d", leader->port);
    snprintf(other_addr, sizeof other_addr, "master mymaster 127.0.0.1 %d", fake->port);
    snprintf(other_master, sizeof other_master, "master othermaster 127.0.0.1 %d", leader->port);
    snprintf(stage, sizeof stage, "slave 127.0.0.1:%d 127.0.0.1 %d @ mymaster 127.0.0.1 %d",
             fake->port, fake->port, leader->port);

    cr_assert_eq(announce(loop, &f, "+try-failover", other_addr, 500), 0, "another address");
    cr_assert_eq(announce(loop, &f, "+try-failover", other_master, 500), 0, "another master");
    cr_assert_eq(announce(loop, &f, "+try-failover", ours, 3000), 1, "no fo_cb for our leader");
    cr_assert_eq(f.active, 1);
    cr_assert_str_eq(f.why, "+try-failover");
    cr_assert_eq(announce(loop, &f, "+selected-slave", stage, 500), 1, "a later stage: no call");
    cr_assert_eq(announce(loop, &f, "-failover-abort-not-elected", ours, 3000), 2, "abort unheard");
    cr_assert_eq(f.active, 0);

    cr_assert_eq(announce(loop, &f, "+elected-leader", ours, 3000), 3);
    cr_assert_eq(f.active, 1);
    ts_kill(&fake->pid);
    f.want_calls = 4;
    cr_assert(ts_run_until(loop, fo_reached, &f, 3000), "the failover outlived its announcer's link");
    cr_assert_eq(f.active, 0);
    cr_log_info("ended: %s", f.why);
    cr_assert_eq(r.calls, 1, "the view never changed: delivered once");

    repl_sentinel_free(fol);
    cr_assert(ts_drain_loop(loop, 3000), "the follower left watchers behind");
    ev_loop_destroy(loop);
    assert_no_leaks();
}
