/* local.c -- the commands rcproxy answers itself, worded as Redis 7.0 words
 * them.  Each handler writes its reply through px_client_reply(), so it
 * lands in request order behind any forwarded request still in flight. */
#include "proxy/local.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/backend.h"
#include "proxy/client.h"
#include "proxy/info.h"
#include "proxy/server.h"
#include "replication/session.h"

typedef struct local_req {
    px_client *c;
    const char *buf;
    size_t argc;
    px_buf *out;
} local_req;

static const char *arg(const local_req *r, size_t i, size_t *len)
{
    return px_arg(r->c, r->buf, i, len);
}

static int arg_is(const local_req *r, size_t i, const char *lit)
{
    return px_arg_eq(r->c, r->buf, i, lit);
}

static char *arg_dup(const local_req *r, size_t i)
{
    size_t len;
    const char *a = arg(r, i, &len);
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, a, len);
    s[len] = 0;
    return s;
}

/* Strict integer parse of argument i, as Redis's string2ll. */
static int arg_ll(const local_req *r, size_t i, long long *v)
{
    size_t len;
    const char *a = arg(r, i, &len);
    char tmp[32];
    if (len == 0 || len >= sizeof tmp) return -1;
    memcpy(tmp, a, len);
    tmp[len] = 0;
    if (tmp[0] == '+' || (tmp[0] == '0' && len > 1) || (tmp[0] == '-' && tmp[1] == '0')) return -1;
    char *end;
    errno = 0;
    *v = strtoll(tmp, &end, 10);
    return (errno || *end) ? -1 : 0;
}

static void wrong_args(const local_req *r, const char *name)
{
    px_buf_add_errorf(r->out, "ERR wrong number of arguments for '%s' command", name);
}

/* Constant-time comparison, so AUTH does not leak the password's prefix. */
static int secret_eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned diff = (unsigned)(alen ^ blen);
    for (size_t i = 0; i < alen; i++) diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (blen ? blen : 1)];
    return diff == 0;
}

/* AUTH [user] password check; returns 1 on success and updates the client. */
static int check_auth(local_req *r, size_t user_i, size_t pass_i)
{
    px_client *c = r->c;
    const char *pass = c->ctx->cfg.requirepass;
    size_t plen;
    const char *p = arg(r, pass_i, &plen);
    int ok = 1;
    if (user_i && !arg_is(r, user_i, "default")) ok = 0;
    if (!secret_eq(p, plen, pass)) ok = 0;
    if (ok) {
        c->authenticated = 1;
        c->parser->unauthenticated = 0;
    }
    return ok;
}

static void cmd_auth(local_req *r)
{
    if (r->argc < 2 || r->argc > 3) return wrong_args(r, "auth");
    if (!r->c->ctx->cfg.requirepass[0]) {
        if (r->argc == 2) {
            px_buf_add_error(r->out, "ERR AUTH <password> called without any password configured "
                                     "for the default user. Are you sure your configuration is correct?");
            return;
        }
        if (arg_is(r, 1, "default")) {
            px_buf_add_status(r->out, "OK");
            return;
        }
        px_buf_add_error(r->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
    }
    if (check_auth(r, r->argc == 3 ? 1 : 0, r->argc - 1)) px_buf_add_status(r->out, "OK");
    else px_buf_add_error(r->out, "WRONGPASS invalid username-password pair or user is disabled.");
}

static void cmd_ping(local_req *r)
{
    if (r->argc > 2) return wrong_args(r, "ping");
    if (r->argc == 1) {
        px_buf_add_status(r->out, "PONG");
        return;
    }
    size_t len;
    const char *a = arg(r, 1, &len);
    px_buf_add_bulk(r->out, a, len);
}

static void cmd_echo(local_req *r)
{
    if (r->argc != 2) return wrong_args(r, "echo");
    size_t len;
    const char *a = arg(r, 1, &len);
    px_buf_add_bulk(r->out, a, len);
}

static void cmd_select(local_req *r)
{
    long long db;
    if (r->argc != 2) return wrong_args(r, "select");
    if (arg_ll(r, 1, &db) < 0 || db < -2147483648LL || db > 2147483647LL) {
        px_buf_add_error(r->out, "ERR value is not an integer or out of range");
        return;
    }
    if (db < 0 || db >= r->c->ctx->cfg.databases) {
        px_buf_add_error(r->out, "ERR DB index is out of range");
        return;
    }
    if (db != 0 && r->c->ctx->cfg.mode == CONF_MODE_QUORUM) {
        px_buf_add_error(r->out, "ERR rcproxy: SELECT is not supported in quorum mode (only db 0)");
        return;
    }
    r->c->db = (int)db;
    px_buf_add_status(r->out, "OK");
}

/* HELLO [protover [AUTH user pass] [SETNAME name]] -- RESP2 only. */
static void cmd_hello(local_req *r)
{
    px_client *c = r->c;
    size_t i = 1;
    if (r->argc >= 2) {
        long long ver;
        if (arg_ll(r, 1, &ver) < 0) {
            px_buf_add_error(r->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver != 2) {
            px_buf_add_error(r->out, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    char *setname = NULL;
    for (; i < r->argc; i++) {
        size_t left = r->argc - i - 1;
        if (arg_is(r, i, "auth") && left >= 2) {
            if (!c->ctx->cfg.requirepass[0]) {
                if (!arg_is(r, i + 1, "default")) {
                    px_buf_add_error(r->out, "WRONGPASS invalid username-password pair or user is disabled.");
                    free(setname);
                    return;
                }
            } else if (!check_auth(r, i + 1, i + 2)) {
                px_buf_add_error(r->out, "WRONGPASS invalid username-password pair or user is disabled.");
                free(setname);
                return;
            }
            i += 2;
        } else if (arg_is(r, i, "setname") && left >= 1) {
            free(setname);
            setname = arg_dup(r, i + 1);
            i += 1;
        } else {
            size_t len;
            const char *a = arg(r, i, &len);
            px_buf_add_errorf(r->out, "ERR Syntax error in HELLO option '%.*s'", (int)(len > 64 ? 64 : len), a);
            free(setname);
            return;
        }
    }
    if (!c->authenticated) {
        px_buf_add_error(r->out, "NOAUTH HELLO must be called with the client already authenticated, "
                                 "otherwise the HELLO AUTH <user> <pass> option can be used to "
                                 "authenticate the client and select the RESP protocol version at the same time");
        free(setname);
        return;
    }
    if (setname) {
        free(c->name);
        c->name = setname;
    }
    px_buf *o = r->out;
    px_buf_add_header(o, '*', 14);
    px_buf_add_bulk_str(o, "server");
    px_buf_add_bulk_str(o, "redis");
    px_buf_add_bulk_str(o, "version");
    px_buf_add_bulk_str(o, c->ctx->leader_version[0] ? c->ctx->leader_version : "7.0.0");
    px_buf_add_bulk_str(o, "proto");
    px_buf_add_int(o, 2);
    px_buf_add_bulk_str(o, "id");
    px_buf_add_int(o, (long long)c->id);
    px_buf_add_bulk_str(o, "mode");
    px_buf_add_bulk_str(o, "standalone");
    px_buf_add_bulk_str(o, "role");
    px_buf_add_bulk_str(o, "master");
    px_buf_add_bulk_str(o, "modules");
    px_buf_add_header(o, '*', 0);
}

/* One line of CLIENT LIST / CLIENT INFO for c, in Redis's format. */
static void client_line(px_client *c, px_buf *dst)
{
    double now = ev_now(c->ctx->loop);
    char line[1024], addr[64], laddr[64];
    const char *flags = c->pin == PX_PIN_PUBSUB ? "P" : c->multi ? "x" : c->pin == PX_PIN_BLOCK ? "b" : "N";
    int n = snprintf(line, sizeof line,
                     "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d "
                     "sub=0 psub=0 ssub=0 multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 "
                     "rbs=%zu rbp=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=default "
                     "redir=-1 resp=2 lib-name=%s lib-ver=%s\n",
                     (unsigned long long)c->id, px_client_addr(c, 0, addr, sizeof addr),
                     px_client_addr(c, 1, laddr, sizeof laddr), c->fd, c->name ? c->name : "",
                     (long long)(now - c->created), (long long)(now - c->last_active), flags, c->db,
                     c->multi ? 0 : -1, px_buf_unread(&c->in), c->in.cap - c->in.len, c->in.cap,
                     c->out.cap, c->in.cap + c->out.cap + sizeof *c,
                     c->last_cmd ? c->last_cmd : "NULL", c->lib_name ? c->lib_name : "",
                     c->lib_ver ? c->lib_ver : "");
    px_buf_append(dst, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

/* Client names follow Redis's rule: no spaces, newlines or special chars. */
static int valid_name(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~') return 0;
    return 1;
}

static void cmd_client(local_req *r)
{
    px_client *c = r->c;
    if (r->argc < 2) return wrong_args(r, "client");
    if (arg_is(r, 1, "id") && r->argc == 2) {
        px_buf_add_int(r->out, (long long)c->id);
    } else if (arg_is(r, 1, "getname") && r->argc == 2) {
        if (c->name) px_buf_add_bulk_str(r->out, c->name);
        else px_buf_add_null(r->out);
    } else if (arg_is(r, 1, "setname") && r->argc == 3) {
        size_t len;
        const char *a = arg(r, 2, &len);
        if (!valid_name(a, len)) {
            px_buf_add_error(r->out, "ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
        free(c->name);
        c->name = len ? arg_dup(r, 2) : NULL;
        px_buf_add_status(r->out, "OK");
    } else if (arg_is(r, 1, "setinfo") && r->argc == 4) {
        size_t len;
        const char *a = arg(r, 3, &len);
        char **field = arg_is(r, 2, "lib-name") ? &c->lib_name : arg_is(r, 2, "lib-ver") ? &c->lib_ver : NULL;
        if (!field) {
            size_t al;
            const char *at = arg(r, 2, &al);
            px_buf_add_errorf(r->out, "ERR Unrecognized option '%.*s'", (int)(al > 64 ? 64 : al), at);
            return;
        }
        if (!valid_name(a, len)) {
            px_buf_add_error(r->out, "ERR lib-name and lib-ver cannot contain spaces, newlines or special characters.");
            return;
        }
        free(*field);
        *field = arg_dup(r, 3);
        px_buf_add_status(r->out, "OK");
    } else if ((arg_is(r, 1, "info") && r->argc == 2) || (arg_is(r, 1, "list") && r->argc >= 2)) {
        px_buf line = PX_BUF_INIT;
        client_line(c, &line);
        px_buf_add_bulk(r->out, line.data, line.len);
        px_buf_release(&line);
    } else {
        size_t len;
        const char *a = arg(r, 1, &len);
        px_buf_add_errorf(r->out, "ERR rcproxy: CLIENT %.*s is not supported through the proxy",
                          (int)(len > 64 ? 64 : len), a);
    }
}

/* INFO: "rcproxy" alone is local; otherwise the leader answers and our
 * section is appended when the request asks for everything or for it. */
static px_dispatch_result cmd_info(local_req *r)
{
    px_client *c = r->c;
    px_ctx *ctx = c->ctx;
    int want_ours = r->argc == 1, only_ours = r->argc > 1 || ctx->cfg.mode == CONF_MODE_QUORUM;
    for (size_t i = 1; i < r->argc; i++) {
        if (arg_is(r, i, "rcproxy") || arg_is(r, i, "all") || arg_is(r, i, "everything") ||
            arg_is(r, i, "default"))
            want_ours = 1;
        if (!arg_is(r, i, "rcproxy")) only_ours = 0;
    }
    if (!only_ours) {
        px_backend *b = ctx->strategy->route_write(ctx, c);
        px_link *l = b ? px_backend_pick_shared(b, c->id) : NULL;
        if (l) {
            px_forward(c, r->buf, l, want_ours ? PX_SLOT_INFO : PX_SLOT_PLAIN, 0);
            return PX_DONE;
        }
        if (!want_ours) {
            px_buf_add_error(px_client_reply(c), "ERR rcproxy: leader is unavailable");
            return PX_DONE;
        }
    }
    px_buf section = PX_BUF_INIT;
    px_info_section(ctx, &section);
    px_buf_add_bulk(px_client_reply(c), section.data, section.len);
    px_buf_release(&section);
    return PX_DONE;
}

void px_local_reset_state(px_client *c)
{
    if (c->pinned || c->pin != PX_PIN_NONE) px_client_unpin(c, 0);
    c->db = 0;
    free(c->name);
    c->name = NULL;
    c->multi = c->watching = 0;
    c->authenticated = c->ctx->cfg.requirepass[0] == 0;
    c->parser->unauthenticated = !c->authenticated;
    repl_session_init(c);
}

/* UNSUBSCRIBE & co. outside subscribed mode: one reply per channel. */
static void cmd_unsubscribe(local_req *r, const char *kind)
{
    if (r->argc == 1) {
        px_buf_add_header(r->out, '*', 3);
        px_buf_add_bulk_str(r->out, kind);
        px_buf_add_null(r->out);
        px_buf_add_int(r->out, 0);
        return;
    }
    for (size_t i = 1; i < r->argc; i++) {
        size_t len;
        const char *a = arg(r, i, &len);
        px_buf_add_header(r->out, '*', 3);
        px_buf_add_bulk_str(r->out, kind);
        px_buf_add_bulk(r->out, a, len);
        px_buf_add_int(r->out, 0);
    }
}

/* RCPROXY TOKEN when the offset of the session's last write is not known
 * yet: a ROLE on the leader link behind that write tells it. */
static void token_via_role(local_req *r)
{
    static const char role[] = "*1\r\n$4\r\nROLE\r\n";
    px_client *c = r->c;
    px_ctx *ctx = c->ctx;
    px_link *l = c->w_link && c->w_link->state != PX_LINK_CLOSED ? c->w_link : NULL;
    if (!l) {
        px_backend *b = ctx->strategy->route_write(ctx, c);
        l = b ? px_backend_pick_shared(b, r->c->id) : NULL;
    }
    if (!l) {
        px_buf_add_error(px_client_reply(c), "ERR rcproxy: leader is unavailable");
        return;
    }
    px_link_send(l, px_client_slot(c, PX_SLOT_TOKEN), role, sizeof role - 1, c->db, 0);
}

static void cmd_rcproxy(local_req *r)
{
    px_client *c = r->c;
    if (r->argc == 2 && arg_is(r, 1, "version")) {
        px_buf_add_bulk_str(r->out, RCPROXY_VERSION);
        return;
    }
    if (r->argc == 2 && arg_is(r, 1, "help")) {
        static const char *lines[] = {
            "RCPROXY <subcommand> [<arg> ...]. Subcommands are:",
            "WRITEACK [async|semisync|sync]",
            "    Set (or get) when this connection's writes are acknowledged.",
            "CONSISTENCY [eventual|ryw|monotonic|strong]",
            "    Set (or get) what this connection's reads are guaranteed to see.",
            "TOKEN",
            "    Return a token naming this connection's last write.",
            "RELOAD",
            "    Re-read the config file (as SIGHUP): replicas added or removed.",
            "AFTER <token>",
            "    Make this connection's reads see the write a token names.",
            "VERSION",
            "    Return rcproxy's version.",
            "HELP",
            "    Print this help."};
        size_t n = sizeof lines / sizeof lines[0];
        px_buf_add_header(r->out, '*', (long long)n);
        for (size_t i = 0; i < n; i++) px_buf_add_status(r->out, lines[i]);
        return;
    }
    if (c->ctx->cfg.mode == CONF_MODE_QUORUM && r->argc >= 2 &&
        (arg_is(r, 1, "writeack") || arg_is(r, 1, "consistency") || arg_is(r, 1, "token") ||
         arg_is(r, 1, "after"))) {
        size_t len;
        const char *a = arg(r, 1, &len);
        px_buf_add_errorf(r->out, "ERR rcproxy: RCPROXY %.*s applies to mode leader only (quorum-w and "
                          "quorum-r set the guarantees of mode quorum)", (int)(len > 32 ? 32 : len), a);
        return;
    }
    if ((r->argc == 2 || r->argc == 3) &&
        (arg_is(r, 1, "writeack") || arg_is(r, 1, "consistency"))) {
        int is_ack = arg_is(r, 1, "writeack");
        if (r->argc == 2) {
            px_buf_add_bulk_str(r->out, is_ack ? conf_write_ack_name((conf_write_ack)c->write_ack)
                                               : conf_read_consistency_name((conf_read_consistency)c->consistency));
            return;
        }
        size_t len;
        const char *a = arg(r, 2, &len);
        int v = is_ack ? conf_write_ack_parse(a, len) : conf_read_consistency_parse(a, len);
        if (v < 0) {
            px_buf_add_error(r->out, is_ack ? "ERR rcproxy: write-ack must be async, semisync or sync"
                                            : "ERR rcproxy: consistency must be eventual, ryw, monotonic or strong");
            return;
        }
        if (is_ack) c->write_ack = (uint8_t)v;
        else c->consistency = (uint8_t)v;
        px_buf_add_status(r->out, "OK");
        return;
    }
    if (r->argc == 2 && arg_is(r, 1, "reload")) {
        char err[CONF_ERR_MAX];
        if (px_server_reload(c->ctx, err, sizeof err) < 0) px_buf_add_errorf(r->out, "ERR rcproxy: %s", err);
        else px_buf_add_status(r->out, "OK");
        return;
    }
    if (r->argc == 3 && arg_is(r, 1, "after")) {
        size_t len;
        const char *a = arg(r, 2, &len);
        if (repl_session_after(c, a, len) < 0) px_buf_add_error(r->out, "ERR rcproxy: invalid token");
        else px_buf_add_status(r->out, "OK");
        return;
    }
    size_t len = 0;
    const char *a = r->argc >= 2 ? arg(r, 1, &len) : "";
    px_buf_add_errorf(r->out, "ERR unknown subcommand '%.*s'. Try RCPROXY HELP.",
                      (int)(len > 64 ? 64 : len), a);
}

px_dispatch_result px_local_run(px_client *c, const char *buf, px_cmd_id id, const px_command *cmd)
{
    (void)cmd;
    local_req r = {c, buf, c->parser->argc, NULL};
    if (id == PX_ID_INFO) return cmd_info(&r);
    if (id == PX_ID_RCPROXY && r.argc == 2 && px_arg_eq(c, buf, 1, "token") &&
        c->ctx->cfg.mode != CONF_MODE_QUORUM) {
        char tok[128];
        if (repl_session_token(c, tok, sizeof tok)) px_buf_add_bulk_str(px_client_reply(c), tok);
        else token_via_role(&r);   /* answered in order through its own slot */
        return PX_DONE;
    }
    if (id == PX_ID_RESET && c->pin != PX_PIN_PUBSUB && c->pending > 0) return PX_STALL;
    r.out = px_client_reply(c);
    switch (id) {
    case PX_ID_PING: cmd_ping(&r); break;
    case PX_ID_ECHO: cmd_echo(&r); break;
    case PX_ID_SELECT: cmd_select(&r); break;
    case PX_ID_AUTH: cmd_auth(&r); break;
    case PX_ID_HELLO: cmd_hello(&r); break;
    case PX_ID_CLIENT: cmd_client(&r); break;
    case PX_ID_RCPROXY: cmd_rcproxy(&r); break;
    case PX_ID_UNSUBSCRIBE: cmd_unsubscribe(&r, "unsubscribe"); break;
    case PX_ID_PUNSUBSCRIBE: cmd_unsubscribe(&r, "punsubscribe"); break;
    case PX_ID_SUNSUBSCRIBE: cmd_unsubscribe(&r, "sunsubscribe"); break;
    case PX_ID_QUIT:
        px_buf_add_status(r.out, "OK");
        c->close_after_reply = 1;
        break;
    case PX_ID_RESET:
        px_local_reset_state(c);
        r.out = px_client_reply(c);
        px_buf_add_status(r.out, "RESET");
        break;
    default:
        px_buf_add_error(r.out, "ERR rcproxy: internal error, command not handled locally");
        break;
    }
    return PX_DONE;
}
