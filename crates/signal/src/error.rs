//! Errors of the client edge and the one table mapping them to HTTP statuses and messages.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hearth_sfu::SfuError;

/// Retry-After of a join refused because the media server is at capacity.
const FULL_RETRY_AFTER_SECS: &str = "5";

#[derive(Debug)]
pub enum EdgeError {
    BadRequest(String),
    Unauthorized(&'static str),
    Forbidden(&'static str),
    NotFound(&'static str),
    UnsupportedMediaType,
    Sfu(SfuError),
}

impl From<SfuError> for EdgeError {
    fn from(e: SfuError) -> Self {
        EdgeError::Sfu(e)
    }
}

impl IntoResponse for EdgeError {
    fn into_response(self) -> Response {
        let mut retry_after = false;
        let (status, message) = match self {
            EdgeError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            EdgeError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_owned()),
            EdgeError::Forbidden(m) => (StatusCode::FORBIDDEN, m.to_owned()),
            EdgeError::NotFound(m) => (StatusCode::NOT_FOUND, m.to_owned()),
            EdgeError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/sdp".to_owned(),
            ),
            EdgeError::Sfu(e) => {
                let status = match e {
                    SfuError::BadSdp(_)
                    | SfuError::NoSupportedCodec
                    | SfuError::WrongDirection(_)
                    | SfuError::BadMessage(_) => StatusCode::BAD_REQUEST,
                    SfuError::RateLimited(_) | SfuError::TooManySessions(_) => {
                        StatusCode::TOO_MANY_REQUESTS
                    }
                    SfuError::PublisherNotFound
                    | SfuError::SessionNotFound
                    | SfuError::RoomNotFound
                    | SfuError::UserNotFound => StatusCode::NOT_FOUND,
                    SfuError::Forbidden(_) => StatusCode::FORBIDDEN,
                    SfuError::Unavailable | SfuError::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
                };
                retry_after = matches!(e, SfuError::Full(_));
                (status, e.to_string())
            }
        };
        let mut r = (status, format!("{message}\n")).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if retry_after {
            // A full server: come back (or go elsewhere) after a while.
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(FULL_RETRY_AFTER_SECS),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}
