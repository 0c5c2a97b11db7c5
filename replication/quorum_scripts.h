/* quorum_scripts.h -- the server-side Lua of `mode quorum`: a versioned
 * compare-and-set on every Redis node, plus the contract of the hint streams.
 *
 * Redis 7.0 scripts, loaded with SCRIPT LOAD and run with EVALSHA (the
 * read-only ones also with EVALSHA_RO).  Every script declares the keys it
 * touches in KEYS and calls redis.call / redis.pcall on those keys only.
 *
 * ---------------------------------------------------------------------------
 * Stored format (one Redis string per client key, under the client's key
 * name): the layout of replication/quorum_version.h (repl_stored_encode /
 * repl_stored_decode), which these scripts must match byte for byte:
 *
 *     byte  0       magic    0xF5 (never in UTF-8 text)  (REPL_QUORUM_MAGIC)
 *     byte  1       format   0x01                        (REPL_QUORUM_FORMAT)
 *     byte  2       flags    0x00 live | 0x01 tombstone  (no other bits)
 *     bytes 3..34   version  32 lowercase hex chars      (REPL_QUORUM_VERSION_LEN)
 *     bytes 35..    value    the client's bytes, exactly (empty for a tombstone)
 *
 *   e.g. GET k -> "\xf5\x01\x000000018c2b3a4f5e0000000100000003hello"
 *
 * The expiry of the value is the Redis key's own TTL (PTTL), set in the same
 * SET as the blob.  A tombstone is the header alone with flags 0x01 and a
 * TTL of tombstone-ttl.  A plain GET + repl_stored_decode is a valid read
 * too (VGET only adds PTTL atomically).  Versions compare as strings of
 * equal width; the scripts compare them as four 8-hex-digit numbers because
 * Lua's `<` on strings uses strcoll() and redis-server calls
 * setlocale(LC_COLLATE, "").
 *
 * Cost, measured on redis-server 7.0.15 (jemalloc) with a 100-byte value:
 * MEMORY USAGE +48 bytes per key over a plain SET (184 -> 232 for a 16-byte
 * key name, with or without a TTL: the 35-byte header moves the value's SDS
 * into the next jemalloc size class); used_memory over 5000 keys +40..43
 * bytes per key.  A hash per key {v,f,d} would cost 424 bytes.  Reads: a
 * plain GET + header parse in C avoids the Lua cost (on a busy 2-core box,
 * 4 clients: GET ~36k/s, EVALSHA VGET ~17k/s; SET ~24k/s, VSET ~16k/s).
 *
 * A key that exists but does not hold this format (written around the proxy)
 * is never overwritten: every script answers
 *   -ERR rcproxy: key holds a value not written by rcproxy quorum mode
 * and a key of another type answers Redis's own -WRONGTYPE error.  Quorum
 * mode therefore versions string values only.
 *
 * ---------------------------------------------------------------------------
 * Arguments shared by the scripts
 *
 *   version  exactly 32 chars [0-9a-f]; anything else is an error.
 *   ttl      "0" or a positive decimal integer of at most 15 digits, no sign,
 *            no leading zero.  With mode PX it is relative ms, with PXAT an
 *            absolute Unix time in ms on the node's clock.  Hints and read
 *            repair should use PXAT (or PX of the PTTL just read) so that a
 *            late replay does not extend a value's life.
 *   mode     optional, case-insensitive, default PX.
 *
 * Errors from argument checks start with "ERR rcproxy: " and are answered
 * before anything is written.  A NOSCRIPT error means the node lost its
 * script cache (restart, SCRIPT FLUSH): SCRIPT LOAD again and retry.  The
 * write scripts carry a plain "#!lua" shebang, so under maxmemory with
 * noeviction Redis refuses them with -OOM before they run.
 *
 * Write replies are always a 3-element array  [code, version, prev]:
 *   code     1 applied | 0 stale: the stored version is newer, nothing done |
 *            2 same version already stored, nothing done (replay) |
 *            3 (VEXPIRE only) no live value to expire, nothing done
 *   version  the version stored after the call (nil when there is none)
 *   prev     the state before the call: 0 missing | 1 live | 2 tombstone
 * For W-of-N counting every code is an answer from the node; 0 and 3 tell
 * the proxy that the node has something newer / lacks the value.
 *
 * ---------------------------------------------------------------------------
 * VSET    KEYS[1]=key  ARGV: version value ttl [PX|PXAT|KEEPTTL]
 *   Stores F5 01 00 version value iff the key is missing or the stored version
 *   (live or tombstone) is older.  ttl "0": no expiry (as SET: an old TTL is
 *   removed), except mode KEEPTTL (ttl must be "0"), which keeps the TTL of a
 *   live value it replaces (none when it replaces a tombstone or nothing).
 *   One SET command, so value, version and TTL change atomically.
 *   NX/XX/GET and the like are decided by the proxy, not here.
 *
 * VDEL    KEYS[1]=key  ARGV: version tombstone_ttl [PX|PXAT]
 *   Stores the tombstone F5 01 01 version expiring after tombstone_ttl
 *   (must not be "0") iff the key is missing or older.  A tombstone is
 *   written over a missing key too: it is what rejects a late older write.
 *   prev (1 = a live value was there) is what DEL/UNLINK count.
 *
 * VEXPIRE KEYS[1]=key  ARGV: version ttl [PX|PXAT]
 *   Over a live value with an older version: rewrites the version in place
 *   (SETRANGE, the value bytes are not copied) and sets the TTL (ttl "0":
 *   PERSIST).  Code 3 when there is no live value (missing, or a tombstone
 *   older than version): the proxy may read-repair with VSET instead.  A
 *   PXAT in the past deletes the key, as PEXPIREAT does.
 *
 * VGET    KEYS[1]=key  no ARGV                 (flags=no-writes)
 *   nil when missing; else [version, flags, value, pttl]: flags the integer
 *   flags byte (0 live, 1 tombstone), value the exact bytes ("" for a
 *   tombstone), pttl as PTTL (-1 none).
 *
 * VHEAD   KEYS[1..n]  no ARGV                  (flags=no-writes)
 *   For digest reads and anti-entropy without moving values: an array of n
 *   elements, each nil (missing), [version, flags, pttl], or an error element
 *   for a key not in the format.  The caller bounds n (e.g. 512 per call).
 *
 * ---------------------------------------------------------------------------
 * Hints (sloppy quorum): plain stream commands suffice, no script.  The node
 * that holds a hint for owner "host:port" appends to the stream
 * REPL_QUORUM_HINT_PREFIX "host:port":
 *
 *   XADD rcproxy:hints:<owner> MAXLEN ~ <max> * op <VSET|VDEL|VEXPIRE>
 *        key <key> ver <version> ttl <ms> mode <PXAT|PX|KEEPTTL> [val <bytes>]
 *
 * (val only for VSET).  Hand-off, when the owner is back:
 *   XRANGE rcproxy:hints:<owner> - + COUNT <n>   on the holder
 *   EVALSHA <op> 1 <key> <ver> [<val>] <ttl> <mode>   on the owner
 *   FCALL rcp_hdel 1 rcproxy:hints:<owner> <id>... on the holder, after any
 *                                                 reply code from the owner
 * Replay is idempotent and, for VSET/VDEL, order-free (the scripts keep the
 * newest version), so a crash between EVALSHA and XDEL only replays a hint
 * twice.  A VEXPIRE that reaches an owner lacking the value answers 3 and is
 * left to read repair / anti-entropy.  Before replaying, drop hints too old
 * to be safe -- an old VSET replayed after the tombstone that superseded it
 * expired would bring the value back:
 *   XTRIM rcproxy:hints:<owner> MINID <now_ms - tombstone_ttl_ms>
 * Hints are as durable as the holder's persistence (appendonly yes).  The
 * "rcproxy:" key prefix is reserved: the proxy must refuse client keys that
 * start with it.  The same resurrection limit holds for values that expire or
 * are evicted: they leave no version behind.
 */
#ifndef REPL_QUORUM_SCRIPTS_H
#define REPL_QUORUM_SCRIPTS_H

/* Mirrors REPL_STORED_* of quorum_version.h (the unit test checks it). */
#define REPL_QUORUM_MAGIC 0xF5
#define REPL_QUORUM_FORMAT 0x01
#define REPL_QUORUM_VERSION_LEN 32
#define REPL_QUORUM_VERSION_OFFSET 3
#define REPL_QUORUM_HEADER_LEN 35 /* magic + format + flags + version */
#define REPL_QUORUM_F_TOMBSTONE 0x01
#define REPL_QUORUM_TOMBSTONE_TTL_MS_DEFAULT 86400000LL /* tombstone-ttl 1 day */
#define REPL_QUORUM_HINT_PREFIX "rcproxy:hints:"

/* Reply codes (element 0 of a write reply). */
#define REPL_QUORUM_STALE 0
#define REPL_QUORUM_APPLIED 1
#define REPL_QUORUM_SAME 2
#define REPL_QUORUM_NO_VALUE 3

/* States (element 2 of a write reply). */
#define REPL_QUORUM_PREV_MISSING 0
#define REPL_QUORUM_PREV_LIVE 1
#define REPL_QUORUM_PREV_TOMBSTONE 2

/* Shared by every script (after its shebang line).  head(k) returns the
 * state (0/1/2) and the stored version, or nil and an error table (a
 * tombstone that carries value bytes is foreign too, as for
 * repl_stored_decode). */
#define REPL_QUORUM_LUA_PRELUDE                                                                \
    "local PFX, HDR = '\\245\\1', 35\n"                                               \
    "local LIVE, TOMB = '\\0', '\\1'\n"                                      \
    "local SET_MODES = {'PX|PXAT|KEEPTTL', PX = 1, PXAT = 1, KEEPTTL = 1}\n"                   \
    "local TTL_MODES = {'PX|PXAT', PX = 1, PXAT = 1}\n"                                       \
    "local function err(m) return {err = 'ERR rcproxy: ' .. m} end\n"                          \
    "local function is_ver(v) return #v == 32 and v:find('^[0-9a-f]+$') ~= nil end\n"          \
    "local function is_ms(s)\n"                                                                \
    "  return s == '0' or (#s <= 15 and s:find('^[1-9][0-9]*$') ~= nil)\n"                     \
    "end\n"                                                                                    \
    "local function vcmp(a, b)\n"                                                              \
    "  if a == b then return 0 end\n"                                                          \
    "  for i = 1, 25, 8 do\n"                                                                  \
    "    local x, y = tonumber(a:sub(i, i + 7), 16), tonumber(b:sub(i, i + 7), 16)\n"          \
    "    if x ~= y then if x < y then return -1 end return 1 end\n"                            \
    "  end\n"                                                                                  \
    "  return 0\n"                                                                             \
    "end\n"                                                                                    \
    "local function head(k)\n"                                                                 \
    "  local h = redis.pcall('GETRANGE', k, 0, HDR - 1)\n"                                     \
    "  if type(h) == 'table' then return nil, h end\n"                                         \
    "  if h == '' and redis.call('EXISTS', k) == 0 then return 0, false end\n"                 \
    "  local f, v = h:sub(3, 3), h:sub(4, HDR)\n"                                              \
    "  if #h ~= HDR or h:sub(1, 2) ~= PFX or not is_ver(v) or (f ~= LIVE and f ~= TOMB) then\n" \
    "    return nil, err('key holds a value not written by rcproxy quorum mode')\n"            \
    "  end\n"                                                                                  \
    "  if f == LIVE then return 1, v end\n"                                                    \
    "  if redis.call('STRLEN', k) ~= HDR then\n"                                               \
    "    return nil, err('key holds a value not written by rcproxy quorum mode')\n"            \
    "  end\n"                                                                                  \
    "  return 2, v\n"                                                                          \
    "end\n"                                                                                    \
    "local function check_args(ttl, mode, modes)\n"                                            \
    "  if not is_ver(ARGV[1]) then return err('version must be 32 lowercase hex characters') end\n" \
    "  if not is_ms(ttl) then\n"                                                               \
    "    return err('ttl must be 0 or a positive integer of milliseconds (at most 15 digits)')\n" \
    "  end\n"                                                                                  \
    "  if not modes[mode] then return err('bad ttl mode (expected ' .. modes[1] .. ')') end\n" \
    "  return nil\n"                                                                           \
    "end\n"                                                                                    \
    "local function older(k, ver)\n"                                                           \
    "  local st, cur = head(k)\n"                                                              \
    "  if not st then return nil, cur end\n"                                                   \
    "  if st ~= 0 then\n"                                                                      \
    "    local c = vcmp(ver, cur)\n"                                                           \
    "    if c < 0 then return nil, {0, cur, st} end\n"                                         \
    "    if c == 0 then return nil, {2, cur, st} end\n"                                        \
    "  end\n"                                                                                  \
    "  return st, cur\n"                                                                       \
    "end\n"

#define REPL_QUORUM_BODY_VSET \
    "if #KEYS ~= 1 or #ARGV < 3 or #ARGV > 4 then\n"                                           \
    "  return err('VSET wants 1 key and version value ttl [PX|PXAT|KEEPTTL]')\n"               \
    "end\n"                                                                                    \
    "local k, ver, val, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]\n"                            \
    "local mode = string.upper(ARGV[4] or 'PX')\n"                                             \
    "local bad = check_args(ttl, mode, SET_MODES)\n"  \
    "if bad then return bad end\n"                                                             \
    "if mode == 'KEEPTTL' and ttl ~= '0' then return err('KEEPTTL takes ttl 0') end\n"         \
    "local st, cur = older(k, ver)\n"                                                          \
    "if not st then return cur end\n"                                                          \
    "local blob = PFX .. LIVE .. ver .. val\n"                                                 \
    "if ttl ~= '0' then redis.call('SET', k, blob, mode, ttl)\n"                               \
    "elseif mode == 'KEEPTTL' and st == 1 then redis.call('SET', k, blob, 'KEEPTTL')\n"        \
    "else redis.call('SET', k, blob) end\n"                                                    \
    "return {1, ver, st}\n"
#define REPL_QUORUM_LUA_VSET "#!lua\n" REPL_QUORUM_LUA_PRELUDE REPL_QUORUM_BODY_VSET

#define REPL_QUORUM_BODY_VDEL \
    "if #KEYS ~= 1 or #ARGV < 2 or #ARGV > 3 then\n"                                           \
    "  return err('VDEL wants 1 key and version tombstone_ttl [PX|PXAT]')\n"                   \
    "end\n"                                                                                    \
    "local k, ver, ttl = KEYS[1], ARGV[1], ARGV[2]\n"                                          \
    "local mode = string.upper(ARGV[3] or 'PX')\n"                                             \
    "local bad = check_args(ttl, mode, TTL_MODES)\n"                       \
    "if bad then return bad end\n"                                                             \
    "if ttl == '0' then return err('a tombstone needs a ttl > 0') end\n"                       \
    "local st, cur = older(k, ver)\n"                                                          \
    "if not st then return cur end\n"                                                          \
    "redis.call('SET', k, PFX .. TOMB .. ver, mode, ttl)\n"                                    \
    "return {1, ver, st}\n"
#define REPL_QUORUM_LUA_VDEL "#!lua\n" REPL_QUORUM_LUA_PRELUDE REPL_QUORUM_BODY_VDEL

#define REPL_QUORUM_BODY_VEXPIRE \
    "if #KEYS ~= 1 or #ARGV < 2 or #ARGV > 3 then\n"                                           \
    "  return err('VEXPIRE wants 1 key and version ttl [PX|PXAT]')\n"                          \
    "end\n"                                                                                    \
    "local k, ver, ttl = KEYS[1], ARGV[1], ARGV[2]\n"                                          \
    "local mode = string.upper(ARGV[3] or 'PX')\n"                                             \
    "local bad = check_args(ttl, mode, TTL_MODES)\n"                       \
    "if bad then return bad end\n"                                                             \
    "local st, cur = older(k, ver)\n"                                                          \
    "if not st then return cur end\n"                                                          \
    "if st ~= 1 then return {3, cur, st} end\n"                                                \
    "redis.call('SETRANGE', k, 3, ver)\n"                                                      \
    "if ttl == '0' then redis.call('PERSIST', k)\n"                                            \
    "elseif mode == 'PX' then redis.call('PEXPIRE', k, ttl)\n"                                 \
    "else redis.call('PEXPIREAT', k, ttl) end\n"                                               \
    "return {1, ver, st}\n"
#define REPL_QUORUM_LUA_VEXPIRE "#!lua\n" REPL_QUORUM_LUA_PRELUDE REPL_QUORUM_BODY_VEXPIRE

#define REPL_QUORUM_BODY_VGET \
    "if #KEYS ~= 1 or #ARGV ~= 0 then return err('VGET wants 1 key and no arguments') end\n"   \
    "local st, cur = head(KEYS[1])\n"                                                          \
    "if not st then return cur end\n"                                                          \
    "if st == 0 then return false end\n"                                                       \
    "local val = ''\n"                                                                         \
    "if st == 1 then val = redis.call('GETRANGE', KEYS[1], HDR, -1) end\n"                     \
    "return {cur, st - 1, val, redis.call('PTTL', KEYS[1])}\n"
#define REPL_QUORUM_LUA_VGET "#!lua flags=no-writes\n" REPL_QUORUM_LUA_PRELUDE REPL_QUORUM_BODY_VGET

#define REPL_QUORUM_BODY_VHEAD \
    "if #KEYS < 1 or #ARGV ~= 0 then return err('VHEAD wants 1 or more keys and no arguments') end\n" \
    "local out = {}\n"                                                                         \
    "for i, k in ipairs(KEYS) do\n"                                                            \
    "  local st, cur = head(k)\n"                                                              \
    "  if not st then out[i] = cur\n"                                                          \
    "  elseif st == 0 then out[i] = false\n"                                                   \
    "  else out[i] = {cur, st - 1, redis.call('PTTL', k)} end\n"                               \
    "end\n"                                                                                    \
    "return out\n"
#define REPL_QUORUM_LUA_VHEAD "#!lua flags=no-writes\n" REPL_QUORUM_LUA_PRELUDE REPL_QUORUM_BODY_VHEAD

#define REPL_QUORUM_BODY_VDROP                                                                 \
    "if #KEYS ~= 1 or #ARGV ~= 1 then return err('VDROP wants 1 key and version') end\n"       \
    "if not is_ver(ARGV[1]) then return err('version must be 32 lowercase hex characters') end\n" \
    "local st, cur = head(KEYS[1])\n"                                                          \
    "if not st then return cur end\n"                                                          \
    "if st == 0 or vcmp(cur, ARGV[1]) > 0 then return 0 end\n"                                 \
    "redis.call('DEL', KEYS[1])\n"                                                             \
    "return 1\n"
#define REPL_QUORUM_LUA_VDROP "#!lua\n" REPL_QUORUM_LUA_PRELUDE REPL_QUORUM_BODY_VDROP

/* HDEL  KEYS[1]=hint stream  ARGV: entry ids (may be none)
 *   XDELs the entries and deletes the stream once it is empty, in one step,
 *   so a hint XADDed meanwhile by another rcproxy is never lost with it.
 *   Returns the number of entries deleted. */
#define REPL_QUORUM_BODY_HDEL                                                                  \
    "if #KEYS ~= 1 then return err('HDEL wants 1 stream and entry ids') end\n"                \
    "local n = 0\n"                                                                           \
    "if #ARGV > 0 then n = redis.call('XDEL', KEYS[1], unpack(ARGV)) end\n"                   \
    "if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('XLEN', KEYS[1]) == 0 then\n"       \
    "  redis.call('DEL', KEYS[1])\n"                                                          \
    "end\n"                                                                                   \
    "return n\n"
#define REPL_QUORUM_LUA_HDEL "#!lua\n" REPL_QUORUM_LUA_PRELUDE REPL_QUORUM_BODY_HDEL

/* All scripts, for loading every one of them on each new backend link. */
typedef enum {
    REPL_QUORUM_VSET = 0,
    REPL_QUORUM_VDEL,
    REPL_QUORUM_VEXPIRE,
    REPL_QUORUM_VGET,
    REPL_QUORUM_VHEAD,
    REPL_QUORUM_VDROP,
    REPL_QUORUM_HDEL,
    REPL_QUORUM_NSCRIPTS
} repl_quorum_script;

static const char *const repl_quorum_script_name[REPL_QUORUM_NSCRIPTS] __attribute__((unused)) = {
    "VSET", "VDEL", "VEXPIRE", "VGET", "VHEAD", "VDROP", "HDEL",
};

static const char *const repl_quorum_script_src[REPL_QUORUM_NSCRIPTS] __attribute__((unused)) = {
    REPL_QUORUM_LUA_VSET, REPL_QUORUM_LUA_VDEL, REPL_QUORUM_LUA_VEXPIRE,
    REPL_QUORUM_LUA_VGET, REPL_QUORUM_LUA_VHEAD, REPL_QUORUM_LUA_VDROP, REPL_QUORUM_LUA_HDEL,
};

/* ---------------------------------------------------------------------------
 * The same scripts as one Redis 7 function library, which is what rcproxy
 * uses: loaded with FUNCTION LOAD REPLACE as the first command of every link
 * to a node (after AUTH), called by name, so no SHA1 has to be known and a
 * restarted node gets the library back on the reconnect:
 *
 *   FCALL rcp_vset 1 <key> <version> <value> <ttl> [PX|PXAT|KEEPTTL]
 *   FCALL rcp_vdel 1 <key> <version> <tombstone_ttl> [PX|PXAT]
 *   FCALL rcp_vexpire 1 <key> <version> <ttl> [PX|PXAT]
 *   FCALL_RO rcp_vget 1 <key>
 *   FCALL_RO rcp_vhead <n> <key>...
 *   FCALL rcp_vdrop 1 <key> <version>   delete the key if its version <= version
 *                                       (a stand-in's copy after its hint is handed off)
 *   FCALL rcp_hdel 1 <stream> <id>...   XDEL hint entries, DEL the stream once empty
 *
 * Arguments and replies are those of the scripts above (the callback's
 * parameters are named KEYS and ARGV so the bodies are shared). */
#define REPL_QUORUM_LIBRARY_NAME "rcproxy_quorum_1"
/* The helpers of the prelude are defined once, when the library loads; each
 * callback only sets the KEYS/ARGV upvalues they read (Redis runs one call
 * at a time) and runs its body: no closures are built per call. */
#define REPL_QUORUM_FUNCTION(name, fn, flags)                                                  \
    "redis.register_function{function_name='" name "', callback=function(k, a)\n"             \
    "  KEYS, ARGV = k, a\n  return " fn "()\nend" flags "}\n"
#define REPL_QUORUM_LIBRARY                                                                    \
    "#!lua name=" REPL_QUORUM_LIBRARY_NAME "\n"                                                \
    "local KEYS, ARGV\n" REPL_QUORUM_LUA_PRELUDE                                               \
    "local function vset()\n" REPL_QUORUM_BODY_VSET "end\n"                                   \
    "local function vdel()\n" REPL_QUORUM_BODY_VDEL "end\n"                                   \
    "local function vexpire()\n" REPL_QUORUM_BODY_VEXPIRE "end\n"                             \
    "local function vget()\n" REPL_QUORUM_BODY_VGET "end\n"                                   \
    "local function vhead()\n" REPL_QUORUM_BODY_VHEAD "end\n"                                 \
    "local function vdrop()\n" REPL_QUORUM_BODY_VDROP "end\n"                                 \
    "local function hdel()\n" REPL_QUORUM_BODY_HDEL "end\n"                                   \
    REPL_QUORUM_FUNCTION("rcp_vset", "vset", "")                                               \
    REPL_QUORUM_FUNCTION("rcp_vdel", "vdel", "")                                               \
    REPL_QUORUM_FUNCTION("rcp_vexpire", "vexpire", "")                                         \
    REPL_QUORUM_FUNCTION("rcp_vget", "vget", ", flags={'no-writes'}")                          \
    REPL_QUORUM_FUNCTION("rcp_vhead", "vhead", ", flags={'no-writes'}")                        \
    REPL_QUORUM_FUNCTION("rcp_vdrop", "vdrop", "")                                             \
    REPL_QUORUM_FUNCTION("rcp_hdel", "hdel", "")

#endif
