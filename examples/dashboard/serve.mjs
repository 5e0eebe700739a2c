#!/usr/bin/env node
// Serves the dashboard as static files (ES modules and WebAssembly need
// http://, not file://): `node serve.mjs [--port 8080] [--host 127.0.0.1]`.
// The page then talks to the clusters itself; this server only hands out
// the page, concord-kv and the libraries it uses.
import { createServer } from 'node:http';
import { readFile, realpath } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const modules = join(here, 'node_modules');

/** URL prefix -> folder served under it. */
const ROOTS = [
  ['/vendor/concord-kv/', existsSync(join(modules, 'concord-kv')) ? join(modules, 'concord-kv') : join(here, '../../bindings-wasm')],
  ['/vendor/yaml/', join(modules, 'yaml/browser')],
  ['/vendor/diff/', join(modules, 'diff/libesm')],
  ['/vendor/jsonc-parser/', join(modules, 'jsonc-parser/lib/esm')],
  ['/src/', join(here, 'src')],
  ['/', here],
];
/** What may be served from the dashboard's own folder. */
const TOP = new Set(['/', '/index.html', '/style.css']);

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

async function resolve(pathname) {
  for (const [prefix, dir] of ROOTS) {
    if (!pathname.startsWith(prefix)) continue;
    if (prefix === '/' && !TOP.has(pathname)) return null;
    const rel = pathname === '/' ? 'index.html' : pathname.slice(prefix.length);
    const base = await realpath(dir);
    const file = normalize(join(base, rel));
    if (!file.startsWith(base + sep)) return null;
    // jsonc-parser's ES build imports './impl/scanner' without the
    // extension, as bundlers resolve it.
    if (!extname(file) && existsSync(`${file}.js`)) return `${file}.js`;
    return file;
  }
  return null;
}

/** Starts the server; resolves with `{ url, close }`. */
export function serve({ port = 8080, host = '127.0.0.1' } = {}) {
  const server = createServer(async (req, res) => {
    try {
      const { pathname } = new URL(req.url, 'http://x');
      const file = req.method === 'GET' || req.method === 'HEAD' ? await resolve(decodeURIComponent(pathname)) : null;
      const type = file && TYPES[extname(file)];
      if (!type) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
        return;
      }
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      ok({ url: `http://${host}:${p}/`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === (await realpath(process.argv[1]))) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const { url } = await serve({ port: Number(arg('--port', 8080)), host: arg('--host', '127.0.0.1') });
  console.log(`Concord dashboard on ${url} (connect it to http://127.0.0.1:2379 or any cluster that allows CORS)`);
}
