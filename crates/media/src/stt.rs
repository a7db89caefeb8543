//! The speech-to-text engine of transcription tasks: a PocketSphinx process (the script
//! `stt_pocketsphinx.py`, run by the configured Python) fed each speaker's 16 kHz mono PCM as
//! JSON lines, its partial and final sentences read back. Audio waits in a bounded queue: an
//! engine that falls behind loses audio (counted), never the worker's memory.

use anyhow::{Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const SCRIPT: &str = include_str!("stt_pocketsphinx.py");
/// Lines (20 ms of one speaker each, mostly) waiting for the engine at most: 40 s of audio.
const QUEUE: usize = 2000;

/// One result of the engine.
#[derive(Debug, Clone, Deserialize)]
pub struct SttResult {
    /// The speaker's stream.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// Seconds from the stream's start (final results).
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// The engine's complaint about a line.
    pub error: Option<String>,
    /// The engine's first line: it is loaded.
    #[serde(default)]
    pub ready: bool,
    /// A progress event: seconds of the sentence being spoken so far (no text).
    pub speech: Option<f64>,
}

/// How long the engine may take to load.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

/// The engine's input side; dropping it ends the engine.
pub struct Stt {
    tx: mpsc::Sender<String>,
    pub dropped: Arc<AtomicU64>,
    _child: tokio::process::Child,
}

impl Stt {
    /// Starts the engine and waits until it has loaded; results come on the receiver, which
    /// closes when the engine exits.
    pub async fn spawn(python: &str) -> Result<(Stt, mpsc::UnboundedReceiver<SttResult>)> {
        let mut child = tokio::process::Command::new(python)
            .args(["-u", "-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the speech engine with {python}"))?;
        let mut stdin = child.stdin.take().context("the engine's stdin")?;
        let stdout = child.stdout.take().context("the engine's stdout")?;
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                match serde_json::from_str::<SttResult>(&l) {
                    Ok(r) => {
                        if out_tx.send(r).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, line = %l, "the speech engine said something unreadable")
                    }
                }
            }
        });
        let mut out_rx = out_rx;
        match tokio::time::timeout(READY_WITHIN, out_rx.recv()).await {
            Ok(Some(r)) if r.ready => {}
            Ok(_) => anyhow::bail!(
                "the speech engine ({python} with pocketsphinx) exited at start; is pocketsphinx installed for it?"
            ),
            Err(_) => anyhow::bail!("the speech engine did not load within 15 s"),
        }
        Ok((
            Stt {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                _child: child,
            },
            out_rx,
        ))
    }

    /// A handle that feeds audio from any thread (a pipeline's appsink).
    pub fn feeder(&self) -> SttFeeder {
        SttFeeder {
            tx: self.tx.clone(),
            dropped: self.dropped.clone(),
        }
    }

    pub fn open(&self, id: &str, vad_silence_ms: u32, vad_level: u8, phrases: &[String]) {
        self.line(serde_json::json!({
            "open": id, "vad_silence_ms": vad_silence_ms, "vad_level": vad_level, "phrases": phrases,
        }));
    }

    /// Ends a speaker's stream: a sentence in progress is finished.
    pub fn close(&self, id: &str) {
        self.line(serde_json::json!({ "close": id }));
    }

    /// In the same queue as the audio, so that it stays in order with it.
    fn line(&self, v: serde_json::Value) {
        if self.tx.try_send(format!("{v}\n")).is_err() {
            tracing::warn!(line = %v, "the speech engine is 40 s behind; a control line was lost");
        }
    }
}

/// Feeds one speaker's PCM to the engine.
#[derive(Clone)]
pub struct SttFeeder {
    tx: mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl SttFeeder {
    pub fn pcm(&self, id: &str, pcm: &[u8]) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(pcm);
        let line = format!(
            "{{\"pcm\":{},\"b64\":\"{b64}\"}}\n",
            serde_json::Value::String(id.to_owned())
        );
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
