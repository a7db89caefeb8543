//! What the router tests share: two applications and one credential, a room-control double
//! that knows which rooms are live, an in-memory store, a fixed clock, TC3-signed requests and
//! envelope checks.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, Response};
use hearth_api::signature::tc3;
use hearth_api::{ApiState, RoomControl, RoomError, RoomFuture, Tenants};
use hearth_store::{AppRecord, CallRecord, CredentialRecord, NewSession, SqliteStore, Store};
use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs, UserId};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub const APP: SdkAppId = SdkAppId(1400000001);
pub const OTHER_APP: SdkAppId = SdkAppId(1400000002);
pub const ID: &str = "AKIDtest";
pub const KEY: &str = "test-secret-key";
pub const NOW: i64 = 1_800_000_000;
pub const HOST: &str = "127.0.0.1:8080";

/// Records dismissals; rooms listed in `live` exist.
#[derive(Default)]
pub struct Rooms {
    pub live: Mutex<Vec<(SdkAppId, RoomKey)>>,
}

impl RoomControl for Rooms {
    fn users(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, Vec<hearth_api::LiveUser>> {
        Box::pin(async move {
            if !self.live.lock().unwrap().contains(&(app, room)) {
                return Err(RoomError::NotFound);
            }
            Ok(Vec::new())
        })
    }

    fn dismiss(&self, app: SdkAppId, room: RoomKey) -> RoomFuture<'_, ()> {
        Box::pin(async move {
            let mut live = self.live.lock().unwrap();
            let before = live.len();
            live.retain(|r| *r != (app, room.clone()));
            if live.len() == before {
                Err(RoomError::NotFound)
            } else {
                Ok(())
            }
        })
    }
    fn remove_users(
        &self,
        app: SdkAppId,
        room: RoomKey,
        users: Vec<UserId>,
    ) -> RoomFuture<'_, Vec<UserId>> {
        Box::pin(async move {
            let live = self.live.lock().unwrap();
            if !live.contains(&(app, room)) {
                return Err(RoomError::NotFound);
            }
            Ok(users
                .into_iter()
                .filter(|u| u.as_str() != "ghost")
                .collect())
        })
    }

    fn block_user(
        &self,
        app: SdkAppId,
        room: RoomKey,
        user: UserId,
        _block: hearth_api::Block,
    ) -> RoomFuture<'_, ()> {
        Box::pin(async move {
            let live = self.live.lock().unwrap();
            if !live.contains(&(app, room)) {
                return Err(RoomError::NotFound);
            }
            if user.as_str() == "ghost" {
                return Err(RoomError::UserNotFound);
            }
            Ok(())
        })
    }
}

pub struct Harness {
    pub store: Arc<SqliteStore>,
    pub rooms: Arc<Rooms>,
    pub app: axum::Router,
}

pub fn harness() -> Harness {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let rooms = Arc::new(Rooms::default());
    let apps = [APP, OTHER_APP]
        .map(|a| AppRecord {
            sdk_app_id: a,
            secret_key: "k".repeat(32),
            admins: vec![],
            created_at: UnixSecs(0),
        })
        .to_vec();
    let creds = vec![CredentialRecord {
        secret_id: ID.into(),
        secret_key: KEY.into(),
        apps: vec![APP],
        created_at: UnixSecs(0),
    }];
    let mut state = ApiState::new(
        store.clone(),
        Arc::new(Tenants::new(apps, creds)),
        rooms.clone(),
    );
    state.clock = Arc::new(|| UnixSecs(NOW));
    // Many requests per test; the limiter has its own tests.
    state.rate_limiter = None;
    Harness {
        store,
        rooms,
        app: hearth_api::router(Arc::new(state)),
    }
}

pub fn signed(action: &str, body: &Value, timestamp: i64) -> Request<Body> {
    signed_for("trtc", "2019-07-22", action, body, timestamp)
}

pub fn signed_for(
    service: &str,
    version: &str,
    action: &str,
    body: &Value,
    timestamp: i64,
) -> Request<Body> {
    let body = body.to_string();
    let ct = "application/json; charset=utf-8";
    let date = tc3::utc_date(timestamp).unwrap();
    let headers = [
        ("content-type".to_owned(), ct.to_owned()),
        ("host".to_owned(), HOST.to_owned()),
    ];
    let canonical = tc3::canonical_request(&tc3::CanonicalInput {
        method: "POST",
        query: "",
        headers: &headers,
        payload_hash: &tc3::sha256_hex(body.as_bytes()),
    });
    let sts = tc3::string_to_sign(&timestamp.to_string(), &date, service, &canonical);
    let sig = tc3::sign(KEY, &date, service, &sts);
    Request::post("/")
        .header("host", HOST)
        .header("content-type", ct)
        .header("x-tc-action", action)
        .header("x-tc-version", version)
        .header("x-tc-region", "ap-guangzhou")
        .header("x-tc-timestamp", timestamp.to_string())
        .header(
            "authorization",
            format!("TC3-HMAC-SHA256 Credential={ID}/{date}/{service}/tc3_request, SignedHeaders=content-type;host, Signature={sig}"),
        )
        .body(Body::from(body))
        .unwrap()
}

pub async fn call(h: &Harness, req: Request<Body>) -> Value {
    let resp: Response<Body> = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["Response"]["RequestId"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    v["Response"].clone()
}

pub fn code(r: &Value) -> &str {
    r["Error"]["Code"].as_str().unwrap_or("")
}

pub fn add_call(
    store: &SqliteStore,
    room: RoomKey,
    created: i64,
    users: &[(&str, i64, Option<i64>)],
) -> CommId {
    let comm_id = CommId::new(APP, &room, UnixSecs(created));
    store
        .start_call(&CallRecord {
            comm_id: comm_id.clone(),
            sdk_app_id: APP,
            room,
            creator: users[0].0.into(),
            created_at: UnixSecs(created),
            destroyed_at: None,
        })
        .unwrap();
    for (user, joined, left) in users {
        let id = store
            .open_session(&NewSession {
                comm_id: comm_id.clone(),
                sdk_app_id: APP,
                user_id: UserId((*user).into()),
                joined_at: UnixSecs(*joined),
                device_type: "Web".into(),
                sdk_version: "hearth-test".into(),
                client_ip: "10.0.0.7".into(),
            })
            .unwrap();
        if let Some(t) = left {
            store
                .close_session(id, UnixSecs(*t), hearth_store::LeaveReason::Normal)
                .unwrap();
        }
    }
    comm_id
}
