'use strict';
/* The socket.io peer of the benchmark lives in socketio/ (its own package:
 * npm ci --prefix bench/node/socketio); this keeps `node bench/node/hub.js`. */
require('./socketio/hub.js');
