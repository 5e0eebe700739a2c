// The key tree: keys grouped by '/' into folders, with counts and search.
import { h, fill } from './ui.js';

/** Folders of `keys` (a sorted array of key strings). */
export function build(keys) {
  const root = { name: '', path: '', folders: new Map(), leaves: [], count: 0 };
  for (const key of keys) {
    const parts = key.split('/');
    let node = root;
    node.count++;
    let path = '';
    for (let i = 0; i < parts.length - 1; i++) {
      path += parts[i] + '/';
      let next = node.folders.get(parts[i]);
      if (!next) {
        next = { name: parts[i], path, folders: new Map(), leaves: [], count: 0 };
        node.folders.set(parts[i], next);
      }
      next.count++;
      node = next;
    }
    node.leaves.push({ name: parts[parts.length - 1], key });
  }
  return root;
}

/**
 * Renders the tree into `el`. `open` holds the expanded folder paths; with
 * a search `query`, only matching keys show and their folders open.
 */
export function render(el, keys, { open, query, selected, onSelect, onToggle, meta }) {
  const q = query.trim().toLowerCase();
  const shown = q ? keys.filter((k) => k.toLowerCase().includes(q)) : keys;
  if (shown.length === 0) {
    fill(el, h('p', { class: 'empty' }, q ? `No key contains “${query}”.` : 'No keys yet. Create one with “New key”.'));
    return;
  }
  const root = build(shown);
  const list = h('ul', { class: 'tree', role: 'tree' });
  const walk = (node, ul, depth) => {
    const folders = [...node.folders.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const f of folders) {
      const expanded = q !== '' || open.has(f.path);
      const li = h('li', { role: 'treeitem', 'aria-expanded': String(expanded), class: 'folder' },
        h('button', {
          class: 'row',
          style: `--depth:${depth}`,
          dataset: { prefix: f.path },
          onclick: () => onToggle(f.path),
        },
        h('span', { class: 'twisty' }, expanded ? '▾' : '▸'),
        h('span', { class: 'name' }, f.name === '' ? '/' : f.name),
        h('span', { class: 'count' }, String(f.count))));
      if (expanded) {
        const sub = h('ul', { role: 'group' });
        walk(f, sub, depth + 1);
        li.append(sub);
      }
      ul.append(li);
    }
    for (const leaf of node.leaves) {
      const m = meta.get(leaf.key);
      ul.append(h('li', { role: 'treeitem', class: 'leaf' },
        h('button', {
          class: `row${leaf.key === selected ? ' selected' : ''}`,
          style: `--depth:${depth}`,
          dataset: { key: leaf.key },
          title: leaf.key,
          onclick: () => onSelect(leaf.key),
        },
        h('span', { class: 'twisty' }, m && m.lease !== '0' ? '⏱' : '•'),
        h('span', { class: 'name' }, leaf.name === '' ? '(empty name)' : leaf.name),
        m ? h('span', { class: 'count' }, `v${m.version}`) : null)));
    }
  };
  walk(root, list, 0);
  fill(el, list);
}
