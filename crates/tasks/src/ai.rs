//! AI tasks (transcription, conversation): one robot per room and UserId, TRTC's
//! de-duplication (a SessionId runs once per app; without one, one whole-room transcription per
//! room and one per target user), the server's speech engine and outbound rules filled in, and
//! the task's state for Describe/Stop by TaskId or SessionId.

use crate::task::{self, Launch, UsageRule};
use crate::{AiTags, Shared, Tasks};
use hearth_api::media::{AiTaskInfo, AiTaskRef, ConversationStart, TaskError, TranscriptionStart};
use hearth_media_proto::{Command, Job, Llm, SttEngine, Transcription, Tts};
use hearth_types::SdkAppId;
use std::sync::Arc;
use std::time::Duration;

const TRANSCRIPTION: &str = "transcription";
const CONVERSATION: &str = "conversation";
/// Decoding Opus and PocketSphinx at about a tenth of real time, per speaker or two (a
/// conversation adds speech synthesis and Opus encoding, in bursts).
const COST: f64 = 0.15;
/// A transcription that is not stopped ends after this long (TRTC's 10 hours).
const MAX_RUN: Duration = Duration::from_secs(10 * 3600);

/// Refuses a start that would duplicate a running AI task of `kind`.
fn check_duplicate(
    shared: &Shared,
    kind: &str,
    app: hearth_types::SdkAppId,
    room: &hearth_types::RoomKey,
    user_id: &str,
    tags: &AiTags,
) -> Result<(), TaskError> {
    let t = shared.lock_table();
    for ((a, _), e) in &t.tasks {
        if !matches!(e.kind, TRANSCRIPTION | CONVERSATION) || e.status == "Exited" {
            continue;
        }
        if *a == app.0 && tags.session_id.is_some() && e.ai.session_id == tags.session_id {
            return Err(TaskError::Exists(
                "A task with this SessionId is running.".into(),
            ));
        }
        if *a != app.0 || e.room != *room {
            continue;
        }
        if e.user_id == user_id {
            return Err(TaskError::Exists(format!(
                "The robot {user_id} is already in this room."
            )));
        }
        if e.kind == kind && tags.session_id.is_none() && e.ai.target == tags.target {
            return Err(TaskError::Exists(match &tags.target {
                None => "This room is already transcribed as a whole.".into(),
                Some(u) => format!("{u} already has a robot of this kind in this room."),
            }));
        }
    }
    Ok(())
}

/// Starts an AI task's worker once nothing duplicates it.
#[allow(clippy::too_many_arguments)]
async fn start(
    shared: Arc<Shared>,
    kind: &'static str,
    app: hearth_types::SdkAppId,
    room: hearth_types::RoomKey,
    (user_id, user_sig): (String, String),
    tags: AiTags,
    job: Job,
    params: serde_json::Value,
) -> Result<String, TaskError> {
    shared.available.clone().map_err(TaskError::Unavailable)?;
    check_duplicate(&shared, kind, app, &room, &user_id, &tags)?;
    let reservation = task::reserve(&shared, COST, kind)?;
    let task_id = uuid::Uuid::new_v4().to_string();
    let work_dir = shared.cfg.data_dir.join("tasks").join(&task_id);
    let join = task::join_of(&shared, app, &room, &user_id, &user_sig, None);
    task::launch(
        shared,
        Launch {
            task_id,
            work_dir,
            join,
            job,
            kind,
            room,
            params,
            dest: crate::dest::Dest::Nowhere,
            usage: UsageRule::whole(if kind == TRANSCRIPTION {
                "Transcription"
            } else {
                "Conversation"
            }),
            expire: MAX_RUN,
            relay: None,
            session: tags,
        },
        reservation,
    )
    .await
}

pub(crate) async fn start_transcription(
    shared: Arc<Shared>,
    req: TranscriptionStart,
) -> Result<String, TaskError> {
    let mut job = req.job;
    speech_engine(&shared, &mut job).await?;
    let params = serde_json::json!({
        "user_id": req.user_id, "session_id": req.session_id, "target": job.target,
        "language": job.language,
    });
    let tags = AiTags {
        session_id: req.session_id,
        target: job.target.clone(),
    };
    let user = (req.user_id, req.user_sig);
    let job = Job::Transcribe(job);
    start(
        shared,
        TRANSCRIPTION,
        req.app,
        req.room,
        user,
        tags,
        job,
        params,
    )
    .await
}

/// The task's speech engine: the one it named or the server's; it must know the language, and
/// an endpoint's URL must pass the address rules.
async fn speech_engine(shared: &Shared, job: &mut Transcription) -> Result<(), TaskError> {
    job.stt_python = shared.cfg.stt_python.clone();
    job.outbound_allow = shared.cfg.outbound_allow.clone();
    if job.engine.is_none() {
        job.endpoint = shared.cfg.stt_endpoint.clone();
    }
    let engine = *job.engine.get_or_insert(shared.cfg.stt_engine);
    if engine.language(&job.language).is_none() {
        return Err(TaskError::NotAbility(format!(
            "The speech engine {} does not recognize Language {:?}{}.",
            engine.name(),
            job.language,
            if engine == SttEngine::Pocketsphinx {
                " (English only; STTType whisper or openai know more)"
            } else {
                ""
            }
        )));
    }
    if let Some(e) = &job.endpoint {
        shared
            .rules
            .check(&e.url, &["http", "https"])
            .await
            .map_err(|err| TaskError::Invalid(format!("STTConfig.CustomParam.APIUrl: {err}")))?;
    }
    Ok(())
}

/// A conversation's endpoint URLs against the address rules, so that a refused one fails the
/// request (the worker checks them again before every use).
async fn check_urls(
    shared: &Shared,
    llm: Option<&Llm>,
    tts: Option<&Tts>,
) -> Result<(), TaskError> {
    let urls = llm
        .map(|l| ("LLMConfig.APIUrl", l.url.as_str()))
        .into_iter()
        .chain(
            tts.and_then(|t| t.endpoint.as_ref())
                .map(|e| ("TTSConfig.APIUrl", e.url.as_str())),
        );
    for (what, url) in urls {
        shared
            .rules
            .check(url, &["http", "https"])
            .await
            .map_err(|e| TaskError::Invalid(format!("{what}: {e}")))?;
    }
    Ok(())
}

pub(crate) async fn start_conversation(
    shared: Arc<Shared>,
    req: ConversationStart,
) -> Result<String, TaskError> {
    let mut job = req.job;
    speech_engine(&shared, &mut job.stt).await?;
    job.llm.outbound_allow = shared.cfg.outbound_allow.clone();
    // The URL is checked here too, so that a refused one fails the start (the worker checks it
    // again before every request).
    check_urls(&shared, Some(&job.llm), Some(&job.tts)).await?;
    let params = serde_json::json!({
        "user_id": req.user_id, "session_id": req.session_id, "target": job.target,
        "model": job.llm.model,
    });
    let tags = AiTags {
        session_id: req.session_id,
        target: Some(job.target.clone()),
    };
    let user = (req.user_id, req.user_sig);
    let job = Job::Converse(job);
    start(
        shared,
        CONVERSATION,
        req.app,
        req.room,
        user,
        tags,
        job,
        params,
    )
    .await
}

impl Tasks {
    /// The running task of `kind` `r` names among `apps`: (app, info).
    fn running(
        &self,
        kind: &str,
        apps: &[SdkAppId],
        r: &AiTaskRef,
    ) -> Option<(SdkAppId, AiTaskInfo)> {
        let t = self.shared.lock_table();
        t.tasks.iter().find_map(|((app, id), e)| {
            let app = SdkAppId(*app);
            let hit = e.kind == kind
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

    pub(crate) async fn describe_ai_task(
        &self,
        kind: &'static str,
        apps: Vec<SdkAppId>,
        r: AiTaskRef,
    ) -> Result<AiTaskInfo, TaskError> {
        if let Some((_, info)) = self.running(kind, &apps, &r) {
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
            Some(rec) if rec.kind == kind => {
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

    pub(crate) async fn command_ai_task(
        &self,
        kind: &'static str,
        apps: Vec<SdkAppId>,
        id: String,
        command: Command,
    ) -> Result<(), TaskError> {
        let Some((app, _)) = self.running(kind, &apps, &AiTaskRef::Task(id.clone())) else {
            return Err(TaskError::NotFound);
        };
        if let Command::UpdateConversation { llm, tts, .. } = &command {
            check_urls(&self.shared, llm.as_ref(), tts.as_ref()).await?;
        }
        self.with_entry(app, &id, kind, |e| {
            e.cmds.send(command).map_err(|_| TaskError::NotFound)
        })?
    }

    pub(crate) async fn stop_ai_task(
        &self,
        kind: &'static str,
        apps: Vec<SdkAppId>,
        id: String,
    ) -> Result<(), TaskError> {
        let Some((app, _)) = self.running(kind, &apps, &AiTaskRef::Task(id.clone())) else {
            return Err(TaskError::NotFound);
        };
        self.with_entry(app, &id, kind, |e| {
            e.status = "Exited";
            let _ = e.cmds.send(Command::Stop);
        })
    }
}
