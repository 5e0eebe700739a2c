// Arguments of every wrong shape: each call settles (resolves, or rejects
// with a TypeError or a ConcordError) and the module keeps working.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, ConcordError } from '../index.js';
import { Server } from './server.mjs';

let server;
before(async () => {
  server = await Server.start('concord');
});
after(async () => {
  await server?.stop();
});

const throwing = new Proxy({}, {
  get() {
    throw new Error('a getter that throws');
  },
});
const badIterable = { [Symbol.iterator]() { throw new Error('an iterator that throws'); } };
const VALUES = [undefined, null, 0, -1, NaN, Infinity, 2 ** 64, 10n ** 30n, '', 'x', true, {}, [], [1, 2],
  { length: 1e10 }, throwing, badIterable, Symbol('s'), () => {}, new Uint8Array(3)];

/** A refusal: ours, or the exception the caller's own getter or iterator threw. */
const refusal = (e) => e instanceof TypeError || e instanceof ConcordError || /a getter that throws|an iterator that throws/.test(e?.message);

async function settles(what, f) {
  let p;
  try {
    p = f();
  } catch (e) {
    assert.ok(refusal(e), `${what} threw ${e}`);
    return;
  }
  const outcome = await Promise.race([
    Promise.resolve(p).then(() => 'ok', (e) => (refusal(e) ? 'refused' : `threw ${e}`)),
    new Promise((r) => setTimeout(() => r('hung'), 3000)),
  ]);
  assert.ok(outcome === 'ok' || outcome === 'refused', `${what}: ${outcome}`);
}

test('every method, every wrong shape of argument', async () => {
  const c = await Client.connect({ endpoints: [server.endpoint], timeoutMs: 2000 });
  for (const [i, v] of VALUES.entries()) {
    const name = `value #${i}`;
    await settles(`connect endpoints ${name}`, () => Client.connect({ endpoints: v, timeoutMs: 300 }));
    await settles(`connect ${name}`, () => Client.connect(v));
    await settles(`put key ${name}`, () => c.put(v, 'x'));
    await settles(`put value ${name}`, () => c.put('k', v));
    await settles(`put opts ${name}`, () => c.put('k', 'x', v));
    await settles(`put lease ${name}`, () => c.put('k', 'x', { lease: v }));
    await settles(`range opts ${name}`, () => c.range('k', v));
    await settles(`range sort ${name}`, () => c.range('k', { sort: v, limit: v, revision: v }));
    await settles(`delete ${name}`, () => c.delete(v, { rangeEnd: v }));
    await settles(`txn ${name}`, () => c.txn(v));
    await settles(`txn compare ${name}`, () => c.txn({ compare: v }));
    await settles(`txn compare item ${name}`, () => c.txn({ compare: [v] }));
    await settles(`txn compare value ${name}`, () => c.txn({ compare: [{ key: 'k', target: 'version', value: v }] }));
    await settles(`txn success ${name}`, () => c.txn({ success: v, failure: [v] }));
    await settles(`watch ${name}`, async () => (await c.watch(v, { startRevision: v })).cancel());
    await settles(`lease ttl ${name}`, () => c.lease(v));
    await settles(`lease id ${name}`, () => c.leaseTimeToLive(v));
    await settles(`revoke ${name}`, () => c.revokeLease(v));
    await settles(`lock ${name}`, () => c.lock(v, () => 1, { timeoutMs: 200 }));
    await settles(`leader ${name}`, () => c.election(v).leader());
  }
  // Still working, and nothing was written under a wrong key by accident.
  await c.put('after', 'fine');
  assert.equal((await c.get('after')).valueString, 'fine');
});
