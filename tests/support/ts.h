/* ts.h -- helpers shared by the unit tests that start real servers or run
 * an ev loop (test_health, test_sentinel, test_quorum_scripts,
 * test_quorum_bg).
 *
 * None of them asserts: each returns a value the test asserts on, so the
 * failure message names the test's own situation.  Processes are started
 * on 127.0.0.1 only and die with the test worker (PR_SET_PDEATHSIG). */
#ifndef TESTS_SUPPORT_TS_H
#define TESTS_SUPPORT_TS_H

#include <stddef.h>
#include <sys/types.h>

struct ev_loop;
struct redisContext;

/* Monotonic clock in milliseconds. */
long long ts_now_ms(void);

/* Wall clock in milliseconds since the epoch: what Redis compares absolute
 * times (PXAT, the quorum scripts' expiry arguments) with. */
long long ts_wall_ms(void);

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to 0), -1 on error. */
int ts_free_port(void);

/* Remove dir and the files in it (no subdirectories expected). */
void ts_remove_dir(const char *dir);

/* Remove every /tmp/<prefix>-<pid>-* directory whose <pid> no longer
 * exists: the temp dir of a test worker that was killed (criterion's
 * timeout) before its fini ran.  Directories of live processes, and names
 * that do not have that exact shape, are left alone. */
void ts_remove_stale_dirs(const char *prefix);

/* Create a fresh directory /tmp/<prefix>-<pid>-XXXXXX (mkdtemp) for this
 * process and write its path into buf (cap bytes); first removes the stale
 * ones of the same prefix (ts_remove_stale_dirs).  Returns 0, or -1 (buf
 * then holds "") when the path does not fit or mkdtemp fails.  The caller
 * removes it with ts_remove_dir. */
int ts_make_tmpdir(char *buf, size_t cap, const char *prefix);

/* fork + exec argv[0] (PATH lookup) with argv, NULL-terminated.  The child
 * gets stdin/stdout/stderr on /dev/null and PR_SET_PDEATHSIG = SIGKILL, so
 * it cannot outlive the test process.  Returns the child's pid, -1 when
 * fork fails; an exec failure shows as the child exiting with 127.  The
 * caller owns the pid: ts_kill it. */
pid_t ts_spawn(const char *const *argv);

/* Start redis-server on 127.0.0.1:port with no persistence (--save ""
 * --appendonly no), its log at <dir>/redis-<port>.log, its working dir and
 * dump file in dir, --repl-diskless-sync-delay 0, and --requirepass
 * password when password is not NULL; then extra_args (NULL-terminated, at
 * most 16, may be NULL).  Does not wait for it: see ts_connect_retry.
 * Returns the pid as ts_spawn does, -1 also when extra_args is too long. */
pid_t ts_spawn_redis(int port, const char *dir, const char *password,
                     const char *const *extra_args);

/* One blocking hiredis connection to 127.0.0.1:port with ms as both the
 * connect and the reply timeout, after AUTH password when password is not
 * NULL (only a lost connection fails it: an error answer to AUTH, e.g. "no
 * password is set", is ignored).  Returns the context, NULL on failure;
 * the caller redisFree()s it. */
struct redisContext *ts_connect(int port, const char *password, int ms);

/* Wait until the server on port answers PING with PONG (after AUTH
 * password when not NULL), retrying every 20 ms for at most ms (each try
 * bounded by 500 ms).  When pid is not NULL and *pid > 0, a process that
 * exits meanwhile is reaped, *pid set to 0 and NULL returned at once.
 * Returns the connected context with a 10 s reply timeout (the caller
 * redisFree()s it), NULL when it never answered. */
struct redisContext *ts_connect_retry(pid_t *pid, int port, const char *password, int ms);

/* Kill *pid with SIGKILL (a SIGSTOPped process dies too, without running
 * again), reap it and set *pid to 0.  Nothing when *pid <= 0: safe to call
 * twice. */
void ts_kill(pid_t *pid);

/* A redis-server a test started, with a blocking test-side client on it. */
typedef struct ts_redis {
    pid_t pid;              /* 0: not running */
    int port;               /* kept by ts_redis_stop, for a restart */
    struct redisContext *c; /* NULL while stopped */
} ts_redis;

/* Start redis-server for s (ts_spawn_redis with dir, password and
 * extra_args) on s->port, or on a free port picked now (ts_free_port) when
 * s->port <= 0, and connect s->c (ts_connect_retry with password, at most
 * 10 s).  Returns 0 when it answers; -1 when no port was free, the process
 * could not start, exited or never answered: s->c is NULL then, and a
 * process still running stays in s->pid for ts_redis_stop. */
int ts_redis_start(ts_redis *s, const char *dir, const char *password,
                   const char *const *extra_args);

/* Free s->c and ts_kill s->pid; s->port stays, for ts_redis_start to
 * restart the server (empty) on it.  Safe on a stopped one. */
void ts_redis_stop(ts_redis *s);

/* A quorum version in its 32-char text form, NUL-terminated in s: 16 hex
 * digits of ms, 8 of counter, 8 of node (replication/quorum_version.h's
 * format, written here independently of its codec). */
typedef struct {
    char s[33];
} ts_qver;

ts_qver ts_qver_of(unsigned long long ms, unsigned counter, unsigned node);

/* LeakSanitizer's recoverable leak check: nonzero when leaks were found
 * (reported on stderr); always 0 in builds without AddressSanitizer.  For
 * the last line of a test, since criterion ignores LSan's exit report. */
int ts_leak_check(void);

typedef int ts_cond_fn(void *arg);

/* Run loop until cond(arg) holds or ms pass; returns whether it held.
 * cond NULL: just run for ms.  Polls every 5 ms. */
int ts_run_until(struct ev_loop *loop, ts_cond_fn *cond, void *arg, int ms);

/* Run loop until no active watcher is left, bounded by ms (an unref'd guard
 * timer).  Returns 1 if it drained, 0 if something still held it. */
int ts_drain_loop(struct ev_loop *loop, int ms);

#endif
