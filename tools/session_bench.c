/*
 * session_bench.c -- closed-loop load generator for rcproxy's session guarantees.
 *
 *   session_bench --port P --clients C --seconds S --mix W:R
 *                 [--consistency eventual|ryw|monotonic|strong]
 *                 [--write-ack async|semisync|sync] [--keys K] [--seed N]
 *
 * C threads, each with its own hiredis connection to 127.0.0.1:P.  A thread
 * first sends `RCPROXY CONSISTENCY L` and `RCPROXY WRITEACK A` when given
 * (anything but +OK is a setup failure), waits for every other thread to be
 * connected, then for S seconds issues one request at a time (no
 * pipelining): with probability W/(W+R)
 *
 *     SET key:<thread>:<i % K> <counter>
 *
 * else a GET of one of the keys this thread wrote most recently.  Only the
 * thread writes its keys, so a GET whose value differs from the thread's
 * last SET of that key read stale data ("stale_reads"; the counter starts
 * at a per-run base so values of earlier runs never look fresh).
 *
 * Latencies go into per-thread log-linear histograms (1 us resolution up
 * to 255 us, then 128 sub-buckets per power of two: < 0.8 % error), merged
 * at the end.  Output, one line of key=value on stdout:
 *
 *   ops ops_per_sec reads writes errors stale_reads conn_failures seconds
 *   p50_us p99_us read_p50_us read_p99_us write_p50_us write_p99_us
 *
 * Exit status: 0 on success; 1 when a connection failed or broke (the line
 * is still printed if the run got that far); 2 on bad arguments.  Every
 * request has a socket timeout and the process arms an alarm, so a run
 * never outlives S + 30 s.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define SB_HOST "127.0.0.1"
#define SB_MAX_CLIENTS 1024
#define SB_MAX_SECONDS 3600
#define SB_MAX_KEYS 10000000L
#define SB_RECENT 16            /* reads pick among this many latest writes */
#define SB_IO_TIMEOUT_S 5       /* per request socket timeout */

/* ---------------------------------------------------------------------- */
/* histogram                                                               */
/* ---------------------------------------------------------------------- */

#define H_EXACT 256             /* values below: one bucket each */
#define H_SUB 128               /* sub-buckets per power of two above */
#define H_MAXBIT 40             /* values >= 2^40 us are clamped */
#define H_BUCKETS (H_EXACT + (H_MAXBIT - 8) * H_SUB)

typedef struct {
    uint64_t count[H_BUCKETS];
    uint64_t n;
} hist;

static int hist_index(uint64_t v)
{
    if (v < H_EXACT) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    if (msb >= H_MAXBIT) return H_BUCKETS - 1;
    int shift = msb - 7;
    return H_EXACT + (msb - 8) * H_SUB + (int)((v >> shift) - H_SUB);
}

/* The middle of bucket i, in microseconds. */
static uint64_t hist_value(int i)
{
    if (i < H_EXACT) return (uint64_t)i;
    int msb = (i - H_EXACT) / H_SUB + 8;
    int shift = msb - 7;
    uint64_t sub = (uint64_t)((i - H_EXACT) % H_SUB) + H_SUB;
    return (sub << shift) + ((1ULL << shift) >> 1);
}

static void hist_add(hist *h, uint64_t us)
{
    h->count[hist_index(us)]++;
    h->n++;
}

static void hist_merge(hist *into, const hist *from)
{
    for (int i = 0; i < H_BUCKETS; i++) into->count[i] += from->count[i];
    into->n += from->n;
}

/* The q-quantile (0 < q <= 1) in microseconds; 0 for an empty histogram. */
static uint64_t hist_quantile(const hist *h, double q)
{
    if (h->n == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.5);
    if (rank < 1) rank = 1;
    if (rank > h->n) rank = h->n;
    uint64_t seen = 0;
    for (int i = 0; i < H_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) return hist_value(i);
    }
    return hist_value(H_BUCKETS - 1);
}

/* ---------------------------------------------------------------------- */
/* options                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct {
    int port;
    int clients;
    int seconds;
    long write_w, read_w;
    const char *consistency;    /* NULL: leave the proxy's default */
    const char *write_ack;      /* NULL: leave the proxy's default */
    long keys;
    uint64_t seed;
} sb_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: session_bench --port P --clients C --seconds S --mix W:R\n"
            "                     [--consistency eventual|ryw|monotonic|strong]\n"
            "                     [--write-ack async|semisync|sync] [--keys K] [--seed N]\n"
            "  C threads (1..%d), one connection each to " SB_HOST ":P, one request at a time\n"
            "  for S seconds (1..%d): SET with weight W, GET of a recently written key with\n"
            "  weight R.  K keys per thread (default 1000).  Prints one key=value line.\n",
            SB_MAX_CLIENTS, SB_MAX_SECONDS);
}

/* Parse s as a whole decimal integer in [lo, hi] into *out; false otherwise. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool one_of(const char *s, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(s, *names) == 0) return true;
    return false;
}

static bool parse_mix(const char *s, long *w, long *r)
{
    const char *colon = strchr(s, ':');
    char left[32];
    if (!colon || (size_t)(colon - s) >= sizeof left) return false;
    memcpy(left, s, (size_t)(colon - s));
    left[colon - s] = '\0';
    if (!parse_long(left, 0, 1000000, w) || !parse_long(colon + 1, 0, 1000000, r)) return false;
    return *w + *r > 0;
}

/* Fill o from argv.  Returns 0, or prints the reason and returns 2. */
static int parse_opts(int argc, char **argv, sb_opts *o)
{
    static const char *const levels[] = {"eventual", "ryw", "monotonic", "strong", NULL};
    static const char *const acks[] = {"async", "semisync", "sync", NULL};
    bool have_port = false, have_clients = false, have_seconds = false, have_mix = false;
    long v;

    memset(o, 0, sizeof *o);
    o->keys = 1000;
    o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "session_bench: %s: missing value (or unknown option)\n", a);
            return 2;
        }
        const char *val = argv[++i];
        if (strcmp(a, "--port") == 0) {
            if (!parse_long(val, 1, 65535, &v)) goto bad;
            o->port = (int)v;
            have_port = true;
        } else if (strcmp(a, "--clients") == 0) {
            if (!parse_long(val, 1, SB_MAX_CLIENTS, &v)) goto bad;
            o->clients = (int)v;
            have_clients = true;
        } else if (strcmp(a, "--seconds") == 0) {
            if (!parse_long(val, 1, SB_MAX_SECONDS, &v)) goto bad;
            o->seconds = (int)v;
            have_seconds = true;
        } else if (strcmp(a, "--mix") == 0) {
            if (!parse_mix(val, &o->write_w, &o->read_w)) goto bad;
            have_mix = true;
        } else if (strcmp(a, "--consistency") == 0) {
            if (!one_of(val, levels)) goto bad;
            o->consistency = val;
        } else if (strcmp(a, "--write-ack") == 0) {
            if (!one_of(val, acks)) goto bad;
            o->write_ack = val;
        } else if (strcmp(a, "--keys") == 0) {
            if (!parse_long(val, 1, SB_MAX_KEYS, &o->keys)) goto bad;
        } else if (strcmp(a, "--seed") == 0) {
            if (!parse_long(val, 0, LONG_MAX, &v)) goto bad;
            o->seed = (uint64_t)v;
        } else {
            fprintf(stderr, "session_bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        continue;
bad:
        fprintf(stderr, "session_bench: bad value for %s: '%s'\n", a, val);
        return 2;
    }
    if (!have_port || !have_clients || !have_seconds || !have_mix) {
        fprintf(stderr, "session_bench: --port, --clients, --seconds and --mix are required\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* workers                                                                 */
/* ---------------------------------------------------------------------- */

/* The start gate: workers check in once connected (or failed) and wait for
 * main to open it, so that the timed phase starts for all at once. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int checked_in;
    bool open;
    bool abort;                 /* a setup failed: nobody runs */
} gate;

typedef struct {
    const sb_opts *o;
    int id;
    gate *g;
    redisContext *c;
    uint64_t rng;
    int64_t *last;              /* per key slot: last value written, -1 none */
    bool setup_failed;
    bool conn_failed;
    char msg[256];
    uint64_t reads, writes, errors, stale;
    hist hr, hw;
} worker;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Connect and send the session directives.  Returns true when the session is
 * ready; otherwise w->msg says why.  The context stays in w->c either way
 * (freed by the caller). */
static bool worker_setup(worker *w)
{
    struct timeval tv = {2, 0};
    w->c = redisConnectWithTimeout(SB_HOST, w->o->port, tv);
    if (!w->c || w->c->err) {
        snprintf(w->msg, sizeof w->msg, "connect to %s:%d: %s", SB_HOST, w->o->port,
                 w->c ? w->c->errstr : "out of memory");
        return false;
    }
    struct timeval io = {SB_IO_TIMEOUT_S, 0};
    redisSetTimeout(w->c, io);
    const char *names[2] = {"CONSISTENCY", "WRITEACK"};
    const char *vals[2] = {w->o->consistency, w->o->write_ack};
    for (int i = 0; i < 2; i++) {
        if (!vals[i]) continue;
        redisReply *r = redisCommand(w->c, "RCPROXY %s %s", names[i], vals[i]);
        bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
        if (!ok)
            snprintf(w->msg, sizeof w->msg, "RCPROXY %s %s: %s", names[i], vals[i],
                     !r ? w->c->errstr : (r->type == REDIS_REPLY_ERROR ||
                                          r->type == REDIS_REPLY_STATUS) ? r->str
                                                                          : "unexpected reply");
        if (r) freeReplyObject(r);
        if (!ok) return false;
    }
    return true;
}

/* One request; records latency and outcome.  Returns false when the
 * connection is broken (the thread must stop). */
static bool worker_op(worker *w, uint64_t *written, int64_t *counter)
{
    const sb_opts *o = w->o;
    char key[64];
    bool write = (long)(xorshift(&w->rng) % (uint64_t)(o->write_w + o->read_w)) < o->write_w;
    long slot;
    if (write) {
        slot = (long)(*written % (uint64_t)o->keys);
    } else if (*written == 0) {
        slot = (long)(xorshift(&w->rng) % (uint64_t)o->keys);  /* nothing written yet */
    } else {
        uint64_t span = *written < SB_RECENT ? *written : SB_RECENT;
        if (span > (uint64_t)o->keys) span = (uint64_t)o->keys;
        uint64_t back = xorshift(&w->rng) % span;   /* 0 = the latest write */
        slot = (long)((*written - 1 - back) % (uint64_t)o->keys);
    }
    snprintf(key, sizeof key, "key:%d:%ld", w->id, slot);

    uint64_t t0 = now_us();
    redisReply *r = write ? redisCommand(w->c, "SET %s %" PRId64, key, *counter)
                          : redisCommand(w->c, "GET %s", key);
    uint64_t dt = now_us() - t0;
    if (!r) {
        w->errors++;
        w->conn_failed = true;
        snprintf(w->msg, sizeof w->msg, "%s: %s", write ? "SET" : "GET", w->c->errstr);
        return false;
    }
    if (write) {
        w->writes++;
        hist_add(&w->hw, dt);
        if (r->type == REDIS_REPLY_STATUS) {
            w->last[slot] = *counter;
        } else {
            w->errors++;
            w->last[slot] = -2;     /* outcome unknown: do not judge later reads */
            if (!w->msg[0] && r->type == REDIS_REPLY_ERROR)
                snprintf(w->msg, sizeof w->msg, "SET: %s", r->str);
        }
        (*written)++;
        (*counter)++;
    } else {
        w->reads++;
        hist_add(&w->hr, dt);
        if (r->type == REDIS_REPLY_ERROR) {
            w->errors++;
            if (!w->msg[0]) snprintf(w->msg, sizeof w->msg, "GET: %s", r->str);
        } else if (w->last[slot] >= 0) {
            int64_t got = -1;
            if (r->type == REDIS_REPLY_STRING) got = strtoll(r->str, NULL, 10);
            if (got != w->last[slot]) w->stale++;
        }
    }
    freeReplyObject(r);
    return true;
}

/* Check in at the gate and wait until main opens it.  Returns true when the
 * timed phase should run. */
static bool gate_pass(gate *g, bool failed)
{
    pthread_mutex_lock(&g->mu);
    g->checked_in++;
    if (failed) g->abort = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
    bool run = !g->abort;
    pthread_mutex_unlock(&g->mu);
    return run;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    w->setup_failed = !worker_setup(w);
    if (!gate_pass(w->g, w->setup_failed)) return NULL;

    /* values start at a per-run base so keys left by earlier runs never match */
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t counter = ((int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000) * 1000000;
    uint64_t written = 0;
    uint64_t end = now_us() + (uint64_t)w->o->seconds * 1000000u;
    while (now_us() < end)
        if (!worker_op(w, &written, &counter)) break;
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* main                                                                    */
/* ---------------------------------------------------------------------- */

static void report(const worker *ws, int n, double secs)
{
    static hist all, hr, hw;    /* large: not on the stack */
    uint64_t reads = 0, writes = 0, errors = 0, stale = 0, conn = 0;
    memset(&hr, 0, sizeof hr);
    memset(&hw, 0, sizeof hw);
    for (int i = 0; i < n; i++) {
        reads += ws[i].reads;
        writes += ws[i].writes;
        errors += ws[i].errors;
        stale += ws[i].stale;
        conn += ws[i].conn_failed;
        hist_merge(&hr, &ws[i].hr);
        hist_merge(&hw, &ws[i].hw);
    }
    all = hr;
    hist_merge(&all, &hw);
    all.n = hr.n + hw.n;
    uint64_t ops = reads + writes;
    printf("ops=%" PRIu64 " ops_per_sec=%.1f reads=%" PRIu64 " writes=%" PRIu64
           " errors=%" PRIu64 " stale_reads=%" PRIu64 " conn_failures=%" PRIu64
           " seconds=%.3f p50_us=%" PRIu64 " p99_us=%" PRIu64
           " read_p50_us=%" PRIu64 " read_p99_us=%" PRIu64
           " write_p50_us=%" PRIu64 " write_p99_us=%" PRIu64 "\n",
           ops, secs > 0 ? (double)ops / secs : 0.0, reads, writes, errors, stale, conn, secs,
           hist_quantile(&all, 0.50), hist_quantile(&all, 0.99),
           hist_quantile(&hr, 0.50), hist_quantile(&hr, 0.99),
           hist_quantile(&hw, 0.50), hist_quantile(&hw, 0.99));
    fflush(stdout);
}

/* Open the gate once every started worker checked in (or at once when
 * abort is set: a thread could not be started). */
static void gate_open(gate *g, int nstarted, bool abort)
{
    pthread_mutex_lock(&g->mu);
    while (!abort && g->checked_in < nstarted) pthread_cond_wait(&g->cv, &g->mu);
    if (abort) g->abort = true;
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

int main(int argc, char **argv)
{
    sb_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    alarm((unsigned)o.seconds + 30);  /* hard bound: SIGALRM ends the process */

    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false};
    worker *ws = calloc((size_t)o.clients, sizeof *ws);
    pthread_t *tids = calloc((size_t)o.clients, sizeof *tids);
    int nstarted = 0;
    bool spawn_failed = false;
    rc = 1;
    if (!ws || !tids) {
        fprintf(stderr, "session_bench: out of memory\n");
        goto cleanup;
    }
    for (int i = 0; i < o.clients; i++) {
        worker *w = &ws[i];
        w->o = &o;
        w->id = i;
        w->g = &g;
        w->rng = o.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 0xBF58476D1CE4E5B9ULL + 1;
        w->last = malloc((size_t)o.keys * sizeof *w->last);
        if (!w->last) {
            fprintf(stderr, "session_bench: out of memory for %ld keys\n", o.keys);
            goto cleanup;
        }
        for (long k = 0; k < o.keys; k++) w->last[k] = -1;
    }
    for (; nstarted < o.clients; nstarted++) {
        if (pthread_create(&tids[nstarted], NULL, worker_main, &ws[nstarted]) != 0) {
            fprintf(stderr, "session_bench: could not start thread %d\n", nstarted);
            spawn_failed = true;
            break;
        }
    }
    gate_open(&g, nstarted, spawn_failed);
    uint64_t start = now_us();
    for (int i = 0; i < nstarted; i++) pthread_join(tids[i], NULL);
    double secs = (double)(now_us() - start) / 1e6;
    if (spawn_failed) goto cleanup;

    bool setup_failed = false, conn_failed = false, told_error = false;
    for (int i = 0; i < o.clients; i++) {
        if (ws[i].setup_failed) {
            if (!setup_failed)
                fprintf(stderr, "session_bench: client %d: %s\n", i, ws[i].msg);
            setup_failed = true;
        } else if (ws[i].conn_failed) {
            if (!conn_failed)
                fprintf(stderr, "session_bench: client %d: connection broke: %s\n", i, ws[i].msg);
            conn_failed = true;
        } else if (ws[i].errors && ws[i].msg[0] && !told_error) {
            fprintf(stderr, "session_bench: client %d: first error: %s\n", i, ws[i].msg);
            told_error = true;
        }
    }
    if (!setup_failed) report(ws, o.clients, secs);
    rc = setup_failed || conn_failed ? 1 : 0;

cleanup:
    for (int i = 0; ws && i < o.clients; i++) {
        if (ws[i].c) redisFree(ws[i].c);
        free(ws[i].last);
    }
    free(tids);
    free(ws);
    return rc;
}
