'use strict';
/*
 * Shared by the Node.js peers of clusterd (express.js, http.js):
 *  - settings from the environment: PORT, WORKERS, MONGO_URI (optional), DB;
 *  - primary(): the `cluster` primary, one worker per slot, a dead worker
 *    re-forked at once in its slot (like clusterd, without back-off);
 *  - the dummy body, byte for byte clusterd's;
 *  - docJson(): a document as libbson's relaxed Extended JSON
 *    ("{ "k" : v }" with its spaces), so the readmongo answers match
 *    clusterd's byte for byte on the benchmark's seed;
 *  - the two readmongo queries, with the official driver.
 */
const cluster = require('node:cluster');

const PORT = Number(process.env.PORT || 8080);
const HOST = process.env.HOST || '127.0.0.1';
const WORKERS = Number(process.env.WORKERS || 2);
const MONGO_URI = process.env.MONGO_URI || '';
const DB = process.env.DB || 'bench';

function primary() {
  const slotOf = new Map();
  const fork = (slot) => slotOf.set(cluster.fork({ SLOT: String(slot) }).id, slot);
  for (let s = 0; s < WORKERS; s++) fork(s);
  cluster.on('exit', (w) => {
    const slot = slotOf.get(w.id);
    slotOf.delete(w.id);
    if (!stopping) fork(slot);
  });
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const dummyBody = () => Buffer.from(JSON.stringify({
  service: 'dummy', ok: true, pid: process.pid, slot: Number(process.env.SLOT || 0), generation: 1,
}));

/* libbson's bson_as_relaxed_extended_json() layout for the types of the seed;
 * others fall back to the driver's EJSON (same meaning, maybe other spacing). */
let EJSON, ObjectId;
const pad = (n, w = 2) => String(n).padStart(w, '0');
function isoDate(d) {
  const ms = d.getUTCMilliseconds();
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `${ms ? '.' + pad(ms, 3) : ''}Z`;
}
function docJson(v) {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string': return JSON.stringify(v);
    case 'number': return Number.isFinite(v) ? String(v) : EJSON.stringify(v, { relaxed: true });
    case 'boolean': return v ? 'true' : 'false';
    default: break;
  }
  if (Array.isArray(v)) return v.length ? `[ ${v.map(docJson).join(', ')} ]` : '[ ]';
  if (v instanceof Date) return `{ "$date" : "${isoDate(v)}" }`;
  if (v._bsontype === 'ObjectId') return `{ "$oid" : "${v.toHexString()}" }`;
  if (v._bsontype) return EJSON.stringify(v, { relaxed: true });
  const keys = Object.keys(v);
  return keys.length ? `{ ${keys.map((k) => `${JSON.stringify(k)} : ${docJson(v[k])}`).join(', ')} }` : '{ }';
}

/* The readmongo endpoints: list (filter, limit) and get by id. Each answers
 * [status, body]. One MongoClient per worker (driver pool, default size). */
let client = null;
function mongo() {
  if (!client) {
    const m = require('mongodb');
    ({ EJSON, ObjectId } = m.BSON);
    client = new m.MongoClient(MONGO_URI);
  }
  return client.db(DB);
}
const err = (status, code, message) => [status, JSON.stringify({ error: { status, code, message } })];
async function mongoList(coll, filterText, limitText) {
  let filter = {};
  try { if (filterText) filter = EJSON.parse(filterText, { relaxed: false }); } catch (e) { return err(400, 'bad_filter', e.message); }
  const limit = limitText ? Number(limitText) : 100;
  if (!Number.isInteger(limit) || limit < 0) return err(400, 'bad_limit', 'limit');
  const docs = await mongo().collection(coll).find(filter).limit(limit).toArray();
  return [200, `{"documents":[${docs.map(docJson).join(',')}]}`];
}
async function mongoGet(coll, id) {
  const db = mongo();
  const _id = /^[0-9a-f]{24}$/i.test(id) ? new ObjectId(id) : id;
  const doc = await db.collection(coll).findOne({ _id });
  const shown = typeof _id === 'string' ? JSON.stringify(_id) : `ObjectId("${id}")`;
  return doc ? [200, docJson(doc)] : err(404, 'not_found', `no document with _id ${shown} in collection "${coll}"`);
}

module.exports = { cluster, PORT, HOST, WORKERS, MONGO_URI, primary, dummyBody, mongo, mongoList, mongoGet, err };
