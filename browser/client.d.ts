// Type declarations for client.js: herald's nes client for browsers, with the API of
// @hapi/nes's Client.

import { HeraldSocket, HeraldSocketOptions, HeraldTransport } from './herald-socket.js';

export { HeraldSocket };
export type { HeraldSocketOptions, HeraldTransport };

/** The kinds of error, as @hapi/nes names them. */
export type NesErrorType = 'timeout' | 'disconnect' | 'server' | 'protocol' | 'ws' | 'user';

/** The error types by name: `err.type === errorTypes.SERVER`. */
export declare const errorTypes: Readonly<{
  TIMEOUT: 'timeout';
  DISCONNECT: 'disconnect';
  SERVER: 'server';
  PROTOCOL: 'protocol';
  WS: 'ws';
  USER: 'user';
}>;

/**
 * An error of the client, shaped as @hapi/nes's: an Error with `type` and `isNes`, and for
 * server errors the status code, the payload and the headers the server lets through.
 */
export interface NesError extends Error {
  /**
   * 'server': the server answered with a status of 400 or more; 'disconnect': not connected,
   * or the connection went while waiting; 'timeout': no reply in time, or a heartbeat missed;
   * 'protocol': the server sent something that is not nes; 'ws': the socket failed; 'user':
   * the call was wrong (an invalid path, a value JSON cannot encode), or a callback threw.
   */
  type: NesErrorType;
  isNes: true;
  /** The server's status code, for 'server' errors. */
  statusCode?: number;
  /** The error's payload ({error, message, ...}), for 'server' errors. */
  data?: any;
  /** The response headers the server lets through (its headers option). */
  headers?: Record<string, any>;
  /** The subscription's path, for a refused subscription. */
  path?: string;
  /** What a callback threw, for the 'user' errors that report it. */
  cause?: unknown;
}

/** Options of a Client; every option but timeout, WebSocket and maxMessageLength goes to HeraldSocket. */
export interface ClientOptions extends HeraldSocketOptions {
  /**
   * Bounds each request, message, subscribe, unsubscribe and reauthenticate, in ms. Default:
   * none (as @hapi/nes).
   */
  timeout?: number;
  /**
   * The socket class: HeraldSocket (the default), a class made by HeraldSocket.configure(), or
   * any WebSocket-compatible class (the browser's WebSocket), which is given the URL alone.
   */
  WebSocket?: { new (url: string, ...args: any[]): WebSocketLike };
  /**
   * Bounds a message reassembled from chunks, in UTF-16 code units; a longer one drops the
   * connection (reported to onError), and the client reconnects. Default: 2²⁶.
   */
  maxMessageLength?: number;
}

/** What the client uses of a socket: the WebSocket interface, and HeraldSocket's transport. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly transport?: string;
  onopen: ((event: Event) => any) | null;
  onmessage: ((event: MessageEvent) => any) | null;
  onclose: ((event: CloseEvent) => any) | null;
  onerror: ((event: Event) => any) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Options of connect(). */
export interface ConnectOptions {
  /** What each hello presents: `{headers: {authorization: '...'}}` for direct auth, or a token. */
  auth?: any;
  /**
   * The cap of the first reconnection wait, in ms; each wait is drawn at random in
   * [0, min(maxDelay, delay·2ⁿ)]. Default: 1000.
   */
  delay?: number;
  /** The largest wait between reconnection attempts, in ms. Default: 5000. */
  maxDelay?: number;
  /** The attempts of one outage before the client gives up. Default: Infinity; 0 means none. */
  retries?: number;
  /**
   * Bounds each connection attempt, from opening the socket to the hello reply, in ms.
   * Default: 10 s plus fallbackTimeout (5 s) for each transport before the last (20 s with
   * HeraldSocket's three transports; 10 s with another socket class).
   */
  timeout?: number;
  /** False turns reconnection off. Default: true. */
  reconnect?: boolean;
  /**
   * How long a connection must stay up for the next outage's waits to start again from delay,
   * in ms (herald's addition). Default: 30000.
   */
  resetAfter?: number;
}

/** A request: a path ('/h') or a route id ('hello'), with a method, headers and a payload. */
export interface RequestOptions {
  path: string;
  /** Default: 'GET'. */
  method?: string;
  /** Request headers; an authorization header is refused by the server. */
  headers?: Record<string, string>;
  payload?: any;
}

/** A request's reply. */
export interface RequestResult {
  payload: any;
  statusCode: number;
  headers?: Record<string, any>;
}

/** Why a connection ended, for onDisconnect (@hapi/nes's log, and error). */
export interface DisconnectLog {
  /** The socket's close code; undefined when the client dropped the connection itself. */
  code?: number;
  /** The code's meaning ('Normal closure', 'Abnormal closure', ...), or 'Unknown'. */
  explanation: string;
  reason: string;
  wasClean: boolean;
  willReconnect: boolean;
  /** True after disconnect(). */
  wasRequested: boolean;
  /** Why, when the client dropped the connection (a heartbeat timeout, a message too long) or gave up. */
  error?: NesError | null;
}

/** The wait before a reconnection attempt, for onReconnect. */
export interface ReconnectInfo {
  /** Counts the attempts of this outage, from 1. */
  attempt: number;
  /** The wait before it, in ms. */
  delay: number;
  /** Why the previous attempt failed; null before an outage's first. */
  error: NesError | null;
}

/** What a subscription handler is told besides the message. */
export interface SubscriptionFlags {
  /** The subscription ended without the client asking; no call follows. */
  revoked?: boolean;
  /** The refusal, when a reconnection's hello refused the path. */
  error?: NesError;
}

/**
 * A subscription handler: each publication with flags {}; a revocation with flags.revoked
 * (and its message, if any).
 */
export type SubscriptionHandler = (message: any, flags: SubscriptionFlags) => void | Promise<void>;

/**
 * A nes client: one connection to a nes server (herald's, or hapi's with @hapi/nes), kept up
 * across network failures and server restarts. The API of @hapi/nes's Client, with
 * reconnection fixed (jittered, resetting backoff; retries per outage; a refused path dropped
 * rather than the client stopped), plus transport, onTransport and onReconnect.
 */
export declare class Client {
  /**
   * @param url ws(s)://, http(s):// (taken as ws(s)://) or a path resolved against the page.
   */
  constructor(url: string | URL, options?: ClientOptions);

  /** The server's id of the current socket; null while disconnected. */
  id: string | null;
  /** What carries the current connection ('websocket', 'sse' or 'poll'); null while disconnected. */
  readonly transport: HeraldTransport | string | null;

  /** Errors that belong to no call. Default: console.error. */
  onError: (err: NesError) => void;
  /** After every successful hello. */
  onConnect: () => void;
  /** When a connection is lost or closed, and when the client gives up reconnecting. */
  onDisconnect: (willReconnect: boolean, log: DisconnectLog) => void;
  /** When the server has been silent past its heartbeat, before the client drops the connection. */
  onHeartbeatTimeout: (willReconnect: boolean) => void;
  /** The server's pushes that belong to no subscription. */
  onUpdate: (message: any) => void;
  /** Before each wait between reconnection attempts (herald's addition). */
  onReconnect: (info: ReconnectInfo) => void;
  /** When a connection comes up over another transport than the last one reported (herald's addition). */
  onTransport: (name: HeraldTransport | string) => void;

  /**
   * Connects and says hello with the auth and every subscription. Rejects when the first
   * attempt fails; unless the failure is final (a 4xx hello) or reconnect is false, the client
   * keeps trying in the background.
   */
  connect(options?: ConnectOptions): Promise<void>;
  /** Closes the connection and stops reconnecting; pending requests fail at once. */
  disconnect(): Promise<void>;
  /** Sends a request; a status of 400 or more rejects with a 'server' error. */
  request(options: string | RequestOptions): Promise<RequestResult>;
  /** Sends a custom message (the server's onMessage). */
  message(data: any): Promise<{ payload: any }>;
  /**
   * Subscribes handler to path. Settles once the server confirmed or refused the path: at
   * once while connected, with the hello that carries it while (re)connecting; resolves at once
   * while disconnected.
   */
  subscribe(path: string, handler: SubscriptionHandler): Promise<void>;
  /** Removes handler, or every handler of path; the server is told when none is left. */
  unsubscribe(path: string, handler?: SubscriptionHandler): Promise<void>;
  /** The subscribed paths, those waiting for the server included. */
  subscriptions(): string[];
  /** Presents new credentials on the open connection, and keeps them for reconnections. */
  reauthenticate(auth: any): Promise<true>;
  /** Replaces the auth of the next reconnections; false when there is no connection to keep. */
  overrideReconnectionAuth(auth: any): boolean;
}
