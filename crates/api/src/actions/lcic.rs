//! LCIC `GetRoomEvent` (lcic 2022-08-17, spec §6.1): the events of a numeric room, built from the
//! calls and sessions the store keeps.
//!
//! Decisions where the spec leaves room (see also the README):
//! - Every call of the room still kept (the retention window) is covered, oldest first; a
//!   room that reopened shows each lifetime's RoomStart … RoomEnd in turn.
//! - RoomStart = call created (UserId = the user whose entry created it), RoomEnd = call finished
//!   (no UserId), MemberJoin / MemberQuit = a session's join / leave. Timestamps in seconds; at
//!   equal seconds RoomStart < MemberJoin < MemberQuit < RoomEnd.
//! - `Total` counts all events of the room whatever the Keyword. Without Keyword one page
//!   (`Page` from 1, `Limit` ≤ 200) is returned; with Keyword every matching event is (the
//!   spec: Page/Limit are "valid only if Keyword is empty").
//! - CameraOn/Off, MicOn/Off and ScreenOn/Off come from the users' video/audio on/off events
//!   of the call (the screen share is the sub stream); `RecordFinish` is a recording task of
//!   the room ending, with its robot as UserId, Duration (s), RecordSize (bytes stored) and
//!   RecordUrl (the first file: its object URL in the bucket, or its signed VOD URL).
//! - `ResourceNotFound.Room` when the room has no call in the store (never existed, or older
//!   than the retention), and for RoomIds no numeric room can have.

use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
use hearth_store::{CallQuery, EventQuery, SessionQuery};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const MAX_LIMIT: i64 = 200;
/// Calls of one room read at most (oldest first); retention keeps far fewer in practice.
const MAX_CALLS: u64 = 10_000;
const KEYWORDS: [&str; 5] = [
    "RoomStart",
    "RoomEnd",
    "MemberJoin",
    "MemberQuit",
    "RecordFinish",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetRoomEvent {
    #[serde(rename = "RoomId", deserialize_with = "int::de")]
    room_id: i64,
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "Page", deserialize_with = "int::de")]
    page: i64,
    #[serde(rename = "Limit", deserialize_with = "int::de")]
    limit: i64,
    #[serde(rename = "Keyword", default)]
    keyword: Option<String>,
}

#[derive(Serialize)]
struct EventDataInfo {
    #[serde(rename = "RoomId")]
    room_id: u32,
    #[serde(rename = "UserId")]
    user_id: Option<String>,
    #[serde(rename = "Duration", skip_serializing_if = "Option::is_none")]
    duration: Option<i64>,
    #[serde(rename = "RecordSize", skip_serializing_if = "Option::is_none")]
    record_size: Option<u64>,
    #[serde(rename = "RecordUrl", skip_serializing_if = "Option::is_none")]
    record_url: Option<String>,
}

#[derive(Serialize)]
struct EventInfo {
    #[serde(rename = "Timestamp")]
    timestamp: i64,
    #[serde(rename = "EventType")]
    event_type: &'static str,
    #[serde(rename = "EventData")]
    event_data: EventDataInfo,
}

#[derive(Serialize)]
struct RoomEvents {
    #[serde(rename = "Total")]
    total: u64,
    #[serde(rename = "Events")]
    events: Vec<EventInfo>,
}

/// LCIC lists only `InvalidParameter.SdkAppId` among the detailed codes; the others are plain.
fn lcic_error(e: ApiError) -> ApiError {
    match e {
        ApiError::MissingParameterOf { name, .. } => ApiError::MissingParameter(name),
        ApiError::InvalidParameterOf {
            detail: "SdkAppId",
            message,
        } => ApiError::InvalidParameterOf {
            detail: "SdkAppId",
            message,
        },
        ApiError::InvalidParameterOf { message, .. } => ApiError::InvalidParameter(message),
        other => other,
    }
}

fn rank(event_type: &str) -> u8 {
    match event_type {
        "RoomStart" => 0,
        "MemberJoin" => 1,
        "MemberQuit" | "RecordFinish" => 3,
        "RoomEnd" => 4,
        _ => 2,
    }
}

/// The device events of GetRoomEvent from WebRTC event IDs (§4.2); ParamOne 1 marks the sub
/// stream (screen share).
fn device_event(event_id: u32, param_one: i64) -> Option<&'static str> {
    Some(match (event_id, param_one == 1) {
        (32768, false) => "CameraOn",
        (32770, false) => "CameraOff",
        (32768, true) => "ScreenOn",
        (32770, true) => "ScreenOff",
        (32769, _) => "MicOn",
        (32771, _) => "MicOff",
        _ => return None,
    })
}

pub async fn get_room_event(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: GetRoomEvent = decode(params).map_err(lcic_error)?;
    let app = SdkAppId(req.sdk_app_id);
    if ctx.state.tenants.app(app).is_none() {
        return Err(ApiError::InvalidParameterOf {
            detail: "SdkAppId",
            message: "SdkAppId is incorrect.".into(),
        });
    }
    ctx.check_app(app)?;
    if req.page < 1 {
        return Err(ApiError::InvalidParameter("Page starts from 1.".into()));
    }
    if !(1..=MAX_LIMIT).contains(&req.limit) {
        return Err(ApiError::InvalidParameter(format!(
            "Limit must be between 1 and {MAX_LIMIT}."
        )));
    }
    let keyword = match req.keyword.as_deref() {
        None | Some("") => None,
        Some(k) => match KEYWORDS.iter().find(|w| **w == k) {
            Some(w) => Some(*w),
            None => {
                return Err(ApiError::InvalidParameter(format!(
                    "Keyword must be one of {}.",
                    KEYWORDS.join(", ")
                )))
            }
        },
    };
    let room = u64::try_from(req.room_id)
        .ok()
        .and_then(|n| RoomKey::num(n).ok())
        .ok_or(ApiError::LcicRoomNotFound)?;
    let RoomKey::Num(room_no) = room else {
        return Err(ApiError::LcicRoomNotFound);
    };
    let mut events: Vec<EventInfo> = ctx
        .store(move |s| {
            let calls = s.calls_in_window(&CallQuery {
                sdk_app_id: app,
                start: UnixSecs(0),
                end: UnixSecs(i64::MAX),
                room_string: Some(room.as_string()),
                offset: 0,
                limit: MAX_CALLS,
            })?;
            let mut out = Vec::new();
            for call in calls.items.into_iter().filter(|c| c.room == room) {
                let data = |user_id: Option<String>| EventDataInfo {
                    room_id: room_no,
                    user_id,
                    duration: None,
                    record_size: None,
                    record_url: None,
                };
                let mut these = vec![EventInfo {
                    timestamp: call.created_at.0,
                    event_type: "RoomStart",
                    event_data: data(Some(call.creator.clone())),
                }];
                let sessions = s.sessions_of_call(&SessionQuery {
                    sdk_app_id: app,
                    comm_id: call.comm_id.clone(),
                    start: UnixSecs(0),
                    end: UnixSecs(i64::MAX),
                    user_ids: vec![],
                    offset: 0,
                    limit: u64::MAX,
                })?;
                let mut users: Vec<_> = sessions.items.iter().map(|s| s.user_id.clone()).collect();
                users.sort_by(|a, b| a.0.cmp(&b.0));
                users.dedup_by(|a, b| a.0 == b.0);
                for user in users {
                    let evs = s.user_events(&EventQuery {
                        sdk_app_id: app,
                        comm_id: call.comm_id.clone(),
                        user_id: user.clone(),
                        start_ms: 0,
                        end_ms: i64::MAX,
                    })?;
                    for e in evs {
                        if let Some(t) = device_event(e.event_id, e.param_one) {
                            these.push(EventInfo {
                                timestamp: e.time_ms / 1000,
                                event_type: t,
                                event_data: data(Some(user.0.clone())),
                            });
                        }
                    }
                }
                for s in sessions.items {
                    these.push(EventInfo {
                        timestamp: s.joined_at.0,
                        event_type: "MemberJoin",
                        event_data: data(Some(s.user_id.0.clone())),
                    });
                    if let Some(left) = s.left_at {
                        these.push(EventInfo {
                            timestamp: left.0,
                            event_type: "MemberQuit",
                            event_data: data(Some(s.user_id.0)),
                        });
                    }
                }
                if let Some(end) = call.destroyed_at {
                    these.push(EventInfo {
                        timestamp: end.0,
                        event_type: "RoomEnd",
                        event_data: data(None),
                    });
                }
                let ended = call.destroyed_at.unwrap_or(UnixSecs(i64::MAX));
                for t in
                    s.tasks_ended_between(app, "recording", call.created_at, UnixSecs(i64::MAX))?
                {
                    // A task belongs to the call it started in (it may end after the call).
                    let started_here = t.created_at >= call.created_at && t.created_at <= ended;
                    let Some(end) = t
                        .ended_at
                        .filter(|_| t.room.as_ref() == Some(&room) && started_here)
                    else {
                        continue;
                    };
                    let v: Value = serde_json::from_str(&t.params_json).unwrap_or_default();
                    these.push(EventInfo {
                        timestamp: end.0,
                        event_type: "RecordFinish",
                        event_data: EventDataInfo {
                            room_id: room_no,
                            user_id: v.get("user_id").and_then(Value::as_str).map(str::to_owned),
                            duration: Some((end.0 - t.created_at.0).max(0)),
                            record_size: v.get("bytes").and_then(Value::as_u64),
                            record_url: v.get("url").and_then(Value::as_str).map(str::to_owned),
                        },
                    });
                }
                // Within one call; calls themselves follow each other oldest first.
                these.sort_by_key(|e| (e.timestamp, rank(e.event_type)));
                out.push(these);
            }
            Ok(out)
        })
        .await?
        .into_iter()
        .flatten()
        .collect();
    if events.is_empty() {
        return Err(ApiError::LcicRoomNotFound);
    }
    let total = events.len() as u64;
    let events = match keyword {
        Some(k) => {
            events.retain(|e| e.event_type == k);
            events
        }
        None => {
            let skip =
                usize::try_from((req.page - 1).saturating_mul(req.limit)).unwrap_or(usize::MAX);
            events
                .into_iter()
                .skip(skip)
                .take(req.limit as usize)
                .collect()
        }
    };
    fields(&RoomEvents { total, events })
}
