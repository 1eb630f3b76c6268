// herald-socket.js: HeraldSocket, a WebSocket that reaches a herald server whatever the network
// between them lets through. It tries a real WebSocket first, then herald's fallback: an
// EventSource down and JSON POSTs up ('sse'), then long-polls down and POSTs up ('poll'). The
// page sees one WebSocket throughout, so that the official @hapi/nes client works over every
// transport unchanged:
//
//   import { HeraldSocket } from '/herald/herald-socket.js';
//   nes.Client.WebSocket = HeraldSocket; // or HeraldSocket.configure({transports: ['sse']})
//
// The HTTP surface it speaks is fallback/PROTOCOL.md in herald's repository. Plain ES module,
// no dependencies, no build step; the types are in herald-socket.d.ts beside it.

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

const TRANSPORTS = Object.freeze(['websocket', 'sse', 'poll']);

// The defaults of every option, as HeraldSocketOptions documents them.
const DEFAULTS = Object.freeze({
  transports: TRANSPORTS,
  fallbackURL: '',
  fallbackTimeout: 5000,
  withCredentials: true,
});

// What a POST body adds around its messages ({"seq":…,"messages":[…],"ack":…,"close":true}),
// at most, in bytes.
const BODY_OVERHEAD = 96;

// How long the goodbye POST of close() may take before the close event is dispatched anyway.
const GOODBYE_TIMEOUT = 1000;

// The waits between retries of a request that failed on the network, and of a 429.
const RETRY_DELAY = 250;
const BUSY_DELAY = 50;

// How long the stream or poll has, after a POST was answered 410 (the session has ended), to
// deliver what the server sent before it closed and its close event.
const ENDED_WAIT = 3000;

// gatewayError reports whether a status is a proxy's answer for a server it could not reach
// (502, 504): it says nothing of the session, and the request may be tried again.
const gatewayError = (status) => status === 502 || status === 504;

// configured maps each class that configure() made to its default options.
const configured = new WeakMap();

/**
 * Options of a HeraldSocket; each one left out takes its default.
 *
 * @typedef {object} HeraldSocketOptions
 * @property {Array<'websocket' | 'sse' | 'poll'>} [transports]  the transports to try, in order
 *   of preference, at each new socket. Default: ['websocket', 'sse', 'poll'].
 * @property {string | URL} [fallbackURL]  the base URL of the fallback endpoints (+ '/sse',
 *   '/send', '/poll'), resolved against the page. Default: the socket's URL over http(s) with
 *   '/nes' after its path (ws://example.com/ gives http://example.com/nes).
 * @property {number} [fallbackTimeout]  ms a transport with another after it may take to get
 *   through: the WebSocket's handshake, then the server's first message after the page's first
 *   send; the stream's or first poll's open event. The last transport has no such bound.
 *   Default: 5000.
 * @property {boolean} [withCredentials]  send cookies with the fallback's requests to another
 *   origin, as a WebSocket does. Default: true.
 */

/**
 * A WebSocket for the @hapi/nes client (and any code written for the WebSocket interface) that
 * falls back to herald's EventSource + POST transport, then to long-polling, when the network
 * will not carry a WebSocket.
 *
 * A new socket tries the transports in order (`options.transports`). A WebSocket opens the
 * socket as soon as its handshake succeeds; what the page then sends is also kept until the
 * server's first message arrives, because a proxy may pass the upgrade and drop the frames: if
 * no message comes within `fallbackTimeout` of the first send, the socket moves to the next
 * transport and sends what it kept there, without the page noticing. The fallback transports
 * open the socket at the session's open event. A stream that drops is resumed (the browser's
 * own EventSource reconnection sends Last-Event-ID), and messages are delivered in order, each
 * once; the page sees a close only when the session itself ends. Every new socket tries the
 * WebSocket again first, so a client that reconnects goes back to it when it works.
 *
 * It behaves as a browser's WebSocket: `send()` throws while CONNECTING, close codes and
 * reasons are checked as WebSocket checks them, and a socket that never opens reports `error`
 * then `close` with code 1006. It carries text only.
 *
 * Over HTTP/1.1, a browser opens at most six connections to one host: each socket on 'sse'
 * holds one for its stream, one on 'poll' holds one for its poll, and their POSTs need another.
 * Over HTTP/2 they share one connection.
 *
 * @example
 * import { HeraldSocket } from '/herald/herald-socket.js';
 * nes.Client.WebSocket = HeraldSocket.configure({ fallbackTimeout: 3000 });
 * const client = new nes.Client('wss://example.com');
 * await client.connect();
 */
export class HeraldSocket extends EventTarget {
  /** The socket is connecting: no transport has opened yet. */
  static CONNECTING = CONNECTING;
  /** The socket is open: messages flow both ways. */
  static OPEN = OPEN;
  /** close() was called; the close event has not been dispatched yet. */
  static CLOSING = CLOSING;
  /** The socket is closed. */
  static CLOSED = CLOSED;

  /**
   * Returns a subclass of this class whose sockets take these options by default (options
   * given to its constructor still win), so that the class itself can be handed to code that
   * constructs WebSockets: `nes.Client.WebSocket = HeraldSocket.configure({transports:
   * ['sse']})`. Configured classes can be configured again; their options add up.
   *
   * @param {HeraldSocketOptions} options
   * @returns {typeof HeraldSocket}
   * @throws {TypeError} when an option is invalid.
   */
  static configure(options) {
    const defaults = Object.freeze(settings(Object.assign({}, defaultsOf(this), defined(options))));
    const Configured = class HeraldSocket extends this {};
    configured.set(Configured, defaults);
    return Configured;
  }

  #url;
  #origin; // of #url, for message events
  #settings;
  #base; // the fallback endpoints' base URL, without a trailing slash
  #protocols;
  #state = CONNECTING;
  /** @type {'' | 'websocket' | 'sse' | 'poll'} */
  #transport = '';
  #protocol = '';
  /** @type {BinaryType} */
  #binaryType = 'blob';
  #handlers = { open: null, message: null, close: null, error: null };
  #index = -1; // of the transport being tried, in #settings.transports
  #link = null; // the transport being tried or used
  #kept = []; // what the page sent that no transport has taken for good yet
  #opened = false; // the page has seen open
  #timer = 0;

  /**
   * Opens a socket to a herald nes server, as `new WebSocket(url, protocols)` would.
   *
   * @param {string | URL} url  ws:// or wss:// (http:// and https:// are taken as ws:// and
   *   wss://); a relative URL is resolved against the page's location.
   * @param {string | string[]} [protocols]  subprotocols offered on the WebSocket transport.
   * @param {HeraldSocketOptions} [options]  added to the class's defaults (see configure).
   * @throws {DOMException} SyntaxError when url is not a WebSocket URL.
   * @throws {TypeError} when an option is invalid.
   */
  constructor(url, protocols, options) {
    super();
    this.#url = socketURL(url);
    this.#origin = new URL(this.#url).origin;
    this.#settings = settings(Object.assign({}, defaultsOf(new.target), defined(options)));
    this.#base = fallbackBase(this.#url, this.#settings.fallbackURL);
    this.#protocols = protocols;
    for (const type of ['open', 'message', 'close', 'error']) {
      // The on* properties are listeners added when first set, as a WebSocket's are.
      this.addEventListener(type, (event) => {
        const handler = this.#handlers[type];
        if (typeof handler === 'function') handler.call(this, event);
      });
    }
    queueMicrotask(() => this.#next('')); // once the caller has set its handlers
  }

  /** @returns {0} */
  get CONNECTING() { return CONNECTING; }
  /** @returns {1} */
  get OPEN() { return OPEN; }
  /** @returns {2} */
  get CLOSING() { return CLOSING; }
  /** @returns {3} */
  get CLOSED() { return CLOSED; }

  /** The WebSocket URL the socket was made for, resolved. @returns {string} */
  get url() { return this.#url; }

  /** CONNECTING, OPEN, CLOSING or CLOSED. @returns {number} */
  get readyState() { return this.#state; }

  /**
   * The transport the socket is on: 'websocket', 'sse' or 'poll'; '' before it opens.
   * @returns {'' | 'websocket' | 'sse' | 'poll'}
   */
  get transport() { return this.#transport; }

  /** The subprotocol the server selected over a WebSocket; '' otherwise. @returns {string} */
  get protocol() { return this.#protocol; }

  /** The WebSocket's extensions; '' otherwise. @returns {string} */
  get extensions() {
    return this.#link instanceof WebSocketLink && this.#link.ws ? this.#link.ws.extensions : '';
  }

  /** Bytes of text sent by the page and not yet handed to the network. @returns {number} */
  get bufferedAmount() {
    let n = 0;
    if (this.#link instanceof WebSocketLink && this.#link.ws) n += this.#link.ws.bufferedAmount;
    else if (this.#link instanceof FallbackLink) for (const m of this.#link.outbox) n += utf8Length(m);
    if (!(this.#link instanceof WebSocketLink)) for (const m of this.#kept) n += utf8Length(m);
    return n;
  }

  /** As WebSocket's; messages from a herald server are text, which it does not affect. @returns {BinaryType} */
  get binaryType() { return this.#binaryType; }
  set binaryType(value) {
    if (value !== 'blob' && value !== 'arraybuffer') return;
    this.#binaryType = value;
    if (this.#link instanceof WebSocketLink && this.#link.ws) this.#link.ws.binaryType = value;
  }

  /** Called with the open event. @type {((this: HeraldSocket, event: Event) => any) | null} */
  get onopen() { return this.#handlers.open; }
  set onopen(fn) { this.#handlers.open = handlerOrNull(fn); }
  /** Called with each message event; `event.data` is a string. @type {((this: HeraldSocket, event: MessageEvent) => any) | null} */
  get onmessage() { return this.#handlers.message; }
  set onmessage(fn) { this.#handlers.message = handlerOrNull(fn); }
  /** Called with the close event (`code`, `reason`, `wasClean`). @type {((this: HeraldSocket, event: CloseEvent) => any) | null} */
  get onclose() { return this.#handlers.close; }
  set onclose(fn) { this.#handlers.close = handlerOrNull(fn); }
  /** Called with the error event of a socket that could not open. @type {((this: HeraldSocket, event: Event) => any) | null} */
  get onerror() { return this.#handlers.error; }
  set onerror(fn) { this.#handlers.error = handlerOrNull(fn); }

  /**
   * Sends one text message. Messages reach the server in the order sent, each once, whatever
   * the transport (a retried POST is applied once).
   *
   * @param {string} data  text; other values are converted to strings, except binary data.
   * @throws {DOMException} InvalidStateError while CONNECTING.
   * @throws {TypeError} for binary data (Blob, ArrayBuffer, typed arrays): herald's fallback
   *   carries text only.
   */
  send(data) {
    if (this.#state === CONNECTING) {
      throw new DOMException("Failed to execute 'send' on 'HeraldSocket': Still in CONNECTING state.", 'InvalidStateError');
    }
    const value = /** @type {unknown} */ (data);
    if (value instanceof Blob || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
      throw new TypeError('HeraldSocket sends text only');
    }
    const message = String(data);
    if (this.#state !== OPEN) return; // as a WebSocket: silently dropped once closing
    const link = this.#link;
    if (link instanceof WebSocketLink) {
      link.send(message);
      if (!link.confirmed && this.#hasNext()) {
        // Kept for the next transport until the server answers: within fallbackTimeout, or
        // the frames are not getting through. (With no transport after it, nothing is kept.)
        this.#kept.push(message);
        if (!this.#timer) this.#timer = setTimeout(() => this.#failed(link), this.#settings.fallbackTimeout);
      }
    } else if (link instanceof FallbackLink && link.up) {
      link.send(message);
    } else {
      this.#kept.push(message); // between transports
    }
  }

  /**
   * Closes the socket, as WebSocket's close(): over a WebSocket with a closing handshake; over
   * the fallback with a last POST that ends the session (after what the page sent before). The
   * close event carries `code` and `reason` (1005 without a code) once the server has the
   * goodbye, or after a second.
   *
   * @param {number} [code]  1000, or 3000 to 4999.
   * @param {string} [reason]  at most 123 bytes of UTF-8.
   * @throws {DOMException} InvalidAccessError for another code; SyntaxError for a longer reason.
   */
  close(code, reason) {
    if (code !== undefined) {
      code = Number(code) & 0xffff; // as WebSocket's unsigned short
      if (code !== 1000 && (code < 3000 || code > 4999)) {
        throw new DOMException(`Failed to execute 'close' on 'HeraldSocket': The close code must be either 1000, or between 3000 and 4999. ${code} is neither.`, 'InvalidAccessError');
      }
    }
    reason = reason === undefined ? '' : String(reason);
    if (utf8Length(reason) > 123) {
      throw new DOMException("Failed to execute 'close' on 'HeraldSocket': The close reason must not be greater than 123 UTF-8 bytes.", 'SyntaxError');
    }
    if (this.#state === CLOSING || this.#state === CLOSED) return;
    const wasConnecting = this.#state === CONNECTING;
    this.#state = CLOSING;
    const link = this.#link;
    if (wasConnecting) {
      // As a WebSocket closed before it opened: the connection fails.
      this.#stop();
      setTimeout(() => this.#finish(1006, '', false, true), 0);
    } else if (link instanceof WebSocketLink) {
      clearTimeout(this.#timer);
      this.#timer = 0;
      link.close(code, reason); // its close event finishes
    } else if (link instanceof FallbackLink && link.up) {
      link.goodbye(() => this.#finish(code === undefined ? 1005 : code, reason, true));
    } else {
      this.#stop(); // between transports: there is no session to tell
      setTimeout(() => this.#finish(code === undefined ? 1005 : code, reason, true), 0);
    }
  }

  // --- transports ---

  #hasNext() {
    return this.#index + 1 < this.#settings.transports.length;
  }

  // #next tries the next transport, or fails the socket when none is left.
  #next(why) {
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.#link = null;
    if (this.#state !== CONNECTING && this.#state !== OPEN) return;
    if (!this.#hasNext()) {
      this.#finish(1006, why, false, !this.#opened);
      return;
    }
    this.#index++;
    const name = this.#settings.transports[this.#index];
    const link = name === 'websocket'
      ? new WebSocketLink(this.#hooks, this.#url, this.#protocols, this.#binaryType)
      : new FallbackLink(this.#hooks, name, this.#base, this.#settings.withCredentials);
    this.#link = link;
    if (this.#hasNext()) {
      // A transport with another after it gets fallbackTimeout to open; the last has no bound
      // of its own, as a WebSocket has none (the nes client's connect timeout applies).
      this.#timer = setTimeout(() => this.#failed(link), this.#settings.fallbackTimeout);
    }
    link.start();
  }

  // #hooks are what the links call: each checks that the link is still the socket's.
  #hooks = {
    up: (link) => this.#up(link),
    message: (link, data) => this.#message(link, data),
    failed: (link, why) => this.#failed(link, why),
    lost: (link, code, reason, wasClean, error) => {
      if (link === this.#link) this.#finish(code, reason, wasClean, error);
    },
    wsClosed: (link, event, errored) => this.#wsClosed(link, event, errored),
  };

  #up(link) {
    if (link !== this.#link || this.#state === CLOSED) return;
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.#transport = /** @type {'websocket' | 'sse' | 'poll'} */ (link.name);
    if (link instanceof WebSocketLink) {
      this.#protocol = link.ws.protocol;
    } else {
      this.#protocol = '';
      link.take(this.#kept);
      this.#kept = [];
    }
    if (!this.#opened) {
      this.#opened = true;
      this.#state = OPEN;
      this.dispatchEvent(new Event('open'));
    }
  }

  #message(link, data) {
    if (link !== this.#link || this.#state === CLOSED) return;
    if (link instanceof WebSocketLink && !link.confirmed) {
      // The server's first message: the frames get through, both ways.
      link.confirmed = true;
      this.#kept = [];
      clearTimeout(this.#timer);
      this.#timer = 0;
    }
    this.dispatchEvent(new MessageEvent('message', { data, origin: this.#origin }));
  }

  // #failed gives up a transport that did not get through, for the next.
  #failed(link, why = 'timed out') {
    if (link !== this.#link || this.#state === CLOSED) return;
    link.abort();
    this.#next(`${link.name}: ${why}`);
  }

  #wsClosed(link, event, errored) {
    if (link !== this.#link || this.#state === CLOSED) return;
    const lostBeforeConfirmed = !link.confirmed && !event.wasClean && this.#state === OPEN;
    if ((!link.opened || lostBeforeConfirmed) && this.#hasNext()) {
      // The handshake failed (a proxy that does not pass Upgrade), or the connection died
      // before the server said anything: move on.
      link.abort();
      this.#next(`websocket: closed with ${event.code}`);
      return;
    }
    this.#finish(event.code, event.reason, event.wasClean, errored && (!this.#opened || this.#state === OPEN));
  }

  // #stop lets go of the transport in use, whatever its state.
  #stop() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    if (this.#link) this.#link.abort();
  }

  // #finish closes the socket for the page: error (when asked), then close.
  #finish(code, reason, wasClean, error = false) {
    if (this.#state === CLOSED) return;
    this.#stop();
    this.#link = null;
    this.#kept = [];
    this.#state = CLOSED;
    if (error) this.dispatchEvent(new Event('error'));
    this.dispatchEvent(new CloseEvent('close', { code, reason, wasClean }));
  }
}

// WebSocketLink is the WebSocket transport: a browser WebSocket, unconfirmed until the server's
// first message.
class WebSocketLink {
  name = 'websocket';
  ws = null;
  opened = false;
  confirmed = false;
  #errored = false;

  constructor(hooks, url, protocols, binaryType) {
    this.hooks = hooks;
    this.url = url;
    this.protocols = protocols;
    this.binaryType = binaryType;
  }

  start() {
    let ws;
    try {
      ws = this.protocols === undefined ? new WebSocket(this.url) : new WebSocket(this.url, this.protocols);
    } catch (err) {
      queueMicrotask(() => this.hooks.failed(this, String(err && err.message)));
      return;
    }
    ws.binaryType = this.binaryType;
    this.ws = ws;
    ws.onopen = () => {
      this.opened = true;
      this.hooks.up(this);
    };
    ws.onmessage = (event) => this.hooks.message(this, event.data);
    ws.onerror = () => { this.#errored = true; };
    ws.onclose = (event) => this.hooks.wsClosed(this, event, this.#errored);
  }

  send(message) {
    this.ws.send(message);
  }

  close(code, reason) {
    if (code === undefined) this.ws.close();
    else this.ws.close(code, reason);
  }

  abort() {
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    if (ws.readyState === CONNECTING || ws.readyState === OPEN) ws.close();
  }
}

// FallbackLink is one session of herald's fallback: an EventSource ('sse') or long-polls ('poll')
// down, POSTs up. It is up from the session's first open event.
class FallbackLink {
  up = false;
  outbox = []; // messages not yet posted, in order
  #info = null; // the open event's data: ticket, seq, maxBody, maxMessages, grace
  #last = 0; // the seq of the last message down delivered
  #nextBatch = 1;
  #posting = false;
  #ended = false;
  #goodbye = null; // the callback of goodbye(), once asked
  #es = null;
  #graceTimer = 0;
  #endedTimer = 0; // runs once a POST was answered 410: nothing more is posted
  #abort = new AbortController(); // ends every request of the link

  constructor(hooks, name, base, withCredentials) {
    this.hooks = hooks;
    this.name = name;
    this.base = base;
    this.withCredentials = withCredentials;
  }

  start() {
    if (this.name === 'sse') this.#stream();
    else this.#pollLoop();
  }

  // take queues what the page sent before the session opened, ahead of everything else.
  take(messages) {
    this.outbox.unshift(...messages);
    this.#flush();
  }

  send(message) {
    this.outbox.push(message);
    this.#flush();
  }

  // goodbye ends the session from the client's side: a last POST with close: true, after the
  // batch in flight, carrying what is still queued; then done().
  goodbye(done) {
    if (this.#ended) return;
    this.#goodbye = done;
    if (!this.#posting) this.#sayGoodbye();
  }

  abort() {
    this.#end();
  }

  #end() {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#graceTimer);
    clearTimeout(this.#endedTimer);
    if (this.#es) this.#es.close();
    this.#abort.abort();
  }

  // #lost ends a session that was up (or fails one that was not) for the page.
  #lost(code, reason, wasClean) {
    if (this.#ended) return;
    this.#end();
    if (!this.up) this.hooks.failed(this, reason);
    else if (this.#goodbye) this.#goodbye();
    else this.hooks.lost(this, code, reason, wasClean, false);
  }

  // #event takes one event down, from the stream or a poll. It reports false once the
  // session has ended.
  #event(type, id, data) {
    if (this.#ended) return false;
    switch (type) {
      case 'herald-open': {
        let info;
        try {
          info = JSON.parse(data);
        } catch (err) {
          info = null;
        }
        if (!info || typeof info.ticket !== 'string' || info.ticket === '') {
          this.#lost(1006, 'invalid open event', false);
          return false;
        }
        if (this.#info && info.ticket !== this.#info.ticket) {
          this.#lost(1006, 'the session could not be resumed', false);
          return false;
        }
        clearTimeout(this.#graceTimer);
        this.#graceTimer = 0;
        const first = !this.#info;
        this.#info = info;
        if (first) {
          this.#nextBatch = info.seq;
          this.up = true;
          this.hooks.up(this);
          this.#flush();
        }
        return true;
      }
      case 'herald-reset':
        if (!this.#info) return true; // a new session's open event follows
        this.#lost(1006, 'the session could not be resumed', false);
        return false;
      case 'herald-close': {
        let c = {};
        try {
          c = JSON.parse(data) || {};
        } catch (err) { /* the defaults below */ }
        this.#lost(Number.isInteger(c.code) ? c.code : 1006, typeof c.reason === 'string' ? c.reason : '', true);
        return false;
      }
      case 'herald-rotate':
        return true; // the stream ends on purpose; the EventSource resumes it
      case '':
      case 'message': {
        const seq = seqOf(id);
        if (seq === null || seq <= this.#last) return true; // delivered already
        this.#last = seq;
        this.hooks.message(this, data);
        return !this.#ended;
      }
      default:
        return true; // an event of a later version
    }
  }

  // --- down: the stream ---

  #stream() {
    let es;
    try {
      es = new EventSource(this.base + '/sse', { withCredentials: this.withCredentials });
    } catch (err) {
      queueMicrotask(() => this.#lost(1006, String(err && err.message), false));
      return;
    }
    this.#es = es;
    const on = (type) => es.addEventListener(type, (e) => this.#event(type, e.lastEventId, e.data));
    for (const type of ['herald-open', 'herald-reset', 'herald-close', 'herald-rotate', 'message']) on(type);
    es.onerror = () => {
      if (this.#ended) return;
      if (es.readyState === EventSource.CLOSED) {
        // The EventSource gave up: an answer that was not a stream. Before the session opened,
        // the stream is refused. After, it may be a proxy's 502 for a server it cannot reach:
        // a new EventSource could not say where to resume (no Last-Event-ID), but a poll can,
        // so the session goes on by polling; the server answers 410 or 404 if it has ended.
        if (!this.#info) {
          this.#lost(1006, 'the event stream was refused', false);
          return;
        }
        es.close();
        this.#es = null;
        clearTimeout(this.#graceTimer); // the polls keep their own account of the grace period
        this.#graceTimer = 0;
        this.name = 'poll';
        this.hooks.up(this); // the socket's transport is 'poll' from now on
        this.#pollLoop();
        return;
      }
      if (!this.#info) {
        this.#lost(1006, 'the event stream did not open', false);
        return;
      }
      // The stream dropped; the EventSource reconnects with Last-Event-ID, and the session
      // waits for it during its grace period.
      if (!this.#graceTimer) {
        this.#graceTimer = setTimeout(() => this.#lost(1006, 'the stream could not be resumed', false), this.#info.grace);
      }
    };
  }

  // --- down: long-polls ---

  async #pollLoop() {
    let downSince = 0;
    while (!this.#ended) {
      const ticket = this.#info ? this.#info.ticket : '';
      let status = 0;
      let answer = null;
      try {
        const res = await this.#post('poll', ticket ? { last: this.#last } : {}, ticket);
        status = res.status;
        if (status === 200) answer = await res.json();
        if (ticket && gatewayError(status)) throw new Error(`a proxy answered ${status}`);
      } catch (err) {
        if (this.#ended) return;
        if (!this.#info) {
          this.#lost(1006, 'the poll failed: ' + err, false);
          return;
        }
        downSince = downSince || Date.now();
        if (Date.now() - downSince > this.#info.grace) {
          this.#lost(1006, 'the server could not be reached', false);
          return;
        }
        await sleep(RETRY_DELAY);
        continue;
      }
      if (this.#ended) return;
      if (status === 429 || status === 503) {
        await sleep(status === 429 ? BUSY_DELAY : RETRY_DELAY);
        continue;
      }
      if (status !== 200 || !answer || !Array.isArray(answer.events)) {
        this.#lost(1006, `the poll was refused (${status})`, false);
        return;
      }
      downSince = 0;
      for (const e of answer.events) {
        if (!this.#event(e.event || '', e.id || '', e.data)) return;
      }
    }
  }

  // --- up ---

  // #flush posts what is queued, a batch at a time, until the queue is empty.
  async #flush() {
    if (this.#posting || this.#ended || this.#endedTimer || !this.up) return;
    this.#posting = true;
    try {
      while (!this.#ended && !this.#endedTimer && !this.#goodbye && this.outbox.length > 0) {
        const n = this.#batchLength();
        if (n === 0) {
          // One message larger than the server takes: a WebSocket server would close with 1009.
          this.#tellServer([]);
          this.#lost(1009, 'message too big for the server (its maxBody)', false);
          return;
        }
        if (!(await this.#postBatch(this.outbox.slice(0, n)))) return;
        this.outbox.splice(0, n);
      }
    } finally {
      this.#posting = false;
    }
    if (this.#goodbye && !this.#ended) this.#sayGoodbye();
  }

  // #batchLength is how many queued messages the next POST carries, within the session's
  // maxMessages and maxBody; 0 when the first message alone is too large.
  #batchLength() {
    const { maxMessages, maxBody } = this.#info;
    let size = BODY_OVERHEAD;
    let n = 0;
    while (n < this.outbox.length && (!maxMessages || n < maxMessages)) {
      size += jsonLength(this.outbox[n]) + 1;
      if (maxBody && size > maxBody) break;
      n++;
    }
    return n;
  }

  // #postBatch posts one batch until the server has it, retrying what may be retried (the
  // server applies a batch once, however often it is posted). It reports false when the
  // session has ended.
  async #postBatch(messages) {
    let downSince = 0;
    for (;;) {
      if (this.#ended) return false;
      const seq = this.#nextBatch;
      let res;
      try {
        res = await this.#post('send', { seq, messages, ack: this.#last }, this.#info.ticket);
        if (gatewayError(res.status)) throw new Error(`a proxy answered ${res.status}`);
      } catch (err) {
        if (this.#ended) return false;
        downSince = downSince || Date.now();
        if (Date.now() - downSince > this.#info.grace) {
          this.#lost(1006, 'the server could not be reached', false);
          return false;
        }
        await sleep(RETRY_DELAY);
        continue;
      }
      if (this.#ended) return false;
      downSince = 0;
      switch (res.status) {
        case 204:
          this.#nextBatch = seq + 1;
          return true;
        case 429: // another POST of the session is still being answered (one cut off)
          await sleep(BUSY_DELAY);
          continue;
        case 503: { // the session's inbox is full
          const after = Number(res.headers.get('Retry-After'));
          await sleep(after > 0 ? Math.min(after, 10) * 1000 : RETRY_DELAY);
          continue;
        }
        case 409: { // a gap: the server names the batch it needs
          const expected = Number(res.headers.get('Herald-Expected-Seq'));
          if (Number.isSafeInteger(expected) && expected > 0 && expected !== seq) {
            this.#nextBatch = expected;
            continue;
          }
          break;
        }
        case 413:
          this.#lost(1009, 'message too big for the server', false);
          return false;
        case 410:
          // The session has ended: the server closed it, and its last messages and close
          // event are still on their way down the stream or the next poll. Nothing more goes
          // up; the page hears the close from there (or, failing that, soon anyway).
          if (!this.#endedTimer) {
            this.#endedTimer = setTimeout(() => this.#lost(1006, 'the session has ended', false), ENDED_WAIT);
          }
          return false;
      }
      // 403 (origin or cookie), 404 (not this server's), or what a client cannot fix.
      this.#lost(1006, `the server refused the session's messages (${res.status})`, false);
      return false;
    }
  }

  async #sayGoodbye() {
    const done = this.#goodbye;
    await this.#tellServer(this.outbox.length <= (this.#info.maxMessages || Infinity) ? this.outbox : []);
    if (this.#ended) return; // the session ended meanwhile, and #lost called done
    this.#end();
    done();
  }

  // #tellServer posts the batch that closes the session, bounded by GOODBYE_TIMEOUT; failures
  // are ignored (the session then ends after its grace period).
  async #tellServer(messages) {
    const body = { seq: this.#nextBatch, messages, ack: this.#last, close: true };
    try {
      await this.#post('send', body, this.#info.ticket, { signal: AbortSignal.timeout(GOODBYE_TIMEOUT), keepalive: true });
    } catch (err) { /* the server ends it after its grace period */ }
  }

  // #post sends one JSON POST to an endpoint. keepalive (for the goodbye) lets it outlive the
  // page, when the body is small enough for the browser to allow it.
  #post(endpoint, body, ticket, { signal = this.#abort.signal, keepalive = false } = {}) {
    const headers = { 'Content-Type': 'application/json' };
    if (ticket) headers['Herald-Ticket'] = ticket;
    const text = JSON.stringify(body);
    return fetch(this.base + '/' + endpoint, {
      method: 'POST',
      headers,
      body: text,
      credentials: this.withCredentials ? 'include' : 'same-origin',
      cache: 'no-store',
      keepalive: keepalive && utf8Length(text) < 60000,
      signal,
    });
  }
}

// --- helpers ---

// socketURL resolves url against the page and checks it as the WebSocket constructor does.
function socketURL(url) {
  let u;
  try {
    u = new URL(String(url), globalThis.location ? globalThis.location.href : undefined);
  } catch (err) {
    throw new DOMException(`Failed to construct 'HeraldSocket': The URL '${url}' is invalid.`, 'SyntaxError');
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new DOMException(`Failed to construct 'HeraldSocket': The URL's scheme must be either 'http', 'https', 'ws', or 'wss'. '${u.protocol.slice(0, -1)}' is not allowed.`, 'SyntaxError');
  }
  u.hash = '';
  return u.href;
}

// fallbackBase is the base of the fallback endpoints: fallbackURL resolved against the page,
// or the socket's URL over http(s) with '/nes' after its path.
function fallbackBase(socket, fallbackURL) {
  if (fallbackURL) {
    const u = new URL(fallbackURL, globalThis.location ? globalThis.location.href : socket);
    u.hash = '';
    return u.href.replace(/\/+$/, '');
  }
  const u = new URL(socket);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = u.pathname.replace(/\/+$/, '') + '/nes';
  u.search = '';
  u.username = '';
  u.password = '';
  return u.href;
}

function defaultsOf(cls) {
  for (let c = cls; c; c = Object.getPrototypeOf(c)) {
    const d = configured.get(c);
    if (d) return d;
  }
  return DEFAULTS;
}

// defined returns the own properties of options that are not undefined.
function defined(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new TypeError('HeraldSocket: options must be an object');
  const out = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out;
}

// settings checks options (defaults included) and returns them in the form the socket uses.
function settings(o) {
  const known = Object.keys(DEFAULTS);
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new TypeError(`HeraldSocket: unknown option ${JSON.stringify(k)} (known: ${known.join(', ')})`);
  }
  const transports = o.transports;
  if (!Array.isArray(transports) || transports.length === 0 ||
      transports.some((t) => !TRANSPORTS.includes(t)) || new Set(transports).size !== transports.length) {
    throw new TypeError(`HeraldSocket: transports must list some of ${TRANSPORTS.join(', ')}, each once, in the order to try them`);
  }
  if (typeof o.fallbackTimeout !== 'number' || !(o.fallbackTimeout > 0) || !Number.isFinite(o.fallbackTimeout)) {
    throw new TypeError('HeraldSocket: fallbackTimeout must be a positive number of milliseconds');
  }
  if (typeof o.fallbackURL !== 'string' && !(o.fallbackURL instanceof URL)) {
    throw new TypeError('HeraldSocket: fallbackURL must be a string');
  }
  return {
    transports: Object.freeze([...transports]),
    fallbackURL: String(o.fallbackURL),
    fallbackTimeout: o.fallbackTimeout,
    withCredentials: Boolean(o.withCredentials),
  };
}

function handlerOrNull(fn) {
  return typeof fn === 'function' ? fn : null;
}

// seqOf returns the seq of an event id, "TICKET.SEQ", or null.
function seqOf(id) {
  const i = typeof id === 'string' ? id.lastIndexOf('.') : -1;
  if (i <= 0) return null;
  const s = id.slice(i + 1);
  if (!/^[0-9]{1,16}$/.test(s)) return null;
  return Number(s);
}

// utf8Length is the length of s in UTF-8, in bytes.
function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

// jsonLength is the length of JSON.stringify(s) in UTF-8, in bytes.
function jsonLength(s) {
  return utf8Length(JSON.stringify(s));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
