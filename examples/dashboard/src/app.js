// The dashboard: connection profiles, the key tree kept live by one watch,
// the value editor with compare-and-swap saves, history, leases, members.
import { Client, CompactedError } from 'concord-kv';
import * as profiles from './profiles.js';
import * as tree from './tree.js';
import { $, h, fill, toast, bytesText, hexId, confirmButton } from './ui.js';
import { asText, hexPreview, detect, validate, pretty } from './format.js';
import { diffView } from './diffview.js';

/** Most keys listed at once (the tree says when there are more). */
const LIST_LIMIT = 10000;
const enc = new TextEncoder();

const S = {
  profile: null,
  client: null,
  generation: 0, // bumps on every (re)connect; stale loops stop
  revision: 0,
  meta: new Map(), // key string -> { raw, version, modRevision, createRevision, lease }
  keys: [],
  more: 0,
  open: new Set(),
  query: '',
  selected: null,
  editor: null, // see openKey / newKey
  leases: [],
  members: [],
  statuses: new Map(),
  memberClients: new Map(),
};

// ---- connection ------------------------------------------------------------

function needsLogin(e, profile) {
  const m = String(e && e.message);
  return (
    (e && (e.kind === 'InvalidAuthToken' || e.kind === 'AuthFailed')) ||
    /user name is empty|auth: invalid auth token|authentication failed/.test(m) ||
    (e && e.kind === 'PermissionDenied' && !profile.user)
  );
}

async function connect(profile) {
  const gen = ++S.generation;
  Object.assign(S, { profile, client: null, meta: new Map(), keys: [], more: 0, selected: null, editor: null, leases: [], members: [], statuses: new Map(), memberClients: new Map() });
  localStorage.setItem('concord-dashboard.last', profile.id);
  renderProfiles();
  setConn('connecting', `Connecting to ${profile.endpoints.join(', ')}…`);
  $('#login').hidden = true;
  try {
    const client = await Client.connect({
      endpoints: profile.endpoints,
      user: profile.user || undefined,
      password: profile.password || undefined,
      timeoutMs: 5000,
    });
    if (gen !== S.generation) return;
    S.client = client;
    await loadKeys(gen);
    watchKeys(gen);
    refreshCluster(gen);
    refreshLeases(gen);
    renderDetail();
  } catch (e) {
    if (gen !== S.generation) return;
    if (needsLogin(e, profile)) {
      setConn('auth', 'Authentication required');
      showLogin(profile, e);
    } else {
      setConn('down', e.message);
      fill($('#tree'), h('p', { class: 'empty error' }, `Cannot reach the cluster: ${e.message}`),
        h('button', { onclick: () => connect(profile) }, 'Retry'));
    }
  }
}

function setConn(state, text) {
  const pill = $('#conn');
  pill.className = `pill ${state}`;
  pill.title = text;
  fill(pill, h('span', { class: 'dot' }), state === 'up' ? text : text.length > 60 ? `${text.slice(0, 57)}…` : text);
}

function showLogin(profile, err) {
  const box = $('#login');
  box.hidden = false;
  const user = h('input', { name: 'user', autocomplete: 'username', value: profile.user || 'root', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const remember = h('input', { type: 'checkbox', name: 'remember', checked: !!profile.remember });
  const form = h('form', {
    class: 'card login',
    onsubmit: (ev) => {
      ev.preventDefault();
      const p = profiles.save({ ...profile, user: user.value, password: password.value, remember: remember.checked });
      connect(p);
    },
  },
  h('h2', {}, `Sign in to ${profile.name}`),
  h('p', { class: 'muted' }, profile.user ? `The cluster refused: ${err.message}` : 'Authentication is enabled on this cluster.'),
  h('label', {}, 'User', user),
  h('label', {}, 'Password', password),
  h('label', { class: 'check' }, remember, 'Remember the password in this browser'),
  h('button', { class: 'primary', type: 'submit' }, 'Sign in'));
  fill(box, form);
  password.focus();
}

// ---- keys ------------------------------------------------------------------

function metaOf(kv) {
  return { raw: kv.key, version: kv.version, modRevision: kv.modRevision, createRevision: kv.createRevision, lease: kv.lease };
}

async function loadKeys(gen) {
  const r = await S.client.range('\0', { fromKey: true, keysOnly: true, limit: LIST_LIMIT });
  if (gen !== S.generation) return;
  S.meta = new Map(r.kvs.map((kv) => [kv.keyString, metaOf(kv)]));
  S.keys = [...S.meta.keys()];
  S.more = r.more ? r.count - r.kvs.length : 0;
  S.revision = r.revision;
  setConn('up', `${S.profile.name} · revision ${S.revision}`);
  renderTree();
}

/** One watch over the whole key space, from the listing's revision on. */
async function watchKeys(gen) {
  let w;
  try {
    w = await S.client.watch('\0', { fromKey: true, startRevision: S.revision + 1 });
  } catch (e) {
    return watchFailed(gen, e);
  }
  const stop = () => w.cancel();
  S.stopWatch = stop;
  try {
    for (;;) {
      const r = await w.nextResponse();
      if (r === null || gen !== S.generation) return;
      S.revision = Math.max(S.revision, r.revision);
      let leasesChanged = false;
      for (const ev of r.events) {
        leasesChanged ||= ev.kv.lease !== '0' || ev.type === 'delete';
        applyEvent(ev);
      }
      setConn('up', `${S.profile.name} · revision ${S.revision}`);
      scheduleTree();
      if (leasesChanged) refreshLeases(gen);
    }
  } catch (e) {
    w.cancel();
    watchFailed(gen, e);
  }
}

async function watchFailed(gen, e) {
  if (gen !== S.generation) return;
  if (e instanceof CompactedError) {
    // Events were compacted away while we were gone: list again.
    toast('The history the watch needed was compacted; reloading the keys.', 'warn');
  } else {
    setConn('down', `Watch interrupted: ${e.message}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
  if (gen !== S.generation) return;
  try {
    await loadKeys(gen);
    watchKeys(gen);
  } catch (err) {
    watchFailed(gen, err);
  }
}

function applyEvent(ev) {
  const key = ev.kv.keyString;
  if (ev.type === 'put') {
    if (!S.meta.has(key)) S.keys.push(key), (S.keysDirty = true);
    S.meta.set(key, metaOf(ev.kv));
  } else if (S.meta.delete(key)) {
    S.keys = S.keys.filter((k) => k !== key);
  }
  const ed = S.editor;
  if (!ed || ed.isNew || ed.key !== key) return;
  if (ev.type === 'put' && ed.base && ev.kv.modRevision <= ed.base.modRevision) return; // our own save
  if (ed.dirty()) {
    ed.remote = ev;
    renderRemoteBanner();
  } else if (ev.type === 'put') {
    loadIntoEditor(ev.kv, `Updated by another client at revision ${ev.kv.modRevision}.`);
  } else {
    ed.base = null;
    ed.deletedAt = ev.kv.modRevision;
    renderDetail();
  }
}

let treeQueued = false;
function scheduleTree() {
  if (treeQueued) return;
  treeQueued = true;
  requestAnimationFrame(() => {
    treeQueued = false;
    renderTree();
  });
}

function renderTree() {
  if (S.keysDirty) {
    S.keys.sort();
    S.keysDirty = false;
  }
  tree.render($('#tree'), S.keys, {
    open: S.open,
    query: S.query,
    selected: S.selected,
    meta: S.meta,
    onToggle: (p) => {
      if (S.open.has(p)) S.open.delete(p);
      else S.open.add(p);
      renderTree();
    },
    onSelect: (k) => openKey(k),
  });
  fill($('#tree-foot'),
    `${S.keys.length} key${S.keys.length === 1 ? '' : 's'}`,
    S.more ? ` (${S.more} more not listed)` : '');
}

/** Expands the folders leading to `key`. */
function reveal(key) {
  const parts = key.split('/');
  let p = '';
  for (let i = 0; i < parts.length - 1; i++) {
    p += parts[i] + '/';
    S.open.add(p);
  }
}

async function openKey(key) {
  if (S.editor && S.editor.dirty() && !window.confirm('Discard your unsaved changes?')) return;
  S.selected = key;
  reveal(key);
  setTab('keys');
  renderTree();
  const raw = S.meta.get(key)?.raw ?? enc.encode(key);
  try {
    const kv = await S.client.get(raw);
    if (S.selected !== key) return;
    if (!kv) {
      S.editor = makeEditor({ key, raw, base: null });
      S.editor.deletedAt = S.revision;
      renderDetail();
      return;
    }
    loadIntoEditor(kv);
  } catch (e) {
    toast(`Cannot read ${key}: ${e.message}`, 'error');
  }
}

function makeEditor({ key, raw, base, isNew = false }) {
  const text = base ? asText(base.value) : '';
  const ed = {
    key,
    raw,
    base,
    isNew,
    original: text ?? '',
    binary: base ? text === null : false,
    format: base && text !== null ? detect(key, text) : 'text',
    remote: null,
    history: null,
    historyPick: null,
    conflict: null,
    deletedAt: null,
    dirty: () => !ed.binary && ed.textarea && ed.textarea.value !== ed.original,
  };
  return ed;
}

function loadIntoEditor(kv, note) {
  S.editor = makeEditor({ key: kv.keyString, raw: kv.key, base: kv });
  renderDetail();
  if (note) flash(note);
}

function flash(text) {
  const n = $('#detail .live-note');
  if (!n) return;
  n.textContent = text;
  n.classList.add('show');
  setTimeout(() => {
    if (n.textContent === text) n.textContent = '';
  }, 4000);
}

function newKey() {
  if (S.editor && S.editor.dirty() && !window.confirm('Discard your unsaved changes?')) return;
  S.selected = null;
  const q = S.query.trim();
  S.editor = makeEditor({ key: q.endsWith('/') ? q : '', raw: null, base: null, isNew: true });
  setTab('keys');
  renderTree();
  renderDetail();
  $('#new-key-name')?.focus();
}

// ---- the detail pane ---------------------------------------------------------

function renderDetail() {
  const el = $('#detail');
  const ed = S.editor;
  if (!S.client) {
    fill(el, h('div', { class: 'placeholder' }, h('p', {}, 'Not connected.')));
    return;
  }
  if (!ed) {
    fill(el, h('div', { class: 'placeholder' },
      h('h2', {}, 'Pick a key'),
      h('p', { class: 'muted' }, 'Choose a key in the tree, search for one, or create a new key. Changes made elsewhere appear here as they happen.'),
      h('button', { class: 'primary', onclick: newKey }, 'New key')));
    return;
  }
  const parts = [];
  if (ed.isNew) {
    const name = h('input', { id: 'new-key-name', class: 'key-input', placeholder: 'key, e.g. config/app.json', value: ed.key, spellcheck: false });
    name.addEventListener('input', () => {
      ed.key = name.value;
      if (ed.formatAuto !== false) {
        ed.format = detect(ed.key, ed.textarea?.value || '');
        syncFormat();
      }
    });
    const leaseSel = h('select', { id: 'new-key-lease' },
      h('option', { value: '0' }, 'No lease'),
      S.leases.map((l) => h('option', { value: l.id }, `lease ${hexId(l.id)} (TTL ${l.grantedTtl}s)`)));
    leaseSel.addEventListener('change', () => (ed.lease = leaseSel.value));
    parts.push(h('div', { class: 'detail-head' }, h('h2', {}, 'New key'), name, leaseSel));
  } else {
    const b = ed.base;
    parts.push(h('div', { class: 'detail-head' },
      h('h2', { class: 'key-title', title: ed.key }, ed.key),
      b
        ? h('div', { class: 'badges' },
          h('span', { class: 'badge', title: 'version' }, `version ${b.version}`),
          h('span', { class: 'badge', title: 'revision of the last change' }, `mod rev ${b.modRevision}`),
          h('span', { class: 'badge', title: 'revision of creation' }, `created rev ${b.createRevision}`),
          b.lease !== '0' ? h('button', { class: 'badge lease', onclick: () => setTab('leases') }, `lease ${hexId(b.lease)}`) : null,
          h('span', { class: 'badge' }, bytesText(b.value.length)))
        : h('div', { class: 'badges' }, h('span', { class: 'badge warn' }, `deleted${ed.deletedAt ? ` (revision ${ed.deletedAt})` : ''}`))));
  }
  parts.push(h('div', { class: 'live-note', role: 'status' }));
  parts.push(h('div', { id: 'remote-banner' }));
  if (ed.binary) {
    parts.push(h('div', { class: 'binary' },
      h('p', {}, `This value is ${ed.base.value.length} bytes of binary data (not UTF-8); it is shown, not edited.`),
      h('pre', { class: 'hex' }, hexPreview(ed.base.value))));
  } else if (!ed.isNew && !ed.base) {
    parts.push(h('div', { class: 'placeholder' },
      h('p', {}, 'This key does not exist (any more).'),
      h('button', { onclick: () => { ed.isNew = true; ed.deletedAt = null; renderDetail(); } }, 'Create it again')));
  } else {
    if (ed.conflict) parts.push(conflictBlock(ed));
    parts.push(h('div', { class: 'workspace' },
      editorBlock(ed),
      !ed.isNew && ed.base ? historyBlock(ed) : null));
  }
  fill(el, ...parts);
  if (ed.conflict) $('#conflict')?.scrollIntoView({ block: 'nearest' });
  renderRemoteBanner();
  if (ed.textarea) updateValidation();
}

function editorBlock(ed) {
  const ta = h('textarea', { id: 'value', class: 'code', spellcheck: false, wrap: 'off', 'aria-label': 'value' });
  ta.value = ed.textarea ? ed.textarea.value : ed.original;
  ed.textarea = ta;
  ta.addEventListener('input', () => {
    updateValidation();
    renderRemoteBanner();
  });
  ta.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 's') {
      e.preventDefault();
      save();
    } else if (e.key === 'Tab') {
      e.preventDefault();
      ta.setRangeText('  ', ta.selectionStart, ta.selectionEnd, 'end');
      updateValidation();
    }
  });
  const fmt = h('select', { id: 'format', 'aria-label': 'format' },
    ['text', 'json', 'yaml'].map((f) => h('option', { value: f, selected: f === ed.format }, f.toUpperCase())));
  fmt.addEventListener('change', () => {
    ed.format = fmt.value;
    ed.formatAuto = false;
    updateValidation();
  });
  const tools = h('div', { class: 'toolbar' },
    h('label', { class: 'inline' }, 'Format', fmt),
    h('button', { id: 'pretty', title: 'Pretty-print the JSON or YAML', onclick: () => {
      ta.value = pretty(ed.format, ta.value);
      updateValidation();
    } }, 'Pretty-print'),
    h('span', { class: 'grow' }),
    h('button', { id: 'discard', onclick: () => {
      ta.value = ed.original;
      ed.remote = null;
      updateValidation();
      renderRemoteBanner();
    } }, 'Discard changes'),
    !ed.isNew ? confirmButton('Delete', 'Really delete?', () => del(), { id: 'delete', class: 'danger' }) : null,
    h('button', { id: 'save', class: 'primary', onclick: () => save(), title: 'Save (Ctrl+S); refused if someone else changed the key meanwhile' },
      ed.isNew ? 'Create' : 'Save'));
  return h('div', { class: 'editor' }, tools, ta, h('div', { id: 'validation', class: 'validation' }));
}

function syncFormat() {
  const f = $('#format');
  if (f) f.value = S.editor.format;
  updateValidation();
}

function updateValidation() {
  const ed = S.editor;
  const el = $('#validation');
  if (!ed || !el || !ed.textarea) return;
  const text = ed.textarea.value;
  const v = validate(ed.format, text);
  const size = bytesText(enc.encode(text).length);
  const lines = text === '' ? 0 : text.split('\n').length;
  const state = ed.dirty() ? 'modified' : 'unchanged';
  if (v.ok) {
    el.className = 'validation ok';
    fill(el, ed.format === 'text' ? 'Plain text' : `✓ Valid ${ed.format.toUpperCase()}`, ` · ${size} · ${lines} line${lines === 1 ? '' : 's'} · ${state}`);
  } else {
    el.className = 'validation bad';
    fill(el, `✗ ${ed.format.toUpperCase()}: ${v.message}`, v.line ? ` (line ${v.line}, column ${v.col})` : '');
  }
  const save = $('#save');
  if (save) save.disabled = !v.ok || (!ed.isNew && !ed.dirty() && !!ed.base);
  const pr = $('#pretty');
  if (pr) pr.disabled = ed.format === 'text' || !v.ok;
}

function renderRemoteBanner() {
  const el = $('#remote-banner');
  const ed = S.editor;
  if (!el || !ed) return;
  if (!ed.remote || !ed.dirty()) {
    el.replaceChildren();
    return;
  }
  const r = ed.remote;
  fill(el, h('div', { class: 'banner warn', role: 'alert' },
    r.type === 'put'
      ? `Another client changed this key at revision ${r.kv.modRevision} while you were editing. Saving will show both versions side by side.`
      : `Another client deleted this key at revision ${r.kv.modRevision} while you were editing.`));
}

/** Saves the editor's text, guarded by the mod revision it was based on. */
async function save(textOverride) {
  const ed = S.editor;
  if (!ed || !S.client) return;
  const text = textOverride ?? ed.textarea.value;
  const v = validate(ed.format, text);
  if (!v.ok) return toast(`Not saved: the ${ed.format.toUpperCase()} is invalid (${v.message}).`, 'error');
  if (ed.isNew && ed.key === '') return toast('Give the key a name first.', 'error');
  const key = ed.isNew ? ed.key : ed.raw;
  const compare = ed.base
    ? { key, target: 'modRevision', result: '==', value: ed.base.modRevision }
    : { key, target: 'version', result: '==', value: 0 };
  const put = { put: key, value: text };
  const lease = ed.base ? ed.base.lease : ed.lease || '0';
  if (lease !== '0') put.lease = lease;
  try {
    const r = await S.client.txn({ compare: [compare], success: [put], failure: [{ get: key }] });
    if (!r.succeeded) {
      const theirs = r.responses[0].kvs[0] || null;
      ed.conflict = { theirs, mine: text };
      renderDetail();
      return;
    }
    const kv = await S.client.get(key, { revision: r.revision });
    S.selected = kv.keyString;
    reveal(kv.keyString);
    if (!S.meta.has(kv.keyString)) {
      S.meta.set(kv.keyString, metaOf(kv));
      S.keys.push(kv.keyString);
      S.keysDirty = true;
    }
    renderTree();
    loadIntoEditor(kv);
    toast(`Saved ${kv.keyString} at revision ${r.revision}.`);
  } catch (e) {
    toast(`Not saved: ${e.message}`, 'error');
  }
}

async function del() {
  const ed = S.editor;
  try {
    const r = await S.client.txn({
      compare: [{ key: ed.raw, target: 'modRevision', result: '==', value: ed.base.modRevision }],
      success: [{ delete: ed.raw }],
      failure: [{ get: ed.raw }],
    });
    if (!r.succeeded) {
      ed.conflict = { theirs: r.responses[0].kvs[0] || null, mine: null };
      renderDetail();
      return;
    }
    toast(`Deleted ${ed.key} at revision ${r.revision}.`);
    S.editor = null;
    S.selected = null;
    renderTree();
    renderDetail();
  } catch (e) {
    toast(`Not deleted: ${e.message}`, 'error');
  }
}

function conflictBlock(ed) {
  const { theirs, mine } = ed.conflict;
  const theirsText = theirs ? asText(theirs.value) ?? hexPreview(theirs.value) : '';
  const based = ed.base ? `revision ${ed.base.modRevision}` : 'the key not existing';
  const what = theirs
    ? `Someone else changed it: it is now at revision ${theirs.modRevision} (version ${theirs.version}).`
    : 'Someone else deleted it.';
  const close = () => {
    ed.conflict = null;
    renderDetail();
  };
  const takeTheirs = () => {
    ed.conflict = null;
    ed.remote = null;
    if (theirs) loadIntoEditor(theirs, `Loaded revision ${theirs.modRevision}.`);
    else openKey(ed.key);
  };
  const rebase = () => {
    // Keep my text, now based on theirs: the next save guards on it.
    ed.base = theirs;
    ed.original = theirsText;
    ed.isNew = !theirs;
    ed.remote = null;
    close();
  };
  const overwrite = async () => {
    ed.base = theirs;
    ed.isNew = !theirs;
    ed.remote = null;
    ed.conflict = null;
    if (mine === null) {
      if (theirs) await del();
      else close();
    } else {
      await save(mine);
    }
  };
  return h('section', { class: 'conflict card', role: 'alert', id: 'conflict' },
    h('h3', {}, mine === null ? 'Not deleted: the key changed' : 'Not saved: the key changed under you'),
    h('p', {}, `Your ${mine === null ? 'delete' : 'edit'} was based on ${based}. ${what}`),
    mine !== null
      ? diffView(theirsText, mine, { beforeLabel: theirs ? `theirs (rev ${theirs.modRevision})` : 'theirs (deleted)', afterLabel: 'yours' })
      : null,
    h('div', { class: 'toolbar' },
      h('button', { id: 'conflict-mine', class: 'danger', onclick: overwrite },
        mine === null ? 'Delete anyway' : theirs ? 'Overwrite with mine' : 'Recreate with mine'),
      h('button', { id: 'conflict-theirs', onclick: takeTheirs }, 'Take theirs'),
      mine !== null ? h('button', { id: 'conflict-merge', onclick: rebase, title: 'Keep editing your text; the next save is checked against their revision' }, 'Keep editing on top of theirs') : null));
}

// ---- history -----------------------------------------------------------------

/** The key's earlier versions (this incarnation), newest first, until compaction. */
async function loadHistory(ed) {
  const versions = [ed.base];
  let cur = ed.base;
  let compacted = false;
  while (cur.version > 1 && versions.length < 200) {
    try {
      const prev = await S.client.get(ed.raw, { revision: cur.modRevision - 1 });
      if (!prev || prev.createRevision !== ed.base.createRevision) break;
      versions.push(prev);
      cur = prev;
    } catch (e) {
      if (e instanceof CompactedError) {
        compacted = true;
        break;
      }
      throw e;
    }
  }
  return { versions, compacted };
}

function historyBlock(ed) {
  const box = h('section', { class: 'history card', id: 'history' });
  const show = async () => {
    if (!ed.history) {
      fill(box, h('h3', {}, 'History'), h('p', { class: 'muted' }, 'Loading…'));
      try {
        ed.history = await loadHistory(ed);
      } catch (e) {
        fill(box, h('h3', {}, 'History'), h('p', { class: 'error' }, e.message));
        return;
      }
    }
    if (S.editor !== ed) return;
    const { versions, compacted } = ed.history;
    const current = ed.textarea ? ed.textarea.value : '';
    const pick = ed.historyPick;
    const rows = versions.map((kv) => {
      const text = asText(kv.value);
      const first = text === null ? `${kv.value.length} bytes (binary)` : text.replace(/\s+/g, ' ').trim().slice(0, 80) || '(empty)';
      return h('li', {},
        h('button', {
          class: `row${pick && pick.modRevision === kv.modRevision ? ' selected' : ''}`,
          dataset: { rev: String(kv.modRevision) },
          onclick: () => {
            ed.historyPick = kv;
            show();
          },
        },
        h('span', { class: 'ver' }, `v${kv.version}`),
        h('span', { class: 'rev' }, `rev ${kv.modRevision}`),
        h('span', { class: 'preview' }, first),
        kv.modRevision === ed.base.modRevision ? h('span', { class: 'badge current' }, 'current') : null));
    });
    const list = h('ol', { class: 'versions' }, rows);
    const foot = h('p', { class: 'muted small' },
      compacted ? 'Older revisions were compacted away.' : versions[versions.length - 1].version === 1 ? 'Created here.' : '');
    let diff = null;
    if (pick) {
      const old = asText(pick.value);
      diff = h('div', { class: 'history-diff' },
        old === null
          ? h('p', {}, 'A binary value: no diff.')
          : comparison(ed, old, current, `v${pick.version} (rev ${pick.modRevision})`, show),
        old !== null && pick.modRevision !== ed.base.modRevision
          ? h('button', { id: 'revert', class: 'primary', onclick: async () => {
            ed.textarea.value = old;
            await save(old);
          } }, `Revert to v${pick.version}`)
          : null);
    }
    fill(box, h('h3', {}, 'History', h('button', { class: 'link', onclick: () => { ed.history = null; show(); } }, 'refresh')), list, foot, diff);
  };
  show();
  return box;
}

/**
 * The diff of an old value with the editor's text; for JSON and YAML,
 * optionally of both pretty-printed, so a reformat does not hide the change.
 */
function comparison(ed, old, current, label, redraw) {
  const structured = ed.format !== 'text' && validate(ed.format, old).ok && validate(ed.format, current).ok;
  const formatted = structured && ed.compareFormatted !== false;
  const toggle = structured
    ? h('label', { class: 'check small' },
      h('input', { type: 'checkbox', id: 'compare-formatted', checked: formatted, onchange: (e) => {
        ed.compareFormatted = e.target.checked;
        redraw();
      } }),
      'Compare formatted (ignore layout)')
    : null;
  const [a, b] = formatted ? [pretty(ed.format, old), pretty(ed.format, current)] : [old, current];
  return [toggle, diffView(a, b, { beforeLabel: label, afterLabel: 'editor' })];
}

// ---- leases ------------------------------------------------------------------

let leaseTimer = null;
async function refreshLeases(gen = S.generation) {
  if (!S.client) return;
  try {
    const ids = await S.client.leases();
    const infos = await Promise.all(ids.map(async (id) => {
      const t = await S.client.leaseTimeToLive(id);
      return { id, ...t, at: performance.now(), keys: t.keys.map((k) => new TextDecoder().decode(k)) };
    }));
    if (gen !== S.generation) return;
    S.leases = infos.filter((l) => l.ttl >= 0).sort((a, b) => a.ttl - b.ttl);
    renderLeases();
  } catch (e) {
    if (gen === S.generation) fill($('#lease-list'), h('p', { class: 'error' }, `Cannot list leases: ${e.message}`));
  }
}

function remaining(l) {
  return Math.max(0, l.ttl - (performance.now() - l.at) / 1000);
}

function renderLeases() {
  const el = $('#lease-list');
  $('#lease-count').textContent = String(S.leases.length);
  if (S.leases.length === 0) {
    fill(el, h('p', { class: 'empty' }, 'No leases. Keys written with a lease vanish when it expires.'));
    return;
  }
  const rows = S.leases.map((l) => h('tr', { dataset: { lease: l.id } },
    h('td', { class: 'mono' }, hexId(l.id)),
    h('td', {}, `${l.grantedTtl}s`),
    h('td', { class: 'countdown' },
      h('div', { class: 'bar' }, h('div', { class: 'fill' })),
      h('span', { class: 'left' })),
    h('td', {}, l.keys.length
      ? l.keys.map((k) => h('button', { class: 'chip', onclick: () => openKey(k) }, k))
      : h('span', { class: 'muted' }, 'no keys')),
    h('td', {}, confirmButton('Revoke', 'Revoke and delete its keys?', async () => {
      try {
        await S.client.revokeLease(l.id);
        toast(`Revoked lease ${hexId(l.id)}.`);
      } catch (e) {
        toast(e.message, 'error');
      }
      refreshLeases();
    }, { class: 'danger small' }))));
  fill(el, h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, ['ID', 'Granted', 'Time left', 'Keys', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows)));
  tickLeases();
}

function tickLeases() {
  let expired = false;
  for (const l of S.leases) {
    const row = document.querySelector(`tr[data-lease="${l.id}"]`);
    if (!row) continue;
    const left = remaining(l);
    if (left === 0) expired = true;
    row.querySelector('.left').textContent = left === 0 ? 'expiring…' : `${Math.ceil(left)}s`;
    const fillEl = row.querySelector('.fill');
    fillEl.style.width = `${Math.min(100, (left / Math.max(1, l.grantedTtl)) * 100)}%`;
    fillEl.classList.toggle('low', left < Math.min(10, l.grantedTtl / 3));
  }
  return expired;
}

function startLeaseClock() {
  clearInterval(leaseTimer);
  let n = 0;
  leaseTimer = setInterval(() => {
    const expired = tickLeases();
    // Re-read now and then (kept-alive leases refresh; expired ones go).
    if (++n % 20 === 0 || (expired && n % 4 === 0)) refreshLeases();
  }, 250);
}

async function grantLease(ev) {
  ev.preventDefault();
  const ttl = Number($('#grant-ttl').value);
  if (!(ttl > 0)) return toast('TTL must be a positive number of seconds.', 'error');
  try {
    const l = await S.client.lease(ttl);
    toast(`Granted lease ${hexId(l.id)} (${ttl}s).`);
    refreshLeases();
  } catch (e) {
    toast(e.message, 'error');
  }
}

// ---- cluster -----------------------------------------------------------------

function memberClient(m) {
  if (!S.memberClients.has(m.id)) {
    const p = S.profile;
    S.memberClients.set(m.id, Client.connect({ endpoints: m.clientUrls, user: p.user || undefined, password: p.password || undefined, timeoutMs: 2000 }));
  }
  return S.memberClients.get(m.id);
}

async function refreshCluster(gen = S.generation) {
  if (!S.client) return;
  try {
    const members = await S.client.members();
    const statuses = await Promise.all(members.map(async (m) => {
      try {
        return [m.id, await (await memberClient(m)).status()];
      } catch (e) {
        S.memberClients.delete(m.id);
        return [m.id, { error: e.message }];
      }
    }));
    if (gen !== S.generation) return;
    S.members = members.sort((a, b) => (a.name || '~').localeCompare(b.name || '~') || a.id.localeCompare(b.id));
    S.statuses = new Map(statuses);
    renderCluster();
  } catch (e) {
    if (gen === S.generation) fill($('#member-list'), h('p', { class: 'error' }, `Cannot list members: ${e.message}`));
  }
}

function renderCluster() {
  const leaderId = [...S.statuses.values()].find((s) => s.leader && s.leader !== '0')?.leader;
  const leader = S.members.find((m) => m.id === leaderId);
  const anyStatus = [...S.statuses.values()].find((s) => !s.error);
  fill($('#cluster-summary'),
    h('div', { class: 'stat' }, h('span', { class: 'label' }, 'Members reachable'),
      h('span', { class: 'value' }, `${S.members.filter((m) => !S.statuses.get(m.id)?.error).length} of ${S.members.length}`)),
    h('div', { class: 'stat' }, h('span', { class: 'label' }, 'Leader'), h('span', { class: 'value' }, leader ? leader.name || hexId(leader.id) : 'none')),
    h('div', { class: 'stat' }, h('span', { class: 'label' }, 'Cluster ID'), h('span', { class: 'value mono' }, anyStatus ? hexId(anyStatus.clusterId) : '?')),
    h('div', { class: 'stat' }, h('span', { class: 'label' }, 'Revision'), h('span', { class: 'value' }, String(S.revision))));
  const cards = S.members.map((m) => {
    const s = S.statuses.get(m.id) || { error: 'no answer' };
    const isLeader = m.id === leaderId;
    const row = (label, value) => h('div', { class: 'kv' }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value));
    return h('article', { class: `member card${isLeader ? ' leader' : ''}${s.error ? ' down' : ''}`, dataset: { member: m.id } },
      h('header', {},
        h('h3', {}, m.name || '(unstarted)'),
        s.error ? h('span', { class: 'badge warn' }, 'unreachable')
          : isLeader ? h('span', { class: 'badge leader' }, '★ leader')
            : h('span', { class: 'badge' }, m.isLearner ? 'learner' : 'follower')),
      row('ID', hexId(m.id)),
      row('Client URLs', m.clientUrls.join(', ') || '—'),
      s.error
        ? h('p', { class: 'error wrap' }, `Not answering this browser: ${s.error}`)
        : [row('Version', s.version), row('Revision', String(s.revision)), row('Raft index', String(s.raftIndex)),
          row('Raft term', String(s.raftTerm)), row('DB size', `${bytesText(s.dbSize)} (${bytesText(s.dbSizeInUse)} in use)`)]);
  });
  fill($('#member-list'), cards);
}

// ---- profiles ----------------------------------------------------------------

function renderProfiles() {
  const sel = $('#profile');
  const all = profiles.list();
  fill(sel,
    all.length === 0 ? h('option', { value: '' }, 'No connection') : null,
    all.map((p) => h('option', { value: p.id, selected: S.profile && p.id === S.profile.id }, p.name)));
}

function editProfile(existing) {
  const d = $('#profile-dialog');
  const f = $('#profile-form');
  f.reset();
  f.elements.name.value = existing?.name ?? '';
  f.elements.endpoints.value = existing ? existing.endpoints.join('\n') : 'http://127.0.0.1:2379';
  f.elements.user.value = existing?.user ?? '';
  f.elements.password.value = existing?.password ?? '';
  f.elements.remember.checked = !!existing?.remember;
  $('#profile-delete').hidden = !existing;
  d.dataset.id = existing?.id ?? '';
  d.showModal();
}

function saveProfile(ev) {
  ev.preventDefault();
  const f = $('#profile-form');
  const endpoints = profiles.parseEndpoints(f.elements.endpoints.value);
  if (endpoints.length === 0) return toast('Give at least one endpoint.', 'error');
  const p = profiles.save({
    id: $('#profile-dialog').dataset.id || undefined,
    name: f.elements.name.value.trim() || endpoints[0],
    endpoints,
    user: f.elements.user.value.trim(),
    password: f.elements.password.value,
    remember: f.elements.remember.checked,
  });
  $('#profile-dialog').close();
  connect(p);
}

// ---- tabs and start-up ---------------------------------------------------------

const TABS = ['keys', 'leases', 'cluster'];

function setTab(want) {
  const tab = TABS.includes(want) ? want : 'keys';
  for (const t of TABS) {
    $(`#view-${t}`).hidden = t !== tab;
    $(`#tab-${t}`).setAttribute('aria-selected', String(t === tab));
  }
  if (location.hash !== `#${tab}`) history.replaceState(null, '', `#${tab}`);
  if (tab === 'leases') refreshLeases();
  if (tab === 'cluster') refreshCluster();
}

function start() {
  for (const t of TABS) $(`#tab-${t}`).addEventListener('click', () => setTab(t));
  $('#search').addEventListener('input', (e) => {
    S.query = e.target.value;
    renderTree();
  });
  $('#new-key').addEventListener('click', newKey);
  $('#profile').addEventListener('change', (e) => {
    const p = profiles.get(e.target.value);
    if (p) connect(p);
  });
  $('#profile-add').addEventListener('click', () => editProfile(null));
  $('#profile-edit').addEventListener('click', () => editProfile(S.profile));
  $('#profile-form').addEventListener('submit', saveProfile);
  $('#profile-cancel').addEventListener('click', () => $('#profile-dialog').close());
  $('#profile-delete').addEventListener('click', () => {
    profiles.remove($('#profile-dialog').dataset.id);
    $('#profile-dialog').close();
    const next = profiles.list()[0];
    if (next) connect(next);
    else location.reload();
  });
  $('#grant-form').addEventListener('submit', grantLease);
  $('#refresh-leases').addEventListener('click', () => refreshLeases());
  window.addEventListener('beforeunload', (e) => {
    if (S.editor && S.editor.dirty()) e.preventDefault();
  });
  setInterval(() => {
    if (!$('#view-cluster').hidden) refreshCluster();
  }, 2000);
  startLeaseClock();
  renderDetail();

  // `?endpoints=a,b` opens (and saves) a profile for those endpoints.
  const params = new URLSearchParams(location.search);
  let profile = null;
  if (params.get('endpoints')) {
    const endpoints = profiles.parseEndpoints(params.get('endpoints'));
    profile = profiles.list().find((p) => p.endpoints.join() === endpoints.join()) || profiles.save({ name: endpoints[0].replace(/^https?:\/\//, ''), endpoints, user: '', remember: false });
  } else {
    profile = profiles.get(localStorage.getItem('concord-dashboard.last')) || profiles.list()[0] || null;
  }
  renderProfiles();
  setTab(location.hash.slice(1));
  if (profile) connect(profile);
  else {
    setConn('down', 'Not connected');
    editProfile(null);
  }
}

start();
