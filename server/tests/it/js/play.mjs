// Plays one HLS session URL with hls.js, or one DASH session URL with
// dash.js, in headless Chromium (Debian's), as a web page on another
// origin would: the page comes from a server of this script's own on
// 127.0.0.1, so every playlist, manifest and fragment GET is a
// cross-origin request that needs the server's CORS header.
//
// argv: hls|dash, node_modules dir (hls.js, dashjs, playwright-core),
// Chromium profile dir (new and empty; the caller removes it and anything
// still running with it), session URL, LIVE or ON_DEMAND, and optionally
// `audio`. Prints one JSON line of what the page saw; exits 0 only when
// the video played more than 3 s at 640x360 with no fatal player error
// (and, LIVE, took in a fragment put after it joined; with `audio`,
// decoded audio).

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [player, modules, profile, url, mode, audio] = process.argv.slice(2);
const PLAYERS = {
  hls: { script: join('hls.js', 'dist', 'hls.min.js'), name: 'hls.js' },
  dash: { script: join('dashjs', 'dist', 'modern', 'umd', 'dash.all.min.js'), name: 'dash.js' },
};
if (!PLAYERS[player] || !modules || !profile || !url || !['LIVE', 'ON_DEMAND'].includes(mode)
    || ![undefined, 'audio'].includes(audio)) {
  console.error('usage: play.mjs hls|dash NODE_MODULES PROFILE_DIR URL LIVE|ON_DEMAND [audio]');
  process.exit(2);
}
const CHROMIUM = '/usr/bin/chromium';
const PLAY_SECONDS = 30;

// Whatever hangs, the script ends: Playwright kills the Chromium it
// started when the process exits, and the page server dies with it.
setTimeout(() => {
  console.error('play.mjs: no answer within 90 s');
  process.exit(3);
}, 90_000).unref();

const { chromium } = await import(pathToFileURL(join(modules, 'playwright-core', 'index.mjs')).href);
const playerJs = readFileSync(join(modules, PLAYERS[player].script));

// Each player reports into the same state: fatal errors, fragments
// buffered, whether it took the presentation as live.
const attach = {
  hls: `
  state.supported = Hls.isSupported();
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
    hls.loadSource(source);
    hls.attachMedia(video);
  }`,
  dash: `
  state.supported = typeof dashjs !== 'undefined' && dashjs.supportsMediaSource();
  if (!state.supported) {
    state.fatal = 'dash.js: MediaSource is not supported';
  } else {
    const dash = dashjs.MediaPlayer().create();
    const events = dashjs.MediaPlayer.events;
    // dash.js reports every error as fatal to the stream it is on.
    dash.on(events.ERROR, (e) => {
      const error = e.error || {};
      state.errors.push({ code: error.code, message: error.message });
      state.fatal = 'dash.js: ' + (error.message || error.code);
    });
    dash.on(events.STREAM_INITIALIZED, () => {
      state.live = dash.isDynamic();
      state.tracks = ['video', 'audio'].filter((type) => dash.getTracksFor(type).length > 0);
    });
    // Fragment numbers are 128-bit: counted from the first manifest's
    // least, they compare as numbers do. The last of that manifest and the
    // last video segment loaded play hls.js's end SN and buffered SN.
    fetch(source).then((answer) => answer.text()).then((text) => {
      const numbers = [...text.matchAll(/FragmentNumber=([0-9]+)/g)].map((m) => BigInt(m[1]));
      const base = numbers.length ? numbers.reduce((a, b) => (a < b ? a : b)) : 0n;
      const last = numbers.length ? numbers.reduce((a, b) => (a > b ? a : b)) : base - 1n;
      state.firstEndSN = Number(last - base);
      dash.on(events.FRAGMENT_LOADING_COMPLETED, (e) => {
        if (!e.request || e.request.type !== 'MediaSegment') return;
        state.fragments += 1;
        const number = /FragmentNumber=([0-9]+)/.exec(e.request.url);
        if (number && e.request.mediaType === 'video') {
          state.lastBufferedSN = Math.max(state.lastBufferedSN ?? -1, Number(BigInt(number[1]) - base));
        }
      });
      dash.initialize(video, source, true);
    }).catch((e) => { state.fatal = 'the manifest: ' + e; });
  }`,
};

const page = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<video id="video" muted autoplay playsinline></video>
<script src="/player.js"></script>
<script>
const video = document.getElementById('video');
const state = window.state = {
  supported: null,
  h264: MediaSource.isTypeSupported('video/mp4; codecs="avc1.4d401e"'),
  errors: [], fatal: null, fragments: 0, live: null, playError: null, start: null,
  firstEndSN: null, lastBufferedSN: null, tracks: null,
};
const source = new URLSearchParams(location.search).get('src');
// Where a LIVE session starts playing is the player's choice (near the
// live edge), so how far it played counts from there.
video.addEventListener('playing', () => {
  if (state.start === null) state.start = video.currentTime;
});
${attach[player]}
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
  } else if (path === '/player.js') {
    response.writeHead(200, { 'Content-Type': 'text/javascript' });
    response.end(playerJs);
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
    // A LIVE session has played only once the player has loaded a fragment
    // its first playlist or manifest did not list yet: one put after it
    // joined.
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
  if (report.fatal) problems.push(`fatal ${PLAYERS[player].name} error ${report.fatal}`);
  if (!report.h264) problems.push('this Chromium cannot play H.264 through MediaSource');
  if (played <= 3) problems.push(`played ${played.toFixed(2)} s, not more than 3`);
  if (report.width !== 640 || report.height !== 360) {
    problems.push(`video is ${report.width}x${report.height}, not 640x360`);
  }
  if (report.live !== (mode === 'LIVE')) {
    problems.push(`${PLAYERS[player].name} took the presentation as live=${report.live}`);
  }
  if (audio && !(report.audioBytes > 0)) problems.push('no audio was decoded');
  if (mode === 'LIVE' && !(report.lastBufferedSN > report.firstEndSN)) {
    problems.push('LIVE: no fragment buffered past those of the first media playlist');
  }
} else {
  problems.push('the page could not be read');
}
console.log(JSON.stringify({ mode, origin, report, problems }));
if (problems.length) {
  console.error(`play.mjs: ${problems.join('; ')}\n${log.join('\n')}`);
  process.exit(1);
}
console.log('ok: play.mjs');
