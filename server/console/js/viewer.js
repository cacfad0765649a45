// The data viewer: reads a shard from a chosen position (GetShardIterator
// then GetRecords, page by page, or following once a second) and shows
// each record's sequence number, partition key, arrival and data, decoded
// as JSON, text or hex.

import { kinesis } from './api.js';
import { formatNumber, formatTime, h, poll, showError } from './ui.js';

function bytesOf(base64) {
  const text = atob(base64 || '');
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i);
  return bytes;
}

const hex = (bytes) => Array.from(bytes.slice(0, 512), (b) => b.toString(16).padStart(2, '0')).join(' ')
  + (bytes.length > 512 ? ` … (${bytes.length} bytes)` : '');

/** A record's data as `how` asks: `auto` is JSON when it parses, text
 * when it is UTF-8, hex otherwise. */
export function decode(base64, how) {
  const bytes = bytesOf(base64);
  if (how === 'hex') return hex(bytes);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return how === 'text' ? new TextDecoder().decode(bytes) : hex(bytes);
  }
  if (how === 'text') return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return how === 'json' ? `(not JSON) ${text}` : text;
  }
}

const MAX_ROWS = 500;

export function dataViewer(stream) {
  const shard = h('select', { name: 'shard' });
  const position = h('select', { name: 'position' },
    ['TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP', 'AT_SEQUENCE_NUMBER'].map((p) => h('option', { value: p }, p)));
  const timestamp = h('input', { name: 'timestamp', type: 'datetime-local', step: 1 });
  const sequence = h('input', { name: 'sequence-number', placeholder: 'sequence number', size: 40 });
  const timestampLabel = h('label', { hidden: true }, 'At', timestamp);
  const sequenceLabel = h('label', { hidden: true }, 'Sequence number', sequence);
  const how = h('select', { name: 'decode' },
    [['auto', 'JSON or text'], ['text', 'Text'], ['json', 'JSON'], ['hex', 'Hex']].map(([v, t]) => h('option', { value: v }, t)));
  const follow = h('input', { type: 'checkbox', name: 'follow' });
  const read = h('button', { type: 'submit' }, 'Read');
  const more = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Next records');
  const problem = h('div');
  const summary = h('p', { class: 'muted' });
  const body = h('tbody');
  const records = [];
  let iterator = null;
  let reading = '';
  let follower = null;
  position.addEventListener('change', () => {
    timestampLabel.hidden = position.value !== 'AT_TIMESTAMP';
    sequenceLabel.hidden = position.value !== 'AT_SEQUENCE_NUMBER';
  });

  function render() {
    body.replaceChildren(...(records.length ? records.map((r) => h('tr', {},
      h('td', { class: 'mono' }, r.SequenceNumber),
      h('td', {}, r.PartitionKey),
      h('td', { class: 'mono' }, formatTime(r.ApproximateArrivalTimestamp)),
      h('td', {}, h('pre', {}, decode(r.Data, how.value))))) : [h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No records read.'))]));
  }
  how.addEventListener('change', render);

  async function next() {
    if (!iterator) return;
    const out = await kinesis('GetRecords', { ShardIterator: iterator, Limit: 100 });
    iterator = out.NextShardIterator || null;
    records.push(...(out.Records || []));
    records.splice(0, Math.max(0, records.length - MAX_ROWS));
    render();
    summary.textContent = `${reading}: ${records.length} records shown; ${formatNumber(out.MillisBehindLatest)} ms behind the latest`
      + (iterator ? '' : '; the shard is closed and read to its end');
    more.disabled = !iterator;
  }

  function stopFollowing() {
    follower?.stop();
    follower = null;
  }
  follow.addEventListener('change', () => {
    stopFollowing();
    if (follow.checked && iterator) follower = poll(() => next().catch((error) => showError(problem, error)));
  });

  const form = h('form', {
    class: 'row',
    onsubmit: async (event) => {
      event.preventDefault();
      stopFollowing();
      const request = { StreamName: stream, ShardId: shard.value, ShardIteratorType: position.value };
      if (position.value === 'AT_TIMESTAMP') request.Timestamp = new Date(timestamp.value).getTime() / 1000;
      if (position.value === 'AT_SEQUENCE_NUMBER') request.StartingSequenceNumber = sequence.value.trim();
      records.length = 0;
      reading = `${shard.value} from ${position.value}`;
      try {
        iterator = (await kinesis('GetShardIterator', request)).ShardIterator;
        await next();
        showError(problem, null);
        if (follow.checked) follower = poll(() => next().catch((error) => showError(problem, error)));
      } catch (error) {
        showError(problem, error);
      }
    },
  },
  h('label', {}, 'Shard', shard),
  h('label', {}, 'Start', position),
  timestampLabel, sequenceLabel,
  h('label', {}, 'Show data as', how),
  h('label', {}, h('span', {}, follow, ' follow'), ''),
  read, more);
  more.addEventListener('click', () => next().catch((error) => showError(problem, error)));
  render();
  const element = h('div', { class: 'panel', id: 'data-viewer' }, form, problem, summary,
    h('table', {}, h('thead', {}, h('tr', {}, ['Sequence number', 'Partition key', 'Arrival', 'Data'].map((t) => h('th', {}, t)))), body));
  return {
    element,
    /** Keeps the shard list current, and the chosen shard chosen. */
    shards(shards) {
      const key = shards.map((x) => x.shard_id).join(',');
      if (shard.dataset.key === key) return;
      shard.dataset.key = key;
      const chosen = shard.value;
      shard.replaceChildren(...shards.map((x) => h('option', { value: x.shard_id }, `${x.shard_id}${x.open ? '' : ' (closed)'}`)));
      if (shards.some((x) => x.shard_id === chosen)) shard.value = chosen;
    },
    stop: stopFollowing,
  };
}
