//! Which peer a datagram belongs to: by source address once known, else by the ICE ufrag in
//! the STUN USERNAME of the first binding request (RFC 8445 §7.2.2). Maps, not a scan.

/// The local (our) ufrag of a STUN binding request: USERNAME is `ours:theirs`.
pub fn stun_local_ufrag(packet: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    const USERNAME: u16 = 0x0006;
    if packet.len() < 20 || packet[0] & 0xC0 != 0 || packet[4..8] != MAGIC {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let end = (20 + body_len).min(packet.len());
    let mut at = 20;
    while at + 4 <= end {
        let kind = u16::from_be_bytes([packet[at], packet[at + 1]]);
        let len = usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]]));
        let value = packet.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let s = std::str::from_utf8(value).ok()?;
            return s.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&0x0006u16.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        attrs.extend_from_slice(&0x8028u16.to_be_bytes()); // FINGERPRINT, ignored
        attrs.extend_from_slice(&4u16.to_be_bytes());
        attrs.extend_from_slice(&[0; 4]);
        let mut p = vec![0x00, 0x01];
        p.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        p.extend_from_slice(&[7; 12]);
        p.extend_from_slice(&attrs);
        p
    }

    #[test]
    fn finds_our_ufrag() {
        assert_eq!(
            stun_local_ufrag(&binding_request(b"abcd:wxyz")),
            Some("abcd")
        );
        assert_eq!(stun_local_ufrag(&binding_request(b"abc:w")), Some("abc"));
    }

    #[test]
    fn ignores_other_traffic_and_garbage() {
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None, "RTP");
        assert_eq!(stun_local_ufrag(&[0x16; 40]), None, "DTLS");
        assert_eq!(stun_local_ufrag(&[]), None);
        let mut truncated = binding_request(b"abcd:wxyz");
        truncated.truncate(26);
        assert_eq!(stun_local_ufrag(&truncated), None);
        let mut lying = binding_request(b"abcd:wxyz");
        lying[22] = 0xff;
        lying[23] = 0xff;
        assert_eq!(stun_local_ufrag(&lying), None);
    }
}
