// Signing in to the console of a server that has access keys: the page
// asks for a key before anything else; a wrong secret is refused on the
// form; the right one lets the pages call the APIs (a stream is created
// through the form, with the session cookie alone); signing out asks for
// a key again, and so does the page loaded anew.
//
// argv: node_modules dir (playwright-core), Chromium profile dir (new and
// empty; the caller removes it and anything still running with it), the
// server's URL, an access key id and its secret.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, profile, base, keyId, secret] = process.argv.slice(2);
if (!modules || !profile || !base || !keyId || !secret) {
  console.error('usage: console_signin.mjs NODE_MODULES PROFILE_DIR URL ACCESS_KEY_ID SECRET_ACCESS_KEY');
  process.exit(2);
}
setTimeout(() => {
  console.error('console_signin.mjs: not done within 90 s');
  process.exit(3);
}, 90_000).unref();

const { chromium } = await import(pathToFileURL(join(modules, 'playwright-core', 'index.mjs')).href);
const log = [];
let context;
let tab;
let failure = null;

async function until(what, predicate, arg, timeout = 15_000) {
  try {
    await tab.waitForFunction(predicate, arg, { timeout, polling: 100 });
  } catch {
    throw new Error(`${what} (not within ${timeout / 1000} s)`);
  }
}

async function signIn(withSecret) {
  await tab.fill('input[name=access_key_id]', keyId);
  await tab.fill('input[name=secret_access_key]', withSecret);
  await tab.click('.signin button[type=submit]');
}

const formShown = () => document.querySelector('input[name=secret_access_key]') !== null;

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  tab = context.pages()[0] ?? (await context.newPage());
  tab.setDefaultTimeout(15_000);
  tab.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
  tab.on('pageerror', (error) => {
    failure ??= `script error on the page: ${error.message}`;
  });

  await tab.goto(`${base}/#/streams`, { timeout: 15_000 });
  await until('the sign-in form', formShown);
  await signIn(`${secret}-wrong`);
  await until('the wrong secret refused', () => /not known/.test(document.querySelector('.signin .error')?.textContent || ''));

  await signIn(secret);
  await until('the streams page, listed with the session', () => document.querySelector('#create-stream') !== null
    && /No streams yet/.test(document.querySelector('main')?.innerText || ''));
  await until('who is signed in', (id) => document.querySelector('#who')?.textContent.includes(id), keyId);
  await tab.fill('#create-stream input[name=stream-name]', 'signed-in');
  await tab.click('#create-stream button[type=submit]');
  await until('the stream made with the session, ACTIVE', () => document.querySelector('h1 .pill')?.textContent === 'ACTIVE');

  await tab.click('#who button');
  await until('the sign-in form after signing out', formShown);
  await tab.reload({ timeout: 15_000 });
  await until('the sign-in form on a new load', formShown);
} catch (error) {
  failure ??= error.message.split('\n')[0];
} finally {
  await context?.close().catch(() => {});
}

if (failure) {
  console.error(`console_signin.mjs: ${failure}\n${log.join('\n')}`);
  process.exit(1);
}
console.log('ok: console_signin.mjs');
