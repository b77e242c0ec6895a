'use strict';
/*
 * The hub behaviour of clusterd's socketio service, in Node: shared by
 * t/sio/nodehub.js (one process, Redis adapter) and bench/node/socketio/hub.js
 * (cluster + cluster adapter). No require() of a package here, so either
 * caller's socket.io is the one in use.
 *
 * Per namespace (each of --namespaces; socket.io refuses the others with
 * CONNECT_ERROR "Invalid namespace"):
 *   join(room[, ack])       room: string of 1..200 UTF-8 bytes; at most 100 rooms
 *                           per socket besides its own id room (joining one it is
 *                           already in is fine). ack {"ok":true} | {"error":msg}
 *   leave(room[, ack])      same check on room; leaving a room it is not in, or its
 *                           own id room (left alone), is ok. ack {"ok":true} | {"error"}
 *   publish({room,event,data}[, ack])
 *                           socket.to(room).emit(event, data): every socket of the
 *                           room on every process but the sender; data absent: null.
 *                           ack {"ok":true} | {"error":msg}
 *   anything else           ignored; ack {"error":"unknown event"}
 * HTTP POST <path>/emit, body {"room"?:R,"event":E,"data":D}: io.of("/")[.to(R)]
 * .emit(E, D). 401 without "Authorization: Bearer <token>" when a token is set
 * (before the body is read), 413 over maxBody (after reading the body to its
 * end, up to 16 x maxBody, then closing), 400 not a JSON object / bad room /
 * bad event, 405 not POST; 200 {"ok":true}. Errors are clusterd's
 * {"error":{"status":N,"code":"...","message":"..."}}.
 */

const MAX_ROOM_BYTES = 200;
const MAX_ROOMS = 100;
const RESERVED = new Set([
  'connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener',
]);

const E_ROOM = `room must be a string of 1 to ${MAX_ROOM_BYTES} bytes`;
const E_TOO_MANY = `too many rooms (${MAX_ROOMS})`;
const E_PUBLISH = 'publish needs an object {room, event, data}';
const E_EVENT = 'event must be a non-empty string';
const E_RESERVED = 'event name is reserved';
const E_UNKNOWN = 'unknown event';

function roomError(room) {
  if (typeof room !== 'string') return E_ROOM;
  const n = Buffer.byteLength(room, 'utf8');
  return n >= 1 && n <= MAX_ROOM_BYTES ? null : E_ROOM;
}

function eventError(event) {
  if (typeof event !== 'string' || event.length === 0) return E_EVENT;
  return RESERVED.has(event) ? E_RESERVED : null;
}

/* For publish and for the HTTP route: {room, event, data} checked, or an error. */
function checkMessage(m, roomOptional) {
  if (m === null || typeof m !== 'object' || Array.isArray(m) || Buffer.isBuffer(m)) return { error: E_PUBLISH };
  if (!(roomOptional && m.room === undefined)) {
    const e = roomError(m.room);
    if (e) return { error: e };
  }
  const e = eventError(m.event);
  if (e) return { error: e };
  return { room: m.room, event: m.event, data: m.data === undefined ? null : m.data };
}

function onSocket(socket) {
  const ownRooms = () => socket.rooms.size - (socket.rooms.has(socket.id) ? 1 : 0);
  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    const reply = (v) => { if (ack) ack(v); };
    switch (event) {
      case 'join': {
        const room = args[0];
        const e = roomError(room);
        if (e) return reply({ error: e });
        if (!socket.rooms.has(room) && ownRooms() >= MAX_ROOMS) return reply({ error: E_TOO_MANY });
        socket.join(room);
        return reply({ ok: true });
      }
      case 'leave': {
        const room = args[0];
        const e = roomError(room);
        if (e) return reply({ error: e });
        if (room !== socket.id) socket.leave(room);
        return reply({ ok: true });
      }
      case 'publish': {
        const m = checkMessage(args[0], false);
        if (m.error) return reply({ error: m.error });
        socket.to(m.room).emit(m.event, m.data);
        return reply({ ok: true });
      }
      default:
        return reply({ error: E_UNKNOWN });
    }
  });
}

/* The hub on each namespace of `namespaces` (["/"] by default). */
function attachHub(io, namespaces = ['/']) {
  for (const nsp of namespaces) io.of(nsp).on('connection', onSocket);
  if (!namespaces.includes('/')) {
    /* socket.io always has "/": refuse it the way it refuses an unknown one. */
    io.of('/').use((socket, next) => next(new Error('Invalid namespace')));
  }
}

function sendJson(res, status, obj, close) {
  const body = Buffer.from(JSON.stringify(obj));
  const h = { 'Content-Type': 'application/json', 'Content-Length': body.length };
  if (close) h.Connection = 'close';
  if (status === 405) h.Allow = 'POST';
  res.writeHead(status, h);
  res.end(body);
}
const httpError = (res, status, code, message, close) =>
  sendJson(res, status, { error: { status, code, message } }, close);

/*
 * Puts POST <path>/emit in front of socket.io's own request handler (which
 * would answer anything under <path>/ itself). Call after new Server(httpServer).
 */
function routeEmit(httpServer, io, { path = '/socket.io', token = '', maxBody = 1e6 } = {}) {
  const route = path.replace(/\/$/, '') + '/emit';
  const others = httpServer.listeners('request').slice(0);
  httpServer.removeAllListeners('request');
  httpServer.on('request', (req, res) => {
    const q = req.url.indexOf('?');
    if ((q < 0 ? req.url : req.url.slice(0, q)) !== route) {
      for (const l of others) l.call(httpServer, req, res);
      return;
    }
    if (req.method !== 'POST') return httpError(res, 405, 'method_not_allowed', `${route} takes POST only`);
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      return httpError(res, 401, 'unauthorized', 'an Authorization: Bearer token is required');
    }
    /* Over maxBody: read on (discarding) to the end of the body and answer
     * 413 then, so that the client is not reset while it still sends; past
     * DISCARD_MAX bytes, answer and close at once. */
    const DISCARD_MAX = 16 * maxBody;
    const chunks = [];
    let size = 0;
    let over = Number(req.headers['content-length']) > maxBody;
    let done = false;
    const tooLarge = () => {
      done = true;
      httpError(res, 413, 'too_large', `the request body exceeds ${maxBody} bytes`, true);
    };
    req.on('data', (c) => {
      if (done) return;
      size += c.length;
      if (size > maxBody) over = true;
      if (over) {
        chunks.length = 0;
        if (size > DISCARD_MAX) { tooLarge(); res.on('finish', () => req.destroy()); }
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (done) return;
      if (over) return tooLarge();
      done = true;
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) {
        return httpError(res, 400, 'bad_request', 'the body must be a JSON object {room?, event, data}');
      }
      const m = checkMessage(body, true);
      if (m.error) {
        return httpError(res, 400, 'bad_request',
          m.error === E_PUBLISH ? 'the body must be a JSON object {room?, event, data}' : m.error);
      }
      const nsp = io.of('/');
      (m.room === undefined ? nsp : nsp.to(m.room)).emit(m.event, m.data);
      sendJson(res, 200, { ok: true });
    });
    req.on('error', () => { done = true; });
  });
}

/* --name value pairs (and --flag) into an object; numbers stay strings. */
function parseArgs(argv, known) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in known)) throw new Error(`unknown argument ${argv[i]}`);
    if (m[2] !== undefined) out[m[1]] = m[2];
    else if (known[m[1]] === 'flag') out[m[1]] = true;
    else if (i + 1 < argv.length) out[m[1]] = argv[++i];
    else throw new Error(`--${m[1]} needs a value`);
  }
  return out;
}

const parseNamespaces = (s) => String(s || '/').split(',').map((n) => n.trim()).filter(Boolean)
  .map((n) => (n.startsWith('/') ? n : '/' + n));

module.exports = {
  attachHub, routeEmit, parseArgs, parseNamespaces, checkMessage,
  MAX_ROOM_BYTES, MAX_ROOMS, RESERVED,
};
