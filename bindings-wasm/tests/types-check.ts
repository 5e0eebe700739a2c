// Compiled by types.test.mjs with tsc --strict: the public types must
// describe the API as used (never run).
import { Client, ConcordError, KeyValue, WatchEvent, CompactedError, PanicError } from '../index.js';
async function main(): Promise<void> {
  const c = await Client.connect({ endpoints: ['http://127.0.0.1:2379'], timeoutMs: 1000 });
  const kv: KeyValue | null = await c.get('k');
  const p = await c.put('k', new Uint8Array([1]), { prevKv: true });
  const n: number = p.revision;
  const t = await c.txn({ compare: [{ key: 'k', target: 'version', result: '>', value: 0 }], success: [{ put: 'k', value: 'v' }, { txn: { success: [{ get: 'k', prefix: true }] } }] });
  for (const r of t.responses) { if (r.type === 'get') { const kvs: KeyValue[] = r.kvs; void kvs; } }
  const w = await c.watch('k', { prefix: true });
  for await (const ev of w) { const e: WatchEvent = ev; void e; break; }
  const lease = await c.lease(10, { keepAlive: true });
  const lost: ConcordError | null = await lease.lost;
  const ids: string[] = await c.leases(); const left: number = (await c.leaseTimeToLive(ids[0])).ttl; await c.revokeLease(lease); void left;
  const res: string = await c.lock('jobs', async (l) => String(l.revision));
  const e = c.election('x'); await e.campaign('me'); for await (const l of e.observe()) { void l.valueString; }
  try { await c.get('x'); } catch (err) { if (err instanceof CompactedError) void err.compactRevision; if (err instanceof PanicError) void err.code; }
  void kv; void n; void lost; void res;
}
void main;
