#!/usr/bin/env node
// ioredis_test.js PORT [--rcproxy] -- common commands through ioredis, results checked.
//
// Reads that follow writes are retried for a bounded time (the proxy may serve
// them from a replica that lags a little); results of writes are checked exactly.
// Prints "ok NAME" / "FAIL NAME: why" per check; exits 1 if any failed.
'use strict';

const assert = require('node:assert/strict');
const Redis = require('ioredis');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: ioredis_test.js PORT [--rcproxy]');
  process.exit(2);
}
const isRcproxy = process.argv.slice(3).includes('--rcproxy');
const PREFIX = `ior:${process.pid}:${Date.now()}:`;
const LAG_MS = 5000;
const k = (name) => PREFIX + name;
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

function client(opts = {}) {
  const c = new Redis({
    host: '127.0.0.1', port, lazyConnect: false, connectTimeout: 5000, commandTimeout: 10000,
    maxRetriesPerRequest: 1, retryStrategy: () => null, enableOfflineQueue: true, ...opts,
  });
  c.on('error', () => {}); // surfaced through the failing commands instead
  return c;
}

// Call fn until its result deep-equals expected (bounded); throw with the last value.
async function eventually(fn, expected, ms = LAG_MS) {
  const deadline = Date.now() + ms;
  let got;
  for (;;) {
    got = await fn();
    try { assert.deepStrictEqual(got, expected); return got; } catch (e) { /* retry */ }
    if (Date.now() >= deadline) {
      throw new Error(`expected ${JSON.stringify(expected)}, still got ${JSON.stringify(got)} after ${ms} ms`);
    }
    await sleep(20);
  }
}

const checks = [];
const check = (name, fn) => checks.push([name, fn]);
let r; // main client

check('ping_echo', async () => {
  assert.equal(await r.ping(), 'PONG');
  assert.equal(await r.echo('hello world'), 'hello world');
});

check('strings', async () => {
  assert.equal(await r.set(k('s'), 'v1'), 'OK');
  await eventually(() => r.get(k('s')), 'v1');
  assert.equal(await r.set(k('s'), 'x', 'NX'), null);
  assert.equal(await r.append(k('s'), 'abc'), 5);
  await eventually(() => r.strlen(k('s')), 5);
  assert.equal(await r.getdel(k('s')), 'v1abc');
  await eventually(() => r.exists(k('s')), 0);
  const buf = Buffer.from([0, 1, 2, 13, 10, 255, 42]);
  assert.equal(await r.set(k('bin'), buf), 'OK');
  await eventually(async () => (await r.getBuffer(k('bin'))).equals(buf), true);
});

check('incr_expire', async () => {
  assert.equal(await r.incr(k('n')), 1);
  assert.equal(await r.incrby(k('n'), 9), 10);
  assert.equal(await r.decr(k('n')), 9);
  assert.equal(await r.expire(k('n'), 100), 1);
  await eventually(async () => { const t = await r.ttl(k('n')); return t >= 90 && t <= 100; }, true);
  assert.equal(await r.set(k('px'), 'short', 'PX', 200), 'OK');
  await eventually(() => r.get(k('px')), null, LAG_MS + 1000);
});

check('mset_mget_del', async () => {
  assert.equal(await r.mset(k('a'), '1', k('b'), '2', k('c'), '3'), 'OK');
  await eventually(() => r.mget(k('a'), k('b'), k('c'), k('none')), ['1', '2', '3', null]);
  assert.equal(await r.del(k('a'), k('b'), k('none')), 2);
  await eventually(() => r.exists(k('a'), k('b'), k('c')), 1);
});

check('lists_hashes_sets_zsets', async () => {
  assert.equal(await r.rpush(k('l'), 'a', 'b', 'c'), 3);
  await eventually(() => r.lrange(k('l'), 0, -1), ['a', 'b', 'c']);
  assert.equal(await r.lpop(k('l')), 'a');
  assert.equal(await r.hset(k('h'), { f1: 'v1', f2: 'v2' }), 2);
  await eventually(() => r.hgetall(k('h')), { f1: 'v1', f2: 'v2' });
  assert.equal(await r.hincrby(k('h'), 'n', 5), 5);
  assert.equal(await r.sadd(k('set'), 'x', 'y', 'x'), 2);
  await eventually(async () => (await r.smembers(k('set'))).sort(), ['x', 'y']);
  assert.equal(await r.zadd(k('z'), 2, 'b', 1, 'a'), 2);
  await eventually(() => r.zrange(k('z'), 0, -1, 'WITHSCORES'), ['a', '1', 'b', '2']);
  assert.equal(await r.zincrby(k('z'), 5, 'a'), '6');
});

check('pipeline', async () => {
  const res = await r.pipeline()
    .set(k('p1'), 'one').incr(k('pn')).incr(k('pn')).rpush(k('pl'), 'x', 'y').echo('in-pipe')
    .exec();
  assert.deepEqual(res, [[null, 'OK'], [null, 1], [null, 2], [null, 2], [null, 'in-pipe']]);
  await eventually(() => r.pipeline().get(k('p1')).get(k('pn')).lrange(k('pl'), 0, -1).exec(),
    [[null, 'one'], [null, '2'], [null, ['x', 'y']]]);
  // many commands in flight at once, replies in order
  const p = r.pipeline();
  for (let i = 0; i < 1000; i++) p.incr(k('pcount'));
  const many = await p.exec();
  assert.deepEqual(many.map(([err, v]) => (err ? String(err) : v)),
    Array.from({ length: 1000 }, (_, i) => i + 1));
  // and without an explicit pipeline: concurrent promises on one connection
  const vals = await Promise.all(Array.from({ length: 200 }, (_, i) => r.echo(`e${i}`)));
  assert.deepEqual(vals, Array.from({ length: 200 }, (_, i) => `e${i}`));
});

check('multi_exec', async () => {
  const res = await r.multi().set(k('t1'), 'a').incr(k('tn')).get(k('t1')).get(k('tn')).exec();
  assert.deepEqual(res, [[null, 'OK'], [null, 1], [null, 'a'], [null, '1']]);
  // WATCH + a concurrent change aborts EXEC (null result)
  const w = client();
  const other = client();
  try {
    assert.equal(await w.watch(k('w')), 'OK');
    await other.set(k('w'), 'changed');
    const aborted = await w.multi().set(k('w'), 'mine').exec();
    assert.equal(aborted, null);
  } finally {
    w.disconnect();
    other.disconnect();
  }
  await eventually(() => r.get(k('w')), 'changed');
});

check('pubsub', async () => {
  const sub = client();
  const pub = client();
  try {
    const got = new Promise((resolve) => {
      sub.on('message', (ch, msg) => { if (ch === k('chan')) resolve(msg); });
    });
    assert.equal(await sub.subscribe(k('chan')), 1);
    // publish until it arrives: the subscription may be on a replica's link
    let msg = null;
    const deadline = Date.now() + LAG_MS;
    while (msg === null && Date.now() < deadline) {
      await pub.publish(k('chan'), 'hello');
      msg = await Promise.race([got, sleep(300).then(() => null)]);
    }
    assert.equal(msg, 'hello');
    await sub.unsubscribe();
  } finally {
    sub.disconnect();
    pub.disconnect();
  }
  assert.equal(await r.ping(), 'PONG');
});

check('select_db_and_name', async () => {
  const r9 = client({ db: 9, connectionName: 'ior-db9' });
  try {
    assert.equal(await r9.set(k('db'), 'in9'), 'OK');
    await eventually(() => r9.get(k('db')), 'in9');
    assert.equal(await r.get(k('db')), null);
    assert.equal(await r9.client('GETNAME'), 'ior-db9');
    assert.equal(await r9.del(k('db')), 1);
  } finally {
    r9.disconnect();
  }
  assert.equal(await r.client('SETNAME', 'ior-main'), 'OK');
  assert.equal(await r.client('GETNAME'), 'ior-main');
});

check('scan_info_errors', async () => {
  const want = Array.from({ length: 25 }, (_, i) => k(`scan:${String(i).padStart(2, '0')}`));
  await r.mset(...want.flatMap((key) => [key, '1']));
  const scanAll = () => new Promise((resolve, reject) => {
    const keys = [];
    r.scanStream({ match: k('scan:*'), count: 7 })
      .on('data', (batch) => keys.push(...batch))
      .on('end', () => resolve([...new Set(keys)].sort()))
      .on('error', reject);
  });
  await eventually(scanAll, want);
  const info = await r.info();
  assert.match(info, /redis_version:/);
  if (isRcproxy) {
    const sec = await r.info('rcproxy');
    assert.match(sec, /rcproxy_version:/);
    assert.match(sec, /mode:leader/);
  }
  await assert.rejects(r.call('NOSUCHCOMMAND', 'x'), /unknown command/i);
  await r.lpush(k('wrongtype'), 'x');
  await assert.rejects(r.get(k('wrongtype')), /WRONGTYPE/);
  assert.equal(await r.ping(), 'PONG');
});

async function cleanup() {
  try {
    const keys = [];
    await new Promise((resolve, reject) => {
      r.scanStream({ match: `${PREFIX}*`, count: 500 })
        .on('data', (b) => keys.push(...b)).on('end', resolve).on('error', reject);
    });
    for (let i = 0; i < keys.length; i += 200) await r.del(...keys.slice(i, i + 200));
  } catch (e) { /* best effort */ }
}

async function main() {
  r = client();
  let failed = 0;
  for (const [name, fn] of checks) {
    const t0 = Date.now();
    try {
      await fn();
      console.log(`ok   ${name.padEnd(26)} ${((Date.now() - t0) / 1000).toFixed(2)}s`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name.padEnd(26)} ${e && e.message ? e.message.split('\n')[0] : e}`);
      if (process.env.VERBOSE) console.log(e);
    }
  }
  await cleanup();
  r.disconnect();
  console.log(`ioredis: ${checks.length} checks, ${failed} failing`);
  process.exit(failed ? 1 : 0);
}

// a hard bound on the whole run
setTimeout(() => { console.log('FAIL ioredis_test timed out after 120 s'); process.exit(1); }, 120000).unref();
main().catch((e) => { console.log(`FAIL ioredis_test crashed: ${e && e.stack}`); process.exit(1); });
