/* client.c -- client connections: read and parse requests, keep replies in
 * request order through the slot queue, write output, close safely.
 *
 * Memory: an idle client holds no buffers (input and output are released
 * when empty), so thousands of idle connections cost little. */
#include "proxy/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/backend.h"
#include "proxy/dispatch.h"
#include "proxy/log.h"
#include "replication/session.h"

#define CLIENT_READ_CHUNK (16 * 1024)
#define CLIENT_MAX_PENDING (1 << 20)     /* stop reading a client with this many requests in flight */
#define CLIENT_OUT_PAUSE (64 * 1024 * 1024) /* ... or this much unread output */
#define SLOT_POOL_MAX 4096
#define CLIENT_KEEP_BUF (64 * 1024)      /* larger buffers are freed as soon as they are empty */
#define CLIENT_IDLE_FREE 2.0             /* seconds idle before a client's buffers are freed */

static void client_on_read(struct ev_loop *loop, ev_io *w, int revents);
static void client_on_write(struct ev_loop *loop, ev_io *w, int revents);
static void client_process_input(px_client *c);

static void addr_to_str(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        port = ntohs(s->sin_port);
        snprintf(out, outlen, "%s:%d", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        port = ntohs(s->sin6_port);
        snprintf(out, outlen, "%s:%d", host, port);
    } else {
        snprintf(out, outlen, "unix");
    }
}

static void client_set_reading(px_client *c, int on)
{
    if (on && !c->reading && !c->closing) {
        ev_io_start(c->ctx->loop, &c->rio);
        c->reading = 1;
    } else if (!on && c->reading) {
        ev_io_stop(c->ctx->loop, &c->rio);
        c->reading = 0;
    }
}

const char *px_client_addr(const px_client *c, int local, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int rc = local ? getsockname(c->fd, (struct sockaddr *)&ss, &sl)
                   : getpeername(c->fd, (struct sockaddr *)&ss, &sl);
    if (rc == 0) addr_to_str(&ss, buf, len);
    else snprintf(buf, len, "?");
    return buf;
}

px_client *px_client_new(px_ctx *ctx, int fd)
{
    if (ctx->connected_clients >= ctx->cfg.maxclients) {
        static const char msg[] = "-ERR max number of clients reached\r\n";
        ssize_t ignored = write(fd, msg, sizeof msg - 1);
        (void)ignored;
        close(fd);
        ctx->rejected_connections++;
        return NULL;
    }
    px_client *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->ctx = ctx;
    c->fd = fd;
    c->id = ++ctx->next_client_id;
    c->read_backend = -1;
    repl_session_init(c);
    c->authenticated = ctx->cfg.requirepass[0] == 0;
    c->created = c->last_active = ev_now(ctx->loop);


    ev_io_init(&c->rio, client_on_read, fd, EV_READ);
    ev_io_init(&c->wio, client_on_write, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    client_set_reading(c, 1);

    c->next = ctx->clients;
    if (ctx->clients) ctx->clients->prev = c;
    ctx->clients = c;
    ctx->connected_clients++;
    ctx->total_connections++;
    return c;
}

void px_client_mark_dirty(px_client *c)
{
    if (c->dirty || c->closing) return;
    c->dirty = 1;
    /* first come, first written: replies go out in the order they arrived */
    c->next_dirty = NULL;
    if (c->ctx->dirty_clients_tail) c->ctx->dirty_clients_tail->next_dirty = c;
    else c->ctx->dirty_clients = c;
    c->ctx->dirty_clients_tail = c;
}

/* ---- the ordered reply queue --------------------------------------------- */

px_slot *px_client_slot(px_client *c, px_slot_kind kind)
{
    px_ctx *ctx = c->ctx;
    px_slot *s = ctx->free_slots;
    if (s) {
        ctx->free_slots = s->next;
        ctx->nfree_slots--;
    } else {
        s = calloc(1, sizeof *s);
        if (!s) abort();
    }
    s->next = NULL;
    s->client = c;
    s->done = 0;
    s->kind = (uint8_t)kind;
    s->need = 0;
    s->wrote_elsewhere = 0;
    if (c->tail) c->tail->next = s;
    else c->head = s;
    c->tail = s;
    c->pending++;
    return s;
}

static void slot_free(px_ctx *ctx, px_slot *s)
{
    if (ctx->nfree_slots >= SLOT_POOL_MAX) {
        px_buf_release(&s->reply);
        free(s);
        return;
    }
    if (s->reply.cap > 16 * 1024) px_buf_release(&s->reply);
    s->reply.rpos = s->reply.len = 0;
    s->client = NULL;
    s->next = ctx->free_slots;
    ctx->free_slots = s;
    ctx->nfree_slots++;
}

/* Output bytes the client has not read yet, for the output limits. */
static size_t client_out_bytes(const px_client *c) { return px_buf_unread(&c->out); }

/* Append a reply for the INFO slot: the leader's bulk plus our section. */
static void append_info(px_client *c, px_buf *dst, const char *bytes, size_t len);

/* RCPROXY TOKEN answered by a ROLE reply: the session's offset is known. */
static void append_token(px_client *c, px_buf *dst, const char *bytes, size_t len)
{
    long long off;
    char tok[128];
    if (repl_parse_role_offset(bytes, len, &off) == 0 && off > c->min_offset) c->min_offset = off;
    c->w_link = NULL;
    c->w_global = 0;
    if (len > 0 && bytes[0] == '-') {
        px_buf_append(dst, bytes, len);
        return;
    }
    repl_session_token(c, tok, sizeof tok);
    px_buf_add_bulk_str(dst, tok);
}

/* Write the reply of the head slot (bytes, or its parked buffer) to out. */
static void emit(px_client *c, px_slot *s, const char *bytes, size_t len)
{
    if (s->wrote_elsewhere) repl_session_wrote_elsewhere(c);
    if (s->kind == PX_SLOT_INFO && len > 0 && bytes[0] == '$')
        append_info(c, &c->out, bytes, len);
    else if (s->kind == PX_SLOT_TOKEN)
        append_token(c, &c->out, bytes, len);
    else
        px_buf_append(&c->out, bytes, len);
}

/* Pop answered slots from the head into the output, then react to the
 * queue draining (resume stalled input, release a blocking link). */
/* Answer the head slot s with its reply: pop it, write the reply out,
 * release a transaction link the reply ends, and recycle s. */
static void pop_head(px_client *c, px_slot *s, const char *bytes, size_t len)
{
    c->head = s->next;
    if (!c->head) c->tail = NULL;
    c->pending--;
    emit(c, s, bytes, len);
    if (s->kind == PX_SLOT_UNPIN && c->pin == PX_PIN_TX && !c->multi && !c->watching &&
        c->pinned && c->pinned->fifo_count == 0)
        px_client_unpin(c, 1);
    slot_free(c->ctx, s);
}

static void client_drain_head(px_client *c)
{
    while (c->head && c->head->done) {
        px_slot *s = c->head;
        pop_head(c, s, px_buf_rptr(&s->reply), px_buf_unread(&s->reply));
    }
    px_client_mark_dirty(c);
    if (c->pending == 0 && c->pin == PX_PIN_BLOCK) px_client_unpin(c, 1);
}

void px_slot_deliver(px_ctx *ctx, px_slot *s, const char *bytes, size_t len)
{
    px_client *c = s->client;
    if (!c) {
        slot_free(ctx, s);
        return;
    }
    if (c->head == s) {
        pop_head(c, s, bytes, len);
        client_drain_head(c);
        return;
    }
    px_buf_append(&s->reply, bytes, len);
    s->done = 1;
}

void px_slot_deliver_error(px_ctx *ctx, px_slot *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_slot_deliver_verror(ctx, s, fmt, ap);
    va_end(ap);
}

void px_slot_deliver_verror(px_ctx *ctx, px_slot *s, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    px_buf tmp = PX_BUF_INIT;
    px_buf_add_error(&tmp, msg);
    px_slot_deliver(ctx, s, tmp.data, tmp.len);
    px_buf_release(&tmp);
}

px_buf *px_client_reply(px_client *c)
{
    if (!c->head) {
        px_client_mark_dirty(c);
        return &c->out;
    }
    px_slot *s = px_client_slot(c, PX_SLOT_PLAIN);
    s->done = 1;
    return &s->reply;
}

void px_client_push(px_client *c, const char *bytes, size_t len)
{
    if (c->closing) return;
    px_buf_append(px_client_reply(c), bytes, len);
}

/* ---- pinning --------------------------------------------------------------- */

void px_client_unpin(px_client *c, int keep_link)
{
    px_link *l = c->pinned;
    c->pinned = NULL;
    c->pin = PX_PIN_NONE;
    c->multi = c->watching = 0;
    if (!l) return;
    l->owner = NULL;
    if (keep_link) px_link_release(l);
    else if (l->state != PX_LINK_CLOSED) px_link_fail(l, "client left its pinned state");
}

/* ---- input ------------------------------------------------------------------ */

/* Send a protocol error and close after it, as Redis does. */
static void client_protocol_error(px_client *c)
{
    px_ctx *ctx = c->ctx;
    px_buf *out = px_client_reply(c);
    px_buf_add_errorf(out, "ERR %s", c->parser->err);
    ctx->protocol_errors++;
    char ab[64];
    px_verbose("Protocol error (%s) from client id=%llu addr=%s", c->parser->err,
               (unsigned long long)c->id, px_client_addr(c, 0, ab, sizeof ab));
    c->close_after_reply = 1;
    client_set_reading(c, 0);
}

/* The request parser, made when the client first sends something (idle
 * clients hold none: see px_clients_cron). */
static resp_req_parser *client_parser(px_client *c)
{
    if (!c->parser) {
        c->parser = malloc(sizeof *c->parser);
        if (!c->parser) abort();
        resp_req_init(c->parser);
        c->parser->max_bulk_len = c->ctx->cfg.proto_max_bulk_len;
        c->parser->unauthenticated = !c->authenticated;
    }
    return c->parser;
}

/* Parse and dispatch every complete request in c->in, stopping when the
 * client stalls (a request waits for the replies ahead of it) or closes. */
static void client_process_input(px_client *c)
{
    while (!c->stalled && !c->closing && !c->close_after_reply && px_buf_unread(&c->in) > 0) {
        const char *start = px_buf_rptr(&c->in);
        int rc = resp_req_parse(client_parser(c), start, px_buf_unread(&c->in));
        if (rc == RESP_AGAIN) break;
        if (rc == RESP_ERR) {
            client_protocol_error(c);
            break;
        }
        if (c->parser->argc > 0) {
            if (px_dispatch(c, start) == PX_STALL) {
                c->stalled = 1;
                break;   /* not consumed: parsed again when resumed */
            }
        }
        c->in.rpos += c->parser->req_len;
    }
    if (c->in.rpos == c->in.len) {
        /* keep the buffer while the client is busy: px_clients_cron frees it
         * once the client has been idle a while */
        c->in.rpos = c->in.len = 0;
        if (c->in.cap > CLIENT_KEEP_BUF) px_buf_release(&c->in);
    }
    if (px_buf_unread(&c->in) > (size_t)c->ctx->cfg.client_query_buffer_limit) {
        char ab[64];
        px_warning("Closing client id=%llu addr=%s that reached max query buffer length",
                   (unsigned long long)c->id, px_client_addr(c, 0, ab, sizeof ab));
        px_client_close_async(c, "query buffer limit");
        return;
    }
    /* flow control: a client that does not read its replies is not read either */
    int pause = c->stalled || c->close_after_reply || c->pending >= CLIENT_MAX_PENDING ||
                client_out_bytes(c) >= CLIENT_OUT_PAUSE || c->ctx->shutting_down;
    client_set_reading(c, !pause);
}

void px_client_resume(px_client *c)
{
    c->stalled = 0;
    client_process_input(c);
}

static void client_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    px_client *c = w->data;
    if (c->in.rpos > 0 && c->in.cap - c->in.len < CLIENT_READ_CHUNK) px_buf_compact(&c->in);
    px_buf_reserve(&c->in, CLIENT_READ_CHUNK);
    ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n == 0) {
        px_client_close_async(c, NULL);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        px_client_close_async(c, strerror(errno));
        return;
    }
    c->in.len += (size_t)n;
    c->last_active = ev_now(c->ctx->loop);
    client_process_input(c);
}

/* ---- output ----------------------------------------------------------------- */

static void client_write(px_client *c)
{
    while (px_buf_unread(&c->out) > 0) {
        ssize_t n = write(c->fd, px_buf_rptr(&c->out), px_buf_unread(&c->out));
        if (n > 0) {
            px_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* a slow reader: reclaim what it did read before more is appended */
            if (c->out.rpos > 64 * 1024 && c->out.rpos >= c->out.len / 2) px_buf_compact(&c->out);
            if (!ev_is_active(&c->wio)) ev_io_start(c->ctx->loop, &c->wio);
            return;
        }
        px_client_close_async(c, n < 0 ? strerror(errno) : "write returned 0");
        return;
    }
    if (ev_is_active(&c->wio)) ev_io_stop(c->ctx->loop, &c->wio);
    if (c->out.cap > CLIENT_KEEP_BUF) px_buf_release(&c->out);
    if (c->close_after_reply && !c->head) {
        px_client_close_async(c, NULL);
        return;
    }
    /* output drained: a client paused for flow control may be read again */
    if (!c->reading && !c->stalled && !c->close_after_reply && !c->ctx->shutting_down &&
        c->pending < CLIENT_MAX_PENDING)
        client_process_input(c);
}

static void client_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop; (void)revents;
    client_write(w->data);
}

/* Enforce client-output-buffer-limit (hard: at once; soft: after seconds). */
static int client_check_obuf(px_client *c)
{
    const conf_obuf_limit *lim = c->pin == PX_PIN_PUBSUB ? &c->ctx->cfg.obuf_pubsub
                                                         : &c->ctx->cfg.obuf_normal;
    size_t used = client_out_bytes(c);
    if (lim->hard_bytes > 0 && used > (size_t)lim->hard_bytes) {
        char ab[64];
        px_warning("Client id=%llu addr=%s closed for overcoming of output buffer limits.",
                   (unsigned long long)c->id, px_client_addr(c, 0, ab, sizeof ab));
        px_client_close_async(c, "output buffer limit");
        return -1;
    }
    if (lim->soft_bytes > 0 && used > (size_t)lim->soft_bytes) {
        double now = ev_now(c->ctx->loop);
        if (c->obuf_soft_since == 0) c->obuf_soft_since = now;
        else if (now - c->obuf_soft_since > lim->soft_seconds) {
            char ab[64];
            px_warning("Client id=%llu addr=%s closed for overcoming of output buffer limits.",
                       (unsigned long long)c->id, px_client_addr(c, 0, ab, sizeof ab));
            px_client_close_async(c, "output buffer soft limit");
            return -1;
        }
    } else {
        c->obuf_soft_since = 0;
    }
    return 0;
}

void px_clients_flush(px_ctx *ctx)
{
    while (ctx->dirty_clients) {
        px_client *c = ctx->dirty_clients;
        ctx->dirty_clients = c->next_dirty;
        if (!ctx->dirty_clients) ctx->dirty_clients_tail = NULL;
        c->dirty = 0;
        if (c->closing) continue;
        if (c->stalled && c->pending == 0) {
            px_client_resume(c);
            if (c->closing) continue;
        }
        if (client_check_obuf(c) < 0) continue;
        if (!ev_is_active(&c->wio)) client_write(c);
    }
}

/* ---- closing ------------------------------------------------------------------ */

void px_client_close_async(px_client *c, const char *why)
{
    if (c->closing) return;
    if (why && px_log_enabled(CONF_LOG_VERBOSE)) {
        char ab[64];
        px_verbose("Client id=%llu addr=%s closed: %s", (unsigned long long)c->id,
                   px_client_addr(c, 0, ab, sizeof ab), why);
    }
    c->closing = 1;
    client_set_reading(c, 0);
    ev_io_stop(c->ctx->loop, &c->wio);
    c->next_closing = c->ctx->closing_clients;
    c->ctx->closing_clients = c;
}

static void client_free(px_client *c)
{
    px_ctx *ctx = c->ctx;
    /* requests still in flight keep their slots; the replies are dropped */
    for (px_slot *s = c->head; s;) {
        px_slot *next = s->next;
        if (s->done) slot_free(ctx, s);
        else s->client = NULL;
        s = next;
    }
    c->head = c->tail = NULL;
    if (c->pinned) {
        px_link *l = c->pinned;
        c->pinned = NULL;
        l->owner = NULL;
        if (l->state != PX_LINK_CLOSED) {
            if (c->pin == PX_PIN_TX && !c->multi && !c->watching && l->fifo_count == 0)
                px_link_release(l);
            else
                px_link_fail(l, "client closed");
        }
    }
    close(c->fd);
    if (c->prev) c->prev->next = c->next;
    else ctx->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    ctx->connected_clients--;
    px_buf_release(&c->in);
    px_buf_release(&c->out);
    if (c->parser) {
        resp_req_free(c->parser);
        free(c->parser);
    }
    free(c->name);
    free(c->lib_name);
    free(c->lib_ver);
    free(c);
}

void px_clients_reap(px_ctx *ctx)
{
    while (ctx->closing_clients) {
        px_client *c = ctx->closing_clients;
        ctx->closing_clients = c->next_closing;
        /* unlink from the dirty list if present */
        px_client *prev = NULL;
        for (px_client **pp = &ctx->dirty_clients; *pp; prev = *pp, pp = &(*pp)->next_dirty)
            if (*pp == c) {
                *pp = c->next_dirty;
                if (ctx->dirty_clients_tail == c) ctx->dirty_clients_tail = prev;
                break;
            }
        client_free(c);
    }
}

void px_clients_cron(px_ctx *ctx)
{
    double now = ev_now(ctx->loop);
    int timeout = ctx->cfg.timeout;
    for (px_client *c = ctx->clients; c; c = c->next) {
        if (c->closing) continue;
        if (timeout > 0 && c->pending == 0 && c->pin != PX_PIN_PUBSUB &&
            now - c->last_active > timeout) {
            px_client_close_async(c, "idle timeout");
            continue;
        }
        if (px_buf_unread(&c->out) > 0) client_check_obuf(c);
        /* buffers belong to busy connections only */
        if (c->pending == 0 && now - c->last_active > CLIENT_IDLE_FREE) {
            if (c->in.cap && px_buf_unread(&c->in) == 0) px_buf_release(&c->in);
            if (c->out.cap && px_buf_unread(&c->out) == 0) px_buf_release(&c->out);
            if (c->parser && px_buf_unread(&c->in) == 0) {
                resp_req_free(c->parser);
                free(c->parser);
                c->parser = NULL;
            }
        }
    }
}

/* ---- INFO splice ------------------------------------------------------------- */

#include "proxy/info.h"

static void append_info(px_client *c, px_buf *dst, const char *bytes, size_t len)
{
    /* bytes = "$<n>\r\n<text>\r\n" from the leader */
    const char *crlf = memchr(bytes, '\r', len);
    if (!crlf || crlf[1] != '\n' || len < (size_t)(crlf - bytes) + 4) {
        px_buf_append(dst, bytes, len);
        return;
    }
    const char *text = crlf + 2;
    size_t tlen = len - (size_t)(text - bytes) - 2;
    px_buf section = PX_BUF_INIT;
    px_info_section(c->ctx, &section);
    /* Redis separates sections with an empty line; each line ends in CRLF */
    px_buf_add_header(dst, '$', (long long)(tlen + 2 + section.len));
    px_buf_append(dst, text, tlen);
    px_buf_append(dst, "\r\n", 2);
    px_buf_append(dst, section.data, section.len);
    px_buf_append(dst, "\r\n", 2);
    px_buf_release(&section);
}
