//! Room identity: a numeric `RoomId` or a string `StrRoomId`, with TRTC's rules.
//! Numeric room 123 and string room "123" are different rooms.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// A room inside one application.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RoomKey {
    /// TRTC `RoomId`: 1 ..= 4294967294.
    Num(u32),
    /// TRTC `StrRoomId`: 1..=64 bytes of letters, digits and `STR_ROOM_PUNCTUATION`.
    Str(String),
}

/// Punctuation TRTC allows in a string room id, besides ASCII letters, digits and space.
pub const STR_ROOM_PUNCTUATION: &str = "!#$%&()+-:;<=.>?@[]^_{}|~,";
/// Longest string room id, in bytes.
pub const STR_ROOM_MAX_LEN: usize = 64;
/// Largest numeric room id (u32::MAX is reserved by TRTC).
pub const NUM_ROOM_MAX: u32 = 4_294_967_294;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RoomKeyError {
    #[error("room id must be between 1 and {NUM_ROOM_MAX}")]
    NumOutOfRange,
    #[error("string room id must be 1 to {STR_ROOM_MAX_LEN} bytes")]
    StrLength,
    #[error("string room id may hold only letters, digits, space and {STR_ROOM_PUNCTUATION}")]
    StrCharacters,
}

impl RoomKey {
    pub fn num(n: u64) -> Result<Self, RoomKeyError> {
        match u32::try_from(n) {
            Ok(n) if (1..=NUM_ROOM_MAX).contains(&n) => Ok(RoomKey::Num(n)),
            _ => Err(RoomKeyError::NumOutOfRange),
        }
    }

    pub fn string(s: &str) -> Result<Self, RoomKeyError> {
        if s.is_empty() || s.len() > STR_ROOM_MAX_LEN {
            return Err(RoomKeyError::StrLength);
        }
        let ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || STR_ROOM_PUNCTUATION.contains(c));
        if !ok {
            return Err(RoomKeyError::StrCharacters);
        }
        Ok(RoomKey::Str(s.to_owned()))
    }

    pub fn is_str(&self) -> bool {
        matches!(self, RoomKey::Str(_))
    }

    /// The room as TRTC prints it (`RoomString`, `RoomStr`).
    pub fn as_string(&self) -> String {
        match self {
            RoomKey::Num(n) => n.to_string(),
            RoomKey::Str(s) => s.clone(),
        }
    }

    /// The middle part of a CommId. A numeric room is its own number; a string room gets a stable
    /// number from FNV-1a 64 folded above `u32::MAX` (and below 2^53, so JavaScript keeps it exact),
    /// so it can never collide with a numeric room.
    pub fn number(&self) -> u64 {
        match self {
            RoomKey::Num(n) => u64::from(*n),
            RoomKey::Str(s) => {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in s.bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
                const LOW: u64 = 1 << 32;
                const SPAN: u64 = (1 << 53) - LOW;
                LOW + h % SPAN
            }
        }
    }
}

impl fmt::Display for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomKey::Num(n) => write!(f, "{n}"),
            RoomKey::Str(s) => write!(f, "str:{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_and_string_rooms_with_the_same_digits_differ() {
        let n = RoomKey::num(123).unwrap();
        let s = RoomKey::string("123").unwrap();
        assert_ne!(n, s);
        assert_ne!(n.number(), s.number());
        assert_eq!(n.as_string(), s.as_string());
    }

    #[test]
    fn numeric_room_limits() {
        assert_eq!(RoomKey::num(0), Err(RoomKeyError::NumOutOfRange));
        assert_eq!(
            RoomKey::num(4_294_967_295),
            Err(RoomKeyError::NumOutOfRange)
        );
        assert!(RoomKey::num(4_294_967_294).is_ok());
    }

    #[test]
    fn string_room_rules() {
        assert!(RoomKey::string("abc 123_!#$%&()+-:;<=.>?@[]^_{}|~,").is_ok());
        assert_eq!(RoomKey::string(""), Err(RoomKeyError::StrLength));
        assert_eq!(
            RoomKey::string(&"a".repeat(65)),
            Err(RoomKeyError::StrLength)
        );
        assert_eq!(RoomKey::string("a/b"), Err(RoomKeyError::StrCharacters));
        assert_eq!(RoomKey::string("é"), Err(RoomKeyError::StrCharacters));
    }

    #[test]
    fn string_room_numbers_are_stable_and_above_u32() {
        let a = RoomKey::string("113a730673fee2d86e93e26cddb25b7d").unwrap();
        assert_eq!(a.number(), a.clone().number());
        assert!(a.number() > u64::from(u32::MAX) && a.number() < (1 << 53));
    }
}
