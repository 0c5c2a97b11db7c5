/* server.h -- the process around the data path: listening sockets, the
 * once-per-loop-turn flush, the 10 Hz cron, signals and graceful shutdown. */
#ifndef PX_SERVER_H
#define PX_SERVER_H

#include "proxy/proxy.h"

/* Build the context from a validated config: backends, strategy, command
 * table.  Returns 0 or -1 with err set. */
int px_server_init(px_ctx *ctx, struct ev_loop *loop, const conf *cfg, char *err, size_t errlen);
/* Bind and listen on every `bind` address.  Returns 0 or -1 with err set. */
int px_server_listen(px_ctx *ctx, char *err, size_t errlen);
/* Connect backends, start health checks and the COMMAND load, then run
 * the loop until shutdown completes.  Returns the exit status. */
int px_server_run(px_ctx *ctx);
void px_server_free(px_ctx *ctx);
/* Re-read the config file (SIGHUP, RCPROXY RELOAD): apply the topology
 * (leader/replica lines) and loglevel.  Returns 0 or -1 with err set. */
int px_server_reload(px_ctx *ctx, char *err, size_t errlen);

#endif
