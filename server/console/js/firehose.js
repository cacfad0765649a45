// Delivery streams: the list; a delivery stream's configuration
// (DescribeDeliveryStream), its buffer and figures (GET
// /v1/console/firehose/NAME, once a second) and its newest objects and
// error objects (…/objects, read again only when the figures say that an
// object was written or a delivery failed).

import { firehose, get } from './api.js';
import {
  formatBytes, formatDuration, formatNumber, formatTime, h, num, pill, poll, showError, table,
} from './ui.js';

export function list(main) {
  const listing = h('div');
  main.append(h('h1', {}, 'Delivery streams'), listing);
  const poller = poll(async () => {
    try {
      const out = await firehose('ListDeliveryStreams', { Limit: 10000 });
      const rows = (out.DeliveryStreamNames || []).map((name) => [
        h('a', { href: `#/firehose/${encodeURIComponent(name)}` }, name),
      ]);
      listing.replaceChildren(table(['Name'], rows, 'No delivery streams yet.'));
    } catch (error) {
      showError(listing, error);
    }
  }, 2000);
  return { stop: poller.stop };
}

/** The destination's settings worth a glance; the whole description is
 * there too, folded. */
function configuration(description) {
  const destination = description.Destinations?.[0] || {};
  const [kind, settings] = Object.entries(destination).find(([key]) => key.endsWith('DestinationDescription') && key !== 'S3DestinationDescription')
    || Object.entries(destination).find(([key]) => key === 'S3DestinationDescription') || ['', {}];
  const hints = settings.BufferingHints || {};
  const source = description.Source?.KinesisStreamSourceDescription?.KinesisStreamARN;
  const facts = [
    ['Type', description.DeliveryStreamType],
    ['Source', source],
    ['Destination', kind.replace('DestinationDescription', '')],
    ['Bucket', settings.BucketARN || settings.S3DestinationDescription?.BucketARN],
    ['Endpoint', settings.EndpointConfiguration?.Url || settings.HECEndpoint || settings.ClusterJDBCURL],
    ['Prefix', settings.Prefix],
    ['Error output prefix', settings.ErrorOutputPrefix],
    ['Buffering', hints.SizeInMBs ? `${hints.SizeInMBs} MiB or ${hints.IntervalInSeconds} s` : null],
    ['Compression', settings.CompressionFormat],
    ['Encryption', description.DeliveryStreamEncryptionConfiguration?.Status],
    ['Created', formatTime(description.CreateTimestamp)],
  ].filter(([, value]) => value);
  return [
    h('dl', { class: 'facts' }, facts.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, String(value))])),
    h('details', {}, h('summary', {}, 'Full description'), h('pre', { class: 'mono' }, JSON.stringify(description, null, 2))),
  ];
}

function objectTable(objects, empty) {
  return table(['Key', 'Size#', 'Written'], objects.map((o) => [
    h('td', { class: 'mono' }, o.key), h('td', { class: 'num' }, formatBytes(o.size)), formatTime(new Date(o.modified_ms)),
  ]), empty);
}

export function detail(main, name) {
  const status = h('span');
  const problem = h('div');
  const config = h('div', { class: 'panel' }, h('p', { class: 'muted' }, 'Loading…'));
  const figures = h('div', { class: 'panel', id: 'firehose-figures' });
  const deliveries = h('div');
  const errors = h('div');
  const errorLocation = h('p', { class: 'mono' });
  main.append(
    h('p', {}, h('a', { href: '#/firehose' }, '← Delivery streams')),
    h('h1', {}, name, ' ', status),
    problem,
    h('h2', {}, 'Configuration'), config,
    h('h2', {}, 'Buffer and deliveries'), figures,
    h('h2', {}, 'Last deliveries'), deliveries,
    h('h2', {}, 'Errors'), h('div', { class: 'panel' }, h('p', {}, 'Failed records go to:'), errorLocation), errors,
  );
  firehose('DescribeDeliveryStream', { DeliveryStreamName: name })
    .then((out) => config.replaceChildren(...configuration(out.DeliveryStreamDescription)))
    .catch((error) => showError(config, error));

  let before = null;
  let objectsKey = null;
  let objectsAt = 0;
  async function objects(current) {
    const key = `${current.delivered_objects}/${current.delivery_failures}`;
    // Written objects are what changes a listing; a failure may have
    // written an error object. Otherwise it is read again now and then.
    if (key === objectsKey && Date.now() - objectsAt < 30_000) return;
    objectsKey = key;
    objectsAt = Date.now();
    const out = await get(`/v1/console/firehose/${encodeURIComponent(name)}/objects`);
    if (!out.listed) {
      deliveries.replaceChildren(h('p', { class: 'muted' }, out.reason));
      errors.replaceChildren();
      return;
    }
    const note = out.truncated ? h('p', { class: 'muted' }, 'The bucket is large: only part of it was looked at.') : '';
    deliveries.replaceChildren(objectTable(out.delivered, 'Nothing delivered yet.'), note);
    errors.replaceChildren(objectTable(out.errors, 'No error objects.'));
  }

  const poller = poll(async () => {
    let current;
    try {
      current = await get(`/v1/console/firehose/${encodeURIComponent(name)}`);
      showError(problem, null);
    } catch (error) {
      showError(problem, error);
      return;
    }
    status.replaceChildren(pill(current.status));
    errorLocation.textContent = current.error_output_location || 'no bucket';
    const now = Date.now();
    const perSecond = (field) => (before ? ((current[field] - before.figures[field]) * 1000) / (now - before.at) : null);
    const buffer = current.buffer;
    const fill = Math.min(1, buffer.bytes / Math.max(1, buffer.size_bytes));
    figures.replaceChildren(
      h('p', {}, `Buffer: ${formatBytes(buffer.bytes)} of ${formatBytes(buffer.size_bytes)} (${formatNumber(fill * 100, 1)}%), delivered at the latest every ${buffer.interval_seconds} s`),
      h('div', { class: 'meter', title: 'buffer fill' }, h('div', { style: `width: ${(fill * 100).toFixed(1)}%` })),
      table(['', 'Records#', 'Bytes#', 'Records/s#'], [
        ['Incoming', num(current.incoming_records), h('td', { class: 'num' }, formatBytes(current.incoming_bytes)), num(perSecond('incoming_records'))],
        ['Delivered', num(current.delivered_records), h('td', { class: 'num' }, formatBytes(current.delivered_bytes)), num(perSecond('delivered_records'))],
      ]),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Objects delivered'), h('dd', {}, formatNumber(current.delivered_objects)),
        h('dt', {}, 'Failed deliveries'), h('dd', { class: current.delivery_failures ? 'bad' : '' }, formatNumber(current.delivery_failures)),
        h('dt', {}, 'Age of the oldest record at its delivery'), h('dd', {}, formatDuration(current.freshness_ms))),
    );
    before = { figures: current, at: now };
    try {
      await objects(current);
    } catch (error) {
      showError(deliveries, error);
    }
  });
  return { stop: poller.stop };
}
