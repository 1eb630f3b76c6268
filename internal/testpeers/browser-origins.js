'use strict';
// browser-origins.js: Chromium's WebSocket, driven by playwright-core, opening nes connections
// from a page of one origin to servers of others, as a page on a development server does.
//
//   node browser-origins.js CHROMIUM PAGE_URL WS_URL...
//
// Loads PAGE_URL (any 200 page: its origin is the one Chromium sends), then, for each WS_URL in
// turn, opens `new WebSocket(WS_URL)` in the page and, once open, says nes hello. Prints one
// JSON line per WS_URL: {"url", "opened", "reply" (the type of the first message, or ""),
// "code" (the close code when it closed before a reply, else 0), "errorEvent"}, then
// {"done":true}. What a page can see of a refused handshake is only the error event and code
// 1006; the checks live in the Go test. The network is closed: background networking stays off.

const { chromium } = require('playwright-core');
const { CHROMIUM_ARGS } = require('./peerlib');

async function main() {
  const [executablePath, pageURL, ...urls] = process.argv.slice(2);
  if (!executablePath || !pageURL || urls.length === 0) {
    console.error('usage: node browser-origins.js CHROMIUM PAGE_URL WS_URL...');
    process.exit(2);
  }
  const browser = await chromium.launch({ executablePath, timeout: 30000, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.error('console: ' + m.text()));
    await page.goto(pageURL, { timeout: 15000 });
    for (const url of urls) {
      const result = await page.evaluate((url) => new Promise((resolve) => {
        const r = { url, opened: false, reply: '', code: 0, errorEvent: false };
        const ws = new WebSocket(url);
        const timer = setTimeout(() => { ws.close(); resolve(r); }, 10000);
        ws.onopen = () => {
          r.opened = true;
          ws.send(JSON.stringify({ type: 'hello', id: 1, version: '2' }));
        };
        ws.onerror = () => { r.errorEvent = true; };
        ws.onmessage = (e) => {
          r.reply = JSON.parse(e.data).type;
          clearTimeout(timer);
          ws.close();
          resolve(r);
        };
        ws.onclose = (e) => {
          r.code = e.code;
          clearTimeout(timer);
          resolve(r);
        };
      }), url);
      process.stdout.write(JSON.stringify(result) + '\n');
    }
    process.stdout.write(JSON.stringify({ done: true }) + '\n');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
