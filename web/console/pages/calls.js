// Call history and one call: the calls (room lifetimes) of the app in a time range, optionally
// of one room, 20 a page (DescribeRoomInfo); a call's users (DescribeUserInfo) and each user's
// timeline of events (DescribeUserEvent), with links to their quality charts.

import { call } from '../api.js';
import { fromInput, h, now, pager, table, toInput, utc } from '../dom.js';

const PAGE = 20;
/** Timelines shown without asking. */
const AUTO_TIMELINES = 6;
/** DescribeUserInfo covers 4 hours at most. */
const USERS_WINDOW = 4 * 3600;

/** The WebRTC event IDs of spec §4.2, by name. */
const EVENTS = {
  32768: 'camera (or screen) on',
  32769: 'mic on',
  32770: 'camera (or screen) off',
  32771: 'mic off',
  32776: 'subscribed video',
  32777: 'subscribed audio',
  32778: 'unsubscribed video',
  32779: 'unsubscribed audio',
  32788: 'entered the room',
  32789: 'left the room',
  32790: 'signaling disconnected',
  32791: 'signaling connected',
  32792: 'media disconnected',
  32793: 'media connected',
};

function callLink(room) {
  return `#/call?comm=${encodeURIComponent(room.CommId)}&room=${encodeURIComponent(room.RoomString)}` +
    `&start=${room.CreateTime}&end=${room.DestroyTime}`;
}

async function history(el, ctx) {
  const p = ctx.params;
  const end = Number(p.get('to') ?? now());
  const start = Number(p.get('from') ?? end - 86_400 + 60);
  const roomId = p.get('roomid') ?? '';
  const page = Number(p.get('page') ?? 0);
  const form = h('form', { class: 'filters' },
    h('label', {}, 'From (UTC)', h('input', { type: 'datetime-local', name: 'from', value: toInput(start) })),
    h('label', {}, 'To (UTC)', h('input', { type: 'datetime-local', name: 'to', value: toInput(end) })),
    h('label', {}, 'Room', h('input', { name: 'roomid', value: roomId, placeholder: 'any' })),
    h('button', { type: 'submit' }, 'Show'));
  const go = (over = {}) => {
    const f = new FormData(form);
    const q = new URLSearchParams({ from: fromInput(f.get('from')), to: fromInput(f.get('to')), roomid: f.get('roomid'), page: 0, ...over });
    location.hash = `#/calls?${q}`;
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); go(); });
  el.replaceChildren(h('h1', {}, 'Calls'), h('p', { class: 'muted' }, 'Calls (room lifetimes) alive at some moment of the range, 24 hours at most, within the retention.'), form);
  const params = { SdkAppId: ctx.app, StartTime: start, EndTime: end, PageNumber: page, PageSize: PAGE };
  if (roomId) params.RoomId = roomId;
  const r = await call('DescribeRoomInfo', params);
  const rows = (r.RoomList ?? []).map((room) => [
    h('a', { href: callLink(room) }, room.RoomString),
    utc(room.CreateTime),
    room.DestroyTime ? utc(room.DestroyTime) : h('span', { class: 'pill on' }, 'live'),
    room.UserId,
    h('code', {}, room.CommId),
  ]);
  el.append(
    table(['Room', 'Began (UTC)', 'Ended (UTC)', 'First user', 'CommId'], rows, { empty: 'No call in this range.' }),
    pager(r.Total ?? 0, page, PAGE, (n) => go({ page: n })));
}

async function timeline(ctx, q, user) {
  const r = await call('DescribeUserEvent', {
    SdkAppId: ctx.app, CommId: q.comm, RoomId: q.room, UserId: user, StartTime: q.start, EndTime: q.end,
  });
  const events = (r.Data ?? []).flatMap((d) => d.Content ?? []).sort((a, b) => a.Time - b.Time);
  if (!events.length) return h('p', { class: 'muted' }, 'No event in this window.');
  return h('ol', { class: 'timeline' }, events.map((e) => h('li', { 'data-event': e.EventId },
    h('time', {}, `${utc(Math.floor(e.Time / 1000))}.${String(e.Time % 1000).padStart(3, '0')}`),
    EVENTS[e.EventId] ?? `event ${e.EventId}`,
    e.ParamOne === 1 ? ' (screen)' : '')));
}

async function oneCall(el, ctx) {
  const p = ctx.params;
  const start = Number(p.get('start'));
  const ended = Number(p.get('end') ?? 0);
  const q = {
    comm: p.get('comm'),
    room: p.get('room'),
    start,
    end: Math.min(ended || now(), start + USERS_WINDOW),
  };
  const page = Number(p.get('page') ?? 0);
  const r = await call('DescribeUserInfo', {
    SdkAppId: ctx.app, CommId: q.comm, StartTime: q.start, EndTime: q.end, PageNumber: page, PageSize: 100,
  });
  const users = r.UserList ?? [];
  const quality = (u) => `#/quality?comm=${encodeURIComponent(q.comm)}&user=${encodeURIComponent(u.UserId)}` +
    `&room=${encodeURIComponent(q.room)}&start=${u.JoinTs}&end=${u.Finished ? u.LeaveTs : 0}`;
  el.replaceChildren(
    h('h1', {}, `Call in room ${q.room}`),
    h('p', { class: 'muted' }, `${q.comm} · began ${utc(start)} UTC · ${ended ? `ended ${utc(ended)} UTC` : 'live'}` +
      (q.end < (ended || now()) ? ' · the first 4 hours are shown' : '')),
    h('h2', {}, 'Users'),
    table(['User', 'Joined (UTC)', 'Left (UTC)', 'Device', 'SDK', 'Address', ''], users.map((u) => [
      u.UserId, utc(u.JoinTs), u.Finished ? utc(u.LeaveTs) : h('span', { class: 'pill on' }, 'in the room'),
      u.DeviceType, u.SdkVersion, u.ClientIp, h('a', { href: quality(u) }, 'quality charts'),
    ]), { empty: 'No user in this window.' }),
    pager(r.Total ?? 0, page, 100, (n) => {
      const next = new URLSearchParams(p);
      next.set('page', n);
      location.hash = `#/call?${next}`;
    }),
    h('h2', {}, 'Timeline per user'));
  // The first users' timelines load at once; the others on demand (the API allows 20 calls a
  // second per key).
  for (const [i, u] of users.entries()) {
    const card = h('div', { class: 'card', 'data-user': u.UserId }, h('h2', {}, u.UserId));
    const load = async () => card.replaceChildren(h('h2', {}, u.UserId), await timeline(ctx, q, u.UserId));
    if (i < AUTO_TIMELINES) await load();
    else card.append(h('button', { type: 'button', onclick: () => load().catch((e) => alert(e.message)) }, 'Show timeline'));
    el.append(card);
  }
}

export async function render(el, ctx, name) {
  if (name === 'call') await oneCall(el, ctx);
  else await history(el, ctx);
}
