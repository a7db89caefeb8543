//! Room management actions (spec §2.3.1–2.3.6): dismissing rooms.

use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
use hearth_types::{RoomKey, SdkAppId};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DismissRoom {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "RoomId", deserialize_with = "int::de")]
    room_id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DismissRoomByStrRoomId {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "RoomId")]
    room_id: String,
}

fn room_value_error(e: hearth_types::RoomKeyError) -> ApiError {
    ApiError::InvalidRoomIdValue(format!("Invalid RoomId: {e}."))
}

pub async fn dismiss_room(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: DismissRoom = decode(params)?;
    let room = u64::try_from(req.room_id)
        .map_err(|_| hearth_types::RoomKeyError::NumOutOfRange)
        .and_then(RoomKey::num)
        .map_err(room_value_error)?;
    dismiss(ctx, SdkAppId(req.sdk_app_id), room).await
}

pub async fn dismiss_room_by_str(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let req: DismissRoomByStrRoomId = decode(params)?;
    let room = RoomKey::string(&req.room_id).map_err(room_value_error)?;
    dismiss(ctx, SdkAppId(req.sdk_app_id), room).await
}

async fn dismiss(ctx: &Ctx, app: SdkAppId, room: RoomKey) -> Result<Map<String, Value>, ApiError> {
    ctx.check_app(app)?;
    ctx.state.rooms.dismiss(app, room).await?;
    fields(&serde_json::json!({}))
}
