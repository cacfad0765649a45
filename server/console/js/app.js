// The console's shell: the header, the notice line, signing in, and the
// hash routes (#/streams/NAME, ...) to each page. A page is a function
// that fills `main` and returns {stop()}, called when the page is left,
// so that nothing it polled goes on asking.

import { onAuthProblems } from './api.js';
import { session, signInForm, signOut } from './signin.js';
import { h, message } from './ui.js';
import * as streams from './streams.js';
import * as firehose from './firehose.js';
import * as jobs from './jobs.js';
import * as video from './video.js';

const ROUTES = [
  [/^#\/streams$/, streams.list, 'streams'],
  [/^#\/streams\/([^/]+)$/, streams.detail, 'streams'],
  [/^#\/firehose$/, firehose.list, 'firehose'],
  [/^#\/firehose\/([^/]+)$/, firehose.detail, 'firehose'],
  [/^#\/jobs$/, jobs.list, 'jobs'],
  [/^#\/jobs\/([^/]+)$/, jobs.detail, 'jobs'],
  [/^#\/video$/, video.list, 'video'],
  [/^#\/video\/([^/]+)$/, video.detail, 'video'],
];

const main = document.getElementById('main');
const notice = document.getElementById('notice');
const who = document.getElementById('who');
let page = null;
let signingIn = false;

function leave() {
  try {
    page?.stop?.();
  } finally {
    page = null;
  }
}

function showNotice(text) {
  notice.hidden = !text;
  notice.textContent = text || '';
}

function route() {
  if (signingIn) return;
  leave();
  showNotice('');
  const hash = location.hash || '#/streams';
  for (const [pattern, render, section] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll('header nav a')) {
      link.classList.toggle('current', link.dataset.section === section);
    }
    main.replaceChildren();
    try {
      page = render(main, ...match.slice(1).map(decodeURIComponent));
    } catch (error) {
      main.replaceChildren(h('p', { class: 'error' }, message(error)));
    }
    return;
  }
  location.hash = '#/streams';
}

function showWho(current) {
  who.replaceChildren();
  if (!current || !current.auth) return;
  who.append(current.principal, h('button', {
    class: 'secondary',
    onclick: async () => {
      await signOut();
      askToSignIn('Signed out.');
    },
  }, 'Sign out'));
}

/** Stops the page (nothing polls while signed out) and asks for a key. */
function askToSignIn(reason) {
  if (signingIn) return;
  signingIn = true;
  leave();
  showWho(null);
  showNotice('');
  signInForm(main, reason, (principal) => {
    signingIn = false;
    showWho({ auth: true, principal });
    route();
  });
}

onAuthProblems({
  signIn: (error) => askToSignIn(error.type === 'MissingAuthenticationTokenException' ? '' : message(error)),
  denied: (error) => showNotice(`Not allowed: ${error.message}`),
});

window.addEventListener('hashchange', route);

async function start() {
  try {
    const current = await session();
    if (current === null) {
      askToSignIn('');
      return;
    }
    showWho(current);
  } catch (error) {
    showNotice(`Could not ask who is signed in: ${error.message}`);
  }
  route();
}

start();
