'use strict';

// deflate-echo-server.js '{"maxPayload":N,"pmd":{...ws perMessageDeflate options...}}'
//
// An echo server on Node's ws (the version pinned in package.json) with permessage-deflate:
// every message comes back with the type it arrived with, compressed as ws compresses it
// (threshold 0 unless pmd says otherwise, so incompressible data is sent compressed too and
// grows a little: what a client's MaxLength must allow for). maxPayload is ws's limit (bytes;
// required). It listens on 127.0.0.1 on a free port and prints `listening PORT` as its first
// line. It is the server of extensions/deflate's limit tests against herald's client.

const { WebSocketServer } = require('ws');

const cfg = JSON.parse(process.argv[2] || '{}');
if (!Number.isInteger(cfg.maxPayload) || cfg.maxPayload <= 0) {
  process.stderr.write('usage: deflate-echo-server.js \'{"maxPayload":N}\' (bytes, > 0)\n');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: Object.assign({ threshold: 0 }, cfg.pmd || {}),
  maxPayload: cfg.maxPayload
});

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary, compress: true });
  });
});

wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});
