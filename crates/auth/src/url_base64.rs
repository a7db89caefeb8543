//! TLS's URL-safe base64 variant (`+`→`*`, `/`→`-`, `=`→`_`) and the standard base64 it wraps.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// Standard alphabet that accepts input with or without `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding, as every TLSSigAPIv2 SDK writes it.
pub(crate) fn encode_std(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard base64, padding optional.
pub(crate) fn decode_std(text: &str) -> Option<Vec<u8>> {
    LENIENT.decode(text).ok()
}

/// Standard base64, then `+`→`*`, `/`→`-`, `=`→`_`.
pub(crate) fn encode_url(bytes: &[u8]) -> String {
    encode_std(bytes)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            c => c,
        })
        .collect()
}

/// Inverse of [`encode_url`]; plain standard base64 is accepted too, padding optional.
pub(crate) fn decode_url(text: &str) -> Option<Vec<u8>> {
    let std: String = text
        .chars()
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            c => c,
        })
        .collect();
    decode_std(&std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_variant_replaces_the_three_special_characters() {
        // 0xfb 0xff encodes to "+/8=" in standard base64.
        assert_eq!(encode_std(&[0xfb, 0xff]), "+/8=");
        assert_eq!(encode_url(&[0xfb, 0xff]), "*-8_");
        assert_eq!(decode_url("*-8_").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_url("*-8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode_url("+/8=").unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(decode_url("!!!!"), None);
        assert_eq!(decode_url("a"), None);
        assert_eq!(decode_std("é"), None);
    }
}
