//! Call-quality monitoring actions answered from the store: rooms (`DescribeRoomInfo`), users of
//! a call (`DescribeUserInfo`) and daily scale (`DescribeScaleInfo`). Spec §2.3.26–2.3.31.

use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
use crate::window;
use hearth_store::{CallQuery, SessionQuery, SessionRecord};
use hearth_types::{CommId, SdkAppId, UnixSecs, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// DescribeRoomInfo: at most 24 hours per query.
const ROOM_INFO_MAX_SPAN_SECS: i64 = 24 * 3600;
/// DescribeUserInfo: at most 4 hours per query.
pub(super) const USER_INFO_MAX_SPAN_SECS: i64 = 4 * 3600;
pub(super) const MAX_PAGE_SIZE: i64 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeRoomInfo {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "StartTime", deserialize_with = "int::de")]
    start_time: i64,
    #[serde(rename = "EndTime", deserialize_with = "int::de")]
    end_time: i64,
    #[serde(rename = "RoomId", default)]
    room_id: Option<String>,
    #[serde(rename = "PageNumber", default, deserialize_with = "int::opt")]
    page_number: Option<i64>,
    #[serde(rename = "PageSize", default, deserialize_with = "int::opt")]
    page_size: Option<i64>,
}

#[derive(Serialize)]
struct RoomState {
    #[serde(rename = "CommId")]
    comm_id: String,
    #[serde(rename = "RoomString")]
    room_string: String,
    #[serde(rename = "CreateTime")]
    create_time: i64,
    /// 0 while the room is alive.
    #[serde(rename = "DestroyTime")]
    destroy_time: i64,
    #[serde(rename = "IsFinished")]
    is_finished: bool,
    #[serde(rename = "UserId")]
    user_id: String,
}

#[derive(Serialize)]
struct RoomList {
    #[serde(rename = "Total")]
    total: u64,
    #[serde(rename = "RoomList")]
    room_list: Vec<RoomState>,
}

pub async fn describe_room_info(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: DescribeRoomInfo = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    window::check(
        req.start_time,
        req.end_time,
        Some(ROOM_INFO_MAX_SPAN_SECS),
        ctx.now,
    )?;
    let (offset, limit) = window::page(req.page_number, req.page_size, 10, MAX_PAGE_SIZE)?;
    let q = CallQuery {
        sdk_app_id: app,
        start: UnixSecs(req.start_time),
        end: UnixSecs(req.end_time),
        room_string: req.room_id.filter(|r| !r.is_empty()),
        offset,
        limit,
    };
    let page = ctx.store(move |s| s.calls_in_window(&q)).await?;
    fields(&RoomList {
        total: page.total,
        room_list: page
            .items
            .into_iter()
            .map(|c| RoomState {
                comm_id: c.comm_id.0,
                room_string: c.room.as_string(),
                create_time: c.created_at.0,
                destroy_time: c.destroyed_at.map_or(0, |t| t.0),
                is_finished: c.destroyed_at.is_some(),
                user_id: c.creator,
            })
            .collect(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeUserInfo {
    #[serde(rename = "CommId")]
    comm_id: String,
    #[serde(rename = "StartTime", deserialize_with = "int::de")]
    start_time: i64,
    #[serde(rename = "EndTime", deserialize_with = "int::de")]
    end_time: i64,
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "UserIds", default)]
    user_ids: Option<Vec<String>>,
    #[serde(rename = "PageNumber", default, deserialize_with = "int::opt")]
    page_number: Option<i64>,
    #[serde(rename = "PageSize", default, deserialize_with = "int::opt")]
    page_size: Option<i64>,
}

#[derive(Serialize)]
pub(super) struct UserInformation {
    #[serde(rename = "RoomStr")]
    room_str: String,
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "JoinTs")]
    join_ts: i64,
    #[serde(rename = "LeaveTs")]
    leave_ts: i64,
    #[serde(rename = "DeviceType")]
    device_type: String,
    #[serde(rename = "SdkVersion")]
    sdk_version: String,
    #[serde(rename = "ClientIp")]
    client_ip: String,
    #[serde(rename = "Finished")]
    finished: bool,
}

#[derive(Serialize)]
struct UserList {
    #[serde(rename = "Total")]
    total: u64,
    #[serde(rename = "UserList")]
    user_list: Vec<UserInformation>,
}

/// Checks that a CommId has the documented shape and belongs to `app`.
pub(crate) fn comm_id_of(app: SdkAppId, raw: String) -> Result<CommId, ApiError> {
    let id = CommId(raw);
    match id.sdk_app_id() {
        Some(owner) if owner == app => Ok(id),
        Some(_) => Err(ApiError::InvalidParameter(
            "The CommId belongs to another SdkAppId.".into(),
        )),
        None => Err(ApiError::InvalidParameter(
            "CommId must look like SdkAppId_RoomNumber_CreateTime (from DescribeRoomInfo).".into(),
        )),
    }
}

pub async fn describe_user_info(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: DescribeUserInfo = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    window::check(
        req.start_time,
        req.end_time,
        Some(USER_INFO_MAX_SPAN_SECS),
        ctx.now,
    )?;
    let comm_id = comm_id_of(app, req.comm_id)?;
    let user_ids = req.user_ids.unwrap_or_default();
    if user_ids.len() > MAX_PAGE_SIZE as usize {
        return Err(ApiError::InvalidParameterOf {
            detail: "UserIds",
            message: "UserIds may list at most 100 users.".into(),
        });
    }
    let (offset, limit) = window::page(req.page_number, req.page_size, 6, MAX_PAGE_SIZE)?;
    let q = SessionQuery {
        sdk_app_id: app,
        comm_id,
        start: UnixSecs(req.start_time),
        end: UnixSecs(req.end_time),
        user_ids: user_ids.into_iter().map(UserId).collect(),
        offset,
        limit,
    };
    let page = ctx.store(move |s| s.sessions_of_call(&q)).await?;
    let now = ctx.now;
    fields(&UserList {
        total: page.total,
        user_list: page
            .items
            .into_iter()
            .map(|s| user_information(s, now))
            .collect(),
    })
}

/// A session as the spec's UserInformation: LeaveTs is the current time while still in the room.
pub(super) fn user_information(s: SessionRecord, now: UnixSecs) -> UserInformation {
    UserInformation {
        room_str: s.room.as_string(),
        user_id: s.user_id.0,
        join_ts: s.joined_at.0,
        leave_ts: s.left_at.unwrap_or(now).0,
        device_type: s.device_type,
        sdk_version: s.sdk_version,
        client_ip: s.client_ip,
        finished: s.left_at.is_some(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeScaleInfo {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "StartTime", deserialize_with = "int::de")]
    start_time: i64,
    #[serde(rename = "EndTime", deserialize_with = "int::de")]
    end_time: i64,
}

#[derive(Serialize)]
struct ScaleInfomation {
    #[serde(rename = "Time")]
    time: i64,
    #[serde(rename = "UserNumber")]
    user_number: u64,
    #[serde(rename = "UserCount")]
    user_count: u64,
    #[serde(rename = "RoomNumbers")]
    room_numbers: u64,
}

#[derive(Serialize)]
struct ScaleList {
    #[serde(rename = "Total")]
    total: u64,
    #[serde(rename = "ScaleList")]
    scale_list: Vec<ScaleInfomation>,
}

/// Daily numbers for the UTC days from the one holding StartTime up to EndTime, excluding the
/// current day (which is still being counted).
pub async fn describe_scale_info(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: DescribeScaleInfo = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    window::check(req.start_time, req.end_time, None, ctx.now)?;
    let from = UnixSecs(req.start_time).day_start();
    let to = UnixSecs(req.end_time.min(ctx.now.day_start().0));
    let days = if to > from {
        ctx.store(move |s| s.daily_scale(app, from, to)).await?
    } else {
        Vec::new()
    };
    fields(&ScaleList {
        total: days.len() as u64,
        scale_list: days
            .into_iter()
            .map(|d| ScaleInfomation {
                time: d.day_start.0,
                user_number: d.users,
                user_count: d.entries,
                room_numbers: d.rooms,
            })
            .collect(),
    })
}
