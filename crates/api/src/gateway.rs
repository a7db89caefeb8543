//! The HTTP face of the API: one route (`/`), any method, the body read with the spec's size
//! limit, then authenticate → rate-limit → dispatch, and every outcome in the JSON envelope.

use crate::actions::{self, Ctx};
use crate::envelope::{failure, new_request_id, success};
use crate::error::ApiError;
use crate::transport::{authenticate, Received, MAX_GET_BYTES, MAX_TC3_POST_BYTES};
use crate::ApiState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

/// The API router: TencentCloud API 3.0 at `/`, the IM-style REST APIs under `/v4/`, the
/// console's session and action calls under `/console/`. Other
/// parts of the server add their own routes beside it.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", any(handle))
        .with_state(state.clone())
        .merge(crate::im::router(state.clone()))
        .merge(crate::console::router(state))
}

async fn handle(
    State(state): State<Arc<ApiState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let mut action = "unknown";
    let outcome = serve(&state, &method, &uri, &headers, body, &mut action).await;
    let elapsed_us = started.elapsed().as_micros() as u64;
    match outcome {
        Ok(fields) => {
            state.metrics.record(action, crate::metrics::OK);
            tracing::info!(%request_id, action, elapsed_us, "api ok");
            success(&request_id, fields)
        }
        Err(e) => {
            let b = e.body();
            state.metrics.record(action, &b.code);
            tracing::info!(%request_id, action, code = %b.code, message = %b.message, elapsed_us, "api error");
            failure(&request_id, &e)
        }
    }
}

async fn serve(
    state: &Arc<ApiState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    action: &mut &'static str,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let limit = if *method == Method::GET {
        MAX_GET_BYTES
    } else {
        MAX_TC3_POST_BYTES
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::RequestSizeLimitExceeded(format!(
            "The body exceeds {limit} bytes."
        )));
    }
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::RequestSizeLimitExceeded(format!("The body exceeds {limit} bytes."))
    })?;
    let now = (state.clock)();
    let received = Received {
        method,
        headers,
        query: uri.query().unwrap_or(""),
        body: &body,
    };
    let call = authenticate(&received, &state.tenants, now)?;
    *action = call.action.name;
    if let Some(limiter) = &state.rate_limiter {
        if !limiter.admit(
            &call.caller.secret_id,
            call.action.name,
            call.action.limit,
            Instant::now(),
        ) {
            return Err(ApiError::RequestLimitExceeded {
                action: call.action.name.to_owned(),
                per_second: call.action.limit.describe(),
            });
        }
    }
    let name = call.action.name;
    let ctx = Ctx {
        state: state.clone(),
        caller: call.caller,
        now,
    };
    actions::dispatch(ctx, name, call.params).await
}
