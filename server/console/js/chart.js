// Line charts as inline SVG, drawn by hand: a few hundred points at most,
// redrawn once a second, need no charting library.

import { h, s } from './ui.js';

const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

const PAD = { left: 56, right: 12, top: 10, bottom: 22 };

/** Round steps for an axis: 1, 2 or 5 times a power of ten. */
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) || power * 10;
}

/**
 * `series`: [{name, color, points: [[x, y], ...]}] with x ascending.
 * `xFormat(x, span)` labels the x ticks, `yFormat(y)` the y ticks; `xTicks`
 * gives the x ticks instead of round numbers (times do not divide by
 * ten). Returns an element holding the legend and the SVG.
 */
export function lineChart({ series, xFormat = String, yFormat = (v) => compact.format(v), xTicks, width = 560, height = 180, label }) {
  const all = series.flatMap((line) => line.points);
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y).filter((y) => Number.isFinite(y));
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const yMax = Math.max(1, ...ys);
  const yMin = Math.min(0, ...ys);
  const yStep = niceStep(yMax - yMin, 4);
  const yTop = Math.ceil(yMax / yStep) * yStep;
  const yBottom = Math.floor(yMin / yStep) * yStep;
  const innerW = width - PAD.left - PAD.right;
  const innerH = height - PAD.top - PAD.bottom;
  const x = (value) => PAD.left + (xMax === xMin ? innerW : ((value - xMin) / (xMax - xMin)) * innerW);
  const y = (value) => PAD.top + innerH - ((value - yBottom) / (yTop - yBottom || 1)) * innerH;

  const grid = [];
  for (let tick = yBottom; tick <= yTop + yStep / 2; tick += yStep) {
    grid.push(s('line', { class: 'grid-line', x1: PAD.left, x2: width - PAD.right, y1: y(tick), y2: y(tick) }));
    grid.push(s('text', { x: PAD.left - 6, y: y(tick) + 4, 'text-anchor': 'end' }, yFormat(tick)));
  }
  const ticks = xTicks ? xTicks(xMin, xMax) : [xMin, (xMin + xMax) / 2, xMax];
  for (const tick of ticks) {
    if (tick < xMin || tick > xMax) continue;
    const anchor = tick === xMin ? 'start' : tick === xMax ? 'end' : 'middle';
    grid.push(s('text', { x: x(tick), y: height - 6, 'text-anchor': anchor }, xFormat(tick, xMax - xMin)));
  }
  const lines = series.map((line) => {
    const points = line.points.filter(([, v]) => Number.isFinite(v));
    if (!points.length) return null;
    const path = points.map(([px, py], i) => `${i ? 'L' : 'M'}${x(px).toFixed(1)},${y(py).toFixed(1)}`).join('');
    return s('path', { d: path, fill: 'none', stroke: line.color, 'stroke-width': 1.6 });
  });
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label || 'chart' },
    grid, lines);
  const legend = h('div', { class: 'legend' },
    series.map((line) => h('span', { style: `--c: ${line.color}` }, line.name)));
  return h('div', {}, legend, svg);
}

/** A chart of per-second counts ending at epoch second `end`: x is
 * seconds before now, ticked every minute. */
export function perSecondChart({ series, end, yFormat, label }) {
  return lineChart({
    label,
    yFormat,
    series: series.map((line) => ({
      ...line,
      points: line.values.map((value, i) => [end - line.values.length + i - end, value]),
    })),
    xFormat: (ago) => (ago >= -1 ? 'now' : `-${Math.round(-ago / 60)} min`),
    xTicks: (min, max) => {
      const ticks = [];
      for (let t = Math.ceil(min / 60) * 60; t < max - 30; t += 60) ticks.push(t);
      return [...ticks, max];
    },
  });
}
