//! Checks of a client's SDP offer before str0m sees it: well-formed enough, offering a codec we
//! forward (Opus, VP8, H.264), in the direction the endpoint needs.

use crate::command::SfuError;

/// Which way media must flow, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferDirection {
    /// The client publishes (WHIP): some m-line must be sendonly or sendrecv.
    Sends,
    /// The client plays (WHEP): some m-line must be recvonly or sendrecv.
    Receives,
}

/// Largest offer accepted: real offers are a few kilobytes.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

pub fn check_offer(sdp: &str, direction: OfferDirection) -> Result<(), SfuError> {
    if sdp.len() > MAX_OFFER_BYTES {
        return Err(SfuError::BadSdp("larger than 64 KB".into()));
    }
    if !sdp.starts_with("v=0") {
        return Err(SfuError::BadSdp("it must start with v=0".into()));
    }
    let mut media_lines = 0;
    let mut codec = false;
    let mut dir_ok = false;
    let mut in_av = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            in_av = m.starts_with("audio ") || m.starts_with("video ");
            media_lines += usize::from(in_av);
            continue;
        }
        if !in_av {
            continue;
        }
        if let Some(map) = line.strip_prefix("a=rtpmap:") {
            let name = map
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .split('/')
                .next()
                .unwrap_or("");
            codec |= ["opus", "vp8", "h264"].contains(&name.to_ascii_lowercase().as_str());
        }
        dir_ok |= matches!(
            (direction, line),
            (_, "a=sendrecv")
                | (OfferDirection::Sends, "a=sendonly")
                | (OfferDirection::Receives, "a=recvonly")
        );
    }
    if media_lines == 0 {
        return Err(SfuError::BadSdp("it has no audio or video m-line".into()));
    }
    if !codec {
        return Err(SfuError::NoSupportedCodec);
    }
    if !dir_ok {
        return Err(SfuError::WrongDirection(match direction {
            OfferDirection::Sends => "send media (no sendonly or sendrecv m-line)",
            OfferDirection::Receives => "receive media (no recvonly or sendrecv m-line)",
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUB: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n";

    #[test]
    fn accepts_a_publish_offer() {
        assert_eq!(check_offer(PUB, OfferDirection::Sends), Ok(()));
        assert!(matches!(
            check_offer(PUB, OfferDirection::Receives),
            Err(SfuError::WrongDirection(_))
        ));
    }

    #[test]
    fn rejects_garbage_and_unsupported_codecs() {
        assert!(matches!(
            check_offer("hello", OfferDirection::Sends),
            Err(SfuError::BadSdp(_))
        ));
        assert!(matches!(
            check_offer("v=0\r\n", OfferDirection::Sends),
            Err(SfuError::BadSdp(_))
        ));
        let vp9 = PUB
            .replace("opus/48000/2", "G729/8000")
            .replace("VP8/90000", "VP9/90000");
        assert_eq!(
            check_offer(&vp9, OfferDirection::Sends),
            Err(SfuError::NoSupportedCodec)
        );
        let huge = format!("{PUB}{}", "a=x\r\n".repeat(20_000));
        assert!(matches!(
            check_offer(&huge, OfferDirection::Sends),
            Err(SfuError::BadSdp(_))
        ));
    }
}
