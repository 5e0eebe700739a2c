// The dashboard end to end in headless Chromium (Debian's `chromium`,
// driven by playwright-core) against real `concord` processes, with a
// second client (concord-kv under Node) changing the cluster meanwhile.
// Screenshots go to $DASHBOARD_SCREENSHOTS (default target/dashboard-screenshots).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Client } from 'concord-kv';
import { Cluster, Server } from '../../../bindings-wasm/tests/server.mjs';
import { serve } from '../serve.mjs';

const root = new URL('../../../', import.meta.url).pathname;
const shots = process.env.DASHBOARD_SCREENSHOTS || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'dashboard-screenshots');
mkdirSync(shots, { recursive: true });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let server;
let web;
let browser;
let page;
let other;
const pageErrors = [];

async function shot(name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
}

/** Waits until `fn()` (in Node) is truthy. */
async function until(fn, what, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const valueOf = async (key) => (await other.get(key))?.valueString ?? null;

before(async () => {
  server = await Server.start('concord');
  web = await serve({ port: 0 });
  other = await Client.connect({ endpoints: [server.endpoint] });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1360, height: 820 } });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    // Refused requests (e.g. before login) are logged by the browser itself.
    // The panic test's own panic is logged on purpose.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource') && !m.text().includes('a panic for the tests')) {
      pageErrors.push(m.text());
    }
  });
});

after(async () => {
  await browser?.close();
  await web?.close();
  await server?.stop();
});

describe('dashboard', () => {
  test('first visit: a connection profile is saved and connects', async () => {
    await page.goto(web.url);
    await page.waitForSelector('#profile-dialog[open]');
    await page.fill('#profile-form [name=name]', 'local');
    await page.fill('#profile-form [name=endpoints]', server.endpoint);
    await page.click('#profile-form button[type=submit]');
    await page.waitForSelector('#conn.up');
    assert.equal(await page.inputValue('#profile'), await page.evaluate(() => JSON.parse(localStorage.getItem('concord-dashboard.profiles'))[0].id));
  });

  test('a key written by another client appears without reloading', async () => {
    await other.put('app/config.json', '{"name":"demo","replicas":3,"tags":["a","b"]}');
    await other.put('app/feature/flags.yaml', 'beta: true\nlimit: 10\n');
    await page.click('[data-prefix="app/"]');
    await page.waitForSelector('[data-key="app/config.json"]');
    await page.click('[data-key="app/config.json"]');
    await page.waitForFunction(() => document.querySelector('#value')?.value.includes('"replicas":3'));
    assert.equal(await page.inputValue('#format'), 'json');
    assert.match(await page.textContent('#validation'), /Valid JSON/);
    await shot('1-live-key');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot('1-live-key-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  test('the editor validates and pretty-prints; a save lands', async () => {
    await page.fill('#value', '{"name": "demo", "replicas": }');
    await page.waitForFunction(() => document.querySelector('#validation').classList.contains('bad'));
    assert.match(await page.textContent('#validation'), /JSON: .*line 1/);
    assert.ok(await page.isDisabled('#save'), 'an invalid value cannot be saved');
    await shot('2-invalid-json');
    await page.fill('#value', '{"name":"demo","replicas":5,"tags":["a","b"]}');
    await page.click('#pretty');
    const pretty = await page.inputValue('#value');
    assert.equal(pretty, JSON.stringify({ name: 'demo', replicas: 5, tags: ['a', 'b'] }, null, 2));
    await page.click('#save');
    await until(async () => (await valueOf('app/config.json')) === pretty, 'the saved value');
    await page.waitForSelector('.badges >> text=version 2');
  });

  test('a conflicting change is caught and resolved', async () => {
    const mine = '{\n  "name": "demo",\n  "replicas": 7\n}';
    await page.fill('#value', mine);
    await other.put('app/config.json', '{\n  "name": "demo",\n  "replicas": 9\n}');
    await page.waitForSelector('#remote-banner .banner');
    await page.click('#save');
    await page.waitForSelector('#conflict');
    assert.match(await page.textContent('#conflict'), /now at revision \d+ \(version 3\)/);
    assert.match(await page.textContent('#conflict .diff'), /"replicas": 9/);
    await shot('3-conflict');
    // Keep editing on top of theirs, then save: now guarded by their revision.
    await page.click('#conflict-merge');
    assert.equal(await page.inputValue('#value'), mine);
    await page.click('#save');
    await until(async () => (await valueOf('app/config.json')) === mine, 'mine saved over theirs');
    await page.waitForSelector('.badges >> text=version 4');
    assert.equal(await page.$('#conflict'), null);
  });

  test('history: an older revision is diffed and reverted to', async () => {
    const kv = await other.get('app/config.json');
    assert.equal(kv.version, 4);
    const v1 = await other.get('app/config.json', { revision: kv.createRevision });
    await page.waitForSelector(`#history [data-rev="${v1.modRevision}"]`);
    await page.click(`#history [data-rev="${v1.modRevision}"]`);
    await page.waitForSelector('#history .diff');
    assert.match(await page.textContent('#history .diff-head'), /v1/);
    await shot('4-history-diff');
    await page.click('#revert');
    await until(async () => (await valueOf('app/config.json')) === v1.valueString, 'the reverted value');
    await page.waitForSelector('.badges >> text=version 5');
  });

  test('a key is created and deleted from the page', async () => {
    await page.click('#new-key');
    await page.fill('#new-key-name', 'app/feature/limits.yaml');
    await page.fill('#value', 'max: 10\nmin:\n  - 1\n');
    assert.equal(await page.inputValue('#format'), 'yaml');
    await page.fill('#value', 'max: 10\nmin: [1\n');
    await page.waitForFunction(() => document.querySelector('#validation').classList.contains('bad'));
    await page.fill('#value', 'max: 10\nmin:\n  - 1\n');
    await page.click('#save');
    await until(async () => (await valueOf('app/feature/limits.yaml')) === 'max: 10\nmin:\n  - 1\n', 'the new key');
    // Creating is guarded too: the key must not exist yet.
    await page.click('#new-key');
    await page.fill('#new-key-name', 'app/feature/limits.yaml');
    await page.fill('#value', 'max: 99\n');
    await page.click('#save');
    await page.waitForSelector('#conflict');
    await page.click('#conflict-theirs');
    await page.waitForFunction(() => document.querySelector('#value')?.value === 'max: 10\nmin:\n  - 1\n');
    await page.click('#delete');
    await page.click('#delete'); // confirms
    await until(async () => (await valueOf('app/feature/limits.yaml')) === null, 'the key deleted');
    await page.waitForSelector('[data-key="app/feature/limits.yaml"]', { state: 'detached' });
  });

  test('a lease counts down and its key vanishes', async () => {
    const lease = await other.lease(6);
    await other.put('session/worker-1', 'alive', { lease });
    await page.click('[data-prefix="session/"]');
    await page.waitForSelector('[data-key="session/worker-1"]');
    await page.click('#tab-leases');
    const row = `tr[data-lease="${lease.id}"]`;
    await page.waitForSelector(`${row} >> text=session/worker-1`);
    const left = async () => Number((await page.textContent(`${row} .left`)).replace(/s$/, ''));
    const first = await until(async () => (await left()) || null, 'a countdown');
    assert.ok(first <= 6, `${first}`);
    await until(async () => (await left()) < first, 'the countdown to move', 4000);
    await shot('5-lease-countdown');
    await page.waitForSelector(row, { state: 'detached', timeout: 20000 });
    await page.click('#tab-keys');
    await page.waitForSelector('[data-key="session/worker-1"]', { state: 'detached', timeout: 10000 });
  });

  test('the cluster view shows the member, its leadership and figures', async () => {
    await page.click('#tab-cluster');
    await page.waitForSelector('.member.leader');
    const card = await page.textContent('.member.leader');
    assert.match(card, /Raft index\s*\d+/);
    assert.match(card, /DB size/);
    const status = await other.status();
    assert.match(card, new RegExp(BigInt(status.memberId).toString(16)));
    await shot('6-cluster');
  });

  test('a 3-member cluster: one leader, every member\'s figures, a killed leader replaced', async () => {
    const cluster = await Cluster.start(3);
    try {
      await page.goto(`${web.url}?endpoints=${encodeURIComponent(cluster.endpoints.join(','))}#cluster`);
      await page.waitForFunction(() => document.querySelectorAll('.member').length === 3
        && document.querySelectorAll('.member.leader').length === 1
        && [...document.querySelectorAll('.member')].every((m) => /Raft index\s*\d+/.test(m.textContent)));
      const leader = await page.getAttribute('.member.leader', 'data-member');
      await shot('8-cluster-of-three');
      const name = (await page.textContent('.member.leader h3')).trim();
      await cluster.members[Number(name.slice(1))].kill9();
      await page.waitForSelector(`.member.down[data-member="${leader}"]`, { timeout: 20000 });
      await page.waitForFunction((old) => {
        const l = document.querySelector('.member.leader');
        return l && l.dataset.member !== old;
      }, leader, { timeout: 20000 });
      await shot('9-leader-killed');
    } finally {
      await cluster.stop();
    }
  });

  test('with auth on, the page asks for a login and then works', async () => {
    const secured = await Server.start('concord');
    try {
      const post = (path, body) => fetch(`${secured.endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) });
      await post('/v3/auth/user/add', { name: 'root', password: 'rootpw' });
      await post('/v3/auth/role/add', { name: 'root' });
      await post('/v3/auth/user/grant', { user: 'root', role: 'root' });
      assert.equal((await post('/v3/auth/enable', {})).status, 200);
      await page.goto(`${web.url}?endpoints=${encodeURIComponent(secured.endpoint)}`);
      await page.waitForSelector('#login .login');
      await shot('7-login');
      await page.fill('#login [name=user]', 'root');
      await page.fill('#login [name=password]', 'rootpw');
      await page.click('#login button[type=submit]');
      await page.waitForSelector('#conn.up');
      assert.ok(await page.isHidden('#login'));
    } finally {
      await secured.stop();
    }
  });

  test('the same page works against etcd 3.4 (with --cors)', async () => {
    const etcd = await Server.start('etcd', ['--cors', '*']);
    try {
      const direct = await Client.connect({ endpoints: [etcd.endpoint] });
      await direct.put('svc/etcd.json', '{"from":"etcd"}');
      await page.goto(`${web.url}?endpoints=${encodeURIComponent(etcd.endpoint)}#keys`);
      await page.waitForSelector('#conn.up');
      await page.click('[data-prefix="svc/"]');
      await page.click('[data-key="svc/etcd.json"]');
      await page.waitForFunction(() => document.querySelector('#value')?.value === '{"from":"etcd"}');
      await page.click('#pretty');
      await page.click('#save');
      await until(async () => (await direct.get('svc/etcd.json'))?.version === 2, 'the save on etcd');
      await direct.put('svc/live', 'x');
      await page.waitForSelector('[data-key="svc/live"]');
      await shot('10-etcd');
    } finally {
      await etcd.stop();
    }
  });

  test('a Rust panic inside concord-kv: the page keeps working and stays live', async () => {
    await page.goto(`${web.url}?endpoints=${encodeURIComponent(server.endpoint)}#keys`);
    await page.waitForSelector('#conn.up');
    await page.evaluate(async () => {
      const m = await import('/vendor/concord-kv/pkg/concord_wasm.js');
      void m.__panicForTests(true);
    });
    await other.put('after/panic', 'still live');
    await page.click('[data-prefix="after/"]');
    await page.click('[data-key="after/panic"]');
    await page.waitForFunction(() => document.querySelector('#value')?.value === 'still live');
  });

  test('no script error happened on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
