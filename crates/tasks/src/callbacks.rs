//! A recording task's event callbacks (TRTC's cloud recording group, 3): the recorder started
//! (301) and exited (302), the upload started (303), the first playlist stored (304), the uploads
//! done (305), a playlist begun (307), the MP4 files stored (310). Queued in the store's outbox
//! in the order they happen (one writer per task), ordered per task for delivery.

use crate::Shared;
use hearth_callbacks::Group;
use hearth_store::NewCallback;
use hearth_types::{RoomKey, SdkAppId};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The callbacks of one task; does nothing for a task that is not a recording or an app that
/// does not listen.
#[derive(Clone)]
pub(crate) struct TaskCallbacks {
    tx: Option<mpsc::UnboundedSender<NewCallback>>,
    app: SdkAppId,
    room: Value,
    robot: String,
    task: String,
    shared: Arc<Shared>,
}

impl TaskCallbacks {
    pub fn new(
        shared: &Arc<Shared>,
        kind: &str,
        app: SdkAppId,
        room: &RoomKey,
        robot: &str,
        task: &str,
    ) -> Self {
        let tx = (kind == "recording").then(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<NewCallback>();
            let store = shared.store.clone();
            tokio::spawn(async move {
                while let Some(cb) = rx.recv().await {
                    let store = store.clone();
                    let r =
                        tokio::task::spawn_blocking(move || store.enqueue_callbacks(&[cb])).await;
                    if !matches!(r, Ok(Ok(()))) {
                        tracing::warn!("a recording callback could not be queued");
                    }
                }
            });
            tx
        });
        TaskCallbacks {
            tx,
            app,
            room: match room {
                RoomKey::Num(n) => json!(n),
                RoomKey::Str(s) => json!(s),
            },
            robot: robot.to_owned(),
            task: task.to_owned(),
            shared: shared.clone(),
        }
    }

    /// Queues event `event_type` with its `Payload`, if the app listens to the group.
    pub fn send(&self, event_type: u16, payload: Value) {
        let Some(tx) = &self.tx else { return };
        if !self.shared.callbacks.wants(self.app, Group::Recording) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let info = json!({
            "RoomId": self.room, "EventTs": now / 1000, "EventMsTs": now, "UserId": self.robot,
            "TaskId": self.task, "Payload": payload,
        });
        let _ = tx.send(NewCallback {
            app: self.app,
            group: Group::Recording.id(),
            event_type,
            order_key: format!("task:{}", self.task),
            info_json: info.to_string(),
            created_ms: now,
        });
    }
}

/// TRTC's `LeaveCode` of 302: 0 stopped by the API, 1 the robot removed (RemoveUser or the room
/// dismissed), 99 nobody left to record (MaxIdleTime), 100 the task failed.
pub(crate) fn leave_code(reason: hearth_media_proto::EndReason) -> u8 {
    use hearth_media_proto::EndReason as R;
    match reason {
        R::Stopped | R::SourceEnded => 0,
        R::Removed => 1,
        R::Idle => 99,
        R::Failed | R::SourceFailed => 100,
    }
}
