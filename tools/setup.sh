#!/usr/bin/env bash
# setup.sh -- install what rcproxy needs (Debian packages) and build it.
#
#   tools/setup.sh          install missing packages, build build/ (release)
#   tools/setup.sh asan     the same, plus build-asan/ (ASan + UBSan, no jemalloc)
#
# Idempotent: only missing packages are installed (apt-get update only then),
# an existing build dir is reused.  No Redis service is started by the install
# (a policy-rc.d that refuses service starts is in place during apt-get).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WANT_ASAN=0
for arg in "$@"; do
    case "$arg" in
        asan) WANT_ASAN=1 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument '$arg' (expected: asan)" >&2; exit 2 ;;
    esac
done

say() { echo "setup: $*"; }

PACKAGES=(build-essential pkg-config meson ninja-build libhiredis-dev libev-dev
          libjemalloc-dev libcriterion-dev redis-server redis-tools redis-sentinel
          nutcracker python3 python3-redis)
# node/npm from Debian only when none is on PATH already
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm  >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    say "installing: ${missing[*]}"
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo)
        else
            echo "setup: missing packages (${missing[*]}) and not root, and sudo is not" \
                 "available: install them as root, then run this again" >&2
            exit 1
        fi
    fi
    # keep the packages' init scripts from starting redis/sentinel/nutcracker services
    POLICY=/usr/sbin/policy-rc.d
    placed_policy=0
    if [[ ! -e "$POLICY" ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
        "${SUDO[@]}" chmod 755 "$POLICY"
        placed_policy=1
    fi
    cleanup_policy() { if ((placed_policy)); then "${SUDO[@]}" rm -f "$POLICY"; fi; }
    trap cleanup_policy EXIT
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
    cleanup_policy
    placed_policy=0
    trap - EXIT
else
    say "all packages present"
fi

# build dirs: set up when missing (or broken), then build
setup_dir() {  # setup_dir DIR [meson options...]
    local dir="$1"; shift
    if [[ -f "$dir/meson-private/coredata.dat" ]]; then
        # configured: ninja regenerates by itself; only a lost build.ninja needs help
        [[ -f "$dir/build.ninja" ]] || meson setup --reconfigure "$dir" "$@"
        # options that differ from the wanted ones (-Dname=value) are changed
        local differ
        differ="$(meson introspect "$dir" --buildoptions 2>/dev/null | /usr/bin/python3 -c '
import json, sys
have = {o["name"]: o["value"] for o in json.load(sys.stdin)}
def norm(v):
    return ("true" if v else "false") if isinstance(v, bool) else str(v)
for arg in sys.argv[1:]:
    name, _, want = arg[2:].partition("=")
    if name in have and norm(have[name]) != want:
        print(arg)
' "$@" || true)"
        if [[ -n "$differ" ]]; then
            say "changing options of $dir: $differ"
            # shellcheck disable=SC2086
            meson configure "$dir" $differ
        fi
    elif [[ -d "$dir/meson-private" ]]; then
        meson setup --wipe "$dir" "$@"       # a broken, half-made build dir
    else
        meson setup "$dir" "$@"
    fi
}

setup_dir build
say "building build/"
ninja -C build

if ((WANT_ASAN)); then
    setup_dir build-asan -Db_sanitize=address,undefined -Djemalloc=false -Db_lundef=false
    say "building build-asan/"
    ninja -C build-asan
fi
say "done"
