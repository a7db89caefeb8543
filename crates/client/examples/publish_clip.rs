//! Publishes a VP8 clip (an IVF file, 30 fps, looped) into a room as an anchor, with the Rust
//! client: the smallest bot that sends media.
//!
//!   publish_clip WS_URL SDKAPPID ROOM USERID USERSIG CLIP.ivf SECONDS

use anyhow::{ensure, Context, Result};
use hearth_client::{join, Codec, Event, JoinParams, Kind, Role, RoomId};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<()> {
    str0m::crypto::from_feature_flags().install_process_default();
    let a: Vec<String> = std::env::args().collect();
    ensure!(
        a.len() == 8,
        "usage: publish_clip WS_URL SDKAPPID ROOM USERID USERSIG CLIP.ivf SECONDS"
    );
    let frames = read_ivf(&std::fs::read(&a[6]).with_context(|| format!("reading {}", a[6]))?)?;
    let secs: u64 = a[7].parse()?;
    let (client, mut events) = join(JoinParams {
        url: a[1].clone(),
        sdk_app_id: a[2].parse()?,
        room: RoomId::Num(a[3].parse()?),
        user_id: a[4].clone(),
        user_sig: a[5].clone(),
        private_map_key: None,
        role: Role::Anchor,
        bot: false,
    })
    .await?;
    client.publish(Codec::Vp8, false);
    println!("entered and publishing");
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / 30));
    let mut n: u64 = 0;
    // Position in the clip; back to its first frame (a keyframe) when one is asked for.
    let mut pos = 0usize;
    while start.elapsed() < Duration::from_secs(secs) {
        tokio::select! {
            _ = tick.tick() => {
                client.send_frame(Kind::Video, n * 3000, frames[pos].clone());
                pos = (pos + 1) % frames.len();
                n += 1;
            }
            e = events.recv() => match e {
                Some(Event::KeyframeRequested(_)) => pos = 0,
                Some(Event::Closed { reason, message }) => anyhow::bail!("closed: {reason}: {message}"),
                Some(_) => {}
                None => break,
            }
        }
    }
    client.exit();
    Ok(())
}

/// The frames of an IVF file.
fn read_ivf(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    ensure!(data.len() > 32 && &data[..4] == b"DKIF", "not an IVF file");
    let mut out = Vec::new();
    let mut at = 32;
    while at + 12 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into()?) as usize;
        at += 12;
        ensure!(at + len <= data.len(), "truncated IVF frame");
        out.push(data[at..at + len].to_vec());
        at += len;
    }
    ensure!(!out.is_empty(), "no frames");
    Ok(out)
}
