'use strict';

// ws-server-dial.js [--tls CERT KEY] [--deflate] [--max-payload N]
//
// A Node ws server (the version pinned in package.json) for the WebSocket client's tests
// (websocket/dial_test.go), on 127.0.0.1 and a free port, printed as the first line:
// `listening PORT`. It speaks the subprotocols irc and amqp (the first one the client offers
// wins; on /no-protocol it selects none), permessage-deflate only with --deflate, TLS with
// --tls. By path:
//
//   /echo...      every message comes back with its type.
//   /hello        sends "hello from ws" at once, before anything is received, then echoes.
//   /headers      sends the handshake request's headers as one JSON text message, then echoes.
//   /raw/NAME     writes the crafted frames of case NAME (see CASES) straight to the socket,
//                 bypassing ws's sender, and prints one JSON line when the connection ends:
//                 {"case": NAME, "closeCode": the client's close code (1005: none in its
//                 frame, 1006: no close frame), "pongs": [hex payloads], "messages": N}.
//
// Frames the server sends carry no mask unless a case says so.

const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
let tls = null;
let deflate = false;
let maxPayload = 64 << 20;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--tls') tls = { cert: fs.readFileSync(args[++i]), key: fs.readFileSync(args[++i]) };
  else if (args[i] === '--deflate') deflate = true;
  else if (args[i] === '--max-payload') maxPayload = Number(args[++i]);
  else {
    process.stderr.write(`unknown argument ${args[i]}\n`);
    process.exit(2);
  }
}

// frame builds one server frame: fin, opcode, payload, optional rsv bits and mask.
function frame({ fin = true, op, payload = Buffer.alloc(0), rsv = 0, mask = null, len = null }) {
  const p = Buffer.from(payload);
  const n = len === null ? p.length : len;
  const head = [(fin ? 0x80 : 0) | (rsv << 4) | op];
  const m = mask ? 0x80 : 0;
  if (n < 126) head.push(m | n);
  else if (n < 65536) head.push(m | 126, n >> 8, n & 0xff);
  else {
    head.push(m | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    head.push(...b);
  }
  let body = p;
  if (mask) {
    head.push(...mask);
    body = Buffer.from(p.map((x, i) => x ^ mask[i % 4]));
  }
  return Buffer.concat([Buffer.from(head), body]);
}

const closePayload = (code, reason = '') => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.from(reason)]);
};

// CASES: what the server sends after the handshake, one frame list per case. The expectation
// (the close code the client must send back) lives in the Go test.
const CASES = {
  'text-then-close': [frame({ op: 1, payload: 'hello' }), frame({ op: 8, payload: closePayload(1000) })],
  'ping-then-close': [frame({ op: 9, payload: 'are you there' }), frame({ op: 8, payload: closePayload(4000, 'bye') })],
  'close-no-code': [frame({ op: 8 })],
  'masked-text': [frame({ op: 1, payload: 'hello', mask: [1, 2, 3, 4] })],
  'masked-close': [frame({ op: 8, payload: closePayload(1000), mask: [1, 2, 3, 4] })],
  'rsv1-without-extension': [frame({ op: 1, payload: 'hello', rsv: 4 })],
  'rsv3': [frame({ op: 2, payload: 'x', rsv: 1 })],
  'reserved-opcode-3': [frame({ op: 3, payload: 'x' })],
  'reserved-opcode-11': [frame({ op: 11, payload: 'x' })],
  'fragmented-ping': [frame({ fin: false, op: 9, payload: 'x' })],
  'ping-126-bytes': [frame({ op: 9, payload: Buffer.alloc(126, 0x61) })],
  'continuation-without-start': [frame({ op: 0, payload: 'x' })],
  'text-inside-fragmented': [frame({ fin: false, op: 1, payload: 'a' }), frame({ op: 1, payload: 'b' })],
  'invalid-utf8': [frame({ op: 1, payload: Buffer.from([0x68, 0x69, 0xff]) })],
  'invalid-utf8-fragmented': [frame({ fin: false, op: 1, payload: Buffer.from([0xce, 0xba, 0xe1]) }), frame({ op: 0, payload: Buffer.from([0x28]) })],
  'close-invalid-code-999': [frame({ op: 8, payload: closePayload(999) })],
  'close-reserved-code-1005': [frame({ op: 8, payload: closePayload(1005) })],
  'close-one-byte': [frame({ op: 8, payload: Buffer.from([0x03]) })],
  'close-invalid-utf8-reason': [frame({ op: 8, payload: Buffer.concat([closePayload(1000), Buffer.from([0xff])]) })],
  'over-max-length-1025': [frame({ op: 2, payload: Buffer.alloc(1025, 7) })],
  'at-max-length-1024': [frame({ op: 2, payload: Buffer.alloc(1024, 7) }), frame({ op: 8, payload: closePayload(1000) })],
  'over-max-length-fragmented': [frame({ fin: false, op: 2, payload: Buffer.alloc(600) }), frame({ op: 0, payload: Buffer.alloc(425) })],
  'length-msb-set': [Buffer.from([0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1])],
};

const handleProtocols = (protocols, req) => {
  if (req.url.startsWith('/no-protocol')) return false;
  for (const p of protocols) if (p === 'irc' || p === 'amqp') return p;
  return false;
};

const server = tls ? https.createServer(tls) : http.createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: deflate, maxPayload, handleProtocols });

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  const url = req.url;
  if (url.startsWith('/raw/')) {
    const name = decodeURIComponent(url.slice('/raw/'.length));
    const frames = CASES[name];
    const pongs = [];
    let messages = 0;
    ws.on('pong', (data) => pongs.push(data.toString('hex')));
    ws.on('message', () => messages++);
    ws.on('close', (code) => process.stdout.write(JSON.stringify({ case: name, closeCode: code, pongs, messages }) + '\n'));
    if (!frames) {
      ws.close(4404, 'no such case');
      return;
    }
    ws._socket.write(Buffer.concat(frames));
    return;
  }
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  if (url.startsWith('/hello')) ws.send('hello from ws');
  if (url.startsWith('/headers')) ws.send(JSON.stringify(req.headers));
});

server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
