/*
 * test_commands.c -- per-client state and the proxy's command contract.
 *
 *   commands.select_isolation   SELECT is per client and survives many
 *                               interleaved commands and a transaction
 *   commands.refused            SHUTDOWN, MONITOR, SYNC, ... refused (proxy)
 *   commands.auth_flow          NOAUTH, WRONGPASS, AUTH, password-protected
 *                               backends
 *   commands.hello              HELLO 2 (and HELLO 3 -> NOPROTO, proxy)
 *   commands.client_name_id     CLIENT SETNAME/GETNAME/ID/LIST/INFO
 *   commands.echo_ping          PING, PING msg, binary ECHO
 *   commands.quit               QUIT answers +OK and closes
 *   commands.info               INFO (leader's + "# rcproxy"), INFO rcproxy
 *   commands.keys_scan          KEYS and SCAN see replicated keys
 *   commands.multikey           MSET / MGET / DEL / EXISTS over several keys
 *   commands.flushdb            FLUSHDB, per database
 *   commands.eval_on_leader     EVAL / EVALSHA writes land on the leader
 *   commands.config_get         CONFIG GET maxmemory
 *   commands.sigterm            SIGTERM -> rcproxy exits with status 0
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool bulk_eq(const redisReply *r, const char *s)
{
    return r && r->type == REDIS_REPLY_STRING && r->len == strlen(s) &&
           memcmp(r->str, s, r->len) == 0;
}

IT_TEST(commands, select_isolation, 60)
{
    it_start(NULL);
    redisContext *a = it_connect(), *b = it_connect();
    it_ok(a, "SELECT 9");
    it_ok(a, "SET k a");
    it_ok(b, "SET k b");
    it_wait_ready(10000);
    it_expect_str(a, "a", "GET k");
    it_expect_str(b, "b", "GET k");

    redisReply *r = it_cmd(a, "SELECT 99999");
    cr_assert(r->type == REDIS_REPLY_ERROR, "SELECT 99999: %s", it_reply_desc(r));
    cr_log_info("SELECT 99999 -> %s", r->str);
    freeReplyObject(r);
    it_expect_err(a, "", "SELECT -1");
    it_expect_err(a, "", "SELECT notanumber");
    it_expect_str(a, "a", "GET k");     /* still in db 9 */

    /* interleaved writes whose replies depend on the database */
    for (int i = 1; i <= 500; i++) {
        it_expect_int(a, i, "INCR cnt");
        if (i <= 300)
            it_expect_int(b, i, "INCR cnt");
        if (i % 50 == 0) {
            it_expect_int(a, i / 50, "RPUSH alist x");
            it_expect_str(b, "b", "ECHO b");
        }
    }
    /* the same, pipelined on both connections at once */
    for (int i = 0; i < 200; i++) {
        redisAppendCommand(a, "INCR pcnt");
        redisAppendCommand(b, "INCRBY pcnt 2");
    }
    for (int i = 1; i <= 200; i++) {
        redisReply *ra = NULL, *rb = NULL;
        cr_assert(redisGetReply(a, (void **)&ra) == REDIS_OK && ra);
        cr_assert(redisGetReply(b, (void **)&rb) == REDIS_OK && rb);
        cr_assert(ra->type == REDIS_REPLY_INTEGER && ra->integer == i, "A #%d: %s", i,
                  it_reply_desc(ra));
        cr_assert(rb->type == REDIS_REPLY_INTEGER && rb->integer == 2 * i, "B #%d: %s", i,
                  it_reply_desc(rb));
        freeReplyObject(ra);
        freeReplyObject(rb);
    }
    /* a transaction runs in the client's database too */
    it_ok(a, "MULTI");
    it_expect_status(a, "QUEUED", "SET txk in9");
    r = it_cmd(a, "EXEC");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 1, "EXEC: %s", it_reply_desc(r));
    freeReplyObject(r);

    it_wait_ready(10000);
    it_expect_str(a, "500", "GET cnt");
    it_expect_str(b, "300", "GET cnt");
    it_expect_int(a, 10, "LLEN alist");
    it_expect_int(b, 0, "LLEN alist");

    redisContext *l = it_leader();
    it_ok(l, "SELECT 9");
    it_expect_str(l, "a", "GET k");
    it_expect_str(l, "500", "GET cnt");
    it_expect_str(l, "200", "GET pcnt");
    it_expect_str(l, "in9", "GET txk");
    it_ok(l, "SELECT 0");
    it_expect_str(l, "b", "GET k");
    it_expect_str(l, "300", "GET cnt");
    it_expect_str(l, "400", "GET pcnt");
    it_expect_nil(l, "GET txk");

    /* a new client starts in db 0; A can go back to db 0 */
    redisContext *c = it_connect();
    it_expect_str(c, "b", "GET k");
    it_ok(a, "SELECT 0");
    it_expect_str(a, "b", "GET k");
    redisFree(a);
    redisFree(b);
    redisFree(c);
}

IT_TEST(commands, refused, 60)
{
    IT_SKIP_IF_DIRECT();
    it_start(NULL);
    redisContext *c = it_connect();
    static const char *const cmds[] = {
        "SHUTDOWN", "SHUTDOWN NOSAVE", "MONITOR", "SYNC", "PSYNC ? -1",
        "REPLICAOF NO ONE", "REPLICAOF 127.0.0.1 1", "SLAVEOF NO ONE",
        "REPLCONF listening-port 1", "FAILOVER", "DEBUG SLEEP 0",
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        it_expect_err(c, "rcproxy|not supported", cmds[i]);
        it_expect_status(c, "PONG", "PING");
    }
    /* nothing reached the backends */
    char *info = it_try_info(it_leader(), "replication");
    char role[32];
    cr_assert(info && it_info_value(info, "role", role, sizeof role) &&
              strcmp(role, "master") == 0, "leader role changed");
    free(info);
    for (int i = 0; i < it_replica_count(); i++) {
        redisContext *r = it_try_connect(it_replica(i)->port, NULL, 2000);
        cr_assert_not_null(r, "replica %d is gone", i);
        info = it_try_info(r, "replication");
        cr_assert(info && it_info_value(info, "role", role, sizeof role) &&
                  strcmp(role, "slave") == 0, "replica %d role changed", i);
        free(info);
        redisFree(r);
    }
    it_ok(c, "SET still 1");
    redisFree(c);
}

IT_TEST(commands, auth_flow, 60)
{
    it_opts o = { .replicas = 2, .backend_password = "back-pw", .proxy_password = "front-pw" };
    it_start(&o);
    const char *pw = it_direct() ? "back-pw" : "front-pw";
    redisContext *c = it_connect_noauth();
    it_expect_err(c, "NOAUTH Authentication required.", "GET k");
    it_expect_err(c, "NOAUTH Authentication required.", "SET k v");
    it_expect_err(c, "WRONGPASS invalid username-password pair or user is disabled.",
                  "AUTH wrong-pw");
    if (!it_direct())
        it_expect_err(c, "WRONGPASS", "AUTH back-pw");   /* not the client password */
    it_expect_err(c, "NOAUTH", "GET k");
    it_ok(c, "AUTH %s", pw);
    it_ok(c, "SET k v");
    it_expect_int(c, 1, "INCR n");
    it_wait_ready(10000);
    it_expect_str(c, "v", "GET k");             /* a read, via a replica */
    redisReply *r = it_cmd(c, "MGET k n");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 && bulk_eq(r->element[1], "1"),
              "MGET: %s", it_reply_desc(r));
    freeReplyObject(r);

    /* a second client must authenticate on its own */
    redisContext *d = it_connect_noauth();
    it_expect_err(d, "NOAUTH", "GET k");
    it_ok(d, "AUTH %s", pw);
    it_expect_str(d, "v", "GET k");
    redisFree(c);
    redisFree(d);
}

IT_TEST(commands, hello, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    redisReply *r = it_cmd(c, "HELLO 2");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements % 2 == 0 && r->elements >= 2,
              "HELLO 2: %s", it_reply_desc(r));
    bool found = false;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (bulk_eq(r->element[i], "proto")) {
            cr_assert(r->element[i + 1]->type == REDIS_REPLY_INTEGER &&
                      r->element[i + 1]->integer == 2, "HELLO 2 proto: %s",
                      it_reply_desc(r->element[i + 1]));
            found = true;
        }
    }
    cr_assert(found, "HELLO 2 reply has no \"proto\" field");
    freeReplyObject(r);
    if (!it_direct())
        it_expect_err(c, "NOPROTO", "HELLO 3");
    it_expect_err(c, "", "HELLO 1");
    it_expect_status(c, "PONG", "PING");
    it_ok(c, "SET after_hello 1");
    redisFree(c);
}

IT_TEST(commands, client_name_id, 60)
{
    it_start(NULL);
    redisContext *a = it_connect(), *b = it_connect();
    it_expect_nil(a, "CLIENT GETNAME");
    it_ok(a, "CLIENT SETNAME it-client-a");
    it_expect_str(a, "it-client-a", "CLIENT GETNAME");
    it_expect_nil(b, "CLIENT GETNAME");
    it_expect_err(a, "", "CLIENT SETNAME %s", "has space");
    it_expect_str(a, "it-client-a", "CLIENT GETNAME");
    long long ida = it_int(a, "CLIENT ID"), idb = it_int(b, "CLIENT ID");
    cr_assert(ida > 0 && idb > 0 && ida != idb, "CLIENT ID: %lld and %lld", ida, idb);
    it_expect_int(a, ida, "CLIENT ID");

    char want[64];
    snprintf(want, sizeof want, "id=%lld ", ida);
    redisReply *r = it_cmd(a, "CLIENT INFO");
    cr_assert(r->type == REDIS_REPLY_STRING && strstr(r->str, "name=it-client-a") &&
              strstr(r->str, want), "CLIENT INFO: %s", it_reply_desc(r));
    freeReplyObject(r);
    r = it_cmd(a, "CLIENT LIST");
    cr_assert(r->type == REDIS_REPLY_STRING && strstr(r->str, "name=it-client-a"),
              "CLIENT LIST: %s", it_reply_desc(r));
    freeReplyObject(r);
    it_ok(a, "CLIENT SETNAME %s", "");
    it_expect_nil(a, "CLIENT GETNAME");
    redisFree(a);
    redisFree(b);
}

IT_TEST(commands, echo_ping, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    it_expect_status(c, "PONG", "PING");
    it_expect_str(c, "hello", "PING hello");
    static const char bin[] = "x\0y\r\n*2\r\n$1\r\n\xff";
    redisReply *r = it_cmd(c, "ECHO %b", bin, sizeof bin - 1);
    cr_assert(r->type == REDIS_REPLY_STRING && r->len == sizeof bin - 1 &&
              memcmp(r->str, bin, r->len) == 0, "ECHO binary: %s", it_reply_desc(r));
    freeReplyObject(r);
    it_expect_str(c, "", "ECHO %s", "");
    it_expect_err(c, "wrong number of arguments", "ECHO");
    it_expect_err(c, "wrong number of arguments", "ECHO a b");
    redisFree(c);
}

IT_TEST(commands, quit, 60)
{
    it_start(NULL);
    static const char quit[] = "*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n";
    int fd = it_raw_connect(it_client_port());
    cr_assert(fd >= 0);
    cr_assert(it_raw_send(fd, quit, sizeof quit - 1));
    char buf[256];
    bool eof = false;
    size_t n = it_raw_read_all(fd, buf, sizeof buf - 1, 5000, &eof);
    close(fd);
    cr_assert(n == 5 && memcmp(buf, "+OK\r\n", 5) == 0, "QUIT: got \"%s\"", buf);
    cr_assert(eof, "connection not closed after QUIT");

    /* through hiredis: OK, then the connection is gone */
    redisContext *c = it_connect();
    it_ok(c, "QUIT");
    redisReply *r = redisCommand(c, "PING");
    cr_assert(r == NULL, "PING after QUIT answered: %s", it_reply_desc(r));
    redisFree(c);
    c = it_connect();
    it_expect_status(c, "PONG", "PING");
    redisFree(c);
}

IT_TEST(commands, info, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    redisReply *r = it_cmd(c, "INFO");
    cr_assert(r->type == REDIS_REPLY_STRING, "INFO: %s", it_reply_desc(r));
    cr_assert(strstr(r->str, "role:master"), "INFO lacks role:master");
    cr_assert(strstr(r->str, "redis_version:"), "INFO lacks redis_version");
    if (!it_direct()) {
        cr_assert(strstr(r->str, "# rcproxy\r\n"), "INFO lacks the # rcproxy section");
        cr_assert(strstr(r->str, "rcproxy_version:"), "INFO lacks rcproxy_version");
    }
    freeReplyObject(r);
    r = it_cmd(c, "INFO replication");
    cr_assert(r->type == REDIS_REPLY_STRING && strstr(r->str, "role:master"),
              "INFO replication: %s", it_reply_desc(r));
    freeReplyObject(r);
    if (it_direct()) {
        redisFree(c);
        return;
    }

    r = it_cmd(c, "INFO rcproxy");
    cr_assert(r->type == REDIS_REPLY_STRING, "INFO rcproxy: %s", it_reply_desc(r));
    const char *s = r->str;
    cr_assert(strstr(s, "# rcproxy\r\n"), "no header in:\n%s", s);
    cr_assert(!strstr(s, "role:master"), "INFO rcproxy has other sections:\n%s", s);
    char v[64];
    cr_assert(it_info_value(s, "rcproxy_version", v, sizeof v) && strcmp(v, RCPROXY_VERSION) == 0,
              "rcproxy_version in:\n%s", s);
    cr_assert(it_info_value(s, "mode", v, sizeof v) && strcmp(v, "leader") == 0,
              "mode in:\n%s", s);
    cr_assert(it_info_value(s, "backend_count", v, sizeof v) && strcmp(v, "3") == 0,
              "backend_count in:\n%s", s);
    cr_assert(it_info_value(s, "connected_clients", v, sizeof v) && atoi(v) >= 1,
              "connected_clients in:\n%s", s);
    cr_assert(it_info_value(s, "total_connections_received", v, sizeof v) && atoi(v) >= 1,
              "total_connections_received in:\n%s", s);
    cr_assert(it_info_value(s, "total_commands_processed", v, sizeof v) && atoi(v) >= 1,
              "total_commands_processed in:\n%s", s);
    freeReplyObject(r);

    char f[64];
    cr_assert(it_backend_field(it_leader_server(), "role", f, sizeof f) &&
              strcmp(f, "leader") == 0, "leader backend role: %s", f);
    cr_assert(it_backend_field(it_leader_server(), "status", f, sizeof f) &&
              strcmp(f, "up") == 0, "leader backend status: %s", f);
    for (int i = 0; i < it_replica_count(); i++) {
        const it_server *rs = it_replica(i);
        cr_assert(it_backend_field(rs, "role", f, sizeof f) && strcmp(f, "replica") == 0,
                  "replica %d role: %s", i, f);
        cr_assert(it_backend_field(rs, "status", f, sizeof f) && strcmp(f, "up") == 0,
                  "replica %d status: %s", i, f);
        cr_assert(it_backend_field(rs, "link", f, sizeof f) && strcmp(f, "up") == 0,
                  "replica %d link: %s", i, f);
        cr_assert(it_backend_field(rs, "in_rotation", f, sizeof f) && strcmp(f, "yes") == 0,
                  "replica %d in_rotation: %s", i, f);
        static const char *const numeric[] = { "offset", "lag", "outstanding", "requests",
                                               "errors", "loading" };
        for (size_t j = 0; j < sizeof numeric / sizeof numeric[0]; j++) {
            cr_assert(it_backend_field(rs, numeric[j], f, sizeof f) && f[0] >= '0' &&
                      f[0] <= '9', "replica %d %s: \"%s\"", i, numeric[j], f);
        }
    }
    redisFree(c);
}

IT_TEST(commands, keys_scan, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    enum { N = 50 };
    for (int i = 0; i < N; i++)
        it_ok(c, "SET sk_%d %d", i, i);
    it_ok(c, "SET other x");
    it_wait_ready(10000);

    bool seen[N] = { false };
    redisReply *r = it_cmd(c, "KEYS sk_*");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == N, "KEYS: %s", it_reply_desc(r));
    for (size_t i = 0; i < r->elements; i++) {
        int k = -1;
        cr_assert(sscanf(r->element[i]->str, "sk_%d", &k) == 1 && k >= 0 && k < N && !seen[k],
                  "KEYS element %s", r->element[i]->str);
        seen[k] = true;
    }
    freeReplyObject(r);
    it_expect_int(c, N + 1, "DBSIZE");

    memset(seen, 0, sizeof seen);
    int count = 0;
    char cursor[32] = "0";
    int rounds = 0;
    do {
        cr_assert(++rounds < 1000, "SCAN did not finish");
        r = it_cmd(c, "SCAN %s MATCH sk_* COUNT 7", cursor);
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                  r->element[0]->type == REDIS_REPLY_STRING &&
                  r->element[1]->type == REDIS_REPLY_ARRAY, "SCAN: %s", it_reply_desc(r));
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            int k = -1;
            cr_assert(sscanf(r->element[1]->element[i]->str, "sk_%d", &k) == 1 && k >= 0 &&
                      k < N, "SCAN element %s", r->element[1]->element[i]->str);
            if (!seen[k])
                count++;
            seen[k] = true;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    cr_assert(count == N, "SCAN saw %d of %d keys", count, N);
    redisFree(c);
}

IT_TEST(commands, multikey, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    it_ok(c, "MSET a 1 b 2 c 3");
    it_wait_ready(10000);
    redisReply *r = it_cmd(c, "MGET a b c missing");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 4 && bulk_eq(r->element[0], "1") &&
              bulk_eq(r->element[1], "2") && bulk_eq(r->element[2], "3") &&
              r->element[3]->type == REDIS_REPLY_NIL, "MGET: %s", it_reply_desc(r));
    freeReplyObject(r);
    it_expect_int(c, 3, "EXISTS a b c missing");
    it_expect_int(c, 0, "MSETNX a 9 d 4");
    it_expect_int(c, 3, "DEL a b c missing");
    it_expect_int(c, 0, "DEL a b c");
    it_wait_ready(10000);
    r = it_cmd(c, "MGET a b c");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
              r->element[0]->type == REDIS_REPLY_NIL && r->element[2]->type == REDIS_REPLY_NIL,
              "MGET after DEL: %s", it_reply_desc(r));
    freeReplyObject(r);
    it_expect_int(it_leader(), 0, "EXISTS a b c");
    it_ok(c, "MSET x 1 y 2");
    it_expect_int(c, 2, "UNLINK x y z");
    redisFree(c);
}

IT_TEST(commands, flushdb, 60)
{
    it_start(NULL);
    redisContext *a = it_connect(), *b = it_connect();
    it_ok(a, "SELECT 3");
    it_ok(a, "MSET x 1 y 2");
    it_ok(b, "MSET x 1 y 2 z 3");
    it_ok(a, "FLUSHDB");
    it_wait_ready(10000);
    it_expect_int(a, 0, "DBSIZE");
    it_expect_int(b, 3, "DBSIZE");
    it_ok(b, "FLUSHDB");
    it_wait_ready(10000);
    it_expect_int(b, 0, "DBSIZE");
    it_expect_int(it_leader(), 0, "DBSIZE");
    it_ok(b, "SET after_flush 1");
    redisFree(a);
    redisFree(b);
}

IT_TEST(commands, eval_on_leader, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    it_ok(c, "EVAL %s 1 ek ev", "return redis.call('SET', KEYS[1], ARGV[1])");
    it_expect_int(c, 1, "EVAL %s 1 ectr", "return redis.call('INCR', KEYS[1])");
    it_expect_int(c, 2, "EVAL %s 1 ectr", "return redis.call('INCR', KEYS[1])");
    redisContext *l = it_leader();
    it_expect_str(l, "ev", "GET ek");
    it_expect_str(l, "2", "GET ectr");
    it_expect_str(c, "ev", "EVAL %s 1 ek", "return redis.call('GET', KEYS[1])");

    redisReply *r = it_cmd(c, "SCRIPT LOAD %s", "return redis.call('INCRBY', KEYS[1], 10)");
    cr_assert(r->type == REDIS_REPLY_STRING && r->len == 40, "SCRIPT LOAD: %s",
              it_reply_desc(r));
    char sha[41];
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    it_expect_int(c, 12, "EVALSHA %s 1 ectr", sha);
    it_expect_str(l, "12", "GET ectr");
    it_expect_err(c, "NOSCRIPT", "EVALSHA %s 0", "0000000000000000000000000000000000000000");
    redisFree(c);
}

IT_TEST(commands, config_get, 60)
{
    it_start(NULL);
    redisContext *c = it_connect();
    redisReply *r = it_cmd(c, "CONFIG GET maxmemory");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
              bulk_eq(r->element[0], "maxmemory") && bulk_eq(r->element[1], "0"),
              "CONFIG GET maxmemory: %s", it_reply_desc(r));
    freeReplyObject(r);
    redisFree(c);
}

IT_TEST(commands, sigterm, 60)
{
    IT_SKIP_IF_DIRECT();
    it_start(NULL);
    redisContext *c = it_connect();
    it_ok(c, "SET before_term 1");
    int status = 0;
    cr_assert(it_proxy_signal_wait(SIGTERM, 5000, &status),
              "rcproxy still running 5 s after SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "rcproxy exit status %d (signal %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    /* the leader is untouched */
    it_expect_str(it_leader(), "1", "GET before_term");
    redisFree(c);
}
