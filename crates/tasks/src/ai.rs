//! AI tasks (transcription now): one robot per room and UserId, TRTC's de-duplication (a
//! SessionId runs once per app; without one, one whole-room transcription per room and one per
//! target user), the server's speech engine filled in, and the task's state for Describe/Stop
//! by TaskId or SessionId.

use crate::task::{self, Launch, UsageRule};
use crate::{AiTags, Shared, Tasks};
use hearth_api::media::{AiTaskInfo, AiTaskRef, TaskError, TranscriptionStart};
use hearth_media_proto::{Command, Job};
use hearth_types::SdkAppId;
use std::sync::Arc;
use std::time::Duration;

const KIND: &str = "transcription";
/// Decoding Opus and PocketSphinx at about a tenth of real time, per speaker or two.
const COST: f64 = 0.15;
/// A transcription that is not stopped ends after this long (TRTC's 10 hours).
const MAX_RUN: Duration = Duration::from_secs(10 * 3600);

pub(crate) async fn start(
    shared: Arc<Shared>,
    req: TranscriptionStart,
) -> Result<String, TaskError> {
    shared.available.clone().map_err(TaskError::Unavailable)?;
    let target = req.job.target.clone();
    {
        let t = shared.lock_table();
        for ((app, _), e) in &t.tasks {
            if e.kind != KIND || e.status == "Exited" {
                continue;
            }
            let same_session =
                *app == req.app.0 && req.session_id.is_some() && e.ai.session_id == req.session_id;
            if same_session {
                return Err(TaskError::Exists(
                    "A transcription with this SessionId is running.".into(),
                ));
            }
            if *app != req.app.0 || e.room != req.room {
                continue;
            }
            if e.user_id == req.user_id {
                return Err(TaskError::Exists(format!(
                    "The robot {} already transcribes this room.",
                    req.user_id
                )));
            }
            if req.session_id.is_none() && e.ai.target == target {
                return Err(TaskError::Exists(match &target {
                    None => "This room is already transcribed as a whole.".into(),
                    Some(u) => format!("{u} is already transcribed in this room."),
                }));
            }
        }
    }
    let mut job = req.job;
    job.stt_python = shared.cfg.stt_python.clone();
    let reservation = task::reserve(&shared, COST, KIND)?;
    let task_id = uuid::Uuid::new_v4().to_string();
    let work_dir = shared.cfg.data_dir.join("tasks").join(&task_id);
    let params = serde_json::json!({
        "user_id": req.user_id, "session_id": req.session_id, "target": target,
        "language": job.language,
    });
    let join = task::join_of(
        &shared,
        req.app,
        &req.room,
        &req.user_id,
        &req.user_sig,
        None,
    );
    task::launch(
        shared,
        Launch {
            task_id,
            work_dir,
            join,
            job: Job::Transcribe(job),
            kind: KIND,
            room: req.room,
            params,
            dest: crate::dest::Dest::Nowhere,
            usage: UsageRule::whole("Transcription"),
            expire: MAX_RUN,
            relay: None,
            session: AiTags {
                session_id: req.session_id,
                target,
            },
        },
        reservation,
    )
    .await
}

impl Tasks {
    /// The running transcription `r` names among `apps`: (app, TaskId, info).
    fn running(&self, apps: &[SdkAppId], r: &AiTaskRef) -> Option<(SdkAppId, AiTaskInfo)> {
        let t = self.shared.lock_table();
        t.tasks.iter().find_map(|((app, id), e)| {
            let app = SdkAppId(*app);
            let hit = e.kind == KIND
                && e.status != "Exited"
                && apps.contains(&app)
                && match r {
                    AiTaskRef::Task(t) => t == id,
                    AiTaskRef::Session(a, s) => *a == app && e.ai.session_id.as_ref() == Some(s),
                };
            hit.then(|| {
                (
                    app,
                    AiTaskInfo {
                        task_id: id.clone(),
                        status: "InProgress",
                        started: e.started,
                        session_id: e.ai.session_id.clone(),
                    },
                )
            })
        })
    }

    pub(crate) async fn describe_transcription_task(
        &self,
        apps: Vec<SdkAppId>,
        r: AiTaskRef,
    ) -> Result<AiTaskInfo, TaskError> {
        if let Some((_, info)) = self.running(&apps, &r) {
            return Ok(info);
        }
        // Ended: the store knows it (by TaskId; a SessionId is only looked up while running).
        let AiTaskRef::Task(id) = r else {
            return Err(TaskError::NotFound);
        };
        let store = self.shared.store.clone();
        let found = tokio::task::spawn_blocking(move || {
            apps.iter().find_map(|a| store.task(*a, &id).ok().flatten())
        })
        .await
        .ok()
        .flatten();
        match found {
            Some(rec) if rec.kind == KIND => {
                let v: serde_json::Value =
                    serde_json::from_str(&rec.params_json).unwrap_or_default();
                Ok(AiTaskInfo {
                    task_id: rec.task_id,
                    status: "Stopped",
                    started: rec.created_at,
                    session_id: v
                        .get("session_id")
                        .and_then(|s| s.as_str())
                        .map(str::to_owned),
                })
            }
            _ => Err(TaskError::NotFound),
        }
    }

    pub(crate) async fn stop_transcription_task(
        &self,
        apps: Vec<SdkAppId>,
        id: String,
    ) -> Result<(), TaskError> {
        let Some((app, _)) = self.running(&apps, &AiTaskRef::Task(id.clone())) else {
            return Err(TaskError::NotFound);
        };
        self.with_entry(app, &id, KIND, |e| {
            e.status = "Exited";
            let _ = e.cmds.send(Command::Stop);
        })
    }
}
