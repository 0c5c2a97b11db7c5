/* local.h -- commands rcproxy answers itself: PING, ECHO, QUIT, RESET,
 * SELECT, AUTH, HELLO, CLIENT, INFO (its own section), RCPROXY, and the
 * UNSUBSCRIBE family outside subscribed mode. */
#ifndef PX_LOCAL_H
#define PX_LOCAL_H

#include "proxy/dispatch.h"

/* Run local command `id` for the request in c->parser (buf = its first
 * byte).  Returns PX_DONE, or PX_STALL when it must wait for earlier replies
 * (RESET of a pinned client). */
px_dispatch_result px_local_run(px_client *c, const char *buf, px_cmd_id id, const px_command *cmd);

/* Reset the connection state as RESET does (db 0, name, auth, pins). */
void px_local_reset_state(px_client *c);

#endif
