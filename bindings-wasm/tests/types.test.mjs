// The TypeScript definitions compile, under --strict, against code that
// uses every part of the API (tests/types-check.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('index.d.ts types the API under tsc --strict', () => {
  const dir = new URL('..', import.meta.url).pathname;
  const r = spawnSync('node_modules/.bin/tsc', ['--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext',
    '--moduleResolution', 'nodenext', 'tests/types-check.ts'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
