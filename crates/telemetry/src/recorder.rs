//! The recorder task: events in, store writes out, in the order the media plane produced them.

use hearth_sfu::events::{DomainEvent, EventKind, ExitReason};
use hearth_store::{
    CallRecord, EventRecord, LeaveReason, NewSession, QualitySample, SessionId, Store, StoreError,
};
use hearth_types::{CommId, UnixSecs, UserId};
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
        }
    }

    /// Drains the queue until every sender is gone, then returns (after the last write).
    pub async fn run(mut self, mut events: mpsc::Receiver<DomainEvent>) {
        let mut batch = Vec::with_capacity(BATCH);
        while events.recv_many(&mut batch, BATCH).await > 0 {
            let store = self.store.clone();
            let mut open = std::mem::take(&mut self.open);
            let taken = std::mem::take(&mut batch);
            let result = tokio::task::spawn_blocking(move || {
                let r = write(store.as_ref(), &mut open, &taken);
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

/// Applies a batch in order: call and session lifecycle as they come, event rows in one append.
fn write(
    store: &dyn Store,
    open: &mut HashMap<(CommId, UserId), SessionId>,
    batch: &[DomainEvent],
) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut samples = Vec::new();
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
            EventKind::Quality {
                peer,
                metric,
                value,
            } => samples.push(QualitySample {
                sdk_app_id: e.app,
                comm_id: e.comm_id.clone(),
                user_id: e.user.clone(),
                peer: peer.clone(),
                metric: (*metric).to_owned(),
                time: at,
                value: *value,
            }),
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
    store.append_quality(&samples)
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
}
