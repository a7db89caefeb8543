//! The packet path: a publisher's RTP packet goes to every subscriber the room core picks as
//! the same packet. Its payload is shared (one allocation for all receivers, never
//! re-packetized); per subscriber only the payload type, sequence number, timestamp, VP8
//! picture ids and header extensions are written, then str0m encrypts and sends it. The same
//! packet goes to the workers that hold more viewers of the room (`mirror.rs`).

use super::gate::{self, over_bound, Verdict};
use super::nack;
use super::payload::{inspect, PacketInfo};
use super::peer::InFormat;
use super::rewrite::Numbers;
use super::rooms::RoomSlot;
use super::Worker;
use crate::core::{KeyframeAsk, Layer, ParticipantId, TrackId};
use std::sync::Arc;
use std::time::Instant;
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc, VideoOrientation, Vp8Descriptor};

/// A publisher's packet with what the room core and every subscriber's line need of it: made
/// once on the publisher's worker, fanned out there and handed to the workers that mirror the
/// room (`mirror.rs`).
#[derive(Debug, Clone)]
pub(crate) struct Relayed {
    pub slot: RoomSlot,
    pub track: TrackId,
    pub layer: Layer,
    /// The publisher's line has one layer: an estimate cannot change what is sent.
    pub single_layer: bool,
    pub video: bool,
    pub format: InFormat,
    pub info: PacketInfo,
    /// The layer's picture size as last read.
    pub dims: Option<(u16, u16)>,
    /// The layer was held back (mute, block) until this packet: lines resume at a keyframe.
    pub resumed: bool,
    pub ssrc: Ssrc,
    pub seq: u64,
    pub ts: u32,
    pub marker: bool,
    pub wallclock: Instant,
    pub ext: Ext,
    pub payload: Arc<[u8]>,
}

/// The header extensions forwarded as they came (the rest are the sending connection's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ext {
    pub audio_level: Option<i8>,
    pub voice_activity: Option<bool>,
    pub video_orientation: Option<VideoOrientation>,
    pub video_content_type: Option<u8>,
}

impl Worker {
    /// One packet from a publisher to every subscriber the room core picks.
    pub(crate) fn forward(&mut self, pid: ParticipantId, packet: RtpPacket) {
        let Some(p) = self.peers.get_mut(&pid) else {
            return;
        };
        let slot = p.slot;
        let ssrc = packet.header.ssrc;
        let (mid, rid) = match p.rx_streams.get(&ssrc) {
            Some(known) => *known,
            None => {
                let mut api = p.rtc.direct_api();
                let Some(rx) = api.stream_rx(&ssrc) else {
                    return;
                };
                let known = (rx.mid(), rx.rid());
                p.rx_streams.insert(ssrc, known);
                known
            }
        };
        let Some(inbound) = p.inbound.get_mut(&mid) else {
            return;
        };
        let pt = packet.header.payload_type;
        let format = match inbound.format {
            Some(f) if f.pt == pt => f,
            _ => {
                let Some(params) = p.rtc.codec_config().params().iter().find(|c| c.pt() == pt)
                else {
                    return;
                };
                let f = InFormat {
                    pt,
                    params: *params,
                };
                inbound.format = Some(f);
                f
            }
        };
        let (track, layer) = (inbound.track, inbound.layer_of(rid));
        let single_layer = inbound.rids.len() <= 1;
        let video = inbound.kind == MediaKind::Video;
        let info = if video {
            inspect(format.params.spec().codec, &packet.payload)
        } else {
            PacketInfo::default()
        };
        let l = usize::from(layer.0.min(3));
        if info.dims.is_some() {
            inbound.dims[l] = info.dims;
        }
        let dims = inbound.dims[l];
        let bytes = packet.payload.len();
        // A frame ends on the marker bit (video); every audio packet is a frame.
        let frame_end = !video || packet.header.marker;
        inbound.flow.bytes += bytes as u64;
        if frame_end && l + 1 >= inbound.rids.len().max(1) {
            // Frames and picture size of the top layer: what the sender's encoder produces.
            inbound.flow.frames += 1;
            inbound.flow.dims = dims;
        }
        if inbound.muted || inbound.blocked {
            inbound.held |= 1 << l;
            return;
        }
        let resumed = inbound.held & (1 << l) != 0;
        inbound.held &= !(1 << l);
        let h = &packet.header;
        let r = Relayed {
            slot,
            track,
            layer,
            single_layer,
            video,
            format,
            info,
            dims,
            resumed,
            ssrc,
            seq: *packet.seq_no,
            ts: h.timestamp,
            marker: h.marker,
            wallclock: packet.timestamp,
            ext: Ext {
                audio_level: h.ext_vals.audio_level,
                voice_activity: h.ext_vals.voice_activity,
                video_orientation: h.ext_vals.video_orientation,
                video_content_type: h.ext_vals.video_content_type,
            },
            payload: packet.payload,
        };
        // Handed to other workers first, so that they fan out while this one does.
        self.relay(&r);
        self.fanout(&r);
    }

    /// A publisher's packet to every subscriber on this worker the room core picks.
    pub(crate) fn fanout(&mut self, r: &Relayed) {
        let Some(room) = self.rooms.get_mut(&r.slot) else {
            return;
        };
        let now = Instant::now();
        let (video, pt, params) = (r.video, r.format.pt, r.format.params);
        let bytes = r.payload.len();
        let frame_end = !video || r.marker;
        self.forwards.clear();
        let ask = room.core.on_frame(
            now,
            r.track,
            r.layer,
            r.info.keyframe,
            bytes,
            &mut self.forwards,
        );
        let clock = params.spec().clock_rate.get();
        let input = Numbers {
            seq: r.seq,
            ts: r.ts,
            picture_id: r.info.picture_id,
            tl0: r.info.tl0,
        };
        let ext = ExtensionValues {
            audio_level: r.ext.audio_level,
            voice_activity: r.ext.voice_activity,
            video_orientation: r.ext.video_orientation,
            video_content_type: r.ext.video_content_type,
            ..Default::default()
        };
        // A line waiting to resume at a keyframe that would send one now.
        let mut waiting = false;
        for f in &self.forwards {
            let Some(s) = self.peers.get_mut(&f.subscriber) else {
                continue;
            };
            let Some(line) = s.out_by_sub.get_mut(&f.subscription) else {
                continue;
            };
            let out_pt = match line.pt_map {
                Some((from, to)) if from == pt => to,
                _ => {
                    let Some(to) = s.rtc.codec_config().match_params(params) else {
                        continue;
                    };
                    let to = to.pt();
                    line.pt_map = Some((pt, to));
                    to
                }
            };
            let mut api = s.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(line.mid, None) else {
                continue;
            };
            if video && line.history.is_none() {
                // One layer: the estimate cannot change what is sent, so nothing waits in the
                // pacer.
                tx.set_unpaced(r.single_layer);
                nack::set_history(tx, nack::MIN_HISTORY);
                line.history = Some(nack::MIN_HISTORY);
            }
            let over = video && tx.queue_info().is_some_and(|q| over_bound(q, now));
            let (verdict, entered) = line.gate.check(gate::Packet {
                video,
                keyframe: r.info.keyframe,
                frame_end,
                over,
                resumed: r.resumed,
                now,
            });
            self.counters.queue_skips += u64::from(entered);
            if entered {
                let q = tx.queue_info();
                tracing::debug!(
                    subscriber = f.subscriber.0,
                    mid = %line.mid,
                    packets = q.map(|q| q.packet_count()),
                    bytes = q.map(|q| q.byte_size()),
                    oldest_ms = q
                        .and_then(|q| q.first_unsent())
                        .map(|t| now.saturating_duration_since(t).as_millis()),
                    "a line went over its queue bound"
                );
            }
            match verdict {
                Verdict::Skip { overload, ask } => {
                    waiting |= ask;
                    self.counters.queue_drops += u64::from(overload);
                    if video && frame_end {
                        // The viewer's picture stands still for this frame.
                        line.flow.skipped_frames += 1;
                    }
                    continue;
                }
                Verdict::Send { restart: true } => {
                    tracing::debug!(
                        subscriber = f.subscriber.0,
                        mid = %line.mid,
                        "a line resumes (video at a keyframe)"
                    );
                    line.rewrite.restart();
                }
                Verdict::Send { restart: false } => {}
            }
            let Some(out) = line.rewrite.map(*r.ssrc, input, clock, now) else {
                continue;
            };
            let mut write = RtpWrite::new(
                out_pt,
                out.seq.into(),
                out.ts,
                r.wallclock,
                r.payload.clone(),
            )
            .marker(r.marker)
            .ext_vals(ext.clone())
            .nackable(video);
            if line.rewrite.patches_vp8() {
                if let Some(patch) = vp8_patch(&r.payload, out) {
                    write = write.vp8_patch(patch);
                }
            }
            tx.write_rtp(write);
            self.counters.frames_forwarded += u64::from(frame_end);
            self.counters.packets_forwarded += 1;
            let flow = &mut line.flow;
            flow.bytes += bytes as u64;
            flow.frames += u64::from(frame_end);
            flow.dims = r.dims;
            if !s.dirty {
                s.dirty = true;
                self.dirty.push(f.subscriber);
            }
        }
        let ask = ask.or_else(|| {
            // Keep asking (throttled) until the keyframe comes: an encoder may ignore a request
            // that follows its last keyframe closely.
            waiting
                .then(|| self.rooms.get_mut(&r.slot))
                .flatten()
                .and_then(|room| {
                    room.core
                        .on_keyframe_request_for_track(now, r.track, r.layer)
                })
        });
        if let Some(a) = ask {
            self.ask_keyframe(a);
        }
    }

    /// Sends a PLI to the publisher of a track for one of its layers.
    pub(crate) fn ask_keyframe(&mut self, ask: KeyframeAsk) {
        let Some(src) = self.tracks.get(&ask.track) else {
            // A mirrored track: its home asks.
            self.ask_home(ask);
            return;
        };
        let (peer, mid) = (src.peer, src.mid);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let rid = p.inbound.get(&mid).and_then(|i| i.rid_of(ask.layer));
        let mut api = p.rtc.direct_api();
        if let Some(rx) = api.stream_rx_by_mid(mid, rid) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
        }
        self.mark_dirty(peer);
    }
}

/// The VP8 descriptor rewrite for renumbered picture ids; `None` when the payload has no ids
/// or an id does not fit its field (a 7-bit PictureID is then sent as it came).
fn vp8_patch(payload: &[u8], out: Numbers) -> Option<str0m::rtp::Vp8Patch> {
    let d = Vp8Descriptor::parse(payload).ok()?;
    let build = |picture_id: Option<u16>| {
        let mut b = d.patch();
        if let Some(p) = picture_id {
            b = b.picture_id(p);
        }
        if let Some(t) = out.tl0 {
            b = b.tl0_pic_idx(t);
        }
        b.build().ok()
    };
    build(out.picture_id).or_else(|| build(out.picture_id.map(|p| p & 0x7f)))
}
