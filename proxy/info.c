/* info.c -- the "# rcproxy" INFO section: mode, clients, ops and one line
 * per backend with its role, health, rotation and replication offset. */
#include "proxy/info.h"

#include "proxy/backend.h"
#include "replication/quorum.h"

#include <stdio.h>
#include <unistd.h>

#include "replication/leader.h"

static void line(px_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void line(px_buf *out, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
    px_buf_append(out, tmp, (size_t)n);
    px_buf_append(out, "\r\n", 2);
}

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#include <stdbool.h>

/* jemalloc's counters: allocations made since start and bytes in use.
 * Flushing this thread's cache first makes the counts exact. */
static void allocator_lines(px_buf *out)
{
    uint64_t epoch = 1, small = 0, large = 0;
    size_t allocated = 0, sz = sizeof epoch;
    mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    sz = sizeof small;
    mallctl("stats.arenas.4096.small.nmalloc", &small, &sz, NULL, 0);
    sz = sizeof large;
    mallctl("stats.arenas.4096.large.nmalloc", &large, &sz, NULL, 0);
    sz = sizeof allocated;
    mallctl("stats.allocated", &allocated, &sz, NULL, 0);
    line(out, "allocator:jemalloc");
    line(out, "allocator_allocations:%llu", (unsigned long long)(small + large));
    line(out, "allocator_allocated_bytes:%zu", allocated);
}
#else
static void allocator_lines(px_buf *out)
{
    line(out, "allocator:libc");
}
#endif

static long long outstanding(const px_backend *b)
{
    long long n = 0;
    for (int i = 0; i < b->nlinks; i++) n += (long long)b->shared[i]->fifo_count;
    return n;
}

void px_info_section(px_ctx *ctx, px_buf *out)
{
    double now = ev_now(ctx->loop);
    long long leader_off = ctx->nbackends ? ctx->backends[0]->known_offset : -1;
    line(out, "# rcproxy");
    line(out, "rcproxy_version:%s", RCPROXY_VERSION);
    line(out, "mode:%s", conf_mode_name(ctx->cfg.mode));
    line(out, "process_id:%d", (int)getpid());
    line(out, "tcp_port:%d", ctx->cfg.port);
    line(out, "uptime_in_seconds:%lld", (long long)(now - ctx->started));
    line(out, "connected_clients:%lld", ctx->connected_clients);
    line(out, "total_connections_received:%lld", ctx->total_connections);
    line(out, "rejected_connections:%lld", ctx->rejected_connections);
    line(out, "total_commands_processed:%lld", ctx->total_commands);
    line(out, "protocol_errors:%lld", ctx->protocol_errors);
    allocator_lines(out);
    if (ctx->cfg.mode == CONF_MODE_QUORUM) {
        repl_quorum_info(ctx, out);
        for (int i = 0; i < ctx->nbackends; i++) {
            px_backend *b = ctx->backends[i];
            line(out, "node%d:addr=%s,status=%s,outstanding=%lld,requests=%lld,writes=%lld,errors=%lld", i,
                 b->name, px_backend_usable(b, NULL) ? "up" : "down", outstanding(b), b->requests,
                 b->writes, b->errors);
        }
        return;
    }
    line(out, "command_table:%s", ctx->commands_loaded ? "leader" : "builtin");
    line(out, "write_ack:%s", conf_write_ack_name(ctx->cfg.write_ack));
    line(out, "read_consistency:%s", conf_read_consistency_name(ctx->cfg.read_consistency));
    line(out, "replica_max_lag:%lld", ctx->cfg.replica_max_lag);
    line(out, "leader_replid:%s", ctx->nbackends && ctx->backends[0]->hs.master_replid[0]
                                     ? ctx->backends[0]->hs.master_replid : "unknown");
    line(out, "backend_count:%d", ctx->nbackends);
    for (int i = 0; i < ctx->nbackends; i++) {
        px_backend *b = ctx->backends[i];
        const repl_health_state *h = &b->hs;
        int up = !b->link_failed && h->reachable;
        long long lag = -1;
        if (b->role == PX_ROLE_LEADER) lag = 0;
        else if (leader_off >= 0 && b->known_offset >= 0) lag = leader_off - b->known_offset;
        if (lag < -1) lag = 0;
        line(out,
             "backend%d:addr=%s,role=%s,status=%s,in_rotation=%s,link=%s,loading=%d,offset=%lld,"
             "lag=%lld,outstanding=%lld,requests=%lld,writes=%lld,errors=%lld,retries=%lld",
             i, b->name, b->role == PX_ROLE_LEADER ? "leader" : "replica", up ? "up" : "down",
             b->role == PX_ROLE_REPLICA && repl_leader_replica_ok(b, NULL) ? "yes" : "no",
             b->role == PX_ROLE_LEADER ? "n/a" : (h->link_up ? "up" : "down"), h->loading,
             b->known_offset, lag, outstanding(b), b->requests, b->writes, b->errors, b->retries);
    }
}
