/*
 * quorum_check.c -- a checker of the W+R>N read guarantee of rcproxy's mode
 * quorum (or of any Redis endpoint: against a single redis-server it must
 * find nothing).
 *
 *   quorum_check --port P [--sessions S] [--keys K] [--seconds T]
 *                [--password PW] [--seed N]
 *
 * S threads ("sessions"), each with its own hiredis connection to
 * 127.0.0.1:P, for T seconds issue one request at a time over K fresh keys
 * (qc:<run>:<k>, <run> unique per run): half of the time
 *
 *     SET key "<session>:<seq>"       (seq counts the session's writes)
 *
 * recording the write with its start time and the time its reply arrived
 * (monotonic clock), else GET key, recording the read's start and end time
 * and the value.  A write whose reply is an error or that is lost with its
 * connection counts as an error; it is still recorded, as never
 * acknowledged, because it may have been applied on some node and be read
 * later.  Failed reads are errors and are not checked.
 *
 * The check, after the run, for every successful read R of key k:
 *   - R returned the value of write W_old: R is STALE if some write W_new
 *     of k was acknowledged before R started and started after W_old was
 *     acknowledged (W_old strictly before W_new: a newer value was already
 *     committed when R began).  Also STALE: a value no write of this run
 *     made, or a write that started after R ended.
 *   - R returned nil: STALE if any write of k was acknowledged before R
 *     started (the keys are fresh and nothing deletes them).
 * Computed per key from the acknowledged writes sorted by ack time with a
 * running maximum of their start times: O((W + R) log W).
 *
 * Output: one line on stdout
 *
 *     reads N writes N errors N stale N
 *
 * (reads/writes: successful ones; errors: failed requests and failed
 * connection attempts), and details on stderr (first stale reads, records
 * dropped at the memory cap).  Exit status 0 whatever was found (the caller
 * judges), 1 when the run could not be set up, 2 on a usage error.
 *
 * Memory is bounded: each key's records grow by doubling up to
 * QC_KEY_CAP, and all keys together hold at most QC_TOTAL_CAP records;
 * once a key is full its writes (or reads) are skipped and counted as
 * dropped, never half-recorded (an unrecorded write could make a correct
 * read look stale).  Every request has a socket timeout and an alarm ends
 * the process at T + 60 s whatever happens.
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

#define QC_HOST "127.0.0.1"
#define QC_MAX_SESSIONS 256
#define QC_MAX_KEYS 1000000L
#define QC_MAX_SECONDS 3600
#define QC_KEY_CAP (1L << 20)       /* records of one kind per key */
#define QC_TOTAL_CAP (4L << 20)     /* records of both kinds, all keys */
#define QC_IO_TIMEOUT_MS 5000
#define QC_CONNECT_TIMEOUT_MS 2000
#define QC_RECONNECT_PAUSE_MS 50
#define QC_EXAMPLES 5               /* stale reads described on stderr */
#define QC_NEVER INT64_MAX          /* ack time of a write never acknowledged */

/* ---------------------------------------------------------------------- */
/* records                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct {
    int64_t start, ack;     /* ns, monotonic; ack QC_NEVER if not acknowledged */
    uint32_t session, seq;
} qc_write;

enum { QC_VAL_NIL = -1, QC_VAL_BOGUS = -2 };

typedef struct {
    int64_t start, end;     /* ns, monotonic */
    int32_t session;        /* writer of the value, or QC_VAL_NIL / QC_VAL_BOGUS */
    uint32_t seq;
} qc_read;

/* One key's history.  All fields under mu; arrays grow by doubling. */
typedef struct {
    pthread_mutex_t mu;
    qc_write *w;
    size_t nw, capw;
    qc_read *r;
    size_t nr, capr;
} qc_key;

typedef struct {
    int port;
    int sessions;
    long keys;
    int seconds;
    const char *password;
    uint64_t seed;
} qc_opts;

typedef struct qc_run qc_run;

typedef struct {
    qc_run *run;
    int id;
    pthread_t th;
    uint64_t rng;
    uint32_t seq;
    long reads, writes, errors, dropped;
} qc_session;

struct qc_run {
    qc_opts o;
    char prefix[48];            /* "qc:<run>:" */
    qc_key *keys;
    long total;                 /* record slots allocated, all keys (atomic) */
    int64_t t0, deadline;       /* ns */
    pthread_mutex_t start_mu;
    pthread_cond_t start_cv;
    int ready;                  /* sessions waiting at the start line */
    bool go;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* xorshift64*: per-session random numbers, no shared state. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Make room for one more element in *arr (n used of *cap, elements of
 * size `size`), within QC_KEY_CAP per array and QC_TOTAL_CAP elements
 * allocated over the run (run->total).  Called with the key's lock held.
 * Returns false when full. */
static bool grow(qc_run *run, void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 64;
    if (ncap > (size_t)QC_KEY_CAP)
        ncap = QC_KEY_CAP;
    if (ncap <= n)
        return false;
    long more = (long)(ncap - *cap);
    if (__atomic_add_fetch(&run->total, more, __ATOMIC_RELAXED) > QC_TOTAL_CAP) {
        __atomic_sub_fetch(&run->total, more, __ATOMIC_RELAXED);
        return false;
    }
    void *p = realloc(*arr, ncap * size);
    if (!p) {
        __atomic_sub_fetch(&run->total, more, __ATOMIC_RELAXED);
        return false;
    }
    *arr = p;
    *cap = ncap;
    return true;
}

/* Reserve the record of a write about to be sent to key k; returns its
 * index, or -1 when the key's history is full (the write must then not be
 * sent). */
static long write_reserve(qc_run *run, qc_key *k, uint32_t session, uint32_t seq,
                          int64_t start)
{
    long idx = -1;
    pthread_mutex_lock(&k->mu);
    if (grow(run, (void **)&k->w, k->nw, &k->capw, sizeof *k->w)) {
        idx = (long)k->nw++;
        k->w[idx] = (qc_write){ .start = start, .ack = QC_NEVER, .session = session,
                                .seq = seq };
    }
    pthread_mutex_unlock(&k->mu);
    return idx;
}

static void write_acked(qc_key *k, long idx, int64_t ack)
{
    pthread_mutex_lock(&k->mu);
    k->w[idx].ack = ack;
    pthread_mutex_unlock(&k->mu);
}

/* Record a successful read; false when the key's history is full. */
static bool read_record(qc_run *run, qc_key *k, const qc_read *rd)
{
    bool ok = false;
    pthread_mutex_lock(&k->mu);
    if (grow(run, (void **)&k->r, k->nr, &k->capr, sizeof *k->r)) {
        k->r[k->nr++] = *rd;
        ok = true;
    }
    pthread_mutex_unlock(&k->mu);
    return ok;
}

/* Parse "<session>:<seq>" (decimal, exact).  Returns false otherwise. */
static bool parse_value(const char *s, size_t len, uint32_t *session, uint32_t *seq)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *colon = strchr(buf, ':');
    if (!colon || colon == buf || colon[1] == '\0')
        return false;
    *colon = '\0';
    for (const char *p = buf; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    unsigned long a = strtoul(buf, NULL, 10), b = strtoul(colon + 1, NULL, 10);
    if (a >= QC_MAX_SESSIONS || b > UINT32_MAX)
        return false;
    *session = (uint32_t)a;
    *seq = (uint32_t)b;
    return true;
}

/* ---------------------------------------------------------------------- */
/* sessions                                                                */
/* ---------------------------------------------------------------------- */

/* Connect (and AUTH) to the target; NULL on any failure. */
static redisContext *qc_connect(const qc_opts *o)
{
    struct timeval ct = { QC_CONNECT_TIMEOUT_MS / 1000, (QC_CONNECT_TIMEOUT_MS % 1000) * 1000 };
    struct timeval io = { QC_IO_TIMEOUT_MS / 1000, (QC_IO_TIMEOUT_MS % 1000) * 1000 };
    redisContext *c = redisConnectWithTimeout(QC_HOST, o->port, ct);
    if (!c)
        return NULL;
    if (c->err || redisSetTimeout(c, io) != REDIS_OK)
        goto fail;
    if (o->password) {
        redisReply *r = redisCommand(c, "AUTH %s", o->password);
        bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
        if (r)
            freeReplyObject(r);
        if (!ok)
            goto fail;
    }
    return c;
fail:
    redisFree(c);
    return NULL;
}

/* One SET; updates the session's counters. */
static void do_write(qc_session *s, redisContext *c, long k)
{
    qc_run *run = s->run;
    qc_key *key = &run->keys[k];
    uint32_t seq = ++s->seq;
    int64_t start = now_ns();
    long idx = write_reserve(run, key, (uint32_t)s->id, seq, start);
    if (idx < 0) {
        s->dropped++;
        return;
    }
    redisReply *r = redisCommand(c, "SET %s%ld %d:%u", run->prefix, k, s->id, seq);
    int64_t end = now_ns();
    if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
        write_acked(key, idx, end);
        s->writes++;
    } else {
        s->errors++;        /* stays recorded as never acknowledged */
    }
    if (r)
        freeReplyObject(r);
}

/* One GET; updates the session's counters. */
static void do_read(qc_session *s, redisContext *c, long k)
{
    qc_run *run = s->run;
    qc_read rd = { .start = now_ns() };
    redisReply *r = redisCommand(c, "GET %s%ld", run->prefix, k);
    rd.end = now_ns();
    if (!r || (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING)) {
        s->errors++;
        if (r)
            freeReplyObject(r);
        return;
    }
    uint32_t ws = 0, wseq = 0;
    if (r->type == REDIS_REPLY_NIL)
        rd.session = QC_VAL_NIL;
    else if (parse_value(r->str, r->len, &ws, &wseq)) {
        rd.session = (int32_t)ws;
        rd.seq = wseq;
    } else
        rd.session = QC_VAL_BOGUS;
    freeReplyObject(r);
    if (read_record(run, &run->keys[k], &rd))
        s->reads++;
    else
        s->dropped++;
}

static void *session_main(void *arg)
{
    qc_session *s = arg;
    qc_run *run = s->run;
    redisContext *c = qc_connect(&run->o);
    pthread_mutex_lock(&run->start_mu);
    run->ready++;
    pthread_cond_broadcast(&run->start_cv);
    while (!run->go)
        pthread_cond_wait(&run->start_cv, &run->start_mu);
    pthread_mutex_unlock(&run->start_mu);

    while (now_ns() < run->deadline) {
        if (!c) {
            c = qc_connect(&run->o);
            if (!c) {
                s->errors++;
                sleep_ms(QC_RECONNECT_PAUSE_MS);
                continue;
            }
        }
        uint64_t x = rng_next(&s->rng);
        long k = (long)((x >> 1) % (uint64_t)run->o.keys);
        if (x & 1)
            do_write(s, c, k);
        else
            do_read(s, c, k);
        if (c->err) {               /* lost, timed out or protocol error: a new link */
            redisFree(c);
            c = NULL;
        }
    }
    if (c)
        redisFree(c);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* the check                                                               */
/* ---------------------------------------------------------------------- */

typedef struct {
    long stale, nil_stale, bogus, future, overwritten;
    int examples;
} qc_result;

static int cmp_by_id(const void *a, const void *b)
{
    const qc_write *x = a, *y = b;
    if (x->session != y->session)
        return x->session < y->session ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return 0;
}

static int cmp_by_ack(const void *a, const void *b)
{
    const qc_write *x = a, *y = b;
    if (x->ack != y->ack)
        return x->ack < y->ack ? -1 : 1;
    return 0;
}

/* Number of entries of acked[0..n) (sorted by ack) with ack < t. */
static size_t acked_before(const qc_write *acked, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (acked[mid].ack < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static double rel_ms(const qc_run *run, int64_t t)
{
    return t == QC_NEVER ? -1.0 : (double)(t - run->t0) / 1e6;
}

/* Describe one stale read on stderr (times in ms since the start). */
static void example(const qc_run *run, qc_result *res, long k, const qc_read *rd,
                    const qc_write *old, const char *why)
{
    if (res->examples >= QC_EXAMPLES)
        return;
    res->examples++;
    fprintf(stderr, "quorum_check: STALE %s: key %s%ld read [%.3f, %.3f] ms", why,
            run->prefix, k, rel_ms(run, rd->start), rel_ms(run, rd->end));
    if (rd->session >= 0)
        fprintf(stderr, " got %d:%u", rd->session, rd->seq);
    else
        fprintf(stderr, " got %s", rd->session == QC_VAL_NIL ? "nil" : "a foreign value");
    if (old)
        fprintf(stderr, " (written [%.3f, %.3f] ms)", rel_ms(run, old->start),
                rel_ms(run, old->ack));
    fputc('\n', stderr);
}

/* Check key k's reads against its writes (see the top of the file).  The
 * key's arrays are reordered.  Returns false when out of memory. */
static bool check_key(const qc_run *run, long k, qc_result *res)
{
    qc_key *key = &run->keys[k];
    size_t nacked = 0;
    for (size_t i = 0; i < key->nw; i++)
        nacked += key->w[i].ack != QC_NEVER;
    qc_write *acked = malloc((nacked ? nacked : 1) * sizeof *acked);
    int64_t *maxstart = malloc((nacked ? nacked : 1) * sizeof *maxstart);
    bool ok = acked && maxstart;
    if (!ok)
        goto done;
    size_t j = 0;
    for (size_t i = 0; i < key->nw; i++)
        if (key->w[i].ack != QC_NEVER)
            acked[j++] = key->w[i];
    qsort(acked, nacked, sizeof *acked, cmp_by_ack);
    for (size_t i = 0; i < nacked; i++)
        maxstart[i] = i == 0 || acked[i].start > maxstart[i - 1] ? acked[i].start
                                                                 : maxstart[i - 1];
    qsort(key->w, key->nw, sizeof *key->w, cmp_by_id);

    for (size_t i = 0; i < key->nr; i++) {
        const qc_read *rd = &key->r[i];
        size_t before = acked_before(acked, nacked, rd->start);
        if (rd->session == QC_VAL_NIL) {
            if (before > 0) {
                res->stale++;
                res->nil_stale++;
                example(run, res, k, rd, NULL, "nil after an acknowledged write");
            }
            continue;
        }
        qc_write probe = { .session = (uint32_t)rd->session, .seq = rd->seq };
        const qc_write *old = rd->session >= 0
                                  ? bsearch(&probe, key->w, key->nw, sizeof *key->w, cmp_by_id)
                                  : NULL;
        if (!old) {
            res->stale++;
            res->bogus++;
            example(run, res, k, rd, NULL, "a value no write made");
        } else if (old->start > rd->end) {
            res->stale++;
            res->future++;
            example(run, res, k, rd, old, "a value written after the read");
        } else if (old->ack != QC_NEVER && before > 0 && maxstart[before - 1] > old->ack) {
            res->stale++;
            res->overwritten++;
            example(run, res, k, rd, old, "overwritten before the read began");
        }
    }
done:
    free(acked);
    free(maxstart);
    return ok;
}

/* ---------------------------------------------------------------------- */
/* options and main                                                        */
/* ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: quorum_check --port P [--sessions S] [--keys K] [--seconds T]\n"
            "                    [--password PW] [--seed N]\n"
            "  S sessions (1..%d, default 8), one connection each to " QC_HOST ":P, SET\n"
            "  and GET at random over K fresh keys (1..%ld, default 50) for T seconds\n"
            "  (1..%d, default 10); then every read is checked against the writes\n"
            "  acknowledged before it began.  Prints: reads N writes N errors N stale N\n",
            QC_MAX_SESSIONS, QC_MAX_KEYS, QC_MAX_SECONDS);
}

/* Parse a decimal integer in [lo, hi]; false otherwise. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Returns 0, or 2 after printing the problem. */
static int parse_opts(int argc, char **argv, qc_opts *o)
{
    *o = (qc_opts){ .port = 0, .sessions = 8, .keys = 50, .seconds = 10,
                    .seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20) };
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "quorum_check: %s needs a value\n", opt);
            goto bad;
        }
        const char *val = argv[++i];
        long v;
        if (strcmp(opt, "--port") == 0 && parse_long(val, 1, 65535, &v))
            o->port = (int)v;
        else if (strcmp(opt, "--sessions") == 0 && parse_long(val, 1, QC_MAX_SESSIONS, &v))
            o->sessions = (int)v;
        else if (strcmp(opt, "--keys") == 0 && parse_long(val, 1, QC_MAX_KEYS, &v))
            o->keys = v;
        else if (strcmp(opt, "--seconds") == 0 && parse_long(val, 1, QC_MAX_SECONDS, &v))
            o->seconds = (int)v;
        else if (strcmp(opt, "--seed") == 0 && parse_long(val, 0, LONG_MAX, &v))
            o->seed = (uint64_t)v;
        else if (strcmp(opt, "--password") == 0)
            o->password = val;
        else {
            fprintf(stderr, "quorum_check: bad option or value: %s %s\n", opt, val);
            goto bad;
        }
    }
    if (o->port == 0) {
        fprintf(stderr, "quorum_check: --port is required\n");
        goto bad;
    }
    return 0;
bad:
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    int rc = 1;
    qc_run *run = calloc(1, sizeof *run);
    qc_session *sess = NULL;
    int started = 0;
    if (!run) {
        fprintf(stderr, "quorum_check: out of memory\n");
        return 1;
    }
    int prc = parse_opts(argc, argv, &run->o);
    if (prc) {
        free(run);
        return prc;
    }
    alarm((unsigned)run->o.seconds + 60);

    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    snprintf(run->prefix, sizeof run->prefix, "qc:%" PRIx64 ":",
             (uint64_t)(((uint64_t)rt.tv_sec * 1000000000ULL + (uint64_t)rt.tv_nsec) ^ (uint64_t)getpid()));
    run->keys = calloc((size_t)run->o.keys, sizeof *run->keys);
    sess = calloc((size_t)run->o.sessions, sizeof *sess);
    if (!run->keys || !sess) {
        fprintf(stderr, "quorum_check: out of memory\n");
        goto out;
    }
    for (long k = 0; k < run->o.keys; k++)
        pthread_mutex_init(&run->keys[k].mu, NULL);
    pthread_mutex_init(&run->start_mu, NULL);
    pthread_cond_init(&run->start_cv, NULL);

    for (int i = 0; i < run->o.sessions; i++) {
        sess[i].run = run;
        sess[i].id = i;
        sess[i].rng = run->o.seed * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 0xBF58476D1CE4E5B9ULL + 1;
        if (pthread_create(&sess[i].th, NULL, session_main, &sess[i]) != 0) {
            fprintf(stderr, "quorum_check: pthread_create failed\n");
            break;
        }
        started++;
    }
    /* every session connected (or failed to): start together */
    pthread_mutex_lock(&run->start_mu);
    while (run->ready < started)
        pthread_cond_wait(&run->start_cv, &run->start_mu);
    run->t0 = now_ns();
    run->deadline = run->t0 + (int64_t)run->o.seconds * 1000000000LL;
    run->go = true;
    pthread_cond_broadcast(&run->start_cv);
    pthread_mutex_unlock(&run->start_mu);
    long reads = 0, writes = 0, errors = 0, dropped = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(sess[i].th, NULL);
        reads += sess[i].reads;
        writes += sess[i].writes;
        errors += sess[i].errors;
        dropped += sess[i].dropped;
    }
    if (started < run->o.sessions)
        goto out;

    qc_result res = { 0 };
    for (long k = 0; k < run->o.keys; k++) {
        if (!check_key(run, k, &res)) {
            fprintf(stderr, "quorum_check: out of memory in the check\n");
            goto out;
        }
    }
    if (dropped)
        fprintf(stderr, "quorum_check: %ld requests skipped at the record cap\n", dropped);
    if (res.stale)
        fprintf(stderr, "quorum_check: stale reads: %ld overwritten, %ld nil, %ld foreign, "
                "%ld from the future\n", res.overwritten, res.nil_stale, res.bogus, res.future);
    printf("reads %ld writes %ld errors %ld stale %ld\n", reads, writes, errors, res.stale);
    fflush(stdout);
    rc = 0;
out:
    if (run->keys) {
        for (long k = 0; k < run->o.keys; k++) {
            free(run->keys[k].w);
            free(run->keys[k].r);
        }
    }
    free(run->keys);
    free(sess);
    free(run);
    return rc;
}
