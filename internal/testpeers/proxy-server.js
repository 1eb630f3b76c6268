'use strict';

// proxy-server.js MODE [--auth USER:PASS] [--tls CERT KEY] [--deny-port PORT]
//
// The real proxies of the WebSocket client's tests (websocket/proxy_test.go), on 127.0.0.1 and
// a free port, printed as the first line: `listening PORT`. Then one JSON line per tunnel
// asked for, so that the tests can check what reached the proxy.
//
//   http    an HTTP CONNECT proxy: the `proxy` package (proxy-agents family, pinned in
//           package.json). With --auth it demands Basic credentials (407 otherwise); with
//           --tls it is an HTTPS proxy (TLS to the proxy itself, with that certificate).
//           Prints {"connect": "host:port", "headers": {...}} for each CONNECT it receives.
//   refuse  an HTTP proxy that answers every CONNECT with 403 Forbidden and a short body.
//   socks5  a SOCKS5 proxy: @pondwader/socks5-server. With --auth it demands the
//           username/password method (RFC 1929); --deny-port refuses tunnels to that port
//           ("connection not allowed by ruleset"). Prints {"socks": "host:port"} per request.

const fs = require('fs');
const http = require('http');
const https = require('https');

const args = process.argv.slice(2);
const mode = args[0];
let auth = null;
let tls = null;
let denyPort = null;
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--auth') auth = args[++i];
  else if (args[i] === '--tls') tls = { cert: fs.readFileSync(args[++i]), key: fs.readFileSync(args[++i]) };
  else if (args[i] === '--deny-port') denyPort = Number(args[++i]);
  else {
    process.stderr.write(`unknown argument ${args[i]}\n`);
    process.exit(2);
  }
}

const print = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
// listening starts server (an http.Server, or the SOCKS5 server, which holds a net.Server) and
// prints its port.
const listening = (server) => {
  const net = server.server || server;
  net.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${net.address().port}\n`));
};

async function main() {
  switch (mode) {
    case 'http': {
      const { createProxy } = await import('proxy');
      const server = tls ? https.createServer(tls) : http.createServer();
      server.on('connect', (req) => print({ connect: req.url, headers: req.headers }));
      createProxy(server);
      if (auth) {
        const want = 'Basic ' + Buffer.from(auth).toString('base64');
        server.authenticate = (req) => req.headers['proxy-authorization'] === want;
      }
      listening(server);
      break;
    }
    case 'refuse': {
      const server = http.createServer((req, res) => { res.writeHead(403); res.end(); });
      server.on('connect', (req, socket) => {
        print({ connect: req.url, headers: req.headers });
        const body = 'no tunnels here';
        socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      });
      listening(server);
      break;
    }
    case 'socks5': {
      const { createServer } = require('@pondwader/socks5-server');
      const server = createServer(auth ? { auth: { username: auth.split(':')[0], password: auth.split(':').slice(1).join(':') } } : {});
      server.setRulesetValidator((conn) => {
        print({ socks: `${conn.destAddress}:${conn.destPort}` });
        return denyPort === null || conn.destPort !== denyPort;
      });
      listening(server);
      break;
    }
    default:
      process.stderr.write('usage: proxy-server.js http|refuse|socks5 [--auth USER:PASS] [--tls CERT KEY] [--deny-port PORT]\n');
      process.exit(2);
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
