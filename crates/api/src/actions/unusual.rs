//! `DescribeUnusualEvent` (spec §2.3.27, from the SDK models): abnormal user experiences found in
//! the quality samples of the calls of an application (optionally one room) in a window of at
//! most 1 hour.
//!
//! The rule (Hearth's; the spec names IDs but no thresholds): a packet loss above
//! [`LOSS_PERCENT`] % in at least [`MIN_RUN`] consecutive samples of one series is one abnormal
//! experience — `aLoss` → ExperienceId 5 (audio lagged), `bigvLoss` → 4 (video lagged) — with
//! one cause: upstream (peer `""`) 2005 / 2007, downstream 2015 / 2017 with the remote user as
//! PeerId (§4.3, §4.5). EventTime is the Unix second of the run's first sample. At most 20 are
//! returned, the earliest first (the spec's "picked at random" is not reproduced).

use super::{fields, Ctx};
use crate::error::ApiError;
use crate::params::{decode, int};
use crate::window;
use hearth_store::{CallQuery, QualityQuery};
use hearth_types::{SdkAppId, UnixSecs};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const LOSS_PERCENT: f64 = 10.0;
pub const MIN_RUN: usize = 3;
const MAX_EXPERIENCES: usize = 20;
const MAX_SPAN_SECS: i64 = 3600;
/// Calls of one window read at most.
const MAX_CALLS: u64 = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeUnusualEvent {
    #[serde(rename = "SdkAppId", deserialize_with = "int::de")]
    sdk_app_id: u32,
    #[serde(rename = "StartTime", deserialize_with = "int::de")]
    start_time: i64,
    #[serde(rename = "EndTime", deserialize_with = "int::de")]
    end_time: i64,
    #[serde(rename = "RoomId", default)]
    room_id: Option<String>,
}

#[derive(Serialize)]
struct AbnormalEvent {
    #[serde(rename = "AbnormalEventId")]
    abnormal_event_id: u32,
    #[serde(rename = "PeerId")]
    peer_id: String,
}

#[derive(Serialize)]
struct AbnormalExperience {
    #[serde(rename = "UserId")]
    user_id: String,
    #[serde(rename = "ExperienceId")]
    experience_id: u32,
    #[serde(rename = "RoomId")]
    room_id: String,
    #[serde(rename = "AbnormalEventList")]
    abnormal_event_list: Vec<AbnormalEvent>,
    #[serde(rename = "EventTime")]
    event_time: i64,
}

#[derive(Serialize)]
struct Out {
    #[serde(rename = "Total")]
    total: u64,
    #[serde(rename = "AbnormalExperienceList")]
    list: Vec<AbnormalExperience>,
}

/// (ExperienceId, upstream cause, downstream cause) of a loss metric.
fn ids_of(metric: &str) -> Option<(u32, u32, u32)> {
    match metric {
        "aLoss" => Some((5, 2005, 2015)),
        "bigvLoss" => Some((4, 2007, 2017)),
        _ => None,
    }
}

/// The first sample time of every run of at least [`MIN_RUN`] values above the threshold.
fn runs(points: &[(i64, f64)]) -> Vec<i64> {
    let mut out = Vec::new();
    let mut run: Option<(i64, usize)> = None;
    for &(t, v) in points {
        if v > LOSS_PERCENT {
            let (first, n) = run.unwrap_or((t, 0));
            run = Some((first, n + 1));
            if n + 1 == MIN_RUN {
                out.push(first);
            }
        } else {
            run = None;
        }
    }
    out
}

pub async fn describe_unusual_event(
    ctx: &Ctx,
    params: Value,
) -> Result<Map<String, Value>, ApiError> {
    let req: DescribeUnusualEvent = decode(params)?;
    let app = SdkAppId(req.sdk_app_id);
    ctx.check_app(app)?;
    window::check(req.start_time, req.end_time, Some(MAX_SPAN_SECS), ctx.now)?;
    let (start, end) = (UnixSecs(req.start_time), UnixSecs(req.end_time));
    let room = req.room_id.filter(|r| !r.is_empty());
    let mut list = ctx
        .store(move |s| {
            let calls = s.calls_in_window(&CallQuery {
                sdk_app_id: app,
                start,
                end,
                room_string: room,
                offset: 0,
                limit: MAX_CALLS,
            })?;
            let mut out = Vec::new();
            for call in calls.items {
                let found = s.quality(&QualityQuery {
                    sdk_app_id: app,
                    comm_id: call.comm_id.clone(),
                    start,
                    end,
                    user_ids: vec![],
                    metrics: vec!["aLoss".into(), "bigvLoss".into()],
                })?;
                let mut series: BTreeMap<(String, String, String), Vec<(i64, f64)>> =
                    BTreeMap::new();
                for q in found {
                    series
                        .entry((q.user_id.0, q.peer, q.metric))
                        .or_default()
                        .extend(q.points.into_iter().map(|(t, v)| (t.0, v)));
                }
                for ((user, peer, metric), points) in series {
                    let Some((experience, up, down)) = ids_of(&metric) else {
                        continue;
                    };
                    for first in runs(&points) {
                        out.push(AbnormalExperience {
                            user_id: user.clone(),
                            experience_id: experience,
                            room_id: call.room.as_string(),
                            abnormal_event_list: vec![AbnormalEvent {
                                abnormal_event_id: if peer.is_empty() { up } else { down },
                                peer_id: peer.clone(),
                            }],
                            event_time: first,
                        });
                    }
                }
            }
            Ok(out)
        })
        .await?;
    list.sort_by(|a, b| {
        (a.event_time, &a.user_id, a.experience_id).cmp(&(
            b.event_time,
            &b.user_id,
            b.experience_id,
        ))
    });
    list.truncate(MAX_EXPERIENCES);
    fields(&Out {
        total: list.len() as u64,
        list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_three_or_more() {
        let p = |v: &[f64]| -> Vec<(i64, f64)> {
            v.iter()
                .enumerate()
                .map(|(i, x)| (i as i64 * 2, *x))
                .collect()
        };
        assert_eq!(runs(&p(&[11.0, 12.0])), Vec::<i64>::new());
        assert_eq!(runs(&p(&[11.0, 12.0, 10.0, 50.0])), Vec::<i64>::new());
        assert_eq!(runs(&p(&[0.0, 11.0, 12.0, 13.0, 14.0])), [2]);
        assert_eq!(runs(&p(&[11.0, 12.0, 13.0, 0.0, 20.0, 20.0, 20.0])), [0, 8]);
    }
}
