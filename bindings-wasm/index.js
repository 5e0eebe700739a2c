// concord-kv: Concord's (and etcd's) client for browsers and Node 18+, on
// the shared Rust client compiled to WebAssembly. This file only shapes it
// as JavaScript expects (classes, async iterators, error subclasses) and
// keeps the module alive across a Rust panic; the behaviour (failover,
// watch resume, keep-alive, token renewal) is the shared client's.
import init, { NativeClient, usePost, setPanicHandler, setTrapHook, scheduleReinit, takeInFlight } from './pkg/concord_wasm.js';

const isNode = typeof process !== 'undefined' && process.versions && process.versions.node;
let loading;
/** Node's transport for unary calls (installed again on a rebuilt instance). */
let post = null;

function load() {
  if (!loading) {
    loading = (async () => {
      if (isNode) {
        const { readFile } = await import('node:fs/promises');
        await init({ module_or_path: await readFile(new URL('./pkg/concord_wasm_bg.wasm', import.meta.url)) });
        post = await nodePost();
      } else {
        await init({ module_or_path: new URL('./pkg/concord_wasm_bg.wasm', import.meta.url) });
      }
      setTrapHook((e) => onTrap(e.message));
      ready();
    })();
  }
  return loading;
}

// A Rust panic traps the WebAssembly instance (panic=abort). The glue then
// builds a fresh instance before the next call; here each instance is an
// epoch: when it traps, every call in flight on it fails with a
// PanicError, clients connect again on the next call, watches resume after
// the last event they delivered and kept-alive leases are kept alive anew.
const newEpoch = (id) => ({ id, error: null, pending: new Set() });
let epoch = newEpoch(0);
/** The epoch whose instance has our hooks installed. */
let registered = -1;

/** The instance trapped (`message`: the panic's). Once per instance. */
function onTrap(message) {
  if (registered !== epoch.id) return; // already handled; a rebuild is pending
  const old = epoch;
  epoch = newEpoch(old.id + 1);
  scheduleReinit();
  // Its requests are ended once the new instance stands (aborting runs
  // the old one's callbacks, which must find it gone, not mid-panic).
  const orphans = takeInFlight();
  setTimeout(() => {
    ready();
    for (const t of orphans.timers) clearTimeout(t);
    for (const c of orphans.controllers) c.abort();
  }, 0);
  old.error = new PanicError(`concord-kv internal error, the client reconnects: ${message}`);
  for (const reject of old.pending) reject(old.error);
  old.pending.clear();
}

/** Installs the hooks on the current instance (the first call after a trap rebuilds it). */
function ready() {
  if (registered === epoch.id) return;
  setPanicHandler(onTrap);
  if (post) usePost(post);
  registered = epoch.id;
}

/**
 * Runs a native call: its answer, or a ConcordError. `ep` is the epoch of
 * the native object called: one of a trapped instance fails at once. The
 * call is pending on its epoch until it settles (a trap rejects it).
 */
function nat(f, ep = epoch) {
  if (ep !== epoch) return Promise.reject(ep.error);
  ready();
  let answer;
  try {
    answer = f();
  } catch (e) {
    return Promise.reject(failed(e, ep));
  }
  if (!(answer instanceof Promise)) return Promise.resolve(answer);
  return new Promise((resolve, reject) => {
    ep.pending.add(reject);
    answer.then(
      (v) => {
        ep.pending.delete(reject);
        resolve(v);
      },
      (e) => {
        ep.pending.delete(reject);
        reject(failed(e, ep));
      },
    );
  });
}

/** A native call's failure as a ConcordError (a trap: its epoch's PanicError). */
function failed(e, ep) {
  if (e instanceof WebAssembly.RuntimeError) {
    if (ep === epoch) onTrap(e.message);
    return ep.error;
  }
  return wrap(e);
}

/**
 * Under Node, unary calls go over `node:http` with keep-alive connections:
 * Node's `fetch` costs several times more per request. Streams (watch,
 * observe, keep-alive) stay on `fetch`.
 */
async function nodePost() {
  const http = await import('node:http');
  const https = await import('node:https');
  // A member that never answers must not hold a socket for ever: an idle
  // socket times out after 120 s (the client gives up on an attempt at its
  // own deadline long before).
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 120000 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 256, timeout: 120000 }),
  };
  // Connection-level failures that mean the request never left.
  const UNSENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
  // Each URL parsed once: the client calls a handful of them.
  const targets = new Map();
  const target = (url) => {
    let t = targets.get(url);
    if (!t) {
      const u = new URL(url);
      const secure = u.protocol === 'https:';
      t = { mod: secure ? https : http, agent: agents[secure ? 'https:' : 'http:'], host: u.hostname, port: u.port, path: u.pathname + u.search };
      if (targets.size > 1024) targets.clear();
      targets.set(url, t);
    }
    return t;
  };
  return (url, body, token) => new Promise((resolve, reject) => {
    const t = target(url);
    const headers = token === null
      ? { 'content-type': 'application/json', 'content-length': body.length }
      : { 'content-type': 'application/json', 'content-length': body.length, authorization: token };
    const req = t.mod.request({ host: t.host, port: t.port, path: t.path, method: 'POST', headers, agent: t.agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) }));
      res.on('error', (e) => reject({ unsent: false, message: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 120 s')));
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
/** Rust code panicked: the call failed, the module and the client recover. */
export class PanicError extends ConcordError {
  constructor(message) {
    super(message, 13, 'Panic');
  }
}

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
// A PanicError is made here, never by the native side.

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

/** Runs `f()`, a stale-object-safe call on an object of an old instance. */
function quietly(f) {
  try {
    f();
  } catch {
    // an object of a trapped instance: nothing left to stop
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

/** How many times in a row a stream is reopened after panics before giving up. */
const PANIC_RETRIES = 3;

/** A watch: `for await (const event of watch)`; `cancel()` ends it. */
export class Watch {
  constructor(client, key, opts, native) {
    Object.assign(this, { _client: client, _key: key, _opts: opts, _native: native, _ep: epoch, _queue: [], _canceled: false });
    this.revision = 0;
    /** Where a watch reopened after a panic starts: just after what was delivered. */
    this._next = native.startRevision;
  }
  /** The next response `{ revision, events }`, or null once canceled. */
  async nextResponse() {
    for (let panics = 0; ; panics++) {
      try {
        const r = await nat(() => this._native.next(), this._ep);
        if (r) {
          this.revision = r.revision;
          const last = r.events.length ? r.events[r.events.length - 1].kv.modRevision : r.revision;
          this._next = Math.max(this._next, last + 1);
        }
        return r;
      } catch (e) {
        if (!(e instanceof PanicError) || this._canceled || panics >= PANIC_RETRIES) throw e;
        const ep = epoch;
        this._native = await this._client._call((n) => n.watch(this._key, { ...this._opts, startRevision: this._next }));
        this._ep = ep;
      }
    }
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
    this._canceled = true;
    quietly(() => this._native.cancel());
  }
}

/** A lease; with `keepAlive`, `lost` resolves with the error once it is lost. */
export class Lease {
  constructor(client, id, keepAlive) {
    this._client = client;
    this.id = id;
    this._keepAlive = keepAlive;
    this._ep = epoch;
    this._closed = false;
    this.lost = keepAlive ? this._lostOrNull() : new Promise(() => {});
  }
  /** The keep-alive's end: its error, or null once released; kept alive anew after a panic. */
  async _lostOrNull() {
    for (let panics = 0; ; panics++) {
      try {
        return wrap(await nat(() => this._keepAlive.lost(), this._ep));
      } catch (e) {
        if (!(e instanceof PanicError) || panics >= PANIC_RETRIES) return e;
        if (this._closed) return null;
        try {
          const ep = epoch;
          this._keepAlive = await this._client._call((n) => n.keepAlive(this.id));
          this._ep = ep;
        } catch (err) {
          return err;
        }
        if (this._closed) quietly(() => this._keepAlive.close());
      }
    }
  }
  async timeToLive() {
    return this._client.leaseTimeToLive(this.id);
  }
  /** Revokes the lease (its keys are deleted) and stops keeping it alive. */
  async revoke() {
    this.release();
    await this._client.revokeLease(this.id);
  }
  /** Stops keeping the lease alive (it then expires on its own). */
  release() {
    this._closed = true;
    if (this._keepAlive) quietly(() => this._keepAlive.close());
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
      this._leadership = await this._client._call((n) => n.campaign(this.name, lease.id, value));
      this._lease = lease;
      return this._leadership;
    } catch (e) {
      await lease.revoke().catch(() => {});
      throw e;
    }
  }
  async proclaim(value) {
    if (!this._leadership) throw new ConcordError('not the leader: campaign first', 9, 'Other');
    const l = this._leadership;
    await this._client._call((n) => n.proclaim(l, value));
  }
  async resign() {
    if (!this._leadership) return;
    const l = this._leadership;
    this._leadership = null;
    await this._client._call((n) => n.resign(l));
    await this._lease.revoke().catch(() => {});
  }
  /** The leader's key-value, or null. */
  async leader() {
    return this._client._call((n) => n.leader(this.name));
  }
  /**
   * Each leader (key-value) as it changes: `for await (const kv of
   * election.observe())`. After a panic it is observed anew (the current
   * leader first).
   */
  observe() {
    const client = this._client;
    const name = this.name;
    let native = null;
    let nativeEp = null;
    let canceled = false;
    const open = async () => {
      const ep = epoch;
      native = await client._call((n) => n.observe(name));
      nativeEp = ep;
    };
    return {
      next: async () => {
        for (let panics = 0; ; panics++) {
          try {
            if (native === null) await open();
            const kv = await nat(() => native.next(), nativeEp);
            return kv === null ? { done: true, value: undefined } : { done: false, value: kv };
          } catch (e) {
            if (!(e instanceof PanicError) || canceled || panics >= PANIC_RETRIES) throw e;
            native = null;
          }
        }
      },
      return: async () => {
        canceled = true;
        if (native) quietly(() => native.cancel());
        return { done: true, value: undefined };
      },
      cancel: () => {
        canceled = true;
        if (native) quietly(() => native.cancel());
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

export class Client {
  constructor(native, opts) {
    this._n = native;
    this._opts = opts;
    this._epoch = epoch.id;
    this._reconnecting = null;
  }
  /** `{ endpoints, user, password, timeoutMs }`. */
  static async connect(opts = {}) {
    await load();
    const id = epoch.id;
    const c = new Client(await nat(() => NativeClient.connect(opts)), opts);
    c._epoch = id;
    return c;
  }
  /** The native client on the live instance (connected again after a panic). */
  async _native() {
    if (this._epoch === epoch.id) return this._n;
    if (!this._reconnecting) {
      const id = epoch.id;
      this._reconnecting = nat(() => NativeClient.connect(this._opts)).then(
        (n) => {
          this._n = n;
          this._epoch = id;
          this._reconnecting = null;
          return n;
        },
        (e) => {
          this._reconnecting = null;
          throw e;
        },
      );
    }
    return this._reconnecting;
  }
  /** `f(native)` on the live instance (no extra turn when nothing trapped). */
  _call(f) {
    if (this._epoch === epoch.id) {
      const n = this._n;
      return nat(() => f(n));
    }
    return this._native().then((n) => nat(() => f(n)));
  }
  /** `{ revision, prevKv? }` */
  put(key, value, opts = {}) {
    return this._call((n) => n.put(key, value, opts));
  }
  /** The key-value, or null. */
  get(key, opts = {}) {
    const single = { ...opts, prefix: false, fromKey: false, rangeEnd: undefined, limit: 1 };
    return this._call((n) => n.range(key, single)).then((r) => (r.kvs.length ? r.kvs[0] : null));
  }
  /** Every key-value under `prefix`. */
  async getPrefix(prefix, opts = {}) {
    return (await this._call((n) => n.range(prefix, { ...opts, prefix: true }))).kvs;
  }
  /** Key-values in `[start, end)`. */
  async getRange(start, end, opts = {}) {
    return (await this._call((n) => n.range(start, { ...opts, rangeEnd: end }))).kvs;
  }
  /** The whole range answer `{ kvs, count, more, revision }`. */
  async range(key, opts = {}) {
    return this._call((n) => n.range(key, opts));
  }
  /** `{ deleted, revision, prevKvs }` */
  async delete(key, opts = {}) {
    return this._call((n) => n.delete(key, opts));
  }
  async deletePrefix(prefix, opts = {}) {
    return this._call((n) => n.delete(prefix, { ...opts, prefix: true }));
  }
  /** `{ compare, success, failure }` -> `{ succeeded, revision, responses }` */
  async txn(spec) {
    return this._call((n) => n.txn(spec));
  }
  /** A watch of `key` (`{ prefix, rangeEnd, startRevision, prevKv, noPut, noDelete }`). */
  async watch(key, opts = {}) {
    return new Watch(this, key, opts, await this._call((n) => n.watch(key, opts)));
  }
  /** A lease of `ttl` seconds; `{ keepAlive: true }` refreshes it in the background. */
  async lease(ttl, { keepAlive = false, id } = {}) {
    const leaseId = await this._call((n) => n.leaseGrant(ttl, id));
    const ka = keepAlive ? await this._call((n) => n.keepAlive(leaseId)) : null;
    return new Lease(this, leaseId, ka);
  }
  /** The IDs of every lease on the cluster (decimal strings). */
  async leases() {
    return this._call((n) => n.leases());
  }
  /** `{ ttl, grantedTtl, keys }` of any lease by ID (`ttl` -1: it does not exist). */
  async leaseTimeToLive(id) {
    return this._call((n) => n.leaseTimeToLive(leaseIdOf(id)));
  }
  /** Revokes any lease by ID: its keys are deleted. */
  async revokeLease(id) {
    await this._call((n) => n.leaseRevoke(leaseIdOf(id)));
  }
  /**
   * Runs `fn(lock)` holding lock `name` (`lock.key`, `lock.revision`: the
   * fencing token), then releases it. `{ ttl, timeoutMs }`.
   */
  async lock(name, fn, { ttl = 60, timeoutMs = -1 } = {}) {
    const lease = await this.lease(ttl, { keepAlive: true });
    let held;
    try {
      held = await this._call((n) => n.lock(name, lease.id, timeoutMs));
    } catch (e) {
      await lease.revoke().catch(() => {});
      throw e;
    }
    const lock = { key: held.key, revision: held.revision, lease, lost: lease.lost };
    try {
      return await fn(lock);
    } finally {
      await this._call((n) => n.unlock(held.key)).catch(() => {});
      await lease.revoke().catch(() => {});
    }
  }
  election(name) {
    return new Election(this, name);
  }
  async status() {
    return this._call((n) => n.status());
  }
  async members() {
    return this._call((n) => n.members());
  }
}

export { prefixEnd };
