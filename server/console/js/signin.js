// Signing in: when the server has access keys, the console trades one for
// an HttpOnly session cookie (POST /v1/console/session) and every call
// after carries it. With no keys configured (authentication off) there is
// nothing to sign in to.

import { probe } from './api.js';
import { h } from './ui.js';

/** Who the console is signed in as: {auth, principal}, or null when a
 * key is needed. A server without the session endpoint has no sign-in. */
export async function session() {
  const { status, body } = await probe('/v1/console/session');
  if (status === 200 && body) return { auth: Boolean(body.auth), principal: body.principal || 'anonymous' };
  if (status === 404) return { auth: false, principal: 'anonymous' };
  if (status === 401 || status === 403) return null;
  throw new Error(`GET /v1/console/session answered ${status}`);
}

export async function signOut() {
  await probe('/v1/console/session', { method: 'DELETE' });
}

/** The sign-in form, in `main`; `done()` once a key was taken. */
export function signInForm(main, reason, done) {
  const problem = h('p', { class: 'error' }, reason || '');
  const keyId = h('input', { name: 'access_key_id', autocomplete: 'username', required: true, placeholder: 'AKIA…' });
  const secret = h('input', { name: 'secret_access_key', type: 'password', autocomplete: 'current-password', required: true });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', {
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      problem.textContent = '';
      try {
        const { status, body } = await probe('/v1/console/session', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ access_key_id: keyId.value.trim(), secret_access_key: secret.value }),
        });
        if (status === 200) {
          done(body && body.principal);
          return;
        }
        problem.textContent = status === 401 || status === 403
          ? 'That access key and secret are not known to this server.'
          : (body && body.message) || `The server answered ${status}.`;
      } catch (error) {
        problem.textContent = `The server could not be reached: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    },
  },
  h('label', {}, 'Access key ID', keyId),
  h('label', {}, 'Secret access key', secret),
  button, problem);
  main.replaceChildren(h('div', { class: 'panel signin' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'This server checks who calls it. Sign in with one of its access keys.'),
    form));
  keyId.focus();
}
