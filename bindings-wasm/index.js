// concord-kv: Concord's (and etcd's) client for browsers and Node 18+, on
// the shared Rust client compiled to WebAssembly. This file only shapes it
// as JavaScript expects (classes, async iterators, error subclasses); the
// behaviour (failover, watch resume, keep-alive, token renewal) is the
// shared client's.
import init, { NativeClient, usePost } from './pkg/concord_wasm.js';

let loading;
function load() {
  if (!loading) {
    loading = (async () => {
      if (typeof process !== 'undefined' && process.versions && process.versions.node) {
        const { readFile } = await import('node:fs/promises');
        await init({ module_or_path: await readFile(new URL('./pkg/concord_wasm_bg.wasm', import.meta.url)) });
        usePost(await nodePost());
      } else {
        await init({ module_or_path: new URL('./pkg/concord_wasm_bg.wasm', import.meta.url) });
      }
    })();
  }
  return loading;
}

/**
 * Under Node, unary calls go over `node:http` with keep-alive connections:
 * Node's `fetch` costs several times more per request. Streams (watch,
 * observe, keep-alive) stay on `fetch`.
 */
async function nodePost() {
  const http = await import('node:http');
  const https = await import('node:https');
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 256 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 256 }),
  };
  // Connection-level failures that mean the request never left.
  const UNSENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
  return (url, body, token) => new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers = { 'content-type': 'application/json', 'content-length': body.length };
    if (token !== null) headers.authorization = token;
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method: 'POST', headers, agent: agents[u.protocol] }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: new Uint8Array(Buffer.concat(chunks)) }));
      res.on('error', (e) => reject({ unsent: false, message: e.message }));
    });
    // The client gives up on an attempt at its own deadline; a member that
    // never answers must not hold the socket forever either.
    req.setTimeout(120000, () => req.destroy(new Error('no answer in 120 s')));
    // A reset on a kept-alive socket is not retried here: the member may
    // have applied the request before it went away. The shared client
    // decides (it repeats reads elsewhere, reports a write as indeterminate).
    req.on('error', (e) => reject({ unsent: UNSENT.has(e.code), message: e.message }));
    req.end(body);
  });
}

/** Every error of the client: `code` is etcd's gRPC code, `kind` the client's. */
export class ConcordError extends Error {
  constructor(message, code, kind) {
    super(message);
    this.name = 'ConcordError';
    this.code = code;
    this.kind = kind;
  }
}
export class CompactedError extends ConcordError {}
export class FutureRevisionError extends ConcordError {}
export class LeaseNotFoundError extends ConcordError {}
export class PermissionDeniedError extends ConcordError {}
export class AuthenticationFailedError extends ConcordError {}
export class InvalidTokenError extends ConcordError {}
export class TooManyRequestsError extends ConcordError {}
export class TimeoutError extends ConcordError {}
export class UnavailableError extends ConcordError {}
export class InvalidArgumentError extends ConcordError {}
export class WatchCanceledError extends ConcordError {}

const KINDS = {
  Compacted: CompactedError,
  FutureRevision: FutureRevisionError,
  LeaseNotFound: LeaseNotFoundError,
  PermissionDenied: PermissionDeniedError,
  AuthFailed: AuthenticationFailedError,
  InvalidAuthToken: InvalidTokenError,
  TooManyRequests: TooManyRequestsError,
  Timeout: TimeoutError,
  Unavailable: UnavailableError,
  InvalidArgument: InvalidArgumentError,
  Canceled: WatchCanceledError,
};

/** The native error (or a TypeError from argument checks) as a ConcordError subclass. */
function wrap(e) {
  if (e && e.name === 'ConcordError' && !(e instanceof ConcordError)) {
    const Class = KINDS[e.kind] || ConcordError;
    const err = new Class(e.message, e.code, e.kind);
    if (e.compactRevision !== undefined) err.compactRevision = e.compactRevision;
    return err;
  }
  return e;
}

async function call(p) {
  try {
    return await p;
  } catch (e) {
    throw wrap(e);
  }
}

const enc = new TextEncoder();
const prefixEnd = (key) => {
  const b = typeof key === 'string' ? enc.encode(key) : Uint8Array.from(key);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) return Uint8Array.from([...b.subarray(0, i), b[i] + 1]);
  }
  return Uint8Array.of(0);
};

/** A lease ID as given: a `Lease`, or its ID as a string, bigint or number. */
const leaseIdOf = (id) => (id instanceof Lease ? id.id : id);

/** A watch: `for await (const event of watch)`; `cancel()` ends it. */
export class Watch {
  constructor(native) {
    this._native = native;
    this._queue = [];
    this.revision = 0;
  }
  /** The next response `{ revision, events }`, or null once canceled. */
  async nextResponse() {
    const r = await call(this._native.next());
    if (r) this.revision = r.revision;
    return r;
  }
  async next() {
    while (this._queue.length === 0) {
      const r = await this.nextResponse();
      if (r === null) return { done: true, value: undefined };
      this._queue.push(...r.events);
    }
    return { done: false, value: this._queue.shift() };
  }
  async return() {
    this.cancel();
    return { done: true, value: undefined };
  }
  [Symbol.asyncIterator]() {
    return this;
  }
  cancel() {
    this._native.cancel();
  }
}

/** A lease; with `keepAlive`, `lost` resolves with the error once it is lost. */
export class Lease {
  constructor(client, id, keepAlive) {
    this._client = client;
    this.id = id;
    this._keepAlive = keepAlive;
    this.lost = keepAlive ? keepAlive.lost().then(wrap) : new Promise(() => {});
  }
  async timeToLive() {
    return call(this._client._n.leaseTimeToLive(this.id));
  }
  /** Revokes the lease (its keys are deleted) and stops keeping it alive. */
  async revoke() {
    if (this._keepAlive) this._keepAlive.close();
    await call(this._client._n.leaseRevoke(this.id));
  }
  /** Stops keeping the lease alive (it then expires on its own). */
  release() {
    if (this._keepAlive) this._keepAlive.close();
  }
}

/** An election: campaign, leader, observe, proclaim, resign. */
export class Election {
  constructor(client, name) {
    this._client = client;
    this.name = name;
    this._leadership = null;
  }
  /** Waits until elected with `value` (on a lease kept alive, `ttl` seconds). */
  async campaign(value, { ttl = 60 } = {}) {
    const lease = await this._client.lease(ttl, { keepAlive: true });
    try {
      this._leadership = await call(this._client._n.campaign(this.name, lease.id, value));
      this._lease = lease;
      return this._leadership;
    } catch (e) {
      await lease.revoke().catch(() => {});
      throw e;
    }
  }
  async proclaim(value) {
    if (!this._leadership) throw new ConcordError('not the leader: campaign first', 9, 'Other');
    await call(this._client._n.proclaim(this._leadership, value));
  }
  async resign() {
    if (!this._leadership) return;
    const l = this._leadership;
    this._leadership = null;
    await call(this._client._n.resign(l));
    await this._lease.revoke().catch(() => {});
  }
  /** The leader's key-value, or null. */
  async leader() {
    return call(this._client._n.leader(this.name));
  }
  /** Each leader (key-value) as it changes: `for await (const kv of election.observe())`. */
  observe() {
    const native = this._client._n.observe(this.name);
    return {
      next: async () => {
        const kv = await call(native.next());
        return kv === null ? { done: true, value: undefined } : { done: false, value: kv };
      },
      return: async () => {
        native.cancel();
        return { done: true, value: undefined };
      },
      cancel: () => native.cancel(),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

export class Client {
  constructor(native) {
    this._n = native;
  }
  /** `{ endpoints, user, password, timeoutMs }`. */
  static async connect(opts = {}) {
    await load();
    return new Client(await call(NativeClient.connect(opts)));
  }
  /** `{ revision, prevKv? }` */
  async put(key, value, opts = {}) {
    return call(this._n.put(key, value, opts));
  }
  /** The key-value, or null. */
  async get(key, opts = {}) {
    const r = await call(this._n.range(key, { ...opts, prefix: false, rangeEnd: undefined, limit: 1 }));
    return r.kvs.length ? r.kvs[0] : null;
  }
  /** Every key-value under `prefix`. */
  async getPrefix(prefix, opts = {}) {
    return (await call(this._n.range(prefix, { ...opts, prefix: true }))).kvs;
  }
  /** Key-values in `[start, end)`. */
  async getRange(start, end, opts = {}) {
    return (await call(this._n.range(start, { ...opts, rangeEnd: end }))).kvs;
  }
  /** The whole range answer `{ kvs, count, more, revision }`. */
  async range(key, opts = {}) {
    return call(this._n.range(key, opts));
  }
  /** `{ deleted, revision, prevKvs }` */
  async delete(key, opts = {}) {
    return call(this._n.delete(key, opts));
  }
  async deletePrefix(prefix, opts = {}) {
    return call(this._n.delete(prefix, { ...opts, prefix: true }));
  }
  /** `{ compare, success, failure }` -> `{ succeeded, revision, responses }` */
  async txn(spec) {
    return call(this._n.txn(spec));
  }
  /** A watch of `key` (`{ prefix, rangeEnd, startRevision, prevKv, noPut, noDelete }`). */
  async watch(key, opts = {}) {
    return new Watch(await call(this._n.watch(key, opts)));
  }
  /** A lease of `ttl` seconds; `{ keepAlive: true }` refreshes it in the background. */
  async lease(ttl, { keepAlive = false, id } = {}) {
    const leaseId = await call(this._n.leaseGrant(ttl, id));
    const ka = keepAlive ? await call(this._n.keepAlive(leaseId)) : null;
    return new Lease(this, leaseId, ka);
  }
  /** The IDs of every lease on the cluster (decimal strings). */
  async leases() {
    return call(this._n.leases());
  }
  /** `{ ttl, grantedTtl, keys }` of any lease by ID (`ttl` -1: it does not exist). */
  async leaseTimeToLive(id) {
    return call(this._n.leaseTimeToLive(leaseIdOf(id)));
  }
  /** Revokes any lease by ID: its keys are deleted. */
  async revokeLease(id) {
    await call(this._n.leaseRevoke(leaseIdOf(id)));
  }
  /**
   * Runs `fn(lock)` holding lock `name` (`lock.key`, `lock.revision`: the
   * fencing token), then releases it. `{ ttl, timeoutMs }`.
   */
  async lock(name, fn, { ttl = 60, timeoutMs = -1 } = {}) {
    const lease = await this.lease(ttl, { keepAlive: true });
    let held;
    try {
      held = await call(this._n.lock(name, lease.id, timeoutMs));
    } catch (e) {
      await lease.revoke().catch(() => {});
      throw e;
    }
    const lock = { key: held.key, revision: held.revision, lease, lost: lease.lost };
    try {
      return await fn(lock);
    } finally {
      await call(this._n.unlock(held.key)).catch(() => {});
      await lease.revoke().catch(() => {});
    }
  }
  election(name) {
    return new Election(this, name);
  }
  async status() {
    return call(this._n.status());
  }
  async members() {
    return call(this._n.members());
  }
}

export { prefixEnd };
