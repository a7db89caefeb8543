//! The operator console's server side under `/console/`: signing in with an API credential
//! (exchanged for a session in an HttpOnly, SameSite=Strict cookie; the secret never reaches
//! the page again), signing out, and `POST /console/api/<Action>`, which runs the API's own
//! actions (and two console-only ones, [`actions`]) as the signed-in credential, with its rate
//! limits and envelope. Every call but signing in needs the session's CSRF token in
//! `X-Hearth-CSRF`.

mod actions;
pub mod sessions;

use crate::actions::Ctx;
use crate::catalog::{self, RateLimit, Service};
use crate::envelope::{failure, new_request_id, success};
use crate::error::ApiError;
use crate::tenants::Caller;
use crate::ApiState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};
use sessions::Session;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const COOKIE: &str = "hearth_console";
const CSRF_HEADER: &str = "x-hearth-csrf";
/// Sign-in attempts one address may make (wrong secrets included).
const SIGN_IN_LIMIT: RateLimit = RateLimit {
    requests: 10,
    per_secs: 60,
};
/// How long a console sign-in lasts unless configured.
pub const DEFAULT_SESSION: std::time::Duration = std::time::Duration::from_secs(8 * 3600);
/// The largest console request body.
const MAX_BODY: usize = 64 * 1024;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(
            "/console/session",
            post(sign_in).get(who_am_i).delete(sign_out),
        )
        .route("/console/api/{action}", post(act))
        .with_state(state)
}

/// A JSON reply the browser must not cache.
fn reply(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Why a console request is refused before any action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No session cookie, or its session expired or was closed (401).
    SignedOut,
    /// The session's CSRF token is missing or wrong (403).
    Csrf,
    /// This address tried to sign in too often (429).
    TooManySignIns,
    /// The sign-in body is not the JSON asked for (400).
    BadSignIn,
    /// Unknown SecretId or wrong SecretKey (401).
    WrongCredentials,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Refusal::SignedOut => (
                StatusCode::UNAUTHORIZED,
                "Not signed in, or the session expired.",
            ),
            Refusal::Csrf => (
                StatusCode::FORBIDDEN,
                "The request lacks the session's CSRF token.",
            ),
            Refusal::TooManySignIns => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts; wait a minute.",
            ),
            Refusal::BadSignIn => (
                StatusCode::BAD_REQUEST,
                "Send {\"SecretId\": ..., \"SecretKey\": ...} as JSON.",
            ),
            Refusal::WrongCredentials => (StatusCode::UNAUTHORIZED, "Wrong SecretId or SecretKey."),
        };
        reply(status, json!({ "Error": message }))
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|t| !t.is_empty())
}

fn set_cookie(r: &mut Response, value: &str, max_age: u64) {
    let cookie =
        format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// What the page learns of its session: never the secret.
fn session_json(state: &ApiState, s: &Session, now: Instant) -> Value {
    let apps: Vec<u32> = state
        .tenants
        .credential(&s.secret_id)
        .map(|c| c.apps.iter().map(|a| a.0).collect())
        .unwrap_or_default();
    json!({
        "SecretId": s.secret_id,
        "Apps": apps,
        "Csrf": s.csrf,
        "ExpiresIn": s.expires.saturating_duration_since(now).as_secs(),
    })
}

/// The signed-in session of a request whose credential still exists.
fn session_of(state: &ApiState, headers: &HeaderMap, now: Instant) -> Result<Session, Refusal> {
    let token = cookie_token(headers).ok_or(Refusal::SignedOut)?;
    let session = state.console.get(token, now).ok_or(Refusal::SignedOut)?;
    if state.tenants.credential(&session.secret_id).is_none() {
        state.console.close(token);
        return Err(Refusal::SignedOut);
    }
    Ok(session)
}

fn check_csrf(headers: &HeaderMap, s: &Session) -> Result<(), Refusal> {
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if crate::signature::same(given.as_bytes(), s.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::Csrf)
    }
}

/// The session of a request that may act: signed in, with the CSRF token.
fn acting_session(state: &ApiState, headers: &HeaderMap, now: Instant) -> Result<Session, Refusal> {
    let s = session_of(state, headers, now)?;
    check_csrf(headers, &s)?;
    Ok(s)
}

async fn sign_in(
    State(state): State<Arc<ApiState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    if let Some(limiter) = &state.rate_limiter {
        if !limiter.admit(&peer.ip().to_string(), "ConsoleSignIn", SIGN_IN_LIMIT, now) {
            return Refusal::TooManySignIns.into_response();
        }
    }
    let Ok(Value::Object(form)) = serde_json::from_slice::<Value>(&body) else {
        return Refusal::BadSignIn.into_response();
    };
    let field = |k: &str| form.get(k).and_then(Value::as_str).unwrap_or("");
    let (id, key) = (field("SecretId"), field("SecretKey"));
    let known = state.tenants.credential(id);
    // Compare against something even for an unknown SecretId, so timing tells nothing.
    let expected = known.map_or("", |c| c.secret_key.as_str());
    let matches = crate::signature::same(key.as_bytes(), expected.as_bytes());
    if known.is_none() || !matches || key.is_empty() {
        tracing::info!(secret_id = %id, ip = %peer.ip(), "console sign-in refused");
        return Refusal::WrongCredentials.into_response();
    }
    let (token, session) = state.console.open(id, now);
    tracing::info!(secret_id = %id, ip = %peer.ip(), "console signed in");
    let mut r = reply(StatusCode::OK, session_json(&state, &session, now));
    set_cookie(&mut r, &token, state.console.ttl().as_secs());
    r
}

async fn who_am_i(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let now = Instant::now();
    match session_of(&state, &headers, now) {
        Ok(s) => reply(StatusCode::OK, session_json(&state, &s, now)),
        Err(r) => r.into_response(),
    }
}

async fn sign_out(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if let Err(r) = acting_session(&state, &headers, Instant::now()) {
        return r.into_response();
    }
    if let Some(token) = cookie_token(&headers) {
        state.console.close(token);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut r, "", 0);
    r
}

/// Runs one action as the signed-in credential; answers in the API's envelope.
async fn act(
    State(state): State<Arc<ApiState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // From the URI, not a `Path` extractor: the web routes in front of this router match
    // `/console/api/{*rest}` themselves, and their parameter stays on the request.
    let action = uri
        .path()
        .strip_prefix("/console/api/")
        .unwrap_or_default()
        .to_owned();
    let now = Instant::now();
    let s = match acting_session(&state, &headers, now) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let request_id = new_request_id();
    match run(&state, &s, &action, &body, now).await {
        Ok(fields) => success(&request_id, fields),
        Err(e) => {
            tracing::info!(%request_id, action, code = %e.body().code, "console action error");
            failure(&request_id, &e)
        }
    }
}

async fn run(
    state: &Arc<ApiState>,
    s: &Session,
    action: &str,
    body: &[u8],
    now: Instant,
) -> Result<Map<String, Value>, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::RequestSizeLimitExceeded(format!(
            "The body exceeds {MAX_BODY} bytes."
        )));
    }
    let params = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::InvalidParameter(format!("The body is not JSON: {e}.")))?
    };
    let credential = state
        .tenants
        .credential(&s.secret_id)
        .ok_or(ApiError::SecretIdNotFound)?;
    let caller = Caller {
        secret_id: s.secret_id.clone(),
        apps: credential.apps.clone(),
    };
    let (name, limit): (&'static str, RateLimit) = match actions::find(action) {
        Some(console_only) => console_only,
        None => match catalog::find(Service::Trtc, action) {
            Some(a) if a.built => (a.name, a.limit),
            _ => return Err(ApiError::InvalidAction(action.to_owned())),
        },
    };
    if let Some(limiter) = &state.rate_limiter {
        if !limiter.admit(&caller.secret_id, name, limit, now) {
            return Err(ApiError::RequestLimitExceeded {
                action: name.to_owned(),
                per_second: limit.describe(),
            });
        }
    }
    let ctx = Ctx {
        state: state.clone(),
        caller,
        now: (state.clock)(),
    };
    match actions::find(name) {
        Some(_) => actions::run(&ctx, name, params).await,
        None => crate::actions::dispatch(ctx, name, params).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hearth_console=abc; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("hearth_console_x=1; hearth_console="),
        );
        assert_eq!(cookie_token(&h), None);
    }
}
