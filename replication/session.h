/* session.h -- session guarantees in mode leader: read-your-writes,
 * monotonic reads, tokens across connections, and write acknowledgement
 * levels, all built on Redis replication offsets.
 *
 * Offsets come from ROLE, pipelined by the proxy itself:
 *   - after writes on a leader link, one ROLE per loop turn: its reply is
 *     the leader's offset after those writes (an upper bound of each write's
 *     own offset, which is what read-your-writes needs);
 *   - before a read on a replica whose known offset is not yet far enough,
 *     one ROLE per loop turn: the read runs after it on the same link, so if
 *     the ROLE reports >= the session's offset the read saw the write ("the
 *     check travels with the read"); otherwise the read is parked and tried
 *     again until ryw-wait-timeout, then served by the leader;
 *   - after reads of a monotonic session: the ROLE after the read bounds the
 *     state the read saw; later reads must be at or past it.
 * Consistent prefix needs nothing: every replica applies the leader's single
 * ordered stream, so a replica that has write B has every write before it. */
#ifndef REPL_SESSION_H
#define REPL_SESSION_H

#include "proxy/proxy.h"

/* Levels from the config for a new client. */
void repl_session_init(px_client *c);

/* Send a read-only request (bytes) for slot s of c to the backend its
 * consistency level allows, excluding avoid (may be NULL).  first_sent is
 * when the read was first tried (0: now), tries how often it was resent.
 * Returns 0, or -1 when nothing can serve it (the caller answers). */
int repl_session_send_read(px_ctx *ctx, px_client *c, px_slot *s, const char *bytes, size_t len,
                           int db, px_backend *avoid, double first_sent, int tries);

/* c queued a write (entry p) on shared leader link l: track its offset and
 * hold its reply for WAIT when c's write-ack level asks for it. */
void repl_session_wrote(px_client *c, px_link *l, px_pending *p);
/* c's write on a dedicated link (EXEC, blocking command) was answered. */
void repl_session_wrote_elsewhere(px_client *c);

/* Link hooks (backend.c). */
/* Before writing l: queue the ROLE / WAIT its requests asked for. */
void repl_session_flush_link(px_link *l);
/* A read with check_offset came back: true if the ROLE before it reported
 * a replica far enough (the reply may be delivered). */
int repl_session_read_fresh(const px_link *l, const px_pending *p);
/* Its check failed, or nothing could serve it: park it and try again
 * every few ms (on the leader after ryw-wait-timeout; failed with an error
 * after backend-connect-timeout without any backend).  req is copied. */
void repl_session_park_read(px_ctx *ctx, px_slot *s, const char *req, size_t len, int db,
                             double first_sent);
void repl_session_on_role(px_link *l, const px_pending *p, const char *reply, size_t len);
/* A held write reply arrived: keep it until the WAIT after it answers. */
void repl_session_hold(px_link *l, px_slot *s, const char *reply, size_t len, int need);
void repl_session_on_wait(px_link *l, const px_pending *p, const char *reply, size_t len);
/* l failed: release held writes with an error saying what is known. */
void repl_session_link_failed(px_link *l);

/* RCPROXY TOKEN: writes the token of c's last write into out and returns 1,
 * or returns 0 when that write's offset is not known yet (the caller sends a
 * ROLE to learn it).  RCPROXY AFTER: returns 0, or -1 for a bad token. */
int repl_session_token(px_client *c, char *out, size_t outlen);
int repl_session_after(px_client *c, const char *tok, size_t len);

/* Parse a ROLE reply: the offset of a master or replica.  0 or -1. */
int repl_parse_role_offset(const char *reply, size_t len, long long *offset);

/* Free parked reads (shutdown). */
void repl_session_free_parked(px_ctx *ctx);

#endif
