//! Event callbacks: Hearth tells an app's server what happened (a room created, a user entered,
//! a file recorded, …) with a signed HTTP POST in TRTC's format, `{EventGroupId, EventType,
//! CallbackTs, EventInfo}` with the `Sign` and `SdkAppId` headers. Events are written to the
//! store's outbox by whoever sees them ([`Directory::wants`] says whether the app listens to
//! the group); [`Dispatcher`] delivers the outbox: in order per app, group and room (or task),
//! with retries over a horizon, bounded concurrency, and only HTTP 200 counted as delivered.
//! TUICallKit's call-status callbacks go the same way with their own body and URL query.

mod directory;
mod dispatch;
mod sign;

pub use directory::{call_command, room_id, AppCallbacks, Directory, Group};
pub use dispatch::{Counters, Dispatcher, Settings};
pub use sign::sign;
