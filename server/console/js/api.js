// Calls to the server, as the AWS SDKs make them (POST / with
// X-Amz-Target, Video's REST paths) and to Runnel's own /v1 API. Every
// failure becomes an ApiError; one that says the caller is not signed in
// (or no longer) is also handed to the sign-in form, and one that says
// the caller may not do this is shown as a notice.

// What AWS (and Runnel's sign-in) answer when credentials are missing,
// unknown or no longer good: the console then asks for a key.
const SIGN_IN_TYPES = new Set([
  'MissingAuthenticationTokenException', 'UnrecognizedClientException',
  'InvalidSignatureException', 'IncompleteSignatureException',
  'ExpiredTokenException', 'InvalidClientTokenId', 'SignatureDoesNotMatch',
]);

export class ApiError extends Error {
  constructor(status, type, message, body) {
    super(message || type || `HTTP ${status}`);
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

const handlers = { signIn: () => {}, denied: () => {} };

/** Who hears of a call that needs signing in, or was denied. */
export function onAuthProblems({ signIn, denied }) {
  handlers.signIn = signIn;
  handlers.denied = denied;
}

// `__type` may carry a namespace (`com.amazon...#ResourceNotFoundException`);
// Video's REST errors name it in a header instead.
function errorType(body, response) {
  const raw = (body && typeof body === 'object' && (body.__type || body.code))
    || response.headers.get('x-amzn-ErrorType') || '';
  return String(raw).split('#').pop().split(':')[0];
}

// AWS answers these with 400 (Kinesis), 401 or 403, depending on the
// service: the type, not the status, says what is wrong.
export function needsSignIn(error) {
  return error instanceof ApiError && [400, 401, 403].includes(error.status) && SIGN_IN_TYPES.has(error.type);
}

async function send(url, init = {}) {
  const response = await fetch(url, { credentials: 'same-origin', ...init });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (response.ok) return body;
  const type = errorType(body, response);
  const message = (body && typeof body === 'object' && (body.message || body.Message)) || String(text || '');
  const error = new ApiError(response.status, type, message, body);
  if (needsSignIn(error)) handlers.signIn(error);
  else if (type === 'AccessDeniedException') handlers.denied(error);
  throw error;
}

function aws(prefix, operation, body) {
  return send('/', {
    method: 'POST',
    headers: { 'X-Amz-Target': `${prefix}.${operation}`, 'Content-Type': 'application/x-amz-json-1.1' },
    body: JSON.stringify(body ?? {}),
  });
}

export const kinesis = (operation, body) => aws('Kinesis_20131202', operation, body);
export const firehose = (operation, body) => aws('Firehose_20150804', operation, body);
export const analytics = (operation, body) => aws('KinesisAnalytics_20180523', operation, body);

/** A Kinesis Video REST operation: `video('/listStreams', {})`. */
export const video = (path, body) => send(path, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body ?? {}),
});

export const get = (path) => send(path);
export const post = (path, body) => send(path, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body ?? {}),
});
export const del = (path) => send(path, { method: 'DELETE' });

/** Status and body of a call whose failure is an answer, not an error. */
export async function probe(path, init = {}) {
  const response = await fetch(path, { credentials: 'same-origin', ...init });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { status: response.status, body };
}
