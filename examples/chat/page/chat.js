// chat.js: the chat page. It talks to the server only through herald's browser nes client:
// requests (client.request) into the server's net/http handlers, and subscriptions
// (client.subscribe) for the rooms and the lobby. Everything people typed reaches the page
// through textContent, never as HTML.

import { Client } from '/herald/client.js';

const $ = (id) => document.getElementById(id);
const TRANSPORTS = ['websocket', 'sse', 'poll'];
const MAX_KEPT = 500; // messages and notes kept per room in the page

// ?transport=sse forces one transport; without it the client tries websocket, sse, poll.
const forced = new URLSearchParams(location.search).get('transport');
const transports = TRANSPORTS.includes(forced) ? [forced] : undefined;

const client = new Client(location.origin.replace(/^http/, 'ws'), transports ? { transports } : {});

// state is everything the page shows.
const state = {
  me: null, // the signed-in name, or null
  connected: false,
  leaving: false, // a disconnect the page asked for (signing in or out)
  lobbySubscribed: false,
  rooms: new Map(), // name -> room (see room())
  lobbySeq: 0,
  order: [], // the rooms as the lobby lists them: the server's own rooms first
  current: null, // the room on screen
};

// room returns a room's state, creating it: its timeline (messages and join/leave notes by
// id, which the server hands out from one counter), people present and their seq.
function room(name) {
  let r = state.rooms.get(name);
  if (!r) {
    r = { name, joined: false, subscribed: false, timeline: new Map(), members: [], seq: 0, people: 0, unread: 0 };
    state.rooms.set(name, r);
  }
  return r;
}

// joinedRooms are remembered across visits.
function joinedRooms() {
  try {
    const saved = JSON.parse(localStorage.getItem('herald-chat-rooms'));
    if (Array.isArray(saved)) return saved.filter((n) => typeof n === 'string');
  } catch { /* nothing saved */ }
  return [];
}

function saveJoined() {
  const names = [...state.rooms.values()].filter((r) => r.joined).map((r) => r.name);
  localStorage.setItem('herald-chat-rooms', JSON.stringify(names));
}

// request sends a nes request and returns its payload; errors carry the server's message.
async function request(method, path, payload) {
  const res = await client.request(payload === undefined ? { method, path } : { method, path, payload });
  return res.payload;
}

// serial runs page updates that talk to the server one after the other.
let queue = Promise.resolve();
function serial(fn) {
  queue = queue.then(fn).catch((err) => console.error(err));
  return queue;
}

// The connection.

function showConnection(s, detail) {
  const el = $('conn');
  el.dataset.state = s;
  el.textContent = { connecting: 'connecting…', connected: 'connected', reconnecting: 'reconnecting…', offline: 'offline' }[s];
  el.title = detail || '';
}

function showTransport(name) {
  const el = $('transport');
  el.dataset.transport = name || '';
  el.dataset.forced = String(Boolean(transports) && Boolean(name));
  el.textContent = name || '…';
}

client.onConnect = () => {
  state.connected = true;
  showConnection('connected');
  showTransport(client.transport);
  serial(refresh);
};

client.onDisconnect = (willReconnect) => {
  state.connected = false;
  if (state.leaving) return;
  showConnection(willReconnect ? 'reconnecting' : 'offline');
  if (!willReconnect) setTimeout(connect, 2000); // the server refused a reconnection for good
};

client.onTransport = (name) => showTransport(name);
client.onError = (err) => console.warn('nes:', err && err.message);

// connect connects. When the server cannot be reached, the client keeps trying by itself
// (onConnect tells when it got through); when the server refuses the hello (a cookie it no
// longer accepts), the page drops the cookie and connects signed out.
async function connect(signedOut) {
  showConnection(state.me ? 'reconnecting' : 'connecting');
  try {
    await client.connect();
  } catch (err) {
    if (err.type === 'user') return; // connecting or connected already
    if (err.statusCode === 401 && !signedOut) {
      await fetch('/signout', { method: 'POST' }).catch(() => {}); // the client is idle: no session to refuse
      return connect(true);
    }
    showConnection(err.type === 'server' ? 'offline' : 'reconnecting', err.message);
  }
}

// changeCookie disconnects, runs change (which sets or clears the cookie), and connects again,
// so that the new connection carries the new cookie. The old connection goes first: over the
// fallback transports a session is bound to the cookie it started with, and the server would
// refuse its goodbye (403) once the cookie has changed.
async function changeCookie(change) {
  state.leaving = true;
  try {
    await client.disconnect();
    await change();
  } finally {
    state.leaving = false;
    await connect();
  }
}

// refresh runs at every connection: who am I, then the lobby and every joined room again
// (whatever was missed while disconnected comes back from their history).
async function refresh() {
  let me = null;
  try {
    me = (await request('GET', '/me')).user;
  } catch (err) {
    if (err.statusCode !== 401) throw err;
  }
  state.me = me;
  $('me').textContent = me || '';
  $('me').hidden = $('signout').hidden = !me;
  $('signin').hidden = Boolean(me);
  $('chat').hidden = !me;
  if (!me) {
    if (!$('name').value) $('name').value = localStorage.getItem('herald-chat-name') || '';
    $('name').focus();
    return;
  }
  if (!state.lobbySubscribed) {
    await client.subscribe('/rooms', onLobby);
    state.lobbySubscribed = true;
  }
  onLobby(await request('GET', '/rooms'));
  // The rooms joined before, or the server's first; and the one the address names (#room).
  const names = joinedRooms();
  if (names.length === 0 && state.order.length > 0) names.push(state.order[0]);
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted && !names.includes(wanted)) names.push(wanted);
  for (const name of names) await joinRoom(name).catch(() => {});
  const current = [wanted, state.current, ...names].find((n) => n && state.rooms.get(n)?.joined);
  if (current) select(current);
  renderRooms();
}

// Signing in and out.

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('name').value.trim();
  serial(() => changeCookie(async () => {
    $('signin-error').textContent = '';
    const res = await fetch('/nes/auth?name=' + encodeURIComponent(name), { credentials: 'same-origin' });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || body.status !== 'authenticated') {
      $('signin-error').textContent = body.message || 'Could not sign in (' + res.status + ')';
      return;
    }
    localStorage.setItem('herald-chat-name', name);
  }));
});

$('signout').addEventListener('click', () => serial(async () => {
  for (const r of state.rooms.values()) {
    if (r.subscribed) await client.unsubscribe('/rooms/' + r.name).catch(() => {});
    r.subscribed = false;
    r.timeline.clear();
    r.seq = 0;
    r.unread = 0;
  }
  if (state.lobbySubscribed) await client.unsubscribe('/rooms').catch(() => {});
  state.lobbySubscribed = false;
  state.current = null;
  await changeCookie(() => fetch('/signout', { method: 'POST' }));
}));

// Rooms.

function onLobby(update, flags) {
  if (flags && flags.revoked) {
    state.lobbySubscribed = false; // refused at a reconnection: signed out meanwhile
    return;
  }
  if (!update || update.seq <= state.lobbySeq) return;
  state.lobbySeq = update.seq;
  state.order = update.rooms.map((x) => x.name);
  for (const { name, members } of update.rooms) room(name).people = members;
  for (const [name, r] of state.rooms) {
    if (!state.order.includes(name)) {
      r.people = 0;
      if (!r.joined && !r.subscribed) state.rooms.delete(name);
    }
  }
  renderRooms();
}

// joinRoom subscribes to a room (once) and loads its history and who is there.
//
// The room counts as subscribed from the call to client.subscribe on, whose handler holds r:
// the lobby keeps it while the server confirms. A lobby update published before the room
// existed may arrive meanwhile (someone joining another room, say); were r dropped then, the
// room on screen would be another r, which hears nothing, and a second subscription would
// show every later presence twice.
async function joinRoom(name) {
  const r = room(name);
  if (!r.subscribed) {
    r.subscribed = true;
    try {
      await client.subscribe('/rooms/' + name, (update, flags) => onRoom(r, update, flags));
    } catch (err) {
      r.joined = r.subscribed = false;
      if (!state.order.includes(name)) state.rooms.delete(name);
      saveJoined();
      renderRooms();
      throw err;
    }
  }
  r.joined = true;
  saveJoined();
  const [history, present] = await Promise.all([
    request('GET', '/rooms/' + name + '/messages'),
    request('GET', '/rooms/' + name + '/members'),
  ]);
  for (const m of history.messages) r.timeline.set(m.id, { kind: 'message', ...m });
  trim(r);
  if (present.seq >= r.seq) {
    r.seq = present.seq;
    r.members = present.members;
  }
  if (state.current === name) renderRoom();
}

function onRoom(r, update, flags) {
  if (flags && flags.revoked) {
    r.joined = r.subscribed = false;
    renderRooms();
    return;
  }
  if (update.type === 'message') {
    if (r.timeline.has(update.id)) return;
    r.timeline.set(update.id, { kind: 'message', ...update });
    trim(r);
    if (state.current !== r.name || document.hidden) r.unread++;
    if (state.current === r.name) appendOrRender(r, update.id);
    renderRooms();
  } else if (update.type === 'presence' && update.seq > r.seq) {
    r.seq = update.seq;
    r.members = update.members;
    r.timeline.set(update.seq, { kind: 'note', id: update.seq, text: update.user + (update.event === 'join' ? ' joined' : ' left') });
    trim(r);
    if (state.current === r.name) {
      appendOrRender(r, update.seq);
      renderMembers();
    }
  }
}

// trim keeps the last MAX_KEPT items of a room's timeline.
function trim(r) {
  if (r.timeline.size <= MAX_KEPT) return;
  const ids = [...r.timeline.keys()].sort((a, b) => a - b);
  for (const id of ids.slice(0, ids.length - MAX_KEPT)) r.timeline.delete(id);
}

function select(name) {
  state.current = name;
  const r = room(name);
  r.unread = 0;
  if (location.hash.slice(1) !== name) history.replaceState(null, '', '#' + name);
  renderRooms();
  renderRoom();
  $('composer-error').textContent = '';
  $('text').focus();
}

function openRoom(name) {
  serial(async () => {
    $('join-error').textContent = '';
    try {
      await joinRoom(name);
      select(name);
    } catch (err) {
      $('join-error').textContent = err.message;
    }
  });
}

window.addEventListener('hashchange', () => {
  const name = decodeURIComponent(location.hash.slice(1));
  if (state.me && name && name !== state.current) openRoom(name);
});

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('join-name').value.trim().toLowerCase().replace(/^#/, '').replace(/\s+/g, '-');
  if (!name) return;
  $('join-name').value = '';
  openRoom(name);
});

$('leave').addEventListener('click', () => serial(async () => {
  const r = state.rooms.get(state.current);
  if (!r) return;
  if (r.subscribed) await client.unsubscribe('/rooms/' + r.name);
  r.joined = r.subscribed = false;
  r.timeline.clear();
  r.seq = 0;
  saveJoined();
  const next = [...state.rooms.values()].find((x) => x.joined);
  if (next) select(next.name);
  else {
    state.current = null;
    renderRoom();
    renderRooms();
  }
}));

// Sending: one message at a time, in the order typed.

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value;
  const name = state.current;
  if (!text.trim() || !name) return;
  $('text').value = '';
  serial(async () => {
    $('composer-error').textContent = '';
    try {
      await request('POST', '/rooms/' + name + '/messages', { text });
    } catch (err) {
      $('composer-error').textContent = err.message;
      if (!$('text').value) $('text').value = text;
    }
  });
});

$('text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('composer').requestSubmit();
  }
});

$('transport-choice').value = transports ? forced : '';
$('transport-choice').addEventListener('change', (e) => {
  const q = new URLSearchParams(location.search);
  if (e.target.value) q.set('transport', e.target.value);
  else q.delete('transport');
  location.search = q.toString();
});

// A page that goes away says so, rather than leaving its connection to time out.
window.addEventListener('pagehide', () => {
  state.leaving = true;
  client.disconnect();
});
window.addEventListener('pageshow', (e) => {
  if (!e.persisted) return; // back from the back-forward cache
  state.leaving = false;
  connect();
});

// Rendering. Every text people typed goes through textContent.

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function avatar(name) {
  let hue = 0;
  for (const ch of name) hue = (hue * 31 + ch.codePointAt(0)) % 360;
  const a = el('span', 'avatar', [...name][0].toUpperCase());
  a.style.setProperty('--hue', String(hue));
  a.setAttribute('aria-hidden', 'true');
  return a;
}

function renderRooms() {
  const list = $('room-list');
  list.replaceChildren();
  const rank = (r) => (state.order.includes(r.name) ? state.order.indexOf(r.name) : state.order.length);
  for (const r of [...state.rooms.values()].sort((a, b) => rank(a) - rank(b))) {
    const li = el('li');
    li.dataset.room = r.name;
    li.dataset.joined = String(r.joined);
    if (r.name === state.current) li.setAttribute('aria-current', 'true');
    const b = el('button');
    b.type = 'button';
    b.append(el('span', 'name', '#' + r.name));
    if (r.unread > 0 && r.name !== state.current) b.append(el('span', 'unread', String(r.unread)));
    if (r.people > 0) b.append(el('span', 'people', '● ' + r.people));
    b.addEventListener('click', () => openRoom(r.name));
    li.append(b);
    list.append(li);
  }
}

function renderRoom() {
  const r = state.current && state.rooms.get(state.current);
  $('room-title').textContent = r ? '#' + r.name : '';
  $('leave').hidden = !r;
  $('composer').hidden = !r;
  const list = $('messages');
  list.replaceChildren();
  if (r) {
    const ids = [...r.timeline.keys()].sort((a, b) => a - b);
    for (const id of ids) list.append(item(r.timeline.get(id), list.lastElementChild));
    if (!list.querySelector('.msg')) list.prepend(el('li', 'empty', 'No messages yet. Say hello!'));
    list.dataset.last = String(ids.length ? ids[ids.length - 1] : 0);
  }
  list.scrollTop = list.scrollHeight;
  renderMembers();
}

// appendOrRender adds the timeline's item id to the room on screen: at the end when it is the
// newest (the usual case), else by drawing the room again.
function appendOrRender(r, id) {
  const list = $('messages');
  if (id < Number(list.dataset.last || 0)) {
    renderRoom();
    return;
  }
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.querySelector('.empty')?.remove();
  list.append(item(r.timeline.get(id), list.lastElementChild));
  list.dataset.last = String(id);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

// item makes the element of a message or a note; a message that follows one of the same user
// within five minutes hides its name and avatar.
function item(it, prev) {
  if (it.kind === 'note') {
    const li = el('li', 'note', it.text);
    li.dataset.id = String(it.id);
    return li;
  }
  const li = el('li', 'msg');
  li.dataset.id = String(it.id);
  li.dataset.user = it.user;
  if (it.user === state.me) li.classList.add('mine');
  const t = new Date(it.time);
  if (prev && prev.classList.contains('msg') && prev.dataset.user === it.user && t - new Date(prev.dataset.time) < 5 * 60 * 1000) {
    li.classList.add('cont');
  }
  li.dataset.time = it.time;
  const meta = el('div', 'meta');
  meta.append(el('span', 'user', it.user));
  const time = el('time', '', t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  time.dateTime = it.time;
  time.title = t.toLocaleString();
  meta.append(time);
  const body = el('div', 'body');
  body.append(meta, el('p', 'text', it.text));
  li.append(avatar(it.user), body);
  return li;
}

function renderMembers() {
  const r = state.current && state.rooms.get(state.current);
  const members = r ? r.members : [];
  $('member-count').textContent = String(members.length);
  const list = $('member-list');
  list.replaceChildren();
  for (const name of members) {
    const li = el('li');
    li.dataset.user = name;
    li.append(avatar(name), el('span', 'name', name));
    if (name === state.me) li.append(el('span', 'you', '(you)'));
    list.append(li);
  }
}

// The live view: this server's numbers (GET /stats, read from its Prometheus metrics).

const STATS_EVERY = 3000; // ms

async function showStats() {
  try {
    const res = await fetch('/stats', { cache: 'no-store' });
    if (!res.ok) return;
    const s = await res.json();
    const values = { ...s.connections, messagesIn: s.messagesIn, messagesOut: s.messagesOut, publications: s.publications, deliveries: s.deliveries };
    for (const b of document.querySelectorAll('#stats [data-stat]')) {
      const v = values[b.dataset.stat];
      if (typeof v === 'number') b.textContent = v.toLocaleString('en');
    }
    $('stats').dataset.updated = String(Date.now());
  } catch { /* the server is away: the numbers stay as they were */ }
}

showTransport('');
connect();
showStats();
setInterval(showStats, STATS_EVERY);
