//! The speech-to-text engine of AI tasks: a child process (the script `stt_engine.py`, run by
//! the configured Python: PocketSphinx's voice detection, and PocketSphinx's or Whisper's words)
//! fed each speaker's 16 kHz mono PCM as JSON lines, its partial and final sentences read back.
//! With an OpenAI-compatible endpoint, the process only cuts sentences and each one's audio is
//! sent to the endpoint from here, in order. Audio waits in a bounded queue: an engine that falls
//! behind loses audio (counted), never the worker's memory.

use anyhow::{Context, Result};
use base64::Engine as _;
use hearth_media_proto::{Endpoint, SttEngine, Transcription};
use hearth_outbound::Rules;
use serde::Deserialize;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const SCRIPT: &str = include_str!("stt_engine.py");
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
    /// A sentence's audio, for the endpoint (base64 PCM).
    #[serde(default)]
    pub segment: Option<String>,
}

/// How long the engine may take to load (Whisper's model takes a few seconds).
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The engine's input side; dropping it ends the engine.
pub struct Stt {
    tx: mpsc::Sender<String>,
    pub dropped: Arc<AtomicU64>,
    /// What each speaker's stream is opened with.
    open: serde_json::Value,
    _child: tokio::process::Child,
}

impl Stt {
    /// Starts the engine of `job` and waits until it has loaded; results come on the receiver,
    /// which closes when the engine exits. `rules` govern an endpoint's URL.
    pub async fn spawn(
        job: &Transcription,
        rules: &Rules,
    ) -> Result<(Stt, mpsc::UnboundedReceiver<SttResult>)> {
        let python = job.stt_python.as_str();
        let engine = job.engine.unwrap_or(SttEngine::Pocketsphinx);
        let language = engine.language(&job.language).unwrap_or("en");
        let endpoint = match (engine, &job.endpoint) {
            (SttEngine::Openai, Some(e)) => Some(e.clone()),
            (SttEngine::Openai, None) => anyhow::bail!("STTType openai has no endpoint"),
            _ => None,
        };
        let script_engine = match engine {
            SttEngine::Openai => "segments",
            other => other.name(),
        };
        let mut child = tokio::process::Command::new(python)
            .args(["-u", "-c", SCRIPT, script_engine])
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
        // Sentences for the endpoint, asked one at a time so that results stay in order.
        let segments = endpoint.map(|ep| {
            let (seg_tx, mut seg_rx) = mpsc::channel::<SttResult>(16);
            let (out, rules) = (out_tx.clone(), rules.clone());
            let language = language.to_owned();
            tokio::spawn(async move {
                while let Some(mut r) = seg_rx.recv().await {
                    let pcm = base64::engine::general_purpose::STANDARD
                        .decode(r.segment.take().unwrap_or_default())
                        .unwrap_or_default();
                    match transcribe(&ep, &rules, &language, &pcm).await {
                        Ok(text) => {
                            r.text = text;
                            r.is_final = true;
                        }
                        Err(e) => r.error = Some(e),
                    }
                    if out.send(r).is_err() {
                        break;
                    }
                }
            });
            seg_tx
        });
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                match serde_json::from_str::<SttResult>(&l) {
                    Ok(r) if r.segment.is_some() => {
                        let lost = match &segments {
                            Some(s) => s.try_send(r).is_err(),
                            None => true,
                        };
                        if lost {
                            tracing::warn!("the transcription endpoint is 16 sentences behind; a sentence was lost");
                        }
                    }
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
                "the speech engine ({python} with {script_engine}) exited at start; is {} installed for it (scripts/setup.sh{})?",
                if engine == SttEngine::Whisper { "faster-whisper with its model" } else { "pocketsphinx" },
                if engine == SttEngine::Whisper { " --whisper" } else { "" },
            ),
            Err(_) => anyhow::bail!("the speech engine did not load within 30 s"),
        }
        let open = serde_json::json!({
            "vad_silence_ms": job.vad_silence_ms, "vad_level": job.vad_level,
            "phrases": job.phrases, "language": language,
        });
        Ok((
            Stt {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                open,
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

    /// A speaker's stream starts.
    pub fn open(&self, id: &str) {
        let mut line = self.open.clone();
        line["open"] = serde_json::Value::String(id.to_owned());
        self.line(line);
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

/// One sentence to an OpenAI-compatible `/v1/audio/transcriptions` endpoint: a multipart form
/// with the sentence as a WAV file, `model`, `language` and `response_format` `json`; the text
/// of `{"text": …}` back (at most 1 MiB, within 30 s).
async fn transcribe(
    ep: &Endpoint,
    rules: &Rules,
    language: &str,
    pcm: &[u8],
) -> Result<String, String> {
    const MAX_BYTES: usize = 1 << 20;
    let checked = rules
        .check(&ep.url, &["http", "https"])
        .await
        .map_err(|e| format!("STT APIUrl: {e}"))?;
    let boundary = format!("hearth-{:016x}", rand_u64());
    let mut body = Vec::with_capacity(pcm.len() + 1024);
    for (name, value) in [
        ("model", ep.model.as_str()),
        ("language", language),
        ("response_format", "json"),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"sentence.wav\"\r\nContent-Type: audio/wav\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(&wav_header(pcm.len() as u32, 16_000));
    body.extend_from_slice(pcm);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let resp = checked
        .client(std::time::Duration::from_secs(30))
        .post(&ep.url)
        .header("Authorization", format!("Bearer {}", ep.key))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| {
            format!(
                "the transcription endpoint could not be reached: {}",
                e.without_url()
            )
        })?;
    let buf = hearth_outbound::answer_within(resp, MAX_BYTES, "the transcription endpoint").await?;
    let v: serde_json::Value = serde_json::from_slice(&buf)
        .map_err(|e| format!("the transcription endpoint's answer is not JSON: {e}"))?;
    v["text"]
        .as_str()
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| "the transcription endpoint's answer has no text".into())
}

/// A boundary that does not occur in the audio by chance.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

/// The 44-byte header of a mono 16-bit WAV file of `len` bytes of samples.
fn wav_header(len: u32, rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wav_header_reads_back() {
        let mut w = wav_header(4, 16_000);
        w.extend_from_slice(&[1, 0, 2, 0]);
        assert_eq!(w.len(), 48);
        assert_eq!(&w[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([w[24], w[25], w[26], w[27]]), 16_000);
        assert_eq!(u32::from_le_bytes([w[40], w[41], w[42], w[43]]), 4);
    }
}
