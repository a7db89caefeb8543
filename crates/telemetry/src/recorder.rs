//! The recorder task: events in, store writes out, in the order the media plane produced them;
//! usage, clients' freeze reports and round trips summed per room and bucket on the way.

use crate::callbacks::CallbackState;
use hearth_callbacks::Directory;
use hearth_sfu::events::{DomainEvent, EventKind, ExitReason};
use hearth_store::{
    CallRecord, EventRecord, LeaveReason, NewSession, QualityRollup, QualitySample, SessionId,
    Store, StoreError, UsageRecord, QUALITY_ROLLUP_SECS, USAGE_BUCKET_SECS,
};
use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs, UserId, USAGE_KEYS};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Events the media plane may queue before it starts dropping (and counting) them: 10 s of
/// 1,000 users' quality samples at full density (~26,000/s, in bursts of one sample period),
/// so a purge transaction or a WAL checkpoint in the store never fills it.
pub const EVENT_QUEUE: usize = 262_144;
/// Events written per store transaction at most.
const BATCH: usize = 512;

pub struct Recorder {
    store: Arc<dyn Store>,
    /// The open session of each user in each call.
    open: HashMap<(CommId, UserId), SessionId>,
    /// Who listens to which event callbacks.
    directory: Directory,
    callbacks: CallbackState,
    /// Who hears of room entries and exits (the calls driver), and how many it missed.
    rooms: Option<mpsc::Sender<DomainEvent>>,
    rooms_dropped: u64,
}

fn leave_reason(r: ExitReason) -> LeaveReason {
    match r {
        ExitReason::Left => LeaveReason::Normal,
        ExitReason::Timeout => LeaveReason::Timeout,
        ExitReason::Replaced => LeaveReason::Replaced,
        ExitReason::Kicked => LeaveReason::Kicked,
        ExitReason::RoomDismissed => LeaveReason::RoomDismissed,
        ExitReason::ServerShutdown => LeaveReason::ServerShutdown,
    }
}

impl Recorder {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Recorder {
            store,
            open: HashMap::new(),
            directory: Directory::default(),
            callbacks: CallbackState::default(),
            rooms: None,
            rooms_dropped: 0,
        }
    }

    /// Passes every room entry and exit on to `rooms` as well (never waiting for it).
    pub fn with_rooms(mut self, rooms: mpsc::Sender<DomainEvent>) -> Self {
        self.rooms = Some(rooms);
        self
    }

    fn pass_on_rooms(&mut self, batch: &[DomainEvent]) {
        let Some(rooms) = &self.rooms else {
            return;
        };
        for e in batch {
            // A closed queue is the server shutting down: nothing to say.
            if matches!(e.kind, EventKind::Entered { .. } | EventKind::Exited { .. })
                && matches!(
                    rooms.try_send(e.clone()),
                    Err(mpsc::error::TrySendError::Full(_))
                )
            {
                self.rooms_dropped += 1;
                if self.rooms_dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.rooms_dropped,
                        "room entries and exits not passed on to calls (queue full)"
                    );
                }
            }
        }
    }

    /// Queues the room and media event callbacks of the apps `directory` says listen.
    pub fn with_callbacks(mut self, directory: Directory) -> Self {
        self.directory = directory;
        self
    }

    /// Drains the queue until every sender is gone, then returns (after the last write).
    pub async fn run(mut self, mut events: mpsc::Receiver<DomainEvent>) {
        let mut batch = Vec::with_capacity(BATCH);
        while events.recv_many(&mut batch, BATCH).await > 0 {
            let store = self.store.clone();
            let mut open = std::mem::take(&mut self.open);
            let taken = std::mem::take(&mut batch);
            self.pass_on_rooms(&taken);
            // The callbacks are queued before the batch's other writes: a callback exists
            // before anyone could read of its event.
            let cbs: Vec<_> = taken
                .iter()
                .filter_map(|e| self.callbacks.of(&self.directory, e))
                .collect();
            let result = tokio::task::spawn_blocking(move || {
                let r = store
                    .enqueue_callbacks(&cbs)
                    .and_then(|()| write(store.as_ref(), &mut open, &taken));
                (r, open, taken)
            })
            .await;
            match result {
                Ok((r, open, mut taken)) => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "recording events failed");
                    }
                    self.open = open;
                    taken.clear();
                    batch = taken;
                }
                Err(e) => tracing::error!(error = %e, "recorder task panicked"),
            }
        }
    }
}

/// The period of a client's quality report (`docs/protocol.md`): a freeze report covers it.
const REPORT_PERIOD_MS: f64 = 2_000.0;
/// A round trip slower than this is network delay a user notices (the dashboards'
/// `networkDelay` is the share of samples above it).
pub const SLOW_RTT_MS: f64 = 400.0;

/// A batch's usage, freeze reports and round trips, summed per room and bucket before they are
/// written.
#[derive(Default)]
struct Rollups {
    usage: HashMap<(SdkAppId, RoomKey, i64), [f64; 6]>,
    quality: HashMap<(SdkAppId, RoomKey, i64), QualityRollup>,
}

impl Rollups {
    fn usage(&mut self, e: &DomainEvent, class: &str, secs: f64) {
        let Some(k) = USAGE_KEYS.iter().position(|c| *c == class) else {
            return;
        };
        let bucket = e.at_ms.div_euclid(1000).div_euclid(USAGE_BUCKET_SECS) * USAGE_BUCKET_SECS;
        self.usage
            .entry((e.app, e.room.clone(), bucket))
            .or_default()[k] += secs;
    }

    /// The quality rollup of the event's room and 10-second bucket.
    fn quality(&mut self, e: &DomainEvent) -> &mut QualityRollup {
        let bucket = e.at_ms.div_euclid(1000).div_euclid(QUALITY_ROLLUP_SECS) * QUALITY_ROLLUP_SECS;
        self.quality
            .entry((e.app, e.room.clone(), bucket))
            .or_insert_with(|| QualityRollup {
                sdk_app_id: e.app,
                room: e.room.clone(),
                bucket: UnixSecs(bucket),
                video_ms: 0.0,
                video_frozen_ms: 0.0,
                audio_ms: 0.0,
                audio_frozen_ms: 0.0,
                rtt_samples: 0,
                rtt_slow: 0,
            })
    }

    /// A client's report of how long one remote user's video or audio froze.
    fn freeze(&mut self, e: &DomainEvent, video: bool, frozen_ms: f64) {
        let q = self.quality(e);
        let frozen_ms = frozen_ms.clamp(0.0, REPORT_PERIOD_MS);
        if video {
            q.video_ms += REPORT_PERIOD_MS;
            q.video_frozen_ms += frozen_ms;
        } else {
            q.audio_ms += REPORT_PERIOD_MS;
            q.audio_frozen_ms += frozen_ms;
        }
    }

    fn round_trip(&mut self, e: &DomainEvent, ms: f64) {
        let q = self.quality(e);
        q.rtt_samples += 1;
        q.rtt_slow += u64::from(ms > SLOW_RTT_MS);
    }

    fn write(self, store: &dyn Store) -> Result<(), StoreError> {
        let usage: Vec<UsageRecord> = self
            .usage
            .into_iter()
            .map(|((sdk_app_id, room, bucket), secs)| UsageRecord {
                sdk_app_id,
                room,
                bucket: UnixSecs(bucket),
                secs,
            })
            .collect();
        store.add_usage(&usage)?;
        let quality: Vec<QualityRollup> = self.quality.into_values().collect();
        store.add_quality_rollup(&quality)
    }
}

/// Applies a batch in order: call and session lifecycle as they come, event rows in one append.
fn write(
    store: &dyn Store,
    open: &mut HashMap<(CommId, UserId), SessionId>,
    batch: &[DomainEvent],
) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut samples = Vec::new();
    let mut rollups = Rollups::default();
    for e in batch {
        let at = UnixSecs(e.at_ms.div_euclid(1000));
        match &e.kind {
            EventKind::CallStarted { creator } => store.start_call(&CallRecord {
                comm_id: e.comm_id.clone(),
                sdk_app_id: e.app,
                room: e.room.clone(),
                creator: creator.as_str().to_owned(),
                created_at: at,
                destroyed_at: None,
            })?,
            EventKind::CallEnded => {
                store.finish_call(&e.comm_id, at, LeaveReason::Normal)?;
                open.retain(|(c, _), _| *c != e.comm_id);
            }
            EventKind::Entered {
                client_ip,
                device_type,
                sdk_version,
                ..
            } => {
                let id = store.open_session(&NewSession {
                    comm_id: e.comm_id.clone(),
                    sdk_app_id: e.app,
                    user_id: e.user.clone(),
                    joined_at: at,
                    device_type: device_type.clone(),
                    sdk_version: sdk_version.clone(),
                    client_ip: client_ip.clone(),
                })?;
                open.insert((e.comm_id.clone(), e.user.clone()), id);
            }
            EventKind::Usage { class, secs } => rollups.usage(e, class, *secs),
            EventKind::RoundTrip { ms } => rollups.round_trip(e, *ms),
            EventKind::Quality {
                peer,
                metric,
                value,
            } => {
                match *metric {
                    "bigvBlock" => rollups.freeze(e, true, *value),
                    "aBlock" => rollups.freeze(e, false, *value),
                    _ => {}
                }
                samples.push(QualitySample {
                    sdk_app_id: e.app,
                    comm_id: e.comm_id.clone(),
                    user_id: e.user.clone(),
                    peer: peer.clone(),
                    metric: (*metric).to_owned(),
                    time: at,
                    value: *value,
                })
            }
            EventKind::Exited { reason } => {
                if let Some(id) = open.remove(&(e.comm_id.clone(), e.user.clone())) {
                    store.close_session(id, at, leave_reason(*reason))?;
                }
            }
            _ => {}
        }
        if let Some(event_id) = e.kind.webrtc_event_id() {
            rows.push(EventRecord {
                sdk_app_id: e.app,
                comm_id: e.comm_id.clone(),
                user_id: e.user.clone(),
                time_ms: e.at_ms,
                event_id,
                // The screen share's video on/off: ParamOne 1 (the sub stream).
                param_one: match e.kind {
                    EventKind::SubStreamOn | EventKind::SubStreamOff => 1,
                    _ => -1,
                },
                param_two: -1,
            });
        }
    }
    store.append_events(&rows)?;
    store.append_quality(&samples)?;
    rollups.write(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_store::{EventQuery, SessionQuery, SqliteStore};
    use hearth_types::{RoomKey, SdkAppId};

    fn ev(at_ms: i64, user: &str, kind: EventKind) -> DomainEvent {
        let app = SdkAppId(1400000001);
        let room = RoomKey::Num(9);
        DomainEvent {
            at_ms,
            app,
            room: room.clone(),
            comm_id: CommId::new(app, &room, UnixSecs(1_000)),
            user: UserId(user.into()),
            kind,
        }
    }

    #[tokio::test]
    async fn a_call_is_recorded_with_its_sessions_and_events() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(Recorder::new(store.clone()).run(rx));
        let entered = || EventKind::Entered {
            anchor: true,
            bot: false,
            client_ip: "10.0.0.1".into(),
            device_type: "WHIP/WHEP".into(),
            sdk_version: "x".into(),
        };
        for e in [
            ev(
                1_000_000,
                "alice",
                EventKind::CallStarted {
                    creator: UserId("alice".into()),
                },
            ),
            ev(1_000_000, "alice", entered()),
            ev(1_000_100, "alice", EventKind::VideoOn),
            ev(1_001_000, "bob", entered()),
            ev(
                1_002_000,
                "bob",
                EventKind::Exited {
                    reason: ExitReason::Left,
                },
            ),
            ev(
                1_003_000,
                "alice",
                EventKind::Exited {
                    reason: ExitReason::Timeout,
                },
            ),
            ev(1_003_000, "alice", EventKind::CallEnded),
        ] {
            tx.send(e).await.unwrap();
        }
        drop(tx);
        task.await.unwrap();

        let app = SdkAppId(1400000001);
        let comm_id = CommId::new(app, &RoomKey::Num(9), UnixSecs(1_000));
        let call = store.call(app, &comm_id).unwrap().unwrap();
        assert_eq!(call.creator, "alice");
        assert_eq!(call.destroyed_at, Some(UnixSecs(1_003)));
        let sessions = store
            .sessions_of_call(&SessionQuery {
                sdk_app_id: app,
                comm_id: comm_id.clone(),
                start: UnixSecs(0),
                end: UnixSecs(10_000),
                user_ids: vec![],
                offset: 0,
                limit: 10,
            })
            .unwrap();
        assert_eq!(sessions.total, 2);
        assert_eq!(sessions.items[1].left_at, Some(UnixSecs(1_002)));
        assert_eq!(sessions.items[0].leave_reason, Some(LeaveReason::Timeout));
        let events = store
            .user_events(&EventQuery {
                sdk_app_id: app,
                comm_id,
                user_id: UserId("alice".into()),
                start_ms: 0,
                end_ms: i64::MAX,
            })
            .unwrap();
        let ids: Vec<u32> = events.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, [32788, 32768, 32789]);
    }

    #[tokio::test]
    async fn usage_and_freeze_reports_are_summed_per_room_and_bucket() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(Recorder::new(store.clone()).run(rx));
        let usage = |class, secs| EventKind::Usage { class, secs };
        let block = |metric, value| EventKind::Quality {
            peer: "bob".into(),
            metric,
            value,
        };
        // 1,000,000 s is 100 s into a 5-minute bucket; 1,000,200 s starts the next one.
        for e in [
            ev(1_000_000_000, "alice", usage("HD", 2.0)),
            ev(1_000_002_000, "alice", usage("HD", 2.0)),
            ev(1_000_002_000, "carol", usage("Audio", 2.0)),
            ev(1_000_200_000, "alice", usage("FullHD", 2.0)),
            ev(1_000_000_000, "alice", block("bigvBlock", 500.0)),
            ev(1_000_002_000, "alice", block("bigvBlock", 9_000.0)),
            ev(1_000_002_000, "alice", block("aBlock", 0.0)),
            ev(1_000_002_000, "alice", EventKind::RoundTrip { ms: 30.0 }),
            ev(1_000_002_000, "bob", EventKind::RoundTrip { ms: 650.0 }),
        ] {
            tx.send(e).await.unwrap();
        }
        drop(tx);
        task.await.unwrap();

        let app = SdkAppId(1400000001);
        let u = store
            .usage(&[app], UnixSecs(999_900), UnixSecs(1_000_500), false)
            .unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].bucket, UnixSecs(999_900));
        assert_eq!(u[0].secs, [2.0, 0.0, 4.0, 0.0, 0.0, 0.0]);
        assert_eq!(u[1].secs, [0.0, 0.0, 0.0, 2.0, 0.0, 0.0]);
        let q = store
            .quality_buckets(app, Some("9"), UnixSecs(1_000_000), UnixSecs(1_000_010), 10)
            .unwrap();
        // Two video reports of 2 s each, one frozen 0.5 s and one (impossibly) 9 s: at most
        // the whole period counts.
        assert_eq!((q[0].video_ms, q[0].video_frozen_ms), (4_000.0, 2_500.0));
        assert_eq!((q[0].audio_ms, q[0].audio_frozen_ms), (2_000.0, 0.0));
        assert_eq!((q[0].rtt_samples, q[0].rtt_slow), (2, 1));
    }
}
