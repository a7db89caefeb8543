// Small DOM helpers of the console: building elements, tables, pagers, times.

/** `h('td', {class: 'num'}, 'text', child)`: an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A table of `rows` (arrays of cells: strings, numbers or nodes) under `headers`. */
export function table(headers, rows, { empty = 'Nothing here.' } = {}) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, headers.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', typeof c === 'number' ? { class: 'num' } : {}, c))))));
}

/** "Page 2 of 5" with previous/next buttons; `go(n)` loads page n (from 0). */
export function pager(total, page, size, go) {
  const pages = Math.max(1, Math.ceil(total / size));
  return h('div', { class: 'pager' },
    h('button', { type: 'button', disabled: page <= 0, onclick: () => go(page - 1) }, '‹ Previous'),
    h('span', { class: 'muted' }, `Page ${page + 1} of ${pages} (${total} in all)`),
    h('button', { type: 'button', disabled: page + 1 >= pages, onclick: () => go(page + 1) }, 'Next ›'));
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Unix seconds as UTC `YYYY-MM-DD HH:MM:SS` (the API's days are UTC). */
export function utc(secs) {
  if (!secs) return '—';
  const d = new Date(secs * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** A UTC date `YYYY-MM-DD` `days` before today. */
export function utcDay(daysAgo = 0) {
  const d = new Date(Date.now() - daysAgo * 86_400_000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

export const now = () => Math.floor(Date.now() / 1000);

/** `<input type="datetime-local">` value (UTC) of Unix seconds, and back. */
export const toInput = (secs) => utc(secs).replace(' ', 'T').slice(0, 16);
export const fromInput = (v) => Math.floor(Date.parse(`${v}:00Z`) / 1000);

/** Whether a CommId (`app_room_created`) belongs to a string room: Hearth numbers string rooms
 * above 2^32 (README, "A string room's CommId"). */
export function isStringRoom(commId) {
  const mid = String(commId).split('_')[1] ?? '0';
  try { return BigInt(mid) >= 2n ** 32n; } catch { return true; }
}

/** A message in place of a page's content. */
export function problem(el, e) {
  el.replaceChildren(h('p', { class: 'error', role: 'alert' }, String(e?.message ?? e)));
}
