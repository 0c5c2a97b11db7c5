/* server.c -- listener, loop-turn hooks, cron, signals, shutdown.
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting and stop reading requests,
 * close pub/sub subscribers and fail blocked commands (they could wait
 * forever), let every other in-flight request finish, then exit 0; after
 * shutdown-timeout seconds whatever is left is failed and the loop ends. */
#include "proxy/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "proxy/backend.h"
#include "proxy/client.h"
#include "proxy/log.h"
#include "replication/leader.h"
#include "replication/quorum.h"
#include "replication/sentinel.h"
#include "replication/session.h"

#define ACCEPTS_PER_EVENT 64

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    px_ctx *ctx = w->data;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                px_warning("Accepting client connection: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (ctx->cfg.tcp_keepalive > 0) {
            int idle = ctx->cfg.tcp_keepalive;
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        }
        px_client_new(ctx, fd);
    }
}

/* Before the loop blocks: write everything queued this turn -- one write
 * per link and per client however many requests -- and run parked clients. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop; (void)revents;
    px_ctx *ctx = w->data;
    ctx->turn++;
    /* requests first: Redis works on them while the replies go out to clients */
    px_links_flush(ctx);
    px_clients_flush(ctx);
    px_links_flush(ctx);   /* what resumed clients queued */
    px_clients_reap(ctx);
    px_links_reap(ctx);
}

static void check_shutdown(px_ctx *ctx)
{
    int busy = 0;
    for (px_client *c = ctx->clients; c; c = c->next)
        if (!c->closing && (c->pending > 0 || px_buf_unread(&c->out) > 0)) busy = 1;
    if (!busy || ev_now(ctx->loop) >= ctx->shutdown_deadline) {
        if (busy) px_warning("shutdown-timeout reached with requests in flight: failing them");
        for (px_client *c = ctx->clients; c; c = c->next) px_client_close_async(c, NULL);
        px_notice("rcproxy is now ready to exit, bye bye...");
        ev_break(ctx->loop, EVBREAK_ALL);
    }
}

static void on_cron(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    px_ctx *ctx = w->data;
    px_links_cron(ctx);
    repl_quorum_cron(ctx);
    px_clients_cron(ctx);
    if (ctx->shutting_down) check_shutdown(ctx);
}

static void begin_shutdown(px_ctx *ctx, const char *signame)
{
    if (ctx->shutting_down) {
        px_warning("Received %s again: exiting now", signame);
        ev_break(ctx->loop, EVBREAK_ALL);
        return;
    }
    px_notice("Received %s scheduling shutdown...", signame);
    ctx->shutting_down = 1;
    ctx->shutdown_deadline = ev_now(ctx->loop) + ctx->cfg.shutdown_timeout;
    for (int i = 0; i < ctx->nlisten; i++) {
        ev_io_stop(ctx->loop, &ctx->listen_io[i]);
        close(ctx->listen_fds[i]);
    }
    ctx->nlisten = 0;
    for (px_client *c = ctx->clients; c; c = c->next) {
        if (c->pin == PX_PIN_PUBSUB) px_client_close_async(c, "shutdown");
        else if (c->pin == PX_PIN_BLOCK && c->pinned) px_link_fail(c->pinned, "rcproxy is shutting down");
        if (c->reading) {
            ev_io_stop(ctx->loop, &c->rio);
            c->reading = 0;
        }
    }
    check_shutdown(ctx);
}

int px_server_reload(px_ctx *ctx, char *err, size_t errlen)
{
    static conf next;    /* large: not on the stack */
    char warn[CONF_ERR_MAX] = "";
    if (!ctx->cfg.config_file[0]) {
        snprintf(err, errlen, "rcproxy was started without a config file: nothing to reload");
        return -1;
    }
    conf_init_defaults(&next);
    if (conf_load_args(&next, ctx->argc, ctx->argv, err, errlen) < 0 ||
        conf_validate(&next, err, errlen, warn, sizeof warn) < 0)
        return -1;
    if (next.loglevel != ctx->cfg.loglevel) {
        px_log_set_level(next.loglevel);
        ctx->cfg.loglevel = next.loglevel;
    }
    if (ctx->cfg.mode == CONF_MODE_QUORUM) {
        px_notice("Config reloaded; mode quorum keeps its nodes until a restart");
        return 0;
    }
    if (ctx->sentinel) {
        px_notice("Config reloaded; the topology follows Sentinel, not the file");
        return 0;
    }
    if (next.sentinel_count > 0) {
        snprintf(err, errlen, "switching to Sentinel needs a restart");
        return -1;
    }
    if (repl_leader_set_topology(ctx, &next.leader, next.replicas, next.replica_count, "config reload") < 0) {
        snprintf(err, errlen, "the reloaded topology is invalid (duplicate backends?)");
        return -1;
    }
    ctx->cfg.leader = next.leader;
    memcpy(ctx->cfg.replicas, next.replicas, sizeof next.replicas);
    ctx->cfg.replica_count = next.replica_count;
    px_notice("Config reloaded: leader %s, %d replica%s", ctx->backends[0]->name,
              next.replica_count, next.replica_count == 1 ? "" : "s");
    return 0;
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop; (void)revents;
    char err[CONF_ERR_MAX];
    px_notice("Received SIGHUP, reloading the config file");
    if (px_server_reload(w->data, err, sizeof err) < 0) px_warning("Config reload failed: %s", err);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop; (void)revents;
    begin_shutdown(w->data, w->signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- start-up ---------------------------------------------------------- */

static void on_command_reply(const redisReply *r, const char *err, void *arg)
{
    px_ctx *ctx = arg;
    if (!r) {
        px_warning("Could not load COMMAND from the leader (%s): using the built-in table", err ? err : "?");
        return;
    }
    int n = px_cmdtable_load_reply(ctx->commands, r);
    if (n > 0) {
        ctx->commands_loaded = 1;
        px_verbose("Command table loaded from the leader: %d commands", n);
    }
}

static void on_server_info(const redisReply *r, const char *err, void *arg)
{
    px_ctx *ctx = arg;
    (void)err;
    if (!r || r->type != REDIS_REPLY_STRING) return;
    const char *p = strstr(r->str, "redis_version:");
    if (!p) return;
    p += strlen("redis_version:");
    size_t n = strcspn(p, "\r\n");
    if (n >= sizeof ctx->leader_version) n = sizeof ctx->leader_version - 1;
    memcpy(ctx->leader_version, p, n);
    ctx->leader_version[n] = 0;
}

int px_server_init(px_ctx *ctx, struct ev_loop *loop, const conf *cfg, char *err, size_t errlen)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->loop = loop;
    ctx->cfg = *cfg;
    ctx->commands = px_cmdtable_new_builtin();
    ctx->started = ev_now(loop);
    if (cfg->mode == CONF_MODE_QUORUM) {
        ctx->strategy = &repl_quorum_strategy;
        ctx->nbackends = cfg->node_count;
        ctx->backends = calloc((size_t)ctx->nbackends, sizeof *ctx->backends);
        if (!ctx->backends) abort();
        for (int i = 0; i < cfg->node_count; i++)
            ctx->backends[i] = px_backend_new(ctx, i, PX_ROLE_NODE, &cfg->nodes[i]);
        return repl_quorum_init(ctx, err, errlen);
    }
    ctx->strategy = &repl_leader_strategy;
    ctx->nbackends = 1 + cfg->replica_count;
    ctx->backends = calloc((size_t)ctx->nbackends, sizeof *ctx->backends);
    if (!ctx->backends) abort();
    ctx->backends[0] = px_backend_new(ctx, 0, PX_ROLE_LEADER, &cfg->leader);
    for (int i = 0; i < cfg->replica_count; i++)
        ctx->backends[i + 1] = px_backend_new(ctx, i + 1, PX_ROLE_REPLICA, &cfg->replicas[i]);
    return 0;
}

static int listen_one(px_ctx *ctx, const char *host, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof port, "%d", ctx->cfg.port);
    int rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "Could not resolve bind address %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, ctx->cfg.tcp_backlog) == 0) break;
        snprintf(err, errlen, "Could not create server TCP listening socket %s:%d: %s", host,
                 ctx->cfg.port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return -1;
    ctx->listen_fds[ctx->nlisten] = fd;
    ev_io_init(&ctx->listen_io[ctx->nlisten], on_accept, fd, EV_READ);
    ctx->listen_io[ctx->nlisten].data = ctx;
    ctx->nlisten++;
    return 0;
}

int px_server_listen(px_ctx *ctx, char *err, size_t errlen)
{
    for (int i = 0; i < ctx->cfg.bind_count; i++)
        if (listen_one(ctx, ctx->cfg.bind[i], err, errlen) < 0) return -1;
    return 0;
}

static void on_sentinel_failover(int active, const char *why, void *arg)
{
    repl_leader_failover(arg, active, why);
}

static void on_sentinel_view(const repl_sentinel_view *v, const char *reason, void *arg)
{
    px_ctx *ctx = arg;
    char why[80];
    snprintf(why, sizeof why, "Sentinel: %s", reason);
    if (repl_leader_set_topology(ctx, &v->leader, v->replicas, v->replica_count, why) < 0)
        px_warning("Sentinel reported an invalid topology (%s): ignored", reason);
}

/* The loop's own watchers: the flush hook, cron, signals. */
static void start_watchers(px_ctx *ctx)
{
    struct ev_loop *loop = ctx->loop;
    ev_prepare_init(&ctx->flush_watcher, on_prepare);
    ctx->flush_watcher.data = ctx;
    ev_prepare_start(loop, &ctx->flush_watcher);
    ev_timer_init(&ctx->cron, on_cron, 0.1, 0.1);
    ctx->cron.data = ctx;
    ev_timer_start(loop, &ctx->cron);
    ev_signal_init(&ctx->sigterm, on_signal, SIGTERM);
    ev_signal_init(&ctx->sigint, on_signal, SIGINT);
    ctx->sigterm.data = ctx->sigint.data = ctx;
    ev_signal_start(loop, &ctx->sigterm);
    ev_signal_start(loop, &ctx->sigint);
    ev_signal_init(&ctx->sighup, on_sighup, SIGHUP);
    ctx->sighup.data = ctx;
    ev_signal_start(loop, &ctx->sighup);
    signal(SIGPIPE, SIG_IGN);
}

int px_server_run(px_ctx *ctx)
{
    struct ev_loop *loop = ctx->loop;
    for (int i = 0; i < ctx->nlisten; i++) ev_io_start(loop, &ctx->listen_io[i]);
    for (int i = 0; i < ctx->nbackends; i++) px_backend_start(ctx->backends[i]);

    const conf *cfg = &ctx->cfg;
    if (cfg->mode == CONF_MODE_QUORUM) {
        repl_quorum_start(ctx);
        start_watchers(ctx);
        px_notice("Ready to accept connections tcp (port %d, mode quorum, %d nodes)", cfg->port,
                  cfg->node_count);
        ev_run(loop, 0);
        return 0;
    }
    if (cfg->sentinel_count > 0) {
        ctx->sentinel = repl_sentinel_new(loop, cfg->sentinels, cfg->sentinel_count,
                                          cfg->sentinel_master, cfg->sentinel_password,
                                          cfg->backend_password, 1000, on_sentinel_view, ctx);
        repl_sentinel_on_failover(ctx->sentinel, on_sentinel_failover, ctx);
    }
    const char *cmd_argv[] = {"COMMAND"};
    repl_oneshot_command(loop, cfg->leader.host, cfg->leader.port, cfg->backend_user,
                         cfg->backend_password, 5000, 1, cmd_argv, on_command_reply, ctx);
    const char *info_argv[] = {"INFO", "server"};
    repl_oneshot_command(loop, cfg->leader.host, cfg->leader.port, cfg->backend_user,
                         cfg->backend_password, 5000, 2, info_argv, on_server_info, ctx);

    start_watchers(ctx);

    px_notice("Ready to accept connections tcp (port %d, mode %s, leader %s, %d replica%s)",
              cfg->port, conf_mode_name(cfg->mode), ctx->backends[0]->name, cfg->replica_count,
              cfg->replica_count == 1 ? "" : "s");
    ev_run(loop, 0);
    return 0;
}

void px_server_free(px_ctx *ctx)
{
    for (px_client *c = ctx->clients; c; c = c->next) px_client_close_async(c, NULL);
    px_clients_reap(ctx);
    if (ctx->sentinel) repl_sentinel_free(ctx->sentinel);
    ctx->sentinel = NULL;
    repl_quorum_stop(ctx);
    repl_session_free_parked(ctx);
    for (int i = 0; i < ctx->nbackends; i++) px_backend_free(ctx->backends[i]);
    px_links_reap(ctx);
    free(ctx->backends);
    while (ctx->free_slots) {
        px_slot *s = ctx->free_slots;
        ctx->free_slots = s->next;
        px_buf_release(&s->reply);
        free(s);
    }
    for (int i = 0; i < ctx->nlisten; i++) close(ctx->listen_fds[i]);
    ev_prepare_stop(ctx->loop, &ctx->flush_watcher);
    ev_timer_stop(ctx->loop, &ctx->cron);
    ev_signal_stop(ctx->loop, &ctx->sigterm);
    ev_signal_stop(ctx->loop, &ctx->sigint);
    ev_signal_stop(ctx->loop, &ctx->sighup);
    while (ctx->retired) {
        px_backend *b = ctx->retired;
        ctx->retired = b->next_retired;
        px_backend_free(b);
    }
    repl_quorum_free(ctx);
    px_cmdtable_free(ctx->commands);
}
