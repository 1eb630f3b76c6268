'use strict';
// nes-client-load.js: the nes benchmark's load client on the official @hapi/nes client (Node,
// over ws), for the clients part of bench/nes: the same load as `load -mode requests`, with the
// same flags and the same output, so that the orchestrator runs it the same way and compares
// what each client costs per request.
//
// Usage: node nes-client-load.js [-addr HOST:PORT] [-path /] [-conns 32] [-depth 1]
//                                [-warmup 1s] [-duration 5s] [-timeout 10s] [-max-time 10m]
// (durations in Go's syntax: 1s, 500ms, 1m30s). It opens -conns connections, one after
// another: each a Client (require('@hapi/nes').Client), connected (its hello answered). Then
// -depth loops per Client each await client.request('/h') and check the reply (status 200,
// payload 'world!'), and send the next one. After -warmup it prints
//
//   start
//   stop reqs=N secs=S cpu=C
//
// around a measured window of -duration: N replies in S seconds, C the process's own user +
// system seconds in the window (process.cpuUsage(): every thread of the process). Then it
// exits. The clients run with @hapi/nes's defaults (no request timeout, reconnection on, the
// server's heartbeat answered) but one: ws offers no permessage-deflate, as the raw Go client
// offers no extension, so the server does the same work for every client. A failure prints
// "load: ERROR" to stderr and exits 1; after -max-time the process exits 2 whatever happens.
//
// @hapi/nes is resolved from internal/testpeers/node_modules (`make peers` installs it).

const path = require('path');

const { Client } = require(path.join(__dirname, '../../internal/testpeers/node_modules/@hapi/nes'));

// parseDuration reads a Go duration ("1s", "500ms", "1m30s", "5m0s") into milliseconds.
function parseDuration(s) {
  const units = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let ms = 0;
  let m;
  let at = 0;
  while (at < s.length && (m = re.exec(s)) !== null) {
    ms += parseFloat(m[1]) * units[m[2]];
    at = re.lastIndex;
  }
  if (s === '' || at !== s.length) {
    throw new UsageError(`invalid duration ${JSON.stringify(s)}`);
  }
  return ms;
}

// parseFlags reads Go-style flags, "-name value" or "-name=value" (one or two dashes).
function parseFlags(argv) {
  const flags = {
    addr: '127.0.0.1:8000', path: '/', conns: '32', depth: '1',
    warmup: '1s', duration: '5s', timeout: '10s', 'max-time': '10m'
  };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in flags)) {
      throw new UsageError(`unknown flag ${argv[i]}`);
    }
    let v = m[2];
    if (v === undefined) {
      if (i + 1 >= argv.length) {
        throw new UsageError(`${argv[i]} needs a value`);
      }
      v = argv[++i];
    }
    flags[m[1]] = v;
  }
  const count = (name) => {
    const n = Number(flags[name]);
    if (!Number.isInteger(n) || n < 1) {
      throw new UsageError(`-${name} must be a whole number above zero`);
    }
    return n;
  };
  const o = {
    url: `ws://${flags.addr}${flags.path}`,
    conns: count('conns'),
    depth: count('depth'),
    warmup: parseDuration(flags.warmup),
    duration: parseDuration(flags.duration),
    timeout: parseDuration(flags.timeout),
    maxTime: parseDuration(flags['max-time'])
  };
  if (o.duration <= 0) {
    throw new UsageError('-duration must be above zero');
  }
  return o;
}

// fail prints what went wrong, with the stack for anything but a usage error, and exits 1.
function fail(err) {
  process.stderr.write(`load: ${err instanceof UsageError ? err.message : (err && err.stack) || err}\n`);
  process.exit(1);
}

class UsageError extends Error {}

// cpuSeconds is the process's user + system time so far.
function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function main() {
  const o = parseFlags(process.argv.slice(2));
  setTimeout(() => {
    process.stderr.write(`load: still running after -max-time ${o.maxTime} ms\n`);
    process.exit(2);
  }, o.maxTime).unref();

  const clients = [];
  for (let i = 0; i < o.conns; i++) {
    const client = new Client(o.url, { ws: { perMessageDeflate: false } });
    client.onError = () => {};  // failures reach the loops as rejected requests
    await client.connect({ timeout: o.timeout });
    clients.push(client);
  }

  let replies = 0;
  let stopping = false;
  const loop = async (client) => {
    while (!stopping) {
      const res = await client.request('/h');
      if (res.statusCode !== 200 || res.payload !== 'world!') {
        throw new Error(`unexpected response: status ${res.statusCode}, payload ${JSON.stringify(res.payload).slice(0, 200)}`);
      }
      replies++;
    }
  };
  for (const client of clients) {
    for (let d = 0; d < o.depth; d++) {
      loop(client).catch((err) => {
        if (!stopping) {
          fail(err);
        }
      });
    }
  }

  await new Promise((resolve) => setTimeout(resolve, o.warmup));
  const n0 = replies;
  const c0 = cpuSeconds();
  const t0 = process.hrtime.bigint();
  process.stdout.write('start\n');
  await new Promise((resolve) => setTimeout(resolve, o.duration));
  const n1 = replies;
  const c1 = cpuSeconds();
  const t1 = process.hrtime.bigint();
  // The stop line goes out before the connections close: the orchestrator reads the server's
  // CPU time at it, and closing them is no part of the window.
  process.stdout.write(`stop reqs=${n1 - n0} secs=${Number(t1 - t0) / 1e9} cpu=${c1 - c0}\n`);
  stopping = true;
  await Promise.all(clients.map((c) => c.disconnect()));
  process.exit(0);
}

main().catch(fail);
