/* client.h -- client connections: input, the ordered reply queue, output. */
#ifndef PX_CLIENT_H
#define PX_CLIENT_H

#include <stdarg.h>

#include "proxy/proxy.h"

/* Take ownership of an accepted socket.  Returns NULL (and closes fd) when
 * maxclients is reached, after sending Redis's error. */
px_client *px_client_new(px_ctx *ctx, int fd);

/* A new slot at the tail of c's reply queue (from the ctx pool). */
px_slot *px_client_slot(px_client *c, px_slot_kind kind);

/* The reply to slot s has arrived (type = its first byte).  Appends it to the
 * client's output if s is the oldest request, else parks it in s.  A slot
 * whose client has gone is freed. */
void px_slot_deliver(px_ctx *ctx, px_slot *s, const char *bytes, size_t len);
/* Same with an error reply built from fmt (no leading '-'). */
void px_slot_deliver_error(px_ctx *ctx, px_slot *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void px_slot_deliver_verror(px_ctx *ctx, px_slot *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Buffer to write a reply the proxy produces itself, in request order:
 * c->out when nothing is pending, else a new already-answered slot. */
px_buf *px_client_reply(px_client *c);
/* Append unsolicited bytes (pub/sub messages) in order. */
void px_client_push(px_client *c, const char *bytes, size_t len);

/* Release c's pinned link (back to the pool if keep_link and clean) and
 * return c to normal routing. */
void px_client_unpin(px_client *c, int keep_link);

/* Close c once the loop regains control (never frees inside callbacks). */
void px_client_close_async(px_client *c, const char *why);
/* Input was parked (stalled) and every reply is out: parse again. */
void px_client_resume(px_client *c);

/* Loop-turn hooks: resume stalled clients, write outputs, free the closed. */
void px_clients_flush(px_ctx *ctx);
void px_clients_reap(px_ctx *ctx);
/* Periodic: idle timeout and output-buffer soft limits. */
void px_clients_cron(px_ctx *ctx);

/* c's peer (local = 0) or local (1) address as "ip:port", written to buf. */
const char *px_client_addr(const px_client *c, int local, char *buf, size_t len);

/* Mark c as having output to write this loop turn. */
void px_client_mark_dirty(px_client *c);

#endif
