//! Room custom messages (TRTC's `sendCustomCmdMsg`): an anchor's (or a media bot's) small
//! payload with a command id,
//! delivered in order to every other client of the room (mirroring workers included), each
//! sender numbering its messages. Limits as TRTC documents them: command ids 1–10, 1 KB a
//! message, 30 messages and 8 KB a second per sender.

use super::Worker;
use crate::client::{ClientNotice, Role};
use crate::command::SfuError;
use crate::SessionRef;
use std::sync::Arc;
use std::time::Instant;

/// Command ids a client may use.
pub const CMD_IDS: std::ops::RangeInclusive<u8> = 1..=10;
/// Bytes of one message at most.
pub const MAX_BYTES: usize = 1024;
/// Messages, and bytes, one sender may send per second (a burst of one second's worth).
pub const PER_SECOND: f64 = 30.0;
pub const BYTES_PER_SECOND: f64 = 8192.0;

/// One sender's rate budget and message numbering.
#[derive(Debug, Clone)]
pub struct CustomBudget {
    messages: f64,
    bytes: f64,
    at: Option<Instant>,
    /// The number of the sender's last message.
    pub seq: u32,
}

impl Default for CustomBudget {
    fn default() -> Self {
        CustomBudget {
            messages: PER_SECOND,
            bytes: BYTES_PER_SECOND,
            at: None,
            seq: 0,
        }
    }
}

impl CustomBudget {
    /// Takes one message of `len` bytes from the budget; false when over the rate.
    pub fn take(&mut self, len: usize, now: Instant) -> bool {
        if let Some(at) = self.at {
            let secs = now.saturating_duration_since(at).as_secs_f64();
            self.messages = (self.messages + secs * PER_SECOND).min(PER_SECOND);
            self.bytes = (self.bytes + secs * BYTES_PER_SECOND).min(BYTES_PER_SECOND);
        }
        self.at = Some(now);
        if self.messages < 1.0 || self.bytes < len as f64 {
            return false;
        }
        self.messages -= 1.0;
        self.bytes -= len as f64;
        self.seq = self.seq.wrapping_add(1);
        true
    }
}

impl Worker {
    /// Sends a client's custom message to the rest of its room.
    pub(crate) fn client_custom(
        &mut self,
        session: &SessionRef,
        cmd_id: u8,
        data: Vec<u8>,
        now: Instant,
    ) -> Result<(), SfuError> {
        if !CMD_IDS.contains(&cmd_id) {
            return Err(SfuError::BadMessage("cmdid must be 1 to 10"));
        }
        if data.len() > MAX_BYTES {
            return Err(SfuError::BadMessage(
                "a custom message holds 1024 bytes at most",
            ));
        }
        let cid = self.client_of(session)?;
        let c = self
            .clients
            .get_mut(&cid)
            .ok_or(SfuError::SessionNotFound)?;
        // Hearth's media bots (subtitles, bot state) send from the audience, unlisted.
        if c.role() != Role::Anchor && !c.is_bot() {
            return Err(SfuError::Forbidden("only anchors send custom messages"));
        }
        if !c.custom.take(data.len(), now) {
            return Err(SfuError::RateLimited(
                "custom messages are limited to 30 and 8 KB a second",
            ));
        }
        let notice = ClientNotice::Custom {
            user: c.user.clone(),
            cmd_id,
            seq: c.custom.seq,
            data: Arc::from(data),
        };
        let (slot, user) = (c.slot, c.user.clone());
        self.send_room(slot, &user, &notice);
        self.notify_mirrors(slot, &user, &notice);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_budget_allows_30_messages_and_8_kb_a_second() {
        let t0 = Instant::now();
        let mut b = CustomBudget::default();
        assert!((0..30).all(|_| b.take(10, t0)));
        assert!(!b.take(10, t0), "the 31st message in the same instant");
        assert_eq!(b.seq, 30);
        assert!(
            b.take(10, t0 + Duration::from_millis(40)),
            "one more after 1/30 s"
        );
        let mut b = CustomBudget::default();
        assert!((0..8).all(|_| b.take(1024, t0)));
        assert!(!b.take(1024, t0), "8 KB a second");
        assert!(b.take(1024, t0 + Duration::from_millis(130)));
    }
}
