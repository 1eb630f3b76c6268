'use strict';
// hapi-nes-server.js: the reference nes server (hapi + @hapi/nes 14.0.1) configured like herald's
// examples/nes demo, so that the same tests run against both. It reproduces the @hapi/nes README's
// examples in one server:
//
//   GET  /h          route id `hello`: 'world!'
//   GET  /auth/h     route id `authhello`, Basic auth (john/secret): 'Hello John Doe'
//   POST /echo       returns its JSON payload (up to 16 MiB)
//   POST /publish    {path, message}: publishes, answers {ok:true}
//   POST /broadcast  {message}: broadcasts, answers {ok:true}
//   POST /revoke     {path, message}: revokes `path` (a concrete path, such as /item/5) from every
//                    socket subscribed to it, with `message` (left out of the revoke when absent
//                    or null), answers {ok:true}; 400 'Expected {path, message}' without a path
//   POST /send       over nes, {message}: sends `message` to the calling socket only (an `update`
//                    push, before the reply), answers {ok:true}; 400 'Expected {message}'
//                    without a message, 400 'Only over nes' over plain HTTP
//   POST /drop       over nes: answers {ok:true}, then closes that socket from the server side
//   *    /wild       route id `wild`, wildcard method (nes refuses it by route id)
//   GET  /boom       throws: 500
//   subscriptions /item/{id} and /items (auth mode optional; the filter skips a message whose
//   `updater` equals the socket's credentials' username); onMessage answers {echo: message}.
//
// Authentication (--auth), always optional, always checking Basic john:secret:
//   direct (default)  the hello's auth is {headers: {authorization: 'Basic ...'}}
//   token             GET /nes/auth with Basic john:secret answers {status:'authenticated', token};
//                     the hello's auth is that token
//   cookie            GET /nes/auth with Basic john:secret answers {status:'authenticated'} and sets
//                     the `nes` cookie (HttpOnly, not Secure, SameSite=Strict), which the WebSocket
//                     upgrade request then carries
// Without credentials, GET /nes/auth answers {status:'unauthenticated'}. Tokens and cookies are
// sealed with PASSWORD, the same as examples/nes's.
//
// Usage: node hapi-nes-server.js [--port N] [--auth direct|token|cookie]
//                                [heartbeatIntervalMs heartbeatTimeoutMs]   (defaults 15000 5000)
// It listens on 127.0.0.1, on port N (0, the default, means a free port), and prints
// `listening PORT` first.

const Basic = require('@hapi/basic');
const Boom = require('@hapi/boom');
const Hapi = require('@hapi/hapi');
const Nes = require('@hapi/nes');

const USER = { id: '2133d32a', name: 'John Doe', username: 'john', password: 'secret' };

// PASSWORD seals tokens and cookies (token and cookie auth); examples/nes uses the same one.
const PASSWORD = 'herald nes demo: tokens and cookies are sealed with this';

// parseArgs reads `--port N`, `--auth TYPE` and the positional heartbeat arguments.
function parseArgs(argv) {
  const args = { port: 0, auth: 'direct', interval: 15000, timeout: 5000 };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port' || a === '--auth') {
      if (i + 1 >= argv.length) {
        throw new Error(`${a} needs a value`);
      }
      args[a.slice(2)] = argv[++i];
    } else if (a.startsWith('--')) {
      throw new Error(`unknown flag ${a}`);
    } else {
      positional.push(a);
    }
  }
  args.port = Number(args.port);
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
    throw new Error(`--port must be a port number, not ${args.port}`);
  }
  if (!['direct', 'token', 'cookie'].includes(args.auth)) {
    throw new Error(`--auth must be direct, token or cookie, not ${args.auth}`);
  }
  if (positional.length > 2) {
    throw new Error('at most two positional arguments: heartbeatIntervalMs heartbeatTimeoutMs');
  }
  if (positional.length > 0) {
    args.interval = Number(positional[0]);
  }
  if (positional.length > 1) {
    args.timeout = Number(positional[1]);
  }
  return args;
}

// objectPayload is the request's payload when it is a JSON object, else {}.
function objectPayload(request) {
  const p = request.payload;
  return p && typeof p === 'object' && !Array.isArray(p) ? p : {};
}

async function main() {
  const { port, auth, interval, timeout } = parseArgs(process.argv.slice(2));

  const server = Hapi.server({ host: '127.0.0.1', port });
  await server.register(Basic);
  server.auth.strategy('simple', 'basic', {
    validate: async (request, username, password) => {
      if (username !== USER.username || password !== USER.password) {
        return { isValid: false, credentials: null };
      }
      return { isValid: true, credentials: { id: USER.id, name: USER.name, username: USER.username } };
    },
  });

  await server.register({
    plugin: Nes,
    options: {
      auth:
        auth === 'direct'
          ? { type: 'direct', route: { mode: 'optional', strategy: 'simple' } }
          : { type: auth, password: PASSWORD, route: { mode: 'optional', strategy: 'simple' }, isSecure: false },
      heartbeat: { interval, timeout },
      onMessage: async (socket, message) => ({ echo: message }),
    },
  });

  server.route([
    { method: 'GET', path: '/h', config: { id: 'hello', handler: () => 'world!' } },
    {
      method: 'GET',
      path: '/auth/h',
      config: { id: 'authhello', auth: 'simple', handler: (request) => `Hello ${request.auth.credentials.name}` },
    },
    {
      method: 'POST',
      path: '/echo',
      config: { payload: { maxBytes: 16 << 20 }, handler: (request) => request.payload },
    },
    {
      method: 'POST',
      path: '/publish',
      handler: (request) => {
        const { path, message } = request.payload || {};
        request.server.publish(path, message);
        return { ok: true };
      },
    },
    {
      method: 'POST',
      path: '/broadcast',
      handler: (request) => {
        request.server.broadcast((request.payload || {}).message);
        return { ok: true };
      },
    },
    {
      method: 'POST',
      path: '/revoke',
      handler: async (request) => {
        const { path, message } = objectPayload(request);
        if (typeof path !== 'string' || path === '') {
          throw Boom.badRequest('Expected {path, message}');
        }
        // ignoreClose: a socket that closed meanwhile is skipped instead of failing the request.
        await request.server.eachSocket((socket) => socket.revoke(path, message, { ignoreClose: true }), {
          subscription: path,
        });
        return { ok: true };
      },
    },
    {
      method: 'POST',
      path: '/send',
      handler: async (request) => {
        const payload = objectPayload(request);
        if (!request.socket) {
          throw Boom.badRequest('Only over nes');
        }
        if (!('message' in payload)) {
          throw Boom.badRequest('Expected {message}');
        }
        await request.socket.send(payload.message);
        return { ok: true };
      },
    },
    {
      method: 'POST',
      path: '/drop',
      handler: (request) => {
        const socket = request.socket;
        if (socket) {
          // The reply is queued only after this handler returns; close once it is on its way.
          setTimeout(() => socket.disconnect(), 50);
        }
        return { ok: true };
      },
    },
    { method: '*', path: '/wild', config: { id: 'wild', handler: (request) => ({ method: request.method }) } },
    {
      method: 'GET',
      path: '/boom',
      handler: () => {
        throw new Error('boom');
      },
    },
  ]);

  const filter = (path, message, options) =>
    !(options.credentials && message && message.updater === options.credentials.username);
  server.subscription('/item/{id}', { filter, auth: { mode: 'optional' } });
  server.subscription('/items', { filter, auth: { mode: 'optional' } });

  await server.start();
  process.stdout.write(`listening ${server.info.port}\n`);

  const stop = () => server.stop({ timeout: 100 }).then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
