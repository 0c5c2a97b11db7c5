#!/usr/bin/env bash
# run.sh PORT [--rcproxy] -- run every real-client test against 127.0.0.1:PORT:
#   redis-py (Debian /usr/bin/python3 + python3-redis), ioredis (node), redis-cli,
#   redis-benchmark.
# Prints one "PASS name" / "FAIL name" line per client and finally "N passed, N failed".
# --rcproxy (or RCPROXY_IS_PROXY=1 in the environment, as tools/topology.py sets it)
# adds the checks of rcproxy's own surface (INFO rcproxy, refused commands).
# Each client's output goes to $CLIENT_LOG_DIR (default: a temp dir) and is shown on failure.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${1:-}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "usage: run.sh PORT [--rcproxy]" >&2; exit 2; }
FLAG=()
if [[ "${2:-}" == "--rcproxy" || "${RCPROXY_IS_PROXY:-0}" == 1 ]]; then FLAG=(--rcproxy); fi

LOGDIR="${CLIENT_LOG_DIR:-}"
if [[ -z "$LOGDIR" ]]; then
    LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/rcproxy-clients.XXXXXX")"
    trap 'rm -rf "$LOGDIR"' EXIT
fi
mkdir -p "$LOGDIR"

passed=0; failed=0
# run_client NAME CMD... : bounded run, PASS/FAIL line, log tail on failure
run_client() {
    local name="$1"; shift
    local log="$LOGDIR/$name.log" rc
    timeout 300 "$@" > "$log" 2>&1
    rc=$?
    if ((rc == 0)); then
        passed=$((passed + 1)); echo "PASS $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name (exit $rc$( ((rc == 124)) && echo ', timed out'))"
        grep -E '^FAIL' "$log" | sed 's/^/    /' | head -n 20
        if ! grep -qE '^FAIL' "$log"; then tail -n 15 "$log" | sed 's/^/    | /'; fi
    fi
}

ensure_node_modules() {
    [[ -d "$HERE/node_modules/ioredis" ]] && return 0
    (cd "$HERE" && timeout 300 npm install --no-audit --no-fund --loglevel=error) \
        > "$LOGDIR/npm-install.log" 2>&1
}

run_client redis-py /usr/bin/python3 "$HERE/redis_py_test.py" "$PORT" "${FLAG[@]}"
if ensure_node_modules; then
    run_client ioredis node "$HERE/ioredis_test.js" "$PORT" "${FLAG[@]}"
else
    failed=$((failed + 1)); echo "FAIL ioredis (npm install failed)"
    tail -n 10 "$LOGDIR/npm-install.log" | sed 's/^/    | /'
fi
run_client redis-cli bash "$HERE/cli_test.sh" "$PORT" "${FLAG[@]}"
run_client redis-benchmark bash "$HERE/benchmark_test.sh" "$PORT"

echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
