/*
 * test_quorum.c -- mode quorum end to end: independent redis-server nodes
 * behind rcproxy --mode quorum (harness it_opts.quorum_nodes).
 *
 *   quorum.basic_commands      every supported command answers as Redis does
 *                              (binary and 1 MB values, MGET/MSET/DEL/EXISTS,
 *                              the TTL family, SET options, GETDEL/GETEX,
 *                              STRLEN/APPEND, counters, pipelining); other
 *                              commands and `rcproxy:` keys refused; values
 *                              and tombstones stored in the versioned format
 *                              on >= W (then all N) nodes; INFO rcproxy.
 *                              Direct mode: the same replies from node 0.
 *   quorum.checker_durable_node, checker_amnesic_node
 *                              no rcproxy: tools/quorum_check against one
 *                              redis-server killed and restarted finds no
 *                              stale read with appendfsync always, and finds
 *                              some when it comes back empty (checks the
 *                              checker and the harness's persistent nodes)
 *   quorum.wr_guarantee        n3 w2 r2, nodes with appendfsync always:
 *                              tools/quorum_check, 8 sessions over 50 keys for
 *                              20 s while each node in turn is SIGKILLed and
 *                              restarted: no stale read
 *   quorum.wr_guarantee_no_repair
 *                              the same for 15 s over 500 keys with read
 *                              repair and anti-entropy off: the R/W overlap
 *                              alone
 *   quorum.wr_equal_n_stale    its control: the same with r=1 (W+R = N) must
 *                              show stale reads
 *   quorum.weak_quorum_stale   w1 r1, no read repair, no anti-entropy, nodes
 *                              that come back empty: the checker must find
 *                              stale reads (it can fail)
 *   quorum.node_down           1 of 3 nodes stopped: SET/GET work; 2 of 3:
 *                              `quorum not reached` within the connect
 *                              timeout; the same with SIGSTOPped nodes and
 *                              backend-timeout; recovery
 *   quorum.sloppy_quorum       5 nodes: two home nodes of a key stopped, SET
 *                              and GET still work, stand-ins hold the hints;
 *                              the owners back: hand-off brings them the new
 *                              version, hint streams and stand-in copies go
 *   quorum.tombstones          a node misses a DEL and comes back with the old
 *                              values (AOF): every GET says nil, the node ends
 *                              with tombstones
 *   quorum.anti_entropy        100,000 keys written while a node is down, never
 *                              read: anti-entropy copies them all to it
 *                              (the time is printed for the release notes)
 *   quorum.two_proxies         two rcproxy (instance ids 1 and 2) writing the
 *                              same keys at once agree on every winner, and the
 *                              nodes converge to the same bytes
 *
 * The node set is the harness's: node i is "127.0.0.1:<port>" in node
 * order; placement is recomputed here with replication/quorum_ring.c.
 */
#include "harness.h"

#include "replication/quorum_ring.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QUORUM_ERR "quorum not reached"
#define HEADER_LEN 35
#define HINT_PREFIX "rcproxy:hints:"

/* Start `nodes` quorum nodes (persist: AOF, appendfsync always) and rcproxy
 * with the NULL-terminated extra arguments args (may be NULL). */
static void qstart(int nodes, bool persist, const char *const *args)
{
    it_opts o = { .quorum_nodes = nodes, .quorum_persist = persist };
    for (int i = 0; args && args[i]; i++) {
        cr_assert(i < IT_MAX_PROXY_ARGS - 1, "too many proxy args");
        o.proxy_args[i] = args[i];
    }
    it_start(&o);
}

/* ------------------------------------------------------------------------ */
/* reading the stored format on a node                                      */

typedef enum { ST_MISSING, ST_LIVE, ST_TOMB, ST_FOREIGN, ST_ERROR } st_kind;

typedef struct {
    st_kind kind;
    char ver[33];           /* version text when LIVE or TOMB */
    char val[256];          /* value bytes when LIVE (truncated), NUL-terminated */
    size_t vlen;            /* full value length */
    long long pttl;
} stored;

static const char *kind_name(st_kind k)
{
    static const char *const names[] = { "missing", "live", "tombstone", "foreign",
                                         "error" };
    return names[k];
}

/* Decode a node's GET reply r as the stored format (quorum_version.h). */
static stored decode_blob(const redisReply *r)
{
    stored s = { .kind = ST_ERROR, .pttl = -3 };
    if (!r)
        return s;
    if (r->type == REDIS_REPLY_NIL) {
        s.kind = ST_MISSING;
        return s;
    }
    if (r->type != REDIS_REPLY_STRING)
        return s;
    const unsigned char *b = (const unsigned char *)r->str;
    s.kind = ST_FOREIGN;
    if (r->len < HEADER_LEN || b[0] != 0xF5 || b[1] != 0x01 || b[2] > 1)
        return s;
    for (int i = 3; i < HEADER_LEN; i++)
        if (!((b[i] >= '0' && b[i] <= '9') || (b[i] >= 'a' && b[i] <= 'f')))
            return s;
    if (b[2] == 1 && r->len != HEADER_LEN)
        return s;
    memcpy(s.ver, b + 3, 32);
    s.ver[32] = '\0';
    s.kind = b[2] == 1 ? ST_TOMB : ST_LIVE;
    s.vlen = r->len - HEADER_LEN;
    size_t n = s.vlen < sizeof s.val - 1 ? s.vlen : sizeof s.val - 1;
    memcpy(s.val, b + HEADER_LEN, n);
    s.val[n] = '\0';
    return s;
}

/* GET + PTTL of key on a node connection c (never asserts). */
static stored stored_get(redisContext *c, const char *key)
{
    if (!c || c->err)
        return (stored){ .kind = ST_ERROR };
    redisReply *r = redisCommand(c, "GET %s", key);
    stored s = decode_blob(r);
    if (r)
        freeReplyObject(r);
    if (s.kind == ST_LIVE || s.kind == ST_TOMB) {
        r = redisCommand(c, "PTTL %s", key);
        if (r && r->type == REDIS_REPLY_INTEGER)
            s.pttl = r->integer;
        if (r)
            freeReplyObject(r);
    }
    return s;
}

/* stored_get on node i with a connection of its own (ST_ERROR when the node
 * does not answer). */
static stored node_stored(int i, const char *key)
{
    it_server *n = it_node(i);
    if (n->pid == 0)
        return (stored){ .kind = ST_ERROR };
    redisContext *c = it_try_connect(n->port, NULL, 2000);
    stored s = stored_get(c, key);
    if (c)
        redisFree(c);
    return s;
}

static bool live_is(const stored *s, const char *val)
{
    return s->kind == ST_LIVE && s->vlen == strlen(val) && strcmp(s->val, val) == 0;
}

/* Integer field of INFO rcproxy through c; -1 if absent. */
static long long info_num(redisContext *c, const char *field)
{
    char *info = it_try_info(c, "rcproxy");
    char v[64];
    long long n = info && it_info_value(info, field, v, sizeof v) ? atoll(v) : -1;
    free(info);
    return n;
}

/* Assert a bulk reply equal to want[0..len) (binary safe). */
static void expect_bulk(redisContext *c, const char *want, size_t len, const char *fmt,
                        const char *key)
{
    redisReply *r = it_cmd(c, fmt, key);
    cr_assert(r->type == REDIS_REPLY_STRING, "%s %s: expected bulk(%zu), got %s", fmt, key,
              len, it_reply_desc(r));
    cr_assert(r->len == len, "%s %s: expected %zu bytes, got %zu", fmt, key, len, r->len);
    cr_assert(memcmp(r->str, want, len) == 0, "%s %s: bytes differ", fmt, key);
    freeReplyObject(r);
}

/* Assert an integer reply in [lo, hi]. */
static void expect_range(redisContext *c, long long lo, long long hi, const char *cmd)
{
    redisReply *r = it_cmd(c, cmd);
    cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi,
              "\"%s\": expected an integer in [%lld, %lld], got %s", cmd, lo, hi,
              it_reply_desc(r));
    freeReplyObject(r);
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* basic commands                                                           */

static void basic_binary(redisContext *c)
{
    static const char bin[] = "a\0b\r\n\xf5\x01\x00\xff z";
    it_ok(c, "SET %s %b", "b:bin", bin, sizeof bin - 1);
    expect_bulk(c, bin, sizeof bin - 1, "GET %s", "b:bin");
    it_ok(c, "SET %s %b", "b:empty", "", (size_t)0);
    expect_bulk(c, "", 0, "GET %s", "b:empty");
    it_expect_int(c, 0, "STRLEN b:empty");
    it_expect_int(c, 1, "EXISTS b:empty");

    size_t big_len = 1 << 20;
    char *big = malloc(big_len);
    cr_assert_not_null(big);
    unsigned x = 12345;
    for (size_t i = 0; i < big_len; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (char)(x >> 16);
    }
    big[0] = '\0';
    big[big_len / 2] = '\0';
    it_ok(c, "SET %s %b", "b:big", big, big_len);
    expect_bulk(c, big, big_len, "GET %s", "b:big");
    it_expect_int(c, (long long)big_len, "STRLEN b:big");
    free(big);
}

static void basic_multikey(redisContext *c)
{
    it_ok(c, "MSET m:a 1 m:b 2 m:c 3");
    redisReply *r = it_cmd(c, "MGET m:a m:nokey m:b m:c");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 4, "MGET: %s", it_reply_desc(r));
    static const char *const want[] = { "1", NULL, "2", "3" };
    for (int i = 0; i < 4; i++) {
        const redisReply *e = r->element[i];
        if (!want[i])
            cr_assert(e->type == REDIS_REPLY_NIL, "MGET[%d]: %s", i, it_reply_desc(e));
        else
            cr_assert(e->type == REDIS_REPLY_STRING && strcmp(e->str, want[i]) == 0,
                      "MGET[%d]: %s", i, it_reply_desc(e));
    }
    freeReplyObject(r);
    it_expect_int(c, 4, "EXISTS m:a m:b m:c m:c m:nokey");
    it_expect_int(c, 2, "DEL m:a m:b m:nokey");
    it_expect_int(c, 0, "DEL m:a");
    it_expect_int(c, 1, "EXISTS m:a m:b m:c");
    it_expect_nil(c, "GET m:a");
    it_expect_int(c, 1, "UNLINK m:c");
    it_expect_int(c, 0, "UNLINK m:c");
    it_expect_int(c, 0, "EXISTS m:c");
}

static void basic_ttl(redisContext *c)
{
    it_ok(c, "SET e:k v");
    it_expect_int(c, -1, "TTL e:k");
    it_expect_int(c, -1, "PTTL e:k");
    it_expect_int(c, 1, "EXPIRE e:k 100");
    expect_range(c, 98, 100, "TTL e:k");
    expect_range(c, 98000, 100000, "PTTL e:k");
    it_expect_int(c, 1, "PEXPIRE e:k 50000");
    expect_range(c, 48000, 50000, "PTTL e:k");
    it_expect_int(c, 1, "EXPIREAT e:k %lld", wall_ms() / 1000 + 200);
    expect_range(c, 197, 200, "TTL e:k");
    it_expect_int(c, 1, "PEXPIREAT e:k %lld", wall_ms() + 300000);
    expect_range(c, 298000, 300000, "PTTL e:k");
    it_expect_str(c, "v", "GET e:k");
    it_expect_int(c, 1, "PERSIST e:k");
    it_expect_int(c, -1, "TTL e:k");
    it_expect_int(c, 0, "PERSIST e:k");
    it_expect_int(c, 0, "EXPIRE e:nokey 10");
    it_expect_int(c, -2, "TTL e:nokey");
    it_expect_int(c, -2, "PTTL e:nokey");
    it_expect_int(c, 0, "PERSIST e:nokey");
    /* a short expiry really expires */
    it_ok(c, "SET e:short v PX 300");
    it_expect_str(c, "v", "GET e:short");
    it_sleep_ms(700);
    it_expect_nil(c, "GET e:short");
    it_expect_int(c, 0, "EXISTS e:short");
    it_expect_int(c, -2, "TTL e:short");
    /* an EXPIRE in the past deletes */
    it_ok(c, "SET e:past v");
    it_expect_int(c, 1, "EXPIRE e:past -1");
    it_expect_nil(c, "GET e:past");
}

static void basic_set_options(redisContext *c)
{
    it_ok(c, "SET s:k v1 EX 100");
    expect_range(c, 98, 100, "TTL s:k");
    it_ok(c, "SET s:k v2 KEEPTTL");
    expect_range(c, 98, 100, "TTL s:k");
    it_expect_str(c, "v2", "GET s:k");
    it_ok(c, "SET s:k v3");
    it_expect_int(c, -1, "TTL s:k");
    it_ok(c, "SET s:k v4 PX 50000");
    expect_range(c, 48000, 50000, "PTTL s:k");
    it_expect_nil(c, "SET s:k x NX");
    it_expect_str(c, "v4", "GET s:k");
    it_ok(c, "SET s:new y NX");
    it_expect_str(c, "y", "GET s:new");
    it_expect_nil(c, "SET s:none z XX");
    it_expect_int(c, 0, "EXISTS s:none");
    it_ok(c, "SET s:k v5 XX");
    it_expect_int(c, -1, "TTL s:k");
    it_expect_str(c, "v5", "SET s:k v6 GET");
    it_expect_str(c, "v6", "GET s:k");
    it_expect_nil(c, "SET s:missing w GET");
    it_expect_str(c, "w", "GET s:missing");
    it_ok(c, "SET s:k v7 EXAT %lld", wall_ms() / 1000 + 100);
    expect_range(c, 97, 100, "TTL s:k");
    it_ok(c, "SET s:k v8 PXAT %lld", wall_ms() + 60000);
    expect_range(c, 58000, 60000, "PTTL s:k");
    it_expect_str(c, "v8", "GET s:k");
    it_expect_err(c, "invalid expire time", "SET s:k v9 EX 0");
    it_expect_err(c, "syntax error", "SET s:k v9 NX XX");
    it_expect_str(c, "v8", "GET s:k");
}

static void basic_getdel_getex(redisContext *c)
{
    it_ok(c, "SET g:k hello");
    it_expect_str(c, "hello", "GETDEL g:k");
    it_expect_nil(c, "GET g:k");
    it_expect_nil(c, "GETDEL g:k");
    it_ok(c, "SET g:k hello");
    it_expect_str(c, "hello", "GETEX g:k EX 100");
    expect_range(c, 98, 100, "TTL g:k");
    it_expect_str(c, "hello", "GETEX g:k");
    expect_range(c, 98, 100, "TTL g:k");
    it_expect_str(c, "hello", "GETEX g:k PX 50000");
    expect_range(c, 48000, 50000, "PTTL g:k");
    it_expect_str(c, "hello", "GETEX g:k PERSIST");
    it_expect_int(c, -1, "TTL g:k");
    it_expect_nil(c, "GETEX g:nokey EX 10");
    it_expect_int(c, 0, "EXISTS g:nokey");

    it_expect_int(c, 5, "STRLEN g:k");
    it_expect_int(c, 0, "STRLEN g:nokey");
    it_expect_int(c, 11, "APPEND g:k %s", " world");
    it_expect_str(c, "hello world", "GET g:k");
    it_expect_int(c, 13, "APPEND g:k %b", "\0\xf5", (size_t)2);
    expect_bulk(c, "hello world\0\xf5", 13, "GET %s", "g:k");
    it_expect_int(c, 2, "APPEND a:new ab");
    it_expect_str(c, "ab", "GET a:new");
    /* APPEND keeps the TTL */
    it_ok(c, "SET a:ttl x EX 100");
    it_expect_int(c, 2, "APPEND a:ttl y");
    expect_range(c, 98, 100, "TTL a:ttl");
}

static void basic_counters(redisContext *c)
{
    it_expect_int(c, 1, "INCR n:k");
    it_expect_int(c, 11, "INCRBY n:k 10");
    it_expect_int(c, 10, "DECR n:k");
    it_expect_int(c, 7, "DECRBY n:k 3");
    it_expect_int(c, 0, "INCRBY n:k -7");
    it_expect_int(c, -1, "DECR n:new");
    it_expect_str(c, "0", "GET n:k");
    it_expect_str(c, "1.5", "INCRBYFLOAT n:k 1.5");
    it_expect_str(c, "1.5", "GET n:k");
    it_expect_err(c, "not an integer", "INCR n:k");
    it_expect_err(c, "not a valid float", "INCRBYFLOAT n:k abc");
    it_ok(c, "SET n:max 9223372036854775807");
    it_expect_err(c, "overflow", "INCR n:max");
    it_expect_str(c, "9223372036854775807", "GET n:max");
    /* INCR keeps the TTL */
    it_ok(c, "SET n:ttl 5 EX 100");
    it_expect_int(c, 6, "INCR n:ttl");
    expect_range(c, 98, 100, "TTL n:ttl");
}

/* 1000 SET/GET pairs pipelined: replies in order, right types. */
static void basic_pipeline(redisContext *c)
{
    enum { N = 1000 };
    for (int i = 0; i < N; i++) {
        redisAppendCommand(c, "SET p:%d val%d", i, i);
        redisAppendCommand(c, "GET p:%d", i);
    }
    for (int i = 0; i < N; i++) {
        redisReply *a = NULL, *b = NULL;
        cr_assert(redisGetReply(c, (void **)&a) == REDIS_OK && a, "SET #%d: %s", i, c->errstr);
        cr_assert(redisGetReply(c, (void **)&b) == REDIS_OK && b, "GET #%d: %s", i, c->errstr);
        char want[32];
        snprintf(want, sizeof want, "val%d", i);
        cr_assert(a->type == REDIS_REPLY_STATUS && strcmp(a->str, "OK") == 0, "SET #%d: %s", i,
                  it_reply_desc(a));
        cr_assert(b->type == REDIS_REPLY_STRING && strcmp(b->str, want) == 0, "GET #%d: %s", i,
                  it_reply_desc(b));
        freeReplyObject(a);
        freeReplyObject(b);
    }
    it_expect_int(c, 10, "DEL p:0 p:1 p:2 p:3 p:4 p:5 p:6 p:7 p:8 p:9 p:nokey");
}

/* Wait up to 3 s until `want` nodes hold key in state `kind` (value val
 * when LIVE); returns how many do at the end. */
static int wait_nodes_hold(const char *key, st_kind kind, const char *val, int want)
{
    long long deadline = it_now_ms() + 3000;
    int have;
    for (;;) {
        have = 0;
        for (int i = 0; i < it_node_count(); i++) {
            stored s = node_stored(i, key);
            have += s.kind == kind && (kind != ST_LIVE || live_is(&s, val));
        }
        if (have >= want || it_now_ms() >= deadline)
            return have;
        it_sleep_ms(20);
    }
}

/* Proxy only: refused commands and keys, the stored format, INFO. */
static void basic_quorum_only(redisContext *c)
{
    it_expect_err(c, "command 'LPUSH' is not supported in quorum mode", "LPUSH l a");
    it_expect_err(c, "command 'keys' is not supported in quorum mode", "keys *");
    it_expect_err(c, "not supported in quorum mode", "EVAL %s 0", "return 1");
    it_expect_err(c, "not supported in quorum mode", "FLUSHALL");
    static const char *const reserved[] = {
        "SET rcproxy:x 1", "GET rcproxy:hints:127.0.0.1:1", "MGET ok:a rcproxy:y",
        "DEL rcproxy:z", "INCR rcproxy:n", "EXPIRE rcproxy:x 10",
    };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        it_expect_err(c, "keys starting with 'rcproxy:' are reserved in quorum mode",
                      reserved[i]);
    /* the session guarantees of mode leader do not apply here */
    it_expect_err(c, "applies to mode leader only", "RCPROXY TOKEN");
    it_expect_err(c, "applies to mode leader only", "RCPROXY WRITEACK sync");
    it_expect_err(c, "applies to mode leader only", "RCPROXY AFTER rcp1-x-1");
    it_expect_err(c, "SELECT is not supported in quorum mode", "SELECT 1");
    it_ok(c, "SELECT 0");
    it_expect_status(c, "PONG", "PING");   /* the connection is still fine */

    /* stored format: on >= W nodes at the reply, on all N soon after */
    it_ok(c, "SET fmt:k hello EX 1000");
    int at_reply = 0;
    for (int i = 0; i < it_node_count(); i++) {
        stored s = node_stored(i, "fmt:k");
        cr_assert(s.kind == ST_LIVE || s.kind == ST_MISSING,
                  "node %d holds fmt:k as %s, not in the stored format", i, kind_name(s.kind));
        if (s.kind == ST_LIVE) {
            cr_assert(live_is(&s, "hello"), "node %d: value part \"%s\"", i, s.val);
            cr_assert(s.pttl > 990000 && s.pttl <= 1000000, "node %d: PTTL %lld, want ~1000 s",
                      i, s.pttl);
            at_reply++;
        }
    }
    cr_assert(at_reply >= 2, "right after SET's reply only %d nodes hold fmt:k (W = 2)",
              at_reply);
    int all = wait_nodes_hold("fmt:k", ST_LIVE, "hello", 3);
    cr_assert(all == 3, "fmt:k reached only %d of 3 nodes within 3 s", all);

    /* versions: one version on every node, and a later write is newer */
    stored first = node_stored(0, "fmt:k");
    for (int i = 1; i < 3; i++) {
        stored s = node_stored(i, "fmt:k");
        cr_assert(strcmp(s.ver, first.ver) == 0, "node %d has version %s, node 0 %s", i, s.ver,
                  first.ver);
    }
    it_ok(c, "SET fmt:k hello2");
    cr_assert(wait_nodes_hold("fmt:k", ST_LIVE, "hello2", 3) == 3, "fmt:k v2 not on 3 nodes");
    stored second = node_stored(0, "fmt:k");
    cr_assert(strcmp(second.ver, first.ver) > 0, "second version %s not newer than %s",
              second.ver, first.ver);
    cr_assert(second.pttl == -1, "SET without EX left PTTL %lld on the node", second.pttl);

    /* a delete writes tombstones that live tombstone-ttl (default 1 day) */
    it_expect_int(c, 1, "DEL fmt:k");
    int tombs = wait_nodes_hold("fmt:k", ST_TOMB, NULL, 3);
    cr_assert(tombs >= 2, "after DEL only %d nodes hold a tombstone", tombs);
    for (int i = 0; i < 3; i++) {
        stored s = node_stored(i, "fmt:k");
        if (s.kind != ST_TOMB)
            continue;
        cr_assert(strcmp(s.ver, second.ver) > 0, "node %d: tombstone %s not newer than %s", i,
                  s.ver, second.ver);
        cr_assert(s.pttl > 86000000 && s.pttl <= 86400000,
                  "node %d: tombstone PTTL %lld, want ~86400000", i, s.pttl);
    }
    it_expect_nil(c, "GET fmt:k");
    it_expect_int(c, 0, "EXISTS fmt:k");

    char *info = it_try_info(c, "rcproxy");
    cr_assert_not_null(info, "INFO rcproxy failed");
    char v[64];
    cr_assert(it_info_value(info, "mode", v, sizeof v) && strcmp(v, "quorum") == 0,
              "INFO rcproxy: mode:%s", v);
    static const char *const want_fields[][2] = {
        { "quorum_n", "3" }, { "quorum_w", "2" }, { "quorum_r", "2" },
    };
    for (size_t i = 0; i < 3; i++)
        cr_assert(it_info_value(info, want_fields[i][0], v, sizeof v) &&
                  strcmp(v, want_fields[i][1]) == 0, "INFO rcproxy: %s is \"%s\", want %s",
                  want_fields[i][0], v, want_fields[i][1]);
    static const char *const present[] = {
        "quorum_reads", "quorum_writes", "quorum_read_errors", "quorum_write_errors",
        "read_repairs", "hints_written",
    };
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++)
        cr_assert(it_info_value(info, present[i], v, sizeof v), "INFO rcproxy lacks %s",
                  present[i]);
    free(info);
    cr_assert(info_num(c, "quorum_writes") > 1000, "quorum_writes %lld",
              info_num(c, "quorum_writes"));
    cr_assert(info_num(c, "quorum_reads") > 1000, "quorum_reads %lld",
              info_num(c, "quorum_reads"));
}

IT_TEST(quorum, basic_commands, 120)
{
    qstart(3, false, NULL);
    redisContext *c = it_connect();
    it_expect_status(c, "PONG", "PING");
    it_expect_str(c, "hi", "ECHO hi");
    it_ok(c, "SELECT 0");
    it_expect_err(c, "wrong number of arguments", "GET");
    it_expect_err(c, "wrong number of arguments", "SET onlykey");
    basic_binary(c);
    basic_multikey(c);
    basic_ttl(c);
    basic_set_options(c);
    basic_getdel_getex(c);
    basic_counters(c);
    basic_pipeline(c);
    if (!it_direct())
        basic_quorum_only(c);
    redisFree(c);
}

/* ------------------------------------------------------------------------ */
/* W + R > N: tools/quorum_check                                            */

typedef struct {
    long reads, writes, errors, stale;
} check_result;

/* Run tools/quorum_check against it_client_port() (rcproxy, or node 0
 * without it) for `seconds` with `keys` keys; with kill_loop, meanwhile
 * SIGKILL node i, wait 1 s, restart it, wait 2 s, round robin.  Returns the
 * checker's summary (asserts it printed one). */
static check_result run_checker(int seconds, int keys, bool kill_loop, const char *out_name)
{
    char port[16], secs[16], nkeys[16], tool[512];
    snprintf(port, sizeof port, "%d", it_client_port());
    snprintf(secs, sizeof secs, "%d", seconds);
    snprintf(nkeys, sizeof nkeys, "%d", keys);
    snprintf(tool, sizeof tool, "%s", it_build_path("quorum_check"));
    const char *argv[] = { tool, "--port", port, "--sessions", "8", "--keys", nkeys,
                           "--seconds", secs, NULL };
    long long start = it_now_ms();
    pid_t pid = it_spawn_tool(argv, out_name);
    int rounds = 0;
    while (kill_loop && it_now_ms() - start < (long long)seconds * 1000 - 1500 && rounds < 100) {
        it_server *n = it_node(rounds % it_node_count());
        it_kill(n);
        it_sleep_ms(1000);
        it_restart(n);
        it_sleep_ms(2000);
        rounds++;
    }
    int status = 0;
    bool exited = it_wait_tool(pid, seconds * 1000 + 60000, &status);
    cr_assert(exited, "quorum_check did not finish within %d s", seconds + 60);

    char path[256], line[512];
    snprintf(path, sizeof path, "%s/%s", it_tmpdir(), out_name);
    FILE *fp = fopen(path, "r");
    cr_assert_not_null(fp, "no output file %s", path);
    check_result res = { -1, -1, -1, -1 };
    bool found = false;
    while (fgets(line, sizeof line, fp)) {
        fprintf(stderr, "%s", line);
        if (sscanf(line, "reads %ld writes %ld errors %ld stale %ld", &res.reads, &res.writes,
                   &res.errors, &res.stale) == 4)
            found = true;
    }
    fclose(fp);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0 && found,
              "quorum_check failed (status 0x%x) or printed no summary line", status);
    fprintf(stderr, "quorum_check (%d s, %d keys, %d kill/restart rounds): reads %ld writes %ld "
            "errors %ld stale %ld\n", seconds, keys, rounds, res.reads, res.writes, res.errors,
            res.stale);
    return res;
}

/* Self-check of the checker and of the harness's persistent nodes, no
 * rcproxy: one node with appendfsync always, SIGKILLed and restarted under
 * the checker, loses no acknowledged write: no stale read. */
IT_TEST(quorum, checker_durable_node, 60)
{
    it_opts o = { .quorum_nodes = 1, .quorum_persist = true, .no_proxy = true };
    it_start(&o);
    check_result r = run_checker(8, 50, true, "quorum_check_self.out");
    cr_assert(r.reads > 1000 && r.writes > 1000, "reads %ld writes %ld", r.reads, r.writes);
    cr_assert(r.errors > 0, "the node was killed, yet no request failed");
    cr_assert(r.stale == 0, "%ld stale reads from one durable redis-server", r.stale);
}

/* ... and the checker fails when the node forgets: it comes back empty. */
IT_TEST(quorum, checker_amnesic_node, 60)
{
    it_opts o = { .quorum_nodes = 1, .no_proxy = true };
    it_start(&o);
    check_result r = run_checker(8, 500, true, "quorum_check_self.out");
    cr_assert(r.reads > 1000, "reads %ld", r.reads);
    cr_assert(r.stale > 0, "a node restarted empty went unnoticed among %ld reads", r.reads);
}

IT_TEST(quorum, wr_guarantee, 150)
{
    IT_SKIP_IF_DIRECT();
    qstart(3, true, NULL);
    check_result r = run_checker(20, 50, true, "quorum_check.out");
    cr_assert(r.reads > 1000, "only %ld successful reads (errors %ld)", r.reads, r.errors);
    cr_assert(r.writes > 1000, "only %ld acknowledged writes (errors %ld)", r.writes, r.errors);
    cr_assert(r.stale == 0, "%ld stale reads with n=3 w=2 r=2 (see the examples above)",
              r.stale);
}

/* The same with nothing repairing a restarted node (no read repair, no
 * anti-entropy) and 500 keys, so that it stays behind on many keys for
 * long: only the R/W overlap keeps reads fresh. */
IT_TEST(quorum, wr_guarantee_no_repair, 150)
{
    IT_SKIP_IF_DIRECT();
    static const char *const args[] = { "--read-repair", "off", "--anti-entropy-rate", "0",
                                        NULL };
    qstart(3, true, args);
    check_result r = run_checker(15, 500, true, "quorum_check_norepair.out");
    cr_assert(r.reads > 1000, "only %ld successful reads (errors %ld)", r.reads, r.errors);
    cr_assert(r.stale == 0, "%ld stale reads with n=3 w=2 r=2 and no repair (see the examples "
              "above)", r.stale);
}

/* The control for wr_guarantee_no_repair: the same run with R = 1, so
 * W + R = N: a read can miss every node that has the newest write, and
 * the checker must see it (else the runs above prove nothing). */
IT_TEST(quorum, wr_equal_n_stale, 150)
{
    IT_SKIP_IF_DIRECT();
    static const char *const args[] = { "--quorum-r", "1", "--read-repair", "off",
                                        "--anti-entropy-rate", "0", NULL };
    qstart(3, true, args);
    check_result r = run_checker(15, 500, true, "quorum_check_r1.out");
    cr_assert(r.reads > 1000, "only %ld successful reads (errors %ld)", r.reads, r.errors);
    cr_assert(r.stale > 0, "w=2 r=1 (W+R = N) with a node missing writes: no stale read among "
              "%ld (the checker should have found some)", r.reads);
}

/* The checker can fail: w=1 r=1 with nodes that come back empty and nothing
 * to repair them but new writes.  More keys than wr_guarantee so that a
 * restarted node stays behind on many keys for long. */
IT_TEST(quorum, weak_quorum_stale, 150)
{
    IT_SKIP_IF_DIRECT();
    static const char *const args[] = { "--quorum-w", "1", "--quorum-r", "1",
                                        "--read-repair", "off", "--anti-entropy-rate", "0",
                                        NULL };
    qstart(3, false, args);
    check_result r = run_checker(15, 500, true, "quorum_check_weak.out");
    cr_assert(r.reads > 100, "only %ld successful reads (errors %ld)", r.reads, r.errors);
    cr_assert(r.stale > 0, "w=1 r=1 with empty restarted nodes: no stale read among %ld "
              "(the checker should have found some)", r.reads);
}

/* ------------------------------------------------------------------------ */
/* node down                                                                */

/* Run cmd through c; assert an error containing QUORUM_ERR within max_ms. */
static void expect_quorum_error(redisContext *c, int max_ms, const char *cmd)
{
    long long t0 = it_now_ms();
    redisReply *r = it_cmd(c, cmd);
    long long took = it_now_ms() - t0;
    cr_assert(it_err_has(r, QUORUM_ERR), "\"%s\": expected an error containing \"%s\", got %s",
              cmd, QUORUM_ERR, it_reply_desc(r));
    cr_assert(took <= max_ms, "\"%s\": the error took %lld ms (bound %d ms)", cmd, took, max_ms);
    cr_log_info("\"%s\" -> %s (%lld ms)", cmd, r->str, took);
    freeReplyObject(r);
}

/* Poll SET key val until +OK (bounded); returns the ms it took or -1. */
static long long wait_set_ok(redisContext *c, const char *key, const char *val, int timeout_ms)
{
    long long t0 = it_now_ms();
    for (int i = 0; i < 1000; i++) {
        redisReply *r = it_cmd(c, "SET %s %s", key, val);
        bool ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
        freeReplyObject(r);
        if (ok)
            return it_now_ms() - t0;
        if (it_now_ms() - t0 > timeout_ms)
            break;
        it_sleep_ms(50);
    }
    return -1;
}

/* Wait until rcproxy has a link to every running node: a probe SET of
 * `key` through c reaches all of them (writes go to all N = M nodes).
 * Returns the ms it took, or -1 after timeout_ms. */
static long long wait_all_linked(redisContext *c, const char *key, int timeout_ms)
{
    long long t0 = it_now_ms();
    for (int round = 0; round < 1000 && it_now_ms() - t0 < timeout_ms; round++) {
        char val[32];
        snprintf(val, sizeof val, "probe-%d", round);
        redisReply *r = it_cmd(c, "SET %s %s", key, val);
        bool ok = r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (ok && wait_nodes_hold(key, ST_LIVE, val, it_node_count()) == it_node_count())
            return it_now_ms() - t0;
        it_sleep_ms(50);
    }
    return -1;
}

IT_TEST(quorum, node_down, 120)
{
    IT_SKIP_IF_DIRECT();
    static const char *const args[] = { "--backend-connect-timeout", "1000",
                                        "--backend-timeout", "1000", NULL };
    qstart(3, false, args);
    redisContext *c = it_connect();
    for (int i = 0; i < 20; i++)
        it_ok(c, "SET nd:%d v1", i);

    /* one of three stopped: everything works at once */
    it_kill(it_node(0));
    for (int i = 0; i < 20; i++) {
        it_expect_str(c, "v1", "GET nd:%d", i);
        it_ok(c, "SET nd:%d v2", i);
        it_expect_str(c, "v2", "GET nd:%d", i);
    }

    /* two of three: quorum errors, fast (connection refused) */
    it_kill(it_node(1));
    const int bound = 1000 + 1500;     /* backend-connect-timeout + margin */
    expect_quorum_error(c, bound, "SET nd:0 v3");
    expect_quorum_error(c, bound, "GET nd:0");
    expect_quorum_error(c, bound, "SET nd:1 v3");
    expect_quorum_error(c, bound, "GET nd:1");
    it_expect_status(c, "PONG", "PING");
    cr_assert(info_num(c, "quorum_write_errors") >= 2, "quorum_write_errors %lld",
              info_num(c, "quorum_write_errors"));
    cr_assert(info_num(c, "quorum_read_errors") >= 2, "quorum_read_errors %lld",
              info_num(c, "quorum_read_errors"));

    /* back (empty): writes work again within a bounded time */
    it_restart(it_node(0));
    it_restart(it_node(1));
    long long took = wait_set_ok(c, "nd:0", "v4", 10000);
    cr_assert(took >= 0, "SET never worked again within 10 s of the restarts");
    cr_log_info("writes back %lld ms after the restarts", took);
    it_expect_str(c, "v4", "GET nd:0");
    took = wait_all_linked(c, "nd:probe", 10000);
    cr_assert(took >= 0, "a SET never reached all 3 nodes within 10 s of the restarts");
    cr_log_info("all 3 nodes linked %lld ms after SET worked again", took);

    /* SIGSTOP: a paused node fails its link after backend-timeout.  One
     * paused: SET answers without waiting for it. */
    it_pause(it_node(2));
    long long t0 = it_now_ms();
    it_ok(c, "SET nd:5 v5");
    long long set_ms = it_now_ms() - t0;
    cr_assert(set_ms < 900, "SET with one paused node took %lld ms (W=2 answered at once)",
              set_ms);
    it_sleep_ms(1500);     /* the paused node's link times out (backend-timeout 1000) */
    it_expect_str(c, "v5", "GET nd:5");
    /* two paused: quorum error within backend-timeout + connect timeout + margin */
    it_pause(it_node(1));
    expect_quorum_error(c, 1000 + 1000 + 2000, "SET nd:5 v6");
    it_resume(it_node(1));
    it_resume(it_node(2));
    took = wait_set_ok(c, "nd:5", "v7", 10000);
    cr_assert(took >= 0, "SET never worked again within 10 s of SIGCONT");
    cr_log_info("writes back %lld ms after SIGCONT", took);
    it_expect_str(c, "v7", "GET nd:5");
    redisFree(c);
}

/* Several links per node: a client's pipelined SET then GET of a key still
 * run in order on every node (one client's requests share one link). */
IT_TEST(quorum, pipeline_order_with_many_links, 90)
{
    IT_SKIP_IF_DIRECT();
    static const char *const args[] = { "--backend-connections", "4", NULL };
    qstart(3, false, args);
    redisContext *c = it_connect();
    basic_pipeline(c);
    redisFree(c);
}

/* A node that missed writes (down, back empty) and is read again: with
 * read-repair sync the GET answers only after the stale node holds the
 * newest copy; with async it gets it shortly after; with off it never does
 * (anti-entropy is off in all three, so only read repair can move data). */
static void read_repair_case(const char *mode, bool read_all)
{
    const char *args[] = { "--read-repair", mode, "--anti-entropy-rate", "0",
                           "--quorum-read-all", read_all ? "yes" : "no", NULL };
    qstart(3, false, args);
    redisContext *c = it_connect();
    enum { KEYS = 20 };
    for (int i = 0; i < KEYS; i++)
        it_ok(c, "SET rr:%d old", i);
    it_kill(it_node(2));
    for (int i = 0; i < KEYS; i++)
        it_ok(c, "SET rr:%d new%d", i, i);
    it_restart(it_node(2));      /* back empty: it holds none of the keys */
    cr_assert(wait_all_linked(c, "rr:probe", 10000) >= 0, "node 2 was not linked again");
    int repaired_at_once = 0, repaired_later = 0;
    for (int i = 0; i < KEYS; i++) {
        char key[32], want[32];
        snprintf(key, sizeof key, "rr:%d", i);
        snprintf(want, sizeof want, "new%d", i);
        it_expect_str(c, want, "GET %s", key);
        stored s = node_stored(2, key);
        if (live_is(&s, want))
            repaired_at_once++;
    }
    it_sleep_ms(500);
    for (int i = 0; i < KEYS; i++) {
        char key[32], want[32];
        snprintf(key, sizeof key, "rr:%d", i);
        snprintf(want, sizeof want, "new%d", i);
        stored s = node_stored(2, key);
        if (live_is(&s, want))
            repaired_later++;
    }
    cr_log_info("read-repair %s, read-all %s: %d of %d repaired when GET answered, %d after 0.5 s",
                mode, read_all ? "yes" : "no", repaired_at_once, KEYS, repaired_later);
    if (strcmp(mode, "off") == 0) {
        cr_assert_eq(repaired_later, 0, "read-repair off repaired %d keys", repaired_later);
    } else if (read_all) {
        /* every read asked node 2: every key is repaired, sync ones before the answer */
        cr_assert_eq(repaired_later, KEYS);
        if (strcmp(mode, "sync") == 0) cr_assert_eq(repaired_at_once, KEYS);
    } else {
        /* reads ask 2 of the 3 nodes: the keys whose read included node 2 */
        cr_assert(repaired_later > 0, "no key read from node 2 was repaired");
        if (strcmp(mode, "sync") == 0) cr_assert_eq(repaired_at_once, repaired_later);
    }
    cr_assert(strcmp(mode, "off") == 0 || info_num(c, "read_repairs") >= repaired_later);
    redisFree(c);
}

IT_TEST(quorum, read_repair_sync, 90)
{
    IT_SKIP_IF_DIRECT();
    read_repair_case("sync", true);
}

IT_TEST(quorum, read_repair_async, 90)
{
    IT_SKIP_IF_DIRECT();
    read_repair_case("async", true);
}

IT_TEST(quorum, read_repair_sync_r_nodes, 90)
{
    IT_SKIP_IF_DIRECT();
    read_repair_case("sync", false);
}

IT_TEST(quorum, read_repair_off, 90)
{
    IT_SKIP_IF_DIRECT();
    read_repair_case("off", true);
}

/* One node hung (SIGSTOP, connection still open): reads must not wait for
 * backend-timeout.  A read short of its R answers after ~0.1 s asks one more
 * node, and new reads avoid a node whose link stopped making progress. */
IT_TEST(quorum, hung_node_reads_stay_fast, 120)
{
    IT_SKIP_IF_DIRECT();
    static const char *const args[] = { "--backend-timeout", "5000", NULL };
    qstart(3, false, args);
    redisContext *c = it_connect();
    for (int i = 0; i < 50; i++)
        it_ok(c, "SET hung:%d v%d", i, i);
    it_pause(it_node(1));
    long long t0 = it_now_ms(), worst = 0;
    for (int i = 0; i < 50; i++) {
        long long t = it_now_ms();
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        it_expect_str(c, want, "GET hung:%d", i);
        if (it_now_ms() - t > worst) worst = it_now_ms() - t;
    }
    long long total = it_now_ms() - t0;
    cr_log_info("50 GETs with one hung node: %lld ms, slowest %lld ms", total, worst);
    /* backend-timeout is 5000: one read waiting for it would blow both bounds */
    cr_assert(worst < 1500, "a GET took %lld ms with one hung node", worst);
    cr_assert(total < 5000, "50 GETs took %lld ms with one hung node", total);
    /* writes answer after W=2 without the hung node */
    t0 = it_now_ms();
    it_ok(c, "SET hung:0 w");
    cr_assert(it_now_ms() - t0 < 1500, "SET took %lld ms", it_now_ms() - t0);
    it_resume(it_node(1));
    it_expect_str(c, "w", "GET hung:0");
    redisFree(c);
}

/* ------------------------------------------------------------------------ */
/* sloppy quorum                                                            */

/* The ring rcproxy builds: node i under "127.0.0.1:<port>", 160 vnodes. */
static repl_ring *ring_of_nodes(void)
{
    repl_ring *ring = repl_ring_new(0);
    cr_assert_not_null(ring);
    for (int i = 0; i < it_node_count(); i++) {
        char id[32];
        snprintf(id, sizeof id, "127.0.0.1:%d", it_node(i)->port);
        cr_assert(repl_ring_add_node(ring, i, id) == 0, "ring: cannot add %s", id);
    }
    return ring;
}

static int node_is_up(int node, void *arg)
{
    (void)arg;
    return it_node(node)->pid > 0;
}

/* XLEN of stream name on node i, 0 when missing or the node is down. */
static long long node_xlen(int i, const char *name)
{
    redisContext *c = it_node(i)->pid > 0 ? it_try_connect(it_node(i)->port, NULL, 2000) : NULL;
    if (!c)
        return 0;
    redisReply *r = redisCommand(c, "XLEN %s", name);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Number of keys matching rcproxy:hints:* on node i (KEYS: the node holds a
 * handful of keys), -1 when it does not answer; *entries gets their total
 * XLEN and desc (cap bytes) the names with their lengths. */
static long node_hint_streams(int i, long long *entries, char *desc, size_t cap)
{
    *entries = 0;
    desc[0] = '\0';
    redisContext *c = it_try_connect(it_node(i)->port, NULL, 2000);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "KEYS %s*", HINT_PREFIX);
    long n = r && r->type == REDIS_REPLY_ARRAY ? (long)r->elements : -1;
    size_t used = 0;
    for (long k = 0; k < n; k++) {
        redisReply *x = redisCommand(c, "XLEN %b", r->element[k]->str, r->element[k]->len);
        long long len = x && x->type == REDIS_REPLY_INTEGER ? x->integer : -1;
        if (x)
            freeReplyObject(x);
        *entries += len > 0 ? len : 0;
        int w = snprintf(desc + used, cap - used, "%s%.40s (XLEN %lld)", k ? ", " : "",
                         r->element[k]->str, len);
        if (w > 0 && (size_t)w < cap - used)
            used += (size_t)w;
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

typedef struct {
    const int *pref;        /* full ring order of the key, home = first 3 */
    const int *standins;    /* nodes that held the key as stand-ins */
    int nstandins;
    const char *key, *val;
    const char *ver;        /* version the owners must reach */
    char why[256];
} handoff_state;

/* Hand-off done: both home nodes that were down hold ver/val, the
 * stand-ins dropped their copy, no hint entry is left on any node. */
static bool handoff_done(void *arg)
{
    handoff_state *h = arg;
    for (int k = 0; k < 2; k++) {
        stored s = node_stored(h->pref[k], h->key);
        if (!live_is(&s, h->val) || strcmp(s.ver, h->ver) != 0) {
            snprintf(h->why, sizeof h->why, "owner node %d holds %s \"%.60s\" version %s", h->pref[k],
                     kind_name(s.kind), s.val, s.ver);
            return false;
        }
    }
    for (int k = 0; k < h->nstandins; k++) {
        stored s = node_stored(h->standins[k], h->key);
        if (s.kind != ST_MISSING) {
            snprintf(h->why, sizeof h->why, "stand-in node %d still holds the key (%s)",
                     h->standins[k], kind_name(s.kind));
            return false;
        }
    }
    for (int i = 0; i < it_node_count(); i++) {
        long long entries;
        char desc[160];
        long n = node_hint_streams(i, &entries, desc, sizeof desc);
        if (n < 0 || entries > 0) {
            snprintf(h->why, sizeof h->why, "node %d still has %lld hint entries: %s", i,
                     entries, desc);
            return false;
        }
    }
    return true;
}

/* No node has a rcproxy:hints:* key at all (not even an empty stream). */
static bool hint_streams_gone(void *arg)
{
    handoff_state *h = arg;
    for (int i = 0; i < it_node_count(); i++) {
        long long entries;
        char desc[160];
        long n = node_hint_streams(i, &entries, desc, sizeof desc);
        if (n != 0) {
            snprintf(h->why, sizeof h->why, "node %d: %s", i, desc);
            return false;
        }
    }
    return true;
}

IT_TEST(quorum, sloppy_quorum, 120)
{
    IT_SKIP_IF_DIRECT();
    /* no anti-entropy and no reads after the restart: only hand-off can
     * bring the owners the new version */
    static const char *const args[] = { "--sloppy-quorum", "yes", "--anti-entropy-rate", "0",
                                        NULL };
    qstart(5, false, args);
    repl_ring *ring = ring_of_nodes();
    const char *key = "sloppy:k";
    int pref[5];
    cr_assert(repl_ring_preference(ring, key, strlen(key), 5, pref) == 5);
    cr_log_info("%s: home nodes %d %d %d, then %d %d", key, pref[0], pref[1], pref[2], pref[3],
                pref[4]);

    redisContext *c = it_connect();
    it_ok(c, "SET %s v1", key);
    cr_assert(wait_nodes_hold(key, ST_LIVE, "v1", 3) == 3, "v1 not on 3 nodes");
    for (int k = 3; k < 5; k++) {
        stored s = node_stored(pref[k], key);
        cr_assert(s.kind == ST_MISSING, "node %d is not a home node of %s but holds it (%s): "
                  "placement differs from repl_ring_preference", pref[k], key,
                  kind_name(s.kind));
    }

    /* two home nodes down (the primary among them), and rcproxy knows it: a
     * write already on its way to a node that dies is not re-hinted (it
     * reaches that node through read repair or anti-entropy instead) */
    it_kill(it_node(pref[0]));
    it_kill(it_node(pref[1]));
    cr_assert(it_wait_backend_field(it_node(pref[0]), "status", "down", 5000) &&
                  it_wait_backend_field(it_node(pref[1]), "status", "down", 5000),
              "rcproxy did not see the stopped nodes down within 5 s");
    int expect_nodes[3], expect_hint[3];
    int got = repl_ring_next_healthy(ring, key, strlen(key), 3, node_is_up, NULL, expect_nodes,
                                     expect_hint);
    cr_assert(got == 3, "ring gives %d healthy nodes", got);
    long long took = wait_set_ok(c, key, "v2", 3000);
    cr_assert(took >= 0, "SET with 2 of 3 home nodes down and sloppy-quorum yes never "
              "succeeded within 3 s");
    cr_log_info("sloppy SET succeeded after %lld ms", took);
    it_expect_str(c, "v2", "GET %s", key);

    /* hints on the stand-ins, which also hold the key itself */
    int standins[2], nstandins = 0;
    for (int k = 0; k < 2; k++) {
        char stream[64];
        snprintf(stream, sizeof stream, HINT_PREFIX "127.0.0.1:%d", it_node(pref[k])->port);
        int holder = -1;
        for (int i = 0; i < it_node_count() && holder < 0; i++)
            if (it_node(i)->pid > 0 && node_xlen(i, stream) >= 1)
                holder = i;
        cr_assert(holder >= 0, "no running node holds the hint stream %s", stream);
        cr_assert(holder == pref[3] || holder == pref[4],
                  "hint %s is on node %d, which is a home node of the key", stream, holder);
        int expected = -1;
        for (int j = 0; j < 3; j++)
            if (expect_hint[j] == pref[k])
                expected = expect_nodes[j];
        cr_log_info("hint for node %d on node %d (repl_ring_next_healthy: node %d)", pref[k],
                    holder, expected);
        stored s = node_stored(holder, key);
        cr_assert(live_is(&s, "v2"), "stand-in node %d holds %s \"%s\", not the value", holder,
                  kind_name(s.kind), s.val);
        bool seen = false;
        for (int j = 0; j < nstandins; j++)
            seen |= standins[j] == holder;
        if (!seen)
            standins[nstandins++] = holder;
    }
    cr_assert(info_num(c, "hints_written") >= 1, "INFO hints_written %lld",
              info_num(c, "hints_written"));
    stored ref = node_stored(pref[2], key);
    cr_assert(live_is(&ref, "v2"), "the home node that stayed up holds %s \"%s\"",
              kind_name(ref.kind), ref.val);

    /* the owners come back (empty): hand-off */
    it_restart(it_node(pref[0]));
    it_restart(it_node(pref[1]));
    long long back = it_now_ms();
    handoff_state h = { .pref = pref, .standins = standins, .nstandins = nstandins,
                        .key = key, .val = "v2", .ver = ref.ver };
    bool done = it_wait_until(handoff_done, &h, 30000, 100);
    cr_assert(done, "hand-off not done 30 s after the owners came back: %s", h.why);
    fprintf(stderr, "sloppy quorum: hand-off done %lld ms after the owners came back\n",
            it_now_ms() - back);
    it_expect_str(c, "v2", "GET %s", key);
    /* the emptied streams go too: a stand-in is left with no trace */
    cr_assert(it_wait_until(hint_streams_gone, &h, 5000, 100), "hint entries handed off, but "
              "an empty hint stream is left behind: %s", h.why);
    repl_ring_free(ring);
    redisFree(c);
}

/* ------------------------------------------------------------------------ */
/* tombstones                                                               */

#define TOMB_KEYS 20

typedef struct {
    int node;
    char why[160];
} tomb_state;

/* Node holds a tombstone or nothing for every tomb:<i>. */
static bool tombstoned(void *arg)
{
    tomb_state *t = arg;
    redisContext *c = it_try_connect(it_node(t->node)->port, NULL, 2000);
    bool ok = c != NULL;
    for (int i = 0; ok && i < TOMB_KEYS; i++) {
        char key[32];
        snprintf(key, sizeof key, "tomb:%d", i);
        stored s = stored_get(c, key);
        if (s.kind != ST_TOMB && s.kind != ST_MISSING) {
            snprintf(t->why, sizeof t->why, "%s is %s \"%.60s\"", key, kind_name(s.kind),
                     s.val);
            ok = false;
        }
    }
    if (c)
        redisFree(c);
    return ok;
}

IT_TEST(quorum, tombstones, 120)
{
    IT_SKIP_IF_DIRECT();
    qstart(3, true, NULL);
    redisContext *c = it_connect();
    char key[32], val[32];
    for (int i = 0; i < TOMB_KEYS; i++)
        it_ok(c, "SET tomb:%d old-%d", i, i);
    for (int i = 0; i < TOMB_KEYS; i++) {
        snprintf(key, sizeof key, "tomb:%d", i);
        snprintf(val, sizeof val, "old-%d", i);
        cr_assert(wait_nodes_hold(key, ST_LIVE, val, 3) == 3, "%s not on 3 nodes", key);
    }

    /* node 0 misses the deletes, and keeps the old values on disk */
    it_kill(it_node(0));
    it_expect_int(c, TOMB_KEYS, "DEL tomb:0 tomb:1 tomb:2 tomb:3 tomb:4 tomb:5 tomb:6 tomb:7 "
                  "tomb:8 tomb:9 tomb:10 tomb:11 tomb:12 tomb:13 tomb:14 tomb:15 tomb:16 "
                  "tomb:17 tomb:18 tomb:19");
    it_expect_int(c, 0, "DEL tomb:0 tomb:1");
    it_restart(it_node(0));
    /* it reloaded the old values from its AOF (unless repair was quicker) */
    stored s = node_stored(0, "tomb:3");
    cr_assert(live_is(&s, "old-3") || s.kind == ST_TOMB, "restarted node 0 should hold the old "
              "value of tomb:3 from its AOF (or already its tombstone), holds %s \"%s\"",
              kind_name(s.kind), s.val);
    cr_log_info("node 0 after its restart: tomb:3 is %s", kind_name(s.kind));

    /* every read says nil, also while read repair works */
    long nils = 0;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < TOMB_KEYS; i++) {
            redisReply *r = it_cmd(c, "GET tomb:%d", i);
            cr_assert(r->type == REDIS_REPLY_NIL, "round %d: GET tomb:%d -> %s (resurrected)",
                      round, i, it_reply_desc(r));
            freeReplyObject(r);
            nils++;
        }
        it_expect_int(c, 0, "EXISTS tomb:0 tomb:5 tomb:19");
        redisReply *m = it_cmd(c, "MGET tomb:1 tomb:2 tomb:3");
        cr_assert(m->type == REDIS_REPLY_ARRAY && m->elements == 3, "MGET: %s",
                  it_reply_desc(m));
        for (size_t j = 0; j < 3; j++)
            cr_assert(m->element[j]->type == REDIS_REPLY_NIL, "round %d: MGET[%zu] -> %s",
                      round, j, it_reply_desc(m->element[j]));
        freeReplyObject(m);
    }
    tomb_state t = { .node = 0 };
    bool ok = it_wait_until(tombstoned, &t, 20000, 100);
    cr_assert(ok, "node 0 still holds live old values 20 s after it came back: %s", t.why);
    for (int i = 0; i < TOMB_KEYS; i++)
        it_expect_nil(c, "GET tomb:%d", i);
    cr_log_info("%ld nil reads; read_repairs %lld", nils, info_num(c, "read_repairs"));

    /* a new write after the delete is visible */
    it_ok(c, "SET tomb:0 new");
    it_expect_str(c, "new", "GET tomb:0");
    redisFree(c);
}

/* ------------------------------------------------------------------------ */
/* anti-entropy                                                             */

#define AE_KEYS 100000
#define AE_BATCH 1000

static long long node_dbsize(int i)
{
    redisContext *c = it_try_connect(it_node(i)->port, NULL, 2000);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "DBSIZE");
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Count keys matching pattern on node i with SCAN (bounded). */
static long long node_count_matching(int i, const char *pattern)
{
    redisContext *c = it_node_connect(i);
    long long n = 0;
    char cursor[32] = "0";
    for (int iter = 0; iter < 100000; iter++) {
        redisReply *r = it_cmd(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2, "SCAN: %s",
                  it_reply_desc(r));
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            break;
    }
    redisFree(c);
    return n;
}

IT_TEST(quorum, anti_entropy, 240)
{
    IT_SKIP_IF_DIRECT();
    qstart(3, false, NULL);
    redisContext *c = it_connect();
    it_kill(it_node(2));
    long long w0 = it_now_ms();
    for (int base = 0; base < AE_KEYS; base += AE_BATCH) {
        for (int i = base; i < base + AE_BATCH; i++)
            redisAppendCommand(c, "SET ae:%d v%d", i, i);
        for (int i = base; i < base + AE_BATCH; i++) {
            redisReply *r = NULL;
            cr_assert(redisGetReply(c, (void **)&r) == REDIS_OK && r, "SET ae:%d: %s", i,
                      c->errstr);
            cr_assert(r->type == REDIS_REPLY_STATUS, "SET ae:%d: %s", i, it_reply_desc(r));
            freeReplyObject(r);
        }
    }
    cr_log_info("%d keys written in %lld ms with node 2 down", AE_KEYS, it_now_ms() - w0);

    it_restart(it_node(2));
    long long t0 = it_now_ms(), last_report = t0;
    long long n = 0;
    while (it_now_ms() - t0 < 60000) {
        n = node_dbsize(2);
        if (n >= AE_KEYS)
            break;
        if (it_now_ms() - last_report >= 5000) {
            fprintf(stderr, "anti-entropy: node 2 holds %lld keys after %lld ms\n", n,
                    it_now_ms() - t0);
            last_report = it_now_ms();
        }
        it_sleep_ms(200);
    }
    long long took = it_now_ms() - t0;
    cr_assert(n >= AE_KEYS, "anti-entropy: node 2 holds %lld of %d keys 60 s after its restart "
              "(keys never read through rcproxy)", n, AE_KEYS);
    long long matching = node_count_matching(2, "ae:*");
    cr_assert(matching == AE_KEYS, "node 2 holds %lld ae:* keys, want %d", matching, AE_KEYS);
    fprintf(stderr, "anti-entropy: %d keys converged in %lld ms\n", AE_KEYS, took);
    cr_log_info("anti-entropy: %d keys converged in %lld ms", AE_KEYS, took);

    /* the copies are right: a sample compared with node 0 */
    redisContext *n0 = it_node_connect(0), *n2 = it_node_connect(2);
    for (int i = 0; i < AE_KEYS; i += 997) {
        char key[32], val[32];
        snprintf(key, sizeof key, "ae:%d", i);
        snprintf(val, sizeof val, "v%d", i);
        stored a = stored_get(n0, key), b = stored_get(n2, key);
        cr_assert(live_is(&b, val) && strcmp(a.ver, b.ver) == 0,
                  "%s: node 2 holds %s \"%s\" %s, node 0 %s \"%s\" %s", key, kind_name(b.kind),
                  b.val, b.ver, kind_name(a.kind), a.val, a.ver);
    }
    redisFree(n0);
    redisFree(n2);
    long long repaired = info_num(c, "anti_entropy_keys_repaired");
    cr_assert(repaired > 0, "INFO anti_entropy_keys_repaired is %lld", repaired);
    cr_log_info("anti_entropy_keys_repaired %lld", repaired);
    redisFree(c);
}

/* ------------------------------------------------------------------------ */
/* two rcproxy instances                                                    */

#define TP_KEYS 100
#define TP_WRITERS 4            /* two per proxy */

typedef struct {
    pthread_t th;
    int port, id;
    long long deadline;
    long ok, fail;
    char first_err[160];
} tp_writer;

static void *tp_writer_main(void *arg)
{
    tp_writer *w = arg;
    redisContext *c = it_try_connect(w->port, NULL, 5000);
    unsigned seed = (unsigned)w->id * 7919u + 1;
    for (long i = 0; c && i < 10000000L && it_now_ms() < w->deadline; i++) {
        int k = (int)(rand_r(&seed) % TP_KEYS);
        redisReply *r = redisCommand(c, "SET tp:%d w%d-%ld", k, w->id, i);
        if (r && r->type == REDIS_REPLY_STATUS)
            w->ok++;
        else if (w->fail++ == 0)
            snprintf(w->first_err, sizeof w->first_err, "%s", r ? it_reply_desc(r) : c->errstr);
        if (r)
            freeReplyObject(r);
        if (c->err)
            break;
    }
    if (!c)
        snprintf(w->first_err, sizeof w->first_err, "cannot connect to %d", w->port);
    if (c)
        redisFree(c);
    return NULL;
}

typedef struct {
    char why[256];
} converge_state;

/* Every node holds the same bytes (version and value) for every tp key. */
static bool nodes_agree(void *arg)
{
    converge_state *st = arg;
    redisContext *n[3];
    for (int i = 0; i < 3; i++)
        n[i] = it_try_connect(it_node(i)->port, NULL, 2000);
    bool ok = n[0] && n[1] && n[2];
    for (int k = 0; ok && k < TP_KEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "tp:%d", k);
        stored s0 = stored_get(n[0], key);
        for (int i = 1; ok && i < 3; i++) {
            stored s = stored_get(n[i], key);
            if (s.kind != ST_LIVE || s0.kind != ST_LIVE || strcmp(s.ver, s0.ver) != 0 ||
                strcmp(s.val, s0.val) != 0) {
                snprintf(st->why, sizeof st->why, "%s: node 0 %s %s \"%.40s\", node %d %s %s \"%.40s\"",
                         key, kind_name(s0.kind), s0.ver, s0.val, i, kind_name(s.kind), s.ver,
                         s.val);
                ok = false;
            }
        }
    }
    for (int i = 0; i < 3; i++)
        if (n[i])
            redisFree(n[i]);
    return ok;
}

IT_TEST(quorum, two_proxies, 120)
{
    IT_SKIP_IF_DIRECT();
    it_opts o = { .quorum_nodes = 3,
                  .proxy_args = { "--instance-id", "1", NULL },
                  .proxy2_args = { "--instance-id", "2", NULL } };
    it_start(&o);
    int p2 = it_start_proxy2();

    tp_writer w[TP_WRITERS];
    memset(w, 0, sizeof w);
    long long deadline = it_now_ms() + 4000;
    for (int i = 0; i < TP_WRITERS; i++) {
        w[i].port = i % 2 ? p2 : it_client_port();
        w[i].id = i;
        w[i].deadline = deadline;
        cr_assert(pthread_create(&w[i].th, NULL, tp_writer_main, &w[i]) == 0);
    }
    long total = 0;
    for (int i = 0; i < TP_WRITERS; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].ok;
    }
    for (int i = 0; i < TP_WRITERS; i++)
        cr_assert(w[i].fail == 0 && w[i].ok > 0, "writer %d (proxy %d): %ld ok, %ld failed; "
                  "first: %s", i, i % 2 + 1, w[i].ok, w[i].fail, w[i].first_err);
    cr_log_info("%ld concurrent writes through two proxies", total);

    /* both proxies read the same winner for every key */
    redisContext *a = it_connect();
    redisContext *b = it_try_connect(p2, NULL, IT_DEFAULT_TIMEOUT_MS);
    cr_assert_not_null(b, "cannot connect to the second rcproxy");
    for (int k = 0; k < TP_KEYS; k++) {
        redisReply *ra = it_cmd(a, "GET tp:%d", k);
        redisReply *rb = it_cmd(b, "GET tp:%d", k);
        cr_assert(ra->type == REDIS_REPLY_STRING && rb->type == REDIS_REPLY_STRING,
                  "GET tp:%d: proxy 1 %s, proxy 2 %s", k, it_reply_desc(ra), it_reply_desc(rb));
        cr_assert(ra->len == rb->len && memcmp(ra->str, rb->str, ra->len) == 0,
                  "GET tp:%d: proxy 1 says \"%s\", proxy 2 says \"%s\"", k, ra->str, rb->str);
        freeReplyObject(ra);
        freeReplyObject(rb);
    }

    /* the nodes converge to the same bytes, and that is what both read */
    converge_state st = { "" };
    cr_assert(it_wait_until(nodes_agree, &st, 15000, 100), "nodes never agreed: %s", st.why);
    bool by1 = false, by2 = false;
    for (int k = 0; k < TP_KEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "tp:%d", k);
        stored s = node_stored(0, key);
        const char *inst = s.ver + 24;      /* last 8 hex digits: the instance id */
        by1 |= strcmp(inst, "00000001") == 0;
        by2 |= strcmp(inst, "00000002") == 0;
        cr_assert(strcmp(inst, "00000001") == 0 || strcmp(inst, "00000002") == 0,
                  "%s: version %s names instance %s, not 1 or 2", key, s.ver, inst);
        it_expect_str(a, s.val, "GET %s", key);
        it_expect_str(b, s.val, "GET %s", key);
    }
    cr_assert(by1 && by2, "every winner came from one proxy (instance 1: %d, 2: %d)", by1, by2);
    redisFree(a);
    redisFree(b);
}
