//! The publish connection: a [`Peer`] that offers an audio (Opus) and a video (VP8, VP9 or
//! H.264) line, optionally in two simulcast layers (rids `q` and `f`, as the browser SDK names
//! them), takes the server's answer, and sends whole frames that str0m packetizes.

use crate::peer::Peer;
use crate::{Codec, Kind, Layer};
use anyhow::{anyhow, Context, Result};
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec as RtcCodec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Pt, Rid, Simulcast, SimulcastLayer,
};
use str0m::Event as RtcEvent;

pub(crate) struct Publisher {
    pub peer: Peer,
    audio: Mid,
    /// `None` for an audio-only publisher (a voice bot).
    video: Option<Mid>,
    video_codec: Codec,
    /// Sent in two layers (small `q`, full `f`).
    simulcast: bool,
    pending: Option<SdpPendingOffer>,
}

const SMALL_RID: &str = "q";
const FULL_RID: &str = "f";

/// A publish offer: the SDP and its media lines as (mid, source).
pub(crate) type Offer = (String, Vec<(String, &'static str)>);

/// What publishing produced for the session.
pub(crate) enum PubEvent {
    /// A receiver asked for a keyframe of a video layer.
    Keyframe(Layer),
}

impl Publisher {
    /// A new connection and its offer (SDP, and the media lines as (mid, source)); without a
    /// video codec, audio only.
    pub fn offer(video_codec: Option<Codec>, simulcast: bool) -> Result<(Self, Offer)> {
        let mut peer = Peer::new();
        let mut api = peer.rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let layers = simulcast.then(|| {
            let mut s = Simulcast::new();
            s.add_send_layer(SimulcastLayer::new(SMALL_RID));
            s.add_send_layer(SimulcastLayer::new(FULL_RID));
            s
        });
        let video = video_codec
            .map(|_| api.add_media(MediaKind::Video, Direction::SendOnly, None, None, layers));
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("no offer"))?;
        let mut tracks = vec![(audio.to_string(), "mic")];
        tracks.extend(video.map(|v| (v.to_string(), "camera")));
        let me = Publisher {
            peer,
            audio,
            video,
            video_codec: video_codec.unwrap_or(Codec::Vp8),
            simulcast: simulcast && video.is_some(),
            pending: Some(pending),
        };
        Ok((me, (offer.to_sdp_string(), tracks)))
    }

    pub fn accept(&mut self, sdp: &str) -> Result<()> {
        self.peer.bind_towards(sdp)?;
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the publish answer")?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| anyhow!("an answer without an offer"))?;
        self.peer.rtc.sdp_api().accept_answer(pending, answer)?;
        Ok(())
    }

    /// Sends one frame with its RTP time (48 kHz audio, 90 kHz video) on a video `layer`
    /// (ignored for audio and without simulcast); false if it could not be sent (not connected
    /// yet, codec not negotiated).
    pub fn write(&mut self, kind: Kind, layer: Layer, rtp_time: u64, data: Vec<u8>) -> bool {
        let (mid, codec, freq) = match kind {
            Kind::Audio => (self.audio, RtcCodec::Opus, Frequency::FORTY_EIGHT_KHZ),
            Kind::Video => (
                match self.video {
                    Some(v) => v,
                    None => return false,
                },
                match self.video_codec {
                    Codec::H264 => RtcCodec::H264,
                    Codec::Vp9 => RtcCodec::Vp9,
                    _ => RtcCodec::Vp8,
                },
                Frequency::NINETY_KHZ,
            ),
        };
        let Some(pt) = pt_of(&mut self.peer, mid, codec) else {
            return false;
        };
        let Some(mut w) = self.peer.rtc.writer(mid) else {
            return false;
        };
        if kind == Kind::Video && self.simulcast {
            w = w.rid(Rid::from(match layer {
                Layer::Small => SMALL_RID,
                Layer::Full => FULL_RID,
            }));
        }
        w.write(pt, Instant::now(), MediaTime::new(rtp_time, freq), data)
            .is_ok()
    }

    pub fn drive(&mut self, out: &mut Vec<PubEvent>) -> bool {
        let video = self.video;
        self.peer.drive(|_, e| {
            if let RtcEvent::KeyframeRequest(r) = e {
                if Some(r.mid) == video {
                    let small = r.rid.is_some_and(|x| x == Rid::from(SMALL_RID));
                    out.push(PubEvent::Keyframe(if small {
                        Layer::Small
                    } else {
                        Layer::Full
                    }));
                }
            }
        })
    }
}

fn pt_of(peer: &mut Peer, mid: Mid, codec: RtcCodec) -> Option<Pt> {
    let w = peer.rtc.writer(mid)?;
    let pt = w
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt());
    pt
}
