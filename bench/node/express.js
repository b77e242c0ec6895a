'use strict';
/* clusterd's dummy and readmongo (list, get by id) on Node cluster + express 5.
 *   PORT=8080 WORKERS=2 [MONGO_URI=mongodb://...] node express.js */
const c = require('./common');

if (c.cluster.isPrimary) {
  c.primary();
} else {
  const express = require('express');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // res.set() and res.type() would add "; charset=utf-8", and res.send() of a
  // string too: the header is set with Node's own setHeader, the body sent as bytes.
  const json = (res, status, body) => {
    res.status(status);
    res.setHeader('Content-Type', 'application/json');
    res.send(typeof body === 'string' ? Buffer.from(body) : body);
  };
  const body = c.dummyBody();

  app.get('/dummy', (req, res) => json(res, 200, body));
  if (c.MONGO_URI) {
    c.mongo();
    app.get('/mongo/:coll', async (req, res) => {
      const [status, out] = await c.mongoList(req.params.coll, req.query.filter, req.query.limit);
      json(res, status, out);
    });
    app.get('/mongo/:coll/:id', async (req, res) => {
      const [status, out] = await c.mongoGet(req.params.coll, req.params.id);
      json(res, status, out);
    });
  }
  app.use((req, res) => json(res, 404, c.err(404, 'not_found', 'no route')[1]));
  app.use((e, req, res, next) => json(res, 502, c.err(502, 'bad_gateway', String(e.message))[1]));
  app.listen(c.PORT, c.HOST);
}
