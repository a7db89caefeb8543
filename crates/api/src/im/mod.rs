//! The IM-style REST APIs (`/v4/<service>/<command>?sdkappid=&identifier=&usersig=&random=
//! &contenttype=json`, POST, JSON body): the query's administrator UserSig checked, the
//! `{ErrorCode, ErrorInfo, ActionStatus, RequestId, ...}` envelope, and the APIs built so far
//! (the call record of seed 003). Not TencentCloud API 3.0: no TC3/v1 signature.

mod call_record;
mod error;

pub use error::ImError;

use crate::ApiState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hearth_auth::verify_usersig;
use hearth_types::SdkAppId;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Largest body accepted.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Tencent Chat's limit on an application's REST API calls, all APIs together.
pub(crate) const REQUESTS_PER_SEC: u32 = 200;
/// The rate limiter's key of the IM-style APIs (one bucket per application).
const LIMITED_AS: &str = "im:rest";

/// The IM-style routes (`/v4/...`).
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(
            "/v4/call_record_http_srv/get_record_by_callid",
            any(call_record::get_record_by_callid),
        )
        .route("/v4/{*rest}", any(unknown))
        .with_state(state)
}

/// `Id-<32 hex>-O-Seq-<n>`, as the seed's example.
fn new_request_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(1);
    format!(
        "Id-{}-O-Seq-{}",
        uuid::Uuid::new_v4().simple(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every answer is HTTP 200 with the outcome in the body, as Tencent Chat does.
fn answer(
    api: &'static str,
    state: &ApiState,
    outcome: Result<Map<String, Value>, ImError>,
) -> Response {
    let request_id = new_request_id();
    let body = match outcome {
        Ok(fields) => {
            state.metrics.record(api, crate::metrics::OK);
            tracing::info!(%request_id, api, "im api ok");
            json!({
                "ErrorCode": 0,
                "ErrorInfo": "",
                "ActionStatus": "OK",
                "RequestId": request_id,
                "Response": fields,
            })
        }
        Err(e) => {
            let (code, info) = e.parts();
            state.metrics.record(api, &code.to_string());
            tracing::info!(%request_id, api, code, info, "im api error");
            json!({
                "ErrorCode": code,
                "ErrorInfo": info,
                "ActionStatus": "FAIL",
                "RequestId": request_id,
            })
        }
    };
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn unknown(State(state): State<Arc<ApiState>>, uri: Uri) -> Response {
    answer(
        "im:unknown",
        &state,
        Err(ImError::NoSuchApi(uri.path().to_owned())),
    )
}

/// The query of every IM-style request.
struct Query {
    sdkappid: Option<String>,
    identifier: Option<String>,
    usersig: Option<String>,
    random: Option<String>,
    contenttype: Option<String>,
}

fn parse_query(q: &str) -> Query {
    let mut out = Query {
        sdkappid: None,
        identifier: None,
        usersig: None,
        random: None,
        contenttype: None,
    };
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let slot = match k.as_ref() {
            "sdkappid" => &mut out.sdkappid,
            "identifier" => &mut out.identifier,
            "usersig" => &mut out.usersig,
            "random" => &mut out.random,
            "contenttype" => &mut out.contenttype,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v.into_owned());
        }
    }
    out
}

/// Checks method, query and administrator UserSig; returns the application and the JSON body.
async fn admit(
    state: &ApiState,
    method: &Method,
    uri: &Uri,
    body: Body,
) -> Result<(SdkAppId, Map<String, Value>), ImError> {
    let q = parse_query(uri.query().unwrap_or(""));
    let sdkappid = q
        .sdkappid
        .filter(|s| !s.is_empty())
        .ok_or(ImError::MissingSdkAppId)?;
    let app = sdkappid
        .parse::<u32>()
        .ok()
        .and_then(|id| state.tenants.app(SdkAppId(id)))
        .ok_or(ImError::InvalidSdkAppId)?;
    let identifier = q
        .identifier
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ImError::BadUrlParameter("identifier is missing".into()))?;
    let usersig = q
        .usersig
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ImError::BadUrlParameter("usersig is missing".into()))?;
    match q.contenttype.as_deref() {
        Some("json") => {}
        None | Some("") => return Err(ImError::BadUrlParameter("contenttype is missing".into())),
        Some(other) => {
            return Err(ImError::BadUrlParameter(format!(
                "contenttype must be json, not {other:?}"
            )))
        }
    }
    match q.random.as_deref().map(str::parse::<u32>) {
        Some(Ok(_)) => {}
        None => return Err(ImError::HttpParse("random is missing".into())),
        Some(Err(_)) => {
            return Err(ImError::HttpParse(
                "random must be an integer from 0 to 4294967295".into(),
            ))
        }
    }
    if *method != Method::POST {
        return Err(ImError::HttpParse(format!("use POST, not {method}")));
    }
    let verified = verify_usersig(&usersig, app.sdk_app_id, &app.secret_key, (state.clock)())?;
    if verified.identifier != identifier {
        return Err(ImError::IdentifierMismatch);
    }
    if !app.admins.contains(&identifier) {
        return Err(ImError::NotAdmin);
    }
    // Counted once the caller is known to be the app's administrator: strangers cannot spend
    // an application's budget.
    if let Some(limiter) = &state.rate_limiter {
        let limit = crate::catalog::RateLimit {
            requests: REQUESTS_PER_SEC,
            per_secs: 1,
        };
        let key = app.sdk_app_id.0.to_string();
        if !limiter.admit(&key, LIMITED_AS, limit, std::time::Instant::now()) {
            return Err(ImError::FrequencyLimit);
        }
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ImError::HttpParse(format!("the body exceeds {MAX_BODY_BYTES} bytes")))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| ImError::BadJson(e.to_string()))?;
    match value {
        Value::Object(m) => Ok((app.sdk_app_id, m)),
        _ => Err(ImError::BadJson("the body must be a JSON object".into())),
    }
}
