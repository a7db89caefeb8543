//! TC3-HMAC-SHA256 (spec §1.4): parse the `Authorization` header, rebuild the canonical request
//! from what was received, and compute the signature.

use crate::error::ApiError;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The parts of a TC3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Authorization {
    pub secret_id: String,
    /// `YYYY-MM-DD` of the credential scope.
    pub date: String,
    pub service: String,
    /// Lowercase header names, as listed (`content-type;host`).
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(header: &str) -> Result<Tc3Authorization, ApiError> {
    let bad = |m: &str| ApiError::InvalidAuthorization(m.to_owned());
    let rest = header
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| bad("The algorithm must be TC3-HMAC-SHA256."))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad("Malformed field."))?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(bad("Unknown field.")),
        };
        if slot.replace(v).is_some() {
            return Err(bad("Repeated field."));
        }
    }
    let credential = credential.ok_or_else(|| bad("Credential is missing."))?;
    let signed = signed.ok_or_else(|| bad("SignedHeaders is missing."))?;
    let signature = signature.ok_or_else(|| bad("Signature is missing."))?;

    let scope: Vec<&str> = credential.split('/').collect();
    let [secret_id, date, service, terminator] = scope[..] else {
        return Err(bad("Credential must be SecretId/Date/Service/tc3_request."));
    };
    if terminator != "tc3_request" || secret_id.is_empty() || service.is_empty() {
        return Err(bad("Credential must be SecretId/Date/Service/tc3_request."));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    let sorted = signed_headers.windows(2).all(|w| w[0] < w[1]);
    let lower = signed_headers
        .iter()
        .all(|h| !h.is_empty() && *h == h.to_ascii_lowercase());
    if !sorted || !lower {
        return Err(bad(
            "SignedHeaders must be lowercase names in ascending order.",
        ));
    }
    if !signed_headers.iter().any(|h| h == "content-type")
        || !signed_headers.iter().any(|h| h == "host")
    {
        return Err(bad("SignedHeaders must include content-type and host."));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("Signature must be 64 hex digits."));
    }
    Ok(Tc3Authorization {
        secret_id: secret_id.to_owned(),
        date: date.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// What goes into the canonical request, taken from the request as received.
pub struct CanonicalInput<'a> {
    pub method: &'a str,
    /// The raw query string (`""` for POST).
    pub query: &'a str,
    /// `(lowercase name, value as received)` of each signed header, in SignedHeaders order.
    pub headers: &'a [(String, String)],
    /// Lowercase hex SHA-256 of the payload (or of `UNSIGNED-PAYLOAD`).
    pub payload_hash: &'a str,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn canonical_request(c: &CanonicalInput) -> String {
    let mut headers = String::new();
    let mut names = Vec::with_capacity(c.headers.len());
    for (name, value) in c.headers {
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&value.trim().to_ascii_lowercase());
        headers.push('\n');
        names.push(name.as_str());
    }
    format!(
        "{}\n/\n{}\n{}\n{}\n{}",
        c.method,
        c.query,
        headers,
        names.join(";"),
        c.payload_hash
    )
}

pub fn string_to_sign(timestamp: &str, date: &str, service: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// The signing key of a secret for one date and service.
pub fn signing_key(secret_key: &str, date: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    hmac(&k_service, b"tc3_request")
}

/// Lowercase hex signature of a string to sign, with a derived signing key.
pub fn sign_with(key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(key, string_to_sign.as_bytes()))
}

/// Lowercase hex signature of a string to sign.
pub fn sign(secret_key: &str, date: &str, service: &str, string_to_sign: &str) -> String {
    sign_with(&signing_key(secret_key, date, service), string_to_sign)
}

/// Signing keys that verified a request, by credential scope (`SecretId/date/service`):
/// deriving one is three of the four HMACs of a request, and it changes only with the UTC date.
/// Only keys that verified a signature are kept, so requests with made-up scopes cannot grow
/// it; past [`MAX_SIGNING_KEYS`] scopes (days of them) it starts over.
#[derive(Default)]
pub struct SigningKeys {
    keys: std::sync::Mutex<std::collections::HashMap<String, [u8; 32]>>,
}

pub const MAX_SIGNING_KEYS: usize = 1024;

impl SigningKeys {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, [u8; 32]>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, scope: &str) -> Option<[u8; 32]> {
        self.map().get(scope).copied()
    }

    /// Keeps a key that verified a request.
    pub fn keep(&self, scope: String, key: [u8; 32]) {
        let mut map = self.map();
        if map.len() >= MAX_SIGNING_KEYS {
            map.clear();
        }
        map.insert(scope, key);
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The UTC date (`YYYY-MM-DD`) of a Unix timestamp.
pub fn utc_date(timestamp: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(timestamp).ok()?;
    let (y, m, d) = (t.year(), u8::from(t.month()), t.day());
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AKID********************************";
    const KEY: &str = "********************************";
    const PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["unnamed"], "Name": "instance-name"}]}"#;

    /// Spec §1.4.3, every published intermediate value.
    #[test]
    fn spec_worked_example() {
        let payload_hash = sha256_hex(PAYLOAD.as_bytes());
        assert_eq!(
            payload_hash,
            "99d58dfbc6745f6747f36bfca17dee5e6881dc0428a0a36f96199342bc5b4907"
        );
        let headers = [
            (
                "content-type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            ),
            ("host".to_owned(), "cvm.tencentcloudapi.com".to_owned()),
        ];
        let canonical = canonical_request(&CanonicalInput {
            method: "POST",
            query: "",
            headers: &headers,
            payload_hash: &payload_hash,
        });
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n99d58dfbc6745f6747f36bfca17dee5e6881dc0428a0a36f96199342bc5b4907"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "2815843035062fffda5fd6f2a44ea8a34818b0dc46f024b8b3786976a3adda7a"
        );
        let date = utc_date(1551113065).unwrap();
        assert_eq!(date, "2019-02-25");
        let k_date = hmac(format!("TC3{KEY}").as_bytes(), date.as_bytes());
        assert_eq!(
            hex::encode(k_date),
            "da98fb70dcf6b112dc21038d1eeeb3a95c74b4dcb12c1131f864f6066bd02be0"
        );
        let k_service = hmac(&k_date, b"cvm");
        assert_eq!(
            hex::encode(k_service),
            "8d70cbefb03939f929db64d32dc2ba89b1095620119fe3e050e2b18c5bd2752f"
        );
        assert_eq!(
            hex::encode(signing_key(KEY, &date, "cvm")),
            "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
        );
        let sts = string_to_sign("1551113065", &date, "cvm", &canonical);
        assert_eq!(
            sts,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n2815843035062fffda5fd6f2a44ea8a34818b0dc46f024b8b3786976a3adda7a"
        );
        assert_eq!(
            sign(KEY, &date, "cvm", &sts),
            "a7b8551448762bd123d6f79e81815e31a92013640a6cef36a08ad4b292a4d2f2"
        );
    }

    #[test]
    fn parses_the_spec_authorization_header() {
        let h = format!("TC3-HMAC-SHA256 Credential={ID}/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=a7b8551448762bd123d6f79e81815e31a92013640a6cef36a08ad4b292a4d2f2");
        let a = parse_authorization(&h).unwrap();
        assert_eq!(a.secret_id, ID);
        assert_eq!(a.date, "2019-02-25");
        assert_eq!(a.service, "cvm");
        assert_eq!(a.signed_headers, ["content-type", "host"]);
    }

    #[test]
    fn rejects_malformed_authorization_headers() {
        let sig = "a".repeat(64);
        for h in [
            String::new(),
            "Basic abc".into(),
            format!("TC3-HMAC-SHA256 Credential={ID}/2019-02-25/cvm, SignedHeaders=content-type;host, Signature={sig}"),
            format!("TC3-HMAC-SHA256 Credential={ID}/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature={sig}"),
            format!("TC3-HMAC-SHA256 Credential={ID}/2019-02-25/cvm/tc3_request, SignedHeaders=host;content-type, Signature={sig}"),
            format!("TC3-HMAC-SHA256 Credential={ID}/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=xyz"),
            format!("TC3-HMAC-SHA256 Credential={ID}/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host"),
        ] {
            assert!(
                matches!(parse_authorization(&h), Err(ApiError::InvalidAuthorization(_))),
                "{h}"
            );
        }
    }

    #[test]
    fn signing_keys_are_kept_by_scope_and_bounded() {
        let keys = SigningKeys::default();
        let k = signing_key(KEY, "2019-02-25", "cvm");
        assert_eq!(keys.get("id/2019-02-25/cvm"), None);
        keys.keep("id/2019-02-25/cvm".into(), k);
        assert_eq!(keys.get("id/2019-02-25/cvm"), Some(k));
        assert_eq!(
            keys.get("id/2019-02-26/cvm"),
            None,
            "another date is another key"
        );
        for i in 0..MAX_SIGNING_KEYS + 5 {
            keys.keep(format!("id/{i}/cvm"), k);
        }
        assert!(keys.len() <= MAX_SIGNING_KEYS);
        assert_eq!(
            sign_with(&k, "abc"),
            sign(KEY, "2019-02-25", "cvm", "abc"),
            "a kept key signs as a derived one"
        );
    }
}
