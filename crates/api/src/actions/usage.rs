//! Usage statistics (spec §2.3.37): DescribeRecordingUsage from the minutes recording tasks
//! actually recorded, in 5-minute buckets for a period of one day and daily buckets above, at
//! most 31 days, for one application or every application of the credential. Days are UTC.

use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
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
fn day(s: &str, name: &'static str) -> Result<i64, ApiError> {
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

fn time_key(t: i64) -> String {
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
    let apps: Vec<SdkAppId> = match p.sdk_app_id {
        Some(a) => {
            let app = SdkAppId(a);
            ctx.check_app(app)?;
            vec![app]
        }
        None => ctx.caller.apps.clone(),
    };
    let start = day(&p.start, "StartTime")?;
    let end_day = day(&p.end, "EndTime")?;
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
    let records = ctx
        .store(move |s| {
            let mut all = Vec::new();
            for app in apps {
                all.extend(s.tasks_ended_between(
                    app,
                    "recording",
                    UnixSecs(start),
                    UnixSecs(end),
                )?);
            }
            Ok(all)
        })
        .await?;
    let buckets = ((end - start) / step) as usize;
    let mut minutes = vec![[0f64; 6]; buckets];
    for r in records {
        let Ok(v) = serde_json::from_str::<Value>(&r.params_json) else {
            continue;
        };
        if v.get("mode").and_then(Value::as_str) != Some(mode) {
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
            let Some(k) = USAGE_KEYS.iter().position(|c| *c == class) else {
                continue;
            };
            spread(&mut minutes, start, step, begin_ms as f64 / 1000.0, secs, k);
        }
    }
    let list = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| Row {
            time_key: time_key(start + i as i64 * step),
            values: m.iter().map(|v| (v * 100.0).round() / 100.0).collect(),
        })
        .collect();
    fields(&UsageOut {
        keys: USAGE_KEYS.to_vec(),
        list,
    })
}

/// Adds `secs` of media from `begin` to the buckets it overlaps, in minutes.
fn spread(minutes: &mut [[f64; 6]], start: i64, step: i64, begin: f64, secs: f64, k: usize) {
    let mut t = begin;
    let end = begin + secs;
    while t < end {
        let i = ((t - start as f64) / step as f64).floor();
        let bucket_end = start as f64 + (i + 1.0) * step as f64;
        let part = end.min(bucket_end) - t;
        if i >= 0.0 && (i as usize) < minutes.len() {
            minutes[i as usize][k] += part / 60.0;
        }
        t += part.max(1e-9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_is_spread_over_the_buckets_it_spans() {
        let mut m = vec![[0f64; 6]; 3];
        spread(&mut m, 0, 300, 270.0, 60.0, 2);
        assert!(
            (m[0][2] - 0.5).abs() < 1e-9 && (m[1][2] - 0.5).abs() < 1e-9,
            "{m:?}"
        );
        assert_eq!(day("2026-12-01", "StartTime").unwrap() % DAY, 0);
        assert!(day("2026-13-01", "StartTime").is_err());
        assert_eq!(time_key(0), "1970-01-01 00:00:00");
    }
}
