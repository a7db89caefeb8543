//! PrivateMapKey: the room-permission userbuf of TRTC (binary layout of the official
//! `genUserbuf`) and the UserSig that carries it.
//!
//! Layout, all integers big-endian: version u8 (0 numeric room, 1 string room); identifier
//! length u16 + bytes; sdkappid u32; room number u32 (0 for string rooms); expire-at u32
//! (absolute Unix seconds); privilege map u32; account type u32 (0); string rooms only: room
//! length u16 + bytes.

use crate::privileges::Privileges;
use crate::usersig::{make_usersig, UserSigParams};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};
use thiserror::Error;

const VERSION_NUM_ROOM: u8 = 0;
const VERSION_STR_ROOM: u8 = 1;

/// The decoded userbuf of a PrivateMapKey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateMapKey {
    pub identifier: String,
    pub sdk_app_id: SdkAppId,
    pub room: RoomKey,
    pub expire_at: UnixSecs,
    pub privileges: Privileges,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PrivateMapKeyError {
    #[error("PrivateMapKey userbuf ends inside the {0}")]
    Truncated(&'static str),
    #[error("PrivateMapKey userbuf has unknown version {0}")]
    UnknownVersion(u8),
    #[error("PrivateMapKey userbuf {0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("PrivateMapKey userbuf has an empty string room")]
    EmptyStringRoom,
    #[error("PrivateMapKey userbuf has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

impl PrivateMapKey {
    /// The userbuf bytes, identical to the official SDKs' `genUserbuf`. Identifier and room are
    /// cut to 65535 bytes and expire-at is clamped to the u32 range (neither happens in TRTC).
    pub fn encode(&self) -> Vec<u8> {
        let version = match self.room {
            RoomKey::Num(_) => VERSION_NUM_ROOM,
            RoomKey::Str(_) => VERSION_STR_ROOM,
        };
        let room_num = match self.room {
            RoomKey::Num(n) => n,
            RoomKey::Str(_) => 0,
        };
        let expire_at = u32::try_from(self.expire_at.0.max(0)).unwrap_or(u32::MAX);
        let mut buf = Vec::with_capacity(64);
        buf.push(version);
        put_short_bytes(&mut buf, self.identifier.as_bytes());
        buf.extend_from_slice(&self.sdk_app_id.0.to_be_bytes());
        buf.extend_from_slice(&room_num.to_be_bytes());
        buf.extend_from_slice(&expire_at.to_be_bytes());
        buf.extend_from_slice(&self.privileges.0.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes()); // account type
        if let RoomKey::Str(s) = &self.room {
            put_short_bytes(&mut buf, s.as_bytes());
        }
        buf
    }

    /// Parses a userbuf. A numeric-room buffer may end with a zero room length (some writers add
    /// one); anything else after the fields is an error.
    pub fn decode(buf: &[u8]) -> Result<Self, PrivateMapKeyError> {
        let mut r = Reader(buf);
        let version = r.u8("version")?;
        if version != VERSION_NUM_ROOM && version != VERSION_STR_ROOM {
            return Err(PrivateMapKeyError::UnknownVersion(version));
        }
        let identifier = r.short_str("identifier")?;
        let sdk_app_id = SdkAppId(r.u32("sdkappid")?);
        let room_num = r.u32("room number")?;
        let expire_at = UnixSecs(i64::from(r.u32("expire time")?));
        let privileges = Privileges(r.u32("privilege map")?);
        r.u32("account type")?;
        let room = if version == VERSION_STR_ROOM {
            let s = r.short_str("string room")?;
            if s.is_empty() {
                return Err(PrivateMapKeyError::EmptyStringRoom);
            }
            RoomKey::Str(s)
        } else {
            if r.0 == [0, 0] {
                r.0 = &[];
            }
            RoomKey::Num(room_num)
        };
        if !r.0.is_empty() {
            return Err(PrivateMapKeyError::TrailingBytes(r.0.len()));
        }
        Ok(PrivateMapKey {
            identifier,
            sdk_app_id,
            room,
            expire_at,
            privileges,
        })
    }

    /// Whether the key no longer grants anything at `now` (valid through `expire_at` itself).
    pub fn is_expired(&self, now: UnixSecs) -> bool {
        self.expire_at < now
    }
}

/// A PrivateMapKey as the official `genPrivateMapKey` (numeric room) or
/// `genPrivateMapKeyWithStringRoomID` (string room) make it: a UserSig valid for `expire_secs`
/// whose userbuf expires at `now + expire_secs`.
pub fn make_private_map_key(
    app: SdkAppId,
    key: &str,
    identifier: &str,
    room: &RoomKey,
    expire_secs: u32,
    privileges: Privileges,
    now: UnixSecs,
) -> String {
    let userbuf = PrivateMapKey {
        identifier: identifier.to_owned(),
        sdk_app_id: app,
        room: room.clone(),
        expire_at: UnixSecs(now.0.saturating_add(i64::from(expire_secs))),
        privileges,
    }
    .encode();
    make_usersig(&UserSigParams {
        sdk_app_id: app,
        key,
        identifier,
        expire_secs,
        now,
        userbuf: Some(&userbuf),
    })
}

fn put_short_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(usize::from(u16::MAX))];
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// Cursor over the userbuf; every read names the field it was reading when it runs out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], PrivateMapKeyError> {
        if self.0.len() < n {
            return Err(PrivateMapKeyError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, PrivateMapKeyError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, PrivateMapKeyError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, PrivateMapKeyError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn short_str(&mut self, field: &'static str) -> Result<String, PrivateMapKeyError> {
        let len = self.u16(field)?;
        let bytes = self.take(usize::from(len), field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| PrivateMapKeyError::NotUtf8(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usersig::{verify_usersig, UserSigError};

    const APP: SdkAppId = SdkAppId(1400000000);
    const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    const T0: UnixSecs = UnixSecs(1700000000);

    /// Official npm tls-sig-api-v2 1.0.2 at Date.now() = 1700000000000:
    /// `genPrivateMapKey("xiaojun", 300, 10000, 255)`.
    const NODE_PMK_NUM: &str = "eJxVjU0LgkAURf-L2xoympUMtHgEWWShJEHutJmxUTPxq5Hov0eWi*7iwj1ncZ8QuEe94xVQMHUCk2FLxotGCjlgJaN72hY-VbMsKkvJgBoW*eVrGnnjQI3FP*WqlBUHOh1BW-MqbgVQQMQNd-JrbJZGnB-6IEHE1cUPT17vIiJ69qdxfJYJUCDa3trNrXwbrGeZZqeN70S5IiJRzIgePFREhGfBii7MlvB6A36tQqM_";
    /// Same, `genPrivateMapKeyWithStringRoomID("xiaojun", 300, "room-abc_1", 42)`.
    const NODE_PMK_STR: &str = "eJxVjssOgjAURP-lbjWEIkRt4qIxKioxGF-RnU0rXFEoFLTE*O9G1IWzmjlnMw9YByvrJgug4Fg2tJuNQqYlnrDBBo-ZuUq-SovkqBQKoMS1v-mYEq8SKOn*U2kUFhJo5wcqLQtenYACWzJfTi4xdxThl0W9jliTwzasg3cZZh-AVM2dfhnsxrgnPfN7ghFQINNWvl2JSPux0T3XjDxvIjfZzN6r*SENdeLkN7KMs4TdB-B8AflTSCI_";
    /// npm `_genUserbuf` hex for the two keys above.
    const NODE_BUF_NUM: &str = "0000077869616f6a756e53724e00000027106553f22c000000ff00000000";
    const NODE_BUF_STR: &str =
        "0100077869616f6a756e53724e00000000006553f22c0000002a00000000000a726f6f6d2d6162635f31";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn key(room: RoomKey, privileges: u32) -> PrivateMapKey {
        PrivateMapKey {
            identifier: "xiaojun".into(),
            sdk_app_id: APP,
            room,
            expire_at: UnixSecs(1700000300),
            privileges: Privileges(privileges),
        }
    }

    #[test]
    fn encode_matches_the_npm_sdk_byte_for_byte() {
        assert_eq!(key(RoomKey::Num(10000), 255).encode(), hex(NODE_BUF_NUM));
        assert_eq!(
            key(RoomKey::Str("room-abc_1".into()), 42).encode(),
            hex(NODE_BUF_STR)
        );
    }

    #[test]
    fn npm_numeric_room_key_verifies_and_decodes() {
        let v = verify_usersig(NODE_PMK_NUM, APP, KEY, T0).unwrap();
        assert_eq!((v.identifier.as_str(), v.expire_secs), ("xiaojun", 300));
        let buf = v.userbuf.unwrap();
        assert_eq!(buf, hex(NODE_BUF_NUM));
        let pmk = PrivateMapKey::decode(&buf).unwrap();
        assert_eq!(pmk, key(RoomKey::Num(10000), 255));
        assert!(pmk.privileges.can_send_video());
        assert!(!pmk.is_expired(UnixSecs(1700000300)));
        assert!(pmk.is_expired(UnixSecs(1700000301)));
    }

    #[test]
    fn npm_string_room_key_verifies_and_decodes() {
        let v = verify_usersig(NODE_PMK_STR, APP, KEY, T0).unwrap();
        let pmk = PrivateMapKey::decode(&v.userbuf.unwrap()).unwrap();
        assert_eq!(pmk, key(RoomKey::Str("room-abc_1".into()), 42));
        assert!(pmk.privileges.can_enter() && !pmk.privileges.can_send_audio());
    }

    #[test]
    fn our_keys_carry_the_npm_userbuf_and_signature() {
        for (room, privileges, theirs) in [
            (RoomKey::Num(10000), 255, NODE_PMK_NUM),
            (RoomKey::Str("room-abc_1".into()), 42, NODE_PMK_STR),
        ] {
            let ours =
                make_private_map_key(APP, KEY, "xiaojun", &room, 300, Privileges(privileges), T0);
            let a = verify_usersig(&ours, APP, KEY, T0).unwrap();
            let b = verify_usersig(theirs, APP, KEY, T0).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn round_trips() {
        for room in [
            RoomKey::Num(1),
            RoomKey::Num(u32::MAX - 1),
            RoomKey::Str("é room".into()),
        ] {
            let k = PrivateMapKey {
                identifier: "用户".into(),
                ..key(room, 0x1234_5678)
            };
            assert_eq!(PrivateMapKey::decode(&k.encode()).unwrap(), k);
        }
    }

    #[test]
    fn a_zero_room_length_after_a_numeric_room_is_tolerated() {
        let mut buf = hex(NODE_BUF_NUM);
        buf.extend_from_slice(&[0, 0]);
        assert_eq!(
            PrivateMapKey::decode(&buf).unwrap().room,
            RoomKey::Num(10000)
        );
        buf.push(0);
        assert_eq!(
            PrivateMapKey::decode(&buf),
            Err(PrivateMapKeyError::TrailingBytes(3))
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for full in [hex(NODE_BUF_NUM), hex(NODE_BUF_STR)] {
            for n in 0..full.len() {
                assert!(
                    matches!(
                        PrivateMapKey::decode(&full[..n]),
                        Err(PrivateMapKeyError::Truncated(_))
                    ),
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        assert_eq!(
            PrivateMapKey::decode(&[]),
            Err(PrivateMapKeyError::Truncated("version"))
        );
        assert_eq!(
            PrivateMapKey::decode(&[7; 40]),
            Err(PrivateMapKeyError::UnknownVersion(7))
        );
        assert_eq!(
            PrivateMapKey::decode(&[0, 0xff, 0xff, 1]),
            Err(PrivateMapKeyError::Truncated("identifier"))
        );
        let mut bad_utf8 = hex(NODE_BUF_NUM);
        bad_utf8[3] = 0xff;
        assert_eq!(
            PrivateMapKey::decode(&bad_utf8),
            Err(PrivateMapKeyError::NotUtf8("identifier"))
        );
        let mut empty_room = hex(NODE_BUF_STR);
        empty_room.truncate(empty_room.len() - 12);
        empty_room.extend_from_slice(&[0, 0]);
        assert_eq!(
            PrivateMapKey::decode(&empty_room),
            Err(PrivateMapKeyError::EmptyStringRoom)
        );
        // Pseudo-random buffers: any result is fine as long as nothing panics.
        let mut x: u32 = 0x9e37_79b9;
        for len in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 3) as u8
                })
                .collect();
            let _ = PrivateMapKey::decode(&buf);
        }
    }

    #[test]
    fn a_private_map_key_is_a_usersig() {
        let sig = make_private_map_key(APP, KEY, "u1", &RoomKey::Num(5), 60, Privileges::ALL, T0);
        assert_eq!(
            verify_usersig(&sig, APP, KEY, UnixSecs(1700000061)),
            Err(UserSigError::Expired)
        );
    }
}
