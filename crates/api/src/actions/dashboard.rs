//! The monitoring dashboards (spec §2.3.10–13): DescribeTRTCRealTimeScaleData (users and rooms
//! online, every 10 s over at most an hour, of the app or one room) and
//! DescribeTRTCMarketScaleData (peaks of concurrent users and rooms, distinct users and rooms,
//! per UTC hour or day over at most 60 days), from the calls and sessions the store keeps;
//! DescribeTRTCRealTimeQualityData (freeze rates every 10 s) and DescribeTRTCMarketQualityData
//! (freeze rates, the share of slow round trips, join success rates, per UTC hour or day over at
//! most 30 days), from the store's quality rollups and entry attempts.
//! Hearth has no editions: every app may call them, within the premium edition's ranges.

use super::usage::day;
use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, flag, int};
use hearth_store::QualityBucket;
use hearth_types::{SdkAppId, UnixSecs};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Seconds between two real-time rows.
const REAL_TIME_STEP: i64 = 10;
/// Longest real-time range (the premium edition's hour).
const REAL_TIME_MAX_SECS: i64 = 3_600;
/// Longest dashboard range in days (the premium edition's 60 days).
const MARKET_MAX_DAYS: i64 = 60;
/// Longest quality dashboard range in days (the premium edition's 30 days).
const MARKET_QUALITY_MAX_DAYS: i64 = 30;
/// How far back real-time quality goes: its 10-second rollups are kept a day.
const REAL_TIME_QUALITY_BACK: i64 = 86_400;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RealTimeScale {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "StartTime", deserialize_with = "int::de")]
    start_time: i64,
    #[serde(rename = "EndTime", deserialize_with = "int::de")]
    end_time: i64,
    #[serde(rename = "RoomId", default)]
    room_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarketScale {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "StartTime")]
    start_time: String,
    #[serde(rename = "EndTime")]
    end_time: String,
    #[serde(rename = "Period")]
    period: String,
}

#[derive(Serialize)]
struct RowValues {
    #[serde(rename = "RowValue")]
    row: Vec<i64>,
    /// The same row as decimals (DescribeTRTCMarketQualityData's `IsFloat`).
    #[serde(rename = "RowValueFloat", skip_serializing_if = "Option::is_none")]
    float: Option<Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarketQuality {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "StartTime")]
    start_time: String,
    #[serde(rename = "EndTime")]
    end_time: String,
    #[serde(rename = "Period")]
    period: String,
    #[serde(rename = "IsFloat", default, deserialize_with = "flag::opt")]
    is_float: Option<bool>,
}

#[derive(Serialize)]
struct SeriesInfos {
    #[serde(rename = "Columns")]
    columns: Vec<&'static str>,
    #[serde(rename = "Values")]
    values: Vec<RowValues>,
}

#[derive(Serialize)]
struct TrtcDataResult {
    #[serde(rename = "StatementID")]
    statement_id: i64,
    #[serde(rename = "Series")]
    series: Vec<SeriesInfos>,
    #[serde(rename = "Total")]
    total: i64,
}

#[derive(Serialize)]
struct DataOut {
    #[serde(rename = "Data")]
    data: TrtcDataResult,
}

fn data(columns: Vec<&'static str>, rows: Vec<Vec<i64>>) -> Result<Map<String, Value>, ApiError> {
    let values = rows
        .into_iter()
        .map(|row| RowValues { row, float: None })
        .collect();
    data_of(columns, values)
}

fn data_of(
    columns: Vec<&'static str>,
    values: Vec<RowValues>,
) -> Result<Map<String, Value>, ApiError> {
    fields(&DataOut {
        data: TrtcDataResult {
            statement_id: 0,
            series: vec![SeriesInfos { columns, values }],
            total: 1,
        },
    })
}

/// `part` of `whole` in percent; 0 when there is no whole.
fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::InvalidParameter(message.to_owned())
}

/// Rows every 10 s from StartTime (down to a multiple of 10) to EndTime, none after now: users
/// and rooms online at some moment of those 10 s.
pub async fn describe_real_time_scale_data(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let req: RealTimeScale = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    let (from, to) = real_time_range(ctx, &req)?;
    let room = req.room_id.filter(|r| !r.trim().is_empty());
    let buckets = ctx
        .store(move |s| {
            s.scale_buckets(
                app,
                room.as_deref(),
                UnixSecs(from),
                UnixSecs(to),
                REAL_TIME_STEP,
            )
        })
        .await?;
    data(
        vec!["time", "userCount", "roomCount"],
        buckets
            .into_iter()
            .map(|b| vec![b.start.0, b.users as i64, b.rooms as i64])
            .collect(),
    )
}

/// The real-time range: StartTime to EndTime at most an hour, not in the future; rows from
/// StartTime down to a multiple of 10 s up to EndTime, none after now.
fn real_time_range(ctx: &Ctx, req: &RealTimeScale) -> Result<(i64, i64), ApiError> {
    let now = ctx.now.0;
    if req.start_time < 0 || req.start_time > now {
        return Err(invalid(
            "StartTime must be a Unix time in seconds, not in the future.",
        ));
    }
    if req.end_time < req.start_time {
        return Err(invalid("EndTime must not be earlier than StartTime."));
    }
    if req.end_time - req.start_time > REAL_TIME_MAX_SECS {
        return Err(invalid("EndTime may be at most 1 hour after StartTime."));
    }
    let from = req.start_time.div_euclid(REAL_TIME_STEP) * REAL_TIME_STEP;
    Ok((from, req.end_time.min(now) + 1))
}

/// Every 10 s: the share of the time clients watched (listened) that their video (audio) was
/// frozen, in percent, from the freeze reports of the app's or the room's clients.
pub async fn describe_real_time_quality_data(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let req: RealTimeScale = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    let (from, to) = real_time_range(ctx, &req)?;
    if from < ctx.now.0 - REAL_TIME_QUALITY_BACK {
        return Err(invalid("StartTime may be at most 24 hours ago."));
    }
    let room = req.room_id.filter(|r| !r.trim().is_empty());
    let buckets = ctx
        .store(move |s| {
            s.quality_buckets(
                app,
                room.as_deref(),
                UnixSecs(from),
                UnixSecs(to),
                REAL_TIME_STEP,
            )
        })
        .await?;
    data(
        vec!["time", "videoFreezeRate", "audioFreezeRate"],
        buckets
            .into_iter()
            .map(|b| {
                vec![
                    b.start.0,
                    percent(b.video_frozen_ms, b.video_ms).round() as i64,
                    percent(b.audio_frozen_ms, b.audio_ms).round() as i64,
                ]
            })
            .collect(),
    )
}

/// The rates of one market-quality row, in the columns' order after `time`.
fn quality_rates(b: &QualityBucket) -> [f64; 5] {
    [
        percent(b.video_frozen_ms, b.video_ms),
        percent(b.audio_frozen_ms, b.audio_ms),
        percent(b.rtt_slow as f64, b.rtt_samples as f64),
        percent(b.joined as f64, b.attempts as f64),
        percent(b.joined_in_5s as f64, b.attempts as f64),
    ]
}

/// The market dashboards' rows: per UTC hour (`h`) or day (`d`) from StartTime's midnight to
/// the end of EndTime's day, none starting after now, over at most `max_days`.
fn market_range(
    ctx: &Ctx,
    start: &str,
    end: &str,
    period: &str,
    max_days: i64,
) -> Result<(i64, i64, i64), ApiError> {
    let step = match period.trim() {
        "h" => HOUR,
        "d" => DAY,
        other => {
            return Err(invalid(&format!(
                "Period must be \"d\" (per day) or \"h\" (per hour); got {other:?}."
            )))
        }
    };
    let start = day(start, "StartTime")?;
    let end = day(end, "EndTime")?;
    if end < start {
        return Err(invalid("EndTime must not be earlier than StartTime."));
    }
    if (end - start) / DAY + 1 > max_days {
        return Err(invalid(&format!(
            "StartTime to EndTime may cover at most {max_days} days."
        )));
    }
    if start > ctx.now.0 {
        return Err(invalid("StartTime must not be in the future."));
    }
    let to = (end + DAY).min(ctx.now.0 - ctx.now.0.rem_euclid(step) + step);
    Ok((start, to, step))
}

/// Per UTC hour or day: video and audio freeze rates (clients' reports), `networkDelay` (the
/// share of users' 2-second round-trip samples above 400 ms), `joinSuccessRate` and
/// `joinSuccessIn5sRate` (entry attempts answered with success, and within 5 s), in percent;
/// whole numbers, and decimals too with `IsFloat`.
pub async fn describe_market_quality_data(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let req: MarketQuality = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    let (start, to, step) = market_range(
        ctx,
        &req.start_time,
        &req.end_time,
        &req.period,
        MARKET_QUALITY_MAX_DAYS,
    )?;
    let buckets = ctx
        .store(move |s| s.quality_buckets(app, None, UnixSecs(start), UnixSecs(to), step))
        .await?;
    let is_float = req.is_float.unwrap_or(false);
    let values = buckets
        .iter()
        .map(|b| {
            let rates = quality_rates(b);
            let mut row = vec![b.start.0];
            row.extend(rates.iter().map(|r| r.round() as i64));
            let float = is_float.then(|| {
                let mut f = vec![b.start.0 as f64];
                f.extend(rates.iter().map(|r| (r * 100.0).round() / 100.0));
                f
            });
            RowValues { row, float }
        })
        .collect();
    data_of(
        vec![
            "time",
            "videoFreezeRate",
            "audioFreezeRate",
            "networkDelay",
            "joinSuccessRate",
            "joinSuccessIn5sRate",
        ],
        values,
    )
}

/// Rows per UTC hour (`h`) or day (`d`) from StartTime's midnight to the end of EndTime's day,
/// none starting after now.
pub async fn describe_market_scale_data(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let req: MarketScale = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    let (start, to, step) = market_range(
        ctx,
        &req.start_time,
        &req.end_time,
        &req.period,
        MARKET_MAX_DAYS,
    )?;
    let buckets = ctx
        .store(move |s| s.scale_buckets(app, None, UnixSecs(start), UnixSecs(to), step))
        .await?;
    data(
        vec![
            "time",
            "peakCurrentUsers",
            "peakCurrentChannels",
            "userCount",
            "roomCount",
        ],
        buckets
            .into_iter()
            .map(|b| {
                vec![
                    b.start.0,
                    b.peak_users as i64,
                    b.peak_rooms as i64,
                    b.users as i64,
                    b.rooms as i64,
                ]
            })
            .collect(),
    )
}
