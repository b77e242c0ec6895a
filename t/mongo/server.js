#!/usr/bin/env node
'use strict';
/*
 * mongo-test-server: an in-memory MongoDB wire-protocol server for tests.
 *
 *   node server.js --port N [--host 127.0.0.1] [--seed file.json] [--control-port M]
 *                  [--processes N] [--exit-with-parent] [--verbose]
 *
 * Prints exactly one line when both listeners are up:
 *   mongo-test-server ready port=<port> control=<controlport>
 *
 * --processes N (default 1): a node:cluster primary forks N workers that each
 * load the seed and serve the same port (--port 0: one port, shared); the
 * primary hands out connections in turn, serves the control port and prints
 * the ready line once every worker listens. For read-only loads (benchmarks)
 * only: every process has its own data, cursors and faults, so writes
 * (insert, delete, drop, ...), a getMore on another connection than its find,
 * and fault injection are not coherent across processes. With N > 1 the
 * control paths that change state (/fault, /seed, /clear) answer 409,
 * /stats sums every worker's counters and /dump shows the first worker's data.
 *
 * It answers like a standalone mongod 6.0 (wire versions 0..17) so that both
 * libmongoc 1.23 and Node's official driver talk to it unmodified.  Queries
 * are really evaluated (mingo does the query language); nothing is canned.
 *
 * --exit-with-parent: the server checks every 200 ms that the process that
 * started it is still its parent, and exits when it is not (the parent died,
 * even of a kill -9, and the server was handed to init or a subreaper), so
 * that a runner killed without a chance to clean up leaves nothing behind.
 *
 * Layout: 1. options  2. storage (raw docs + plain views, sort order)
 *         3. wire codec  4. faults  5. commands  6. connections  7. control
 *         8. processes (--processes N > 1)
 */
const net = require('net');
const http = require('http');
const fs = require('fs');
const cluster = require('cluster');
const { ObjectId, Long, Double, EJSON, serialize, deserialize, calculateObjectSize } = require('bson');
const mingo = require('mingo');

/* ---------------------------------------------------------------- 1. options */
function parseArgs(argv) {
  const o = { port: 27017, host: '127.0.0.1', seed: null, controlPort: 0, processes: 1, exitWithParent: false,
    verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => argv[++i];
    if (a === '--port') o.port = Number(v());
    else if (a === '--host') o.host = v();
    else if (a === '--seed') o.seed = v();
    else if (a === '--control-port') o.controlPort = Number(v());
    else if (a === '--processes') o.processes = Number(v());
    else if (a === '--exit-with-parent') o.exitWithParent = true;
    else if (a === '--verbose') o.verbose = true;
    else { process.stderr.write(`unknown argument ${a}\n`); process.exit(2); }
  }
  if (!Number.isInteger(o.processes) || o.processes < 1) { process.stderr.write('--processes needs an integer >= 1\n'); process.exit(2); }
  return o;
}
const opts = parseArgs(process.argv.slice(2));
const log = (...a) => { if (opts.verbose) process.stderr.write(a.join(' ') + '\n'); };

/* ---------------------------------------------------------------- 2. storage
 * Every document is kept twice:
 *  - raw:  deserialized with promoteValues:false, so re-serializing it gives the
 *          same BSON types back (int64 stays int64, 2.0 stays a double, ...);
 *  - view: a plain-JS copy (numbers are numbers) that mingo can evaluate.
 * Queries run on views; results are mapped back to the raw documents.
 */
const RAW = { promoteValues: false, bsonRegExp: true };
const isDoc = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) &&
  !v._bsontype && !(v instanceof Date) && !(v instanceof RegExp);

function toView(v) {
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  if (Array.isArray(v)) return v.map(toView);
  switch (v._bsontype) {
    case 'Int32': case 'Double': return v.value;
    case 'Long': return v.toNumber();
    case 'Decimal128': return Number(v.toString());
    case 'BSONSymbol': return v.value;
    case 'BSONRegExp':
      try { return new RegExp(v.pattern, v.options.replace(/[^imsu]/g, '')); } catch { return v; }
    case undefined: break;
    default: return v; // ObjectId, Binary, Timestamp, MinKey, MaxKey, Code, DBRef
  }
  if (v instanceof RegExp) return v;
  const out = {};
  for (const k of Object.keys(v)) out[k] = toView(v[k]);
  return out;
}

// View value -> BSON value, for computed results ($group, $project expressions).
function fromView(v) {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && !Object.is(v, -0)) {
      if (v >= -2147483648 && v <= 2147483647) return v; // int32
      if (Number.isSafeInteger(v)) return Long.fromNumber(v);
    }
    return new Double(v);
  }
  if (Array.isArray(v)) return v.map(fromView);
  if (isDoc(v)) { const o = {}; for (const k of Object.keys(v)) o[k] = fromView(v[k]); return o; }
  return v === undefined ? null : v;
}

// Projected view -> raw document. mingo reorders fields and loses number
// types; walk the raw document in its own field order and keep raw values
// wherever the projected value is still the original one.
function mapBack(raw, view) {
  if (Array.isArray(raw) && Array.isArray(view)) {
    if (raw.length === view.length) return view.map((v, i) => mapBack(raw[i], v));
    const out = []; let j = 0; // $slice / $elemMatch: a subsequence of raw
    for (const v of view) {
      let k = j;
      while (k < raw.length && compareValues(toView(raw[k]), v) !== 0) k++;
      if (k < raw.length) { out.push(raw[k]); j = k + 1; } else out.push(fromView(v));
    }
    return out;
  }
  if (isDoc(raw) && isDoc(view)) {
    const out = {};
    for (const k of Object.keys(raw)) if (k in view) out[k] = mapBack(raw[k], view[k]);
    for (const k of Object.keys(view)) if (!(k in raw)) out[k] = fromView(view[k]);
    return out;
  }
  const rv = toView(raw);
  return rv === view || compareValues(rv, view) === 0 ? raw : fromView(view);
}

// BSON comparison order (MinKey < null < numbers < strings < objects < arrays
// < binData < ObjectId < bool < date < timestamp < regex < MaxKey).
const EMPTY_ARRAY = Symbol('empty'); // an empty array sorts before null
const BSON_RANK = { MinKey: 1, Binary: 7, ObjectId: 8, Timestamp: 11, BSONRegExp: 12, Code: 12.5, MaxKey: 14 };
function rank(v) {
  if (v === EMPTY_ARRAY) return 1.5;
  if (v === undefined || v === null) return 2;
  switch (typeof v) { case 'number': return 3; case 'string': return 4; case 'boolean': return 9; }
  if (v instanceof Date) return 10;
  if (v instanceof RegExp) return 12;
  if (Array.isArray(v)) return 6;
  return BSON_RANK[v._bsontype] || 5;
}
// UTF-16 code-unit order differs from UTF-8 byte order only for surrogates.
const fixCU = (c) => (c >= 0xE000 ? c - 0x800 : c >= 0xD800 ? c + 0x2000 : c);
function cmpStr(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x !== y) return fixCU(x) - fixCU(y);
  }
  return a.length - b.length;
}
const sign = (x) => (x < 0 ? -1 : x > 0 ? 1 : 0);
function compareValues(a, b) {
  const ra = rank(a), rb = rank(b);
  if (ra !== rb) return sign(ra - rb);
  switch (ra) {
    case 3: if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(b) - Number.isNaN(a);
      return sign(a - b);
    case 4: return sign(cmpStr(a, b));
    case 9: return sign(a - b);
    case 10: return sign(a.getTime() - b.getTime());
    case 8: return sign(Buffer.compare(a.id, b.id));
    case 11: return a.compare(b);
    case 7: return sign(a.position - b.position) || sign(a.sub_type - b.sub_type) ||
      sign(Buffer.compare(a.buffer.subarray(0, a.position), b.buffer.subarray(0, b.position)));
    case 12: return sign(cmpStr(String(a.source ?? a.pattern), String(b.source ?? b.pattern)));
    case 6: {
      for (let i = 0; i < Math.min(a.length, b.length); i++) { const c = compareValues(a[i], b[i]); if (c) return c; }
      return sign(a.length - b.length);
    }
    case 5: {
      const ka = Object.keys(a), kb = Object.keys(b);
      for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
        const c = sign(rank(a[ka[i]]) - rank(b[kb[i]])) || sign(cmpStr(ka[i], kb[i])) || compareValues(a[ka[i]], b[kb[i]]);
        if (c) return c;
      }
      return sign(ka.length - kb.length);
    }
    default: return 0;
  }
}

// All values a sort path reaches (arrays fan out, as in mongod).
function pathValues(v, parts, i, out) {
  if (i === parts.length) {
    if (Array.isArray(v)) { if (!v.length) out.push(EMPTY_ARRAY); else out.push(...v); } else out.push(v);
    return;
  }
  if (Array.isArray(v)) {
    if (/^\d+$/.test(parts[i]) && Number(parts[i]) < v.length) pathValues(v[Number(parts[i])], parts, i + 1, out);
    for (const e of v) if (isDoc(e)) pathValues(e, parts, i, out);
  } else if (isDoc(v) && parts[i] in v) pathValues(v[parts[i]], parts, i + 1, out);
}
function sortEntries(entries, spec) {
  const keys = Object.entries(spec || {}).filter(([, d]) => typeof d === 'number');
  if (!keys.length) return entries;
  for (const [k, d] of keys) if (d !== 1 && d !== -1) throw new MongoError(15975, `$sort key ordering must be 1 (for ascending) or -1 (for descending)`);
  const withKeys = entries.map((e, idx) => ({ e, idx, k: keys.map(([path, dir]) => {
    const vals = []; pathValues(e.view, path.split('.'), 0, vals);
    if (!vals.length) return null;
    return vals.reduce((m, x) => (compareValues(x, m) * dir < 0 ? x : m));
  }) }));
  withKeys.sort((x, y) => {
    for (let i = 0; i < keys.length; i++) { const c = compareValues(x.k[i], y.k[i]) * keys[i][1]; if (c) return c; }
    return x.idx - y.idx; // ties keep natural (insertion) order
  });
  return withKeys.map((w) => w.e);
}

class MongoError extends Error {
  constructor(code, msg) { super(msg); this.code = code; }
}
// mingo throws on bad operators: that is a BadValue for mongod too.
function compileFilter(filter) {
  if (filter === undefined || filter === null) filter = {};
  if (!isDoc(filter)) throw new MongoError(14, 'filter must be an object');
  if (!Object.keys(filter).length) return () => true;
  try { const q = new mingo.Query(filter); return (v) => q.test(v); } catch (e) { throw new MongoError(2, e.message); }
}
function filterEntries(entries, filter) {
  const test = compileFilter(filter);
  try { return entries.filter((e) => test(e.view)); } catch (e) { throw new MongoError(2, e.message); }
}

// _id uniqueness key: numerically equal numbers collide like in mongod.
const idKey = (v) => (typeof v === 'number' ? 'n' + v : typeof v === 'string' ? 's' + v :
  v && v._bsontype === 'ObjectId' ? 'o' + v.toHexString() : 'j' + EJSON.stringify(fromView(v), { relaxed: true }));

const store = new Map(); // db -> Map(coll -> {docs: [{raw, view}], ids: Map, indexes: []})
function getColl(db, coll, create) {
  let d = store.get(db);
  if (!d) { if (!create) return null; d = new Map(); store.set(db, d); }
  let c = d.get(coll);
  if (!c && create) { c = { docs: [], ids: new Map(), indexes: [{ v: 2, key: { _id: 1 }, name: '_id_' }] }; d.set(coll, c); }
  return c || null;
}
// The documents a filter can match. mongod answers an equality on _id from
// the _id index instead of a collection scan (its IDHACK plan), and so does
// this server, through the same key that keeps _id unique: without it every
// get-by-id scans the whole collection, and the benchmarks would measure this
// server. {_id: {$in: [...]}} of such values is answered from the index
// too, as mongod's plan for it (an index scan of the _id index, one point
// each) answers it, and in its order: ascending _id. The whole filter still
// decides, on the candidates, in mingo.
const idPoint = (v) => !(v === undefined || isDoc(v) || Array.isArray(v) || v instanceof RegExp ||
  v?._bsontype === 'BSONRegExp');
function candidates(c, filter) {
  if (!c) return [];
  const v = isDoc(filter) && Object.prototype.hasOwnProperty.call(filter, '_id') ? filter._id : undefined;
  if (isDoc(v) && Object.keys(v).length === 1 && Array.isArray(v.$in) && v.$in.every(idPoint)) {
    const found = new Set();
    for (const x of v.$in) { const e = c.ids.get(idKey(toView(x))); if (e) found.add(e); }
    return sortEntries([...found], { _id: 1 });
  }
  if (!idPoint(v)) return c.docs;
  const e = c.ids.get(idKey(toView(v)));
  return e ? [e] : [];
}
function insertDoc(c, ns, raw) {
  // mongod adds a missing _id and always stores _id as the first field.
  const { _id = new ObjectId(), ...rest } = raw;
  const doc = { _id, ...rest };
  const key = idKey(toView(_id));
  if (c.ids.has(key)) {
    const err = new MongoError(11000, `E11000 duplicate key error collection: ${ns} index: _id_ dup key: { _id: ${EJSON.stringify(_id)} }`);
    err.extra = { keyPattern: { _id: 1 }, keyValue: { _id } };
    throw err;
  }
  const entry = { raw: doc, view: toView(doc) };
  c.docs.push(entry); c.ids.set(key, entry);
}
function loadSeed(obj) {
  store.clear(); cursors.clear();
  for (const [db, colls] of Object.entries(obj)) {
    for (const [name, docs] of Object.entries(colls)) {
      const c = getColl(db, name, true);
      // Round-trip through BSON so seed docs look exactly like wire docs.
      for (const d of docs) insertDoc(c, `${db}.${name}`, deserialize(serialize(d), RAW));
    }
  }
}
const parseSeed = (text) => EJSON.parse(text, { relaxed: false });

/* ---------------------------------------------------------------- 3. wire codec
 * Header: int32 messageLength, requestID, responseTo, opCode (little endian).
 */
const OP_REPLY = 1, OP_QUERY = 2004, OP_COMPRESSED = 2012, OP_MSG = 2013;
const MAX_MESSAGE = 48000000;
let nextRequestId = 1;

function cstring(buf, pos) {
  const end = buf.indexOf(0, pos);
  if (end < 0) throw new Error('unterminated cstring');
  return [buf.toString('utf8', pos, end), end + 1];
}
function readDoc(buf, pos) {
  const size = buf.readInt32LE(pos);
  return [deserialize(buf.subarray(pos, pos + size), RAW), pos + size];
}
// OP_MSG: uint32 flags, sections (kind 0: body; kind 1: int32 size, cstring
// identifier, documents), optional CRC-32C which we accept without checking.
function decodeOpMsg(msg) {
  const flags = msg.readUInt32LE(16);
  const end = msg.length - (flags & 1 ? 4 : 0);
  let pos = 20, body = null; const seqs = {};
  while (pos < end) {
    const kind = msg[pos++];
    if (kind === 0) [body, pos] = readDoc(msg, pos);
    else if (kind === 1) {
      const secEnd = pos + msg.readInt32LE(pos); let id, p; [id, p] = cstring(msg, pos + 4);
      const docs = [];
      while (p < secEnd) { let d; [d, p] = readDoc(msg, p); docs.push(d); }
      seqs[id] = docs; pos = secEnd;
    } else throw new Error(`bad OP_MSG section kind ${kind}`);
  }
  if (!body) throw new Error('OP_MSG without body');
  Object.assign(body, seqs);
  return { body, moreToCome: (flags & 2) !== 0 };
}
// OP_QUERY (legacy; only the handshake uses it): int32 flags, cstring ns,
// int32 skip, int32 nreturn, query document.
function decodeOpQuery(msg) {
  const [ns, p] = cstring(msg, 20);
  let [query] = readDoc(msg, p + 8);
  if (query.$query && isDoc(query.$query)) query = query.$query;
  return { ns, query };
}
function header(len, responseTo, opCode) {
  const h = Buffer.alloc(16);
  h.writeInt32LE(len, 0); h.writeInt32LE(nextRequestId++, 4); h.writeInt32LE(responseTo, 8); h.writeInt32LE(opCode, 12);
  return h;
}
function encodeOpMsg(responseTo, doc) {
  const body = serialize(doc);
  const pre = Buffer.alloc(5); // flags 0, section kind 0
  return Buffer.concat([header(16 + 5 + body.length, responseTo, OP_MSG), pre, body]);
}
function encodeOpReply(responseTo, doc, flags = 0) {
  const body = serialize(doc);
  const pre = Buffer.alloc(20); // flags, int64 cursorID 0, startingFrom 0, numberReturned
  pre.writeInt32LE(flags, 0); pre.writeInt32LE(1, 16);
  return Buffer.concat([header(16 + 20 + body.length, responseTo, OP_REPLY), pre, body]);
}

/* ---------------------------------------------------------------- 4. faults
 * Set over the control port. They apply to FAULT_CMDS only, never to the
 * handshake, so drivers still discover the server and then fail on data.
 */
const DEFAULT_FAULT_CMDS = ['find', 'getMore', 'aggregate', 'count', 'distinct'];
const faults = { delayMs: 0, error: 0, errmsg: '', drop: 0, maxtime: true, cmds: new Set(DEFAULT_FAULT_CMDS) };
// hold: the faulted commands wait, whatever their maxTimeMS, until released,
// so that a test can line up what queues behind them without timing.
let hold = null; // { promise, release }
function setHold(on) {
  if (on && !hold) { let release; const promise = new Promise((r) => { release = r; }); hold = { promise, release }; }
  if (!on && hold) { hold.release(); hold = null; }
}
function clearFaults() {
  setHold(false);
  Object.assign(faults, { delayMs: 0, error: 0, errmsg: '', drop: 0, maxtime: true, cmds: new Set(DEFAULT_FAULT_CMDS) });
}
const CODE_NAMES = {
  1: 'InternalError', 2: 'BadValue', 6: 'HostUnreachable', 7: 'HostNotFound', 9: 'FailedToParse',
  11: 'UserNotFound', 13: 'Unauthorized', 14: 'TypeMismatch', 18: 'AuthenticationFailed',
  26: 'NamespaceNotFound', 43: 'CursorNotFound', 48: 'NamespaceExists', 50: 'MaxTimeMSExpired',
  59: 'CommandNotFound', 89: 'NetworkTimeout', 91: 'ShutdownInProgress', 96: 'OperationFailed',
  112: 'WriteConflict', 115: 'CommandNotSupported', 189: 'PrimarySteppedDown', 262: 'ExceededTimeLimit',
  352: 'UnsupportedOpQueryCommand', 9001: 'SocketException', 10107: 'NotWritablePrimary',
  11000: 'DuplicateKey', 11600: 'InterruptedAtShutdown', 11602: 'InterruptedDueToReplStateChange',
  13435: 'NotPrimaryNoSecondaryOk', 40324: 'UnrecognizedPipelineStage', 8000: 'AtlasError',
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* ---------------------------------------------------------------- 5. commands */
const ok = (doc = {}) => ({ ...doc, ok: new Double(1) });
function fail(code, errmsg, extra) {
  const r = { ok: new Double(0), errmsg, code };
  if (CODE_NAMES[code]) r.codeName = CODE_NAMES[code];
  return Object.assign(r, extra || {});
}
const DROP = Symbol('drop connection');
// commands: every command by name; opQueryOk: those that came over OP_QUERY
// (the handshake) and were answered ok:1.
const stats = { commands: {}, opQueryOk: {}, totalConnections: 0 };

// --- cursors: materialized result lists handed out in batches.
const cursors = new Map(); // id string -> {id, ns, docs, pos, budgetMs, used}
const BATCH_BYTES = 16000000; // stay under maxBsonObjectSize including the envelope
function takeBatch(cur, maxDocs) {
  const batch = []; let bytes = 0;
  while (cur.pos < cur.docs.length && batch.length < maxDocs) {
    const size = calculateObjectSize(cur.docs[cur.pos]);
    if (batch.length && bytes + size > BATCH_BYTES) break;
    batch.push(cur.docs[cur.pos++]); bytes += size;
  }
  return batch;
}
// First batch: 101 docs by default (mongod's historic default), or batchSize.
function openCursor(ns, docs, batchSize, singleBatch, maxTimeMS) {
  const cur = { ns, docs, pos: 0, budgetMs: maxTimeMS || 0, used: Date.now() };
  const firstBatch = takeBatch(cur, batchSize ?? 101);
  let id = Long.ZERO;
  if (!singleBatch && cur.pos < docs.length) {
    do { id = Long.fromBits((Math.random() * 2 ** 32) | 0, (Math.random() * 2 ** 31) | 0); } while (id.isZero() || cursors.has(id.toString()));
    cur.id = id; cursors.set(id.toString(), cur);
  }
  return ok({ cursor: { firstBatch, id, ns } });
}
// Reap cursors idle for 10 minutes, like mongod's cursorTimeoutMillis.
setInterval(() => { const old = Date.now() - 600000; for (const [k, c] of cursors) if (c.used < old) cursors.delete(k); }, 60000).unref();

function num(v, name, { min = 0 } = {}) {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new MongoError(14, `${name} must be a number`);
  if (v < min) throw new MongoError(2, `${name[0].toUpperCase() + name.slice(1)} value must be non-negative, but received: ${v}`);
  return Math.trunc(v);
}
function collName(cmd, name) {
  const c = cmd[name];
  if (typeof c !== 'string' || !c) throw new MongoError(73, `collection name has invalid type ${typeof c}`);
  return c;
}
let connectionCounter = 0;
function helloReply(conn, legacy) {
  // No topologyVersion: that would invite streaming (exhaust) heartbeats.
  return ok({
    [legacy ? 'ismaster' : 'isWritablePrimary']: true, helloOk: true,
    maxBsonObjectSize: 16777216, maxMessageSizeBytes: MAX_MESSAGE, maxWriteBatchSize: 100000,
    localTime: new Date(), logicalSessionTimeoutMinutes: 30, connectionId: conn.id,
    minWireVersion: 0, maxWireVersion: 17, readOnly: false,
  });
}

function runPipeline(db, entries, pipeline) {
  // Document-preserving stages run natively on {raw, view} entries; reshaping
  // stages go through mingo on fresh view copies (mingo may mutate its input).
  const resolver = (name) => (getColl(db, name, false)?.docs || []).map((e) => toView(e.raw));
  const mopts = { collectionResolver: resolver };
  for (const stage of pipeline) {
    if (!isDoc(stage) || Object.keys(stage).length !== 1) throw new MongoError(40323, 'A pipeline stage specification object must contain exactly one field.');
    const [op, arg] = Object.entries(stage)[0];
    if (op === '$match') entries = filterEntries(entries, arg);
    else if (op === '$sort') entries = sortEntries(entries, arg);
    else if (op === '$skip') entries = entries.slice(num(arg, '$skip'));
    else if (op === '$limit') entries = entries.slice(0, num(arg, '$limit', { min: 1 }));
    else if (op === '$out' || op === '$merge') throw new MongoError(2, `${op} is not supported by mongo-test-server`);
    else {
      const back = new Map();
      const views = entries.map((e) => { const v = toView(e.raw); back.set(v, e.raw); return v; });
      let out;
      try { out = new mingo.Aggregator([stage], mopts).run(views); } catch (e) {
        if (/unregistered pipeline operator/.test(e.message)) throw new MongoError(40324, `Unrecognized pipeline stage name: '${op}'`);
        throw new MongoError(2, e.message);
      }
      const oneToOne = ['$project', '$addFields', '$set', '$unset'].includes(op);
      entries = out.map((v, i) => ({
        raw: back.has(v) ? back.get(v) : oneToOne ? mapBack(entries[i].raw, v) : fromView(v),
        view: v,
      }));
    }
  }
  return entries;
}

function applyProjection(entries, filter, projection) {
  if (!isDoc(projection) || !Object.keys(projection).length) return entries.map((e) => e.raw);
  let views;
  // Positional ($) projection needs the filter; every entry passes it already.
  try { views = mingo.find(entries.map((e) => e.view), filter || {}, projection).all(); } catch (e) { throw new MongoError(2, e.message); }
  return views.map((v, i) => mapBack(entries[i].raw, v));
}

const COMMANDS = {
  hello: (cmd, db, conn) => helloReply(conn, false),
  isMaster: (cmd, db, conn) => helloReply(conn, true),
  ping: () => ok(),
  buildInfo: () => ok({
    version: '6.0.0', gitVersion: '0000000000000000000000000000000000000000', versionArray: [6, 0, 0, 0],
    bits: 64, debug: false, maxBsonObjectSize: 16777216, javascriptEngine: 'none', sysInfo: 'deprecated',
    allocator: 'system', modules: [], storageEngines: ['memory'], openssl: { running: 'disabled' },
  }),
  endSessions: () => ok(),
  find(cmd, db) {
    const coll = collName(cmd, 'find'), ns = `${db}.${coll}`;
    const skip = num(cmd.skip, 'skip'), limit = num(cmd.limit, 'limit'), batchSize = num(cmd.batchSize, 'batchSize');
    let entries = filterEntries(candidates(getColl(db, coll, false), cmd.filter), cmd.filter);
    entries = sortEntries(entries, cmd.sort);
    entries = entries.slice(skip || 0, limit ? (skip || 0) + limit : undefined);
    const docs = applyProjection(entries, cmd.filter, cmd.projection);
    return openCursor(ns, docs, batchSize, cmd.singleBatch === true, num(cmd.maxTimeMS, 'maxTimeMS'));
  },
  getMore(cmd, db, conn, raw) {
    const id = raw.getMore; // the view would have rounded the int64 id
    if (!(id instanceof Long)) throw new MongoError(14, 'Field \'getMore\' must be of type long in: getMore');
    const cur = cursors.get(id.toString());
    if (!cur) throw new MongoError(43, `cursor id ${id.toString()} not found`);
    cur.used = Date.now();
    const nextBatch = takeBatch(cur, num(cmd.batchSize, 'batchSize') || Infinity);
    if (cur.pos >= cur.docs.length) cursors.delete(id.toString());
    return ok({ cursor: { nextBatch, id: cur.pos >= cur.docs.length ? Long.ZERO : id, ns: cur.ns } });
  },
  killCursors(cmd, db, conn, raw) {
    const killed = [], notFound = [];
    for (const id of raw.cursors || []) (cursors.delete(String(id)) ? killed : notFound).push(id);
    return ok({ cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [] });
  },
  count(cmd, db) {
    const skip = num(cmd.skip, 'skip') || 0;
    const limit = Math.abs(num(cmd.limit, 'limit', { min: -Infinity }) || 0);
    const n = filterEntries(candidates(getColl(db, collName(cmd, 'count'), false), cmd.query), cmd.query).length;
    return ok({ n: Math.max(0, Math.min(n - skip, limit || Infinity)) });
  },
  distinct(cmd, db) {
    const entries = filterEntries(getColl(db, collName(cmd, 'distinct'), false)?.docs || [], cmd.query);
    const seen = new Map(), parts = String(cmd.key).split('.');
    for (const e of entries) {
      const raws = []; pathValues(e.raw, parts, 0, raws);
      for (const r of raws) if (r !== EMPTY_ARRAY && r !== undefined) {
        const k = rank(toView(r)) + idKey(toView(r)); if (!seen.has(k)) seen.set(k, r);
      }
    }
    return ok({ values: [...seen.values()] });
  },
  aggregate(cmd, db) {
    if (!Array.isArray(cmd.pipeline)) throw new MongoError(14, "'pipeline' option must be specified as an array");
    if (!isDoc(cmd.cursor)) throw new MongoError(9, "The 'cursor' option is required, except for aggregate with the explain argument");
    const coll = cmd.aggregate === 1 ? null : collName(cmd, 'aggregate');
    const ns = `${db}.${coll ?? '$cmd.aggregate'}`;
    const entries = runPipeline(db, coll ? getColl(db, coll, false)?.docs || [] : [], cmd.pipeline);
    return openCursor(ns, entries.map((e) => e.raw), num(cmd.cursor.batchSize, 'batchSize'), false, num(cmd.maxTimeMS, 'maxTimeMS'));
  },
  insert(cmd, db, conn, raw) {
    const coll = collName(cmd, 'insert'), c = getColl(db, coll, true), writeErrors = [];
    let n = 0;
    (raw.documents || []).some((d, index) => {
      try { insertDoc(c, `${db}.${coll}`, d); n++; } catch (e) {
        if (!(e instanceof MongoError)) throw e;
        writeErrors.push({ index, code: e.code, errmsg: e.message, ...e.extra });
        return cmd.ordered !== false; // ordered inserts stop at the first error
      }
      return false;
    });
    return ok(writeErrors.length ? { n, writeErrors } : { n });
  },
  delete(cmd, db) {
    const c = getColl(db, collName(cmd, 'delete'), false);
    let n = 0;
    for (const d of cmd.deletes || []) {
      if (!c) break;
      let victims = filterEntries(c.docs, d.q);
      if (toView(d.limit) === 1) victims = victims.slice(0, 1);
      const gone = new Set(victims);
      c.docs = c.docs.filter((e) => !gone.has(e));
      for (const e of victims) c.ids.delete(idKey(e.view._id));
      n += victims.length;
    }
    return ok({ n });
  },
  create(cmd, db) {
    const coll = collName(cmd, 'create');
    if (getColl(db, coll, false)) throw new MongoError(48, `Collection ${db}.${coll} already exists.`);
    getColl(db, coll, true);
    return ok();
  },
  drop(cmd, db) {
    const coll = collName(cmd, 'drop'), c = getColl(db, coll, false);
    if (!c) throw new MongoError(26, 'ns not found');
    store.get(db).delete(coll);
    return ok({ nIndexesWas: c.indexes.length, ns: `${db}.${coll}` });
  },
  dropDatabase(cmd, db) { store.delete(db); return ok(); },
  createIndexes(cmd, db) {
    const coll = collName(cmd, 'createIndexes'), existed = !!getColl(db, coll, false), c = getColl(db, coll, true);
    const before = c.indexes.length;
    for (const ix of cmd.indexes || []) if (!c.indexes.some((i) => i.name === ix.name)) c.indexes.push({ v: 2, ...ix });
    return ok({ numIndexesBefore: before, numIndexesAfter: c.indexes.length, createdCollectionAutomatically: !existed });
  },
  listIndexes(cmd, db) {
    const coll = collName(cmd, 'listIndexes'), c = getColl(db, coll, false);
    if (!c) throw new MongoError(26, `ns does not exist: ${db}.${coll}`);
    return openCursor(`${db}.$cmd.listIndexes.${coll}`, c.indexes, num(cmd.cursor?.batchSize, 'batchSize'), false);
  },
  listCollections(cmd, db) {
    const all = [...(store.get(db) || new Map()).keys()].map((name) => ({
      name, type: 'collection', options: {}, info: { readOnly: false },
      idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
    }));
    let entries = filterEntries(all.map((d) => ({ raw: d, view: d })), cmd.filter);
    if (cmd.nameOnly) entries = entries.map((e) => ({ raw: { name: e.raw.name, type: 'collection' } }));
    return openCursor(`${db}.$cmd.listCollections`, entries.map((e) => e.raw), num(cmd.cursor?.batchSize, 'batchSize'), false);
  },
  listDatabases(cmd) {
    const dbs = [...store.entries()].map(([name, colls]) => {
      let size = 0;
      for (const c of colls.values()) for (const e of c.docs) size += calculateObjectSize(e.raw);
      return { name, sizeOnDisk: size, empty: size === 0 };
    });
    const sel = filterEntries(dbs.map((d) => ({ raw: d, view: d })), cmd.filter).map((e) => e.raw);
    if (cmd.nameOnly) return ok({ databases: sel.map((d) => ({ name: d.name })) });
    return ok({ databases: sel, totalSize: sel.reduce((a, d) => a + d.sizeOnDisk, 0), totalSizeMb: 0 });
  },
};
const ALIASES = { ismaster: 'isMaster', buildinfo: 'buildInfo' };
const HANDSHAKE = new Set(['hello', 'isMaster']);

// Runs one command; returns the reply document or DROP.
async function runCommand(conn, raw, db, viaOpQuery) {
  const name = Object.keys(raw)[0];
  const canon = ALIASES[name] || name;
  stats.commands[name] = (stats.commands[name] || 0) + 1;
  if (opts.verbose) log(`conn${conn.id} ${db} ${EJSON.stringify(raw, { relaxed: true }).slice(0, 400)}`);
  if (!name || !COMMANDS[canon]) return fail(59, `no such command: '${name}'`);
  // mongod 6.0 refuses every OP_QUERY command except the handshake.
  if (viaOpQuery && !HANDSHAKE.has(canon)) {
    return fail(352, `Unsupported OP_QUERY command: ${name}. The client driver may require an upgrade.`);
  }
  if (!HANDSHAKE.has(canon) && typeof db !== 'string') return fail(40571, 'OP_MSG requests require a $db argument');
  const cmd = toView(raw); // handlers use raw where exact BSON types matter

  if (faults.cmds.has(canon)) {
    if (hold) await hold.promise;
    if (faults.drop > 0) { faults.drop--; return DROP; }
    if (faults.delayMs > 0) {
      // A real server stops at maxTimeMS; for getMore the find's budget is
      // cumulative across batches.
      const cur = canon === 'getMore' && cmd.getMore !== undefined ? cursors.get(String(raw.getMore)) : null;
      const limit = cur ? cur.budgetMs : cmd.maxTimeMS;
      if (faults.maxtime && limit > 0 && faults.delayMs > limit) {
        await sleep(limit);
        if (cur) cursors.delete(String(raw.getMore)); // mongod kills the cursor
        return fail(50, 'operation exceeded time limit');
      }
      await sleep(faults.delayMs);
      if (cur && cur.budgetMs) cur.budgetMs -= faults.delayMs;
    }
    if (faults.error) {
      return fail(faults.error, faults.errmsg || (faults.error === 50 ? 'operation exceeded time limit' : `injected error ${faults.error}`));
    }
  }
  try {
    return await COMMANDS[canon](cmd, db, conn, raw);
  } catch (e) {
    if (e instanceof MongoError) return fail(e.code, e.message, e.extra);
    process.stderr.write(`mongo-test-server: ${name} failed: ${e.stack}\n`);
    return fail(1, String(e.message));
  }
}

/* ---------------------------------------------------------------- 6. connections
 * Bytes are buffered until a whole message (messageLength) has arrived, so
 * messages may be split or pipelined across TCP chunks. Messages on one
 * connection are answered strictly in order (a promise chain), while
 * connections run concurrently.
 */
const sockets = new Set();
async function handleMessage(conn, msg) {
  const requestId = msg.readInt32LE(4), opCode = msg.readInt32LE(12);
  let reply;
  if (opCode === OP_MSG) {
    const { body, moreToCome } = decodeOpMsg(msg);
    const res = await runCommand(conn, body, body.$db, false);
    if (res === DROP) return conn.socket.destroy();
    if (!moreToCome) reply = encodeOpMsg(requestId, res);
  } else if (opCode === OP_QUERY) {
    const { ns, query } = decodeOpQuery(msg);
    if (!ns.endsWith('.$cmd')) {
      reply = encodeOpReply(requestId, { $err: 'OP_QUERY is no longer supported for queries', code: 5739101, ok: 0 }, 2);
    } else {
      const res = await runCommand(conn, query, ns.slice(0, -5), true);
      if (res === DROP) return conn.socket.destroy();
      reply = encodeOpReply(requestId, res);
      const name = Object.keys(query)[0];
      if (Number(res.ok) === 1 && name) stats.opQueryOk[name] = (stats.opQueryOk[name] || 0) + 1;
    }
  } else {
    // OP_COMPRESSED is never negotiated (no "compression" in hello), and the
    // other legacy opcodes are gone from mongod 6.0: hang up like it does.
    log(`conn${conn.id} unsupported opcode ${opCode}${opCode === OP_COMPRESSED ? ' (OP_COMPRESSED)' : ''}`);
    return conn.socket.destroy();
  }
  if (reply && !conn.socket.destroyed) conn.socket.write(reply);
}

function onConnection(socket) {
  const conn = { id: ++connectionCounter, socket };
  sockets.add(socket); stats.totalConnections++;
  socket.setNoDelay(true);
  let chunks = [], have = 0, need = 0, chain = Promise.resolve();
  const flatten = () => { if (chunks.length > 1) chunks = [Buffer.concat(chunks)]; return chunks[0]; };
  socket.on('data', (chunk) => {
    chunks.push(chunk); have += chunk.length;
    for (;;) {
      if (!need) {
        if (have < 4) return;
        need = flatten().readInt32LE(0);
        if (need < 16 || need > MAX_MESSAGE) { log(`conn${conn.id} bad messageLength ${need}`); socket.destroy(); return; }
      }
      if (have < need) return;
      const buf = flatten(), msg = buf.subarray(0, need);
      chunks = have > need ? [buf.subarray(need)] : []; have -= need; need = 0;
      chain = chain.then(() => handleMessage(conn, msg)).catch((e) => {
        process.stderr.write(`mongo-test-server: conn${conn.id}: ${e.stack}\n`); socket.destroy();
      });
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => sockets.delete(socket));
}
const server = net.createServer(onConnection);
let listenPort = opts.port;
function listen(port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, opts.host, () => { server.off('error', reject); listenPort = server.address().port; resolve(); });
  });
}
// refuse=1: close the listener and every client connection.
function refuse() {
  if (!server.listening) return Promise.resolve();
  const closed = new Promise((r) => server.close(r));
  for (const s of sockets) s.destroy();
  return closed;
}

/* ---------------------------------------------------------------- 7. control
 * Tiny HTTP API; parameters come from the query string and/or a JSON body.
 *   /fault?delay_ms=N&error=CODE&errmsg=..&drop=N&refuse=0|1&maxtime=0|1&hold=0|1&cmds=find,count
 *   /clear   /stats[?reset=1]   /seed (body = seed JSON)   /dump?db=&coll=
 */
async function control(req, body) {
  const url = new URL(req.url, 'http://x');
  const p = Object.fromEntries(url.searchParams);
  if (url.pathname !== '/seed' && body.trim()) Object.assign(p, JSON.parse(body));
  const faultView = () => ({ delay_ms: faults.delayMs, error: faults.error, errmsg: faults.errmsg, drop: faults.drop,
    maxtime: faults.maxtime, cmds: [...faults.cmds], hold: hold !== null, refusing: !server.listening });
  switch (url.pathname) {
    case '/fault':
      if (p.delay_ms !== undefined) faults.delayMs = Number(p.delay_ms) || 0;
      if (p.error !== undefined) { faults.error = Number(p.error) || 0; faults.errmsg = p.errmsg ? String(p.errmsg) : ''; }
      if (p.drop !== undefined) faults.drop = Number(p.drop) || 0;
      if (p.maxtime !== undefined) faults.maxtime = String(p.maxtime) !== '0' && p.maxtime !== false;
      if (p.cmds !== undefined) faults.cmds = new Set(String(p.cmds).split(',').filter(Boolean));
      if (p.hold !== undefined) setHold(String(p.hold) !== '0' && p.hold !== false);
      if (p.refuse !== undefined) {
        if (String(p.refuse) !== '0' && p.refuse !== false) await refuse();
        else if (!server.listening) await listen(listenPort); // same port again
      }
      return { ok: true, faults: faultView() };
    case '/clear':
      clearFaults();
      if (!server.listening) await listen(listenPort);
      return { ok: true, faults: faultView() };
    case '/stats': {
      const r = { ok: true, commands: { ...stats.commands }, opQueryOk: { ...stats.opQueryOk }, connections: sockets.size,
        totalConnections: stats.totalConnections, cursors: cursors.size, port: listenPort, faults: faultView() };
      if (p.reset !== undefined && p.reset !== '0') { stats.commands = {}; stats.opQueryOk = {}; stats.totalConnections = 0; }
      return r;
    }
    case '/seed':
      loadSeed(body.trim() ? parseSeed(body) : p.file ? parseSeed(fs.readFileSync(p.file, 'utf8')) : {});
      return { ok: true };
    case '/dump': {
      const c = getColl(p.db, p.coll, false);
      return { ok: true, docs: JSON.parse(EJSON.stringify((c?.docs || []).map((e) => e.raw), { relaxed: false })) };
    }
    default: { const e = new Error(`unknown control path ${url.pathname}`); e.status = 404; throw e; }
  }
}
const controlServer = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    (opts.processes > 1 ? clusterControl : control)(req, body).then((r) => [200, r], (e) => [e.status || 500, { ok: false, error: e.message }])
      .then(([status, r]) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(r) + '\n'); });
  });
});

/* ---------------------------------------------------------------- 8. processes
 * With --processes N > 1 the primary holds no data: it forks the workers,
 * serves the control port and asks the workers over IPC ({id, url, body} ->
 * {id, status, r}).
 */
const workers = [];
function startWorkers() {
  cluster.schedulingPolicy = cluster.SCHED_RR; // the primary deals connections out in turn
  return new Promise((resolve, reject) => {
    let listening = 0;
    cluster.on('listening', (w, addr) => { listenPort = addr.port; if (++listening === opts.processes) resolve(); });
    // A lost worker takes its share of the connections with it: give up loudly.
    cluster.on('exit', (w, code, signal) => {
      const e = new Error(`worker ${w.process.pid} exited (${signal || 'code ' + code})`);
      if (listening < opts.processes) reject(e);
      else { process.stderr.write(`mongo-test-server: ${e.message}\n`); process.exit(1); }
    });
    cluster.on('message', (w, m) => { const done = asks.get(m.id); asks.delete(m.id); if (done) done(m); });
    for (let i = 0; i < opts.processes; i++) workers.push(cluster.fork());
  });
}
let nextAsk = 0;
const asks = new Map(); // id -> resolve
function ask(w, url, body) {
  return new Promise((resolve) => { const id = ++nextAsk; asks.set(id, resolve); w.send({ id, url, body }); })
    .then((m) => { if (m.status !== 200) { const e = new Error(m.r.error); e.status = m.status; throw e; } return m.r; });
}
function serveWorker() {
  process.on('message', (m) => control({ url: m.url }, m.body).then((r) => [200, r], (e) => [e.status || 500, { ok: false, error: e.message }])
    .then(([status, r]) => process.send({ id: m.id, status, r })));
}
async function clusterControl(req, body) {
  const path = new URL(req.url, 'http://x').pathname;
  if (['/fault', '/seed', '/clear'].includes(path)) {
    const e = new Error(`${path} refused: with --processes ${opts.processes} every process has its own data and faults, ` +
      'so a change would reach one of them only (use --processes 1)');
    e.status = 409; throw e;
  }
  if (path !== '/stats') return ask(workers[0], req.url, body); // /dump: the first worker's view
  const all = await Promise.all(workers.map((w) => ask(w, req.url, body)));
  const r = { ...all[0], commands: {}, opQueryOk: {}, connections: 0, totalConnections: 0, cursors: 0, processes: opts.processes };
  for (const s of all) {
    for (const [k, n] of Object.entries(s.commands)) r.commands[k] = (r.commands[k] || 0) + n;
    for (const [k, n] of Object.entries(s.opQueryOk)) r.opQueryOk[k] = (r.opQueryOk[k] || 0) + n;
    for (const k of ['connections', 'totalConnections', 'cursors']) r[k] += s[k];
  }
  return r;
}

async function main() {
  const multi = opts.processes > 1;
  if (multi && cluster.isPrimary) await startWorkers(); // sets listenPort
  else {
    if (opts.seed) loadSeed(parseSeed(fs.readFileSync(opts.seed, 'utf8')));
    await listen(opts.port);
    if (multi) return serveWorker(); // a cluster worker: no control port, no ready line
  }
  await new Promise((resolve, reject) => {
    controlServer.once('error', reject);
    controlServer.listen(opts.controlPort, opts.host, resolve);
  });
  // stdout to a pipe or file is synchronous in Node on Linux: one flushed line.
  process.stdout.write(`mongo-test-server ready port=${listenPort} control=${controlServer.address().port}\n`);
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
if (opts.exitWithParent && cluster.isPrimary) {
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 200).unref();
}
main().catch((e) => { process.stderr.write(`mongo-test-server: ${e.stack}\n`); process.exit(1); });
