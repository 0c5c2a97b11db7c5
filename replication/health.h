/* health.h -- control-plane links to backends: periodic health polls and
 * one-shot commands, over hiredis's async API on the proxy's libev loop.
 *
 * The data path never uses these links: they carry `INFO replication` /
 * `INFO persistence` polls and start-up commands such as COMMAND. */
#ifndef REPL_HEALTH_H
#define REPL_HEALTH_H

#include <stddef.h>

struct ev_loop;
struct redisReply;

typedef enum { REPL_ROLE_UNKNOWN = 0, REPL_ROLE_MASTER, REPL_ROLE_REPLICA } repl_role;

/* What the last poll of one backend said. */
typedef struct repl_health_state {
    int reachable;           /* the last poll got an answer */
    int loading;             /* INFO persistence loading:1 */
    int async_loading;       /* async_loading:1 (Redis 7 repl-diskless-load swapdb) */
    repl_role role;          /* role:master / role:slave */
    int link_up;             /* replica: master_link_status:up */
    int sync_in_progress;    /* replica: master_sync_in_progress:1 */
    long long repl_offset;   /* master: master_repl_offset; replica: slave_repl_offset (-1 unknown) */
    long long master_repl_offset; /* master_repl_offset as the node itself reports it */
    char master_replid[41];  /* master_replid */
    char master_replid2[41]; /* master_replid2: the history before the last promotion */
    long long second_repl_offset; /* offsets up to this are shared with master_replid2 (-1 none) */
    char master_host[256];   /* replica: master_host */
    int master_port;         /* replica: master_port */
    int connected_slaves;    /* master: connected_slaves */
    long long last_ok_ms;    /* monotonic ms of the last successful poll, 0 = never */
    long long polls;         /* polls answered */
    long long failures;      /* polls failed (connect error, timeout, error reply) */
    char last_error[128];    /* why the last failed poll failed */
} repl_health_state;

typedef struct repl_health repl_health;

/* Called after every poll outcome (answer or failure), on the loop thread. */
typedef void repl_health_cb(repl_health *h, const repl_health_state *st, void *arg);

/* Start polling host:port every interval_ms (first poll at once).  user may
 * be "" or NULL (then `AUTH password`), password "" or NULL for none.  A poll
 * that has no answer after timeout_ms counts as a failure and the link is
 * reconnected.  Never NULL (aborts on OOM); connection errors are reported
 * through the callback, not the return value. */
repl_health *repl_health_new(struct ev_loop *loop, const char *host, int port,
                             const char *user, const char *password,
                             int interval_ms, int timeout_ms,
                             repl_health_cb *cb, void *arg);

/* Stop polling and free; safe to call from inside its own callback. */
void repl_health_free(repl_health *h);

const repl_health_state *repl_health_get(const repl_health *h);

/* Parse the text of an INFO reply into st (fields not present are left as
 * they are).  Pure function, for the poller and for unit tests. */
void repl_health_parse_info(const char *text, size_t len, repl_health_state *st);

/* Monotonic clock in milliseconds. */
long long repl_now_ms(void);

/* One-shot command on a fresh control link: connect, AUTH if needed, send
 * argv (argc args), call cb with the reply (NULL on connect failure, timeout
 * or error, with a reason in err), then disconnect.  The reply is freed after
 * cb returns.  Returns 0 if the attempt was started. */
typedef void repl_oneshot_cb(const struct redisReply *reply, const char *err, void *arg);
int repl_oneshot_command(struct ev_loop *loop, const char *host, int port,
                         const char *user, const char *password, int timeout_ms,
                         int argc, const char **argv, repl_oneshot_cb *cb, void *arg);

#endif
