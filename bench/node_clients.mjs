// Node clients side by side against one server: concord-kv (this
// repository's npm package, WebAssembly over the JSON gateway) against npm
// `etcd3` (gRPC), in one run, rounds alternating between clients.
//
//   node bench/node_clients.mjs --endpoint 127.0.0.1:2379 [--duration 2] [--rounds 3] [--json FILE]
//
// Workloads: put and get (of one of 1,000 keys, 256-byte values) with 1
// and with 64 calls in flight on one client. Prints a Markdown table of
// median ops/s and the ratios.
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

import { Client } from '../bindings-wasm/index.js';

const require = createRequire(new URL('../server/tests/clients/npm/', import.meta.url));
const { Etcd3 } = require('etcd3');

const { values: args } = parseArgs({
  options: {
    endpoint: { type: 'string', default: '127.0.0.1:2379' },
    duration: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
});
const duration = Number(args.duration) * 1000;
const VALUE = 'v'.repeat(256);
const KEYS = Array.from({ length: 1000 }, (_, i) => `bench/${String(i).padStart(6, '0')}`);

const makers = {
  'concord-kv': async () => {
    const c = await Client.connect({ endpoints: [`http://${args.endpoint}`] });
    return { put: (k) => c.put(k, VALUE), get: (k) => c.get(k), close: () => {} };
  },
  etcd3: async () => {
    const c = new Etcd3({ hosts: args.endpoint });
    return { put: (k) => c.put(k).value(VALUE), get: (k) => c.get(k).buffer(), close: () => c.close() };
  },
};

async function run(client, workload, inflight) {
  let n = 0;
  const stop = performance.now() + duration;
  const worker = async (w) => {
    let i = w;
    while (performance.now() < stop) {
      await client[workload](KEYS[i % KEYS.length]);
      i += inflight;
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inflight }, (_, w) => worker(w)));
  return n / ((performance.now() - t0) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {};
const names = Object.keys(makers);
for (let round = 0; round < Number(args.rounds); round++) {
  const order = round % 2 ? [...names].reverse() : names;
  for (const name of order) {
    const client = await makers[name]();
    for (const key of KEYS.slice(0, 50)) await client.put(key); // warm up, and the keys exist for get
    for (const workload of ['put', 'get']) {
      for (const inflight of [1, 64]) {
        const ops = await run(client, workload, inflight);
        (results[`${workload}/${inflight}/${name}`] ||= []).push(ops);
        if (args.json) {
          appendFileSync(args.json, `${JSON.stringify({ client: name, workload, inflight, round, ops })}\n`);
        }
      }
    }
    client.close();
  }
}
const fmt = (x) => Math.round(x).toLocaleString('en-US');
console.log('| workload | in flight | concord-kv | etcd3 (gRPC) | vs etcd3 |');
console.log('|---|---|---|---|---|');
for (const workload of ['put', 'get']) {
  for (const inflight of [1, 64]) {
    const a = median(results[`${workload}/${inflight}/concord-kv`]);
    const b = median(results[`${workload}/${inflight}/etcd3`]);
    console.log(`| ${workload} | ${inflight} | ${fmt(a)} | ${fmt(b)} | ${(a / b).toFixed(2)}x |`);
  }
}
