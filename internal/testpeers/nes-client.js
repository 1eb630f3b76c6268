'use strict';
// nes-client.js: drives the official @hapi/nes 14.0.1 client (Node, over ws) through named
// scenarios against a nes server, and prints what it observed, one JSON object per line:
// {"scenario": name, ...observations, "ms": duration} or {"scenario": name, "error": ..., "ms"}.
// A last line {"done": true} says nothing was cut short. The checks live in the Go tests
// (nes_peers_test.go); this script only reports.
//
// Usage: node nes-client.js URL [scenario ...]   (URL: ws://host:port; no scenario: all of them)
// The scenarios run concurrently, each on its own clients and subscription paths, each bounded
// by SCENARIO_TIMEOUT. The server must be configured like examples/nes (see hapi-nes-server.js).
// The heartbeat scenario expects a server of its own started with a 1 s interval and a 500 ms
// timeout, and a process of its own: the other scenarios (large payloads especially) can hold
// the event loop longer than that timeout.

const crypto = require('crypto');
const Ws = require('ws');
const { Client } = require('@hapi/nes/lib/client');
const { withTimeout } = require('./peerlib');

const SCENARIO_TIMEOUT = 10000;
const JOHN = 'Basic ' + Buffer.from('john:secret').toString('base64');
const WRONG = 'Basic ' + Buffer.from('john:wrong').toString('base64');

// Client.WebSocket is the browser's WebSocket when there is one (Node 20 has none without a
// flag); @hapi/nes's index.js sets it to ws, as we do here, counting the server pings each
// socket receives.
class CountingWs extends Ws {
  constructor(...args) {
    super(...args);
    this.nesPings = 0;
    this.on('message', (data) => {
      if (String(data) === '{"type":"ping"}') {
        this.nesPings++;
      }
    });
  }
}
Client.WebSocket = CountingWs;

const url = process.argv[2];
const selected = process.argv.slice(3);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// waitFor polls cond every 10 ms until it holds or ms pass; it reports whether it held.
async function waitFor(cond, ms) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) {
      return false;
    }
    await sleep(10);
  }
  return true;
}

// describeError reports a rejected nes call as the client exposes it to applications.
function describeError(err) {
  if (!err) {
    return null;
  }
  const out = { message: err.message, type: err.type, isNes: !!err.isNes };
  for (const k of ['statusCode', 'data', 'headers', 'path']) {
    if (err[k] !== undefined) {
      out[k] = err[k];
    }
  }
  return out;
}

async function settle(promise) {
  try {
    return { value: await promise };
  } catch (err) {
    return { error: describeError(err) };
  }
}

// track makes a client that records its events; every client made is disconnected at the end.
const clients = [];
function track(name) {
  const c = new Client(url);
  const ev = { connects: 0, disconnects: [], errors: [], heartbeatTimeouts: 0, updates: [], sockets: 0 };
  const connect = c._connect;
  c._connect = function (...args) {                                   // counts connection attempts
    ev.sockets++;
    return connect.apply(this, args);
  };
  c.onConnect = () => ev.connects++;
  c.onDisconnect = (willReconnect, log) => ev.disconnects.push({ willReconnect, log });
  c.onError = (err) => ev.errors.push(String(err.message || err));
  c.onHeartbeatTimeout = (willReconnect) => ev.heartbeatTimeouts++;
  c.onUpdate = (message) => ev.updates.push(message);
  c.ev = ev;
  c.label = name;
  clients.push(c);
  return c;
}

// subscriber subscribes c to path and collects what arrives there.
async function subscriber(c, path) {
  const got = [];
  await c.subscribe(path, (message, flags) => got.push({ message, flags }));
  return got;
}

function publish(c, path, message) {
  return c.request({ method: 'POST', path: '/publish', payload: { path, message } });
}

const scenarios = {
  async connect() {
    const c = track('connect');
    await c.connect();
    const out = { id: c.id, connects: c.ev.connects, subscriptions: c.subscriptions() };
    await c.disconnect();
    return out;
  },

  async request() {
    const c = track('request');
    await c.connect();
    const byId = await c.request('hello');
    const byPath = await c.request('/h');
    const explicit = await c.request({ method: 'GET', path: '/h' });
    const message = await settle(c.message({ hi: 'there' }));
    return { byId, byPath, explicit, message };
  },

  async notfound() {
    const c = track('notfound');
    await c.connect();
    return {
      routeId: await settle(c.request('nosuchroute')),
      path: await settle(c.request('/nosuchpath')),
      wildcardId: await settle(c.request('wild')),
      authEndpoint: await settle(c.request('/nes/auth')),
    };
  },

  async auth() {
    const anon = track('auth-anon');
    await anon.connect();
    const unauthenticated = await settle(anon.request('/auth/h'));
    const unauthenticatedById = await settle(anon.request('authhello'));
    const withHeader = await settle(anon.request({ method: 'GET', path: '/auth/h', headers: { AuthoriZation: JOHN } }));

    const john = track('auth-john');
    await john.connect({ auth: { headers: { authorization: JOHN } } });
    const authenticated = await settle(john.request('/auth/h'));
    const authenticatedById = await settle(john.request('authhello'));
    const reauth = await settle(john.reauthenticate({ headers: { authorization: JOHN } }));
    const afterReauth = await settle(john.request('/auth/h'));
    return { unauthenticated, unauthenticatedById, withHeader, authenticated, authenticatedById, reauth, afterReauth };
  },

  async large() {
    const c = track('large');
    await c.connect();
    // About 1 MiB of JSON: an array of objects with strings and numbers, some non-ASCII.
    const items = [];
    let size = 0;
    for (let i = 0; size < 1 << 20; i++) {
      const item = { i, s: crypto.randomBytes(24).toString('hex'), u: 'é日🎉', n: i * 1.5 };
      items.push(item);
      size += JSON.stringify(item).length + 1;
    }
    const payload = { items };
    const sent = JSON.stringify(payload);
    const res = await settle(c.request({ method: 'POST', path: '/echo', payload }));
    if (res.error) {
      return { sentBytes: Buffer.byteLength(sent), error: res.error, disconnects: c.ev.disconnects };
    }
    const got = JSON.stringify(res.value.payload);
    return {
      sentBytes: Buffer.byteLength(sent),
      gotBytes: Buffer.byteLength(got),
      equal: sent === got,
      statusCode: res.value.statusCode,
    };
  },

  async subscribe() {
    const john = track('sub-john');
    await john.connect({ auth: { headers: { authorization: JOHN } } });
    const anon = track('sub-anon');
    await anon.connect();
    const pub = track('sub-publisher');
    await pub.connect();

    const johnGot = await subscriber(john, '/item/5');
    const anonGot = await subscriber(anon, '/item/5');
    const anonItems = await subscriber(anon, '/items');
    const subscriptions = { john: john.subscriptions(), anon: anon.subscriptions() };

    await publish(pub, '/item/5', { n: 1 });
    await publish(pub, '/item/6', { n: 2 });                         // nobody's path: must not arrive
    await publish(pub, '/item/5', { n: 3, updater: 'john' });        // filtered for john only
    await publish(pub, '/items', { n: 4 });
    const published = await publish(pub, '/item/5', { n: 5 });      // the last one: a marker
    await waitFor(() => johnGot.length >= 2 && anonGot.length >= 3 && anonItems.length >= 1, 2000);
    await sleep(100);                                                 // anything late would show up
    return { subscriptions, published, john: johnGot, anon: anonGot, anonItems };
  },

  async unsubscribe() {
    const c = track('unsub');
    await c.connect();
    const pub = track('unsub-publisher');
    await pub.connect();
    const seven = await subscriber(c, '/item/7');
    const eight = await subscriber(c, '/item/8');
    await publish(pub, '/item/7', { n: 1 });
    await waitFor(() => seven.length >= 1, 2000);
    const unsub = await settle(c.unsubscribe('/item/7'));
    const unknown = await settle(c.unsubscribe('/item/9'));
    await publish(pub, '/item/7', { n: 2 });                          // must not arrive
    await publish(pub, '/item/8', { n: 3 });                          // the marker
    await waitFor(() => eight.length >= 1, 2000);
    await sleep(100);
    return { unsub, unknown, subscriptions: c.subscriptions(), seven, eight };
  },

  async badsub() {
    const c = track('badsub');
    await c.connect();
    return {
      notFound: await settle(c.subscribe('/nosuch', () => {})),
      query: await settle(c.subscribe('/item/5?x=1', () => {})),
      invalid: await settle(c.subscribe('item/5', () => {})),
      subscriptions: c.subscriptions(),
    };
  },

  async broadcast() {
    const a = track('broadcast-a');
    await a.connect();
    const b = track('broadcast-b');
    await b.connect();
    const res = await b.request({ method: 'POST', path: '/broadcast', payload: { message: { hello: 'all' } } });
    await waitFor(() => a.ev.updates.length >= 1 && b.ev.updates.length >= 1, 2000);
    await sleep(100);
    // Other scenarios never broadcast, so every update here is this one.
    return { res, a: a.ev.updates, b: b.ev.updates };
  },

  async message() {
    const c = track('message');
    await c.connect();
    return {
      object: await settle(c.message({ a: 1, b: [true, null, 'x'] })),
      string: await settle(c.message('hi')),
      number: await settle(c.message(42)),
    };
  },

  async badauth() {
    const c = track('badauth');
    const res = await settle(c.connect({ auth: { headers: { authorization: WRONG } } }));
    await sleep(1500);                                               // past the 1 s reconnect delay
    return {
      connect: res,
      socketsOpened: c.ev.sockets,
      connects: c.ev.connects,
      disconnects: c.ev.disconnects,
      id: c.id,
    };
  },

  async reconnect() {
    const c = track('reconnect');
    await c.connect({ delay: 100, auth: { headers: { authorization: JOHN } } });
    const firstId = c.id;
    const got = await subscriber(c, '/item/42');
    const drop = await settle(c.request({ method: 'POST', path: '/drop' }));
    const reconnected = await waitFor(() => c.ev.connects >= 2 && c.id !== null, 5000);
    const pub = track('reconnect-publisher');
    await pub.connect();
    await publish(pub, '/item/42', { after: 'reconnect' });
    await publish(pub, '/item/42', { after: 'reconnect', updater: 'john' });   // filtered: still john
    await waitFor(() => got.length >= 1, 2000);
    await sleep(100);
    const afterReconnect = await settle(c.request('/auth/h'));               // auth was resent
    return {
      drop,
      reconnected,
      connects: c.ev.connects,
      disconnects: c.ev.disconnects,
      idChanged: firstId !== c.id,
      subscriptions: c.subscriptions(),
      got,
      afterReconnect,
    };
  },

  async heartbeat() {
    const c = track('heartbeat');
    await c.connect();
    await sleep(4500);
    const pings = c._ws ? c._ws.nesPings : -1;
    const res = await settle(c.request('hello'));
    return {
      pings,
      connects: c.ev.connects,
      disconnects: c.ev.disconnects,
      heartbeatTimeouts: c.ev.heartbeatTimeouts,
      errors: c.ev.errors,
      request: res,
    };
  },

  async disconnect() {
    const c = track('disconnect');
    await c.connect();
    await c.disconnect();
    await waitFor(() => c.ev.disconnects.length >= 1, 2000);
    await sleep(1200);                                               // no reconnect either
    return { disconnects: c.ev.disconnects, connects: c.ev.connects, id: c.id };
  },
};

async function main() {
  const names = selected.length ? selected : Object.keys(scenarios);
  await Promise.all(names.map(async (name) => {
    const start = Date.now();
    let line;
    try {
      if (!scenarios[name]) {
        throw new Error('unknown scenario ' + name);
      }
      line = Object.assign({ scenario: name }, await withTimeout(scenarios[name](), SCENARIO_TIMEOUT, name));
    } catch (err) {
      line = { scenario: name, error: String((err && err.stack) || err) };
    }
    line.ms = Date.now() - start;
    process.stdout.write(JSON.stringify(line) + '\n');
  }));
  await withTimeout(Promise.all(clients.map((c) => c.disconnect())), 2000, 'disconnecting').catch(() => {});
  process.stdout.write(JSON.stringify({ done: true }) + '\n');
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
