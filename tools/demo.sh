#!/usr/bin/env bash
# demo.sh -- install what is missing, build, and run a Redis leader + 2 replicas with
# rcproxy in front on 127.0.0.1:6380, in the foreground.  Ctrl-C stops everything.
#
#   tools/demo.sh              rcproxy with a fixed leader and replicas
#   tools/demo.sh --sentinel   the same plus 3 Redis Sentinels (ports 26379-26381)
#                              monitoring the leader as "mymaster"; rcproxy follows
#                              them, and the banner shows how to try a failover
#
# Ports: leader 6379, replicas 6390 and 6391, rcproxy 6380 -- each replaced by a free
# port when busy (the banner shows the ones in use).  Data lives in a scratch dir that
# is removed at exit.  Other arguments go to tools/topology.py (e.g. --replicas 1,
# --proxy-arg=--loglevel --proxy-arg=verbose).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SENTINEL=0
PASS=()
for arg in "$@"; do
    case "$arg" in
        --sentinel) SENTINEL=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) PASS+=("$arg") ;;
    esac
done

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
TEXT

read -r -d '' SENTINEL_BANNER <<'TEXT' || true
Redis Sentinel: sentinels on ports {sentinels} watch the leader as "{master}";
rcproxy asks them where the leader is and follows their failovers.

Try a failover (from another terminal):
  who leads now:           redis-cli -p {port} INFO rcproxy | grep role=leader
  stop the leader:         kill -9 {leader_pid}      (the leader's pid)
    or make it hang 30 s:  redis-cli -p {leader} DEBUG SLEEP 30
                           (sent to the leader itself: rcproxy refuses DEBUG)
    or freeze it:          kill -STOP {leader_pid}   (and later: kill -CONT {leader_pid})
  a few seconds later:     redis-cli -p {port} INFO rcproxy | grep role=leader
                           shows a former replica as the leader, and
  writes work again:       redis-cli -p {port} SET k v
  what Sentinel says:      redis-cli -p {sentinel} SENTINEL GET-MASTER-ADDR-BY-NAME {master}
When the old leader wakes up (DEBUG SLEEP over, or kill -CONT), Sentinel makes it a
replica of the new leader and INFO rcproxy lists it again (in_rotation=yes once it
has caught up).
TEXT

read -r -d '' FOOTER <<'TEXT' || true

Ctrl-C stops everything (rcproxy, leader, replicas__SENTINELS__) and removes the data.
rcproxy's log follows.
TEXT

ARGS=(--replicas 2 --leader-port 6379 --replica-port 6390 --replica-port 6391
      --proxy-port 6380 --prefer --proxy-output)
if ((SENTINEL)); then
    ARGS+=(--sentinels 3 --sentinel-port 26379 --sentinel-port 26380 --sentinel-port 26381)
    BANNER="$BANNER"$'\n\n'"$SENTINEL_BANNER"
    FOOTER="${FOOTER/__SENTINELS__/, sentinels}"
else
    FOOTER="${FOOTER/__SENTINELS__/}"
fi

exec /usr/bin/python3 tools/topology.py "${ARGS[@]}" --message "$BANNER"$'\n\n'"$FOOTER" \
    ${PASS[@]+"${PASS[@]}"}
