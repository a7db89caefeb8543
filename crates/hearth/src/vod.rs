//! `GET /vod/<SdkAppId>/<TaskId>/<file>?expires=<unix>&sign=<hex>`: recording files kept in
//! Hearth's VOD store (CloudVod), served only through the signed, expiring URLs the
//! recording API hands out. Anything else is 403.

use axum::extract::{Query, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hearth_tasks::Vod;
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Deserialize)]
struct Signed {
    expires: Option<u64>,
    sign: Option<String>,
}

pub fn routes(vod: Vod) -> Router {
    Router::new().route(
        "/vod/{*rest}",
        get(move |Query(q): Query<Signed>, req: Request| {
            let vod = vod.clone();
            async move { serve(&vod, q, req).await }
        }),
    )
}

async fn serve(vod: &Vod, q: Signed, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let now = hearth_types::UnixSecs::now().0.max(0) as u64;
    let file = match (q.expires, q.sign.as_deref()) {
        (Some(e), Some(s)) => vod.authorize(&path, e, s, now),
        _ => None,
    };
    let Some(file) = file else {
        return (
            StatusCode::FORBIDDEN,
            "a signed URL that has not expired is needed\n",
        )
            .into_response();
    };
    match tower_http::services::ServeFile::new(file)
        .oneshot(req)
        .await
    {
        Ok(r) => r.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
