// Type declarations of calls.js (HearthCalls), which hearth.d.ts declares: for importing
// './sdk/calls.js' directly.

export {
  HearthCalls, HearthCallsOptions, HearthCallsEvents, CallInfo, CurrentCall, CallMedia, CallResult,
  PlaceCallOptions, JoinRoomOptions,
} from './hearth.js';
export { HearthCalls as default } from './hearth.js';
