//! A voice conversation (StartAIConversation): the robot greets, listens to its target user
//! (the speech engine of transcription), sends each of the user's sentences with the recent
//! history to the LLM ([`crate::llm`]), speaks the answer sentence by sentence as it streams in
//! ([`crate::tts`]), and is interrupted when the user talks over it for long enough (mode 0)
//! or when the user's client sends the interrupt signal (mode 1, and in mode 0 too).
//! Both sides' subtitles and the robot's state go to the room as custom messages.

use crate::gst_util::BusEvent;
use crate::listen::Listener;
use crate::room_messages::{self, BotState};
use crate::stt::{Stt, SttResult};
use crate::{llm, tts, Runner};
use anyhow::Result;
use hearth_client::{Client, Codec, Frame, Kind, Stream, TrackKey, User};
use hearth_media_proto::{Command, Conversation};
use hearth_outbound::Rules;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Opus frames are 20 ms: 960 ticks of the 48 kHz RTP clock.
const FRAME: Duration = Duration::from_millis(20);
const FRAME_TICKS: u64 = 960;

/// One round of the conversation as the LLM will see it next time.
#[derive(Debug, Clone, Default)]
struct Round {
    user: String,
    /// The whole answer (HistoryMode 0) or what was spoken of it (HistoryMode 1).
    assistant: String,
}

/// What the robot's tasks share.
struct Shared {
    history: VecDeque<Round>,
    /// Rounds so far (round ids).
    round: u64,
    speaking: bool,
    /// What is being said now cannot be interrupted by the user (ServerPushText Priority 1).
    protected: bool,
    /// An LLM round is under way (thinking or speaking its answer).
    busy: bool,
    /// What UpdateAIConversation may change.
    settings: Settings,
}

/// The conversation's settings that UpdateAIConversation changes.
#[derive(Clone)]
struct Settings {
    interrupt_mode: u8,
    interrupt_speech_ms: u32,
    llm: hearth_media_proto::Llm,
    tts: hearth_media_proto::Tts,
}

/// A sentence to speak, of one generation (an interruption starts a new one).
struct Utterance {
    generation: u64,
    round: String,
    text: String,
    frames: Vec<Vec<u8>>,
    /// Once said, the task ends (ServerPushText StopAfterPlay).
    last: bool,
    /// Said by the LLM's answer (HistoryMode 1 records it as spoken).
    answer: bool,
    /// The user cannot interrupt it (ServerPushText Priority 1).
    protected: bool,
}

/// How a sentence is to be said.
#[derive(Clone, Copy, Default)]
struct Say {
    /// Once said, the task ends (ServerPushText StopAfterPlay).
    last: bool,
    /// Part of the LLM's answer (HistoryMode 1 records it as spoken).
    answer: bool,
    /// The user cannot interrupt it.
    protected: bool,
}

/// The robot's context, cheap to clone into its tasks.
#[derive(Clone)]
struct Bot {
    job: Arc<Conversation>,
    name: String,
    client: Client,
    rules: Rules,
    voices: tts::Voices,
    shared: Arc<Mutex<Shared>>,
    generation: Arc<AtomicU64>,
    speak: mpsc::UnboundedSender<Utterance>,
    started: Instant,
    /// Set once a StopAfterPlay text has been said.
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl Bot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, msg: Vec<u8>) {
        self.client.send_custom(room_messages::CMD, msg);
    }

    fn state(&self, round: &str, s: BotState, error: Option<&str>) {
        self.send(room_messages::bot_state(&self.name, round, s, error));
    }

    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn subtitle(&self, sender: &str, text: &str, round: &str, end: bool) {
        let t = self.now();
        self.send(room_messages::subtitle(
            sender,
            text,
            (t, t),
            round,
            end,
            &self.job.stt.language,
        ));
    }

    /// Stops what the robot says and will say; the next round starts a new generation.
    fn interrupt(&self, round: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.state(round, BotState::Interrupted, None);
        tracing::info!("the robot was interrupted");
    }

    fn settings(&self) -> Settings {
        self.lock().settings.clone()
    }

    /// Speaks `text` as part of `round` (generation `g`); false if interrupted meanwhile.
    async fn say(&self, g: u64, round: &str, text: &str) -> bool {
        let how = Say {
            answer: true,
            ..Say::default()
        };
        self.say_as(g, round, text, None, how).await
    }

    /// Says `text`, or plays `audio` instead when given.
    async fn say_as(
        &self,
        g: u64,
        round: &str,
        text: &str,
        audio: Option<Vec<u8>>,
        how: Say,
    ) -> bool {
        let tts = self.settings().tts;
        let rendered = match audio {
            Some(a) => self.voices.play(a).await,
            None => self.voices.speak(&tts, text).await,
        };
        let frames = match rendered {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "speech synthesis failed");
                self.state(round, BotState::Listening, Some(&format!("{e:#}")));
                return false;
            }
        };
        self.generation.load(Ordering::SeqCst) == g
            && self
                .speak
                .send(Utterance {
                    generation: g,
                    round: round.to_owned(),
                    text: text.to_owned(),
                    frames,
                    last: how.last,
                    answer: how.answer,
                    protected: how.protected,
                })
                .is_ok()
    }

    /// Sends the app's data of a round (type 10002).
    fn meta(&self, round: &str, payload: &serde_json::Value) {
        match room_messages::meta_info(&self.name, round, payload) {
            Some(m) => self.send(m),
            None => tracing::warn!("a metainfo larger than a custom message was dropped"),
        }
    }

    /// One round: the user's sentence to the LLM, the answer spoken as it comes.
    async fn answer(self, question: String, invoke: bool) {
        let g = self.generation.load(Ordering::SeqCst);
        let (round, messages) = {
            let mut sh = self.lock();
            sh.round += 1;
            sh.busy = true;
            let mut messages = Vec::new();
            let keep = sh.settings.llm.history as usize;
            let skip = sh.history.len().saturating_sub(keep);
            for r in sh.history.iter().skip(skip) {
                if !r.user.is_empty() {
                    messages.push(serde_json::json!({"role": "user", "content": r.user}));
                }
                if !r.assistant.is_empty() {
                    messages.push(serde_json::json!({"role": "assistant", "content": r.assistant}));
                }
            }
            messages.push(serde_json::json!({"role": "user", "content": question}));
            sh.history.push_back(Round {
                user: question.clone(),
                assistant: String::new(),
            });
            while sh.history.len() > 50 {
                sh.history.pop_front();
            }
            (format!("{}-{}", self.name, sh.round), messages)
        };
        self.state(&round, BotState::Thinking, None);
        let (tx, mut tokens) = mpsc::unbounded_channel();
        let settings = self.settings();
        let asking = {
            let (cfg, rules) = (settings.llm.clone(), self.rules.clone());
            let messages = serde_json::Value::Array(messages);
            tokio::spawn(async move { llm::ask(&cfg, &rules, messages, invoke, tx).await })
        };
        let mut said = String::new();
        let mut pending = String::new();
        while let Some(piece) = tokens.recv().await {
            if self.generation.load(Ordering::SeqCst) != g {
                asking.abort();
                self.lock().busy = false;
                return;
            }
            let t = match piece {
                llm::Piece::Text(t) => t,
                llm::Piece::Meta(m) => {
                    self.meta(&round, &m);
                    continue;
                }
            };
            pending.push_str(&t);
            while let Some(end) = sentence_end(&pending) {
                let sentence: String = pending.drain(..end).collect();
                let sentence = sentence.trim().to_owned();
                if sentence.is_empty() {
                    continue;
                }
                said.push_str(&sentence);
                said.push(' ');
                self.subtitle(&self.name, said.trim(), &round, false);
                if !self.say(g, &round, &sentence).await {
                    asking.abort();
                    self.lock().busy = false;
                    return;
                }
            }
        }
        let outcome = asking
            .await
            .unwrap_or_else(|_| Err("the LLM request was cancelled".into()));
        let rest = pending.trim().to_owned();
        if !rest.is_empty() {
            said.push_str(&rest);
            self.subtitle(&self.name, said.trim(), &round, false);
            self.say(g, &round, &rest).await;
        }
        self.lock().busy = false;
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "the LLM failed");
            self.state(&round, BotState::Listening, Some(&e));
            return;
        }
        self.subtitle(&self.name, said.trim(), &round, true);
        if settings.llm.history_mode == 0 {
            if let Some(r) = self.lock().history.back_mut() {
                r.assistant = said.trim().to_owned();
            }
        }
    }

    /// ServerPushText: the robot says `text` (or plays `audio`) now, after the current speech,
    /// or not at all.
    async fn push_text(self, p: PushText) {
        let round = format!("{}-push-{}", self.name, self.lock().round);
        let busy = {
            let sh = self.lock();
            sh.busy || sh.speaking
        };
        if p.interrupt && busy {
            self.lock().speaking = false;
            self.interrupt(&round);
        } else if busy && !p.queue {
            tracing::info!("a pushed text was dropped: the robot is busy (DropMode 0)");
            return;
        }
        if p.add_history && !p.text.is_empty() {
            self.lock().history.push_back(Round {
                user: String::new(),
                assistant: p.text.clone(),
            });
        }
        if let Some(m) = &p.meta {
            self.meta(&round, m);
        }
        if !p.text.is_empty() {
            self.subtitle(&self.name, &p.text, &round, true);
        }
        let g = self.generation.load(Ordering::SeqCst);
        let how = Say {
            last: p.last,
            answer: false,
            protected: p.protected,
        };
        self.say_as(g, &round, &p.text, p.audio, how).await;
    }
}

/// A ServerPushText as the robot carries it out.
struct PushText {
    text: String,
    interrupt: bool,
    last: bool,
    add_history: bool,
    queue: bool,
    protected: bool,
    audio: Option<Vec<u8>>,
    meta: Option<serde_json::Value>,
}

/// Where the first sentence of `s` ends (after `.`, `!`, `?` and a space), if it does.
fn sentence_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(1))
        .find(|&i| matches!(b[i], b'.' | b'!' | b'?') && b[i + 1].is_ascii_whitespace())
        .map(|i| i + 1)
}

/// Sends utterances in real time as the robot's audio; an interruption drops the rest.
async fn speaker(bot: Bot, mut rx: mpsc::UnboundedReceiver<Utterance>) {
    let mut rtp: u64 = 0;
    let mut clock: Option<(Instant, u64)> = None;
    while let Some(u) = rx.recv().await {
        if u.generation != bot.generation.load(Ordering::SeqCst) {
            continue;
        }
        bot.lock().protected = u.protected;
        if !bot.lock().speaking {
            bot.lock().speaking = true;
            bot.state(&u.round, BotState::Speaking, None);
        }
        // The RTP clock follows the wall clock across silences.
        let now = Instant::now();
        if let Some((t0, r0)) = clock {
            let elapsed = now.saturating_duration_since(t0).as_micros() as u64 * 48 / 1000;
            rtp = rtp.max(r0 + elapsed);
        }
        let (t0, r0) = (now, rtp);
        clock = Some((t0, r0));
        let mut whole = true;
        for (i, f) in u.frames.into_iter().enumerate() {
            if u.generation != bot.generation.load(Ordering::SeqCst) {
                whole = false;
                break;
            }
            tokio::time::sleep_until((t0 + FRAME * i as u32).into()).await;
            bot.client.send_frame(Kind::Audio, rtp, f);
            rtp += FRAME_TICKS;
        }
        if whole && u.last {
            bot.done.store(true, Ordering::SeqCst);
        }
        if whole && u.answer && bot.settings().llm.history_mode == 1 {
            let mut sh = bot.lock();
            if let Some(r) = sh.history.back_mut() {
                if !r.assistant.is_empty() {
                    r.assistant.push(' ');
                }
                r.assistant.push_str(&u.text);
            }
        }
        bot.lock().protected = false;
        if rx.is_empty() {
            bot.lock().speaking = false;
            bot.state(&u.round, BotState::Listening, None);
        }
    }
}

pub struct Conversationalist {
    bot: Bot,
    stt: Stt,
    listener: Option<Listener>,
    opened: u64,
    present: bool,
    bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ended_rx: mpsc::UnboundedReceiver<String>,
    failed: Option<String>,
}

impl Conversationalist {
    pub async fn new(
        name: String,
        job: Conversation,
        client: Client,
        bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    ) -> Result<Self> {
        let rules = Rules::new(&job.llm.outbound_allow).map_err(anyhow::Error::msg)?;
        let (stt, mut results) = Stt::spawn(&job.stt, &rules).await?;
        let voices = tts::Voices::new(job.stt.stt_python.clone(), rules.clone());
        voices.prepare(&job.tts).await?;
        client.publish_audio();
        let (speak, speak_rx) = mpsc::unbounded_channel();
        let bot = Bot {
            job: Arc::new(job.clone()),
            name,
            client,
            voices,
            rules,
            shared: Arc::new(Mutex::new(Shared {
                history: VecDeque::new(),
                round: 0,
                speaking: false,
                protected: false,
                busy: false,
                settings: Settings {
                    interrupt_mode: job.interrupt_mode,
                    interrupt_speech_ms: job.interrupt_speech_ms,
                    llm: job.llm.clone(),
                    tts: job.tts.clone(),
                },
            })),
            generation: Arc::new(AtomicU64::new(0)),
            speak,
            started: Instant::now(),
            done: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let mut tasks = vec![tokio::spawn(speaker(bot.clone(), speak_rx))];
        if let Some(w) = bot.job.welcome.clone().filter(|w| !w.trim().is_empty()) {
            let b = bot.clone();
            tasks.push(tokio::spawn(async move {
                let round = format!("{}-0", b.name);
                b.subtitle(&b.name, &w, &round, true);
                b.say(0, &round, &w).await;
            }));
        }
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let b = bot.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(r) = results.recv().await {
                b.heard(r);
            }
            let _ = ended_tx.send("the speech engine exited".to_owned());
        }));
        Ok(Conversationalist {
            bot,
            stt,
            listener: None,
            opened: 0,
            present: false,
            bus,
            tasks,
            ended_rx,
            failed: None,
        })
    }

    fn target(&self) -> &str {
        &self.bot.job.target
    }

    fn stop_listening(&mut self) {
        if let Some(l) = self.listener.take() {
            l.stop();
            self.stt
                .close(&format!("{}#{}", self.target(), self.opened));
        }
    }

    fn follow(&mut self, u: &User) {
        if u.userid != self.target() {
            return;
        }
        self.present = u.audio;
        self.bot.client.subscribe(&u.userid, Stream::Main, u.audio);
        if !u.audio {
            self.stop_listening();
        }
    }
}

impl Bot {
    /// What the speech engine heard of the target.
    fn heard(&self, r: SttResult) {
        let round = format!("{}-{}", self.name, self.lock().round + 1);
        if let Some(e) = r.error {
            // The transcription endpoint failed on a sentence (or the engine refused a line):
            // the room hears why, and the robot listens on.
            tracing::warn!(error = %e, "a sentence was not recognized");
            self.state(&round, BotState::Listening, Some(&e));
            return;
        }
        if let Some(secs) = r.speech {
            let (speaking, s) = {
                let sh = self.lock();
                (sh.speaking && !sh.protected, sh.settings.clone())
            };
            if speaking
                && s.interrupt_mode == 0
                && secs * 1000.0 >= f64::from(s.interrupt_speech_ms)
            {
                self.lock().speaking = false;
                self.interrupt(&round);
            }
            return;
        }
        if r.text.is_empty() {
            return;
        }
        self.subtitle(&self.job.target, &r.text, &round, r.is_final);
        if r.is_final {
            tracing::info!(text = %r.text, "the user said");
            tokio::spawn(self.clone().answer(r.text, false));
        }
    }
}

impl Runner for Conversationalist {
    fn anchors(&self) -> usize {
        usize::from(self.present)
    }

    fn user_entered(&mut self, u: User) {
        self.follow(&u);
    }

    fn user_updated(&mut self, u: User) {
        self.follow(&u);
    }

    fn user_exited(&mut self, user: &str) {
        if user == self.target() {
            self.present = false;
            self.stop_listening();
        }
    }

    fn track_removed(&mut self, key: &TrackKey) {
        if &*key.user == self.target() && key.kind == Kind::Audio {
            self.stop_listening();
        }
    }

    fn frame(&mut self, f: Frame) {
        if f.track.kind != Kind::Audio || f.codec != Codec::Opus || &*f.track.user != self.target()
        {
            return;
        }
        if self.listener.is_none() {
            self.opened += 1;
            let id = format!("{}#{}", self.target(), self.opened);
            self.stt.open(&id);
            match Listener::start(
                id,
                self.stt.feeder(),
                f.rtp_time,
                self.opened,
                self.bus.clone(),
            ) {
                Ok(l) => self.listener = Some(l),
                Err(e) => {
                    self.failed = Some(format!("decoding the user's audio: {e:#}"));
                    return;
                }
            }
        }
        if let Some(l) = self.listener.as_mut() {
            l.push(&f);
        }
    }

    fn custom(&mut self, user: &str, cmd_id: u8, data: &[u8]) {
        if user != self.target() || !room_messages::is_interrupt(&self.bot.name, cmd_id, data) {
            return;
        }
        let b = &self.bot;
        let (busy, round) = {
            let sh = b.lock();
            (
                (sh.speaking || sh.busy) && !sh.protected,
                format!("{}-{}", b.name, sh.round),
            )
        };
        if busy {
            b.lock().speaking = false;
            b.interrupt(&round);
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::UpdateConversation {
                welcome,
                interrupt_mode,
                interrupt_speech_ms,
                llm,
                tts,
            } => {
                let mut sh = self.bot.lock();
                let s = &mut sh.settings;
                if let Some(m) = interrupt_mode {
                    s.interrupt_mode = m;
                }
                if let Some(ms) = interrupt_speech_ms {
                    s.interrupt_speech_ms = ms;
                }
                if let Some(mut l) = llm {
                    l.outbound_allow = s.llm.outbound_allow.clone();
                    s.llm = l;
                }
                if let Some(t) = tts {
                    s.tts = t;
                }
                // The welcome is said once, at the start: a new one has no later use.
                let _ = welcome;
                tracing::info!("the conversation's settings changed");
            }
            Command::PushText {
                text,
                interrupt,
                stop_after_play,
                add_history,
                queue_if_busy,
                protected,
                audio,
                meta,
            } => {
                let b = self.bot.clone();
                self.tasks.push(tokio::spawn(b.push_text(PushText {
                    text,
                    interrupt,
                    last: stop_after_play,
                    add_history,
                    queue: queue_if_busy,
                    protected,
                    audio,
                    meta,
                })));
            }
            Command::InvokeLlm { content, interrupt } => {
                let b = self.bot.clone();
                if interrupt && (b.lock().speaking || b.lock().busy) {
                    b.lock().speaking = false;
                    let round = format!("{}-{}", b.name, b.lock().round);
                    b.interrupt(&round);
                }
                self.tasks.push(tokio::spawn(b.answer(content, true)));
            }
            _ => {}
        }
    }

    fn tick(&mut self) {
        if let Ok(why) = self.ended_rx.try_recv() {
            self.failed.get_or_insert(why);
        }
    }

    fn finished(&self) -> bool {
        self.bot.done.load(Ordering::SeqCst)
    }

    fn bus_event(&mut self, _id: u64, ev: BusEvent) -> Result<bool, String> {
        match ev {
            BusEvent::Error(e) => Err(format!("decoding the user's audio: {e}")),
            _ => Ok(false),
        }
    }

    fn finish(&mut self) {
        self.stop_listening();
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

impl Drop for Conversationalist {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_end_at_punctuation_and_a_space() {
        assert_eq!(sentence_end("Hello there. How"), Some(12));
        assert_eq!(sentence_end("It is 3.5 degrees"), None);
        assert_eq!(sentence_end("Really?! Yes"), Some(8));
        assert_eq!(sentence_end("no end yet."), None);
    }
}
