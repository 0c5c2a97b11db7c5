/*
 * delay_relay.c -- a TCP relay that holds one direction back (fault injection).
 *
 *   delay_relay --listen PORT --target HOST:PORT --delay MS [--both]
 *
 * Listens on 127.0.0.1:PORT.  Every accepted connection gets its own
 * connection to the target, and bytes are forwarded both ways:
 *
 *      client  --- up: at once (delayed too with --both) --->  target
 *      client  <-- down: each chunk held MS ms after arrival --  target
 *
 * A replica started with `--replicaof 127.0.0.1 PORT` (target: its leader)
 * gets the replication stream MS ms late, so it really is MS behind and
 * stale reads become observable.  Each direction is a FIFO of chunks stamped
 * with their arrival time; a chunk is written once arrival + delay has
 * passed, in order.  An ev_timer waits for the head chunk, an ev_io for a
 * writable peer: nothing spins.  A direction holds at most DIR_CAP bytes;
 * beyond that its source is not read until the queue drains.  EOF from one
 * side is passed on once what it sent before has been delivered (the pair is
 * then closed); an error on either side closes the pair at once.
 *
 * Prints "ready" on stdout once listening.  SIGTERM/SIGINT: exit 0.
 * SIGUSR1: delay 0 from now on (what is held is released at once);
 * SIGUSR2: back to MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#define READ_CHUNK (64 * 1024)          /* bytes read per readable event */
#define DIR_CAP ((size_t)64 << 20)      /* bytes queued per direction, then pause */
#define MAX_PAIRS 512                   /* accepted connections at once */
#define ACCEPTS_PER_EVENT 64
#define MAX_DELAY_MS 3600000L
#define DUE_SLACK 0.0005                /* s: a chunk this close to due is due */

typedef struct chunk {
    struct chunk *next;
    ev_tstamp arrived;                  /* ev_now() when read */
    size_t len;
    size_t off;                         /* bytes already written */
    char data[];
} chunk;

struct pair;

/* One direction of a pair: bytes read from `from` queued for `to`. */
typedef struct flow {
    struct pair *pair;
    const char *name;                   /* "up" / "down", for messages */
    int from;
    int to;
    bool delayed;                       /* honours the relay's delay */
    bool eof;                           /* `from` sent EOF */
    chunk *head;
    chunk *tail;
    size_t queued;                      /* unwritten bytes in the queue */
    ev_io rd;                           /* `from` readable */
    ev_io wr;                           /* `to` writable */
    ev_timer due;                       /* the head chunk becomes due */
} flow;

typedef struct pair {
    struct relay *relay;
    struct pair *prev;
    struct pair *next;
    unsigned long id;
    int cfd;                            /* accepted client */
    int tfd;                            /* our connection to the target */
    bool connected;                     /* tfd's connect() completed */
    ev_io conn_w;                       /* tfd writable: connect done */
    flow up;                            /* client -> target */
    flow down;                          /* target -> client */
} pair;

typedef struct relay {
    struct ev_loop *loop;
    int lfd;
    ev_io accept_w;
    ev_signal sig_term;
    ev_signal sig_int;
    ev_signal sig_usr1;
    ev_signal sig_usr2;
    struct sockaddr_storage target;
    socklen_t target_len;
    ev_tstamp delay;                    /* configured, seconds */
    ev_tstamp cur_delay;                /* in force (0 after SIGUSR1) */
    bool both;
    pair *pairs;
    int npairs;
    unsigned long next_id;
} relay;

/* ------------------------------------------------------------------------ */
/* options                                                                  */

typedef struct opts {
    int listen_port;
    char target_host[256];
    char target_port[8];
    long delay_ms;
    bool both;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: delay_relay --listen PORT --target HOST:PORT --delay MS [--both]\n"
            "  Relays 127.0.0.1:PORT to HOST:PORT; bytes from the target are held MS ms\n"
            "  (both directions with --both).  Prints \"ready\" once listening.\n"
            "  SIGUSR1: delay 0; SIGUSR2: delay MS again; SIGTERM: exit.\n");
}

/* Parse a decimal long in [lo, hi] from s (whole string).  False if bad. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Fill o from argv.  Returns 0 when good, 1 for --help, -1 (after printing
 * why to stderr) when bad. */
static int parse_opts(int argc, char **argv, opts *o)
{
    bool have_listen = false, have_target = false, have_delay = false;
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        if (strcmp(a, "--both") == 0) {
            o->both = true;
            continue;
        }
        if (strcmp(a, "--listen") == 0) {
            if (!parse_long(v, 1, 65535, &n)) {
                fprintf(stderr, "delay_relay: --listen needs a port 1..65535\n");
                return -1;
            }
            o->listen_port = (int)n;
            have_listen = true;
        } else if (strcmp(a, "--delay") == 0) {
            if (!parse_long(v, 0, MAX_DELAY_MS, &n)) {
                fprintf(stderr, "delay_relay: --delay needs milliseconds 0..%ld\n",
                        MAX_DELAY_MS);
                return -1;
            }
            o->delay_ms = n;
            have_delay = true;
        } else if (strcmp(a, "--target") == 0) {
            const char *colon = v ? strrchr(v, ':') : NULL;
            size_t hlen = colon ? (size_t)(colon - v) : 0;
            if (!colon || hlen == 0 || hlen >= sizeof o->target_host ||
                !parse_long(colon + 1, 1, 65535, &n)) {
                fprintf(stderr, "delay_relay: --target needs HOST:PORT\n");
                return -1;
            }
            memcpy(o->target_host, v, hlen);
            o->target_host[hlen] = '\0';
            snprintf(o->target_port, sizeof o->target_port, "%ld", n);
            have_target = true;
        } else {
            fprintf(stderr, "delay_relay: unknown argument '%s'\n", a);
            return -1;
        }
        i++;    /* consumed the value */
    }
    if (!have_listen || !have_target || !have_delay) {
        fprintf(stderr, "delay_relay: --listen, --target and --delay are required\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* pairs                                                                    */

static void pair_close(pair *p, const char *why);
static bool flow_pump(flow *f);

static ev_tstamp flow_delay(const flow *f)
{
    return f->delayed ? f->pair->relay->cur_delay : 0;
}

static void flow_free_queue(flow *f)
{
    chunk *c = f->head;
    while (c) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    f->head = f->tail = NULL;
    f->queued = 0;
}

/* Close both sockets of p, stop its watchers, free it.  p is invalid after. */
static void pair_close(pair *p, const char *why)
{
    relay *r = p->relay;
    flow *flows[2] = { &p->up, &p->down };
    for (int i = 0; i < 2; i++) {
        ev_io_stop(r->loop, &flows[i]->rd);
        ev_io_stop(r->loop, &flows[i]->wr);
        ev_timer_stop(r->loop, &flows[i]->due);
        flow_free_queue(flows[i]);
    }
    ev_io_stop(r->loop, &p->conn_w);
    close(p->cfd);
    close(p->tfd);
    if (p->prev)
        p->prev->next = p->next;
    else
        r->pairs = p->next;
    if (p->next)
        p->next->prev = p->prev;
    r->npairs--;
    fprintf(stderr, "delay_relay: connection %lu closed: %s\n", p->id, why);
    free(p);
}

/* Start or stop reading f's source: read while it has not sent EOF and the
 * queue is under DIR_CAP; the target side only once it is connected (the
 * client side may be read before: its bytes wait in the queue). */
static void flow_update_reading(flow *f)
{
    struct ev_loop *loop = f->pair->relay->loop;
    bool want = !f->eof && f->queued < DIR_CAP;
    if (f == &f->pair->down && !f->pair->connected)
        want = false;
    if (want && !ev_is_active(&f->rd))
        ev_io_start(loop, &f->rd);
    else if (!want && ev_is_active(&f->rd))
        ev_io_stop(loop, &f->rd);
}

/* Write every due chunk of f to its destination, in order; arm the timer
 * for the next chunk or the write watcher when the destination is full.
 * When the source sent EOF and everything is delivered, the pair is closed.
 * Returns false when the pair was closed (f is then invalid). */
static bool flow_pump(flow *f)
{
    pair *p = f->pair;
    struct ev_loop *loop = p->relay->loop;
    if (f == &p->up && !p->connected) {
        flow_update_reading(f);     /* queued until connect completes */
        return true;
    }
    ev_timer_stop(loop, &f->due);
    while (f->head) {
        chunk *c = f->head;
        ev_tstamp wait = c->arrived + flow_delay(f) - ev_now(loop);
        if (wait > DUE_SLACK) {
            ev_timer_set(&f->due, wait, 0.);
            ev_timer_start(loop, &f->due);
            break;
        }
        ssize_t n = send(f->to, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(loop, &f->wr);
            goto reading;
        }
        if (n < 0) {
            char why[96];
            snprintf(why, sizeof why, "%s write: %s", f->name, strerror(errno));
            pair_close(p, why);
            return false;
        }
        c->off += (size_t)n;
        f->queued -= (size_t)n;
        if (c->off == c->len) {
            f->head = c->next;
            if (!f->head)
                f->tail = NULL;
            free(c);
        }
    }
    ev_io_stop(loop, &f->wr);
    if (!f->head && f->eof) {
        char why[64];
        snprintf(why, sizeof why, "EOF from the %s", f == &p->up ? "client" : "target");
        pair_close(p, why);
        return false;
    }
reading:
    flow_update_reading(f);
    return true;
}

static void flow_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    flow *f = w->data;
    char buf[READ_CHUNK];
    ssize_t n = recv(f->from, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        char why[96];
        snprintf(why, sizeof why, "%s read: %s", f->name, strerror(errno));
        pair_close(f->pair, why);
        return;
    }
    if (n == 0) {
        f->eof = true;
        flow_pump(f);   /* closes the pair once the queue is delivered */
        return;
    }
    chunk *c = malloc(sizeof *c + (size_t)n);
    if (!c) {
        pair_close(f->pair, "out of memory");
        return;
    }
    c->next = NULL;
    c->arrived = ev_now(loop);
    c->len = (size_t)n;
    c->off = 0;
    memcpy(c->data, buf, (size_t)n);
    if (f->tail)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    f->queued += (size_t)n;
    /* when older chunks wait, the timer or the write watcher is armed */
    if (f->head == c)
        flow_pump(f);
    else
        flow_update_reading(f);
}

static void flow_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    flow_pump(w->data);
}

static void flow_due_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    flow *f = w->data;
    if (!ev_is_active(&f->wr))
        flow_pump(f);
}

static void flow_init(pair *p, flow *f, const char *name, int from, int to,
                      bool delayed)
{
    f->pair = p;
    f->name = name;
    f->from = from;
    f->to = to;
    f->delayed = delayed;
    ev_io_init(&f->rd, flow_read_cb, from, EV_READ);
    ev_io_init(&f->wr, flow_write_cb, to, EV_WRITE);
    ev_timer_init(&f->due, flow_due_cb, 0., 0.);
    f->rd.data = f->wr.data = f->due.data = f;
}

/* The target connection completed (or failed). */
static void connect_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    pair *p = w->data;
    int err = 0;
    socklen_t len = sizeof err;
    ev_io_stop(loop, &p->conn_w);
    if (getsockopt(p->tfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        char why[96];
        snprintf(why, sizeof why, "connect to the target: %s", strerror(err));
        pair_close(p, why);
        return;
    }
    p->connected = true;
    flow_update_reading(&p->down);
    flow_pump(&p->up);
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Take accepted socket cfd: connect to the target and set up both flows.
 * Closes cfd on failure. */
static void pair_open(relay *r, int cfd)
{
    pair *p = NULL;
    int tfd = socket(r->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (tfd < 0) {
        fprintf(stderr, "delay_relay: socket: %s\n", strerror(errno));
        goto fail;
    }
    set_nodelay(cfd);
    set_nodelay(tfd);
    p = calloc(1, sizeof *p);
    if (!p)
        goto fail;
    p->relay = r;
    p->id = ++r->next_id;
    p->cfd = cfd;
    p->tfd = tfd;
    flow_init(p, &p->up, "up", cfd, tfd, r->both);
    flow_init(p, &p->down, "down", tfd, cfd, true);
    ev_io_init(&p->conn_w, connect_cb, tfd, EV_WRITE);
    p->conn_w.data = p;
    p->next = r->pairs;
    if (r->pairs)
        r->pairs->prev = p;
    r->pairs = p;
    r->npairs++;
    fprintf(stderr, "delay_relay: connection %lu accepted\n", p->id);
    if (connect(tfd, (struct sockaddr *)&r->target, r->target_len) == 0) {
        p->connected = true;
        flow_update_reading(&p->down);
    } else if (errno == EINPROGRESS) {
        ev_io_start(r->loop, &p->conn_w);
    } else {
        char why[96];
        snprintf(why, sizeof why, "connect to the target: %s", strerror(errno));
        pair_close(p, why);
        return;
    }
    flow_update_reading(&p->up);
    return;
fail:
    if (tfd >= 0)
        close(tfd);
    close(cfd);
    free(p);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    relay *r = w->data;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                fprintf(stderr, "delay_relay: accept: %s\n", strerror(errno));
            return;
        }
        if (r->npairs >= MAX_PAIRS) {
            fprintf(stderr, "delay_relay: %d connections open, refusing one\n",
                    r->npairs);
            close(fd);
            continue;
        }
        pair_open(r, fd);
    }
}

/* ------------------------------------------------------------------------ */
/* signals                                                                  */

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* SIGUSR1 (delay 0) / SIGUSR2 (configured delay): re-evaluate every delayed
 * flow so that held chunks go out at once or wait again. */
static void delay_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    relay *r = w->data;
    r->cur_delay = w->signum == SIGUSR1 ? 0. : r->delay;
    fprintf(stderr, "delay_relay: delay now %.0f ms\n", r->cur_delay * 1000.);
    pair *p = r->pairs;
    while (p) {
        pair *next = p->next;   /* p may be closed by a pump */
        bool alive = true;
        if (!ev_is_active(&p->down.wr))
            alive = flow_pump(&p->down);
        if (alive && p->up.delayed && !ev_is_active(&p->up.wr))
            flow_pump(&p->up);
        p = next;
    }
}

/* ------------------------------------------------------------------------ */
/* setup                                                                    */

/* Resolve the target into r->target.  False (after a message) on failure. */
static bool resolve_target(relay *r, const opts *o)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(o->target_host, o->target_port, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "delay_relay: cannot resolve %s: %s\n", o->target_host,
                gai_strerror(rc));
        return false;
    }
    memcpy(&r->target, res->ai_addr, res->ai_addrlen);
    r->target_len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

/* Listening socket on 127.0.0.1:port, non-blocking; -1 (after a message). */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "delay_relay: socket: %s\n", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        fprintf(stderr, "delay_relay: listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void signal_watch(relay *r, ev_signal *w, void (*cb)(struct ev_loop *, ev_signal *, int),
                         int sig)
{
    ev_signal_init(w, cb, sig);
    w->data = r;
    ev_signal_start(r->loop, w);
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);

    relay r = { .lfd = -1, .delay = (ev_tstamp)o.delay_ms / 1000., .both = o.both };
    r.cur_delay = r.delay;
    int status = 1;
    r.loop = ev_default_loop(EVFLAG_AUTO);
    if (!r.loop) {
        fprintf(stderr, "delay_relay: cannot create the event loop\n");
        return 1;
    }
    if (!resolve_target(&r, &o))
        goto done;
    r.lfd = listen_on(o.listen_port);
    if (r.lfd < 0)
        goto done;
    ev_io_init(&r.accept_w, accept_cb, r.lfd, EV_READ);
    r.accept_w.data = &r;
    ev_io_start(r.loop, &r.accept_w);
    signal_watch(&r, &r.sig_term, stop_cb, SIGTERM);
    signal_watch(&r, &r.sig_int, stop_cb, SIGINT);
    signal_watch(&r, &r.sig_usr1, delay_cb, SIGUSR1);
    signal_watch(&r, &r.sig_usr2, delay_cb, SIGUSR2);

    printf("ready\n");
    fflush(stdout);
    fprintf(stderr, "delay_relay: 127.0.0.1:%d -> %s:%s, delay %ld ms (%s)\n",
            o.listen_port, o.target_host, o.target_port, o.delay_ms,
            o.both ? "both directions" : "target to client");
    ev_run(r.loop, 0);
    status = 0;

done:
    while (r.pairs)
        pair_close(r.pairs, "relay stopping");
    if (r.lfd >= 0)
        close(r.lfd);
    ev_loop_destroy(r.loop);
    return status;
}
