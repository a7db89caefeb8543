//! The console-only actions, answered only under `/console/api/` (not part of the TRTC API):
//! `DescribeLiveUsers` (who is in a live room now, with role and streams, from the media plane)
//! and `DescribeMediaTasks` (an application's recording, relay and ingest tasks, newest first,
//! one page at a time, with their state and files).

use crate::actions::{fields, Ctx};
use crate::catalog::RateLimit;
use crate::error::ApiError;
use crate::params::{decode, int};
use hearth_types::{RoomKey, SdkAppId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const LIMIT: RateLimit = RateLimit {
    requests: 20,
    per_secs: 1,
};
const MAX_PAGE: u64 = 100;

/// The console-only action of this name, with its rate limit.
pub fn find(name: &str) -> Option<(&'static str, RateLimit)> {
    ["DescribeLiveUsers", "DescribeMediaTasks"]
        .into_iter()
        .find(|n| *n == name)
        .map(|n| (n, LIMIT))
}

pub async fn run(ctx: &Ctx, name: &str, params: Value) -> Result<Map<String, Value>, ApiError> {
    match name {
        "DescribeLiveUsers" => live_users(ctx, params).await,
        "DescribeMediaTasks" => media_tasks(ctx, params).await,
        other => Err(ApiError::InvalidAction(other.to_owned())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveUsersParams {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    /// The room's ID as DescribeRoomInfo gives it (`RoomString`).
    #[serde(rename = "RoomId")]
    room_id: String,
    /// 1 (the default): a numeric room, 0: a string room (as the recording and ingest actions'
    /// `RoomIdType`).
    #[serde(rename = "RoomIdType", default, deserialize_with = "int::opt")]
    room_id_type: Option<u8>,
}

#[derive(Serialize)]
struct LiveUsersOut {
    #[serde(rename = "Users")]
    users: Vec<crate::LiveUser>,
}

async fn live_users(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let p: LiveUsersParams = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let bad = |e: hearth_types::RoomKeyError| {
        ApiError::InvalidRoomIdValue(format!("Invalid RoomId: {e}."))
    };
    let room = match p.room_id_type.unwrap_or(1) {
        1 => {
            let n = p.room_id.trim().parse().map_err(|_| {
                ApiError::InvalidRoomIdValue("RoomId must be a number for RoomIdType 1.".into())
            })?;
            RoomKey::num(n).map_err(bad)?
        }
        0 => RoomKey::string(&p.room_id).map_err(bad)?,
        _ => {
            return Err(ApiError::InvalidParameter(
                "RoomIdType must be 0 (string) or 1 (integer).".into(),
            ))
        }
    };
    let users = ctx.state.rooms.users(app, room).await?;
    fields(&LiveUsersOut { users })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksParams {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    /// From 0, as DescribeRoomInfo's.
    #[serde(rename = "PageNumber", default, deserialize_with = "int::opt")]
    page_number: Option<u64>,
    #[serde(rename = "PageSize", default, deserialize_with = "int::opt")]
    page_size: Option<u64>,
}

#[derive(Serialize)]
struct TaskOut {
    #[serde(rename = "TaskId")]
    task_id: String,
    /// `recording`, `relay` or `ingest`.
    #[serde(rename = "Kind")]
    kind: String,
    #[serde(rename = "State")]
    state: String,
    #[serde(rename = "RoomId")]
    room_id: Option<String>,
    #[serde(rename = "CreateTime")]
    created_at: i64,
    /// 0 while it runs.
    #[serde(rename = "EndTime")]
    ended_at: i64,
    /// Why it ended (`reason` and `message` of the task), once it has.
    #[serde(rename = "Outcome")]
    outcome: Option<String>,
    /// The files it stored (FileName, UserId, TrackType, BeginTimeStamp) and the URL of the
    /// first (a signed VOD link or the storage's), once it has ended.
    #[serde(rename = "Files")]
    files: Value,
    #[serde(rename = "Url")]
    url: Option<String>,
}

#[derive(Serialize)]
struct TasksOut {
    #[serde(rename = "Total")]
    total: u64,
    #[serde(rename = "Tasks")]
    tasks: Vec<TaskOut>,
}

async fn media_tasks(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let p: TasksParams = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let size = p.page_size.unwrap_or(20);
    if size == 0 || size > MAX_PAGE {
        return Err(ApiError::InvalidParameter(format!(
            "PageSize must be 1 to {MAX_PAGE}."
        )));
    }
    let offset = p.page_number.unwrap_or(0).saturating_mul(size);
    let page = ctx.store(move |s| s.tasks_page(app, offset, size)).await?;
    let tasks = page
        .items
        .into_iter()
        .map(|t| {
            let v: Value = serde_json::from_str(&t.params_json).unwrap_or(Value::Null);
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            let outcome = match (text("reason"), text("message")) {
                (Some(r), Some(m)) if !m.is_empty() => Some(format!("{r}: {m}")),
                (Some(r), _) => Some(r),
                _ => None,
            };
            TaskOut {
                task_id: t.task_id,
                kind: t.kind,
                state: t.state,
                room_id: t.room.map(|r| r.to_string()),
                created_at: t.created_at.0,
                ended_at: t.ended_at.map_or(0, |e| e.0),
                outcome,
                files: v.get("files").cloned().unwrap_or(Value::Array(Vec::new())),
                url: text("url"),
            }
        })
        .collect();
    fields(&TasksOut {
        total: page.total,
        tasks,
    })
}
