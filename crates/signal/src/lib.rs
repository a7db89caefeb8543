//! The client edge of Hearth: WHIP publish and WHEP play (RFC 9725 and the WHEP draft) and
//! Hearth's WebSocket client protocol (`docs/protocol.md`) on the media plane, with UserSig and PrivateMapKey checks. Turns HTTP requests into `SfuHandle`
//! calls; knows nothing of SQL.

mod auth;
mod error;
mod proto;
mod whip;
mod ws;

pub use auth::{AppAuth, Apps};
use hearth_sfu::SfuHandle;
use std::sync::Arc;

/// What the client edge's handlers share.
pub(crate) struct Edge {
    pub sfu: SfuHandle,
    pub apps: Apps,
}

/// WHIP, WHEP and the WebSocket protocol (`/ws/v1`).
pub fn router(sfu: SfuHandle, apps: Apps) -> axum::Router {
    let edge = Arc::new(Edge { sfu, apps });
    whip::routes(edge.clone()).merge(
        axum::Router::new()
            .route("/ws/v1", axum::routing::get(ws::upgrade))
            .with_state(edge),
    )
}
