// npm's etcd3 (gRPC, its own election recipe on KV + leases) against a
// server at host:port: its election interoperates with the server's
// Election service (the gateway's /v3/election/*), and its maintenance
// calls answer. Exits non-zero with a message on the first failure.
import { Etcd3 } from 'etcd3';
import assert from 'node:assert/strict';

const [host, port] = process.argv.slice(2);
const base = `http://${host}:${port}`;
const b64 = (s) => Buffer.from(s).toString('base64');
const post = async (path, body) => {
  const r = await fetch(base + path, { method: 'POST', body: JSON.stringify(body) });
  const text = await r.text();
  assert.equal(r.status, 200, `${path}: ${r.status} ${text}`);
  return JSON.parse(text);
};
const within = (ms, p, what) =>
  Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error(`timed out: ${what}`)), ms))]);

const client = new Etcd3({ hosts: `${host}:${port}` });
try {
  // npm's election "jobs" keeps its queue under election/jobs/, as
  // `etcdctl elect election/jobs` and the Election service named so do.
  const election = client.election('jobs', 5);
  const a = election.campaign('npm-a');
  await within(10000, new Promise((ok, no) => { a.on('elected', ok); a.on('error', no); }), 'npm elected');
  assert.equal(await election.leader(), 'npm-a');
  const leader = await post('/v3/election/leader', { name: b64('election/jobs') });
  assert.equal(Buffer.from(leader.kv.value, 'base64').toString(), 'npm-a');

  const observer = await election.observe();
  const seen = [];
  observer.on('change', (v) => seen.push(v));

  // The server's Campaign waits behind npm's candidate, then leads.
  const lease = await post('/v3/lease/grant', { TTL: 10 });
  const theirs = post('/v3/election/campaign', { name: b64('election/jobs'), lease: lease.ID, value: b64('svc-b') });
  await new Promise((ok) => setTimeout(ok, 300));
  await a.resign();
  const won = await within(10000, theirs, 'service campaign');
  assert.equal(Buffer.from(won.leader.key, 'base64').toString().startsWith('election/jobs/'), true);
  await within(10000, (async () => { while (!seen.includes('svc-b')) await new Promise((ok) => setTimeout(ok, 50)); })(), 'observer saw svc-b');
  assert.equal(await election.leader(), 'svc-b');
  await observer.cancel();
  await post('/v3/election/resign', { leader: won.leader });
  assert.equal(await election.leader(), undefined);

  // Maintenance, as npm's etcd3 exposes it (raw RPCs).
  const alarms = await client.maintenance.alarm({ action: 'Get', memberID: 0, alarm: 'None' });
  assert.deepEqual(alarms.alarms, []);
  const st = await client.maintenance.status();
  assert.ok(Number(st.dbSize) > 0);
  await client.maintenance.defragment();
  // (etcd3 1.1.2's hashKV() cannot be called: grpc-js names the method
  // differently from what the package asks for, against etcd too.)
  const h1 = await client.maintenance.hash();
  const h2 = await client.maintenance.hash();
  assert.equal(h1.hash, h2.hash);
  console.log('npm etcd3: election and maintenance OK');
} finally {
  client.close();
}
