'use strict';

// faye-server-dial.js [--deflate]
//
// A faye-websocket server (the version pinned in package.json) for the WebSocket client's tests
// (websocket/dial_test.go), on 127.0.0.1 and a free port, printed as the first line:
// `listening PORT`. It speaks the subprotocols irc and amqp and echoes every message with its
// type; with --deflate it offers permessage-deflate (the permessage-deflate package). /hello
// sends "hello from faye" at once, before anything is received.

const http = require('http');
const WebSocket = require('faye-websocket');

const deflate = process.argv.includes('--deflate');
const extensions = deflate ? [require('permessage-deflate')] : [];

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('Hello');
});

server.on('upgrade', (req, socket, body) => {
  if (!WebSocket.isWebSocket(req)) return socket.destroy();
  const ws = new WebSocket(req, socket, body, ['irc', 'amqp'], { extensions });
  ws.on('message', (event) => ws.send(event.data));
  if (req.url.startsWith('/hello')) ws.send('hello from faye');
});

server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
