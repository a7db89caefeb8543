//! The web pages: the demo page at `/`, the operator console at `/console` (its sign-in and
//! action calls go to the API) and the browser SDK under `/sdk/`, served from the `web/`
//! directory as plain files (no build step), and the dev-only UserSig endpoint the demo page
//! uses in the zero-config setup. `/` is shared with the TencentCloud API: a browser's
//! plain `GET /` (no query, no `X-TC-Action`, no `Authorization`, `Accept: text/html`) is the
//! page; everything else is the API.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use hearth_auth::{make_usersig, UserSigParams};
use hearth_types::{SdkAppId, UnixSecs};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Dev UserSigs are valid for one day.
const DEV_USERSIG_SECS: u32 = 86_400;

/// Applications whose keys the dev endpoint may use (only in the zero-config setup).
#[derive(Clone, Default)]
pub struct DevKeys(pub Arc<BTreeMap<SdkAppId, String>>);

/// `/` (page or API), `/v4/*` (the IM-style REST APIs), `/console` (the page; its session and
/// action calls to the API), `/sdk/*`, the pages' assets, and `/dev/usersig` when `dev` has
/// keys.
pub fn routes(web_dir: PathBuf, api: Router, dev: DevKeys) -> Router {
    let to_api = api.clone();
    let im = any(move |req: Request<Body>| {
        let api = to_api.clone();
        async move {
            api.oneshot(req)
                .await
                .map(IntoResponse::into_response)
                .unwrap_or_else(|e| e.into_response())
        }
    });
    let index = web_dir.join("index.html");
    let page = ServeFile::new(index);
    let root = any(move |req: Request<Body>| {
        let (api, page) = (api.clone(), page.clone());
        async move {
            let is_page = req.method() == Method::GET
                && req.uri().query().is_none_or(str::is_empty)
                && !req.headers().contains_key("x-tc-action")
                && !req.headers().contains_key(header::AUTHORIZATION)
                && req
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|a| a.contains("text/html"));
            if is_page {
                page.oneshot(req)
                    .await
                    .map(IntoResponse::into_response)
                    .unwrap_or_else(|e| e.into_response())
            } else {
                api.oneshot(req)
                    .await
                    .map(IntoResponse::into_response)
                    .unwrap_or_else(|e| e.into_response())
            }
        }
    });
    let console_page = ServeFile::new(web_dir.join("console").join("index.html"));
    let mut r = Router::new()
        .route("/", root)
        .route("/v4/{*rest}", im.clone())
        .route("/console/session", im.clone())
        .route("/console/api/{*rest}", im)
        .route_service("/console", console_page.clone())
        .route_service("/console/", console_page)
        .fallback_service(ServeDir::new(web_dir));
    if !dev.0.is_empty() {
        r = r.route("/dev/usersig", get(dev_usersig).with_state(dev));
    }
    r
}

#[derive(Deserialize)]
struct DevQuery {
    sdkappid: Option<u32>,
    userid: Option<String>,
}

async fn dev_usersig(State(dev): State<DevKeys>, Query(q): Query<DevQuery>) -> Response {
    let app = q
        .sdkappid
        .map(SdkAppId)
        .or_else(|| dev.0.keys().next().copied());
    let Some(app) = app else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(key) = dev.0.get(&app) else {
        return (StatusCode::NOT_FOUND, "unknown sdkappid").into_response();
    };
    let Some(user) = q.userid.filter(|u| !u.is_empty() && u.len() <= 32) else {
        return Json(serde_json::json!({ "sdkappid": app.0 })).into_response();
    };
    let sig = make_usersig(&UserSigParams {
        sdk_app_id: app,
        key,
        identifier: &user,
        expire_secs: DEV_USERSIG_SECS,
        now: UnixSecs::now(),
        userbuf: None,
    });
    Json(serde_json::json!({ "sdkappid": app.0, "userid": user, "usersig": sig })).into_response()
}
