//! The TencentCloud API 3.0 gateway of Hearth: transport, TC3 and v1 signatures, the response
//! envelope with RequestId, error codes, per-SecretId rate limits, and the actions of `trtc`
//! 2019-07-22 and `lcic` 2022-08-17; the IM-style REST API of call records; and the operator
//! console's sign-in and action calls. Knows nothing of SQL (it queries through the `Store` trait)
//! or of media (it acts on rooms through a [`RoomControl`] handle).

mod actions;
pub mod catalog;
pub mod console;
mod envelope;
pub mod error;
mod gateway;
mod im;
pub mod media;
mod metrics;
pub mod params;
mod rate_limit;
mod rooms;
pub mod signature;
mod tenants;
pub mod transport;
mod window;

pub use error::ApiError;
pub use gateway::router;
pub use media::{MediaTasks, NoMediaTasks, TaskError};
pub use metrics::ApiMetrics;
pub use rate_limit::RateLimiter;
pub use rooms::{Block, LiveUser, RoomControl, RoomError, RoomFuture};
pub use tenants::{Caller, Tenants};

use hearth_store::Store;
use hearth_types::UnixSecs;
use std::sync::Arc;

/// Reads server time; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> UnixSecs + Send + Sync>;

/// Everything the gateway needs, shared by all requests.
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub tenants: Arc<Tenants>,
    pub rooms: Arc<dyn RoomControl>,
    pub media: Arc<dyn MediaTasks>,
    /// `None` turns rate limiting off (benchmarks).
    pub rate_limiter: Option<RateLimiter>,
    pub clock: Clock,
    pub metrics: ApiMetrics,
    /// The operator console's signed-in sessions.
    pub console: console::sessions::Sessions,
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, tenants: Arc<Tenants>, rooms: Arc<dyn RoomControl>) -> Self {
        ApiState {
            store,
            tenants,
            rooms,
            media: Arc::new(NoMediaTasks(
                "media tasks are not available on this server".into(),
            )),
            rate_limiter: Some(RateLimiter::default()),
            clock: Arc::new(UnixSecs::now),
            metrics: ApiMetrics::default(),
            console: console::sessions::Sessions::new(console::DEFAULT_SESSION),
        }
    }
}
