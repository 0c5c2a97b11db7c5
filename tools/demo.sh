#!/usr/bin/env bash
# demo.sh -- install what is missing, build, and run a Redis leader + 2 replicas with
# rcproxy in front on 127.0.0.1:6380, in the foreground.  Ctrl-C stops everything.
#
# Ports: leader 6379, replicas 6390 and 6391, rcproxy 6380 -- each replaced by a free
# port when busy (the banner shows the ones in use).  Data lives in a scratch dir that
# is removed at exit.  Extra arguments go to tools/topology.py (e.g. --replicas 1,
# --proxy-arg=--loglevel --proxy-arg=verbose).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

tools/setup.sh

read -r -d '' BANNER <<'TEXT' || true

rcproxy is running on 127.0.0.1:{port}
  (leader on 127.0.0.1:{leader}, replicas on ports {replicas})

Connect with:   redis-cli -p {port}

Try:
  redis-cli -p {port} SET greeting hello     # a write: goes to the leader
  redis-cli -p {port} GET greeting           # a read: served by an in-sync replica
  redis-cli -p {port} INFO rcproxy           # backends, roles, offsets, read rotation
  redis-cli -p {port} CLIENT SETNAME me      # answered by the proxy itself
  redis-cli -p {port} DEBUG SLEEP 0          # refused: not supported through rcproxy
  redis-benchmark -p {port} -q -n 20000 -t set,get

Ctrl-C stops everything (rcproxy, leader, replicas) and removes the data.
rcproxy's log follows.
TEXT

exec /usr/bin/python3 tools/topology.py --replicas 2 \
    --leader-port 6379 --replica-port 6390 --replica-port 6391 --proxy-port 6380 --prefer \
    --proxy-output --message "$BANNER" "$@"
