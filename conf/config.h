/* config.h -- rcproxy's configuration: one declarative table of directives.
 *
 * Sources, applied in this order (later wins, repeatable directives append):
 *   1. built-in defaults (the table),
 *   2. the config file, redis.conf style: `directive arg...` per line,
 *      `#` comments, "double" / 'single' quoted arguments with Redis's escapes,
 *   3. command-line `--directive arg...` pairs, as redis-server takes them.
 * Validation of the whole (e.g. quorum w <= n) is a separate pass,
 * conf_validate(), after every source is loaded. */
#ifndef CONF_CONFIG_H
#define CONF_CONFIG_H

#include <stddef.h>

#define CONF_MAX_BACKENDS 64
#define CONF_MAX_BIND 16
#define CONF_ERR_MAX 1024

typedef enum { CONF_MODE_LEADER = 0, CONF_MODE_QUORUM = 1 } conf_mode;
typedef enum { CONF_REPAIR_OFF = 0, CONF_REPAIR_ASYNC = 1, CONF_REPAIR_SYNC = 2 } conf_read_repair;
typedef enum { CONF_LOG_DEBUG = 0, CONF_LOG_VERBOSE, CONF_LOG_NOTICE, CONF_LOG_WARNING } conf_loglevel;

/* write-ack: when a write is acknowledged to the client */
typedef enum { CONF_ACK_ASYNC = 0, CONF_ACK_SEMISYNC, CONF_ACK_SYNC } conf_write_ack;
/* read-consistency: what a session's reads are guaranteed to see */
typedef enum {
    CONF_READ_EVENTUAL = 0, CONF_READ_RYW, CONF_READ_MONOTONIC, CONF_READ_STRONG
} conf_read_consistency;

typedef struct conf_addr {
    char host[256];
    int port;
} conf_addr;

/* client-output-buffer-limit <class> <hard> <soft> <soft-seconds>, as Redis */
typedef struct conf_obuf_limit {
    long long hard_bytes;   /* 0 = no hard limit */
    long long soft_bytes;   /* 0 = no soft limit */
    int soft_seconds;
} conf_obuf_limit;

typedef struct conf {
    /* network */
    char bind[CONF_MAX_BIND][256];      /* `bind 127.0.0.1 ::1` */
    int bind_count;                      /* default: 1 address, 127.0.0.1 */
    int port;                            /* default 6380 */
    int tcp_backlog;                     /* default 511 */
    int tcp_keepalive;                   /* seconds, default 300 */
    int timeout;                         /* client idle timeout seconds, 0 = never */
    int maxclients;                      /* default 10000 */

    /* topology */
    conf_mode mode;                      /* `mode leader|quorum`, default leader */
    conf_addr leader;                    /* `leader host:port`; port 0 = not set */
    conf_addr replicas[CONF_MAX_BACKENDS];  /* `replica host:port`, repeatable */
    int replica_count;
    conf_addr nodes[CONF_MAX_BACKENDS];  /* `node host:port`, repeatable (quorum) */
    int node_count;
    int quorum_n, quorum_w, quorum_r;    /* defaults 3, 2, 2 */
    int quorum_read_all;                 /* `quorum-read-all yes`: reads ask all N, default no */
    conf_read_repair read_repair;        /* `read-repair sync|async|off`, default async */
    int sloppy_quorum;                   /* `sloppy-quorum yes`: stand-ins + hints, default no */
    int tombstone_ttl;                   /* seconds a delete's tombstone lives, default 86400 (1 day) */
    int anti_entropy_rate;               /* keys/s compared by anti-entropy, 0 = off; default 10000 */
    int instance_id;                     /* HLC tie-break id of this rcproxy, -1 = random at start */
    conf_addr sentinels[CONF_MAX_BACKENDS]; /* `sentinel host:port`, repeatable */
    int sentinel_count;
    char sentinel_master[256];           /* `sentinel-master name`: the master Sentinel monitors */
    char sentinel_password[512];         /* AUTH for the sentinels, "" = none */

    /* security */
    char requirepass[512];               /* "" = no AUTH needed */
    char backend_user[256];              /* "" = AUTH <password> only */
    char backend_password[512];          /* "" = backends need no AUTH */

    /* limits */
    long long proto_max_bulk_len;        /* memory, default 512mb */
    long long client_query_buffer_limit; /* memory, default 1gb */
    conf_obuf_limit obuf_normal;         /* default 1gb 0 0 (hard cut-off) */
    conf_obuf_limit obuf_pubsub;         /* default 32mb 8mb 60 */
    int databases;                       /* SELECT range, default 16 */

    /* backends */
    int backend_connections;             /* shared pipelined links per backend, 1..64, default 1 */
    int backend_connect_timeout;         /* ms, default 1000 */
    int backend_timeout;                 /* ms without reply progress before a link is failed, 0 = never; default 5000 */
    int backend_retry_interval;          /* ms between reconnect attempts, default 200 */
    int health_check_interval;           /* ms between INFO polls of each backend, default 200 */

    /* replication guarantees (mode leader) */
    conf_write_ack write_ack;            /* `write-ack async|semisync|sync`, default async */
    int write_ack_timeout;               /* ms WAIT may take, default 1000 */
    conf_read_consistency read_consistency; /* `read-consistency eventual|ryw|monotonic|strong`, default ryw */
    int ryw_wait_timeout;                /* ms a read may wait for a caught-up replica, default 100 */
    long long replica_max_lag;           /* bytes behind the leader before a replica gets no reads, 0 = no limit; default 1mb */

    /* process */
    conf_loglevel loglevel;              /* default notice */
    char logfile[1024];                  /* "" = standard output */
    char pidfile[1024];                  /* "" = none */
    int shutdown_timeout;                /* seconds to finish in-flight requests on SIGTERM, default 10 */

    /* where it came from, for messages and future reloads */
    char config_file[1024];              /* "" = none */
} conf;

/* Fill every field with its table default. */
void conf_init_defaults(conf *c);

/* Load `rcproxy [config-file] [--directive value...]...` (argv[0] is the
 * program name; --help/--version are handled by main before this).  Returns 0,
 * or -1 with a message in err naming the file and line (Redis style:
 * "*** FATAL CONFIG FILE ERROR (rcproxy) ***\nReading the configuration file,
 * at line 3\n>>> 'port 99999'\nargument must be between 0 and 65535 inclusive")
 * or the offending command-line argument.  Does not call conf_validate. */
int conf_load_args(conf *c, int argc, char **argv, char *err, size_t errlen);

/* Apply the text of a config file (for tests and reload); name is used in
 * messages.  Returns 0 or -1 with err set. */
int conf_load_string(conf *c, const char *text, const char *name, char *err, size_t errlen);

/* Check cross-directive rules (leader set in mode leader, nodes in quorum
 * mode, 1 <= w,r <= n <= node_count, ...).  Returns 0, or -1 with err set.
 * Warnings (w + r <= n) are written to warn (may be empty string). */
int conf_validate(const conf *c, char *err, size_t errlen, char *warn, size_t warnlen);

/* Parse "host:port" / "[v6]:port".  Returns 0 or -1. */
int conf_parse_addr(const char *s, conf_addr *out);

/* Name of a loglevel / mode, for INFO and messages. */
const char *conf_loglevel_name(conf_loglevel l);
const char *conf_mode_name(conf_mode m);
const char *conf_write_ack_name(conf_write_ack a);
const char *conf_read_consistency_name(conf_read_consistency r);
/* Parse a level name (case-insensitive); -1 if unknown. */
int conf_write_ack_parse(const char *s, size_t len);
int conf_read_consistency_parse(const char *s, size_t len);

#endif
