'use strict';

// ws-echo-server.js MAXPAYLOAD
//
// An echo server on Node's ws (the version pinned in package.json): every message comes back
// with the type it arrived with. No permessage-deflate, maxPayload from the first argument
// (bytes; required, since ws reads 0 as "no limit"), everything else as ws does by default,
// including its reaction to protocol errors and close frames. It listens on 127.0.0.1 on a
// free port and prints `listening PORT` as its first line. It is the reference peer of
// websocket/conformance_test.go.

const { WebSocketServer } = require('ws');

const maxPayload = Number(process.argv[2]);
if (!Number.isInteger(maxPayload) || maxPayload <= 0) {
  process.stderr.write('usage: ws-echo-server.js MAXPAYLOAD (bytes, > 0)\n');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  maxPayload
});

wss.on('connection', (ws) => {
  // ws closes the connection itself on a protocol error (with the matching code); the error
  // event only reports it, and an unhandled one would end the process.
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
});

wss.on('listening', () => {
  process.stdout.write(`listening ${wss.address().port}\n`);
});
