//! The conversation robot's voice: an engine renders a sentence to PCM (espeak-ng or flite from
//! Debian, piper as a child process, or an OpenAI-compatible speech endpoint), and a small
//! GStreamer pipeline encodes it as 20 ms Opus frames at 48 kHz, ready to send.

use crate::gst_util::{capsfilter, link_chain, make};
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hearth_media_proto::{Tts, TtsEngine};
use hearth_outbound::Rules;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

/// Sentences longer than this are cut (a runaway answer must not make minutes of audio).
const MAX_CHARS: usize = 600;
/// Silence before each sentence, so that a receiver's first packets after a pause carry no
/// word (jitter buffers settle on them).
const LEAD_IN_SECS: f64 = 0.05;

/// PCM of a WAV file (espeak-ng leaves its size fields unset when it streams): the sample rate
/// and the samples. Mono 16-bit only.
fn wav_pcm(wav: &[u8]) -> Result<(u32, &[u8])> {
    if wav.len() < 44 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        bail!("not a WAV file");
    }
    let mut at = 12;
    let mut rate = 22_050;
    while at + 8 <= wav.len() {
        let id = &wav[at..at + 4];
        let len = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]) as usize;
        let body = at + 8;
        if id == b"fmt " && body + 16 <= wav.len() {
            let channels = u16::from_le_bytes([wav[body + 2], wav[body + 3]]);
            let bits = u16::from_le_bytes([wav[body + 14], wav[body + 15]]);
            if (channels, bits) != (1, 16) {
                bail!("the WAV file is not mono 16-bit ({channels} channels, {bits} bits)");
            }
            rate = u32::from_le_bytes([wav[body + 4], wav[body + 5], wav[body + 6], wav[body + 7]]);
        }
        if id == b"data" {
            let end = body.saturating_add(len).min(wav.len());
            return Ok((rate, &wav[body..end]));
        }
        at = body.saturating_add(len);
    }
    bail!("the WAV file has no data")
}

/// What the engines need besides the task's settings: the Python that runs piper (started at
/// its first sentence, then kept) and the address rules of speech endpoints.
#[derive(Clone)]
pub struct Voices {
    python: String,
    rules: Rules,
    piper: Arc<tokio::sync::OnceCell<Piper>>,
}

impl Voices {
    pub fn new(python: String, rules: Rules) -> Self {
        Voices {
            python,
            rules,
            piper: Arc::default(),
        }
    }

    /// Starts what `tts` needs ahead of its first sentence (piper's process), so that a missing
    /// engine fails the task's start.
    pub async fn prepare(&self, tts: &Tts) -> Result<()> {
        if tts.engine == TtsEngine::Piper {
            self.piper
                .get_or_try_init(|| Piper::spawn(&self.python))
                .await?;
        }
        Ok(())
    }

    /// Audio given as is (ServerPushText.Audio): mono 16-bit PCM at 16 kHz, or a WAV file of
    /// any rate; Opus frames of 20 ms each.
    pub async fn play(&self, audio: Vec<u8>) -> Result<Vec<Vec<u8>>> {
        tokio::task::spawn_blocking(move || {
            let (rate, pcm) = if audio.starts_with(b"RIFF") {
                let (rate, pcm) = wav_pcm(&audio)?;
                (rate, pcm.to_vec())
            } else {
                (16_000, audio)
            };
            encode(rate, &pcm)
        })
        .await
        .context("the Opus encoder panicked")?
    }

    /// Speaks `text`: Opus frames of 20 ms each.
    pub async fn speak(&self, tts: &Tts, text: &str) -> Result<Vec<Vec<u8>>> {
        let text: String = text.chars().take(MAX_CHARS).collect();
        let (rate, pcm) = match tts.engine {
            TtsEngine::Espeak => espeak(tts, &text).await?,
            TtsEngine::Flite => flite(tts, &text).await?,
            TtsEngine::Piper => {
                let piper = self
                    .piper
                    .get_or_try_init(|| Piper::spawn(&self.python))
                    .await?;
                piper.say(&text, tts.speed).await?
            }
            TtsEngine::Openai => openai(tts, &text, &self.rules).await?,
        };
        tokio::task::spawn_blocking(move || {
            let mut padded = vec![0u8; (f64::from(rate) * LEAD_IN_SECS) as usize * 2];
            padded.extend_from_slice(&pcm);
            encode(rate, &padded)
        })
        .await
        .context("the Opus encoder panicked")?
    }
}

/// Runs a command that writes a WAV file to its standard output.
async fn wav_of(mut cmd: tokio::process::Command, what: &str) -> Result<Pcm> {
    let out = cmd
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {what} (apt-get install {what})"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let (rate, pcm) = wav_pcm(&out.stdout)?;
    Ok((rate, pcm.to_vec()))
}

async fn espeak(tts: &Tts, text: &str) -> Result<Pcm> {
    let wpm = (160.0 * tts.speed).round() as u32;
    let mut cmd = tokio::process::Command::new("espeak-ng");
    cmd.args(["--stdout", "-v", &tts.voice, "-s", &wpm.to_string(), "--"])
        .arg(text);
    wav_of(cmd, "espeak-ng").await
}

async fn flite(tts: &Tts, text: &str) -> Result<Pcm> {
    let mut cmd = tokio::process::Command::new("flite");
    cmd.args([
        "-voice",
        &tts.voice,
        "--setf",
        &format!("duration_stretch={:.3}", 1.0 / tts.speed),
        "-o",
        "/dev/stdout",
        "-t",
    ])
    .arg(text);
    wav_of(cmd, "flite").await
}

/// An OpenAI-compatible speech endpoint: POST `{model, input, voice, speed, response_format:
/// "wav"}`, a WAV file back (at most 16 MiB, within 30 s).
async fn openai(tts: &Tts, text: &str, rules: &Rules) -> Result<Pcm> {
    const MAX_BYTES: usize = 16 << 20;
    let ep = tts
        .endpoint
        .as_ref()
        .context("TTSType openai has no endpoint")?;
    let checked = rules
        .check(&ep.url, &["http", "https"])
        .await
        .map_err(|e| anyhow::anyhow!("TTSConfig APIUrl: {e}"))?;
    let body = serde_json::json!({
        "model": ep.model, "input": text, "voice": tts.voice, "speed": tts.speed,
        "response_format": "wav",
    });
    let resp = checked
        .client(Duration::from_secs(30))
        .post(&ep.url)
        .header("Authorization", format!("Bearer {}", ep.key))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the speech endpoint could not be reached: {}",
                e.without_url()
            )
        })?;
    let wav = hearth_outbound::answer_within(resp, MAX_BYTES, "the speech endpoint")
        .await
        .map_err(anyhow::Error::msg)?;
    let (rate, pcm) = wav_pcm(&wav).context("the speech endpoint's answer")?;
    Ok((rate, pcm.to_vec()))
}

const PIPER_SCRIPT: &str = include_str!("tts_piper.py");

/// A sentence's PCM: the sample rate and mono S16LE samples.
type Pcm = (u32, Vec<u8>);
/// A sentence for piper: the text, the speed and where its PCM goes.
type PiperRequest = (String, f32, oneshot::Sender<Result<Pcm>>);

/// A piper process (`tts_piper.py`): one sentence at a time, in order.
struct Piper {
    tx: mpsc::Sender<PiperRequest>,
}

#[derive(serde::Deserialize)]
struct PiperOut {
    #[serde(default)]
    ready: bool,
    rate: Option<u32>,
    b64: Option<String>,
    error: Option<String>,
}

impl Piper {
    async fn spawn(python: &str) -> Result<Piper> {
        let mut child = tokio::process::Command::new(python)
            .args(["-u", "-c", PIPER_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting piper with {python}"))?;
        let mut stdin = child.stdin.take().context("piper's stdin")?;
        let mut lines = BufReader::new(child.stdout.take().context("piper's stdout")?).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        match first {
            Ok(Ok(Some(l))) if serde_json::from_str::<PiperOut>(&l).is_ok_and(|o| o.ready) => {}
            Ok(Ok(Some(l))) => bail!("piper did not start: {l}"),
            Ok(_) => bail!(
                "piper exited at start; are piper-tts and a voice installed for {python} (scripts/setup.sh --piper)?"
            ),
            Err(_) => bail!("piper did not load within 30 s"),
        }
        let (tx, mut rx) = mpsc::channel::<PiperRequest>(8);
        tokio::spawn(async move {
            let _child = child;
            while let Some((text, speed, reply)) = rx.recv().await {
                let line = serde_json::json!({"text": text, "length_scale": 1.0 / speed});
                let got = async {
                    stdin.write_all(format!("{line}\n").as_bytes()).await?;
                    let l = lines.next_line().await?.context("piper exited")?;
                    let o: PiperOut = serde_json::from_str(&l)?;
                    if let Some(e) = o.error {
                        bail!("piper: {e}");
                    }
                    let pcm = base64::engine::general_purpose::STANDARD
                        .decode(o.b64.unwrap_or_default())?;
                    Ok((o.rate.unwrap_or(22_050), pcm))
                }
                .await;
                let broken = got.is_err();
                let _ = reply.send(got);
                if broken {
                    break;
                }
            }
        });
        Ok(Piper { tx })
    }

    async fn say(&self, text: &str, speed: f32) -> Result<Pcm> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((text.to_owned(), speed, reply))
            .await
            .map_err(|_| anyhow::anyhow!("piper is gone"))?;
        rx.await.map_err(|_| anyhow::anyhow!("piper is gone"))?
    }
}

/// Mono S16LE PCM at `rate` to 20 ms Opus frames at 48 kHz.
fn encode(rate: u32, pcm: &[u8]) -> Result<Vec<Vec<u8>>> {
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(
            &gst::Caps::builder("audio/x-raw")
                .field("format", "S16LE")
                .field("layout", "interleaved")
                .field("rate", rate as i32)
                .field("channels", 1i32)
                .build(),
        )
        .format(gst::Format::Time)
        .build();
    let conv = make("audioconvert")?;
    let res = make("audioresample")?;
    let caps = capsfilter(
        gst::Caps::builder("audio/x-raw")
            .field("rate", 48_000i32)
            .field("channels", 1i32)
            .build(),
    )?;
    let enc = make("opusenc")?;
    enc.set_property_from_str("frame-size", "20");
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline.add_many([
        src.upcast_ref(),
        &conv,
        &res,
        &caps,
        &enc,
        sink.upcast_ref(),
    ])?;
    link_chain(&[
        src.upcast_ref(),
        &conv,
        &res,
        &caps,
        &enc,
        sink.upcast_ref(),
    ])?;
    pipeline.set_state(gst::State::Playing)?;
    let mut buf = gst::Buffer::from_slice(pcm.to_vec());
    buf.get_mut()
        .expect("new buffer is writable")
        .set_pts(gst::ClockTime::ZERO);
    let _ = src.push_buffer(buf);
    let _ = src.end_of_stream();
    let mut frames = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        if let Some(b) = sample.buffer() {
            if let Ok(m) = b.map_readable() {
                frames.push(m.as_slice().to_vec());
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_streamed_wav() {
        let mut w = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00".to_vec();
        w.extend_from_slice(&16_000u32.to_le_bytes());
        w.extend_from_slice(&32_000u32.to_le_bytes());
        w.extend_from_slice(b"\x02\x00\x10\x00data\xff\xff\xff\xff");
        w.extend_from_slice(&[1, 0, 2, 0]);
        let (rate, pcm) = wav_pcm(&w).unwrap();
        assert_eq!((rate, pcm), (16_000, &[1u8, 0, 2, 0][..]));
        assert!(wav_pcm(b"nope").is_err());
    }
}
