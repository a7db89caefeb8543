// Type declarations of Hearth's browser SDK (hearth.js, and calls.js it re-exports), for
// TypeScript users.
//
//   import { HearthClient, HearthCalls } from './sdk/hearth.js';
//
// Put this file beside hearth.js (it is) and TypeScript picks it up for the import.

export declare const PROTOCOL_VERSION: 1;

export interface SimulcastEncoding {
  readonly rid: 'q' | 'h' | 'f';
  readonly scaleResolutionDownBy: number;
  readonly maxBitrate: number;
}

/** The camera's layers when publishing with `simulcast: true`, low to high. */
export declare const SIMULCAST_ENCODINGS: readonly SimulcastEncoding[];

/** Error codes after which the server closes the socket (401, 408, 413, 415, 503). */
export declare const FATAL_CODES: ReadonlySet<number>;
/** Notice reasons after which the server closes the socket. */
export declare const CLOSING_NOTICES: ReadonlySet<string>;
/** How long the SDK waits for the server's answer to a request, ms. */
export declare const REQUEST_TIMEOUT_MS: number;
/** A socket that heard nothing (not even a pong) this long is taken as dead, ms. */
export declare const SILENCE_LIMIT_MS: number;

export type Role = 'anchor' | 'audience';
export type Source = 'mic' | 'camera' | 'screen';
export type StreamType = 'main' | 'sub';
export type Quality = 'big' | 'small';
export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'reconnecting';
export type NoticeReason = 'kicked' | 'room_dismissed' | 'replaced' | 'blocked' | 'timeout' | 'server_shutdown' | (string & {});

export interface HearthClientOptions {
  /** `ws(s)://host/ws/v1`, or the server's `http(s)://host` (then `/ws/v1` is appended).
   *  Default: `/ws/v1` on the page's own host. */
  url?: string;
  sdkAppId: number;
  userId: string;
  userSig: string;
  /** A numeric room, 1..4294967294. Give exactly one of roomId and strRoomId. */
  roomId?: number;
  /** A string room (string room "123" is not numeric room 123). */
  strRoomId?: string;
  /** Default 'anchor'. */
  role?: Role;
  /** Receive everyone's audio, main video (big) and sub video as they appear. Default true. */
  autoSubscribe?: boolean;
  privateMapKey?: string;
  /** Default none; used besides the TURN servers the server hands out with `entered`. */
  iceServers?: RTCIceServer[];
  /** 'relay': media only through TURN. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Keepalive period in ms. Default 5000. */
  pingInterval?: number;
  /** Log every signaling message with console.debug. */
  debug?: boolean;
}

/** Another user in the room. */
export interface HearthUser {
  userId: string;
  /** Publishes a microphone. */
  audio: boolean;
  /** Publishes a camera (the main video stream). */
  video: boolean;
  /** Publishes a screen share (the sub stream). */
  sub: boolean;
  audioMuted: boolean;
  videoMuted: boolean;
}

/** A remote track being received. */
export interface RemoteTrack {
  /** The subscribe connection's media line. */
  mid: string;
  userId: string;
  stream: StreamType;
  kind: 'audio' | 'video';
  track: MediaStreamTrack;
  /** One MediaStream per user and stream: main holds the mic and camera, sub the screen. */
  mediaStream: MediaStream;
}

export interface EnterResult {
  session: string;
  userId: string;
  role: Role;
  users: HearthUser[];
}

export interface PublishOptions {
  /** Default true. */
  audio?: boolean | MediaTrackConstraints;
  /** Default true. */
  video?: boolean | MediaTrackConstraints;
  /** Send the camera as three layers (rids q/h/f, 1/4, 1/2 and full resolution). Default false. */
  simulcast?: boolean;
}

export interface SubscribeOptions {
  /** Default 'main'. */
  stream?: StreamType;
  /** Default 'big'; 'small' needs a simulcast publisher. */
  quality?: Quality;
}

export interface HearthEvents {
  /** Someone entered (also fired for everyone already in the room on enter). */
  'user-entered': (user: HearthUser) => void;
  'user-exited': (e: { userId: string }) => void;
  /** Published, unpublished, muted or unmuted something. */
  'user-updated': (user: HearthUser) => void;
  track: (t: RemoteTrack) => void;
  'track-removed': (t: RemoteTrack) => void;
  notice: (n: { reason: NoticeReason; message: string }) => void;
  /** A server error not answering a pending call, or an SDK failure (code 0). */
  error: (e: HearthError) => void;
  'connection-state': (state: ConnectionState, previous: ConnectionState) => void;
  /** A PeerConnection's connectionState changed. */
  'peer-state': (e: { pc: 'publish' | 'subscribe'; state: RTCPeerConnectionState }) => void;
  /** The server changed this client's role without being asked. */
  role: (role: Role) => void;
  /** The person stopped the screen share from the browser's own UI (already unpublished). */
  'screen-ended': () => void;
}

/** An error reported by the server (protocol code: 400, 401, 403, 404, ...) or the SDK (0). */
export declare class HearthError extends Error {
  constructor(code: number, message?: string, request?: string);
  readonly name: 'HearthError';
  /** The protocol's error code, or 0 for errors of the SDK itself (timeouts, closed socket). */
  code: number;
  /** The type of the message the error answers (`publish`, `enter`, ...), if any. */
  request?: string;
}

/** `ws(s)://` as is; an `http(s)://` address or nothing becomes `/ws/v1` on that host. */
export declare function signalingUrl(url?: string): string;

export declare class HearthClient {
  constructor(options: HearthClientOptions);

  /** The options in effect (url resolved, room normalised). */
  readonly options: Required<Pick<HearthClientOptions, 'url' | 'sdkAppId' | 'userId' | 'userSig' | 'role' | 'autoSubscribe'>> & HearthClientOptions;
  /** This client's role, as last confirmed by the server. */
  role: Role;
  /** The session token of the server's `entered` (used to resume after a dropped socket). */
  session: string | null;

  readonly connectionState: ConnectionState;
  /** Everyone else in the room. */
  readonly users: HearthUser[];
  /** Local mic + camera (null before publish()). */
  readonly localStream: MediaStream | null;
  /** Local screen capture (null unless sharing). */
  readonly screenStream: MediaStream | null;
  readonly publishedSources: Source[];
  readonly remoteTracks: RemoteTrack[];
  readonly publishConnection: RTCPeerConnection | null;
  readonly subscribeConnection: RTCPeerConnection | null;

  /** Connects and enters the room. Rejects with a HearthError (401: bad UserSig, ...). */
  enter(): Promise<EnterResult>;
  /** Leaves the room and stops all local media. */
  exit(): Promise<void>;

  /** Publishes mic and/or camera. Rejects with HearthError code 403 for an audience member. */
  publish(options?: PublishOptions): Promise<MediaStream>;
  /** Publishes a screen capture as the sub stream. */
  publishScreen(options?: { video?: boolean | MediaTrackConstraints }): Promise<MediaStream>;
  unpublishScreen(): Promise<void>;
  unpublish(source: Source): Promise<void>;
  /** Mutes/unmutes a published source (default muted = true). */
  mute(source: Source, muted?: boolean): Promise<void>;
  isMuted(source: Source): boolean | undefined;

  /** Subscribes to a user's stream or changes its quality; tracks arrive as `track` events. */
  subscribe(userId: string, options?: SubscribeOptions): Promise<void>;
  unsubscribe(userId: string, options?: { stream?: StreamType }): Promise<void>;
  /** The inbound-rtp stats of a received track (framesDecoded, frameWidth, ...), or null. */
  getRemoteTrackStats(which: { userId: string; stream?: StreamType; kind?: 'audio' | 'video' }): Promise<any | null>;

  /** Switches role; becoming audience stops all publishing. Resolves with the new role. */
  switchRole(role: Role): Promise<Role>;

  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof HearthEvents>(event: E, fn: HearthEvents[E]): () => void;
  once<E extends keyof HearthEvents>(event: E, fn: HearthEvents[E]): () => void;
  off<E extends keyof HearthEvents>(event: E, fn?: HearthEvents[E]): void;
  listenerCount(event: keyof HearthEvents): number;
}

// ---- calling (calls.js) -------------------------------------------------------------------

export type CallMedia = 'audio' | 'video';
export type CallResult = 'Cancel' | 'Reject' | 'NotAnswer' | 'NormalEnd' | 'CallBusy' | 'Interrupt';

export interface HearthCallsOptions {
  /** As HearthClient's: `ws(s)://host/ws/v1` or `http(s)://host`; default the page's host. */
  url?: string;
  sdkAppId: number;
  userId: string;
  userSig: string;
  /** For the rooms joinRoom() enters. Default none. */
  iceServers?: RTCIceServer[];
  /** Keepalive period in ms. Default 5000. */
  pingInterval?: number;
  /** Log every signaling message with console.debug. */
  debug?: boolean;
}

/** A call: who, what, and the room its parties meet in (exactly one of roomId, strRoomId). */
export interface CallInfo {
  callId: string;
  caller: string;
  callees: string[];
  media: CallMedia;
  /** A MultiCall (groupCall) rather than a SingleCall. */
  group: boolean;
  roomId?: number;
  strRoomId?: string;
  /** Given when the application requires a PrivateMapKey to enter the room. */
  privateMapKey?: string;
}

/** This user's call as far as this client has heard. */
export interface CurrentCall extends CallInfo {
  /** Those who accepted (as told by call-accepted / call-state). */
  accepted: string[];
  /** Invitees still ringing. */
  ringing: string[];
  /** Seconds left to answer, when this user was invited. */
  timeout?: number;
}

export interface PlaceCallOptions {
  /** Default 'audio'. */
  media?: CallMedia;
  /** The room to meet in (at most one of roomId, strRoomId); default a free numeric room. */
  roomId?: number;
  strRoomId?: string;
  /** Seconds the invitees ring, 1..300; default the server's (30). */
  timeout?: number;
}

export interface JoinRoomOptions extends Partial<Omit<HearthClientOptions, 'sdkAppId' | 'userId' | 'userSig' | 'roomId' | 'strRoomId'>> {
  /** Merged over {audio: true, video: media === 'video'}; false publishes nothing. */
  publish?: PublishOptions | false;
}

export interface HearthCallsEvents {
  /** This user is invited (also, right after login, to a call still ringing them). */
  invited: (call: CallInfo & { timeout: number }) => void;
  /** After a login: the call this user is in. */
  'call-state': (call: CallInfo & { accepted: string[]; ringing: string[] }) => void;
  'call-accepted': (e: { callId: string; userId: string }) => void;
  'call-rejected': (e: { callId: string; userId: string }) => void;
  /** That invitee is in another call. */
  'call-busy': (e: { callId: string; userId: string }) => void;
  /** That invitee's ring timed out. */
  'call-no-answer': (e: { callId: string; userId: string }) => void;
  'call-left': (e: { callId: string; userId: string; reason: 'hangup' | 'dropped' | (string & {}) }) => void;
  /** The call is over (for everyone still in it or ringing, and whoever ended it). */
  'call-ended': (e: { callId: string; result: CallResult }) => void;
  /** `replaced`: this user logged in elsewhere (this socket closes). */
  notice: (n: { reason: NoticeReason; message: string }) => void;
  /** A server error not answering a pending call, or an SDK failure (code 0). */
  error: (e: HearthError) => void;
  'connection-state': (state: ConnectionState, previous: ConnectionState) => void;
}

/** Calling: log in to be reachable, place, answer and end calls (TUICallKit's model). */
export declare class HearthCalls {
  constructor(options: HearthCallsOptions);

  readonly options: Required<HearthCallsOptions>;
  readonly connectionState: ConnectionState;
  /** This user's call (placing, ringing or in it), or null. */
  readonly currentCall: CurrentCall | null;
  /** The HearthClient joinRoom() made for a call (default the current one), or null. */
  roomOf(callId?: string): HearthClient | null;

  /** Opens the calling socket and logs in. Add `invited`/`call-state` listeners first. */
  login(): Promise<{ userId: string }>;
  /** Logs out (the server hangs up this user's call), exits the call's room. */
  logout(): Promise<void>;

  /** Calls one user (SingleCall). Rejects 400 (bad options), 409 (already in a call). */
  call(userId: string, options?: PlaceCallOptions): Promise<CallInfo>;
  /** Calls 1..16 users (MultiCall). */
  groupCall(userIds: string[], options?: PlaceCallOptions): Promise<CallInfo>;
  /** Accepts a ringing call. Rejects 403 (not invited), 404 (ended), 409 (answered already). */
  accept(callId: string): Promise<CurrentCall>;
  /** Declines a ringing call. */
  reject(callId: string): Promise<void>;
  /** Ends a call this user placed before anyone accepted (Cancel). Rejects 403, 404, 409. */
  cancel(callId: string): Promise<void>;
  /** Leaves a call and exits its room. */
  hangup(callId: string): Promise<void>;

  /** Enters the call's room and publishes mic (+ camera for video calls); resolves the entered
   *  client, exited automatically when the call ends for this user. */
  joinRoom(call?: CallInfo, options?: JoinRoomOptions): Promise<HearthClient>;

  on<E extends keyof HearthCallsEvents>(event: E, fn: HearthCallsEvents[E]): () => void;
  once<E extends keyof HearthCallsEvents>(event: E, fn: HearthCallsEvents[E]): () => void;
  off<E extends keyof HearthCallsEvents>(event: E, fn?: HearthCallsEvents[E]): void;
  listenerCount(event: keyof HearthCallsEvents): number;
}

export default HearthClient;
