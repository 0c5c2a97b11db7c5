/* quorum_version.c -- hybrid logical clock, version text and stored value
 * format for mode quorum (see quorum_version.h). */
#include "replication/quorum_version.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* clock                                                                     */

void repl_hlc_init(repl_hlc *hlc, uint32_t node_id) {
    memset(hlc, 0, sizeof(*hlc));
    hlc->node = node_id;
    hlc->last.node = node_id;
    hlc->max_skew_ms = REPL_HLC_DEFAULT_MAX_SKEW_MS;
}

/* The timestamp right after (ms, counter): the counter advances, and when it
 * is exhausted the millisecond does (a wall clock that stands still for 2^32
 * events must not make the clock repeat).  Saturates at the very top, which
 * a real clock never reaches (observe refuses versions far ahead of it). */
static void tick(uint64_t *ms, uint32_t *counter) {
    if (*counter < UINT32_MAX) {
        (*counter)++;
    } else if (*ms < UINT64_MAX) {
        (*ms)++;
        *counter = 0;
    }
}

repl_version repl_hlc_now(repl_hlc *hlc, uint64_t wall_ms) {
    if (wall_ms > hlc->last.ms) {
        hlc->last.ms = wall_ms;
        hlc->last.counter = 0;
    } else {
        tick(&hlc->last.ms, &hlc->last.counter);
    }
    hlc->last.node = hlc->node;
    return hlc->last;
}

int repl_hlc_observe(repl_hlc *hlc, const repl_version *remote, uint64_t wall_ms) {
    uint64_t limit = wall_ms > UINT64_MAX - hlc->max_skew_ms ? UINT64_MAX : wall_ms + hlc->max_skew_ms;
    if (remote->ms > limit)
        return -1;

    uint64_t ms = hlc->last.ms;
    if (remote->ms > ms)
        ms = remote->ms;
    if (wall_ms > ms)
        ms = wall_ms;

    uint64_t new_ms = ms;
    uint32_t counter;
    if (ms == hlc->last.ms && ms == remote->ms) {
        counter = hlc->last.counter > remote->counter ? hlc->last.counter : remote->counter;
        tick(&new_ms, &counter);
    } else if (ms == hlc->last.ms) {
        counter = hlc->last.counter;
        tick(&new_ms, &counter);
    } else if (ms == remote->ms) {
        counter = remote->counter;
        tick(&new_ms, &counter);
    } else {
        counter = 0; /* the wall clock is ahead of both */
    }
    hlc->last.ms = new_ms;
    hlc->last.counter = counter;
    hlc->last.node = hlc->node;
    return 0;
}

int repl_version_cmp(const repl_version *a, const repl_version *b) {
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->counter != b->counter)
        return a->counter < b->counter ? -1 : 1;
    if (a->node != b->node)
        return a->node < b->node ? -1 : 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* text                                                                      */

static const char hexdigits[] = "0123456789abcdef";

static void put_hex(char *out, uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = hexdigits[v & 0xf];
        v >>= 4;
    }
}

/* Parse `digits` lowercase hex digits; -1 on any other byte. */
static int get_hex(const char *s, int digits, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return -1;
        v = (v << 4) | d;
    }
    *out = v;
    return 0;
}

void repl_version_encode(const repl_version *v, char *out) {
    put_hex(out, v->ms, 16);
    put_hex(out + 16, v->counter, 8);
    put_hex(out + 24, v->node, 8);
}

int repl_version_decode(const char *s, size_t len, repl_version *out) {
    uint64_t ms, counter, node;
    if (s == NULL || len != REPL_VERSION_TEXT_LEN)
        return -1;
    if (get_hex(s, 16, &ms) < 0 || get_hex(s + 16, 8, &counter) < 0 || get_hex(s + 24, 8, &node) < 0)
        return -1;
    out->ms = ms;
    out->counter = (uint32_t)counter;
    out->node = (uint32_t)node;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* stored format                                                             */

void repl_stored_header(const repl_version *v, int tombstone, char *out) {
    out[0] = (char)REPL_STORED_MAGIC;
    out[1] = (char)REPL_STORED_FORMAT;
    out[2] = (char)(tombstone ? REPL_STORED_F_TOMBSTONE : 0);
    repl_version_encode(v, out + REPL_STORED_VERSION_OFFSET);
}

int repl_stored_encode(const repl_version *v, int tombstone, const char *value, size_t value_len,
                       char *out, size_t cap, size_t *out_len) {
    if (tombstone && value_len > 0)
        return REPL_STORED_ETOMBSTONE;
    if (value_len > REPL_STORED_MAX_VALUE)
        return REPL_STORED_ETOOBIG;
    size_t total = REPL_STORED_HEADER_LEN + value_len;
    if (out == NULL || cap < total)
        return REPL_STORED_ESPACE;
    repl_stored_header(v, tombstone, out);
    if (value_len > 0)
        memcpy(out + REPL_STORED_HEADER_LEN, value, value_len);
    *out_len = total;
    return REPL_STORED_OK;
}

int repl_stored_decode(const char *buf, size_t len, repl_stored_view *out) {
    const unsigned char *b = (const unsigned char *)buf;
    repl_version v;
    if (buf == NULL || len < REPL_STORED_HEADER_LEN)
        return REPL_STORED_ESHORT;
    if (b[0] != REPL_STORED_MAGIC)
        return REPL_STORED_EMAGIC;
    if (b[1] != REPL_STORED_FORMAT)
        return REPL_STORED_EFORMAT;
    if ((b[2] & ~REPL_STORED_F_TOMBSTONE) != 0)
        return REPL_STORED_EFLAGS;
    if (repl_version_decode(buf + REPL_STORED_VERSION_OFFSET, REPL_VERSION_TEXT_LEN, &v) < 0)
        return REPL_STORED_EVERSION;
    int tombstone = (b[2] & REPL_STORED_F_TOMBSTONE) != 0;
    size_t value_len = len - REPL_STORED_HEADER_LEN;
    if (tombstone && value_len > 0)
        return REPL_STORED_ETOMBSTONE;
    out->version = v;
    out->tombstone = tombstone;
    out->value = buf + REPL_STORED_HEADER_LEN;
    out->value_len = value_len;
    return REPL_STORED_OK;
}

const char *repl_stored_strerror(int err) {
    switch (err) {
    case REPL_STORED_OK: return "ok";
    case REPL_STORED_ESHORT: return "stored value shorter than its version header";
    case REPL_STORED_EMAGIC: return "stored value has no rcproxy version header";
    case REPL_STORED_EFORMAT: return "stored value has an unknown format version";
    case REPL_STORED_EFLAGS: return "stored value has unknown flag bits";
    case REPL_STORED_EVERSION: return "stored value has a malformed version";
    case REPL_STORED_ETOMBSTONE: return "tombstone with a value";
    case REPL_STORED_ESPACE: return "output buffer too small";
    case REPL_STORED_ETOOBIG: return "value too large";
    default: return "unknown error";
    }
}
