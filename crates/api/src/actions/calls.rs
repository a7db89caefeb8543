//! What happened inside one call: a user's events (`DescribeUserEvent`, spec §2.3.28) and the
//! users with their quality series (`DescribeCallDetailInfo`, §2.3.29, and the legacy
//! `DescribeCallDetail` of seed 001, §2.3.L1).
//!
//! Decisions where the spec leaves room (see also the README):
//! - The CommId must name a call of `SdkAppId` (`InvalidParameter` otherwise, as in
//!   `DescribeUserInfo`); an unknown CommId of the right application yields empty results.
//! - DescribeUserEvent: `RoomId` must be the room of that call as TRTC prints it
//!   (`InvalidParameter` otherwise); a `UserId` that never entered the call yields `Data: []`.
//!   A missing SdkAppId is `MissingParameter.CommIdOrSdkAppId` and a malformed one
//!   `InvalidParameter.SdkAppid`, the codes its page lists.
//! - DescribeCallDetailInfo: the quality series cover the users of the returned page; series are
//!   grouped by user (page order), metric (spec order), then peer (upstream `""` first).

use super::monitor::{comm_id_of, user_information, UserInformation, MAX_PAGE_SIZE};
use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
use crate::window;
use hearth_store::{EventQuery, QualityQuery, SessionQuery};
use hearth_types::{SdkAppId, UnixSecs, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The metrics of `DataType`, in the spec's order; `all` stands for every one.
use hearth_types::QUALITY_METRICS as METRICS;

/// With DataType: at most 1 hour, 6 users, 6 per page.
const DETAIL_MAX_SPAN_SECS: i64 = 3600;
const DETAIL_MAX_USERS: usize = 6;

fn missing(detail: &'static str, name: &str) -> ApiError {
    ApiError::MissingParameterOf {
        detail,
        name: name.to_owned(),
    }
}

// --- DescribeUserEvent -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeUserEvent {
    #[serde(rename = "CommId")]
    comm_id: String,
    #[serde(rename = "StartTime", deserialize_with = "int::de")]
    start_time: i64,
    #[serde(rename = "EndTime", deserialize_with = "int::de")]
    end_time: i64,
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "RoomId")]
    room_id: String,
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
}

#[derive(Serialize)]
struct EventMessage {
    #[serde(rename = "Type")]
    kind: u32,
    #[serde(rename = "Time")]
    time: i64,
    #[serde(rename = "EventId")]
    event_id: u32,
    #[serde(rename = "ParamOne")]
    param_one: i64,
    #[serde(rename = "ParamTwo")]
    param_two: i64,
}

#[derive(Serialize)]
struct EventList {
    #[serde(rename = "Content")]
    content: Vec<EventMessage>,
    #[serde(rename = "PeerId")]
    peer_id: String,
}

#[derive(Serialize)]
struct UserEvents {
    #[serde(rename = "Data")]
    data: Vec<EventList>,
}

/// The codes DescribeUserEvent's page lists in place of the generic ones.
fn user_event_error(e: ApiError) -> ApiError {
    match e {
        ApiError::MissingParameterOf {
            detail: "SdkAppId",
            name,
        } => ApiError::MissingParameterOf {
            detail: "CommIdOrSdkAppId",
            name,
        },
        ApiError::InvalidParameterOf {
            detail: "SdkAppId",
            message,
        } => ApiError::InvalidParameterOf {
            detail: "SdkAppid",
            message,
        },
        ApiError::InvalidParameterOf {
            detail: "RoomId",
            message,
        } => ApiError::InvalidParameter(message),
        other => other,
    }
}

/// `EventMessage.Type`: 2 (big video) for the video events of the WebRTC table, else 0.
fn stream_type(event_id: u32) -> u32 {
    match event_id {
        32768 | 32770 | 32773 | 32775 | 32776 | 32778 | 32780 | 32782 | 32784 | 32786 => 2,
        _ => 0,
    }
}

pub async fn describe_user_event(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: DescribeUserEvent = decode(params).map_err(user_event_error)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    if req.comm_id.is_empty() {
        return Err(missing("CommId", "CommId"));
    }
    if req.user_id.is_empty() {
        return Err(missing("UserId", "UserId"));
    }
    if req.room_id.is_empty() {
        return Err(missing("RoomId", "RoomId"));
    }
    window::check(req.start_time, req.end_time, None, ctx.now)?;
    let comm_id = comm_id_of(app, req.comm_id)?;
    let lookup = comm_id.clone();
    let Some(call) = ctx.store(move |s| s.call(app, &lookup)).await? else {
        return fields(&UserEvents { data: vec![] });
    };
    if call.room.as_string() != req.room_id {
        return Err(ApiError::InvalidParameter(
            "RoomId is not the room of the call named by CommId.".into(),
        ));
    }
    // An EndTime after the room's end means the room's end (its last second included).
    let end = call
        .destroyed_at
        .map_or(req.end_time, |d| req.end_time.min(d.0));
    if end < req.start_time {
        return fields(&UserEvents { data: vec![] });
    }
    let user = req.user_id;
    let q = EventQuery {
        sdk_app_id: app,
        comm_id,
        user_id: UserId(user.clone()),
        start_ms: req.start_time.saturating_mul(1000),
        end_ms: end.saturating_mul(1000).saturating_add(999),
    };
    let events = ctx.store(move |s| s.user_events(&q)).await?;
    let data = if events.is_empty() {
        vec![]
    } else {
        vec![EventList {
            content: events
                .into_iter()
                .map(|e| EventMessage {
                    kind: stream_type(e.event_id),
                    time: e.time_ms,
                    event_id: e.event_id,
                    param_one: e.param_one,
                    param_two: e.param_two,
                })
                .collect(),
            peer_id: user,
        }]
    };
    fields(&UserEvents { data })
}

// --- DescribeCallDetailInfo and DescribeCallDetail ------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeCallDetailInfo {
    #[serde(rename = "CommId")]
    comm_id: String,
    #[serde(rename = "StartTime", deserialize_with = "int::de")]
    start_time: i64,
    #[serde(rename = "EndTime", deserialize_with = "int::de")]
    end_time: i64,
    /// An Integer here; a String in the legacy action (both forms are accepted either way).
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "UserIds", default)]
    user_ids: Option<Vec<String>>,
    #[serde(rename = "DataType", default)]
    data_type: Option<Vec<String>>,
    #[serde(rename = "PageNumber", default, deserialize_with = "int::opt")]
    page_number: Option<i64>,
    #[serde(rename = "PageSize", default, deserialize_with = "int::opt")]
    page_size: Option<i64>,
}

#[derive(Serialize)]
struct TimeValue {
    #[serde(rename = "Time")]
    time: i64,
    #[serde(rename = "Value")]
    value: f64,
}

#[derive(Serialize)]
struct QualityData {
    #[serde(rename = "Content")]
    content: Vec<TimeValue>,
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "PeerId")]
    peer_id: String,
    #[serde(rename = "DataType")]
    data_type: String,
}

#[derive(Serialize)]
struct CallDetail {
    #[serde(rename = "Total")]
    total: u64,
    #[serde(rename = "UserList")]
    user_list: Vec<UserInformation>,
    #[serde(rename = "Data")]
    data: Vec<QualityData>,
}

/// The metrics asked for: `None` when DataType is absent or empty (user list only).
fn metrics_of(data_type: Option<Vec<String>>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(types) = data_type.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if types.iter().any(|t| t == "all") {
        return Ok(Some(METRICS.iter().map(|m| m.to_string()).collect()));
    }
    let mut out: Vec<String> = Vec::new();
    for t in types {
        if !METRICS.contains(&t.as_str()) {
            return Err(ApiError::InvalidParameter(format!(
                "DataType `{t}` is not one of all, {}.",
                METRICS.join(", ")
            )));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(Some(out))
}

/// The codes the legacy page (seed 001) lists: no PageNumber/PageSize/UserIds/EndTs details.
fn legacy_error(e: ApiError) -> ApiError {
    match e {
        ApiError::InvalidParameterOf {
            detail:
                "PageNumber" | "PageSize" | "UserIds" | "UserIdsMorethanSix" | "EndTs" | "UserId",
            message,
        } => ApiError::InvalidParameter(message),
        other => other,
    }
}

pub async fn describe_call_detail_info(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    call_detail(ctx, params, false).await
}

/// The legacy action: string SdkAppId/PageNumber/PageSize, a window of at most 1 hour always,
/// and at most 6 users per page whenever DataType or UserIds is given.
pub async fn describe_call_detail(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    call_detail(ctx, params, true).await.map_err(legacy_error)
}

async fn call_detail(
    ctx: &Ctx,
    params: Value,
    legacy: bool,
) -> Result<Map<String, Value>, ApiError> {
    let req: DescribeCallDetailInfo = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    if req.comm_id.is_empty() {
        return Err(missing("CommId", "CommId"));
    }
    let metrics = metrics_of(req.data_type)?;
    let user_ids = req.user_ids.unwrap_or_default();
    let limited = metrics.is_some() || (legacy && !user_ids.is_empty());
    let max_span = if metrics.is_some() || legacy {
        DETAIL_MAX_SPAN_SECS
    } else {
        super::monitor::USER_INFO_MAX_SPAN_SECS
    };
    window::check(req.start_time, req.end_time, Some(max_span), ctx.now)?;
    let comm_id = comm_id_of(app, req.comm_id)?;
    let (max_users, max_page) = if limited {
        (DETAIL_MAX_USERS, DETAIL_MAX_USERS as i64)
    } else {
        (MAX_PAGE_SIZE as usize, MAX_PAGE_SIZE)
    };
    if user_ids.len() > max_users {
        return Err(if limited {
            ApiError::InvalidParameterOf {
                detail: "UserIdsMorethanSix",
                message: "With DataType, UserIds may list at most 6 users.".into(),
            }
        } else {
            ApiError::InvalidParameterOf {
                detail: "UserIds",
                message: "UserIds may list at most 100 users.".into(),
            }
        });
    }
    let (offset, limit) = window::page(req.page_number, req.page_size, 6, max_page)?;
    let start = UnixSecs(req.start_time);
    let end = UnixSecs(req.end_time);
    let q = SessionQuery {
        sdk_app_id: app,
        comm_id: comm_id.clone(),
        start,
        end,
        user_ids: user_ids.into_iter().map(UserId).collect(),
        offset,
        limit,
    };
    let page = ctx.store(move |s| s.sessions_of_call(&q)).await?;
    let mut users: Vec<UserId> = Vec::new();
    for s in &page.items {
        if !users.contains(&s.user_id) {
            users.push(s.user_id.clone());
        }
    }
    let data = match metrics {
        Some(metrics) if !users.is_empty() => {
            let q = QualityQuery {
                sdk_app_id: app,
                comm_id,
                start,
                end,
                user_ids: users.clone(),
                metrics,
            };
            let found = ctx.store(move |s| s.quality(&q)).await?;
            let mut series: BTreeMap<(usize, usize, String), Vec<TimeValue>> = BTreeMap::new();
            for s in found {
                let (Some(u), Some(m)) = (
                    users.iter().position(|u| *u == s.user_id),
                    METRICS.iter().position(|m| *m == s.metric),
                ) else {
                    continue;
                };
                series
                    .entry((u, m, s.peer))
                    .or_default()
                    .extend(s.points.into_iter().map(|(time, value)| TimeValue {
                        time: time.0,
                        value,
                    }));
            }
            series
                .into_iter()
                .map(|((u, m, peer), content)| QualityData {
                    content,
                    user_id: users[u].0.clone(),
                    peer_id: peer,
                    data_type: METRICS[m].to_owned(),
                })
                .collect()
        }
        _ => vec![],
    };
    let now = ctx.now;
    fields(&CallDetail {
        total: page.total,
        user_list: page
            .items
            .into_iter()
            .map(|s| user_information(s, now))
            .collect(),
        data,
    })
}
