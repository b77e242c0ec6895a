// The demo page: documents from readmongo, pings of dummy, and a live feed
// over socketio, each answer labelled with the worker that made it.
// Plain JavaScript, no build step; everything shown goes in as text.
'use strict';

const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};
const clock = () => new Date().toTimeString().slice(0, 8);

// ---------------------------------------------------------------- documents
const PRESETS = [
  { label: 'Kitchen under 20', coll: 'products', filter: '{"category":"kitchen","price":{"$lt":20}}', sort: '{"price":1}' },
  { label: 'On sale, in stock', coll: 'products', filter: '{"tags":"sale","stock":{"$gt":0}}', sort: '{"name":1}' },
  { label: 'Newest products', coll: 'products', filter: '{}', sort: '{"added":-1}' },
  { label: 'Delivered to Oslo', coll: 'orders', filter: '{"customer.city":"Oslo","status":"delivered"}', sort: '{"placed":-1}' },
  { label: 'Orders over 300', coll: 'orders', filter: '{"total":{"$gt":300}}', sort: '{"total":-1}' },
  { label: 'By id: 65a0c0de…0001', id: ['products', '65a0c0de0000000000000001'] },
];

// One cell's text for a value in relaxed Extended JSON.
function show(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== 'object')) return v.join(', ');
    return `${v.length} × ${v.length ? show(v[0]) + (v.length > 1 ? ' …' : '') : ''}`;
  }
  if (typeof v === 'object') {
    if ('$oid' in v) return v.$oid;
    if ('$date' in v) {
      const d = typeof v.$date === 'string' ? v.$date : Number(v.$date.$numberLong);
      return new Date(d).toISOString().slice(0, 16).replace('T', ' ');
    }
    if ('$numberLong' in v) return v.$numberLong;
    if ('$numberDecimal' in v) return v.$numberDecimal;
    return '{' + Object.entries(v).map(([k, x]) => `${k}: ${show(x)}`).join(', ') + '}';
  }
  return String(v);
}

function render(docs) {
  const head = $('docs').tHead, body = $('docs').tBodies[0];
  head.replaceChildren();
  body.replaceChildren();
  const cols = [];
  for (const d of docs) for (const k of Object.keys(d)) if (!cols.includes(k)) cols.push(k);
  const tr = el('tr');
  for (const c of cols) tr.append(el('th', c));
  head.append(tr);
  for (const d of docs) {
    const row = el('tr');
    for (const c of cols) {
      const td = el('td', show(d[c]));
      if (d[c] !== null && typeof d[c] === 'object') td.title = JSON.stringify(d[c]);
      row.append(td);
    }
    body.append(row);
  }
}

async function load(path) {
  const a = $('docs-url');
  a.textContent = 'GET ' + decodeURIComponent(path);
  a.href = path;
  $('docs-info').textContent = '…';
  const t0 = performance.now();
  try {
    const r = await fetch(path);
    const ms = Math.round(performance.now() - t0);
    $('docs-pid').textContent = r.headers.get('X-Worker-Pid') || '?';
    const j = await r.json();
    if (!r.ok) throw new Error(`${r.status} ${j.error ? j.error.code + ': ' + j.error.message : ''}`);
    const docs = Array.isArray(j.documents) ? j.documents : [j];
    render(docs);
    $('docs-info').textContent = `${docs.length} document${docs.length === 1 ? '' : 's'}, ${ms} ms`;
    $('docs').dataset.count = docs.length;
  } catch (e) {
    render([]);
    $('docs-info').textContent = 'error: ' + e.message;
  }
}

function query() {
  const p = new URLSearchParams();
  for (const k of ['filter', 'sort']) {
    const v = $(k).value.trim();
    if (v && v !== '{}') p.set(k, v);
  }
  if ($('limit').value !== '') p.set('limit', $('limit').value);
  load(`/mongo/${encodeURIComponent($('coll').value)}?${p}`);
}

for (const p of PRESETS) {
  const b = el('button', p.label);
  b.type = 'button';
  b.onclick = () => {
    if (p.id) return load(`/mongo/${p.id[0]}/${p.id[1]}`);
    $('coll').value = p.coll;
    $('filter').value = p.filter;
    $('sort').value = p.sort;
    query();
  };
  $('presets').append(b);
}
$('query').onsubmit = (e) => { e.preventDefault(); query(); };

// ---------------------------------------------------------------- pings
async function ping() {
  const li = el('li', `${clock()} GET /dummy …`);
  $('pings').prepend(li);
  while ($('pings').children.length > 12) $('pings').lastChild.remove();
  const t0 = performance.now();
  try {
    const r = await fetch('/dummy', { cache: 'no-store' });
    const j = await r.json();
    const ms = Math.round(performance.now() - t0);
    li.textContent = `${clock()} worker `;
    li.append(el('b', r.headers.get('X-Worker-Pid') || String(j.pid), 'pid'));
    li.append(` (slot ${j.slot}, generation ${j.generation}), ${ms} ms`);
  } catch (e) {
    li.textContent = `${clock()} error: ${e.message}`;
  }
}
$('ping').onclick = ping;
$('ping6').onclick = () => { for (let i = 0; i < 6; i++) ping(); };

// ---------------------------------------------------------------- live
const me = 'tab-' + Math.random().toString(36).slice(2, 6);
$('curl-emit').textContent = `curl -X POST http://${location.host}/socket.io/emit ` +
  `-H 'Content-Type: application/json' -d '{"room":"demo","event":"chat","data":"hello"}'`;

function addEvent(from, text, cls) {
  const li = el('li', '', cls);
  li.append(el('time', clock()), el('span', from, 'from'), el('span', text, 'text'));
  $('events').prepend(li);
  while ($('events').children.length > 50) $('events').lastChild.remove();
}

function setState(text, cls) {
  $('rt-state').textContent = text;
  $('rt-state').className = cls;
}

const socket = io({ transports: ['websocket'] });  // path /socket.io, this host
socket.on('connect', () => {
  setState('connected', 'on');
  $('rt-room').textContent = 'joining demo…';
  socket.emit('join', 'demo', (r) => {
    $('rt-room').textContent = r && r.ok ? `in room demo as ${me}` : `join failed: ${JSON.stringify(r)}`;
    $('live-panel').dataset.joined = r && r.ok ? 'yes' : 'no';
  });
});
socket.on('disconnect', (reason) => {
  setState(`disconnected (${reason}), reconnecting`, 'off');
  $('live-panel').dataset.joined = 'no';
});
socket.on('connect_error', (e) => setState(`cannot connect: ${e.message}`, 'off'));
socket.on('chat', (data) => {
  if (data && typeof data === 'object' && 'text' in data)
    addEvent(String(data.from || 'another tab'), String(data.text), 'other');
  else
    addEvent('POST /socket.io/emit', typeof data === 'string' ? data : JSON.stringify(data), 'backend');
});

$('chat').onsubmit = (e) => {
  e.preventDefault();
  const text = $('msg').value.trim();
  if (!text) return;
  // The hub sends a publish to everyone in the room but its sender: show it here.
  socket.emit('publish', { room: 'demo', event: 'chat', data: { text, from: me } }, (r) => {
    addEvent(`${me} (you)`, r && r.ok ? text : `${text} (not sent: ${JSON.stringify(r)})`, 'mine');
  });
  $('msg').value = '';
};

// ---------------------------------------------------------------- start
$('presets').firstChild.click();
ping();
