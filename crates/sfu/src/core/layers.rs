//! Simulcast layer selection for one subscription: the wanted layer (TRTC big or small video),
//! capped by the subscriber's downlink estimate, and a switch that waits for a keyframe on the
//! target layer so the decoder never sees a stream it cannot decode.

use super::Layer;

/// What a subscriber asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerChoice {
    /// TRTC "big" video: the highest layer the downlink allows.
    Big,
    /// TRTC "small" video: the lowest layer.
    Small,
}

/// Per-subscription layer state.
#[derive(Debug, Clone)]
pub struct LayerSelector {
    pub choice: LayerChoice,
    /// The layer being forwarded now; `None` until the first keyframe.
    pub current: Option<Layer>,
    /// The layer we want to forward; switched to on its next keyframe.
    pub target: Layer,
    /// Highest layer the downlink estimate allows.
    pub cap: Layer,
}

/// What to do with one incoming frame for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameVerdict {
    Forward,
    Drop,
}

impl LayerSelector {
    pub fn new(choice: LayerChoice, top: Layer) -> Self {
        let mut s = LayerSelector {
            choice,
            current: None,
            target: Layer(0),
            cap: top,
        };
        s.retarget(top);
        s
    }

    /// Recomputes the target from the choice, the cap and the highest layer seen (`top`).
    /// Returns true when the target changed (a keyframe on the new target is then needed).
    pub fn retarget(&mut self, top: Layer) -> bool {
        let wanted = match self.choice {
            LayerChoice::Big => top.min(self.cap),
            LayerChoice::Small => Layer(0),
        };
        let changed = wanted != self.target;
        self.target = wanted;
        changed
    }

    /// Decides for a frame of `layer`; switches to the target layer on its keyframe.
    pub fn on_frame(&mut self, layer: Layer, keyframe: bool) -> FrameVerdict {
        if layer == self.target && keyframe {
            self.current = Some(layer);
        }
        if self.current == Some(layer) {
            FrameVerdict::Forward
        } else {
            FrameVerdict::Drop
        }
    }

    /// True while the subscription waits for a keyframe on its target layer.
    pub fn switching(&self) -> bool {
        self.current != Some(self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FrameVerdict::*;

    #[test]
    fn starts_on_the_first_keyframe_of_the_target() {
        let mut s = LayerSelector::new(LayerChoice::Big, Layer(2));
        assert_eq!(s.on_frame(Layer(2), false), Drop);
        assert_eq!(s.on_frame(Layer(0), true), Drop);
        assert_eq!(s.on_frame(Layer(2), true), Forward);
        assert_eq!(s.on_frame(Layer(2), false), Forward);
        assert_eq!(s.on_frame(Layer(1), false), Drop);
    }

    #[test]
    fn switches_down_only_on_a_keyframe_and_keeps_the_old_layer_meanwhile() {
        let mut s = LayerSelector::new(LayerChoice::Big, Layer(2));
        s.on_frame(Layer(2), true);
        s.cap = Layer(0);
        assert!(s.retarget(Layer(2)));
        assert!(s.switching());
        assert_eq!(
            s.on_frame(Layer(2), false),
            Forward,
            "old layer continues until the switch"
        );
        assert_eq!(
            s.on_frame(Layer(0), false),
            Drop,
            "not a keyframe: cannot switch yet"
        );
        assert_eq!(s.on_frame(Layer(0), true), Forward);
        assert_eq!(s.on_frame(Layer(2), false), Drop);
        assert!(!s.switching());
    }

    #[test]
    fn small_wants_the_lowest_layer() {
        let mut s = LayerSelector::new(LayerChoice::Small, Layer(2));
        assert_eq!(s.target, Layer(0));
        assert_eq!(s.on_frame(Layer(0), true), Forward);
        assert!(!s.retarget(Layer(2)));
    }
}
