//! The UserSig wire document: the `TLS.*` JSON object, zlib-compressed, in TLS's url-base64.
//! Decoding is tolerant of what other SDKs write (numbers as JSON numbers or numeric strings).

use crate::url_base64;
use crate::usersig::UserSigError;
use flate2::bufread::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::{Read, Write};

/// Largest decompressed document accepted; real ones are a few hundred bytes.
const MAX_JSON_BYTES: u64 = 64 * 1024;
/// Longest sig string accepted before decoding anything.
const MAX_SIG_CHARS: usize = 64 * 1024;

pub(crate) const VERSION: &str = "2.0";
pub(crate) const F_VER: &str = "TLS.ver";
pub(crate) const F_IDENTIFIER: &str = "TLS.identifier";
pub(crate) const F_SDKAPPID: &str = "TLS.sdkappid";
pub(crate) const F_EXPIRE: &str = "TLS.expire";
pub(crate) const F_TIME: &str = "TLS.time";
pub(crate) const F_USERBUF: &str = "TLS.userbuf";
pub(crate) const F_SIG: &str = "TLS.sig";

/// The document as written, in the key order of the official SDKs.
#[derive(Serialize)]
pub(crate) struct OutDoc<'a> {
    #[serde(rename = "TLS.ver")]
    pub ver: &'a str,
    #[serde(rename = "TLS.identifier")]
    pub identifier: &'a str,
    #[serde(rename = "TLS.sdkappid")]
    pub sdk_app_id: u32,
    #[serde(rename = "TLS.expire")]
    pub expire: u32,
    #[serde(rename = "TLS.time")]
    pub time: i64,
    #[serde(rename = "TLS.userbuf", skip_serializing_if = "Option::is_none")]
    pub userbuf: Option<&'a str>,
    #[serde(rename = "TLS.sig")]
    pub sig: &'a str,
}

/// JSON, then zlib, then url-base64.
pub(crate) fn encode(doc: &OutDoc) -> String {
    let json = serde_json::to_vec(doc).expect("a struct of strings and integers serializes");
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&json).expect("writing to a Vec cannot fail");
    let compressed = z.finish().expect("writing to a Vec cannot fail");
    url_base64::encode_url(&compressed)
}

/// url-base64, then zlib, then a JSON object.
pub(crate) fn decode(sig: &str) -> Result<Map<String, Value>, UserSigError> {
    if sig.is_empty() {
        return Err(malformed("empty"));
    }
    if sig.len() > MAX_SIG_CHARS {
        return Err(malformed("too long"));
    }
    let compressed = url_base64::decode_url(sig).ok_or_else(|| malformed("not base64"))?;
    let mut json = Vec::new();
    let mut inflate = ZlibDecoder::new(compressed.as_slice());
    (&mut inflate)
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|_| malformed("not zlib data"))?;
    if json.len() as u64 > MAX_JSON_BYTES {
        return Err(malformed("document too large"));
    }
    if !inflate.get_ref().is_empty() {
        return Err(malformed("data after the zlib stream"));
    }
    match serde_json::from_slice(&json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed("document is not a JSON object")),
        Err(_) => Err(malformed("document is not JSON")),
    }
}

/// A required string field.
pub(crate) fn str_field<'m>(
    doc: &'m Map<String, Value>,
    name: &str,
) -> Result<&'m str, UserSigError> {
    match doc.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(malformed(&format!("{name} is not a string"))),
        None => Err(malformed(&format!("{name} is missing"))),
    }
}

/// An optional string field (`null` counts as absent).
pub(crate) fn opt_str_field<'m>(
    doc: &'m Map<String, Value>,
    name: &str,
) -> Result<Option<&'m str>, UserSigError> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(&format!("{name} is not a string"))),
    }
}

/// A required integer field, given as a JSON integer or a decimal string.
pub(crate) fn int_field<T: TryFrom<i64>>(
    doc: &Map<String, Value>,
    name: &str,
) -> Result<T, UserSigError> {
    let n = match doc.get(name) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) if is_decimal(s) => s.parse::<i64>().ok(),
        Some(_) => None,
        None => return Err(malformed(&format!("{name} is missing"))),
    };
    n.and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| malformed(&format!("{name} is not an integer in range")))
}

fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn malformed(why: &str) -> UserSigError {
    UserSigError::Malformed(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn encode_then_decode_keeps_the_fields() {
        let out = OutDoc {
            ver: VERSION,
            identifier: "u",
            sdk_app_id: 1400000000,
            expire: 60,
            time: 1700000000,
            userbuf: None,
            sig: "c2ln",
        };
        let map = decode(&encode(&out)).unwrap();
        assert_eq!(str_field(&map, F_VER).unwrap(), "2.0");
        assert_eq!(int_field::<u32>(&map, F_SDKAPPID).unwrap(), 1400000000);
        assert_eq!(opt_str_field(&map, F_USERBUF).unwrap(), None);
        let keys: Vec<_> = map.keys().map(String::as_str).collect();
        assert!(!keys.contains(&F_USERBUF));
    }

    #[test]
    fn integers_may_be_numbers_or_decimal_strings() {
        let d = doc(r#"{"a":5,"b":"6","c":"-7","d":"x","e":1.5,"f":"","g":-1,"h":true}"#);
        assert_eq!(int_field::<u32>(&d, "a").unwrap(), 5);
        assert_eq!(int_field::<u32>(&d, "b").unwrap(), 6);
        assert_eq!(int_field::<i64>(&d, "c").unwrap(), -7);
        for bad in ["d", "e", "f", "g", "h", "missing"] {
            assert!(
                matches!(int_field::<u32>(&d, bad), Err(UserSigError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn truncated_or_padded_zlib_is_refused() {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(br#"{"TLS.ver":"2.0"}"#).unwrap();
        let good = z.finish().unwrap();
        assert!(decode(&url_base64::encode_url(&good)).is_ok());
        for n in 0..good.len() {
            let cut = url_base64::encode_url(&good[..n]);
            assert!(
                matches!(decode(&cut), Err(UserSigError::Malformed(_))),
                "{n}"
            );
        }
        let mut padded = good.clone();
        padded.push(0);
        assert_eq!(
            decode(&url_base64::encode_url(&padded)).unwrap_err(),
            malformed("data after the zlib stream")
        );
    }

    #[test]
    fn oversized_documents_are_refused() {
        let big = format!(r#"{{"pad":"{}"}}"#, "a".repeat(MAX_JSON_BYTES as usize));
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(big.as_bytes()).unwrap();
        let sig = url_base64::encode_url(&z.finish().unwrap());
        assert!(sig.len() < MAX_SIG_CHARS);
        assert_eq!(decode(&sig).unwrap_err(), malformed("document too large"));
    }
}
