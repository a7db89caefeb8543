//! Stream ingest tasks: the URL passes the outbound rules here (and every fetch of the worker
//! passes them again through its proxy), one robot per room and UserId, the server's limits
//! filled in, and the task's state for Describe/Update/Stop.

use crate::task::{self, Launch, UsageRule};
use crate::{Shared, Tasks};
use hearth_api::media::{IngestChange, IngestStart, TaskError};
use hearth_media_proto::{Command, Ingest, Job};
use hearth_types::SdkAppId;
use std::sync::Arc;
use std::time::Duration;

/// The schemes an ingest pulls (the API refuses others before this).
const SCHEMES: &[&str] = &["http", "https", "rtmp", "srt"];

/// The CPU an ingest is expected to take: decoding, and VP8 in two layers, by pixel rate.
fn cost_of(i: &Ingest, max: (u32, u32)) -> f64 {
    let (w, h, fps) = match i.video {
        Some(v) if v.width > 0 => (v.width, v.height, v.fps.max(1)),
        _ => (max.0, max.1, 30),
    };
    0.1 + 0.35 * f64::from(w * h * fps) / (1280.0 * 720.0 * 30.0)
}

pub(crate) async fn check_url(shared: &Shared, url: &str) -> Result<(), TaskError> {
    shared
        .rules
        .check(url, SCHEMES)
        .await
        .map(|_| ())
        .map_err(|e| TaskError::StreamUrl(format!("StreamUrl {url}: {e}")))
}

pub(crate) async fn create(shared: Arc<Shared>, req: IngestStart) -> Result<String, TaskError> {
    shared.available.clone().map_err(TaskError::Unavailable)?;
    {
        let t = shared.lock_table();
        let running = t.tasks.values().any(|e| {
            e.kind == "ingest"
                && e.status != "Exited"
                && e.room == req.room
                && e.user_id == req.user_id
        });
        if running {
            return Err(TaskError::Exists(format!(
                "UserId {} already ingests a stream into this room; stop it or use another UserId.",
                req.user_id
            )));
        }
    }
    check_url(&shared, &req.ingest.url).await?;
    let mut ingest = req.ingest;
    let cfg = &shared.cfg;
    (ingest.max_width, ingest.max_height) = cfg.ingest_max_size;
    ingest.live_retry_secs = cfg.ingest_live_retry_secs;
    ingest.passthrough = cfg.ingest_passthrough;
    ingest.outbound_allow = cfg.outbound_allow.clone();
    let reservation = task::reserve(&shared, cost_of(&ingest, cfg.ingest_max_size), "ingest")?;
    let task_id = uuid::Uuid::new_v4().to_string();
    let work_dir = cfg.data_dir.join("tasks").join(&task_id);
    let params = serde_json::json!({
        "user_id": req.user_id, "url": ingest.url, "repeat": ingest.repeat, "volume": ingest.volume,
    });
    let join = task::join_of(
        &shared,
        req.app,
        &req.room,
        &req.user_id,
        &req.user_sig,
        req.private_map_key,
    );
    task::launch(
        shared,
        Launch {
            task_id,
            work_dir,
            join,
            job: Job::Ingest(ingest),
            kind: "ingest",
            room: req.room,
            params,
            dest: crate::dest::Dest::Nowhere,
            usage: UsageRule::ingest(),
            expire: Duration::from_secs(u64::MAX / 4),
            relay: None,
            session: Default::default(),
        },
        reservation,
    )
    .await
}

impl Tasks {
    /// A running ingest, or why not: `Finished` when the store knows it ended.
    pub(crate) async fn ingest_entry<T>(
        &self,
        app: SdkAppId,
        id: &str,
        f: impl FnOnce(&mut crate::Entry) -> Result<T, TaskError>,
    ) -> Result<T, TaskError> {
        match self.with_entry(app, id, "ingest", |e| {
            if e.status == "Exited" {
                Err(TaskError::Finished)
            } else {
                f(e)
            }
        }) {
            Ok(r) => r,
            Err(TaskError::NotFound) => {
                let store = self.shared.store.clone();
                let key = id.to_owned();
                let rec = tokio::task::spawn_blocking(move || store.task(app, &key))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .flatten();
                match rec {
                    Some(r) if r.kind == "ingest" => Err(TaskError::Finished),
                    _ => Err(TaskError::NotFound),
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn update_ingest_task(
        &self,
        app: SdkAppId,
        id: String,
        change: IngestChange,
    ) -> Result<(), TaskError> {
        self.ingest_entry(app, &id, |_| Ok(())).await?;
        if let Some(u) = &change.url {
            check_url(&self.shared, u).await?;
        }
        self.ingest_entry(app, &id, |e| {
            e.cmds
                .send(Command::UpdateIngest {
                    url: change.url,
                    volume: change.volume,
                    pause: change.pause,
                })
                .map_err(|_| TaskError::Finished)
        })
        .await
    }

    pub(crate) async fn stop_ingest_task(
        &self,
        app: SdkAppId,
        id: String,
    ) -> Result<(), TaskError> {
        self.ingest_entry(app, &id, |e| {
            e.status = "Exited";
            let _ = e.cmds.send(Command::Stop);
            Ok(())
        })
        .await
    }
}
