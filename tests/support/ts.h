/* ts.h -- helpers shared by the unit tests that start real servers or run
 * an ev loop (test_health, test_sentinel, test_quorum_scripts). */
#ifndef TESTS_SUPPORT_TS_H
#define TESTS_SUPPORT_TS_H

struct ev_loop;

/* Monotonic clock in milliseconds. */
long long ts_now_ms(void);

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to 0), -1 on error. */
int ts_free_port(void);

/* Remove dir and the files in it (no subdirectories expected). */
void ts_remove_dir(const char *dir);

typedef int ts_cond_fn(void *arg);

/* Run loop until cond(arg) holds or ms pass; returns whether it held.
 * cond NULL: just run for ms.  Polls every 5 ms. */
int ts_run_until(struct ev_loop *loop, ts_cond_fn *cond, void *arg, int ms);

/* Run loop until no active watcher is left, bounded by ms (an unref'd guard
 * timer).  Returns 1 if it drained, 0 if something still held it. */
int ts_drain_loop(struct ev_loop *loop, int ms);

#endif
