'use strict';
// faye-client.js: faye-websocket's Client against herald's examples/echo.
//
//   node faye-client.js ws://HOST:PORT ws://HOST:PORT2
//
// The first URL is the echo server, the second one started with -max-length 1024. Prints one
// JSON line per case (see peerlib.js); examples/echo/peers_test.go checks them. faye's API
// sends each message as one frame (no fragmentation cases) and pings with text payloads.

const WebSocket = require('faye-websocket');
const { cases, recorder, run } = require('./peerlib');

const peer = {
  fragments: false,
  ping: 'text',
  connect(url, protocols = []) {
    const rec = recorder();
    const ws = new WebSocket.Client(url, protocols);
    ws.on('open', () => rec.push({ kind: 'open' }));
    ws.on('message', (e) => rec.push({ kind: 'message', type: Buffer.isBuffer(e.data) ? 'binary' : 'text', data: e.data }));
    ws.on('error', (e) => rec.push({ kind: 'error', message: e.message }));
    ws.on('close', (e) => rec.push({ kind: 'close', code: e.code, reason: e.reason }));
    // faye-websocket reports pongs only through ping's callback, which fires when a pong with
    // the same payload arrives; its driver's 'pong' event carries the payload itself.
    ws._driver.on('pong', (e) => rec.push({ kind: 'pong', data: Buffer.from(e.data, 'utf8') }));
    return {
      rec,
      send(type, data) { ws.send(type === 'binary' ? Buffer.from(data) : data); },
      ping(data) { ws.ping(data.toString('utf8')); },
      close(code, reason) { ws.close(code, reason); },
      protocol: () => ws.protocol,
      extensions: () => '',
      handshake: () => ({
        upgradeStatus: ws._driver.statusCode ?? null,
        protocolHeader: (ws._driver.headers || {})['sec-websocket-protocol'] ?? null,
      }),
    };
  },
};

const [base, limited] = process.argv.slice(2);
if (!base || !limited) {
  console.error('usage: node faye-client.js ws://HOST:PORT ws://HOST:PORT2');
  process.exit(2);
}
run(cases(peer, base, limited));
