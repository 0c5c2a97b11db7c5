#!/usr/bin/python3
"""session_bench.py -- what do rcproxy's session guarantees cost?

Starts, on free 127.0.0.1 ports in a scratch directory: a redis leader, two
replicas (replica 0 optionally behind tools/delay_relay, so that its
replication stream arrives --delay ms late) and rcproxy in mode leader in
front of them.  Then it runs build/session_bench once per configuration and
round:

    consistency eventual, ryw, monotonic, strong   (write-ack async)
    write-ack   async, semisync, sync               (consistency eventual)

The configurations are interleaved (round 1: all of them, round 2: all of
them in a rotated order, ...) so that drift of the machine hits all alike.
"eventual" and "ack=async" are the same configuration measured twice: the
gap between them is a noise estimate.

Around each run it reads the `requests=` counters of the backend lines of
INFO rcproxy: the replicas' deltas are the reads the replicas served, the
leader's delta minus the writes is the reads the leader served.

Prints one table: ops/s (median over rounds) and its ratio to "eventual",
read and write p50/p99 latency (median over rounds of each run's
percentile), the share of reads served by replicas, stale reads (a GET that
did not return the session's own last SET of that key) and errors.

    tools/session_bench.py                 # 3 rounds x 7 configurations x 5 s
    tools/session_bench.py --delay 200     # replica 0's replication 200 ms late
    tools/session_bench.py --quick         # 1 round, 2 s per run

Every process is started in its own process group, dies with this script
(PR_SET_PDEATHSIG) and is stopped in a finally block, also on SIGINT/SIGTERM.
Every wait is bounded.  Only 127.0.0.1 is used.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import topology  # noqa: E402  (tools/topology.py: ports, processes, RESP helper)
from topology import HOST, Proc, free_port, info_dict, ping, wait_until  # noqa: E402

ROOT = topology.ROOT

CONFIGS = [
    # (label, consistency, write-ack)
    ("eventual", "eventual", "async"),
    ("ryw", "ryw", "async"),
    ("monotonic", "monotonic", "async"),
    ("strong", "strong", "async"),
    ("ack=async", "eventual", "async"),
    ("ack=semisync", "eventual", "semisync"),
    ("ack=sync", "eventual", "sync"),
]


class BenchError(Exception):
    """A server did not come up, or a benchmark run failed."""


def log(msg):
    print("session_bench: " + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# the topology: leader, 2 replicas (one maybe behind a delay relay), rcproxy
# --------------------------------------------------------------------------

class Setup:
    """Owns every process it starts; stop() is idempotent and safe after a
    failed start()."""

    def __init__(self, build, delay_ms, proxy_args, keep=False):
        self.build = build
        self.delay_ms = delay_ms
        self.proxy_args = list(proxy_args)
        self.keep = keep
        self.scratch = None
        self.procs = []
        self.leader_port = None
        self.replica_ports = []
        self.relay_port = None
        self.proxy_port = None

    def _spawn(self, name, argv, logname):
        proc = Proc(name, argv, self.scratch, os.path.join(self.scratch, logname))
        self.procs.append(proc)
        return proc

    def _redis(self, role, replicaof=None):
        """Start a redis-server on a free port; wait for PING.  Returns the port."""
        for _ in range(3):
            port = free_port()
            d = os.path.join(self.scratch, "redis-%d" % port)
            os.makedirs(d)
            argv = ["redis-server", "--port", str(port), "--bind", HOST, "--dir", d,
                    "--save", "", "--appendonly", "no", "--protected-mode", "no",
                    "--daemonize", "no", "--logfile", "", "--repl-diskless-sync", "yes",
                    "--repl-diskless-sync-delay", "0"]
            if replicaof is not None:
                argv += ["--replicaof", HOST, str(replicaof)]
            proc = self._spawn("%s:%d" % (role, port), argv, "redis-%d.log" % port)
            if wait_until(lambda: ping(port), 10.0, proc=proc):
                return port
            tail = proc.log_tail()
            proc.stop(grace=1)
            if "already in use" not in tail:
                raise BenchError("redis-server (%s) did not start:\n%s" % (role, tail))
        raise BenchError("redis-server (%s): no usable port" % role)

    def _relay(self):
        """Start delay_relay in front of the leader; wait for its "ready"."""
        binary = os.path.join(self.build, "delay_relay")
        for _ in range(3):
            port = free_port()
            proc = self._spawn("relay:%d" % port,
                               [binary, "--listen", str(port), "--target",
                                "%s:%d" % (HOST, self.leader_port), "--delay",
                                str(self.delay_ms)], "relay.log")
            if wait_until(lambda: "ready" in proc.log_tail(), 10.0, proc=proc):
                return port
            tail = proc.log_tail()
            proc.stop(grace=1)
            if "in use" not in tail:
                raise BenchError("delay_relay did not start:\n%s" % tail)
        raise BenchError("delay_relay: no usable port")

    def _wait_replication(self):
        def up():
            return all(info_dict(p, "replication").get("master_link_status") == "up"
                       for p in self.replica_ports)
        if not wait_until(up, 30.0, interval=0.1):
            raise BenchError("replicas did not reach master_link_status:up in 30 s")

    def _proxy(self):
        binary = os.path.join(self.build, "rcproxy")
        for _ in range(3):
            port = free_port()
            argv = [binary, "--port", str(port), "--bind", HOST, "--mode", "leader",
                    "--leader", "%s:%d" % (HOST, self.leader_port)]
            for p in self.replica_ports:
                argv += ["--replica", "%s:%d" % (HOST, p)]
            argv += self.proxy_args
            proc = self._spawn("rcproxy:%d" % port, argv, "rcproxy.log")
            if wait_until(lambda: ping(port), 10.0, proc=proc):
                return port
            tail = proc.log_tail()
            proc.stop(grace=1)
            if "in use" not in tail:
                raise BenchError("rcproxy did not start:\n%s" % tail)
        raise BenchError("rcproxy: no usable port")

    def _wait_rotation(self):
        def ready():
            rows = backend_rows(self.proxy_port)
            reps = [r for r in rows if r.get("role") == "replica"]
            return len(reps) == len(self.replica_ports) and \
                all(r.get("in_rotation") == "yes" for r in reps)
        if not wait_until(ready, 20.0, interval=0.1):
            raise BenchError("not every replica in_rotation=yes after 20 s:\n%s"
                             % "\n".join(str(r) for r in backend_rows(self.proxy_port)))

    def start(self):
        for name in ("rcproxy", "session_bench") + (("delay_relay",) if self.delay_ms else ()):
            if not os.access(os.path.join(self.build, name), os.X_OK):
                raise BenchError("%s/%s missing: ninja -C %s rcproxy session_bench delay_relay"
                                 % (self.build, name, self.build))
        self.scratch = tempfile.mkdtemp(prefix="rcproxy-sbench-")
        self.leader_port = self._redis("leader")
        if self.delay_ms:
            self.relay_port = self._relay()
        for i in range(2):
            upstream = self.relay_port if (i == 0 and self.relay_port) else self.leader_port
            self.replica_ports.append(self._redis("replica", replicaof=upstream))
        self._wait_replication()
        self.proxy_port = self._proxy()
        self._wait_rotation()
        log("leader %d, replicas %s%s, rcproxy %d" % (
            self.leader_port, self.replica_ports,
            " (replica %d via relay %d, %d ms)" % (self.replica_ports[0], self.relay_port,
                                                   self.delay_ms) if self.relay_port else "",
            self.proxy_port))

    def alive_or_raise(self):
        dead = [p for p in self.procs if not p.alive()]
        if dead:
            raise BenchError("; ".join("%s exited (%s):\n%s" % (p.name, p.popen.returncode,
                                                                 p.log_tail(8)) for p in dead))

    def stop(self):
        for proc in reversed(self.procs):
            proc.stop(grace=3)
        self.procs = []
        if self.scratch and os.path.isdir(self.scratch):
            if self.keep:
                log("kept scratch dir %s" % self.scratch)
            else:
                shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch = None


def backend_rows(proxy_port):
    """INFO rcproxy backend lines as dicts (addr, role, in_rotation, requests...)."""
    rows = []
    for k, v in info_dict(proxy_port, "rcproxy").items():
        if k.startswith("backend") and k != "backend_count":
            row = dict(f.split("=", 1) for f in v.split(",") if "=" in f)
            row["name"] = k
            rows.append(row)
    return rows


def request_counts(proxy_port):
    """{backend name: (role, requests)}; raises BenchError when INFO fails."""
    rows = backend_rows(proxy_port)
    if not rows:
        raise BenchError("INFO rcproxy on port %d returned no backend lines" % proxy_port)
    return {r["name"]: (r.get("role"), int(r.get("requests", "0"))) for r in rows}


# --------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------

def parse_kv(line):
    out = {}
    for f in line.split():
        if "=" in f:
            k, v = f.split("=", 1)
            try:
                out[k] = float(v) if "." in v else int(v)
            except ValueError:
                out[k] = v
    return out


def run_once(setup, args, consistency, ack):
    """One session_bench run; returns its key=value dict plus replica_reads and
    leader_reads from the INFO deltas."""
    before = request_counts(setup.proxy_port)
    argv = [os.path.join(setup.build, "session_bench"), "--port", str(setup.proxy_port),
            "--clients", str(args.clients), "--seconds", str(args.seconds),
            "--mix", args.mix, "--consistency", consistency, "--write-ack", ack,
            "--keys", str(args.keys)]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=args.seconds + 45,
                             preexec_fn=topology._child_setup)
    except subprocess.TimeoutExpired:
        raise BenchError("session_bench did not finish in time: %s" % " ".join(argv))
    line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    if res.returncode != 0 or "ops=" not in line:
        setup.alive_or_raise()
        raise BenchError("session_bench failed (exit %d): %s\n%s"
                         % (res.returncode, " ".join(argv), res.stderr.strip()))
    if res.stderr.strip():
        log(res.stderr.strip().splitlines()[0])
    after = request_counts(setup.proxy_port)
    r = parse_kv(line)
    replica_reqs = leader_reqs = 0
    for name, (role, n) in after.items():
        delta = n - before.get(name, (role, 0))[1]
        if role == "leader":
            leader_reqs += delta
        else:
            replica_reqs += delta
    # A read sent to the leader is final (no freshness check there), so the
    # leader's requests beyond the writes are the reads it served; the rest of
    # the reads were served by replicas.  Replica requests beyond those are
    # reads sent again (the replica had not caught up when the read ran).
    r["leader_reads"] = max(0, leader_reqs - r["writes"])
    r["replica_reads"] = max(0, r["reads"] - r["leader_reads"])
    r["resent_reads"] = max(0, replica_reqs - r["replica_reads"])
    r["replica_reqs"] = replica_reqs
    r["raw"] = line
    return r


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------

def summarize(label, runs, base_ops):
    med = lambda k: statistics.median(x[k] for x in runs)  # noqa: E731
    ops = med("ops_per_sec")
    reads = sum(x["reads"] for x in runs)
    return {
        "label": label,
        "ops": ops,
        "ratio": ops / base_ops if base_ops else float("nan"),
        "rp50": med("read_p50_us"), "rp99": med("read_p99_us"),
        "wp50": med("write_p50_us"), "wp99": med("write_p99_us"),
        "share": 100.0 * sum(x["replica_reads"] for x in runs) / reads if reads else 0.0,
        "resent": 100.0 * sum(x["resent_reads"] for x in runs) / reads if reads else 0.0,
        "stale": 100.0 * sum(x["stale_reads"] for x in runs) / reads if reads else 0.0,
        "errors": sum(x["errors"] for x in runs),
        "spread": (min(x["ops_per_sec"] for x in runs), max(x["ops_per_sec"] for x in runs)),
    }


def print_table(rows, args, delay_ms):
    print("\nrcproxy session guarantees: %d client(s), mix W:R %s, %d s per run, %d round(s), "
          "replica 0 delay %s" % (args.clients, args.mix, args.seconds, args.rounds,
                                  "%d ms" % delay_ms if delay_ms else "none"))
    hdr = ("%-13s %8s %6s %15s %15s %9s %8s %8s %13s %6s"
           % ("level", "ops/s", "ratio", "read p50/p99", "write p50/p99", "replica%",
              "resent%", "stale%", "ops/s min-max", "errors"))
    print(hdr)
    print("-" * len(hdr))
    for s in rows:
        print("%-13s %8.0f %6.2f %15s %15s %8.1f%% %7.1f%% %7.2f%% %13s %6d"
              % (s["label"], s["ops"], s["ratio"],
                 "%d/%d us" % (s["rp50"], s["rp99"]), "%d/%d us" % (s["wp50"], s["wp99"]),
                 s["share"], s["resent"], s["stale"], "%.0f-%.0f" % s["spread"], s["errors"]))
    print("ops/s, p50, p99: median over rounds.  ratio: to the median of all eventual/async runs "
          "(rows\n'eventual' and 'ack=async' together).  replica%: reads served "
          "by replicas\n(reads minus the leader's INFO requests delta beyond the writes).  "
          "resent%: further replica requests\n(reads sent again because the replica had not "
          "caught up), per 100 reads.  stale%: GETs that did\nnot return the session's own last "
          "SET of that key.  'eventual' and 'ack=async' are the same\nconfiguration: their gap "
          "is measurement noise.", flush=True)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="session_bench.py",
        description="Measure rcproxy's session guarantees (consistency levels and write-ack "
                    "levels) against a local leader + 2 replicas.")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build dir with rcproxy, session_bench, delay_relay (default build/)")
    ap.add_argument("--delay", type=int, default=0,
                    help="ms by which replica 0's replication stream is delayed (0 = no relay)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--seconds", type=int, default=5, help="seconds per run (default 5)")
    ap.add_argument("--clients", type=int, default=16, help="client threads (default 16)")
    ap.add_argument("--mix", default="50:50", help="W:R weights (default 50:50)")
    ap.add_argument("--keys", type=int, default=1000, help="keys per client (default 1000)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="seconds of an unrecorded first run (default 2, --quick 1, 0 = none)")
    ap.add_argument("--quick", action="store_true", help="1 round, 2 s per run")
    ap.add_argument("--only", help="comma-separated labels to run (e.g. eventual,strong)")
    ap.add_argument("--proxy-arg", action="append", default=[],
                    help="extra rcproxy argument, repeatable (--proxy-arg=--write-ack-timeout "
                         "--proxy-arg=2000)")
    ap.add_argument("--raw", action="store_true", help="print every run's session_bench line")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (logs)")
    a = ap.parse_args(argv)
    if a.quick:
        a.rounds, a.seconds, a.warmup = 1, 2, min(a.warmup, 1)
    if not 1 <= a.rounds <= 20 or not 1 <= a.seconds <= 60 or not 1 <= a.clients <= 256:
        ap.error("--rounds 1..20, --seconds 1..60, --clients 1..256")
    if not 0 <= a.delay <= 10000:
        ap.error("--delay 0..10000")
    if not 0 <= a.warmup <= 60 or not 1 <= a.keys <= 1000000:
        ap.error("--warmup 0..60, --keys 1..1000000")
    a.build = os.path.abspath(a.build)
    a.configs = CONFIGS
    if a.only:
        want = a.only.split(",")
        bad = [w for w in want if w not in [c[0] for c in CONFIGS]]
        if bad:
            ap.error("--only: unknown label(s) %s; known: %s"
                     % (bad, ",".join(c[0] for c in CONFIGS)))
        a.configs = [c for c in CONFIGS if c[0] in want]
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    topology.install_signal_handlers()
    setup = Setup(args.build, args.delay, args.proxy_arg, keep=args.keep)
    results = {c[0]: [] for c in args.configs}
    t0 = time.monotonic()
    try:
        setup.start()
        if args.warmup:
            # not recorded: first connections, key creation, allocator growth
            warm = argparse.Namespace(**vars(args))
            warm.seconds = args.warmup
            r = run_once(setup, warm, "eventual", "async")
            log("warm-up      %8.0f ops/s (not recorded)" % r["ops_per_sec"])
        n = len(args.configs)
        for rnd in range(args.rounds):
            order = args.configs[rnd % n:] + args.configs[:rnd % n]
            for label, consistency, ack in order:
                setup.alive_or_raise()
                r = run_once(setup, args, consistency, ack)
                results[label].append(r)
                log("round %d %-13s %8.0f ops/s  reads %d: replicas %d (+%d resent), "
                    "leader %d; stale %d; errors %d"
                    % (rnd + 1, label, r["ops_per_sec"], r["reads"], r["replica_reads"],
                       r["resent_reads"], r["leader_reads"], r["stale_reads"], r["errors"]))
                if args.raw:
                    log("  " + r["raw"])
    except BenchError as e:
        log("error: %s" % e)
        return 1
    except topology.Stop as e:
        log("interrupted; stopping")
        return e.code if isinstance(e.code, int) else 1
    finally:
        setup.stop()
    # the baseline: every run of the eventual/async configuration (both rows)
    pool = results.get("eventual", []) + results.get("ack=async", [])
    if not pool:
        pool = results[args.configs[0][0]]
    base = statistics.median(x["ops_per_sec"] for x in pool)
    print_table([summarize(c[0], results[c[0]], base) for c in args.configs], args, args.delay)
    log("done in %.0f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
