// DOM helpers. Every piece of data from the cluster reaches the page as
// text nodes, never as markup: keys and values are untrusted input.

/** `h('div', { class: 'x', onclick }, child, 'text', …)` */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** A short message at the bottom of the page. */
export function toast(message, kind = 'info') {
  const box = $('#toasts');
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3500);
}

/** 1536 -> "1.5 KiB" */
export function bytesText(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A lease or member ID (decimal string) as etcdctl prints it: hex. */
export const hexId = (id) => BigInt(id).toString(16);

/** A button that asks once more before acting. */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = null;
  const b = h('button', {
    ...attrs,
    onclick: async () => {
      if (!armed) {
        b.textContent = confirmLabel;
        b.classList.add('armed');
        armed = setTimeout(() => {
          armed = null;
          b.textContent = label;
          b.classList.remove('armed');
        }, 4000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      b.textContent = label;
      b.classList.remove('armed');
      await action();
    },
  }, label);
  return b;
}
