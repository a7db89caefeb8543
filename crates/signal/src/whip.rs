//! WHIP (RFC 9725) and WHEP: `POST /whip/v1?sdkappid=N&roomid=R|strroomid=S` publishes the
//! offer's media as the UserSig's user; `POST /whep/v1?...&userid=P[&stream=main|sub]` plays a
//! publisher; `DELETE` on the returned `Location` ends the session. Candidates are all in the
//! answer (the server is ICE-lite), so trickle `PATCH` answers 405.

use crate::auth::{check_private_map_key, user_of};
use crate::error::EdgeError;
use crate::Edge;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use hearth_auth::Privileges;
use hearth_sfu::core::StreamKind;
use hearth_sfu::{JoinRequest, SessionRef, MAX_OFFER_BYTES};
use hearth_types::{RoomKey, SdkAppId, UnixSecs, UserId};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The WHIP and WHEP routes.
pub(crate) fn routes(state: Arc<Edge>) -> Router {
    Router::new()
        .route("/whip/v1", post(whip).options(ice_servers))
        .route("/whep/v1", post(whep).options(ice_servers))
        .route(
            "/whip/v1/session/{worker}/{peer}/{token}",
            delete(end).patch(no_trickle),
        )
        .route(
            "/whep/v1/session/{worker}/{peer}/{token}",
            delete(end).patch(no_trickle),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_OFFER_BYTES))
        .with_state(state)
}

#[derive(Deserialize)]
struct Target {
    sdkappid: Option<String>,
    roomid: Option<String>,
    strroomid: Option<String>,
    userid: Option<String>,
    stream: Option<String>,
    privatemapkey: Option<String>,
}

fn bad(m: impl Into<String>) -> EdgeError {
    EdgeError::BadRequest(m.into())
}

impl Target {
    fn app(&self) -> Result<SdkAppId, EdgeError> {
        let raw = self
            .sdkappid
            .as_deref()
            .ok_or_else(|| bad("sdkappid is required"))?;
        raw.parse()
            .map(SdkAppId)
            .map_err(|_| bad("sdkappid must be a number"))
    }

    fn room(&self) -> Result<RoomKey, EdgeError> {
        match (&self.roomid, &self.strroomid) {
            (Some(n), None) => {
                let n: u64 = n.parse().map_err(|_| bad("roomid must be a number"))?;
                RoomKey::num(n).map_err(|e| bad(e.to_string()))
            }
            (None, Some(s)) => RoomKey::string(s).map_err(|e| bad(e.to_string())),
            _ => Err(bad("give exactly one of roomid and strroomid")),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, EdgeError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(EdgeError::Unauthorized(
            "Authorization: Bearer <UserSig> is required",
        ))
}

fn sdp_body(headers: &HeaderMap, body: &Bytes) -> Result<String, EdgeError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/sdp") {
        return Err(EdgeError::UnsupportedMediaType);
    }
    String::from_utf8(body.to_vec()).map_err(|_| bad("the offer is not UTF-8"))
}

fn join_request(
    app: SdkAppId,
    room: RoomKey,
    user: UserId,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> JoinRequest {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    JoinRequest {
        app,
        room,
        user,
        client_ip: peer.ip().to_string(),
        device_type: "WHIP/WHEP".into(),
        sdk_version: agent.chars().take(64).collect(),
        bot: false,
    }
}

/// Adds a `Link` header per TURN URL with `user`'s credentials (RFC 9725 §4.6).
fn add_ice_servers(edge: &Edge, user: &UserId, h: &mut HeaderMap) {
    if let Some(s) = edge.ice_servers(&user.0) {
        for v in crate::turn::link_headers(&s) {
            h.append(header::LINK, v);
        }
    }
}

fn created(edge: &Edge, kind: &str, user: &UserId, s: SessionRef, answer: String) -> Response {
    let location = format!("/{kind}/v1/session/{}/{}/{}", s.worker, s.peer.0, s.token);
    let mut r = (StatusCode::CREATED, answer).into_response();
    let h = r.headers_mut();
    add_ice_servers(edge, user, h);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    r
}

/// The checks WHIP and WHEP share: room, UserSig, PrivateMapKey (granting `needed`), SDP body.
fn admit(
    edge: &Edge,
    t: &Target,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &Bytes,
    needed: Privileges,
) -> Result<(JoinRequest, String), EdgeError> {
    let (app, room) = (t.app()?, t.room()?);
    let now = UnixSecs::now();
    let (user, auth) = user_of(&edge.apps, app, bearer(headers)?, now)?;
    let pmk = t.privatemapkey.as_deref();
    check_private_map_key(auth, app, &user, &room, pmk, needed, now)?;
    let offer = sdp_body(headers, body)?;
    Ok((join_request(app, room, user, peer, headers), offer))
}

async fn whip(
    State(edge): State<Arc<Edge>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(t): Query<Target>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, EdgeError> {
    let began = Instant::now();
    let needed = Privileges::ENTER_ROOM | Privileges::SEND_AUDIO | Privileges::SEND_VIDEO;
    let outcome = async {
        let (req, offer) = admit(&edge, &t, peer, &headers, &body, needed)?;
        let user = req.user.clone();
        let joined = edge.sfu.publish(req, offer).await?;
        Ok(created(&edge, "whip", &user, joined.session, joined.answer))
    }
    .await;
    record(&edge, &t, &headers, began, &outcome);
    outcome
}

/// Records a WHIP or WHEP request as an entry attempt (the user is the one its UserSig names,
/// unchecked when the request was refused).
fn record(
    edge: &Edge,
    t: &Target,
    headers: &HeaderMap,
    began: Instant,
    outcome: &Result<Response, EdgeError>,
) {
    let (Ok(app), Ok(room)) = (t.app(), t.room()) else {
        return;
    };
    let user = bearer(headers)
        .ok()
        .and_then(|sig| hearth_auth::peek_usersig(sig).ok())
        .map(|(_, user)| user.chars().take(64).collect())
        .unwrap_or_default();
    let refused = outcome.as_ref().err().map(|e| format!("{e:?}"));
    edge.record_entry(app, room.to_string(), user, began, refused);
}

async fn whep(
    State(edge): State<Arc<Edge>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(t): Query<Target>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, EdgeError> {
    let publisher = t.userid.clone().filter(|u| !u.is_empty());
    let publisher = UserId(publisher.ok_or_else(|| bad("userid (the publisher) is required"))?);
    let stream = match t.stream.as_deref() {
        None | Some("main") => StreamKind::Main,
        Some("sub") => StreamKind::Sub,
        Some(_) => return Err(bad("stream must be main or sub")),
    };
    let began = Instant::now();
    let needed = Privileges::ENTER_ROOM | Privileges::RECV_AUDIO | Privileges::RECV_VIDEO;
    let outcome = async {
        let (req, offer) = admit(&edge, &t, peer, &headers, &body, needed)?;
        let user = req.user.clone();
        let joined = edge.sfu.play(req, publisher, stream, offer).await?;
        Ok(created(&edge, "whep", &user, joined.session, joined.answer))
    }
    .await;
    record(&edge, &t, &headers, began, &outcome);
    outcome
}

async fn end(
    State(edge): State<Arc<Edge>>,
    Path((worker, peer, token)): Path<(usize, u64, String)>,
) -> Result<StatusCode, EdgeError> {
    let session = SessionRef {
        worker,
        peer: hearth_sfu::core::ParticipantId(peer),
        token,
    };
    edge.sfu
        .leave(session)
        .await
        .map_err(|_| EdgeError::NotFound("no such session"))?;
    Ok(StatusCode::OK)
}

/// `OPTIONS` before an offer: with a UserSig for the application (and `sdkappid` in the
/// query), the TURN servers come back in `Link` headers, so a client can gather relayed
/// candidates for its offer. Without one (a browser's CORS pre-flight), no `Link` headers.
async fn ice_servers(
    State(edge): State<Arc<Edge>>,
    Query(t): Query<Target>,
    headers: HeaderMap,
) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
    let user = t.app().ok().and_then(|app| {
        let sig = bearer(&headers).ok()?;
        user_of(&edge.apps, app, sig, UnixSecs::now())
            .ok()
            .map(|(u, _)| u)
    });
    if let Some(user) = user {
        add_ice_servers(&edge, &user, h);
    }
    r
}

async fn no_trickle() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}
