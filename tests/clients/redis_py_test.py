#!/usr/bin/python3
"""redis_py_test.py PORT [--rcproxy] -- common commands through redis-py, results checked.

Runs with Debian's /usr/bin/python3 and python3-redis (4.3.4).  Reads that follow
writes are retried for a bounded time (the proxy may serve them from a replica
that lags a little); results of the writes themselves are checked exactly.
Prints "ok NAME" / "FAIL NAME: why" per check and exits 1 if any failed.
"""

import os
import sys
import time
import traceback

import redis

HOST = "127.0.0.1"
LAG_TIMEOUT = 5.0  # seconds a read may take to see a preceding write


def usage():
    print("usage: redis_py_test.py PORT [--rcproxy]", file=sys.stderr)
    sys.exit(2)


if len(sys.argv) < 2 or not sys.argv[1].isdigit():
    usage()
PORT = int(sys.argv[1])
IS_RCPROXY = "--rcproxy" in sys.argv[2:]
PREFIX = "rpy:%d:%d:" % (os.getpid(), int(time.time() * 1000))


def client(**kw):
    kw.setdefault("decode_responses", True)
    return redis.Redis(host=HOST, port=PORT, socket_timeout=10, socket_connect_timeout=5, **kw)


def k(name):
    return PREFIX + name


def eventually(fn, expected, timeout=LAG_TIMEOUT):
    """Call fn() until it returns expected (bounded); return it or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got == expected:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError("expected %r, still got %r after %.1fs" % (expected, got, timeout))
        time.sleep(0.02)


def eq(got, expected, what=""):
    if got != expected:
        raise AssertionError("%sexpected %r, got %r" % (what + ": " if what else "", expected, got))


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


r = None  # the main client, made in main()


@check
def ping():
    eq(r.ping(), True)


@check
def echo():
    eq(r.echo("hello world"), "hello world")


@check
def strings():
    eq(r.set(k("s"), "v1"), True)
    eventually(lambda: r.get(k("s")), "v1")
    eq(r.set(k("s"), "v2", nx=True), None, "SET NX on existing key")
    eq(r.append(k("s"), "xyz"), 5, "APPEND")
    eventually(lambda: r.strlen(k("s")), 5)
    eventually(lambda: r.getrange(k("s"), 2, 4), "xyz")
    eq(r.getset(k("s"), "new"), "v1xyz", "GETSET")
    eq(r.getdel(k("s")), "new", "GETDEL")
    eventually(lambda: r.get(k("s")), None)
    eq(r.get(k("never-set")), None)


@check
def binary_and_large_values():
    rb = client(decode_responses=False)
    blob = bytes(range(256)) * 4 + b"\r\n\x00*1\r\n$3\r\n"
    eq(rb.set(k("bin"), blob), True)
    eventually(lambda: rb.get(k("bin")), blob)
    big = os.urandom(512 * 1024) + b"end"
    eq(rb.set(k("big"), big), True)
    eventually(lambda: rb.get(k("big")), big, timeout=10)
    eq(rb.getdel(k("big")), big)
    rb.close()


@check
def incr():
    eq(r.incr(k("n")), 1)
    eq(r.incrby(k("n"), 41), 42)
    eq(r.decr(k("n")), 41)
    eq(r.decrby(k("n"), 40), 1)
    eq(r.incrbyfloat(k("n"), 1.5), 2.5)
    eventually(lambda: r.get(k("n")), "2.5")
    r.set(k("notnum"), "abc")
    try:
        r.incr(k("notnum"))
        raise AssertionError("INCR on a non-integer did not fail")
    except redis.ResponseError as e:
        if "not an integer" not in str(e):
            raise AssertionError("unexpected error text: %s" % e)


@check
def mset_mget():
    data = {k("m%d" % i): "val%d" % i for i in range(10)}
    eq(r.mset(data), True)
    keys = list(data) + [k("m-missing")]
    eventually(lambda: r.mget(keys), list(data.values()) + [None])
    eq(r.msetnx({k("m0"): "x", k("m-new"): "y"}), False, "MSETNX with an existing key")


@check
def delete_exists():
    r.mset({k("d1"): "1", k("d2"): "2"})
    eventually(lambda: r.exists(k("d1"), k("d2"), k("d-missing")), 2)
    eq(r.delete(k("d1"), k("d2"), k("d-missing")), 2, "DEL count")
    eventually(lambda: r.exists(k("d1"), k("d2")), 0)
    eq(r.unlink(k("d-missing")), 0)


@check
def expire_ttl():
    r.set(k("e"), "v")
    eq(r.expire(k("e"), 100), True)
    deadline = time.monotonic() + LAG_TIMEOUT
    while True:
        t = r.ttl(k("e"))
        if 90 <= t <= 100:
            break
        if time.monotonic() > deadline:
            raise AssertionError("TTL %r not in 90..100" % t)
        time.sleep(0.02)
    eq(r.persist(k("e")), True)
    eventually(lambda: r.ttl(k("e")), -1)
    eventually(lambda: r.ttl(k("e-missing")), -2)
    eq(r.set(k("px"), "gone soon", px=200), True)
    eventually(lambda: r.get(k("px")), None, timeout=LAG_TIMEOUT + 1)
    eq(r.setex(k("ex"), 50, "v"), True)
    eventually(lambda: 0 < r.pttl(k("ex")) <= 50000, True)


@check
def lists():
    eq(r.rpush(k("l"), "a", "b", "c"), 3)
    eq(r.lpush(k("l"), "z"), 4)
    eventually(lambda: r.lrange(k("l"), 0, -1), ["z", "a", "b", "c"])
    eq(r.lpop(k("l")), "z")
    eq(r.rpop(k("l")), "c")
    eventually(lambda: r.llen(k("l")), 2)
    eventually(lambda: r.lindex(k("l"), 1), "b")
    eq(r.lrem(k("l"), 0, "a"), 1)
    eventually(lambda: r.lrange(k("l"), 0, -1), ["b"])


@check
def hashes():
    eq(r.hset(k("h"), mapping={"f1": "v1", "f2": "v2", "f3": "3"}), 3)
    eventually(lambda: r.hget(k("h"), "f1"), "v1")
    eventually(lambda: r.hgetall(k("h")), {"f1": "v1", "f2": "v2", "f3": "3"})
    eq(r.hincrby(k("h"), "f3", 4), 7)
    eq(r.hdel(k("h"), "f1", "nope"), 1)
    eventually(lambda: r.hexists(k("h"), "f1"), False)
    eventually(lambda: sorted(r.hkeys(k("h"))), ["f2", "f3"])
    eventually(lambda: r.hlen(k("h")), 2)
    eventually(lambda: r.hmget(k("h"), "f2", "f3", "x"), ["v2", "7", None])


@check
def sets():
    eq(r.sadd(k("set"), "a", "b", "c", "a"), 3)
    eventually(lambda: r.smembers(k("set")), {"a", "b", "c"})
    eventually(lambda: r.sismember(k("set"), "b"), True)
    eq(r.srem(k("set"), "b", "x"), 1)
    eventually(lambda: r.scard(k("set")), 2)
    r.sadd(k("set2"), "c", "d")
    eventually(lambda: r.sinter(k("set"), k("set2")), {"c"})
    eq(r.sunionstore(k("set3"), k("set"), k("set2")), 3)


@check
def zsets():
    eq(r.zadd(k("z"), {"a": 1, "b": 2, "c": 3}), 3)
    eventually(lambda: r.zrange(k("z"), 0, -1, withscores=True),
               [("a", 1.0), ("b", 2.0), ("c", 3.0)])
    eq(r.zincrby(k("z"), 10, "a"), 11.0)
    eventually(lambda: r.zrank(k("z"), "a"), 2)
    eventually(lambda: r.zscore(k("z"), "b"), 2.0)
    eventually(lambda: r.zrangebyscore(k("z"), 2, 3), ["b", "c"])
    eventually(lambda: r.zcard(k("z")), 3)
    eq(r.zrem(k("z"), "b"), 1)
    eventually(lambda: r.zrevrange(k("z"), 0, -1), ["a", "c"])


@check
def pipeline_plain():
    p = r.pipeline(transaction=False)
    p.set(k("p1"), "one")
    p.incr(k("pn"))
    p.incr(k("pn"))
    p.rpush(k("pl"), "x", "y")
    p.echo("in-pipe")
    p.ping()
    eq(p.execute(), [True, 1, 2, 2, "in-pipe", True], "pipeline replies")

    def reads():
        q = r.pipeline(transaction=False)
        q.get(k("p1"))
        q.get(k("pn"))
        q.lrange(k("pl"), 0, -1)
        return q.execute()
    eventually(reads, ["one", "2", ["x", "y"]])
    # a long pipeline: replies come back complete and in order
    p = r.pipeline(transaction=False)
    for i in range(1000):
        p.incr(k("pcount"))
    eq(p.execute(), list(range(1, 1001)), "1000 pipelined INCR replies")


@check
def pipeline_transaction():
    p = r.pipeline(transaction=True)
    p.set(k("t1"), "a")
    p.incr(k("tn"))
    p.get(k("t1"))
    p.get(k("tn"))
    eq(p.execute(), [True, 1, "a", "1"], "MULTI/EXEC replies")
    # WATCH: a transaction aborted by a concurrent change
    other = client()
    with r.pipeline(transaction=True) as p:
        p.watch(k("w"))
        other.set(k("w"), "changed")
        p.multi()
        p.set(k("w"), "mine")
        try:
            p.execute()
            raise AssertionError("EXEC after a WATCHed key changed did not abort")
        except redis.WatchError:
            pass
    other.close()
    eventually(lambda: r.get(k("w")), "changed")


@check
def pubsub():
    ch = k("chan")
    sub = client()
    pub = client()
    ps = sub.pubsub()
    try:
        ps.subscribe(ch)
        m = ps.get_message(timeout=5)
        eq(m and m["type"], "subscribe", "subscribe confirmation")
        ps.psubscribe(k("pat*"))
        m = ps.get_message(timeout=5)
        eq(m and m["type"], "psubscribe", "psubscribe confirmation")
        # publish until it arrives: the subscription may be on a replica's link
        got = None
        deadline = time.monotonic() + LAG_TIMEOUT
        while got is None and time.monotonic() < deadline:
            pub.publish(ch, "hello")
            m = ps.get_message(timeout=0.5)
            if m and m["type"] == "message":
                got = m
        eq(got and (got["channel"], got["data"]), (ch, "hello"), "message")
        got = None
        deadline = time.monotonic() + LAG_TIMEOUT
        while got is None and time.monotonic() < deadline:
            pub.publish(k("pattern-x"), "by pattern")
            m = ps.get_message(timeout=0.5)
            if m and m["type"] == "pmessage":
                got = m
        eq(got and (got["pattern"], got["data"]), (k("pat*"), "by pattern"), "pmessage")
        ps.unsubscribe()
        ps.punsubscribe()
    finally:
        ps.close()
        sub.close()
        pub.close()
    # the publisher's connection is still a normal one
    eq(r.ping(), True)


@check
def select_db():
    r9 = client(db=9)
    eq(r9.set(k("db"), "in9"), True)
    eventually(lambda: r9.get(k("db")), "in9")
    eq(r.get(k("db")), None, "key written in db 9 visible in db 0")
    eq(r9.delete(k("db")), 1)
    r9.close()


@check
def scan_iter():
    want = sorted(k("scan:%02d" % i) for i in range(30))
    r.mset({key: "1" for key in want})
    eventually(lambda: sorted(r.scan_iter(match=k("scan:*"), count=7)), want)
    eventually(lambda: sorted(r.scan_iter(match=k("scan:0*"))), want[:10])


@check
def info():
    inf = r.info()
    if "redis_version" not in inf:
        raise AssertionError("INFO has no redis_version: %r" % sorted(inf)[:10])
    eq(r.info("server").get("redis_version"), inf["redis_version"])
    if IS_RCPROXY:
        rc = r.info("rcproxy")
        eq(rc.get("mode"), "leader", "INFO rcproxy mode")
        if "rcproxy_version" not in rc:
            raise AssertionError("INFO rcproxy has no rcproxy_version: %r" % rc)


@check
def client_name():
    eq(r.client_setname("rpy-client"), True)
    eq(r.client_getname(), "rpy-client")
    eq(r.client_id() > 0, True, "CLIENT ID positive")


@check
def errors_keep_connection():
    try:
        r.execute_command("NOSUCHCOMMAND", "x")
        raise AssertionError("unknown command did not fail")
    except redis.ResponseError as e:
        if "unknown command" not in str(e).lower():
            raise AssertionError("unexpected error text: %s" % e)
    try:
        r.lpush(k("s-wrongtype"), "x")
        r.get(k("s-wrongtype"))
        raise AssertionError("GET on a list did not fail")
    except redis.ResponseError as e:
        if "WRONGTYPE" not in str(e):
            raise AssertionError("unexpected error text: %s" % e)
    eq(r.ping(), True)


def cleanup():
    try:
        keys = list(r.scan_iter(match=PREFIX + "*", count=500))
        for i in range(0, len(keys), 200):
            r.delete(*keys[i:i + 200])
    except redis.RedisError:
        pass


def main():
    global r
    r = client()
    failed = 0
    for fn in CHECKS:
        t0 = time.monotonic()
        try:
            fn()
            print("ok   %-26s %.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
        except Exception as e:  # report and go on with the next check
            failed += 1
            print("FAIL %-26s %s: %s" % (fn.__name__, type(e).__name__, e), flush=True)
            if os.environ.get("VERBOSE"):
                traceback.print_exc()
    cleanup()
    print("redis-py: %d checks, %d failing" % (len(CHECKS), failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
