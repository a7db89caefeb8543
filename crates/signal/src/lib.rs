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
mod limits;
mod proto;
mod turn;
mod whip;
mod ws;

pub use auth::{AppAuth, Apps};
pub use calls::{CallStats, Calls, CallsConfig, ROOM_EVENTS_QUEUE};
pub use limits::{EdgeLimits, LimitCounters};
pub use turn::TurnServers;

/// How the client edge is configured.
#[derive(Clone, Debug, Default)]
pub struct EdgeConfig {
    pub limits: EdgeLimits,
    /// The TURN servers clients are told of; none: clients get no TURN servers.
    pub turn: Option<TurnServers>,
}
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
    /// Open sockets per user and application, and the limits' counters.
    pub sockets: Arc<limits::Sockets>,
    pub turn: Option<TurnServers>,
}

impl Edge {
    /// The TURN servers to tell `user` of (none when none are configured).
    pub(crate) fn ice_servers(&self, user: &str) -> Option<turn::IceServer> {
        let t = self.turn.as_ref()?;
        Some(t.for_user(user, hearth_types::UnixSecs::now()))
    }
}

/// What `/metrics` reads of the client edge's limits.
#[derive(Clone)]
pub struct EdgeMeter(Arc<limits::Sockets>);

impl EdgeMeter {
    /// WebSocket protocol sockets open now.
    pub fn open_sockets(&self) -> u64 {
        self.0.open()
    }

    /// What the limits refused since the start.
    pub fn counters(&self) -> &LimitCounters {
        &self.0.counters
    }
}

/// The client edge's routes and its meter.
pub struct ClientEdge {
    pub router: axum::Router,
    pub meter: EdgeMeter,
}

/// WHIP, WHEP and the WebSocket protocol (`/ws/v1`: room sessions and calling sockets).
pub fn router(
    sfu: SfuHandle,
    apps: Apps,
    calls: Calls,
    store: Arc<dyn Store>,
    config: EdgeConfig,
) -> ClientEdge {
    let sockets = limits::Sockets::new(config.limits);
    let edge = Arc::new(Edge {
        sfu,
        apps,
        calls,
        store,
        sockets: sockets.clone(),
        turn: config.turn,
    });
    let router = whip::routes(edge.clone()).merge(
        axum::Router::new()
            .route("/ws/v1", axum::routing::get(ws::upgrade))
            .with_state(edge),
    );
    ClientEdge {
        router,
        meter: EdgeMeter(sockets),
    }
}
