//! The client edge of Hearth: WHIP publish and WHEP play (RFC 9725 and the WHEP draft),
//! Hearth's WebSocket client protocol (`docs/protocol.md`) on the media plane, and calling
//! (ringing, answering, call records), with UserSig and PrivateMapKey checks, and records entry
//! attempts. Turns client
//! messages into `SfuHandle` calls; writes call records through the `Store` trait and knows
//! nothing of SQL.

mod auth;
mod calls;
mod entries;
mod error;
mod proto;
mod whip;
mod ws;

pub use auth::{AppAuth, Apps};
pub use calls::{CallStats, Calls, CallsConfig};
use hearth_sfu::SfuHandle;
use hearth_store::Store;
use std::sync::Arc;

/// What the client edge's handlers share.
pub(crate) struct Edge {
    pub sfu: SfuHandle,
    pub apps: Apps,
    pub calls: Calls,
    /// Where entry attempts are recorded.
    pub store: Arc<dyn Store>,
}

/// WHIP, WHEP and the WebSocket protocol (`/ws/v1`: room sessions and calling sockets).
pub fn router(sfu: SfuHandle, apps: Apps, calls: Calls, store: Arc<dyn Store>) -> axum::Router {
    let edge = Arc::new(Edge {
        sfu,
        apps,
        calls,
        store,
    });
    whip::routes(edge.clone()).merge(
        axum::Router::new()
            .route("/ws/v1", axum::routing::get(ws::upgrade))
            .with_state(edge),
    )
}
