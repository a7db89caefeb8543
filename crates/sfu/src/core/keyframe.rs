//! Keyframe-request throttling: subscribers ask (PLI/FIR) whenever they lose a picture, and
//! layer switches ask too; the publisher should see at most one request per layer per interval.

use super::Layer;
use std::time::{Duration, Instant};

/// At most one keyframe request per publisher layer in this interval: an encoder needs a few
/// hundred milliseconds to produce and send a keyframe, asking again sooner only adds load.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Last request time per layer of one track.
#[derive(Debug, Default, Clone)]
pub struct KeyframeThrottle {
    last: [Option<Instant>; 4],
}

impl KeyframeThrottle {
    /// True (and remembered) when a request for `layer` may go to the publisher now.
    pub fn allow(&mut self, layer: Layer, now: Instant) -> bool {
        let slot = &mut self.last[usize::from(layer.0.min(3))];
        match *slot {
            Some(t) if now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL => false,
            _ => {
                *slot = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_interval_per_layer() {
        let t = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.allow(Layer(0), t));
        assert!(!k.allow(Layer(0), t + Duration::from_millis(100)));
        assert!(k.allow(Layer(1), t + Duration::from_millis(100)));
        assert!(k.allow(Layer(0), t + KEYFRAME_REQUEST_INTERVAL));
    }
}
