// Type declarations for the Meridian JavaScript SDK (src/meridian.js).

export declare const VERSION: string;

export declare const State: {
  readonly CONNECTING: 'connecting';
  readonly CONNECTED: 'connected';
  readonly DISCONNECTED: 'disconnected';
  readonly RECONNECTING: 'reconnecting';
};
export type ConnectionState = (typeof State)[keyof typeof State];

export declare class MeridianError extends Error {
  constructor(code: string, message?: string, options?: { retryable?: boolean; final?: boolean; frame?: unknown });
  /** Protocol error code (`rate_limited`, `forbidden`, ...) or an SDK code (`closed`, `left`, `too_large`, `disconnected`, ...). */
  code: string;
  retryable: boolean;
  /** True when the SDK will not retry. */
  final: boolean;
  /** The relay's `error` frame, when the error came from one. */
  frame?: unknown;
}

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type TokenProvider = () => string | Promise<string>;

/** The minimal WebSocket shape the SDK uses (browser WebSocket, `ws`, or a test double). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface BackoffOptions {
  /** First reconnect delay cap in ms (default 500). */
  initial?: number;
  /** Largest delay cap in ms (default 30000). */
  max?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
}

export interface ClientOptions {
  /** Relay URL, or several tried in order (e.g. the geo-DNS name first). */
  url: string | string[];
  /** A JWT, or a function returning one (called at connect and again before `exp`); or give `getToken`. */
  token?: string | TokenProvider;
  /** Alternative spelling of a function `token`. */
  tokenProvider?: TokenProvider;
  /**
   * Another spelling of a function `token`: called at connect, when the
   * relay sends `refresh_due` and shortly before `exp`; while connected the
   * new token goes to the relay as a `refresh` (same session, same rooms).
   */
  getToken?: TokenProvider;
  /** WebSocket implementation; default: global WebSocket, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** WebSocket subprotocol(s), e.g. 'meridian.v1'. Default: none. */
  protocols?: string | string[];
  backoff?: BackoffOptions;
  /** Base delay after 1003/1009/4009 (client bugs), ms (default 30000). */
  slowReconnectDelay?: number;
  /** Base delay after 4029 (rate limit), ms (default 5000). */
  rateLimitDelay?: number;
  /** Random delay window after a drain without URLs, ms (default 1000). */
  drainJitter?: number;
  /** Time allowed from socket creation to `welcome`, ms (default 10000). */
  connectTimeout?: number;
  /** Fetch a new token this long before `exp`, ms (default 30000). */
  tokenRefreshMargin?: number;
  /** Base delay before resending a publish refused with a retryable error, ms (default 1000). */
  publishRetryDelay?: number;
  /** Recent message ids remembered per room for de-duplication (default 5000). */
  dedupSize?: number;
  /** Prefix of generated client message ids (default: random per client). */
  midPrefix?: string;
  /**
   * false: the relay does not send this connection its own messages (hello
   * `"echo":false`); publish() resolving is their delivery, and their
   * `commit`/`ordered` events carry them. Default true.
   */
  echo?: boolean;
  /** Injection points for tests. */
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  now?: () => number;
}

export interface Welcome {
  type: 'welcome';
  region: string;
  node: string;
  session: string;
  user: string;
  heartbeat: number;
  limits?: {
    max_message_bytes?: number;
    publish_rate?: number;
    publish_burst?: number;
    max_rooms?: number;
    idle_timeout?: number;
    signal_rate?: number;
    signal_burst?: number;
    signal_max_bytes?: number;
  };
  fallback?: string[];
  [key: string]: unknown;
}

export interface Message<T = Json> {
  room: string;
  msg_id: string;
  from: string;
  mid: string;
  region: string;
  node: string;
  ts: number;
  data: T;
  /** Set once the message is committed (also filled in later on the same object). */
  seq?: number;
  [key: string]: unknown;
}

export interface StateEvent {
  state: ConnectionState;
  /** Why: 'connect', 'welcome', 'drain', 'token_expired', 'connection_lost', ... */
  reason: string;
  /** 'attempt' when a socket is opened, 'scheduled' when a reconnect is planned, 'requested' on a reconnect frame. */
  phase?: 'attempt' | 'scheduled' | 'requested';
  url?: string;
  urls?: string[];
  attempt?: number;
  /** Delay before the next attempt (phase 'scheduled'), ms. */
  delay?: number;
  /** WebSocket close code (state 'disconnected'). */
  code?: number;
  wasConnected?: boolean;
  region?: string | null;
  node?: string | null;
  /** The client stopped for good (close() or an unrecoverable error). */
  final?: boolean;
}

export interface JoinInfo {
  room: string;
  /** Resume only: true when every message after `since` was replayed; null on a fresh join. */
  recovered: boolean | null;
  since: number | null;
  /** Highest seq in the room, when the relay says (always when recovered is false). */
  last_seq: number | null;
  /** True when this join resumed from a previous seq. */
  resumed: boolean;
  /** A join with `rewind`: the N asked for. (`since` is then where the rewound messages start.) */
  rewind?: number;
  /** A join with `rewind`: how many messages were rewound (they follow as `message` events). */
  history?: number;
}

export interface CommitEvent<T = Json> {
  room: string;
  msg_id: string;
  seq: number;
  /** The message, when this client has it (null otherwise). */
  message: Message<T> | null;
}

export interface GapEvent {
  room: string;
  /** Messages with after < seq <= last_seq could not be replayed: page them over the HTTP history API. */
  after: number;
  last_seq: number;
}

export interface Member {
  user: string;
  sessions: number;
}

export type PresenceEvent =
  | { room: string; event: 'join' | 'update' | 'leave'; user: string; sessions?: number }
  | { room: string; members: Member[] };

export interface ClientEvents {
  state: (ev: StateEvent) => void;
  welcome: (welcome: Welcome) => void;
  /** Each message exactly once (by msg_id), in arrival order. */
  message: (msg: Message) => void;
  /** A message got its seq (once per msg_id). */
  commit: (ev: CommitEvent) => void;
  /** Committed messages per room in strict seq order (contiguous). */
  ordered: (ev: CommitEvent & { seq: number }) => void;
  /** A resume could not replay everything. */
  gap: (ev: GapEvent) => void;
  joined: (info: JoinInfo) => void;
  /** `reason` is set when the relay ended the membership itself (e.g. "forbidden" after a refresh). */
  left: (ev: { room: string; reason?: string }) => void;
  /** An ephemeral signal from another member (typing, cursor...). */
  signal: (ev: { room: string; from: string; region?: string; data: Json }) => void;
  /** The relay accepted a refreshed token; `exp` is its expiry (seconds). */
  refreshed: (ev: { exp: number | null }) => void;
  /** The relay says the token expires at `exp` (seconds): refresh before then. */
  refresh_due: (ev: { exp: number | null }) => void;
  presence: (ev: PresenceEvent) => void;
  /** Member list of a room joined with { presence: true } changed. */
  members: (ev: { room: string; members: Member[] }) => void;
  error: (err: MeridianError) => void;
}

export interface JoinOptions {
  /** Keep a member list (`members()` and the `members` event). */
  presence?: boolean;
  /** Last seq the app already has: the first join resumes from there. */
  since?: number;
  /** Without `since`: the first join gets the room's last N messages (the relay caps N, default 100). */
  rewind?: number;
}

export interface PublishAck {
  room: string;
  msg_id: string;
  mid: string;
}

export declare class MeridianClient {
  constructor(options: ClientOptions);
  readonly state: ConnectionState;
  readonly region: string | null;
  readonly node: string | null;
  readonly user: string | null;
  readonly session: string | null;
  readonly limits: Welcome['limits'] | null;
  readonly welcome: Welcome | null;
  /** URLs tried when (re)connecting: the main URL(s), then fallbacks from welcome/reconnect. */
  readonly urls: string[];
  /** Publishes waiting for their ack. */
  readonly outboxSize: number;

  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;
  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): this;

  connect(): Promise<Welcome>;
  close(reason?: string): void;
  join(room: string, options?: JoinOptions): Promise<JoinInfo>;
  leave(room: string): Promise<{ room: string }>;
  rooms(): string[];
  lastSeq(room: string): number | null;
  members(room: string): Member[];
  publish<T extends Json = Json>(room: string, data: T, options?: { mid?: string }): Promise<PublishAck>;
  /** A fresh client message id; pass it as publish(..., { mid }) to know it up front. */
  newMid(): string;
  presence(room: string): Promise<Member[]>;
  ping(): Promise<number>;
  /** Send an ephemeral signal to a joined room; false when it could not be sent. */
  signal<T extends Json = Json>(room: string, data: T): boolean;
}

export declare function backoffDelay(attempt: number, options?: BackoffOptions, random?: () => number): number;
export declare function tokenExpiry(token: string): number | null;

export default MeridianClient;
