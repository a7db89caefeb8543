//! Stream ingest (spec §2.3.14–17): StartStreamIngest validates every parameter (the URL's
//! scheme here; its address and whether it opens, in the task) and starts a robot that
//! publishes the URL in the room; Describe/Update/StopStreamIngest act on the running task.

use super::record::{check_usersig, out_of_range, ranged, task_id, ByTask, TaskOut};
use super::{fields, Ctx};
use crate::error::ApiError;
use crate::media::{IngestChange, IngestStart, TaskError};
use crate::params::{decode, flag, int};
use hearth_media_proto::{AudioEncode, Ingest, VideoEncode};
use hearth_types::{RoomKey, SdkAppId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The schemes an ingest pulls.
pub const INGEST_SCHEMES: &[&str] = &["http", "https", "rtmp", "srt"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "RoomId")]
    room_id: String,
    #[serde(rename = "RoomIdType", default, deserialize_with = "int::opt")]
    room_id_type: Option<i64>,
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "UserSig")]
    user_sig: String,
    #[serde(rename = "StreamUrl", default)]
    stream_url: Option<String>,
    #[serde(rename = "SourceUrl", default)]
    source_url: Option<Vec<String>>,
    #[serde(rename = "PrivateMapKey", default)]
    private_map_key: Option<String>,
    #[serde(rename = "SeekSecond", default, deserialize_with = "int::opt")]
    seek_second: Option<i64>,
    #[serde(rename = "AutoPush", default, deserialize_with = "flag::opt")]
    auto_push: Option<bool>,
    #[serde(rename = "RepeatNum", default, deserialize_with = "int::opt")]
    repeat_num: Option<i64>,
    #[serde(rename = "MaxDuration", default, deserialize_with = "int::opt")]
    max_duration: Option<i64>,
    #[serde(rename = "Volume", default, deserialize_with = "int::opt")]
    volume: Option<i64>,
    #[serde(rename = "VideoEncodeParams", default)]
    video: Option<VideoEncodeParams>,
    #[serde(rename = "AudioEncodeParams", default)]
    audio: Option<AudioEncodeParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoEncodeParams {
    #[serde(rename = "Width", default, deserialize_with = "int::opt")]
    width: Option<i64>,
    #[serde(rename = "Height", default, deserialize_with = "int::opt")]
    height: Option<i64>,
    #[serde(rename = "Fps", default, deserialize_with = "int::opt")]
    fps: Option<i64>,
    #[serde(rename = "BitRate", default, deserialize_with = "int::opt")]
    bitrate: Option<i64>,
    #[serde(rename = "Gop", default, deserialize_with = "int::opt")]
    gop: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AudioEncodeParams {
    #[serde(rename = "SampleRate", default, deserialize_with = "int::opt")]
    sample_rate: Option<i64>,
    #[serde(rename = "Channel", default, deserialize_with = "int::opt")]
    channel: Option<i64>,
    #[serde(rename = "BitRate", default, deserialize_with = "int::opt")]
    bitrate: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "TaskId")]
    task_id: String,
    #[serde(rename = "StreamUrl", default)]
    stream_url: Option<String>,
    #[serde(rename = "Volume", default, deserialize_with = "int::opt")]
    volume: Option<i64>,
    #[serde(rename = "IsPause", default, deserialize_with = "flag::opt")]
    is_pause: Option<bool>,
}

#[derive(Serialize)]
struct StatusOut {
    #[serde(rename = "Status")]
    status: &'static str,
}

/// Decodes a Start/StopStreamIngest body: a value of the wrong type is the spec's
/// `InvalidParameter.BodyParamsError` for these actions.
fn decode_body<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, ApiError> {
    decode(params).map_err(|e| match e {
        ApiError::InvalidParameter(message) => ApiError::InvalidParameterOf {
            detail: "BodyParamsError",
            message,
        },
        e => e,
    })
}

fn stream_url(u: &str) -> Result<String, ApiError> {
    let u = u.trim();
    let bad = |m: String| ApiError::InvalidParameterOf {
        detail: "StreamUrl",
        message: m,
    };
    let scheme = u
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .ok_or_else(|| bad(format!("StreamUrl {u:?} is not a URL.")))?;
    if !INGEST_SCHEMES.contains(&scheme.as_str()) {
        return Err(bad(format!(
            "StreamUrl: the scheme {scheme} is not taken; use http(s) (MP4, FLV, TS, HLS), rtmp or srt."
        )));
    }
    Ok(u.to_owned())
}

/// RoomIdType of stream ingest: `0` string, `1` integer (the default).
fn room_of(id: &str, kind: Option<i64>) -> Result<RoomKey, ApiError> {
    if id.is_empty() {
        return Err(ApiError::MissingParameterOf {
            detail: "RoomId",
            name: "RoomId".into(),
        });
    }
    match kind.unwrap_or(1) {
        1 => {
            let bad = |m: String| ApiError::InvalidParameterOf {
                detail: "RoomId",
                message: m,
            };
            let n = id.trim().parse::<u64>().map_err(|_| {
                bad(format!(
                    "RoomId {id:?} is not an integer room; use RoomIdType 0 for string rooms."
                ))
            })?;
            RoomKey::num(n).map_err(|e| bad(e.to_string()))
        }
        0 => RoomKey::string(id).map_err(|e| ApiError::InvalidParameterOf {
            detail: "StrRoomId",
            message: e.to_string(),
        }),
        v => Err(out_of_range(format!(
            "RoomIdType must be 0 (string) or 1 (integer); got {v}."
        ))),
    }
}

fn volume(v: Option<i64>) -> Result<Option<u32>, ApiError> {
    v.map(|v| ranged(Some(v), "Volume", 0, 100, 100).map(|v| v as u32))
        .transpose()
}

fn video_params(v: VideoEncodeParams) -> Result<VideoEncode, ApiError> {
    let opt = |x: Option<i64>, name: &str, lo: i64, hi: i64| -> Result<u32, ApiError> {
        match x {
            Some(x) => Ok(ranged(Some(x), name, lo, hi, 0)? as u32),
            None => Ok(0),
        }
    };
    let e = VideoEncode {
        width: opt(v.width, "VideoEncodeParams.Width", 0, 1920)?,
        height: opt(v.height, "VideoEncodeParams.Height", 0, 1080)?,
        fps: opt(v.fps, "VideoEncodeParams.Fps", 1, 60)?,
        bitrate_bps: opt(v.bitrate, "VideoEncodeParams.BitRate", 1, 10_000)? * 1000,
        gop_secs: opt(v.gop, "VideoEncodeParams.Gop", 1, 2)?,
    };
    if (e.width == 0) != (e.height == 0) {
        return Err(ApiError::InvalidParameter(
            "VideoEncodeParams: give Width and Height together (or neither, for the source's size)."
                .into(),
        ));
    }
    Ok(e)
}

fn audio_params(a: AudioEncodeParams) -> Result<AudioEncode, ApiError> {
    let rate = match a.sample_rate {
        None | Some(48_000) => 48_000,
        Some(44_100) => 44_100,
        Some(v) => {
            return Err(out_of_range(format!(
                "AudioEncodeParams.SampleRate must be 48000 or 44100; got {v}."
            )))
        }
    };
    Ok(AudioEncode {
        sample_rate: rate,
        channels: ranged(a.channel, "AudioEncodeParams.Channel", 1, 2, 2)? as u32,
        bitrate_bps: ranged(a.bitrate, "AudioEncodeParams.BitRate", 8, 500, 64)? as u32 * 1000,
    })
}

pub async fn start_stream_ingest(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let p: Start = decode_body(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let room = room_of(&p.room_id, p.room_id_type)?;
    if p.user_id.is_empty() {
        return Err(ApiError::MissingParameterOf {
            detail: "UserId",
            name: "UserId".into(),
        });
    }
    check_usersig(ctx, app, &p.user_id, &p.user_sig)?;
    // StreamUrl, or the first of the older SourceUrl list.
    let url = p
        .stream_url
        .filter(|u| !u.trim().is_empty())
        .or_else(|| {
            p.source_url
                .and_then(|l| l.into_iter().find(|u| !u.trim().is_empty()))
        })
        .ok_or_else(|| ApiError::InvalidParameterOf {
            detail: "StreamUrl",
            message: "StreamUrl is required: the URL of the media to bring into the room.".into(),
        })?;
    let url = stream_url(&url)?;
    if p.auto_push == Some(true) {
        return Err(ApiError::NotRtmpFunction);
    }
    let seek = p.seek_second.unwrap_or(0);
    if seek < 0 {
        return Err(out_of_range(format!(
            "SeekSecond must not be negative; got {seek}."
        )));
    }
    let repeat = match p.repeat_num.unwrap_or(1) {
        -1 => None,
        n @ 1..=1000 => Some(n as u32),
        n => {
            return Err(out_of_range(format!(
                "RepeatNum must be -1 (forever) or 1 to 1000; got {n}."
            )))
        }
    };
    let max_secs = match p.max_duration {
        Some(m) => Some(ranged(Some(m), "MaxDuration", 1, 10_080, 0)? as u64 * 60),
        None => None,
    };
    let ingest = Ingest {
        url,
        seek_secs: seek as u64,
        repeat,
        max_secs,
        volume: volume(p.volume)?.unwrap_or(100),
        video: p.video.map(video_params).transpose()?,
        audio: p.audio.map(audio_params).transpose()?,
        max_width: 0,
        max_height: 0,
        live_retry_secs: 0,
        passthrough: false,
        outbound_allow: Vec::new(),
    };
    let task_id = ctx
        .state
        .media
        .start_ingest(IngestStart {
            app,
            room,
            user_id: p.user_id,
            user_sig: p.user_sig,
            private_map_key: p.private_map_key.filter(|k| !k.is_empty()),
            ingest,
        })
        .await?;
    fields(&TaskOut { task_id })
}

pub async fn describe_stream_ingest(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: ByTask = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let id = task_id(&p.task_id)?;
    let status = match ctx.state.media.describe_ingest(app, id).await {
        Ok(()) => "InProgress",
        Err(TaskError::NotFound | TaskError::Finished) => "NotExist",
        Err(e) => return Err(e.into()),
    };
    fields(&StatusOut { status })
}

pub async fn update_stream_ingest(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: Update = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let id = task_id(&p.task_id)?;
    let change = IngestChange {
        url: p
            .stream_url
            .filter(|u| !u.trim().is_empty())
            .map(|u| stream_url(&u))
            .transpose()?,
        volume: volume(p.volume)?,
        pause: p.is_pause,
    };
    match ctx.state.media.update_ingest(app, id, change).await {
        Ok(()) => fields(&StatusOut {
            status: "InProgress",
        }),
        Err(TaskError::NotFound | TaskError::Finished) => Err(ApiError::TaskNotExist),
        Err(e) => Err(e.into()),
    }
}

pub async fn stop_stream_ingest(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let p: ByTask = decode_body(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let id = task_id(&p.task_id)?;
    match ctx.state.media.stop_ingest(app, id.clone()).await {
        Ok(()) => Ok(Map::new()),
        Err(TaskError::NotFound) => Err(ApiError::InvalidParameterOf {
            detail: "TaskId",
            message: format!("No stream ingest task {id} of this application."),
        }),
        Err(e) => Err(e.into()),
    }
}
