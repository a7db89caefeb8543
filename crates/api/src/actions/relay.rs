//! Mixing and CDN relay (spec §2.3.7–9): StartPublishCdnStream validates every parameter and
//! turns it into a relay task (a mix of the room, or one user's stream, pushed to RTMP URLs and
//! published back into rooms); UpdatePublishCdnStream changes it live under the spec's rules;
//! StopPublishCdnStream ends it.

use super::record::{
    check_usersig, image, out_of_range, ranged, task_id, ByTask, TaskOut, VideoParams,
};
use super::{fields, Ctx};
use crate::error::ApiError;
use crate::media::{RelayChange, RelayStart};
use crate::params::{decode, int};
use hearth_media_proto::layout::{self, CustomCell, Fit, Layout, LayoutMode};
use hearth_media_proto::{
    member_id, split_member, AudioEncode, AudioUsers, Join, LayoutVolume, Mix, PassThrough, Relay,
    RelaySource, RelayUpdate, RoomRef, Sei, UserFilter, VideoEncode, Watermark,
};
use hearth_types::{RoomKey, SdkAppId};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "RoomId")]
    room_id: String,
    #[serde(rename = "RoomIdType", deserialize_with = "int::de")]
    room_id_type: i64,
    #[serde(rename = "AgentParams")]
    agent: AgentParams,
    #[serde(rename = "WithTranscoding", deserialize_with = "int::de")]
    with_transcoding: i64,
    #[serde(rename = "AudioParams", default)]
    audio: Option<McuAudioParams>,
    #[serde(rename = "VideoParams", default)]
    video: Option<McuVideoParams>,
    #[serde(rename = "SingleSubscribeParams", default)]
    single: Option<SingleSubscribeParams>,
    #[serde(rename = "PublishCdnParams", default)]
    cdn: Option<Vec<McuPublishCdnParam>>,
    #[serde(rename = "SeiParams", default)]
    sei: Option<McuSeiParams>,
    #[serde(rename = "FeedBackRoomParams", default)]
    feedback: Option<Vec<McuFeedBackRoomParams>>,
    #[serde(rename = "RecordParams", default)]
    record: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "TaskId")]
    task_id: String,
    #[serde(rename = "SequenceNumber", deserialize_with = "int::de")]
    sequence: i64,
    #[serde(rename = "WithTranscoding", deserialize_with = "int::de")]
    with_transcoding: i64,
    #[serde(rename = "AudioParams", default)]
    audio: Option<McuAudioParams>,
    #[serde(rename = "VideoParams", default)]
    video: Option<McuVideoParams>,
    #[serde(rename = "SingleSubscribeParams", default)]
    single: Option<SingleSubscribeParams>,
    #[serde(rename = "PublishCdnParams", default)]
    cdn: Option<Vec<McuPublishCdnParam>>,
    #[serde(rename = "SeiParams", default)]
    sei: Option<McuSeiParams>,
    #[serde(rename = "FeedBackRoomParams", default)]
    feedback: Option<Vec<McuFeedBackRoomParams>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentParams {
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "UserSig", default)]
    user_sig: Option<String>,
    #[serde(rename = "MaxIdleTime", default, deserialize_with = "int::opt")]
    max_idle: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuAudioParams {
    #[serde(rename = "AudioEncode", default)]
    encode: Option<McuAudioEncode>,
    #[serde(rename = "SubscribeAudioList", default)]
    allow: Option<Vec<McuUserInfoParams>>,
    #[serde(rename = "UnSubscribeAudioList", default)]
    block: Option<Vec<McuUserInfoParams>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuAudioEncode {
    #[serde(rename = "SampleRate", deserialize_with = "int::de")]
    sample_rate: i64,
    #[serde(rename = "Channel", deserialize_with = "int::de")]
    channel: i64,
    #[serde(rename = "BitRate", deserialize_with = "int::de")]
    bitrate: i64,
    #[serde(rename = "Codec", default, deserialize_with = "int::opt")]
    codec: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuUserInfoParams {
    #[serde(rename = "UserInfo")]
    user: MixUserInfo,
    #[serde(rename = "SoundLevel", default, deserialize_with = "int::opt")]
    sound_level: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixUserInfo {
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "RoomId", default)]
    room_id: Option<String>,
    #[serde(rename = "RoomIdType", default, deserialize_with = "int::opt")]
    room_id_type: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserMediaStream {
    #[serde(rename = "UserInfo", default)]
    user: Option<MixUserInfo>,
    #[serde(rename = "StreamType", default, deserialize_with = "int::opt")]
    stream_type: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuVideoParams {
    #[serde(rename = "VideoEncode", default)]
    /// Same members as recording's VideoParams; BitRate is in kbit/s here.
    encode: Option<VideoParams>,
    #[serde(rename = "LayoutParams", default)]
    layout: Option<McuLayoutParams>,
    #[serde(rename = "BackGroundColor", default)]
    background_color: Option<String>,
    #[serde(rename = "BackgroundImageUrl", default)]
    background_image: Option<String>,
    #[serde(rename = "WaterMarkList", default)]
    watermarks: Option<Vec<McuWaterMarkParams>>,
    #[serde(
        rename = "BackgroundRenderMode",
        default,
        deserialize_with = "int::opt"
    )]
    background_render_mode: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuLayoutParams {
    #[serde(rename = "MixLayoutMode", default, deserialize_with = "int::opt")]
    mode: Option<i64>,
    #[serde(
        rename = "PureAudioHoldPlaceMode",
        default,
        deserialize_with = "int::opt"
    )]
    pure_audio_hold: Option<i64>,
    #[serde(rename = "MixLayoutList", default)]
    list: Option<Vec<McuLayout>>,
    #[serde(rename = "MaxVideoUser", default)]
    max_video_user: Option<MaxVideoUser>,
    #[serde(rename = "RenderMode", default, deserialize_with = "int::opt")]
    render_mode: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaxVideoUser {
    #[serde(rename = "UserMediaStream")]
    stream: UserMediaStream,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuLayout {
    #[serde(rename = "UserMediaStream", default)]
    stream: Option<UserMediaStream>,
    #[serde(rename = "ImageWidth", default, deserialize_with = "int::opt")]
    width: Option<i64>,
    #[serde(rename = "ImageHeight", default, deserialize_with = "int::opt")]
    height: Option<i64>,
    #[serde(rename = "LocationX", default, deserialize_with = "int::opt")]
    x: Option<i64>,
    #[serde(rename = "LocationY", default, deserialize_with = "int::opt")]
    y: Option<i64>,
    #[serde(rename = "ZOrder", default, deserialize_with = "int::opt")]
    zorder: Option<i64>,
    #[serde(rename = "RenderMode", default, deserialize_with = "int::opt")]
    render_mode: Option<i64>,
    #[serde(rename = "BackGroundColor", default)]
    _background_color: Option<String>,
    #[serde(rename = "BackgroundImageUrl", default)]
    background_image: Option<String>,
    #[serde(rename = "CustomCrop", default)]
    custom_crop: Option<McuCustomCrop>,
    #[serde(
        rename = "BackgroundRenderMode",
        default,
        deserialize_with = "int::opt"
    )]
    background_render_mode: Option<i64>,
    #[serde(rename = "TransparentUrl", default)]
    transparent_url: Option<String>,
    #[serde(rename = "BackgroundCustomRender", default)]
    custom_render: Option<Value>,
    #[serde(rename = "BackGroundColorMode", default, deserialize_with = "int::opt")]
    _background_color_mode: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuCustomCrop {
    #[serde(rename = "LocationX", deserialize_with = "int::de")]
    x: i64,
    #[serde(rename = "LocationY", deserialize_with = "int::de")]
    y: i64,
    #[serde(rename = "Width", deserialize_with = "int::de")]
    width: i64,
    #[serde(rename = "Height", deserialize_with = "int::de")]
    height: i64,
}

/// McuCustomCrop: a part of the user's picture, within 10000 × 10000.
fn crop_of(c: &McuCustomCrop, name: &str) -> Result<[u32; 4], ApiError> {
    let x = ranged(Some(c.x), &format!("{name}.LocationX"), 0, 9_999, 0)?;
    let y = ranged(Some(c.y), &format!("{name}.LocationY"), 0, 9_999, 0)?;
    let w = ranged(Some(c.width), &format!("{name}.Width"), 2, 10_000, 0)?;
    let h = ranged(Some(c.height), &format!("{name}.Height"), 2, 10_000, 0)?;
    if x + w > 10_000 || y + h > 10_000 {
        return Err(out_of_range(format!(
            "{name}: LocationX + Width and LocationY + Height must be at most 10000."
        )));
    }
    Ok([x as u32, y as u32, w as u32, h as u32])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuWaterMarkParams {
    #[serde(rename = "WaterMarkType", default, deserialize_with = "int::opt")]
    kind: Option<i64>,
    #[serde(rename = "WaterMarkImage", default)]
    image: Option<McuWaterMarkImage>,
    #[serde(rename = "WaterMarkText", default)]
    text: Option<McuWaterMarkText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuWaterMarkImage {
    #[serde(rename = "WaterMarkUrl")]
    url: String,
    #[serde(rename = "WaterMarkWidth", deserialize_with = "int::de")]
    width: i64,
    #[serde(rename = "WaterMarkHeight", deserialize_with = "int::de")]
    height: i64,
    #[serde(rename = "LocationX", deserialize_with = "int::de")]
    x: i64,
    #[serde(rename = "LocationY", deserialize_with = "int::de")]
    y: i64,
    #[serde(rename = "ZOrder", default, deserialize_with = "int::opt")]
    zorder: Option<i64>,
    #[serde(rename = "DynamicPosType", default, deserialize_with = "int::opt")]
    _dynamic: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuWaterMarkText {
    #[serde(rename = "Text")]
    text: String,
    #[serde(rename = "WaterMarkWidth", deserialize_with = "int::de")]
    width: i64,
    #[serde(rename = "WaterMarkHeight", deserialize_with = "int::de")]
    height: i64,
    #[serde(rename = "LocationX", deserialize_with = "int::de")]
    x: i64,
    #[serde(rename = "LocationY", deserialize_with = "int::de")]
    y: i64,
    #[serde(rename = "FontSize", deserialize_with = "int::de")]
    font_size: i64,
    #[serde(rename = "FontColor", default)]
    font_color: Option<String>,
    #[serde(rename = "BackGroundColor", default)]
    background_color: Option<String>,
    #[serde(rename = "DynamicPosType", default, deserialize_with = "int::opt")]
    _dynamic: Option<i64>,
    #[serde(rename = "ZOrder", default, deserialize_with = "int::opt")]
    zorder: Option<i64>,
    #[serde(rename = "Font", default)]
    _font: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SingleSubscribeParams {
    #[serde(rename = "UserMediaStream")]
    stream: UserMediaStream,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuPublishCdnParam {
    #[serde(rename = "PublishCdnUrl")]
    url: String,
    #[serde(rename = "IsTencentCdn", default, deserialize_with = "int::opt")]
    is_tencent: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuSeiParams {
    #[serde(rename = "LayoutVolume", default)]
    layout_volume: Option<McuLayoutVolume>,
    #[serde(rename = "PassThrough", default)]
    pass_through: Option<McuPassThrough>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuLayoutVolume {
    #[serde(rename = "AppData", default)]
    app_data: Option<String>,
    #[serde(rename = "PayloadType", default, deserialize_with = "int::opt")]
    payload_type: Option<i64>,
    #[serde(rename = "Interval", default, deserialize_with = "int::opt")]
    interval: Option<i64>,
    #[serde(rename = "FollowIdr", default, deserialize_with = "int::opt")]
    follow_idr: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuPassThrough {
    #[serde(rename = "PayloadContent")]
    content: String,
    #[serde(rename = "PayloadType", deserialize_with = "int::de")]
    payload_type: i64,
    #[serde(rename = "PayloadUuid", default)]
    uuid: Option<String>,
    #[serde(rename = "Interval", default, deserialize_with = "int::opt")]
    interval: Option<i64>,
    #[serde(rename = "FollowIdr", default, deserialize_with = "int::opt")]
    follow_idr: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McuFeedBackRoomParams {
    #[serde(rename = "RoomId")]
    room_id: String,
    #[serde(rename = "RoomIdType", deserialize_with = "int::de")]
    room_id_type: i64,
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "UserSig")]
    user_sig: String,
}

/// CDN URLs and push-back rooms per task at most.
const MAX_OUTPUTS: usize = 10;
/// Mixed streams (and custom-layout windows) per task at most.
const MAX_MIXED: usize = 16;

fn missing(name: &str) -> ApiError {
    ApiError::MissingParameter(name.to_owned())
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter(m.into())
}

/// `0xRRGGBB` (TRTC's relay colours; `#RRGGBB` is taken too).
fn color(s: Option<&str>, name: &str) -> Result<Option<u32>, ApiError> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .or_else(|| s.strip_prefix('#'));
    match hex
        .filter(|h| h.len() == 6)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
    {
        Some(c) => Ok(Some(c)),
        None => Err(invalid(format!(
            "{name} must be a colour 0xRRGGBB; got {s:?}."
        ))),
    }
}

/// A room of the API (`0` integer, `1` string here, unlike recording).
fn room_of(id: &str, kind: i64, name: &str) -> Result<RoomKey, ApiError> {
    if id.is_empty() {
        return Err(missing(name));
    }
    let bad = |m: String| ApiError::InvalidParameterOf {
        detail: "RoomId",
        message: m,
    };
    match kind {
        0 => {
            let n = id.trim().parse::<u64>().map_err(|_| {
                bad(format!(
                    "{name} {id:?} is not an integer room; use RoomIdType 1 for string rooms."
                ))
            })?;
            RoomKey::num(n).map_err(|e| bad(e.to_string()))
        }
        1 => RoomKey::string(id).map_err(|e| bad(e.to_string())),
        v => Err(out_of_range(format!(
            "RoomIdType must be 0 (integer) or 1 (string); got {v}."
        ))),
    }
}

fn audio_encode(a: &McuAudioEncode) -> Result<AudioEncode, ApiError> {
    let rate = a.sample_rate;
    if ![48_000, 44_100, 32_000, 24_000, 16_000, 8_000].contains(&rate) {
        return Err(out_of_range(format!(
            "AudioEncode.SampleRate must be 48000, 44100, 32000, 24000, 16000 or 8000; got {rate}."
        )));
    }
    match ranged(a.codec, "AudioEncode.Codec", 0, 2, 0)? {
        0 => {}
        _ => {
            return Err(invalid(
                "AudioEncode.Codec: HE-AAC (1) and HE-AACv2 (2) are not available on this server (no free HE-AAC encoder); use 0 (LC-AAC).",
            ))
        }
    }
    Ok(AudioEncode {
        sample_rate: rate as u32,
        channels: ranged(Some(a.channel), "AudioEncode.Channel", 1, 2, 2)? as u32,
        bitrate_bps: ranged(Some(a.bitrate), "AudioEncode.BitRate", 8, 500, 64)? as u32 * 1000,
    })
}

fn video_encode(v: &VideoParams) -> Result<VideoEncode, ApiError> {
    let w = ranged(Some(v.width), "VideoEncode.Width", 2, 1920, 0)?;
    let h = ranged(Some(v.height), "VideoEncode.Height", 2, 1080, 0)?;
    if w % 2 != 0 || h % 2 != 0 {
        return Err(invalid(
            "VideoEncode: Width and Height must be even (H.264 with 4:2:0 chroma).",
        ));
    }
    Ok(VideoEncode {
        width: w as u32,
        height: h as u32,
        fps: ranged(Some(v.fps), "VideoEncode.Fps", 1, 60, 15)? as u32,
        bitrate_bps: ranged(Some(v.bitrate), "VideoEncode.BitRate", 1, 10_000, 0)? as u32 * 1000,
        gop_secs: ranged(Some(v.gop), "VideoEncode.Gop", 1, 5, 2)? as u32,
    })
}

/// The room a request's users are checked against: the task's at Start; not known to the API
/// at Update (the worker writes members of its own room as plain ids).
#[derive(Clone, Copy)]
enum Scope<'a> {
    Main(&'a RoomKey),
    Unknown,
}

fn room_ref(r: &RoomKey) -> RoomRef {
    match r {
        RoomKey::Num(n) => RoomRef::Num(*n),
        RoomKey::Str(s) => RoomRef::Str(s.clone()),
    }
}

/// A named user: a plain id in the task's room, a member id (`member_id`) in another, which
/// only custom positions and the audio lists may name (`other_ok`).
fn member(
    u: &MixUserInfo,
    scope: Scope<'_>,
    name: &str,
    other_ok: bool,
) -> Result<String, ApiError> {
    if u.user_id.is_empty() {
        return Err(missing(&format!("{name}.UserId")));
    }
    let Some(r) = u.room_id.as_deref().filter(|r| !r.is_empty()) else {
        return Ok(u.user_id.clone());
    };
    let default_kind = match scope {
        Scope::Main(RoomKey::Num(_)) => 0,
        Scope::Main(RoomKey::Str(_)) => 1,
        Scope::Unknown => i64::from(r.parse::<u32>().is_err()),
    };
    let room = room_of(r, u.room_id_type.unwrap_or(default_kind), name)?;
    match scope {
        Scope::Main(main) if &room == main => Ok(u.user_id.clone()),
        Scope::Main(_) if !other_ok => Err(invalid(format!(
            "{name}: only custom layouts (MixLayoutMode 4) and the audio lists take streams of another room ({r})."
        ))),
        _ => Ok(member_id(&u.user_id, &room_ref(&room))),
    }
}

/// A user list with each user's SoundLevel (given ones only).
type Users = (Vec<String>, Vec<(String, u32)>);

fn user_list(
    list: Option<Vec<McuUserInfoParams>>,
    scope: Scope<'_>,
    name: &str,
) -> Result<Option<Users>, ApiError> {
    let Some(list) = list else { return Ok(None) };
    if list.len() > MAX_MIXED {
        return Err(out_of_range(format!(
            "{name} holds at most {MAX_MIXED} users."
        )));
    }
    let mut out = Vec::new();
    let mut levels = Vec::new();
    for (i, u) in list.into_iter().enumerate() {
        let user = member(&u.user, scope, &format!("{name}.{i}.UserInfo"), true)?;
        if u.sound_level.is_some() {
            let l = ranged(
                u.sound_level,
                &format!("{name}.{i}.SoundLevel"),
                0,
                100,
                100,
            )?;
            levels.push((user.clone(), l as u32));
        }
        out.push(user);
    }
    Ok(Some((out, levels)))
}

/// The audio allow/block lists (both or neither change on update), with the allowlist's
/// sound levels (the spec honours them there only).
fn audio_users(a: &mut McuAudioParams, scope: Scope<'_>) -> Result<Option<AudioUsers>, ApiError> {
    let allow = user_list(a.allow.take(), scope, "SubscribeAudioList")?;
    let block = user_list(a.block.take(), scope, "UnSubscribeAudioList")?;
    if allow.is_none() && block.is_none() {
        return Ok(None);
    }
    let (allow, levels) = allow.unwrap_or_default();
    Ok(Some((
        UserFilter {
            allow,
            block: block.map(|(b, _)| b).unwrap_or_default(),
        },
        levels,
    )))
}

fn stream_of(v: Option<i64>, name: &str) -> Result<layout::Stream, ApiError> {
    Ok(match ranged(v, name, 0, 1, 0)? {
        0 => layout::Stream::Main,
        _ => layout::Stream::Sub,
    })
}

/// RenderMode of the relay: 0 crop, 1 scale (background shows), 2 scale with bars.
fn fit(v: Option<i64>, name: &str) -> Result<Fit, ApiError> {
    Ok(match ranged(v, name, 0, 2, 0)? {
        0 => Fit::Crop,
        _ => Fit::Pad,
    })
}

fn layout_of(
    p: Option<McuLayoutParams>,
    canvas: VideoEncode,
    scope: Scope<'_>,
) -> Result<Layout, ApiError> {
    let p = p.unwrap_or(McuLayoutParams {
        mode: None,
        pure_audio_hold: None,
        list: None,
        max_video_user: None,
        render_mode: None,
    });
    let mode = match ranged(p.mode, "MixLayoutMode", 1, 4, 1)? {
        1 => LayoutMode::Floating,
        2 => LayoutMode::ScreenShare,
        3 => LayoutMode::Grid,
        _ => LayoutMode::Custom,
    };
    let hold = ranged(p.pure_audio_hold, "PureAudioHoldPlaceMode", 0, 1, 0)? == 1;
    let (big_user, big_stream) = match p.max_video_user {
        Some(m) => {
            let u = m
                .stream
                .user
                .as_ref()
                .ok_or_else(|| missing("MaxVideoUser.UserMediaStream.UserInfo"))?;
            (
                Some(member(
                    u,
                    scope,
                    "MaxVideoUser.UserMediaStream.UserInfo",
                    false,
                )?),
                stream_of(
                    m.stream.stream_type,
                    "MaxVideoUser.UserMediaStream.StreamType",
                )?,
            )
        }
        None => (None, layout::Stream::Main),
    };
    if mode == LayoutMode::ScreenShare && big_user.is_none() {
        return Err(invalid(
            "MixLayoutMode 2 (screen sharing) needs MaxVideoUser: the user in the big picture.",
        ));
    }
    let list = p.list.unwrap_or_default();
    if list.len() > MAX_MIXED {
        return Err(out_of_range(format!(
            "MixLayoutList holds at most {MAX_MIXED} positions."
        )));
    }
    if mode == LayoutMode::Custom && list.is_empty() {
        return Err(invalid("MixLayoutMode 4 (custom) needs MixLayoutList."));
    }
    let mut cells = Vec::new();
    for (i, c) in list.into_iter().enumerate() {
        let n = |f: &str| format!("MixLayoutList.{i}.{f}");
        if c.transparent_url.as_deref().is_some_and(|u| !u.is_empty()) || c.custom_render.is_some()
        {
            return Err(invalid(format!(
                "{}: TransparentUrl and BackgroundCustomRender are not supported by this server yet.",
                n("")
            )));
        }
        let x = ranged(c.x, &n("LocationX"), 0, 1920, 0)?;
        let y = ranged(c.y, &n("LocationY"), 0, 1920, 0)?;
        let w = ranged(c.width, &n("ImageWidth"), 0, 1920, 0)?;
        let h = ranged(c.height, &n("ImageHeight"), 0, 1920, 0)?;
        if x + w > i64::from(canvas.width) || y + h > i64::from(canvas.height) {
            return Err(out_of_range(format!(
                "MixLayoutList.{i}: the position must fit the {}×{} canvas.",
                canvas.width, canvas.height
            )));
        }
        let (user, stream) = match c.stream {
            Some(s) => (
                match &s.user {
                    Some(u) => Some(member(
                        u,
                        scope,
                        &n("UserMediaStream.UserInfo"),
                        mode == LayoutMode::Custom,
                    )?),
                    None => None,
                },
                stream_of(s.stream_type, &n("UserMediaStream.StreamType"))?,
            ),
            None => (None, layout::Stream::Main),
        };
        ranged(
            c.background_render_mode,
            &n("BackgroundRenderMode"),
            0,
            4,
            3,
        )?;
        cells.push(CustomCell {
            top: y as u32,
            left: x as u32,
            width: w as u32,
            height: h as u32,
            user,
            alpha: 0,
            fit: fit(c.render_mode, &n("RenderMode"))?,
            stream,
            layer: ranged(c.zorder, &n("ZOrder"), 0, 15, 0)? as u32,
            image: image(c.background_image, &n("BackgroundImageUrl"))?,
            crop: c
                .custom_crop
                .map(|cc| crop_of(&cc, &n("CustomCrop")))
                .transpose()?,
        });
    }
    Ok(Layout {
        mode,
        cells,
        background: 0,
        background_image: None,
        big_user,
        big_stream,
        big_right: false,
        fit: fit(p.render_mode, "LayoutParams.RenderMode")?,
        // A custom position without its user shows its image; dynamic layouts hold a place
        // for audio-only users only when asked.
        placeholder: mode == LayoutMode::Custom,
        placeholder_image: None,
        audio_only_no_cell: !hold,
        // Floating and screen sharing: 1 big + 15 small; grid: 16; custom: its positions.
        max_cells: MAX_MIXED,
    })
}

fn watermarks(
    list: Vec<McuWaterMarkParams>,
    canvas: VideoEncode,
) -> Result<Vec<Watermark>, ApiError> {
    let mut out = Vec::new();
    let (mut texts, mut images) = (0, 0);
    for (i, w) in list.into_iter().enumerate() {
        let n = |f: &str| format!("WaterMarkList.{i}.{f}");
        let fits = |x: i64, y: i64, wd: i64, ht: i64, name: String| {
            if x < 0
                || y < 0
                || wd <= 0
                || ht <= 0
                || x + wd > i64::from(canvas.width)
                || y + ht > i64::from(canvas.height)
            {
                Err(out_of_range(format!(
                    "{name}: the watermark must fit the {}×{} canvas.",
                    canvas.width, canvas.height
                )))
            } else {
                Ok(())
            }
        };
        match ranged(w.kind, &n("WaterMarkType"), 0, 1, 0)? {
            0 => {
                let m = w.image.ok_or_else(|| missing(&n("WaterMarkImage")))?;
                fits(m.x, m.y, m.width, m.height, n("WaterMarkImage"))?;
                images += 1;
                out.push(Watermark::Image {
                    image: image(Some(m.url), &n("WaterMarkImage.WaterMarkUrl"))?
                        .ok_or_else(|| missing(&n("WaterMarkImage.WaterMarkUrl")))?,
                    x: m.x as u32,
                    y: m.y as u32,
                    width: m.width as u32,
                    height: m.height as u32,
                    zorder: ranged(m.zorder, &n("WaterMarkImage.ZOrder"), 0, 100, 0)? as u32,
                });
            }
            _ => {
                let t = w.text.ok_or_else(|| missing(&n("WaterMarkText")))?;
                fits(t.x, t.y, t.width, t.height, n("WaterMarkText"))?;
                if t.text.is_empty() {
                    return Err(missing(&n("WaterMarkText.Text")));
                }
                texts += 1;
                out.push(Watermark::Text {
                    text: t.text,
                    x: t.x as u32,
                    y: t.y as u32,
                    width: t.width as u32,
                    height: t.height as u32,
                    font_size: ranged(Some(t.font_size), &n("WaterMarkText.FontSize"), 1, 400, 24)?
                        as u32,
                    color: color(t.font_color.as_deref(), &n("WaterMarkText.FontColor"))?
                        .unwrap_or(0xFF_FFFF),
                    background: color(
                        t.background_color.as_deref(),
                        &n("WaterMarkText.BackGroundColor"),
                    )?,
                    zorder: ranged(t.zorder, &n("WaterMarkText.ZOrder"), 0, 100, 0)? as u32,
                });
            }
        }
    }
    if texts > 4 || images > 4 {
        return Err(out_of_range(
            "WaterMarkList: at most 4 image and 4 text watermarks are shown at once.",
        ));
    }
    Ok(out)
}

fn cdn_urls(list: Vec<McuPublishCdnParam>) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_OUTPUTS {
        return Err(out_of_range(format!(
            "PublishCdnParams holds at most {MAX_OUTPUTS} URLs."
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, c) in list.into_iter().enumerate() {
        ranged(
            c.is_tencent,
            &format!("PublishCdnParams.{i}.IsTencentCdn"),
            0,
            1,
            1,
        )?;
        let u = c.url.trim().to_owned();
        if u.is_empty() {
            return Err(missing(&format!("PublishCdnParams.{i}.PublishCdnUrl")));
        }
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("rtmp://") || lower.starts_with("rtmps://")) {
            return Err(invalid(format!(
                "PublishCdnParams.{i}.PublishCdnUrl must be an rtmp:// or rtmps:// URL; got {u:?}."
            )));
        }
        if out.contains(&u) {
            return Err(invalid(format!(
                "PublishCdnParams.{i}.PublishCdnUrl is listed twice."
            )));
        }
        out.push(u);
    }
    Ok(out)
}

fn feedback_rooms(
    ctx: &Ctx,
    app: SdkAppId,
    list: Vec<McuFeedBackRoomParams>,
    main: &RoomKey,
    agent: &str,
) -> Result<Vec<Join>, ApiError> {
    if list.len() > MAX_OUTPUTS {
        return Err(out_of_range(format!(
            "FeedBackRoomParams holds at most {MAX_OUTPUTS} rooms."
        )));
    }
    let mut out = Vec::new();
    for (i, f) in list.into_iter().enumerate() {
        let n = |x: &str| format!("FeedBackRoomParams.{i}.{x}");
        let room = room_of(&f.room_id, f.room_id_type, &n("RoomId"))?;
        if f.user_id.is_empty() {
            return Err(missing(&n("UserId")));
        }
        if f.user_sig.is_empty() {
            return Err(missing(&n("UserSig")));
        }
        if &room == main && f.user_id == agent {
            return Err(invalid(format!(
                "{}: the push-back robot must not be the relay's own robot.",
                n("UserId")
            )));
        }
        check_usersig(ctx, app, &f.user_id, &f.user_sig)?;
        out.push(Join {
            ws_url: String::new(),
            sdk_app_id: app.0,
            room: match &room {
                RoomKey::Num(n) => RoomRef::Num(*n),
                RoomKey::Str(s) => RoomRef::Str(s.clone()),
            },
            user_id: f.user_id,
            user_sig: f.user_sig,
            private_map_key: None,
        });
    }
    Ok(out)
}

fn sei(p: McuSeiParams) -> Result<Sei, ApiError> {
    let payload_type = |v: i64, name: &str, allow5: bool| -> Result<u8, ApiError> {
        if (allow5 && v == 5) || ((100..=254).contains(&v) && v != 244) {
            Ok(v as u8)
        } else {
            Err(out_of_range(format!(
                "{name} must be {}100 to 254 (244 is reserved); got {v}.",
                if allow5 { "5 or " } else { "" }
            )))
        }
    };
    let layout_volume = match p.layout_volume {
        Some(l) => {
            let app_data = l.app_data.unwrap_or_default();
            if app_data.chars().count() >= 4096 {
                return Err(out_of_range(
                    "LayoutVolume.AppData must be shorter than 4096 characters.",
                ));
            }
            Some(LayoutVolume {
                app_data,
                payload_type: payload_type(
                    l.payload_type.unwrap_or(100),
                    "LayoutVolume.PayloadType",
                    false,
                )?,
                interval_ms: ranged(l.interval, "LayoutVolume.Interval", 100, 86_400_000, 1000)?
                    as u64,
                follow_idr: ranged(l.follow_idr, "LayoutVolume.FollowIdr", 0, 1, 0)? == 1,
            })
        }
        None => None,
    };
    let pass_through = match p.pass_through {
        Some(t) => {
            let pt = payload_type(t.payload_type, "PassThrough.PayloadType", true)?;
            let uuid = if pt == 5 {
                let u = t.uuid.as_deref().unwrap_or_default();
                let bytes: Option<Vec<u8>> = (u.len() == 32)
                    .then(|| {
                        (0..16)
                            .map(|i| u8::from_str_radix(&u[2 * i..2 * i + 2], 16).ok())
                            .collect()
                    })
                    .flatten();
                match bytes {
                    Some(b) => Some(<[u8; 16]>::try_from(b).expect("16 bytes")),
                    None => {
                        return Err(invalid(
                            "PassThrough.PayloadUuid must be 32 hexadecimal characters when PayloadType is 5.",
                        ))
                    }
                }
            } else {
                None
            };
            if t.content.is_empty() {
                return Err(missing("PassThrough.PayloadContent"));
            }
            Some(PassThrough {
                content: t.content,
                payload_type: pt,
                uuid,
                interval_ms: ranged(t.interval, "PassThrough.Interval", 100, 86_400_000, 1000)?
                    as u64,
                follow_idr: ranged(t.follow_idr, "PassThrough.FollowIdr", 0, 1, 0)? == 1,
            })
        }
        None => None,
    };
    Ok(Sei {
        layout_volume,
        pass_through,
    })
}

fn single_of(
    s: SingleSubscribeParams,
    scope: Scope<'_>,
) -> Result<(String, layout::Stream), ApiError> {
    let u = s
        .stream
        .user
        .as_ref()
        .ok_or_else(|| missing("SingleSubscribeParams.UserMediaStream.UserInfo"))?;
    Ok((
        member(
            u,
            scope,
            "SingleSubscribeParams.UserMediaStream.UserInfo",
            false,
        )?,
        stream_of(
            s.stream.stream_type,
            "SingleSubscribeParams.UserMediaStream.StreamType",
        )?,
    ))
}

pub async fn start_publish_cdn_stream(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: Start = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let room = room_of(&p.room_id, p.room_id_type, "RoomId")?;
    let agent = p.agent;
    if agent.user_id.is_empty() {
        return Err(missing("AgentParams.UserId"));
    }
    let user_sig = agent.user_sig.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::MissingParameter(
            "AgentParams.UserSig (the robot enters the room as a user and needs one)".into(),
        )
    })?;
    check_usersig(ctx, app, &agent.user_id, &user_sig)?;
    let max_idle = ranged(agent.max_idle, "AgentParams.MaxIdleTime", 5, 86_400, 30)? as u64;
    let transcoding = match p.with_transcoding {
        0 => false,
        1 => true,
        v => {
            return Err(out_of_range(format!(
                "WithTranscoding must be 0 or 1; got {v}."
            )))
        }
    };
    if let Some(r) = &p.record {
        let uni = r
            .get("UniRecord")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
        if !matches!(uni, None | Some(0) | Some(1)) {
            return Err(invalid(
                "RecordParams: recording a relay's output is not supported by this server yet; record the room with CreateCloudRecording.",
            ));
        }
    }
    let mut audio_p = p.audio.ok_or_else(|| {
        ApiError::MissingParameter(
            "AudioParams (audio is always transcoded: its AudioEncode is needed)".into(),
        )
    })?;
    let audio = audio_encode(
        audio_p
            .encode
            .as_ref()
            .ok_or_else(|| missing("AudioParams.AudioEncode"))?,
    )?;
    let cdn = cdn_urls(p.cdn.unwrap_or_default())?;
    let feedback = feedback_rooms(
        ctx,
        app,
        p.feedback.unwrap_or_default(),
        &room,
        &agent.user_id,
    )?;
    if cdn.is_empty() && feedback.is_empty() {
        return Err(missing(
            "PublishCdnParams or FeedBackRoomParams (where the output goes)",
        ));
    }
    let (source, video_encode) = if transcoding {
        if p.single.is_some() {
            return Err(invalid("SingleSubscribeParams needs WithTranscoding 0."));
        }
        let (audio_users, sound_levels) =
            audio_users(&mut audio_p, Scope::Main(&room))?.unwrap_or_default();
        let (video, layout, watermarks) = match p.video {
            Some(v) => {
                let enc = video_encode(
                    v.encode
                        .as_ref()
                        .ok_or_else(|| missing("VideoParams.VideoEncode"))?,
                )?;
                let mut layout = layout_of(v.layout, enc, Scope::Main(&room))?;
                layout.background =
                    color(v.background_color.as_deref(), "VideoParams.BackGroundColor")?
                        .unwrap_or(0);
                layout.background_image =
                    image(v.background_image, "VideoParams.BackgroundImageUrl")?;
                ranged(
                    v.background_render_mode,
                    "VideoParams.BackgroundRenderMode",
                    0,
                    2,
                    2,
                )?;
                let wm = watermarks(v.watermarks.unwrap_or_default(), enc)?;
                (Some(enc), layout, wm)
            }
            None => (None, Layout::default(), Vec::new()),
        };
        let mut rooms: Vec<&str> = layout
            .cells
            .iter()
            .filter_map(|c| c.user.as_deref())
            .chain(audio_users.allow.iter().map(String::as_str))
            .filter_map(|u| split_member(u).1)
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        if rooms.len() > MAX_MIXED - 1 {
            return Err(out_of_range(format!(
                "A mix takes streams of at most {MAX_MIXED} rooms."
            )));
        }
        (
            RelaySource::Mix(Mix {
                video,
                layout,
                audio_users,
                sound_levels,
                watermarks,
            }),
            video,
        )
    } else {
        let single = p.single.ok_or_else(|| {
            missing("SingleSubscribeParams (WithTranscoding 0 relays one stream)")
        })?;
        let (user, stream) = single_of(single, Scope::Main(&room))?;
        if audio_p.allow.is_some() || audio_p.block.is_some() {
            return Err(invalid(
                "SubscribeAudioList and UnSubscribeAudioList apply to mixes (WithTranscoding 1).",
            ));
        }
        let video = match p.video {
            Some(v) => {
                if v.layout.is_some() || v.watermarks.as_ref().is_some_and(|w| !w.is_empty()) {
                    return Err(invalid(
                        "VideoParams: layouts and watermarks need WithTranscoding 1.",
                    ));
                }
                Some(video_encode(
                    v.encode
                        .as_ref()
                        .ok_or_else(|| missing("VideoParams.VideoEncode"))?,
                )?)
            }
            None => None,
        };
        (
            RelaySource::Single {
                user,
                stream,
                video,
            },
            video,
        )
    };
    let sei = match p.sei {
        Some(s) if transcoding => sei(s)?,
        Some(_) => return Err(invalid("SeiParams apply to mixes (WithTranscoding 1).")),
        None => Sei::default(),
    };
    let relay = Relay {
        max_idle_secs: max_idle,
        audio: Some(audio),
        source,
        cdn,
        feedback,
        sei,
    };
    let task_id = ctx
        .state
        .media
        .start_relay(RelayStart {
            app,
            room,
            user_id: agent.user_id,
            user_sig,
            relay,
            audio: Some(audio),
            video_encode,
        })
        .await?;
    fields(&TaskOut { task_id })
}

pub async fn update_publish_cdn_stream(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: Update = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let id = task_id(&p.task_id)?;
    if p.sequence < 0 {
        return Err(out_of_range("SequenceNumber must not be negative."));
    }
    let transcoding = match p.with_transcoding {
        0 => false,
        1 => true,
        v => {
            return Err(out_of_range(format!(
                "WithTranscoding must be 0 or 1; got {v}."
            )))
        }
    };
    // The task's room is the worker's to know: users named with a room come as member ids,
    // and the worker writes those of its own room as plain ids.
    let mut update = RelayUpdate::default();
    let mut audio = None;
    if let Some(mut a) = p.audio {
        if let Some(e) = &a.encode {
            audio = Some(audio_encode(e)?);
        }
        update.audio_users = audio_users(&mut a, Scope::Unknown)?;
    }
    let mut video_encode_v = None;
    let video_params = p.video.is_some();
    if let Some(mut v) = p.video {
        if !transcoding {
            return Err(invalid(
                "VideoParams can change only when transcoding (WithTranscoding 1).",
            ));
        }
        let enc = match &v.encode {
            Some(e) => {
                let e = video_encode(e)?;
                video_encode_v = Some(e);
                e
            }
            None => VideoEncode {
                width: 1920,
                height: 1080,
                fps: 15,
                bitrate_bps: 0,
                gop_secs: 2,
            },
        };
        if v.layout.is_some() {
            update.layout = Some(layout_of(v.layout.take(), enc, Scope::Unknown)?);
        }
        let bg = color(v.background_color.as_deref(), "VideoParams.BackGroundColor")?;
        let bg_image = image(v.background_image.take(), "VideoParams.BackgroundImageUrl")?;
        if bg.is_some() || bg_image.is_some() {
            update.background = Some((bg.unwrap_or(0), bg_image));
        }
        if let Some(w) = v.watermarks.take() {
            update.watermarks = Some(watermarks(w, enc)?);
        }
    }
    if let Some(mut s) = p.single {
        if transcoding {
            return Err(invalid(
                "SingleSubscribeParams can change only without transcoding (WithTranscoding 0).",
            ));
        }
        // A single stream is of the task's room.
        if let Some(u) = s.stream.user.as_mut() {
            u.room_id = None;
        }
        update.single_user = Some(single_of(s, Scope::Unknown)?);
    }
    if let Some(c) = p.cdn {
        update.cdn = Some(cdn_urls(c)?);
    }
    if let Some(f) = p.feedback {
        // The robot's own id is not known here; the task's room is checked by the task.
        update.feedback = Some(feedback_rooms(
            ctx,
            app,
            f,
            &RoomKey::Str(String::new()),
            "",
        )?);
    }
    if let Some(s) = p.sei {
        if !transcoding {
            return Err(invalid("SeiParams apply to mixes (WithTranscoding 1)."));
        }
        update.sei = Some(sei(s)?);
    }
    ctx.state
        .media
        .update_relay(
            app,
            id.clone(),
            RelayChange {
                sequence: p.sequence as u64,
                transcoding,
                audio,
                video_encode: video_encode_v,
                video_params,
                update,
            },
        )
        .await?;
    fields(&TaskOut { task_id: id })
}

pub async fn stop_publish_cdn_stream(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: ByTask = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let id = task_id(&p.task_id)?;
    ctx.state.media.stop_relay(app, id.clone()).await?;
    fields(&TaskOut { task_id: id })
}
