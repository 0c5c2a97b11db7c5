/*
 * harness.h -- integration-test harness for rcproxy.
 *
 * A test starts one topology (a redis-server leader, N replicas and, unless
 * the environment says RCPROXY_TEST_DIRECT=1, an rcproxy in front of them)
 * on free 127.0.0.1 ports, in a private temporary directory.  Criterion runs
 * every test in its own worker process, so the topology is per-process state
 * kept inside harness.c; IT_TEST wires the setup/teardown hooks.
 *
 * Mode quorum (it_opts.quorum_nodes): instead of a leader and replicas,
 * M independent redis-server nodes (it_node(i)) and rcproxy --mode quorum
 * with one --node per node.
 *
 * Direct mode (RCPROXY_TEST_DIRECT=1): the same Redis topology is started but
 * no rcproxy; it_client_port()/it_connect() lead straight to the leader.  This
 * proves the tests' own logic against real Redis.  Tests that only make sense
 * through the proxy call IT_SKIP_IF_DIRECT().
 *
 * Cleanup: it_fini (criterion .fini) SIGKILLs and reaps every process the test
 * started, also after a failed assertion; every child also gets
 * PR_SET_PDEATHSIG so it dies with the worker if the worker itself is killed
 * (criterion timeout), and an atexit/SIGTERM net kills what is left.  When a
 * test fails, the tail of rcproxy's log and output is printed to stderr.
 * The temporary directory is /tmp/rcproxy-it-<worker pid>-XXXXXX; it_init
 * removes those left by workers that no longer exist (crash, timeout).
 * RCPROXY_TEST_KEEP=1 keeps the directories for inspection.
 *
 * All helpers that take no "try" in their name assert (cr_assert) on failure
 * and so must be called from the test's main thread.  it_try_* helpers never
 * assert and may be used from worker threads.
 */
#ifndef RCPROXY_IT_HARNESS_H
#define RCPROXY_IT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>

#define IT_MAX_REPLICAS 4
#define IT_MAX_PROXY_ARGS 16
#define IT_MAX_SENTINELS 5
#define IT_MAX_QUORUM_NODES 7
#define IT_MAX_TOOLS 4

/* The master name the harness's sentinels monitor (it_opts.sentinels). */
#define IT_SENTINEL_MASTER "mymaster"

/* Default socket timeout for client connections made by the harness. */
#define IT_DEFAULT_TIMEOUT_MS 10000

typedef struct it_server {
    int port;
    pid_t pid;          /* 0 when not running */
    bool is_leader;
} it_server;

/* Topology options.  Strings are not copied: they must live until the test
 * ends (string literals in practice). */
typedef struct it_opts {
    int replicas;                   /* 0..IT_MAX_REPLICAS */
    /* requirepass + masterauth on every redis-server, --backend-password
     * for rcproxy; NULL for none */
    const char *backend_password;
    /* rcproxy --requirepass; NULL for none (direct mode: unused) */
    const char *proxy_password;
    /* extra rcproxy arguments, NULL-terminated */
    const char *proxy_args[IT_MAX_PROXY_ARGS];
    /* do not wait for every replica to be in rotation after start */
    bool no_rotation_wait;
    /* > 0: replica 0 replicates through tools/delay_relay, which holds the
     * leader->replica stream this many ms (it stays behind the relay when
     * restarted); 0: no relay */
    int relay_delay_ms;
    /* > 0: start this many redis-sentinel processes (0..IT_MAX_SENTINELS)
     * monitoring the leader as IT_SENTINEL_MASTER with quorum n/2+1,
     * down-after-milliseconds 1000, failover-timeout 5000, parallel-syncs
     * 1; wait until each one names the leader, lists every replica and
     * knows the n-1 others; and start rcproxy with --sentinel (one per
     * sentinel) and --sentinel-master instead of --leader/--replica.
     * Not with relay_delay_ms. */
    int sentinels;
    /* with sentinels: still start rcproxy with the leader and replicas
     * (--leader/--replica or the config file), not --sentinel */
    bool proxy_static;
    /* start rcproxy from <tmpdir>/rcproxy.conf, a config file the harness
     * writes with every directive it would otherwise pass on the command
     * line (port, bind, mode, leader and replicas or sentinels, logging,
     * passwords); proxy_args stay on the command line.  See
     * it_proxy_conf_path(). */
    bool proxy_config_file;
    /* start no rcproxy even outside direct mode: it_client_port() and
     * it_connect() lead to the leader (tests of the harness itself) */
    bool no_proxy;
    /* > 0: mode quorum.  Start this many (1..IT_MAX_QUORUM_NODES)
     * independent redis-servers (no replication, no leader, no replicas:
     * `replicas` must be 0) and rcproxy with --mode quorum and one --node
     * 127.0.0.1:<port> per node, in node order (proxy_args follow, e.g.
     * "--quorum-w", "1").  Readiness: rcproxy answers a GET of a key that
     * is never written (so R nodes are linked).  Direct mode: clients
     * talk to node 0.  See it_node(). */
    int quorum_nodes;
    /* with quorum_nodes: the nodes run with appendonly yes, appendfsync
     * always (each in its own appenddirname), so a SIGKILLed node
     * restarted with it_restart() comes back with every write it
     * acknowledged; false: a restarted node comes back empty */
    bool quorum_persist;
    /* extra arguments for the second rcproxy (it_start_proxy2) INSTEAD of
     * proxy_args, e.g. a different --instance-id; NULL-terminated; when
     * empty the second rcproxy gets proxy_args */
    const char *proxy2_args[IT_MAX_PROXY_ARGS];
} it_opts;

/* ---- test declaration --------------------------------------------------- */

void it_init(void);
void it_fini(void);
void it_mark_passed(void);
void it_mark_skipped(void);

/* Declare a test with the harness hooks and a timeout in seconds.  The body
 * follows like a function body.  The test counts as passed only if the body
 * returns normally (used to decide whether to print logs at teardown). */
#define IT_TEST(suite, name, secs)                                            \
    static void it_body_##suite##_##name(void);                               \
    Test(suite, name, .init = it_init, .fini = it_fini, .timeout = (secs))    \
    {                                                                         \
        it_body_##suite##_##name();                                           \
        it_check_proxy_exit();                                                \
        it_mark_passed();                                                     \
    }                                                                         \
    static void it_body_##suite##_##name(void)

/* End of every test: stop rcproxy (and the second one, if started) with
 * SIGTERM and assert it exits 0 within 10 s with no sanitizer report in its
 * output (a leak, a use-after-free or UB found during the test fails the
 * test). */
void it_check_proxy_exit(void);

/* Skip the current test (reported as skipped) in direct mode. */
#define IT_SKIP_IF_DIRECT()                                                   \
    do {                                                                      \
        if (it_direct()) {                                                    \
            it_mark_skipped();                                                \
            cr_skip_test("needs rcproxy (RCPROXY_TEST_DIRECT=1)");            \
        }                                                                     \
    } while (0)

/* ---- topology ----------------------------------------------------------- */

/* True when RCPROXY_TEST_DIRECT=1: no proxy, clients talk to the leader. */
bool it_direct(void);

/* Start the topology described by o (NULL: 2 replicas, no passwords) and
 * wait until it is ready: every redis-server answers PING, every replica's
 * link is up and, with the proxy, rcproxy answers and shows every replica
 * in_rotation=yes (unless o->no_rotation_wait).  Asserts on failure. */
void it_start(const it_opts *o);

it_server *it_leader_server(void);
it_server *it_replica(int i);
int it_replica_count(void);
/* Port clients use: rcproxy's, or the leader's (mode quorum: node 0's) in
 * direct mode. */
int it_client_port(void);
pid_t it_proxy_pid(void);
const char *it_tmpdir(void);

/* SIGKILL the server and reap it.  No-op if not running. */
void it_kill(it_server *s);
/* SIGSTOP / SIGCONT the server. */
void it_pause(it_server *s);
void it_resume(it_server *s);
/* Start a killed server again on the same port, with empty data (its RDB
 * file is removed first; a replica gets --replicaof the leader again and
 * full-syncs) and wait until it answers
 * PING; a replica also waits for its link when the leader is running.
 * A quorum node with it_opts.quorum_persist keeps its AOF and answers
 * PONG only once it has loaded it. */
void it_restart(it_server *s);

/* Start a killed server again like it_restart, but wait only until it
 * answers PING (any reply, LOADING included), not for its replication
 * link: for tests that watch a replica sync. */
void it_restart_nowait(it_server *s);

/* Start one more redis-server as a replica of the current leader (with
 * the harness's usual options) and add it to the replicas (index
 * it_replica_count()-1; at most IT_MAX_REPLICAS in all).  wait_sync: wait
 * until its link is up; false: only until it answers PING.  rcproxy is not
 * told (Sentinel finds it; without Sentinel, edit the config file and
 * reload).  Returns the new server. */
it_server *it_add_replica(bool wait_sync);

/* ---- mode quorum nodes (it_opts.quorum_nodes) --------------------------- */

/* Number of quorum nodes (0 outside mode quorum). */
int it_node_count(void);
/* Node i (0 <= i < it_node_count()); works with it_kill, it_restart,
 * it_pause and it_resume.  Asserts on a bad index. */
it_server *it_node(int i);
/* A new direct hiredis connection to node i (AUTH with the backend
 * password), timeout IT_DEFAULT_TIMEOUT_MS.  Asserts on failure; caller
 * frees. */
redisContext *it_node_connect(int i);

/* ---- helper processes (load tools) ------------------------------------- */

/* Path of tool `name` in the build directory, next to rcproxy (e.g.
 * "quorum_check"); static buffer, overwritten by the next call. */
const char *it_build_path(const char *name);
/* Start argv[0] with argv (NULL-terminated) with stdout/stderr in
 * <tmpdir>/<out_name>; at most IT_MAX_TOOLS at a time.  It dies with the
 * test worker and is SIGKILLed at teardown if still running.  Asserts on
 * failure to start; returns the pid. */
pid_t it_spawn_tool(const char *const argv[], const char *out_name);
/* Wait up to timeout_ms for tool pid to exit and reap it.  Returns true
 * with *status (may be NULL) set when it exited; on timeout SIGKILLs and
 * reaps it and returns false. */
bool it_wait_tool(pid_t pid, int timeout_ms, int *status);

/* ---- Redis Sentinel (it_opts.sentinels) -------------------------------- */

int it_sentinel_count(void);
int it_sentinel_port(int i);
/* Port of the master sentinel i names (SENTINEL GET-MASTER-ADDR-BY-NAME),
 * or -1 when it does not answer.  Never asserts. */
int it_sentinel_master_port(int i);
/* True when sentinel i lists replica `port` in SENTINEL REPLICAS; its
 * flags (e.g. "slave,s_down") are copied into flags.  Never asserts. */
bool it_sentinel_replica_flags(int i, int port, char *flags, size_t cap);
/* Wait until every sentinel names the current leader, lists every running
 * replica without s_down/o_down/disconnected flags and knows the other
 * sentinels.  Asserts on timeout, saying what was missing. */
void it_sentinel_wait_synced(int timeout_ms);
/* After the leader was killed (or paused): wait until a majority of the
 * sentinels names another master that is one of the replicas and answers
 * INFO with role:master, then swap the roles in the harness: the leader
 * slot (it_leader_server()) now holds the promoted server and the
 * promoted server's replica slot holds the old leader (is_leader false;
 * it_restart() brings it back as a replica of the new leader).  Pointers
 * taken before keep pointing at the slots, not at the servers.  Returns
 * the leader slot; *old_leader (if not NULL) gets the old leader's new
 * slot.  Asserts on timeout. */
it_server *it_sentinel_wait_failover(int timeout_ms, it_server **old_leader);
/* Sentinel mode, no waiting: when a majority of the sentinels already name a
 * running replica that is a master (they failed over on their own, e.g. a
 * loaded machine made the leader miss down-after-milliseconds), swap the
 * slots as it_sentinel_wait_failover does and return the new leader; NULL
 * while they still name the leader. */
it_server *it_sentinel_adopt_failover(it_server **old_leader);

/* ---- rcproxy config file (it_opts.proxy_config_file) ------------------- */

/* Path of the first rcproxy's config file ("" without proxy_config_file). */
const char *it_proxy_conf_path(void);
/* Append one line (printf format, newline added) to the config file. */
void it_proxy_conf_append(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Rewrite the config file with the current topology: the leader slot and
 * every running replica (after it_sentinel_wait_failover: the promoted
 * leader), keeping the other directives; for a reload (SIGHUP). */
void it_proxy_conf_rewrite(void);
/* Remove every line equal to `line` (without its newline) from the config
 * file; asserts that there was one. */
void it_proxy_conf_remove_line(const char *line);

/* ---- delay relay (it_opts.relay_delay_ms) ------------------------------ */

/* The relay's listening port / pid (0 when there is no relay). */
int it_relay_port(void);
pid_t it_relay_pid(void);
/* on=false: the relay forwards without delay from now on (SIGUSR1, held
 * bytes are released at once); on=true: back to relay_delay_ms (SIGUSR2). */
void it_relay_delay(bool on);

/* ---- a second rcproxy --------------------------------------------------- */

/* Start a second rcproxy in front of the same topology, with the same
 * arguments as the first (its own port, logs rcproxy2.log / rcproxy2.out),
 * and wait until it answers and (unless o->no_rotation_wait) shows every
 * running replica in_rotation=yes (mode quorum: answers a GET with nil;
 * it gets it_opts.proxy2_args when set).  Returns its port.  Proxy mode only.
 * It is stopped and checked at the end of the test like the first one. */
int it_start_proxy2(void);
int it_proxy2_port(void);

/* Send sig to rcproxy and wait up to timeout_ms for it to exit.  Returns
 * true when it exited; *status gets the waitpid status. */
bool it_proxy_signal_wait(int sig, int timeout_ms, int *status);

/* Wait (bounded) until every running replica has applied everything the
 * leader had written when the call started.  Asserts on timeout. */
void it_wait_replication(int timeout_ms);
/* it_wait_replication, then (proxy mode) wait until rcproxy shows the
 * leader status=up and every running replica in_rotation=yes.  Mode
 * quorum: wait until rcproxy (and the second one, if started) answers a
 * GET of a never-written key with nil. */
void it_wait_ready(int timeout_ms);
/* Proxy mode: wait until backend `s` (its backend<i> line, or its node<i>
 * line in mode quorum) shows field=value in INFO rcproxy.  Returns false on
 * timeout.  Direct mode: returns true. */
bool it_wait_backend_field(const it_server *s, const char *field,
                           const char *value, int timeout_ms);
/* Copy backend s's INFO rcproxy field into out (cap bytes).  Returns false
 * if the backend or field is not listed (or the proxy does not answer). */
bool it_backend_field(const it_server *s, const char *field, char *out,
                      size_t cap);

/* ---- clients ------------------------------------------------------------ */

/* Client connection to it_client_port(), authenticated with the proxy
 * password (direct mode: the backend password) when one is configured.
 * Timeout IT_DEFAULT_TIMEOUT_MS.  Asserts on failure; caller frees. */
redisContext *it_connect(void);
/* Same, without AUTH. */
redisContext *it_connect_noauth(void);
/* A cached direct connection to the leader (reconnected if it broke).
 * Owned by the harness; do not free. */
redisContext *it_leader(void);
/* Connect to 127.0.0.1:port, AUTH with password if non-NULL, set the
 * socket timeout.  Returns NULL on any failure; never asserts. */
redisContext *it_try_connect(int port, const char *password, int timeout_ms);
/* Set the read/write timeout of c. */
void it_set_timeout(redisContext *c, int timeout_ms);
/* Write everything queued on c (redisAppendCommand) without reading a reply;
 * asserts that it all went out. */
void it_flush(redisContext *c);

/* ---- commands (hiredis format strings, %s %b %d ...) -------------------- */

/* Run a command; asserts that a reply arrived.  Caller frees the reply. */
redisReply *it_cmd(redisContext *c, const char *fmt, ...);
/* Assert a status reply equal to "OK". */
void it_ok(redisContext *c, const char *fmt, ...);
/* Assert an integer reply; returns it. */
long long it_int(redisContext *c, const char *fmt, ...);
/* Assert an integer reply equal to want. */
void it_expect_int(redisContext *c, long long want, const char *fmt, ...);
/* Assert a bulk string reply equal to want. */
void it_expect_str(redisContext *c, const char *want, const char *fmt, ...);
/* Assert a status reply equal to want. */
void it_expect_status(redisContext *c, const char *want, const char *fmt, ...);
/* Assert a nil reply. */
void it_expect_nil(redisContext *c, const char *fmt, ...);
/* Assert an error reply containing every '|'-separated part of `parts`
 * (e.g. "leader|unavailable").  Returns nothing; the message is logged. */
void it_expect_err(redisContext *c, const char *parts, const char *fmt, ...);

/* True if reply r is an error containing every '|'-separated part. */
bool it_err_has(const redisReply *r, const char *parts);
/* Short human description of a reply, for messages (static buffer). */
const char *it_reply_desc(const redisReply *r);

/* INFO <section> through c as a malloc'd string, or NULL.  Caller frees. */
char *it_try_info(redisContext *c, const char *section);
/* Copy the value of "key:" from an INFO text into out. False if absent. */
bool it_info_value(const char *info, const char *key, char *out, size_t cap);

/* ---- raw sockets -------------------------------------------------------- */

/* Plain TCP connection to 127.0.0.1:port, or -1. */
int it_raw_connect(int port);
/* Write all of buf (bounded by a 10 s send timeout).  False on error. */
bool it_raw_send(int fd, const void *buf, size_t len);
/* Read until EOF, error, cap bytes or timeout_ms.  Returns the bytes read
 * (NUL-terminated in buf, which must hold cap+1); *eof tells whether the
 * peer closed (EOF or reset) before the deadline. */
size_t it_raw_read_all(int fd, char *buf, size_t cap, int timeout_ms,
                       bool *eof);

/* ---- time --------------------------------------------------------------- */

/* Monotonic clock in milliseconds. */
long long it_now_ms(void);
void it_sleep_ms(int ms);
/* Poll pred(arg) every interval_ms until it returns true or timeout_ms
 * passed.  Returns the last result. */
bool it_wait_until(bool (*pred)(void *), void *arg, int timeout_ms,
                   int interval_ms);

#endif
