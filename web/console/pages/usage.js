// Usage and the dashboards: minutes received per UTC day and class over the last 30 days and
// per 5 minutes today (DescribeTrtcUsage); users and rooms online now and over the last
// 10 minutes (the real-time dashboards); peaks, counts, join success and freeze rates per day
// over the last week (the market dashboards).

import { call } from '../api.js';
import { chart } from '../charts.js';
import { h, now, table, utcDay } from '../dom.js';

const KEY_SECS = (key) => Date.parse(`${key.replace(' ', 'T')}Z`) / 1000;

function usageSeries(r) {
  return r.UsageKey.map((k, i) => ({
    label: `${k} min`,
    points: r.UsageList.map((row) => [KEY_SECS(row.TimeKey), row.UsageValue[i]]),
  }));
}

function rows(data) {
  const s = data.Series?.[0] ?? { Columns: [], Values: [] };
  return { columns: s.Columns, values: s.Values.map((v) => v.RowValueFloat ?? v.RowValue) };
}

function columnSeries({ columns, values }, names, labels = names) {
  return names.map((n, i) => ({
    label: labels[i],
    points: values.map((v) => [v[0], v[columns.indexOf(n)]]),
  }));
}

export async function render(el, ctx) {
  const app = ctx.app;
  const t = now();
  const [month, today, rtScale, rtQuality, mkScale, mkQuality] = await Promise.all([
    call('DescribeTrtcUsage', { SdkAppId: app, StartTime: utcDay(29), EndTime: utcDay(0) }),
    call('DescribeTrtcUsage', { SdkAppId: app, StartTime: utcDay(0), EndTime: utcDay(0) }),
    call('DescribeTRTCRealTimeScaleData', { SdkAppId: String(app), StartTime: t - 600, EndTime: t }),
    call('DescribeTRTCRealTimeQualityData', { SdkAppId: String(app), StartTime: t - 600, EndTime: t }),
    call('DescribeTRTCMarketScaleData', { SdkAppId: String(app), StartTime: utcDay(6), EndTime: utcDay(0), Period: 'd' }),
    call('DescribeTRTCMarketQualityData', { SdkAppId: String(app), StartTime: utcDay(6), EndTime: utcDay(0), Period: 'd', IsFloat: true }),
  ]);
  const rt = rows(rtScale.Data);
  const latest = rt.values.at(-1) ?? [0, 0, 0];
  const totals = month.UsageKey.map((k, i) => [k, Math.round(month.UsageList.reduce((a, r) => a + r.UsageValue[i], 0) * 100) / 100]);
  el.replaceChildren(
    h('h1', {}, 'Usage & dashboards'),
    h('div', { class: 'figures' },
      h('div', { class: 'figure', 'data-figure': 'users' }, h('b', {}, latest[1]), 'users online (last 10 s)'),
      h('div', { class: 'figure', 'data-figure': 'rooms' }, h('b', {}, latest[2]), 'rooms online (last 10 s)'),
      ...totals.map(([k, v]) => h('div', { class: 'figure', 'data-figure': k }, h('b', {}, v), `${k} minutes, 30 days`))));
  const grid = h('div', { class: 'charts' });
  el.append(h('h2', {}, 'Usage: minutes users received, by class'), grid);
  chart(grid, 'Per UTC day, last 30 days', usageSeries(month), { unit: ' min', bars: true });
  chart(grid, 'Today, per 5 minutes', usageSeries(today), { unit: ' min' });
  const live = h('div', { class: 'charts' });
  el.append(h('h2', {}, 'Real time: last 10 minutes'), live);
  chart(live, 'Online', columnSeries(rt, ['userCount', 'roomCount'], ['users', 'rooms']));
  chart(live, 'Freeze rate', columnSeries(rows(rtQuality.Data), ['videoFreezeRate', 'audioFreezeRate'], ['video %', 'audio %']), { unit: ' %' });
  const week = h('div', { class: 'charts' });
  el.append(h('h2', {}, 'Dashboards: last 7 days'), week);
  const ms = rows(mkScale.Data);
  chart(week, 'Scale per day', columnSeries(ms, ['peakCurrentUsers', 'peakCurrentChannels', 'userCount', 'roomCount'],
    ['peak users', 'peak rooms', 'users', 'rooms']), { bars: true });
  const mq = rows(mkQuality.Data);
  chart(week, 'Quality per day', columnSeries(mq, ['joinSuccessRate', 'joinSuccessIn5sRate', 'videoFreezeRate', 'audioFreezeRate', 'networkDelay'],
    ['join success %', 'joined within 5 s %', 'video freeze %', 'audio freeze %', 'slow round trips %']), { unit: ' %' });
  el.append(h('h2', {}, 'Per day'), table(
    ['Day (UTC)', 'Peak users', 'Peak rooms', 'Users', 'Rooms', 'Join success %', 'Video freeze %'],
    ms.values.map((v, i) => [new Date(v[0] * 1000).toISOString().slice(0, 10), v[1], v[2], v[3], v[4], mq.values[i]?.[4] ?? '—', mq.values[i]?.[1] ?? '—']).reverse()));
}
