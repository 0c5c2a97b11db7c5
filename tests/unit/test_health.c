/* test_health.c -- replication/health: the INFO parser on captured Redis 7.0
 * texts and hostile input, and the poller / one-shot links against real
 * redis-server processes started on free 127.0.0.1 ports.
 *
 * Every live test registers its servers in `servers[]`; the suite's fini
 * kills them (SIGKILL, reaped) and removes the temp dir even when
 * an assertion failed.  The children also get PR_SET_PDEATHSIG so a crashed
 * test process cannot leave one behind.  Every wait is bounded. */
#include <stddef.h>

#include "replication/health.h"

#include <criterion/criterion.h>

#include "tests/support/ts.h"
#include <ev.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* INFO texts captured from redis-server 7.0.15: `INFO replication persistence`
 * of a master with one replica, and of that replica, after three writes. */

static const char INFO_MASTER[] =
    "# Persistence\r\n"
    "loading:0\r\n"
    "async_loading:0\r\n"
    "current_cow_peak:0\r\n"
    "current_cow_size:0\r\n"
    "current_cow_size_age:0\r\n"
    "current_fork_perc:0.00\r\n"
    "current_save_keys_processed:0\r\n"
    "current_save_keys_total:0\r\n"
    "rdb_changes_since_last_save:3\r\n"
    "rdb_bgsave_in_progress:0\r\n"
    "rdb_last_save_time:1795305189\r\n"
    "rdb_last_bgsave_status:ok\r\n"
    "rdb_last_bgsave_time_sec:0\r\n"
    "rdb_current_bgsave_time_sec:-1\r\n"
    "rdb_saves:0\r\n"
    "rdb_last_cow_size:339968\r\n"
    "rdb_last_load_keys_expired:0\r\n"
    "rdb_last_load_keys_loaded:0\r\n"
    "aof_enabled:0\r\n"
    "aof_rewrite_in_progress:0\r\n"
    "aof_rewrite_scheduled:0\r\n"
    "aof_last_rewrite_time_sec:-1\r\n"
    "aof_current_rewrite_time_sec:-1\r\n"
    "aof_last_bgrewrite_status:ok\r\n"
    "aof_rewrites:0\r\n"
    "aof_rewrites_consecutive_failures:0\r\n"
    "aof_last_write_status:ok\r\n"
    "aof_last_cow_size:0\r\n"
    "module_fork_in_progress:0\r\n"
    "module_fork_last_cow_size:0\r\n"
    "\r\n"
    "# Replication\r\n"
    "role:master\r\n"
    "connected_slaves:1\r\n"
    "slave0:ip=127.0.0.1,port=17802,state=online,offset=64,lag=1\r\n"
    "master_failover_state:no-failover\r\n"
    "master_replid:cd79b7e90378219b5beb413681dda8b5b3630728\r\n"
    "master_replid2:0000000000000000000000000000000000000000\r\n"
    "master_repl_offset:135\r\n"
    "second_repl_offset:-1\r\n"
    "repl_backlog_active:1\r\n"
    "repl_backlog_size:1048576\r\n"
    "repl_backlog_first_byte_offset:1\r\n"
    "repl_backlog_histlen:135\r\n";

static const char INFO_REPLICA[] =
    "# Persistence\r\n"
    "loading:0\r\n"
    "async_loading:0\r\n"
    "current_cow_peak:0\r\n"
    "current_cow_size:0\r\n"
    "current_cow_size_age:0\r\n"
    "current_fork_perc:0.00\r\n"
    "current_save_keys_processed:0\r\n"
    "current_save_keys_total:0\r\n"
    "rdb_changes_since_last_save:2\r\n"
    "rdb_bgsave_in_progress:0\r\n"
    "rdb_last_save_time:1795305189\r\n"
    "rdb_last_bgsave_status:ok\r\n"
    "rdb_last_bgsave_time_sec:-1\r\n"
    "rdb_current_bgsave_time_sec:-1\r\n"
    "rdb_saves:0\r\n"
    "rdb_last_cow_size:0\r\n"
    "rdb_last_load_keys_expired:0\r\n"
    "rdb_last_load_keys_loaded:1\r\n"
    "aof_enabled:0\r\n"
    "aof_rewrite_in_progress:0\r\n"
    "aof_rewrite_scheduled:0\r\n"
    "aof_last_rewrite_time_sec:-1\r\n"
    "aof_current_rewrite_time_sec:-1\r\n"
    "aof_last_bgrewrite_status:ok\r\n"
    "aof_rewrites:0\r\n"
    "aof_rewrites_consecutive_failures:0\r\n"
    "aof_last_write_status:ok\r\n"
    "aof_last_cow_size:0\r\n"
    "module_fork_in_progress:0\r\n"
    "module_fork_last_cow_size:0\r\n"
    "\r\n"
    "# Replication\r\n"
    "role:slave\r\n"
    "master_host:127.0.0.1\r\n"
    "master_port:17801\r\n"
    "master_link_status:up\r\n"
    "master_last_io_seconds_ago:1\r\n"
    "master_sync_in_progress:0\r\n"
    "slave_read_repl_offset:135\r\n"
    "slave_repl_offset:135\r\n"
    "slave_priority:100\r\n"
    "slave_read_only:1\r\n"
    "replica_announced:1\r\n"
    "connected_slaves:0\r\n"
    "master_failover_state:no-failover\r\n"
    "master_replid:cd79b7e90378219b5beb413681dda8b5b3630728\r\n"
    "master_replid2:0000000000000000000000000000000000000000\r\n"
    "master_repl_offset:135\r\n"
    "second_repl_offset:-1\r\n"
    "repl_backlog_active:1\r\n"
    "repl_backlog_size:1048576\r\n"
    "repl_backlog_first_byte_offset:51\r\n"
    "repl_backlog_histlen:85\r\n";

#define REPLID "cd79b7e90378219b5beb413681dda8b5b3630728"

/* A state with recognisable values in every field the parser may touch. */
static repl_health_state sentinel_state(void) {
    repl_health_state st;
    memset(&st, 0, sizeof st);
    st.loading = 7;
    st.async_loading = 7;
    st.role = REPL_ROLE_UNKNOWN;
    st.link_up = 7;
    st.sync_in_progress = 7;
    st.repl_offset = -77;
    st.master_repl_offset = -77;
    strcpy(st.master_replid, "old-replid");
    strcpy(st.master_host, "old-host");
    st.master_port = 7;
    st.connected_slaves = 7;
    return st;
}

/* Parse from an exact-size heap copy, so ASan sees any read past the end. */
static void parse_exact(const char *text, size_t len, repl_health_state *st) {
    char *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, text, len);
    repl_health_parse_info(copy, len, st);
    free(copy);
}

/* ------------------------------------------------------------------------ */
/* parser                                                                    */

Test(health_parse, master_info) {
    repl_health_state st = sentinel_state();
    parse_exact(INFO_MASTER, strlen(INFO_MASTER), &st);
    cr_assert_eq(st.role, REPL_ROLE_MASTER);
    cr_assert_eq(st.loading, 0);
    cr_assert_eq(st.async_loading, 0);
    cr_assert_eq(st.master_repl_offset, 135);
    cr_assert_eq(st.repl_offset, 135);
    cr_assert_str_eq(st.master_replid, REPLID);
    cr_assert_eq(st.connected_slaves, 1);
    /* replica-only fields are absent from a master's INFO: left alone */
    cr_assert_eq(st.link_up, 7);
    cr_assert_eq(st.sync_in_progress, 7);
    cr_assert_str_eq(st.master_host, "old-host");
    cr_assert_eq(st.master_port, 7);
}

/* After a failover the new leader names the history it came from: tokens of
 * that history are honoured up to second_repl_offset (RCPROXY AFTER). */
Test(health_parse, previous_replication_history) {
    static const char text[] =
        "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
        "master_replid:1111111111111111111111111111111111111111\r\n"
        "master_replid2:2222222222222222222222222222222222222222\r\n"
        "master_repl_offset:5000\r\nsecond_repl_offset:4242\r\n";
    repl_health_state st = sentinel_state();
    parse_exact(text, strlen(text), &st);
    cr_assert_str_eq(st.master_replid, "1111111111111111111111111111111111111111");
    cr_assert_str_eq(st.master_replid2, "2222222222222222222222222222222222222222");
    cr_assert_eq(st.second_repl_offset, 4242);
    cr_assert_eq(st.repl_offset, 5000);

    /* a node that was never promoted: replid2 all zeros, second offset -1 */
    static const char fresh[] =
        "role:master\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n"
        "second_repl_offset:-1\r\n";
    parse_exact(fresh, strlen(fresh), &st);
    cr_assert_eq(st.second_repl_offset, -1);
}

Test(health_parse, replica_info) {
    repl_health_state st = sentinel_state();
    parse_exact(INFO_REPLICA, strlen(INFO_REPLICA), &st);
    cr_assert_eq(st.role, REPL_ROLE_REPLICA);
    cr_assert_eq(st.link_up, 1);
    cr_assert_eq(st.sync_in_progress, 0);
    cr_assert_eq(st.loading, 0);
    cr_assert_eq(st.repl_offset, 135);
    cr_assert_eq(st.master_repl_offset, 135);
    cr_assert_str_eq(st.master_host, "127.0.0.1");
    cr_assert_eq(st.master_port, 17801);
    cr_assert_eq(st.connected_slaves, 0);
    cr_assert_str_eq(st.master_replid, REPLID);
}

Test(health_parse, replica_offset_is_slave_repl_offset) {
    /* a replica's own master_repl_offset may differ from what it applied */
    const char *t = "role:slave\r\nmaster_repl_offset:900\r\nslave_repl_offset:850\r\n";
    repl_health_state st = sentinel_state();
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.repl_offset, 850);
    cr_assert_eq(st.master_repl_offset, 900);
    /* order of lines does not matter */
    t = "slave_repl_offset:10\r\nmaster_repl_offset:20\r\nrole:slave\r\n";
    st = sentinel_state();
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.repl_offset, 10);
    t = "master_repl_offset:20\r\nslave_repl_offset:10\r\nrole:master\r\n";
    st = sentinel_state();
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.repl_offset, 20);
}

Test(health_parse, states_while_syncing_and_loading) {
    const char *t = "# Persistence\r\nloading:1\r\nasync_loading:1\r\n"
                    "# Replication\r\nrole:slave\r\nmaster_link_status:down\r\n"
                    "master_sync_in_progress:1\r\n";
    repl_health_state st = sentinel_state();
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.loading, 1);
    cr_assert_eq(st.async_loading, 1);
    cr_assert_eq(st.link_up, 0);
    cr_assert_eq(st.sync_in_progress, 1);
    cr_assert_eq(st.role, REPL_ROLE_REPLICA);
    cr_assert_eq(st.repl_offset, -77, "no offset in the text: left alone");
    t = "role:replica\r\nrole:bogus\r\n";
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.role, REPL_ROLE_UNKNOWN, "an unknown role is reported as unknown");
}

Test(health_parse, missing_fields_left_alone) {
    repl_health_state st = sentinel_state(), before = sentinel_state();
    const char *t = "# Replication\r\nrole:master\r\n";
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.role, REPL_ROLE_MASTER);
    st.role = before.role;
    cr_assert(memcmp(&st, &before, sizeof st) == 0, "only role may change");
    st = sentinel_state();
    parse_exact("", 0, &st);
    repl_health_parse_info(NULL, 10, &st);
    repl_health_parse_info("role:master", 11, NULL);
    cr_assert(memcmp(&st, &before, sizeof st) == 0);
}

Test(health_parse, line_endings_and_no_trailing_crlf) {
    const char *t = "role:slave\nmaster_port:6380\r\nmaster_link_status:up\n"
                    "slave_repl_offset:42";
    repl_health_state st = sentinel_state();
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.role, REPL_ROLE_REPLICA);
    cr_assert_eq(st.master_port, 6380);
    cr_assert_eq(st.link_up, 1);
    cr_assert_eq(st.repl_offset, 42);
    /* a bare CR or trailing blanks are part of the value: not a number */
    t = "master_port:1234\r\r\nconnected_slaves:3 \r\n";
    st = sentinel_state();
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.master_port, 7);
    cr_assert_eq(st.connected_slaves, 7);
}

/* Cut the replica's INFO after every byte: no overread (ASan) and every
 * value seen is either untouched or a prefix of the real one. */
Test(health_parse, every_prefix_of_real_info) {
    size_t len = strlen(INFO_REPLICA);
    for (size_t cut = 0; cut <= len; cut++) {
        repl_health_state st = sentinel_state();
        parse_exact(INFO_REPLICA, cut, &st);
        cr_assert(st.role == REPL_ROLE_UNKNOWN || st.role == REPL_ROLE_REPLICA, "cut %zu", cut);
        cr_assert(st.repl_offset == -77 || st.repl_offset == 1 || st.repl_offset == 13 ||
                  st.repl_offset == 135, "cut %zu: repl_offset %lld", cut, st.repl_offset);
        cr_assert(st.master_port == 7 || st.master_port == 1 || st.master_port == 17 ||
                  st.master_port == 178 || st.master_port == 1780 || st.master_port == 17801,
                  "cut %zu: master_port %d", cut, st.master_port);
        cr_assert(strncmp(st.master_replid, REPLID, strlen(st.master_replid)) == 0 ||
                  strcmp(st.master_replid, "old-replid") == 0, "cut %zu", cut);
        cr_assert(st.link_up == 7 || st.link_up == 0 || st.link_up == 1);
    }
    /* a cut inside a key name sets nothing */
    const char *t = "role:slave\r\nslave_repl_off";
    repl_health_state st = sentinel_state();
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.repl_offset, -77);
    t = "master_repl_offset:";
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.master_repl_offset, -77, "an empty value is not a number");
}

Test(health_parse, huge_and_invalid_values_ignored) {
    char *big = malloc(1 << 20);
    size_t n;
    repl_health_state st = sentinel_state(), before = sentinel_state();
    const char *t =
        "master_repl_offset:99999999999999999999999999\r\n"
        "slave_repl_offset:9223372036854775808\r\n"
        "master_port:70000\r\n"
        "master_port:-1\r\n"
        "connected_slaves:-5\r\n"
        "connected_slaves:2147483648\r\n"
        "loading:yes\r\n"
        "master_sync_in_progress:\r\n"
        "master_replid:" REPLID "ff\r\n" /* 42 chars: does not fit */
        "master_host:bad\x01host\r\n";
    parse_exact(t, strlen(t), &st);
    cr_assert(memcmp(&st, &before, sizeof st) == 0, "nothing invalid may land in the state");

    t = "master_repl_offset:9223372036854775807\r\nrole:master\r\n"
        "slave_repl_offset:-9223372036854775808\r\nmaster_port:65535\r\n";
    parse_exact(t, strlen(t), &st);
    cr_assert_eq(st.master_repl_offset, 9223372036854775807LL);
    cr_assert_eq(st.repl_offset, 9223372036854775807LL);
    cr_assert_eq(st.master_port, 65535);

    /* a 255-byte host fits, 256 does not */
    cr_assert_not_null(big);
    n = (size_t)sprintf(big, "master_host:");
    memset(big + n, 'h', 255);
    memcpy(big + n + 255, "\r\n", 2);
    st = sentinel_state();
    parse_exact(big, n + 257, &st);
    cr_assert_eq(strlen(st.master_host), 255);
    memset(big + n, 'x', 256);
    memcpy(big + n + 256, "\r\n", 2);
    parse_exact(big, n + 258, &st);
    cr_assert_eq(st.master_host[0], 'h', "an oversized host is ignored, not truncated");

    /* a 1 MiB value line */
    n = (size_t)sprintf(big, "master_replid:");
    memset(big + n, '7', (1 << 20) - n);
    st = sentinel_state();
    parse_exact(big, 1 << 20, &st);
    cr_assert(memcmp(&st, &before, sizeof st) == 0);
    free(big);
}

Test(health_parse, garbage_never_crashes) {
    static const char alphabet[] = "rolemastr_:\r\n#0123456789-slave \x00\xff";
    unsigned seed = 12345;
    char buf[512];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % (int)sizeof buf);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        repl_health_state st = sentinel_state();
        parse_exact(buf, len, &st);
        cr_assert(st.role == REPL_ROLE_UNKNOWN || st.role == REPL_ROLE_MASTER ||
                  st.role == REPL_ROLE_REPLICA);
        cr_assert(st.master_port >= 0 && st.master_port <= 65535);
        cr_assert(strlen(st.master_replid) < sizeof st.master_replid);
        cr_assert(strlen(st.master_host) < sizeof st.master_host);
    }
    /* embedded NULs split nothing: the key must match exactly */
    static const char nul[] = "role\0:master\r\nrole:sla\0ve\r\n";
    repl_health_state st = sentinel_state();
    parse_exact(nul, sizeof nul - 1, &st);
    cr_assert_eq(st.role, REPL_ROLE_UNKNOWN);
}

Test(health_clock, monotonic_ms) {
    long long a = repl_now_ms();
    usleep(30 * 1000);
    long long b = repl_now_ms();
    cr_assert(a > 0);
    cr_assert(b - a >= 25 && b - a < 2000, "30 ms sleep measured as %lld ms", b - a);
}

/* ------------------------------------------------------------------------ */
/* redis-server processes                                                    */

#define MAX_SERVERS 4
#define MAX_EXTRA 8

typedef struct {
    pid_t pid;
    int port;
    const char *password;                  /* --requirepass, and the probe's AUTH */
    char extra[MAX_EXTRA][64];             /* extra command-line args */
    const char *extra_argv[MAX_EXTRA + 1]; /* into extra, NULL-terminated */
} test_server;

static char tmpdir[64];
static test_server servers[MAX_SERVERS];
static int nservers;

/* (Re)start s on its port: 0 once it answers PING, -1 when it exited or
 * did not come up within 10 s (live_fini kills it then). */
static int server_spawn(test_server *s) {
    s->pid = ts_spawn_redis(s->port, tmpdir, s->password, s->extra_argv);
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    redisContext *c = ts_connect_retry(&s->pid, s->port, s->password, 10000);
    if (c == NULL)
        return -1;
    redisFree(c);
    return 0;
}

/* Start a redis-server with extra args (NULL-terminated); asserts it is up. */
static test_server *server_start(const char *password, const char *const *extra) {
    cr_assert(nservers < MAX_SERVERS);
    test_server *s = &servers[nservers++];
    memset(s, 0, sizeof *s);
    s->port = ts_free_port();
    cr_assert(s->port > 0);
    s->password = password;
    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        cr_assert(i < MAX_EXTRA);
        snprintf(s->extra[i], sizeof s->extra[i], "%s", extra[i]);
        s->extra_argv[i] = s->extra[i];
    }
    cr_assert_eq(server_spawn(s), 0, "redis-server on port %d did not start", s->port);
    return s;
}

static void live_init(void) {
    signal(SIGPIPE, SIG_IGN);
    nservers = 0;
    cr_assert_eq(ts_make_tmpdir(tmpdir, sizeof tmpdir, "rcproxy-health"), 0);
}

static void live_fini(void) {
    for (int i = 0; i < nservers; i++)
        ts_kill(&servers[i].pid);
    ts_remove_dir(tmpdir);
}

/* Last step of every live test: in sanitizer builds a leak fails the test
 * (criterion ignores assertions in fini and LSan's exit report alone). */
static void assert_no_leaks(void) {
    cr_assert_eq(ts_leak_check(), 0, "memory leaked (see the LSan report)");
}

/* A synchronous command on a test-side client (tests may block; the module
 * under test may not).  Returns the reply, asserting one came. */
static redisReply *sync_command(int port, const char *password, const char *cmd) {
    redisContext *c = ts_connect(port, password, 2000);
    cr_assert_not_null(c, "no connection to port %d", port);
    redisReply *r = redisCommand(c, cmd);
    cr_assert_not_null(r, "%s: %s", cmd, c->errstr);
    redisFree(c);
    return r;
}

/* ------------------------------------------------------------------------ */
/* the poller's callback                                                     */

/* What the poller told us. */
typedef struct {
    int calls;
    int free_in_cb;          /* free the poller inside its first callback */
    repl_health_state last;
    long long first_call_ms;
    long long down_at_ms;    /* first !reachable after arm_down */
    int arm_down;
    long long poll_ms[16];   /* when answered polls 1..16 arrived */
} rec;

static void rec_cb(repl_health *h, const repl_health_state *st, void *arg) {
    rec *r = arg;
    long long now = repl_now_ms();
    cr_assert_eq(st, repl_health_get(h));
    r->calls++;
    r->last = *st;
    if (r->first_call_ms == 0)
        r->first_call_ms = now;
    if (st->reachable && st->polls >= 1 && st->polls <= 16)
        r->poll_ms[st->polls - 1] = now;
    if (r->arm_down && !st->reachable && r->down_at_ms == 0)
        r->down_at_ms = now;
    if (r->free_in_cb)
        repl_health_free(h);
}

static int rec_reachable(void *arg) {
    rec *r = arg;
    return r->calls > 0 && r->last.reachable;
}
static int rec_down(void *arg) {
    rec *r = arg;
    return r->calls > 0 && !r->last.reachable;
}
static int rec_three_polls(void *arg) {
    return ((rec *)arg)->last.polls >= 3;
}
static int rec_called(void *arg) {
    return ((rec *)arg)->calls > 0;
}

/* ------------------------------------------------------------------------ */
/* the poller, live                                                          */

TestSuite(health_live, .init = live_init, .fini = live_fini, .timeout = 60);

Test(health_live, master_role_and_interval) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *m = server_start(NULL, NULL);
    rec r = {0};
    long long t0 = repl_now_ms();
    repl_health *h = repl_health_new(loop, "127.0.0.1", m->port, NULL, NULL, 300, 1000, rec_cb, &r);

    cr_assert(ts_run_until(loop, rec_called, &r, 3000));
    cr_assert(r.first_call_ms - t0 < 250, "first poll at once, not after an interval (%lld ms)",
              r.first_call_ms - t0);
    cr_assert(ts_run_until(loop, rec_three_polls, &r, 5000), "polls %lld", r.last.polls);
    cr_assert_eq(r.last.reachable, 1);
    cr_assert_eq(r.last.role, REPL_ROLE_MASTER);
    cr_assert_eq(r.last.failures, 0, "%s", r.last.last_error);
    cr_assert_eq(r.last.loading, 0);
    cr_assert_eq(r.last.connected_slaves, 0);
    cr_assert_eq(strlen(r.last.master_replid), 40);
    cr_assert(r.last.master_repl_offset >= 0);
    cr_assert_eq(r.last.repl_offset, r.last.master_repl_offset);
    cr_assert(r.last.last_ok_ms > 0 && r.last.last_ok_ms <= repl_now_ms());
    long long spread = r.poll_ms[2] - r.poll_ms[0];
    cr_assert(spread >= 2 * 300 - 60 && spread < 2 * 300 + 400,
              "three polls every 300 ms took %lld ms", spread);

    repl_health_free(h);
    int calls = r.calls;
    cr_assert(ts_drain_loop(loop, 2000), "a freed poller left watchers on the loop");
    cr_assert_eq(r.calls, calls, "no callback after free");
    ev_loop_destroy(loop);
    assert_no_leaks();
}

static int replica_caught_up_target;
static int replica_caught_up(void *arg) {
    rec *r = arg;
    return r->last.reachable && r->last.link_up &&
           r->last.repl_offset >= replica_caught_up_target;
}

Test(health_live, replica_link_up_and_offset) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *m = server_start(NULL, NULL);
    char mport[16];
    snprintf(mport, sizeof mport, "%d", m->port);
    const char *rargs[] = {"--replicaof", "127.0.0.1", mport, NULL};
    test_server *rs = server_start(NULL, rargs);
    rec rm = {0}, rr = {0};
    repl_health *hm = repl_health_new(loop, "127.0.0.1", m->port, NULL, NULL, 100, 1000, rec_cb, &rm);
    repl_health *hr = repl_health_new(loop, "127.0.0.1", rs->port, NULL, NULL, 100, 1000, rec_cb, &rr);

    /* writes advance the master's offset only once a replica attached */
    replica_caught_up_target = 0;
    cr_assert(ts_run_until(loop, replica_caught_up, &rr, 20000), "replica link never came up: %s",
              rr.last.last_error);
    for (int i = 0; i < 10; i++)
        freeReplyObject(sync_command(m->port, NULL, "INCR counter"));
    redisReply *info = sync_command(m->port, NULL, "INFO replication");
    repl_health_state mst = sentinel_state();
    cr_assert_eq(info->type, REDIS_REPLY_STRING);
    repl_health_parse_info(info->str, info->len, &mst);
    freeReplyObject(info);
    cr_assert(mst.master_repl_offset > 0);
    replica_caught_up_target = (int)mst.master_repl_offset;

    cr_assert(ts_run_until(loop, replica_caught_up, &rr, 20000),
              "replica: reachable %d link_up %d offset %lld (want >= %d) err %s",
              rr.last.reachable, rr.last.link_up, rr.last.repl_offset,
              replica_caught_up_target, rr.last.last_error);
    cr_assert_eq(rr.last.role, REPL_ROLE_REPLICA);
    cr_assert_eq(rr.last.sync_in_progress, 0);
    cr_assert_str_eq(rr.last.master_host, "127.0.0.1");
    cr_assert_eq(rr.last.master_port, m->port);
    cr_assert_str_eq(rr.last.master_replid, mst.master_replid, "replica follows its master's history");

    cr_assert(ts_run_until(loop, rec_reachable, &rm, 3000));
    cr_assert(ts_run_until(loop, NULL, NULL, 250) == 0);
    cr_assert_eq(rm.last.role, REPL_ROLE_MASTER);
    cr_assert_eq(rm.last.connected_slaves, 1);
    cr_assert(rm.last.repl_offset >= rr.last.repl_offset);

    repl_health_free(hm);
    repl_health_free(hr);
    cr_assert(ts_drain_loop(loop, 2000));
    ev_loop_destroy(loop);
    assert_no_leaks();
}

Test(health_live, password_right_wrong_missing) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *s = server_start("s3cret", NULL);
    rec ok = {0}, okuser = {0}, bad = {0}, none = {0};
    repl_health *h1 = repl_health_new(loop, "127.0.0.1", s->port, NULL, "s3cret", 100, 1000, rec_cb, &ok);
    repl_health *h2 = repl_health_new(loop, "127.0.0.1", s->port, "default", "s3cret", 100, 1000, rec_cb, &okuser);
    repl_health *h3 = repl_health_new(loop, "127.0.0.1", s->port, "", "wrong", 100, 1000, rec_cb, &bad);
    repl_health *h4 = repl_health_new(loop, "127.0.0.1", s->port, NULL, "", 100, 1000, rec_cb, &none);

    cr_assert(ts_run_until(loop, rec_reachable, &ok, 3000), "%s", ok.last.last_error);
    cr_assert(ts_run_until(loop, rec_reachable, &okuser, 3000), "%s", okuser.last.last_error);
    cr_assert(ts_run_until(loop, NULL, NULL, 350) == 0);
    cr_assert_eq(ok.last.role, REPL_ROLE_MASTER);
    cr_assert_eq(ok.last.failures, 0);
    cr_assert_eq(okuser.last.failures, 0);

    cr_assert(bad.calls >= 2, "a failing poller keeps trying every interval");
    cr_assert_eq(bad.last.reachable, 0);
    cr_assert_eq(bad.last.polls, 0);
    cr_assert_eq(bad.last.failures, bad.calls);
    cr_assert_not_null(strstr(bad.last.last_error, "AUTH failed"), "%s", bad.last.last_error);
    cr_assert_not_null(strstr(bad.last.last_error, "WRONGPASS"), "%s", bad.last.last_error);
    cr_assert_eq(bad.last.role, REPL_ROLE_UNKNOWN);

    cr_assert_eq(none.last.reachable, 0);
    cr_assert(none.last.failures >= 1);
    cr_assert_not_null(strstr(none.last.last_error, "NOAUTH"), "%s", none.last.last_error);

    repl_health_free(h1);
    repl_health_free(h2);
    repl_health_free(h3);
    repl_health_free(h4);
    cr_assert(ts_drain_loop(loop, 2000));
    ev_loop_destroy(loop);
    assert_no_leaks();
}

static int rec_back_up;
static int rec_reachable_again(void *arg) {
    rec *r = arg;
    return r->last.reachable && r->last.polls > rec_back_up;
}

Test(health_live, kill_then_restart) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *s = server_start(NULL, NULL);
    rec r = {0};
    const int interval = 100;
    repl_health *h = repl_health_new(loop, "127.0.0.1", s->port, NULL, NULL, interval, 300, rec_cb, &r);
    cr_assert(ts_run_until(loop, rec_reachable, &r, 3000));

    r.arm_down = 1;
    long long t_kill = repl_now_ms();
    ts_kill(&s->pid);
    cr_assert(ts_run_until(loop, rec_down, &r, 2000));
    cr_assert(r.down_at_ms - t_kill <= 2 * interval + 100,
              "down noticed after %lld ms", r.down_at_ms - t_kill);
    cr_assert(strlen(r.last.last_error) > 0);

    /* while down: one reconnect attempt per interval, no busy loop */
    long long f0 = r.last.failures, t0 = repl_now_ms();
    ts_run_until(loop, NULL, NULL, 600);
    long long fails = r.last.failures - f0, took = repl_now_ms() - t0;
    cr_assert(fails >= took / interval - 2 && fails <= took / interval + 1,
              "%lld failures in %lld ms at a %d ms interval", fails, took, interval);
    cr_assert_not_null(strstr(r.last.last_error, "connect"), "%s", r.last.last_error);
    cr_assert_eq(r.last.reachable, 0);
    cr_assert_eq(r.last.role, REPL_ROLE_MASTER, "the last known role is kept while down");

    rec_back_up = (int)r.last.polls;
    cr_assert_eq(server_spawn(s), 0, "restart on port %d", s->port);
    cr_assert(ts_run_until(loop, rec_reachable_again, &r, 5000), "%s", r.last.last_error);
    cr_assert_eq(r.last.role, REPL_ROLE_MASTER);

    repl_health_free(h);
    cr_assert(ts_drain_loop(loop, 2000));
    ev_loop_destroy(loop);
    assert_no_leaks();
}

Test(health_live, sigstop_times_out_then_recovers) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *s = server_start(NULL, NULL);
    rec r = {0};
    repl_health *h = repl_health_new(loop, "127.0.0.1", s->port, NULL, NULL, 100, 300, rec_cb, &r);
    cr_assert(ts_run_until(loop, rec_reachable, &r, 3000));

    r.arm_down = 1;
    long long t_stop = repl_now_ms();
    cr_assert_eq(kill(s->pid, SIGSTOP), 0);
    cr_assert(ts_run_until(loop, rec_down, &r, 3000));
    long long took = r.down_at_ms - t_stop;
    cr_assert_not_null(strstr(r.last.last_error, "timeout"), "%s", r.last.last_error);
    cr_assert(took >= 200 && took <= 100 + 300 + 300, "timeout noticed after %lld ms", took);

    rec_back_up = (int)r.last.polls;
    cr_assert_eq(kill(s->pid, SIGCONT), 0);
    cr_assert(ts_run_until(loop, rec_reachable_again, &r, 5000), "%s", r.last.last_error);

    repl_health_free(h);
    cr_assert(ts_drain_loop(loop, 2000));
    ev_loop_destroy(loop);
    assert_no_leaks();
}

Test(health_live, closed_port_fails_once_per_interval) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int port = ts_free_port();
    rec r = {0};
    long long t0 = repl_now_ms();
    repl_health *h = repl_health_new(loop, "127.0.0.1", port, NULL, NULL, 100, 1000, rec_cb, &r);
    ts_run_until(loop, NULL, NULL, 550);
    long long took = repl_now_ms() - t0;
    cr_assert(r.calls >= 4 && r.calls <= took / 100 + 1, "%d outcomes in %lld ms", r.calls, took);
    cr_assert_eq(r.last.failures, r.calls);
    cr_assert_eq(r.last.polls, 0);
    cr_assert_eq(r.last.reachable, 0);
    cr_assert_eq(r.last.last_ok_ms, 0);
    cr_assert_not_null(strstr(r.last.last_error, "connect"), "%s", r.last.last_error);
    repl_health_free(h);
    cr_assert(ts_drain_loop(loop, 2000));
    ev_loop_destroy(loop);
    assert_no_leaks();
}

Test(health_live, free_inside_callback) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *s = server_start("pw", NULL);
    int closed = ts_free_port();
    rec ok = {.free_in_cb = 1}, refused = {.free_in_cb = 1}, authfail = {.free_in_cb = 1};
    repl_health_new(loop, "127.0.0.1", s->port, NULL, "pw", 100, 1000, rec_cb, &ok);
    repl_health_new(loop, "127.0.0.1", closed, NULL, NULL, 100, 1000, rec_cb, &refused);
    repl_health_new(loop, "127.0.0.1", s->port, NULL, "nope", 100, 1000, rec_cb, &authfail);

    cr_assert(ts_drain_loop(loop, 3000), "pollers freed in their callbacks left watchers behind");
    cr_assert_eq(ok.calls, 1);
    cr_assert_eq(ok.last.reachable, 1);
    cr_assert_eq(refused.calls, 1);
    cr_assert_eq(refused.last.reachable, 0);
    cr_assert_eq(authfail.calls, 1);
    cr_assert_not_null(strstr(authfail.last.last_error, "AUTH"));
    ev_loop_destroy(loop);
    assert_no_leaks();
}

Test(health_live, free_inside_callback_on_disconnect) {
    /* the idle link drops: the callback runs from hiredis's disconnect path */
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *s = server_start(NULL, NULL);
    rec r = {0};
    repl_health_new(loop, "127.0.0.1", s->port, NULL, NULL, 1000, 500, rec_cb, &r);
    cr_assert(ts_run_until(loop, rec_reachable, &r, 3000));
    r.free_in_cb = 1;
    ts_kill(&s->pid);
    cr_assert(ts_drain_loop(loop, 3000));
    cr_assert_eq(r.calls, 2);
    cr_assert_eq(r.last.reachable, 0);
    cr_assert_not_null(strstr(r.last.last_error, "connection lost"), "%s", r.last.last_error);
    ev_loop_destroy(loop);
    assert_no_leaks();
}

/* ------------------------------------------------------------------------ */
/* one-shot commands, live                                                   */

typedef struct {
    int calls;
    int type;
    long long integer;
    int had_reply;
    char err[256];
} shot;

static void shot_cb(const redisReply *reply, const char *err, void *arg) {
    shot *s = arg;
    s->calls++;
    s->had_reply = reply != NULL;
    if (reply != NULL) {
        s->type = reply->type;
        s->integer = reply->integer;
    }
    snprintf(s->err, sizeof s->err, "%s", err != NULL ? err : "");
}

static const char *cmd_count[] = {"COMMAND", "COUNT"};

/* Redis >= 7 answers one INFO with several sections: what the poller sends. */
static void info_sections_cb(const redisReply *reply, const char *err, void *arg) {
    int *both = arg;
    (void)err;
    *both = reply != NULL && reply->type == REDIS_REPLY_STRING &&
            strstr(reply->str, "# Replication\r\n") != NULL &&
            strstr(reply->str, "# Persistence\r\n") != NULL &&
            strstr(reply->str, "loading:0\r\n") != NULL;
}

Test(health_live, oneshot_command_count) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *s = server_start(NULL, NULL);
    test_server *p = server_start("pw", NULL);
    shot a = {0}, b = {0}, c = {0};
    const char *unknown[] = {"NOSUCHCOMMAND", "x"};
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", s->port, NULL, NULL, 2000, 2, cmd_count, shot_cb, &a), 0);
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", p->port, "default", "pw", 2000, 2, cmd_count, shot_cb, &b), 0);
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", s->port, NULL, NULL, 2000, 2, unknown, shot_cb, &c), 0);
    const char *info[] = {"INFO", "replication", "persistence"};
    int both = -1;
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", s->port, NULL, NULL, 2000, 3, info,
                                      info_sections_cb, &both), 0);
    cr_assert_eq(a.calls, 0, "never called before it returns");
    cr_assert(ts_drain_loop(loop, 5000));
    cr_assert_eq(both, 1, "INFO replication persistence returns both sections");
    cr_assert_eq(a.calls, 1);
    cr_assert(a.had_reply, "%s", a.err);
    cr_assert_eq(a.type, REDIS_REPLY_INTEGER);
    cr_assert(a.integer > 100, "COMMAND COUNT = %lld", a.integer);
    cr_assert_eq(b.calls, 1);
    cr_assert(b.had_reply, "%s", b.err);
    cr_assert_eq(b.integer, a.integer);
    cr_assert_eq(c.calls, 1);
    cr_assert_eq(c.had_reply, 0);
    cr_assert_not_null(strstr(c.err, "unknown command"), "%s", c.err);

    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", s->port, NULL, NULL, 2000, 0, cmd_count, shot_cb, &a), -1);
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", s->port, NULL, NULL, 0, 2, cmd_count, shot_cb, &a), -1);
    cr_assert(ts_drain_loop(loop, 500));
    cr_assert_eq(a.calls, 1, "rejected arguments never call back");
    ev_loop_destroy(loop);
    assert_no_leaks();
}

Test(health_live, oneshot_failures) {
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    test_server *p = server_start("pw", NULL);
    test_server *stopped = server_start(NULL, NULL);
    int closed = ts_free_port();
    shot refused = {0}, badpw = {0}, nopw = {0}, slow = {0};

    cr_assert_eq(kill(stopped->pid, SIGSTOP), 0);
    long long t0 = repl_now_ms();
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", closed, NULL, NULL, 2000, 2, cmd_count, shot_cb, &refused), 0);
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", p->port, NULL, "wrong", 2000, 2, cmd_count, shot_cb, &badpw), 0);
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", p->port, NULL, NULL, 2000, 2, cmd_count, shot_cb, &nopw), 0);
    cr_assert_eq(repl_oneshot_command(loop, "127.0.0.1", stopped->port, NULL, NULL, 300, 2, cmd_count, shot_cb, &slow), 0);
    cr_assert_eq(refused.calls + badpw.calls + nopw.calls + slow.calls, 0);
    cr_assert(ts_drain_loop(loop, 5000));
    long long took = repl_now_ms() - t0;

    cr_assert_eq(refused.calls, 1);
    cr_assert_eq(refused.had_reply, 0);
    cr_assert(strlen(refused.err) > 0);
    cr_assert_not_null(strstr(refused.err, "refused"), "%s", refused.err);
    cr_assert_eq(badpw.calls, 1);
    cr_assert_eq(badpw.had_reply, 0);
    cr_assert_not_null(strstr(badpw.err, "AUTH failed"), "%s", badpw.err);
    cr_assert_eq(nopw.calls, 1);
    cr_assert_eq(nopw.had_reply, 0);
    cr_assert_not_null(strstr(nopw.err, "NOAUTH"), "%s", nopw.err);
    cr_assert_eq(slow.calls, 1);
    cr_assert_eq(slow.had_reply, 0);
    cr_assert_not_null(strstr(slow.err, "timeout"), "%s", slow.err);
    cr_assert(took >= 280 && took < 2000, "timeout after %lld ms", took);
    ev_loop_destroy(loop);
    assert_no_leaks();
}
