// One user's quality over an hour of a call (DescribeCallDetailInfo): bitrate, packet loss,
// frame rate and resolution, upstream (what the user sent) and downstream per remote user
// (what it received from each), as charts; earlier and later hours one click away.

import { call } from '../api.js';
import { chart } from '../charts.js';
import { h, now, utc } from '../dom.js';

const METRICS = ['aBit', 'bigvBit', 'aLoss', 'bigvLoss', 'bigvCapFps', 'bigvEncFps', 'bigvDecFps', 'bigvWidth', 'bigvHeight'];
const HOUR = 3600;

/** The charts of one direction: `got` maps a metric to its points. */
function charts(parent, got) {
  const s = (metric, label, scale = 1) => ({
    label,
    points: (got[metric] ?? []).map((p) => [p.Time, p.Value / scale]),
  });
  const some = (list) => list.filter((x) => x.points.length);
  const grid = h('div', { class: 'charts' });
  parent.append(grid);
  const drawn = [
    ['Bitrate', [s('bigvBit', 'video kbit/s', 1000), s('aBit', 'audio kbit/s', 1000)], ' kbit/s'],
    ['Packet loss', [s('bigvLoss', 'video %'), s('aLoss', 'audio %')], ' %'],
    ['Frame rate', [s('bigvCapFps', 'captured'), s('bigvEncFps', 'sent'), s('bigvDecFps', 'rendered')], ' fps'],
    ['Resolution', [s('bigvWidth', 'width'), s('bigvHeight', 'height')], ' px'],
  ];
  for (const [title, series, unit] of drawn) {
    const have = some(series);
    if (have.length) chart(grid, title, have, { unit });
    else grid.append(h('div', { class: 'chart muted' }, h('h3', {}, title), 'No data in this hour.'));
  }
}

export async function render(el, ctx) {
  const p = ctx.params;
  const user = p.get('user');
  const comm = p.get('comm');
  const start = Number(p.get('start'));
  const ended = Number(p.get('end') ?? 0);
  const last = ended || now();
  const to = Number(p.get('to') ?? last);
  const from = Math.max(start, to - HOUR);
  const r = await call('DescribeCallDetailInfo', {
    SdkAppId: ctx.app, CommId: comm, StartTime: from, EndTime: to, UserIds: [user], DataType: METRICS,
    PageNumber: 0, PageSize: 6,
  });
  const byPeer = new Map();
  for (const d of r.Data ?? []) {
    if (d.UserId !== user) continue;
    const peer = byPeer.get(d.PeerId) ?? {};
    peer[d.DataType] = d.Content ?? [];
    byPeer.set(d.PeerId, peer);
  }
  const shift = (t) => {
    const next = new URLSearchParams(p);
    next.set('to', t);
    return `#/quality?${next}`;
  };
  el.replaceChildren(
    h('h1', {}, `Quality of ${user}`),
    h('p', { class: 'muted' }, `Room ${p.get('room')} · ${comm} · ${utc(from)} to ${utc(to)} UTC (points every 2 s)`),
    h('div', { class: 'pager' },
      h('a', { href: shift(from), hidden: from <= start }, '‹ Earlier hour'),
      h('a', { href: shift(Math.min(last, to + HOUR)), hidden: to >= last }, 'Later hour ›'),
      h('a', { href: `#/call?comm=${encodeURIComponent(comm)}&room=${encodeURIComponent(p.get('room'))}&start=${start}&end=${ended}` }, 'the call')));
  if (!byPeer.size) {
    el.append(h('p', { class: 'muted' }, 'No quality data for this user in this hour.'));
    return;
  }
  const up = byPeer.get('');
  if (up) {
    const section = h('section', { class: 'direction', 'data-peer': '' }, h('h2', {}, 'Upstream: what it sent'));
    el.append(section);
    charts(section, up);
  }
  for (const [peer, got] of [...byPeer].filter(([k]) => k !== '').sort()) {
    const section = h('section', { class: 'direction', 'data-peer': peer }, h('h2', {}, `Downstream from ${peer}`));
    el.append(section);
    charts(section, got);
  }
}
