// The web console in headless Chromium (Debian's), used as a person
// would: creates a stream in its form, reads records put by a producer in
// the data viewer (from the trim horizon, a sequence number, and the
// latest, following), reshards; submits SQL (first a broken script, whose
// error is marked at its line, then a bare SELECT whose rows arrive in
// the live table); looks at a delivery stream's deliveries; plays a video
// stream's archived fragments and another's live edge through hls.js.
// Each page is saved as a screenshot.
//
// argv: node_modules dir (playwright-core), Chromium profile dir (new and
// empty; the caller removes it and anything still running with it), the
// server's URL, the screenshot dir, the delivery stream, a video stream
// of archived fragments, and one being put live.
// Prints one JSON line of what it saw; exits 0 only when every step did
// what it should, with no script error on any page.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, profile, base, shots, delivery, camera, live] = process.argv.slice(2);
if (!modules || !profile || !base || !shots || !delivery || !camera || !live) {
  console.error('usage: console_browser.mjs NODE_MODULES PROFILE_DIR URL SCREENSHOT_DIR DELIVERY_STREAM VIDEO_STREAM LIVE_VIDEO_STREAM');
  process.exit(2);
}
const CHROMIUM = '/usr/bin/chromium';
const STREAM = 'console-stream';
const RECORDS = 10;

// Whatever hangs, the script ends: Playwright kills the Chromium it
// started when the process exits.
setTimeout(() => {
  console.error('console_browser.mjs: not done within 200 s');
  process.exit(3);
}, 200_000).unref();

const { chromium } = await import(pathToFileURL(join(modules, 'playwright-core', 'index.mjs')).href);
mkdirSync(shots, { recursive: true });

/** An AWS call from outside the page: the producer beside the console. */
async function aws(target, body) {
  const response = await fetch(`${base}/`, {
    method: 'POST',
    headers: { 'X-Amz-Target': target, 'Content-Type': 'application/x-amz-json-1.1' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${target}: ${response.status} ${text}`);
  return JSON.parse(text);
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64');

function check(condition, what) {
  if (!condition) throw new Error(what);
}

const log = [];
const saw = {};
const saved = [];
let context;
let tab;
let failure = null;

async function shot(name) {
  const path = join(shots, `${name}.png`);
  await tab.screenshot({ path, fullPage: true, timeout: 15_000 });
  saved.push(path);
}

/** Waits for `predicate(arg)` in the page, saying `what` on a timeout. */
async function until(what, predicate, arg, timeout = 15_000) {
  try {
    await tab.waitForFunction(predicate, arg, { timeout, polling: 100 });
  } catch (error) {
    throw new Error(`${what} (not within ${timeout / 1000} s)`);
  }
}

/** The data viewer's rows: [sequence number, partition key, arrival, data]. */
const viewerRows = () => tab.$$eval('#data-viewer tbody tr', (rows) => rows
  .map((row) => [...row.cells].map((cell) => cell.innerText))
  .filter((cells) => cells.length === 4));

async function read(shard, position, extra = {}) {
  await tab.selectOption('#data-viewer select[name=shard]', shard);
  await tab.selectOption('#data-viewer select[name=position]', position);
  if (extra.sequence) await tab.fill('#data-viewer input[name=sequence-number]', extra.sequence);
  await tab.setChecked('#data-viewer input[name=follow]', Boolean(extra.follow));
  await tab.click('#data-viewer button[type=submit]');
  await until(`the data viewer read ${shard} from ${position}`,
    (wanted) => document.querySelector('#data-viewer p.muted')?.textContent.startsWith(wanted),
    `${shard} from ${position}:`);
  return viewerRows();
}

async function streams() {
  await tab.goto(`${base}/`, { timeout: 15_000 });
  await until('the streams page', () => document.querySelector('#create-stream') !== null);
  await tab.fill('#create-stream input[name=stream-name]', STREAM);
  await tab.fill('#create-stream input[name=shard-count]', '2');
  await tab.click('#create-stream button[type=submit]');
  await until('the new stream\'s page, ACTIVE', () => location.hash === '#/streams/console-stream'
    && document.querySelector('h1 .pill')?.textContent === 'ACTIVE');
  await until('its two shards', () => document.querySelectorAll('#shards tbody tr').length === 2);

  const records = Array.from({ length: RECORDS }, (_, n) => ({ Data: b64({ n, word: `record-${n}` }), PartitionKey: `key-${n}` }));
  const put = await aws('Kinesis_20131202.PutRecords', { StreamName: STREAM, Records: records });
  check(put.FailedRecordCount === 0, `PutRecords failed ${put.FailedRecordCount} records`);

  // From the trim horizon, shard by shard: every record, decoded.
  const shards = await tab.$$eval('#data-viewer select[name=shard] option', (options) => options.map((o) => o.value));
  check(shards.length === 2, `the viewer offers shards ${shards}`);
  const byShard = {};
  for (const shard of shards) byShard[shard] = await read(shard, 'TRIM_HORIZON');
  const all = Object.values(byShard).flat();
  const words = all.map((row) => JSON.parse(row[3]).word).sort();
  const expected = Array.from({ length: RECORDS }, (_, n) => `record-${n}`).sort();
  check(JSON.stringify(words) === JSON.stringify(expected), `the viewer shows ${words}, not ${expected}`);
  for (const [sequence, key, arrival] of all) {
    check(/^\d{15,}$/.test(sequence), `sequence number ${sequence}`);
    check(/^key-\d$/.test(key), `partition key ${key}`);
    check(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/.test(arrival), `arrival time ${arrival}`);
  }
  saw.trim_horizon = all.length;

  // From a sequence number: that record and those after it.
  const [fuller, rows] = Object.entries(byShard).sort((a, b) => b[1].length - a[1].length)[0];
  check(rows.length >= 2, `no shard got two records: ${JSON.stringify(byShard)}`);
  const at = await read(fuller, 'AT_SEQUENCE_NUMBER', { sequence: rows[1][0] });
  check(at.length === rows.length - 1 && at[0][0] === rows[1][0],
    `AT_SEQUENCE_NUMBER ${rows[1][0]} read ${at.map((r) => r[0])}`);

  // LATEST, following: nothing, then what is put after.
  const latest = await read(shards[0], 'LATEST', { follow: true });
  check(latest.length === 0, `LATEST read ${latest.length} old records`);
  await aws('Kinesis_20131202.PutRecord', { StreamName: STREAM, Data: b64({ word: 'late' }), PartitionKey: 'late', ExplicitHashKey: '0' });
  await until('the record put after LATEST, followed',
    () => [...document.querySelectorAll('#data-viewer tbody pre')].some((pre) => pre.textContent.includes('"late"')));
  await tab.setChecked('#data-viewer input[name=follow]', false);

  // The rates count what went in and out, in whole seconds.
  await until('the rates counted every record in and out', async (name) => {
    const response = await fetch(`/v1/console/streams/${name}`);
    const { rates } = await response.json();
    const sum = (values) => values.reduce((a, b) => a + b, 0);
    return sum(rates.records_in) === 11 && sum(rates.records_out) >= 11 && sum(rates.bytes_in) > 0;
  }, STREAM, 10_000);
  await until('the chart of records per second', () => document.querySelector('#rates svg[aria-label="records per second"] path') !== null);

  // Reshard to four: two closed parents, four children.
  await tab.fill('input[name=target-shard-count]', '4');
  await tab.click('form:has(input[name=target-shard-count]) button[type=submit]');
  await until('six shards after resharding to four', () => document.querySelectorAll('#shards tbody tr').length === 6, undefined, 30_000);
  const parents = await tab.$$eval('#shards tbody tr', (rows) => rows.map((row) => row.cells[2].innerText).filter((p) => p !== '–'));
  check(parents.length === 4, `children with parents: ${parents}`);
  saw.shards_after_reshard = 6;
  await shot('stream');

  await tab.goto(`${base}/#/streams`);
  await until('the stream in the list', (name) => [...document.querySelectorAll('main table a')].some((a) => a.textContent === name), STREAM);
  await shot('streams');
}

async function jobs() {
  await tab.goto(`${base}/#/jobs`);
  await until('the SQL editor', () => document.querySelector('#submit-job textarea') !== null);
  const example = await tab.inputValue('#submit-job textarea');
  await tab.fill('#submit-job textarea', "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nSELECT nope FROM t;");
  await tab.click('#submit-job button[type=submit]');
  await until('the refusal, at its line and column', () => /^Line 2, column 8: .*nope/.test(document.querySelector('#submit-problem')?.innerText || ''));
  const marked = await tab.$$eval('#submit-job .gutter div.bad', (lines) => lines.map((l) => l.textContent));
  check(JSON.stringify(marked) === '["2"]', `the gutter marks lines ${marked}`);
  await shot('jobs');

  await tab.fill('#submit-job textarea', example);
  await tab.fill('#submit-job input[name=job-name]', 'console-select');
  await tab.click('#submit-job button[type=submit]');
  await until('the job\'s page', () => /^#\/jobs\/[0-9a-f]+$/.test(location.hash));
  await until('rows in the live table', () => document.querySelectorAll('#results-table tbody tr').length >= 3, undefined, 20_000);
  const header = await tab.$$eval('#results-table thead th', (cells) => cells.map((c) => c.textContent));
  check(JSON.stringify(header) === '["op","id","celsius","ts"]', `the table's columns are ${header}`);
  await until('numeric columns to chart', () => document.querySelectorAll('select[name=chart-value] option').length === 2);
  await tab.selectOption('select[name=chart-value]', 'celsius');
  await tab.selectOption('select[name=chart-time]', 'ts');
  await until('a chart of celsius over ts', () => document.querySelector('#results-chart svg[aria-label="celsius over ts"] path') !== null);
  await until('the plan, from source to sink, with rows per second', () => {
    const labels = [...document.querySelectorAll('#plan svg .node')].map((n) => n.textContent);
    return labels.some((l) => l.startsWith('Source: readings') && /\/s/.test(l)) && labels.some((l) => l.startsWith('Sink: print (results)'));
  });
  saw.result_rows = await tab.$$eval('#results-table tbody tr', (rows) => rows.length);
  await shot('job');
  await tab.click('main button:text("Stop")');
  await until('the job stopped', () => ['STOPPED', 'FINISHED'].includes(document.querySelector('h1 .pill')?.textContent), undefined, 20_000);
}

async function deliveries() {
  await tab.goto(`${base}/#/firehose`);
  await until('the delivery stream in the list', (name) => [...document.querySelectorAll('main table a')].some((a) => a.textContent === name), delivery);
  await tab.click(`main table a:text("${delivery}")`);
  await until('the buffer and its figures', () => /Buffer: /.test(document.querySelector('#firehose-figures')?.innerText || ''));
  await until('a delivered object under events/', () => [...document.querySelectorAll('main table td.mono')].some((td) => td.textContent.startsWith('events/')), undefined, 20_000);
  const location = await tab.innerText('main p.mono');
  check(location.startsWith('s3://console-bucket/failed/'), `error output location ${location}`);
  await shot('firehose');
}

async function video() {
  await tab.goto(`${base}/#/video`);
  await until('the video stream in the list', (name) => [...document.querySelectorAll('main table a')].some((a) => a.textContent === name), camera);
  await tab.click(`main table a:text("${camera}")`);
  await until('five fragments on the timeline', () => document.querySelectorAll('#timeline svg rect').length === 5);
  await until('a thumbnail', () => document.querySelector('#thumbnail img')?.naturalWidth > 0, undefined, 20_000);
  await tab.click('#play-archive');
  await until('3 s of archived video played at 640x360', () => {
    const player = document.querySelector('#player');
    return player.currentTime > 3 && player.videoWidth === 640 && player.videoHeight === 360;
  }, undefined, 30_000);
  saw.played_archive_seconds = await tab.$eval('#player', (player) => player.currentTime);
  await shot('video');

  // The live edge: where hls.js joins is its choice, so how far it
  // played counts from there.
  await tab.goto(`${base}/#/video/${live}`);
  await until('the live stream\'s fragments', () => document.querySelectorAll('#timeline svg rect').length >= 2);
  await tab.click('#play-live');
  await until('live video playing', () => {
    const player = document.querySelector('#player');
    if (player.currentTime > 0 && player.videoWidth === 640) window.joinedAt ??= player.currentTime;
    return window.joinedAt !== undefined;
  }, undefined, 30_000);
  await until('3 s of live video played', () => document.querySelector('#player').currentTime - window.joinedAt > 3, undefined, 30_000);
  saw.played_live_seconds = await tab.evaluate(() => document.querySelector('#player').currentTime - window.joinedAt);
  await shot('video-live');
}

try {
  // Playwright adds --headless itself and takes the profile as an
  // argument. The other flags keep Chromium from calling Google's hosts.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    viewport: { width: 1280, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  tab = context.pages()[0] ?? (await context.newPage());
  tab.setDefaultTimeout(15_000);
  tab.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
  tab.on('pageerror', (error) => {
    log.push(`pageerror: ${error.message}`);
    failure ??= `script error on the page: ${error.message}`;
  });
  for (const [name, run] of [['streams', streams], ['jobs', jobs], ['firehose', deliveries], ['video', video]]) {
    try {
      await run();
      log.push(`ok: ${name}`);
    } catch (error) {
      failure ??= `${name}: ${error.message.split('\n')[0]}`;
      await shot(`failed-${name}`).catch(() => {});
      break;
    }
  }
} catch (error) {
  failure ??= error.message;
} finally {
  await context?.close().catch(() => {});
}

console.log(JSON.stringify({ saw, screenshots: saved, failure }));
if (failure) {
  console.error(`console_browser.mjs: ${failure}\n${log.join('\n')}`);
  process.exit(1);
}
console.log('ok: console_browser.mjs');
