// Real servers for the tests: a `concord` process (CONCORD_BIN, or the
// workspace's debug build) and Debian's etcd 3.4, each on a free port with
// data in a temporary folder; restartable on the same port and data.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

export function concordBin() {
  if (process.env.CONCORD_BIN) return process.env.CONCORD_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(root, 'target');
  return join(target, 'debug', 'concord');
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Server {
  static async start(kind, extra = []) {
    const s = new Server(kind, extra, await freePort(), mkdtempSync(join(tmpdir(), `wasm-${kind}-`)));
    await s.run();
    return s;
  }
  constructor(kind, extra, port, dir) {
    Object.assign(this, { kind, extra, port, dir, endpoint: `http://127.0.0.1:${port}` });
  }
  argv() {
    const url = this.endpoint;
    const common = ['--data-dir', join(this.dir, 'data'), '--listen-client-urls', url, '--advertise-client-urls', url];
    if (this.kind === 'etcd') {
      return ['etcd', [...common, '--listen-peer-urls', `http://127.0.0.1:${this.peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${this.peer}`,
        '--initial-cluster', `default=http://127.0.0.1:${this.peer}`, ...this.extra]];
    }
    return [concordBin(), [...common, '--bcrypt-cost', '4', ...this.extra]];
  }
  async run() {
    if (this.kind === 'etcd' && !this.peer) this.peer = await freePort();
    const [bin, args] = this.argv();
    this.proc = spawn(bin, args, { stdio: 'ignore' });
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`${this.endpoint}/health`);
        if ((await r.text()).includes('true')) return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    throw new Error(`${this.kind} did not start`);
  }
  async kill9() {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }
  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) await this.kill9();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A cluster of `n` concord members on free ports (`members[i]` are `Server`s). */
export class Cluster {
  static async start(n, extra = []) {
    const peers = [];
    for (let i = 0; i < n; i++) peers.push(await freePort());
    const initial = peers.map((p, i) => `m${i}=http://127.0.0.1:${p}`).join(',');
    const members = [];
    for (let i = 0; i < n; i++) {
      const peer = `http://127.0.0.1:${peers[i]}`;
      const flags = ['--name', `m${i}`, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', initial, ...extra];
      members.push(new Server('concord', flags, await freePort(), mkdtempSync(join(tmpdir(), `wasm-m${i}-`))));
    }
    // Members wait for each other to be healthy: start them together.
    await Promise.all(members.map((m) => m.run()));
    return Object.assign(new Cluster(), { members, endpoints: members.map((m) => m.endpoint) });
  }
  async stop() {
    await Promise.all(this.members.map((m) => m.stop()));
  }
}
