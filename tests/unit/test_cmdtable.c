/* test_cmdtable.c -- unit tests for proxy/cmdtable: built-in rows, lookup,
 * merging COMMAND replies, and a check of the built-in table against a real
 * redis-server's COMMAND reply. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proxy/cmdtable.h"

static px_cmdtable *T;

static void table_setup(void) { T = px_cmdtable_new_builtin(); }
static void table_teardown(void) { px_cmdtable_free(T); T = NULL; }

static const px_command *look(const char *name)
{
    return px_cmdtable_lookup(T, name, strlen(name));
}

/* Parse a RESP string into a real hiredis reply (caller frees it). */
static redisReply *resp(const char *buf, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *out = NULL;
    cr_assert_not_null(rd);
    cr_assert_eq(redisReaderFeed(rd, buf, len), REDIS_OK);
    cr_assert_eq(redisReaderGetReply(rd, &out), REDIS_OK, "reader: %s", rd->errstr);
    cr_assert_not_null(out, "incomplete RESP in test input");
    redisReaderFree(rd);
    return out;
}
#define RESP(lit) resp((lit), sizeof(lit) - 1)

/* ---- built-in table ------------------------------------------------- */

TestSuite(builtin, .init = table_setup, .fini = table_teardown);

Test(builtin, get_is_readonly_fast_one_key)
{
    const px_command *c = look("get");
    cr_assert_not_null(c);
    cr_expect_str_eq(c->name, "get");
    cr_expect_eq(c->arity, 2);
    cr_expect(c->flags & PX_CMD_READONLY);
    cr_expect(c->flags & PX_CMD_FAST);
    cr_expect_not(c->flags & PX_CMD_WRITE);
    cr_expect_eq(c->first_key, 1);
    cr_expect_eq(c->last_key, 1);
    cr_expect_eq(c->key_step, 1);
    cr_expect_eq(c->id, PX_ID_NONE);
}

Test(builtin, set_is_write)
{
    const px_command *c = look("set");
    cr_assert_not_null(c);
    cr_expect_eq(c->arity, -3);
    cr_expect(c->flags & PX_CMD_WRITE);
    cr_expect_not(c->flags & PX_CMD_READONLY);
    cr_expect_eq(c->first_key, 1);
}

Test(builtin, blpop_is_blocking_write)
{
    const px_command *c = look("blpop");
    cr_assert_not_null(c);
    cr_expect(c->flags & PX_CMD_BLOCKING);
    cr_expect(c->flags & PX_CMD_WRITE);
    cr_expect_eq(c->first_key, 1);
    cr_expect_eq(c->last_key, -2);
    cr_expect_eq(c->key_step, 1);
}

Test(builtin, subscribe_is_pubsub)
{
    const px_command *c = look("subscribe");
    cr_assert_not_null(c);
    cr_expect(c->flags & PX_CMD_PUBSUB);
    cr_expect_eq(c->id, PX_ID_SUBSCRIBE);
    cr_expect_eq(c->first_key, 0);
}

Test(builtin, xread_blocking_as_redis_reports_it)
{
    const px_command *c = look("xread");
    cr_assert_not_null(c);
    cr_expect(c->flags & PX_CMD_BLOCKING);
    cr_expect(c->flags & PX_CMD_READONLY);
    cr_expect(c->flags & PX_CMD_MOVABLEKEYS);
    cr_expect_eq(c->id, PX_ID_XREAD);
}

Test(builtin, lookup_is_case_insensitive)
{
    const px_command *c = look("get");
    cr_assert_not_null(c);
    cr_expect_eq(look("gEt"), c);
    cr_expect_eq(look("GET"), c);
    cr_expect_eq(look("Get"), c);
    cr_expect_eq(look("ZRANGEBYSCORE"), look("zrangebyscore"));
    cr_expect_not_null(look("ZRANGEBYSCORE"));
}

Test(builtin, unknown_and_empty_names)
{
    cr_expect_null(look("nosuchcommand"));
    cr_expect_null(look("ge"));
    cr_expect_null(look("gett"));
    cr_expect_null(px_cmdtable_lookup(T, "", 0));
    cr_expect_null(px_cmdtable_lookup(T, NULL, 0));
    cr_expect_null(px_cmdtable_lookup(T, "get", 0));
    /* not ASCII letters: folding must not turn these into "get" */
    cr_expect_null(look("g\xc5t"));
    cr_expect_null(look("GE\x14"));
}

Test(builtin, length_is_respected)
{
    /* embedded NUL: the whole 5 bytes are the name */
    cr_expect_null(px_cmdtable_lookup(T, "get\0x", 5));
    cr_expect_null(px_cmdtable_lookup(T, "get\0", 4));
    /* length shorter than the string: only the first len bytes count */
    cr_expect_eq(px_cmdtable_lookup(T, "getrange", 3), look("get"));
    cr_expect_eq(px_cmdtable_lookup(T, "SETXYZ", 3), look("set"));
    /* a name that is not NUL-terminated at all */
    char raw[3] = { 'd', 'E', 'l' };
    cr_expect_eq(px_cmdtable_lookup(T, raw, sizeof(raw)), look("del"));
}

Test(builtin, very_long_name)
{
    size_t len = 1u << 20;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, 'a', len);
    memcpy(big, "get", 3);
    cr_expect_null(px_cmdtable_lookup(T, big, len));
    cr_expect_null(px_cmdtable_lookup(T, big, 200));
    cr_expect_eq(px_cmdtable_lookup(T, big, 3), look("get"));
    free(big);
}

static const struct { const char *name; px_cmd_id id; } special[] = {
    { "ping", PX_ID_PING }, { "echo", PX_ID_ECHO }, { "quit", PX_ID_QUIT },
    { "reset", PX_ID_RESET }, { "select", PX_ID_SELECT }, { "auth", PX_ID_AUTH },
    { "hello", PX_ID_HELLO }, { "client", PX_ID_CLIENT }, { "info", PX_ID_INFO },
    { "rcproxy", PX_ID_RCPROXY },
    { "multi", PX_ID_MULTI }, { "exec", PX_ID_EXEC }, { "discard", PX_ID_DISCARD },
    { "watch", PX_ID_WATCH }, { "unwatch", PX_ID_UNWATCH },
    { "subscribe", PX_ID_SUBSCRIBE }, { "psubscribe", PX_ID_PSUBSCRIBE },
    { "ssubscribe", PX_ID_SSUBSCRIBE }, { "unsubscribe", PX_ID_UNSUBSCRIBE },
    { "punsubscribe", PX_ID_PUNSUBSCRIBE }, { "sunsubscribe", PX_ID_SUNSUBSCRIBE },
    { "wait", PX_ID_WAIT }, { "xread", PX_ID_XREAD }, { "xreadgroup", PX_ID_XREADGROUP },
    { "shutdown", PX_ID_SHUTDOWN }, { "sync", PX_ID_SYNC }, { "psync", PX_ID_PSYNC },
    { "replicaof", PX_ID_REPLICAOF }, { "slaveof", PX_ID_SLAVEOF },
    { "monitor", PX_ID_MONITOR }, { "replconf", PX_ID_REPLCONF },
    { "failover", PX_ID_FAILOVER }, { "debug", PX_ID_DEBUG },
};
#define NSPECIAL (sizeof(special) / sizeof(special[0]))

Test(builtin, ids_of_every_special_command)
{
    cr_assert_eq(NSPECIAL, PX_ID__COUNT - 1, "the test list misses an id");
    for (size_t i = 0; i < NSPECIAL; i++) {
        const px_command *c = look(special[i].name);
        cr_assert_not_null(c, "%s missing from the built-in table", special[i].name);
        cr_expect_eq(c->id, special[i].id, "%s: id %d", special[i].name, c->id);
        char upper[32];
        size_t n = strlen(special[i].name);
        for (size_t k = 0; k < n; k++)
            upper[k] = (char)(special[i].name[k] - 'a' + 'A');
        cr_expect_eq(px_cmdtable_lookup(T, upper, n), c, "%s upper case", special[i].name);
    }
    cr_expect_eq(look("get")->id, PX_ID_NONE);
    cr_expect_eq(look("hset")->id, PX_ID_NONE);
}

Test(builtin, rcproxy_row)
{
    const px_command *c = look("RCPROXY");
    cr_assert_not_null(c);
    cr_expect_str_eq(c->name, "rcproxy");
    cr_expect_eq(c->arity, -2);
    cr_expect_eq(c->flags, (uint32_t)(PX_CMD_LOADING | PX_CMD_STALE | PX_CMD_FAST));
    cr_expect_eq(c->first_key, 0);
    cr_expect_eq(c->last_key, 0);
    cr_expect_eq(c->key_step, 0);
}

Test(builtin, key_positions_of_multikey_commands)
{
    const px_command *mset = look("mset"), *mget = look("mget"), *del = look("del");
    cr_assert(mset && mget && del);
    cr_expect_eq(mset->first_key, 1);
    cr_expect_eq(mset->last_key, -1);
    cr_expect_eq(mset->key_step, 2);
    cr_expect_eq(mget->first_key, 1);
    cr_expect_eq(mget->last_key, -1);
    cr_expect_eq(mget->key_step, 1);
    cr_expect(mget->flags & PX_CMD_READONLY);
    cr_expect_eq(del->first_key, 1);
    cr_expect_eq(del->last_key, -1);
    cr_expect_eq(del->key_step, 1);
    cr_expect(del->flags & PX_CMD_WRITE);
}

Test(builtin, count_and_misc_flags)
{
    cr_expect_gt(px_cmdtable_count(T), 200);
    cr_expect(look("flushall")->flags & PX_CMD_WRITE);
    cr_expect(look("shutdown")->flags & PX_CMD_ADMIN);
    cr_expect(look("eval")->flags & PX_CMD_MOVABLEKEYS);
    cr_expect(look("multi")->flags & PX_CMD_NOSCRIPT);
    cr_expect_null(look("config|get"), "subcommands are not top-level rows");
    px_cmdtable_free(NULL);
    cr_expect_eq(px_cmdtable_count(NULL), 0);
}

/* ---- px_cmdtable_load_reply ----------------------------------------- */

TestSuite(load, .init = table_setup, .fini = table_teardown);

/* A Redis 7 style GET entry saying GET is a write (10 fields). */
#define GET7_AS_WRITE \
    "*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+write\r\n+denyoom\r\n:1\r\n:1\r\n:1\r\n" \
    "*2\r\n+@read\r\n+@string\r\n*0\r\n" \
    "*1\r\n*6\r\n$5\r\nflags\r\n*1\r\n+RO\r\n$12\r\nbegin_search\r\n*0\r\n$9\r\nfind_keys\r\n*0\r\n" \
    "*0\r\n"

Test(load, redis7_entry_overrides_flags_and_keeps_pointer)
{
    const px_command *before = look("get");
    size_t n = px_cmdtable_count(T);
    redisReply *r = RESP("*1\r\n" GET7_AS_WRITE);
    cr_expect_eq(px_cmdtable_load_reply(T, r), 1);
    freeReplyObject(r);
    const px_command *c = look("GET");
    cr_assert_eq(c, before, "entries must not move on reload");
    cr_expect_eq(c->flags, (uint32_t)PX_CMD_WRITE);
    cr_expect_eq(c->arity, 2);
    cr_expect_eq(px_cmdtable_count(T), n);
    cr_expect_str_eq(c->name, "get");
}

Test(load, redis6_entry_with_bulk_flags)
{
    redisReply *r = RESP("*1\r\n*7\r\n$4\r\nMGET\r\n:-3\r\n*2\r\n$8\r\nreadonly\r\n$4\r\nFAST\r\n"
                         ":2\r\n:-2\r\n:3\r\n*1\r\n+@read\r\n");
    cr_expect_eq(px_cmdtable_load_reply(T, r), 1);
    freeReplyObject(r);
    const px_command *c = look("mget");
    cr_assert_not_null(c);
    cr_expect_eq(c->arity, -3);
    cr_expect_eq(c->flags, (uint32_t)(PX_CMD_READONLY | PX_CMD_FAST));
    cr_expect_eq(c->first_key, 2);
    cr_expect_eq(c->last_key, -2);
    cr_expect_eq(c->key_step, 3);
}

Test(load, new_command_is_added_and_owned)
{
    size_t n = px_cmdtable_count(T);
    /* the reply is freed before the lookups: the table must own its copy */
    const char lit[] = "*2\r\n*6\r\n$10\r\nMyMod.Read\r\n:-2\r\n*1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n"
                       "*6\r\n$31\r\nthis.is.a.rather.long.modulecmd\r\n:1\r\n*0\r\n:0\r\n:0\r\n:0\r\n";
    redisReply *r = resp(lit, sizeof(lit) - 1);
    cr_assert_eq(r->element[1]->element[0]->len, 31);
    cr_expect_eq(px_cmdtable_load_reply(T, r), 2);
    freeReplyObject(r);
    cr_expect_eq(px_cmdtable_count(T), n + 2);
    const px_command *c = look("mymod.read");
    cr_assert_not_null(c);
    cr_expect_str_eq(c->name, "mymod.read");
    cr_expect_eq(c->arity, -2);
    cr_expect_eq(c->flags, (uint32_t)PX_CMD_READONLY);
    cr_expect_eq(c->first_key, 1);
    cr_expect_eq(c->id, PX_ID_NONE);
    cr_expect_eq(look("MYMOD.READ"), c);
    /* the new longest name is found; one byte more is not */
    cr_expect_not_null(look("THIS.IS.A.RATHER.LONG.MODULECMD"));
    cr_expect_null(look("this.is.a.rather.long.modulecm"));
    cr_expect_null(look("this.is.a.rather.long.modulecmdx"));
    /* built-ins still there after the rebuild of the index */
    for (size_t i = 0; i < NSPECIAL; i++)
        cr_expect_eq(look(special[i].name)->id, special[i].id);
}

Test(load, id_is_preserved)
{
    redisReply *r = RESP("*2\r\n"
                         "*6\r\n$5\r\nmulti\r\n:1\r\n*1\r\n+write\r\n:0\r\n:0\r\n:0\r\n"
                         "*6\r\n$4\r\nPING\r\n:-1\r\n*0\r\n:0\r\n:0\r\n:0\r\n");
    cr_expect_eq(px_cmdtable_load_reply(T, r), 2);
    freeReplyObject(r);
    cr_expect_eq(look("multi")->id, PX_ID_MULTI);
    cr_expect_eq(look("multi")->flags, (uint32_t)PX_CMD_WRITE);
    cr_expect_eq(look("ping")->id, PX_ID_PING);
    cr_expect_eq(look("ping")->flags, 0u);
}

Test(load, upper_case_reply_name_updates_existing_row)
{
    /* names in a reply are matched case-insensitively: no second "rcproxy" */
    size_t n = px_cmdtable_count(T);
    redisReply *r = RESP("*1\r\n*6\r\n$7\r\nRCPROXY\r\n:-3\r\n*1\r\n+admin\r\n:0\r\n:0\r\n:0\r\n");
    cr_expect_eq(px_cmdtable_load_reply(T, r), 1);
    freeReplyObject(r);
    cr_expect_eq(look("rcproxy")->id, PX_ID_RCPROXY);
    cr_expect_eq(look("rcproxy")->arity, -3);
    cr_expect_eq(look("rcproxy")->flags, (uint32_t)PX_CMD_ADMIN);
    cr_expect_eq(px_cmdtable_count(T), n);
}

Test(load, malformed_entries_are_skipped)
{
    size_t n = px_cmdtable_count(T);
    uint32_t get_flags = look("get")->flags;
    redisReply *r = RESP(
        "*12\r\n"
        /* 0: not an array */
        "$3\r\nget\r\n"
        /* 1: only 5 fields */
        "*5\r\n$3\r\nget\r\n:2\r\n*1\r\n+write\r\n:1\r\n:1\r\n"
        /* 2: name is an integer */
        "*6\r\n:7\r\n:2\r\n*1\r\n+write\r\n:1\r\n:1\r\n:1\r\n"
        /* 3: arity is a string */
        "*6\r\n$3\r\nget\r\n$1\r\n2\r\n*1\r\n+write\r\n:1\r\n:1\r\n:1\r\n"
        /* 4: flags not an array */
        "*6\r\n$3\r\nget\r\n:2\r\n+write\r\n:1\r\n:1\r\n:1\r\n"
        /* 5: a flag that is an integer */
        "*6\r\n$3\r\nget\r\n:2\r\n*2\r\n+write\r\n:1\r\n:1\r\n:1\r\n:1\r\n"
        /* 6: empty name */
        "*6\r\n$0\r\n\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"
        /* 7: arity 0 */
        "*6\r\n$3\r\nget\r\n:0\r\n*1\r\n+write\r\n:1\r\n:1\r\n:1\r\n"
        /* 8: name with an embedded NUL */
        "*6\r\n$5\r\nge\0tx\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"
        /* 9: negative first key */
        "*6\r\n$3\r\nget\r\n:2\r\n*0\r\n:-1\r\n:1\r\n:1\r\n"
        /* 10: nil step */
        "*6\r\n$3\r\nget\r\n:2\r\n*0\r\n:1\r\n:1\r\n$-1\r\n"
        /* 11: the only valid one */
        "*6\r\n$7\r\nnewcmd1\r\n:-1\r\n*1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n");
    cr_expect_eq(px_cmdtable_load_reply(T, r), 1);
    freeReplyObject(r);
    cr_expect_eq(px_cmdtable_count(T), n + 1);
    cr_expect_eq(look("get")->flags, get_flags, "a malformed GET entry changed GET");
    cr_expect_null(px_cmdtable_lookup(T, "ge\0tx", 5));
    cr_expect_null(look("ge"));
    cr_expect_not_null(look("newcmd1"));
}

Test(load, not_a_command_reply_leaves_table_unchanged)
{
    static const struct { const char *resp; size_t len; } bad[] = {
#define B(s) { s, sizeof(s) - 1 }
        B("+OK\r\n"),
        B("-ERR unknown command 'COMMAND'\r\n"),
        B(":42\r\n"),
        B("$3\r\nget\r\n"),
        B("*-1\r\n"),
        B("*0\r\n"),
        B("*2\r\n$3\r\nget\r\n$3\r\nset\r\n"),
        B("*1\r\n*5\r\n$3\r\nget\r\n:2\r\n*1\r\n+write\r\n:1\r\n:1\r\n"),
        B("*1\r\n*0\r\n"),
#undef B
    };
    size_t n = px_cmdtable_count(T);
    const px_command *get = look("get");
    uint32_t flags = get->flags;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *r = resp(bad[i].resp, bad[i].len);
        cr_expect_eq(px_cmdtable_load_reply(T, r), -1, "case %zu accepted", i);
        freeReplyObject(r);
    }
    cr_expect_eq(px_cmdtable_load_reply(T, NULL), -1);
    cr_expect_eq(px_cmdtable_count(T), n);
    cr_expect_eq(look("get"), get);
    cr_expect_eq(get->flags, flags);
    cr_expect_eq(get->arity, 2);
}

Test(load, duplicate_names_added_once_last_wins)
{
    size_t n = px_cmdtable_count(T);
    redisReply *r = RESP("*3\r\n"
                         "*6\r\n$4\r\ndupe\r\n:2\r\n*1\r\n+write\r\n:1\r\n:1\r\n:1\r\n"
                         "*6\r\n$4\r\nDUPE\r\n:3\r\n*1\r\n+readonly\r\n:1\r\n:2\r\n:1\r\n"
                         "*6\r\n$3\r\nget\r\n:2\r\n*1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n");
    cr_expect_eq(px_cmdtable_load_reply(T, r), 3);
    freeReplyObject(r);
    cr_expect_eq(px_cmdtable_count(T), n + 1);
    const px_command *c = look("dupe");
    cr_assert_not_null(c);
    cr_expect_eq(c->arity, 3);
    cr_expect_eq(c->flags, (uint32_t)PX_CMD_READONLY);
    cr_expect_eq(c->last_key, 2);
}

Test(load, repeated_reloads_do_not_grow)
{
    redisReply *r = RESP("*2\r\n" GET7_AS_WRITE
                         "*6\r\n$6\r\nx.test\r\n:2\r\n*1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n");
    size_t n = px_cmdtable_count(T);
    const px_command *x = NULL;
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(px_cmdtable_load_reply(T, r), 2);
        cr_assert_eq(px_cmdtable_count(T), n + 1);
        if (x == NULL)
            x = look("x.test");
        cr_assert_eq(look("x.test"), x, "added entry moved on reload %d", i);
    }
    freeReplyObject(r);
}

Test(load, many_new_commands)
{
    /* enough additions to force several index rebuilds */
    size_t n = px_cmdtable_count(T);
    char *buf = malloc(1 << 20);
    cr_assert_not_null(buf);
    size_t len = (size_t)sprintf(buf, "*1000\r\n");
    for (int i = 0; i < 1000; i++)
        len += (size_t)sprintf(buf + len, "*6\r\n$9\r\ncmd.%05d\r\n:%d\r\n*1\r\n+write\r\n:1\r\n:1\r\n:1\r\n",
                               i, -(i % 5 + 1));
    redisReply *r = resp(buf, len);
    free(buf);
    cr_expect_eq(px_cmdtable_load_reply(T, r), 1000);
    freeReplyObject(r);
    cr_expect_eq(px_cmdtable_count(T), n + 1000);
    cr_expect_eq(look("CMD.00777")->arity, -(777 % 5 + 1));
    cr_expect_eq(look("cmd.00999")->flags, (uint32_t)PX_CMD_WRITE);
    cr_expect_not_null(look("get"));
    cr_expect_null(look("cmd.01000"));
}

/* ---- against a real redis-server ------------------------------------ */

static pid_t server_pid = -1;
static char server_dir[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

/* Stop the server (TERM, then KILL after 5 s) and remove its directory.
 * Safe to call twice; used as the test's fini and as an atexit hook. */
static void server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        int done = 0;
        for (int i = 0; i < 100 && !done; i++) {
            if (waitpid(server_pid, NULL, WNOHANG) == server_pid)
                done = 1;
            else
                usleep(50 * 1000);
        }
        if (!done) {
            kill(server_pid, SIGKILL);
            waitpid(server_pid, NULL, 0);
        }
        server_pid = -1;
    }
    if (server_dir[0] != '\0') {
        nftw(server_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        server_dir[0] = '\0';
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof(a);
    int port = -1;
    if (fd < 0)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void exec_server(int port)
{
    char portstr[16], logpath[128];
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(logpath, sizeof(logpath), "%s/redis.log", server_dir);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    execlp("redis-server", "redis-server", "--port", portstr, "--bind", "127.0.0.1",
           "--dir", server_dir, "--save", "", "--appendonly", "no",
           "--daemonize", "no", (char *)NULL);
    _exit(127);
}

/* Start redis-server on a free port; return a connected context or NULL.
 * Every wait is bounded: 3 port attempts x 5 s. */
static redisContext *server_start(void)
{
    snprintf(server_dir, sizeof(server_dir), "/tmp/rcproxy-cmdtable-XXXXXX");
    if (mkdtemp(server_dir) == NULL) {
        server_dir[0] = '\0';
        return NULL;
    }
    atexit(server_stop);
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = free_port();
        if (port <= 0)
            continue;
        server_pid = fork();
        if (server_pid < 0)
            return NULL;
        if (server_pid == 0)
            exec_server(port);
        for (int i = 0; i < 100; i++) {
            struct timeval tv = { 1, 0 };
            redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
            if (c != NULL && c->err == 0) {
                redisSetTimeout(c, (struct timeval){ 10, 0 });
                return c;
            }
            redisFree(c);
            if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
                server_pid = -1;   /* exited: port taken? try another */
                break;
            }
            usleep(50 * 1000);
        }
        if (server_pid > 0) {
            kill(server_pid, SIGKILL);
            waitpid(server_pid, NULL, 0);
            server_pid = -1;
        }
    }
    return NULL;
}

/* The PX_CMD_* bit of one of Redis's flag names (0 for the others). */
static uint32_t live_flag(const char *f)
{
    static const struct { const char *name; uint32_t bit; } m[] = {
        { "write", PX_CMD_WRITE }, { "readonly", PX_CMD_READONLY },
        { "blocking", PX_CMD_BLOCKING }, { "pubsub", PX_CMD_PUBSUB },
        { "admin", PX_CMD_ADMIN }, { "noscript", PX_CMD_NOSCRIPT },
        { "loading", PX_CMD_LOADING }, { "stale", PX_CMD_STALE },
        { "fast", PX_CMD_FAST }, { "movablekeys", PX_CMD_MOVABLEKEYS },
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(m[i].name, f) == 0)
            return m[i].bit;
    return 0;
}

Test(live, builtin_table_matches_redis_server, .init = table_setup, .fini = server_stop,
     .timeout = 60)
{
    redisContext *c = server_start();
    cr_assert_not_null(c, "could not start redis-server");
    redisReply *r = redisCommand(c, "COMMAND");
    cr_assert_not_null(r, "COMMAND failed: %s", c->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_gt(r->elements, 200);

    const uint32_t rw = PX_CMD_READONLY | PX_CMD_WRITE;
    size_t checked = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        cr_assert_eq(e->type, REDIS_REPLY_ARRAY);
        cr_assert_geq(e->elements, 6);
        const char *name = e->element[0]->str;
        const px_command *b = px_cmdtable_lookup(T, name, e->element[0]->len);
        cr_expect_not_null(b, "%s: missing from the built-in table", name);
        if (b == NULL)
            continue;
        uint32_t flags = 0;
        for (size_t k = 0; k < e->element[2]->elements; k++)
            flags |= live_flag(e->element[2]->element[k]->str);
        cr_expect_eq(b->flags & rw, flags & rw, "%s: built-in readonly/write 0x%x, redis 0x%x",
                     name, b->flags & rw, flags & rw);
        cr_expect_eq(b->flags, flags, "%s: built-in flags 0x%x, redis 0x%x", name, b->flags, flags);
        cr_expect_eq(b->arity, (int)e->element[1]->integer, "%s: arity", name);
        cr_expect_eq(b->first_key, (int)e->element[3]->integer, "%s: first key", name);
        cr_expect_eq(b->last_key, (int)e->element[4]->integer, "%s: last key", name);
        cr_expect_eq(b->key_step, (int)e->element[5]->integer, "%s: key step", name);
        checked++;
    }
    cr_expect_eq(checked, r->elements);
    /* the built-in table is Redis's commands plus rcproxy's own */
    cr_expect_eq(px_cmdtable_count(T), r->elements + 1);

    /* loading the live reply changes no flags or counts and keeps the ids */
    const px_command *get = px_cmdtable_lookup(T, "get", 3);
    uint32_t get_flags = get->flags;
    cr_expect_eq(px_cmdtable_load_reply(T, r), (int)r->elements);
    cr_expect_eq(px_cmdtable_count(T), r->elements + 1);
    cr_expect_eq(px_cmdtable_lookup(T, "get", 3), get);
    cr_expect_eq(get->flags, get_flags);
    for (size_t i = 0; i < NSPECIAL; i++) {
        const px_command *s = px_cmdtable_lookup(T, special[i].name, strlen(special[i].name));
        cr_expect(s != NULL && s->id == special[i].id, "%s: id lost on load", special[i].name);
    }
    freeReplyObject(r);
    redisFree(c);
    table_teardown();
}
