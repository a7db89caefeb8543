//! TRTC PrivateMapKey privilege bits (`privilegeMap`): what a user may do in one room.

use std::ops::BitOr;

/// A TRTC `privilegeMap`. Only the low byte has meaning; 255 grants everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Privileges(pub u32);

impl Privileges {
    pub const NONE: Privileges = Privileges(0);
    /// Bit 0: create the room.
    pub const CREATE_ROOM: Privileges = Privileges(1);
    /// Bit 1: enter the room.
    pub const ENTER_ROOM: Privileges = Privileges(1 << 1);
    /// Bit 2: send audio.
    pub const SEND_AUDIO: Privileges = Privileges(1 << 2);
    /// Bit 3: receive audio.
    pub const RECV_AUDIO: Privileges = Privileges(1 << 3);
    /// Bit 4: send video.
    pub const SEND_VIDEO: Privileges = Privileges(1 << 4);
    /// Bit 5: receive video.
    pub const RECV_VIDEO: Privileges = Privileges(1 << 5);
    /// Bit 6: send the sub (screen-sharing) video stream.
    pub const SEND_SUB_VIDEO: Privileges = Privileges(1 << 6);
    /// Bit 7: receive the sub (screen-sharing) video stream.
    pub const RECV_SUB_VIDEO: Privileges = Privileges(1 << 7);
    /// All eight bits: 255.
    pub const ALL: Privileges = Privileges(255);

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: Privileges) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn can_create_room(self) -> bool {
        self.contains(Self::CREATE_ROOM)
    }

    pub fn can_enter(self) -> bool {
        self.contains(Self::ENTER_ROOM)
    }

    pub fn can_send_audio(self) -> bool {
        self.contains(Self::SEND_AUDIO)
    }

    pub fn can_receive_audio(self) -> bool {
        self.contains(Self::RECV_AUDIO)
    }

    pub fn can_send_video(self) -> bool {
        self.contains(Self::SEND_VIDEO)
    }

    pub fn can_receive_video(self) -> bool {
        self.contains(Self::RECV_VIDEO)
    }

    pub fn can_send_sub_video(self) -> bool {
        self.contains(Self::SEND_SUB_VIDEO)
    }

    pub fn can_receive_sub_video(self) -> bool {
        self.contains(Self::RECV_SUB_VIDEO)
    }
}

impl BitOr for Privileges {
    type Output = Privileges;

    fn bitor(self, rhs: Privileges) -> Privileges {
        Privileges(self.0 | rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_grants_every_bit() {
        let p = Privileges::ALL;
        assert!(p.can_create_room() && p.can_enter());
        assert!(p.can_send_audio() && p.can_receive_audio());
        assert!(p.can_send_video() && p.can_receive_video());
        assert!(p.can_send_sub_video() && p.can_receive_sub_video());
        assert!(!Privileges::NONE.can_enter());
    }

    #[test]
    fn the_documented_42_is_enter_and_receive() {
        let p = Privileges(42);
        assert_eq!(
            p,
            Privileges::ENTER_ROOM | Privileges::RECV_AUDIO | Privileges::RECV_VIDEO
        );
        assert!(p.can_enter() && p.can_receive_audio() && p.can_receive_video());
        assert!(!p.can_create_room() && !p.can_send_audio() && !p.can_send_video());
        assert!(!p.can_send_sub_video() && !p.can_receive_sub_video());
    }
}
