'use strict';
// eventsource-client.js: Node's `eventsource` package (the WHATWG EventSource on fetch)
// against a herald EventSource server.
//
//   node eventsource-client.js URL [EVENT_TYPE...]
//
// Opens one EventSource on URL and prints one JSON object per line on stdout, as things
// happen, until it is killed:
//   {"kind":"open","n":N,"status":200,"headers":{...}}   each (re)connection, with the response
//                                                        headers the client saw
//   {"kind":"message","type":"message","id":"7","data":"..."}   each event (also one per extra
//                                                        EVENT_TYPE listened to, e.g. "gap")
//   {"kind":"error","message":"..."}                      each error event
// The checks live in the Go tests (eventsource/peers_test.go, examples/echo).

const { EventSource } = require('eventsource');

const [url, ...types] = process.argv.slice(2);
if (!url) {
  console.error('usage: node eventsource-client.js URL [EVENT_TYPE...]');
  process.exit(2);
}

const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

let opens = 0;
// A fetch that reports the response headers each connection got (the package exposes none).
const fetchWithReport = async (input, init) => {
  const res = await fetch(input, init);
  const headers = {};
  res.headers.forEach((v, k) => { headers[k] = v; });
  print({ kind: 'response', status: res.status, headers, lastEventId: (init && init.headers && (init.headers['Last-Event-ID'] || init.headers['last-event-id'])) || '' });
  return res;
};

const es = new EventSource(url, { fetch: fetchWithReport });
es.onopen = () => print({ kind: 'open', n: ++opens });
es.onerror = (e) => print({ kind: 'error', message: String((e && e.message) || 'error event') });
const onEvent = (e) => print({ kind: 'message', type: e.type, id: e.lastEventId, data: e.data });
es.addEventListener('message', onEvent);
for (const t of types) es.addEventListener(t, onEvent);

process.on('SIGTERM', () => { es.close(); process.exit(0); });
