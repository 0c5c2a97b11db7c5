/*
 * test_pipeline.c -- deep pipelines and very large values.
 *
 *   pipeline.in_order_100k  100,000 pipelined commands (SET, INCR, GET of
 *                           pre-replicated keys, proxy-local ECHO), every
 *                           reply checked in order
 *   pipeline.big_value      a 100 MB value SET then GET back byte for byte
 *   pipeline.order_kept_across_backend_links
 *                           one client's pipeline runs in order over 4 links
 *   pipeline.batch_held_while_in_flight
 *                           requests that arrive while a batch is in flight
 *                           reach Redis together in one write
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRE_KEYS 1000
#define PIPELINE_N 100000

/* Write PRE_KEYS keys pre_i = pv_i with MSET batches of 100. */
static void write_pre_keys(redisContext *c)
{
    const char *argv[1 + 2 * 100];
    size_t lens[1 + 2 * 100];
    static char names[100][32], vals[100][32];
    for (int base = 0; base < PRE_KEYS; base += 100) {
        argv[0] = "MSET";
        lens[0] = 4;
        for (int j = 0; j < 100; j++) {
            snprintf(names[j], sizeof names[j], "pre_%d", base + j);
            snprintf(vals[j], sizeof vals[j], "pv_%d", base + j);
            argv[1 + 2 * j] = names[j];
            lens[1 + 2 * j] = strlen(names[j]);
            argv[2 + 2 * j] = vals[j];
            lens[2 + 2 * j] = strlen(vals[j]);
        }
        redisReply *r = redisCommandArgv(c, 201, argv, lens);
        cr_assert(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0,
                  "MSET batch %d: %s", base, it_reply_desc(r));
        freeReplyObject(r);
    }
}

/* What the reply to pipeline command i must be. */
typedef enum { EXP_OK, EXP_INT, EXP_STR } exp_kind;

typedef struct expect {
    exp_kind kind;
    long long n;
    char s[32];
} expect;

/* Append command i to c's output buffer and describe its expected reply.
 * The mix: SET pk_i, INCR counter (replies 1, 2, 3...), GET of a key written
 * and replicated before the pipeline, ECHO (answered by rcproxy itself, so
 * its place in the reply stream tests ordering across local and forwarded
 * commands). */
static void append_cmd(redisContext *c, int i, long long *incrs, expect *e)
{
    char k[32], v[32];
    switch (i % 4) {
    case 0:
        snprintf(k, sizeof k, "pk_%d", i);
        snprintf(v, sizeof v, "v_%d", i);
        redisAppendCommand(c, "SET %s %s", k, v);
        e->kind = EXP_OK;
        break;
    case 1:
        redisAppendCommand(c, "INCR counter");
        e->kind = EXP_INT;
        e->n = ++*incrs;
        break;
    case 2:
        snprintf(k, sizeof k, "pre_%d", (i * 7) % PRE_KEYS);
        snprintf(e->s, sizeof e->s, "pv_%d", (i * 7) % PRE_KEYS);
        redisAppendCommand(c, "GET %s", k);
        e->kind = EXP_STR;
        break;
    default:
        snprintf(e->s, sizeof e->s, "e_%d", i);
        redisAppendCommand(c, "ECHO %s", e->s);
        e->kind = EXP_STR;
        break;
    }
}

static bool reply_matches(const redisReply *r, const expect *e)
{
    switch (e->kind) {
    case EXP_OK:
        return r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
    case EXP_INT:
        return r->type == REDIS_REPLY_INTEGER && r->integer == e->n;
    case EXP_STR:
        return r->type == REDIS_REPLY_STRING && r->len == strlen(e->s) &&
               memcmp(r->str, e->s, r->len) == 0;
    }
    return false;
}

IT_TEST(pipeline, in_order_100k, 120)
{
    it_start(NULL);
    redisContext *c = it_connect();
    it_set_timeout(c, 30000);
    write_pre_keys(c);
    it_wait_ready(10000);

    expect *exp = calloc(PIPELINE_N, sizeof *exp);
    cr_assert_not_null(exp);
    long long incrs = 0;
    for (int i = 0; i < PIPELINE_N; i++)
        append_cmd(c, i, &incrs, &exp[i]);

    long long t0 = it_now_ms();
    int bad = 0, first_bad = -1;
    char first_desc[320] = "";
    for (int i = 0; i < PIPELINE_N; i++) {
        redisReply *r = NULL;
        int rc = redisGetReply(c, (void **)&r);
        cr_assert(rc == REDIS_OK && r, "reply %d of %d missing: %s", i, PIPELINE_N,
                  c->errstr);
        if (!reply_matches(r, &exp[i])) {
            if (first_bad < 0) {
                first_bad = i;
                snprintf(first_desc, sizeof first_desc, "%s", it_reply_desc(r));
            }
            bad++;
        }
        freeReplyObject(r);
    }
    long long elapsed = it_now_ms() - t0;
    cr_log_info("100k pipeline: %lld ms", elapsed);
    cr_assert(bad == 0, "%d replies wrong; first at #%d (command kind %d): %s", bad,
              first_bad, first_bad >= 0 ? (int)exp[first_bad].kind : -1, first_desc);

    /* the writes really happened, on the leader, in order */
    redisContext *l = it_leader();
    char want[32];
    snprintf(want, sizeof want, "%lld", incrs);
    it_expect_str(l, want, "GET counter");
    it_expect_str(l, "v_0", "GET pk_0");
    it_expect_str(l, "v_99996", "GET pk_99996");
    it_expect_int(l, PRE_KEYS + PIPELINE_N / 4 + 1, "DBSIZE");
    /* the connection is still in a sane state */
    it_expect_status(c, "PONG", "PING");
    free(exp);
    redisFree(c);
}

#define BIG_LEN (100u * 1024u * 1024u)

/* With several shared links per backend, one client's requests still run in
 * the order it sent them (Redis runs a connection's commands in order): 20,000
 * pipelined INCRs of one key answer 1, 2, 3, ... */
IT_TEST(pipeline, order_kept_across_backend_links, 120)
{
    it_opts o = {.replicas = 0, .proxy_args = {"--backend-connections", "4", NULL}};
    it_start(&o);
    enum { N = 20000, CLIENTS = 3 };
    redisContext *c[CLIENTS];
    for (int k = 0; k < CLIENTS; k++) c[k] = it_connect();
    for (int i = 0; i < N; i++)
        for (int k = 0; k < CLIENTS; k++) redisAppendCommand(c[k], "INCR order:%d", k);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < CLIENTS; k++) {
            redisReply *r = NULL;
            cr_assert(redisGetReply(c[k], (void **)&r) == REDIS_OK && r, "INCR #%d: %s", i, c[k]->errstr);
            cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer == i + 1,
                      "client %d INCR #%d answered %s", k, i, it_reply_desc(r));
            freeReplyObject(r);
        }
    for (int k = 0; k < CLIENTS; k++) redisFree(c[k]);
}

/* Backend counter `field` of the leader from INFO rcproxy. */
static long long leader_counter(const char *field)
{
    char v[32];
    cr_assert(it_backend_field(it_leader_server(), field, v, sizeof v), "INFO rcproxy has no %s", field);
    return atoll(v);
}

/* A shared link sends one batch at a time: 20 GETs from 20 clients, sent
 * 5 ms apart (each in a loop turn of its own) while a script keeps Redis busy
 * for 400 ms, reach the leader in one write when the script's reply comes in
 * (the backend's `writes` counter; 20 writes if each went out in its turn),
 * and every client gets its own value. */
IT_TEST(pipeline, batch_held_while_in_flight, 60)
{
    IT_SKIP_IF_DIRECT();
    it_opts o = {.replicas = 0};
    it_start(&o);
    enum { CLIENTS = 20 };
    redisContext *c[CLIENTS];
    for (int k = 0; k < CLIENTS; k++) {
        c[k] = it_connect();
        it_ok(c[k], "SET batch:%d v%d", k, k);
    }
    static const char busy_script[] =
        "local t = redis.call('TIME') local t0 = t[1] * 1000000 + t[2] "
        "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - t0 >= 400000 return 1";
    redisContext *busy = it_connect();
    redisAppendCommand(busy, "EVAL %s 0", busy_script);
    it_flush(busy);
    cr_assert(it_wait_backend_field(it_leader_server(), "outstanding", "1", 2000),
              "the script never went out to the leader");
    long long writes0 = leader_counter("writes"), requests0 = leader_counter("requests");
    long long t0 = it_now_ms();
    for (int k = 0; k < CLIENTS; k++) {
        redisAppendCommand(c[k], "GET batch:%d", k);
        it_flush(c[k]);
        it_sleep_ms(5);
    }
    cr_assert(it_now_ms() - t0 < 300, "the GETs took %lld ms to send: not all inside the script's run",
              it_now_ms() - t0);
    redisReply *r = NULL;
    cr_assert(redisGetReply(busy, (void **)&r) == REDIS_OK && r, "EVAL: %s", busy->errstr);
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer == 1, "EVAL answered %s", it_reply_desc(r));
    freeReplyObject(r);
    for (int k = 0; k < CLIENTS; k++) {
        char want[16];
        snprintf(want, sizeof want, "v%d", k);
        cr_assert(redisGetReply(c[k], (void **)&r) == REDIS_OK && r, "GET %d: %s", k, c[k]->errstr);
        cr_assert(r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0, "client %d: GET answered %s",
                  k, it_reply_desc(r));
        freeReplyObject(r);
    }
    long long writes = leader_counter("writes") - writes0, requests = leader_counter("requests") - requests0;
    cr_assert(requests == CLIENTS, "%lld requests went to the leader, expected %d", requests, CLIENTS);
    cr_assert(writes >= 1 && writes <= 2, "%d requests took %lld writes to the leader, expected 1 (at most 2)",
              CLIENTS, writes);
    for (int k = 0; k < CLIENTS; k++) redisFree(c[k]);
    redisFree(busy);
}

IT_TEST(pipeline, big_value, 180)
{
    it_opts o = { .replicas = 1 };
    it_start(&o);
    char *big = malloc(BIG_LEN);
    cr_assert_not_null(big);
    /* deterministic noise, including \r \n and NUL bytes */
    unsigned long long x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < BIG_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big[i] = (char)(x >> 24);
    }
    redisContext *c = it_connect();
    it_set_timeout(c, 60000);
    long long t0 = it_now_ms();
    it_ok(c, "SET big %b", big, (size_t)BIG_LEN);
    cr_log_info("SET 100 MB: %lld ms", it_now_ms() - t0);
    it_wait_ready(60000);

    it_expect_int(c, BIG_LEN, "STRLEN big");
    t0 = it_now_ms();
    redisReply *r = it_cmd(c, "GET big");
    cr_log_info("GET 100 MB: %lld ms", it_now_ms() - t0);
    cr_assert(r->type == REDIS_REPLY_STRING, "GET big: %s", it_reply_desc(r));
    cr_assert(r->len == BIG_LEN, "GET big: %zu bytes, expected %u", r->len, BIG_LEN);
    cr_assert(memcmp(r->str, big, BIG_LEN) == 0, "GET big: content differs");
    freeReplyObject(r);

    /* the leader holds the same value, and the client is still usable */
    it_expect_int(it_leader(), BIG_LEN, "STRLEN big");
    it_ok(c, "SET small x");
    it_expect_int(c, 1, "DEL big");
    free(big);
    redisFree(c);
}
