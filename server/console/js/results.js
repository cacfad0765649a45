// A bare SELECT's rows as they arrive (GET /v1/jobs/ID/results, server-
// sent events): the newest in a table, and a chart of a chosen numeric
// column over a time column (or over when each row came).

import { lineChart } from './chart.js';
import { formatNumber, formatTime, h } from './ui.js';

const KEPT_ROWS = 200;
const ARRIVAL = '(arrival time)';

function timeOf(value) {
  if (typeof value === 'number') return value;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/** Follows the job's results; the table and chart are drawn at most once
 * a second, however fast rows come. */
export function liveResults(section, id, columns) {
  section.hidden = false;
  const status = h('p', { class: 'muted' }, 'Waiting for rows…');
  const yPick = h('select', { name: 'chart-value' });
  const xPick = h('select', { name: 'chart-time' });
  const chart = h('div', { id: 'results-chart' });
  const body = h('tbody');
  section.append(
    h('h2', {}, 'Rows'),
    h('div', { class: 'panel' },
      status,
      h('div', { class: 'row' }, h('label', {}, 'Chart', yPick), h('label', {}, 'over', xPick)),
      chart,
      h('table', { id: 'results-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'op'), columns.map((c) => h('th', {}, c)))), body)),
  );
  const rows = [];
  let received = 0;
  let missed = 0;
  let dirty = false;
  let source = null;
  let ended = false;

  function pickers() {
    const last = rows[rows.length - 1]?.row || [];
    const numeric = columns.filter((_, i) => typeof last[i] === 'number');
    const times = columns.filter((_, i) => typeof last[i] === 'string' && timeOf(last[i]) !== null);
    const fill = (select, names) => {
      const key = names.join('\u0000');
      if (select.dataset.key === key) return;
      const chosen = select.value;
      select.dataset.key = key;
      select.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
      if (names.includes(chosen)) select.value = chosen;
    };
    fill(yPick, numeric);
    fill(xPick, [...times, ARRIVAL]);
  }

  function draw() {
    if (!dirty) return;
    dirty = false;
    status.textContent = `${formatNumber(received)} rows received${missed ? `, ${formatNumber(missed)} missed (the page fell behind)` : ''}${ended ? '; the job has ended' : ''}`;
    body.replaceChildren(...rows.slice(-20).reverse().map((r) => h('tr', {}, h('td', { class: 'mono' }, r.op),
      r.row.map((v) => h('td', { class: typeof v === 'number' ? 'num' : null }, v === null ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v))))));
    pickers();
    const yi = columns.indexOf(yPick.value);
    if (yi < 0) {
      chart.replaceChildren();
      return;
    }
    const xi = columns.indexOf(xPick.value);
    const points = rows
      .map((r) => [xi < 0 ? r.at : timeOf(r.row[xi]), r.row[yi]])
      .filter(([x, y]) => x !== null && typeof y === 'number')
      .sort((a, b) => a[0] - b[0]);
    chart.replaceChildren(lineChart({
      width: 1100,
      height: 220,
      label: `${yPick.value} over ${xPick.value}`,
      series: [{ name: yPick.value, color: 'var(--in)', points }],
      // Rows a few seconds apart need their milliseconds told apart.
      xFormat: (ms, span) => formatTime(new Date(ms)).slice(11, span < 10_000 ? 23 : 19),
    }));
  }
  yPick.addEventListener('change', () => { dirty = true; draw(); });
  xPick.addEventListener('change', () => { dirty = true; draw(); });
  const painter = setInterval(draw, 1000);

  function open() {
    if (source || ended) return;
    source = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/results`);
    source.addEventListener('row', (event) => {
      const row = JSON.parse(event.data);
      received += 1;
      if (row.op === '-U' || row.op === '-D') {
        const text = JSON.stringify(row.row);
        const at = rows.findLastIndex((r) => JSON.stringify(r.row) === text);
        if (at >= 0) rows.splice(at, 1);
      } else {
        rows.push({ ...row, at: Date.now() });
        if (rows.length > KEPT_ROWS) rows.shift();
      }
      dirty = true;
    });
    source.addEventListener('missed', (event) => {
      missed += JSON.parse(event.data).rows || 0;
      dirty = true;
    });
    // Once ended, EventSource would connect again and again: close it.
    source.addEventListener('end', () => {
      ended = true;
      dirty = true;
      close();
    });
  }
  function close() {
    source?.close();
    source = null;
  }
  // Rows are not kept for anyone: a hidden page lets them go by.
  const visibility = () => (document.hidden ? close() : open());
  document.addEventListener('visibilitychange', visibility);
  if (!document.hidden) open();
  return {
    stop() {
      close();
      clearInterval(painter);
      document.removeEventListener('visibilitychange', visibility);
    },
  };
}
