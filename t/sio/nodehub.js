'use strict';
/*
 * One Node.js socket.io 4.8 server (no cluster) with the official
 * @socket.io/redis-adapter and the hub of hubcore.js: for the test where it and
 * clusterd share rooms through Redis.
 *
 *   node t/sio/nodehub.js --port N --redis redis://127.0.0.1:PORT [--key socket.io]
 *        [--host 127.0.0.1] [--token T] [--namespaces /,/admin] [--lifetime 600]
 *
 * --port 0 takes a free port. Prints {"ready":true,"port":N,"pid":P} once it
 * listens and both Redis connections are up; {"ready":false,"error":"..."} and
 * exit 1 when it cannot start within 10 s. SIGTERM/SIGINT end it, and so does
 * --lifetime seconds (default 600; 0: none).
 */
const http = require('node:http');
const path = require('node:path');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');
const hub = require(path.join(__dirname, 'hubcore.js'));

function fail(msg) {
  process.stdout.write(JSON.stringify({ ready: false, error: msg }) + '\n');
  process.exit(1);
}

let args;
try {
  args = hub.parseArgs(process.argv.slice(2), {
    port: 'value', host: 'value', redis: 'value', key: 'value', token: 'value', namespaces: 'value', lifetime: 'value',
  });
} catch (e) {
  process.stderr.write(`nodehub.js: ${e.message}\n`);
  process.exit(2);
}
const PORT = Number(args.port ?? 0);
const LIFETIME = Number(args.lifetime ?? 600);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) { process.stderr.write('nodehub.js: bad --port\n'); process.exit(2); }

async function main() {
  let lastError = '';
  const startTimer = setTimeout(() => fail(`could not start within 10 s${lastError ? ` (${lastError})` : ''}`), 10000);
  const pub = createClient({
    url: args.redis || 'redis://127.0.0.1:6379',
    socket: { connectTimeout: 5000, reconnectStrategy: (n) => Math.min(100 * (n + 1), 2000) },
  });
  const sub = pub.duplicate();
  /* node-redis reconnects by itself (and subscribes again); say so on stderr. */
  for (const [name, c] of [['pub', pub], ['sub', sub]]) {
    c.on('error', (e) => {
      lastError = `redis: ${e.message}`;
      process.stderr.write(`nodehub.js: redis ${name}: ${e.message}\n`);
    });
  }
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer((req, res) => {
    const body = JSON.stringify({ error: { status: 404, code: 'not_found', message: 'no such path' } });
    res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  const io = new Server(httpServer, {
    path: '/socket.io',
    transports: ['websocket'],
    serveClient: false,
    maxHttpBufferSize: 1e6,
    adapter: createAdapter(pub, sub, { key: args.key || 'socket.io' }),
  });
  hub.attachHub(io, hub.parseNamespaces(args.namespaces));
  hub.routeEmit(httpServer, io, { path: '/socket.io', token: args.token || '', maxBody: 1e6 });
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(PORT, args.host || '127.0.0.1', resolve);
  });
  clearTimeout(startTimer);
  process.stdout.write(JSON.stringify({ ready: true, port: httpServer.address().port, pid: process.pid }) + '\n');

  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (LIFETIME > 0) {
    setTimeout(() => {
      process.stderr.write(`nodehub.js: --lifetime ${LIFETIME} s is over, exiting\n`);
      process.exit(3);
    }, LIFETIME * 1000);
  }
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
