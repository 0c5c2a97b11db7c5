/* config.c -- rcproxy's configuration: the directive table, the redis.conf
 * style line parser and the redis-server style command-line loader.
 *
 * Every directive is one row of `directives[]` below: its name, its value
 * type, where its field lives in `struct conf`, its bounds and its default
 * written as the words a user would type.  The per-type setters
 * (`type_ops[]`) parse and range-check the words and store the value; the
 * defaults are applied through the very same setters, so a default can never
 * drift out of its own bounds.  Cross-directive rules live in conf_validate(),
 * a separate pass run after every source is loaded.
 *
 * Error texts follow redis-server 7.0 ("argument must be between 0 and 65535
 * inclusive", "Bad directive or wrong number of arguments", ...) so that
 * people and scripts used to Redis recognise them. */
#include "conf/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A config file (or stdin) larger than this is refused instead of read into
 * memory: a real config is a few kilobytes. */
#define CONF_TEXT_MAX (16 * 1024 * 1024)

/* How much of an offending line or file name is quoted back in a message,
 * so that the reason at the end always fits in CONF_ERR_MAX. */
#define CONF_QUOTE_MAX 200

#define MB (1024LL * 1024)
#define GB (1024LL * MB)

/* ------------------------------------------------------------------------ */
/* The table                                                                 */
/* ------------------------------------------------------------------------ */

typedef enum {
    CT_BOOL,      /* yes | no                                    -> int          */
    CT_INT,       /* strict decimal integer in [min, max]         -> int          */
    CT_MEMORY,    /* bytes with an optional k/kb/m/mb/g/gb unit   -> long long    */
    CT_ENUM,      /* one word of `enums`                          -> the enum     */
    CT_STRING,    /* any bytes but NUL, shorter than max          -> char[max]    */
    CT_ADDR,      /* host:port or [v6]:port; "" clears            -> conf_addr    */
    CT_ADDR_LIST, /* repeatable, every argument appends           -> conf_addr[]  */
    CT_BIND,      /* 1..max listen addresses, replaces the list   -> char[][256]  */
    CT_SPECIAL    /* the row's own hook parses the words                          */
} conf_type;

typedef struct conf_enum_item {
    const char *name;
    int value;
} conf_enum_item;

struct conf_directive;
typedef int conf_setter(conf *c, const struct conf_directive *d, int argc,
                        const char *const *argv, char *why, size_t whylen);

typedef struct conf_directive {
    const char *name;
    conf_type type;
    size_t offset;              /* the field in struct conf */
    size_t count_offset;        /* CT_ADDR_LIST / CT_BIND: the int entry count */
    long long min, max;         /* CT_INT/CT_MEMORY: bounds; CT_STRING: buffer size;
                                   CT_ADDR_LIST/CT_BIND: capacity in entries */
    const char *const *def;     /* default words, NULL-terminated; NULL = zero/empty */
    const conf_enum_item *enums;   /* CT_ENUM: the accepted words, NULL-terminated */
    conf_setter *hook;          /* CT_SPECIAL: parses and stores the words */
    int runtime;                /* may change at run time (CONFIG SET); not wired yet */
} conf_directive;

static const conf_enum_item mode_enum[] = {
    {"leader", CONF_MODE_LEADER},
    {"quorum", CONF_MODE_QUORUM},
    {NULL, 0},
};

static const conf_enum_item loglevel_enum[] = {
    {"debug", CONF_LOG_DEBUG},
    {"verbose", CONF_LOG_VERBOSE},
    {"notice", CONF_LOG_NOTICE},
    {"warning", CONF_LOG_WARNING},
    {NULL, 0},
};

static const conf_enum_item write_ack_enum[] = {
    {"async", CONF_ACK_ASYNC},
    {"semisync", CONF_ACK_SEMISYNC},
    {"sync", CONF_ACK_SYNC},
    {NULL, 0},
};

static const conf_enum_item read_consistency_enum[] = {
    {"eventual", CONF_READ_EVENTUAL},
    {"ryw", CONF_READ_RYW},
    {"monotonic", CONF_READ_MONOTONIC},
    {"strong", CONF_READ_STRONG},
    {NULL, 0},
};

static const conf_enum_item read_repair_enum[] = {
    {"off", CONF_REPAIR_OFF},
    {"async", CONF_REPAIR_ASYNC},
    {"sync", CONF_REPAIR_SYNC},
    {NULL, 0},
};

/* Enum fields are stored through an int; that is only sound if they are int
 * sized, which every ABI rcproxy builds on guarantees for these small enums. */
_Static_assert(sizeof(conf_mode) == sizeof(int), "conf_mode must be int sized");
_Static_assert(sizeof(conf_loglevel) == sizeof(int), "conf_loglevel must be int sized");
_Static_assert(sizeof(conf_write_ack) == sizeof(int), "conf_write_ack must be int sized");
_Static_assert(sizeof(conf_read_consistency) == sizeof(int), "conf_read_consistency must be int sized");
_Static_assert(sizeof(conf_read_repair) == sizeof(int), "conf_read_repair must be int sized");

static conf_setter set_obuf_limit;

#define FIELD(f) offsetof(conf, f)
#define FSIZE(f) ((long long)sizeof(((conf *)0)->f))
#define DEF(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NODEF NULL

/* name, type, field, count field, min, max, default, enum words, hook, runtime */
static const conf_directive directives[] = {
    /* network */
    {"bind", CT_BIND, FIELD(bind), FIELD(bind_count), 1, CONF_MAX_BIND, DEF("127.0.0.1"), NULL, NULL, 0},
    {"port", CT_INT, FIELD(port), 0, 0, 65535, DEF("6380"), NULL, NULL, 0},
    {"tcp-backlog", CT_INT, FIELD(tcp_backlog), 0, 0, INT_MAX, DEF("511"), NULL, NULL, 0},
    {"tcp-keepalive", CT_INT, FIELD(tcp_keepalive), 0, 0, INT_MAX, DEF("300"), NULL, NULL, 0},
    {"timeout", CT_INT, FIELD(timeout), 0, 0, INT_MAX, DEF("0"), NULL, NULL, 0},
    {"maxclients", CT_INT, FIELD(maxclients), 0, 1, 1000000, DEF("10000"), NULL, NULL, 0},

    /* topology */
    {"mode", CT_ENUM, FIELD(mode), 0, 0, 0, DEF("leader"), mode_enum, NULL, 0},
    {"leader", CT_ADDR, FIELD(leader), 0, 0, 0, NODEF, NULL, NULL, 0},
    {"replica", CT_ADDR_LIST, FIELD(replicas), FIELD(replica_count), 0, CONF_MAX_BACKENDS, NODEF, NULL, NULL, 0},
    {"node", CT_ADDR_LIST, FIELD(nodes), FIELD(node_count), 0, CONF_MAX_BACKENDS, NODEF, NULL, NULL, 0},
    {"sentinel", CT_ADDR_LIST, FIELD(sentinels), FIELD(sentinel_count), 0, CONF_MAX_BACKENDS, NODEF, NULL, NULL, 0},
    {"sentinel-master", CT_STRING, FIELD(sentinel_master), 0, 0, FSIZE(sentinel_master), DEF(""), NULL, NULL, 0},
    {"sentinel-password", CT_STRING, FIELD(sentinel_password), 0, 0, FSIZE(sentinel_password), DEF(""), NULL, NULL, 0},
    {"quorum-n", CT_INT, FIELD(quorum_n), 0, 1, 64, DEF("3"), NULL, NULL, 0},
    {"quorum-w", CT_INT, FIELD(quorum_w), 0, 1, 64, DEF("2"), NULL, NULL, 0},
    {"quorum-r", CT_INT, FIELD(quorum_r), 0, 1, 64, DEF("2"), NULL, NULL, 0},
    {"quorum-read-all", CT_BOOL, FIELD(quorum_read_all), 0, 0, 0, DEF("no"), NULL, NULL, 0},
    {"read-repair", CT_ENUM, FIELD(read_repair), 0, 0, 0, DEF("async"), read_repair_enum, NULL, 0},
    {"sloppy-quorum", CT_BOOL, FIELD(sloppy_quorum), 0, 0, 0, DEF("no"), NULL, NULL, 0},
    {"tombstone-ttl", CT_INT, FIELD(tombstone_ttl), 0, 1, 315360000, DEF("86400"), NULL, NULL, 0},
    {"anti-entropy-rate", CT_INT, FIELD(anti_entropy_rate), 0, 0, 10000000, DEF("10000"), NULL, NULL, 0},
    {"instance-id", CT_INT, FIELD(instance_id), 0, -1, INT_MAX, DEF("-1"), NULL, NULL, 0},

    /* security */
    {"requirepass", CT_STRING, FIELD(requirepass), 0, 0, FSIZE(requirepass), DEF(""), NULL, NULL, 0},
    {"backend-user", CT_STRING, FIELD(backend_user), 0, 0, FSIZE(backend_user), DEF(""), NULL, NULL, 0},
    {"backend-password", CT_STRING, FIELD(backend_password), 0, 0, FSIZE(backend_password), DEF(""), NULL, NULL, 0},

    /* limits: memory bounds as redis-server's (at least 1mb, no upper cap) */
    {"proto-max-bulk-len", CT_MEMORY, FIELD(proto_max_bulk_len), 0, MB, LLONG_MAX, DEF("512mb"), NULL, NULL, 0},
    {"client-query-buffer-limit", CT_MEMORY, FIELD(client_query_buffer_limit), 0, MB, LLONG_MAX, DEF("1gb"), NULL, NULL, 0},
    {"client-output-buffer-limit", CT_SPECIAL, 0, 0, 0, 0,
     DEF("normal", "1gb", "0", "0", "pubsub", "32mb", "8mb", "60"), NULL, set_obuf_limit, 0},
    {"databases", CT_INT, FIELD(databases), 0, 1, 1000000, DEF("16"), NULL, NULL, 0},

    /* backends (times in milliseconds) */
    {"backend-connections", CT_INT, FIELD(backend_connections), 0, 1, 64, DEF("1"), NULL, NULL, 0},
    {"backend-connect-timeout", CT_INT, FIELD(backend_connect_timeout), 0, 1, 600000, DEF("1000"), NULL, NULL, 0},
    {"backend-timeout", CT_INT, FIELD(backend_timeout), 0, 0, 86400000, DEF("5000"), NULL, NULL, 0},
    {"backend-retry-interval", CT_INT, FIELD(backend_retry_interval), 0, 10, 60000, DEF("200"), NULL, NULL, 0},
    {"health-check-interval", CT_INT, FIELD(health_check_interval), 0, 10, 60000, DEF("200"), NULL, NULL, 0},

    /* replication guarantees (times in milliseconds) */
    {"write-ack", CT_ENUM, FIELD(write_ack), 0, 0, 0, DEF("async"), write_ack_enum, NULL, 0},
    {"write-ack-timeout", CT_INT, FIELD(write_ack_timeout), 0, 1, 3600000, DEF("1000"), NULL, NULL, 0},
    {"read-consistency", CT_ENUM, FIELD(read_consistency), 0, 0, 0, DEF("ryw"), read_consistency_enum, NULL, 0},
    {"ryw-wait-timeout", CT_INT, FIELD(ryw_wait_timeout), 0, 0, 60000, DEF("100"), NULL, NULL, 0},
    {"replica-max-lag", CT_MEMORY, FIELD(replica_max_lag), 0, 0, LLONG_MAX, DEF("1mb"), NULL, NULL, 0},

    /* process */
    {"loglevel", CT_ENUM, FIELD(loglevel), 0, 0, 0, DEF("notice"), loglevel_enum, NULL, 1},
    {"logfile", CT_STRING, FIELD(logfile), 0, 0, FSIZE(logfile), DEF(""), NULL, NULL, 0},
    {"pidfile", CT_STRING, FIELD(pidfile), 0, 0, FSIZE(pidfile), DEF(""), NULL, NULL, 0},
    {"shutdown-timeout", CT_INT, FIELD(shutdown_timeout), 0, 0, 3600, DEF("10"), NULL, NULL, 0},
};

#define N_DIRECTIVES (sizeof(directives) / sizeof(directives[0]))

static const conf_directive *find_directive(const char *name)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++)
        if (strcasecmp(directives[i].name, name) == 0)
            return &directives[i];
    return NULL;
}

static void *field_ptr(conf *c, size_t offset)
{
    return (char *)c + offset;
}

/* ------------------------------------------------------------------------ */
/* Value parsers: return 0 and store, or -1 and store nothing               */
/* ------------------------------------------------------------------------ */

/* Strict decimal integer, as Redis's string2ll: optional '-', digits only,
 * no '+', no leading zeros, no "-0", no spaces, no overflow. */
static int parse_ll(const char *s, long long *out)
{
    int neg = 0;
    unsigned long long v = 0, limit;

    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (*s < '0' || *s > '9')
        return -1;
    if (*s == '0') {
        if (s[1] != '\0' || neg)
            return -1;
        *out = 0;
        return 0;
    }
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    else
        *out = (long long)v;
    return 0;
}

/* A byte count as redis.conf writes it: digits, then an optional unit,
 * case-insensitive: b = 1, k = 1000, kb = 1024, m = 1000^2, mb = 1024^2,
 * g = 1000^3, gb = 1024^3.  No sign, no fraction, no overflow.  (Redis also
 * takes a bare unit such as "mb" as 0; that is refused here.) */
static int parse_memory(const char *s, long long *out)
{
    static const struct { const char *unit; long long mul; } units[] = {
        {"", 1}, {"b", 1}, {"k", 1000}, {"kb", 1024}, {"m", 1000LL * 1000}, {"mb", MB},
        {"g", 1000LL * 1000 * 1000}, {"gb", GB},
    };
    long long v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (LLONG_MAX - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].unit) != 0)
            continue;
        if (v > LLONG_MAX / units[i].mul)
            return -1;
        *out = v * units[i].mul;
        return 0;
    }
    return -1;
}

static int parse_bool(const char *s, int *out)
{
    if (strcasecmp(s, "yes") == 0)
        *out = 1;
    else if (strcasecmp(s, "no") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* The port of an address: 1..65535, strict digits. */
static int parse_port(const char *s, int *out)
{
    long long v;
    if (parse_ll(s, &v) < 0 || v < 1 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static int host_chars_ok(const char *h, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)h[i]) || h[i] == '[' || h[i] == ']')
            return 0;
    return 1;
}

/* "host:port" or "[v6 address]:port".  The host is kept without brackets;
 * an unbracketed host may not contain ':' (so "::1:6379" is refused as
 * ambiguous).  Returns 0 and fills *out, or -1 and leaves *out alone. */
int conf_parse_addr(const char *s, conf_addr *out)
{
    const char *host, *colon;
    size_t hlen;
    conf_addr a = {{0}, 0};     /* zeroed: no stale bytes after the host */

    if (s == NULL || out == NULL)
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        host = s;
        hlen = (size_t)(colon - s);
        if (memchr(host, ':', hlen) != NULL)
            return -1;
    }
    if (hlen == 0 || hlen >= sizeof(a.host) || !host_chars_ok(host, hlen))
        return -1;
    if (parse_port(colon + 1, &a.port) < 0)
        return -1;
    memcpy(a.host, host, hlen);
    a.host[hlen] = '\0';
    *out = a;
    return 0;
}

/* Writes "host:port", or "[host]:port" for an IPv6 host, into buf. */
static const char *fmt_addr(const conf_addr *a, char *buf, size_t len)
{
    if (strchr(a->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", a->host, a->port);
    else
        snprintf(buf, len, "%s:%d", a->host, a->port);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Setters, one per type: (argc, argv) are the words after the name, already */
/* counted against type_ops[].  Return 0, or -1 with a reason in why.        */
/* ------------------------------------------------------------------------ */

static int set_bool(conf *c, const conf_directive *d, int argc, const char *const *argv,
                    char *why, size_t whylen)
{
    int v;
    (void)argc;
    if (parse_bool(argv[0], &v) < 0) {
        snprintf(why, whylen, "argument must be 'yes' or 'no'");
        return -1;
    }
    *(int *)field_ptr(c, d->offset) = v;
    return 0;
}

static int check_range(const conf_directive *d, long long v, char *why, size_t whylen)
{
    if (v < d->min || v > d->max) {
        snprintf(why, whylen, "argument must be between %lld and %lld inclusive", d->min, d->max);
        return -1;
    }
    return 0;
}

static int set_int(conf *c, const conf_directive *d, int argc, const char *const *argv,
                   char *why, size_t whylen)
{
    long long v;
    (void)argc;
    if (parse_ll(argv[0], &v) < 0) {
        snprintf(why, whylen, "argument couldn't be parsed into an integer");
        return -1;
    }
    if (check_range(d, v, why, whylen) < 0)
        return -1;
    *(int *)field_ptr(c, d->offset) = (int)v;
    return 0;
}

static int set_memory(conf *c, const conf_directive *d, int argc, const char *const *argv,
                      char *why, size_t whylen)
{
    long long v;
    (void)argc;
    if (parse_memory(argv[0], &v) < 0) {
        snprintf(why, whylen, "argument must be a memory value");
        return -1;
    }
    if (check_range(d, v, why, whylen) < 0)
        return -1;
    *(long long *)field_ptr(c, d->offset) = v;
    return 0;
}

static int set_enum(conf *c, const conf_directive *d, int argc, const char *const *argv,
                    char *why, size_t whylen)
{
    size_t used;
    (void)argc;
    for (const conf_enum_item *e = d->enums; e->name; e++) {
        if (strcasecmp(argv[0], e->name) == 0) {
            memcpy(field_ptr(c, d->offset), &e->value, sizeof(int));
            return 0;
        }
    }
    used = (size_t)snprintf(why, whylen, "argument(s) must be one of the following:");
    for (const conf_enum_item *e = d->enums; e->name && used < whylen; e++)
        used += (size_t)snprintf(why + used, whylen - used, "%s %s", e == d->enums ? "" : ",",
                                 e->name);
    return -1;
}

static int set_string(conf *c, const conf_directive *d, int argc, const char *const *argv,
                      char *why, size_t whylen)
{
    size_t len = strlen(argv[0]);
    (void)argc;
    if ((long long)len >= d->max) {
        snprintf(why, whylen, "argument is too long (max %lld bytes)", d->max - 1);
        return -1;
    }
    memcpy(field_ptr(c, d->offset), argv[0], len + 1);
    return 0;
}

static void addr_error(const char *arg, char *why, size_t whylen)
{
    snprintf(why, whylen,
             "argument '%.*s' must be an address as host:port or [ipv6]:port, port 1..65535",
             CONF_QUOTE_MAX, arg);
}

static int set_addr(conf *c, const conf_directive *d, int argc, const char *const *argv,
                    char *why, size_t whylen)
{
    conf_addr *a = field_ptr(c, d->offset);
    (void)argc;
    if (argv[0][0] == '\0') {       /* `leader ""` = not set */
        memset(a, 0, sizeof(*a));
        return 0;
    }
    if (conf_parse_addr(argv[0], a) < 0) {
        addr_error(argv[0], why, whylen);
        return -1;
    }
    return 0;
}

/* Appends every argument; all are checked before any is stored. */
static int set_addr_list(conf *c, const conf_directive *d, int argc, const char *const *argv,
                         char *why, size_t whylen)
{
    conf_addr *list = field_ptr(c, d->offset);
    int *count = field_ptr(c, d->count_offset);
    conf_addr tmp;

    if (*count + argc > d->max) {
        snprintf(why, whylen, "too many '%s' addresses (max %lld)", d->name, d->max);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        if (conf_parse_addr(argv[i], &tmp) < 0) {
            addr_error(argv[i], why, whylen);
            return -1;
        }
    }
    for (int i = 0; i < argc; i++)
        conf_parse_addr(argv[i], &list[(*count)++]);
    return 0;
}

/* Replaces the listen list (as Redis's bind does); all are checked first. */
static int set_bind(conf *c, const conf_directive *d, int argc, const char *const *argv,
                    char *why, size_t whylen)
{
    char (*list)[256] = field_ptr(c, d->offset);
    int *count = field_ptr(c, d->count_offset);

    if (argc > d->max) {
        snprintf(why, whylen, "Too many bind addresses specified (max %lld).", d->max);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (len == 0 || len >= sizeof(list[0]) || !host_chars_ok(argv[i], len)) {
            snprintf(why, whylen, "Invalid bind address '%.*s'", CONF_QUOTE_MAX, argv[i]);
            return -1;
        }
    }
    for (int i = 0; i < argc; i++)
        memcpy(list[i], argv[i], strlen(argv[i]) + 1);
    *count = argc;
    return 0;
}

static int set_special(conf *c, const conf_directive *d, int argc, const char *const *argv,
                       char *why, size_t whylen)
{
    return d->hook(c, d, argc, argv, why, whylen);
}

/* client-output-buffer-limit <class> <hard> <soft> <soft-seconds> [<class> ...]
 * As Redis: the words come in groups of four; class is normal, pubsub or
 * replica/slave (accepted for redis.conf compatibility and ignored: rcproxy
 * has no replica clients); sizes are memory values; nothing is stored unless
 * every group is valid.  Redis's own error texts. */
static int set_obuf_limit(conf *c, const conf_directive *d, int argc, const char *const *argv,
                          char *why, size_t whylen)
{
    conf_obuf_limit normal = c->obuf_normal, pubsub = c->obuf_pubsub;
    (void)d;

    if (argc == 0 || argc % 4 != 0) {
        snprintf(why, whylen, "Wrong number of arguments in buffer limit configuration.");
        return -1;
    }
    for (int i = 0; i < argc; i += 4) {
        conf_obuf_limit l = {0, 0, 0}, *dst;
        long long secs;

        if (strcasecmp(argv[i], "normal") == 0)
            dst = &normal;
        else if (strcasecmp(argv[i], "pubsub") == 0)
            dst = &pubsub;
        else if (strcasecmp(argv[i], "replica") == 0 || strcasecmp(argv[i], "slave") == 0)
            dst = NULL;
        else {
            snprintf(why, whylen, "Invalid client class specified in buffer limit configuration.");
            return -1;
        }
        if (parse_memory(argv[i + 1], &l.hard_bytes) < 0 ||
            parse_memory(argv[i + 2], &l.soft_bytes) < 0 ||
            parse_ll(argv[i + 3], &secs) < 0 || secs < 0 || secs > INT_MAX) {
            snprintf(why, whylen,
                     "Error in hard, soft or soft_seconds setting in buffer limit configuration.");
            return -1;
        }
        l.soft_seconds = (int)secs;
        if (dst)
            *dst = l;
    }
    c->obuf_normal = normal;
    c->obuf_pubsub = pubsub;
    return 0;
}

static const struct {
    conf_setter *set;
    int min_args, max_args;     /* words after the name; -1 = the setter counts */
} type_ops[] = {
    [CT_BOOL] = {set_bool, 1, 1},
    [CT_INT] = {set_int, 1, 1},
    [CT_MEMORY] = {set_memory, 1, 1},
    [CT_ENUM] = {set_enum, 1, 1},
    [CT_STRING] = {set_string, 1, 1},
    [CT_ADDR] = {set_addr, 1, 1},
    [CT_ADDR_LIST] = {set_addr_list, 1, -1},
    [CT_BIND] = {set_bind, 1, -1},
    [CT_SPECIAL] = {set_special, 0, -1},
};

/* Applies one directive line already split into words (argv[0] is the
 * name, any case).  Returns 0, or -1 with a Redis-worded reason in why. */
static int apply_words(conf *c, int argc, const char *const *argv, char *why, size_t whylen)
{
    const conf_directive *d = find_directive(argv[0]);
    int n = argc - 1;

    if (d == NULL) {
        snprintf(why, whylen, "Bad directive or wrong number of arguments");
        return -1;
    }
    if (n < type_ops[d->type].min_args ||
        (type_ops[d->type].max_args >= 0 && n > type_ops[d->type].max_args)) {
        snprintf(why, whylen, "wrong number of arguments");
        return -1;
    }
    return type_ops[d->type].set(c, d, n, argv + 1, why, whylen);
}

void conf_init_defaults(conf *c)
{
    char why[CONF_ERR_MAX];

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        const conf_directive *d = &directives[i];
        int n = 0;
        if (d->def == NULL)
            continue;
        while (d->def[n])
            n++;
        if (type_ops[d->type].set(c, d, n, d->def, why, sizeof(why)) < 0) {
            /* A default outside its own row's rules is a bug in the table
             * above, not bad input; test_config's defaults test catches it. */
            fprintf(stderr, "rcproxy: bad built-in default for '%s': %s\n", d->name, why);
            abort();
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Lines and words                                                           */
/* ------------------------------------------------------------------------ */

static int is_hex(int ch)
{
    return isxdigit((unsigned char)ch) != 0;
}

static int hex_val(int ch)
{
    return isdigit((unsigned char)ch) ? ch - '0' : tolower((unsigned char)ch) - 'a' + 10;
}

static char unescape(char ch)
{
    switch (ch) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'b': return '\b';
    case 'a': return '\a';
    default: return ch;
    }
}

/* Reads one word of a config line with redis.conf's quoting rules, from *pp
 * (which is not white space) up to white space or end.  A word may be or
 * contain "double quotes", which take \xHH, \n, \r, \t, \b, \a and \<char>
 * escapes, or 'single quotes', which take only \'; a closing quote must end
 * the word.  The word's bytes go to out unless out is NULL (a counting
 * pass).  Returns its length and advances *pp past it, or -1 with *why set
 * on unbalanced quotes or a NUL byte (which a C string cannot hold). */
static long read_word(const char **pp, const char *end, char *out, const char **why)
{
    const char *p = *pp;
    char quote = 0;     /* the open quote character, 0 outside quotes */
    long n = 0;

    while (p < end) {
        char ch = *p;
        if (quote == 0) {
            if (isspace((unsigned char)ch))
                break;
            p++;
            if (ch == '"' || ch == '\'') {
                quote = ch;
                continue;
            }
        } else if (ch == quote) {
            if (p + 1 < end && !isspace((unsigned char)p[1]))
                goto unbalanced;
            p++;
            quote = 0;
            break;
        } else if (quote == '"' && ch == '\\' && end - p >= 4 && p[1] == 'x' && is_hex(p[2]) &&
                   is_hex(p[3])) {
            ch = (char)(hex_val(p[2]) * 16 + hex_val(p[3]));
            p += 4;
        } else if (quote == '"' && ch == '\\' && end - p >= 2) {
            ch = unescape(p[1]);
            p += 2;
        } else if (quote == '\'' && ch == '\\' && end - p >= 2 && p[1] == '\'') {
            ch = '\'';
            p += 2;
        } else {
            p++;
        }
        if (ch == '\0') {
            *why = "argument contains a NUL byte";
            return -1;
        }
        if (out)
            out[n] = ch;
        n++;
    }
    if (quote != 0)
        goto unbalanced;
    *pp = p;
    return n;
unbalanced:
    *why = "Unbalanced quotes in configuration line";
    return -1;
}

/* Splits line[0..len) into its words (see read_word).  Returns one heap
 * block the caller frees: a NULL-terminated array of word pointers followed
 * by the NUL-terminated words, sized exactly by a first counting pass.
 * *argc gets the count (0 for a blank line).  NULL with *why set on a bad
 * line or when out of memory. */
static char **split_line(const char *line, size_t len, int *argc, const char **why)
{
    const char *p, *end = line + len;
    size_t bytes = 0;
    int n = 0;
    char **words, *out;

    for (p = line;; n++) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p == end)
            break;
        long wl = read_word(&p, end, NULL, why);
        if (wl < 0)
            return NULL;
        bytes += (size_t)wl + 1;
    }
    words = malloc((size_t)(n + 1) * sizeof(char *) + bytes);
    if (words == NULL) {
        *why = "out of memory";
        return NULL;
    }
    out = (char *)(words + n + 1);
    p = line;
    for (int i = 0; i < n; i++) {
        while (isspace((unsigned char)*p))
            p++;
        words[i] = out;
        out += read_word(&p, end, out, why);
        *out++ = '\0';
    }
    words[n] = NULL;
    *argc = n;
    return words;
}

/* Formats the fatal message: banner, where, the offending line, reason. */
static void line_error(char *err, size_t errlen, const char *where, const char *line,
                       size_t linelen, const char *reason)
{
    if (err == NULL || errlen == 0)
        return;
    snprintf(err, errlen, "\n*** FATAL CONFIG FILE ERROR (rcproxy) ***\n%s\n>>> '%.*s%s'\n%s",
             where, (int)(linelen > CONF_QUOTE_MAX ? CONF_QUOTE_MAX : linelen), line,
             linelen > CONF_QUOTE_MAX ? "..." : "", reason);
}

/* The characters redis-server trims from both ends of a config line. */
static int is_trim(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Applies one line of text (not yet trimmed).  Blank and '#' lines are
 * skipped.  Returns 0, or -1 with the full message in err. */
static int apply_line(conf *c, const char *line, size_t len, const char *name, int lineno,
                      char *err, size_t errlen)
{
    char why[CONF_ERR_MAX], where[CONF_QUOTE_MAX + 128];
    const char *reason = why;
    char **words;
    int n = 0, rc = -1;

    while (len > 0 && is_trim(line[0])) {
        line++;
        len--;
    }
    while (len > 0 && is_trim(line[len - 1]))
        len--;
    if (len == 0 || line[0] == '#')
        return 0;

    words = split_line(line, len, &n, &reason);
    if (words == NULL)
        goto fail;
    if (n == 0 || apply_words(c, n, (const char *const *)words, why, sizeof(why)) == 0) {
        rc = 0;
        goto out;
    }
fail:
    if (name)
        snprintf(where, sizeof(where), "Reading the configuration file '%.*s', at line %d",
                 CONF_QUOTE_MAX, name, lineno);
    else
        snprintf(where, sizeof(where), "Reading the configuration file, at line %d", lineno);
    line_error(err, errlen, where, line, len, reason);
out:
    free(words);
    return rc;
}

/* Applies text[0..len) line by line; name is for messages (may be NULL). */
static int load_text(conf *c, const char *text, size_t len, const char *name, char *err,
                     size_t errlen)
{
    const char *p = text, *end = text + len;
    int lineno = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t linelen = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (apply_line(c, p, linelen, name, lineno, err, errlen) < 0)
            return -1;
        p += linelen + (nl ? 1 : 0);
    }
    return 0;
}

int conf_load_string(conf *c, const char *text, const char *name, char *err, size_t errlen)
{
    if (text == NULL)
        return 0;
    return load_text(c, text, strlen(text), name, err, errlen);
}

/* ------------------------------------------------------------------------ */
/* Files and the command line                                                */
/* ------------------------------------------------------------------------ */

/* Reads all of f into a new heap buffer (caller frees *out).  Returns 0, or
 * -1 with *errnum set (EFBIG when the text exceeds CONF_TEXT_MAX). */
static int read_all(FILE *f, char **out, size_t *outlen, int *errnum)
{
    size_t len = 0, cap = 0;
    char *buf = NULL;

    for (;;) {
        if (cap - len < 4096) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb;
            if (ncap > (size_t)CONF_TEXT_MAX + 1)
                ncap = (size_t)CONF_TEXT_MAX + 1;
            if (ncap <= len) {
                *errnum = EFBIG;
                goto fail;
            }
            nb = realloc(buf, ncap);
            if (nb == NULL) {
                *errnum = ENOMEM;
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        errno = 0;
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > (size_t)CONF_TEXT_MAX) {
            *errnum = EFBIG;
            goto fail;
        }
        if (got == 0) {
            if (ferror(f)) {
                *errnum = errno ? errno : EIO;
                goto fail;
            }
            break;
        }
    }
    *out = buf;
    *outlen = len;
    return 0;
fail:
    free(buf);
    return -1;
}

/* Loads a config file, or stdin when path is "-".  On success the absolute
 * path is recorded in c->config_file (stdin leaves it alone). */
static int load_file(conf *c, const char *path, char *err, size_t errlen)
{
    int from_stdin = strcmp(path, "-") == 0, errnum = 0, rc = -1;
    FILE *f = from_stdin ? stdin : fopen(path, "r");
    char *text = NULL, *abs = NULL;
    size_t len = 0;

    if (f == NULL) {
        snprintf(err, errlen, "Fatal error, can't open config file '%.*s': %s", CONF_QUOTE_MAX,
                 path, strerror(errno));
        goto out;
    }
    if (read_all(f, &text, &len, &errnum) < 0) {
        snprintf(err, errlen, "Fatal error, can't read config file '%.*s': %s", CONF_QUOTE_MAX,
                 from_stdin ? "stdin" : path,
                 errnum == EFBIG ? "file too large (max 16mb)" : strerror(errnum));
        goto out;
    }
    if (load_text(c, text, len, from_stdin ? "stdin" : path, err, errlen) < 0)
        goto out;
    if (!from_stdin) {
        abs = realpath(path, NULL);
        const char *keep = abs ? abs : path;
        if (strlen(keep) >= sizeof(c->config_file)) {
            snprintf(err, errlen, "Fatal error, config file path too long: '%.*s...'",
                     CONF_QUOTE_MAX, keep);
            goto out;
        }
        strcpy(c->config_file, keep);
    }
    rc = 0;
out:
    if (f && !from_stdin)
        fclose(f);
    free(text);
    free(abs);
    return rc;
}

/* One directive gathered from the command line: words borrowed from argv
 * or from `split` (the split-up "--name value" word, owned). */
typedef struct cl_line {
    const char **words;
    int n, cap;
    char **split;
    int started;        /* a line is open (words may still be 0) */
    int argi;           /* argv index of the word that opened it */
    int lineno;         /* 1-based count of command-line directives */
} cl_line;

static int cl_push(cl_line *l, const char *w)
{
    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 8;
        const char **nw = realloc(l->words, (size_t)ncap * sizeof(*nw));
        if (nw == NULL)
            return -1;
        l->words = nw;
        l->cap = ncap;
    }
    l->words[l->n++] = w;
    return 0;
}

/* Appends `s` to buf as Redis's sdscatrepr does: in double quotes, with
 * \\ \" \n \r \t \a \b and \xHH escapes.  Stops silently at the end. */
static size_t repr_append(char *buf, size_t len, size_t used, const char *s)
{
    if (used < len)
        used += (size_t)snprintf(buf + used, len - used, " \"");
    for (; *s && used < len; s++) {
        unsigned char ch = (unsigned char)*s;
        const char *esc = NULL;
        switch (ch) {
        case '\\': esc = "\\\\"; break;
        case '"': esc = "\\\""; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\a': esc = "\\a"; break;
        case '\b': esc = "\\b"; break;
        default: break;
        }
        if (esc)
            used += (size_t)snprintf(buf + used, len - used, "%s", esc);
        else if (isprint(ch))
            used += (size_t)snprintf(buf + used, len - used, "%c", ch);
        else
            used += (size_t)snprintf(buf + used, len - used, "\\x%02x", ch);
    }
    if (used < len)
        used += (size_t)snprintf(buf + used, len - used, "\"");
    return used;
}

/* Applies a gathered command-line directive and closes the line.  Errors
 * quote it as redis-server does (`port "99999"`) and say where it came from. */
static int cl_apply(conf *c, cl_line *l, char **argv, char *err, size_t errlen,
                    const char *split_why)
{
    char why[CONF_ERR_MAX], where[CONF_QUOTE_MAX + 128], shown[CONF_QUOTE_MAX + 8];
    const char *reason = split_why;
    int rc = -1;

    if (reason == NULL) {
        if (l->n == 0 || apply_words(c, l->n, l->words, why, sizeof(why)) == 0) {
            rc = 0;
            goto out;
        }
        reason = why;
    }
    shown[0] = '\0';
    if (l->n > 0) {
        size_t used = (size_t)snprintf(shown, sizeof(shown), "%s", l->words[0]);
        for (int i = 1; i < l->n && used < sizeof(shown); i++)
            used = repr_append(shown, sizeof(shown), used, l->words[i]);
    }
    snprintf(where, sizeof(where),
             "Reading the command-line options, at line %d (argument %d, '%.*s')", l->lineno,
             l->argi, CONF_QUOTE_MAX / 2, argv[l->argi]);
    line_error(err, errlen, where, shown, strlen(shown), reason);
out:
    free(l->split);
    l->split = NULL;
    l->n = 0;
    l->started = 0;
    return rc;
}

/* Opens a line with the option word argv[i] minus its "--" ("name" or
 * "name value", split like a config line; the pieces are owned by l). */
static int cl_open_option(cl_line *l, const char *word, int i, int *handled, const char **why)
{
    int n = 0;

    l->started = 1;
    l->argi = i;
    l->lineno++;
    l->split = split_line(word, strlen(word), &n, why);
    if (l->split == NULL)
        return -1;
    for (int k = 0; k < n; k++)
        if (cl_push(l, l->split[k]) < 0) {
            *why = "out of memory";
            return -1;
        }
    /* As redis-server 7: a bare "--name" takes the next word as its value
     * even if that word starts with "--" (so `--requirepass --x` works). */
    *handled = n >= 2;
    return 0;
}

/* "-" as the first or the last argument: read a config from stdin. */
static int is_stdin_word(int argc, char **argv, int i)
{
    return strcmp(argv[i], "-") == 0 && (i == 1 || i == argc - 1);
}

/* `rcproxy [file|-] [--name value...]... [-]`, parsed as redis-server 7.0
 * parses its own command line:
 *   - the first argument is the config file unless it starts with '-';
 *     "-" as the first or last argument reads a config from stdin;
 *   - every "--name" opens a directive whose arguments are the following
 *     words up to the next "--" word; a bare "--name" always takes the next
 *     word as a value; "--name value" in one word is split like a line;
 *   - the file is applied first, then stdin, then the options in order, as
 *     if appended to the file: repeatable directives append, others override.
 * Not carried over from Redis: the --save / --sentinel special cases. */
int conf_load_args(conf *c, int argc, char **argv, char *err, size_t errlen)
{
    cl_line line = {0};
    int j = 1, handled = 1, rc = -1, from_stdin = 0;
    const char *why = NULL;
    char dummy[1];

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (argc < 2)
        return 0;
    if (argv[1][0] != '-') {
        if (load_file(c, argv[1], err, errlen) < 0)
            return -1;
        j = 2;
    }
    for (int k = j; k < argc; k++)
        if (is_stdin_word(argc, argv, k))
            from_stdin = 1;
    if (from_stdin && load_file(c, "-", err, errlen) < 0)
        return -1;

    for (; j < argc; j++) {
        if (is_stdin_word(argc, argv, j))
            continue;
        if (handled && argv[j][0] == '-' && argv[j][1] == '-') {
            if (line.started && cl_apply(c, &line, argv, err, errlen, NULL) < 0)
                goto out;
            if (cl_open_option(&line, argv[j] + 2, j, &handled, &why) < 0) {
                cl_apply(c, &line, argv, err, errlen, why);
                goto out;
            }
        } else {
            if (!line.started) {    /* a stray word opens a line, as in Redis */
                line.started = 1;
                line.argi = j;
                line.lineno++;
            }
            if (cl_push(&line, argv[j]) < 0) {
                cl_apply(c, &line, argv, err, errlen, "out of memory");
                goto out;
            }
            handled = 1;
        }
    }
    if (line.started && cl_apply(c, &line, argv, err, errlen, NULL) < 0)
        goto out;
    rc = 0;
out:
    free(line.split);
    free(line.words);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

static void add_warning(char *warn, size_t warnlen, const char *text)
{
    size_t used;
    if (warn == NULL || warnlen == 0)
        return;
    used = strlen(warn);
    if (used < warnlen)
        snprintf(warn + used, warnlen - used, "%s%s", used ? "\n" : "", text);
}

static int addr_eq(const conf_addr *a, const conf_addr *b)
{
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

static int is_loopback(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
           strncmp(h, "127.", 4) == 0;
}

/* Would connecting to a make rcproxy talk to itself?  True when a's port
 * is rcproxy's port and its host is a bind address, or a loopback name while
 * rcproxy binds a wildcard, or "localhost" while rcproxy binds a loopback. */
static int is_own_address(const conf *c, const conf_addr *a)
{
    if (c->port == 0 || a->port != c->port)
        return 0;
    for (int i = 0; i < c->bind_count; i++) {
        const char *b = c->bind[i][0] == '-' ? c->bind[i] + 1 : c->bind[i];
        int wildcard = strcmp(b, "*") == 0 || strcmp(b, "0.0.0.0") == 0 ||
                       strcmp(b, "::") == 0 || strcmp(b, "::*") == 0;
        int b_loop = strcmp(b, "127.0.0.1") == 0 || strcmp(b, "::1") == 0;
        if (strcasecmp(b, a->host) == 0 || (wildcard && is_loopback(a->host)) ||
            (b_loop && strcasecmp(a->host, "localhost") == 0))
            return 1;
    }
    return 0;
}

/* The i-th backend of one check (the leader first, if given, then the list)
 * and its name for messages ("leader", "replica 2"). */
static const conf_addr *backend_at(const conf_addr *first, const conf_addr *list, int i)
{
    return first ? (i == 0 ? first : &list[i - 1]) : &list[i];
}

static const char *backend_label(char *buf, size_t len, const conf_addr *first,
                                 const char *name, int i)
{
    if (first && i == 0)
        snprintf(buf, len, "leader");
    else
        snprintf(buf, len, "%s %d", name, i - (first ? 1 : 0) + 1);
    return buf;
}

/* Checks one backend set: no address twice, none is rcproxy itself.
 * first (may be NULL) is the leader, checked with the list. */
static int check_backends(const conf *c, const conf_addr *first, const conf_addr *list, int n,
                          const char *name, char *err, size_t errlen)
{
    char addr[300], l1[64], l2[64];
    int total = n + (first ? 1 : 0);

    for (int i = 0; i < total; i++) {
        const conf_addr *a = backend_at(first, list, i);
        if (is_own_address(c, a)) {
            snprintf(err, errlen, "%s %s is rcproxy's own listening address",
                     backend_label(l1, sizeof(l1), first, name, i),
                     fmt_addr(a, addr, sizeof(addr)));
            return -1;
        }
        for (int k = 0; k < i; k++) {
            if (!addr_eq(a, backend_at(first, list, k)))
                continue;
            snprintf(err, errlen, "duplicate backend address %s: %s repeats %s",
                     fmt_addr(a, addr, sizeof(addr)), backend_label(l1, sizeof(l1), first, name, i),
                     backend_label(l2, sizeof(l2), first, name, k));
            return -1;
        }
    }
    return 0;
}

int conf_validate(const conf *c, char *err, size_t errlen, char *warn, size_t warnlen)
{
    char dummy[1];

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (warn && warnlen)
        warn[0] = '\0';

    if (c->mode == CONF_MODE_LEADER) {
        if ((c->sentinel_count > 0) != (c->sentinel_master[0] != '\0')) {
            snprintf(err, errlen, "'sentinel host:port' and 'sentinel-master name' go together: "
                                  "give both or neither");
            return -1;
        }
        if (c->sentinel_count > 0)
            return 0;   /* the leader and replicas come from Sentinel */
        if (c->leader.port == 0) {
            snprintf(err, errlen, "mode leader needs a leader: add 'leader host:port' "
                                  "(or 'sentinel host:port' and 'sentinel-master name')");
            return -1;
        }
        if (check_backends(c, &c->leader, c->replicas, c->replica_count, "replica", err,
                           errlen) < 0)
            return -1;
        if (c->node_count > 0)
            add_warning(warn, warnlen, "'node' directives are ignored in mode leader");
        return 0;
    }

    /* mode quorum */
    if (c->node_count == 0) {
        snprintf(err, errlen, "mode quorum needs nodes: add one 'node host:port' per Redis node");
        return -1;
    }
    if (c->quorum_w > c->quorum_n) {
        snprintf(err, errlen, "quorum-w (%d) must not exceed quorum-n (%d)", c->quorum_w,
                 c->quorum_n);
        return -1;
    }
    if (c->quorum_r > c->quorum_n) {
        snprintf(err, errlen, "quorum-r (%d) must not exceed quorum-n (%d)", c->quorum_r,
                 c->quorum_n);
        return -1;
    }
    if (c->quorum_n > c->node_count) {
        snprintf(err, errlen, "quorum-n (%d) must not exceed the number of nodes (%d)",
                 c->quorum_n, c->node_count);
        return -1;
    }
    if (check_backends(c, NULL, c->nodes, c->node_count, "node", err, errlen) < 0)
        return -1;
    if (c->quorum_w + c->quorum_r <= c->quorum_n)
        add_warning(warn, warnlen,
                    "quorum-w + quorum-r <= quorum-n: reads may miss acknowledged writes");
    if (c->leader.port != 0 || c->replica_count > 0)
        add_warning(warn, warnlen, "'leader' and 'replica' directives are ignored in mode quorum");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

static const char *enum_name(const conf_enum_item *e, int v)
{
    for (; e->name; e++)
        if (e->value == v)
            return e->name;
    return "unknown";
}

const char *conf_loglevel_name(conf_loglevel l)
{
    return enum_name(loglevel_enum, (int)l);
}

const char *conf_mode_name(conf_mode m)
{
    return enum_name(mode_enum, (int)m);
}

const char *conf_write_ack_name(conf_write_ack a)
{
    return enum_name(write_ack_enum, (int)a);
}

const char *conf_read_consistency_name(conf_read_consistency r)
{
    return enum_name(read_consistency_enum, (int)r);
}

static int enum_parse(const conf_enum_item *e, const char *s, size_t len)
{
    for (; e->name; e++)
        if (strlen(e->name) == len && strncasecmp(e->name, s, len) == 0)
            return e->value;
    return -1;
}

int conf_write_ack_parse(const char *s, size_t len)
{
    return enum_parse(write_ack_enum, s, len);
}

int conf_read_consistency_parse(const char *s, size_t len)
{
    return enum_parse(read_consistency_enum, s, len);
}
