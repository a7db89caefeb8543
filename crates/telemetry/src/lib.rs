//! Telemetry: the media plane's domain events made durable. The recorder drains the bounded
//! event queue in order, in batches, and writes calls (CommId lifetimes), user sessions and
//! the WebRTC events (spec §4.2) through the `Store` trait, and queues the room and media event
//! callbacks of the apps that listen to them in the store's outbox. Knows nothing of HTTP.

mod callbacks;
mod recorder;

pub use recorder::{Recorder, EVENT_QUEUE};
