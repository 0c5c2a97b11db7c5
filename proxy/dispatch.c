/* dispatch.c -- routing of one request.
 *
 *   request ─┬─ not authenticated? ─────────────── NOAUTH
 *            ├─ client pinned (pub/sub, MULTI) ──── its pinned link
 *            ├─ proxy-local (PING, SELECT, ...) ─── answered here (local.c)
 *            ├─ refused (SHUTDOWN, MONITOR, ...) ── error naming rcproxy
 *            ├─ MULTI/WATCH ─┐
 *            ├─ SUBSCRIBE ───┼─ wait until earlier replies are out, then
 *            ├─ blocking ────┘  a link of its own to the leader
 *            ├─ readonly ─────────────────────────── the session's level (session.c)
 *            └─ everything else ──────────────────── strategy->route_write
 */
#include "proxy/dispatch.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/backend.h"
#include "proxy/client.h"
#include "proxy/local.h"
#include "proxy/log.h"
#include "replication/quorum.h"
#include "replication/session.h"

const char *px_arg(const px_client *c, const char *buf, size_t i, size_t *len)
{
    return resp_req_arg(c->parser, buf, i, len);
}

int px_arg_eq(const px_client *c, const char *buf, size_t i, const char *lit)
{
    size_t len;
    const char *a = px_arg(c, buf, i, &len);
    return len == strlen(lit) && strncasecmp(a, lit, len) == 0;
}

/* The bytes to forward for the current request: as received, or
 * re-encoded into tmp if it came inline (backends get one canonical form). */
static const char *request_bytes(px_client *c, const char *buf, px_buf *tmp, size_t *len)
{
    if (!c->parser->is_inline) {
        *len = c->parser->req_len;
        return buf;
    }
    px_buf_add_header(tmp, '*', (long long)c->parser->argc);
    for (size_t i = 0; i < c->parser->argc; i++) {
        size_t alen;
        const char *a = px_arg(c, buf, i, &alen);
        px_buf_add_bulk(tmp, a, alen);
    }
    *len = tmp->len;
    return tmp->data;
}

px_pending *px_forward(px_client *c, const char *buf, px_link *l, px_slot_kind kind, int readonly)
{
    px_slot *slot = l->kind == PX_LINK_PUBSUB ? NULL : px_client_slot(c, kind);
    px_buf tmp = PX_BUF_INIT;
    size_t len;
    const char *bytes = request_bytes(c, buf, &tmp, &len);
    px_pending *p = px_link_send(l, slot, bytes, len, c->db, readonly);
    px_buf_release(&tmp);
    return p;
}

/* A read-only request: the session's consistency level picks the backend. */
static void forward_read(px_client *c, const char *buf)
{
    px_slot *slot = px_client_slot(c, PX_SLOT_PLAIN);
    px_buf tmp = PX_BUF_INIT;
    size_t len;
    const char *bytes = request_bytes(c, buf, &tmp, &len);
    if (repl_session_send_read(c->ctx, c, slot, bytes, len, c->db, NULL, 0, 0) < 0)
        repl_session_park_read(c->ctx, slot, bytes, len, c->db, 0);   /* waits for a backend */
    px_buf_release(&tmp);
}

/* May this command change data (so that sessions must track it)?  Writes,
 * and commands that are not read-only but touch keys (EVAL, FCALL...), and
 * commands the table does not know. */
static int may_write(const px_command *cmd)
{
    if (!cmd) return 1;
    if (cmd->flags & PX_CMD_WRITE) return 1;
    if (cmd->flags & PX_CMD_READONLY) return 0;
    return (cmd->flags & PX_CMD_MOVABLEKEYS) || cmd->first_key > 0;
}

static void reply_unavailable(px_client *c, px_backend *b, int reading)
{
    const char *why = NULL;
    px_buf *out = px_client_reply(c);
    if (!b) {
        px_buf_add_error(out, reading ? "ERR rcproxy: no backend is available for reads"
                                      : "ERR rcproxy: leader is unavailable");
        return;
    }
    px_backend_usable(b, &why);
    px_buf_add_errorf(out, "ERR rcproxy: %s %s is unavailable (%s)",
                      b->role == PX_ROLE_LEADER ? "leader" : "replica", b->name,
                      why ? why : "not connected");
}

/* A link of its own to the leader for c, or NULL after replying an error. */
static px_link *pin_link(px_client *c, px_pin pin, px_link_kind kind)
{
    px_ctx *ctx = c->ctx;
    px_backend *b = ctx->strategy->route_write(ctx, c);
    if (!b) {
        reply_unavailable(c, ctx->nbackends ? ctx->backends[0] : NULL, 0);
        return NULL;
    }
    c->pinned = px_link_acquire(b, c, kind);
    c->pin = pin;
    return c->pinned;
}

/* XREAD / XREADGROUP block only with a BLOCK argument. */
static int has_block_arg(const px_client *c, const char *buf)
{
    for (size_t i = 1; i < c->parser->argc; i++) {
        if (px_arg_eq(c, buf, i, "streams")) return 0;
        if (px_arg_eq(c, buf, i, "block")) return 1;
    }
    return 0;
}

/* Requests of a client pinned to a transaction or pub/sub link. */
static px_dispatch_result dispatch_pinned(px_client *c, const char *buf, px_cmd_id id,
                                          const px_command *cmd)
{
    if (id == PX_ID_QUIT || id == PX_ID_RESET) return px_local_run(c, buf, id, cmd);
    if (c->pin == PX_PIN_PUBSUB) {
        px_forward(c, buf, c->pinned, PX_SLOT_PLAIN, 0);
        return PX_DONE;
    }
    if (id == PX_ID_SELECT) {
        px_buf_add_error(px_client_reply(c),
                         "ERR rcproxy: SELECT inside MULTI/WATCH is not supported, select before WATCH/MULTI");
        return PX_DONE;
    }
    px_slot_kind kind = PX_SLOT_PLAIN;
    switch (id) {
    case PX_ID_MULTI: c->multi = 1; break;
    case PX_ID_EXEC:
    case PX_ID_DISCARD:
        if (c->multi) c->multi = 0, c->watching = 0;
        kind = PX_SLOT_UNPIN;
        break;
    case PX_ID_WATCH: if (!c->multi) c->watching = 1; break;
    case PX_ID_UNWATCH:
        if (!c->multi) c->watching = 0, kind = PX_SLOT_UNPIN;
        break;
    default: break;
    }
    px_pending *p = px_forward(c, buf, c->pinned, kind, 0);
    if (id == PX_ID_EXEC) p->slot->wrote_elsewhere = 1;   /* a TX link: always tracked */
    return PX_DONE;
}

px_dispatch_result px_dispatch(px_client *c, const char *buf)
{
    px_ctx *ctx = c->ctx;
    size_t nlen;
    const char *name = px_arg(c, buf, 0, &nlen);
    const px_command *cmd = px_cmdtable_lookup(ctx->commands, name, nlen);
    px_cmd_id id = cmd ? cmd->id : PX_ID_NONE;

    if (!c->authenticated && id != PX_ID_AUTH && id != PX_ID_HELLO && id != PX_ID_QUIT &&
        id != PX_ID_RESET) {
        px_buf_add_error(px_client_reply(c), "NOAUTH Authentication required.");
        return PX_DONE;
    }
    ctx->total_commands++;
    c->commands++;
    c->last_cmd = cmd ? cmd->name : NULL;

    if (c->pin == PX_PIN_PUBSUB || c->pin == PX_PIN_TX) return dispatch_pinned(c, buf, id, cmd);

    switch (id) {
    case PX_ID_PING: case PX_ID_ECHO: case PX_ID_QUIT: case PX_ID_RESET: case PX_ID_SELECT:
    case PX_ID_AUTH: case PX_ID_HELLO: case PX_ID_CLIENT: case PX_ID_INFO: case PX_ID_RCPROXY:
    case PX_ID_UNSUBSCRIBE: case PX_ID_PUNSUBSCRIBE: case PX_ID_SUNSUBSCRIBE:
        return px_local_run(c, buf, id, cmd);
    default:
        break;
    }
    if (ctx->cfg.mode == CONF_MODE_QUORUM) return repl_quorum_dispatch(c, buf);

    switch (id) {

    case PX_ID_SHUTDOWN: case PX_ID_SYNC: case PX_ID_PSYNC: case PX_ID_REPLICAOF:
    case PX_ID_SLAVEOF: case PX_ID_MONITOR: case PX_ID_REPLCONF: case PX_ID_FAILOVER:
    case PX_ID_DEBUG:
        px_buf_add_errorf(px_client_reply(c), "ERR rcproxy: '%s' is not supported through the proxy",
                          cmd->name);
        return PX_DONE;

    case PX_ID_EXEC:
        px_buf_add_error(px_client_reply(c), "ERR EXEC without MULTI");
        return PX_DONE;
    case PX_ID_DISCARD:
        px_buf_add_error(px_client_reply(c), "ERR DISCARD without MULTI");
        return PX_DONE;
    case PX_ID_UNWATCH:
        px_buf_add_status(px_client_reply(c), "OK");
        return PX_DONE;

    case PX_ID_MULTI:
    case PX_ID_WATCH:
        if (c->pending > 0) return PX_STALL;
        if (!pin_link(c, PX_PIN_TX, PX_LINK_DEDICATED)) return PX_DONE;
        return dispatch_pinned(c, buf, id, cmd);

    case PX_ID_SUBSCRIBE: case PX_ID_PSUBSCRIBE: case PX_ID_SSUBSCRIBE:
        if (c->pending > 0) return PX_STALL;
        if (!pin_link(c, PX_PIN_PUBSUB, PX_LINK_PUBSUB)) return PX_DONE;
        px_forward(c, buf, c->pinned, PX_SLOT_PLAIN, 0);
        return PX_DONE;

    default:
        break;
    }

    int blocking = cmd && (cmd->flags & PX_CMD_BLOCKING);
    if (blocking && (id == PX_ID_XREAD || id == PX_ID_XREADGROUP)) blocking = has_block_arg(c, buf);
    if (blocking || id == PX_ID_WAIT) {
        /* like Redis, nothing more from this client runs until it unblocks */
        if (c->pending > 0) return PX_STALL;
        px_link *l = pin_link(c, PX_PIN_BLOCK, PX_LINK_DEDICATED);
        if (!l) return PX_DONE;
        px_pending *p = px_forward(c, buf, l, PX_SLOT_PLAIN, 0);
        if (may_write(cmd)) p->slot->wrote_elsewhere = 1;
        c->stalled = 1;
        return PX_DONE;
    }

    int readonly = cmd && (cmd->flags & PX_CMD_READONLY) && !(cmd->flags & PX_CMD_WRITE);
    if (readonly) {
        forward_read(c, buf);
        return PX_DONE;
    }
    px_backend *b = ctx->strategy->route_write(ctx, c);
    int acked = c->write_ack != CONF_ACK_ASYNC && may_write(cmd) && ctx->nbackends > 1;
    px_link *l = !b ? NULL : acked ? px_backend_ack_link(b) : px_backend_pick_shared(b, c->id);
    if (!l) {
        reply_unavailable(c, b ? b : (ctx->nbackends ? ctx->backends[0] : NULL), 0);
        return PX_DONE;
    }
    px_pending *p = px_forward(c, buf, l, PX_SLOT_PLAIN, 0);
    if (may_write(cmd)) repl_session_wrote(c, l, p);
    return PX_DONE;
}
