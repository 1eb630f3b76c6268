'use strict';
// eventsource-browser.js: Chromium's EventSource, driven by playwright-core, against a herald
// EventSource server.
//
//   node eventsource-browser.js CHROMIUM PAGE_URL STREAM_URL [EVENT_TYPE...]
//
// Loads PAGE_URL (the server's own origin; any 200 page) and opens `new EventSource(STREAM_URL)`
// in it. Prints one JSON object per line on stdout, as things happen, until it is killed:
//   {"kind":"browser","version":"..."}                 first
//   {"kind":"response","status":200,"protocol":"h2","headers":{...}}   each stream response, as
//                                                      the network stack saw it (CDP)
//   {"kind":"open","n":N}                              each (re)connection
//   {"kind":"message","type":"message","id":"7","data":"..."}   each event, also of each
//                                                      EVENT_TYPE (e.g. "gap")
//   {"kind":"error","readyState":N}                    each error event
// https URLs may use a self-signed certificate (the tests' HTTP/2 servers). The network is
// closed: background networking stays off. The checks live in the Go tests.

const { chromium } = require('playwright-core');
const { CHROMIUM_ARGS } = require('./peerlib');

const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function main() {
  const [executablePath, pageURL, streamURL, ...types] = process.argv.slice(2);
  if (!executablePath || !pageURL || !streamURL) {
    console.error('usage: node eventsource-browser.js CHROMIUM PAGE_URL STREAM_URL [EVENT_TYPE...]');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath,
    timeout: 30000,
    args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'],
  });
  const stop = async () => { try { await browser.close(); } catch (e) { /* already gone */ } process.exit(0); };
  process.on('SIGTERM', stop);
  print({ kind: 'browser', version: browser.version() });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on('console', (m) => console.error('console: ' + m.text()));
  const cdp = await context.newCDPSession(page);
  const streamPath = new URL(streamURL, pageURL).pathname;
  cdp.on('Network.responseReceived', (e) => {
    if (new URL(e.response.url).pathname !== streamPath) return;
    const headers = {};
    for (const [k, v] of Object.entries(e.response.headers || {})) headers[k.toLowerCase()] = v;
    print({ kind: 'response', status: e.response.status, protocol: e.response.protocol, headers });
  });
  await cdp.send('Network.enable');
  await page.exposeFunction('__report', (o) => print(o));
  await page.goto(pageURL, { timeout: 15000 });
  await page.evaluate(([url, types]) => {
    let opens = 0;
    const es = new EventSource(url);
    window.__es = es;
    es.onopen = () => window.__report({ kind: 'open', n: ++opens });
    es.onerror = () => window.__report({ kind: 'error', readyState: es.readyState });
    const onEvent = (e) => window.__report({ kind: 'message', type: e.type, id: e.lastEventId, data: e.data });
    es.addEventListener('message', onEvent);
    for (const t of types) es.addEventListener(t, onEvent);
  }, [streamURL, types]);
  // Runs until killed.
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
