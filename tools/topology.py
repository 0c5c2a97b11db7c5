#!/usr/bin/python3
"""topology.py -- start a Redis leader, N replicas, optionally N Redis Sentinels, and
rcproxy on 127.0.0.1; or (--quorum-nodes M) M independent Redis nodes and rcproxy in
mode quorum in front of them.

Shared by tools/demo.sh, tools/test.sh, tests/clients and tools/bench.

As a module:

    import topology
    with topology.Topology(replicas=2) as topo:
        print(topo.proxy_port, topo.leader_port, topo.replica_ports)
    with topology.Topology(quorum_nodes=3) as topo:     # mode quorum
        print(topo.proxy_port, topo.node_ports)

As a command:

    tools/topology.py [--replicas N] [--proxy-port P] ...          # foreground, Ctrl-C stops
    tools/topology.py [options] -- tests/clients/run.sh {port}      # run a command, then stop
    tools/topology.py --sentinels 3 ...   # + 3 sentinels monitoring "mymaster"; rcproxy
                                          #   follows them (--sentinel/--sentinel-master)
    tools/topology.py --quorum-nodes 3 ...  # 3 independent redis-servers (appendonly yes,
                                          #   ports 7001.. or free ones), rcproxy in
                                          #   --mode quorum with a --node for each

In the foreground mode, SIGUSR1 (kill -USR1 <pid of topology.py>) restarts every
redis-server or sentinel that has stopped, on its port with its data dir.

Every process runs in its own process group (and dies with this script via
PR_SET_PDEATHSIG where Linux offers it); teardown sends SIGTERM to each group,
SIGKILL after a grace period, and removes the scratch directory.  Every wait is
bounded in time.  Only 127.0.0.1 is ever used.
"""

import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RCPROXY = os.path.join(ROOT, "build", "rcproxy")
SENTINEL_MASTER = "mymaster"
# first wanted node port of the command line's --quorum-nodes (7001, 7002, ...)
QUORUM_FIRST_PORT = 7001
# mode quorum readiness: rcproxy answers GET of this never-written key with nil
READY_KEY = "topology:readiness-probe:never-written"


class TopologyError(Exception):
    """A server did not start or did not become ready in time."""


class Stop(SystemExit):
    """Raised from a signal handler to unwind through the context managers."""


# --------------------------------------------------------------------------
# a minimal RESP client (stdlib only), for readiness checks and INFO polling
# --------------------------------------------------------------------------

class RespError(Exception):
    """An error reply (-ERR ...) from the server."""


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed mid-reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode(errors="replace")
    if kind == b"-":
        return RespError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("connection closed mid-reply")
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_read_reply(f) for _ in range(n)]
    raise ConnectionError("unexpected reply type %r" % kind)


def command(port, *args, timeout=2.0, host=HOST):
    """Send one command on a fresh connection; return the decoded reply.

    Error replies are returned as RespError instances (not raised); connection
    problems raise OSError/ConnectionError."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(_encode(args))
        with s.makefile("rb") as f:
            return _read_reply(f)


def ping(port, timeout=1.0):
    """True when the server on port answers PING with PONG."""
    try:
        return command(port, "PING", timeout=timeout) == "PONG"
    except (OSError, ValueError):
        return False


def info_dict(port, section=None, timeout=2.0):
    """INFO [section] parsed into {key: value}; {} on any failure."""
    try:
        reply = command(port, *(["INFO"] + ([section] if section else [])), timeout=timeout)
    except (OSError, ValueError):
        return {}
    if not isinstance(reply, str):
        return {}
    out = {}
    for line in reply.splitlines():
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


def _pairs(reply):
    """A flat [field, value, field, value...] reply (SENTINEL MASTER/REPLICAS
    entries) as a dict; {} for anything else."""
    if not isinstance(reply, list):
        return {}
    return {reply[i]: reply[i + 1] for i in range(0, len(reply) - 1, 2)
            if isinstance(reply[i], str)}


# --------------------------------------------------------------------------
# ports and processes
# --------------------------------------------------------------------------

_taken = set()


def port_is_free(port):
    """True when port can be bound on 127.0.0.1 right now (as Redis binds: SO_REUSEADDR)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port the kernel says is free, not handed out before by this process."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _taken:
            _taken.add(port)
            return port
    raise TopologyError("could not find a free port")


def pick_port(wanted, prefer):
    """wanted=None: a free port.  wanted=P and prefer: P if free else a free one.
    wanted=P and not prefer: P (the caller fails later if it is busy)."""
    if wanted is None:
        return free_port()
    if prefer and (wanted in _taken or not port_is_free(wanted)):
        return free_port()
    _taken.add(wanted)
    return wanted


def _child_setup():
    """In the child before exec: die with the parent (Linux), own process group."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Proc:
    """One child process in its own session / process group, with a log file."""

    def __init__(self, name, argv, cwd, logpath=None, env=None, inherit_output=False,
                 port=None):
        self.name, self.argv, self.logpath = name, list(argv), logpath
        self.cwd, self.env, self.inherit_output, self.port = cwd, env, inherit_output, port
        out = None
        self._logf = None
        if not inherit_output:
            self._logf = open(logpath, "ab")
            out = self._logf
        try:
            self.popen = subprocess.Popen(
                self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT if out else None,
                start_new_session=True, preexec_fn=_child_setup)
        except OSError:
            if self._logf:
                self._logf.close()
            raise
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def respawn(self):
        """A new Proc running the same command (same name, cwd, log, port);
        this one must have exited."""
        return Proc(self.name, self.argv, self.cwd, self.logpath, env=self.env,
                    inherit_output=self.inherit_output, port=self.port)

    def log_tail(self, lines=20):
        if not self.logpath or not os.path.exists(self.logpath):
            return ""
        with open(self.logpath, "rb") as f:
            data = f.read()[-8192:].decode(errors="replace")
        return "\n".join(data.splitlines()[-lines:])

    def signal_group(self, sig):
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace=5.0):
        """SIGTERM to the group, SIGKILL after grace seconds; reap.  Returns exit code."""
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                try:
                    self.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        # anything left in the group (grandchildren) goes too
        self.signal_group(signal.SIGKILL)
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.popen.returncode


def wait_until(pred, timeout, interval=0.05, proc=None):
    """Poll pred() until true (return True) or timeout (return False).  If proc
    is given and exits meanwhile, stop early and return False."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if proc is not None and not proc.alive():
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def install_signal_handlers():
    """SIGTERM/SIGINT/SIGHUP raise Stop, so `with` blocks tear down."""
    def handler(signum, _frame):
        raise Stop(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


_restart_requested = [False]


def install_restart_handler():
    """SIGUSR1 sets a flag that restart_requested() returns (and clears):
    the foreground mode then restarts the servers that have stopped."""
    def handler(_signum, _frame):
        _restart_requested[0] = True
    signal.signal(signal.SIGUSR1, handler)


def restart_requested():
    """True once after each SIGUSR1 (see install_restart_handler)."""
    was, _restart_requested[0] = _restart_requested[0], False
    return was


# --------------------------------------------------------------------------
# the topology
# --------------------------------------------------------------------------

class Topology:
    """A leader, `replicas` replicas (default 2), `sentinels` Redis Sentinels
    and (unless proxy=False) rcproxy in front -- or, with quorum_nodes=M > 0,
    M independent redis-servers (no replication, appendonly yes, each in its
    own dir) and rcproxy in mode quorum with a --node for each (mode
    "quorum"; replicas and sentinels must then be 0/None).

    Ports: leader_port/replica_ports/sentinel_ports/proxy_port are wanted ports
    (None = free); with prefer=True a busy wanted port is replaced by a free
    one, otherwise starting fails.  With sentinels > 0 every sentinel monitors
    the leader as SENTINEL_MASTER (quorum sentinels/2+1, down after 1 s,
    failover timeout 5 s), start() waits until each one knows the replicas
    and the other sentinels, rcproxy is given --sentinel/--sentinel-master
    instead of --leader/--replica, and the redis-servers accept DEBUG from
    127.0.0.1 (enable-debug-command local, for DEBUG SLEEP).  After start(): .leader_port, .leader_pid,
    .replica_ports, .sentinel_ports, .proxy_port (the leader's port when
    proxy=False), .scratch, .procs.  leader_port is the leader at start; after
    a failover current_leader() asks the sentinels.  In mode quorum,
    node_ports (wanted ports, None entries = free) give the nodes' ports;
    after start() .node_ports holds the ones in use, .leader_port is None,
    .proxy_port is the first node when proxy=False, and rcproxy is ready when
    it answers GET READY_KEY with nil (not an error).  Fewer than 3 nodes:
    rcproxy gets --quorum-n M and W = R = M//2+1 (before proxy_args, which
    can override them).  stop() is safe to call more than once and from a
    failed start()."""

    def __init__(self, replicas=None, leader_port=None, replica_ports=None, proxy_port=None,
                 prefer=False, proxy=True, rcproxy=None, proxy_args=(), scratch=None,
                 keep=False, proxy_output=False, redis_server="redis-server",
                 ready_timeout=15.0, quiet=False, sentinels=0, sentinel_ports=None,
                 quorum_nodes=0, node_ports=None):
        if sentinels < 0:
            raise ValueError("sentinels must be >= 0")
        if quorum_nodes < 0:
            raise ValueError("quorum_nodes must be >= 0")
        if quorum_nodes and (replicas or sentinels or leader_port or replica_ports):
            raise ValueError("quorum_nodes excludes a leader, replicas and sentinels")
        if replicas is None:
            replicas = 0 if quorum_nodes else 2
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        self.mode = "quorum" if quorum_nodes else "leader"
        self.nnodes = quorum_nodes
        self.want_nodes = list(node_ports or [])
        self.node_ports = []
        self.nreplicas = replicas
        self.nsentinels = sentinels
        self.want_sentinels = list(sentinel_ports or [])
        self.want_leader = leader_port
        self.want_replicas = list(replica_ports or [])
        self.want_proxy = proxy_port
        self.prefer = prefer
        self.use_proxy = proxy
        self.rcproxy = rcproxy or os.environ.get("RCPROXY_BIN") or DEFAULT_RCPROXY
        self.proxy_args = list(proxy_args)
        self.scratch_parent = scratch
        self.keep = keep
        self.proxy_output = proxy_output
        self.redis_server = redis_server
        self.ready_timeout = ready_timeout
        self.quiet = quiet
        self.scratch = None
        self.procs = []
        self.leader_port = None
        self.replica_ports = []
        self.sentinel_ports = []
        self.proxy_port = None
        self.proxy_proc = None
        self.leader_proc = None

    # -- helpers -----------------------------------------------------------
    def _log(self, msg):
        if not self.quiet:
            print("topology: " + msg, file=sys.stderr, flush=True)

    def _redis_argv(self, port, leader=None):
        """argv and log path of the redis-server on port: a replica of leader
        when given; in mode quorum a node with appendonly yes.  Its dir is
        <scratch>/redis-<port>."""
        d = os.path.join(self.scratch, "redis-%d" % port)
        os.makedirs(d, exist_ok=True)
        aof = "yes" if self.mode == "quorum" else "no"
        argv = [self.redis_server, "--port", str(port), "--bind", HOST,
                "--dir", d, "--save", "", "--appendonly", aof,
                "--protected-mode", "no", "--daemonize", "no",
                "--logfile", "", "--repl-diskless-sync", "yes",
                "--repl-diskless-sync-delay", "0"]
        if leader is not None:
            argv += ["--replicaof", HOST, str(leader)]
        if self.nsentinels:
            # so that a failover can be provoked with DEBUG SLEEP (Redis 7 refuses DEBUG
            # by default); "local": from 127.0.0.1 only
            argv += ["--enable-debug-command", "local"]
        return argv, os.path.join(d, "redis.log")

    def _start_redis(self, wanted, leader=None, role=None):
        """Start one redis-server (role: "leader", "replica" when leader is
        given, or "node") and wait for PING.  A free port that was lost to a
        race is retried with another (bounded), so is a wanted port with
        prefer=True.  Returns the port."""
        role = role or ("leader" if leader is None else "replica")
        for attempt in range(3):
            port = pick_port(wanted, self.prefer)
            argv, logpath = self._redis_argv(port, leader)
            proc = Proc("%s:%d" % (role, port), argv, self.scratch, logpath, port=port)
            self.procs.append(proc)
            if wait_until(lambda: ping(port), self.ready_timeout, proc=proc):
                self._log("%-8s 127.0.0.1:%d pid %d" % (role, port, proc.pid))
                if role == "leader":
                    self.leader_proc = proc
                return port
            tail = proc.log_tail()
            proc.stop(grace=1)
            self.procs.remove(proc)
            if (wanted is None or self.prefer) and "already in use" in tail and attempt < 2:
                wanted = None
                continue
            raise TopologyError("redis-server (%s) on port %d did not start:\n%s"
                                % (role, port, tail))
        raise TopologyError("redis-server: no usable port")

    def _wait_replication(self):
        def all_up():
            for p in self.replica_ports:
                if info_dict(p, "replication").get("master_link_status") != "up":
                    return False
            return True
        if not wait_until(all_up, self.ready_timeout * 2, interval=0.1):
            bad = [p for p in self.replica_ports
                   if info_dict(p, "replication").get("master_link_status") != "up"]
            raise TopologyError("replicas %s did not reach master_link_status:up" % bad)

    # -- Redis Sentinel ----------------------------------------------------
    def _sentinel_conf(self, port):
        """Write <scratch>/sentinel-<port>.conf (Sentinel rewrites it as it
        learns, so each sentinel has its own) and return its path."""
        path = os.path.join(self.scratch, "sentinel-%d.conf" % port)
        m = SENTINEL_MASTER
        with open(path, "w") as f:
            f.write("port %d\n"
                    "bind %s\n"
                    "daemonize no\n"
                    "dir %s\n"
                    "sentinel resolve-hostnames no\n"
                    "sentinel monitor %s %s %d %d\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 5000\n"
                    "sentinel parallel-syncs %s 1\n"
                    % (port, HOST, self.scratch, m, HOST, self.leader_port,
                       self.nsentinels // 2 + 1, m, m, m))
        return path

    def _start_sentinel(self, wanted):
        """Start one sentinel (redis-server <conf> --sentinel) and wait for
        PING; a free port lost to a race is retried (bounded).  Returns the port."""
        for attempt in range(3):
            port = pick_port(wanted, self.prefer)
            conf = self._sentinel_conf(port)
            logpath = os.path.join(self.scratch, "sentinel-%d.log" % port)
            proc = Proc("sentinel:%d" % port, [self.redis_server, conf, "--sentinel"],
                        self.scratch, logpath, port=port)
            self.procs.append(proc)
            if wait_until(lambda: ping(port), self.ready_timeout, proc=proc):
                self._log("%-8s 127.0.0.1:%d pid %d" % ("sentinel", port, proc.pid))
                return port
            tail = proc.log_tail()
            proc.stop(grace=1)
            self.procs.remove(proc)
            if wanted is None and "already in use" in tail and attempt < 2:
                continue
            raise TopologyError("redis-sentinel on port %d did not start:\n%s" % (port, tail))
        raise TopologyError("redis-sentinel: no usable port")

    def _sentinel_synced(self, port):
        """One check of the sentinel on port: it names the leader as the
        master (not down), lists every replica without s_down/o_down/
        disconnected flags and knows the other sentinels.  Returns None when
        so, else a sentence saying what is missing."""
        try:
            addr = command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER,
                           timeout=1.0)
            if not isinstance(addr, list) or len(addr) != 2 or \
                    addr[1] != str(self.leader_port):
                return "sentinel %d names master %r, not port %d" % (port, addr, self.leader_port)
            master = _pairs(command(port, "SENTINEL", "MASTER", SENTINEL_MASTER, timeout=1.0))
            if master.get("flags") != "master":
                return "sentinel %d: master flags %r" % (port, master.get("flags"))
            reps = command(port, "SENTINEL", "REPLICAS", SENTINEL_MASTER, timeout=1.0)
            known = {}
            for r in reps if isinstance(reps, list) else []:
                r = _pairs(r)
                if r.get("ip") == HOST:
                    known[r.get("port")] = r.get("flags", "")
            for p in self.replica_ports:
                flags = known.get(str(p))
                if flags is None:
                    return "sentinel %d does not list replica %d yet" % (port, p)
                if any(bad in flags for bad in ("s_down", "o_down", "disconnected")):
                    return "sentinel %d: replica %d has flags %s" % (port, p, flags)
            others = command(port, "SENTINEL", "SENTINELS", SENTINEL_MASTER, timeout=1.0)
            n = len(others) if isinstance(others, list) else 0
            if n != self.nsentinels - 1:
                return "sentinel %d knows %d other sentinels, not %d" % (
                    port, n, self.nsentinels - 1)
        except (OSError, ValueError) as e:
            return "sentinel %d: %s" % (port, e)
        return None

    def _wait_sentinels(self):
        """Wait (bounded: 2 x ready_timeout, at least 20 s) until every
        sentinel is in sync (see _sentinel_synced); TopologyError if not."""
        why = [None]

        def synced():
            for p in self.sentinel_ports:
                why[0] = self._sentinel_synced(p)
                if why[0]:
                    return False
            return True
        if not wait_until(synced, max(20.0, self.ready_timeout * 2), interval=0.2):
            raise TopologyError("sentinels not in sync: %s" % why[0])

    def current_leader(self, timeout=1.0):
        """The leader port the sentinels name now (the first that answers),
        or None (no sentinels, or none answers)."""
        for p in self.sentinel_ports:
            try:
                addr = command(p, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER,
                               timeout=timeout)
            except (OSError, ValueError):
                continue
            if isinstance(addr, list) and len(addr) == 2:
                try:
                    return int(addr[1])
                except (TypeError, ValueError):
                    continue
        return None

    def _start_nodes(self):
        """Mode quorum: start the independent redis-server nodes."""
        for i in range(self.nnodes):
            wanted = self.want_nodes[i] if i < len(self.want_nodes) else None
            self.node_ports.append(self._start_redis(wanted, role="node"))

    def _start_leader_side(self):
        """Mode leader: start the leader, the replicas (and wait until they
        replicate), then the sentinels (and wait until they are in sync)."""
        self.leader_port = self._start_redis(self.want_leader)
        for i in range(self.nreplicas):
            wanted = self.want_replicas[i] if i < len(self.want_replicas) else None
            self.replica_ports.append(self._start_redis(wanted, leader=self.leader_port))
        self._wait_replication()
        for i in range(self.nsentinels):
            wanted = self.want_sentinels[i] if i < len(self.want_sentinels) else None
            self.sentinel_ports.append(self._start_sentinel(wanted))
        if self.sentinel_ports:
            self._wait_sentinels()

    def _backend_args(self):
        """rcproxy's arguments naming what is behind it (mode and servers)."""
        if self.mode == "quorum":
            argv = ["--mode", "quorum"]
            for p in self.node_ports:
                argv += ["--node", "%s:%d" % (HOST, p)]
            if self.nnodes < 3:  # rcproxy's defaults (3/2/2) need 3 nodes
                q = str(self.nnodes // 2 + 1)
                argv += ["--quorum-n", str(self.nnodes), "--quorum-w", q, "--quorum-r", q]
            return argv
        argv = ["--mode", "leader"]
        if self.sentinel_ports:
            for p in self.sentinel_ports:
                argv += ["--sentinel", "%s:%d" % (HOST, p)]
            argv += ["--sentinel-master", SENTINEL_MASTER]
        else:
            argv += ["--leader", "%s:%d" % (HOST, self.leader_port)]
            for p in self.replica_ports:
                argv += ["--replica", "%s:%d" % (HOST, p)]
        return argv

    def _proxy_probe(self, port):
        """One readiness check of rcproxy on port.  Mode leader: PING answers
        PONG.  Mode quorum: GET READY_KEY answers nil (so a quorum of nodes
        is reachable), not an error.  Returns None when ready, else a
        sentence saying what was seen."""
        try:
            if self.mode == "quorum":
                reply = command(port, "GET", READY_KEY, timeout=1.0)
                return None if reply is None else "GET %s answered %r" % (READY_KEY, reply)
            reply = command(port, "PING", timeout=1.0)
            return None if reply == "PONG" else "PING answered %r" % (reply,)
        except (OSError, ValueError) as e:
            return "no answer (%s)" % e

    def _start_proxy(self):
        if not os.access(self.rcproxy, os.X_OK):
            raise TopologyError("proxy binary %s not found or not executable "
                                "(build it: ninja -C build)" % self.rcproxy)
        port = pick_port(self.want_proxy, self.prefer)
        argv = [self.rcproxy, "--port", str(port), "--bind", HOST] + self._backend_args()
        argv += self.proxy_args
        logpath = os.path.join(self.scratch, "rcproxy.log")
        proc = Proc("rcproxy:%d" % port, argv, self.scratch,
                    None if self.proxy_output else logpath, inherit_output=self.proxy_output,
                    port=port)
        self.procs.append(proc)
        self.proxy_proc = proc
        why = ["not tried"]

        def ready():
            why[0] = self._proxy_probe(port)
            return why[0] is None
        if not wait_until(ready, self.ready_timeout, proc=proc):
            raise TopologyError("rcproxy on port %d is not ready: %s (%s):\n%s"
                                % (port, why[0], "exited %s" % proc.popen.returncode
                                   if not proc.alive() else "still running",
                                   proc.log_tail()))
        self.proxy_port = port
        self._log("%-8s 127.0.0.1:%d pid %d" % ("rcproxy", port, proc.pid))

    def wait_rotation(self, timeout=10.0):
        """Wait (bounded) until INFO rcproxy shows every replica in_rotation=yes.
        Returns True, or False on timeout; True at once when the proxy has no
        rcproxy section (a stand-in) or there are no replicas."""
        if not self.use_proxy or not self.replica_ports:
            return True
        first = info_dict(self.proxy_port, "rcproxy")
        if "rcproxy_version" not in first:
            return True

        def ready():
            inf = info_dict(self.proxy_port, "rcproxy")
            rows = [v for k, v in inf.items() if k.startswith("backend") and k != "backend_count"]
            replicas = [r for r in rows if "role=replica" in r]
            return len(replicas) >= len(self.replica_ports) and \
                all("in_rotation=yes" in r for r in replicas)
        return wait_until(ready, timeout, interval=0.1)

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        """Start everything; on failure tears down what started and raises TopologyError."""
        try:
            self.scratch = tempfile.mkdtemp(prefix="rcproxy-topo-", dir=self.scratch_parent)
            if self.mode == "quorum":
                self._start_nodes()
            else:
                self._start_leader_side()
            if self.use_proxy:
                self._start_proxy()
                if not self.wait_rotation():
                    self._log("warning: not every replica is in_rotation=yes after 10 s")
            else:
                self.proxy_port = self.leader_port if self.mode == "leader" \
                    else self.node_ports[0]
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stop every process (proxy first), then remove the scratch dir."""
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                old[sig] = signal.signal(sig, signal.SIG_IGN)
            except ValueError:  # not the main thread
                pass
        try:
            for proc in reversed(self.procs):
                proc.stop()
            self.procs = []
            if self.scratch and os.path.isdir(self.scratch):
                if self.keep:
                    self._log("kept scratch dir %s" % self.scratch)
                else:
                    shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None if not self.keep else self.scratch
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)

    def restart_stopped(self):
        """Restart every redis-server / sentinel that has exited (not rcproxy),
        with its command line, port and data dir (a node's AOF is reloaded),
        and wait (bounded) for its PING.  Returns the names of the ones
        restarted; a server that does not come back is reported, not raised."""
        done = []
        for i, old in enumerate(self.procs):
            if old.alive() or old is self.proxy_proc or old.port is None:
                continue
            old.stop(grace=0)  # reap, close the log
            try:
                new = old.respawn()
            except OSError as e:
                self._log("could not restart %s: %s" % (old.name, e))
                continue
            self.procs[i] = new
            if old is self.leader_proc:
                self.leader_proc = new
            if wait_until(lambda: ping(new.port), self.ready_timeout, proc=new):
                self._log("%s restarted, pid %d" % (new.name, new.pid))
                done.append(new.name)
            else:
                self._log("%s did not come back:\n%s" % (new.name, new.log_tail()))
        return done

    @property
    def leader_pid(self):
        """pid of the leader started by start() (None before)."""
        return self.leader_proc.pid if self.leader_proc else None

    def env(self):
        """Environment variables describing the running topology (the
        RCPROXY_SENTINEL_* ones only when there are sentinels,
        RCPROXY_NODE_PORTS only in mode quorum)."""
        env = {
            "RCPROXY_PORT": str(self.proxy_port),
            "RCPROXY_MODE": self.mode,
            "RCPROXY_LEADER_PORT": str(self.leader_port or ""),
            "RCPROXY_REPLICA_PORTS": ",".join(str(p) for p in self.replica_ports),
            "RCPROXY_SCRATCH": self.scratch or "",
            "RCPROXY_IS_PROXY": "1" if self.use_proxy else "0",
        }
        if self.node_ports:
            env["RCPROXY_NODE_PORTS"] = ",".join(str(p) for p in self.node_ports)
        if self.sentinel_ports:
            env["RCPROXY_SENTINEL_PORTS"] = ",".join(str(p) for p in self.sentinel_ports)
            env["RCPROXY_SENTINEL_MASTER"] = SENTINEL_MASTER
        return env

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

def _parse(argv):
    cmd = []
    if "--" in argv:
        i = argv.index("--")
        argv, cmd = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(
        prog="topology.py",
        description="Start a Redis leader + replicas (+ sentinels) + rcproxy on 127.0.0.1, "
                    "or (--quorum-nodes M) M independent Redis nodes + rcproxy in mode quorum. "
                    "Without a command: run in the foreground until Ctrl-C/SIGTERM (SIGUSR1 "
                    "restarts the servers that stopped). With "
                    "`-- CMD...`: run CMD ({port}, {leader}, {replicas}, {nodes} substituted; "
                    "RCPROXY_PORT etc. in its environment), stop everything, exit with CMD's "
                    "status.")
    ap.add_argument("--replicas", type=int, default=None,
                    help="number of replicas (default 2; 0 with --quorum-nodes)")
    ap.add_argument("--quorum-nodes", type=int, default=0, metavar="M",
                    help="mode quorum: start M independent redis-servers (no replication, "
                         "appendonly yes) and rcproxy --mode quorum with a --node for each, "
                         "instead of a leader and replicas (excludes --replicas > 0 and "
                         "--sentinels)")
    ap.add_argument("--node-port", type=int, action="append", default=[],
                    help="quorum node port, repeatable (default: %d, %d, ... each replaced "
                         "by a free one when busy)" % (QUORUM_FIRST_PORT, QUORUM_FIRST_PORT + 1))
    ap.add_argument("--sentinels", type=int, default=0,
                    help="number of Redis Sentinels monitoring the leader as '%s'; rcproxy "
                         "then follows them instead of a fixed leader (default 0)"
                         % SENTINEL_MASTER)
    ap.add_argument("--sentinel-port", type=int, action="append", default=[],
                    help="sentinel port, repeatable (default: free ones)")
    ap.add_argument("--leader-port", type=int, help="leader port (default: a free one)")
    ap.add_argument("--replica-port", type=int, action="append", default=[],
                    help="replica port, repeatable (default: free ones)")
    ap.add_argument("--proxy-port", type=int, help="rcproxy port (default: a free one)")
    ap.add_argument("--prefer", action="store_true",
                    help="use a free port instead when a given port is busy")
    ap.add_argument("--no-proxy", action="store_true",
                    help="start no proxy; {port} is the leader (to test the tests)")
    ap.add_argument("--rcproxy", help="proxy binary (default $RCPROXY_BIN or build/rcproxy)")
    ap.add_argument("--proxy-arg", action="append", default=[],
                    help="extra argument for rcproxy, repeatable (e.g. --proxy-arg=--loglevel "
                         "--proxy-arg=verbose)")
    ap.add_argument("--proxy-output", action="store_true",
                    help="let rcproxy log to this terminal instead of a file")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    ap.add_argument("--env-file", help="write the ports as shell assignments to this file")
    ap.add_argument("--message", default="",
                    help="text printed when ready; {port}, {leader}, {leader_pid}, {replicas}, "
                         "{sentinels}, {sentinel} (the first one), {master}, {nodes}, {node1} "
                         "{node2}... (each quorum node), {node} (the first) and {pid} (this "
                         "script's, for kill -USR1) substituted")
    ap.add_argument("--timeout", type=float, default=0,
                    help="stop after this many seconds (0 = never; with a command: kill it)")
    a = ap.parse_args(argv)
    if a.quorum_nodes:
        if a.quorum_nodes < 0 or a.quorum_nodes > 64:
            ap.error("--quorum-nodes must be 1..64")
        if a.replicas:
            ap.error("--quorum-nodes excludes --replicas > 0 (the nodes do not replicate)")
        if a.sentinels:
            ap.error("--quorum-nodes excludes --sentinels")
        if a.leader_port is not None or a.replica_port:
            ap.error("--quorum-nodes excludes --leader-port and --replica-port")
        if len(a.node_port) > a.quorum_nodes:
            ap.error("more --node-port than --quorum-nodes")
    elif a.node_port:
        ap.error("--node-port needs --quorum-nodes M")
    if a.replicas is None:
        a.replicas = 0 if a.quorum_nodes else 2
    if a.replicas < 0 or a.replicas > 16:
        ap.error("--replicas must be 0..16")
    if a.sentinels < 0 or a.sentinels > 9:
        ap.error("--sentinels must be 0..9")
    if a.sentinel_port and not a.sentinels:
        ap.error("--sentinel-port needs --sentinels N")
    return a, cmd


def _default_node_ports(n, given):
    """Wanted ports of n quorum nodes: the given ones, then QUORUM_FIRST_PORT
    + i for the rest, None (= a free one) where that port is busy."""
    out = list(given)
    for i in range(len(out), n):
        p = QUORUM_FIRST_PORT + i
        out.append(p if p not in out and port_is_free(p) else None)
    return out


def _subst(s, topo):
    for i, p in enumerate(topo.node_ports):
        s = s.replace("{node%d}" % (i + 1), str(p))
    return (s.replace("{port}", str(topo.proxy_port))
             .replace("{pid}", str(os.getpid()))
             .replace("{nodes}", ",".join(str(p) for p in topo.node_ports))
             .replace("{node}", str(topo.node_ports[0]) if topo.node_ports else "")
             .replace("{leader}", str(topo.leader_port))
             .replace("{leader_pid}", str(topo.leader_pid))
             .replace("{replicas}", ",".join(str(p) for p in topo.replica_ports))
             .replace("{sentinels}", ",".join(str(p) for p in topo.sentinel_ports))
             .replace("{sentinel}", str(topo.sentinel_ports[0]) if topo.sentinel_ports else "")
             .replace("{master}", SENTINEL_MASTER))


def _watch(topo, state):
    """One look at the running topology in the foreground mode.  Returns
    True when it should stop.  Without sentinels (mode leader) any process
    exiting stops everything.  With sentinels or in mode quorum, a
    redis-server or sentinel that exits is only reported (the point is to
    watch a failover or a lost quorum; SIGUSR1 restarts it), rcproxy
    exiting stops, and a change of the leader the sentinels name is
    reported (checked about once a second; state carries what was seen
    between calls)."""
    seen = state.setdefault("dead", set())
    stop = False
    if restart_requested():
        topo.restart_stopped()
    for p in topo.procs:
        if p.alive() or p.pid in seen:
            continue
        seen.add(p.pid)
        if (topo.sentinel_ports or topo.mode == "quorum") and p is not topo.proxy_proc:
            print("topology: %s (pid %d) exited (status %s); rcproxy carries on "
                  "(kill -USR1 %d restarts it)" % (p.name, p.pid, p.popen.returncode,
                                                   os.getpid()),
                  file=sys.stderr, flush=True)
            continue
        print("topology: %s exited (status %s); stopping\n%s"
              % (p.name, p.popen.returncode, p.log_tail()), file=sys.stderr, flush=True)
        stop = True
    now = time.monotonic()
    if topo.sentinel_ports and not stop and now >= state.get("next_poll", 0):
        state["next_poll"] = now + 1.0
        leader = topo.current_leader(timeout=0.5)
        if leader is not None and leader != state.setdefault("leader", topo.leader_port):
            print("topology: the sentinels now name 127.0.0.1:%d as the leader of '%s' "
                  "(was %d)" % (leader, SENTINEL_MASTER, state["leader"]),
                  file=sys.stderr, flush=True)
            state["leader"] = leader
    return stop


def main(argv=None):
    a, cmd = _parse(sys.argv[1:] if argv is None else argv)
    install_signal_handlers()
    if not cmd:
        install_restart_handler()
    node_ports = _default_node_ports(a.quorum_nodes, a.node_port) if a.quorum_nodes else None
    topo = Topology(replicas=a.replicas, leader_port=a.leader_port,
                    replica_ports=a.replica_port, proxy_port=a.proxy_port, prefer=a.prefer,
                    proxy=not a.no_proxy, rcproxy=a.rcproxy, proxy_args=a.proxy_arg,
                    keep=a.keep, proxy_output=a.proxy_output, sentinels=a.sentinels,
                    sentinel_ports=a.sentinel_port, quorum_nodes=a.quorum_nodes,
                    node_ports=node_ports)
    rc = 0
    child = None
    try:
        topo.start()
        if a.env_file:
            with open(a.env_file, "w") as f:
                for k, v in topo.env().items():
                    f.write("%s=%s\n" % (k, v))
        if a.message:
            print(_subst(a.message, topo), flush=True)
        deadline = time.monotonic() + a.timeout if a.timeout > 0 else None
        if cmd:
            env = dict(os.environ, **topo.env())
            child = Proc("command", [_subst(c, topo) for c in cmd], os.getcwd(), env=env,
                         inherit_output=True)
            while child.alive():
                if deadline and time.monotonic() >= deadline:
                    print("topology: command timed out after %gs" % a.timeout,
                          file=sys.stderr, flush=True)
                    child.stop(grace=3)
                    rc = 124
                    break
                time.sleep(0.1)
            else:
                rc = child.popen.returncode
                rc = 128 - rc if rc < 0 else rc
        else:
            if not a.message:
                print("topology ready: rcproxy on 127.0.0.1:%d; Ctrl-C stops everything"
                      % topo.proxy_port, flush=True)
            state = {}
            while True:
                if deadline and time.monotonic() >= deadline:
                    break
                if _watch(topo, state):
                    rc = 1
                    break
                time.sleep(0.2)
    except TopologyError as e:
        print("topology: error: %s" % e, file=sys.stderr, flush=True)
        rc = 1
    except Stop as e:
        rc = e.code if isinstance(e.code, int) else 1
        if not cmd:
            rc = 0  # Ctrl-C is the normal way to end the foreground mode
        print("\ntopology: stopping", file=sys.stderr, flush=True)
    finally:
        if child is not None:
            child.stop(grace=3)
        topo.stop()
    return rc


if __name__ == "__main__":
    sys.exit(main())
