// herald's nes client for browsers: the @hapi/nes Client API (protocol version 2), so that a
// page written for @hapi/nes ports by changing its import, over a socket that falls back from
// WebSocket to an EventSource with POSTs, then to long-polling, by itself (HeraldSocket).
//
//   import { Client } from '/herald/client.js';
//   const client = new Client('wss://example.com');
//   await client.connect({ auth: { headers: { authorization: 'Basic am9objpzZWNyZXQ=' } } });
//   const { payload } = await client.request('hello');
//   await client.subscribe('/item/5', (message, flags) => { ... });
//
// A plain ES module: no build step, no dependencies but herald-socket.js beside it; the types
// are in client.d.ts. Where it departs from @hapi/nes (each time to fix a fault of the
// reference), the JSDoc of Client lists it, and the method's says so.
//
// Everything runs on the page's one thread. Callbacks (onConnect, onDisconnect, ...) and
// subscription handlers are called when the client's state is already settled, so they may
// call any method of the client, disconnect() and connect() included; one that throws (or
// returns a rejected promise) is reported to onError and never breaks the client.

import { HeraldSocket } from './herald-socket.js';

export { HeraldSocket };

const VERSION = '2';

// Defaults, in milliseconds (maxMessageLength in UTF-16 code units).
const DEFAULT_DELAY = 1000;
const DEFAULT_MAX_DELAY = 5000;
const DEFAULT_RESET_AFTER = 30000;
// An attempt without a connect timeout gets 10 s, plus HeraldSocket's fallbackTimeout for each
// transport before the last (20 s with its defaults: three transports, 5 s).
const DEFAULT_CONNECT_TIMEOUT = 10000;
const DEFAULT_FALLBACK_TIMEOUT = 5000;
const DEFAULT_TRANSPORTS = 3;
const DEFAULT_MAX_MESSAGE_LENGTH = 2 ** 26;
// How long to wait for a socket's close event after its error event before taking it for
// closed, and for the close event after disconnect().
const ERROR_CLOSE_GRACE = 1000;
const DISCONNECT_GRACE = 2000;

// The socket's readyState values (the WebSocket ones).
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

const CLOSE_CODES = {
  1000: 'Normal closure',
  1001: 'Going away',
  1002: 'Protocol error',
  1003: 'Unsupported data',
  1004: 'Reserved',
  1005: 'No status received',
  1006: 'Abnormal closure',
  1007: 'Invalid frame payload data',
  1008: 'Policy violation',
  1009: 'Message too big',
  1010: 'Mandatory extension',
  1011: 'Internal server error',
  1015: 'TLS handshake',
};

// The options that are the client's own; every other option goes to the socket's constructor.
const CLIENT_OPTIONS = new Set(['timeout', 'WebSocket', 'maxMessageLength']);

const ignore = () => {};
const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * The kinds of error, as @hapi/nes names them: an error's `type` is one of these.
 * @readonly
 */
export const errorTypes = Object.freeze({
  TIMEOUT: 'timeout',
  DISCONNECT: 'disconnect',
  SERVER: 'server',
  PROTOCOL: 'protocol',
  WS: 'ws',
  USER: 'user',
});

// nesError returns an Error shaped as @hapi/nes's: type, isNes, and any extra fields.
function nesError(message, type, extra) {
  const err = message instanceof Error ? message : new Error(String(message));
  err.type = type;
  err.isNes = true;
  if (extra) Object.assign(err, extra);
  return err;
}

// serverError recreates the error a reply carries (statusCode 400 and up).
function serverError(update) {
  const p = update.payload;
  const message = (p && typeof p === 'object' && (p.message || p.error)) || 'Error';
  return nesError(message, errorTypes.SERVER, {
    statusCode: update.statusCode,
    data: p,
    headers: update.headers,
    path: update.path,
  });
}

// permanent reports whether a failed connection attempt would fail again however often it is
// made: a mistake of the caller's, or a hello refused with a 4xx other than 408 and 429 (bad
// credentials, a protocol mismatch). Network failures, timeouts and 5xx are worth retrying.
function permanent(err) {
  if (err.type === errorTypes.USER) return true;
  if (err.type !== errorTypes.SERVER) return false;
  const s = err.statusCode;
  return s >= 400 && s < 500 && s !== 408 && s !== 429;
}

// socketURL resolves url against the page (a path or an http(s) URL gives ws(s)).
function socketURL(url) {
  if (typeof location === 'undefined' || typeof URL === 'undefined') return String(url);
  const u = new URL(String(url), location.href);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.href;
}

const positive = (v, d) => (typeof v === 'number' && v > 0 ? v : d);

/**
 * A nes client: one connection to a nes server (herald's, or hapi's with @hapi/nes), kept up
 * across network failures and server restarts.
 *
 * The API is @hapi/nes's Client; the differences, each a fix:
 * - Reconnection waits are drawn at random in [0, min(maxDelay, delay·2ⁿ)] (full jitter,
 *   drawn after the cap), and n starts again once a connection has stayed up `resetAfter`;
 *   `retries` bounds the attempts of one outage, not of the client's life.
 * - A hello that refuses one subscription (the error names its path) drops that path (its
 *   handlers hear `flags.revoked`, with `flags.error`) and the client connects again at once
 *   without it, instead of giving up for good.
 * - subscribe() while connecting or reconnecting settles with the outcome of the hello that
 *   carries the path, not at once.
 * - The connect timeout bounds the whole attempt, up to the hello reply, and defaults to
 *   20 s (10 s, and 5 s for each fallback transport): a proxy that passes the WebSocket
 *   upgrade and drops the frames cannot hold an attempt forever.
 * - Requests are sent only once the hello has been answered.
 * - A revocation without a message still reaches the handlers (flags.revoked), so that they
 *   learn their subscription ended.
 * - `retries: 0` means no attempt (@hapi/nes took 0 for Infinity).
 * - A message reassembled from chunks is bounded (maxMessageLength).
 * - A callback or handler that throws is reported to onError; the client carries on.
 *
 * @example
 * const client = new Client('wss://example.com', { timeout: 10000 });
 * client.onTransport = (name) => indicator.textContent = name;
 * await client.connect({ auth: { headers: { authorization: 'Basic ...' } } });
 */
export class Client {
  /**
   * @param {string|URL} url The nes server: ws(s)://, http(s):// (taken as ws(s)://) or a path
   *   resolved against the page.
   * @param {ClientOptions} [options]
   */
  constructor(url, options = {}) {
    this._url = socketURL(url);
    this._timeout = positive(options.timeout, 0);
    this._Socket = options.WebSocket || HeraldSocket;
    this._maxMessageLength = positive(options.maxMessageLength, DEFAULT_MAX_MESSAGE_LENGTH);
    this._socketOptions = {};
    for (const [k, v] of Object.entries(options)) {
      if (!CLIENT_OPTIONS.has(k) && v !== undefined) this._socketOptions[k] = v;
    }

    this._ids = 0; // message ids: counted up from 1, never reset (as the reference)
    this._state = 'idle'; // idle | connecting | connected | reconnecting
    this._life = null; // what connect() was given, and the reconnection's state
    this._conn = null; // the socket being dialled or connected, and its pending requests
    this._subs = new Map(); // path -> {path, handlers, waiters, active, inflight}
    this._lastTransport = null;

    /**
     * The server's id of the current connection's socket; null while disconnected.
     * @type {string|null}
     */
    this.id = null;

    /**
     * Hears errors that belong to no call: a message the client could not read, a failed
     * reconnection attempt, a heartbeat timeout, a callback or handler that threw. Defaults to
     * console.error.
     * @type {(err: NesError) => void}
     */
    this.onError = (err) => console.error(err);
    /**
     * Runs after every successful hello: the first connection and each reconnection.
     * @type {() => void}
     */
    this.onConnect = ignore;
    /**
     * Runs when a connection is lost or closed, and once more, with willReconnect false, when
     * the client gives up reconnecting.
     * @type {(willReconnect: boolean, log: DisconnectLog) => void}
     */
    this.onDisconnect = ignore;
    /**
     * Runs when the server has been silent past its heartbeat (interval + timeout), before the
     * client drops the connection.
     * @type {(willReconnect: boolean) => void}
     */
    this.onHeartbeatTimeout = ignore;
    /**
     * Receives the server's pushes that belong to no subscription (broadcast, socket.send).
     * @type {(message: any) => void}
     */
    this.onUpdate = ignore;
    /**
     * Runs before each wait between reconnection attempts (herald's addition).
     * @type {(info: ReconnectInfo) => void}
     */
    this.onReconnect = ignore;
    /**
     * Runs when a connection comes up over a transport other than the last one reported
     * ('websocket', 'sse' or 'poll'), the first connection included (herald's addition).
     * @type {(name: string) => void}
     */
    this.onTransport = ignore;
  }

  /**
   * What carries the current connection: 'websocket', 'sse' or 'poll' (the socket's own
   * `transport`, 'websocket' for a socket without one); null while disconnected.
   * @type {string|null}
   */
  get transport() {
    const c = this._conn;
    return c && c.up ? c.socket.transport || 'websocket' : null;
  }

  /**
   * Connects and says hello, with the auth and every subscription made so far. Resolves once
   * the server has answered the hello. When that first attempt fails for a reason worth
   * retrying (the network, a timeout, a 5xx), the promise rejects and, unless `reconnect` is
   * false, the client keeps trying in the background (as @hapi/nes does): onConnect tells when
   * it succeeds. A hello refused for good (a 4xx such as 401) leaves the client disconnected.
   *
   * Rejects with a 'user' error while connecting or connected ('Already connected') and while
   * reconnecting ('Cannot connect while client attempts to reconnect').
   *
   * @param {ConnectOptions} [options]
   * @returns {Promise<void>}
   */
  connect(options = {}) {
    if (this._state === 'reconnecting') {
      return Promise.reject(nesError('Cannot connect while client attempts to reconnect', errorTypes.USER));
    }
    if (this._state !== 'idle') {
      return Promise.reject(nesError('Already connected', errorTypes.USER));
    }
    const delay = positive(options.delay, DEFAULT_DELAY);
    const retries = options.retries === undefined || options.retries === null ? Infinity : options.retries;
    const life = {
      auth: options.auth,
      timeout: positive(options.timeout, 0),
      reconnect: options.reconnect !== false,
      delay,
      maxDelay: Math.max(delay, positive(options.maxDelay, DEFAULT_MAX_DELAY)),
      retries: typeof retries === 'number' && retries >= 0 ? retries : Infinity,
      resetAfter: positive(options.resetAfter, DEFAULT_RESET_AFTER),
      backoffN: 0, // the backoff's exponent: attempts since a connection last stayed up
      attempts: 0, // the attempts of the current outage
      timer: null,
    };
    this._life = life;
    this._state = 'connecting';
    return this._dial(life).catch((err) => {
      this._attemptFailed(life, err, true);
      throw err;
    });
  }

  /**
   * Closes the connection and stops reconnecting. Pending requests fail at once ('disconnect');
   * subscriptions are kept for the next connect(). onDisconnect hears it (wasRequested true)
   * when the client was connected or reconnecting. Resolves once the socket has closed (after
   * 2 s at most).
   * @returns {Promise<void>}
   */
  disconnect() {
    const life = this._life;
    const conn = this._conn;
    const was = this._state;
    this._life = null;
    if (life && life.timer) clearTimeout(life.timer);
    this._goIdle();
    let closed = Promise.resolve();
    if (conn) {
      closed = conn.closed;
      this._discard(conn, nesError('Request failed - server disconnected', errorTypes.DISCONNECT),
        nesError('Disconnected while connecting', errorTypes.DISCONNECT));
    }
    if (was === 'connected' || was === 'reconnecting') {
      this._call('onDisconnect', false, {
        code: 1000, explanation: CLOSE_CODES[1000], reason: '', wasClean: true, willReconnect: false, wasRequested: true,
      });
    }
    return Promise.race([closed, new Promise((resolve) => setTimeout(resolve, DISCONNECT_GRACE))]);
  }

  /**
   * Sends a request (a route id such as 'hello', or a path such as '/h') and resolves with
   * the reply. A reply with a status of 400 or more rejects with a 'server' error carrying
   * statusCode, data (the payload) and headers. Rejects with a 'disconnect' error while
   * disconnected, and as soon as the connection goes while it waits; with a 'timeout' error
   * past the client's timeout option.
   * @param {string|RequestOptions} options
   * @returns {Promise<{payload: any, statusCode: number, headers?: Object<string, any>}>}
   */
  request(options) {
    if (typeof options === 'string') options = { method: 'GET', path: options };
    if (!options || typeof options !== 'object') {
      return Promise.reject(nesError('Invalid request options', errorTypes.USER));
    }
    const request = {
      type: 'request',
      method: options.method || 'GET',
      path: options.path,
      headers: options.headers,
      payload: options.payload,
    };
    return this._send(this._up(), request, true, this._timeout)
      .then((r) => ({ payload: r.payload, statusCode: r.statusCode, headers: r.headers }));
  }

  /**
   * Sends a custom message (the server's onMessage) and resolves with its answer as
   * {payload}. Fails as request() does.
   * @param {any} data
   * @returns {Promise<{payload: any}>}
   */
  message(data) {
    return this._send(this._up(), { type: 'message', message: data }, true, this._timeout)
      .then((r) => ({ payload: r.message }));
  }

  /**
   * Subscribes handler to path's publications. The subscription lasts across reconnections:
   * every hello resubscribes every path. Several handlers may subscribe to one path; a
   * handler given twice is kept once.
   *
   * While connected it resolves once the server has confirmed the path, or rejects with its
   * refusal (a 'server' error with statusCode and path: 404 for a path the server has no
   * subscription for, 401 or 403 when auth forbids it). While connecting or reconnecting,
   * the path waits for the hello, and the promise settles with that hello's outcome for it.
   * While disconnected (before connect(), after disconnect() or when the client gave up) it
   * resolves at once and the path waits for the next connect(); if that hello refuses it, the
   * handler hears (undefined, {revoked: true, error}).
   *
   * handler(message, flags) gets each publication with flags {}; when the server revokes the
   * subscription, the last call has flags.revoked (and the revoke's message, if any, which
   * @hapi/nes would not call the handler without).
   *
   * @param {string} path
   * @param {SubscriptionHandler} handler
   * @returns {Promise<void>}
   */
  subscribe(path, handler) {
    if (!path || typeof path !== 'string' || path[0] !== '/') {
      return Promise.reject(nesError('Invalid path', errorTypes.USER));
    }
    if (typeof handler !== 'function') {
      return Promise.reject(nesError('Invalid handler', errorTypes.USER));
    }
    let entry = this._subs.get(path);
    if (entry) {
      if (!entry.handlers.includes(handler)) entry.handlers.push(handler);
      if (entry.active || this._state === 'idle') return Promise.resolve();
      return this._waitFor(entry, handler);
    }
    entry = { path, handlers: [handler], waiters: [], active: false, inflight: null };
    this._subs.set(path, entry);
    if (this._state === 'idle') return Promise.resolve();
    const confirmed = this._waitFor(entry, handler);
    if (this._state === 'connected') this._sendSub(entry);
    return confirmed;
  }

  /**
   * Removes handler from path, or every handler of path when handler is left out. When the
   * path has no handler left, the client unsubscribes on the server (when connected) and
   * resolves with its answer. The handlers get nothing more, whatever the server answers. A
   * subscribe() of a removed handler still waiting for the server rejects ('user').
   * @param {string} path
   * @param {SubscriptionHandler} [handler]
   * @returns {Promise<void>}
   */
  unsubscribe(path, handler) {
    if (!path || typeof path !== 'string' || path[0] !== '/') {
      return Promise.reject(nesError('Invalid path', errorTypes.USER));
    }
    const entry = this._subs.get(path);
    if (!entry) return Promise.resolve();
    const cancelled = () => nesError('Unsubscribed before the subscription was confirmed', errorTypes.USER);
    if (handler !== undefined) {
      const i = entry.handlers.indexOf(handler);
      if (i < 0) return Promise.resolve();
      entry.handlers.splice(i, 1);
      for (const w of entry.waiters.filter((w) => w.handler === handler)) w.reject(cancelled());
      entry.waiters = entry.waiters.filter((w) => w.handler !== handler);
      if (entry.handlers.length) return Promise.resolve();
    }
    this._subs.delete(path);
    const waiters = entry.waiters;
    entry.waiters = [];
    for (const w of waiters) w.reject(cancelled());
    const conn = this._up();
    if (!conn || (!entry.active && !entry.inflight)) return Promise.resolve(); // the next hello leaves it out
    const send = () => {
      if (conn !== this._conn) return undefined;
      return this._send(conn, { type: 'unsub', path }, true, this._timeout).then(ignore, (err) => {
        if (err.type !== errorTypes.DISCONNECT) throw err;
      });
    };
    // A sub still waiting for its reply goes first: the server may process messages
    // concurrently, and an unsub overtaking it would leave the path subscribed.
    return entry.inflight ? entry.inflight.then(send) : send();
  }

  /**
   * The subscribed paths, in the order they were first subscribed, those waiting for the
   * server included.
   * @returns {string[]}
   */
  subscriptions() {
    return [...this._subs.keys()];
  }

  /**
   * Presents new credentials on the open connection (nes's reauth) and keeps them for
   * reconnections. Resolves true; a refusal rejects ('server'), and the server then closes the
   * connection.
   * @param {any} auth
   * @returns {Promise<true>}
   */
  reauthenticate(auth) {
    this.overrideReconnectionAuth(auth);
    return this._send(this._up(), { type: 'reauth', auth }, true, this._timeout).then(() => true);
  }

  /**
   * Replaces what the next reconnections' hellos present, without touching the current
   * connection. Returns false when there is no connection to keep up (before connect(), after
   * disconnect()): the next connect() takes its own auth.
   * @param {any} auth
   * @returns {boolean}
   */
  overrideReconnectionAuth(auth) {
    if (!this._life) return false;
    this._life.auth = auth;
    return true;
  }

  // ---- connecting ----

  // _dial makes one connection attempt for life: a socket, its open event, the hello and its
  // reply. A hello that refuses a subscribed path drops the path and starts again at once.
  // Resolves once connected; rejects (with the socket discarded) otherwise.
  _dial(life) {
    return new Promise((resolve, reject) => {
      let settled = false;
      let deadline = null;
      let conn = null;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (conn) this._discard(conn, nesError('Request failed - server disconnected', errorTypes.DISCONNECT));
        reject(err);
      };
      const start = () => {
        clearTimeout(deadline);
        if (life !== this._life) return fail(nesError('Disconnected while connecting', errorTypes.DISCONNECT));
        deadline = setTimeout(() => fail(nesError('Connection timed out', errorTypes.TIMEOUT)), life.timeout || this._defaultTimeout());
        let socket;
        try {
          socket = this._newSocket();
        } catch (err) {
          return fail(nesError(err, errorTypes.USER));
        }
        conn = this._watch(socket);
        conn.dialFail = fail;
        socket.onopen = () => {
          if (conn.gone) return;
          const subs = this.subscriptions();
          const hello = { type: 'hello', version: VERSION };
          if (life.auth) hello.auth = life.auth;
          if (subs.length) hello.subs = subs;
          this._send(conn, hello, true, 0).then((reply) => {
            if (settled) return;
            settled = true;
            clearTimeout(deadline);
            conn.dialFail = null;
            this._connected(life, conn, reply, subs);
            resolve();
          }, (err) => {
            if (settled) return;
            if (err.type === errorTypes.SERVER && err.path && subs.includes(err.path)) {
              // One path refused: the socket is spent (the server counts a failed hello as
              // final), so the attempt starts again at once without the path.
              conn.dialFail = null;
              this._discard(conn, nesError('Request failed - server disconnected', errorTypes.DISCONNECT));
              this._dropSubscription(err.path, err);
              start();
              return;
            }
            fail(err);
          });
        };
      };
      start();
    });
  }

  // _herald reports whether the socket class is HeraldSocket or one of its subclasses (such as
  // HeraldSocket.configure() makes): those take the socket options.
  _herald() {
    const Socket = this._Socket;
    return Socket === HeraldSocket || (typeof Socket === 'function' && Socket.prototype instanceof HeraldSocket);
  }

  // _defaultTimeout is an attempt's bound when connect() set none.
  _defaultTimeout() {
    if (!this._herald()) return DEFAULT_CONNECT_TIMEOUT;
    const o = this._socketOptions;
    const n = Array.isArray(o.transports) ? o.transports.length : DEFAULT_TRANSPORTS;
    return DEFAULT_CONNECT_TIMEOUT + Math.max(0, n - 1) * positive(o.fallbackTimeout, DEFAULT_FALLBACK_TIMEOUT);
  }

  // _newSocket opens the socket: a HeraldSocket with the socket options when there are any;
  // any other class as @hapi/nes does, with the URL alone (Chromium's WebSocket fails a
  // connection given a third argument).
  _newSocket() {
    const Socket = this._Socket;
    if (typeof Socket !== 'function') {
      throw new Error('No WebSocket implementation: pass options.WebSocket');
    }
    return this._herald() && Object.keys(this._socketOptions).length
      ? new Socket(this._url, undefined, this._socketOptions)
      : new Socket(this._url);
  }

  // _watch makes socket the client's connection (not yet up) and listens to it.
  _watch(socket) {
    let closedResolve;
    const conn = {
      socket,
      requests: new Map(), // id -> {resolve, reject, timer}
      packets: [], // chunks of a message being reassembled
      packetsLength: 0,
      up: false,
      upSince: 0,
      gone: false,
      dialFail: null, // set while dialling: fails the attempt
      heartbeat: 0, // the server's interval + timeout; 0: none
      lastRead: 0,
      hbTimer: null,
      errTimer: null,
      closed: new Promise((resolve) => { closedResolve = resolve; }),
      closedResolve,
    };
    this._conn = conn;
    socket.onmessage = (event) => this._onFrame(conn, event);
    socket.onclose = (event) => {
      conn.closedResolve();
      // After the replies that came before the close have settled their promises: a server
      // that answers a hello with an error and then closes (herald does) must be heard as the
      // error, not as a connection that ended while waiting.
      queueMicrotask(() => this._gone(conn, { code: event.code, reason: event.reason, wasClean: event.wasClean }));
    };
    socket.onerror = () => {
      // The close event, with its code, follows an error event; should it not, the socket
      // counts as closed anyway.
      if (conn.gone || conn.errTimer) return;
      conn.errTimer = setTimeout(() => this._gone(conn, { code: 1006, reason: '', wasClean: false }), ERROR_CLOSE_GRACE);
    };
    return conn;
  }

  // _connected makes conn, whose hello was answered, the client's connection.
  _connected(life, conn, reply, helloSubs) {
    conn.up = true;
    conn.upSince = now();
    life.attempts = 0;
    this._state = 'connected';
    this.id = reply.socket === undefined ? null : reply.socket;
    const hb = reply.heartbeat;
    if (hb && typeof hb === 'object') this._watchHeartbeat(conn, (Number(hb.interval) || 0) + (Number(hb.timeout) || 0));

    // The paths the hello carried are confirmed; those subscribed since go now; those
    // unsubscribed since the hello left are unsubscribed.
    for (const path of helloSubs) {
      const entry = this._subs.get(path);
      if (entry) this._confirm(entry);
      else this._send(conn, { type: 'unsub', path }, false).catch(ignore);
    }
    for (const entry of this._subs.values()) {
      if (!entry.active && !entry.inflight) this._sendSub(entry);
    }

    const transport = this.transport;
    if (transport !== this._lastTransport) {
      this._lastTransport = transport;
      this._call('onTransport', transport);
    }
    this._call('onConnect');
  }

  // _attemptFailed decides what follows a failed attempt: another after a wait, or nothing.
  _attemptFailed(life, err, initial) {
    if (life !== this._life) return; // disconnect() or another connect() took over
    if (initial) {
      // connect() rejects with err; reconnecting in the background is for what may pass.
      if (permanent(err) || !life.reconnect || life.retries < 1) {
        this._life = null;
        this._goIdle();
        return;
      }
    } else {
      this._report(err);
      if (permanent(err)) {
        this._giveUp(err);
        return;
      }
    }
    this._state = 'reconnecting';
    this._schedule(life, err);
  }

  // _schedule waits before the next attempt of an outage: a time drawn uniformly from
  // [0, min(maxDelay, delay·2ⁿ)], n counting the attempts since a connection last stayed up
  // resetAfter. Gives up once the outage's attempts reach retries.
  _schedule(life, lastErr) {
    if (life.attempts >= life.retries) {
      this._giveUp(lastErr);
      return;
    }
    life.attempts++;
    const cap = Math.min(life.maxDelay, life.delay * 2 ** Math.min(life.backoffN, 40));
    const delay = Math.round(Math.random() * cap);
    life.backoffN++;
    life.timer = setTimeout(() => {
      life.timer = null;
      if (life !== this._life || this._state !== 'reconnecting') return;
      this._dial(life).catch((err) => this._attemptFailed(life, err, false));
    }, delay);
    this._call('onReconnect', { attempt: life.attempts, delay, error: lastErr || null });
  }

  // _giveUp ends the reconnection for good.
  _giveUp(err) {
    this._life = null;
    this._goIdle();
    this._call('onDisconnect', false, {
      code: undefined, explanation: 'Unknown', reason: '', wasClean: false, willReconnect: false, wasRequested: false,
      error: err || null,
    });
  }

  // _goIdle leaves the client disconnected: the subscriptions waiting for a hello resolve and
  // wait for the next connect().
  _goIdle() {
    this._state = 'idle';
    for (const entry of this._subs.values()) {
      const waiters = entry.waiters;
      entry.waiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  // _gone is told that conn's socket closed, or that conn must be dropped (why says how).
  _gone(conn, why) {
    if (conn.gone) return;
    if (!conn.up) {
      if (conn.dialFail) {
        conn.dialFail(why.error || nesError('Connection terminated while waiting to connect', errorTypes.WS));
      } else {
        this._discard(conn, nesError('Request failed - server disconnected', errorTypes.DISCONNECT));
      }
      return;
    }
    this._lost(conn, why);
  }

  // _lost handles the loss of the client's connection: pending requests fail at once, then
  // onDisconnect, then (unless told not to) the wait before reconnecting.
  _lost(conn, why) {
    const life = this._life;
    const current = conn === this._conn;
    this._discard(conn, nesError('Request failed - server disconnected', errorTypes.DISCONNECT));
    if (!current || !life) return;
    if (now() - conn.upSince >= life.resetAfter) life.backoffN = 0;
    life.attempts = 0;
    const willReconnect = life.reconnect && life.retries > 0;
    if (willReconnect) {
      this._state = 'reconnecting';
    } else {
      this._life = null;
      this._goIdle();
    }
    const code = why.code;
    this._call('onDisconnect', willReconnect, {
      code,
      explanation: CLOSE_CODES[code] || 'Unknown',
      reason: why.reason || '',
      wasClean: !!why.wasClean,
      willReconnect,
      wasRequested: false,
      error: why.error || null,
    });
    if (willReconnect && life === this._life && this._state === 'reconnecting' && !life.timer) {
      this._schedule(life, why.error || null);
    }
  }

  // _discard lets conn go: its socket closed and unwatched, its pending requests failed with
  // err, an attempt still dialling failed with dialErr.
  _discard(conn, err, dialErr) {
    if (conn.gone) return;
    conn.gone = true;
    if (this._conn === conn) {
      this._conn = null;
      this.id = null;
    }
    clearTimeout(conn.hbTimer);
    clearTimeout(conn.errTimer);
    conn.packets = [];
    const socket = conn.socket;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onerror = ignore;
    socket.onclose = () => conn.closedResolve();
    if (socket.readyState === CLOSED) conn.closedResolve();
    if (socket.readyState !== CLOSING && socket.readyState !== CLOSED) {
      try {
        socket.close();
      } catch (e) {
        conn.closedResolve();
      }
    }
    const requests = conn.requests;
    conn.requests = new Map();
    for (const r of requests.values()) {
      clearTimeout(r.timer);
      r.reject(err);
    }
    if (conn.dialFail) {
      const fail = conn.dialFail;
      conn.dialFail = null;
      fail(dialErr || err);
    }
  }

  // ---- heartbeat ----

  // _watchHeartbeat takes a connection silent for window ms for lost. Every frame counts;
  // the timer is re-armed for what is left rather than reset on every frame.
  _watchHeartbeat(conn, window) {
    if (!(window > 0)) return;
    conn.heartbeat = window;
    conn.lastRead = now();
    const check = () => {
      if (conn.gone) return;
      const silent = now() - conn.lastRead;
      if (silent < conn.heartbeat) {
        conn.hbTimer = setTimeout(check, conn.heartbeat - silent);
        return;
      }
      this._heartbeatTimeout(conn);
    };
    conn.hbTimer = setTimeout(check, window);
  }

  _heartbeatTimeout(conn) {
    const life = this._life;
    const willReconnect = !!(life && life.reconnect && life.retries > 0);
    const err = nesError('Disconnecting due to heartbeat timeout', errorTypes.TIMEOUT);
    this._report(err);
    this._call('onHeartbeatTimeout', willReconnect);
    if (conn !== this._conn) return; // a callback disconnected meanwhile
    this._lost(conn, { code: undefined, reason: 'heartbeat timeout', wasClean: false, error: err });
  }

  // ---- messages ----

  _up() {
    const c = this._conn;
    return c && c.up ? c : null;
  }

  // _send sends request on conn with a fresh id; when track is set, resolves with the reply
  // (rejects with its error), bounded by timeout ms when positive.
  _send(conn, request, track, timeout) {
    if (!conn || conn.gone || conn.socket.readyState !== OPEN) {
      return Promise.reject(nesError('Failed to send message - server disconnected', errorTypes.DISCONNECT));
    }
    const id = ++this._ids;
    request.id = id;
    let encoded;
    try {
      encoded = JSON.stringify(request);
    } catch (err) {
      return Promise.reject(nesError(err, errorTypes.USER));
    }
    if (!track) {
      try {
        conn.socket.send(encoded);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(nesError(err, errorTypes.WS));
      }
    }
    return new Promise((resolve, reject) => {
      const record = { resolve, reject, timer: null };
      if (timeout > 0) {
        record.timer = setTimeout(() => {
          conn.requests.delete(id);
          reject(nesError('Request timed out', errorTypes.TIMEOUT));
        }, timeout);
      }
      conn.requests.set(id, record);
      try {
        conn.socket.send(encoded);
      } catch (err) {
        clearTimeout(record.timer);
        conn.requests.delete(id);
        reject(nesError(err, errorTypes.WS));
      }
    });
  }

  // _onFrame reads one frame: a whole message, or a chunk ('+' a part, '!' the last part).
  _onFrame(conn, event) {
    if (conn.gone) return;
    conn.lastRead = now();
    let data = event.data;
    if (typeof data !== 'string') {
      this._report(nesError('Received a binary message', errorTypes.PROTOCOL));
      return;
    }
    const prefix = data[0];
    if (prefix === '+' || prefix === '!') {
      conn.packetsLength += data.length - 1;
      if (conn.packetsLength > this._maxMessageLength) {
        const err = nesError(`Received a chunked message longer than ${this._maxMessageLength} characters (the client's maxMessageLength option)`, errorTypes.PROTOCOL);
        this._report(err);
        this._gone(conn, { code: 1009, reason: 'message too big', wasClean: false, error: err });
        return;
      }
      conn.packets.push(data.slice(1));
      if (prefix === '+') return;
      data = conn.packets.join('');
      conn.packets = [];
      conn.packetsLength = 0;
    } else if (conn.packets.length) {
      conn.packets = [];
      conn.packetsLength = 0;
      this._report(nesError('Received an incomplete message', errorTypes.PROTOCOL));
    }
    let update;
    try {
      update = JSON.parse(data);
    } catch (err) {
      this._report(nesError(err, errorTypes.PROTOCOL));
      return;
    }
    if (!update || typeof update !== 'object') {
      this._report(nesError('Received a message that is not a JSON object', errorTypes.PROTOCOL));
      return;
    }
    this._dispatch(conn, update);
  }

  _dispatch(conn, update) {
    switch (update.type) {
      case 'ping':
        this._send(conn, { type: 'ping' }, false).catch(ignore);
        return;
      case 'update':
        this._call('onUpdate', update.message);
        return;
      case 'pub':
      case 'revoke':
        this._onPublication(update);
        return;
    }
    const request = conn.requests.get(update.id);
    if (!request) {
      this._report(nesError('Received response for unknown request', errorTypes.PROTOCOL));
      return;
    }
    conn.requests.delete(update.id);
    clearTimeout(request.timer);
    if (update.statusCode >= 400) {
      request.reject(serverError(update));
      return;
    }
    switch (update.type) {
      case 'request': case 'message': case 'hello': case 'reauth': case 'sub': case 'unsub':
        request.resolve(update); // each caller takes what it needs of the reply
        return;
    }
    request.reject(nesError('Received invalid response', errorTypes.PROTOCOL));
    this._report(nesError('Received unknown response type: ' + update.type, errorTypes.PROTOCOL));
  }

  // ---- subscriptions ----

  // _waitFor returns a promise that settles when entry is confirmed or refused.
  _waitFor(entry, handler) {
    return new Promise((resolve, reject) => entry.waiters.push({ handler, resolve, reject }));
  }

  _confirm(entry) {
    entry.active = true;
    const waiters = entry.waiters;
    entry.waiters = [];
    for (const w of waiters) w.resolve();
  }

  // _sendSub asks the server for a path while connected.
  _sendSub(entry) {
    const conn = this._conn;
    entry.inflight = this._send(conn, { type: 'sub', path: entry.path }, true, this._timeout).then(() => {
      entry.inflight = null;
      if (this._subs.get(entry.path) === entry) this._confirm(entry);
    }, (err) => {
      entry.inflight = null;
      if (this._subs.get(entry.path) !== entry) return;
      if (err.type === errorTypes.DISCONNECT) return; // the next hello carries it, or going idle resolves it
      if (!err.path) err.path = entry.path;
      this._dropSubscription(entry.path, err);
    });
  }

  // _dropSubscription removes a path the server refused: a subscribe() still waiting rejects
  // with the refusal; handlers whose subscribe() had resolved hear it as a revocation.
  _dropSubscription(path, err) {
    const entry = this._subs.get(path);
    if (!entry) return;
    this._subs.delete(path);
    const waiters = entry.waiters;
    entry.waiters = [];
    const waiting = new Set(waiters.map((w) => w.handler));
    for (const w of waiters) w.reject(err);
    for (const h of entry.handlers) {
      if (!waiting.has(h)) this._deliver(h, path, undefined, { revoked: true, error: err });
    }
  }

  _onPublication(update) {
    const entry = this._subs.get(update.path);
    if (!entry) return; // unsubscribed meanwhile: ignored, as the reference does
    const revoked = update.type === 'revoke';
    if (revoked) {
      this._subs.delete(update.path);
      this._confirm(entry);
    } else if (update.message === undefined) {
      return;
    }
    for (const h of entry.handlers.slice()) {
      this._deliver(h, update.path, update.message, revoked ? { revoked: true } : {});
    }
  }

  // ---- callbacks ----

  _deliver(handler, path, message, flags) {
    try {
      const r = handler(message, flags);
      if (r && typeof r.then === 'function') r.then(undefined, (err) => this._callbackFailed('the handler of ' + path, err));
    } catch (err) {
      this._callbackFailed('the handler of ' + path, err);
    }
  }

  // _call calls the callback name, reporting what it throws.
  _call(name, ...args) {
    const fn = this[name];
    if (typeof fn !== 'function') return;
    try {
      const r = fn.apply(this, args);
      if (r && typeof r.then === 'function') r.then(undefined, (err) => this._callbackFailed(name, err));
    } catch (err) {
      this._callbackFailed(name, err);
    }
  }

  _callbackFailed(where, err) {
    const message = err && err.message !== undefined ? err.message : String(err);
    this._report(nesError(`${where} threw: ${message}`, errorTypes.USER, { cause: err }));
  }

  // _report hands an error to onError; an onError that throws goes to the console.
  _report(err) {
    try {
      const r = typeof this.onError === 'function' ? this.onError(err) : undefined;
      if (r && typeof r.then === 'function') r.then(undefined, (e) => console.error(e));
    } catch (e) {
      console.error(e);
    }
  }
}

/**
 * @typedef {Object} ClientOptions
 * @property {number} [timeout] Bounds each request, message, subscribe, unsubscribe and
 *   reauthenticate, in ms. Zero or undefined means no bound (as @hapi/nes).
 * @property {Function} [WebSocket] The socket class: HeraldSocket (the default), a class
 *   made by HeraldSocket.configure(), or any WebSocket-compatible class (the browser's
 *   WebSocket), which is given the URL alone, as @hapi/nes does.
 * @property {number} [maxMessageLength] Bounds a message reassembled from chunks, in UTF-16
 *   code units; a longer one drops the connection (reported to onError). Defaults to 2²⁶.
 * @property {string[]} [transports] HeraldSocket's transports, in order of preference:
 *   'websocket', 'sse', 'poll'.
 * @property {string} [fallbackURL] HeraldSocket's base URL of the fallback endpoints.
 * @property {number} [fallbackTimeout] HeraldSocket's time for a transport before the next.
 * @property {boolean} [withCredentials] HeraldSocket's cross-origin cookies.
 * Every option other than timeout, WebSocket and maxMessageLength is passed to HeraldSocket's
 * constructor (its third argument), which refuses options it does not know.
 */

/**
 * @typedef {Object} ConnectOptions
 * @property {any} [auth] What each hello presents: {headers: {...}} for direct auth, or a token.
 * @property {number} [delay] The cap of the first reconnection wait, in ms; the waits' caps
 *   double from it. Defaults to 1000.
 * @property {number} [maxDelay] The largest wait, in ms. Defaults to 5000.
 * @property {number} [retries] The attempts of one outage before giving up. Defaults to Infinity;
 *   0 means none.
 * @property {number} [timeout] Bounds each attempt, from opening the socket to the hello reply,
 *   in ms. Defaults to 10 s plus fallbackTimeout (5 s) for each transport before the last:
 *   20 s with HeraldSocket's three transports, 10 s with the browser's WebSocket.
 * @property {boolean} [reconnect] False turns reconnection off. Defaults to true.
 * @property {number} [resetAfter] How long a connection must stay up for the waits to start
 *   again from delay, in ms. Defaults to 30000.
 */

/**
 * @typedef {Object} RequestOptions
 * @property {string} path A path ('/h') or a route id ('hello').
 * @property {string} [method] Defaults to 'GET'.
 * @property {Object<string, string>} [headers] No authorization header.
 * @property {any} [payload]
 */

/**
 * @typedef {Object} DisconnectLog
 * @property {number} [code] The socket's close code.
 * @property {string} explanation The code's meaning.
 * @property {string} reason The close reason.
 * @property {boolean} wasClean
 * @property {boolean} willReconnect
 * @property {boolean} wasRequested True after disconnect().
 * @property {Error|null} [error] Why, when the client dropped the connection itself
 *   (heartbeat timeout, a message too long) or gave up.
 */

/**
 * @typedef {Object} ReconnectInfo
 * @property {number} attempt Counts the attempts of this outage, from 1.
 * @property {number} delay The wait before it, in ms.
 * @property {Error|null} error Why the previous attempt failed; null for an outage's first.
 */

/**
 * @callback SubscriptionHandler
 * @param {any} message The publication; undefined for a revocation without one.
 * @param {{revoked?: boolean, error?: Error}} flags revoked when the subscription ended without
 *   the client asking; error when a reconnection's hello refused it.
 */

/**
 * @typedef {Error & {type: string, isNes: true, statusCode?: number, data?: any, headers?: Object, path?: string}} NesError
 */
