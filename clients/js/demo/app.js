// Meridian demo chat: plain DOM on top of the SDK (./meridian.js is a copy
// of ../src/meridian.js made by `npm run build:demo`). No external assets.
import { MeridianClient } from './meridian.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const form = $('login');
const fields = { name: $('name'), room: $('room'), token: $('token'), url: $('url') };
const defaultUrl = location.protocol === 'https:' ? `wss://${location.host}/`
  : location.protocol === 'http:' ? `ws://${location.host}/` : '';

fields.name.value = params.get('name') || localStorage.getItem('meridian.name') || '';
fields.room.value = params.get('room') || 'general';
fields.token.value = params.get('token') || '';
fields.url.value = params.get('url') || defaultUrl;

let client = null;
let room = null;
const rendered = new Map(); // msg_id -> <li>
// Typing indicators ride on ephemeral signals: no history, no seq, no ack.
const TYPING_SHOW_MS = 4000; // how long "is typing" stays after the last signal
const TYPING_SEND_MS = 2000; // at most one typing signal per this while typing
const typers = new Map(); // user -> {name, until}
let typingTimer = null;
let lastTypingSent = 0;
const pendingByMid = new Map(); // mid -> <li> of our own unsent/unacked message

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function time(ts) {
  const d = ts ? new Date(ts) : new Date();
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function log(text) {
  const li = el('li', null, `${time()} ${text}`);
  const list = $('log');
  list.prepend(li);
  while (list.children.length > 50) list.lastChild.remove();
}

function scrollDown() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
}

function system(text) {
  $('messages').append(el('li', 'system', text));
  scrollDown();
}

function textOf(data) {
  if (data && typeof data === 'object' && typeof data.text === 'string') return data.text;
  return typeof data === 'string' ? data : JSON.stringify(data);
}

function nameOf(msg) {
  const d = msg.data;
  const n = d && typeof d === 'object' && typeof d.name === 'string' ? d.name : '';
  return n && n !== msg.from ? `${n} (${msg.from})` : msg.from;
}

function fillMessage(li, msg) {
  li.replaceChildren();
  li.append(el('span', 'who', nameOf(msg)));
  const badge = el('span', 'badge', msg.region || '?');
  badge.title = `accepted by ${msg.region} / ${msg.node}`;
  li.append(badge);
  const meta = el('span', 'meta', `${time(msg.ts)} · ${msg.seq ? '#' + msg.seq : 'live'}`);
  meta.title = `msg_id ${msg.msg_id}`;
  li.append(meta);
  li.append(el('span', 'text', textOf(msg.data)));
  li.dataset.msgId = msg.msg_id;
}

// Committed messages are kept in seq order (the room's one order, the same on
// every page); messages still waiting for their seq follow in arrival order.
function placeBySeq(li, seq) {
  li.dataset.seq = String(seq);
  const list = $('messages');
  let before = null;
  for (const x of list.children) {
    if (x === li || x.classList.contains('system')) continue;
    const s = x.dataset.seq ? Number(x.dataset.seq) : Infinity;
    if (s > seq) { before = x; break; }
  }
  if (li.parentNode !== list || li.nextSibling !== before) list.insertBefore(li, before);
}

function renderTyping() {
  const now = Date.now();
  for (const [user, t] of typers) if (t.until <= now) typers.delete(user);
  const names = [...typers.values()].map((t) => t.name);
  $('typing').textContent = names.length === 0 ? ''
    : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
  if (typingTimer) clearTimeout(typingTimer);
  typingTimer = typers.size ? setTimeout(renderTyping, 500) : null;
}

function onSignal(ev) {
  if (ev.room !== room || !ev.data || typeof ev.data !== 'object') return;
  const name = typeof ev.data.name === 'string' && ev.data.name ? ev.data.name : ev.from;
  if (ev.data.typing === true) typers.set(ev.from, { name, until: Date.now() + TYPING_SHOW_MS });
  else if (ev.data.typing === false) typers.delete(ev.from);
  renderTyping();
}

function onMessage(msg) {
  if (msg.room !== room) return;
  if (typers.delete(msg.from)) renderTyping();
  let li = pendingByMid.get(msg.mid);
  if (li && client && msg.from === client.user) {
    pendingByMid.delete(msg.mid);
    li.classList.remove('pending');
  } else {
    li = el('li');
    $('messages').append(li);
  }
  fillMessage(li, msg);
  rendered.set(msg.msg_id, li);
  if (msg.seq) placeBySeq(li, msg.seq);
  scrollDown();
}

function onCommit(ev) {
  const li = rendered.get(ev.msg_id);
  if (!li) return;
  const meta = li.querySelector('.meta');
  if (meta) meta.textContent = meta.textContent.replace(/live$/, '#' + ev.seq);
  placeBySeq(li, ev.seq);
}

function renderMembers(members) {
  const ul = $('members');
  ul.replaceChildren(...members
    .slice()
    .sort((a, b) => a.user.localeCompare(b.user))
    .map((m) => el('li', null, m.sessions > 1 ? `${m.user} (${m.sessions})` : m.user)));
  $('online-count').textContent = `(${members.length})`;
}

function renderState(ev) {
  const status = $('status');
  status.className = `state state-${ev.state}`;
  status.dataset.state = ev.state;
  let text = ev.state;
  if (ev.state === 'reconnecting' && ev.phase === 'scheduled') {
    text = `reconnecting in ${(ev.delay / 1000).toFixed(1)} s (${ev.reason})`;
  } else if (ev.state === 'reconnecting' || ev.state === 'connecting') {
    text = `${ev.state} to ${ev.url || ''}`;
  } else if (ev.state === 'disconnected' && ev.reason) {
    text = `disconnected (${ev.reason})`;
  }
  $('state-text').textContent = text;
  const region = $('region');
  region.hidden = ev.state !== 'connected';
  if (ev.state === 'connected') region.textContent = `${client.region} · ${client.node}`;
  const parts = [ev.state, ev.reason];
  if (ev.url) parts.push(ev.url);
  if (ev.code) parts.push(`code ${ev.code}`);
  if (ev.delay !== undefined) parts.push(`in ${ev.delay} ms`);
  log(parts.filter(Boolean).join(' · '));
}

async function start() {
  const name = fields.name.value.trim();
  const token = fields.token.value.trim();
  const url = fields.url.value.trim();
  room = fields.room.value.trim();
  if (!name || !token || !url || !room) return;
  localStorage.setItem('meridian.name', name);

  client = new MeridianClient({ url, token });
  client.on('state', renderState);
  client.on('message', onMessage);
  client.on('commit', onCommit);
  client.on('signal', onSignal);
  client.on('members', (ev) => { if (ev.room === room) renderMembers(ev.members); });
  client.on('presence', (ev) => {
    if (ev.room === room && ev.event) log(`${ev.user} ${ev.event === 'join' ? 'joined' : 'left'}`);
  });
  client.on('joined', (info) => {
    if (info.room !== room) return;
    if (info.rewind !== undefined) {
      $('resume-info').textContent = info.recovered ? '' : 'earlier messages could not be loaded';
    } else if (!info.resumed) $('resume-info').textContent = '';
    else if (info.recovered) $('resume-info').textContent = `resumed after #${info.since}, nothing missed`;
    else $('resume-info').textContent = `resumed after #${info.since}: history incomplete`;
  });
  client.on('gap', (ev) => {
    system(`messages #${ev.after + 1}–#${ev.last_seq} were not replayed (older history is in the HTTP history API)`);
  });
  client.on('error', (err) => log(`error: ${err.code} ${err.message}`));

  form.hidden = true;
  $('chat').hidden = false;
  $('room-title').textContent = `#${room}`;
  client.connect().catch(() => {});
  try {
    // The page opens with the room's last 50 messages; rejoins resume from the last seq.
    await client.join(room, { presence: true, rewind: 50 });
    $('text').focus();
  } catch (err) {
    system(`cannot join ${room}: ${err.code} ${err.message}`);
  }
}

// For tests and debugging: the client, and the messages as the page shows them.
globalThis.meridianDebug = {
  get client() { return client; },
  messages() {
    return [...$('messages').children].filter((li) => !li.classList.contains('system')).map((li) => ({
      msg_id: li.dataset.msgId || null,
      seq: li.dataset.seq ? Number(li.dataset.seq) : null,
      text: li.querySelector('.text')?.textContent ?? '',
      pending: li.classList.contains('pending'),
      failed: li.classList.contains('failed'),
    }));
  },
};

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  start();
});

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('text');
  const text = input.value.trim();
  if (!text || !client) return;
  input.value = '';
  if (lastTypingSent) client.signal(room, { typing: false });
  lastTypingSent = 0;
  const li = el('li', 'pending');
  li.append(el('span', 'who', fields.name.value.trim()));
  li.append(el('span', 'badge', '…'));
  const meta = el('span', 'meta', 'sending');
  li.append(meta);
  li.append(el('span', 'text', text));
  $('messages').append(li);
  scrollDown();
  const mid = client.newMid();
  pendingByMid.set(mid, li);
  const p = client.publish(room, { text, name: fields.name.value.trim() }, { mid });
  p.then((ack) => {
    if (li.classList.contains('pending')) meta.textContent = 'sent';
    rendered.set(ack.msg_id, rendered.get(ack.msg_id) || li);
  }, (err) => {
    li.classList.add('failed');
    meta.textContent = `not sent: ${err.code}`;
  });
});

$('text').addEventListener('input', () => {
  const now = Date.now();
  if (!client || !$('text').value || now - lastTypingSent < TYPING_SEND_MS) return;
  if (client.signal(room, { typing: true, name: fields.name.value.trim() })) lastTypingSent = now;
});

$('leave').addEventListener('click', () => {
  if (!client) return;
  client.leave(room).catch(() => {});
  client.close('left');
  client = null;
  rendered.clear();
  pendingByMid.clear();
  typers.clear();
  renderTyping();
  $('messages').replaceChildren();
  $('members').replaceChildren();
  $('chat').hidden = true;
  form.hidden = false;
});

if (fields.name.value && fields.token.value && fields.url.value && params.get('token')) start();
