// Video: the streams (ListStreams); a stream's fragment timeline
// (ListFragments over a recent window), a thumbnail (GetImages), and
// playback of the live edge or of archived fragments through an HLS
// session URL (GetHLSStreamingSessionURL). Chromium has no HLS of its
// own: hls.js (vendored, loaded only on this page) feeds the fragmented
// MP4 to MediaSource.

import { video } from './api.js';
import {
  formatBytes, formatDuration, formatTime, h, pill, poll, s, showError, table,
} from './ui.js';

export function list(main) {
  const listing = h('div');
  main.append(h('h1', {}, 'Video streams'), listing);
  const poller = poll(async () => {
    try {
      const out = await video('/listStreams', { MaxResults: 1000 });
      listing.replaceChildren(table(['Name', 'Status', 'Media type', 'Retention', 'Created'], (out.StreamInfoList || []).map((stream) => [
        h('a', { href: `#/video/${encodeURIComponent(stream.StreamName)}` }, stream.StreamName),
        pill(stream.Status), stream.MediaType || '–',
        stream.DataRetentionInHours ? `${stream.DataRetentionInHours} h` : 'none',
        formatTime(stream.CreationTime),
      ]), 'No video streams yet.'));
    } catch (error) {
      showError(listing, error);
    }
  }, 2000);
  return { stop: poller.stop };
}

let hlsLoading = null;
/** hls.js, loaded once, when a stream is first played. */
function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  hlsLoading ??= new Promise((resolve, reject) => {
    document.head.append(h('script', {
      src: '/console/vendor/hls.light.min.js',
      onload: () => resolve(window.Hls),
      onerror: () => {
        hlsLoading = null;
        reject(new Error('hls.js could not be loaded'));
      },
    }));
  });
  return hlsLoading;
}

const WINDOWS = [[600, 'last 10 minutes'], [3600, 'last hour'], [6 * 3600, 'last 6 hours'], [86400, 'last day']];

/** All the fragments whose server time is in the window, oldest first;
 * pages of 1000, at most 10 of them. */
async function fragments(name, seconds) {
  const now = Date.now() / 1000;
  const found = [];
  let token;
  for (let page = 0; page < 10; page += 1) {
    const request = token ? { StreamName: name, NextToken: token } : {
      StreamName: name,
      MaxResults: 1000,
      FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: now - seconds, EndTimestamp: now + 60 } },
    };
    const out = await video('/listFragments', request);
    found.push(...(out.Fragments || []));
    token = out.NextToken;
    if (!token) break;
  }
  return found.sort((a, b) => a.ServerTimestamp - b.ServerTimestamp);
}

function timeline(list, seconds, selected, choose) {
  const width = 1100;
  const height = 64;
  const end = Date.now() / 1000;
  const start = end - seconds;
  const x = (t) => 10 + ((t - start) / seconds) * (width - 20);
  const bars = list.map((fragment) => {
    const x0 = x(fragment.ServerTimestamp);
    const w = Math.max(2, (fragment.FragmentLengthInMilliseconds / 1000 / seconds) * (width - 20));
    const chosen = selected === fragment.FragmentNumber;
    return s('rect', {
      x: x0, y: 8, width: w, height: 30, rx: 1,
      fill: chosen ? 'var(--out)' : 'var(--in)', opacity: chosen ? 1 : 0.7, style: 'cursor: pointer',
    }, s('title', {}, `fragment ${fragment.FragmentNumber}\nproducer ${formatTime(fragment.ProducerTimestamp)}\nserver ${formatTime(fragment.ServerTimestamp)}\n${formatDuration(fragment.FragmentLengthInMilliseconds)}, ${formatBytes(fragment.FragmentSizeInBytes)}`));
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => s('text', { x: x(start + f * seconds), y: height - 6, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' },
    formatTime(start + f * seconds).slice(11, 19)));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'fragment timeline' },
    s('line', { class: 'grid-line', x1: 10, x2: width - 10, y1: 38, y2: 38 }), bars, ticks);
  // A click picks the fragment nearest to it: where archived playback starts.
  svg.addEventListener('click', (event) => {
    if (!list.length) return;
    const box = svg.getBoundingClientRect();
    const t = start + ((event.clientX - box.left) / box.width) * seconds;
    const nearest = list.reduce((best, f) => (Math.abs(f.ServerTimestamp - t) < Math.abs(best.ServerTimestamp - t) ? f : best));
    choose(nearest);
  });
  return svg;
}

export function detail(main, name) {
  const problem = h('div');
  const windowPick = h('select', { name: 'window' }, WINDOWS.map(([value, label]) => h('option', { value }, label)));
  const timelineSlot = h('div', { id: 'timeline' });
  const summary = h('p', { class: 'muted' });
  const thumb = h('div', { id: 'thumbnail' }, h('p', { class: 'muted' }, 'No picture yet.'));
  const player = h('video', { id: 'player', controls: true, muted: true, autoplay: true, playsinline: true });
  player.muted = true;
  const playing = h('p', { class: 'muted', id: 'playback-status' });
  const playProblem = h('div');
  let list = [];
  let selected = null;
  let hls = null;

  function stopPlayback() {
    hls?.destroy();
    hls = null;
  }

  async function play(mode) {
    stopPlayback();
    playProblem.replaceChildren();
    const request = { StreamName: name, PlaybackMode: mode, Expires: 3600 };
    if (mode === 'ON_DEMAND') {
      const from = list.find((f) => f.FragmentNumber === selected) || list[0];
      const last = list[list.length - 1];
      if (!from) {
        playing.textContent = 'No fragments in the window to play.';
        return;
      }
      // By the producer's clock: what the camera stamped, without the
      // gaps of arrival.
      const end = Math.max(last.ProducerTimestamp + last.FragmentLengthInMilliseconds / 1000, from.ProducerTimestamp + 1);
      request.HLSFragmentSelector = {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: { StartTimestamp: from.ProducerTimestamp, EndTimestamp: Math.min(end, from.ProducerTimestamp + 86_400) },
      };
    }
    try {
      const [Hls, out] = await Promise.all([loadHls(), video('/getHLSStreamingSessionURL', request)]);
      if (!Hls.isSupported()) throw new Error('this browser has no MediaSource: HLS cannot play here');
      // The session URL names the host the request came to; its path is
      // all the page needs, whatever scheme and proxy the page came by.
      const url = new URL(out.HLSStreamingSessionURL, location.href);
      hls = new Hls();
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.fatal) playProblem.replaceChildren(h('p', { class: 'error' }, `Playback stopped: ${data.type} ${data.details}`));
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        player.play().catch(() => {});
      });
      hls.loadSource(url.pathname + url.search);
      hls.attachMedia(player);
      playing.textContent = mode === 'LIVE' ? 'Playing the live edge.' : `Playing archived video from ${formatTime(request.HLSFragmentSelector.TimestampRange.StartTimestamp)}.`;
    } catch (error) {
      showError(playProblem, error);
    }
  }

  async function thumbnail() {
    const last = list[list.length - 1];
    if (!last) return;
    try {
      const out = await video('/getImages', {
        StreamName: name,
        ImageSelectorType: 'PRODUCER_TIMESTAMP',
        StartTimestamp: last.ProducerTimestamp,
        EndTimestamp: last.ProducerTimestamp + Math.max(0.2, last.FragmentLengthInMilliseconds / 1000),
        SamplingInterval: Math.max(200, last.FragmentLengthInMilliseconds || 200),
        Format: 'JPEG',
        WidthPixels: 320,
        MaxResults: 1,
      });
      const image = (out.Images || []).find((i) => i.ImageContent);
      thumb.replaceChildren(image
        ? h('figure', {}, h('img', { class: 'thumb', alt: `picture at ${formatTime(image.TimeStamp)}`, src: `data:image/jpeg;base64,${image.ImageContent}` }),
          h('figcaption', { class: 'muted' }, formatTime(image.TimeStamp)))
        : h('p', { class: 'muted' }, (out.Images || [])[0]?.Error || 'No picture in the last fragment.'));
    } catch (error) {
      showError(thumb, error);
    }
  }

  main.append(
    h('p', {}, h('a', { href: '#/video' }, '← Video streams')),
    h('h1', {}, name),
    problem,
    h('h2', {}, 'Fragments'),
    h('div', { class: 'panel' }, h('div', { class: 'row' }, h('label', {}, 'Show', windowPick)), timelineSlot, summary),
    h('div', { class: 'grid' },
      h('div', {},
        h('h2', {}, 'Playback'),
        h('div', { class: 'panel' },
          h('div', { class: 'row' },
            h('button', { type: 'button', id: 'play-live', onclick: () => play('LIVE') }, 'Play live'),
            h('button', { type: 'button', id: 'play-archive', class: 'secondary', onclick: () => play('ON_DEMAND') }, 'Play archived'),
            h('button', { type: 'button', class: 'secondary', onclick: () => { stopPlayback(); player.removeAttribute('src'); playing.textContent = ''; } }, 'Stop')),
          h('p', { class: 'muted' }, 'Archived playback starts at the fragment chosen on the timeline (a click), or the first shown.'),
          player, playing, playProblem)),
      h('div', {},
        h('h2', {}, 'Thumbnail'),
        h('div', { class: 'panel' }, h('button', { type: 'button', class: 'secondary', onclick: thumbnail }, 'Latest picture'), thumb))),
  );

  let thumbed = false;
  const draw = () => {
    const seconds = Number(windowPick.value);
    timelineSlot.replaceChildren(timeline(list, seconds, selected, (fragment) => {
      selected = fragment.FragmentNumber;
      draw();
    }));
    const total = list.reduce((sum, f) => sum + f.FragmentSizeInBytes, 0);
    const chosen = list.find((f) => f.FragmentNumber === selected);
    summary.textContent = `${list.length} fragments, ${formatBytes(total)}`
      + (list.length ? `; newest put at ${formatTime(list[list.length - 1].ServerTimestamp)}` : '')
      + (chosen ? `; chosen: fragment of ${formatTime(chosen.ProducerTimestamp)}` : '');
  };
  // ListFragments reads the stream's index: every 5 s is plenty for a
  // timeline of minutes.
  const poller = poll(async () => {
    try {
      list = await fragments(name, Number(windowPick.value));
      showError(problem, null);
    } catch (error) {
      showError(problem, error);
      return;
    }
    draw();
    if (!thumbed && list.length) {
      thumbed = true;
      thumbnail();
    }
  }, 5000);
  windowPick.addEventListener('change', () => poller.now());
  return {
    stop() {
      poller.stop();
      stopPlayback();
    },
  };
}
