#!/usr/bin/env node
'use strict';
/*
 * query.js: one find through the official Node.js driver, the reference
 * that t/readmongo.t holds readmongo's answers against.
 *
 *   node query.js URI DB COLL FILTER PROJECTION SORT LIMIT SKIP
 *
 * FILTER, PROJECTION and SORT are Extended JSON, "" for none; LIMIT and
 * SKIP are integers, "" for none. Prints the documents as one relaxed
 * Extended JSON array, in the driver's order.
 */
const { MongoClient, BSON } = require('mongodb');

const { EJSON } = BSON;

async function main() {
  const [uri, db, coll, filter, projection, sort, limit, skip] = process.argv.slice(2);
  const parse = (s) => (s ? EJSON.parse(s, { relaxed: false }) : undefined);
  const opts = {};
  if (projection) opts.projection = parse(projection);
  if (sort) opts.sort = parse(sort);
  if (limit) opts.limit = Number(limit);
  if (skip) opts.skip = Number(skip);
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10000 });
  try {
    const docs = await client.db(db).collection(coll).find(parse(filter) || {}, opts).toArray();
    process.stdout.write(EJSON.stringify(docs, { relaxed: true }) + '\n');
  } finally {
    await client.close();
  }
}

main().catch((e) => {
  process.stderr.write(`query.js: ${e.stack}\n`);
  process.exit(1);
});
