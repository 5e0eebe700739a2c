// A line diff between two texts, as a read-only block.
import { diffLines } from 'diff';
import { h } from './ui.js';

/** Lines of `before` → `after`: removed lines red, added lines green. */
export function diffView(before, after, { beforeLabel, afterLabel }) {
  const parts = diffLines(before, after);
  const rows = [];
  let added = 0;
  let removed = 0;
  for (const p of parts) {
    const lines = p.value.replace(/\n$/, '').split('\n');
    for (const line of lines) {
      const kind = p.added ? 'add' : p.removed ? 'del' : 'same';
      if (p.added) added++;
      if (p.removed) removed++;
      rows.push(h('div', { class: `dl ${kind}` }, h('span', { class: 'sign' }, p.added ? '+' : p.removed ? '−' : ' '), line));
    }
  }
  const summary = added || removed ? `${removed} line${removed === 1 ? '' : 's'} removed, ${added} added` : 'No difference';
  return h('div', { class: 'diff' },
    h('div', { class: 'diff-head' },
      h('span', { class: 'del-label' }, `− ${beforeLabel}`),
      h('span', { class: 'add-label' }, `+ ${afterLabel}`),
      h('span', { class: 'diff-sum' }, summary)),
    h('pre', { class: 'diff-body' }, rows));
}
