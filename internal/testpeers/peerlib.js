'use strict';
// peerlib.js: what the Node peer scripts (ws-client.js, faye-client.js, browser-client.js, nes-client.js) share.
// The scripts only drive a peer and report what it observed, one JSON object per line on
// stdout; the checks live in the Go tests that run them.

const crypto = require('crypto');
const http = require('http');

// CHROMIUM_ARGS are the flags the scripts launch Chromium with: headless, and no network of its
// own (no QUIC, no background traffic).
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// CASE_TIMEOUT bounds each case; a case that does not finish in time reports an error.
const CASE_TIMEOUT = 15000;

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// randomText returns n random printable ASCII bytes as a string.
function randomText(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_';
  const r = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[r[i] % alphabet.length];
  return s;
}

// payload returns n bytes of random data: a Buffer for 'binary', a string for 'text'.
function payload(type, n) {
  return type === 'binary' ? crypto.randomBytes(n) : randomText(n);
}

// describe reports a message as the Go tests compare it: type, length in bytes, sha256.
function describe(prefix, type, data) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  return {
    [prefix + 'Type']: type,
    [prefix + 'Len']: buf.length,
    [prefix + 'Sha256']: sha256(buf),
  };
}

// firstDiff returns the first byte offset where a and b differ, or -1 when they are equal.
function firstDiff(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// httpGet fetches url with a plain GET (no Upgrade) and reports status, content type and body.
function httpGet(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          contentType: res.headers['content-type'] || '',
          body: Buffer.concat(chunks).toString('utf8'),
        })
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

// run runs the named cases in order, each bounded by CASE_TIMEOUT, and prints one line per
// case: {"case": name, ...what it observed, "ms": its duration} or {"case": name, "error":
// message, "ms": ...}. A last line
// {"done": true} tells the reader that nothing was cut short.
async function run(cases) {
  for (const [name, fn] of cases) {
    let line;
    const start = Date.now();
    try {
      line = Object.assign({ case: name }, await withTimeout(fn(), CASE_TIMEOUT, name));
    } catch (err) {
      line = { case: name, error: String((err && err.stack) || err) };
    }
    line.ms = Date.now() - start;
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  process.stdout.write(JSON.stringify({ done: true }) + '\n');
}

// The sizes the echo cases use: the frame-length encoding boundaries and a large message.
const ECHO_SIZES = [0, 125, 126, 65535, 65536, 1024 * 1024 - 1024];

// UNICODE is multi-byte text: 2-, 3- and 4-byte UTF-8 sequences, emoji with modifiers.
const UNICODE = 'héllo wörld — 日本語のテキスト — 🎉🚀👍🏽 𝄞 Ελληνικά ✓ ';

// CLOSES are the close cases: name -> [code, reason] the client closes with. The longest reason
// a close frame holds is 123 bytes; this one is 2-byte characters up to that boundary.
const CLOSES = {
  '4001-bye': [4001, 'bye'],
  '1000': [1000, ''],
  '3000-unicode': [3000, 'adiós 👋'],
  '4999-long': [4999, 'é'.repeat(61) + '.'],
};

// BURST is the size of the burst case: connections at once, messages sent on each before
// reading any echo.
const BURST = { connections: 4, messages: 150 };

// COMPRESSIBLE are the sizes of the limit/compressible cases (text of one repeated letter).
const COMPRESSIBLE = [1024, 1025, 1 << 20];

// LARGE is the limit/large case: connections at once, each sending one message of size bytes
// to the server that accepts at most 1024.
const LARGE = { connections: 4, size: 4 << 20 };

// recorder collects a connection's events in order ({kind: 'open'|'message'|'pong'|'close'|
// 'error'|..., ...}) and lets a case wait for the next one of some kinds.
function recorder() {
  const events = [];
  let wake = null;
  return {
    events,
    push(e) {
      events.push(e);
      if (wake) { const w = wake; wake = null; w(); }
    },
    // take removes and returns the first event of one of kinds. It fails when the connection
    // closed without one (unless 'close' is among kinds); the case timeout bounds the wait.
    async take(...kinds) {
      for (;;) {
        const i = events.findIndex((e) => kinds.includes(e.kind));
        if (i >= 0) return events.splice(i, 1)[0];
        const closed = events.find((e) => e.kind === 'close');
        if (closed) {
          const errs = events.filter((e) => e.kind === 'error').map((e) => e.message);
          throw new Error(`connection closed (code ${closed.code}, reason ${JSON.stringify(closed.reason)}, errors ${JSON.stringify(errs)}) while waiting for ${kinds.join('|')}`);
        }
        await new Promise((resolve) => { wake = resolve; });
      }
    },
    count(kind) {
      return events.filter((e) => e.kind === kind).length;
    },
  };
}

const hex = (data) => Buffer.from(data).toString('hex');

// messageBytes returns a received message's bytes.
const messageBytes = (m) => (Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data, 'utf8'));

// cases returns the scenarios shared by the Node clients. peer adapts one client library:
//   peer.connect(url, protocols) -> conn: {rec (a recorder), send(type, data), close(code, reason),
//     ping(payload) (when peer.ping), sendFragments(type, [Buffer], hook, finish) (when peer.fragments),
//     protocol(), extensions(), handshake() -> {upgradeStatus, protocolHeader} as the client saw
//     the server's handshake response (protocolHeader null when absent)}
//   peer.ping: 'binary' when any payload can be pinged, 'text' when only UTF-8 payloads can.
//   peer.closeNoCode: close(undefined, undefined) sends a close frame without a code.
//   peer.rawText: send('text', Buffer) sends the bytes as they are in a text message.
// base and limited are ws:// URLs of the echo server and of the one started with -max-length 1024.
function cases(peer, base, limited) {
  const list = [];
  const add = (name, fn) => list.push([name, fn]);
  const url = (root, name) => root + '/peer/' + encodeURIComponent(name) + '?q=1';
  const httpBase = base.replace(/^ws/, 'http');

  async function open(u, protocols) {
    const conn = peer.connect(u, protocols);
    await conn.rec.take('open');
    return conn;
  }

  // closeClean closes normally and reports the server's reply and any messages left unread.
  async function closeClean(conn) {
    conn.close(1000, '');
    const c = await conn.rec.take('close');
    return { closeCode: c.code, closeReason: c.reason, extraMessages: conn.rec.count('message') };
  }

  // echo sends data as one message and reports it and what came back.
  async function echo(u, type, data) {
    const conn = await open(u);
    conn.send(type, data);
    const m = await conn.rec.take('message');
    const got = messageBytes(m);
    const sent = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
    return Object.assign(
      describe('sent', type, sent), describe('recv', m.type, got),
      { firstDiff: firstDiff(sent, got) },
      type === 'text' ? { recvEqual: m.data.toString() === data } : {},
      await closeClean(conn));
  }

  add('http/root', () => httpGet(httpBase + '/'));
  add('http/path', () => httpGet(httpBase + '/some/path?x=1'));

  for (const type of ['text', 'binary']) {
    for (const n of ECHO_SIZES) {
      const name = `echo/${type}/${n}`;
      add(name, () => echo(url(base, name), type, payload(type, n)));
    }
  }

  add('unicode/whole', () => echo(url(base, 'unicode'), 'text', UNICODE.repeat(50)));

  if (peer.fragments) {
    // A text message split inside multi-byte characters: after the first 2 of a 4-byte emoji's
    // bytes, after 1 of a 3-byte character, after 1 of a 2-byte one. Each fragment alone is
    // invalid UTF-8; the whole message is valid.
    add('unicode/fragmented', async () => {
      const text = UNICODE.repeat(3);
      const bytes = Buffer.from(text, 'utf8');
      const cut = (ch, k) => bytes.indexOf(Buffer.from(ch, 'utf8')) + k;
      const cuts = [cut('é', 1), cut('日', 1), cut('🎉', 2), cut('🎉', 3), bytes.length];
      const frags = [];
      let at = 0;
      for (const c of cuts) { frags.push(bytes.subarray(at, c)); at = c; }
      const conn = await open(url(base, 'unicode/fragmented'));
      conn.sendFragments('text', frags);
      const m = await conn.rec.take('message');
      return Object.assign(
        describe('sent', 'text', bytes), describe('recv', m.type, messageBytes(m)),
        { fragments: frags.map((f) => f.length), firstDiff: firstDiff(bytes, messageBytes(m)), recvEqual: m.data.toString() === text },
        await closeClean(conn));
    });

    // Fragmented messages with a ping between fragments: the pong must come back while the
    // message is still incomplete (before the last fragment is sent), then the whole echo.
    for (const type of ['text', 'binary']) {
      add(`fragmented/${type}`, async () => {
        const sizes = [0, 1000, 70000, 3, 0];
        const frags = sizes.map((n) => Buffer.from(payload(type, n)));
        const whole = Buffer.concat(frags);
        const pingPayload = Buffer.from('between fragments');
        const conn = await open(url(base, `fragmented/${type}`));
        let pong = null;
        await conn.sendFragments(type, frags, async (i) => {
          if (i !== 2) return;
          conn.ping(pingPayload);
          pong = await conn.rec.take('pong');
        });
        const m = await conn.rec.take('message');
        return Object.assign(
          describe('sent', type, whole), describe('recv', m.type, messageBytes(m)),
          { fragments: sizes, firstDiff: firstDiff(whole, messageBytes(m)),
            recvEqual: type === 'text' ? m.data.toString() === whole.toString() : undefined,
            pingHex: hex(pingPayload), pongHex: pong && hex(pong.data), pongBeforeLastFragment: pong !== null },
          await closeClean(conn));
      });
    }

    // A message over the limit only in total: fragments of 600 and 425 bytes.
    add('limit/fragmented/1025', async () => {
      const conn = await open(url(limited, 'limit/fragmented/1025'));
      conn.sendFragments('binary', [payload('binary', 600), payload('binary', 425)]);
      const c = await conn.rec.take('close');
      return { closeCode: c.code, closeReason: c.reason, messages: conn.rec.count('message') };
    });
  }

  if (peer.ping) {
    const pings = {
      empty: Buffer.alloc(0),
      text: Buffer.from('Mic check ✓'),
      max125: peer.ping === 'binary' ? payload('binary', 125) : Buffer.from(randomText(125)),
    };
    for (const [name, p] of Object.entries(pings)) {
      add(`ping/${name}`, async () => {
        const conn = await open(url(base, `ping/${name}`));
        conn.ping(p);
        const pong = await conn.rec.take('pong');
        return Object.assign({ pingHex: hex(p), pongHex: hex(pong.data) }, await closeClean(conn));
      });
    }
    // Several pings in a row, then a message: pongs in order, one each, and the echo.
    add('ping/sequence', async () => {
      const conn = await open(url(base, 'ping/sequence'));
      const sent = ['one', 'two', 'three'].map((s) => Buffer.from(s));
      for (const p of sent) conn.ping(p);
      conn.send('text', 'after pings');
      const pongs = [];
      for (let i = 0; i < sent.length; i++) pongs.push(hex((await conn.rec.take('pong')).data));
      const m = await conn.rec.take('message');
      return Object.assign({ pingsHex: sent.map(hex), pongsHex: pongs, recvType: m.type, recvText: m.data.toString() },
        await closeClean(conn));
    });
  }

  for (const [name, [code, reason]] of Object.entries(CLOSES)) {
    add(`close/${name}`, async () => {
      const conn = await open(url(base, `close/${name}`));
      conn.close(code, reason);
      const c = await conn.rec.take('close');
      return { sentCode: code, sentReason: reason, closeCode: c.code, closeReason: c.reason };
    });
  }

  if (peer.closeNoCode) {
    // A close frame without a code: the client reports 1005 if the reply has none either.
    add('close/no-code', async () => {
      const conn = await open(url(base, 'close/no-code'));
      conn.close(undefined, undefined);
      const c = await conn.rec.take('close');
      return { closeCode: c.code, closeReason: c.reason };
    });
  }

  if (peer.fragments) {
    // The client closes in the middle of a fragmented message; the reply still echoes its code.
    add('close/mid-fragment', async () => {
      const conn = await open(url(base, 'close/mid-fragment'));
      conn.sendFragments('text', [Buffer.from('never finished')], null, false);
      conn.close(4002, 'mid');
      const c = await conn.rec.take('close');
      return { sentCode: 4002, sentReason: 'mid', closeCode: c.code, closeReason: c.reason, messages: conn.rec.count('message') };
    });
  }

  if (peer.rawText) {
    // Text messages that are not UTF-8 (RFC 6455 §8.1): the server must fail the connection
    // with 1007. Whole, split across fragments, and ending inside a character.
    const bad = {
      invalid: [Buffer.from([0x68, 0x69, 0xff, 0x21])],
      'invalid-fragmented': [Buffer.from('valid start '), Buffer.from([0xc3]), Buffer.from([0x28]), Buffer.from(' end')],
      truncated: [Buffer.concat([Buffer.from('ends inside an emoji '), Buffer.from('🎉', 'utf8').subarray(0, 3)])],
      surrogate: [Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x62])],
    };
    for (const [name, frags] of Object.entries(bad)) {
      add(`utf8/${name}`, async () => {
        const conn = await open(url(base, `utf8/${name}`));
        if (frags.length === 1) conn.send('text', frags[0]);
        else conn.sendFragments('text', frags);
        const c = await conn.rec.take('close');
        return { closeCode: c.code, closeReason: c.reason, messages: conn.rec.count('message') };
      });
    }
  }

  // Many messages on several connections at once: every echo in order and unchanged.
  add('burst', async () => {
    const run1 = async (i) => {
      const conn = await open(url(base, `burst/${i}`));
      const sent = [];
      for (let j = 0; j < BURST.messages; j++) {
        const type = j % 2 ? 'binary' : 'text';
        const data = payload(type, crypto.randomInt(0, 3000));
        sent.push([type, sha256(Buffer.from(data))]);
        conn.send(type, data);
      }
      let received = 0;
      let mismatch = null;
      for (const [type, sum] of sent) {
        const m = await conn.rec.take('message');
        received++;
        if (!mismatch && (m.type !== type || sha256(messageBytes(m)) !== sum)) mismatch = `connection ${i} message ${received - 1}`;
      }
      const closed = await closeClean(conn);
      return { sent: sent.length, received, mismatch, closeCode: closed.closeCode };
    };
    const all = await Promise.all(Array.from({ length: BURST.connections }, (_, i) => run1(i)));
    return {
      connections: all.length,
      sent: all.reduce((n, r) => n + r.sent, 0),
      received: all.reduce((n, r) => n + r.received, 0),
      mismatches: all.filter((r) => r.mismatch).map((r) => r.mismatch),
      closeCodes: [...new Set(all.map((r) => r.closeCode))],
    };
  });

  for (const type of ['text', 'binary']) {
    add(`limit/${type}/1024`, () => echo(url(limited, `limit/${type}/1024`), type, payload(type, 1024)));
    add(`limit/${type}/1025`, async () => {
      const conn = await open(url(limited, `limit/${type}/1025`));
      conn.send(type, payload(type, 1025));
      const c = await conn.rec.take('close');
      return { closeCode: c.code, closeReason: c.reason, messages: conn.rec.count('message') };
    });
  }

  // Highly compressible text at and over the limit: with permessage-deflate negotiated, the
  // limit applies to the decoded size, however small the compressed frames are.
  for (const n of COMPRESSIBLE) {
    add(`limit/compressible/${n}`, async () => {
      const conn = await open(url(limited, `limit/compressible/${n}`));
      const text = 'a'.repeat(n);
      conn.send('text', text);
      const first = await conn.rec.take('message', 'close');
      const r = { sentLen: n, extensions: conn.extensions() };
      if (first.kind === 'close') return Object.assign(r, { closeCode: first.code, closeReason: first.reason, messages: 0 });
      return Object.assign(r, describe('sent', 'text', text), describe('recv', first.type, messageBytes(first)),
        { firstDiff: firstDiff(Buffer.from(text), messageBytes(first)), recvEqual: first.data.toString() === text },
        await closeClean(conn));
    });
  }

  // Messages far over the limit, on several connections at once: each must still observe the
  // server's 1009 (not a reset connection, 1006).
  add('limit/large', async () => {
    const one = async (i) => {
      const conn = await open(url(limited, `limit/large/${i}`));
      conn.send('binary', payload('binary', LARGE.size));
      const c = await conn.rec.take('close');
      return { code: c.code, reason: c.reason, messages: conn.rec.count('message') };
    };
    const all = await Promise.all(Array.from({ length: LARGE.connections }, (_, i) => one(i)));
    return {
      sentLen: LARGE.size,
      closeCodes: all.map((r) => r.code),
      closeReasons: all.map((r) => r.reason),
      messages: all.reduce((n, r) => n + r.messages, 0),
    };
  });

  const offers = { 'foo,amqp,irc': ['foo', 'amqp', 'irc'], 'irc,amqp': ['irc', 'amqp'], foo: ['foo'], none: [] };
  for (const [name, protocols] of Object.entries(offers)) {
    add(`protocol/${name}`, async () => {
      const conn = peer.connect(url(base, `protocol/${name}`), protocols);
      const first = await conn.rec.take('open', 'close');
      const hs = conn.handshake();
      const errors = conn.rec.events.filter((e) => e.kind === 'error').map((e) => e.message);
      if (first.kind === 'close') {
        return Object.assign({ opened: false, closeCode: first.code, errors }, hs);
      }
      return Object.assign({ opened: true, protocol: conn.protocol(), extensions: conn.extensions(), errors }, hs,
        await closeClean(conn));
    });
  }

  return list;
}

module.exports = {
  CHROMIUM_ARGS, CASE_TIMEOUT, ECHO_SIZES, UNICODE, CLOSES, BURST, LARGE, COMPRESSIBLE,
  sha256, randomText, payload, describe, firstDiff, withTimeout, httpGet, run, recorder, cases,
};
