'use strict';
// browser-chat.js: two people chatting in Chromium, driven by playwright-core, on herald's
// examples/chat.
//
//   node browser-chat.js CHROMIUM BASE_URL OUT_DIR [--readme PNG]
//   node browser-chat.js CHROMIUM BASE_URL OUT_DIR --reconnect
//
// For each transport (websocket, chosen by the page itself; ?transport=sse; ?transport=poll)
// Alice and Bob, each in a browser context of their own (their own cookies), sign in, meet in
// a room of that case, talk, and Alice opens a room of her own. Prints one JSON line per case
// (see peerlib.js's run) with what each page showed: transport indicator, connection state,
// messages, people present, unread count, notes; the checks live in examples/chat's
// browser_test.go. Each case leaves a screenshot of Alice's page in OUT_DIR (chat-CASE.png).
// With --readme, a first case stages a conversation and saves Alice's page as PNG, for the
// README.
// A last case, lobby, holds Alice's polls so that a lobby update older than the room she
// creates reaches her page while her subscription is on its way.
//
// With --reconnect, Alice signs in, opens a room and prints {"phase":"ready"}; the test then
// stops the server. The script prints {"phase":"reconnecting", ...} once the page says so
// (the test then starts the server again on the same address), {"phase":"back", ...} once the
// page is connected and in its room again, and {"phase":"done", ...} once a message sent
// after it went through. The network is closed: background networking stays off.

const path = require('path');
const { chromium } = require('playwright-core');
const { CHROMIUM_ARGS, withTimeout } = require('./peerlib');

// WAIT bounds each wait for the page to show something; a wait that runs out lets the case
// report what the page shows instead. CASE bounds a whole case, which waits many times: a
// passing one takes about 2 s, but a loaded machine (make test runs every package at once) may
// stretch it past peerlib's 15 s.
const WAIT = 10000;
const CASE = 60000;

// run runs the cases in order, as peerlib's run does, with CASE for each.
async function run(cases) {
  for (const [name, fn] of cases) {
    let line;
    const start = Date.now();
    try {
      line = Object.assign({ case: name }, await withTimeout(fn(), CASE, name));
    } catch (err) {
      line = { case: name, error: String((err && err.stack) || err) };
    }
    line.ms = Date.now() - start;
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  process.stdout.write(JSON.stringify({ done: true }) + '\n');
}

// XSS is what Alice types to check that the page shows people's text as text.
const XSS = '<img src=x onerror="window.__pwned=1"> & <b>bold</b> 🎉';

async function main() {
  const [executablePath, base, outDir, ...flags] = process.argv.slice(2);
  const readmePNG = flags[0] === '--readme' ? flags[1] : undefined;
  const reconnect = flags[0] === '--reconnect';
  if (!executablePath || !base || !outDir || (flags.length > 0 && !readmePNG && !reconnect)) {
    console.error('usage: node browser-chat.js CHROMIUM BASE_URL OUT_DIR [--readme PNG | --reconnect]');
    process.exit(2);
  }
  const browser = await chromium.launch({ executablePath, timeout: 30000, args: CHROMIUM_ARGS });
  process.on('SIGTERM', async () => {
    try { await browser.close(); } catch { /* already gone */ }
    process.exit(1);
  });

  // person opens the chat as someone, in a context of their own, and signs in.
  async function person(name, query) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') console.error(`${name}'s console: ${m.text()}`); });
    page.on('pageerror', (e) => console.error(`${name}'s page error: ${e.message}`));
    page.on('response', (r) => { if (r.status() >= 400) console.error(`${name}'s page: ${r.request().method()} ${r.url()}: ${r.status()}`); });
    await page.goto(base + '/' + query, { timeout: WAIT });
    await page.waitForSelector('#signin:not([hidden])', { timeout: WAIT });
    await page.fill('#name', name);
    await page.click('#signin-form button[type=submit]');
    await page.waitForSelector('#chat:not([hidden])', { timeout: WAIT });
    return { name, context, page };
  }

  // settle waits until fn(arg) holds in the page, and carries on when it does not in time.
  async function settle(p, fn, arg) {
    try {
      await p.page.waitForFunction(fn, arg, { timeout: WAIT });
    } catch { /* report what there is */ }
  }

  async function open(p, room) {
    await p.page.fill('#join-name', room);
    await p.page.click('#join-form button[type=submit]');
    await settle(p, (r) => document.getElementById('room-title').textContent === '#' + r, room);
  }

  async function say(p, text) {
    const before = await p.page.$$eval('#messages .msg', (l) => l.length);
    await p.page.fill('#text', text);
    await p.page.press('#text', 'Enter');
    await settle(p, (n) => document.querySelectorAll('#messages .msg').length > n, before);
  }

  // sees waits for a message's text on p's page, in the room on screen.
  const sees = (p, text) => settle(p, (t) => [...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === t), text);
  const membersAre = (p, names) => settle(p, (n) => [...document.querySelectorAll('#member-list li')].map((e) => e.dataset.user).join() === n.join(), names);

  // look reports what p's page shows.
  const look = (p) => p.page.evaluate(() => {
    const q = (s) => document.querySelector(s);
    const room = q('#room-title').textContent;
    return {
      transport: q('#transport').dataset.transport,
      forced: q('#transport').dataset.forced === 'true',
      transportText: q('#transport').textContent,
      connection: q('#conn').dataset.state,
      me: q('#me').textContent,
      room,
      messages: [...document.querySelectorAll('#messages .msg')].map((e) => [e.dataset.user, e.querySelector('.text').textContent]),
      notes: [...document.querySelectorAll('#messages .note')].map((e) => e.textContent),
      members: [...document.querySelectorAll('#member-list li')].map((e) => e.dataset.user),
      rooms: Object.fromEntries([...document.querySelectorAll('#room-list li')].map((e) => [e.dataset.room, {
        joined: e.dataset.joined === 'true', unread: Number(e.querySelector('.unread')?.textContent || 0),
      }])),
      imagesInMessages: document.querySelectorAll('#messages img, #messages b').length,
      pwned: window.__pwned === 1,
      stats: Object.fromEntries([...document.querySelectorAll('#stats [data-stat]')].map((e) => [e.dataset.stat, e.textContent])),
    };
  });

  if (reconnect) {
    const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');
    const alice = await person('Alice', '');
    await open(alice, 'comeback');
    await say(alice, 'Before the restart');
    print({ phase: 'ready', ...(await look(alice)) });
    await settle(alice, () => document.getElementById('conn').dataset.state === 'reconnecting');
    print({ phase: 'reconnecting', ...(await look(alice)) });
    await alice.page.waitForFunction(() => document.getElementById('conn').dataset.state === 'connected', null, { timeout: 20000 }).catch(() => {});
    await membersAre(alice, ['Alice']);
    print({ phase: 'back', ...(await look(alice)) });
    await say(alice, 'After the restart');
    print({ phase: 'done', ...(await look(alice)) });
    await alice.page.screenshot({ path: path.join(outDir, 'chat-reconnect.png') });
    await browser.close();
    return;
  }

  const cases = [];
  cases.push(['browser', async () => ({ version: browser.version() })]);

  if (readmePNG) {
    cases.push(['readme', async () => {
      const alice = await person('Alice', '#general');
      const bob = await person('Bob', '?transport=poll#general');
      try {
        await membersAre(alice, ['Alice', 'Bob']);
        const last = 'Each message is a nes request into a plain net/http handler, which publishes it to the room.';
        await say(bob, 'Hi Alice! Which transport are you on?');
        await sees(alice, 'Hi Alice! Which transport are you on?');
        await say(alice, 'WebSocket: the green badge up top. Try ?transport=sse or ?transport=poll.');
        await say(bob, 'I forced poll, and messages still arrive at once.');
        await sees(alice, 'I forced poll, and messages still arrive at once.');
        await say(alice, last);
        await sees(bob, last);
        await alice.page.fill('#text', 'Join a room on the left; who is here is on the right.');
        // The live view at the foot is read every 3 s: wait for a reading taken after the
        // conversation, so that the picture shows its numbers.
        const said = Date.now();
        await alice.page.waitForFunction((t) => Number(document.getElementById('stats').dataset.updated || 0) > t, said, { timeout: 10000 });
        await alice.page.screenshot({ path: readmePNG });
        return { saved: readmePNG, alice: await look(alice) };
      } finally {
        await alice.context.close();
        await bob.context.close();
      }
    }]);
  }

  for (const t of ['websocket', 'sse', 'poll']) {
    cases.push([t, async () => {
      // websocket: the page's own choice; the others forced.
      const query = t === 'websocket' ? '' : '?transport=' + t;
      const shared = t + '-lounge';
      const own = t + '-alice';
      const alice = await person('Alice', query);
      const bob = await person('Bob', query);
      try {
        const r = {};
        await open(alice, shared);
        await open(bob, shared);
        await membersAre(alice, ['Alice', 'Bob']);
        await membersAre(bob, ['Alice', 'Bob']);
        r.aliceShared = await look(alice);
        r.bobShared = await look(bob);

        await say(bob, `Hello from Bob over ${t} — ünïcödé ✓`);
        await say(alice, XSS);
        await sees(alice, `Hello from Bob over ${t} — ünïcödé ✓`);
        await sees(bob, XSS);
        r.aliceTalk = await look(alice);
        r.bobTalk = await look(bob);

        // Alice in a room of her own: Bob's next message in the shared room is unread there.
        await open(alice, own);
        await say(alice, 'Only Alice here');
        await say(bob, 'Are you there, Alice?');
        await settle(alice, (room) => document.querySelector(`#room-list li[data-room="${room}"] .unread`)?.textContent === '1', shared);
        r.aliceOwn = await look(alice);
        r.bobAfterOwn = await look(bob);

        // Back to the shared room; then Bob leaves it.
        await open(alice, shared);
        await sees(alice, 'Are you there, Alice?');
        await bob.page.click('#leave');
        await settle(bob, (room) => document.querySelector(`#room-list li[data-room="${room}"]`)?.dataset.joined !== 'true', shared);
        await membersAre(alice, ['Alice']);
        await settle(alice, () => [...document.querySelectorAll('#messages .note')].some((e) => e.textContent === 'Bob left'));
        r.aliceAfterLeave = await look(alice);
        r.bobAfterLeave = await look(bob);
        await alice.page.screenshot({ path: path.join(outDir, `chat-${t}.png`) });
        return r;
      } finally {
        await alice.context.close();
        await bob.context.close();
      }
    }]);
  }

  // lobby: the page of a room's creator hears, while its subscription is on its way, a lobby
  // update published before the room existed (Bob joining another room). Alice's polls are
  // held for that: the answer carrying Bob's second room reaches her page only once it has sent
  // its subscription. Her page keeps the room it subscribed with: the members show, and each
  // presence once.
  cases.push(['lobby', async () => {
    const alice = await person('Alice', '?transport=poll');
    const bob = await person('Bob', '?transport=poll');
    try {
      const r = {};
      let hold = null; // while set, Alice's poll answers wait for it
      let release = () => {};
      await alice.page.route('**/nes/poll', async (route) => {
        try {
          const res = await route.fetch();
          if (hold) await hold;
          await route.fulfill({ response: res });
        } catch { /* the page went */ }
      });
      // Bob's first room answers the poll in flight, sent before the route; the next is routed.
      await open(bob, 'lobby-side1');
      await settle(alice, () => document.querySelector('#room-list li[data-room="lobby-side1"]') !== null);
      hold = new Promise((resolve) => { release = resolve; });
      setTimeout(release, WAIT);
      alice.page.on('request', (q) => { if (q.url().endsWith('/nes/send') && (q.postData() || '').includes('/rooms/lobby-room')) release(); });
      await open(bob, 'lobby-side2');
      await open(alice, 'lobby-room');
      release();
      hold = null;
      await open(bob, 'lobby-room');
      await membersAre(alice, ['Alice', 'Bob']);
      await membersAre(bob, ['Alice', 'Bob']);
      r.aliceJoined = await look(alice);
      // Away and back; then Bob leaves.
      await open(alice, 'lobby-side1');
      await open(alice, 'lobby-room');
      await bob.page.click('#leave');
      await membersAre(alice, ['Alice']);
      await settle(alice, () => [...document.querySelectorAll('#messages .note')].some((e) => e.textContent === 'Bob left'));
      r.aliceAfterLeave = await look(alice);
      return r;
    } finally {
      await alice.context.close();
      await bob.context.close();
    }
  }]);

  try {
    await run(cases);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
