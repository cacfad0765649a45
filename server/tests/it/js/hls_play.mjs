// Plays one HLS session URL with hls.js in headless Chromium (Debian's),
// as a web page on another origin would: the page comes from a server of
// this script's own on 127.0.0.1, so every playlist and fragment GET is a
// cross-origin request that needs the server's CORS header.
//
// argv: node_modules dir (hls.js, playwright-core), Chromium profile dir
// (new and empty; the caller removes it and anything still running with
// it), session URL, LIVE or ON_DEMAND, and optionally `audio`.
// Prints one JSON line of what the page saw; exits 0 only when the video
// played more than 3 s at 640x360 with no fatal hls.js error (and, LIVE,
// took in a fragment put after it joined; with `audio`, decoded audio).

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, profile, url, mode, audio] = process.argv.slice(2);
if (!modules || !profile || !url || !['LIVE', 'ON_DEMAND'].includes(mode) || ![undefined, 'audio'].includes(audio)) {
  console.error('usage: hls_play.mjs NODE_MODULES PROFILE_DIR URL LIVE|ON_DEMAND [audio]');
  process.exit(2);
}
const CHROMIUM = '/usr/bin/chromium';
const PLAY_SECONDS = 30;

// Whatever hangs, the script ends: Playwright kills the Chromium it
// started when the process exits, and the page server dies with it.
setTimeout(() => {
  console.error('hls_play.mjs: no answer within 90 s');
  process.exit(3);
}, 90_000).unref();

const { chromium } = await import(pathToFileURL(join(modules, 'playwright-core', 'index.mjs')).href);
const hlsJs = readFileSync(join(modules, 'hls.js', 'dist', 'hls.min.js'));

const page = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<video id="video" muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
const video = document.getElementById('video');
const state = window.state = {
  supported: Hls.isSupported(),
  h264: MediaSource.isTypeSupported('video/mp4; codecs="avc1.4d401e"'),
  errors: [], fatal: null, fragments: 0, live: null, playError: null, start: null,
  firstEndSN: null, lastBufferedSN: null,
};
const source = new URLSearchParams(location.search).get('src');
if (!state.supported) {
  state.fatal = 'hls.js: MediaSource is not supported';
} else {
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_, data) => {
    state.errors.push({ type: data.type, details: data.details, fatal: data.fatal,
                        status: data.response && data.response.code });
    if (data.fatal) state.fatal = data.type + ': ' + data.details;
  });
  hls.on(Hls.Events.LEVEL_LOADED, (_, data) => {
    state.live = data.details.live;
    if (state.firstEndSN === null) state.firstEndSN = data.details.endSN;
  });
  hls.on(Hls.Events.FRAG_BUFFERED, (_, data) => {
    state.fragments += 1;
    state.lastBufferedSN = Math.max(state.lastBufferedSN ?? -1, data.frag.sn);
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    video.play().catch((e) => { state.playError = String(e); });
  });
  // Where a LIVE session starts playing is hls.js's choice (near the live
  // edge), so how far it played counts from there.
  video.addEventListener('playing', () => {
    if (state.start === null) state.start = video.currentTime;
  });
  hls.loadSource(source);
  hls.attachMedia(video);
}
window.report = () => {
  const quality = video.getVideoPlaybackQuality();
  return { ...state, currentTime: video.currentTime, duration: video.duration, width: video.videoWidth,
           height: video.videoHeight, readyState: video.readyState,
           audioBytes: video.webkitAudioDecodedByteCount,
           frames: quality.totalVideoFrames, mediaError: video.error && video.error.message };
};
</script>
`;

const server = createServer((request, response) => {
  const path = new URL(request.url, 'http://page').pathname;
  if (path === '/') {
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(page);
  } else if (path === '/hls.min.js') {
    response.writeHead(200, { 'Content-Type': 'text/javascript' });
    response.end(hlsJs);
  } else {
    response.writeHead(404);
    response.end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

let context;
let report = null;
let failure = null;
const log = [];
try {
  // Playwright adds --headless itself and takes the profile as an
  // argument, not as --user-data-dir. The other flags keep Chromium from
  // calling out to Google's hosts, which this machine's closed network
  // refuses, many connections at a time.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const tab = context.pages()[0] ?? (await context.newPage());
  tab.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
  tab.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));
  tab.on('requestfailed', (request) =>
    log.push(`requestfailed: ${request.url().slice(0, 120)} ${request.failure()?.errorText}`));
  await tab.goto(`${origin}/?src=${encodeURIComponent(url)}`, { timeout: 15_000 });
  try {
    // A LIVE session has played only once hls.js has buffered a fragment
    // its first media playlist did not list yet: one put after it joined.
    await tab.waitForFunction(
      (live) => {
        const r = window.report();
        const played = r.start !== null && r.currentTime - r.start > 3 && r.width > 0;
        return r.fatal !== null || (played && (!live || r.lastBufferedSN > r.firstEndSN));
      },
      mode === 'LIVE',
      { timeout: PLAY_SECONDS * 1000, polling: 100 },
    );
  } catch (error) {
    failure = `did not play 3 s within ${PLAY_SECONDS} s (${error.message.split('\n')[0]})`;
  }
  report = await tab.evaluate(() => window.report());
} catch (error) {
  failure = `${error.message}`;
} finally {
  await context?.close().catch(() => {});
  server.close();
}

const problems = failure ? [failure] : [];
if (report) {
  const played = report.start !== null ? report.currentTime - report.start : 0;
  if (report.fatal) problems.push(`fatal hls.js error ${report.fatal}`);
  if (!report.h264) problems.push('this Chromium cannot play H.264 through MediaSource');
  if (played <= 3) problems.push(`played ${played.toFixed(2)} s, not more than 3`);
  if (report.width !== 640 || report.height !== 360) {
    problems.push(`video is ${report.width}x${report.height}, not 640x360`);
  }
  if (report.live !== (mode === 'LIVE')) problems.push(`hls.js took the playlist as live=${report.live}`);
  if (audio && !(report.audioBytes > 0)) problems.push('no audio was decoded');
  if (mode === 'LIVE' && !(report.lastBufferedSN > report.firstEndSN)) {
    problems.push('LIVE: no fragment buffered past those of the first media playlist');
  }
} else {
  problems.push('the page could not be read');
}
console.log(JSON.stringify({ mode, origin, report, problems }));
if (problems.length) {
  console.error(`hls_play.mjs: ${problems.join('; ')}\n${log.join('\n')}`);
  process.exit(1);
}
console.log('ok: hls_play.mjs');
