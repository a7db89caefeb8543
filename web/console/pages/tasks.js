// Media tasks: the app's recordings, relays and ingests, newest first, 20 a page, with their
// state, how they ended and the files they stored (the console-only DescribeMediaTasks).

import { call } from '../api.js';
import { h, pager, table, utc } from '../dom.js';

const PAGE = 20;

export async function render(el, ctx) {
  const page = Number(ctx.params.get('page') ?? 0);
  const r = await call('DescribeMediaTasks', { SdkAppId: ctx.app, PageNumber: page, PageSize: PAGE });
  // A file's name without its folder and signature (VOD names are signed paths).
  const base = (name) => String(name).split('?')[0].split('/').pop();
  const files = (t) => {
    const names = (t.Files ?? []).map((f) => base(f.FileName));
    const more = names.length > 1 ? ` and ${names.length - 1} more` : '';
    if (t.Url) return h('span', {}, h('a', { href: t.Url, target: '_blank', rel: 'noopener' }, names[0] ?? base(t.Url)), more);
    return names.length ? names.join(', ') : '—';
  };
  el.replaceChildren(
    h('h1', {}, 'Media tasks'),
    h('p', { class: 'muted' }, 'Cloud recordings, CDN relays and stream ingests of this app, newest first.'),
    table(['Task', 'Kind', 'State', 'Room', 'Started (UTC)', 'Ended (UTC)', 'Outcome', 'Files'], (r.Tasks ?? []).map((t) => [
      h('code', {}, t.TaskId), t.Kind, h('span', { class: t.EndTime ? 'pill' : 'pill on' }, t.State), t.RoomId ?? '—',
      utc(t.CreateTime), t.EndTime ? utc(t.EndTime) : '—', t.Outcome ?? '—', files(t),
    ]), { empty: 'No media task yet.' }),
    pager(r.Total ?? 0, page, PAGE, (n) => { location.hash = `#/tasks?page=${n}`; }));
}
