//! The monitoring dashboards' scale actions (spec §2.3.10, §2.3.12): DescribeTRTCRealTimeScaleData
//! (users and rooms online, every 10 s over at most an hour, of the app or one room) and
//! DescribeTRTCMarketScaleData (peaks of concurrent users and rooms, distinct users and rooms,
//! per UTC hour or day over at most 60 days), from the calls and sessions the store keeps.
//! Hearth has no editions: every app may call them, within the premium edition's ranges.

use super::usage::day;
use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
use hearth_types::{SdkAppId, UnixSecs};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Seconds between two real-time rows.
const REAL_TIME_STEP: i64 = 10;
/// Longest real-time range (the premium edition's hour).
const REAL_TIME_MAX_SECS: i64 = 3_600;
/// Longest dashboard range in days (the premium edition's 60 days).
const MARKET_MAX_DAYS: i64 = 60;
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
    fields(&DataOut {
        data: TrtcDataResult {
            statement_id: 0,
            series: vec![SeriesInfos {
                columns,
                values: rows.into_iter().map(|row| RowValues { row }).collect(),
            }],
            total: 1,
        },
    })
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
    let room = req.room_id.filter(|r| !r.trim().is_empty());
    let from = req.start_time.div_euclid(REAL_TIME_STEP) * REAL_TIME_STEP;
    let to = req.end_time.min(now) + 1;
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

/// Rows per UTC hour (`h`) or day (`d`) from StartTime's midnight to the end of EndTime's day,
/// none starting after now.
pub async fn describe_market_scale_data(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let req: MarketScale = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    let step = match req.period.trim() {
        "h" => HOUR,
        "d" => DAY,
        other => {
            return Err(invalid(&format!(
                "Period must be \"d\" (per day) or \"h\" (per hour); got {other:?}."
            )))
        }
    };
    let start = day(&req.start_time, "StartTime")?;
    let end = day(&req.end_time, "EndTime")?;
    if end < start {
        return Err(invalid("EndTime must not be earlier than StartTime."));
    }
    if (end - start) / DAY + 1 > MARKET_MAX_DAYS {
        return Err(invalid("StartTime to EndTime may cover at most 60 days."));
    }
    if start > ctx.now.0 {
        return Err(invalid("StartTime must not be in the future."));
    }
    let to = (end + DAY).min(ctx.now.0 - ctx.now.0.rem_euclid(step) + step);
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
