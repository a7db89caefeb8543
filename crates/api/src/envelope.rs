//! The response envelope (spec §1.6): always HTTP 200, `Content-Type: application/json` exactly
//! (the official Python SDK ignores `Response.Error` under any other value), a `RequestId`.

use crate::error::ApiError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `{"Response": {...fields, "RequestId": id}}`.
pub fn success(request_id: &str, fields: Map<String, Value>) -> Response {
    let mut fields = fields;
    fields.insert("RequestId".into(), Value::String(request_id.to_owned()));
    respond(json!({ "Response": fields }))
}

/// `{"Response": {"Error": {"Code", "Message"}, "RequestId": id}}`.
pub fn failure(request_id: &str, error: &ApiError) -> Response {
    let body = error.body();
    respond(json!({
        "Response": {
            "Error": { "Code": body.code, "Message": body.message },
            "RequestId": request_id,
        }
    }))
}

fn respond(v: Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
