#!/usr/bin/env bash
# demo.sh -- install what is missing, build, and run a Redis leader + 2 replicas with
# rcproxy in front on 127.0.0.1:6380, in the foreground.  Ctrl-C stops everything.
#
#   tools/demo.sh              rcproxy with a fixed leader and replicas
#   tools/demo.sh --sentinel   the same plus 3 Redis Sentinels (ports 26379-26381)
#                              monitoring the leader as "mymaster"; rcproxy follows
#                              them, and the banner shows how to try a failover
#   tools/demo.sh --quorum     rcproxy in mode quorum in front of 3 independent Redis
#                              nodes (ports 7001-7003, appendonly yes, no replication);
#                              the banner shows how to lose and regain the quorum
#   --no-setup                 skip tools/setup.sh (no install, no build: use the
#                              existing build/rcproxy as it is)
#
# Ports: leader 6379, replicas 6390 and 6391, rcproxy 6380 -- each replaced by a free
# port when busy (the banner shows the ones in use).  Data lives in a scratch dir that
# is removed at exit.  Other arguments go to tools/topology.py (e.g. --replicas 1,
# --proxy-arg=--loglevel --proxy-arg=verbose).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SENTINEL=0
QUORUM=0
SETUP=1
PASS=()
for arg in "$@"; do
    case "$arg" in
        --sentinel) SENTINEL=1 ;;
        --quorum) QUORUM=1 ;;
        --no-setup) SETUP=0 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) PASS+=("$arg") ;;
    esac
done
if ((SENTINEL && QUORUM)); then
    echo "demo.sh: --sentinel and --quorum exclude each other (mode quorum has no leader" \
         "to fail over)" >&2
    exit 2
fi

if ((SETUP)); then
    tools/setup.sh
fi

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

read -r -d '' QUORUM_BANNER <<'TEXT' || true

rcproxy (mode quorum) is running on 127.0.0.1:{port}
  in front of 3 independent Redis nodes on ports {nodes} (no Redis replication
  between them; each with appendonly yes).  Every key is kept on N=3 nodes, a write
  is acknowledged by W=2 of them, a read asks R=2 and the newest version wins.

Connect with:   redis-cli -p {port}

Try:
  redis-cli -p {port} SET k v                  # a versioned write, sent to all 3 nodes
  redis-cli -p {port} GET k                    # a quorum read: "v"
  redis-cli -p {node1} GET k                    # the stored format on a node: "\xf5\x01",
                                             #   flags, 32 hex digits of version, then v
  redis-cli -p {port} INFO rcproxy             # mode:quorum, quorum_*, hints_*, anti_entropy_*

Lose a node, then the quorum (from another terminal):
  redis-cli -p {node1} SHUTDOWN NOSAVE          # one node down: 2 of 3 are left, so
  redis-cli -p {port} SET k v2                 #   writes still work: OK
  redis-cli -p {port} GET k                    #   and reads: "v2"
  redis-cli -p {node2} SHUTDOWN NOSAVE          # two down: 1 of 3 is left, so
  redis-cli -p {port} SET k v3                 #   ERR rcproxy: quorum not reached for 'SET' ...
  redis-cli -p {port} GET k                    #   ERR rcproxy: quorum not reached for 'GET' ...
  kill -USR1 {pid}                           # restart the stopped nodes (same ports, same
                                             #   data dirs: their AOF is reloaded)
  redis-cli -p {node1} GET k                    # v2: node {node1} missed it, and anti-entropy
                                             #   copied it there within seconds, see:
  redis-cli -p {port} INFO rcproxy | grep -E 'anti_entropy|hints'
TEXT

read -r -d '' FOOTER <<'TEXT' || true

Ctrl-C stops everything (rcproxy, __SERVERS__) and removes the data.
rcproxy's log follows.
TEXT

if ((QUORUM)); then
    ARGS=(--quorum-nodes 3 --node-port 7001 --node-port 7002 --node-port 7003
          --proxy-port 6380 --prefer --proxy-output)
    BANNER="$QUORUM_BANNER"
    FOOTER="${FOOTER/__SERVERS__/the 3 nodes}"
else
    ARGS=(--replicas 2 --leader-port 6379 --replica-port 6390 --replica-port 6391
          --proxy-port 6380 --prefer --proxy-output)
    if ((SENTINEL)); then
        ARGS+=(--sentinels 3 --sentinel-port 26379 --sentinel-port 26380 --sentinel-port 26381)
        BANNER="$BANNER"$'\n\n'"$SENTINEL_BANNER"
        FOOTER="${FOOTER/__SERVERS__/leader, replicas, sentinels}"
    else
        FOOTER="${FOOTER/__SERVERS__/leader, replicas}"
    fi
fi

exec /usr/bin/python3 tools/topology.py "${ARGS[@]}" --message "$BANNER"$'\n\n'"$FOOTER" \
    ${PASS[@]+"${PASS[@]}"}
