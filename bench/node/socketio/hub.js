'use strict';
/*
 * The Node.js peer of clusterd's socketio service for the benchmark:
 * a `cluster` primary (setupPrimary() of @socket.io/cluster-adapter) and
 * N workers, each an http server + socket.io 4 (WebSocket only) with the
 * cluster adapter, all on one port (cluster's round-robin: fine, a WebSocket
 * session is one TCP connection). The hub itself is t/sio/hubcore.js, the
 * behaviour the C service implements.
 *
 *   node bench/node/hub.js --port N [--workers 2] [--host 127.0.0.1]
 *        [--token T] [--namespaces /,/admin]
 *
 * The primary prints {"ready":true,"port":N,"workers":[pids]} once every
 * worker listens; a worker that dies is forked again; SIGTERM/SIGINT stop all.
 */
const cluster = require('node:cluster');
const path = require('node:path');
const hub = require(path.join(__dirname, '..', '..', '..', 't', 'sio', 'hubcore.js'));

let args;
try {
  args = hub.parseArgs(process.argv.slice(2),
    { port: 'value', workers: 'value', host: 'value', token: 'value', namespaces: 'value' });
} catch (e) {
  process.stderr.write(`hub.js: ${e.message}\n` +
    'usage: hub.js --port N [--workers 2] [--host 127.0.0.1] [--token T] [--namespaces /,/admin]\n');
  process.exit(2);
}
const PORT = Number(args.port ?? 8080);
const WORKERS = Number(args.workers ?? 2);
const HOST = args.host || '127.0.0.1';
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535 || !Number.isInteger(WORKERS) || WORKERS < 1) {
  process.stderr.write('hub.js: --port must be 0..65535 and --workers at least 1\n');
  process.exit(2);
}

if (cluster.isPrimary) {
  const { setupPrimary } = require('@socket.io/cluster-adapter');
  setupPrimary();
  /* Without it, a Buffer crossing workers arrives as {"type":"Buffer","data":[..]}
   * (JSON IPC); the adapter's README asks for it for binary packets. */
  cluster.setupPrimary({ serialization: 'advanced' });
  let stopping = false;
  let ready = false;
  let port = PORT;
  const listening = new Set();
  const fork = () => cluster.fork();
  cluster.on('listening', (w, address) => {
    listening.add(w.id);
    port = address.port;
    if (!ready && listening.size >= WORKERS) {
      ready = true;
      const pids = Object.values(cluster.workers).map((x) => x.process.pid);
      process.stdout.write(JSON.stringify({ ready: true, port, workers: pids }) + '\n');
    }
  });
  cluster.on('exit', (w, code, signal) => {
    listening.delete(w.id);
    if (stopping) return;
    if (!ready) {
      process.stderr.write(`hub.js: worker ${w.process.pid} exited (${signal || code}) before all listened\n`);
      stopping = true;
      for (const x of Object.values(cluster.workers)) x.process.kill('SIGTERM');
      process.exit(1);
    }
    process.stderr.write(`hub.js: worker ${w.process.pid} exited (${signal || code}), forking another\n`);
    fork();
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  /* Port 0: cluster gives every worker the same random port. */
  for (let i = 0; i < WORKERS; i++) fork();
} else {
  const http = require('node:http');
  const { Server } = require('socket.io');
  const { createAdapter } = require('@socket.io/cluster-adapter');
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
    adapter: createAdapter(),
  });
  hub.attachHub(io, hub.parseNamespaces(args.namespaces));
  hub.routeEmit(httpServer, io, { path: '/socket.io', token: args.token || '', maxBody: 1e6 });
  httpServer.on('error', (e) => {
    process.stderr.write(`hub.js: worker ${process.pid}: ${e.message}\n`);
    process.exit(1);
  });
  httpServer.listen(PORT, HOST);
  process.on('SIGTERM', () => process.exit(0));
}
