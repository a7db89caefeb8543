//! The conversation robot's voice: espeak-ng (Debian's) renders a sentence to PCM, and a small
//! GStreamer pipeline encodes it as 20 ms Opus frames at 48 kHz, ready to send.

use crate::gst_util::{capsfilter, link_chain, make};
use anyhow::{bail, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hearth_media_proto::Tts;

/// Sentences longer than this are cut (a runaway answer must not make minutes of audio).
const MAX_CHARS: usize = 600;
/// Silence before each sentence, so that a receiver's first packets after a pause carry no
/// word (jitter buffers settle on them).
const LEAD_IN_SECS: f64 = 0.15;

/// PCM of a WAV file espeak-ng wrote (its size fields may be unset when it streams): the
/// sample rate and the samples.
fn wav_pcm(wav: &[u8]) -> Result<(u32, &[u8])> {
    if wav.len() < 44 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        bail!("espeak-ng did not write a WAV file");
    }
    let mut at = 12;
    let mut rate = 22_050;
    while at + 8 <= wav.len() {
        let id = &wav[at..at + 4];
        let len = u32::from_le_bytes([wav[at + 4], wav[at + 5], wav[at + 6], wav[at + 7]]) as usize;
        let body = at + 8;
        if id == b"fmt " && body + 8 <= wav.len() {
            rate = u32::from_le_bytes([wav[body + 4], wav[body + 5], wav[body + 6], wav[body + 7]]);
        }
        if id == b"data" {
            let end = body.saturating_add(len).min(wav.len());
            return Ok((rate, &wav[body..end]));
        }
        at = body.saturating_add(len);
    }
    bail!("espeak-ng's WAV has no data")
}

/// Speaks `text`: Opus frames of 20 ms each.
pub async fn speak(tts: &Tts, text: &str) -> Result<Vec<Vec<u8>>> {
    let text: String = text.chars().take(MAX_CHARS).collect();
    let out = tokio::process::Command::new("espeak-ng")
        .args([
            "--stdout",
            "-v",
            &tts.voice,
            "-s",
            &tts.speed_wpm.to_string(),
            "--",
        ])
        .arg(&text)
        .output()
        .await
        .context("running espeak-ng (apt-get install espeak-ng)")?;
    if !out.status.success() {
        bail!(
            "espeak-ng failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let wav = out.stdout;
    tokio::task::spawn_blocking(move || {
        let (rate, pcm) = wav_pcm(&wav)?;
        let mut padded = vec![0u8; (f64::from(rate) * LEAD_IN_SECS) as usize * 2];
        padded.extend_from_slice(pcm);
        encode(rate, &padded)
    })
    .await
    .context("the Opus encoder panicked")?
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
