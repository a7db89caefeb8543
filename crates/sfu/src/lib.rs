//! Hearth's media plane: rooms sharded across worker threads, each a str0m-driven UDP loop
//! around a sans-IO room core. The rest of the server talks to it through [`SfuHandle`]
//! commands and hears from it through [`events::DomainEvent`]s. Knows nothing of HTTP or SQL.

pub mod client;
mod command;
pub mod core;
pub mod events;
mod handle;
mod offer;
mod quota;
pub(crate) mod worker;

pub use command::{Counters, JoinRequest, Joined, RoomUser, SessionRef, SfuError, WorkerStats};
pub use handle::{SfuConfig, SfuHandle};
pub use offer::MAX_OFFER_BYTES;
pub use quota::{Over, Quota, SessionQuota};
pub use worker::Blocked;
