// Type declarations for herald-socket.js.

/** The transports a HeraldSocket can use, named as `socket.transport` names them. */
export type HeraldTransport = 'websocket' | 'sse' | 'poll';

/** Options of a HeraldSocket; each one left out takes its default. */
export interface HeraldSocketOptions {
  /**
   * The transports to try, in order of preference, at each new socket: 'websocket' (a real
   * WebSocket), 'sse' (an EventSource down, JSON POSTs up) and 'poll' (long-polls down, POSTs
   * up). Default: ['websocket', 'sse', 'poll'].
   */
  transports?: HeraldTransport[];
  /**
   * The base URL of the server's fallback endpoints (`fallbackURL + '/sse'`, `'/send'`,
   * `'/poll'`), resolved against the page. Default: the socket's URL over http(s) with '/nes'
   * after its path (ws://example.com/ gives http://example.com/nes).
   */
  fallbackURL?: string | URL;
  /**
   * How long, in milliseconds, a transport with another after it may take to get through: the
   * WebSocket's handshake, then the server's first message after the page's first send (a
   * proxy may pass the upgrade and drop the frames); the event stream's or the first poll's
   * open event. The last transport has no such bound. Default: 5000.
   */
  fallbackTimeout?: number;
  /**
   * Sends cookies with the fallback's requests to another origin (EventSource
   * `withCredentials`, fetch `credentials: 'include'`), as a WebSocket always does. Default:
   * true.
   */
  withCredentials?: boolean;
}

/** The events a HeraldSocket dispatches, as a WebSocket's. */
export interface HeraldSocketEventMap {
  open: Event;
  message: MessageEvent<string>;
  close: CloseEvent;
  error: Event;
}

/**
 * A WebSocket for the @hapi/nes client that falls back to herald's EventSource + POST
 * transport, then to long-polling, when the network will not carry a WebSocket. It has the
 * interface of a browser WebSocket (text messages only), plus `transport` and `configure`.
 */
export declare class HeraldSocket extends EventTarget {
  /**
   * Opens a socket to a herald nes server.
   * @param url ws:// or wss:// (http:// and https:// are taken as ws:// and wss://), resolved
   *   against the page's location.
   * @param protocols subprotocols offered on the WebSocket transport.
   * @param options added to the class's defaults (see configure).
   * @throws DOMException SyntaxError for a URL that is not a WebSocket URL; TypeError for an
   *   invalid option.
   */
  constructor(url: string | URL, protocols?: string | string[], options?: HeraldSocketOptions);

  /**
   * Returns a subclass whose sockets take these options by default (options given to its
   * constructor still win): `nes.Client.WebSocket = HeraldSocket.configure({transports:
   * ['sse']})`. Configured classes can be configured again; their options add up.
   * @throws TypeError for an invalid option.
   */
  static configure(options: HeraldSocketOptions): typeof HeraldSocket;

  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  /** The WebSocket URL the socket was made for, resolved. */
  readonly url: string;
  /** CONNECTING, OPEN, CLOSING or CLOSED. */
  readonly readyState: 0 | 1 | 2 | 3;
  /** The transport the socket is on; '' before it opens. */
  readonly transport: '' | HeraldTransport;
  /** The subprotocol the server selected over a WebSocket; '' otherwise. */
  readonly protocol: string;
  /** The WebSocket's extensions; '' otherwise. */
  readonly extensions: string;
  /** Bytes of text sent by the page and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** As WebSocket's; a herald server's messages are text, which it does not affect. */
  binaryType: BinaryType;

  onopen: ((this: HeraldSocket, ev: Event) => any) | null;
  onmessage: ((this: HeraldSocket, ev: MessageEvent<string>) => any) | null;
  onclose: ((this: HeraldSocket, ev: CloseEvent) => any) | null;
  onerror: ((this: HeraldSocket, ev: Event) => any) | null;

  /**
   * Sends one text message; messages arrive in order, each once, whatever the transport.
   * @throws DOMException InvalidStateError while CONNECTING; TypeError for binary data.
   */
  send(data: string): void;

  /**
   * Closes the socket: a closing handshake over a WebSocket, a last POST ending the session
   * over the fallback. The close event carries code (1005 without one) and reason.
   * @param code 1000, or 3000 to 4999 (DOMException InvalidAccessError otherwise).
   * @param reason at most 123 bytes of UTF-8 (DOMException SyntaxError otherwise).
   */
  close(code?: number, reason?: string): void;

  addEventListener<K extends keyof HeraldSocketEventMap>(type: K, listener: (this: HeraldSocket, ev: HeraldSocketEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof HeraldSocketEventMap>(type: K, listener: (this: HeraldSocket, ev: HeraldSocketEventMap[K]) => any, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}
