//! On-cloud recording (spec §2.3.32–35): CreateCloudRecording validates every parameter of the
//! spec and turns it into a recording task; Describe, Modify and Delete act on it through the
//! [`MediaTasks`](crate::media::MediaTasks) handle.

use super::{fields, Ctx};
use crate::error::ApiError;
use crate::media::{RecordingStart, Storage};
use crate::params::{decode, int};
use hearth_media_proto::layout::{self, CustomCell, Fit, Layout, LayoutMode};
use hearth_media_proto::{
    AudioEncode, Fill, MediaSel, Outputs, RecordMode, Recording, StreamType, Subscriptions,
    UserFilter, VideoEncode,
};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "RoomId")]
    room_id: String,
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "UserSig")]
    user_sig: String,
    #[serde(rename = "RecordParams")]
    record: RecordParams,
    #[serde(rename = "StorageParams")]
    storage: StorageParams,
    #[serde(rename = "RoomIdType", default, deserialize_with = "int::opt")]
    room_id_type: Option<i64>,
    #[serde(rename = "MixTranscodeParams", default)]
    transcode: Option<MixTranscodeParams>,
    #[serde(rename = "MixLayoutParams", default)]
    layout: Option<MixLayoutParams>,
    #[serde(rename = "ResourceExpiredHour", default, deserialize_with = "int::opt")]
    expired_hour: Option<i64>,
    #[serde(rename = "PrivateMapKey", default)]
    private_map_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordParams {
    #[serde(rename = "RecordMode", deserialize_with = "int::de")]
    record_mode: i64,
    #[serde(rename = "MaxIdleTime", default, deserialize_with = "int::opt")]
    max_idle: Option<i64>,
    #[serde(rename = "StreamType", default, deserialize_with = "int::opt")]
    stream_type: Option<i64>,
    #[serde(rename = "SubscribeStreamUserIds", default)]
    subscribe: Option<SubscribeStreamUserIds>,
    #[serde(rename = "OutputFormat", default, deserialize_with = "int::opt")]
    output_format: Option<i64>,
    #[serde(rename = "AvMerge", default, deserialize_with = "int::opt")]
    av_merge: Option<i64>,
    #[serde(
        rename = "MaxMediaFileDuration",
        default,
        deserialize_with = "int::opt"
    )]
    max_file_minutes: Option<i64>,
    #[serde(rename = "MediaId", default, deserialize_with = "int::opt")]
    media_id: Option<i64>,
    #[serde(rename = "FillType", default, deserialize_with = "int::opt")]
    fill_type: Option<i64>,
    #[serde(rename = "SubscribeAbility", default, deserialize_with = "int::opt")]
    subscribe_ability: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SubscribeStreamUserIds {
    #[serde(rename = "SubscribeAudioUserIds", default)]
    audio_allow: Option<Vec<String>>,
    #[serde(rename = "UnSubscribeAudioUserIds", default)]
    audio_block: Option<Vec<String>>,
    #[serde(rename = "SubscribeVideoUserIds", default)]
    video_allow: Option<Vec<String>>,
    #[serde(rename = "UnSubscribeVideoUserIds", default)]
    video_block: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageParams {
    #[serde(rename = "CloudStorage", default)]
    cloud_storage: Option<CloudStorage>,
    #[serde(rename = "CloudVod", default)]
    cloud_vod: Option<CloudVod>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudStorage {
    #[serde(rename = "Vendor", deserialize_with = "int::de")]
    vendor: i64,
    #[serde(rename = "Region")]
    region: String,
    #[serde(rename = "Bucket")]
    bucket: String,
    #[serde(rename = "AccessKey")]
    access_key: String,
    #[serde(rename = "SecretKey")]
    secret_key: String,
    #[serde(rename = "FileNamePrefix", default)]
    prefix: Option<Vec<String>>,
    #[serde(rename = "EndpointUrl", default)]
    endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudVod {
    #[serde(rename = "TencentVod", default)]
    vod: Option<TencentVod>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TencentVod {
    #[serde(rename = "Procedure", default)]
    _procedure: Option<String>,
    #[serde(rename = "ExpireTime", default, deserialize_with = "int::opt")]
    expire: Option<i64>,
    #[serde(rename = "StorageRegion", default)]
    _region: Option<String>,
    #[serde(rename = "ClassId", default, deserialize_with = "int::opt")]
    _class: Option<i64>,
    #[serde(rename = "SubAppId", default, deserialize_with = "int::opt")]
    _sub_app: Option<i64>,
    #[serde(rename = "SessionContext", default)]
    _session_context: Option<String>,
    #[serde(rename = "SourceContext", default)]
    _source_context: Option<String>,
    #[serde(rename = "MediaType", default, deserialize_with = "int::opt")]
    media_type: Option<i64>,
    #[serde(rename = "UserDefineRecordId", default)]
    user_define: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixTranscodeParams {
    #[serde(rename = "VideoParams", default)]
    video: Option<VideoParams>,
    #[serde(rename = "AudioParams", default)]
    audio: Option<AudioParams>,
}

/// Width, Height, Fps, BitRate, Gop: recording's VideoParams and the relay's VideoEncode.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VideoParams {
    #[serde(rename = "Width", deserialize_with = "int::de")]
    pub width: i64,
    #[serde(rename = "Height", deserialize_with = "int::de")]
    pub height: i64,
    #[serde(rename = "Fps", deserialize_with = "int::de")]
    pub fps: i64,
    #[serde(rename = "BitRate", deserialize_with = "int::de")]
    pub bitrate: i64,
    #[serde(rename = "Gop", deserialize_with = "int::de")]
    pub gop: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AudioParams {
    #[serde(rename = "SampleRate", deserialize_with = "int::de")]
    sample_rate: i64,
    #[serde(rename = "Channel", deserialize_with = "int::de")]
    channel: i64,
    #[serde(rename = "BitRate", deserialize_with = "int::de")]
    bitrate: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixLayoutParams {
    #[serde(rename = "MixLayoutMode", default, deserialize_with = "int::opt")]
    mode: Option<i64>,
    #[serde(rename = "MixLayoutList", default)]
    list: Option<Vec<MixLayout>>,
    #[serde(rename = "BackGroundColor", default)]
    background_color: Option<String>,
    #[serde(rename = "MaxResolutionUserId", default)]
    big_user: Option<String>,
    #[serde(rename = "MediaId", default, deserialize_with = "int::opt")]
    media_id: Option<i64>,
    #[serde(rename = "BackgroundImageUrl", default)]
    background_image: Option<String>,
    #[serde(rename = "PlaceHolderMode", default, deserialize_with = "int::opt")]
    placeholder_mode: Option<i64>,
    #[serde(
        rename = "BackgroundImageRenderMode",
        default,
        deserialize_with = "int::opt"
    )]
    background_render_mode: Option<i64>,
    #[serde(rename = "DefaultSubBackgroundImage", default)]
    default_sub_image: Option<String>,
    #[serde(rename = "WaterMarkList", default)]
    watermarks: Option<Vec<Value>>,
    #[serde(rename = "RenderMode", default, deserialize_with = "int::opt")]
    render_mode: Option<i64>,
    #[serde(
        rename = "MaxResolutionUserAlign",
        default,
        deserialize_with = "int::opt"
    )]
    align: Option<i64>,
    #[serde(rename = "PureAudioDisableLayout", default)]
    pure_audio_disable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixLayout {
    #[serde(rename = "Top", deserialize_with = "int::de")]
    top: i64,
    #[serde(rename = "Left", deserialize_with = "int::de")]
    left: i64,
    #[serde(rename = "Width", deserialize_with = "int::de")]
    width: i64,
    #[serde(rename = "Height", deserialize_with = "int::de")]
    height: i64,
    #[serde(rename = "UserId", default)]
    user_id: Option<String>,
    #[serde(rename = "Alpha", default, deserialize_with = "int::opt")]
    alpha: Option<i64>,
    #[serde(rename = "RenderMode", default, deserialize_with = "int::opt")]
    render_mode: Option<i64>,
    #[serde(rename = "MediaId", default, deserialize_with = "int::opt")]
    media_id: Option<i64>,
    #[serde(rename = "ImageLayer", default, deserialize_with = "int::opt")]
    image_layer: Option<i64>,
    #[serde(rename = "SubBackgroundImage", default)]
    sub_background_image: Option<String>,
}

/// The request of the actions that name a task only (Describe/Delete recordings, Stop relays,
/// Describe/Stop ingests).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ByTask {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    pub sdk_app_id: u32,
    #[serde(rename = "TaskId")]
    pub task_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Modify {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "TaskId")]
    task_id: String,
    #[serde(rename = "MixLayoutParams", default)]
    layout: Option<MixLayoutParams>,
    #[serde(rename = "SubscribeStreamUserIds", default)]
    subscribe: Option<SubscribeStreamUserIds>,
}

/// The answer of the actions that start a task.
#[derive(Serialize)]
pub(super) struct TaskOut {
    #[serde(rename = "TaskId")]
    pub task_id: String,
}

#[derive(Serialize)]
struct StorageFileOut {
    #[serde(rename = "UserId")]
    user_id: Option<String>,
    #[serde(rename = "FileName")]
    file_name: String,
    #[serde(rename = "TrackType")]
    track_type: &'static str,
    #[serde(rename = "BeginTimeStamp")]
    begin: u64,
}

#[derive(Serialize)]
struct DescribeOut {
    #[serde(rename = "TaskId")]
    task_id: String,
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "StorageFileList")]
    files: Vec<StorageFileOut>,
}

pub(super) fn out_of_range(m: impl Into<String>) -> ApiError {
    ApiError::InvalidParameterOf {
        detail: "OutOfRange",
        message: m.into(),
    }
}

/// `name` in `lo..=hi`, or the default.
pub(super) fn ranged(
    v: Option<i64>,
    name: &str,
    lo: i64,
    hi: i64,
    default: i64,
) -> Result<i64, ApiError> {
    let v = v.unwrap_or(default);
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(out_of_range(format!(
            "{name} must be {lo} to {hi}; got {v}."
        )))
    }
}

/// Spec defaults of VideoParams (mixed mode).
const MIX_VIDEO: VideoEncode = VideoEncode {
    width: 360,
    height: 640,
    fps: 15,
    bitrate_bps: 550_000,
    gop_secs: 10,
};
/// Single-stream recordings: each user's picture, kept in aspect, on this canvas.
const SINGLE_VIDEO: VideoEncode = VideoEncode {
    width: 1280,
    height: 720,
    fps: 15,
    bitrate_bps: 1_200_000,
    gop_secs: 4,
};
/// Files are split at 2 GB as well as by MaxMediaFileDuration.
const MAX_FILE_BYTES: u64 = 2_000_000_000;
const MAX_LIST: usize = 32;
/// Videos mixed at most (SubscribeStreamUserIds: 25 streams, 24 videos when mixing).
const MAX_MIXED_VIDEOS: usize = 24;

fn video_params(v: &VideoParams) -> Result<VideoEncode, ApiError> {
    let w = ranged(Some(v.width), "VideoParams.Width", 2, 1920, 0)?;
    let h = ranged(Some(v.height), "VideoParams.Height", 2, 1920, 0)?;
    if w * h > 1920 * 1080 {
        return Err(out_of_range(
            "VideoParams: Width × Height must be at most 1920 × 1080.",
        ));
    }
    if w % 2 != 0 || h % 2 != 0 {
        return Err(ApiError::InvalidParameter(
            "VideoParams: Width and Height must be even (H.264 with 4:2:0 chroma).".into(),
        ));
    }
    Ok(VideoEncode {
        width: w as u32,
        height: h as u32,
        fps: ranged(Some(v.fps), "VideoParams.Fps", 1, 60, 0)? as u32,
        bitrate_bps: ranged(Some(v.bitrate), "VideoParams.BitRate", 64_000, 8_192_000, 0)? as u32,
        gop_secs: ranged(Some(v.gop), "VideoParams.Gop", 1, 10, 0)? as u32,
    })
}

fn audio_params(a: &AudioParams) -> Result<AudioEncode, ApiError> {
    let rate = match a.sample_rate {
        1 => 48_000,
        2 => 44_100,
        3 => 16_000,
        v => {
            return Err(out_of_range(format!(
                "AudioParams.SampleRate must be 1 (48000), 2 (44100) or 3 (16000); got {v}."
            )))
        }
    };
    Ok(AudioEncode {
        sample_rate: rate,
        channels: ranged(Some(a.channel), "AudioParams.Channel", 1, 2, 2)? as u32,
        bitrate_bps: ranged(
            Some(a.bitrate),
            "AudioParams.BitRate",
            32_000,
            128_000,
            64_000,
        )? as u32,
    })
}

fn filter(
    allow: Option<Vec<String>>,
    block: Option<Vec<String>>,
    what: &str,
) -> Result<UserFilter, ApiError> {
    let allow = allow.unwrap_or_default();
    let block = block.unwrap_or_default();
    if allow.len() > MAX_LIST || block.len() > MAX_LIST {
        return Err(out_of_range(format!(
            "SubscribeStreamUserIds: each {what} list holds at most {MAX_LIST} user IDs."
        )));
    }
    if !allow.is_empty() && !block.is_empty() {
        return Err(ApiError::InvalidParameter(format!(
            "SubscribeStreamUserIds: an allowlist and a blocklist for {what} cannot be given together."
        )));
    }
    Ok(UserFilter { allow, block })
}

fn subscriptions(s: Option<SubscribeStreamUserIds>) -> Result<Subscriptions, ApiError> {
    let s = s.unwrap_or_default();
    let audio = filter(s.audio_allow, s.audio_block, "audio")?;
    let video = filter(s.video_allow, s.video_block, "video")?;
    // Streams received at once: named users count one each.
    let named = audio
        .allow
        .iter()
        .chain(video.allow.iter())
        .filter(|u| !u.ends_with(".*$"));
    let mut users: Vec<&String> = named.collect();
    users.sort();
    users.dedup();
    if users.len() > 25 {
        return Err(out_of_range(
            "SubscribeStreamUserIds: at most 25 streams are received at once.",
        ));
    }
    if video.allow.iter().filter(|u| !u.ends_with(".*$")).count() > MAX_MIXED_VIDEOS {
        return Err(out_of_range(
            "SubscribeStreamUserIds: at most 24 videos are mixed.",
        ));
    }
    Ok(Subscriptions { audio, video })
}

fn fit(v: Option<i64>, name: &str) -> Result<Fit, ApiError> {
    Ok(match ranged(v, name, 0, 3, 1)? {
        0 => Fit::Stretch,
        1 => Fit::Crop,
        2 => Fit::Pad,
        _ => Fit::SmartCrop,
    })
}

fn stream_of(v: Option<i64>, name: &str) -> Result<layout::Stream, ApiError> {
    Ok(match ranged(v, name, 0, 1, 0)? {
        0 => layout::Stream::Main,
        _ => layout::Stream::Sub,
    })
}

/// An image URL of a layout: JPG/PNG by its extension (the task fetches it, ≤ 5 MB).
pub(super) fn image(url: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::InvalidParameter(format!(
            "{name} must be an http(s) URL."
        )));
    }
    if !(path.ends_with(".png") || path.ends_with(".jpg") || path.ends_with(".jpeg")) {
        return Err(ApiError::InvalidParameter(format!(
            "{name} must name a JPG or PNG file (the URL ends with .jpg, .jpeg or .png)."
        )));
    }
    Ok(Some(url))
}

fn layout_params(p: Option<MixLayoutParams>, canvas: VideoEncode) -> Result<Layout, ApiError> {
    let Some(p) = p else {
        return Ok(Layout::default());
    };
    let mode = match ranged(p.mode, "MixLayoutMode", 1, 4, 3)? {
        1 => LayoutMode::Floating,
        2 => LayoutMode::ScreenShare,
        3 => LayoutMode::Grid,
        _ => LayoutMode::Custom,
    };
    if p.watermarks.as_ref().is_some_and(|w| !w.is_empty()) {
        return Err(ApiError::InvalidParameter(
            "WaterMarkList: watermarks in recordings are not supported by this server yet.".into(),
        ));
    }
    let background = match p.background_color.as_deref().filter(|s| !s.is_empty()) {
        None => 0,
        Some(c) => layout::parse_color(c).ok_or_else(|| {
            ApiError::InvalidParameter(format!("BackGroundColor must be #RRGGBB; got {c:?}."))
        })?,
    };
    let list = p.list.unwrap_or_default();
    if list.len() > 25 {
        return Err(out_of_range("MixLayoutList holds at most 25 windows."));
    }
    if mode == LayoutMode::Custom && list.is_empty() {
        return Err(ApiError::InvalidParameter(
            "MixLayoutMode 4 (custom) needs MixLayoutList.".into(),
        ));
    }
    let mut cells = Vec::new();
    for (i, c) in list.into_iter().enumerate() {
        let n = |f: &str| format!("MixLayoutList.{i}.{f}");
        let top = ranged(Some(c.top), &n("Top"), 0, 1920, 0)?;
        let left = ranged(Some(c.left), &n("Left"), 0, 1920, 0)?;
        let width = ranged(Some(c.width), &n("Width"), 0, 1920, 0)?;
        let height = ranged(Some(c.height), &n("Height"), 0, 1920, 0)?;
        if left + width > i64::from(canvas.width) || top + height > i64::from(canvas.height) {
            return Err(out_of_range(format!(
                "MixLayoutList.{i}: the window must fit the {}×{} canvas.",
                canvas.width, canvas.height
            )));
        }
        cells.push(CustomCell {
            top: top as u32,
            left: left as u32,
            width: width as u32,
            height: height as u32,
            user: c.user_id.filter(|u| !u.is_empty()),
            alpha: ranged(c.alpha, &n("Alpha"), 0, 255, 0)? as u32,
            fit: fit(c.render_mode, &n("RenderMode"))?,
            stream: stream_of(c.media_id, &n("MediaId"))?,
            layer: ranged(c.image_layer, &n("ImageLayer"), 0, 100, 0)? as u32,
            image: image(c.sub_background_image, &n("SubBackgroundImage"))?,
            crop: None,
        });
    }
    let _ = fit(p.background_render_mode, "BackgroundImageRenderMode")?;
    Ok(Layout {
        mode,
        cells,
        background,
        background_image: image(p.background_image, "BackgroundImageUrl")?,
        big_user: p.big_user.filter(|u| !u.is_empty()),
        big_stream: stream_of(p.media_id, "MixLayoutParams.MediaId")?,
        big_right: ranged(p.align, "MaxResolutionUserAlign", 0, 1, 0)? == 1,
        fit: fit(p.render_mode, "MixLayoutParams.RenderMode")?,
        placeholder: ranged(p.placeholder_mode, "PlaceHolderMode", 0, 1, 0)? == 1,
        placeholder_image: image(p.default_sub_image, "DefaultSubBackgroundImage")?,
        audio_only_no_cell: p.pure_audio_disable.unwrap_or(false),
        max_cells: 0,
    })
}

fn outputs(code: i64) -> Outputs {
    match code {
        0 => Outputs {
            hls: true,
            ..Default::default()
        },
        1 => Outputs {
            hls: true,
            mp4: true,
            aac: false,
        },
        2 => Outputs {
            hls: true,
            mp4: false,
            aac: true,
        },
        3 => Outputs {
            mp4: true,
            ..Default::default()
        },
        _ => Outputs {
            aac: true,
            ..Default::default()
        },
    }
}

fn storage(p: StorageParams) -> Result<(Storage, Option<i64>), ApiError> {
    match (p.cloud_storage, p.cloud_vod) {
        (Some(c), _) => {
            let endpoint = match (c.vendor, c.endpoint.filter(|e| !e.is_empty())) {
                (0 | 1, Some(e)) => e.trim_end_matches('/').to_owned(),
                (0, None) => format!("https://cos.{}.myqcloud.com", c.region),
                (1, None) => format!("https://s3.{}.amazonaws.com", c.region),
                (v, _) => {
                    return Err(out_of_range(format!(
                        "CloudStorage.Vendor must be 0 (COS) or 1 (AWS S3); got {v}."
                    )))
                }
            };
            let prefix = c.prefix.unwrap_or_default();
            for p in &prefix {
                if p.is_empty()
                    || !p
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                {
                    return Err(ApiError::InvalidParameter(format!(
                        "CloudStorage.FileNamePrefix elements use letters, digits, _ and - only; got {p:?}."
                    )));
                }
            }
            for (name, v) in [
                ("Region", &c.region),
                ("Bucket", &c.bucket),
                ("AccessKey", &c.access_key),
                ("SecretKey", &c.secret_key),
            ] {
                if v.is_empty() {
                    return Err(ApiError::MissingParameterOf {
                        detail: name_detail(name),
                        name: name.into(),
                    });
                }
            }
            Ok((
                Storage::S3 {
                    endpoint,
                    region: c.region,
                    bucket: c.bucket,
                    access_key: c.access_key,
                    secret_key: c.secret_key,
                    prefix,
                },
                None,
            ))
        }
        (None, Some(v)) => {
            let vod = v.vod.unwrap_or_default();
            let expire = vod.expire.unwrap_or(0);
            if expire < 0 {
                return Err(out_of_range("TencentVod.ExpireTime must not be negative."));
            }
            let user_prefix = vod.user_define.filter(|u| !u.is_empty());
            if let Some(u) = &user_prefix {
                if u.len() > 64
                    || !u
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
                {
                    return Err(ApiError::InvalidParameter(
                        "TencentVod.UserDefineRecordId: letters, digits, _ and -, at most 64 bytes.".into(),
                    ));
                }
            }
            let media = ranged(vod.media_type, "TencentVod.MediaType", 0, 4, 0)?;
            // MediaType → OutputFormat: 0 MP4, 1 HLS, 2 AAC, 3 HLS+MP4, 4 HLS+AAC.
            let format = [3, 0, 4, 1, 2][media as usize];
            Ok((
                Storage::Vod {
                    expire_secs: expire as u64,
                    user_prefix,
                },
                Some(format),
            ))
        }
        (None, None) => Err(ApiError::MissingParameterOf {
            detail: "CloudStorage",
            name: "StorageParams.CloudStorage".into(),
        }),
    }
}

fn name_detail(name: &str) -> &'static str {
    match name {
        "Region" => "Region",
        "Bucket" => "Bucket",
        "AccessKey" => "AccessKey",
        _ => "SecretKey",
    }
}

pub async fn create_cloud_recording(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: Create = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let bad_room = |m: String| ApiError::InvalidParameterOf {
        detail: "RoomId",
        message: m,
    };
    if p.room_id.is_empty() {
        return Err(ApiError::MissingParameterOf {
            detail: "RoomId",
            name: "RoomId".into(),
        });
    }
    let room = match ranged(p.room_id_type, "RoomIdType", 0, 1, 1)? {
        0 => RoomKey::string(&p.room_id).map_err(|e| bad_room(e.to_string()))?,
        _ => {
            let n = p.room_id.trim().parse::<u64>().map_err(|_| {
                bad_room(format!(
                    "RoomId {:?} is not a 32-bit integer room; use RoomIdType 0 for string rooms.",
                    p.room_id
                ))
            })?;
            RoomKey::num(n).map_err(|e| bad_room(e.to_string()))?
        }
    };
    if p.user_id.is_empty() {
        return Err(ApiError::MissingParameterOf {
            detail: "UserId",
            name: "UserId".into(),
        });
    }
    if p.user_sig.is_empty() {
        return Err(ApiError::MissingParameterOf {
            detail: "UserSig",
            name: "UserSig".into(),
        });
    }
    check_usersig(ctx, app, &p.user_id, &p.user_sig)?;
    let r = p.record;
    let mode = match r.record_mode {
        1 => RecordMode::Single,
        2 => RecordMode::Mixed,
        v => {
            return Err(out_of_range(format!(
                "RecordMode must be 1 (single-stream) or 2 (mixed); got {v}."
            )))
        }
    };
    let stream_type = match ranged(r.stream_type, "StreamType", 0, 2, 0)? {
        0 => StreamType::AudioVideo,
        1 => StreamType::Audio,
        _ => StreamType::Video,
    };
    let (storage, vod_format) = storage(p.storage)?;
    let format = match vod_format {
        Some(f) => f,
        None => ranged(r.output_format, "OutputFormat", 0, 4, 0)?,
    };
    let outs = outputs(format);
    if outs.aac && stream_type == StreamType::Video {
        return Err(ApiError::InvalidParameter(
            "AAC output needs audio: StreamType 2 (video only) cannot make AAC files.".into(),
        ));
    }
    let media = match ranged(r.media_id, "MediaId", 0, 2, 0)? {
        0 => MediaSel::Both,
        1 => MediaSel::Main,
        _ => MediaSel::Sub,
    };
    let (video, audio) = match p.transcode {
        Some(t) if mode == RecordMode::Mixed => (
            t.video
                .as_ref()
                .map(video_params)
                .transpose()?
                .unwrap_or(MIX_VIDEO),
            t.audio.as_ref().map(audio_params).transpose()?,
        ),
        Some(t) => (
            SINGLE_VIDEO,
            t.audio.as_ref().map(audio_params).transpose()?,
        ),
        None if mode == RecordMode::Mixed => (MIX_VIDEO, None),
        None => (SINGLE_VIDEO, None),
    };
    let audio = audio.unwrap_or(AudioEncode {
        sample_rate: 48_000,
        channels: 2,
        bitrate_bps: 64_000,
    });
    let layout = layout_params(p.layout, video)?;
    let recording = Recording {
        mode,
        stream_type,
        media,
        outputs: outs,
        av_merge: ranged(r.av_merge, "AvMerge", 0, 1, 0)? == 1,
        max_idle_secs: ranged(r.max_idle, "MaxIdleTime", 5, 86_400, 30)? as u64,
        max_file_secs: ranged(r.max_file_minutes, "MaxMediaFileDuration", 1, 1440, 1440)? as u64
            * 60,
        max_file_bytes: MAX_FILE_BYTES,
        segment_secs: 0,
        video,
        audio,
        layout,
        subscriptions: subscriptions(r.subscribe)?,
        fill: match ranged(r.fill_type, "FillType", 0, 1, 0)? {
            0 => Fill::LastFrame,
            _ => Fill::Black,
        },
        include_bots: ranged(r.subscribe_ability, "SubscribeAbility", 0, 1, 0)? == 1,
    };
    let expire_hours = ranged(p.expired_hour, "ResourceExpiredHour", 6, 720, 72)? as u64;
    let task_id = ctx
        .state
        .media
        .create_recording(RecordingStart {
            app,
            room,
            user_id: p.user_id,
            user_sig: p.user_sig,
            private_map_key: p.private_map_key.filter(|k| !k.is_empty()),
            recording,
            storage,
            expire_hours,
        })
        .await?;
    fields(&TaskOut { task_id })
}

/// The robot's UserSig must be a valid one of this application, for this UserId.
pub(super) fn check_usersig(
    ctx: &Ctx,
    app: SdkAppId,
    user: &str,
    sig: &str,
) -> Result<(), ApiError> {
    let Some(rec) = ctx.state.tenants.app(app) else {
        return Err(ApiError::SdkAppIdNotExist(app.0));
    };
    let bad = |m: String| ApiError::InvalidParameterOf {
        detail: "UserSig",
        message: m,
    };
    let v = hearth_auth::verify_usersig(sig, app, &rec.secret_key, UnixSecs(ctx.now.0))
        .map_err(|e| bad(format!("UserSig is expired or wrong: {e}.")))?;
    if v.identifier != user {
        return Err(bad("UserSig was issued for another UserId.".into()));
    }
    Ok(())
}

pub(super) fn task_id(id: &str) -> Result<String, ApiError> {
    if id.is_empty() {
        return Err(ApiError::MissingParameterOf {
            detail: "TaskId",
            name: "TaskId".into(),
        });
    }
    Ok(id.to_owned())
}

pub async fn describe_cloud_recording(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: ByTask = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let id = task_id(&p.task_id)?;
    let info = ctx.state.media.describe_recording(app, id.clone()).await?;
    fields(&DescribeOut {
        task_id: id,
        status: info.status,
        files: info
            .files
            .into_iter()
            .map(|f| StorageFileOut {
                user_id: f.user_id,
                file_name: f.file_name,
                track_type: f.track_type,
                begin: f.begin_ms,
            })
            .collect(),
    })
}

pub async fn modify_cloud_recording(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: Modify = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let id = task_id(&p.task_id)?;
    // The canvas size bounds custom windows; the task checks them against its own.
    let layout = match p.layout {
        Some(l) => Some(layout_params(
            Some(l),
            VideoEncode {
                width: 1920,
                height: 1920,
                ..MIX_VIDEO
            },
        )?),
        None => None,
    };
    let subs = match p.subscribe {
        Some(s) => Some(subscriptions(Some(s))?),
        None => None,
    };
    ctx.state
        .media
        .modify_recording(app, id.clone(), layout, subs)
        .await?;
    fields(&TaskOut { task_id: id })
}

pub async fn delete_cloud_recording(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: ByTask = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    ctx.check_app(app)?;
    let id = task_id(&p.task_id)?;
    ctx.state.media.delete_recording(app, id.clone()).await?;
    fields(&TaskOut { task_id: id })
}
