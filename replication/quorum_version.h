/* quorum_version.h -- mode quorum versions: a hybrid logical clock (HLC),
 * the text form of its timestamps, and the stored format that puts a version
 * in front of every value.  Pure computation: no I/O, no clock reads (the
 * caller passes the wall clock in), no allocation.
 *
 * A version is (ms, counter, node): wall-clock milliseconds, a logical
 * counter that orders events within one millisecond (or while the wall
 * clock stands behind the clock's last timestamp), and the id of the rcproxy
 * instance that made it, which breaks ties so that two sidecars never make
 * equal versions.  Versions order lexicographically on (ms, counter, node);
 * the newest wins (last-writer-wins).
 *
 * The clock rules (Kulkarni et al., "Logical Physical Clocks", 2014):
 *   - local event (a write):   ms = max(wall, last.ms); counter = last.counter+1
 *     when ms did not advance, else 0.  So versions made by one rcproxy
 *     strictly increase even when the wall clock steps back.
 *   - observe (a version read from a replica): the clock moves past it, so
 *     anything this rcproxy writes afterwards is newer than what it saw;
 *     causally related writes through rcproxies never invert.
 * A remote version more than max_skew_ms ahead of the local wall clock is
 * refused (not observed), so one host with a wild clock cannot drag every
 * clock far into the future.
 *
 * Stored value layout (REPL_STORED_HEADER_LEN = 35 bytes, then the value):
 *
 *   +------+--------+-------+----------------------------------+---------
 *   | 0xF5 | format | flags | version text: 32 lowercase hex    | value...
 *   +------+--------+-------+----------------------------------+---------
 *     0      1        2       3 .. 34                             35 ..
 *
 *   0xF5 never occurs in UTF-8 text, so a plain string SET directly on the
 *   node is not mistaken for a versioned value; format is 1; flags bit 0
 *   marks a tombstone (a deleted key, whose value part must be empty), other
 *   bits must be 0.  The version text is 16 hex digits of ms, 8 of counter,
 *   8 of node: comparing two texts (or bytes 3..34 of two stored values) with
 *   memcmp orders them exactly as repl_version_cmp.  (In Lua on a Redis node
 *   `<` on strings goes through strcoll(), so scripts compare the hex fields
 *   as numbers instead; see quorum_scripts.h.) */
#ifndef REPL_QUORUM_VERSION_H
#define REPL_QUORUM_VERSION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t ms;       /* wall-clock milliseconds since the epoch */
    uint32_t counter;  /* logical counter within ms */
    uint32_t node;     /* rcproxy instance id: the tie-break */
} repl_version;

#define REPL_HLC_DEFAULT_MAX_SKEW_MS 60000 /* observe refuses versions further ahead */

typedef struct {
    repl_version last;     /* the newest timestamp made or observed */
    uint32_t node;         /* this instance's id, stamped on every version */
    uint64_t max_skew_ms;  /* see repl_hlc_observe */
} repl_hlc;

/* A clock for instance node_id that has seen nothing (last = 0.0.node_id)
 * and refuses remote versions more than REPL_HLC_DEFAULT_MAX_SKEW_MS ahead
 * (change hlc->max_skew_ms to tune). */
void repl_hlc_init(repl_hlc *hlc, uint32_t node_id);

/* A new version for a local write at wall-clock time wall_ms: strictly
 * greater than every version this clock made or observed before. */
repl_version repl_hlc_now(repl_hlc *hlc, uint64_t wall_ms);

/* The receive rule: move the clock past remote (read from a replica) at
 * wall-clock time wall_ms, so every later repl_hlc_now is greater than
 * remote.  Returns 0, or -1 with the clock unchanged when remote.ms is more
 * than hlc->max_skew_ms ahead of wall_ms (the caller may still compare with
 * remote; only causality through this clock is not guaranteed for it). */
int repl_hlc_observe(repl_hlc *hlc, const repl_version *remote, uint64_t wall_ms);

/* <0, 0, >0 as a is older than, equal to, newer than b. */
int repl_version_cmp(const repl_version *a, const repl_version *b);

/* ------------------------------------------------------------------------ */
/* text form                                                                 */

#define REPL_VERSION_TEXT_LEN 32

/* Write v as exactly REPL_VERSION_TEXT_LEN lowercase hex digits into out (no
 * NUL is written). */
void repl_version_encode(const repl_version *v, char *out);

/* Parse exactly REPL_VERSION_TEXT_LEN lowercase hex digits.  Returns 0, or
 * -1 (out untouched) for any other length or any other byte, uppercase hex
 * included: each version has one text form, so texts compare as versions. */
int repl_version_decode(const char *s, size_t len, repl_version *out);

/* ------------------------------------------------------------------------ */
/* stored format                                                             */

#define REPL_STORED_MAGIC 0xF5
#define REPL_STORED_FORMAT 1
#define REPL_STORED_F_TOMBSTONE 0x01
#define REPL_STORED_HEADER_LEN (3 + REPL_VERSION_TEXT_LEN)
#define REPL_STORED_VERSION_OFFSET 3
/* Redis's default proto-max-bulk-len (512 MB) less the header. */
#define REPL_STORED_MAX_VALUE ((size_t)512 * 1024 * 1024 - REPL_STORED_HEADER_LEN)

enum {
    REPL_STORED_OK = 0,
    REPL_STORED_ESHORT = -1,     /* shorter than the header */
    REPL_STORED_EMAGIC = -2,     /* no magic byte: not a value written through rcproxy */
    REPL_STORED_EFORMAT = -3,    /* unknown format version */
    REPL_STORED_EFLAGS = -4,     /* unknown flag bits */
    REPL_STORED_EVERSION = -5,   /* version text is not 32 lowercase hex digits */
    REPL_STORED_ETOMBSTONE = -6, /* a tombstone that carries a value */
    REPL_STORED_ESPACE = -7,     /* encode: output buffer too small */
    REPL_STORED_ETOOBIG = -8,    /* encode: value above REPL_STORED_MAX_VALUE */
};

/* A decoded stored value; value points into the decoded buffer. */
typedef struct {
    repl_version version;
    int tombstone;
    const char *value;
    size_t value_len;
} repl_stored_view;

/* Write the REPL_STORED_HEADER_LEN-byte header for v into out (for sending
 * header and value as two pieces without copying the value). */
void repl_stored_header(const repl_version *v, int tombstone, char *out);

/* Write header + value into out[0..cap).  tombstone must come with
 * value_len 0 (value may then be NULL).  Returns REPL_STORED_OK with
 * *out_len set (= REPL_STORED_HEADER_LEN + value_len), or ETOMBSTONE,
 * ETOOBIG, ESPACE with nothing written. */
int repl_stored_encode(const repl_version *v, int tombstone, const char *value, size_t value_len,
                       char *out, size_t cap, size_t *out_len);

/* Parse a stored value buf[0..len).  Returns REPL_STORED_OK with *out
 * filled (out->value points into buf), or a negative REPL_STORED_E* code
 * with *out untouched.  Never reads outside buf. */
int repl_stored_decode(const char *buf, size_t len, repl_stored_view *out);

/* A static message for a REPL_STORED_* code. */
const char *repl_stored_strerror(int err);

#endif
