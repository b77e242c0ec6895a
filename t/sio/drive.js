'use strict';
/*
 * A line-protocol driver of the official socket.io-client (and of a raw `ws`
 * WebSocket) for the Perl tests: one JSON command per line on stdin, one JSON
 * object per line on stdout. Many clients in one process, each named by an id.
 *
 *   node t/sio/drive.js [--lifetime 600]
 *
 * First line out: {"ev":"ready","pid":P,"versions":{...}}.
 * Every command gets exactly one answer, which carries the command's "seq"
 * when it has one (other lines, the clients' own, carry none). Commands run in
 * order: one whose answer comes later (connect, many, emit with ack, wait,
 * waitfor, drop, raw_open) holds back the next until its answer is out, unless
 * it says "nowait":true. At the end of stdin the commands already read still
 * run, then it closes its clients and exits 0 (within 200 ms); {"cmd":"exit"}
 * answers {"ev":"bye"} and ends it at once; --lifetime seconds (default 600,
 * 0: none) ends it with status 3.
 * A bad line or command: {"ev":"error","message":..,"cmd":..,"seq":..}.
 * In "args", {"$bin":"<base64>"} is sent as binary, and binary received is
 * shown so. Selection (S): "id":"a" | "prefix":"c" (a many group) |
 * "id":"c","all":true (same) | "ids":["a","b"].
 * Answers of the commands that have nothing else to say: {"ev":"ok","cmd":..}.
 *
 * connect  {id,url="http://127.0.0.1:8080",nsp="/",path="/socket.io",auth?,opts?,
 *           quiet=false,onconnect?:[{event,args,timeout_ms=5000}],timeout_ms=30000}
 *          io(url+nsp,{transports:["websocket"],forceNew:true,reconnection:true,..opts})
 *          answer: {ev:connect,id,sid} | {ev:connect_error,id,message,retry,data?}
 *             | {ev:connect_pending,id,after_ms}. With onconnect, each connection
 *             then emits those (acked), and the answer is
 *             {ev:onconnect_done,id,sid,acks:[[..],..]} | {ev:onconnect_error,id,message}
 *          later (not when quiet): {ev:connect,id,sid} {ev:connect_error,...}
 *             {ev:disconnect,id,reason,retry} {ev:reconnect_attempt,id,attempt}
 *             {ev:reconnect,id,attempt} {ev:reconnect_failed,id}
 *             {ev:onconnect_done|onconnect_error,...}
 *             {ev:event,id,event,args,ack}  (an ack asked for is answered with
 *             the ackreply value, ["ok"] by default, quiet or not)
 * many     {prefix,n,timeout_ms=10000,quiet=true,...as connect} clients prefix0..
 *          answer: {ev:many,prefix,n,connected,failed,pending,elapsed_ms,errors:{msg:n}}
 *          (a client counts at its first connect (+onconnect) or connect_error)
 * emit     {S,event,args=[],ack=false,timeout_ms=5000,volatile=false}
 *          one client, ack: {ev:ack,id,args} | {ev:ack_timeout,id,message}
 *                           | {ev:ack_error,id,message} (disconnected)
 *          a group, ack: {ev:acks,prefix,ok,timeout,error,replies:[{args,count}]}
 *          no ack: {ev:emitted,...,n}
 * quiet    {S,on=true}       stop (or resume) printing the clients' lines; counting goes on
 * ackreply {S,args:[..]|null} what they answer to server acks (null: no answer)
 * onconnect {S,emits:[{event,args,timeout_ms}]|null} emits for their next connections
 * counts   {S,expect?:{event:k},reset=false}
 *          answer: {ev:counts,...,clients,connected,life:{connect,connect_error,
 *              disconnect,reconnect},reasons:{reason:n},events:{E:{total,clients_with,
 *              min,max,in_order,bad:[{id,count,seq}],without:[ids],expect?,first_ms,
 *              last_ms,sample}},t}
 *          n of an event is args[0].n (or args[0] if a number); in_order counts the
 *          clients whose n's are exactly 0,1,2.. (and, with expect, exactly k of them)
 * reset    {S}               forget counts
 * waitfor  {S,state:"connected"|"ready"|"disconnected" | event,count=1; timeout_ms=10000}
 *          answer: {ev:waitfor,...,ok,done,of,elapsed_ms}  ("ready": connected and
 *          onconnect done)
 * close    {S,forget=false}  socket.disconnect()     open {S}  socket.connect() again
 * drop     {S,reconnect=true} cut the TCP connection (no close frame); answer once the
 *          clients have seen it: {ev:dropped,...,n,elapsed_ms}
 * pause    {S,on=true}       stop (or resume) reading the socket
 * wait     {ms}              answer {ev:waited,ms}    ping: {ev:pong,t,clients,raws}
 * exit                       answer {ev:bye}
 * raw_open {id,url="ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket",
 *           headers?,protocols?,opts?,eio_pong=false,quiet=false}
 *          answer: {ev:raw_open,id,protocol,extensions} | {ev:raw_refused,id,status,
 *             headers,body} | {ev:raw_close,id,code,reason} (after a raw_error)
 *          later {ev:raw_msg,id,text|bin} {ev:raw_ping|raw_pong,id,data}
 *                {ev:raw_error,id,message,code} {ev:raw_close,id,code,reason}
 * raw_send {id,text|bin}    raw_ping {id,data?}    raw_close {id,code?,reason?,terminate?}
 */
const readline = require('node:readline');
const { io } = require('socket.io-client');
const WebSocket = require('ws');

const T0 = performance.now();
const now = () => Math.round((performance.now() - T0) * 10) / 10;
const MAX_MS = 600000;
const MAX_SEQ = 100000;      /* recorded n values per client and event */

const clients = new Map();   /* id -> client record */
const groups = new Map();    /* prefix -> [ids], made by "many" */
const raws = new Map();      /* id -> raw WebSocket record */
let exiting = false;

/* ---- output ---------------------------------------------------------- */

function out(obj) {
  if (exiting && obj.ev !== 'bye') return;
  /* Pipes and files are written synchronously on Linux: a line is out when this returns. */
  try { process.stdout.write(JSON.stringify(obj) + '\n'); } catch (e) { shutdown(0); }
}
process.stdout.on('error', () => shutdown(0));

/* {"$bin":"<base64>"} <-> Buffer, deep. */
function toWire(v) {
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object') {
    const k = Object.keys(v);
    if (k.length === 1 && k[0] === '$bin' && typeof v.$bin === 'string') return Buffer.from(v.$bin, 'base64');
    const o = {};
    for (const key of k) o[key] = toWire(v[key]);
    return o;
  }
  return v;
}
function fromWire(v) {
  if (Buffer.isBuffer(v)) return { $bin: v.toString('base64') };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString('base64') };
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === 'object') {
    const o = {};
    for (const key of Object.keys(v)) o[key] = fromWire(v[key]);
    return o;
  }
  return typeof v === 'function' ? undefined : v;
}

const clampMs = (v, dflt) => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error('a time must be a number of milliseconds >= 0');
  return Math.min(n, MAX_MS);
};

/* ---- Socket.IO clients ------------------------------------------------ */

function newCounters(c) {
  c.events = new Map();      /* event -> {count, seq: [n|null], last, first_ms, last_ms} */
  c.life = { connect: 0, connect_error: 0, disconnect: 0, reconnect: 0 };
  c.reasons = {};            /* disconnect reason -> count */
}

function makeClient(id, cmd, group) {
  const u = new URL(cmd.url || 'http://127.0.0.1:8080');
  if (cmd.nsp !== undefined) {
    if (typeof cmd.nsp !== 'string') throw new Error('nsp must be a string');
    u.pathname = cmd.nsp.startsWith('/') ? cmd.nsp : '/' + cmd.nsp;
  }
  if (cmd.opts !== undefined && (cmd.opts === null || typeof cmd.opts !== 'object')) throw new Error('opts must be an object');
  const opts = {
    path: cmd.path || '/socket.io',
    transports: ['websocket'],
    forceNew: true,
    reconnection: true,
    ...(cmd.auth !== undefined ? { auth: cmd.auth } : {}),
    ...(cmd.opts || {}),
  };
  const c = {
    id, group, quiet: group ? cmd.quiet !== false : cmd.quiet === true,
    ackReply: ['ok'], closed: false, socket: null, ready: false,
    onconnect: checkOnconnect(cmd.onconnect === undefined ? [] : cmd.onconnect),
  };
  newCounters(c);
  const s = io(u.href, opts);
  c.socket = s;
  const say = (o) => { if (!c.quiet) out(o); };
  /* The line that settles a connect command: printed even when quiet, with its seq. */
  const answer = (o) => {
    if (!c.answering) { say(o); return; }
    c.answering = false;
    if (c.answerSeq !== undefined) o.seq = c.answerSeq;
    out(o);
  };
  /* socket.active stays true with reconnection off: ask the Manager too. */
  const willRetry = () => s.active && s.io.reconnection();
  s.on('connect', () => {
    c.life.connect++;
    c.ready = false;
    const todo = c.onconnect;
    (todo.length ? say : answer)({ ev: 'connect', id, sid: s.id });
    if (!todo.length) {
      c.ready = true;
      if (c.onSettle) c.onSettle(true);
      return;
    }
    /* The "onconnect" emits, acked; the client is ready (and a connect or
     * many settles) when every ack is back, or failed if one times out. */
    const sid = s.id;
    const acks = new Array(todo.length);
    let left = todo.length; let failed = null;
    todo.forEach((e, i) => {
      s.timeout(e.timeout_ms).emit(e.event, ...toWire(e.args), (err, ...resp) => {
        if (err) failed = failed || `onconnect ${e.event}: ${err.message}`;
        else acks[i] = fromWire(resp);
        if (--left) return;
        if (s.id !== sid) return;   /* a stale round: a reconnection runs its own */
        if (failed) {
          answer({ ev: 'onconnect_error', id, message: failed });
          if (c.onSettle) c.onSettle(false, failed);
        } else {
          c.ready = true;
          answer({ ev: 'onconnect_done', id, sid, acks });
          if (c.onSettle) c.onSettle(true);
        }
      });
    });
  });
  s.on('connect_error', (err) => {
    c.life.connect_error++;
    const o = { ev: 'connect_error', id, message: String(err && err.message), retry: willRetry() };
    if (err && err.data !== undefined) o.data = fromWire(err.data);
    answer(o);
    if (c.onSettle) c.onSettle(false, o.message);
  });
  s.on('disconnect', (reason) => {
    c.ready = false;
    c.life.disconnect++;
    c.reasons[reason] = (c.reasons[reason] || 0) + 1;
    answer({ ev: 'disconnect', id, reason, retry: willRetry() });
    if (c.onSettle) c.onSettle(false, `disconnect: ${reason}`);
  });
  s.io.on('reconnect_attempt', (attempt) => say({ ev: 'reconnect_attempt', id, attempt }));
  s.io.on('reconnect', (attempt) => { c.life.reconnect++; say({ ev: 'reconnect', id, attempt }); });
  s.io.on('reconnect_failed', () => say({ ev: 'reconnect_failed', id }));
  s.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    let r = c.events.get(event);
    if (!r) { r = { count: 0, seq: [], last: null, first_ms: now(), last_ms: 0 }; c.events.set(event, r); }
    r.count++;
    r.last_ms = now();
    const a0 = args[0];
    const n = a0 && typeof a0 === 'object' && typeof a0.n === 'number' ? a0.n : (typeof a0 === 'number' ? a0 : null);
    if (r.seq.length < MAX_SEQ) r.seq.push(n);
    r.last = args;
    if (!c.quiet) out({ ev: 'event', id, event, args: fromWire(args), ack: !!ack });
    if (ack && c.ackReply) ack(...toWire(c.ackReply));
  });
  return c;
}

function checkOnconnect(list) {
  if (!Array.isArray(list)) throw new Error('onconnect must be an array of {event, args, timeout_ms}');
  return list.map((e) => {
    if (!e || typeof e.event !== 'string') throw new Error('onconnect entries need an event');
    if (e.args !== undefined && !Array.isArray(e.args)) throw new Error('onconnect args must be an array');
    return { event: e.event, args: e.args || [], timeout_ms: clampMs(e.timeout_ms, 5000) };
  });
}

/* The clients a command names: "ids":[..], "prefix" (a "many" group), "id"
 * with "all":true (a group), or "id". */
function select(cmd) {
  let ids;
  if (Array.isArray(cmd.ids)) ids = cmd.ids;
  else if (cmd.prefix !== undefined || cmd.all) {
    const p = cmd.prefix !== undefined ? cmd.prefix : cmd.id;
    ids = groups.get(p);
    if (!ids) throw new Error(`no group "${p}"`);
  } else if (cmd.id !== undefined) ids = [cmd.id];
  else throw new Error('name the clients: id, prefix or ids');
  return ids.map((id) => {
    const c = clients.get(id);
    if (!c) throw new Error(`no client "${id}"`);
    return c;
  });
}
const label = (cmd) => {
  const o = {};
  if (Array.isArray(cmd.ids)) o.ids = cmd.ids;
  else if (cmd.prefix !== undefined || cmd.all) o.prefix = cmd.prefix !== undefined ? cmd.prefix : cmd.id;
  else o.id = cmd.id;
  if (cmd.seq !== undefined) o.seq = cmd.seq;
  return o;
};

function checkFreeId(id) {
  if (typeof id !== 'string' || id === '') throw new Error('id must be a non-empty string');
  const old = clients.get(id);
  if (old && !old.closed) throw new Error(`client "${id}" exists and is not closed`);
  if (raws.has(id)) throw new Error(`"${id}" is a raw WebSocket`);
}

function forget(c) {
  clients.delete(c.id);
  if (c.group) {
    const g = groups.get(c.group);
    if (g) {
      const i = g.indexOf(c.id);
      if (i >= 0) g.splice(i, 1);
      if (!g.length) groups.delete(c.group);
    }
  }
}

/* ---- commands --------------------------------------------------------- */

const commands = {
  connect(cmd) {
    checkFreeId(cmd.id);
    const old = clients.get(cmd.id);
    if (old) forget(old);
    const c = makeClient(cmd.id, cmd, null);
    c.answering = true;
    c.answerSeq = cmd.seq;
    clients.set(cmd.id, c);
    const timeout = clampMs(cmd.timeout_ms, 30000);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (!c.onSettle) return;
        c.onSettle = null;
        c.answering = false;
        out({ ev: 'connect_pending', id: cmd.id, seq: cmd.seq, after_ms: timeout });
        resolve();
      }, timeout);
      c.onSettle = () => { c.onSettle = null; clearTimeout(timer); resolve(); };
    });
  },

  many(cmd) {
    const prefix = cmd.prefix;
    if (typeof prefix !== 'string' || prefix === '') throw new Error('prefix must be a non-empty string');
    const n = Number(cmd.n);
    if (!Number.isInteger(n) || n < 1 || n > 20000) throw new Error('n must be an integer 1..20000');
    if (groups.has(prefix)) throw new Error(`group "${prefix}" exists`);
    for (let i = 0; i < n; i++) checkFreeId(prefix + i);
    const timeout = clampMs(cmd.timeout_ms, 10000);
    new URL(cmd.url || 'http://127.0.0.1:8080');   /* throws here, before any client is made */
    checkOnconnect(cmd.onconnect === undefined ? [] : cmd.onconnect);
    const ids = [];
    groups.set(prefix, ids);
    const t = performance.now();
    let connected = 0; let failed = 0; let settled = 0; let reported = false;
    const errors = {};
    let resolve;
    const done = new Promise((r) => { resolve = r; });
    const report = () => {
      if (reported) return;
      reported = true;
      resolve();
      clearTimeout(timer);
      for (const id of ids) { const c = clients.get(id); if (c) c.onSettle = null; }
      out({
        ev: 'many', prefix, seq: cmd.seq, n, connected, failed, pending: n - settled,
        elapsed_ms: Math.round(performance.now() - t), errors,
      });
    };
    const timer = setTimeout(report, timeout);
    for (let i = 0; i < n; i++) {
      const id = prefix + i;
      const old = clients.get(id);
      if (old) forget(old);
      const c = makeClient(id, cmd, prefix);
      ids.push(id);
      clients.set(id, c);
      c.onSettle = (ok, msg) => {
        c.onSettle = null;
        settled++;
        if (ok) connected++;
        else { failed++; errors[msg] = (errors[msg] || 0) + 1; }
        if (settled === n) report();
      };
    }
    return done;
  },

  emit(cmd) {
    const sel = select(cmd);
    if (typeof cmd.event !== 'string') throw new Error('event must be a string');
    if (cmd.args !== undefined && !Array.isArray(cmd.args)) throw new Error('args must be an array');
    const args = toWire(cmd.args || []);
    const group = !(cmd.id !== undefined && !cmd.all && !cmd.prefix && !cmd.ids);
    const timeout = clampMs(cmd.timeout_ms, 5000);
    let ok = 0; let timedOut = 0; let errored = 0; let left = sel.length;
    let resolve;
    const done = new Promise((r) => { resolve = r; });
    const replies = new Map();
    const settle = () => {
      if (--left > 0) return;
      resolve();
      const distinct = [...replies.entries()].slice(0, 5).map(([k, count]) => ({ args: JSON.parse(k), count }));
      out({ ev: 'acks', ...label(cmd), ok, timeout: timedOut, error: errored, replies: distinct });
    };
    for (const c of sel) {
      const s = cmd.volatile ? c.socket.volatile : c.socket;
      if (!cmd.ack) { s.emit(cmd.event, ...args); continue; }
      s.timeout(timeout).emit(cmd.event, ...args, (err, ...resp) => {
        if (err) {
          const to = /timed out/.test(err.message);
          if (to) timedOut++; else errored++;
          if (!group) out({ ev: to ? 'ack_timeout' : 'ack_error', id: c.id, seq: cmd.seq, message: err.message });
        } else {
          ok++;
          const a = fromWire(resp);
          if (!group) out({ ev: 'ack', id: c.id, seq: cmd.seq, args: a });
          const k = JSON.stringify(a);
          replies.set(k, (replies.get(k) || 0) + 1);
        }
        if (group) settle(); else resolve();
      });
    }
    if (!cmd.ack) { out({ ev: 'emitted', ...label(cmd), n: sel.length }); return undefined; }
    if (group && sel.length === 0) { left = 1; settle(); }
    return done;
  },

  quiet(cmd) {
    for (const c of select(cmd)) c.quiet = cmd.on !== false;
    done(cmd);
  },

  /* What every client of the selection emits (acked) at each connection from
   * now on; the current connection is not affected. */
  onconnect(cmd) {
    const list = checkOnconnect(cmd.emits === null ? [] : cmd.emits);
    for (const c of select(cmd)) c.onconnect = list;
    done(cmd);
  },

  ackreply(cmd) {
    if (cmd.args !== null && !Array.isArray(cmd.args)) throw new Error('args must be an array, or null for no reply');
    for (const c of select(cmd)) c.ackReply = cmd.args;
    done(cmd);
  },

  counts(cmd) {
    const sel = select(cmd);
    const expect = cmd.expect && typeof cmd.expect === 'object' ? cmd.expect : {};
    const names = new Set(Object.keys(expect));
    const life = { connect: 0, connect_error: 0, disconnect: 0, reconnect: 0 };
    const reasons = {};
    let connected = 0;
    for (const c of sel) {
      for (const k of c.events.keys()) names.add(k);
      for (const k of Object.keys(life)) life[k] += c.life[k];
      for (const [k, v] of Object.entries(c.reasons)) reasons[k] = (reasons[k] || 0) + v;
      if (c.socket.connected) connected++;
    }
    const events = {};
    for (const name of names) {
      const want = expect[name];
      const e = { total: 0, clients_with: 0, min: Infinity, max: 0, in_order: 0, bad: [], without: [] };
      let first = Infinity; let last = 0; let sample = null; let sampleAt = -1;
      for (const c of sel) {
        const r = c.events.get(name);
        const count = r ? r.count : 0;
        e.total += count;
        if (count) e.clients_with++;
        else if (e.without.length < 10) e.without.push(c.id);
        e.min = Math.min(e.min, count);
        e.max = Math.max(e.max, count);
        let good = want === undefined || count === want;
        if (good && r) {
          if (r.seq.length !== count) good = false;
          for (let i = 0; good && i < r.seq.length; i++) if (r.seq[i] !== i) good = false;
        }
        if (good) e.in_order++;
        else if (e.bad.length < 5) e.bad.push({ id: c.id, count, seq: r ? r.seq.slice(0, 50) : [] });
        if (r) {
          first = Math.min(first, r.first_ms);
          last = Math.max(last, r.last_ms);
          if (r.last_ms > sampleAt) { sampleAt = r.last_ms; sample = r.last; }
        }
      }
      if (e.min === Infinity) e.min = 0;
      if (want !== undefined) e.expect = want;
      if (e.clients_with) { e.first_ms = first; e.last_ms = last; e.sample = fromWire(sample); }
      events[name] = e;
    }
    out({ ev: 'counts', ...label(cmd), clients: sel.length, connected, life, reasons, events, t: now() });
    if (cmd.reset) for (const c of sel) newCounters(c);
  },

  reset(cmd) {
    for (const c of select(cmd)) newCounters(c);
    done(cmd);
  },

  waitfor(cmd) {
    const sel = select(cmd);
    const timeout = clampMs(cmd.timeout_ms, 10000);
    let test;
    if (cmd.state === 'connected') test = (c) => c.socket.connected;
    else if (cmd.state === 'ready') test = (c) => c.socket.connected && c.ready;
    else if (cmd.state === 'disconnected') test = (c) => !c.socket.connected;
    else if (typeof cmd.event === 'string') {
      const want = cmd.count === undefined ? 1 : Number(cmd.count);
      if (!Number.isFinite(want)) throw new Error('count must be a number');
      test = (c) => { const r = c.events.get(cmd.event); return (r ? r.count : 0) >= want; };
    } else throw new Error('waitfor needs "state" (connected|ready|disconnected) or "event" [and "count"]');
    const t = performance.now();
    let resolve;
    const done = new Promise((r) => { resolve = r; });
    const check = (final) => {
      let n = 0;
      for (const c of sel) if (test(c)) n++;
      const ok = n === sel.length;
      if (ok || final) {
        clearInterval(iv);
        clearTimeout(to);
        out({ ev: 'waitfor', ...label(cmd), ok, done: n, of: sel.length, elapsed_ms: Math.round(performance.now() - t) });
        resolve();
        return true;
      }
      return false;
    };
    const iv = setInterval(() => check(false), 5);
    const to = setTimeout(() => check(true), timeout);
    check(false);
    return done;
  },

  close(cmd) {
    for (const c of select(cmd)) {
      c.closed = true;
      c.onSettle = null;
      c.socket.disconnect();
      if (cmd.forget) forget(c);
    }
    done(cmd);
  },

  open(cmd) {
    for (const c of select(cmd)) {
      c.closed = false;
      c.socket.connect();
    }
    done(cmd);
  },

  /* Abrupt end of the TCP connection (no close frame); the client reconnects
   * unless "reconnect":false. */
  drop(cmd) {
    const sel = select(cmd);
    const t = performance.now();
    const waits = sel.map((c) => new Promise((resolve) => {
      if (cmd.reconnect === false) c.socket.io.reconnection(false);
      const ws = transportWs(c);
      if (!ws || !c.socket.connected) { resolve(); return; }
      const timer = setTimeout(resolve, 5000);
      c.socket.once('disconnect', () => { clearTimeout(timer); resolve(); });
      ws.terminate();
    }));
    return Promise.all(waits).then(() => {
      out({ ev: 'dropped', ...label(cmd), n: sel.length, elapsed_ms: Math.round(performance.now() - t) });
    });
  },

  /* Stop (or go on) reading the client's TCP socket: a slow or dead consumer. */
  pause(cmd) {
    for (const c of select(cmd)) {
      const ws = transportWs(c);
      if (ws && ws._socket) { if (cmd.on === false) ws._socket.resume(); else ws._socket.pause(); }
    }
    done(cmd);
  },

  wait(cmd) {
    const ms = clampMs(cmd.ms, 0);
    return new Promise((resolve) => setTimeout(() => { out({ ev: 'waited', seq: cmd.seq, ms }); resolve(); }, ms));
  },

  ping(cmd) {
    out({ ev: 'pong', seq: cmd.seq, t: now(), clients: clients.size, raws: raws.size });
  },

  exit(cmd) {
    out({ ev: 'bye', seq: cmd.seq });
    shutdown(0);
  },

  /* ---- raw WebSocket (the `ws` package: strict about what servers send) ---- */

  raw_open(cmd) {
    checkFreeId(cmd.id);
    if (clients.has(cmd.id)) throw new Error(`"${cmd.id}" is a Socket.IO client`);
    const id = cmd.id;
    const url = cmd.url || 'ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket';
    const ws = new WebSocket(url, cmd.protocols || [], {
      perMessageDeflate: false, handshakeTimeout: 10000,
      ...(cmd.headers ? { headers: cmd.headers } : {}), ...(cmd.opts || {}),
    });
    const r = { id, ws, quiet: cmd.quiet === true, eioPong: cmd.eio_pong === true, msgs: 0 };
    raws.set(id, r);
    let settle;
    const settled = new Promise((resolve) => { settle = resolve; });
    let answering = true;
    /* The line that settles raw_open (open, refused, or closed first) carries its seq. */
    const answer = (o) => {
      if (answering) { answering = false; if (cmd.seq !== undefined) o.seq = cmd.seq; }
      out(o);
    };
    const say = (o) => { if (!r.quiet) out(o); };
    ws.on('open', () => { answer({ ev: 'raw_open', id, protocol: ws.protocol, extensions: ws.extensions }); settle(); });
    ws.on('unexpected-response', (req, res) => {
      const chunks = []; let size = 0;
      const finish = () => {
        if (!answering) return;
        answer({ ev: 'raw_refused', id, status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        req.destroy();
        raws.delete(id);
        settle();
      };
      res.on('data', (d) => { if (size < 65536) { chunks.push(d); size += d.length; } });
      res.on('end', finish);
      res.on('error', finish);
      setTimeout(() => { if (raws.get(id) === r) finish(); }, 5000).unref();
    });
    ws.on('message', (data, isBinary) => {
      r.msgs++;
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
      if (isBinary) say({ ev: 'raw_msg', id, bin: buf.toString('base64') });
      else {
        const text = buf.toString('utf8');
        say({ ev: 'raw_msg', id, text });
        if (r.eioPong && text === '2') ws.send('3');
      }
    });
    ws.on('ping', (d) => say({ ev: 'raw_ping', id, data: d.toString('base64') }));
    ws.on('pong', (d) => say({ ev: 'raw_pong', id, data: d.toString('base64') }));
    ws.on('error', (e) => out({ ev: 'raw_error', id, message: e.message, code: e.code }));
    ws.on('close', (code, reason) => {
      answer({ ev: 'raw_close', id, code, reason: reason.toString('utf8') });
      if (raws.get(id) === r) raws.delete(id);
      settle();
    });
    return settled;
  },

  raw_send(cmd) {
    const r = raws.get(cmd.id);
    if (!r) throw new Error(`no raw WebSocket "${cmd.id}"`);
    if (typeof cmd.text === 'string') r.ws.send(cmd.text, { binary: false });
    else if (typeof cmd.bin === 'string') r.ws.send(Buffer.from(cmd.bin, 'base64'), { binary: true });
    else throw new Error('raw_send needs "text" or "bin" (base64)');
    done(cmd);
  },

  raw_ping(cmd) {
    const r = raws.get(cmd.id);
    if (!r) throw new Error(`no raw WebSocket "${cmd.id}"`);
    r.ws.ping(cmd.data ? Buffer.from(cmd.data, 'base64') : undefined);
    done(cmd);
  },

  raw_close(cmd) {
    const r = raws.get(cmd.id);
    if (!r) throw new Error(`no raw WebSocket "${cmd.id}"`);
    if (cmd.terminate) r.ws.terminate();
    else r.ws.close(cmd.code, cmd.reason);
    done(cmd);
  },
};

/* The answer of a command that has nothing else to say. */
function done(cmd) {
  out({ ev: 'ok', cmd: cmd.cmd, seq: cmd.seq });
}

function transportWs(c) {
  const e = c.socket.io.engine;
  return e && e.transport && e.transport.ws ? e.transport.ws : null;
}

/* ---- main loop -------------------------------------------------------- */

/* Commands run in order; see the top of the file for which hold back the next. */
const queue = [];
let busy = false;
let eof = false;

function pump() {
  while (!busy && queue.length && !exiting) {
    const p = handle(queue.shift());
    if (p && typeof p.then === 'function') {
      busy = true;
      p.then(() => { busy = false; pump(); });
    }
  }
  if (!busy && !queue.length && eof) shutdown(0);
}

function handle(line) {
  if (!line.trim()) return undefined;
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) {
    out({ ev: 'error', message: `bad JSON: ${e.message}`, line: line.slice(0, 200) });
    return undefined;
  }
  if (!cmd || typeof cmd !== 'object' || Array.isArray(cmd)) {
    out({ ev: 'error', message: 'a command is a JSON object', line: line.slice(0, 200) });
    return undefined;
  }
  const f = Object.prototype.hasOwnProperty.call(commands, cmd.cmd) ? commands[cmd.cmd] : null;
  if (!f) { out({ ev: 'error', cmd: cmd.cmd, seq: cmd.seq, message: `unknown cmd "${cmd.cmd}"` }); return undefined; }
  try {
    const p = f(cmd);
    return cmd.nowait ? undefined : p;
  } catch (e) {
    out({ ev: 'error', cmd: cmd.cmd, seq: cmd.seq, message: e && e.message ? e.message : String(e) });
    return undefined;
  }
}

function shutdown(code) {
  if (exiting) return;
  exiting = true;
  for (const c of clients.values()) { try { c.socket.disconnect(); } catch (e) { /* closing anyway */ } }
  for (const r of raws.values()) { try { r.ws.close(1000); } catch (e) { /* closing anyway */ } }
  /* Let the close frames go out, then leave whatever is still pending. */
  setTimeout(() => process.exit(code), clients.size || raws.size ? 200 : 0);
}

let lifetime = 600;
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--lifetime' && i + 1 < process.argv.length) lifetime = Number(process.argv[++i]);
  else { process.stderr.write(`drive.js: unknown argument ${process.argv[i]}\n`); process.exit(2); }
}
if (lifetime > 0) {
  setTimeout(() => {
    process.stderr.write(`drive.js: --lifetime ${lifetime} s is over, exiting\n`);
    shutdown(3);
  }, lifetime * 1000).unref();
}
process.on('uncaughtException', (e) => out({ ev: 'error', message: `uncaught: ${e && e.stack ? e.stack : e}` }));

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
rl.on('line', (line) => { queue.push(line); pump(); });
/* End of input: the commands already read still run (each is bounded), then exit. */
rl.on('close', () => { eof = true; pump(); });
out({
  ev: 'ready', pid: process.pid,
  versions: { 'socket.io-client': require('socket.io-client/package.json').version, ws: require('ws/package.json').version, node: process.versions.node },
});
