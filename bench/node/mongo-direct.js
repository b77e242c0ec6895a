'use strict';
/*
 * The test MongoDB server's own ceiling: PROCS processes (cluster workers),
 * each with CONC concurrent loops of the same query as a benchmark scenario,
 * through the official driver, for DURATION seconds. No HTTP in between.
 *
 *   MONGO_URI=... MODE=get|list IDS=file BENCH_GROUPS=20 DURATION=5 PROCS=2 CONC=32 node mongo-direct.js
 *
 * Prints one line: BENCH_JSON {"requests":N,"duration_us":D,"errors":E}
 */
const cluster = require('node:cluster');
const fs = require('node:fs');

const env = process.env;
const SECONDS = Number(env.DURATION || 5), PROCS = Number(env.PROCS || 2), CONC = Number(env.CONC || 32);

if (cluster.isPrimary) {
  let requests = 0, errors = 0, done = 0, durationUs = 0;
  for (let i = 0; i < PROCS; i++) {
    cluster.fork().on('message', (m) => {
      requests += m.requests; errors += m.errors; durationUs = Math.max(durationUs, m.duration_us);
      if (++done === PROCS) {
        process.stdout.write(`BENCH_JSON ${JSON.stringify({ requests, duration_us: durationUs, errors })}\n`);
        process.exit(0);
      }
    });
  }
  setTimeout(() => { process.stderr.write('mongo-direct: timed out\n'); process.exit(1); }, (SECONDS + 30) * 1000).unref();
} else {
  const { MongoClient, ObjectId } = require('mongodb');
  const client = new MongoClient(env.MONGO_URI);
  const coll = client.db(env.DB || 'bench').collection(env.COLL || 'items');
  const ids = env.MODE === 'get' ? fs.readFileSync(env.IDS, 'utf8').split('\n').filter(Boolean).map((h) => new ObjectId(h)) : [];
  const groups = Number(env.BENCH_GROUPS || 20);
  let requests = 0, errors = 0, i = Math.floor(Math.random() * 1000);
  const one = env.MODE === 'get'
    ? () => coll.findOne({ _id: ids[i++ % ids.length] })
    : () => coll.find({ group: i++ % groups }).limit(20).toArray();
  (async () => {
    await client.connect();
    await one(); // warm the pool
    const start = Date.now(), end = start + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONC }, async () => {
      while (Date.now() < end) {
        try { await one(); requests++; } catch { errors++; }
      }
    }));
    process.send({ requests, errors, duration_us: (Date.now() - start) * 1000 });
    await client.close();
    process.exit(0);
  })();
}
