// What every page builds with: elements from data (text is always set as
// text, never parsed as markup: records and SQL are user data), number
// and time formats, and the one way pages poll.

/** `h('td', {class: 'num'}, '12')`: attributes, then children (strings
 * become text nodes; null and false are skipped). */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'value') element.value = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

/** An SVG element, as `h` makes HTML ones. */
export function s(tag, attrs, ...children) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return element;
}

export function table(headers, rows, empty = 'Nothing yet.') {
  const head = h('tr', {}, headers.map((title) => {
    const numeric = title.endsWith('#');
    return h('th', { class: numeric ? 'num' : null }, numeric ? title.slice(0, -1) : title);
  }));
  const body = rows.length
    ? rows.map((cells) => h('tr', {}, cells.map((cell) => (cell instanceof Node && cell.nodeName === 'TD' ? cell : h('td', {}, cell)))))
    : [h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, empty))];
  return h('table', {}, h('thead', {}, head), h('tbody', {}, body));
}

export const num = (value) => h('td', { class: 'num' }, formatNumber(value));

export function formatNumber(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  return Number(value).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(bytes);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${formatNumber(value, unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A time as the console shows it: local, to the millisecond. `value`
 * is epoch seconds (as AWS JSON gives them), a Date, or ISO text. */
export function formatTime(value) {
  if (value === null || value === undefined || value === '') return '–';
  const date = value instanceof Date ? value : typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} `
    + `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${formatNumber(ms / 1000, 1)} s`;
  return `${formatNumber(ms / 60_000, 1)} min`;
}

export const pill = (text) => h('span', { class: `pill ${text}` }, text);

export function message(error) {
  if (!error) return '';
  return error.type ? `${error.type}: ${error.message}` : String(error.message || error);
}

/** Shows an error in `slot` (an element), or clears it with null. */
export function showError(slot, error) {
  slot.replaceChildren(error ? h('p', { class: 'error' }, message(error)) : '');
}

/** Runs `task` now and then every `intervalMs` after each run ends (a
 * slow server is asked less often, never twice at once), but not while
 * the tab is hidden: a console left in a background tab asks nothing.
 * Returns {stop, now}. */
export function poll(task, intervalMs = 1000) {
  let timer = null;
  let running = false;
  let stopped = false;
  async function tick() {
    timer = null;
    if (stopped || document.hidden || running) return;
    running = true;
    try {
      await task();
    } catch (error) {
      console.warn('poll:', error);
    } finally {
      running = false;
    }
    if (!stopped && !document.hidden) timer = setTimeout(tick, intervalMs);
  }
  const visible = () => {
    if (!document.hidden && timer === null && !running) tick();
  };
  document.addEventListener('visibilitychange', visible);
  tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', visible);
    },
    now() {
      if (running || stopped) return;
      clearTimeout(timer);
      tick();
    },
  };
}

/** Replaces `slot`'s content only when `key` differs from the last, so a
 * refresh that changed nothing keeps selections and scroll. */
export function replaceIfChanged(slot, key, build) {
  if (slot.dataset.key === key) return;
  slot.dataset.key = key;
  const built = build();
  slot.replaceChildren(...(Array.isArray(built) ? built.flat() : [built]).filter((c) => c !== null && c !== undefined && c !== false));
}
