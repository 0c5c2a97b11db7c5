/* quorum_cmd.c -- the client commands of mode quorum, built from the per-key
 * reads and writes of quorum.c (see quorum_op.h).
 *
 * Each command is a row of `commands[]`: its name, Redis's arity, and a
 * start function that checks the arguments (Redis's error wording) and
 * starts the first phase.  Pure reads (GET, MGET, EXISTS, STRLEN, TTL)
 * and pure writes (SET, MSET, DEL, EXPIRE) have one phase; commands whose
 * write depends on the current value (SET NX/XX/GET, GETDEL, GETEX, PERSIST,
 * APPEND, INCR...) read the key with quorum first and then write a new
 * version: under last-writer-wins, two such commands racing through
 * different proxies can lose one update (docs/quorum.md). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/client.h"
#include "proxy/dispatch.h"
#include "replication/quorum_op.h"
#include "resp/resp.h"

#define RESERVED_PREFIX "rcproxy:"

/* SET / GETEX option bits (cmd->flags) */
enum {
    OPT_NX = 1 << 0,
    OPT_XX = 1 << 1,
    OPT_GET = 1 << 2,
    OPT_KEEPTTL = 1 << 3,
    OPT_EXPIRE = 1 << 4,   /* ttl_ms holds an absolute expiry */
    OPT_PERSIST = 1 << 5,
};

typedef int cmd_start(repl_qcmd *cmd);

typedef struct qcmd_def {
    const char *name;      /* lowercase, as Redis names it in errors */
    int arity;             /* Redis's: > 0 exact argc, < 0 at least -arity */
    int key_step;          /* 0: argv[1] is the only key; else keys at 1, 1+step, ... */
    cmd_start *start;      /* checks the arguments and starts; -1: answered with an error */
} qcmd_def;

/* ---- life of a command ------------------------------------------------------ */

static repl_qcmd *cmd_new(repl_quorum *q, px_client *c, const char *buf)
{
    size_t argc = c->parser->argc, total = 0;
    for (size_t i = 0; i < argc; i++) {
        size_t len;
        px_arg(c, buf, i, &len);
        total += len + 1;
    }
    repl_qcmd *cmd = calloc(1, sizeof *cmd + argc * (sizeof(char *) + sizeof(size_t)) + total);
    if (!cmd) abort();
    cmd->q = q;
    cmd->argc = (int)argc;
    cmd->argv = (char **)(cmd + 1);
    cmd->argl = (size_t *)(cmd->argv + argc);
    char *p = (char *)(cmd->argl + argc);
    for (size_t i = 0; i < argc; i++) {
        size_t len;
        const char *a = px_arg(c, buf, i, &len);
        memcpy(p, a, len);
        p[len] = 0;
        cmd->argv[i] = p;
        cmd->argl[i] = len;
        p += len + 1;
    }
    return cmd;
}

static void cmd_free(repl_qcmd *cmd)
{
    for (int i = 0; i < cmd->nkeys; i++) px_buf_release(&cmd->keys[i].value);
    free(cmd->keys);
    px_buf_release(&cmd->scratch);
    free(cmd);
}

/* The command's keys: argv[1] alone (step 0), or argv[1], argv[1+step], ... */
static void cmd_keys(repl_qcmd *cmd, int step)
{
    int first = 1, n = 0;
    if (step == 0) step = cmd->argc;
    for (int i = first; i < cmd->argc; i += step) n++;
    cmd->keys = calloc((size_t)(n ? n : 1), sizeof *cmd->keys);
    if (!cmd->keys) abort();
    cmd->nkeys = n;
    for (int i = first, k = 0; i < cmd->argc; i += step, k++) {
        cmd->keys[k].key = cmd->argv[i];
        cmd->keys[k].klen = cmd->argl[i];
        cmd->keys[k].pttl = -1;
    }
}

/* Answer the client (reply: one complete RESP value) and free cmd. */
static void cmd_finish(repl_qcmd *cmd, const char *reply, size_t len)
{
    px_slot_deliver(cmd->q->ctx, cmd->slot, reply, len);
    cmd_free(cmd);
}

/* Answer an error built from fmt (no leading '-') and free cmd. */
static void __attribute__((format(printf, 2, 3))) cmd_finish_error(repl_qcmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_slot_deliver_verror(cmd->q->ctx, cmd->slot, fmt, ap);
    va_end(ap);
    cmd_free(cmd);
}

static void finish_buf(repl_qcmd *cmd, px_buf *b)
{
    cmd_finish(cmd, b->data, b->len);
    px_buf_release(b);
}

static void finish_int(repl_qcmd *cmd, long long v)
{
    px_buf b = PX_BUF_INIT;
    px_buf_add_int(&b, v);
    finish_buf(cmd, &b);
}

static void finish_status(repl_qcmd *cmd, const char *s)
{
    px_buf b = PX_BUF_INIT;
    px_buf_add_status(&b, s);
    finish_buf(cmd, &b);
}

/* Answer the value of key k (nil when missing). */
static void finish_value(repl_qcmd *cmd, const repl_qkey *r)
{
    px_buf b = PX_BUF_INIT;
    if (r->found) px_buf_add_bulk(&b, r->value.data ? r->value.data : "", r->value.len);
    else px_buf_add_null(&b);
    finish_buf(cmd, &b);
}

/* The first failed key answers for the command; returns 1 if there was one. */
static int finish_if_failed(repl_qcmd *cmd)
{
    for (int k = 0; k < cmd->nkeys; k++)
        if (cmd->keys[k].failed) {
            cmd_finish_error(cmd, "%s", cmd->keys[k].err);
            return 1;
        }
    return 0;
}

/* Run a phase over every key: `guard` keeps the command alive until every
 * operation is started, even if they all complete at once. */
static void phase_read_all(repl_qcmd *cmd, repl_qcmd_step *step, int want_ttl)
{
    cmd->step = step;
    cmd->waiting = cmd->nkeys + 1;
    for (int k = 0; k < cmd->nkeys; k++) repl_q_read(cmd, k, want_ttl);
    repl_q_key_done(cmd);
}

static void phase_one(repl_qcmd *cmd, repl_qcmd_step *step)
{
    cmd->step = step;
    cmd->waiting = 2;
    cmd->phase++;
}

/* ---- argument helpers ---------------------------------------------------- */

static int arg_is(const repl_qcmd *cmd, int i, const char *lit)
{
    return strcasecmp(cmd->argv[i], lit) == 0 && strlen(lit) == cmd->argl[i];
}

static int arg_ll(const repl_qcmd *cmd, int i, long long *out)
{
    return resp_parse_ll(cmd->argv[i], cmd->argl[i], out);
}

/* An expiry argument of `name` (EX/PX/EXAT/PXAT) as absolute ms.  Returns 0,
 * or -1 after answering Redis's error. */
static int expiry_arg(repl_qcmd *cmd, int i, const char *unit, const char *name, long long *at_ms)
{
    long long v;
    if (!arg_ll(cmd, i, &v)) {
        cmd_finish_error(cmd, "ERR value is not an integer or out of range");
        return -1;
    }
    int seconds = strcasecmp(unit, "EX") == 0 || strcasecmp(unit, "EXAT") == 0;
    int absolute = strcasecmp(unit, "EXAT") == 0 || strcasecmp(unit, "PXAT") == 0;
    long long now = repl_q_wall_ms();
    if (v <= 0 || (seconds && v > LLONG_MAX / 1000) || (!absolute && (seconds ? v * 1000 : v) > LLONG_MAX - now)) {
        cmd_finish_error(cmd, "ERR invalid expire time in '%s' command", name);
        return -1;
    }
    if (seconds) v *= 1000;
    *at_ms = absolute ? v : now + v;
    return 0;
}

/* ---- reads ------------------------------------------------------------------ */

static void get_done(repl_qcmd *cmd)
{
    if (!finish_if_failed(cmd)) finish_value(cmd, &cmd->keys[0]);
}

static int start_get(repl_qcmd *cmd)
{
    phase_read_all(cmd, get_done, 0);
    return 0;
}

static void mget_done(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    px_buf b = PX_BUF_INIT;
    px_buf_add_header(&b, '*', cmd->nkeys);
    for (int k = 0; k < cmd->nkeys; k++) {
        const repl_qkey *r = &cmd->keys[k];
        if (r->found) px_buf_add_bulk(&b, r->value.data ? r->value.data : "", r->value.len);
        else px_buf_add_null(&b);
    }
    finish_buf(cmd, &b);
}

static int start_mget(repl_qcmd *cmd)
{
    phase_read_all(cmd, mget_done, 0);
    return 0;
}

static void exists_done(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    long long n = 0;
    for (int k = 0; k < cmd->nkeys; k++) n += cmd->keys[k].found;
    finish_int(cmd, n);
}

static int start_exists(repl_qcmd *cmd)
{
    phase_read_all(cmd, exists_done, 0);
    return 0;
}

static void strlen_done(repl_qcmd *cmd)
{
    if (!finish_if_failed(cmd)) finish_int(cmd, cmd->keys[0].found ? (long long)cmd->keys[0].value.len : 0);
}

static int start_strlen(repl_qcmd *cmd)
{
    phase_read_all(cmd, strlen_done, 0);
    return 0;
}

static void ttl_done(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    const repl_qkey *r = &cmd->keys[0];
    long long v = !r->found ? -2 : r->pttl < 0 ? -1 : cmd->flags ? r->pttl : (r->pttl + 500) / 1000;
    finish_int(cmd, v);
}

static int start_ttl(repl_qcmd *cmd)
{
    cmd->flags = arg_is(cmd, 0, "pttl");
    phase_read_all(cmd, ttl_done, 1);
    return 0;
}

/* ---- plain writes ------------------------------------------------------------ */

static void write_done_ok(repl_qcmd *cmd)
{
    if (!finish_if_failed(cmd)) finish_status(cmd, "OK");
}

/* The write of SET (phase after the optional read). */
static void set_write(repl_qcmd *cmd)
{
    repl_qttl_mode mode = cmd->flags & OPT_KEEPTTL ? REPL_QTTL_KEEP
                          : cmd->flags & OPT_EXPIRE ? REPL_QTTL_AT : REPL_QTTL_NONE;
    repl_q_write(cmd, 0, REPL_QW_SET, cmd->argv[2], cmd->argl[2], mode, cmd->ttl_ms);
}

static void set_written(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    if (cmd->flags & OPT_GET) {
        /* the old value came from the read phase, kept in scratch */
        px_buf b = PX_BUF_INIT;
        if (cmd->num) px_buf_add_bulk(&b, cmd->scratch.data ? cmd->scratch.data : "", cmd->scratch.len);
        else px_buf_add_null(&b);
        finish_buf(cmd, &b);
        return;
    }
    finish_status(cmd, "OK");
}

static void set_after_read(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    repl_qkey *r = &cmd->keys[0];
    int exists = r->found;
    cmd->num = exists;   /* the old value is answered by GET */
    px_buf_append(&cmd->scratch, r->value.data ? r->value.data : "", r->value.len);
    if (((cmd->flags & OPT_NX) && exists) || ((cmd->flags & OPT_XX) && !exists)) {
        px_buf b = PX_BUF_INIT;
        if ((cmd->flags & OPT_GET) && exists) px_buf_add_bulk(&b, cmd->scratch.data, cmd->scratch.len);
        else px_buf_add_null(&b);
        finish_buf(cmd, &b);
        return;
    }
    phase_one(cmd, set_written);
    set_write(cmd);
    repl_q_key_done(cmd);
}

static int start_set(repl_qcmd *cmd)
{
    for (int i = 3; i < cmd->argc; i++) {
        int more = i + 1 < cmd->argc;
        if (arg_is(cmd, i, "NX") && !(cmd->flags & OPT_XX)) cmd->flags |= OPT_NX;
        else if (arg_is(cmd, i, "XX") && !(cmd->flags & OPT_NX)) cmd->flags |= OPT_XX;
        else if (arg_is(cmd, i, "GET")) cmd->flags |= OPT_GET;
        else if (arg_is(cmd, i, "KEEPTTL") && !(cmd->flags & OPT_EXPIRE)) cmd->flags |= OPT_KEEPTTL;
        else if ((arg_is(cmd, i, "EX") || arg_is(cmd, i, "PX") || arg_is(cmd, i, "EXAT") ||
                  arg_is(cmd, i, "PXAT")) && !(cmd->flags & (OPT_KEEPTTL | OPT_EXPIRE)) && more) {
            if (expiry_arg(cmd, i + 1, cmd->argv[i], "set", &cmd->ttl_ms) < 0) return -1;
            cmd->flags |= OPT_EXPIRE;
            i++;
        } else {
            cmd_finish_error(cmd, "ERR syntax error");
            return -1;
        }
    }
    if (cmd->flags & (OPT_NX | OPT_XX | OPT_GET)) {
        phase_read_all(cmd, set_after_read, 0);
        return 0;
    }
    phase_one(cmd, write_done_ok);
    set_write(cmd);
    repl_q_key_done(cmd);
    return 0;
}

static int start_mset(repl_qcmd *cmd)
{
    if (cmd->argc % 2 == 0) {
        cmd_finish_error(cmd, "ERR wrong number of arguments for '%s' command", "mset");
        return -1;
    }
    cmd->nkeys = (cmd->argc - 1) / 2;
    cmd->step = write_done_ok;
    cmd->waiting = cmd->nkeys + 1;
    for (int k = 0; k < cmd->nkeys; k++)
        repl_q_write(cmd, k, REPL_QW_SET, cmd->argv[2 + 2 * k], cmd->argl[2 + 2 * k], REPL_QTTL_NONE, 0);
    repl_q_key_done(cmd);
    return 0;
}

static void del_done(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    long long n = 0;
    for (int k = 0; k < cmd->nkeys; k++) n += cmd->keys[k].prev_live;
    finish_int(cmd, n);
}

static int start_del(repl_qcmd *cmd)
{
    cmd->step = del_done;
    cmd->waiting = cmd->nkeys + 1;
    for (int k = 0; k < cmd->nkeys; k++) repl_q_write(cmd, k, REPL_QW_DEL, NULL, 0, REPL_QTTL_NONE, 0);
    repl_q_key_done(cmd);
    return 0;
}

static void expire_done(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    /* an expiry in the past deleted the key (a tombstone) */
    const repl_qkey *r = &cmd->keys[0];
    finish_int(cmd, cmd->flags ? r->prev_live : r->applied);
}

/* EXPIRE PEXPIRE EXPIREAT PEXPIREAT key time */
static int start_expire(repl_qcmd *cmd)
{
    long long v;
    if (cmd->argc > 3) {
        cmd_finish_error(cmd, "ERR rcproxy: %s options NX|XX|GT|LT are not supported in quorum mode",
                               cmd->argv[0]);
        return -1;
    }
    if (!arg_ll(cmd, 2, &v)) {
        cmd_finish_error(cmd, "ERR value is not an integer or out of range");
        return -1;
    }
    int seconds = arg_is(cmd, 0, "expire") || arg_is(cmd, 0, "expireat");
    int absolute = arg_is(cmd, 0, "expireat") || arg_is(cmd, 0, "pexpireat");
    long long now = repl_q_wall_ms();
    if ((seconds && (v > LLONG_MAX / 1000 || v < LLONG_MIN / 1000)) ||
        (!absolute && (seconds ? v * 1000 : v) > LLONG_MAX - now)) {
        char lower[32];
        size_t n = cmd->argl[0] < sizeof lower - 1 ? cmd->argl[0] : sizeof lower - 1;
        for (size_t i = 0; i < n; i++) lower[i] = (char)tolower((unsigned char)cmd->argv[0][i]);
        lower[n] = 0;
        cmd_finish_error(cmd, "ERR invalid expire time in '%s' command", lower);
        return -1;
    }
    if (seconds) v *= 1000;
    long long at = absolute ? v : now + v;
    phase_one(cmd, expire_done);
    cmd->flags = at <= now;
    if (cmd->flags) repl_q_write(cmd, 0, REPL_QW_DEL, NULL, 0, REPL_QTTL_NONE, 0);
    else repl_q_write(cmd, 0, REPL_QW_EXPIRE, NULL, 0, REPL_QTTL_AT, at);
    repl_q_key_done(cmd);
    return 0;
}

/* ---- read, then write ------------------------------------------------------- */

static void persist_written(repl_qcmd *cmd)
{
    if (!finish_if_failed(cmd)) finish_int(cmd, cmd->keys[0].applied);
}

static void persist_after_read(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    const repl_qkey *r = &cmd->keys[0];
    if (!r->found || r->pttl < 0) {
        finish_int(cmd, 0);
        return;
    }
    phase_one(cmd, persist_written);
    repl_q_write(cmd, 0, REPL_QW_EXPIRE, NULL, 0, REPL_QTTL_NONE, 0);
    repl_q_key_done(cmd);
}

static int start_persist(repl_qcmd *cmd)
{
    phase_read_all(cmd, persist_after_read, 1);
    return 0;
}

/* Answer scratch (the old value of GETDEL/GETEX, INCRBYFLOAT's result) once
 * the write after the read is done. */
static void scratch_written(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    px_buf b = PX_BUF_INIT;
    px_buf_add_bulk(&b, cmd->scratch.data ? cmd->scratch.data : "", cmd->scratch.len);
    finish_buf(cmd, &b);
}

static void getdel_after_read(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    repl_qkey *r = &cmd->keys[0];
    if (!r->found) {
        finish_value(cmd, r);
        return;
    }
    px_buf_append(&cmd->scratch, r->value.data ? r->value.data : "", r->value.len);
    phase_one(cmd, scratch_written);
    repl_q_write(cmd, 0, REPL_QW_DEL, NULL, 0, REPL_QTTL_NONE, 0);
    repl_q_key_done(cmd);
}

static int start_getdel(repl_qcmd *cmd)
{
    phase_read_all(cmd, getdel_after_read, 0);
    return 0;
}

static void getex_after_read(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    repl_qkey *r = &cmd->keys[0];
    if (!r->found || !(cmd->flags & (OPT_EXPIRE | OPT_PERSIST))) {
        finish_value(cmd, r);
        return;
    }
    px_buf_append(&cmd->scratch, r->value.data ? r->value.data : "", r->value.len);
    phase_one(cmd, scratch_written);
    if (cmd->flags & OPT_EXPIRE)
        repl_q_write(cmd, 0, REPL_QW_EXPIRE, NULL, 0, REPL_QTTL_AT, cmd->ttl_ms);
    else
        repl_q_write(cmd, 0, REPL_QW_EXPIRE, NULL, 0, REPL_QTTL_NONE, 0);
    repl_q_key_done(cmd);
}

static int start_getex(repl_qcmd *cmd)
{
    for (int i = 2; i < cmd->argc; i++) {
        int more = i + 1 < cmd->argc;
        if (arg_is(cmd, i, "PERSIST") && !(cmd->flags & (OPT_EXPIRE | OPT_PERSIST))) {
            cmd->flags |= OPT_PERSIST;
        } else if ((arg_is(cmd, i, "EX") || arg_is(cmd, i, "PX") || arg_is(cmd, i, "EXAT") ||
                    arg_is(cmd, i, "PXAT")) && !(cmd->flags & (OPT_EXPIRE | OPT_PERSIST)) && more) {
            if (expiry_arg(cmd, i + 1, cmd->argv[i], "getex", &cmd->ttl_ms) < 0) return -1;
            cmd->flags |= OPT_EXPIRE;
            i++;
        } else {
            cmd_finish_error(cmd, "ERR syntax error");
            return -1;
        }
    }
    phase_read_all(cmd, getex_after_read, 0);
    return 0;
}

/* Write scratch as the key's new value, keeping the TTL it had. */
static void write_scratch(repl_qcmd *cmd, repl_qcmd_step *then)
{
    const repl_qkey *r = &cmd->keys[0];
    phase_one(cmd, then);
    if (r->found && r->pttl > 0)
        repl_q_write(cmd, 0, REPL_QW_SET, cmd->scratch.data, cmd->scratch.len, REPL_QTTL_AT,
                     repl_q_wall_ms() + r->pttl);
    else
        repl_q_write(cmd, 0, REPL_QW_SET, cmd->scratch.data, cmd->scratch.len, REPL_QTTL_NONE, 0);
    repl_q_key_done(cmd);
}

static void int_written(repl_qcmd *cmd)
{
    if (!finish_if_failed(cmd)) finish_int(cmd, cmd->num);
}

static void append_after_read(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    const repl_qkey *r = &cmd->keys[0];
    if (r->found) px_buf_append(&cmd->scratch, r->value.data ? r->value.data : "", r->value.len);
    px_buf_append(&cmd->scratch, cmd->argv[2], cmd->argl[2]);
    cmd->num = (long long)cmd->scratch.len;
    write_scratch(cmd, int_written);
}

static int start_append(repl_qcmd *cmd)
{
    phase_read_all(cmd, append_after_read, 1);
    return 0;
}

static void incr_after_read(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    const repl_qkey *r = &cmd->keys[0];
    long long old = 0;
    if (r->found && !resp_parse_ll(r->value.data ? r->value.data : "", r->value.len, &old)) {
        cmd_finish_error(cmd, "ERR value is not an integer or out of range");
        return;
    }
    long long by = cmd->num;
    if ((by < 0 && old < 0 && by < LLONG_MIN - old) || (by > 0 && old > 0 && by > LLONG_MAX - old)) {
        cmd_finish_error(cmd, "ERR increment or decrement would overflow");
        return;
    }
    cmd->num = old + by;
    char text[32];
    int n = snprintf(text, sizeof text, "%lld", cmd->num);
    px_buf_append(&cmd->scratch, text, (size_t)n);
    write_scratch(cmd, int_written);
}

/* INCR DECR INCRBY DECRBY */
static int start_incr(repl_qcmd *cmd)
{
    long long by = 1;
    if (cmd->argc == 3 && !arg_ll(cmd, 2, &by)) {
        cmd_finish_error(cmd, "ERR value is not an integer or out of range");
        return -1;
    }
    if (arg_is(cmd, 0, "decr") || arg_is(cmd, 0, "decrby")) {
        if (by == LLONG_MIN) {
            cmd_finish_error(cmd, "ERR decrement would overflow");
            return -1;
        }
        by = -by;
    }
    cmd->num = by;
    phase_read_all(cmd, incr_after_read, 1);
    return 0;
}

/* A long double as Redis writes INCRBYFLOAT results: %.17Lf without
 * trailing zeros (and without a trailing point). */
static int format_float(long double v, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%.17Lf", v);
    if (n <= 0 || (size_t)n >= cap) return -1;
    if (strchr(out, '.')) {
        while (n > 0 && out[n - 1] == '0') n--;
        if (n > 0 && out[n - 1] == '.') n--;
        out[n] = 0;
    }
    if (strcmp(out, "-0") == 0) strcpy(out, "0"), n = 1;
    return n;
}

/* Parse a float as Redis's string2ld: no spaces, no trailing garbage, no NaN. */
static int parse_float(const char *s, size_t len, long double *out)
{
    char tmp[5200];
    if (len == 0 || len >= sizeof tmp || isspace((unsigned char)s[0])) return 0;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *end;
    errno = 0;
    long double v = strtold(tmp, &end);
    if ((size_t)(end - tmp) != len || errno == ERANGE || isnan(v)) return 0;
    *out = v;
    return 1;
}

static void incrbyfloat_after_read(repl_qcmd *cmd)
{
    if (finish_if_failed(cmd)) return;
    const repl_qkey *r = &cmd->keys[0];
    long double old = 0;
    if (r->found && !parse_float(r->value.data ? r->value.data : "", r->value.len, &old)) {
        cmd_finish_error(cmd, "ERR value is not a valid float");
        return;
    }
    long double v = old + cmd->fnum;
    char text[5200];
    int n;
    if (isnan(v) || isinf(v) || (n = format_float(v, text, sizeof text)) < 0) {
        cmd_finish_error(cmd, "ERR increment would produce NaN or Infinity");
        return;
    }
    px_buf_append(&cmd->scratch, text, (size_t)n);
    write_scratch(cmd, scratch_written);
}

static int start_incrbyfloat(repl_qcmd *cmd)
{
    if (!parse_float(cmd->argv[2], cmd->argl[2], &cmd->fnum)) {
        cmd_finish_error(cmd, "ERR value is not a valid float");
        return -1;
    }
    phase_read_all(cmd, incrbyfloat_after_read, 1);
    return 0;
}

/* ---- the table -------------------------------------------------------------- */

static const qcmd_def commands[] = {
    {"get", 2, 0, start_get},
    {"mget", -2, 1, start_mget},
    {"exists", -2, 1, start_exists},
    {"strlen", 2, 0, start_strlen},
    {"ttl", 2, 0, start_ttl},
    {"pttl", 2, 0, start_ttl},
    {"set", -3, 0, start_set},
    {"mset", -3, 2, start_mset},
    {"del", -2, 1, start_del},
    {"unlink", -2, 1, start_del},
    {"expire", -3, 0, start_expire},
    {"pexpire", -3, 0, start_expire},
    {"expireat", -3, 0, start_expire},
    {"pexpireat", -3, 0, start_expire},
    {"persist", 2, 0, start_persist},
    {"getdel", 2, 0, start_getdel},
    {"getex", -2, 0, start_getex},
    {"append", 3, 0, start_append},
    {"incr", 2, 0, start_incr},
    {"decr", 2, 0, start_incr},
    {"incrby", 3, 0, start_incr},
    {"decrby", 3, 0, start_incr},
    {"incrbyfloat", 3, 0, start_incrbyfloat},
};

static const qcmd_def *find_command(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strlen(commands[i].name) == len && strncasecmp(commands[i].name, name, len) == 0)
            return &commands[i];
    return NULL;
}

/* Does any key of cmd start with the reserved prefix? */
static int touches_reserved(const repl_qcmd *cmd)
{
    for (int k = 0; k < cmd->nkeys; k++)
        if (cmd->keys[k].klen >= sizeof RESERVED_PREFIX - 1 &&
            memcmp(cmd->keys[k].key, RESERVED_PREFIX, sizeof RESERVED_PREFIX - 1) == 0)
            return 1;
    return 0;
}

int repl_qcmd_dispatch(repl_quorum *q, px_client *c, const char *buf)
{
    size_t nlen;
    const char *name = px_arg(c, buf, 0, &nlen);
    const qcmd_def *def = find_command(name, nlen);
    int argc = (int)c->parser->argc;
    if (!def) {
        px_buf_add_errorf(px_client_reply(c), "ERR command '%.*s' is not supported in quorum mode",
                          (int)(nlen > 128 ? 128 : nlen), name);
        return PX_DONE;
    }
    if ((def->arity > 0 && argc != def->arity) || (def->arity < 0 && argc < -def->arity)) {
        px_buf_add_errorf(px_client_reply(c), "ERR wrong number of arguments for '%s' command", def->name);
        return PX_DONE;
    }
    repl_qcmd *cmd = cmd_new(q, c, buf);
    cmd_keys(cmd, def->key_step);
    if (touches_reserved(cmd)) {
        cmd_free(cmd);
        px_buf_add_error(px_client_reply(c),
                         "ERR rcproxy: keys starting with 'rcproxy:' are reserved in quorum mode");
        return PX_DONE;
    }
    cmd->slot = px_client_slot(c, PX_SLOT_PLAIN);
    def->start(cmd);
    return PX_DONE;
}
