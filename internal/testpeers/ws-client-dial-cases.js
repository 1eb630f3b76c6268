'use strict';

// ws-client-dial-cases.js BASE NAME...
//
// Node's ws client (the version pinned in package.json) through the client-side conformance
// cases of websocket/dial_test.go: for each NAME, in order, it connects to BASE/raw/NAME on
// ws-server-dial.js (maxPayload 1024, no permessage-deflate, like herald's client there) and
// waits for the connection to end. It prints one JSON line per case:
// {"case": NAME, "closeCode": the code ws's close event reports, "messages": N}. What ws sent
// back is printed by the server; the Go test compares it with what herald's client sent.

const WebSocket = require('ws');

const [base, ...names] = process.argv.slice(2);

function one(name) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base}/raw/${encodeURIComponent(name)}`, { maxPayload: 1024, perMessageDeflate: false });
    let messages = 0;
    const timer = setTimeout(() => { ws.terminate(); }, 5000);
    ws.on('error', () => {});
    ws.on('message', () => messages++);
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve({ case: name, closeCode: code, messages });
    });
  });
}

(async () => {
  for (const name of names) process.stdout.write(JSON.stringify(await one(name)) + '\n');
})();
