/* proxy.h -- the core types of the proxy process and how they hang together.
 *
 *   px_ctx ─┬─ clients (px_client)      one per accepted connection
 *           ├─ backends (px_backend)    one per configured Redis server
 *           │     ├─ shared links       pipelined, many clients multiplexed
 *           │     └─ dedicated links    pinned to one client (MULTI, SUBSCRIBE, BLPOP)
 *           └─ slot pool                 one px_slot per request awaiting its reply
 *
 * A request travels: client->in  --parse-->  dispatch  --bytes-->  link->out
 * and its reply:     link->in  --scan-->  link FIFO entry  -->  its px_slot
 *                    -->  client->out, in the order of the client's requests.
 *
 * Every reply to a client goes through a slot queue (head = oldest request),
 * so replies stay in request order even when requests went to different
 * backends: a reply arriving for the head slot is appended to client->out at
 * once; one arriving early is parked in its slot until the slots before it
 * are answered.  Single-threaded: everything runs on ctx->loop. */
#ifndef PX_PROXY_H
#define PX_PROXY_H

#include <ev.h>
#include <stdint.h>

#include "conf/config.h"
#include "proxy/buf.h"
#include "proxy/cmdtable.h"
#include "replication/health.h"
#include "resp/resp_request.h"
#include "resp/resp_scanner.h"

typedef struct px_ctx px_ctx;
typedef struct px_client px_client;
typedef struct px_backend px_backend;
typedef struct px_link px_link;
typedef struct px_slot px_slot;

/* What to do with a reply when it reaches its slot. */
typedef enum {
    PX_SLOT_PLAIN = 0,     /* forward as it is */
    PX_SLOT_INFO,          /* the leader's INFO: append the "# rcproxy" section */
    PX_SLOT_UNPIN,         /* EXEC/DISCARD/UNWATCH: the transaction link is released after it */
    PX_SLOT_TOKEN,         /* RCPROXY TOKEN: a ROLE reply turned into the token */
} px_slot_kind;

/* One request of a client awaiting its reply. */
struct px_slot {
    px_slot *next;          /* next request of the same client */
    px_client *client;      /* NULL once the client has gone: the reply is dropped */
    px_buf reply;           /* the reply, when it arrived before the slots ahead of it */
    uint8_t done;           /* reply is in `reply` */
    uint8_t kind;           /* px_slot_kind */
    uint8_t need;           /* write-ack: replicas that must confirm a held write */
    uint8_t wrote_elsewhere; /* a write on a dedicated link: sessions learn its offset once answered */
};

/* One request in flight on a link, in send order. */
typedef enum {
    PX_PEND_REQUEST = 0,    /* a client's request: the reply goes to its slot */
    PX_PEND_CONTROL,        /* the proxy's AUTH/SELECT: reply checked, dropped */
    PX_PEND_ROLE,           /* the proxy's ROLE: the node's replication offset */
    PX_PEND_WAIT,           /* the proxy's WAIT: releases writes held for write-ack */
    PX_PEND_QUORUM,         /* mode quorum: the reply goes to operation `qop`, node `qnode` */
} px_pending_kind;

typedef struct px_pending {
    px_slot *slot;          /* PX_PEND_REQUEST only */
    uint64_t start;         /* absolute offset of its bytes in the link's output stream */
    size_t len;             /* its length in bytes */
    int db;                 /* db the request must run in (for a retry elsewhere) */
    uint8_t kind;           /* px_pending_kind */
    uint8_t readonly;       /* safe to retry on another backend */
    uint8_t tries;          /* times it was resent after a link failure */
    uint8_t hold;           /* write-ack: reply held until the next WAIT answers */
    uint8_t need;           /* write-ack: replicas that must confirm */
    long long check_offset; /* read: served only if the ROLE before it reported >= this (0: no check) */
    uint64_t seq;           /* ROLE: its number on the link; WAIT: replicas asked */
    uint64_t global_seq;    /* ROLE on a leader link: its number among all leader ROLEs */
    double first_sent;      /* read: when it was first sent (ryw-wait-timeout) */
    struct repl_qop *qop;   /* PX_PEND_QUORUM: the operation waiting for the reply */
    uint16_t qnode;         /* PX_PEND_QUORUM: which of its nodes this is */
} px_pending;

typedef enum {
    PX_LINK_CONNECTING = 0,
    PX_LINK_UP,
    PX_LINK_CLOSED,
} px_link_state;

typedef enum {
    PX_LINK_SHARED = 0,     /* multiplexed, FIFO-matched replies */
    PX_LINK_DEDICATED,      /* one client: transactions and blocking commands */
    PX_LINK_PUBSUB,         /* one client, every reply passed straight through */
} px_link_kind;

/* A TCP connection to a backend.  Output keeps the bytes of requests in
 * flight until their replies arrive ([acked .. sent) below), so a read whose
 * link breaks can be resent elsewhere:
 *
 *   out.data: | acked, reclaimable | sent, awaiting reply | not sent yet |
 *             0                  out.rpos              sent_pos      out.len
 */
struct px_link {
    px_ctx *ctx;
    px_backend *backend;
    px_link_kind kind;
    px_link_state state;
    int fd;
    ev_io rio, wio;
    ev_timer connect_timer;
    px_buf out;
    size_t sent_pos;        /* out.data[sent_pos..len) not written yet */
    uint64_t out_base;      /* absolute stream offset of out.data[0] */
    px_buf in;
    resp_scanner scan;
    px_pending *fifo;       /* ring buffer of requests awaiting replies */
    size_t fifo_head, fifo_count, fifo_cap;
    int db;                 /* db selected once every queued command has run */
    px_client *owner;       /* dedicated/pubsub links: the pinned client */
    double last_progress;   /* ev_now when the link last read bytes or became busy */
    px_link *next_dirty;    /* on ctx->dirty_links while it has bytes to send */
    uint8_t dirty;
    px_link *next_idle;     /* on backend->idle while parked in the dedicated pool */
    /* replication offsets seen through this link (session guarantees) */
    uint64_t role_sent, role_done; /* ROLEs queued / answered */
    long long role_offset;  /* offset of the last answered ROLE, -1 none */
    uint64_t role_turn;     /* loop turn of the last queued ROLE */
    uint8_t role_wanted;    /* queue a ROLE when flushing (after writes or monotonic reads) */
    uint8_t wait_need;      /* queue WAIT <wait_need> when flushing (write-ack), 0 none */
    uint8_t wait_inflight;  /* a WAIT is outstanding: the next one waits for its reply */
    px_slot **held;         /* write replies waiting for the next WAIT reply, in order */
    size_t held_head, held_count, held_cap;
};

typedef enum { PX_ROLE_LEADER = 0, PX_ROLE_REPLICA = 1, PX_ROLE_NODE = 2 } px_role;

struct px_backend {
    px_ctx *ctx;
    int index;
    px_role role;
    conf_addr addr;
    char name[300];          /* "host:port" */
    px_link **shared;        /* backend-connections shared links, then the write-ack link */
    int nshared;             /* shared links for ordinary requests */
    int nlinks;              /* nshared + 1: shared[nshared] carries writes that WAIT (write-ack);
                              * nshared for a quorum node (no WAIT there) */
    px_link *idle;           /* parked dedicated links */
    int nidle;
    repl_health *health;
    repl_health_state hs;    /* copy of the last poll */
    int rotation_logged;     /* replica: in read rotation at the last log line (the live
                              * answer is repl_leader_replica_ok) */
    long long known_offset;  /* latest replication offset seen (ROLE replies, health polls), -1 none */
    int link_failed;         /* the last data-link attempt failed (connect error/reset) */
    int failover_fenced;     /* leader: Sentinel is failing it over, it takes no writes */
    long long link_down_ms;  /* when a data link last failed (repl_now_ms), 0 never */
    char link_error[160];
    ev_timer retry_timer;    /* reconnect of failed shared links */
    int retired;             /* removed from the topology: links closed, kept until exit */
    px_backend *next_retired;
    long long requests, errors, retries;
    long long writes;        /* write(2) calls on its links that sent bytes (requests/writes: batching) */
};

/* Connection state a request can pin the client in. */
typedef enum {
    PX_PIN_NONE = 0,
    PX_PIN_TX,               /* MULTI/WATCH: all requests go to one leader link */
    PX_PIN_BLOCK,            /* one blocking command in flight on its own link */
    PX_PIN_PUBSUB,           /* subscribed: own link, replies passed through */
} px_pin;

struct px_client {
    px_ctx *ctx;
    uint64_t id;
    int fd;
    ev_io rio, wio;
    px_buf in;
    resp_req_parser *parser;  /* while the client is active; freed with its buffers when idle */
    px_buf out;
    px_slot *head, *tail;    /* requests awaiting replies, oldest first */
    uint32_t pending;
    int db;
    uint8_t authenticated;
    uint8_t multi;           /* inside MULTI (queued on the pinned link) */
    uint8_t watching;
    uint8_t stalled;         /* input parked until every pending reply is out */
    uint8_t close_after_reply; /* QUIT, protocol error: close once out is flushed */
    uint8_t closing;         /* to be freed by the loop (never inside a callback chain) */
    uint8_t reading;         /* rio is active */
    uint8_t dirty;
    px_pin pin;
    px_link *pinned;
    int read_backend;        /* replica this client reads from while it stays healthy, -1 none */
    /* session guarantees (replication/session.c) */
    uint8_t write_ack;       /* conf_write_ack */
    uint8_t consistency;     /* conf_read_consistency */
    long long min_offset;    /* reads must see at least this leader offset (own writes, reads) */
    long long after_offset;  /* ... and this one, from RCPROXY AFTER (honoured at every level) */
    px_link *w_link;         /* last write not yet resolved to an offset: ROLE #w_seq on w_link tells */
    uint64_t w_seq;
    uint64_t w_global;       /* ... or any leader ROLE numbered >= w_global (writes on own links) */
    px_link *r_link;         /* monotonic: bound of the last read, ROLE #r_seq on r_link tells */
    uint64_t r_seq;
    char *name;              /* CLIENT SETNAME */
    char *lib_name, *lib_ver;
    double created, last_active;
    double obuf_soft_since;  /* when the soft output limit was first exceeded, 0 = not */
    long long commands;
    const char *last_cmd;
    px_client *prev, *next;  /* ctx->clients */
    px_client *next_dirty;
    px_client *next_closing;
};

/* The replication strategy's hooks (mode leader now, quorum later).  Reads
 * are routed by the session layer (replication/session.c). */
typedef struct px_strategy {
    const char *name;
    /* Backend for writes and commands of unknown effect; NULL if none is up. */
    px_backend *(*route_write)(px_ctx *ctx, px_client *c);
    /* A health poll of b produced st. */
    void (*on_health)(px_ctx *ctx, px_backend *b, const repl_health_state *st);
} px_strategy;

struct px_ctx {
    struct ev_loop *loop;
    conf cfg;
    px_cmdtable *commands;
    const px_strategy *strategy;
    int listen_fds[CONF_MAX_BIND];
    ev_io listen_io[CONF_MAX_BIND];
    int nlisten;
    px_backend **backends;   /* [0] is the leader in mode leader */
    int nbackends;
    px_backend *retired;     /* backends removed at run time (clients may still point at their links) */
    struct repl_sentinel *sentinel;  /* following Sentinel, or NULL */
    struct repl_quorum *quorum;      /* mode quorum state, or NULL */
    int argc;                /* the command line, for reloading the config */
    char **argv;
    ev_signal sighup;
    unsigned next_replica;   /* round robin of new readers over replicas */
    px_client *clients;
    px_client *dirty_clients, *dirty_clients_tail;  /* FIFO */
    px_client *closing_clients;
    px_link *dirty_links;
    px_link *dead_links;     /* closed dedicated links, freed by the loop */
    px_slot *free_slots;
    size_t nfree_slots;
    ev_prepare flush_watcher;
    ev_timer cron;
    ev_signal sigterm, sigint, sigpipe_ignored;
    uint64_t next_client_id;
    double started;
    int shutting_down;
    double shutdown_deadline;
    char leader_version[32];
    int commands_loaded;
    uint64_t turn;           /* loop turns, for batching ROLEs */
    uint64_t role_global_sent, role_global_done; /* ROLEs on leader links */
    long long role_global_offset;                /* highest offset they reported */
    struct repl_parked *parked;                  /* reads waiting for a replica to catch up */
    ev_timer parked_timer;
    /* stats */
    long long connected_clients, total_connections, rejected_connections;
    long long total_commands, protocol_errors;
};

#endif
