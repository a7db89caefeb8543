//! A transcription task (StartAITranscription): the robot subscribes to the audio of the room's
//! speakers (or one target user), decodes each speaker's Opus to 16 kHz mono PCM
//! ([`crate::listen`]), feeds it to the speech engine ([`crate::stt`]), and sends every partial
//! and final sentence to the room as a custom message with `CmdId` 1, in TRTC's subtitle format:
//! `{"type":10000,"sender":<speaker>,"receiver":[],"payload":{"text","start_time","end_time",
//! "roundid","end","language"}}` (times `HH:MM:SS` from the task's start).

use crate::gst_util::BusEvent;
use crate::listen::Listener;
use crate::room_messages;
use crate::roster::Roster;
use crate::stt::{Stt, SttResult};
use crate::Runner;
use anyhow::Result;
use hearth_client::{Client, Codec, Frame, Kind, Stream, TrackKey, User};
use hearth_media_proto::{Command, Transcription};
use hearth_outbound::Rules;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the result reader needs of each speaker: the stream's start, as seconds of the task.
#[derive(Default)]
struct Shared {
    /// Stream id → (speaker, seconds from the task's start to the stream's start).
    streams: HashMap<String, (String, f64)>,
    /// Sentences sent per speaker (round ids).
    rounds: HashMap<String, u64>,
}

pub struct Transcriber {
    job: Transcription,
    client: Client,
    roster: Roster,
    speakers: HashMap<String, Listener>,
    stt: Stt,
    started: Instant,
    shared: Arc<Mutex<Shared>>,
    /// Streams opened, for unique stream ids (a speaker who leaves and returns gets a new one).
    opened: u64,
    failed: Option<String>,
    bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    reader: tokio::task::JoinHandle<()>,
    ended_rx: mpsc::UnboundedReceiver<String>,
}

/// The subtitle message of one result (times from the stream's start moved to the task's).
fn subtitle(speaker: &str, r: &SttResult, offset: f64, round: &str, language: &str) -> Vec<u8> {
    let times = match (r.start, r.end) {
        (Some(s), Some(e)) => (offset + s, offset + e),
        _ => (offset, offset),
    };
    room_messages::subtitle(speaker, &r.text, times, round, r.is_final, language)
}

impl Transcriber {
    pub async fn new(
        task_id: String,
        job: Transcription,
        client: Client,
        bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    ) -> Result<Self> {
        let (stt, mut results) = Stt::spawn(
            &job,
            &Rules::new(&job.outbound_allow).map_err(anyhow::Error::msg)?,
        )
        .await?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let reader = {
            let shared = shared.clone();
            let client = client.clone();
            let task = task_id;
            let language = job.language.clone();
            tokio::spawn(async move {
                while let Some(r) = results.recv().await {
                    if let Some(e) = r.error {
                        tracing::warn!(error = %e, "the speech engine refused a line");
                        continue;
                    }
                    if r.speech.is_some() || r.text.is_empty() {
                        continue;
                    }
                    let msg = {
                        let mut sh = shared.lock().unwrap_or_else(PoisonError::into_inner);
                        let Some((speaker, offset)) = sh.streams.get(&r.id).cloned() else {
                            continue;
                        };
                        let n = sh.rounds.entry(speaker.clone()).or_insert(1);
                        let round = format!("{task}-{speaker}-{n}");
                        if r.is_final {
                            *n += 1;
                        }
                        subtitle(&speaker, &r, offset, &round, &language)
                    };
                    if r.is_final {
                        tracing::info!(text = %r.text, "sentence transcribed");
                    }
                    client.send_custom(room_messages::CMD, msg);
                }
                let _ = ended_tx.send("the speech engine exited".to_owned());
            })
        };
        Ok(Transcriber {
            job,
            client,
            roster: Roster::default(),
            speakers: HashMap::new(),
            stt,
            started: Instant::now(),
            shared,
            opened: 0,
            failed: None,
            bus,
            reader,
            ended_rx,
        })
    }

    fn listens_to(&self, u: &User) -> bool {
        !u.bot && self.job.target.as_deref().is_none_or(|t| t == u.userid)
    }

    fn resubscribe(&mut self, u: &User) {
        if self.listens_to(u) {
            self.client.subscribe(&u.userid, Stream::Main, u.audio);
            if !u.audio {
                self.drop_speaker(&u.userid);
            }
        }
    }

    /// Starts decoding one speaker's audio into a new engine stream.
    fn speaker(&mut self, user: &str, first_rtp: u64) -> Result<Listener> {
        self.opened += 1;
        let id = format!("{user}#{}", self.opened);
        let offset = self.started.elapsed().as_secs_f64();
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .streams
            .insert(id.clone(), (user.to_owned(), offset));
        self.stt.open(&id);
        let l = Listener::start(
            id,
            self.stt.feeder(),
            first_rtp,
            self.opened,
            self.bus.clone(),
        )?;
        tracing::info!(user, "transcribing a speaker");
        Ok(l)
    }

    fn drop_speaker(&mut self, user: &str) {
        if let Some(s) = self.speakers.remove(user) {
            s.stop();
            let sh = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            let ids: Vec<String> = sh
                .streams
                .iter()
                .filter(|(_, (u, _))| u == user)
                .map(|(id, _)| id.clone())
                .collect();
            drop(sh);
            for id in ids {
                // The stream's last sentence ends; its results may still come.
                self.stt.close(&id);
            }
        }
    }
}

impl Runner for Transcriber {
    fn anchors(&self) -> usize {
        self.roster
            .iter()
            .filter(|u| self.listens_to(u) && u.audio)
            .count()
    }

    fn user_entered(&mut self, u: User) {
        self.roster.entered(&u);
        self.resubscribe(&u);
    }

    fn user_updated(&mut self, u: User) {
        self.roster.updated(&u);
        self.resubscribe(&u);
    }

    fn user_exited(&mut self, user: &str) {
        self.roster.exited(user);
        self.drop_speaker(user);
    }

    fn track_removed(&mut self, key: &TrackKey) {
        if key.kind == Kind::Audio && key.stream == Stream::Main {
            self.drop_speaker(&key.user);
        }
    }

    fn frame(&mut self, f: Frame) {
        if f.track.kind != Kind::Audio || f.codec != Codec::Opus {
            return;
        }
        let user = f.track.user.to_string();
        if !self.speakers.contains_key(&user) {
            match self.speaker(&user, f.rtp_time) {
                Ok(s) => {
                    self.speakers.insert(user.clone(), s);
                }
                Err(e) => {
                    self.failed = Some(format!("decoding {user}'s audio: {e:#}"));
                    return;
                }
            }
        }
        if let Some(s) = self.speakers.get_mut(&user) {
            s.push(&f);
        }
    }

    fn command(&mut self, _c: Command) {}

    fn tick(&mut self) {
        if let Ok(why) = self.ended_rx.try_recv() {
            self.failed.get_or_insert(why);
        }
    }

    fn bus_event(&mut self, _id: u64, ev: BusEvent) -> Result<bool, String> {
        match ev {
            BusEvent::Error(e) => Err(format!("decoding a speaker's audio: {e}")),
            _ => Ok(false),
        }
    }

    fn finish(&mut self) {
        let users: Vec<String> = self.speakers.keys().cloned().collect();
        for u in users {
            self.drop_speaker(&u);
        }
    }

    fn stalled_for(&self) -> Duration {
        Duration::ZERO
    }

    fn canvases_left(&self) -> usize {
        0
    }

    fn failure(&mut self) -> Option<String> {
        self.failed.take()
    }
}

impl Drop for Transcriber {
    fn drop(&mut self) {
        // Results still on their way are not worth holding the exit for.
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_times_move_to_the_tasks_clock() {
        let r = SttResult {
            id: "alice#1".into(),
            text: "turn on the kitchen lights".into(),
            is_final: true,
            start: Some(0.6),
            end: Some(2.1),
            error: None,
            ready: false,
            speech: None,
            segment: None,
        };
        let m: serde_json::Value =
            serde_json::from_slice(&subtitle("alice", &r, 3600.0, "t-alice-1", "en")).unwrap();
        assert_eq!(m["payload"]["start_time"], "01:00:00");
        assert_eq!(m["payload"]["end_time"], "01:00:02");
        assert_eq!(m["payload"]["text"], "turn on the kitchen lights");
    }
}
