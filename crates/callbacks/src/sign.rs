//! TRTC's callback signature: `Sign = base64(hmacsha256(key, body))` over the body's bytes as
//! sent.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of `docs/callbacks.md`: a third party computes the same value with
    /// Python's `hmac` and `base64`.
    #[test]
    fn the_documented_example() {
        let body = br#"{"EventGroupId":1,"EventType":103,"CallbackTs":1765000000123,"EventInfo":{"RoomId":1234,"EventTs":1765000000,"EventMsTs":1765000000100,"UserId":"alice","UniqueId":42,"Role":20,"TerminalType":100,"UserType":1,"Reason":1}}"#;
        assert_eq!(
            sign("hearthDocsKey123", body),
            "zM1IBB3GopHnMIiHqWW92To4VePyyRe8dv2bVwLuDrY="
        );
    }
}
