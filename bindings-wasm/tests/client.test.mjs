// concord-kv under Node against a real concord and Debian's etcd 3.4: the
// same tests on both, plus what only a restartable local server allows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  Client, CompactedError, ConcordError, InvalidArgumentError, LeaseNotFoundError, prefixEnd,
} from '../index.js';
import { Server, freePort } from './server.mjs';

const dec = new TextDecoder();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const kind of ['concord', 'etcd']) {
  describe(`concord-kv on ${kind}`, () => {
    let server;
    let c;
    before(async () => {
      server = await Server.start(kind);
      c = await Client.connect({ endpoints: [server.endpoint], timeoutMs: 10000 });
    });
    after(async () => server && server.stop());

    test('put, get, prefix, range, delete', async () => {
      const p = await c.put('app/a', 'one');
      assert.ok(p.revision > 1);
      await c.put(new TextEncoder().encode('app/b'), Uint8Array.of(0, 1, 2));
      const a = await c.get('app/a');
      assert.equal(a.valueString, 'one');
      assert.equal(a.modRevision, p.revision);
      assert.deepEqual([...(await c.get('app/b')).value], [0, 1, 2]);
      assert.equal(await c.get('app/missing'), null);
      const again = await c.put('app/a', 'two', { prevKv: true });
      assert.equal(again.prevKv.valueString, 'one');
      assert.deepEqual((await c.getPrefix('app/')).map((kv) => kv.keyString), ['app/a', 'app/b']);
      assert.deepEqual((await c.getRange('app/a', 'app/b')).map((kv) => kv.keyString), ['app/a']);
      const sorted = await c.getPrefix('app/', { sort: { target: 'key', order: 'descend' }, limit: 1 });
      assert.deepEqual(sorted.map((kv) => kv.keyString), ['app/b']);
      const r = await c.range('app/', { prefix: true, countOnly: true });
      assert.equal(r.count, 2);
      assert.equal((await c.delete('app/a')).deleted, 1);
      const d = await c.deletePrefix('app/', { prevKv: true });
      assert.equal(d.deleted, 1);
      assert.equal(d.prevKvs[0].keyString, 'app/b');
      assert.deepEqual([...prefixEnd('app/')], [...new TextEncoder().encode('app0')]);
    });

    test('transactions, nested too', async () => {
      await c.put('t/k', 'on');
      const r = await c.txn({
        compare: [{ key: 't/k', target: 'value', result: '==', value: 'on' }],
        success: [{ put: 't/k', value: 'off' }, { get: 't/', prefix: true },
          { txn: { compare: [{ key: 't/k', target: 'version', result: '>', value: 5 }],
            failure: [{ put: 't/inner', value: 'ran' }] } }],
        failure: [{ delete: 't/k' }],
      });
      assert.equal(r.succeeded, true);
      assert.deepEqual(r.responses.map((x) => x.type), ['put', 'get', 'txn']);
      assert.equal(r.responses[1].kvs[0].valueString, 'off');
      assert.equal(r.responses[2].succeeded, false);
      assert.equal((await c.get('t/inner')).valueString, 'ran');
      await assert.rejects(
        c.txn({ success: [{ put: 't/x', value: '1' }, { put: 't/x', value: '2' }] }),
        (e) => e instanceof InvalidArgumentError && e.code === 3
          && e.message === 'etcdserver: duplicate key given in txn request',
      );
      await c.deletePrefix('t/');
    });

    test('watch: puts and deletes in order, from a past revision too', async () => {
      const first = (await c.put('w/a', '1')).revision;
      const w = await c.watch('w/', { prefix: true, startRevision: first, prevKv: true });
      await c.put('w/a', '2');
      await c.delete('w/a');
      const seen = [];
      for await (const ev of w) {
        seen.push(`${ev.type} ${ev.kv.keyString}=${ev.kv.valueString}`);
        if (seen.length === 3) break;
      }
      assert.deepEqual(seen, ['put w/a=1', 'put w/a=2', 'delete w/a=']);
    });

    test('a watch from a compacted revision fails with CompactedError', async () => {
      const old = (await c.put('cw', '1')).revision;
      await c.put('cw', '2');
      const now = (await c.put('cw', '3')).revision;
      await fetch(`${server.endpoint}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: now, physical: true }) });
      const w = await c.watch('cw', { startRevision: old });
      await assert.rejects(w.next(), (e) => e instanceof CompactedError && e.code === 11);
    });

    test('leases: keys go with them, a revoked lease is reported lost', async () => {
      const lease = await c.lease(10, { keepAlive: true });
      await c.put('l/k', 'v', { lease });
      assert.equal((await c.get('l/k')).lease, lease.id);
      const ttl = await lease.timeToLive();
      assert.ok(ttl.ttl > 0 && ttl.keys.length === 1);
      assert.ok((await c.leases()).includes(lease.id));
      const byId = await c.leaseTimeToLive(lease.id);
      assert.equal(byId.grantedTtl, 10);
      assert.deepEqual(byId.keys.map((k) => new TextDecoder().decode(k)), ['l/k']);
      await c.revokeLease(lease.id); // revoked behind the keep-alive's back
      const lost = await lease.lost;
      assert.ok(lost instanceof ConcordError, String(lost));
      assert.equal(await c.get('l/k'), null);
      assert.ok(!(await c.leases()).includes(lease.id));
      assert.equal((await c.leaseTimeToLive(lease.id)).ttl, -1);
      await assert.rejects(c.put('x', 'y', { lease: '4660' }), (e) => e instanceof LeaseNotFoundError);
      const short = await c.lease(2);
      await c.put('l/short', 'v', { lease: short });
      const deadline = Date.now() + 15000;
      while ((await c.get('l/short')) !== null && Date.now() < deadline) await sleep(200);
      assert.equal(await c.get('l/short'), null, 'the key expired with its lease');
    });

    test('locks: one holder at a time, rising fencing tokens', async () => {
      const tokens = [];
      let inside = 0;
      const worker = async () => {
        for (let i = 0; i < 3; i++) {
          await c.lock('jobs', async (lock) => {
            inside++;
            assert.equal(inside, 1, 'two holders at once');
            tokens.push(lock.revision);
            await sleep(10);
            inside--;
          }, { ttl: 10 });
        }
      };
      await Promise.all([worker(), worker(), worker()]);
      assert.equal(tokens.length, 9);
      for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i] > tokens[i - 1], `tokens rise: ${tokens}`);
    });

    test('elections: campaign, observe, proclaim, resign', async () => {
      const e1 = c.election('leader');
      const e2 = c.election('leader');
      await e1.campaign('one', { ttl: 10 });
      assert.equal((await e1.leader()).valueString, 'one');
      const obs = e1.observe();
      assert.equal((await obs.next()).value.valueString, 'one');
      const second = e2.campaign('two', { ttl: 10 });
      await e1.proclaim('uno');
      assert.equal((await obs.next()).value.valueString, 'uno');
      await e1.resign();
      await second;
      assert.equal((await obs.next()).value.valueString, 'two');
      obs.cancel();
      await e2.resign();
      assert.equal(await e1.leader(), null);
    });

    test('status and members', async () => {
      const st = await c.status();
      assert.ok(st.revision > 1 && st.dbSize > 0 && st.leader !== '0');
      const ms = await c.members();
      assert.equal(ms.length, 1);
      assert.equal(ms[0].id, st.memberId);
      assert.ok(ms[0].clientUrls[0].startsWith('http://127.0.0.1:'));
    });
  });
}

describe('concord-kv across a concord restart', () => {
  test('a watch resumes after kill -9 and restart without losing or repeating', async () => {
    const server = await Server.start('concord');
    try {
      const c = await Client.connect({ endpoints: [server.endpoint], timeoutMs: 20000 });
      const w = await c.watch('r/', { prefix: true });
      await c.put('r/1', 'a');
      const seen = [];
      const first = await w.next();
      seen.push(first.value.kv.valueString);
      await server.kill9();
      await server.run();
      await c.put('r/2', 'b');
      await c.put('r/3', 'c');
      while (seen.length < 3) seen.push((await w.next()).value.kv.valueString);
      assert.deepEqual(seen, ['a', 'b', 'c']);
      w.cancel();
      assert.equal((await w.next()).done, true);
    } finally {
      await server.stop();
    }
  });

  test('a write fails over from a member that refuses connections (it was never sent)', async () => {
    const server = await Server.start('concord');
    try {
      const dead = `http://127.0.0.1:${await freePort()}`;
      const c = await Client.connect({ endpoints: [dead, server.endpoint], timeoutMs: 10000 });
      const p = await c.put('failover', 'yes');
      assert.ok(p.revision > 1);
      assert.equal((await c.get('failover')).valueString, 'yes');
    } finally {
      await server.stop();
    }
  });

  test('user and password; a wrong password fails', async () => {
    const server = await Server.start('concord');
    try {
      const admin = await Client.connect({ endpoints: [server.endpoint] });
      for (const [path, body] of [['/v3/auth/user/add', { name: 'root', password: 'pw' }],
        ['/v3/auth/role/add', { name: 'root' }], ['/v3/auth/user/grant', { user: 'root', role: 'root' }],
        ['/v3/auth/enable', {}]]) {
        const r = await fetch(server.endpoint + path, { method: 'POST', body: JSON.stringify(body) });
        assert.equal(r.status, 200, `${path}: ${await r.text()}`);
      }
      await assert.rejects(admin.put('k', 'v'), ConcordError);
      const root = await Client.connect({ endpoints: [server.endpoint], user: 'root', password: 'pw' });
      await root.put('k', 'v');
      assert.equal((await root.get('k')).valueString, 'v');
      await assert.rejects(
        Client.connect({ endpoints: [server.endpoint], user: 'root', password: 'wrong' }),
        (e) => e instanceof ConcordError && /authentication failed/.test(e.message),
      );
      void dec;
    } finally {
      await server.stop();
    }
  });
});
