#!/usr/bin/env bash
# test.sh -- rcproxy's whole test suite, the second README command.
#
#   1. tools/setup.sh asan: packages, build/ (release) and build-asan/ (ASan+UBSan);
#      then build-release/ (meson's release buildtype, -O3), compiled only
#   2. criterion unit tests        build-asan/tests/test_*
#   3. criterion integration tests build-asan/tests/integration/test_* (--jobs 2)
#   4. real clients (redis-py, ioredis, redis-cli, redis-benchmark) through the
#      release build/rcproxy in front of a leader + 2 replicas (tools/topology.py)
#   5. a summary; the very last line is "N passed, N failed" (criterion tests +
#      client checks; crashing counts as failed).  Exit status 0 only when
#      nothing failed and something ran.
#
# Options: --no-setup (only run ninja, no package check), --skip-criterion,
#          --skip-clients, --keep-logs.  Logs: a temp dir printed at the end.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

DO_SETUP=1; DO_CRITERION=1; DO_CLIENTS=1; KEEP_LOGS=0
for arg in "$@"; do
    case "$arg" in
        --no-setup) DO_SETUP=0 ;;
        --skip-criterion) DO_CRITERION=0 ;;
        --skip-clients) DO_CLIENTS=0 ;;
        --keep-logs) KEEP_LOGS=1 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "test.sh: unknown option '$arg'" >&2; exit 2 ;;
    esac
done

# time bounds (seconds); the whole suite stays well under 15 minutes on 2 cores
T_SETUP=900          # package install (first run) + both builds
T_UNIT=180           # per unit-test binary
T_INTEGRATION=420    # per integration-test binary
T_CLIENTS=420        # topology + all four clients

IN_CI=0; [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]] && IN_CI=1
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/rcproxy-test.XXXXXX")"
TAIL_LINES=40; ((IN_CI)) && TAIL_LINES=200

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# criterion 2.4.1's runner leaks one 48-byte block of its own at exit: not ours
printf 'leak:libcriterion.so\n' > "$LOGS/lsan.supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$LOGS/lsan.supp:print_suppressions=0}"

total_pass=0; total_fail=0
SUMMARY=()
start_all=$SECONDS

# record NAME PASSED FAILED NOTE : add a row to the summary and the totals
record() {
    total_pass=$((total_pass + $2)); total_fail=$((total_fail + $3))
    SUMMARY+=("$(printf '%-5s %-30s %4d passed %4d failed  %s' \
        "$( (($3)) && echo FAIL || echo ok)" "$1" "$2" "$3" "$4")")
}

# show_log FILE : the tail of a log after a failure
show_log() {
    echo "---- last $TAIL_LINES lines of $1"
    tail -n "$TAIL_LINES" "$1" | sed 's/^/    | /'
    echo "----"
}

section() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- 1. setup + build
section "setup and build"
if ((DO_SETUP)); then
    timeout "$T_SETUP" tools/setup.sh asan > "$LOGS/setup.log" 2>&1
    rc=$?
else
    { timeout "$T_SETUP" ninja -C build && timeout "$T_SETUP" ninja -C build-asan; } \
        > "$LOGS/setup.log" 2>&1
    rc=$?
fi
if ((rc == 0)); then
    echo "setup and build: ok"
else
    echo "setup and build: FAILED (exit $rc)"
    show_log "$LOGS/setup.log"
    record "setup/build" 0 1 "exit $rc, see $LOGS/setup.log"
fi

# -O3 (meson's release buildtype) warns about things -O2 does not see (maybe-uninitialized
# and friends); with -Werror a release build that does not compile is a defect
section "release build (-O3, compile only)"
if [[ -f build-release/build.ninja ]] || meson setup build-release --buildtype=release \
        > "$LOGS/release-build.log" 2>&1; then
    timeout "$T_SETUP" ninja -C build-release >> "$LOGS/release-build.log" 2>&1
    rc=$?
else
    rc=1
fi
if ((rc == 0)); then
    echo "release build: ok"
    record "build/release-O3" 1 0 "compiles with -Wall -Wextra -Werror -O3"
else
    echo "release build: FAILED (exit $rc)"
    show_log "$LOGS/release-build.log"
    record "build/release-O3" 0 1 "exit $rc, see $LOGS/release-build.log"
fi

# ---------------------------------------------------------------- 2+3. criterion
# expected test binaries: every executable meson knows under tests/ in build-asan
expected_tests() {
    meson introspect build-asan --targets 2>/dev/null | /usr/bin/python3 -c '
import json, sys
try:
    targets = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
for t in targets:
    if t.get("type") != "executable":
        continue
    for f in t.get("filename", []):
        if "/tests/" in f and f.rsplit("/", 1)[-1].startswith("test_"):
            print(f)
'
}

# run_criterion KIND BINARY TIMEOUT ARGS... : run one criterion binary, parse its synthesis
run_criterion() {
    local kind="$1" bin="$2" limit="$3"; shift 3
    local name log rc t0 line tested passing failing crashing fails note
    name="$kind/$(basename "$bin")"
    log="$LOGS/$kind-$(basename "$bin").log"
    if [[ ! -x "$bin" ]]; then
        echo "$name: MISSING ($bin)"
        record "$name" 0 1 "binary missing (build failed?)"
        return
    fi
    t0=$SECONDS
    timeout -k 10 "$limit" "$bin" "$@" > "$log" 2>&1
    rc=$?
    line="$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
            grep -oE 'Synthesis: Tested: [0-9]+ \| Passing: [0-9]+ \| Failing: [0-9]+ \| Crashing: [0-9]+' |
            tail -n 1)"
    if [[ -z "$line" ]]; then
        note="no synthesis line, exit $rc"; ((rc == 124)) && note="timed out after ${limit}s"
        echo "$name: FAILED ($note, $((SECONDS - t0))s)"
        show_log "$log"
        record "$name" 0 1 "$note"
        return
    fi
    read -r tested passing failing crashing < <(grep -oE '[0-9]+' <<<"$line" | tr '\n' ' ')
    fails=$((failing + crashing))
    note="tested $tested, crashing $crashing, $((SECONDS - t0))s"
    if ((rc != 0 && fails == 0)); then
        fails=1; note="$note; exit $rc with no failing test (sanitizer or leak report?)"
    fi
    if ((tested == 0)); then
        fails=$((fails + 1)); note="$note; ran no test"
    fi
    echo "$name: $passing passed, $fails failed ($note)"
    ((fails)) && show_log "$log"
    record "$name" "$passing" "$fails" "$note"
}

if ((DO_CRITERION)); then
    mapfile -t TESTS < <(expected_tests)
    # binaries on disk that meson did not list (stale build dir) are run too
    for f in build-asan/tests/test_* build-asan/tests/integration/test_*; do
        [[ -f "$f" && -x "$f" ]] || continue
        abs="$ROOT/$f"
        [[ " ${TESTS[*]:-} " == *" $abs "* ]] || TESTS+=("$abs")
    done
    if ((${#TESTS[@]} == 0)); then
        section "criterion tests"
        echo "no criterion test binaries found in build-asan/"
        record "criterion" 0 1 "no test binaries (build-asan missing?)"
    else
        section "criterion unit tests (build-asan)"
        for t in "${TESTS[@]}"; do
            [[ "$t" == */tests/integration/* ]] && continue
            run_criterion unit "$t" "$T_UNIT"
        done
        section "criterion integration tests (build-asan, --jobs 2; failover and quorum --jobs 1)"
        for t in "${TESTS[@]}"; do
            [[ "$t" == */tests/integration/* ]] || continue
            # Sentinel's timing (down-after-milliseconds 1000) is only meaningful
            # when two failover tests do not share the 2 cores
            jobs=2
            [[ "$t" == */test_failover || "$t" == */test_quorum ]] && jobs=1
            run_criterion integration "$t" "$T_INTEGRATION" --jobs "$jobs"
        done
    fi
fi

# ---------------------------------------------------------------- 4. real clients
if ((DO_CLIENTS)); then
    section "client libraries through build/rcproxy (leader + 2 replicas)"
    log="$LOGS/clients.log"
    if [[ ! -x build/rcproxy ]]; then
        echo "build/rcproxy missing: client tests not run"
        record "clients" 0 4 "build/rcproxy missing"
    else
        t0=$SECONDS
        CLIENT_LOG_DIR="$LOGS/clients" timeout -k 10 "$T_CLIENTS" \
            /usr/bin/python3 tools/topology.py --replicas 2 --rcproxy "$ROOT/build/rcproxy" \
            --keep -- bash tests/clients/run.sh '{port}' --rcproxy > "$log" 2>&1
        rc=$?
        cat "$log"
        line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)"
        if [[ -n "$line" ]]; then
            read -r p f < <(grep -oE '[0-9]+' <<<"$line" | tr '\n' ' ')
            note="$((SECONDS - t0))s"
            if ((rc != 0 && f == 0)); then f=1; note="$note; exit $rc"; fi
            record "clients/run.sh" "$p" "$f" "$note"
        else
            note="did not run (exit $rc)"; ((rc == 124)) && note="timed out after ${T_CLIENTS}s"
            record "clients/run.sh" 0 4 "$note"
        fi
        if ((rc != 0)); then
            scratch="$(grep -oE 'kept scratch dir [^ ]+' "$log" | tail -n 1 | cut -d' ' -f4)"
            if [[ -n "$scratch" && -f "$scratch/rcproxy.log" ]]; then show_log "$scratch/rcproxy.log"; fi
        fi
        # the scratch dir was kept only for the failure report above
        grep -oE 'kept scratch dir [^ ]+' "$log" | cut -d' ' -f4 | while read -r d; do
            [[ "$d" == */rcproxy-topo-* ]] && rm -rf "$d"
        done
    fi
fi

# ---------------------------------------------------------------- 5. summary
section "summary ($((SECONDS - start_all))s)"
for row in "${SUMMARY[@]}"; do echo "$row"; done
if ((KEEP_LOGS || total_fail)); then
    echo "logs: $LOGS"
else
    rm -rf "$LOGS"
fi
status=0
if ((total_fail > 0)); then status=1; fi
if ((total_pass == 0)); then echo "nothing ran"; status=1; fi
echo "$total_pass passed, $total_fail failed"
exit $status
