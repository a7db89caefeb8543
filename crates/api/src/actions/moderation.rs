//! Room management on users (spec §2.3.1, 2.3.2, 2.3.5, 2.3.6): removing users and blocking
//! their audio and video, in numeric and string rooms.

use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
use crate::rooms::Block;
use hearth_types::{RoomKey, SdkAppId, UserId};
use serde::Deserialize;
use serde_json::{Map, Value};

/// RemoveUser takes at most this many users per call.
const MAX_REMOVED_USERS: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveUser {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "RoomId")]
    room_id: Value,
    #[serde(rename = "UserIds")]
    user_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetUserBlocked {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "RoomId", default)]
    room_id: Option<Value>,
    #[serde(rename = "StrRoomId", default)]
    str_room_id: Option<String>,
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "IsMute", deserialize_with = "int::de")]
    is_mute: i64,
}

fn invalid_room(m: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidRoomIdValue(format!("Invalid RoomId: {m}."))
}

/// A numeric room from a JSON number or a decimal string (form requests send strings).
fn numeric_room(v: &Value) -> Result<RoomKey, ApiError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let Some(n) = n else {
        return Err(ApiError::InvalidParameterOf {
            detail: "RoomId",
            message: "RoomId must be an integer for this action (use the ByStrRoomId action for string rooms).".into(),
        });
    };
    RoomKey::num(n).map_err(invalid_room)
}

/// A string room: the literal quotes of the spec's own example (`StrRoomId="10006"`) are
/// tolerated.
fn string_room(s: &str) -> Result<RoomKey, ApiError> {
    let s = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    RoomKey::string(s).map_err(invalid_room)
}

fn user_ids(raw: Vec<String>) -> Result<Vec<UserId>, ApiError> {
    let bad = |m: &str| ApiError::InvalidParameterOf {
        detail: "UserIds",
        message: m.into(),
    };
    if raw.is_empty() {
        return Err(bad("UserIds must list at least one user."));
    }
    if raw.len() > MAX_REMOVED_USERS {
        return Err(bad("UserIds may list at most 10 users."));
    }
    if raw.iter().any(|u| u.is_empty()) {
        return Err(bad("UserIds must not contain empty user ids."));
    }
    Ok(raw.into_iter().map(UserId).collect())
}

async fn remove(ctx: &Ctx, req: RemoveUser, room: RoomKey) -> Result<Map<String, Value>, ApiError> {
    let app = SdkAppId(req.sdk_app_id);
    let users = user_ids(req.user_ids)?;
    ctx.check_app(app)?;
    ctx.state.rooms.remove_users(app, room, users).await?;
    fields(&serde_json::json!({}))
}

pub async fn remove_user(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: RemoveUser = decode(params)?;
    let room = numeric_room(&req.room_id)?;
    remove(ctx, req, room).await
}

pub async fn remove_user_by_str(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: RemoveUser = decode(params)?;
    let room = match &req.room_id {
        Value::String(s) => string_room(s)?,
        _ => return Err(invalid_room("a string room id is required")),
    };
    remove(ctx, req, room).await
}

async fn block(
    ctx: &Ctx,
    req: SetUserBlocked,
    room: RoomKey,
) -> Result<Map<String, Value>, ApiError> {
    let app = SdkAppId(req.sdk_app_id);
    let block = match req.is_mute {
        0 => Block {
            audio: false,
            video: false,
        },
        1 => Block {
            audio: true,
            video: true,
        },
        2 => Block {
            audio: true,
            video: false,
        },
        3 => Block {
            audio: false,
            video: true,
        },
        _ => {
            return Err(ApiError::InvalidParameter(
                "IsMute must be 0, 1, 2 or 3.".into(),
            ))
        }
    };
    let user = req
        .user_id
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(&req.user_id);
    if user.is_empty() {
        return Err(ApiError::InvalidParameterOf {
            detail: "UserId",
            message: "UserId must not be empty.".into(),
        });
    }
    ctx.check_app(app)?;
    ctx.state
        .rooms
        .block_user(app, room, UserId(user.to_owned()), block)
        .await?;
    fields(&serde_json::json!({}))
}

pub async fn set_user_blocked(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: SetUserBlocked = decode(params)?;
    if req.str_room_id.is_some() {
        return Err(ApiError::UnknownParameter("StrRoomId".into()));
    }
    let raw = req.room_id.clone().ok_or(ApiError::MissingParameterOf {
        detail: "RoomId",
        name: "RoomId".into(),
    })?;
    let room = numeric_room(&raw)?;
    block(ctx, req, room).await
}

pub async fn set_user_blocked_by_str(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let req: SetUserBlocked = decode(params)?;
    if req.room_id.is_some() {
        return Err(ApiError::UnknownParameter("RoomId".into()));
    }
    let raw = req
        .str_room_id
        .clone()
        .ok_or(ApiError::MissingParameterOf {
            detail: "RoomId",
            name: "StrRoomId".into(),
        })?;
    let room = string_room(&raw)?;
    block(ctx, req, room).await
}
