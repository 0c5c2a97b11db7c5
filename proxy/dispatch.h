/* dispatch.h -- what happens to one parsed request. */
#ifndef PX_DISPATCH_H
#define PX_DISPATCH_H

#include "proxy/proxy.h"

typedef enum {
    PX_DONE = 0,   /* request consumed (answered, forwarded or refused) */
    PX_STALL = 1,  /* not consumed: it must wait until every earlier reply is out */
} px_dispatch_result;

/* Handle the request just parsed into c->parser; buf is its first byte.
 * Answers proxy-local commands, refuses what cannot work through a proxy,
 * pins the client for transactions, pub/sub and blocking commands, and
 * forwards everything else to the backend the strategy picks. */
px_dispatch_result px_dispatch(px_client *c, const char *buf);

/* Forward the current request of c (bytes as received, or re-encoded if it
 * was inline) on link l with a new slot of the given kind (slot-less when
 * l is a pub/sub link).  Returns its FIFO entry, NULL on a pub/sub link
 * (see px_link_send). */
px_pending *px_forward(px_client *c, const char *buf, px_link *l, px_slot_kind kind, int readonly);

/* Helpers shared with local.c */
int px_arg_eq(const px_client *c, const char *buf, size_t i, const char *lit);
const char *px_arg(const px_client *c, const char *buf, size_t i, size_t *len);

#endif
