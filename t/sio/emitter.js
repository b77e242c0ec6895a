'use strict';
/*
 * One broadcast with the official @socket.io/redis-emitter, then exit.
 *
 *   node t/sio/emitter.js --redis redis://127.0.0.1:PORT [--key socket.io] [--nsp /]
 *        [--room R]... [--except R]... --event E [--data JSON | --args JSON-array]
 *        [--bin BASE64]
 *
 * --data D sends the one argument D; --args [a,b] sends several; neither: no
 * argument. --bin adds a binary argument after them. {"$bin":"<base64>"}
 * anywhere in --data/--args is sent as binary too. --room and --except repeat.
 * Prints {"ok":true,"channel":"socket.io#/#R#","receivers":N} (N: how many
 * Redis subscriptions got it, as PUBLISH answers) and exits 0; on an error
 * {"ok":false,"error":"..."} and exits 1. The whole run is bounded (10 s).
 */
const { createClient } = require('redis');
const { Emitter } = require('@socket.io/redis-emitter');

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

function parse(argv) {
  const o = { redis: 'redis://127.0.0.1:6379', key: 'socket.io', nsp: '/', room: [], except: [] };
  const single = new Set(['redis', 'key', 'nsp', 'event', 'data', 'args', 'bin']);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z]+)$/.exec(argv[i]);
    if (!m || !(single.has(m[1]) || m[1] === 'room' || m[1] === 'except')) throw new Error(`unknown argument ${argv[i]}`);
    if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
    const v = argv[++i];
    if (m[1] === 'room' || m[1] === 'except') o[m[1]].push(v);
    else o[m[1]] = v;
  }
  if (typeof o.event !== 'string') throw new Error('--event is required');
  if (o.data !== undefined && o.args !== undefined) throw new Error('give --data or --args, not both');
  let args = [];
  if (o.data !== undefined) args = [JSON.parse(o.data)];
  if (o.args !== undefined) {
    args = JSON.parse(o.args);
    if (!Array.isArray(args)) throw new Error('--args must be a JSON array');
  }
  args = toWire(args);
  if (o.bin !== undefined) args.push(Buffer.from(o.bin, 'base64'));
  o.argv = args;
  return o;
}

function finish(obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n');
  process.exit(code);
}

async function main() {
  const o = parse(process.argv.slice(2));
  const client = createClient({
    url: o.redis,
    socket: { connectTimeout: 5000, reconnectStrategy: false },
  });
  client.on('error', () => {}); /* the rejected promise below reports it */
  await client.connect();
  let published = null;
  let channel = null;
  /* The emitter only calls publish(); keep its promise to learn the count. */
  const shim = {
    publish(ch, msg) {
      channel = ch;
      published = client.publish(ch, msg);
      return published;
    },
  };
  let op = new Emitter(shim, { key: o.key }).of(o.nsp);
  for (const r of o.room) op = op.to(r);
  for (const r of o.except) op = op.except(r);
  op.emit(o.event, ...o.argv);
  const receivers = await published;
  await client.quit();
  finish({ ok: true, channel, receivers }, 0);
}

setTimeout(() => finish({ ok: false, error: 'timed out after 10 s' }, 1), 10000).unref();
main().catch((e) => finish({ ok: false, error: e && e.message ? e.message : String(e) }, 1));
