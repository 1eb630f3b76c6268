'use strict';
// browser-nes-client.js: herald's browser nes client (browser/client.js, the Client over
// HeraldSocket) in Chromium, driven by playwright-core, against the herald nes server that
// browser/client_test.go runs.
//
//   node browser-nes-client.js CHROMIUM BASE_URL PROXY_URL CONTROL_URL TRANSPORT [--proxy=URL] [CASE...]
//
// BASE_URL is the nes server (http://HOST:PORT); its page at / loads /herald/client.js.
// PROXY_URL is the same server through a TCP proxy that the test can freeze (its open
// connections go silent both ways), for the heartbeat case. CONTROL_URL is the test's control
// server: POST /publish, /broadcast, /revoke, /drop, /stop, /start, /restart, /refuse,
// /subscribers, /freeze, /thaw, /cut, /burst (see client_harness_test.go). TRANSPORT is
// 'websocket' (the client's defaults), 'sse' or 'poll' (options.transports: [TRANSPORT]), or
// 'auto': the default transports in their order, each but the last given 1.5 s
// (fallbackTimeout), for a network that makes the client fall back by itself. --proxy sends
// all of Chromium's traffic, loopback included, through that HTTP proxy. With CASE arguments
// only those cases run; without, every case but the opt-in ones (burst).
//
// Each case runs in the page and reports what it observed, one JSON line per case (see
// peerlib.js's run); the checks live in the Go test. The network is closed: background
// networking stays off.

const http = require('http');
const { chromium } = require('playwright-core');
const { CHROMIUM_ARGS, run } = require('./peerlib');

// control posts body to the control server and returns its JSON answer.
function control(base, op, body) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body || {}));
    const req = http.request(base + '/' + op, {
      method: 'POST', headers: { 'content-type': 'application/json', 'content-length': data.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(new Error(`control ${op}: ${res.statusCode} ${text}`));
        try {
          resolve(text ? JSON.parse(text) : null);
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

// pageLib runs in the page: it imports the client and installs window.__cases, one async
// function per case. Every client a case makes is disconnected when the case ends.
async function pageLib(transport) {
  const { Client, HeraldSocket } = await import('/herald/client.js');
  const AUTH = { headers: { authorization: 'Basic ' + btoa('john:secret') } };
  const BAD = { headers: { authorization: 'Basic ' + btoa('john:wrong') } };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const ctl = (op, body) => window.__ctl(op, body || {});
  const subscribers = async (path) => (await ctl('subscribers', { path })).count;

  // shape is what the Go test sees of an error.
  const shape = (err) => err && {
    message: err.message, type: err.type, isNes: err.isNes, statusCode: err.statusCode,
    data: err.data, headers: err.headers, path: err.path, isError: err instanceof Error,
  };
  const outcome = async (p) => {
    try {
      return { ok: true, value: await p };
    } catch (err) {
      return { ok: false, error: shape(err) };
    }
  };
  // tracked follows a promise: settled turns true once it has.
  const tracked = (p) => {
    const t = { settled: false };
    t.outcome = outcome(p).then((o) => { t.settled = true; return o; });
    return t;
  };
  const until = async (what, cond, ms, events) => {
    for (const end = performance.now() + (ms || 8000); !cond();) {
      if (performance.now() > end) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events || [])}`);
      await sleep(10);
    }
  };

  let clients = [];
  // make returns a client for the page's server over the run's transport, with every callback
  // recorded in c.ev ({kind, ...}).
  function make(options) {
    const base = { websocket: {}, auto: { fallbackTimeout: 1500 } }[transport] || { transports: [transport] };
    const opts = Object.assign({}, base, options);
    const c = new Client(location.origin, opts);
    clients.push(c);
    const ev = [];
    c.ev = ev;
    const t0 = performance.now();
    const at = () => Math.round(performance.now() - t0);
    c.onConnect = () => ev.push({ kind: 'connect', at: at(), id: c.id, transport: c.transport });
    c.onDisconnect = (willReconnect, log) => ev.push({ kind: 'disconnect', at: at(), willReconnect, log: Object.assign({}, log, { error: shape(log.error) }) });
    c.onError = (err) => ev.push({ kind: 'error', at: at(), error: shape(err), cause: err.cause && String(err.cause.message) });
    c.onReconnect = (info) => ev.push({ kind: 'reconnect', at: at(), attempt: info.attempt, delay: info.delay, error: shape(info.error) });
    c.onTransport = (name) => ev.push({ kind: 'transport', at: at(), name });
    c.onHeartbeatTimeout = (willReconnect) => ev.push({ kind: 'heartbeatTimeout', at: at(), willReconnect });
    c.onUpdate = (message) => ev.push({ kind: 'update', at: at(), message });
    c.all = (kind) => ev.filter((e) => e.kind === kind);
    c.count = (kind) => c.all(kind).length;
    c.waitFor = async (kind, n = 1, ms = 8000) => {
      await until(`${n} ${kind} event(s)`, () => c.count(kind) >= n, ms, ev);
      return c.all(kind)[n - 1];
    };
    return c;
  }
  // inbox is a subscription handler that records what it gets.
  function inbox() {
    const got = [];
    const h = (message, flags) => {
      got.push({ hasMessage: message !== undefined, message, flags: Object.assign({}, flags, flags && flags.error ? { error: shape(flags.error) } : {}) });
    };
    h.got = got;
    h.waitFor = (n = 1, ms = 8000) => until(`${n} publication(s)`, () => got.length >= n, ms, got);
    return h;
  }
  // drop has the server close c's connection (POST /drop over nes).
  const drop = (c) => c.request({ method: 'POST', path: '/drop' }).catch(() => {});

  const cases = {
    // connect, requests by route id and path, the id and transport, a second connect, and
    // disconnect.
    async connect() {
      const c = make();
      const r = { exported: { Client: typeof Client, HeraldSocket: typeof HeraldSocket }, before: { id: c.id, transport: c.transport } };
      await c.connect();
      Object.assign(r, { id: c.id, transport: c.transport, transports: c.all('transport').map((e) => e.name), connects: c.count('connect') });
      r.hello = await outcome(c.request('hello'));
      r.path = await outcome(c.request('/h'));
      r.echo = await outcome(c.request({ method: 'POST', path: '/echo', payload: { a: 1, s: 'héllo 🎉' } }));
      r.again = await outcome(c.connect());
      await c.disconnect();
      r.after = { id: c.id, transport: c.transport, disconnects: c.all('disconnect') };
      r.afterRequest = await outcome(c.request('hello'));
      return r;
    },

    // The browser's own WebSocket as the socket class.
    async native() {
      const c = make({ WebSocket: window.WebSocket });
      await c.connect();
      return { transport: c.transport, hello: await outcome(c.request('hello')) };
    },

    // Error shapes: calls before connecting, 404s, a 500, a forbidden header, a request
    // timeout, invalid arguments, a refused subscription.
    async errors() {
      const c = make();
      const r = {};
      r.beforeConnect = await outcome(c.request('hello'));
      r.messageBeforeConnect = await outcome(c.message('x'));
      await c.connect();
      r.unknownRoute = await outcome(c.request('nope'));
      r.unknownPath = await outcome(c.request('/nope'));
      r.missing = await outcome(c.request('/missing'));
      r.boom = await outcome(c.request('/boom'));
      r.authHeader = await outcome(c.request({ path: '/h', headers: { Authorization: 'x' } }));
      const impatient = make({ timeout: 300 });
      await impatient.connect();
      r.timeout = await outcome(impatient.request('/slow?ms=2000'));
      r.invalidPath = await outcome(c.subscribe('item', () => {}));
      r.invalidHandler = await outcome(c.subscribe('/item/1'));
      r.unknownSub = await outcome(c.subscribe('/nope', () => {}));
      r.subscriptions = c.subscriptions();
      r.again = await outcome(c.connect());
      r.stillWorks = await outcome(c.request('hello'));
      return r;
    },

    async message() {
      const c = make();
      await c.connect();
      return { obj: await outcome(c.message({ a: 1 })), str: await outcome(c.message('hi')), none: await outcome(c.message()) };
    },

    // onUpdate gets broadcasts.
    async update() {
      const c = make();
      await c.connect();
      await ctl('broadcast', { message: { hi: 1 } });
      await c.waitFor('update');
      return { updates: c.all('update').map((e) => e.message) };
    },

    // subscribe, publish (the filter skips john's own updates), a second handler, unsubscribe
    // one handler then the path. A publication on /item/6 is the barrier: the server sends in
    // order, so what was published before it and has not arrived with it never will.
    async subscribe() {
      const c = make();
      await c.connect({ auth: AUTH });
      const h = inbox();
      const h2 = inbox();
      const barrier = inbox();
      const r = {};
      r.sub = await outcome(c.subscribe('/item/5', h));
      r.sub2 = await outcome(c.subscribe('/item/5', h2));
      r.subSame = await outcome(c.subscribe('/item/5', h));
      await c.subscribe('/item/6', barrier);
      r.subscriptions = c.subscriptions();
      r.server = await subscribers('/item/5');
      await ctl('publish', { path: '/item/5', message: { n: 1 } });
      await ctl('publish', { path: '/item/5', message: { n: 2, updater: 'john' } });
      await ctl('publish', { path: '/item/5', message: { n: 3 } });
      await ctl('publish', { path: '/item/6', message: { barrier: 1 } });
      await barrier.waitFor(1);
      r.h = h.got.slice();
      r.h2 = h2.got.slice();
      r.unsubOne = await outcome(c.unsubscribe('/item/5', h2));
      r.serverAfterOne = await subscribers('/item/5');
      await ctl('publish', { path: '/item/5', message: { n: 4 } });
      await ctl('publish', { path: '/item/6', message: { barrier: 2 } });
      await barrier.waitFor(2);
      r.afterOne = { h: h.got.length, h2: h2.got.length };
      r.unsubAll = await outcome(c.unsubscribe('/item/5'));
      r.serverAfterAll = await subscribers('/item/5');
      await ctl('publish', { path: '/item/5', message: { n: 5 } });
      await ctl('publish', { path: '/item/6', message: { barrier: 3 } });
      await barrier.waitFor(3);
      r.afterAll = { h: h.got.length, h2: h2.got.length };
      r.subscriptionsAfter = c.subscriptions();
      r.unsubUnknown = await outcome(c.unsubscribe('/item/99'));
      return r;
    },

    // The server revokes a subscription, with a message and without one.
    async revoke() {
      const c = make();
      await c.connect();
      const h = inbox();
      const h2 = inbox();
      await c.subscribe('/item/7', h);
      await c.subscribe('/item/8', h2);
      await ctl('revoke', { path: '/item/7', message: { bye: true } });
      await h.waitFor(1);
      await ctl('revoke', { path: '/item/8' });
      await h2.waitFor(1);
      return { h: h.got, h2: h2.got, subscriptions: c.subscriptions(), server: await subscribers('/item/7'), still: await outcome(c.request('hello')) };
    },

    // Direct auth: a refused hello leaves the client disconnected, not reconnecting; good
    // credentials authenticate the socket's requests; reauthenticate.
    async auth() {
      const c = make();
      const r = {};
      r.bad = await outcome(c.connect({ auth: BAD, delay: 20 }));
      await sleep(300);
      r.afterBad = { reconnects: c.count('reconnect'), connects: c.count('connect'), disconnects: c.count('disconnect'), id: c.id };
      r.good = await outcome(c.connect({ auth: AUTH }));
      r.authhello = await outcome(c.request('authhello'));
      r.reauth = await outcome(c.reauthenticate(AUTH));
      r.override = c.overrideReconnectionAuth(AUTH);
      const anon = make();
      await anon.connect();
      r.anonAuthhello = await outcome(anon.request('authhello'));
      r.overrideIdle = make().overrideReconnectionAuth(AUTH);
      return r;
    },

    // The server drops the socket (herald.Socket.Disconnect): the client reconnects and its
    // subscription delivers again.
    async drop() {
      const c = make();
      await c.connect({ delay: 100, maxDelay: 200 });
      const h = inbox();
      await c.subscribe('/item/9', h);
      const firstId = c.id;
      await ctl('drop');
      await c.waitFor('connect', 2);
      await ctl('publish', { path: '/item/9', message: { n: 1 } });
      await h.waitFor(1);
      return { firstId, secondId: c.id, transport: c.transport, disconnects: c.all('disconnect'), connects: c.count('connect'), got: h.got };
    },

    // The network cuts every connection (the proxy closes them) while a request waits for its
    // reply: over WebSocket the request fails at once and the client reconnects; over the
    // fallback the session survives the cut. Runs on the page of the proxy's origin.
    async cut() {
      const c = make();
      await c.connect({ delay: 50, maxDelay: 100 });
      const h = inbox();
      await c.subscribe('/item/12', h);
      const slow = outcome(c.request('/slow?ms=2000'));
      await sleep(100);
      const t0 = performance.now();
      await ctl('cut');
      const r = { slow: await slow, settled: performance.now() - t0 };
      if (!r.slow.ok) await c.waitFor('connect', 2);
      await ctl('publish', { path: '/item/12', message: { n: 1 } });
      await h.waitFor(1);
      return Object.assign(r, { disconnects: c.all('disconnect'), connects: c.count('connect'), got: h.got });
    },

    // A numbered burst on one subscription, its way down (the event stream or the long-poll)
    // cut twice on the way (/burst: the TCP proxy in front of the server closes those
    // connections), then a publication on another path as the barrier. Over the fallback the
    // session outlives its connections, so every publication must arrive once, in order. Opt-in
    // (the fallback only); runs on the page of the proxy's origin.
    async burst() {
      const c = make();
      await c.connect({ auth: AUTH, delay: 50, maxDelay: 100 });
      const h = inbox();
      const barrier = inbox();
      await c.subscribe('/item/60', h);
      await c.subscribe('/item/61', barrier);
      const { cut } = await ctl('burst', { path: '/item/60', n: 150, cuts: 2, barrier: '/item/61' });
      const arrived = await outcome(barrier.waitFor(1, 10000));
      return {
        cut, arrived, transport: c.transport, got: h.got.map((p) => p.message && p.message.n),
        disconnects: c.all('disconnect'), connects: c.count('connect'), errors: c.all('error').map((e) => e.error),
      };
    },

    // The server goes down and comes back on the same port.
    async restart() {
      const c = make();
      await c.connect({ delay: 100, maxDelay: 300 });
      const h = inbox();
      await c.subscribe('/item/10', h);
      const firstId = c.id;
      await ctl('restart', { down: 500 });
      await c.waitFor('connect', 2, 10000);
      await ctl('publish', { path: '/item/10', message: { n: 1 } });
      await h.waitFor(1);
      return {
        firstId, secondId: c.id, got: h.got, subscriptions: c.subscriptions(), server: await subscribers('/item/10'),
        disconnects: c.all('disconnect'), reconnects: c.all('reconnect'),
      };
    },

    // The reconnection waits: phase A while the server is down (the caps double from 20 ms to
    // 320 ms, every wait drawn in [0, cap]); b1 after a connection that stayed up past
    // resetAfter (cap 20 again); phase C after connections dropped at once (the caps grow
    // again); b2 after another stable connection.
    async backoff() {
      const c = make();
      await c.connect({ delay: 20, maxDelay: 320, resetAfter: 1000 });
      const waits = () => c.all('reconnect').map((e) => ({ attempt: e.attempt, delay: e.delay, error: e.error }));
      await ctl('stop');
      try {
        await c.waitFor('reconnect', 8, 10000);
      } finally {
        await ctl('start');
      }
      await c.waitFor('connect', 2, 10000);
      const phaseA = waits().slice(0, 8);
      await sleep(1200);
      let n = c.count('reconnect');
      await drop(c);
      await c.waitFor('connect', 3);
      const b1 = waits().slice(n);
      n = c.count('reconnect');
      for (let i = 0; i < 4; i++) {
        await drop(c);
        await c.waitFor('connect', 4 + i);
      }
      const phaseC = waits().slice(n);
      await sleep(1200);
      n = c.count('reconnect');
      await drop(c);
      await c.waitFor('connect', 8);
      const b2 = waits().slice(n);
      return { phaseA, b1, phaseC, b2 };
    },

    // retries bounds one outage: three outages of one attempt each pass with retries 2; a
    // fourth, with the server down, gives up after two. reconnect: false never reconnects.
    async retries() {
      const c = make();
      await c.connect({ delay: 20, maxDelay: 40, retries: 2 });
      for (let i = 0; i < 3; i++) {
        await drop(c);
        await c.waitFor('connect', 2 + i);
      }
      const before = c.count('reconnect');
      await ctl('stop');
      try {
        await until('giving up', () => c.all('disconnect').some((e) => !e.willReconnect), 8000, c.ev);
      } finally {
        await ctl('start');
      }
      const r = {
        connects: c.count('connect'), lastOutage: c.all('reconnect').slice(before).map((e) => e.attempt),
        disconnects: c.all('disconnect'), errors: c.all('error').map((e) => e.error),
      };
      await sleep(200);
      r.reconnectsAfterGivingUp = c.count('reconnect') - before;
      r.again = await outcome(c.connect());
      const once = make();
      await once.connect({ reconnect: false, delay: 20 });
      await drop(once);
      await once.waitFor('disconnect');
      await sleep(300);
      r.noReconnect = { disconnects: once.all('disconnect'), reconnects: once.count('reconnect'), connects: once.count('connect'), request: await outcome(once.request('hello')) };
      return r;
    },

    // disconnect(): pending requests fail at once, no reconnection, the subscriptions wait for
    // the next connect().
    async disconnect() {
      const c = make();
      await c.connect({ delay: 20 });
      const h = inbox();
      await c.subscribe('/item/50', h);
      const slow = outcome(c.request('/slow?ms=3000'));
      await sleep(50);
      const t0 = performance.now();
      await c.disconnect();
      const r = { slow: await slow, failedAfter: performance.now() - t0, id: c.id, disconnects: c.all('disconnect') };
      await sleep(300);
      r.reconnects = c.count('reconnect');
      r.subscriptions = c.subscriptions();
      r.serverWhileDisconnected = await subscribers('/item/50');
      await c.connect();
      await ctl('publish', { path: '/item/50', message: { n: 1 } });
      await h.waitFor(1);
      r.got = h.got;
      return r;
    },

    // The server stops answering (the proxy holds the connection silent): the heartbeat
    // (interval + timeout from the hello) ends it, and the client reconnects. Runs on the page
    // of the proxy's origin.
    async heartbeat() {
      const c = make();
      await c.connect({ delay: 50, maxDelay: 100 });
      const h = inbox();
      await c.subscribe('/item/11', h);
      const t0 = performance.now();
      await ctl('freeze');
      let after;
      try {
        await c.waitFor('heartbeatTimeout', 1, 8000);
        after = performance.now() - t0;
      } finally {
        await ctl('thaw');
      }
      await c.waitFor('connect', 2, 10000);
      await ctl('publish', { path: '/item/11', message: { n: 1 } });
      await h.waitFor(1);
      return {
        after, heartbeatTimeouts: c.all('heartbeatTimeout'), errors: c.all('error').map((e) => e.error),
        disconnects: c.all('disconnect'), got: h.got, transport: c.transport,
      };
    },

    // A reconnection's hello refuses one of two paths: that path is dropped (its handler hears
    // revoked, with the error) and the client connects again with the other.
    async refuse() {
      const c = make();
      await c.connect({ delay: 50, maxDelay: 100 });
      const h1 = inbox();
      const h2 = inbox();
      await c.subscribe('/item/21', h1);
      await c.subscribe('/item/22', h2);
      await ctl('refuse', { paths: ['/item/22'] });
      try {
        await ctl('drop');
        await c.waitFor('connect', 2);
        await ctl('publish', { path: '/item/21', message: { n: 1 } });
        await h1.waitFor(1);
        await h2.waitFor(1);
        return {
          h1: h1.got, h2: h2.got, subscriptions: c.subscriptions(), server22: await subscribers('/item/22'),
          disconnects: c.all('disconnect'), connects: c.count('connect'), errors: c.all('error').map((e) => e.error),
        };
      } finally {
        await ctl('refuse', { paths: [] });
      }
    },

    // subscribe() before connect() resolves at once; while reconnecting it waits for the hello
    // that carries the path, and settles with its outcome (one accepted, one refused).
    async queued() {
      const r = {};
      const idle = make();
      const h0 = inbox();
      const t0 = tracked(idle.subscribe('/item/30', h0));
      await sleep(0);
      r.idleSettledAtOnce = t0.settled;
      r.idleOutcome = await t0.outcome;
      r.idleSubscriptions = idle.subscriptions();

      const c = make();
      await c.connect({ delay: 50, maxDelay: 100 });
      await ctl('refuse', { paths: ['/item/32'] });
      try {
        await ctl('stop');
        let s1, s2;
        const h1 = inbox();
        const h2 = inbox();
        try {
          await c.waitFor('disconnect');
          s1 = tracked(c.subscribe('/item/31', h1));
          s2 = tracked(c.subscribe('/item/32', h2));
          await sleep(300);
          r.settledWhileDown = [s1.settled, s2.settled];
          r.subscriptionsWhileDown = c.subscriptions();
        } finally {
          await ctl('start');
        }
        await c.waitFor('connect', 2);
        r.s1 = await s1.outcome;
        r.s2 = await s2.outcome;
        r.subscriptions = c.subscriptions();
        await ctl('publish', { path: '/item/31', message: { n: 1 } });
        await h1.waitFor(1);
        r.h1 = h1.got;
        r.h2 = h2.got;
      } finally {
        await ctl('refuse', { paths: [] });
      }

      await idle.connect();
      await ctl('publish', { path: '/item/30', message: { n: 0 } });
      await h0.waitFor(1);
      r.h0 = h0.got;
      return r;
    },

    // Messages the server sends in chunks (WebSocket only: its MaxChunkChars is 4096) come
    // back whole; past maxMessageLength the connection is dropped and made again.
    async chunked() {
      const big = 'x'.repeat(20000) + '🎉' + 'y'.repeat(5000);
      const c = make();
      await c.connect();
      const r = { transport: c.transport };
      const echo = await outcome(c.request({ method: 'POST', path: '/echo', payload: { s: big } }));
      r.big = { ok: echo.ok, equal: echo.ok && echo.value.payload.s === big, error: echo.error };
      const small = make({ maxMessageLength: 10000 });
      await small.connect({ delay: 20 });
      const tooBig = await outcome(small.request({ method: 'POST', path: '/echo', payload: { s: big } }));
      r.tooBig = { ok: tooBig.ok, equal: tooBig.ok && tooBig.value.payload.s === big, error: tooBig.error };
      if (!tooBig.ok) await small.waitFor('connect', 2);
      r.smallErrors = small.all('error').map((e) => e.error);
      r.smallDisconnects = small.all('disconnect');
      r.after = await outcome(small.request('hello'));
      return r;
    },

    // Callbacks and handlers that throw, or return rejected promises, are reported to onError
    // and break nothing; callbacks may call the client.
    async callbacks() {
      const c = make();
      const fromCallback = [];
      c.onConnect = () => {
        c.request('hello').then((res) => fromCallback.push(res.payload));
        throw new Error('boom in onConnect');
      };
      await c.connect();
      const h = inbox();
      await c.subscribe('/item/40', () => { throw new Error('boom in handler'); });
      await c.subscribe('/item/40', async () => { throw new Error('async boom'); });
      await c.subscribe('/item/40', h);
      await ctl('publish', { path: '/item/40', message: { n: 1 } });
      await h.waitFor(1);
      await until('the request from onConnect', () => fromCallback.length > 0, 3000);
      await sleep(50);
      const r = { errors: c.all('error').map((e) => ({ message: e.error.message, type: e.error.type, cause: e.cause })), fromCallback };
      c.onError = () => { throw new Error('onError throws'); };
      await ctl('publish', { path: '/item/40', message: { n: 2 } });
      await h.waitFor(2);
      r.got = h.got.length;
      r.still = await outcome(c.request('hello'));
      // disconnect() from inside onDisconnect stops the reconnection.
      const d = make();
      await d.connect({ delay: 20 });
      d.onDisconnect = (willReconnect) => { d.ev.push({ kind: 'disconnect', willReconnect }); d.disconnect(); };
      await drop(d);
      await d.waitFor('disconnect');
      await sleep(300);
      r.stopped = { reconnects: d.count('reconnect'), connects: d.count('connect'), disconnects: d.all('disconnect').map((e) => e.willReconnect) };
      return r;
    },
  };

  window.__cases = {};
  for (const [name, fn] of Object.entries(cases)) {
    window.__cases[name] = async () => {
      try {
        return await fn();
      } finally {
        const cs = clients;
        clients = [];
        await Promise.all(cs.map((c) => c.disconnect()));
      }
    };
  }
  return Object.keys(cases);
}

async function main() {
  const [executablePath, base, proxied, ctlURL, transport, ...rest] = process.argv.slice(2);
  if (!executablePath || !base || !proxied || !ctlURL || !transport) {
    console.error('usage: node browser-nes-client.js CHROMIUM BASE_URL PROXY_URL CONTROL_URL TRANSPORT [--proxy=URL] [CASE...]');
    process.exit(2);
  }
  const proxy = (rest.find((a) => a.startsWith('--proxy=')) || '').slice('--proxy='.length);
  const only = rest.filter((a) => !a.startsWith('--'));
  const optIn = new Set(['burst']);
  const browser = await chromium.launch({ executablePath, timeout: 30000, args: CHROMIUM_ARGS });
  try {
    // '<-loopback>' takes loopback off Chromium's implicit bypass list: the test's servers are
    // all on 127.0.0.1.
    const context = await browser.newContext(proxy ? { proxy: { server: proxy, bypass: '<-loopback>' } } : {});
    // One page on the server's origin, one on the proxy's (for the heartbeat and cut cases), each
    // connecting to its own origin.
    const open = async (origin) => {
      const page = await context.newPage();
      page.on('console', (m) => console.error('console: ' + m.text()));
      page.on('pageerror', (e) => console.error('pageerror: ' + e));
      await page.exposeFunction('__ctl', (op, body) => control(ctlURL, op, body));
      await page.goto(origin + '/', { timeout: 15000 });
      const names = await page.evaluate(pageLib, transport);
      return { page, names };
    };
    const direct = await open(base);
    const viaProxy = proxied === base ? direct : await open(proxied);
    const wanted = (n) => (only.length === 0 ? !optIn.has(n) : only.includes(n));
    const cases = direct.names.filter(wanted).map((n) => {
      const { page } = n === 'heartbeat' || n === 'cut' || n === 'burst' ? viaProxy : direct;
      return [n, () => page.evaluate((name) => window.__cases[name](), n)];
    });
    await run(cases);
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
