// The console shell: signing in and out, the app picker, and the hash routes to the pages
// (#/rooms, #/calls, #/call, #/quality, #/usage, #/tasks). Each page module exports
// `render(el, ctx)`, which may return a function that stops what it started (refresh timers).

import { signIn, signOut, SignedOut, whoAmI } from './api.js';
import { h, problem } from './dom.js';
import * as calls from './pages/calls.js';
import * as quality from './pages/quality.js';
import * as rooms from './pages/rooms.js';
import * as tasks from './pages/tasks.js';
import * as usage from './pages/usage.js';

const PAGES = { rooms, calls, call: calls, quality, usage, tasks };
const main = document.getElementById('main');
const bar = document.getElementById('bar');
const appPicker = document.getElementById('app');
let session = null;
let stop = null;

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [name, query] = hash.split('?');
  return { name: PAGES[name] ? name : 'rooms', params: new URLSearchParams(query ?? '') };
}

function showSignIn(message = '') {
  session = null;
  bar.hidden = true;
  stop?.();
  stop = null;
  const form = document.getElementById('sign-in-form').content.firstElementChild.cloneNode(true);
  form.querySelector('.error').textContent = message;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const s = await signIn(f.get('SecretId'), f.get('SecretKey'));
      form.reset();
      started(s);
    } catch (e) {
      form.querySelector('.error').textContent = e.message;
      form.querySelector('input[name=SecretKey]').value = '';
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  form.querySelector('input').focus();
}

function started(s) {
  session = s;
  bar.hidden = false;
  document.getElementById('who').textContent = s.SecretId;
  const keep = appPicker.value;
  appPicker.replaceChildren(...s.Apps.map((a) => h('option', { value: a }, a)));
  if (s.Apps.map(String).includes(keep)) appPicker.value = keep;
  show();
}

/** Renders the page of the current hash; a page that finds the session gone signs out. */
async function show() {
  if (!session) return;
  stop?.();
  stop = null;
  const { name, params } = route();
  for (const a of bar.querySelectorAll('nav a')) a.classList.toggle('on', a.dataset.page === (name === 'call' || name === 'quality' ? 'calls' : name));
  const el = h('section', { id: `page-${name}` });
  main.replaceChildren(el);
  const ctx = {
    app: Number(appPicker.value),
    params,
    signedOut: () => showSignIn('Your session ended; sign in again.'),
  };
  try {
    const r = await PAGES[name].render(el, ctx, name);
    if (typeof r === 'function') stop = r;
  } catch (e) {
    if (e instanceof SignedOut) ctx.signedOut();
    else problem(el, e);
  }
}

window.addEventListener('hashchange', show);
window.addEventListener('unhandledrejection', (ev) => {
  if (ev.reason instanceof SignedOut) {
    ev.preventDefault();
    showSignIn('Your session ended; sign in again.');
  }
});
appPicker.addEventListener('change', show);
document.getElementById('sign-out').addEventListener('click', async () => {
  await signOut();
  showSignIn('Signed out.');
});

try {
  const s = await whoAmI();
  if (s) started(s); else showSignIn();
} catch (e) {
  showSignIn(e.message);
}
