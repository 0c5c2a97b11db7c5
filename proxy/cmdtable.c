/* cmdtable.c -- the command table: built-in rows, COMMAND-reply merging and
 * case-insensitive lookup.
 *
 * Layout:
 *
 *   px_cmdtable
 *     builtin  --> [entry][entry]...[entry]      one calloc, names are static
 *     loaded   --> entry+name, entry+name, ...   one malloc each (added by
 *                                                load_reply), name copied
 *     all      --> [entry*][entry*]...           every entry, in insertion order
 *     slots    --> [entry* | NULL] x (mask+1)    open addressing, linear probe,
 *                                                keyed by a case-folded FNV-1a
 *
 * Entries never move once created, so a `const px_command *` returned by
 * px_cmdtable_lookup() stays valid until px_cmdtable_free(); a later
 * px_cmdtable_load_reply() may update its arity/flags/keys in place.
 *
 * px_cmdtable_load_reply() is all-or-nothing: it parses and validates the
 * reply, allocates every new entry and the new hash index, and only then
 * touches the table, so a bad reply or an allocation failure leaves the table
 * exactly as it was. */
#include "proxy/cmdtable.h"

#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest command name accepted from a COMMAND reply (Redis's longest is 20;
 * module commands are free-form but short).  Longer names are malformed. */
#define PX_CMD_NAME_MAX 128
/* Bounds on arity and key positions accepted from a COMMAND reply. */
#define PX_CMD_POS_MAX 100000

/* One compact built-in row; the generated px_builtin_rows[] uses it. */
typedef struct px_builtin_row {
    const char *name;
    int8_t arity;
    uint16_t flags;
    int8_t first_key, last_key, key_step;
} px_builtin_row;

#include "proxy/cmdtable_builtin.inc"

/* rcproxy's own commands, not known to Redis. */
static const px_builtin_row px_proxy_rows[] = {
    { "rcproxy", -2, PX_CMD_LOADING | PX_CMD_STALE | PX_CMD_FAST, 0, 0, 0 },
};

/* Names of the commands the proxy treats specially, indexed by px_cmd_id. */
static const char *const px_id_names[PX_ID__COUNT] = {
    [PX_ID_PING] = "ping", [PX_ID_ECHO] = "echo", [PX_ID_QUIT] = "quit",
    [PX_ID_RESET] = "reset", [PX_ID_SELECT] = "select", [PX_ID_AUTH] = "auth",
    [PX_ID_HELLO] = "hello", [PX_ID_CLIENT] = "client", [PX_ID_INFO] = "info",
    [PX_ID_RCPROXY] = "rcproxy",
    [PX_ID_MULTI] = "multi", [PX_ID_EXEC] = "exec", [PX_ID_DISCARD] = "discard",
    [PX_ID_WATCH] = "watch", [PX_ID_UNWATCH] = "unwatch",
    [PX_ID_SUBSCRIBE] = "subscribe", [PX_ID_PSUBSCRIBE] = "psubscribe",
    [PX_ID_SSUBSCRIBE] = "ssubscribe", [PX_ID_UNSUBSCRIBE] = "unsubscribe",
    [PX_ID_PUNSUBSCRIBE] = "punsubscribe", [PX_ID_SUNSUBSCRIBE] = "sunsubscribe",
    [PX_ID_WAIT] = "wait", [PX_ID_XREAD] = "xread", [PX_ID_XREADGROUP] = "xreadgroup",
    [PX_ID_SHUTDOWN] = "shutdown", [PX_ID_SYNC] = "sync", [PX_ID_PSYNC] = "psync",
    [PX_ID_REPLICAOF] = "replicaof", [PX_ID_SLAVEOF] = "slaveof",
    [PX_ID_MONITOR] = "monitor", [PX_ID_REPLCONF] = "replconf",
    [PX_ID_FAILOVER] = "failover", [PX_ID_DEBUG] = "debug",
};

typedef struct entry {
    px_command cmd;       /* what lookup returns */
    uint32_t hash;        /* case-folded hash of the name */
    uint16_t len;         /* strlen(cmd.name) */
    bool heap;            /* allocated by load_reply (name stored after it) */
} entry;

struct px_cmdtable {
    entry *builtin;       /* the built-in rows, one allocation */
    entry **all;          /* every entry; all[0..count) */
    size_t count;
    entry **slots;        /* hash index, mask+1 slots, NULL = empty */
    size_t mask;
    size_t max_len;       /* longest name: longer lookups fail at once */
};

/* A validated COMMAND entry, still pointing into the reply. */
typedef struct parsed {
    const char *name;
    size_t len;
    int arity;
    uint32_t flags;
    int first_key, last_key, key_step;
} parsed;

static inline unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* FNV-1a over the ASCII-lower-cased bytes. */
static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= fold((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
}

/* True if the (lower-case) entry name equals s[0..len) ignoring ASCII case. */
static bool name_eq(const entry *e, uint32_t h, const char *s, size_t len)
{
    if (e->hash != h || e->len != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)e->cmd.name[i] != fold((unsigned char)s[i]))
            return false;
    return true;
}

static px_cmd_id id_for_name(const char *lower_name)
{
    for (int id = PX_ID_NONE + 1; id < PX_ID__COUNT; id++)
        if (strcmp(px_id_names[id], lower_name) == 0)
            return (px_cmd_id)id;
    return PX_ID_NONE;
}

/* Slots needed for n entries at a load factor of at most 1/2 (power of 2). */
static size_t slots_for(size_t n)
{
    size_t s = 16;
    while (s < n * 2)
        s <<= 1;
    return s;
}

/* Find the slot holding name, or the empty slot where it would go. */
static entry **slot_find(entry **slots, size_t mask, uint32_t h, const char *s, size_t len)
{
    size_t i = h & mask;
    while (slots[i] != NULL && !name_eq(slots[i], h, s, len))
        i = (i + 1) & mask;
    return &slots[i];
}

/* Build a fresh index holding all[0..count) plus room for `extra` more.
 * Returns NULL on OOM; *mask_out receives the new mask. */
static entry **index_build(entry *const *all, size_t count, size_t extra, size_t *mask_out)
{
    size_t n = slots_for(count + extra);
    entry **slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++)
        *slot_find(slots, n - 1, all[i]->hash, all[i]->cmd.name, all[i]->len) = all[i];
    *mask_out = n - 1;
    return slots;
}

static void oom(void)
{
    fprintf(stderr, "rcproxy: out of memory building the command table\n");
    abort();
}

static void entry_from_row(entry *e, const px_builtin_row *row)
{
    e->cmd.name = row->name;
    e->cmd.arity = row->arity;
    e->cmd.flags = row->flags;
    e->cmd.first_key = row->first_key;
    e->cmd.last_key = row->last_key;
    e->cmd.key_step = row->key_step;
    e->cmd.id = id_for_name(row->name);
    e->len = (uint16_t)strlen(row->name);
    e->hash = name_hash(row->name, e->len);
    e->heap = false;
}

px_cmdtable *px_cmdtable_new_builtin(void)
{
    const size_t nr = sizeof(px_builtin_rows) / sizeof(px_builtin_rows[0]);
    const size_t np = sizeof(px_proxy_rows) / sizeof(px_proxy_rows[0]);
    px_cmdtable *t = calloc(1, sizeof(*t));
    if (t == NULL)
        oom();
    t->builtin = calloc(nr + np, sizeof(*t->builtin));
    t->all = calloc(nr + np, sizeof(*t->all));
    if (t->builtin == NULL || t->all == NULL)
        oom();
    for (size_t i = 0; i < nr + np; i++) {
        entry *e = &t->builtin[i];
        entry_from_row(e, i < nr ? &px_builtin_rows[i] : &px_proxy_rows[i - nr]);
        t->all[t->count++] = e;
        if (e->len > t->max_len)
            t->max_len = e->len;
    }
    t->slots = index_build(t->all, t->count, 0, &t->mask);
    if (t->slots == NULL)
        oom();
    return t;
}

void px_cmdtable_free(px_cmdtable *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++)
        if (t->all[i]->heap)
            free(t->all[i]);
    free(t->builtin);
    free(t->all);
    free(t->slots);
    free(t);
}

const px_command *px_cmdtable_lookup(const px_cmdtable *t, const char *name, size_t len)
{
    if (t == NULL || name == NULL || len == 0 || len > t->max_len)
        return NULL;
    entry *e = *slot_find(t->slots, t->mask, name_hash(name, len), name, len);
    return e != NULL ? &e->cmd : NULL;
}

size_t px_cmdtable_count(const px_cmdtable *t)
{
    return t != NULL ? t->count : 0;
}

/* ---- COMMAND reply parsing ------------------------------------------- */

static bool is_text(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static bool int_in(const redisReply *r, long long lo, long long hi, int *out)
{
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < lo || r->integer > hi)
        return false;
    *out = (int)r->integer;
    return true;
}

static uint32_t flag_bit(const char *s, size_t len)
{
    static const struct { const char *name; uint32_t bit; } names[] = {
        { "write", PX_CMD_WRITE },       { "readonly", PX_CMD_READONLY },
        { "blocking", PX_CMD_BLOCKING }, { "pubsub", PX_CMD_PUBSUB },
        { "admin", PX_CMD_ADMIN },       { "noscript", PX_CMD_NOSCRIPT },
        { "loading", PX_CMD_LOADING },   { "stale", PX_CMD_STALE },
        { "fast", PX_CMD_FAST },         { "movablekeys", PX_CMD_MOVABLEKEYS },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, s, len) == 0)
            return names[i].bit;
    return 0;   /* a flag rcproxy does not route on (denyoom, no_auth, ...) */
}

/* Validate one COMMAND entry [name, arity, flags[], first, last, step, ...]
 * and fill *p (pointing into r).  Returns false if the entry is malformed:
 * wrong element types, an empty/overlong/NUL-containing name, arity 0 or
 * positions out of bounds.  Unknown flags are ignored. */
static bool parse_entry(const redisReply *r, parsed *p)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 6 || r->element == NULL)
        return false;
    const redisReply *name = r->element[0], *flags = r->element[2];
    if (!is_text(name) || name->str == NULL || name->len == 0 ||
        name->len > PX_CMD_NAME_MAX || memchr(name->str, '\0', name->len) != NULL)
        return false;
    if (!int_in(r->element[1], -PX_CMD_POS_MAX, PX_CMD_POS_MAX, &p->arity) || p->arity == 0 ||
        !int_in(r->element[3], 0, PX_CMD_POS_MAX, &p->first_key) ||
        !int_in(r->element[4], -PX_CMD_POS_MAX, PX_CMD_POS_MAX, &p->last_key) ||
        !int_in(r->element[5], 0, PX_CMD_POS_MAX, &p->key_step))
        return false;
    if (flags == NULL || flags->type != REDIS_REPLY_ARRAY ||
        (flags->elements > 0 && flags->element == NULL))
        return false;
    p->flags = 0;
    for (size_t i = 0; i < flags->elements; i++) {
        if (!is_text(flags->element[i]) || flags->element[i]->str == NULL)
            return false;
        p->flags |= flag_bit(flags->element[i]->str, flags->element[i]->len);
    }
    p->name = name->str;
    p->len = name->len;
    return true;
}

/* A new heap entry for p: the name is copied (lower-cased) after the struct. */
static entry *entry_new(const parsed *p)
{
    entry *e = malloc(sizeof(*e) + p->len + 1);
    if (e == NULL)
        return NULL;
    char *name = (char *)(e + 1);
    for (size_t i = 0; i < p->len; i++)
        name[i] = (char)fold((unsigned char)p->name[i]);
    name[p->len] = '\0';
    e->cmd.name = name;
    e->cmd.id = id_for_name(name);
    e->len = (uint16_t)p->len;
    e->hash = name_hash(name, p->len);
    e->heap = true;
    return e;
}

static void entry_set(entry *e, const parsed *p)
{
    e->cmd.arity = p->arity;
    e->cmd.flags = p->flags;
    e->cmd.first_key = p->first_key;
    e->cmd.last_key = p->last_key;
    e->cmd.key_step = p->key_step;
}

int px_cmdtable_load_reply(px_cmdtable *t, const struct redisReply *r)
{
    parsed *rows = NULL;
    entry **slots = NULL, **all = NULL;
    size_t nrows = 0, nadded = 0, mask = 0, max_len = 0;
    int ret = -1;

    if (t == NULL || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
        r->element == NULL || r->elements > INT_MAX)
        return -1;

    /* 1. validate, keeping only well-formed entries */
    rows = malloc(r->elements * sizeof(*rows));
    if (rows == NULL)
        goto cleanup;
    for (size_t i = 0; i < r->elements; i++)
        if (parse_entry(r->element[i], &rows[nrows]))
            nrows++;
    if (nrows == 0)
        goto cleanup;

    /* 2. allocate: room in all[], a new index, an entry per new name.  New
     * entries go into the new index at once so a name repeated in the reply
     * is added only once.  The table itself is not touched yet. */
    all = malloc((t->count + nrows) * sizeof(*all));
    slots = index_build(t->all, t->count, nrows, &mask);
    if (all == NULL || slots == NULL)
        goto cleanup;
    memcpy(all, t->all, t->count * sizeof(*all));
    max_len = t->max_len;
    for (size_t i = 0; i < nrows; i++) {
        const parsed *p = &rows[i];
        entry **slot = slot_find(slots, mask, name_hash(p->name, p->len), p->name, p->len);
        if (*slot != NULL)
            continue;
        if ((*slot = entry_new(p)) == NULL)
            goto cleanup;
        all[t->count + nadded++] = *slot;
        if (p->len > max_len)
            max_len = p->len;
    }

    /* 3. commit: nothing below can fail */
    for (size_t i = 0; i < nrows; i++) {
        const parsed *p = &rows[i];
        entry_set(*slot_find(slots, mask, name_hash(p->name, p->len), p->name, p->len), p);
    }
    free(t->all);
    free(t->slots);
    t->all = all;
    t->slots = slots;
    t->mask = mask;
    t->count += nadded;
    t->max_len = max_len;
    all = NULL;
    slots = NULL;
    nadded = 0;
    ret = (int)nrows;

cleanup:
    /* on failure, the entries created in step 2 are only in all[] */
    for (size_t i = 0; all != NULL && i < nadded; i++)
        free(all[t->count + i]);
    free(all);
    free(slots);
    free(rows);
    return ret;
}
