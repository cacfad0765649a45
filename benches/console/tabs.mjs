// What a console left open costs the server: the server's CPU time over
// the same span with no console tab and with ten, read from
// /proc/<pid>/stat. The server runs a SELECT job (datagen, 5 rows/s) and
// holds a stream, a delivery stream and a video stream throughout, so the
// difference is the console's alone; the tabs are spread over the pages
// that refresh the most (a stream's, a job's with its live rows, a
// delivery stream's, a video stream's, the stream list). Headless tabs
// are all visible: no tab is spared by the hidden-page rule.
//
//   node benches/console/tabs.mjs [--binary PATH] [--tabs 10] [--seconds 60]
//        [--modules DIR]
//
// --binary defaults to $CARGO_TARGET_DIR/release/runnel; --modules to
// ~/.cache/runnel-test-node/node_modules (playwright-core; `make deps`).
// Chromium is Debian's. The script ends, killing the server and the
// browser, whatever happens.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
}
const HOME = process.env.HOME || '';
const binary = option('binary', join(process.env.CARGO_TARGET_DIR || join(HOME, '.cache/runnel-target'), 'release/runnel'));
const modules = option('modules', join(HOME, '.cache/runnel-test-node/node_modules'));
const TABS = Number(option('tabs', '10'));
const SECONDS = Number(option('seconds', '60'));
const TICKS = 100; // USER_HZ: /proc counts CPU time in these on Linux

const dataDir = mkdtempSync(join(tmpdir(), 'runnel-console-bench-'));
let server = null;
let browser = null;
function cleanUp() {
  server?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
}
process.on('exit', cleanUp);
setTimeout(() => {
  console.error(`tabs.mjs: not done within ${2 * SECONDS + 120} s`);
  process.exit(3);
}, (2 * SECONDS + 120) * 1000).unref();

const port = await new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = probe.address();
    probe.close(() => resolve(free));
  });
});
const base = `http://127.0.0.1:${port}`;
server = spawn(binary, ['server', '--data-dir', join(dataDir, 'data'), '--port', String(port)], { stdio: 'ignore' });
server.on('exit', (code) => {
  if (code !== null && code !== 0) console.error(`the server exited with ${code}`);
});

async function call(path, init) {
  const response = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const aws = (target, body) => call('/', {
  method: 'POST',
  headers: { 'X-Amz-Target': target, 'Content-Type': 'application/x-amz-json-1.1' },
  body: JSON.stringify(body),
});
const rest = (path, body) => call(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

for (let tries = 0; ; tries += 1) {
  try {
    await call('/v1/health');
    break;
  } catch (error) {
    if (tries > 100) throw error;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
await aws('Kinesis_20131202.CreateStream', { StreamName: 'bench', ShardCount: 2 });
await aws('Firehose_20150804.CreateDeliveryStream', {
  DeliveryStreamName: 'bench-delivery',
  ExtendedS3DestinationConfiguration: { RoleARN: 'arn:aws:iam::000000000000:role/f', BucketARN: 'arn:aws:s3:::bench' },
});
await rest('/createStream', { StreamName: 'bench-cam', DataRetentionInHours: 24, MediaType: 'video/h264' });
const job = await call('/v1/jobs', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({
    name: 'bench-select',
    sql: "CREATE TABLE r (id BIGINT, v DOUBLE, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'rows-per-second' = '5');\nSELECT id, v, ts FROM r;",
  }),
});
const PAGES = ['#/streams/bench', `#/jobs/${job.id}`, '#/firehose/bench-delivery', '#/video/bench-cam', '#/streams'];

/** The server's user + system CPU, in seconds. */
function cpu() {
  const stat = readFileSync(`/proc/${server.pid}/stat`, 'utf8');
  // The command name may hold spaces: fields count from after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

async function measure(what) {
  const before = cpu();
  const started = Date.now();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const seconds = (Date.now() - started) / 1000;
  const used = cpu() - before;
  return { what, seconds: Number(seconds.toFixed(1)), cpu_seconds: Number(used.toFixed(2)), cpu_percent_of_one_core: Number(((100 * used) / seconds).toFixed(2)) };
}

// Let the server and the job settle before counting.
await new Promise((resolve) => setTimeout(resolve, 5000));
const idle = await measure('no console tab');

const { chromium } = await import(pathToFileURL(join(modules, 'playwright-core', 'index.mjs')).href);
browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  timeout: 30_000,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let requests = 0;
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
context.on('request', () => {
  requests += 1;
});
for (let i = 0; i < TABS; i += 1) {
  const tab = await context.newPage();
  await tab.goto(`${base}/${PAGES[i % PAGES.length]}`, { timeout: 15_000 });
}
await new Promise((resolve) => setTimeout(resolve, 5000));
const counted = requests;
const open = await measure(`${TABS} console tabs`);
open.requests_per_second = Number(((requests - counted) / open.seconds).toFixed(1));
await browser.close();

const figures = { binary, pages: PAGES, idle, open, added_cpu_percent_of_one_core: Number((open.cpu_percent_of_one_core - idle.cpu_percent_of_one_core).toFixed(2)) };
console.log(JSON.stringify(figures, null, 2));
process.exit(0);
