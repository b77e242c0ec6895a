'use strict';
/* clusterd's dummy and readmongo (list, get by id) on Node cluster + plain
 * node:http, no framework.
 *   PORT=8080 WORKERS=2 [MONGO_URI=mongodb://...] node http.js */
const c = require('./common');

if (c.cluster.isPrimary) {
  c.primary();
} else {
  const http = require('node:http');
  const body = c.dummyBody();
  const send = (res, status, out) => {
    const b = typeof out === 'string' ? Buffer.from(out) : out;
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': b.length });
    res.end(b);
  };
  if (c.MONGO_URI) c.mongo();

  http.createServer((req, res) => {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    if (path === '/dummy') return send(res, 200, body);
    const m = c.MONGO_URI && /^\/mongo\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (!m) return send(res, 404, c.err(404, 'not_found', 'no route')[1]);
    const coll = decodeURIComponent(m[1]);
    const work = m[2] !== undefined
      ? c.mongoGet(coll, decodeURIComponent(m[2]))
      : (() => {
        const p = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
        return c.mongoList(coll, p.get('filter'), p.get('limit'));
      })();
    work.then(([status, out]) => send(res, status, out),
      (e) => send(res, 502, c.err(502, 'bad_gateway', String(e.message))[1]));
  }).listen(c.PORT, c.HOST);
}
