// Live rooms: each room of the app alive now, with its users (role, streams, connections) as
// the media plane sees them, and the operator's buttons — remove a user, block or unblock their
// audio and video, dismiss the room — which call the API's own RemoveUser, SetUserBlocked and
// DismissRoom (or their ByStrRoomId forms). Refreshes every 3 s; 20 rooms a page.

import { call, SignedOut } from '../api.js';
import { h, isStringRoom, now, pager, table, utc } from '../dom.js';

const PAGE = 20;
const REFRESH_MS = 3000;

function streams(u) {
  const pill = (on, label) => h('span', { class: on ? 'pill on' : 'pill' }, label);
  return h('span', {}, pill(u.Audio, 'mic'), ' ', pill(u.Video, 'camera'), ' ', pill(u.SubVideo, 'screen'));
}

async function roomCard(ctx, room, refresh) {
  const act = { str: isStringRoom(room.CommId) };
  const acting = (f) => async (...args) => {
    try {
      await f(...args);
    } catch (e) {
      alert(e.message);
    }
    refresh();
  };
  let users = [];
  try {
    const r = await call('DescribeLiveUsers', { SdkAppId: ctx.app, RoomId: room.RoomString, RoomIdType: act.str ? 0 : 1 });
    users = r.Users ?? [];
  } catch (e) {
    if (e.code !== 'FailedOperation.RoomNotExist') throw e;
  }
  const call1 = (name, params) => call(name, { SdkAppId: ctx.app, ...params });
  const remove = acting((u) => (act.str
    ? call1('RemoveUserByStrRoomId', { RoomId: room.RoomString, UserIds: [u] })
    : call1('RemoveUser', { RoomId: Number(room.RoomString), UserIds: [u] })));
  const block = acting((u, mute) => (act.str
    ? call1('SetUserBlockedByStrRoomId', { StrRoomId: room.RoomString, UserId: u, IsMute: mute })
    : call1('SetUserBlocked', { RoomId: Number(room.RoomString), UserId: u, IsMute: mute })));
  const dismiss = acting(() => {
    if (!confirm(`Dismiss room ${room.RoomString}? Everyone in it leaves.`)) return null;
    return act.str
      ? call1('DismissRoomByStrRoomId', { RoomId: room.RoomString })
      : call1('DismissRoom', { RoomId: Number(room.RoomString) });
  });
  const quality = (u) => `#/quality?comm=${encodeURIComponent(room.CommId)}&user=${encodeURIComponent(u)}` +
    `&room=${encodeURIComponent(room.RoomString)}&start=${room.CreateTime}`;
  const rows = users.map((u) => [
    h('a', { href: quality(u.UserId) }, u.UserId),
    h('span', { class: u.Role === 'anchor' ? 'pill anchor' : 'pill' }, u.Role),
    streams(u),
    u.Sessions,
    h('span', {},
      h('button', { type: 'button', class: 'danger', 'data-action': 'kick', 'data-user': u.UserId, onclick: () => remove(u.UserId) }, 'Remove'), ' ',
      h('button', { type: 'button', 'data-action': 'block', 'data-user': u.UserId, onclick: () => block(u.UserId, 1) }, 'Block A/V'), ' ',
      h('button', { type: 'button', 'data-action': 'unblock', 'data-user': u.UserId, onclick: () => block(u.UserId, 0) }, 'Unblock')),
  ]);
  return h('div', { class: 'card room', 'data-room': room.RoomString },
    h('h2', {}, `Room ${room.RoomString}`, h('span', { class: 'pill' }, act.str ? 'string room' : 'numeric room'),
      h('span', { class: 'muted' }, `since ${utc(room.CreateTime)} UTC · ${users.length} user(s)`),
      h('a', { href: `#/call?comm=${encodeURIComponent(room.CommId)}&room=${encodeURIComponent(room.RoomString)}&start=${room.CreateTime}&end=0` }, 'call details'),
      h('button', { type: 'button', class: 'danger', 'data-action': 'dismiss', onclick: () => dismiss() }, 'Dismiss room')),
    table(['User', 'Role', 'Streams', 'Connections', ''], rows, { empty: 'Nobody is in the room now.' }));
}

export async function render(el, ctx) {
  let page = Number(ctx.params.get('page') ?? 0);
  let timer = null;
  let stopped = false;
  let loading = false;
  const refresh = async () => {
    if (stopped || loading) return;
    loading = true;
    clearTimeout(timer);
    try {
      const t = now();
      const r = await call('DescribeRoomInfo', {
        SdkAppId: ctx.app, StartTime: t - 3600, EndTime: t, PageNumber: page, PageSize: PAGE,
      });
      const live = (r.RoomList ?? []).filter((room) => room.DestroyTime === 0);
      const cards = await Promise.all(live.map((room) => roomCard(ctx, room, refresh)));
      if (stopped) return;
      el.replaceChildren(
        h('h1', {}, 'Live rooms'),
        h('p', { class: 'muted' }, `Rooms of app ${ctx.app} alive now, among those active in the last hour. Refreshed every 3 s.`),
        ...(cards.length ? cards : [h('p', { class: 'muted' }, 'No room is live.')]),
        pager(r.Total ?? 0, page, PAGE, (n) => { page = n; refresh(); }));
    } catch (e) {
      if (e instanceof SignedOut) { stopped = true; ctx.signedOut(); return; }
      el.replaceChildren(h('h1', {}, 'Live rooms'), h('p', { class: 'error', role: 'alert' }, e.message));
    } finally {
      loading = false;
      if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
    }
  };
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
