'use strict';
// deflate-client.js: drives a real peer through a compressed echo and reports what it saw, as
// one JSON line on stdout. The checks live in the Go test (extensions/deflate/peers_test.go).
//
//   node deflate-client.js '{"peer":"ws"|"faye"|"chromium","url":"ws://...","origin":"http://...",
//                            "pmd":{...ws perMessageDeflate options...},"faye":{...permessage-deflate options...},
//                            "messages":[{"type":"text"|"binary","size":N,"kind":"json"|"random"}]}'
//
// It sends every message, waits for each echo, compares content, then closes with 1000.

const crypto = require('crypto');
const { CHROMIUM_ARGS } = require('./peerlib');

const cfg = JSON.parse(process.argv[2]);
const TIMEOUT = 30000;

// makeData builds message i deterministically: JSON-like documents (about 3x compressible) or
// random bytes (incompressible).
function makeData(m, i) {
  let buf;
  if (m.kind === 'random') {
    buf = crypto.randomBytes(m.size);
  } else {
    const parts = [];
    let n = 0;
    let k = i * 7919;
    while (n < m.size) {
      k = (k * 1103515245 + 12345) % 2147483648;
      const s = JSON.stringify({ id: k % 100000, name: 'user' + (k % 997), active: k % 3 === 0,
        tags: ['a' + (k % 13), 'b' + (k % 17)], score: (k % 10000) / 100, note: 'é✓🌍'.repeat(k % 3) }) + ',';
      parts.push(s);
      n += Buffer.byteLength(s);
    }
    buf = Buffer.from(parts.join('')).subarray(0, m.size);
    // keep text valid UTF-8 after the cut
    if (m.type === 'text') buf = Buffer.from(buf.toString('utf8').replace(/\uFFFD+$/, ''));
    if (m.type === 'text' && Buffer.byteLength(buf) < m.size) buf = Buffer.concat([buf, Buffer.alloc(m.size - buf.length, 'x')]);
  }
  return m.type === 'text' ? buf.toString('utf8') : buf;
}

const sha = (d) => crypto.createHash('sha256').update(Buffer.isBuffer(d) ? d : Buffer.from(d)).digest('hex');

async function runNode() {
  const msgs = cfg.messages.map(makeData);
  let ws;
  let extensions = '';
  if (cfg.peer === 'ws') {
    const WebSocket = require('ws');
    ws = new WebSocket(cfg.url, { perMessageDeflate: cfg.pmd === undefined ? true : cfg.pmd });
    ws.on('upgrade', (res) => { extensions = res.headers['sec-websocket-extensions'] || ''; });
  } else {
    const Faye = require('faye-websocket');
    const deflate = require('permessage-deflate');
    let ext = deflate;
    if (cfg.faye) ext = deflate.configure(cfg.faye);
    ws = new Faye.Client(cfg.url, [], { extensions: [ext] });
  }
  const results = [];
  const out = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: 'timeout', results }), TIMEOUT);
    let i = 0;
    const onOpen = () => {
      if (cfg.peer === 'faye') extensions = ws.headers['sec-websocket-extensions'] || '';
      for (const m of msgs) ws.send(m);
    };
    const onMessage = (data) => {
      const want = msgs[i];
      results.push({ i, ok: sha(data) === sha(want), len: Buffer.byteLength(Buffer.isBuffer(data) ? data : Buffer.from(data)),
        binary: Buffer.isBuffer(data) || data instanceof ArrayBuffer });
      i++;
      if (i === msgs.length) ws.close(1000);
    };
    const onClose = (code) => { clearTimeout(timer); resolve({ closeCode: code, results }); };
    if (cfg.peer === 'ws') {
      ws.on('open', onOpen);
      ws.on('message', (d, isBinary) => onMessage(isBinary ? d : d.toString('utf8')));
      ws.on('close', onClose);
      ws.on('error', (e) => { clearTimeout(timer); resolve({ error: e.message, results }); });
    } else {
      ws.on('open', onOpen);
      ws.on('message', (e) => onMessage(typeof e.data === 'string' ? e.data : Buffer.from(e.data)));
      ws.on('close', (e) => onClose(e.code));
      ws.on('error', (e) => { clearTimeout(timer); resolve({ error: String(e.message), results }); });
    }
  });
  out.extensions = extensions;
  return out;
}

async function runChromium() {
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({ executablePath: cfg.chromium || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    await page.goto(cfg.origin);
    const msgs = cfg.messages.map((m, i) => {
      const d = makeData(m, i);
      return { type: m.type, text: m.type === 'text' ? d : null, b64: m.type === 'binary' ? d.toString('base64') : null };
    });
    return await page.evaluate(async ({ url, msgs, timeout }) => {
      const digest = async (buf) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', buf))).map((b) => b.toString(16).padStart(2, '0')).join('');
      const data = msgs.map((m) => m.type === 'text' ? m.text : Uint8Array.from(atob(m.b64), (c) => c.charCodeAt(0)));
      const want = await Promise.all(data.map((d) => digest(typeof d === 'string' ? new TextEncoder().encode(d) : d)));
      return await new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        const results = [];
        const timer = setTimeout(() => resolve({ error: 'timeout', results, extensions: ws.extensions }), timeout);
        ws.onopen = () => { for (const d of data) ws.send(d); };
        let i = 0;
        let done = 0;
        ws.onmessage = async (e) => {
          const j = i++;
          const bytes = typeof e.data === 'string' ? new TextEncoder().encode(e.data) : new Uint8Array(e.data);
          results[j] = { i: j, ok: (await digest(bytes)) === want[j], len: bytes.length, binary: typeof e.data !== 'string' };
          if (++done === data.length) ws.close(1000);
        };
        ws.onclose = (e) => { clearTimeout(timer); resolve({ closeCode: e.code, results, extensions: ws.extensions }); };
      });
    }, { url: cfg.url, msgs, timeout: TIMEOUT });
  } finally {
    await browser.close();
  }
}

(cfg.peer === 'chromium' ? runChromium() : runNode())
  .then((r) => { process.stdout.write(JSON.stringify(r) + '\n'); process.exit(0); })
  .catch((e) => { process.stdout.write(JSON.stringify({ error: String(e && e.stack || e) }) + '\n'); process.exit(0); });
