#!/usr/bin/env node
'use strict';
/*
 * Self-test of server.js (run through selftest.sh, which builds the libmongoc
 * client).  Starts the server on port 0 with generated seed data, runs the
 * same queries through Node's official driver and through libmongoc
 * (selftest_client), and requires byte-identical BSON results, plus JS-side
 * expectations, fault injection, wire-level framing and concurrency checks.
 *
 *   node selftest.js PATH/TO/selftest_client [first-test-number]
 * Prints TAP; exits nonzero on any failure.
 */
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { MongoClient } = require('mongodb');
const { ObjectId, Long, Int32, Double, EJSON, serialize, deserialize } = require('bson');

const CLIENT = process.argv[2];
let testNo = Number(process.argv[3] || 1) - 1, failures = 0;
function check(pass, desc, diag) {
  testNo++;
  console.log(`${pass ? 'ok' : 'not ok'} ${testNo} - ${desc}`);
  if (!pass) {
    failures++;
    if (diag) console.log(String(diag).split('\n').map((l) => `# ${l}`).join('\n'));
  }
  return pass;
}
const RAWOPTS = { promoteValues: false, bsonRegExp: true };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mongo-selftest-'));
let server;
function finish(code) {
  if (server) server.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(code);
}
setTimeout(() => { console.log('Bail out! self-test timed out'); finish(1); }, 300000).unref();

/* ------------------------------------------------------------ data */
let seed = 42;
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000; };
const pick = (a) => a[Math.floor(rnd() * a.length)];
const WORDS = ['alpha', 'Alpine', 'bravo', 'charlie', 'delta', 'echo', 'ALso', 'foxtrot', 'golf', 'hotel'];
const UNI = ['zebra', 'Äpfel', '中文', '😀smile', 'émile', 'apple', 'Zed', 'ｆｕｌｌ', 'ﬀ'];
const TAGS = ['red', 'green', 'blue', 'cyan'];
const oid = (i, tag = 'aabbccddee') => ObjectId.createFromHexString((0x60000000 + i).toString(16) + tag + i.toString(16).padStart(6, '0'));
function gen(i) {
  const d = {
    _id: oid(i), i: new Int32(i), grp: new Int32(i % 7),
    big: Long.fromBigInt(BigInt(i) * 10000000000n + 7n),
    f: new Double(Math.round(rnd() * 1e6) / 100 - 2000), w: new Double(i % 10),
    s: `${pick(WORDS)} ${pick(WORDS)}`, u: pick(UNI),
    d: new Date(Date.UTC(2020, 0, 1) + i * 3600000),
    tags: TAGS.filter(() => rnd() < 0.4),
    nested: { x: new Int32(Math.floor(rnd() * 100)), y: { z: pick(WORDS) }, arr: [{ k: new Int32(i % 50) }, { k: new Int32(i % 13) }] },
    flag: rnd() < 0.5,
  };
  if (i % 3 === 0) d.opt = null; else if (i % 3 === 1) d.opt = new Int32(i);
  if (i % 4 === 0) d.mixed = `str${i}`; else if (i % 4 === 1) d.mixed = new Int32(i); else if (i % 4 === 2) d.mixed = new Double(i + 0.5);
  if (i % 500 === 0) d.huge = Long.fromBigInt(2n ** 62n + BigInt(i));
  if (i === 7) d.negzero = new Double(-0);
  return d;
}
const N = 3000;
const DOCS = Array.from({ length: N }, (_, i) => gen(i));
const BYTES = new Map(DOCS.map((d) => [d._id.toHexString(), serialize(d)]));
const PLAIN = DOCS.map((d) => deserialize(serialize(d))); // promoted view for JS expectations

/* ------------------------------------------------------------ queries */
const DB = 'selftest', COLL = 'docs';
const inRange = (n, skip = 0, limit = 0) => Math.max(0, Math.min(n - skip, limit || Infinity));
const Q = [
  { name: 'all docs, default batches', op: 'find', filter: {}, expect: () => true },
  { name: '$gt, sort desc, batchSize 50', op: 'find', filter: { i: { $gt: 100 } }, opts: { sort: { i: -1 }, batchSize: 50 }, expect: (d) => d.i > 100 },
  { name: '$in, multi-key sort', op: 'find', filter: { grp: { $in: [1, 3] } }, opts: { sort: { grp: 1, f: -1 } }, expect: (d) => [1, 3].includes(d.grp) },
  { name: '$regex with options', op: 'find', filter: { s: { $regex: '^al', $options: 'i' } }, expect: (d) => /^al/i.test(d.s) },
  { name: 'BSON regex literal', op: 'find', filter: { s: /o$/ }, opts: { sort: { s: 1 } }, expect: (d) => /o$/.test(d.s) },
  { name: 'nested field + inclusion projection', op: 'find', filter: { 'nested.x': { $gte: 50 }, flag: true }, opts: { projection: { i: 1, 'nested.y.z': 1, _id: 0 } }, expect: (d) => d.nested.x >= 50 && d.flag },
  { name: 'exclusion projection, sort date, skip+limit', op: 'find', filter: {}, opts: { projection: { tags: 0, nested: 0 }, sort: { d: -1 }, skip: 10, limit: 200 }, expect: () => true, skip: 10, limit: 200 },
  { name: 'array contains, unicode sort', op: 'find', filter: { tags: 'red' }, opts: { sort: { u: 1, i: 1 }, batchSize: 7 }, expect: (d) => d.tags.includes('red') },
  { name: 'array of subdocs path', op: 'find', filter: { 'nested.arr.k': { $lt: 5 } }, expect: (d) => d.nested.arr.some((a) => a.k < 5) },
  { name: 'null matches missing, mixed-type sort', op: 'find', filter: { opt: null }, opts: { sort: { mixed: 1, i: -1 } }, expect: (d) => d.opt == null },
  { name: 'int64 filter', op: 'find', filter: { big: { $gte: Long.fromNumber(25000000000007) } }, expect: (d) => d.big >= 25000000000007 },
  { name: 'date range', op: 'find', filter: { d: { $gte: new Date(Date.UTC(2020, 1, 1)), $lt: new Date(Date.UTC(2020, 2, 1)) } }, expect: (d) => d.d >= Date.UTC(2020, 1, 1) && d.d < Date.UTC(2020, 2, 1) },
  { name: '_id equality (the _id index)', op: 'find', filter: { _id: oid(7) }, expect: (d) => d.i === 7 },
  { name: '_id equality and a condition it fails', op: 'find', filter: { _id: oid(7), grp: 6 }, expect: () => false },
  { name: '_id equality, no such document', op: 'find', filter: { _id: oid(9999) }, expect: () => false },
  { name: '_id equality, count', op: 'count', filter: { _id: oid(2999), flag: DOCS[2999].flag }, expect: (d) => d.i === 2999 },
  { name: '_id $in', op: 'find', filter: { _id: { $in: [oid(5), oid(500), oid(2999), oid(9999)] } }, expect: (d) => [5, 500, 2999].includes(d.i) },
  { name: '$or, sort double desc, limit 333 batchSize 100', op: 'find', filter: { $or: [{ grp: 0 }, { w: { $gt: 7 } }] }, opts: { sort: { w: -1, _id: 1 }, limit: 333, batchSize: 100 }, expect: (d) => d.grp === 0 || d.w > 7, limit: 333 },
  { name: 'sort by array field', op: 'find', filter: {}, opts: { sort: { tags: 1, i: 1 }, limit: 150 }, expect: () => true, limit: 150 },
  { name: 'sort by sparse int64 > 2^53', op: 'find', filter: { huge: { $exists: true } }, opts: { sort: { huge: -1 } }, expect: (d) => d.huge !== undefined },
  { name: 'singleBatch + limit', op: 'find', filter: { grp: 2 }, opts: { limit: 5, singleBatch: true }, expect: (d) => d.grp === 2, limit: 5 },
  { name: 'limit 0 = no limit', op: 'find', filter: { grp: 2 }, opts: { limit: 0 }, expect: (d) => d.grp === 2 },
  { name: '$slice projection', op: 'find', filter: { i: { $lt: 40 } }, opts: { projection: { i: 1, tags: { $slice: 1 } } }, expect: (d) => d.i < 40 },
  { name: '$type string', op: 'find', filter: { mixed: { $type: 'string' } }, expect: (d) => typeof d.mixed === 'string' },
  { name: 'skip past end', op: 'find', filter: {}, opts: { skip: 5000 }, expect: () => false },
  { name: '$and/$exists/$ne/$nin', op: 'find', filter: { $and: [{ opt: { $exists: true } }, { 'nested.y.z': { $ne: 'echo' } }, { grp: { $nin: [0, 6] } }] }, opts: { sort: { 'nested.y.z': 1, i: 1 } }, expect: (d) => 'opt' in d && d.nested.y.z !== 'echo' && ![0, 6].includes(d.grp) },
  { name: 'countDocuments', op: 'count', filter: { grp: { $gte: 4 } }, expect: (d) => d.grp >= 4 },
  { name: 'countDocuments skip+limit', op: 'count', filter: { flag: true }, opts: { skip: 10, limit: 100 }, expect: (d) => d.flag, skip: 10, limit: 100 },
  { name: 'countDocuments empty filter', op: 'count', filter: {}, expect: () => true },
  { name: 'aggregate $match/$group/$sort', op: 'aggregate', pipeline: [{ $match: { grp: { $gte: 3 } } }, { $group: { _id: '$grp', n: { $sum: 1 }, tot: { $sum: '$i' } } }, { $sort: { _id: 1 } }] },
  { name: 'aggregate $sort/$skip/$limit/$project batchSize 20', op: 'aggregate', pipeline: [{ $sort: { f: -1 } }, { $skip: 5 }, { $limit: 300 }, { $project: { i: 1, f: 1, s: 1 } }], opts: { batchSize: 20 } },
  { name: 'aggregate $count', op: 'aggregate', pipeline: [{ $match: { flag: true } }, { $count: 'n' }] },
  { name: 'aggregate $unwind/$group', op: 'aggregate', pipeline: [{ $unwind: '$tags' }, { $group: { _id: '$tags', n: { $sum: 1 } } }, { $sort: { n: -1, _id: 1 } }] },
  { name: 'aggregate computed field', op: 'aggregate', pipeline: [{ $project: { i: 1, dbl: { $multiply: ['$i', 2] } } }, { $limit: 10 }] },
  { name: 'count command', op: 'command', command: { count: COLL, query: { grp: 1 }, skip: 3, limit: 50 } },
  { name: 'distinct command', op: 'command', command: { distinct: COLL, key: 'nested.y.z', query: { grp: 1 } } },
  { name: 'unknown command', op: 'command', command: { frobnicate: 1 } },
  { name: 'unknown query operator', op: 'find', filter: { i: { $bogus: 1 } } },
  { name: 'find on missing collection', op: 'find', coll: 'nope', filter: {}, expect: () => false },
];

/* ------------------------------------------------------------ helpers */
async function startServer(seedFile) {
  server = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--port', '0', '--seed', seedFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const line = await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]); });
    server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  const m = /^mongo-test-server ready port=(\d+) control=(\d+)$/.exec(line);
  if (!m) throw new Error(`bad ready line: ${line}`);
  return { line, port: Number(m[1]), control: Number(m[2]) };
}
let CONTROL;
async function ctl(p, body) {
  const r = await fetch(`http://127.0.0.1:${CONTROL}${p}`, body ? { method: 'POST', body } : {});
  return r.json();
}
// heartbeat: the client waits after the queries for one more server heartbeat.
function runC(uri, queries, { heartbeat = false } = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn(CLIENT, [...(heartbeat ? ['--heartbeat'] : []), uri], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks = [];
    c.stdout.on('data', (d) => chunks.push(d));
    c.on('error', reject);
    c.on('close', (code) => {
      if (code) return reject(new Error(`selftest_client exited ${code}`));
      const results = []; let cur = [];
      for (const l of Buffer.concat(chunks).toString('utf8').split('\n')) {
        if (l === 'END') { results.push(cur); cur = []; } else if (l) cur.push(l);
      }
      resolve(results);
    });
    const line = (q) => ({ op: q.op, db: DB, coll: q.coll || COLL, filter: q.filter, opts: q.opts || {}, pipeline: q.pipeline, command: q.command });
    c.stdin.end(queries.map((q) => EJSON.stringify(line(q), { relaxed: false })).join('\n') + '\n');
  });
}
// C output lines -> comparable items: BSON bytes for docs, strings otherwise.
function fromC(lines) {
  return lines.map((l) => {
    if (l.startsWith('COUNT ')) return `COUNT ${l.slice(6)}`;
    const e = /^ERROR \d+ (\d+) (.*)$/.exec(l);
    if (e) return `ERROR ${e[1]} ${e[2]}`;
    return serialize(EJSON.parse(l, { relaxed: false }));
  });
}
async function viaNode(db, q) {
  const coll = db.collection(q.coll || COLL);
  try {
    if (q.op === 'find') return (await coll.find(q.filter, { ...q.opts, ...RAWOPTS }).toArray()).map((d) => serialize(d));
    if (q.op === 'aggregate') return (await coll.aggregate(q.pipeline, { ...q.opts, ...RAWOPTS }).toArray()).map((d) => serialize(d));
    if (q.op === 'count') return [`COUNT ${await coll.countDocuments(q.filter, q.opts)}`];
    if (q.op === 'command') return [serialize(await db.command(q.command, RAWOPTS))];
  } catch (e) {
    if (e.code === undefined) throw e;
    return [`ERROR ${e.code} ${e.errmsg ?? e.message}`];
  }
  throw new Error(`bad op ${q.op}`);
}
const show = (x) => (Buffer.isBuffer(x) ? EJSON.stringify(deserialize(x, RAWOPTS), { relaxed: false }) : x);
function sameItems(a, b) {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const eq = Buffer.isBuffer(a[i]) && Buffer.isBuffer(b[i]) ? a[i].equals(b[i]) : a[i] === b[i];
    if (!eq) return `item ${i} differs:\n  node:     ${show(a[i])}\n  libmongoc: ${show(b[i])}`;
  }
  return null;
}
const statsCount = async (name) => ((await ctl('/stats')).commands[name] || 0);

/* ------------------------------------------------------------ wire level */
function opMsg(reqId, doc, { checksum = false, seq = null } = {}) {
  const parts = [Buffer.from([0]), serialize(doc)];
  if (seq) {
    const docs = Buffer.concat(seq.docs.map((d) => serialize(d)));
    const id = Buffer.from(seq.id + '\0');
    const sz = Buffer.alloc(4); sz.writeInt32LE(4 + id.length + docs.length);
    parts.push(Buffer.from([1]), sz, id, docs);
  }
  const flags = Buffer.alloc(4); flags.writeUInt32LE(checksum ? 1 : 0);
  const body = Buffer.concat([flags, ...parts, checksum ? Buffer.alloc(4) : Buffer.alloc(0)]);
  const h = Buffer.alloc(16);
  h.writeInt32LE(16 + body.length, 0); h.writeInt32LE(reqId, 4); h.writeInt32LE(2013, 12);
  return Buffer.concat([h, body]);
}
function opQuery(reqId, ns, doc) {
  const nsb = Buffer.from(ns + '\0'), pre = Buffer.alloc(4), skipRet = Buffer.alloc(8);
  skipRet.writeInt32LE(-1, 4);
  const body = Buffer.concat([pre, nsb, skipRet, serialize(doc)]);
  const h = Buffer.alloc(16);
  h.writeInt32LE(16 + body.length, 0); h.writeInt32LE(reqId, 4); h.writeInt32LE(2004, 12);
  return Buffer.concat([h, body]);
}
// Connects, writes the given chunks (with pauses so they arrive separately),
// and collects `want` replies as {responseTo, opCode, doc}.
function rawExchange(port, chunks, want) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1'); s.setNoDelay(true);
    let buf = Buffer.alloc(0); const replies = [];
    s.on('error', reject);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= buf.readInt32LE(0)) {
        const len = buf.readInt32LE(0), m = buf.subarray(0, len); buf = buf.subarray(len);
        const op = m.readInt32LE(12), docAt = op === 1 ? 36 : 21;
        replies.push({ responseTo: m.readInt32LE(8), opCode: op, doc: deserialize(m.subarray(docAt)) });
        if (replies.length === want) { s.destroy(); resolve(replies); }
      }
    });
    s.on('connect', async () => {
      for (const c of chunks) { s.write(c); await new Promise((r) => setTimeout(r, 2)); }
    });
  });
}

/* ------------------------------------------------------------ main */
async function main() {
  const seedFile = path.join(tmp, 'seed.json');
  fs.writeFileSync(seedFile, EJSON.stringify({ [DB]: { [COLL]: DOCS } }, { relaxed: false }));
  const srv = await startServer(seedFile);
  CONTROL = srv.control;
  check(true, `server ready: ${srv.line}`);
  const uri = `mongodb://127.0.0.1:${srv.port}/?serverSelectionTimeoutMS=5000`;
  const client = await new MongoClient(uri).connect();
  const db = client.db(DB);

  // --- the same queries through both drivers
  const g0 = await statsCount('getMore');
  const nodeRes = [];
  for (const q of Q) nodeRes.push(await viaNode(db, q));
  const g1 = await statsCount('getMore');
  const h1 = (await ctl('/stats')).opQueryOk.hello || 0;
  // The client exits 3 unless a heartbeat after its queries succeeded.
  const cRes = (await runC(`${uri}&heartbeatFrequencyMS=500`, Q, { heartbeat: true })).map(fromC);
  const g2 = await statsCount('getMore');
  const hs = ((await ctl('/stats')).opQueryOk.hello || 0) - h1;
  check(cRes.length === Q.length, 'libmongoc answered every query', `${cRes.length} of ${Q.length}`);
  Q.forEach((q, k) => {
    const n = nodeRes[k], c = cRes[k] || [];
    const diff = sameItems(n, c);
    check(!diff, `${q.op} ${q.name}: node == libmongoc (${n.length} items)`, diff);
    if (!q.expect) return;
    const want = inRange(PLAIN.filter(q.expect).length, q.skip, q.limit);
    const got = q.op === 'count' ? Number(String(n[0]).slice(6)) : n.length;
    check(got === want, `${q.name}: JS expectation ${want}`, `got ${got}`);
    if (q.op === 'find' && !q.opts?.projection && n.length) {
      const bad = n.find((b) => !b.equals(BYTES.get(deserialize(b)._id.toHexString())));
      check(!bad, `${q.name}: documents byte-identical to the seed`, bad && show(bad));
    }
  });
  check(g1 - g0 >= 10 && g2 - g1 === g1 - g0, `getMore used by both (${g1 - g0} node, ${g2 - g1} libmongoc)`);
  const err = nodeRes[Q.findIndex((q) => q.name === 'unknown command')][0];
  check(err === "ERROR 59 no such command: 'frobnicate'", 'unknown command -> 59 CommandNotFound', err);
  const bad = nodeRes[Q.findIndex((q) => q.name === 'unknown query operator')][0];
  check(/^ERROR 2 /.test(bad), 'unknown operator -> 2 BadValue', bad);
  // libmongoc 1.23 passes a negative "limit" option through unchanged; mongod refuses it.
  const [neg] = await runC(uri, [{ op: 'find', filter: {}, opts: { limit: -5 } }]);
  check(neg[0] === 'ERROR 17 2 Limit value must be non-negative, but received: -5', 'find limit:-5 from libmongoc -> BadValue like mongod', neg[0]);

  // sort order spot checks against JS
  const sorted = nodeRes[1].map((b) => deserialize(b).i);
  check(sorted.every((v, j) => !j || sorted[j - 1] > v), 'sort {i:-1} is descending');
  const mixed = nodeRes[Q.findIndex((q) => q.name.startsWith('null matches'))].map((b) => deserialize(b).mixed);
  const typeRank = (v) => (v === undefined ? 0 : typeof v === 'number' ? 1 : 2);
  check(mixed.every((v, j) => !j || typeRank(mixed[j - 1]) <= typeRank(v)), 'mixed-type sort: missing < numbers < strings');
  const proj = deserialize(nodeRes[5][0], RAWOPTS);
  check(JSON.stringify(Object.keys(proj)) === '["i","nested"]' && JSON.stringify(Object.keys(proj.nested)) === '["y"]' && proj.i._bsontype === 'Int32',
    'inclusion projection keeps document field order and types', EJSON.stringify(proj));
  check(hs >= 1, `libmongoc heartbeats: hello over OP_QUERY answered (${hs})`);

  // --- 100,000 documents stream in several batches
  const big = Array.from({ length: 100000 }, (_, i) => ({ _id: oid(i, 'bbbbbbbbbb'), i: new Int32(i), pad: 'x'.repeat(250), l: Long.fromNumber(i * 3), f: new Double(i / 4) }));
  await db.collection('big').insertMany(big, { ordered: true });
  const bq = { op: 'find', coll: 'big', filter: {}, opts: { sort: { i: 1 } } };
  const b0 = await statsCount('getMore');
  const bn = await viaNode(db, bq);
  const b1 = await statsCount('getMore');
  const bc = fromC((await runC(uri, [bq]))[0]);
  const b2 = await statsCount('getMore');
  check(bn.length === 100000 && !sameItems(bn, bc), '100,000 docs identical via node and libmongoc', sameItems(bn, bc));
  check(bn.every((b, i) => b.equals(serialize(big[i]))), '100,000 docs byte-identical to what was inserted');
  check(b1 - b0 >= 2 && b2 - b1 >= 2, `100,000 docs took several getMores (node ${b1 - b0}, libmongoc ${b2 - b1})`);
  const del = await db.collection('big').deleteMany({ i: { $gte: 50000 } });
  check(del.deletedCount === 50000 && (await db.collection('big').countDocuments()) === 50000, 'deleteMany + countDocuments');
  check((await db.collection('big').estimatedDocumentCount()) === 50000, 'estimatedDocumentCount (count command)');
  const colls = (await db.listCollections().toArray()).map((c) => c.name).sort();
  check(JSON.stringify(colls) === '["big","docs"]', 'listCollections', colls);
  const dbs = (await client.db('admin').admin().listDatabases()).databases.map((d) => d.name);
  check(dbs.includes(DB), 'listDatabases', dbs);
  check(await db.collection('big').drop(), 'drop');

  // --- wire level: OP_QUERY handshake, pipelining, split messages, checksum, kind-1
  const [hello] = await rawExchange(srv.port, [opQuery(7, 'admin.$cmd', { isMaster: 1, helloOk: true })], 1);
  check(hello.opCode === 1 && hello.responseTo === 7 && hello.doc.ismaster === true && hello.doc.maxWireVersion === 17 &&
    !('topologyVersion' in hello.doc) && hello.doc.logicalSessionTimeoutMinutes === 30, 'OP_QUERY isMaster -> OP_REPLY', JSON.stringify(hello.doc));
  const [qf] = await rawExchange(srv.port, [opQuery(8, 'selftest.$cmd', { find: COLL })], 1);
  check(qf.doc.code === 352, 'OP_QUERY find refused like mongod 6.0 (352)', JSON.stringify(qf.doc));
  const pipelined = Buffer.concat([1, 2, 3].map((r) => opMsg(100 + r, { find: COLL, filter: { grp: r }, batchSize: 1000, $db: DB })));
  const pr = await rawExchange(srv.port, [pipelined], 3);
  check(pr.map((r) => r.responseTo).join() === '101,102,103' &&
    pr.every((r, j) => r.doc.cursor.firstBatch.length === PLAIN.filter((d) => d.grp === j + 1).length),
  'three pipelined OP_MSGs in one write answered in order');
  const one = opMsg(200, { ping: 1, $db: 'admin' });
  const split = [...one].map((b) => Buffer.from([b])); // one byte per write
  const sr = await rawExchange(srv.port, [...split.slice(0, 10), Buffer.concat([...split.slice(10), opMsg(201, { ping: 1, $db: 'admin' }).subarray(0, 7)]),
    opMsg(201, { ping: 1, $db: 'admin' }).subarray(7)], 2);
  check(sr.map((r) => r.responseTo).join() === '200,201' && sr.every((r) => r.doc.ok === 1), 'messages split across TCP chunks');
  const [ck] = await rawExchange(srv.port, [opMsg(300, { ping: 1, $db: 'admin' }, { checksum: true })], 1);
  check(ck.doc.ok === 1, 'OP_MSG with checksum flag tolerated');
  const [ins] = await rawExchange(srv.port, [opMsg(301, { insert: 'seq', $db: DB }, { seq: { id: 'documents', docs: [{ a: 1 }, { a: 2 }, { a: 3 }] } })], 1);
  check(ins.doc.n === 3 && (await db.collection('seq').countDocuments()) === 3, 'OP_MSG kind-1 document sequence insert');
  const dup = await db.collection('seq').insertOne({ _id: (await db.collection('seq').findOne())._id }).catch((e) => e);
  check(dup.code === 11000, 'duplicate _id -> E11000', dup.message);
  // {_id: {$in}} comes from the _id index, as mongod's index scan: each document once, ascending _id
  await db.collection('ord').insertMany([{ _id: 3 }, { _id: 'b' }, { _id: 1 }, { _id: 2 }]);
  const ord = (await db.collection('ord').find({ _id: { $in: [2, 'b', 3, 1, 9, 1] } }).toArray()).map((d) => d._id);
  check(JSON.stringify(ord) === '[1,2,3,"b"]', '_id $in: each document once, in _id order', JSON.stringify(ord));
  const ordf = (await db.collection('ord').find({ _id: { $in: [3, 1, 2] }, x: { $exists: false } }).toArray()).map((d) => d._id);
  check(JSON.stringify(ordf) === '[1,2,3]', '_id $in and another condition: the index, then the whole filter', JSON.stringify(ordf));

  // --- concurrency: 64 connections x 8 pipelined finds
  const conns = Array.from({ length: 64 }, (_, c) => rawExchange(srv.port,
    [Buffer.concat(Array.from({ length: 8 }, (_, k) => opMsg(c * 100 + k, { find: COLL, filter: { grp: (c + k) % 7 }, batchSize: 10000, $db: DB })))], 8));
  const all = await Promise.all(conns);
  const okAll = all.every((rs, c) => rs.every((r, k) => r.responseTo === c * 100 + k &&
    r.doc.cursor.firstBatch.length === PLAIN.filter((d) => d.grp === (c + k) % 7).length));
  check(okAll, '64 concurrent connections x 8 pipelined finds');

  // --- faults
  const docs = db.collection(COLL);
  let t = Date.now();
  await ctl('/fault?delay_ms=300');
  await docs.findOne({ i: 1 });
  check(Date.now() - t >= 290, `delay_ms=300 delays find (${Date.now() - t} ms)`);
  t = Date.now();
  const mt = await docs.find({}).maxTimeMS(100).toArray().catch((e) => e);
  const el = Date.now() - t;
  check(mt.code === 50 && mt.codeName === 'MaxTimeMSExpired' && el >= 100 && el < 290, `maxTimeMS 100 < delay -> 50 MaxTimeMSExpired after ${el} ms`, mt.message);
  await ctl('/fault', JSON.stringify({ delay_ms: 0, error: 8000, errmsg: 'injected boom' }));
  const e8 = await docs.countDocuments({}).catch((e) => e);
  check(e8.code === 8000 && e8.message === 'injected boom', 'error=8000 injected into aggregate', e8.message);
  const cErr = await runC(uri, [{ op: 'find', filter: {} }]);
  check(cErr[0][0] === 'ERROR 17 8000 injected boom', 'libmongoc sees injected error', cErr[0][0]);
  await ctl('/clear');
  check((await docs.countDocuments({})) === N, '/clear removes faults');

  const noRetry = await new MongoClient(`${uri}&retryReads=false`).connect();
  await noRetry.db(DB).command({ ping: 1 });
  await ctl('/fault?drop=1');
  const dr = await noRetry.db(DB).collection(COLL).findOne({}).catch((e) => e);
  check(dr && /MongoNetworkError|MongoServerSelectionError/.test(dr.name), 'drop=1 drops the connection on the next find', dr && dr.name);
  check((await noRetry.db(DB).collection(COLL).findOne({ i: 2 })).i === 2, 'drop is one-shot');

  const st = await ctl('/stats');
  check(st.connections >= 2 && st.commands.find > 0, `/stats: ${st.connections} connections open`);
  await ctl('/fault?refuse=1');
  const refused = await new Promise((r) => net.connect(srv.port, '127.0.0.1').on('connect', function () { this.destroy(); r('connected'); }).on('error', (e) => r(e.code)));
  check(refused === 'ECONNREFUSED', 'refuse=1 -> connection refused', refused);
  check((await ctl('/stats')).connections === 0, 'refuse=1 closed all client connections');
  await ctl('/fault?refuse=0');
  check((await noRetry.db(DB).collection(COLL).findOne({ i: 3 }).catch(() => noRetry.db(DB).collection(COLL).findOne({ i: 3 }))).i === 3,
    'refuse=0 listens again on the same port; driver recovers');

  await ctl('/seed', EJSON.stringify({ other: { c: [{ _id: 1, v: new Double(1.5) }] } }, { relaxed: false }));
  const reseeded = await client.db('other').collection('c').find({}, RAWOPTS).toArray();
  check(reseeded.length === 1 && reseeded[0].v._bsontype === 'Double' && (await docs.countDocuments({})) === 0, '/seed replaces data');
  const byNumber = await client.db('other').collection('c').find({ _id: new Double(1) }).toArray();
  check(byNumber.length === 1 && byNumber[0].v === 1.5, '_id equality compares numbers by value (1.0 finds _id 1)', JSON.stringify(byNumber));

  await noRetry.close();
  await client.close();
  console.log(`1..${testNo}`);
  finish(failures ? 1 : 0);
}
main().catch((e) => { console.log(`Bail out! ${e.stack.split('\n').join(' | ')}`); finish(1); });
