'use strict';
// ws-client.js: Node's `ws` client against herald's examples/echo.
//
//   node ws-client.js ws://HOST:PORT ws://HOST:PORT2
//
// The first URL is the echo server, the second one started with -max-length 1024. Prints one
// JSON line per case (see peerlib.js); examples/echo/peers_test.go checks them.

const WebSocket = require('ws');
const { cases, recorder, run } = require('./peerlib');

const peer = {
  fragments: true,
  ping: 'binary',
  closeNoCode: true,
  rawText: true,
  connect(url, protocols = []) {
    const rec = recorder();
    const ws = new WebSocket(url, protocols);
    let handshake = { upgradeStatus: null, protocolHeader: null };
    ws.on('upgrade', (res) => {
      handshake = { upgradeStatus: res.statusCode, protocolHeader: res.headers['sec-websocket-protocol'] ?? null };
    });
    ws.on('unexpected-response', (req, res) => {
      handshake = { upgradeStatus: res.statusCode, protocolHeader: res.headers['sec-websocket-protocol'] ?? null };
      rec.push({ kind: 'error', message: `unexpected response ${res.statusCode}` });
      req.destroy();
    });
    ws.on('open', () => rec.push({ kind: 'open' }));
    ws.on('message', (data, isBinary) => rec.push({ kind: 'message', type: isBinary ? 'binary' : 'text', data }));
    ws.on('pong', (data) => rec.push({ kind: 'pong', data }));
    ws.on('error', (err) => rec.push({ kind: 'error', message: err.message }));
    ws.on('close', (code, reason) => rec.push({ kind: 'close', code, reason: reason.toString() }));
    return {
      rec,
      send(type, data) { ws.send(data, { binary: type === 'binary' }); },
      // sendFragments sends frags as one message, fragment by fragment (fin only on the last,
      // and not even there when finish is false); hook(i), when given, runs after fragment i is
      // sent and before the next one.
      async sendFragments(type, frags, hook, finish = true) {
        for (let i = 0; i < frags.length; i++) {
          ws.send(frags[i], { binary: type === 'binary', fin: finish && i === frags.length - 1 });
          if (hook) await hook(i);
        }
      },
      ping(data) { ws.ping(data); },
      close(code, reason) { ws.close(code, reason); },
      protocol: () => ws.protocol,
      extensions: () => ws.extensions,
      handshake: () => handshake,
    };
  },
};

const [base, limited] = process.argv.slice(2);
if (!base || !limited) {
  console.error('usage: node ws-client.js ws://HOST:PORT ws://HOST:PORT2');
  process.exit(2);
}
run(cases(peer, base, limited));
