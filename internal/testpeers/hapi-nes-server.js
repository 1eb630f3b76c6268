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
//   POST /drop       over nes: answers {ok:true}, then closes that socket from the server side
//   *    /wild       route id `wild`, wildcard method (nes refuses it by route id)
//   GET  /boom       throws: 500
//   subscriptions /item/{id} and /items (auth mode optional; the filter skips a message whose
//   `updater` equals the socket's credentials' username); onMessage answers {echo: message};
//   direct auth with Basic, optional.
//
// Usage: node hapi-nes-server.js [heartbeatIntervalMs heartbeatTimeoutMs]  (defaults 15000 5000)
// It listens on 127.0.0.1 on a free port and prints `listening PORT` first.

const Basic = require('@hapi/basic');
const Hapi = require('@hapi/hapi');
const Nes = require('@hapi/nes');

const USER = { id: '2133d32a', name: 'John Doe', username: 'john', password: 'secret' };

async function main() {
  const interval = Number(process.argv[2] || 15000);
  const timeout = Number(process.argv[3] || 5000);

  const server = Hapi.server({ host: '127.0.0.1', port: 0 });
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
      auth: { type: 'direct', route: { mode: 'optional', strategy: 'simple' } },
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
