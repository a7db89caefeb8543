//! The subscribe connection: a [`Peer`] that answers the server's offers, maps media lines to
//! users' tracks and turns received media into [`Frame`]s.

use crate::peer::Peer;
use crate::proto::OfferTrack;
use crate::{Codec, Frame, Kind, Stream, TrackKey};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::Arc;
use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, MediaData, Mid};
use str0m::Event as RtcEvent;

pub(crate) struct Subscriber {
    pub peer: Peer,
    tracks: HashMap<Mid, TrackKey>,
}

impl Subscriber {
    /// Binds a socket on the address that reaches the server's candidate in `offer`.
    pub fn new(offer_sdp: &str) -> Result<Self> {
        let mut peer = Peer::new();
        peer.bind_towards(offer_sdp)?;
        Ok(Subscriber {
            peer,
            tracks: HashMap::new(),
        })
    }

    /// Accepts an offer; returns the answer and the tracks that came and went.
    pub fn accept(
        &mut self,
        sdp: &str,
        tracks: &[OfferTrack],
    ) -> Result<(String, Vec<TrackKey>, Vec<TrackKey>)> {
        let offer = SdpOffer::from_sdp_string(sdp).context("parsing the server's offer")?;
        let answer = self.peer.rtc.sdp_api().accept_offer(offer)?;
        let mut now: HashMap<Mid, TrackKey> = HashMap::new();
        for t in tracks {
            let stream = if t.stream == "sub" {
                Stream::Sub
            } else {
                Stream::Main
            };
            let kind = if t.kind == "audio" {
                Kind::Audio
            } else {
                Kind::Video
            };
            now.insert(
                Mid::from(t.mid.as_str()),
                TrackKey {
                    user: Arc::from(t.userid.as_str()),
                    stream,
                    kind,
                },
            );
        }
        let added = now
            .iter()
            .filter(|(m, k)| self.tracks.get(m) != Some(k))
            .map(|(_, k)| k.clone())
            .collect();
        let removed = self
            .tracks
            .iter()
            .filter(|(m, k)| now.get(m) != Some(k))
            .map(|(_, k)| k.clone())
            .collect();
        self.tracks = now;
        Ok((answer.to_sdp_string(), added, removed))
    }

    /// Drives the connection; frames go to `out`. False when it is gone.
    pub fn drive(&mut self, out: &mut Vec<Frame>) -> bool {
        let tracks = &self.tracks;
        self.peer.drive(|_, e| {
            if let RtcEvent::MediaData(m) = e {
                if let Some(f) = frame(tracks, m) {
                    out.push(f);
                }
            }
        })
    }

    /// Asks the sender of a track for a keyframe (PLI).
    pub fn request_keyframe(&mut self, key: &TrackKey) {
        let Some(mid) = self.tracks.iter().find(|(_, k)| *k == key).map(|(m, _)| *m) else {
            return;
        };
        if let Some(mut w) = self.peer.rtc.writer(mid) {
            let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
        }
    }
}

fn frame(tracks: &HashMap<Mid, TrackKey>, m: MediaData) -> Option<Frame> {
    let track = tracks.get(&m.mid)?.clone();
    let codec = match m.params.spec().codec {
        str0m::format::Codec::Opus => Codec::Opus,
        str0m::format::Codec::Vp8 => Codec::Vp8,
        str0m::format::Codec::Vp9 => Codec::Vp9,
        str0m::format::Codec::H264 => Codec::H264,
        _ => return None,
    };
    let keyframe = match codec {
        Codec::Opus => true,
        Codec::Vp8 => m.data.first().is_some_and(|b| b & 1 == 0),
        Codec::Vp9 => m.data.first().is_some_and(|b| b & 0x04 == 0),
        Codec::H264 => h264_has_idr(&m.data),
    };
    Some(Frame {
        track,
        codec,
        rtp_time: m.time.numer(),
        clock_rate: m.time.denom(),
        arrival: m.network_time,
        sender_report: m.last_sender_info.map(|s| (s.ntp_time, s.rtp_time.numer())),
        keyframe,
        contiguous: m.contiguous,
        data: m.data,
    })
}

/// Whether an Annex-B access unit holds an IDR slice or an SPS.
fn h264_has_idr(data: &[u8]) -> bool {
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let t = data[i + 3] & 0x1f;
            if t == 5 || t == 7 {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}
