/*
 * test_tx_pubsub.c -- connection-state commands: transactions, pub/sub and
 * blocking commands, each while other clients keep being served.
 *
 *   tx.watch_conflict_exec_discard   WATCH conflict aborts EXEC (nil),
 *                                    conflict-free EXEC returns the replies,
 *                                    DISCARD drops the queue, EXECABORT
 *   pubsub.two_clients               SUBSCRIBE/PSUBSCRIBE, PUBLISH counts,
 *                                    message order, UNSUBSCRIBE replies
 *   blocking.blpop_woken             BLPOP woken by another client's RPUSH
 *                                    while a third does 1000 round trips;
 *                                    BLPOP timeout 1 returns nil after ~1 s
 *   blocking.two_blocked_clients     two clients blocked at once, both woken
 */
#include "harness.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Assert that r is an array of n elements whose string elements equal the
 * given strings; a NULL in `strs` means "integer equal to ints[i]". */
static void expect_array(const redisReply *r, size_t n, const char *const *strs,
                         const long long *ints, const char *what)
{
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == n,
              "%s: expected an array of %zu, got %s", what, n, it_reply_desc(r));
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = r->element[i];
        if (strs[i]) {
            cr_assert(e->type == REDIS_REPLY_STRING && e->len == strlen(strs[i]) &&
                      memcmp(e->str, strs[i], e->len) == 0,
                      "%s: element %zu expected \"%s\", got %s", what, i, strs[i],
                      it_reply_desc(e));
        } else {
            cr_assert(e->type == REDIS_REPLY_INTEGER && e->integer == ints[i],
                      "%s: element %zu expected %lld, got %s", what, i, ints[i],
                      it_reply_desc(e));
        }
    }
}

/* Read the next pushed reply from c (bounded by c's timeout). */
static redisReply *next_reply(redisContext *c, const char *what)
{
    redisReply *r = NULL;
    cr_assert(redisGetReply(c, (void **)&r) == REDIS_OK && r, "%s: no reply: %s", what,
              c->errstr);
    return r;
}

/* True if nothing is waiting to be read on c (socket and hiredis buffer). */
static bool nothing_pending(redisContext *c)
{
    void *r = NULL;
    if (redisReaderGetReply(c->reader, &r) == REDIS_OK && r) {
        freeReplyObject(r);
        return false;
    }
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    return poll(&p, 1, 0) == 0;
}

/* Send cmd on c without waiting for the reply. */
static void send_async(redisContext *c, const char *cmd)
{
    cr_assert(redisAppendCommand(c, cmd) == REDIS_OK);
    it_flush(c);
}

/* n round trips on c that must all succeed: INCR of a private counter (whose
 * replies prove every write happened once, in order) and ECHO. */
static void serve_round_trips(redisContext *c, const char *counter, int n)
{
    long long base = it_int(c, "INCRBY %s 0", counter);
    for (int i = 1; i <= n; i++) {
        it_expect_int(c, base + i, "INCR %s", counter);
        char e[32];
        snprintf(e, sizeof e, "e%d", i);
        it_expect_str(c, e, "ECHO %s", e);
    }
}

IT_TEST(tx, watch_conflict_exec_discard, 60)
{
    it_start(NULL);
    redisContext *a = it_connect(), *b = it_connect(), *other = it_connect();
    redisContext *l = it_leader();

    /* conflict: B changes k between A's WATCH and EXEC -> EXEC is nil */
    it_ok(a, "SET k start");
    it_ok(a, "WATCH k");
    it_expect_str(a, "start", "GET k");
    it_ok(a, "MULTI");
    it_expect_status(a, "QUEUED", "SET k a");
    it_expect_status(a, "QUEUED", "INCR txcount");
    serve_round_trips(other, "other_ctr", 100);
    it_ok(b, "SET k b");
    it_expect_nil(a, "EXEC");
    it_expect_str(l, "b", "GET k");
    it_expect_nil(l, "GET txcount");

    /* no conflict: EXEC returns every queued reply */
    it_ok(a, "WATCH k");
    it_ok(a, "MULTI");
    it_expect_status(a, "QUEUED", "SET k a");
    it_expect_status(a, "QUEUED", "INCR txcount");
    it_expect_status(a, "QUEUED", "GET k");
    serve_round_trips(other, "other_ctr", 100);
    redisReply *r = it_cmd(a, "EXEC");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3, "EXEC: %s",
              it_reply_desc(r));
    cr_assert(r->element[0]->type == REDIS_REPLY_STATUS &&
              strcmp(r->element[0]->str, "OK") == 0, "EXEC[0]: %s",
              it_reply_desc(r->element[0]));
    cr_assert(r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 1,
              "EXEC[1]: %s", it_reply_desc(r->element[1]));
    cr_assert(r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[2]->str, "a") == 0,
              "EXEC[2]: %s", it_reply_desc(r->element[2]));
    freeReplyObject(r);
    it_expect_str(l, "a", "GET k");

    /* MULTI without WATCH, then EXEC: [OK] */
    it_ok(a, "MULTI");
    it_expect_status(a, "QUEUED", "SET k a2");
    r = it_cmd(a, "EXEC");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
              r->element[0]->type == REDIS_REPLY_STATUS &&
              strcmp(r->element[0]->str, "OK") == 0, "EXEC: %s", it_reply_desc(r));
    freeReplyObject(r);

    /* DISCARD drops the queue; the client is back to normal */
    it_ok(a, "MULTI");
    it_expect_status(a, "QUEUED", "SET k z");
    it_ok(a, "DISCARD");
    it_expect_str(l, "a2", "GET k");
    it_expect_err(a, "EXEC without MULTI", "EXEC");
    it_expect_err(a, "DISCARD without MULTI", "DISCARD");

    /* a command error while queueing aborts the transaction */
    it_ok(a, "MULTI");
    it_expect_err(a, "wrong number of arguments", "SET k");
    it_expect_err(a, "EXECABORT", "EXEC");
    it_expect_str(l, "a2", "GET k");

    /* UNWATCH then EXEC is unaffected by a concurrent change */
    it_ok(a, "WATCH k");
    it_ok(a, "UNWATCH");
    it_ok(b, "SET k b2");
    it_ok(a, "MULTI");
    it_expect_status(a, "QUEUED", "SET k a3");
    r = it_cmd(a, "EXEC");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 1, "EXEC after UNWATCH: %s",
              it_reply_desc(r));
    freeReplyObject(r);
    it_expect_str(l, "a3", "GET k");

    it_ok(a, "SET after_tx 1");
    it_expect_status(a, "PONG", "PING");
    redisFree(a);
    redisFree(b);
    redisFree(other);
}

IT_TEST(pubsub, two_clients, 60)
{
    it_start(NULL);
    redisContext *a = it_connect(), *b = it_connect(), *other = it_connect();
    it_set_timeout(a, 5000);

    redisReply *r = it_cmd(a, "SUBSCRIBE ch");
    expect_array(r, 3, (const char *[]){ "subscribe", "ch", NULL }, (long long[]){ 0, 0, 1 },
                 "SUBSCRIBE ch");
    freeReplyObject(r);
    r = it_cmd(a, "PSUBSCRIBE pat*");
    expect_array(r, 3, (const char *[]){ "psubscribe", "pat*", NULL },
                 (long long[]){ 0, 0, 2 }, "PSUBSCRIBE pat*");
    freeReplyObject(r);

    long long n = it_int(b, "PUBLISH ch msg");
    cr_assert(n >= 1, "PUBLISH ch: %lld receivers", n);
    r = next_reply(a, "message");
    expect_array(r, 3, (const char *[]){ "message", "ch", "msg" }, NULL, "message");
    freeReplyObject(r);

    n = it_int(b, "PUBLISH patX hello");
    cr_assert(n >= 1, "PUBLISH patX: %lld receivers", n);
    r = next_reply(a, "pmessage");
    expect_array(r, 4, (const char *[]){ "pmessage", "pat*", "patX", "hello" }, NULL,
                 "pmessage");
    freeReplyObject(r);

    /* binary payload, and many messages arrive complete and in order,
     * while other clients are being served */
    static const char bin[] = "a\0b\r\nc*1\r\n$";
    cr_assert(it_int(b, "PUBLISH ch %b", bin, sizeof bin - 1) >= 1);
    r = next_reply(a, "binary message");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
              r->element[2]->len == sizeof bin - 1 &&
              memcmp(r->element[2]->str, bin, sizeof bin - 1) == 0,
              "binary message garbled: %s", it_reply_desc(r));
    freeReplyObject(r);
    for (int i = 0; i < 200; i++) {
        redisAppendCommand(b, "PUBLISH ch m%d", i);
        if (i % 20 == 0)
            serve_round_trips(other, "other_ctr", 5);
    }
    for (int i = 0; i < 200; i++) {
        r = next_reply(b, "PUBLISH reply");
        cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer >= 1, "PUBLISH m%d: %s", i,
                  it_reply_desc(r));
        freeReplyObject(r);
    }
    for (int i = 0; i < 200; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        r = next_reply(a, "message");
        expect_array(r, 3, (const char *[]){ "message", "ch", m }, NULL, "ordered message");
        freeReplyObject(r);
    }
    it_expect_int(b, 0, "PUBLISH nobody-listens x");

    r = it_cmd(a, "UNSUBSCRIBE ch");
    expect_array(r, 3, (const char *[]){ "unsubscribe", "ch", NULL }, (long long[]){ 0, 0, 1 },
                 "UNSUBSCRIBE ch");
    freeReplyObject(r);
    r = it_cmd(a, "PUNSUBSCRIBE pat*");
    expect_array(r, 3, (const char *[]){ "punsubscribe", "pat*", NULL },
                 (long long[]){ 0, 0, 0 }, "PUNSUBSCRIBE pat*");
    freeReplyObject(r);

    /* nobody listens any more; A is an ordinary client again */
    it_expect_int(b, 0, "PUBLISH ch late");
    it_expect_int(b, 0, "PUBLISH patY late");
    cr_assert(nothing_pending(a), "A received something after unsubscribing");
    it_ok(a, "SET after_pubsub 1");
    it_expect_str(a, "back", "ECHO back");
    redisFree(a);
    redisFree(b);
    redisFree(other);
}

IT_TEST(blocking, blpop_woken, 60)
{
    it_start(NULL);
    redisContext *a = it_connect(), *b = it_connect(), *c = it_connect();
    it_set_timeout(a, 15000);
    it_ok(c, "SET cpre cval");
    it_expect_int(b, 0, "DEL q");
    it_wait_ready(10000);

    long long t0 = it_now_ms();
    send_async(a, "BLPOP q 10");
    /* C is served normally while A is blocked */
    for (int i = 0; i < 1000; i++) {
        if (i % 2 == 0)
            it_ok(c, "SET ck_%d %d", i, i);
        else
            it_expect_str(c, "cval", "GET cpre");
    }
    long long c_ms = it_now_ms() - t0;
    cr_log_info("1000 round trips while BLPOP blocks: %lld ms", c_ms);
    cr_assert(c_ms < 8000, "1000 round trips took %lld ms (blocked behind BLPOP?)", c_ms);
    cr_assert(nothing_pending(a), "BLPOP answered before anything was pushed");

    long long t1 = it_now_ms();
    it_expect_int(b, 1, "RPUSH q x");
    redisReply *r = next_reply(a, "BLPOP");
    long long woke_ms = it_now_ms() - t1;
    expect_array(r, 2, (const char *[]){ "q", "x" }, NULL, "BLPOP q 10");
    freeReplyObject(r);
    cr_assert(woke_ms < 2000, "BLPOP woke %lld ms after RPUSH", woke_ms);
    it_expect_int(it_leader(), 0, "EXISTS q");

    /* timeout on an empty list: nil after about one second */
    long long t2 = it_now_ms();
    it_expect_nil(a, "BLPOP emptyq 1");
    long long waited = it_now_ms() - t2;
    cr_assert(waited >= 900 && waited < 3000, "BLPOP emptyq 1 returned after %lld ms",
              waited);

    it_expect_status(a, "PONG", "PING");
    it_ok(a, "SET after_blpop 1");
    redisFree(a);
    redisFree(b);
    redisFree(c);
}

IT_TEST(blocking, two_blocked_clients, 60)
{
    it_start(NULL);
    redisContext *a = it_connect(), *d = it_connect(), *b = it_connect();
    it_set_timeout(a, 15000);
    it_set_timeout(d, 15000);
    send_async(a, "BRPOP q2 10");
    send_async(d, "BLPOP q3 10");
    it_sleep_ms(200);
    cr_assert(nothing_pending(a) && nothing_pending(d), "a blocked pop returned early");
    long long t1 = it_now_ms();
    it_expect_int(b, 1, "RPUSH q3 for-d");
    redisReply *r = next_reply(d, "BLPOP q3");
    expect_array(r, 2, (const char *[]){ "q3", "for-d" }, NULL, "BLPOP q3");
    freeReplyObject(r);
    it_expect_int(b, 1, "LPUSH q2 for-a");
    r = next_reply(a, "BRPOP q2");
    expect_array(r, 2, (const char *[]){ "q2", "for-a" }, NULL, "BRPOP q2");
    freeReplyObject(r);
    long long ms = it_now_ms() - t1;
    cr_assert(ms < 3000, "both pops took %lld ms", ms);
    it_expect_status(a, "PONG", "PING");
    it_expect_status(d, "PONG", "PING");
    redisFree(a);
    redisFree(d);
    redisFree(b);
}
