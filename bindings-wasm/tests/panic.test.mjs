// A Rust panic inside concord-kv: the calls in flight fail with a
// PanicError, the process and the module live on, clients connect again,
// watches resume without losing an event and kept-alive leases stay alive.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, ConcordError, PanicError } from '../index.js';
import { __panicForTests } from '../pkg/concord_wasm.js';
import { Server } from './server.mjs';

let server;
before(async () => {
  server = await Server.start('concord');
});
after(async () => {
  await server?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a panic in a task: calls in flight fail, everything else carries on', async () => {
  const c = await Client.connect({ endpoints: [server.endpoint] });
  const other = await Client.connect({ endpoints: [server.endpoint] });
  const w = await c.watch('p/', { prefix: true });
  const lease = await c.lease(2, { keepAlive: true });
  await c.put('p/1', 'a', { lease });
  assert.equal((await w.next()).value.kv.keyString, 'p/1');

  // A call that waits (the lock is held elsewhere) is in flight at the panic.
  const held = other.lock('busy', () => sleep(1500));
  await sleep(200);
  const waiting = c.lock('busy', () => 'got it');
  await sleep(200);
  void __panicForTests(true); // never settles: its instance is gone
  await assert.rejects(waiting, (e) => e instanceof PanicError && e instanceof ConcordError && e.code === 13 && /panic/.test(e.message));

  // Written while the watch was down on the old instance.
  await other.put('p/2', 'b');
  await c.put('p/3', 'c'); // the client connects again by itself
  const seen = [];
  for (let i = 0; i < 2; i++) seen.push((await w.next()).value.kv.keyString);
  assert.deepEqual(seen, ['p/2', 'p/3'], 'the watch resumed after p/1, nothing lost or repeated');

  // The lease (TTL 2 s) is kept alive from the new instance.
  await sleep(3000);
  assert.ok((await c.leaseTimeToLive(lease.id)).ttl > 0, 'kept alive across the panic');
  assert.equal((await c.get('p/1')).valueString, 'a');
  const raced = await Promise.race([lease.lost, sleep(10).then(() => 'alive')]);
  assert.equal(raced, 'alive');
  await held;
  lease.release();
  w.cancel();
});

test('a panic in a direct call surfaces as an exception; the next call works', async () => {
  const c = await Client.connect({ endpoints: [server.endpoint] });
  assert.throws(() => __panicForTests(false), WebAssembly.RuntimeError);
  assert.equal((await c.put('q', '1')).revision > 0, true);
  assert.equal((await c.get('q')).valueString, '1');
});
