/* test_config.c -- conf/: the directive table, the redis.conf parser, the
 * command line, validation and the shipped example file.
 *
 * White-box: config.c is included here so that the table itself and the
 * value parsers without a directive of their own (yes/no) can be checked.
 * Every symbol of config.o is then defined by this object, so the linker
 * never pulls config.o out of libconf.a and nothing is defined twice. */
#include "conf/config.c"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ASSERT_HAS(hay, needle)                                                        \
    cr_assert(strstr((hay), (needle)) != NULL, "expected \"%s\" in:\n%s", (needle), (hay))

static conf C;
static char ERR[CONF_ERR_MAX];
static char WARN[CONF_ERR_MAX];

static void reset(void)
{
    conf_init_defaults(&C);
    ERR[0] = WARN[0] = '\0';
}

/* Applies text to the defaults; returns conf_load_string's result. */
static int load(const char *text)
{
    reset();
    return conf_load_string(&C, text, "t.conf", ERR, sizeof(ERR));
}

static void load_ok(const char *text)
{
    int rc = load(text);
    cr_assert_eq(rc, 0, "'%s' should load, got:%s", text, ERR);
}

/* The text must fail with reason as the last line of the message. */
static void load_fails(const char *text, const char *reason)
{
    int rc = load(text);
    cr_assert_eq(rc, -1, "'%s' should fail", text);
    ASSERT_HAS(ERR, "*** FATAL CONFIG FILE ERROR (rcproxy) ***");
    const char *last = strrchr(ERR, '\n');
    cr_assert_not_null(last);
    cr_assert_str_eq(last + 1, reason, "for '%s'", text);
}

static int args(int argc, char **argv)
{
    reset();
    return conf_load_args(&C, argc, argv, ERR, sizeof(ERR));
}

#define ARGS(...) args((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)), (char *[]){__VA_ARGS__})

/* Writes text to a new temporary file; path receives its name. */
static void temp_file(char *path, size_t len, const char *text)
{
    snprintf(path, len, "/tmp/rcproxy-test-conf-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* ---------------------------------------------------------------- defaults */

Test(defaults, every_field)
{
    reset();
    cr_assert_eq(C.bind_count, 1);
    cr_assert_str_eq(C.bind[0], "127.0.0.1");
    cr_assert_eq(C.port, 6380);
    cr_assert_eq(C.tcp_backlog, 511);
    cr_assert_eq(C.tcp_keepalive, 300);
    cr_assert_eq(C.timeout, 0);
    cr_assert_eq(C.maxclients, 10000);
    cr_assert_eq(C.mode, CONF_MODE_LEADER);
    cr_assert_eq(C.leader.port, 0);
    cr_assert_str_eq(C.leader.host, "");
    cr_assert_eq(C.replica_count, 0);
    cr_assert_eq(C.node_count, 0);
    cr_assert_eq(C.quorum_n, 3);
    cr_assert_eq(C.quorum_w, 2);
    cr_assert_eq(C.quorum_r, 2);
    cr_assert_str_eq(C.requirepass, "");
    cr_assert_str_eq(C.backend_user, "");
    cr_assert_str_eq(C.backend_password, "");
    cr_assert_eq(C.proto_max_bulk_len, 512LL * 1024 * 1024);
    cr_assert_eq(C.client_query_buffer_limit, 1024LL * 1024 * 1024);
    cr_assert_eq(C.obuf_normal.hard_bytes, 1024LL * 1024 * 1024);
    cr_assert_eq(C.obuf_normal.soft_bytes, 0);
    cr_assert_eq(C.obuf_normal.soft_seconds, 0);
    cr_assert_eq(C.obuf_pubsub.hard_bytes, 32LL * 1024 * 1024);
    cr_assert_eq(C.obuf_pubsub.soft_bytes, 8LL * 1024 * 1024);
    cr_assert_eq(C.obuf_pubsub.soft_seconds, 60);
    cr_assert_eq(C.databases, 16);
    cr_assert_eq(C.backend_connections, 1);
    cr_assert_eq(C.backend_connect_timeout, 1000);
    cr_assert_eq(C.backend_timeout, 5000);
    cr_assert_eq(C.backend_retry_interval, 200);
    cr_assert_eq(C.health_check_interval, 200);
    cr_assert_eq(C.loglevel, CONF_LOG_NOTICE);
    cr_assert_str_eq(C.logfile, "");
    cr_assert_str_eq(C.pidfile, "");
    cr_assert_eq(C.shutdown_timeout, 10);
    cr_assert_str_eq(C.config_file, "");
}

Test(defaults, init_overwrites_everything)
{
    memset(&C, 0x5a, sizeof(C));
    conf_init_defaults(&C);
    cr_assert_eq(C.replica_count, 0);
    cr_assert_eq(C.leader.port, 0);
    cr_assert_str_eq(C.config_file, "");
}

Test(table, names_unique_lowercase_and_runtime_flags)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        const char *n = directives[i].name;
        for (const char *p = n; *p; p++)
            cr_assert(!isupper((unsigned char)*p), "%s", n);
        for (size_t k = 0; k < i; k++)
            cr_assert(strcmp(directives[k].name, n) != 0, "duplicate row %s", n);
        cr_assert_eq(directives[i].runtime, strcmp(n, "loglevel") == 0, "%s", n);
    }
    cr_assert_eq(N_DIRECTIVES, 43);
}

Test(names, mode_and_loglevel)
{
    cr_assert_str_eq(conf_mode_name(CONF_MODE_LEADER), "leader");
    cr_assert_str_eq(conf_mode_name(CONF_MODE_QUORUM), "quorum");
    cr_assert_str_eq(conf_loglevel_name(CONF_LOG_DEBUG), "debug");
    cr_assert_str_eq(conf_loglevel_name(CONF_LOG_VERBOSE), "verbose");
    cr_assert_str_eq(conf_loglevel_name(CONF_LOG_NOTICE), "notice");
    cr_assert_str_eq(conf_loglevel_name(CONF_LOG_WARNING), "warning");
    cr_assert_str_eq(conf_loglevel_name((conf_loglevel)42), "unknown");
}

Test(names, replication_levels)
{
    cr_assert_str_eq(conf_write_ack_name(CONF_ACK_SEMISYNC), "semisync");
    cr_assert_str_eq(conf_read_consistency_name(CONF_READ_MONOTONIC), "monotonic");
    cr_assert_eq(conf_write_ack_parse("SYNC", 4), CONF_ACK_SYNC);
    cr_assert_eq(conf_write_ack_parse("syn", 3), -1);
    cr_assert_eq(conf_read_consistency_parse("eventual", 8), CONF_READ_EVENTUAL);
    cr_assert_eq(conf_read_consistency_parse("strongest", 9), -1);
    load_ok("write-ack semisync\nread-consistency monotonic\nreplica-max-lag 0\n");
    cr_assert_eq(C.write_ack, CONF_ACK_SEMISYNC);
    cr_assert_eq(C.read_consistency, CONF_READ_MONOTONIC);
    cr_assert_eq(C.replica_max_lag, 0);
    load_fails("read-consistency linearizable\n", "argument(s) must be one of the following: eventual, ryw, monotonic, strong");
}

/* -------------------------------------------------------------------- int */

Test(int_type, values_and_bounds)
{
    load_ok("port 0");
    cr_assert_eq(C.port, 0);
    load_ok("port 65535");
    cr_assert_eq(C.port, 65535);
    load_fails("port 65536", "argument must be between 0 and 65535 inclusive");
    load_fails("port -1", "argument must be between 0 and 65535 inclusive");
    load_ok("maxclients 1\ndatabases 1000000\nquorum-n 64\ntimeout 2147483647");
    cr_assert_eq(C.maxclients, 1);
    cr_assert_eq(C.databases, 1000000);
    cr_assert_eq(C.quorum_n, 64);
    cr_assert_eq(C.timeout, 2147483647);
    load_fails("maxclients 0", "argument must be between 1 and 1000000 inclusive");
    load_fails("maxclients 1000001", "argument must be between 1 and 1000000 inclusive");
    load_fails("quorum-w 65", "argument must be between 1 and 64 inclusive");
    load_fails("timeout 2147483648", "argument must be between 0 and 2147483647 inclusive");
    load_fails("backend-timeout 86400001", "argument must be between 0 and 86400000 inclusive");
    load_fails("backend-retry-interval 9", "argument must be between 10 and 60000 inclusive");
    load_fails("shutdown-timeout 3601", "argument must be between 0 and 3600 inclusive");
}

Test(int_type, strict_syntax)
{
    const char *bad[] = {"port abc", "port 1.5", "port 0x10", "port +5", "port 012", "port -0",
                         "port \"\"", "port \" 1\"", "port 1k", "port 99999999999999999999",
                         "port -"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        load_fails(bad[i], "argument couldn't be parsed into an integer");
    load_ok("port \"7000\"");
    cr_assert_eq(C.port, 7000);
}

/* Every integer row of the table: its min and max are accepted, one past
 * either end is refused with Redis's wording. */
Test(int_type, every_row_at_its_limits)
{
    char line[256], want[256];
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        const conf_directive *d = &directives[i];
        if (d->type != CT_INT)
            continue;
        snprintf(want, sizeof(want), "argument must be between %lld and %lld inclusive", d->min,
                 d->max);
        snprintf(line, sizeof(line), "%s %lld", d->name, d->min);
        load_ok(line);
        cr_assert_eq(*(int *)field_ptr(&C, d->offset), d->min, "%s", line);
        snprintf(line, sizeof(line), "%s %lld", d->name, d->max);
        load_ok(line);
        cr_assert_eq(*(int *)field_ptr(&C, d->offset), d->max, "%s", line);
        snprintf(line, sizeof(line), "%s %lld", d->name, d->min - 1);
        load_fails(line, want);
        snprintf(line, sizeof(line), "%s %lld", d->name, d->max + 1);
        load_fails(line, want);
    }
}

/* ----------------------------------------------------------------- memory */

Test(memory_type, units)
{
    struct { const char *v; long long want; } ok[] = {
        {"1048576", 1048576},     {"1048576b", 1048576},    {"2000k", 2000000},
        {"1024kb", 1048576},      {"1024KB", 1048576},      {"3m", 3000000},
        {"3mb", 3145728},         {"3Mb", 3145728},         {"2g", 2000000000LL},
        {"2gb", 2147483648LL},    {"2GB", 2147483648LL},    {"01mb", 1048576},
        {"8589934591gb", 8589934591LL * 1073741824LL},
    };
    char line[128];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(line, sizeof(line), "proto-max-bulk-len %s", ok[i].v);
        load_ok(line);
        cr_assert_eq(C.proto_max_bulk_len, ok[i].want, "%s", line);
    }
    load_ok("client-query-buffer-limit 4gb");
    cr_assert_eq(C.client_query_buffer_limit, 4LL << 30);
}

Test(memory_type, bad_values_and_bounds)
{
    const char *bad[] = {"1.5gb", "-1", "+1mb", "mb", "1tb", "1 mb", "1mbb", "", "8589934592gb",
                         "99999999999999999999", "0x100000"};
    char line[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "proto-max-bulk-len \"%s\"", bad[i]);
        load_fails(line, "argument must be a memory value");
    }
    load_ok("proto-max-bulk-len 1mb");
    cr_assert_eq(C.proto_max_bulk_len, 1048576);
    load_fails("proto-max-bulk-len 1048575",
               "argument must be between 1048576 and 9223372036854775807 inclusive");
    load_fails("client-query-buffer-limit 1000k",
               "argument must be between 1048576 and 9223372036854775807 inclusive");
}

/* ---------------------------------------------------------- bool and enum */

/* No directive is yes/no yet; the type is checked through a row made here. */
Test(bool_type, yes_no)
{
    conf_directive d = {"test-bool", CT_BOOL, FIELD(port), 0, 0, 0, NULL, NULL, NULL, 0};
    const char *yes[] = {"yes"}, *YES[] = {"YES"}, *no[] = {"No"}, *bad[] = {"1"}, *bad2[] = {"true"};
    char why[256];

    reset();
    cr_assert_eq(type_ops[CT_BOOL].set(&C, &d, 1, yes, why, sizeof(why)), 0);
    cr_assert_eq(C.port, 1);
    cr_assert_eq(type_ops[CT_BOOL].set(&C, &d, 1, no, why, sizeof(why)), 0);
    cr_assert_eq(C.port, 0);
    cr_assert_eq(type_ops[CT_BOOL].set(&C, &d, 1, YES, why, sizeof(why)), 0);
    cr_assert_eq(C.port, 1);
    cr_assert_eq(type_ops[CT_BOOL].set(&C, &d, 1, bad, why, sizeof(why)), -1);
    cr_assert_str_eq(why, "argument must be 'yes' or 'no'");
    cr_assert_eq(type_ops[CT_BOOL].set(&C, &d, 1, bad2, why, sizeof(why)), -1);
    cr_assert_eq(C.port, 1);
}

Test(enum_type, mode_and_loglevel)
{
    load_ok("mode quorum");
    cr_assert_eq(C.mode, CONF_MODE_QUORUM);
    load_ok("MODE Leader");
    cr_assert_eq(C.mode, CONF_MODE_LEADER);
    load_fails("mode sentinel", "argument(s) must be one of the following: leader, quorum");
    load_ok("loglevel debug");
    cr_assert_eq(C.loglevel, CONF_LOG_DEBUG);
    load_ok("loglevel verbose");
    cr_assert_eq(C.loglevel, CONF_LOG_VERBOSE);
    load_ok("loglevel WARNING");
    cr_assert_eq(C.loglevel, CONF_LOG_WARNING);
    load_fails("loglevel info",
               "argument(s) must be one of the following: debug, verbose, notice, warning");
    load_fails("loglevel", "wrong number of arguments");
    load_fails("loglevel debug verbose", "wrong number of arguments");
}

/* ----------------------------------------------------------------- string */

Test(string_type, values_and_max_length)
{
    char line[1200];

    load_ok("requirepass \"s3cret with spaces\"\nbackend-user alice\nbackend-password 'p w'\n"
            "logfile /var/log/rcproxy.log\npidfile \"/run/rcproxy.pid\"");
    cr_assert_str_eq(C.requirepass, "s3cret with spaces");
    cr_assert_str_eq(C.backend_user, "alice");
    cr_assert_str_eq(C.backend_password, "p w");
    cr_assert_str_eq(C.logfile, "/var/log/rcproxy.log");
    cr_assert_str_eq(C.pidfile, "/run/rcproxy.pid");
    load_ok("requirepass x\nrequirepass \"\"");
    cr_assert_str_eq(C.requirepass, "");

    snprintf(line, sizeof(line), "requirepass %0511d", 0);
    load_ok(line);
    cr_assert_eq(strlen(C.requirepass), 511);
    snprintf(line, sizeof(line), "requirepass %0512d", 0);
    load_fails(line, "argument is too long (max 511 bytes)");
    cr_assert_str_eq(C.requirepass, "");
    snprintf(line, sizeof(line), "backend-user %0256d", 0);
    load_fails(line, "argument is too long (max 255 bytes)");
    snprintf(line, sizeof(line), "logfile %01024d", 0);
    load_fails(line, "argument is too long (max 1023 bytes)");
}

/* -------------------------------------------------------------- addresses */

Test(addr, parse_good)
{
    conf_addr a;
    cr_assert_eq(conf_parse_addr("127.0.0.1:6379", &a), 0);
    cr_assert_str_eq(a.host, "127.0.0.1");
    cr_assert_eq(a.port, 6379);
    cr_assert_eq(conf_parse_addr("[::1]:7001", &a), 0);
    cr_assert_str_eq(a.host, "::1");
    cr_assert_eq(a.port, 7001);
    cr_assert_eq(conf_parse_addr("[fe80::1%eth0]:1", &a), 0);
    cr_assert_str_eq(a.host, "fe80::1%eth0");
    cr_assert_eq(conf_parse_addr("redis-1.example:65535", &a), 0);
    cr_assert_str_eq(a.host, "redis-1.example");
    cr_assert_eq(a.port, 65535);
}

Test(addr, parse_bad)
{
    char longhost[300];
    memset(longhost, 'h', 256);
    snprintf(longhost + 256, sizeof(longhost) - 256, ":1");
    const char *bad[] = {"127.0.0.1", "127.0.0.1:", ":6379", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:-1", "127.0.0.1:+1", "127.0.0.1:abc", "127.0.0.1:6379x",
                         "::1:6379", "[::1]6379", "[::1]:", "[]:1", "[::1:1", "::1]:1",
                         "a b:1", "", longhost};
    conf_addr a = {"untouched", 9};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(conf_parse_addr(bad[i], &a), -1, "'%s' should be refused", bad[i]);
        cr_assert_str_eq(a.host, "untouched");
    }
    cr_assert_eq(conf_parse_addr(NULL, &a), -1);
    longhost[255] = '\0';   /* 255 chars of host is the most that fits */
    char ok[320];
    cr_assert_lt(snprintf(ok, sizeof(ok), "%s:1", longhost), (int)sizeof(ok));
    cr_assert_eq(conf_parse_addr(ok, &a), 0);
}

Test(addr, leader_directive)
{
    load_ok("leader 10.0.0.1:6379");
    cr_assert_str_eq(C.leader.host, "10.0.0.1");
    cr_assert_eq(C.leader.port, 6379);
    load_ok("leader [::1]:6379\nleader \"\"");
    cr_assert_eq(C.leader.port, 0);
    load_ok("leader [::1]:6379");
    cr_assert_str_eq(C.leader.host, "::1");
    load_fails("leader 10.0.0.1:70000",
               "argument '10.0.0.1:70000' must be an address as host:port or [ipv6]:port, "
               "port 1..65535");
    load_fails("leader 10.0.0.1", "argument '10.0.0.1' must be an address as host:port or "
                                  "[ipv6]:port, port 1..65535");
    load_fails("leader a:1 b:2", "wrong number of arguments");
}

/* ------------------------------------------------- repeatable and lists */

Test(lists, replica_and_node_append)
{
    load_ok("replica 127.0.0.1:6390\nreplica [::1]:6391 host:6392\nnode a:1\nnode b:2");
    cr_assert_eq(C.replica_count, 3);
    cr_assert_str_eq(C.replicas[0].host, "127.0.0.1");
    cr_assert_eq(C.replicas[0].port, 6390);
    cr_assert_str_eq(C.replicas[1].host, "::1");
    cr_assert_str_eq(C.replicas[2].host, "host");
    cr_assert_eq(C.replicas[2].port, 6392);
    cr_assert_eq(C.node_count, 2);
    cr_assert_str_eq(C.nodes[1].host, "b");
    load_fails("replica", "wrong number of arguments");
    /* one bad address stores none of the line */
    load_fails("replica a:1 b:0",
               "argument 'b:0' must be an address as host:port or [ipv6]:port, port 1..65535");
    cr_assert_eq(C.replica_count, 0);
}

Test(lists, at_most_64_backends)
{
    char text[64 * 32], *p = text;
    for (int i = 0; i < CONF_MAX_BACKENDS; i++)
        p += sprintf(p, "replica 127.0.0.1:%d\n", 10000 + i);
    load_ok(text);
    cr_assert_eq(C.replica_count, 64);
    cr_assert_eq(C.replicas[63].port, 10063);
    strcat(text, "replica 127.0.0.1:20000\n");
    load_fails(text, "too many 'replica' addresses (max 64)");
    cr_assert_eq(C.replica_count, 64);

    p = text;
    for (int i = 0; i < 60; i++)
        p += sprintf(p, "node n%d:1\n", i);
    sprintf(p, "node a:1 b:1 c:1 d:1 e:1\n");
    load_fails(text, "too many 'node' addresses (max 64)");
    cr_assert_eq(C.node_count, 60);
}

Test(lists, bind_replaces)
{
    load_ok("bind 10.0.0.1 ::1\nbind 0.0.0.0 :: 127.0.0.1");
    cr_assert_eq(C.bind_count, 3);
    cr_assert_str_eq(C.bind[0], "0.0.0.0");
    cr_assert_str_eq(C.bind[1], "::");
    cr_assert_str_eq(C.bind[2], "127.0.0.1");
    load_fails("bind", "wrong number of arguments");
    load_fails("bind \"\"", "Invalid bind address ''");
    load_fails("bind 1.1.1.1 \"a b\"", "Invalid bind address 'a b'");
    cr_assert_eq(C.bind_count, 1);
    cr_assert_str_eq(C.bind[0], "127.0.0.1");

    char text[512] = "bind";
    for (int i = 0; i < CONF_MAX_BIND; i++)
        sprintf(text + strlen(text), " 10.0.0.%d", i);
    load_ok(text);
    cr_assert_eq(C.bind_count, 16);
    cr_assert_str_eq(C.bind[15], "10.0.0.15");
    strcat(text, " 10.0.0.99");
    load_fails(text, "Too many bind addresses specified (max 16).");
    cr_assert_eq(C.bind_count, 1);
}

/* -------------------------------------------------------------- obuf limit */

Test(obuf, set_and_errors)
{
    load_ok("client-output-buffer-limit normal 0 0 0");
    cr_assert_eq(C.obuf_normal.hard_bytes, 0);
    cr_assert_eq(C.obuf_pubsub.hard_bytes, 32LL << 20);
    load_ok("client-output-buffer-limit pubsub 64mb 16MB 120 normal 2gb 1gb 5");
    cr_assert_eq(C.obuf_pubsub.hard_bytes, 64LL << 20);
    cr_assert_eq(C.obuf_pubsub.soft_bytes, 16LL << 20);
    cr_assert_eq(C.obuf_pubsub.soft_seconds, 120);
    cr_assert_eq(C.obuf_normal.hard_bytes, 2LL << 30);
    cr_assert_eq(C.obuf_normal.soft_bytes, 1LL << 30);
    cr_assert_eq(C.obuf_normal.soft_seconds, 5);
    /* replica (and Redis's old name slave) is accepted and changes nothing */
    load_ok("client-output-buffer-limit replica 256mb 64mb 60\n"
            "client-output-buffer-limit slave 1 1 1");
    cr_assert_eq(C.obuf_normal.hard_bytes, 1LL << 30);
    cr_assert_eq(C.obuf_pubsub.soft_seconds, 60);

    load_fails("client-output-buffer-limit normal 1",
               "Wrong number of arguments in buffer limit configuration.");
    load_fails("client-output-buffer-limit",
               "Wrong number of arguments in buffer limit configuration.");
    load_fails("client-output-buffer-limit master 1 2 3",
               "Invalid client class specified in buffer limit configuration.");
    const char *bad[] = {"normal 1x 0 0", "normal 1 -2 0", "normal 1 2 -3", "normal 1 2 3s",
                         "normal 1 2 2147483648"};
    char line[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "client-output-buffer-limit %s", bad[i]);
        load_fails(line,
                   "Error in hard, soft or soft_seconds setting in buffer limit configuration.");
    }
    /* all groups or nothing */
    load_fails("client-output-buffer-limit normal 1mb 0 0 pubsub 1mb x 0",
               "Error in hard, soft or soft_seconds setting in buffer limit configuration.");
    cr_assert_eq(C.obuf_normal.hard_bytes, 1LL << 30);
}

/* ------------------------------------------------------- syntax, quoting */

Test(syntax, comments_blank_lines_case_and_whitespace)
{
    load_ok("# a comment\n\n   \n\t# indented comment\n  PORT   7001  \r\n"
            "\tMaxClients\t5\t\nrequirepass x#y\n#port 1\n");
    cr_assert_eq(C.port, 7001);
    cr_assert_eq(C.maxclients, 5);
    cr_assert_str_eq(C.requirepass, "x#y");
    load_ok("");
    load_ok("\n\n");
    load_ok("port 7002");   /* no final newline */
    cr_assert_eq(C.port, 7002);
    /* as in redis.conf, a '#' after a directive is an argument */
    load_fails("port 7001 # the port", "wrong number of arguments");
}

Test(syntax, quoting)
{
    load_ok("requirepass \"a b\\\"c\\x41\\n\\t\\\\z\"");
    cr_assert_str_eq(C.requirepass, "a b\"cA\n\t\\z");
    load_ok("requirepass 'it\\'s \"raw\" \\n'");
    cr_assert_str_eq(C.requirepass, "it's \"raw\" \\n");
    load_ok("requirepass ab\"c d\"");
    cr_assert_str_eq(C.requirepass, "abc d");
    load_ok("requirepass \"\\xZZ\\q\"");
    cr_assert_str_eq(C.requirepass, "xZZq");
    load_ok("replica \"127.0.0.1:1\" '127.0.0.1:2'");
    cr_assert_eq(C.replica_count, 2);
    load_ok("\"port\" 7003");
    cr_assert_eq(C.port, 7003);

    load_fails("requirepass \"abc", "Unbalanced quotes in configuration line");
    load_fails("requirepass 'abc", "Unbalanced quotes in configuration line");
    load_fails("requirepass \"abc\"def", "Unbalanced quotes in configuration line");
    load_fails("requirepass 'abc'def", "Unbalanced quotes in configuration line");
    load_fails("requirepass \"abc\\", "Unbalanced quotes in configuration line");
    load_fails("requirepass \"a\\x00b\"", "argument contains a NUL byte");
}

Test(syntax, unknown_directive_and_arg_count)
{
    load_fails("appendonly yes", "Bad directive or wrong number of arguments");
    load_fails("port", "wrong number of arguments");
    load_fails("port 1 2", "wrong number of arguments");
    load_fails("mode leader quorum", "wrong number of arguments");
}

Test(errors, redis_format_with_file_line_and_content)
{
    cr_assert_eq(load("port 7000\n\n# c\n  port 99999  \nport 1\n"), -1);
    cr_assert_str_eq(ERR, "\n*** FATAL CONFIG FILE ERROR (rcproxy) ***\n"
                          "Reading the configuration file 't.conf', at line 4\n"
                          ">>> 'port 99999'\n"
                          "argument must be between 0 and 65535 inclusive");
    cr_assert_eq(C.port, 7000, "lines before the error are applied");

    reset();
    cr_assert_eq(conf_load_string(&C, "\nfoo bar", NULL, ERR, sizeof(ERR)), -1);
    cr_assert_str_eq(ERR, "\n*** FATAL CONFIG FILE ERROR (rcproxy) ***\n"
                          "Reading the configuration file, at line 2\n"
                          ">>> 'foo bar'\n"
                          "Bad directive or wrong number of arguments");

    /* CRLF files count lines the same way */
    cr_assert_eq(load("port 1\r\nport 2\r\nport x\r\n"), -1);
    ASSERT_HAS(ERR, "at line 3\n>>> 'port x'\n");
}

Test(errors, long_line_is_quoted_shortened_and_reason_kept)
{
    char text[5000];
    snprintf(text, sizeof(text), "requirepass %04000d", 0);
    load_fails(text, "argument is too long (max 511 bytes)");
    ASSERT_HAS(ERR, "...'\n");
    cr_assert_lt(strlen(ERR), sizeof(ERR) - 1);
}

Test(errors, small_err_buffer_is_not_overrun)
{
    char small[16];
    memset(small, 'x', sizeof(small));
    reset();
    cr_assert_eq(conf_load_string(&C, "port 99999", "t.conf", small, 8), -1);
    cr_assert_eq(strlen(small), 7);
    cr_assert_eq(small[8], 'x');
    cr_assert_eq(conf_load_string(&C, "port 99999", "t.conf", NULL, 0), -1);
}

/* ------------------------------------------------------------------ files */

Test(files, load_file_and_remember_absolute_path)
{
    char path[64];
    temp_file(path, sizeof(path), "port 7010\nreplica 127.0.0.1:6390\n");
    cr_assert_eq(ARGS("rcproxy", path), 0, "%s", ERR);
    cr_assert_eq(C.port, 7010);
    cr_assert_eq(C.replica_count, 1);
    cr_assert_str_eq(C.config_file, path);
    unlink(path);
}

Test(files, error_names_the_file)
{
    char path[64], want[128];
    temp_file(path, sizeof(path), "port 7010\nbogus 1\n");
    cr_assert_eq(ARGS("rcproxy", path), -1);
    snprintf(want, sizeof(want), "Reading the configuration file '%s', at line 2\n>>> 'bogus 1'\n",
             path);
    ASSERT_HAS(ERR, want);
    unlink(path);
}

Test(files, unreadable)
{
    cr_assert_eq(ARGS("rcproxy", "/nonexistent/rcproxy.conf"), -1);
    cr_assert_str_eq(ERR, "Fatal error, can't open config file '/nonexistent/rcproxy.conf': "
                          "No such file or directory");
    cr_assert_eq(ARGS("rcproxy", "/tmp"), -1);
    cr_assert_str_eq(ERR, "Fatal error, can't read config file '/tmp': Is a directory");
}

Test(files, nul_byte_in_file)
{
    char path[64] = "/tmp/rcproxy-test-conf-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    static const char text[] = "# ok\0comment\nport 70\0001\n";
    cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    cr_assert_eq(ARGS("rcproxy", path), -1);
    ASSERT_HAS(ERR, "at line 2\n");
    ASSERT_HAS(ERR, "argument contains a NUL byte");
    unlink(path);
}

/* ----------------------------------------------------------- command line */

Test(cmdline, no_arguments_keeps_defaults)
{
    cr_assert_eq(ARGS("rcproxy"), 0);
    cr_assert_eq(C.port, 6380);
    cr_assert_str_eq(ERR, "");
}

Test(cmdline, options_override_file_and_lists_append)
{
    char path[64];
    temp_file(path, sizeof(path),
              "port 7010\nloglevel debug\nbind 10.0.0.1\nreplica 127.0.0.1:6390\n");
    cr_assert_eq(ARGS("rcproxy", path, "--port", "7020", "--replica", "127.0.0.1:6391",
                      "--replica", "127.0.0.1:6392", "[::1]:6393", "--bind", "127.0.0.1", "::1",
                      "--LOGLEVEL", "warning"),
                 0, "%s", ERR);
    cr_assert_eq(C.port, 7020);
    cr_assert_eq(C.loglevel, CONF_LOG_WARNING);
    cr_assert_eq(C.replica_count, 4);
    cr_assert_eq(C.replicas[0].port, 6390);
    cr_assert_eq(C.replicas[1].port, 6391);
    cr_assert_eq(C.replicas[2].port, 6392);
    cr_assert_str_eq(C.replicas[3].host, "::1");
    cr_assert_eq(C.bind_count, 2);
    cr_assert_str_eq(C.bind[1], "::1");
    unlink(path);
}

Test(cmdline, options_without_file)
{
    cr_assert_eq(ARGS("rcproxy", "--leader", "127.0.0.1:6379", "--port", "7000",
                      "--requirepass", "a b \"c\""),
                 0, "%s", ERR);
    cr_assert_eq(C.leader.port, 6379);
    cr_assert_eq(C.port, 7000);
    cr_assert_str_eq(C.requirepass, "a b \"c\"", "values are taken literally");
    cr_assert_str_eq(C.config_file, "");
}

Test(cmdline, name_and_value_in_one_word)
{
    cr_assert_eq(ARGS("rcproxy", "--port 7005", "--requirepass \"x y\""), 0, "%s", ERR);
    cr_assert_eq(C.port, 7005);
    cr_assert_str_eq(C.requirepass, "x y");
}

Test(cmdline, bare_option_takes_next_word_even_with_dashes)
{
    /* redis-server 7: `--requirepass --secret` sets the password to "--secret" */
    cr_assert_eq(ARGS("rcproxy", "--requirepass", "--secret", "--port", "7006"), 0, "%s", ERR);
    cr_assert_str_eq(C.requirepass, "--secret");
    cr_assert_eq(C.port, 7006);
}

Test(cmdline, missing_value)
{
    cr_assert_eq(ARGS("rcproxy", "--port"), -1);
    cr_assert_str_eq(ERR, "\n*** FATAL CONFIG FILE ERROR (rcproxy) ***\n"
                          "Reading the command-line options, at line 1 (argument 1, '--port')\n"
                          ">>> 'port'\n"
                          "wrong number of arguments");
    /* the next option is taken as the value, so the count is wrong */
    cr_assert_eq(ARGS("rcproxy", "--leader", "127.0.0.1:6379", "--replica", "--port", "7000"), -1);
    ASSERT_HAS(ERR, "at line 2 (argument 3, '--replica')\n");
    ASSERT_HAS(ERR, ">>> 'replica \"--port\" \"7000\"'\n");
    cr_assert_eq(ARGS("rcproxy", "--replica", "127.0.0.1:1", "--port", "--"), -1);
    ASSERT_HAS(ERR, "argument couldn't be parsed into an integer");
}

Test(cmdline, bad_value_names_the_option)
{
    char path[64];
    temp_file(path, sizeof(path), "port 7010\n");
    cr_assert_eq(ARGS("rcproxy", path, "--loglevel", "notice", "--port", "99999"), -1);
    cr_assert_str_eq(ERR, "\n*** FATAL CONFIG FILE ERROR (rcproxy) ***\n"
                          "Reading the command-line options, at line 2 (argument 4, '--port')\n"
                          ">>> 'port \"99999\"'\n"
                          "argument must be between 0 and 65535 inclusive");
    cr_assert_eq(ARGS("rcproxy", "--requirepass", "a\tb", "--nope", "x y"), -1);
    ASSERT_HAS(ERR, ">>> 'nope \"x y\"'\nBad directive or wrong number of arguments");
    cr_assert_eq(ARGS("rcproxy", "--port \"7000"), -1);
    ASSERT_HAS(ERR, "'--port \"7000')\n");
    ASSERT_HAS(ERR, "Unbalanced quotes in configuration line");
    unlink(path);
}

Test(cmdline, stray_words_as_redis)
{
    /* redis-server treats a word that follows no "--name" as a directive */
    cr_assert_eq(ARGS("rcproxy", "-x"), -1);
    ASSERT_HAS(ERR, ">>> '-x'\nBad directive");
    char path[64];
    temp_file(path, sizeof(path), "port 7010\n");
    cr_assert_eq(ARGS("rcproxy", path, "port", "7011"), 0, "%s", ERR);
    cr_assert_eq(C.port, 7011);
    unlink(path);
}

Test(cmdline, config_from_stdin)
{
    char in[64], file[64];
    temp_file(in, sizeof(in), "port 7030\nreplica 127.0.0.1:6390\n");
    cr_assert_not_null(freopen(in, "r", stdin));
    cr_assert_eq(ARGS("rcproxy", "-", "--replica", "127.0.0.1:6391"), 0, "%s", ERR);
    cr_assert_eq(C.port, 7030);
    cr_assert_eq(C.replica_count, 2);
    cr_assert_eq(C.replicas[1].port, 6391);

    /* file, then stdin ("-" last), then the options */
    temp_file(file, sizeof(file), "port 7040\nmaxclients 7\n");
    cr_assert_not_null(freopen(in, "r", stdin));
    cr_assert_eq(ARGS("rcproxy", file, "--maxclients", "8", "-"), 0, "%s", ERR);
    cr_assert_eq(C.port, 7030);
    cr_assert_eq(C.maxclients, 8);
    cr_assert_eq(C.replica_count, 1);

    temp_file(in, sizeof(in), "port 1\nport x\n");
    cr_assert_not_null(freopen(in, "r", stdin));
    cr_assert_eq(ARGS("rcproxy", "-"), -1);
    ASSERT_HAS(ERR, "Reading the configuration file 'stdin', at line 2\n");
    unlink(in);
    unlink(file);
}

/* ------------------------------------------------------------- validation */

static int validate(const char *text)
{
    load_ok(text);
    return conf_validate(&C, ERR, sizeof(ERR), WARN, sizeof(WARN));
}

Test(validate, leader_mode)
{
    cr_assert_eq(validate(""), -1);
    cr_assert_str_eq(ERR, "mode leader needs a leader: add 'leader host:port' "
                          "(or 'sentinel host:port' and 'sentinel-master name')");
    cr_assert_eq(validate("leader 127.0.0.1:6379"), 0, "%s", ERR);
    /* with Sentinel the leader is discovered; both directives are needed */
    cr_assert_eq(validate("sentinel 127.0.0.1:26379\nsentinel-master mymaster"), 0, "%s", ERR);
    cr_assert_eq(validate("sentinel 127.0.0.1:26379"), -1);
    cr_assert(strstr(ERR, "go together") != NULL, "%s", ERR);
    cr_assert_eq(validate("sentinel-master mymaster\nleader 127.0.0.1:6379"), -1);
    cr_assert_str_eq(WARN, "");
    cr_assert_eq(validate("leader 127.0.0.1:6379\nreplica 127.0.0.1:6390\nreplica [::1]:6390"), 0);
    cr_assert_eq(validate("leader 127.0.0.1:6379\nnode 127.0.0.1:7001"), 0);
    cr_assert_str_eq(WARN, "'node' directives are ignored in mode leader");
}

Test(validate, duplicate_backends)
{
    cr_assert_eq(validate("leader 127.0.0.1:6379\nreplica 127.0.0.1:6390\nreplica 127.0.0.1:6379"),
                 -1);
    cr_assert_str_eq(ERR, "duplicate backend address 127.0.0.1:6379: replica 2 repeats leader");
    cr_assert_eq(validate("leader 127.0.0.1:6379\nreplica 127.0.0.1:6390\nreplica h:1\n"
                          "replica 127.0.0.1:6390"),
                 -1);
    cr_assert_str_eq(ERR, "duplicate backend address 127.0.0.1:6390: replica 3 repeats replica 1");
    cr_assert_eq(validate("mode quorum\nquorum-n 2\nnode [::1]:7001\nnode [::1]:7001"), -1);
    cr_assert_str_eq(ERR, "duplicate backend address [::1]:7001: node 2 repeats node 1");
    cr_assert_eq(validate("mode quorum\nquorum-n 2\nnode Host-A:7001\nnode host-a:7001"), -1);
}

Test(validate, backend_is_rcproxy_itself)
{
    cr_assert_eq(validate("leader 127.0.0.1:6380"), -1);
    cr_assert_str_eq(ERR, "leader 127.0.0.1:6380 is rcproxy's own listening address");
    cr_assert_eq(validate("leader 127.0.0.1:6379\nreplica localhost:6380"), -1);
    cr_assert_str_eq(ERR, "replica 1 localhost:6380 is rcproxy's own listening address");
    cr_assert_eq(validate("bind 0.0.0.0\nport 7000\nleader 127.0.0.1:7000"), -1);
    cr_assert_eq(validate("leader 127.0.0.1:6380\nport 6381"), 0, "%s", ERR);
    cr_assert_eq(validate("leader 10.1.1.1:6380"), 0, "%s", ERR);
    cr_assert_eq(validate("port 0\nleader 127.0.0.1:6380"), 0, "port 0 does not listen");
}

Test(validate, quorum_mode)
{
    cr_assert_eq(validate("mode quorum"), -1);
    cr_assert_str_eq(ERR, "mode quorum needs nodes: add one 'node host:port' per Redis node");
    cr_assert_eq(validate("mode quorum\nnode a:1\nnode b:1\nnode c:1"), 0, "%s", ERR);
    cr_assert_str_eq(WARN, "");
    cr_assert_eq(validate("mode quorum\nnode a:1\nnode b:1"), -1);
    cr_assert_str_eq(ERR, "quorum-n (3) must not exceed the number of nodes (2)");
    cr_assert_eq(validate("mode quorum\nnode a:1\nnode b:1\nnode c:1\nquorum-w 4\nquorum-n 3"),
                 -1);
    cr_assert_str_eq(ERR, "quorum-w (4) must not exceed quorum-n (3)");
    cr_assert_eq(validate("mode quorum\nnode a:1\nnode b:1\nnode c:1\nquorum-r 4"), -1);
    cr_assert_str_eq(ERR, "quorum-r (4) must not exceed quorum-n (3)");
    cr_assert_eq(validate("mode quorum\nnode a:1\nnode b:1\nnode c:1\nquorum-w 1\nquorum-r 2"), 0);
    cr_assert_str_eq(WARN, "quorum-w + quorum-r <= quorum-n: reads may miss acknowledged writes");
    cr_assert_eq(validate("mode quorum\nnode a:1\nquorum-n 1\nquorum-w 1\nquorum-r 1\n"
                          "leader x:1"),
                 0, "%s", ERR);
    cr_assert_str_eq(WARN, "'leader' and 'replica' directives are ignored in mode quorum");
    cr_assert_eq(validate("mode quorum\nnode a:1\nnode b:1\nquorum-n 2\nquorum-w 1\n"
                          "quorum-r 1\nreplica y:1"),
                 0);
    cr_assert_str_eq(WARN, "quorum-w + quorum-r <= quorum-n: reads may miss acknowledged writes\n"
                           "'leader' and 'replica' directives are ignored in mode quorum");
}

Test(validate, null_buffers)
{
    load_ok("mode quorum\nnode a:1\nnode b:1\nnode c:1\nquorum-w 1\nquorum-r 1");
    cr_assert_eq(conf_validate(&C, NULL, 0, NULL, 0), 0);
    load_ok("");
    cr_assert_eq(conf_validate(&C, NULL, 0, NULL, 0), -1);
}

/* ------------------------------------------------------ the example file */

/* Field-for-field equality: byte compare around the two output-buffer
 * structs, whose tail padding struct assignment need not keep. */
static int same_conf(const conf *a, const conf *b)
{
    size_t o1 = offsetof(conf, obuf_normal), o2 = offsetof(conf, databases);
    const conf_obuf_limit *x[] = {&a->obuf_normal, &a->obuf_pubsub};
    const conf_obuf_limit *y[] = {&b->obuf_normal, &b->obuf_pubsub};
    for (int i = 0; i < 2; i++)
        if (x[i]->hard_bytes != y[i]->hard_bytes || x[i]->soft_bytes != y[i]->soft_bytes ||
            x[i]->soft_seconds != y[i]->soft_seconds)
            return 0;
    return memcmp(a, b, o1) == 0 &&
           memcmp((const char *)a + o2, (const char *)b + o2, sizeof(conf) - o2) == 0;
}

/* Finds conf/rcproxy.conf from this file's path.  __FILE__ is as the
 * compiler was given it: absolute, or relative to the build directory (meson
 * passes "../tests/unit/test_config.c"), so when relative it is tried from
 * the working directory and from each parent of the test binary. */
static int find_example(char *out, size_t len)
{
    char dir[PATH_MAX], exe[PATH_MAX];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
    snprintf(out, len, "%s/../../conf/rcproxy.conf", dir);
    if (access(out, R_OK) == 0 || dir[0] == '/')
        return access(out, R_OK);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    for (int up = 0; up < 5; up++) {
        char *s = strrchr(exe, '/');
        if (s == NULL || s == exe)
            break;
        *s = '\0';
        int w = snprintf(out, len, "%s/%s/../../conf/rcproxy.conf", exe, dir);
        if (w > 0 && (size_t)w < len && access(out, R_OK) == 0)
            return 0;
    }
    return -1;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *buf = calloc(1, 1 << 20);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    cr_assert_gt(n, 0);
    fclose(f);
    return buf;
}

Test(example, parses_and_validates)
{
    char path[PATH_MAX + 64];
    cr_assert_eq(find_example(path, sizeof(path)), 0, "conf/rcproxy.conf not found");
    cr_assert_eq(ARGS("rcproxy", path), 0, "%s", ERR);
    cr_assert_eq(conf_validate(&C, ERR, sizeof(ERR), WARN, sizeof(WARN)), 0, "%s", ERR);
    cr_assert_str_eq(WARN, "");
    cr_assert_eq(C.mode, CONF_MODE_LEADER);
    cr_assert_str_eq(C.leader.host, "127.0.0.1");
    cr_assert_eq(C.leader.port, 6379);
    cr_assert_eq(C.replica_count, 2);
    cr_assert_eq(C.replicas[0].port, 6390);
    cr_assert_eq(C.replicas[1].port, 6391);
    cr_assert_eq(C.port, 6380);
    cr_assert_eq(C.bind_count, 1);
    cr_assert_str_eq(C.bind[0], "127.0.0.1");

    /* everything else is left at its default */
    conf def;
    conf_init_defaults(&def);
    C.leader = def.leader;
    C.replica_count = 0;
    memset(C.replicas, 0, sizeof(C.replicas));
    memset(C.config_file, 0, sizeof(C.config_file));
    cr_assert(same_conf(&C, &def));
}

/* Each directive is documented, and every commented-out "# name value" line
 * shows the real default: uncommenting them all changes nothing. */
Test(example, documents_every_directive_with_its_default)
{
    char path[PATH_MAX + 64];
    cr_assert_eq(find_example(path, sizeof(path)), 0);
    char *text = read_text(path), *uncommented = calloc(1, 1 << 20);
    cr_assert_not_null(uncommented);

    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        /* "# name default", "#   name example" or an active "name value" */
        char pat1[96], pat2[96], pat3[96];
        snprintf(pat1, sizeof(pat1), "\n# %s ", directives[i].name);
        snprintf(pat2, sizeof(pat2), "\n#   %s ", directives[i].name);
        snprintf(pat3, sizeof(pat3), "\n%s ", directives[i].name);
        cr_assert(strstr(text, pat1) || strstr(text, pat2) || strstr(text, pat3),
                  "'%s' is not in the example file", directives[i].name);
    }

    int examples = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# ", 2) != 0)
            continue;
        char name[64] = "";
        sscanf(line + 2, "%63[a-z-]", name);
        if (find_directive(name) == NULL || line[2 + strlen(name)] != ' ')
            continue;
        strcat(uncommented, line + 2);
        strcat(uncommented, "\n");
        examples++;
    }
    cr_assert_geq(examples, 24);   /* every directive but the 5 active ones and node */
    load_ok(uncommented);
    conf def;
    conf_init_defaults(&def);
    cr_assert(same_conf(&C, &def), "a commented default differs:\n%s", uncommented);
    free(text);
    free(uncommented);
}
