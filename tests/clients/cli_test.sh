#!/usr/bin/env bash
# cli_test.sh PORT [--rcproxy] -- redis-cli through the target: PING, --pipe of 100,000
# SETs into db 7 (db 7 is flushed first), DBSIZE and GET spot checks (retried for
# replication lag), and with --rcproxy: INFO rcproxy and a refused command.
# Prints "ok NAME" / "FAIL NAME: why"; exits 1 if any check failed.
set -uo pipefail

PORT="${1:-}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "usage: cli_test.sh PORT [--rcproxy]" >&2; exit 2; }
IS_RCPROXY=0; [[ "${2:-}" == "--rcproxy" ]] && IS_RCPROXY=1
N=100000
DB=7
CLI=(timeout 10 redis-cli -h 127.0.0.1 -p "$PORT")
TMP="$(mktemp -d "${TMPDIR:-/tmp}/rcproxy-cli.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
failed=0; total=0

ok()   { total=$((total + 1)); printf 'ok   %s\n' "$1"; }
fail() { total=$((total + 1)); failed=$((failed + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }

# eventually EXPECTED CMD... : run CMD until its output is EXPECTED (5 s bound); prints the last output
eventually() {
    local want="$1"; shift
    local got="" i deadline=$((SECONDS + 6))
    for ((i = 0; i < 250 && SECONDS < deadline; i++)); do
        got="$("$@" 2>&1)"
        [[ "$got" == "$want" ]] && { printf '%s' "$got"; return 0; }
        sleep 0.02
    done
    printf '%s' "$got"; return 1
}

# 1. plain PINGs, each on a new connection
pings=""
for i in 1 2 3; do pings+="$("${CLI[@]}" PING 2>&1) "; done
if [[ "$pings" == "PONG PONG PONG " ]]; then ok ping; else fail ping "got '$pings'"; fi

got="$("${CLI[@]}" ECHO "hello cli" 2>&1)"
if [[ "$got" == "hello cli" ]]; then ok echo; else fail echo "got '$got'"; fi

# 2. --pipe mass insertion
got="$("${CLI[@]}" -n "$DB" FLUSHDB 2>&1)"
[[ "$got" == "OK" ]] || fail flushdb "got '$got'"
awk -v n="$N" 'BEGIN {
    for (i = 0; i < n; i++) {
        k = sprintf("cli:pipe:%06d", i); v = sprintf("value-%d", i)
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
    }
}' > "$TMP/cmds"
out="$(timeout 120 redis-cli -h 127.0.0.1 -p "$PORT" -n "$DB" --pipe < "$TMP/cmds" 2>&1)"
if grep -q "errors: 0, replies: $N" <<<"$out"; then
    ok "pipe_${N}_sets"
else
    fail "pipe_${N}_sets" "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi

# 3. DBSIZE and GET spot checks (bounded retry: a replica may still be catching up)
if got="$(eventually "$N" "${CLI[@]}" -n "$DB" DBSIZE)"; then ok dbsize; else fail dbsize "expected $N, got '$got'"; fi
spot_ok=1
for i in 0 1 4242 54321 99999; do
    key="$(printf 'cli:pipe:%06d' "$i")"
    got="$(eventually "value-$i" "${CLI[@]}" -n "$DB" GET "$key")" ||
        { spot_ok=0; fail get_spot_checks "GET $key: got '$got'"; break; }
done
((spot_ok)) && ok get_spot_checks
got="$("${CLI[@]}" GET cli:pipe:000000 2>&1)"
if [[ -z "$got" ]]; then ok db0_untouched; else fail db0_untouched "db 0 has '$got'"; fi
"${CLI[@]}" -n "$DB" FLUSHDB >/dev/null 2>&1

# 4. rcproxy's own surface
if ((IS_RCPROXY)); then
    info="$("${CLI[@]}" INFO rcproxy 2>&1)"
    if grep -q '^rcproxy_version:' <<<"$info" && grep -q '^mode:leader' <<<"$info" &&
       grep -q '^backend_count:' <<<"$info"; then
        ok info_rcproxy
    else
        fail info_rcproxy "$(head -n 3 <<<"$info" | tr '\r\n' '  ')"
    fi
    got="$("${CLI[@]}" DEBUG SLEEP 0 2>&1)"
    if grep -q rcproxy <<<"$got" && grep -q "not supported" <<<"$got"; then
        ok debug_refused
    else
        fail debug_refused "got '$got'"
    fi
fi

echo "redis-cli: $total checks, $failed failing"
((failed == 0))
