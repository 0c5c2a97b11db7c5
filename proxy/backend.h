/* backend.h -- backends and the TCP links to them (the data path).
 *
 * A link carries pipelined requests; its replies are matched in order to the
 * pending FIFO.  A link that fails answers every request outstanding on it:
 * reads are resent to another backend, requests never written get an
 * "unavailable" error and written ones an error saying their outcome is
 * unknown.  Shared links reconnect after backend-retry-interval. */
#ifndef PX_BACKEND_H
#define PX_BACKEND_H

#include "proxy/proxy.h"

px_backend *px_backend_new(px_ctx *ctx, int index, px_role role, const conf_addr *addr);
/* Open the shared links and start health polling. */
void px_backend_start(px_backend *b);
void px_backend_free(px_backend *b);
/* Take b out of service at run time: health polling stops, its links fail
 * (requests in flight answered as on any link failure), and b is kept on
 * ctx->retired until exit because clients may still refer to its links. */
void px_backend_retire(px_backend *b, const char *why);
/* Close every link of b (e.g. its role changed): in-flight requests are
 * answered as on a link failure; shared links reconnect. */
void px_backend_reset_links(px_backend *b, const char *why);
/* Close an idle link (nothing in flight) and let the loop free it. */
void px_link_release_closed(px_link *l);

/* Can b take new requests right now (a shared link up or connecting, and no
 * recent failure)?  reason (may be NULL) gets why not. */
int px_backend_usable(const px_backend *b, const char **reason);

/* The link for writes whose acknowledgement waits for replicas (WAIT blocks
 * the connection it runs on, so those writes get a link of their own and
 * hold up nobody else); a shared link while it is down. */
px_link *px_backend_ack_link(px_backend *b);
/* The shared link of b for a request of the client with this affinity (its
 * id): always the same one while it is open, so one client's requests to b
 * run in the order it sent them even with backend-connections > 1 (as Redis
 * runs one connection's commands); another open one when it is closed; NULL
 * if none is open. */
px_link *px_backend_pick_shared(px_backend *b, uint64_t affinity);

/* A link of b for one client's exclusive use: from the idle pool (kind
 * DEDICATED only) or newly opened.  Never NULL. */
px_link *px_link_acquire(px_backend *b, px_client *owner, px_link_kind kind);
/* Give a dedicated link back (parked in the pool if it is clean and the pool
 * has room, closed otherwise). */
void px_link_release(px_link *l);

/* Queue a client's request bytes on l for slot (NULL only on pub/sub
 * links, whose replies are passed through).  A SELECT is inserted first when
 * l is not in db.  readonly: the request may be resent elsewhere if l
 * fails.  Returns its FIFO entry for the caller to annotate (valid until
 * the next request is queued on l), or NULL on a pub/sub link. */
px_pending *px_link_send(px_link *l, px_slot *slot, const char *bytes, size_t len, int db, int readonly);
/* Queue the proxy's own command (ROLE, WAIT, ...) of the given kind. */
px_pending *px_link_send_raw(px_link *l, const char *bytes, size_t len, px_pending_kind kind);
/* l has bytes to write this loop turn. */
void px_link_mark_dirty(px_link *l);

/* Close l and answer everything outstanding on it (see top).  why is logged
 * and quoted in errors.  Safe inside l's own callbacks: the memory of a
 * dedicated link is freed by the loop later. */
void px_link_fail(px_link *l, const char *why);

/* Write every link with queued bytes (once per loop turn). */
void px_links_flush(px_ctx *ctx);
/* Periodic checks: backend-timeout on links with requests outstanding. */
void px_links_cron(px_ctx *ctx);
/* Free dedicated links closed during this loop turn. */
void px_links_reap(px_ctx *ctx);

#endif
