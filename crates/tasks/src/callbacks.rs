//! A media task's event callbacks, queued in the store's outbox in the order they happen (one
//! writer per task) and delivered in order per task:
//! - a recording's (TRTC's cloud recording group, 3): the recorder started (301) and exited
//!   (302), the upload started (303), the first playlist stored (304), the uploads done (305), a
//!   playlist begun (307), the MP4 files stored (310);
//! - a transcription's (TRTC's AI transcription group, 14): started (1401) and stopped (1402);
//! - a relay's, an ingest's and a conversation's (Hearth's task group, 100): started (10001),
//!   ended (10002), and a relay's CDN push connected or failing (10003).

use crate::Shared;
use hearth_callbacks::{room_id, Group};
use hearth_store::NewCallback;
use hearth_types::{RoomKey, SdkAppId};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The callbacks of one task; does nothing for an app that does not listen to its group.
#[derive(Clone)]
pub(crate) struct TaskCallbacks {
    group: Group,
    kind: String,
    tx: mpsc::UnboundedSender<NewCallback>,
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
        let (tx, mut rx) = mpsc::unbounded_channel::<NewCallback>();
        let store = shared.store.clone();
        tokio::spawn(async move {
            while let Some(cb) = rx.recv().await {
                let store = store.clone();
                let r = tokio::task::spawn_blocking(move || store.enqueue_callbacks(&[cb])).await;
                if !matches!(r, Ok(Ok(()))) {
                    tracing::warn!("a task's event callback could not be queued");
                }
            }
        });
        let group = match kind {
            "recording" => Group::Recording,
            "transcription" => Group::Transcription,
            _ => Group::Tasks,
        };
        TaskCallbacks {
            group,
            kind: kind.to_owned(),
            tx,
            app,
            room: room_id(room),
            robot: robot.to_owned(),
            task: task.to_owned(),
            shared: shared.clone(),
        }
    }

    /// The task is running (its robot is in the room).
    pub fn started(&self) {
        match self.group {
            Group::Recording => self.send(301, json!({"Status": 0})),
            Group::Transcription => self.send(1401, json!({"Status": 0})),
            _ => self.send(10001, json!({"Kind": self.kind})),
        }
    }

    /// The task's robot left (its files may still be uploading).
    pub fn ended(&self, reason: hearth_media_proto::EndReason, message: Option<&str>) {
        let code = leave_code(reason);
        match self.group {
            Group::Recording => self.send(302, json!({"LeaveCode": code, "Message": message})),
            Group::Transcription => self.send(
                1402,
                json!({"Status": u8::from(code == 100), "LeaveCode": code, "Message": message}),
            ),
            _ => self.send(
                10002,
                json!({"Kind": self.kind, "LeaveCode": code, "Reason": reason, "Message": message}),
            ),
        }
    }

    /// A relay's CDN push connected, or failed and is being retried.
    pub fn push(&self, url: &str, connected: bool, message: Option<&str>) {
        self.send(
            10003,
            json!({"Kind": self.kind, "Url": url, "Connected": connected, "Message": message}),
        );
    }

    /// Queues event `event_type` of the task's group with its `Payload`, if the app listens.
    pub fn send(&self, event_type: u16, payload: Value) {
        if !self.shared.callbacks.wants(self.app, self.group) {
            return;
        }
        let now = hearth_types::unix_ms();
        let info = json!({
            "RoomId": self.room, "EventTs": now / 1000, "EventMsTs": now, "UserId": self.robot,
            "TaskId": self.task, "Payload": payload,
        });
        let _ = self.tx.send(NewCallback {
            app: self.app,
            group: self.group.id(),
            event_type,
            order_key: format!("task:{}", self.task),
            info_json: info.to_string(),
            created_ms: now,
        });
    }
}

/// TRTC's `LeaveCode` (302): 0 stopped by the API (or an ingest's source played out), 1 the robot removed (RemoveUser or the room
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
