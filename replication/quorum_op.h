/* quorum_op.h -- inside mode quorum: the per-key operations (quorum.c) and
 * the client commands built from them (quorum_cmd.c).
 *
 * A client command is a repl_qcmd holding a copy of its arguments and one
 * repl_qkey result per key.  The command starts a read or a write for each
 * key of its current phase; each finished key calls back (cmd->waiting
 * drops); when none is left the command's step function runs again: it
 * either starts the next phase (a read-modify-write such as INCR reads,
 * then writes) or answers the client and frees the command.
 *
 *   client cmd ──> qcmd ──┬─ key 0: qop read ──┬─ node a  GET / FCALL_RO
 *                         │                    ├─ node b
 *                         │                    └─ (repair: VSET to the stale)
 *                         └─ key 1: qop write ─┬─ node a  FCALL rcp_vset
 *                                              ├─ node b
 *                                              └─ node c  (W acks answer)
 *
 * An operation reports once and may outlive its command (async read repair,
 * the writes still outstanding after W acknowledged): it is freed when its
 * last node answers or fails. */
#ifndef REPL_QUORUM_OP_H
#define REPL_QUORUM_OP_H

#include "proxy/proxy.h"
#include "replication/quorum_ring.h"
#include "replication/quorum_version.h"

struct repl_qbg;

typedef struct repl_quorum {
    px_ctx *ctx;
    repl_ring *ring;
    repl_hlc hlc;
    struct repl_qbg *bg;
    int stopped;                    /* shutting down: nothing new is sent */
    struct repl_qop *waiting;       /* reads short of their R answers, newest first */
    long long tombstone_ttl_ms;
    /* stats for INFO */
    long long reads, writes, read_errors, write_errors;
    long long read_repairs, hints_written, stale_answers;
} repl_quorum;

/* Outcome of one key of a command, filled by its operation. */
typedef struct repl_qkey {
    const char *key;                /* into the command's argument copy */
    size_t klen;
    int failed;                     /* the operation failed: err has the reply */
    char err[512];                  /* an error reply without its leading '-' */
    /* reads */
    int found;                      /* a live value */
    int has_version;                /* a version was seen (live or tombstone) */
    repl_version version;           /* the newest version seen */
    px_buf value;                   /* the live value's bytes */
    long long pttl;                 /* reads with want_ttl: -1 no expiry */
    /* writes */
    int prev_live;                  /* an acknowledging node had a live value before */
    int applied;                    /* an acknowledging node applied it (vexpire: the key existed) */
} repl_qkey;

typedef struct repl_qcmd repl_qcmd;
typedef void repl_qcmd_step(repl_qcmd *cmd);

struct repl_qcmd {
    repl_quorum *q;
    px_slot *slot;                  /* the client's reply slot */
    repl_qcmd_step *step;           /* runs when every key of the phase is done */
    int phase;
    int waiting;                    /* keys of this phase not done yet */
    int argc;
    char **argv;                    /* copies of the client's arguments */
    size_t *argl;
    int nkeys;
    repl_qkey *keys;
    /* parsed options (quorum_cmd.c) */
    int flags;
    long long ttl_ms;               /* absolute PXAT ms, 0 none */
    long long num;                  /* INCRBY amount ... */
    long double fnum;
    px_buf scratch;                 /* a value being built (APPEND, INCR) */
};

/* The kind of versioned write. */
typedef enum {
    REPL_QW_SET = 0,                /* rcp_vset key ver value ttl mode */
    REPL_QW_DEL,                    /* rcp_vdel key ver tombstone-ttl PX */
    REPL_QW_EXPIRE,                 /* rcp_vexpire key ver ttl mode */
} repl_qwrite_kind;

/* TTL modes of a write: expire at an absolute ms time, none, or keep the
 * node's own TTL (SET KEEPTTL). */
typedef enum { REPL_QTTL_NONE = 0, REPL_QTTL_AT, REPL_QTTL_KEEP } repl_qttl_mode;

/* Start reading key k of cmd (the newest of R replies lands in cmd->keys[k];
 * want_ttl: also its PTTL).  cmd->waiting must count k already. */
void repl_q_read(repl_qcmd *cmd, int k, int want_ttl);

/* Start a versioned write of key k.  value only for REPL_QW_SET; at_ms is
 * the absolute expiry for REPL_QTTL_AT.  The version is new from the clock
 * (after every version this command read).  cmd->waiting must count k. */
void repl_q_write(repl_qcmd *cmd, int k, repl_qwrite_kind kind, const char *value, size_t vlen,
                  repl_qttl_mode ttl_mode, long long at_ms);

/* Wall clock in ms (what versions and expiry times are made from). */
long long repl_q_wall_ms(void);

/* One key of cmd is done: counts it and runs cmd->step when it was the last. */
void repl_q_key_done(repl_qcmd *cmd);

/* quorum_cmd.c: build a command for the current request of c, or answer c
 * directly (errors); returns PX_DONE. */
int repl_qcmd_dispatch(repl_quorum *q, px_client *c, const char *buf);

#endif
