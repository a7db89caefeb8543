//! Usage statistics (spec §2.3.36–40): DescribeTrtcUsage and DescribeTrtcRoomUsage from the
//! minutes of media users actually received (the store's usage rollup, by class),
//! DescribeRecordingUsage from the minutes recording tasks recorded, DescribeMixTranscodingUsage
//! from the minutes relays mixed (by the mix's class), DescribeRelayUsage from the bytes relays
//! pushed to CDNs (average Mbit/s); in 5-minute buckets for a period of one day and daily
//! buckets above, at most 31 days, for one application or every application of the credential.
//! Days are UTC; tasks count once they have ended.

use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
use hearth_store::USAGE_BUCKET_SECS;
use hearth_types::{SdkAppId, UnixSecs, USAGE_KEYS};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingUsage {
    #[serde(rename = "StartTime")]
    start: String,
    #[serde(rename = "EndTime")]
    end: String,
    #[serde(rename = "MixType")]
    mix_type: String,
    #[serde(rename = "SdkAppId", default, deserialize_with = "int::opt")]
    sdk_app_id: Option<u32>,
}

#[derive(Serialize)]
struct Row {
    #[serde(rename = "TimeKey")]
    time_key: String,
    #[serde(rename = "UsageValue")]
    values: Vec<f64>,
}

#[derive(Serialize)]
struct UsageOut {
    #[serde(rename = "UsageKey")]
    keys: Vec<&'static str>,
    #[serde(rename = "UsageList")]
    list: Vec<Row>,
}

const DAY: i64 = 86_400;
const BUCKET_5_MIN: i64 = 300;
const MAX_DAYS: i64 = 31;

/// `YYYY-MM-DD` as the Unix time of that UTC midnight.
pub(super) fn day(s: &str, name: &'static str) -> Result<i64, ApiError> {
    let bad =
        || ApiError::InvalidParameter(format!("{name} must be a date YYYY-MM-DD; got {s:?}."));
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i32, u8, u8) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(y, month, d).map_err(|_| bad())?;
    Ok(date.midnight().assume_utc().unix_timestamp())
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub(super) fn time_key(t: i64) -> String {
    let dt =
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

pub async fn describe_recording_usage(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: RecordingUsage = decode(params)?;
    let mode = match p.mix_type.as_str() {
        "single" => "single",
        "multi" => "mixed",
        other => {
            return Err(ApiError::InvalidParameter(format!(
                "MixType must be single or multi; got {other:?}."
            )))
        }
    };
    let q = Period::of(ctx, &p.start, &p.end, p.sdk_app_id)?;
    let keep = move |v: &Value| v.get("mode").and_then(Value::as_str) == Some(mode);
    tally(ctx, q, "recording", keep, &USAGE_KEYS, Measure::Minutes).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodParams {
    #[serde(rename = "StartTime")]
    start: String,
    #[serde(rename = "EndTime")]
    end: String,
    #[serde(rename = "SdkAppId", default, deserialize_with = "int::opt")]
    sdk_app_id: Option<u32>,
}

/// The keys of DescribeMixTranscodingUsage: audio, then each resolution class per codec.
const MIX_KEYS: [&str; 11] = [
    "Audio",
    "SDH264",
    "HDH264",
    "FullHDH264",
    "2KH264",
    "4KH264",
    "SDH265",
    "HDH265",
    "FullHDH265",
    "2KH265",
    "4KH265",
];

/// DescribeMixTranscodingUsage: minutes of mixing, by the mix's class (relays that transcode).
pub async fn describe_mix_transcoding_usage(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: PeriodParams = decode(params)?;
    let q = Period::of(ctx, &p.start, &p.end, p.sdk_app_id)?;
    let keep = |v: &Value| v.get("transcoding").and_then(Value::as_bool) == Some(true);
    tally(ctx, q, "relay", keep, &MIX_KEYS, Measure::Minutes).await
}

/// DescribeRelayUsage: `Bandwidth`, the average Mbit/s pushed to CDNs in each bucket.
pub async fn describe_relay_usage(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: PeriodParams = decode(params)?;
    let q = Period::of(ctx, &p.start, &p.end, p.sdk_app_id)?;
    tally(ctx, q, "relay", |_| true, &["Bandwidth"], Measure::Mbps).await
}

/// DescribeTrtcUsage: minutes of media users received, by class (`Audio` when a user received
/// no video; else the class of all the video it received at once).
pub async fn describe_trtc_usage(ctx: &Ctx, params: Value) -> Result<Map<String, Value>, ApiError> {
    let p: PeriodParams = decode(params)?;
    let Period {
        apps,
        start,
        end,
        step,
    } = Period::of(ctx, &p.start, &p.end, p.sdk_app_id)?;
    let sums = ctx
        .store(move |s| s.usage(&apps, UnixSecs(start), UnixSecs(end), false))
        .await?;
    let buckets = ((end - start) / step) as usize;
    let mut minutes = vec![[0f64; 6]; buckets];
    for u in sums {
        let i = ((u.bucket.0 - start) / step) as usize;
        if let Some(m) = minutes.get_mut(i) {
            for (k, secs) in u.secs.iter().enumerate() {
                m[k] += secs / 60.0;
            }
        }
    }
    let list = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| Row {
            time_key: time_key(start + i as i64 * step),
            values: m.iter().map(|v| round2(*v)).collect(),
        })
        .collect();
    fields(&UsageOut {
        keys: USAGE_KEYS.to_vec(),
        list,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomUsageParams {
    /// Spelled so by the spec (lower-case `id`).
    #[serde(rename = "SdkAppid", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "StartTime")]
    start: String,
    #[serde(rename = "EndTime")]
    end: String,
}

/// The header of DescribeTrtcRoomUsage's CSV, as the spec prints it (`hd` in lower case).
const ROOM_USAGE_HEADER: &str = "RoomId,Audio,SD,hd,FullHD,2K,4K";

/// DescribeTrtcRoomUsage: minutes per room and class over at most 24 hours, as CSV. Times are
/// UTC minutes; every 5-minute bucket that `[StartTime, EndTime)` overlaps counts whole.
pub async fn describe_trtc_room_usage(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let p: RoomUsageParams = decode(params)?;
    let app = SdkAppId(p.sdk_app_id);
    if ctx.state.tenants.app(app).is_none() {
        return Err(ApiError::SdkAppIdNotExist(app.0));
    }
    ctx.check_app(app)?;
    let start = minute(&p.start, "StartTime")?;
    let end = minute(&p.end, "EndTime")?;
    if end <= start {
        return Err(ApiError::InvalidParameter(
            "EndTime must be later than StartTime.".into(),
        ));
    }
    if end - start > DAY {
        return Err(ApiError::InvalidParameter(
            "The period may span at most 24 hours.".into(),
        ));
    }
    // Every 5-minute bucket the period overlaps.
    let from = start.div_euclid(USAGE_BUCKET_SECS) * USAGE_BUCKET_SECS;
    let rooms = ctx
        .store(move |s| s.usage(&[app], UnixSecs(from), UnixSecs(end), true))
        .await?;
    let mut csv = String::from(ROOM_USAGE_HEADER);
    csv.push('\n');
    for r in rooms {
        let Some(room) = r.room else { continue };
        csv.push_str(&csv_field(&room.to_string()));
        for secs in r.secs {
            csv.push(',');
            csv.push_str(&round2(secs / 60.0).to_string());
        }
        csv.push('\n');
    }
    let mut out = Map::new();
    out.insert("Data".into(), Value::String(csv));
    Ok(out)
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// `YYYY-MM-DD HH:MM` (UTC) as Unix time.
fn minute(s: &str, name: &'static str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::InvalidParameter(format!(
            "{name} must be a time YYYY-MM-DD HH:MM; got {s:?}."
        ))
    };
    let (date, hm) = s.trim().split_once(' ').ok_or_else(bad)?;
    let day = day(date, name).map_err(|_| bad())?;
    let (h, m) = hm.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(day + h * 3600 + m * 60)
}

/// A query's period and applications.
struct Period {
    apps: Vec<SdkAppId>,
    start: i64,
    end: i64,
    step: i64,
}

impl Period {
    fn of(ctx: &Ctx, start: &str, end: &str, app: Option<u32>) -> Result<Self, ApiError> {
        let apps: Vec<SdkAppId> = match app {
            Some(a) => {
                let app = SdkAppId(a);
                if ctx.state.tenants.app(app).is_none() {
                    return Err(ApiError::InvalidParameterOf {
                        detail: "SdkAppId",
                        message: format!("SdkAppId {a} does not exist."),
                    });
                }
                ctx.check_app(app)?;
                vec![app]
            }
            None => ctx.caller.apps.clone(),
        };
        let start = day(start, "StartTime")?;
        let end_day = day(end, "EndTime")?;
        if end_day < start {
            return Err(ApiError::InvalidParameter(
                "EndTime must not be earlier than StartTime.".into(),
            ));
        }
        if end_day - start >= MAX_DAYS * DAY {
            return Err(ApiError::InvalidParameterOf {
                detail: "QueryScaleOversize",
                message: "The period may span at most 31 days.".into(),
            });
        }
        let end = end_day + DAY;
        let step = if end - start <= DAY {
            BUCKET_5_MIN
        } else {
            DAY
        };
        Ok(Period {
            apps,
            start,
            end,
            step,
        })
    }
}

/// What a usage table sums.
#[derive(Clone, Copy, PartialEq)]
enum Measure {
    /// Minutes of media, from each task's intervals (begin ms, seconds, key).
    Minutes,
    /// Average Mbit/s of what tasks sent (their bytes spread over their running time).
    Mbps,
}

/// Sums the ended tasks of `kind` kept by `keep` into the period's buckets.
async fn tally(
    ctx: &Ctx,
    q: Period,
    kind: &'static str,
    keep: impl Fn(&Value) -> bool,
    keys: &[&'static str],
    measure: Measure,
) -> Result<Map<String, Value>, ApiError> {
    let Period {
        apps,
        start,
        end,
        step,
    } = q;
    let records = ctx
        .store(move |s| {
            let mut all = Vec::new();
            for app in apps {
                all.extend(s.tasks_ended_between(app, kind, UnixSecs(start), UnixSecs(end))?);
            }
            Ok(all)
        })
        .await?;
    let buckets = ((end - start) / step) as usize;
    let mut sums = vec![vec![0f64; keys.len()]; buckets];
    for r in records {
        let Ok(v) = serde_json::from_str::<Value>(&r.params_json) else {
            continue;
        };
        if !keep(&v) {
            continue;
        }
        let Some(intervals) = v.get("usage").and_then(Value::as_array) else {
            continue;
        };
        for iv in intervals {
            let (Some(begin_ms), Some(secs), Some(class)) = (
                iv.get(0).and_then(Value::as_u64),
                iv.get(1).and_then(Value::as_f64),
                iv.get(2).and_then(Value::as_str),
            ) else {
                continue;
            };
            let begin = begin_ms as f64 / 1000.0;
            match measure {
                Measure::Minutes => {
                    if let Some(k) = keys.iter().position(|c| *c == class) {
                        spread(&mut sums, start, step, begin, secs, k, 1.0 / 60.0);
                    }
                }
                Measure::Mbps => {
                    let bytes = v.get("bytes_out").and_then(Value::as_f64).unwrap_or(0.0);
                    if secs > 0.0 {
                        // Megabits per second of the task, as a share of each bucket.
                        let rate = bytes * 8.0 / 1e6 / secs / step as f64;
                        spread(&mut sums, start, step, begin, secs, 0, rate);
                    }
                }
            }
        }
    }
    let list = sums
        .iter()
        .enumerate()
        .map(|(i, m)| Row {
            time_key: time_key(start + i as i64 * step),
            values: m.iter().map(|v| round2(*v)).collect(),
        })
        .collect();
    fields(&UsageOut {
        keys: keys.to_vec(),
        list,
    })
}

/// Adds `secs` of media from `begin` to column `k` of the buckets it overlaps, `per_sec` for
/// each second.
fn spread(
    sums: &mut [Vec<f64>],
    start: i64,
    step: i64,
    begin: f64,
    secs: f64,
    k: usize,
    per_sec: f64,
) {
    let mut t = begin;
    let end = begin + secs;
    while t < end {
        let i = ((t - start as f64) / step as f64).floor();
        let bucket_end = start as f64 + (i + 1.0) * step as f64;
        let part = end.min(bucket_end) - t;
        if i >= 0.0 && (i as usize) < sums.len() {
            sums[i as usize][k] += part * per_sec;
        }
        t += part.max(1e-9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_is_spread_over_the_buckets_it_spans() {
        let mut m = vec![vec![0f64; 6]; 3];
        spread(&mut m, 0, 300, 270.0, 60.0, 2, 1.0 / 60.0);
        assert!(
            (m[0][2] - 0.5).abs() < 1e-9 && (m[1][2] - 0.5).abs() < 1e-9,
            "{m:?}"
        );
        assert_eq!(day("2026-12-01", "StartTime").unwrap() % DAY, 0);
        assert!(day("2026-13-01", "StartTime").is_err());
        assert_eq!(time_key(0), "1970-01-01 00:00:00");
        assert_eq!(minute("1970-01-02 01:30", "StartTime").unwrap(), DAY + 5400);
        assert!(minute("1970-01-02 24:00", "StartTime").is_err());
        assert!(minute("1970-01-02", "StartTime").is_err());
        assert_eq!(csv_field("a,b\"c"), "\"a,b\"\"c\"");
        assert_eq!(csv_field("room-1"), "room-1");
    }
}
