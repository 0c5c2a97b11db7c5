#!/usr/bin/env python3
"""gen_cmdtable.py -- regenerate proxy/cmdtable_builtin.inc from a live redis-server.

Starts a private redis-server (unix socket only, no TCP port, temporary dir,
no persistence), sends COMMAND, and writes one C row per top-level command:

    { "name", arity, flags, first_key, last_key, key_step },

The rows are sorted by name; only the first six fields of each COMMAND entry
are used (Redis 7's tips, key specs and subcommands are ignored).  rcproxy's
own commands are not in this file: proxy/cmdtable.c adds them.

Usage: tools/gen_cmdtable.py [--redis-server PATH] [--out FILE]
Needs nothing but the Python standard library.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# COMMAND flag name -> C constant (flags rcproxy does not route on are dropped)
FLAG_NAMES = {
    "write": "PX_CMD_WRITE",
    "readonly": "PX_CMD_READONLY",
    "blocking": "PX_CMD_BLOCKING",
    "pubsub": "PX_CMD_PUBSUB",
    "admin": "PX_CMD_ADMIN",
    "noscript": "PX_CMD_NOSCRIPT",
    "loading": "PX_CMD_LOADING",
    "stale": "PX_CMD_STALE",
    "fast": "PX_CMD_FAST",
    "movablekeys": "PX_CMD_MOVABLEKEYS",
}
# short aliases used in the generated file to keep rows on one line
FLAG_SHORT = {c: "F_" + n.upper() for n, c in FLAG_NAMES.items()}


class RespReader:
    """Minimal blocking RESP2 reader over a socket (enough for COMMAND)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+",):
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("unexpected RESP type %r" % kind)


def fetch_command(redis_server):
    tmp = tempfile.mkdtemp(prefix="rcproxy-gencmd-")
    sock_path = os.path.join(tmp, "redis.sock")
    proc = subprocess.Popen(
        [redis_server, "--port", "0", "--unixsocket", sock_path,
         "--dir", tmp, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(sock_path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
        with s:
            s.sendall(b"INFO server\r\nCOMMAND\r\n")
            r = RespReader(s)
            info = r.read()
            cmds = r.read()
        version = "?"
        for line in info.splitlines():
            if line.startswith("redis_version:"):
                version = line.split(":", 1)[1].strip()
        return version, cmds
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def row(entry):
    name, arity, flags, first, last, step = entry[:6]
    name = name.lower()
    for v in (arity, first, last, step):
        if not -128 <= v <= 127:
            raise RuntimeError("%s: value %d does not fit the compact row" % (name, v))
    cflags = [FLAG_SHORT[FLAG_NAMES[f]] for f in flags if f in FLAG_NAMES]
    return '    { "%s", %d, %s, %d, %d, %d },' % (
        name, arity, "|".join(cflags) if cflags else "0", first, last, step)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--out", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "proxy", "cmdtable_builtin.inc"))
    args = ap.parse_args()

    version, cmds = fetch_command(args.redis_server)
    cmds.sort(key=lambda e: e[0].lower())
    lines = [
        "/* cmdtable_builtin.inc -- GENERATED by tools/gen_cmdtable.py from the",
        " * COMMAND reply of redis-server %s (%d commands).  Do not edit by hand:" % (version, len(cmds)),
        " * rerun the generator.  Included by proxy/cmdtable.c only.",
        " * Row: { name, arity, flags, first_key, last_key, key_step } */",
    ]
    for c, s in sorted(FLAG_SHORT.items(), key=lambda kv: kv[1]):
        lines.append("#define %-14s %s" % (s, c))
    lines.append("")
    lines.append("static const px_builtin_row px_builtin_rows[] = {")
    lines.extend(row(e) for e in cmds)
    lines.append("};")
    lines.append("")
    for s in sorted(FLAG_SHORT.values()):
        lines.append("#undef %s" % s)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d commands from redis %s" % (args.out, len(cmds), version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
