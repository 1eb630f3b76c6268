'use strict';
// browser-heraldsocket.js: herald's HeraldSocket (browser/herald-socket.js) in Chromium, driven
// by playwright-core, under the official @hapi/nes browser client, against a herald nes server
// that the Go test (browser/peers_test.go) runs, directly and through proxies it controls.
//
//   node browser-heraldsocket.js PLAN_JSON
//
// PLAN_JSON: {"chromium": PATH, "cases": [{"name", "page", "proxy", "kind", "args", "timeout"}]}.
// Each case runs in a page loaded from "page" (one page per URL and proxy, loaded once; with
// "proxy", an HTTP proxy URL, in a browser context that sends everything through it, loopback
// included): a page of the Go
// test that loads @hapi/nes's lib/client.js (window.nes) and imports HeraldSocket from
// /herald/herald-socket.js (window.HeraldSocket), then sets window.__ready. "kind" names one of
// the functions of pageLib below, called with "args"; "timeout" (ms) bounds it.
//
// Prints one JSON object per line: {"browser": VERSION} first, then per case {"case": name,
// ...what the page observed, "webSockets": WebSocket handshakes Chromium started during the
// case (CDP), "ms"} or {"case": name, "error": ...}, then {"done": true}. The checks live in
// the Go test.

const { chromium } = require('playwright-core');
const { CHROMIUM_ARGS } = require('./peerlib');

const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// pageLib runs in the page: the cases. Each returns what it observed.
function pageLib() {
  const HeraldSocket = window.HeraldSocket;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function waitFor(cond, ms, what) {
    const end = performance.now() + ms;
    while (!cond()) {
      if (performance.now() > end) throw new Error('timeout waiting for ' + what);
      await sleep(10);
    }
  }

  function deadline(promise, ms, what) {
    let timer;
    return Promise.race([promise, new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout waiting for ' + what)), ms);
    })]).finally(() => clearTimeout(timer));
  }

  // track returns a HeraldSocket class configured with options (none: HeraldSocket's own
  // defaults) that records each socket it makes, and how each closed.
  function track(options) {
    const Base = options ? HeraldSocket.configure(options) : HeraldSocket;
    const sockets = [];
    const closes = [];
    class Tracked extends Base {
      constructor(...args) {
        super(...args);
        sockets.push(this);
        this.addEventListener('close', (e) => closes.push({ transport: this.transport, code: e.code, reason: e.reason, wasClean: e.wasClean }));
      }
    }
    return { Sock: Tracked, sockets, closes };
  }

  // live holds what a case left open, closed by __cleanup after the case (so that a case that
  // failed half-way does not disturb the next one).
  const live = [];
  window.__cleanup = async () => {
    for (const x of live.splice(0)) {
      try {
        if (x.client) await deadline(x.client.disconnect(), 3000, 'disconnect');
        else if (x.readyState < 2) x.close();
      } catch (e) { /* gone already */ }
    }
  };

  // newClient makes an official nes client over a tracked HeraldSocket class.
  function newClient(url, options) {
    const t = track(options);
    window.nes.Client.WebSocket = t.Sock;
    const client = new window.nes.Client(url);
    live.push({ client });
    const events = { connects: 0, disconnects: [], errors: [] };
    client.onConnect = () => { events.connects++; };
    client.onDisconnect = (willReconnect, log) => events.disconnects.push({ willReconnect, code: log.code, reason: log.reason });
    client.onError = (err) => events.errors.push(String((err && err.message) || err));
    return Object.assign(t, { client, events, transport: () => (t.sockets.length ? t.sockets[t.sockets.length - 1].transport : '') });
  }

  // reconnection waits for the client's next connection.
  function reconnection(c) {
    return new Promise((resolve) => {
      c.client.onConnect = () => {
        c.events.connects++;
        c.client.onConnect = () => { c.events.connects++; };
        resolve();
      };
    });
  }

  async function switchTo(to) {
    const res = await fetch('/switch', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ to }) });
    if (res.status !== 204) throw new Error('switch: ' + res.status);
    await sleep(200); // the relay switches 50 ms after answering
  }

  // rawSocket opens a HeraldSocket of class Sock and says hello by hand; it answers the
  // server's pings and queues the other messages for next().
  async function rawSocket(Sock, ws) {
    const s = new Sock(ws);
    live.push(s);
    const messages = [];
    let pings = 0;
    s.onmessage = (e) => {
      if (JSON.parse(e.data).type === 'ping') s.send(JSON.stringify({ type: 'ping', id: 1000 + pings++ }));
      else messages.push(e);
    };
    s.closed = new Promise((resolve) => { s.onclose = resolve; });
    s.next = async () => {
      await waitFor(() => messages.length > 0, 5000, 'a message');
      return JSON.parse(messages.shift().data);
    };
    await waitFor(() => s.readyState === s.OPEN, 10000, 'open');
    s.send(JSON.stringify({ type: 'hello', version: '2', id: 1 }));
    const hello = await s.next();
    if (hello.type !== 'hello') throw new Error('hello: ' + JSON.stringify(hello));
    return s;
  }

  async function gate(mode) {
    const res = await fetch('/gate?mode=' + mode, { method: 'POST' });
    if (res.status !== 204) throw new Error('gate: ' + res.status);
  }

  window.__cases = {
    // api: the WebSocket interface itself, with nes's wire messages written by hand.
    async api({ ws, options }) {
      const r = {};
      r.constants = [HeraldSocket.CONNECTING, HeraldSocket.OPEN, HeraldSocket.CLOSING, HeraldSocket.CLOSED];
      const Sock = HeraldSocket.configure(options);
      r.configuredConstants = [Sock.CONNECTING, Sock.OPEN, Sock.CLOSING, Sock.CLOSED];
      r.invalid = {};
      const tries = {
        transport: () => HeraldSocket.configure({ transports: ['carrier-pigeon'] }),
        empty: () => HeraldSocket.configure({ transports: [] }),
        twice: () => HeraldSocket.configure({ transports: ['sse', 'sse'] }),
        timeout: () => HeraldSocket.configure({ fallbackTimeout: -1 }),
        unknown: () => HeraldSocket.configure({ fallbackTimeOut: 1 }),
        url: () => new HeraldSocket('ftp://example.com/'),
        constructorOption: () => new HeraldSocket(ws, undefined, { transports: 'sse' }),
      };
      for (const [name, fn] of Object.entries(tries)) {
        try { fn(); r.invalid[name] = 'accepted'; } catch (e) { r.invalid[name] = e.name; }
      }

      const s = new Sock(ws);
      live.push(s);
      const log = [];
      r.initial = { readyState: s.readyState, transport: s.transport, url: s.url, OPEN: s.OPEN, CLOSED: s.CLOSED };
      try { s.send('too early'); r.sendConnecting = 'accepted'; } catch (e) { r.sendConnecting = e.name; }
      const messages = [];
      s.onopen = () => log.push('onopen');
      s.addEventListener('open', () => log.push('listener'));
      const removed = () => log.push('removed listener');
      s.addEventListener('open', removed);
      s.removeEventListener('open', removed);
      let pings = 0;
      s.onmessage = (e) => {
        // The server's heartbeat pings are answered, as the nes client does, and set aside.
        if (JSON.parse(e.data).type === 'ping') s.send(JSON.stringify({ type: 'ping', id: 1000 + pings++ }));
        else messages.push(e);
      };
      s.onerror = () => log.push('error');
      const closed = new Promise((resolve) => { s.onclose = resolve; });
      const next = async () => {
        await waitFor(() => messages.length > 0, 5000, 'a message');
        return messages.shift();
      };
      await waitFor(() => s.readyState === s.OPEN, 10000, 'open');
      await sleep(0);
      r.open = { readyState: s.readyState, transport: s.transport, log: log.slice() };

      s.send(JSON.stringify({ type: 'hello', version: '2', id: 1 }));
      const hello = await next();
      r.hello = { dataType: typeof hello.data, origin: hello.origin, message: JSON.parse(hello.data) };
      // Messages in order, unicode whole, and a batch of them sent at once.
      const texts = ['ünïcødé 🎉 ' + 'x'.repeat(1000), 'second', '', 'fourth "quoted" \\ \n line'];
      for (let i = 0; i < 20; i++) s.send(JSON.stringify({ type: 'message', id: 10 + i, message: texts[i % texts.length] + i }));
      const echoes = [];
      for (let i = 0; i < 20; i++) {
        const m = JSON.parse((await next()).data);
        echoes.push(m.type === 'message' && m.id === 10 + i && m.message.echo === texts[i % texts.length] + i);
      }
      r.echoesInOrder = echoes.every(Boolean);

      for (const [name, args] of Object.entries({ code1001: [1001], code2999: [2999], code5000: [5000], reason124: [4000, 'x'.repeat(124)], reasonUnicode: [4000, 'é'.repeat(62)] })) {
        try { s.close(...args); r['close_' + name] = 'accepted'; } catch (e) { r['close_' + name] = e.name; }
      }
      s.close(4000, 'bye é');
      r.closingState = s.readyState;
      try { s.send('after close'); r.sendClosing = 'ignored'; } catch (e) { r.sendClosing = e.name; }
      const ev = await deadline(closed, 5000, 'close');
      r.close = { type: ev.type, code: ev.code, reason: ev.reason, wasClean: ev.wasClean, readyState: s.readyState };
      r.log = log;

      // A relative URL resolves against the page; closed before it opens, a socket fails as a
      // WebSocket does: error, then close 1006.
      const rel = new Sock('/some/path?q=1#frag');
      r.relative = { url: rel.url };
      const relLog = [];
      rel.onerror = () => relLog.push('error');
      const relClosed = new Promise((resolve) => { rel.onclose = resolve; });
      rel.close();
      r.relative.closingState = rel.readyState;
      const rc = await deadline(relClosed, 5000, 'close of a connecting socket');
      r.relative.close = { code: rc.code, wasClean: rc.wasClean, log: relLog };
      return r;
    },

    // features: the official nes client over HeraldSocket: hello, requests, messages,
    // subscriptions and publications, many requests at once (large ones too), the server
    // dropping the socket and the client reconnecting, and a clean disconnect.
    async features({ ws, options, gateMode }) {
      if (gateMode) await gate(gateMode);
      const c = newClient(ws, options);
      const r = {};
      const t0 = performance.now();
      window.__step = 'await c.client.connect( delay 100, maxDelay 300 )';
      await c.client.connect({ delay: 100, maxDelay: 300 });
      r.connectMs = Math.round(performance.now() - t0);
      r.transports = [c.transport()];
      window.__step = 'r.hello  (await c.client.request(hello)).payload';
      r.hello = (await c.client.request('hello')).payload;
      window.__step = 'r.echo  (await c.client.message( hi ncd  )).payload';
      r.echo = (await c.client.message({ hi: 'ünïcødé 🎉' })).payload;
      const updates = [];
      window.__step = 'await c.client.subscribe(/items, (u)  updates.push(u))';
      await c.client.subscribe('/items', (u) => updates.push(u));
      window.__step = 'await c.client.request( method POST, path /publish, payload';
      await c.client.request({ method: 'POST', path: '/publish', payload: { n: 1 } });
      window.__step = 'await waitFor(()  updates.length  1, 5000, the publication)';
      await waitFor(() => updates.length >= 1, 5000, 'the publication');

      // Many requests at once, a few of 200 KB: batched within the server's maxMessages (4)
      // and maxBody (256 KiB).
      const sizes = Array.from({ length: 12 }, (_, i) => (i % 4 === 0 ? 100000 : 100 + i));
      window.__step = 'const replies  await Promise.all(sizes.map((n, i)';
      const replies = await Promise.all(sizes.map((n, i) =>
        c.client.request({ method: 'POST', path: '/echo', payload: { i, text: 'é'.repeat(n) } })));
      r.concurrent = replies.filter((res, i) => res.payload.i === i && res.payload.text === 'é'.repeat(sizes[i])).length;

      // The server drops the socket: the client comes back on a new socket, resubscribed.
      const back = reconnection(c);
      window.__step = 'r.drop  (await c.client.request( method POST, path /drop )).';
      r.drop = (await c.client.request({ method: 'POST', path: '/drop' })).payload;
      window.__step = 'await deadline(back, 10000, the reconnection)';
      await deadline(back, 10000, 'the reconnection');
      r.transports.push(c.transport());
      window.__step = 'r.hello2  (await c.client.request(hello)).payload';
      r.hello2 = (await c.client.request('hello')).payload;
      window.__step = 'await c.client.request( method POST, path /publish, payload';
      await c.client.request({ method: 'POST', path: '/publish', payload: { n: 2 } });
      window.__step = 'await waitFor(()  updates.length  2, 5000, the publication a';
      await waitFor(() => updates.length >= 2, 5000, 'the publication after reconnecting');
      r.updates = updates;

      window.__step = 'await c.client.disconnect()';
      await c.client.disconnect();
      const last = c.sockets[c.sockets.length - 1];
      r.finalState = last.readyState;
      r.sockets = c.sockets.length;
      r.closes = c.closes;
      r.events = c.events;
      if (gateMode) await gate('pass');
      return r;
    },

    // cut: a numbered burst of publications while the Go test cuts every connection between
    // the browser and the server: the page must get each exactly once, in order, with no
    // disconnect.
    async cut({ ws, options, n, cuts }) {
      const c = newClient(ws, options);
      await c.client.connect({ delay: 100, maxDelay: 300 });
      const got = [];
      await c.client.subscribe('/items', (u) => got.push(u.n));
      await c.client.request({ method: 'POST', path: '/burst', payload: { n, cuts } });
      try {
        await waitFor(() => got.includes(n), 15000, 'the last publication');
      } catch (e) { /* the Go test reports what arrived */ }
      await sleep(300); // anything that would come twice
      const r = { got, transports: [c.transport()], sockets: c.sockets.length };
      r.cutConns = await (await fetch('/cuts')).json();
      r.hello = (await c.client.request('hello')).payload; // still working
      r.events = JSON.parse(JSON.stringify(c.events)); // before disconnect() adds its own
      await c.client.disconnect();
      return r;
    },

    // restart: the server behind the proxy replaced by another one.
    async restart({ ws, options }) {
      await switchTo('main');
      const c = newClient(ws, options);
      await c.client.connect({ delay: 100, maxDelay: 300 });
      const updates = [];
      await c.client.subscribe('/items', (u) => updates.push(u));
      const r = { transports: [c.transport()] };
      const back = reconnection(c);
      await c.client.request({ method: 'POST', path: '/switch', payload: { to: 'other' } });
      await deadline(back, 10000, 'the reconnection to the other server');
      r.transports.push(c.transport());
      r.hello = (await c.client.request('hello')).payload;
      await c.client.request({ method: 'POST', path: '/publish', payload: { n: 7 } });
      await waitFor(() => updates.length >= 1, 5000, 'the publication on the other server');
      r.updates = updates;
      r.events = JSON.parse(JSON.stringify(c.events));
      await c.client.disconnect();
      await switchTo('main');
      return r;
    },

    // outage: a raw socket while the network is down for ms: it must close with 1006 after the
    // session's grace period; then a new socket works.
    async outage({ ws, options, ms }) {
      const Sock = HeraldSocket.configure(options);
      const s = await rawSocket(Sock, ws);
      const t0 = performance.now();
      s.send(JSON.stringify({ type: 'request', id: 2, method: 'POST', path: '/outage', payload: { ms } }));
      const ev = await deadline(s.closed, ms + 5000, 'the close');
      const r = { close: { code: ev.code, reason: ev.reason, wasClean: ev.wasClean, afterMs: Math.round(performance.now() - t0) } };
      await sleep(Math.max(0, t0 + ms + 300 - performance.now()));
      const s2 = await rawSocket(Sock, ws);
      r.transport2 = s2.transport;
      r.hello2ok = true;
      s2.close();
      await deadline(s2.closed, 5000, 'the second close');
      return r;
    },

    // tooBig: a message larger than the server's maxBody.
    async tooBig({ ws, options, size }) {
      const s = await rawSocket(HeraldSocket.configure(options), ws);
      s.send(JSON.stringify({ type: 'message', id: 2, message: 'x'.repeat(size) }));
      const ev = await deadline(s.closed, 5000, 'the close');
      return { close: { code: ev.code, reason: ev.reason, wasClean: ev.wasClean } };
    },

    // back: on the fallback while the proxy strips Upgrade; once it passes upgrades again, the
    // next connection (after the server drops the socket) is a WebSocket again.
    async back({ ws, options }) {
      await gate('strip');
      const c = newClient(ws, options);
      await c.client.connect({ delay: 100, maxDelay: 300 });
      const r = { transports: [c.transport()] };
      await gate('pass');
      const back = reconnection(c);
      await c.client.request({ method: 'POST', path: '/drop' });
      await deadline(back, 10000, 'the reconnection');
      r.transports.push(c.transport());
      r.hello = (await c.client.request('hello')).payload;
      await c.client.disconnect();
      r.events = c.events;
      return r;
    },
  };
}

async function main() {
  const plan = JSON.parse(process.argv[2] || '{}');
  if (!plan.chromium || !Array.isArray(plan.cases)) {
    console.error('usage: node browser-heraldsocket.js \'{"chromium": PATH, "cases": [...]}\'');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: plan.chromium,
    timeout: 30000,
    args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'],
  });
  const stop = async () => { try { await browser.close(); } catch (e) { /* already gone */ } process.exit(0); };
  process.on('SIGTERM', stop);
  try {
    print({ browser: browser.version() });
    const contexts = new Map(); // proxy ('' for none) -> browser context
    async function contextFor(proxy) {
      if (!contexts.has(proxy)) {
        const options = { ignoreHTTPSErrors: true };
        // <-loopback> removes Chromium's implicit bypass of loopback addresses.
        if (proxy) options.proxy = { server: proxy, bypass: '<-loopback>' };
        contexts.set(proxy, await browser.newContext(options));
      }
      return contexts.get(proxy);
    }
    const pages = new Map(); // URL and proxy -> {page, webSockets, requests, failed}
    async function pageFor(url, proxy = '') {
      const key = url + ' ' + proxy;
      if (pages.has(key)) return pages.get(key);
      const context = await contextFor(proxy);
      const page = await context.newPage();
      const p = { page, webSockets: 0, requests: {}, failed: {} };
      page.on('console', (m) => console.error(`console (${url}): ${m.text()}`));
      page.on('pageerror', (e) => console.error(`page error (${url}): ${e}`));
      const cdp = await context.newCDPSession(page);
      cdp.on('Network.webSocketCreated', () => { p.webSockets++; });
      // The page's requests to the fallback (/nes/...), and those that failed on the network.
      const paths = new Map();
      cdp.on('Network.requestWillBeSent', (e) => {
        const path = new URL(e.request.url).pathname;
        if (!path.startsWith('/nes/')) return;
        paths.set(e.requestId, path);
        p.requests[path] = (p.requests[path] || 0) + 1;
      });
      cdp.on('Network.loadingFailed', (e) => {
        const path = paths.get(e.requestId);
        if (path && !e.canceled) p.failed[path] = (p.failed[path] || 0) + 1;
      });
      await cdp.send('Network.enable');
      await page.goto(url, { timeout: 15000 });
      await page.waitForFunction(() => window.__ready === true, null, { timeout: 15000 });
      await page.evaluate(pageLib);
      pages.set(key, p);
      return p;
    }
    for (const c of plan.cases) {
      const start = Date.now();
      let line;
      try {
        const p = await pageFor(c.page, c.proxy);
        const before = p.webSockets;
        const requestsBefore = Object.assign({}, p.requests);
        const failedBefore = Object.assign({}, p.failed);
        const since = (now, then) => {
          const d = {};
          for (const [k, v] of Object.entries(now)) if (v - (then[k] || 0) > 0) d[k] = v - (then[k] || 0);
          return d;
        };
        let timer;
        const result = await Promise.race([
          p.page.evaluate(([kind, args]) => window.__cases[kind](args), [c.kind, c.args || {}]),
          new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout after ${c.timeout} ms`)), c.timeout || 20000); }),
        ]).finally(() => clearTimeout(timer));
        // CDP events travel apart from evaluate's answer: give them a moment.
        await new Promise((resolve) => setTimeout(resolve, 50));
        line = Object.assign({ case: c.name }, result, {
          webSockets: p.webSockets - before,
          requests: since(p.requests, requestsBefore),
          failed: since(p.failed, failedBefore),
        });
      } catch (err) {
        let step = '';
        try { step = await pages.get(c.page + ' ' + (c.proxy || '')).page.evaluate(() => window.__step || ''); } catch (e) { /* no page */ }
        line = { case: c.name, error: String((err && err.stack) || err) + (step ? ' (at ' + step + ')' : '') };
      }
      try {
        await pages.get(c.page + ' ' + (c.proxy || '')).page.evaluate(() => window.__cleanup());
      } catch (e) { /* the page is gone */ }
      line.ms = Date.now() - start;
      print(line);
    }
    print({ done: true });
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
