// Adapts wasm-bindgen's generated glue (pkg/concord_wasm.js) so that a trap
// of the instance (a Rust panic under panic=abort, or any other trap) never
// takes the JavaScript program down with it:
//
// - wasm-bindgen-futures runs Rust tasks from `queueMicrotask` callbacks. A
//   trap there is an uncaught exception, which ends a Node process. The
//   callback now catches WebAssembly.RuntimeError only, schedules a fresh
//   instance and reports the trap to index.js (which fails the calls in
//   flight with a PanicError and reconnects its clients).
// - Callbacks the old instance left with JavaScript (promise reactions of
//   its fetches, timers) still fire after the rebuild. They now do nothing
//   instead of throwing inside a promise reaction, which Node reports as an
//   unhandled rejection (and by default ends the process on).
// - The old instance's requests (reqwest's fetches, each with its
//   AbortController) and timers would stay: watch streams open for ever,
//   holding sockets, a lock's wait timer for weeks, keeping Node from
//   exiting. Both are tracked while they live; index.js aborts and clears
//   the trapped instance's (`takeInFlight()`).
// - `scheduleReinit()` and `setTrapHook(f)` are exported for index.js, for
//   traps met in synchronous calls.
//
// Every replaced line must be found exactly once: a wasm-bindgen upgrade that
// changes the glue fails the build here instead of silently losing this.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('./pkg/concord_wasm.js', import.meta.url);
let glue = readFileSync(file, 'utf8');

/** Replaces every `from` (found at least once, at most `most` times). */
function replaceEach(from, to, most = 1) {
  const n = glue.split(from).length - 1;
  if (n < 1 || n > most) {
    console.error(`patch-glue: expected ${JSON.stringify(from)} 1 to ${most} times in the glue, found it ${n} times`);
    process.exit(1);
  }
  glue = glue.split(from).join(to);
}
const replaceOnce = (from, to) => replaceEach(from, to, 1);

if (!glue.includes('let __wbg_reinit_scheduled = false;')) {
  console.error('patch-glue: the glue has no reinit machinery (is schedule_reinit still called?)');
  process.exit(1);
}
replaceOnce(
  'queueMicrotask(arg0);',
  'queueMicrotask(() => { try { arg0(); } catch (e) { if (!(e instanceof WebAssembly.RuntimeError)) throw e; __wbg_reinit_scheduled = true; if (__concord_trap_hook) __concord_trap_hook(e); } });',
);
replaceOnce(
  "throw new Error('Cannot invoke closure from previous WASM instance');",
  'return undefined; // a callback of a trapped instance: it is gone',
);
replaceOnce('const ret = new AbortController();', 'const ret = new AbortController(); __concord_track(ret);');
replaceEach('const ret = setTimeout(arg0, arg1);', 'const ret = __concord_set_timeout(arg0, arg1);', 4);
replaceEach('const ret = clearTimeout(arg0);', 'const ret = __concord_clear_timeout(arg0);', 4);
glue += `
let __concord_trap_hook = null;
/** index.js: called with the error when the instance traps inside a task. */
export function setTrapHook(f) { __concord_trap_hook = f; }
let __concord_controllers = new Set();
function __concord_track(c) {
  const live = __concord_controllers;
  live.add(c);
  c.signal.addEventListener('abort', () => live.delete(c), { once: true });
}
let __concord_timers = new Set();
function __concord_set_timeout(f, ms) {
  const live = __concord_timers;
  const id = setTimeout(() => {
    live.delete(id);
    f();
  }, ms);
  live.add(id);
  return id;
}
function __concord_clear_timeout(id) {
  __concord_timers.delete(id);
  return clearTimeout(id);
}
/** index.js: the requests and timers of the instance that trapped (later ones are tracked apart). */
export function takeInFlight() {
  const orphans = { controllers: __concord_controllers, timers: __concord_timers };
  __concord_controllers = new Set();
  __concord_timers = new Set();
  return orphans;
}
/** index.js: rebuild the instance before the next call. */
export function scheduleReinit() { __wbg_reinit_scheduled = true; }
`;
writeFileSync(file, glue);
