// Saved connection profiles, kept in the browser's localStorage. A password
// is stored only when the user asks for it; otherwise it lives for the tab
// (sessionStorage).

const KEY = 'concord-dashboard.profiles';
const SESSION = 'concord-dashboard.passwords';

function read(storage, key, fallback) {
  try {
    return JSON.parse(storage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

/** Every saved profile `{ id, name, endpoints, user, password?, remember }`. */
export function list() {
  const session = read(sessionStorage, SESSION, {});
  return read(localStorage, KEY, []).map((p) => ({ ...p, password: p.password ?? session[p.id] ?? '' }));
}

export function get(id) {
  return list().find((p) => p.id === id) || null;
}

/** Adds or replaces a profile; returns it. */
export function save(profile) {
  const p = { ...profile, id: profile.id || crypto.randomUUID() };
  const session = read(sessionStorage, SESSION, {});
  const stored = { ...p };
  if (!p.remember) {
    delete stored.password;
    if (p.password) session[p.id] = p.password;
    else delete session[p.id];
  } else {
    delete session[p.id];
  }
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  const all = read(localStorage, KEY, []).filter((x) => x.id !== p.id);
  all.push(stored);
  all.sort((a, b) => a.name.localeCompare(b.name));
  localStorage.setItem(KEY, JSON.stringify(all));
  return p;
}

export function remove(id) {
  localStorage.setItem(KEY, JSON.stringify(read(localStorage, KEY, []).filter((x) => x.id !== id)));
}

/** "a:2379, http://b:2379" or one per line -> ["http://a:2379", "http://b:2379"] */
export function parseEndpoints(text) {
  return text
    .split(/[\s,]+/)
    .map((e) => e.trim())
    .filter(Boolean)
    .map((e) => (/^[a-z]+:\/\//i.test(e) ? e : `http://${e}`).replace(/\/+$/, ''));
}
