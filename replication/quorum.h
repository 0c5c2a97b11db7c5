/* quorum.h -- mode quorum: rcproxy as the coordinator of leaderless
 * replication over independent Redis nodes (Dynamo style).
 *
 * Every node is a px_backend with its usual pipelined links.  A client
 * command becomes one operation per key: a write is sent to the key's N
 * nodes (its preference list on the ring, or healthy stand-ins with hints
 * under sloppy quorum) as a versioned compare-and-set (FCALL rcp_vset...)
 * and answered after W acknowledgements; a read asks R nodes, answers with
 * the newest version among them and repairs the nodes that answered older.
 * Replies are matched on the links as PX_PEND_QUORUM entries and come back
 * here (repl_quorum_on_reply / repl_quorum_on_fail), never to a slot.
 * Background anti-entropy and hint hand-off live in quorum_bg.c.
 * docs/quorum.md describes the semantics clients see. */
#ifndef REPL_QUORUM_H
#define REPL_QUORUM_H

#include "proxy/dispatch.h"
#include "proxy/proxy.h"

extern const px_strategy repl_quorum_strategy;

/* Build the ring over ctx->backends (the `node` lines, in order), the
 * version clock and the background repair.  Returns 0, or -1 with err. */
int repl_quorum_init(px_ctx *ctx, char *err, size_t errlen);
/* Start the background repair (after the backends are started). */
void repl_quorum_start(px_ctx *ctx);
/* From now on nothing new is sent to nodes (shutdown: operations still in
 * flight complete as failures when their links close). */
void repl_quorum_stop(px_ctx *ctx);
/* Free what repl_quorum_init made (after every link is closed). */
void repl_quorum_free(px_ctx *ctx);

/* A request of c in mode quorum that is not proxy-local: run it, or answer
 * the error for an unsupported command or a reserved key. */
px_dispatch_result repl_quorum_dispatch(px_client *c, const char *buf);

/* A new link to a node: queue what must precede every request on it (the
 * function library).  Called right after AUTH is queued. */
void repl_quorum_link_prepare(px_link *l);

/* A PX_PEND_QUORUM entry of l got its reply (len bytes of one RESP value). */
void repl_quorum_on_reply(px_link *l, const px_pending *p, const char *bytes, size_t len);
/* A PX_PEND_QUORUM entry of l will get no reply: l failed (why). */
void repl_quorum_on_fail(px_link *l, const px_pending *p, const char *why);

/* Periodic (server cron): reads waiting too long ask one more node. */
void repl_quorum_cron(px_ctx *ctx);

/* The quorum lines of INFO's rcproxy section. */
void repl_quorum_info(px_ctx *ctx, px_buf *out);

#endif
