// Charts of the console, drawn by the vendored uPlot (vendor/uplot, MIT): time series over UTC
// time, one or more lines per chart.

import uPlot from './vendor/uplot/uPlot.esm.js';
import { h } from './dom.js';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563'];

/** Series `[{label, points: [[t, v], ...]}]` on one shared, sorted time axis (null = no point). */
export function align(series) {
  const xs = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
  const at = new Map(xs.map((t, i) => [t, i]));
  const ys = series.map((s) => {
    const col = new Array(xs.length).fill(null);
    for (const [t, v] of s.points) col[at.get(t)] = v;
    return col;
  });
  return [xs, ...ys];
}

/**
 * Appends a chart titled `title` to `parent`: `series` as above, values shown with `unit`.
 * `bars`: daily bars rather than lines. Returns the uPlot instance (tests read its data).
 */
export function chart(parent, title, series, { unit = '', bars = false, height = 220 } = {}) {
  const box = h('div', { class: 'chart', 'data-chart': title }, h('h3', {}, title));
  parent.append(box);
  const data = align(series);
  const fmt = (v) => (v == null ? '—' : `${Math.round(v * 100) / 100}${unit}`);
  const width = Math.max(420, (box.clientWidth || 520) - 16);
  const opts = {
    width,
    height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: true } },
    series: [
      { label: 'UTC' },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        fill: bars ? `${COLORS[i % COLORS.length]}55` : undefined,
        width: bars ? 1 : 2,
        spanGaps: true,
        points: { show: data[0].length < 60 },
        paths: bars ? uPlot.paths.bars({ size: [0.8 / Math.max(1, series.length), 40], align: 1 }) : undefined,
        value: (u, v) => fmt(v),
      })),
    ],
    axes: [{}, { values: (u, vals) => vals.map(fmt), size: 84 }],
  };
  const plot = new uPlot(opts, data, box);
  box.plot = plot;
  return plot;
}
