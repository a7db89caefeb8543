// The console's calls to the server: its session (sign in, who am I, sign out) and the API's
// actions run as the signed-in credential. The session itself is an HttpOnly cookie the page
// cannot read; the CSRF token that must accompany every call lives only in this module.

let csrf = null;

/** The session is gone (expired, signed out elsewhere, or the server restarted). */
export class SignedOut extends Error {}

/** An action answered with an error (the API's Code and Message). */
export class ActionError extends Error {
  constructor(code, message, requestId) {
    super(`${code}: ${message}`);
    Object.assign(this, { code, requestId });
  }
}

async function body(res) {
  const text = await res.text();
  try { return text ? JSON.parse(text) : {}; } catch { return { Error: text.slice(0, 200) }; }
}

/** Signs in; resolves the session ({SecretId, Apps, ExpiresIn}) or throws with the reason. */
export async function signIn(secretId, secretKey) {
  const res = await fetch('/console/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ SecretId: secretId, SecretKey: secretKey }),
  });
  const b = await body(res);
  if (!res.ok) throw new Error(b.Error || `sign-in failed (${res.status})`);
  csrf = b.Csrf;
  return b;
}

/** The current session, or null when signed out. */
export async function whoAmI() {
  const res = await fetch('/console/session', { headers: { accept: 'application/json' } });
  if (res.status === 401) return null;
  const b = await body(res);
  if (!res.ok) throw new Error(b.Error || `session check failed (${res.status})`);
  csrf = b.Csrf;
  return b;
}

export async function signOut() {
  await fetch('/console/session', { method: 'DELETE', headers: { 'x-hearth-csrf': csrf ?? '' } });
  csrf = null;
}

/** Runs an action; resolves its Response fields. */
export async function call(action, params = {}) {
  const res = await fetch(`/console/api/${encodeURIComponent(action)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hearth-csrf': csrf ?? '' },
    body: JSON.stringify(params),
  });
  const b = await body(res);
  if (res.status === 401) throw new SignedOut(b.Error || 'signed out');
  if (!res.ok) throw new Error(b.Error || `${action} failed (${res.status})`);
  const r = b.Response ?? {};
  if (r.Error) throw new ActionError(r.Error.Code, r.Error.Message, r.RequestId);
  return r;
}
