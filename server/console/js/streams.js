// Streams: the list and a create form; a stream's page with its rates
// (GET /v1/console/streams/NAME, once a second), its shards' lineage, a
// reshard form, and the data viewer (GetShardIterator and GetRecords).

import { get, kinesis } from './api.js';
import { perSecondChart } from './chart.js';
import { dataViewer } from './viewer.js';
import {
  formatBytes, formatNumber, formatTime, h, pill, poll, replaceIfChanged, s, showError, table,
} from './ui.js';

const link = (name) => h('a', { href: `#/streams/${encodeURIComponent(name)}` }, name);

export function list(main) {
  const problem = h('div');
  const name = h('input', { name: 'stream-name', required: true, pattern: '[a-zA-Z0-9_.\\-]+', maxlength: 128, placeholder: 'my-stream' });
  const shards = h('input', { name: 'shard-count', type: 'number', min: 1, value: 1, style: 'width: 6rem' });
  const mode = h('select', { name: 'mode' },
    h('option', { value: 'PROVISIONED' }, 'Provisioned'),
    h('option', { value: 'ON_DEMAND' }, 'On demand'));
  mode.addEventListener('change', () => {
    shards.disabled = mode.value === 'ON_DEMAND';
  });
  const form = h('form', {
    id: 'create-stream',
    class: 'row',
    onsubmit: async (event) => {
      event.preventDefault();
      const request = { StreamName: name.value.trim(), StreamModeDetails: { StreamMode: mode.value } };
      if (mode.value === 'PROVISIONED') request.ShardCount = Number(shards.value);
      try {
        await kinesis('CreateStream', request);
        location.hash = `#/streams/${encodeURIComponent(request.StreamName)}`;
      } catch (error) {
        showError(problem, error);
      }
    },
  },
  h('label', {}, 'Name', name),
  h('label', {}, 'Shards', shards),
  h('label', {}, 'Capacity', mode),
  h('button', { type: 'submit' }, 'Create stream'));
  const listing = h('div');
  main.append(h('h1', {}, 'Streams'), h('div', { class: 'panel' }, form, problem), listing);
  const poller = poll(async () => {
    try {
      const out = await kinesis('ListStreams', { Limit: 1000 });
      const rows = (out.StreamSummaries || []).map((stream) => [
        link(stream.StreamName),
        pill(stream.StreamStatus),
        stream.StreamModeDetails?.StreamMode || '',
        formatTime(stream.StreamCreationTimestamp),
      ]);
      listing.replaceChildren(
        table(['Name', 'Status', 'Capacity', 'Created'], rows, 'No streams yet.'),
        out.HasMoreStreams ? h('p', { class: 'muted' }, 'The first 1000 streams are shown.') : '',
      );
    } catch (error) {
      showError(listing, error);
    }
  });
  return { stop: poller.stop };
}

// -------------------------------------------------------------- a stream

const TWO_128 = 2n ** 128n;
/** Where a hash key sits in the key space, 0 to 1. */
const fraction = (key) => Number((BigInt(key) * 1_000_000n) / TWO_128) / 1_000_000;

/** Each shard's generation: 0 for the first shards, one more than its
 * parents for a shard made by a split or a merge. */
function generations(shards) {
  const byId = new Map(shards.map((shard) => [shard.shard_id, shard]));
  const depth = new Map();
  const of = (shard) => {
    if (depth.has(shard.shard_id)) return depth.get(shard.shard_id);
    depth.set(shard.shard_id, 0);
    const parents = [shard.parent, shard.adjacent_parent].filter((p) => p && byId.has(p));
    const value = parents.length ? 1 + Math.max(...parents.map((p) => of(byId.get(p)))) : 0;
    depth.set(shard.shard_id, value);
    return value;
  };
  shards.forEach(of);
  return depth;
}

/** The shards over the hash key space, a row per generation: a split
 * shows as one bar over two, a merge as two over one. */
function lineage(shards) {
  const depth = generations(shards);
  const rows = Math.max(0, ...depth.values()) + 1;
  const width = 960;
  const row = 30;
  const bars = shards.map((shard) => {
    const x0 = 8 + fraction(shard.starting_hash_key) * (width - 16);
    const x1 = 8 + fraction(shard.ending_hash_key) * (width - 16);
    const y = 6 + depth.get(shard.shard_id) * row;
    const title = `${shard.shard_id} ${shard.open ? 'open' : 'closed'}\nhash keys ${shard.starting_hash_key} to ${shard.ending_hash_key}`;
    return s('g', { class: `node ${shard.open ? 'source' : ''}` },
      s('title', {}, title),
      s('rect', { x: x0, y, width: Math.max(2, x1 - x0), height: row - 8, rx: 3 }),
      x1 - x0 > 70 ? s('text', { class: 'label', x: (x0 + x1) / 2, y: y + 15, 'text-anchor': 'middle' }, shard.shard_id.replace('shardId-', '')) : null);
  });
  return s('svg', { class: 'chart', viewBox: `0 0 ${width} ${rows * row + 8}`, role: 'img', 'aria-label': 'shard lineage' }, bars);
}

function shardTable(shards) {
  const rows = shards.map((shard) => [
    h('td', { class: 'mono' }, shard.shard_id),
    shard.open ? pill('open') : pill('closed'),
    h('td', { class: 'mono' }, [shard.parent, shard.adjacent_parent].filter(Boolean).join(' + ') || '–'),
    h('td', { class: 'mono', title: `${shard.starting_hash_key} – ${shard.ending_hash_key}` },
      `${(fraction(shard.starting_hash_key) * 100).toFixed(1)}% – ${(fraction(shard.ending_hash_key) * 100).toFixed(1)}%`),
    h('td', { class: 'mono' }, shard.starting_sequence_number),
    h('td', { class: 'mono' }, shard.ending_sequence_number || '–'),
  ]);
  return table(['Shard', 'State', 'Parents', 'Hash keys', 'First sequence number', 'Last sequence number'], rows);
}

function rates(slot, overview) {
  const r = overview.rates;
  const last = (values) => values[values.length - 1] ?? 0;
  const figure = (value, unit) => h('div', { class: 'figure' }, value, h('small', {}, unit));
  slot.replaceChildren(
    h('div', { class: 'grid' },
      figure(formatNumber(last(r.records_in)), 'records/s in'),
      figure(formatNumber(last(r.records_out)), 'records/s out'),
      figure(formatBytes(last(r.bytes_in)), 'per second in'),
      figure(formatBytes(last(r.bytes_out)), 'per second out')),
    h('div', { class: 'grid' },
      perSecondChart({
        label: 'records per second',
        end: r.end,
        series: [
          { name: 'records in/s', color: 'var(--in)', values: r.records_in },
          { name: 'records out/s', color: 'var(--out)', values: r.records_out },
        ],
      }),
      perSecondChart({
        label: 'bytes per second',
        end: r.end,
        yFormat: formatBytes,
        series: [
          { name: 'bytes in/s', color: 'var(--in)', values: r.bytes_in },
          { name: 'bytes out/s', color: 'var(--out)', values: r.bytes_out },
        ],
      })),
  );
}

export function detail(main, name) {
  const status = h('span');
  const facts = h('dl', { class: 'facts' });
  const problem = h('div');
  const rateSlot = h('div', { id: 'rates' });
  const lineageSlot = h('div');
  const shardsSlot = h('div', { id: 'shards' });
  const target = h('input', { name: 'target-shard-count', type: 'number', min: 1, style: 'width: 6rem' });
  const reshardProblem = h('div');
  const reshard = h('form', {
    class: 'row',
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await kinesis('UpdateShardCount', {
          StreamName: name, TargetShardCount: Number(target.value), ScalingType: 'UNIFORM_SCALING',
        });
        showError(reshardProblem, null);
        poller.now();
      } catch (error) {
        showError(reshardProblem, error);
      }
    },
  }, h('label', {}, 'Open shards', target), h('button', { type: 'submit' }, 'Reshard'));
  const viewer = dataViewer(name);
  main.append(
    h('p', {}, h('a', { href: '#/streams' }, '← Streams')),
    h('h1', {}, name, ' ', status),
    problem,
    h('div', { class: 'panel' }, facts),
    h('h2', {}, 'Records and bytes per second, last 5 minutes'),
    h('div', { class: 'panel' }, rateSlot),
    h('h2', {}, 'Shards'),
    h('div', { class: 'panel' }, reshard, reshardProblem, lineageSlot, shardsSlot),
    h('h2', {}, 'Data viewer'),
    viewer.element,
  );
  let first = true;
  const poller = poll(async () => {
    let overview;
    try {
      overview = await get(`/v1/console/streams/${encodeURIComponent(name)}`);
      showError(problem, null);
    } catch (error) {
      showError(problem, error);
      return;
    }
    status.replaceChildren(pill(overview.status));
    replaceIfChanged(facts, JSON.stringify([overview.arn, overview.mode, overview.retention_hours, overview.encrypted, overview.consumers]), () => [
      h('dt', {}, 'ARN'), h('dd', { class: 'mono' }, overview.arn),
      h('dt', {}, 'Capacity'), h('dd', {}, overview.mode),
      h('dt', {}, 'Retention'), h('dd', {}, `${overview.retention_hours} hours`),
      h('dt', {}, 'Encryption'), h('dd', {}, overview.encrypted ? 'KMS' : 'none'),
      h('dt', {}, 'Consumers'), h('dd', {}, String(overview.consumers)),
    ]);
    rates(rateSlot, overview);
    const shardKey = JSON.stringify(overview.shards);
    replaceIfChanged(lineageSlot, shardKey, () => lineage(overview.shards));
    replaceIfChanged(shardsSlot, shardKey, () => shardTable(overview.shards));
    viewer.shards(overview.shards);
    if (first) {
      target.value = overview.shards.filter((shard) => shard.open).length;
      first = false;
    }
  });
  return {
    stop() {
      poller.stop();
      viewer.stop();
    },
  };
}
