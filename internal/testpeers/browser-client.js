'use strict';
// browser-client.js: Chromium's WebSocket, driven by playwright-core, against herald's
// examples/echo.
//
//   node browser-client.js ws://HOST:PORT ws://HOST:PORT2 [/usr/bin/chromium]
//
// The first URL is the echo server, the second one started with -max-length 1024. Each runs in
// a page loaded from that server's own origin (its plain-HTTP "Hello"), so the browser's Origin
// header is the server's own. Prints one JSON line per case (see peerlib.js);
// examples/echo/peers_test.go checks them. Browsers cannot ping or fragment from JavaScript, so
// those cases are absent. The network is closed: background networking stays off.

const { chromium } = require('playwright-core');
const { ECHO_SIZES, UNICODE, CLOSES, BURST, LARGE, COMPRESSIBLE, CASE_TIMEOUT, CHROMIUM_ARGS, run } = require('./peerlib');

// pageLib runs in the page and installs window.__peer, which runs one case at a time and returns
// what the page observed. It reuses peerlib's conventions (describe, recorder) in browser terms.
function pageLib() {
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
  const bytes = (data) => (typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data));
  const sha256 = async (data) => hex(await crypto.subtle.digest('SHA-256', bytes(data)));
  const describe = async (prefix, type, data) => ({
    [prefix + 'Type']: type, [prefix + 'Len']: bytes(data).length, [prefix + 'Sha256']: await sha256(data),
  });
  function firstDiff(a, b) {
    a = bytes(a); b = bytes(b);
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
    return a.length === b.length ? -1 : n;
  }
  function randomBytes(n) {
    const out = new Uint8Array(n);
    for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
    return out;
  }
  function payload(type, n) {
    const r = randomBytes(n);
    if (type === 'binary') return r.buffer;
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_';
    const parts = [];
    for (let i = 0; i < n; i++) parts.push(alphabet[r[i] % alphabet.length]);
    return parts.join('');
  }
  function recorder() {
    const events = [];
    let wake = null;
    return {
      events,
      push(e) { events.push(e); if (wake) { const w = wake; wake = null; w(); } },
      async take(...kinds) {
        for (;;) {
          const i = events.findIndex((e) => kinds.includes(e.kind));
          if (i >= 0) return events.splice(i, 1)[0];
          const closed = events.find((e) => e.kind === 'close');
          if (closed) throw new Error(`connection closed (code ${closed.code}, reason ${JSON.stringify(closed.reason)}) while waiting for ${kinds.join('|')}`);
          await new Promise((resolve) => { wake = resolve; });
        }
      },
      count(kind) { return events.filter((e) => e.kind === kind).length; },
    };
  }
  function connect(url, protocols) {
    const rec = recorder();
    const ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => rec.push({ kind: 'open' });
    ws.onmessage = (e) => rec.push({ kind: 'message', type: typeof e.data === 'string' ? 'text' : 'binary', data: e.data });
    ws.onerror = () => rec.push({ kind: 'error', message: 'error event' });
    ws.onclose = (e) => rec.push({ kind: 'close', code: e.code, reason: e.reason, wasClean: e.wasClean });
    return { ws, rec };
  }
  async function open(url, protocols) {
    const c = connect(url, protocols);
    await c.rec.take('open');
    return c;
  }
  async function closeClean(c) {
    c.ws.close(1000);
    const e = await c.rec.take('close');
    return { closeCode: e.code, closeReason: e.reason, wasClean: e.wasClean, extraMessages: c.rec.count('message') };
  }
  async function echo(url, type, data) {
    const c = await open(url);
    c.ws.send(data);
    const m = await c.rec.take('message');
    return Object.assign(await describe('sent', type, data), await describe('recv', m.type, m.data),
      { firstDiff: firstDiff(data, m.data) },
      type === 'text' ? { recvEqual: m.data === data } : {},
      await closeClean(c));
  }

  window.__peer = {
    async fetch(path) {
      const res = await fetch(path);
      return { status: res.status, contentType: res.headers.get('content-type') || '', body: await res.text() };
    },
    echo: (url, type, n) => echo(url, type, payload(type, n)),
    echoText: (url, text) => echo(url, 'text', text),
    async close(url, code, reason) {
      const c = await open(url);
      c.ws.close(code, reason);
      const e = await c.rec.take('close');
      return { sentCode: code, sentReason: reason, closeCode: e.code, closeReason: e.reason, wasClean: e.wasClean };
    },
    async burst(base, connections, messages) {
      const run1 = async (i) => {
        const c = await open(base + '/peer/burst%2F' + i + '?q=1');
        const sent = [];
        for (let j = 0; j < messages; j++) {
          const type = j % 2 ? 'binary' : 'text';
          const data = payload(type, Math.floor(Math.random() * 3000));
          sent.push([type, await sha256(data)]);
          c.ws.send(data);
        }
        let received = 0;
        let mismatch = null;
        for (const [type, sum] of sent) {
          const m = await c.rec.take('message');
          received++;
          if (!mismatch && (m.type !== type || (await sha256(m.data)) !== sum)) mismatch = `connection ${i} message ${received - 1}`;
        }
        const closed = await closeClean(c);
        return { sent: sent.length, received, mismatch, closeCode: closed.closeCode };
      };
      const all = await Promise.all(Array.from({ length: connections }, (_, i) => run1(i)));
      return {
        connections: all.length,
        sent: all.reduce((n, r) => n + r.sent, 0),
        received: all.reduce((n, r) => n + r.received, 0),
        mismatches: all.filter((r) => r.mismatch).map((r) => r.mismatch),
        closeCodes: [...new Set(all.map((r) => r.closeCode))],
      };
    },
    async compressible(url, n) {
      const c = await open(url);
      const text = 'a'.repeat(n);
      c.ws.send(text);
      const first = await c.rec.take('message', 'close');
      const r = { sentLen: n, extensions: c.ws.extensions };
      if (first.kind === 'close') return Object.assign(r, { closeCode: first.code, closeReason: first.reason, wasClean: first.wasClean, messages: 0 });
      return Object.assign(r, await describe('sent', 'text', text), await describe('recv', first.type, first.data),
        { firstDiff: firstDiff(text, first.data), recvEqual: first.data === text }, await closeClean(c));
    },
    async overLimitMany(base, n, connections) {
      const one = async (i) => {
        const c = await open(base + '/peer/limit%2Flarge%2F' + i + '?q=1');
        c.ws.send(payload('binary', n));
        const e = await c.rec.take('close');
        return { code: e.code, reason: e.reason, wasClean: e.wasClean, messages: c.rec.count('message') };
      };
      const all = await Promise.all(Array.from({ length: connections }, (_, i) => one(i)));
      return {
        sentLen: n,
        closeCodes: all.map((r) => r.code),
        closeReasons: all.map((r) => r.reason),
        wasCleans: all.map((r) => r.wasClean),
        messages: all.reduce((k, r) => k + r.messages, 0),
      };
    },
    async overLimit(url, type, n) {
      const c = await open(url);
      c.ws.send(payload(type, n));
      const e = await c.rec.take('close');
      return { closeCode: e.code, closeReason: e.reason, wasClean: e.wasClean, messages: c.rec.count('message') };
    },
    async protocol(url, protocols) {
      const c = connect(url, protocols);
      const first = await c.rec.take('open', 'close');
      const errors = c.rec.events.filter((e) => e.kind === 'error').map((e) => e.message);
      if (first.kind === 'close') return { opened: false, closeCode: first.code, wasClean: first.wasClean, errors };
      return Object.assign({ opened: true, protocol: c.ws.protocol, extensions: c.ws.extensions, errors }, await closeClean(c));
    },
  };
}

async function main() {
  const [base, limited, executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
  if (!base || !limited) {
    console.error('usage: node browser-client.js ws://HOST:PORT ws://HOST:PORT2 [chromium]');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath,
    timeout: 30000,
    args: CHROMIUM_ARGS,
  });
  try {
    const browserVersion = browser.version();
    const context = await browser.newContext();

    // One page per server, loaded from that server's origin. The handshake responses Chromium
    // saw and its console messages (where it says why it failed a connection) are collected
    // through CDP per WebSocket URL, for the cases that report them.
    const handshakes = new Map(); // url -> {upgradeStatus, protocolHeader}
    const consoleLines = [];
    async function openPage(wsBase) {
      const page = await context.newPage();
      page.on('console', (m) => consoleLines.push(m.text()));
      const cdp = await context.newCDPSession(page);
      const urls = new Map();
      cdp.on('Network.webSocketCreated', (e) => urls.set(e.requestId, e.url));
      cdp.on('Network.webSocketHandshakeResponseReceived', (e) => {
        const h = {};
        for (const [k, v] of Object.entries(e.response.headers || {})) h[k.toLowerCase()] = v;
        handshakes.set(urls.get(e.requestId), { upgradeStatus: e.response.status, protocolHeader: h['sec-websocket-protocol'] ?? null });
      });
      await cdp.send('Network.enable');
      const res = await page.goto(wsBase.replace(/^ws/, 'http') + '/', { timeout: CASE_TIMEOUT });
      const loaded = { status: res.status(), contentType: res.headers()['content-type'] || '', body: await res.text() };
      await page.evaluate(pageLib);
      return { page, loaded };
    }
    const main = await openPage(base);
    const lim = await openPage(limited);
    const url = (root, name) => root + '/peer/' + encodeURIComponent(name) + '?q=1';
    const call = (p, fn, ...args) => p.page.evaluate(([fn, args]) => window.__peer[fn](...args), [fn, args]);

    const cases = [];
    const add = (name, fn) => cases.push([name, fn]);
    add('browser', async () => ({ version: browserVersion }));
    add('http/root', async () => main.loaded);
    add('http/path', () => call(main, 'fetch', '/some/path?x=1'));
    for (const type of ['text', 'binary']) {
      for (const n of ECHO_SIZES) {
        const name = `echo/${type}/${n}`;
        add(name, () => call(main, 'echo', url(base, name), type, n));
      }
    }
    add('unicode/whole', () => call(main, 'echoText', url(base, 'unicode'), UNICODE.repeat(50)));
    for (const [name, [code, reason]] of Object.entries(CLOSES)) {
      add(`close/${name}`, () => call(main, 'close', url(base, `close/${name}`), code, reason));
    }
    // close() without arguments sends a close frame without a code.
    add('close/no-code', () => call(main, 'close', url(base, 'close/no-code'), undefined, undefined));
    add('burst', () => call(main, 'burst', base, BURST.connections, BURST.messages));
    // A page of one origin opening a WebSocket to another (the second server: another port) is
    // what the server's origin check exists to refuse.
    const cross = url(limited, 'origin/cross');
    add('origin/cross', async () => {
      const r = await call(main, 'protocol', cross, []);
      for (let i = 0; r.opened && i < 20 && !handshakes.has(cross); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      const path = new URL(cross).pathname;
      return Object.assign(r, handshakes.get(cross) || { upgradeStatus: null, protocolHeader: null },
        { console: consoleLines.filter((l) => l.includes(path)) });
    });
    for (const type of ['text', 'binary']) {
      add(`limit/${type}/1024`, () => call(lim, 'echo', url(limited, `limit/${type}/1024`), type, 1024));
      add(`limit/${type}/1025`, () => call(lim, 'overLimit', url(limited, `limit/${type}/1025`), type, 1025));
    }
    for (const n of COMPRESSIBLE) {
      add(`limit/compressible/${n}`, () => call(lim, 'compressible', url(limited, `limit/compressible/${n}`), n));
    }
    add('limit/large', () => call(lim, 'overLimitMany', limited, LARGE.size, LARGE.connections));
    const offers = { 'foo,amqp,irc': ['foo', 'amqp', 'irc'], 'irc,amqp': ['irc', 'amqp'], foo: ['foo'], none: [] };
    for (const [name, protocols] of Object.entries(offers)) {
      const u = url(base, `protocol/${name}`);
      add(`protocol/${name}`, async () => {
        const r = await call(main, 'protocol', u, protocols);
        // CDP events travel apart from evaluate's answer: give them a moment (bounded). Chromium
        // reports no handshake response for a connection it failed during the handshake, so
        // there is nothing to wait for then.
        for (let i = 0; r.opened && i < 20 && !handshakes.has(u); i++) await new Promise((resolve) => setTimeout(resolve, 25));
        const path = new URL(u).pathname;
        return Object.assign(r, handshakes.get(u) || { upgradeStatus: null, protocolHeader: null },
          { console: consoleLines.filter((l) => l.includes(path)) });
      });
    }
    await run(cases);
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
