#!/usr/bin/env bash
# benchmark_test.sh PORT -- a short redis-benchmark run through the target: every test
# must report non-zero throughput and no error.  Not a performance measurement
# (that is tools/bench); this checks that redis-benchmark's traffic is served.
set -uo pipefail

PORT="${1:-}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "usage: benchmark_test.sh PORT" >&2; exit 2; }
TMP="$(mktemp -d "${TMPDIR:-/tmp}/rcproxy-bench.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
failed=0; total=0
ok()   { total=$((total + 1)); printf 'ok   %s\n' "$1"; }
fail() { total=$((total + 1)); failed=$((failed + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }

BENCH=(timeout 120 redis-benchmark -h 127.0.0.1 -p "$PORT" -n 20000 -c 20 --csv)

# check_csv FILE EXPECTED_TEST_NAMES... : each named test has rps > 0; no error text
check_csv() {
    local file="$1"; shift
    local name rps
    if grep -qiE 'error|unexpected' "$file"; then
        fail "$(basename "$file")" "$(grep -iE -m1 'error|unexpected' "$file")"
        return
    fi
    for name in "$@"; do
        rps="$(awk -F'","' -v t="\"$name" '$1 == t { print $2 }' "$file")"
        if [[ -n "$rps" ]] && awk -v r="$rps" 'BEGIN { exit !(r + 0 > 0) }'; then
            ok "$name ($rps rps)"
        else
            fail "$name" "no throughput line (rps='$rps')"
        fi
    done
}

"${BENCH[@]}" -t set,get,incr,lpush,mset > "$TMP/standard" 2>&1
rc=$?
((rc == 0)) || fail standard "redis-benchmark exited $rc"
check_csv "$TMP/standard" SET GET INCR LPUSH "MSET (10 keys)"

# MGET of 10 keys, populated first
timeout 10 redis-cli -h 127.0.0.1 -p "$PORT" MSET bm:k1 1 bm:k2 2 bm:k3 3 bm:k4 4 bm:k5 5 \
    bm:k6 6 bm:k7 7 bm:k8 8 bm:k9 9 bm:k10 10 > /dev/null 2>&1
MGET=(MGET bm:k1 bm:k2 bm:k3 bm:k4 bm:k5 bm:k6 bm:k7 bm:k8 bm:k9 bm:k10)
"${BENCH[@]}" "${MGET[@]}" > "$TMP/mget" 2>&1
rc=$?
((rc == 0)) || fail mget "redis-benchmark exited $rc"
check_csv "$TMP/mget" "${MGET[*]}"
timeout 10 redis-cli -h 127.0.0.1 -p "$PORT" DEL bm:k1 bm:k2 bm:k3 bm:k4 bm:k5 bm:k6 bm:k7 \
    bm:k8 bm:k9 bm:k10 key:__rand_int__ counter:__rand_int__ mylist > /dev/null 2>&1

echo "redis-benchmark: $total checks, $failed failing"
((failed == 0))
