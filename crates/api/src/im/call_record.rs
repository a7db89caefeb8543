//! `v4/call_record_http_srv/get_record_by_callid` (seed 003): one call's record by CallId.

use super::{admit, answer, ImError};
use crate::ApiState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;
use hearth_store::CallLog;
use hearth_types::RoomKey;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Longest CallId looked up (a UUID is 36).
const MAX_CALL_ID: usize = 128;

pub(super) async fn get_record_by_callid(
    State(state): State<Arc<ApiState>>,
    method: Method,
    uri: Uri,
    body: Body,
) -> Response {
    let outcome = serve(&state, &method, &uri, body).await;
    answer("get_record_by_callid", &state, outcome)
}

async fn serve(
    state: &Arc<ApiState>,
    method: &Method,
    uri: &Uri,
    body: Body,
) -> Result<Map<String, Value>, ImError> {
    let (app, body) = admit(state, method, uri, body).await?;
    let call_id = match body.get("CallId") {
        None => return Err(ImError::InvalidParameter("CallId is required".into())),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CALL_ID => s.clone(),
        Some(Value::String(_)) => {
            return Err(ImError::InvalidParameter(format!(
                "CallId must be 1 to {MAX_CALL_ID} characters"
            )))
        }
        Some(_) => return Err(ImError::InvalidParameter("CallId must be a string".into())),
    };
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || store.call_log(app, &call_id))
        .await
        .map_err(|_| ImError::Internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "reading a call record failed");
            ImError::Internal
        })?
        .ok_or(ImError::CallRecordNotFound)?;
    let mut fields = Map::new();
    fields.insert("CallRecord".into(), record(&found));
    Ok(fields)
}

/// The CallRecord structure. A call still going on has `EndTime` 0 and `CallResult` "", and
/// `AcceptTime` is 0 until someone answers.
fn record(c: &CallLog) -> Value {
    let (room, room_type) = match &c.room {
        RoomKey::Num(n) => (n.to_string(), 1),
        RoomKey::Str(s) => (s.clone(), 2),
    };
    json!({
        "CallId": c.call_id,
        "Caller_Account": c.caller,
        "MediaType": c.media.as_str(),
        "CallType": if c.group { "MultiCall" } else { "SingleCall" },
        "StartTime": c.started_at.0,
        "AcceptTime": c.accepted_at.map_or(0, |t| t.0),
        "EndTime": c.ended_at.map_or(0, |t| t.0),
        "CallResult": c.result.map_or("", |r| r.as_str()),
        "CalleeList_Account": c.callees,
        "RoomId": room,
        "RoomIdType": room_type,
    })
}
