/* cmdtable.h -- the command table: what each Redis command does, as far as
 * routing is concerned.
 *
 * A built-in table covers Redis 7's commands so rcproxy can route before any
 * backend answers; px_cmdtable_load_reply() then merges the leader's own
 * COMMAND reply (flags and key positions; new commands are added).  Lookup is
 * case-insensitive on the raw argument bytes and never allocates. */
#ifndef PX_CMDTABLE_H
#define PX_CMDTABLE_H

#include <stddef.h>
#include <stdint.h>

struct redisReply;

/* Flags, from Redis's COMMAND flags plus rcproxy's own routing classes. */
enum {
    PX_CMD_WRITE     = 1u << 0,   /* "write" */
    PX_CMD_READONLY  = 1u << 1,   /* "readonly": may go to a replica */
    PX_CMD_BLOCKING  = 1u << 2,   /* "blocking": may block the connection */
    PX_CMD_PUBSUB    = 1u << 3,   /* "pubsub" */
    PX_CMD_ADMIN     = 1u << 4,   /* "admin" */
    PX_CMD_NOSCRIPT  = 1u << 5,   /* "noscript" */
    PX_CMD_LOADING   = 1u << 6,   /* "loading": allowed while loading */
    PX_CMD_STALE     = 1u << 7,   /* "stale" */
    PX_CMD_FAST      = 1u << 8,   /* "fast" */
    PX_CMD_MOVABLEKEYS = 1u << 9, /* "movablekeys" */
};

/* Commands the proxy itself treats specially (answers, pins, refuses).
 * Every other command is PX_ID_NONE and is routed by its flags. */
typedef enum px_cmd_id {
    PX_ID_NONE = 0,
    /* answered by the proxy */
    PX_ID_PING, PX_ID_ECHO, PX_ID_QUIT, PX_ID_RESET, PX_ID_SELECT, PX_ID_AUTH,
    PX_ID_HELLO, PX_ID_CLIENT, PX_ID_INFO, PX_ID_RCPROXY,
    /* transactions: pin the client to one leader link */
    PX_ID_MULTI, PX_ID_EXEC, PX_ID_DISCARD, PX_ID_WATCH, PX_ID_UNWATCH,
    /* pub/sub: the client gets its own link */
    PX_ID_SUBSCRIBE, PX_ID_PSUBSCRIBE, PX_ID_SSUBSCRIBE,
    PX_ID_UNSUBSCRIBE, PX_ID_PUNSUBSCRIBE, PX_ID_SUNSUBSCRIBE,
    /* blocking on its own link */
    PX_ID_WAIT, PX_ID_XREAD, PX_ID_XREADGROUP,
    /* cannot work through a proxy: refused with an error naming rcproxy */
    PX_ID_SHUTDOWN, PX_ID_SYNC, PX_ID_PSYNC, PX_ID_REPLICAOF, PX_ID_SLAVEOF,
    PX_ID_MONITOR, PX_ID_REPLCONF, PX_ID_FAILOVER, PX_ID_DEBUG,
    PX_ID__COUNT
} px_cmd_id;

typedef struct px_command {
    const char *name;     /* lower case, NUL-terminated; owned by the table */
    int arity;            /* Redis's arity: n exact, -n at least n (incl. the name) */
    uint32_t flags;       /* PX_CMD_* */
    int first_key;        /* Redis's key spec: 0 = no keys */
    int last_key;         /* -1 = last argument, -2 = one before last, ... */
    int key_step;
    px_cmd_id id;
} px_command;

typedef struct px_cmdtable px_cmdtable;

/* The built-in table (Redis 7.0's commands). Never NULL (aborts on OOM). */
px_cmdtable *px_cmdtable_new_builtin(void);
void px_cmdtable_free(px_cmdtable *t);

/* Merge a COMMAND reply (Redis 6 and 7 formats: each entry is an array
 * [name, arity, [flags...], first, last, step, ...]).  Known commands get the
 * reply's arity/flags/keys (their id is kept); unknown ones are added.
 * Returns the number of commands merged, or -1 if r is not a COMMAND reply
 * (the table is then unchanged). */
int px_cmdtable_load_reply(px_cmdtable *t, const struct redisReply *r);

/* Find a command by its raw name bytes (any case). NULL if unknown. */
const px_command *px_cmdtable_lookup(const px_cmdtable *t, const char *name, size_t len);

/* Number of commands in the table. */
size_t px_cmdtable_count(const px_cmdtable *t);

#endif
