//! Signature v1 (spec §1.5): HmacSHA1 or HmacSHA256 over `METHOD + host + "/?" + sorted params`,
//! Base64-encoded.

use base64::Engine;
use hmac::{Hmac, Mac};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    HmacSha1,
    HmacSha256,
}

impl Method {
    /// HmacSHA256 only when `SignatureMethod` says exactly so; HmacSHA1 otherwise (spec §1.3.2).
    pub fn from_param(value: Option<&str>) -> Self {
        match value {
            Some("HmacSHA256") => Method::HmacSha256,
            _ => Method::HmacSha1,
        }
    }
}

/// The original string: parameters (decoded values, without `Signature`) sorted by name in
/// byte order, joined raw.
pub fn string_to_sign(http_method: &str, host: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut s = format!("{http_method}{host}/?");
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

pub fn sign(method: Method, secret_key: &str, string_to_sign: &str) -> String {
    let raw = match method {
        Method::HmacSha1 => {
            let mut m =
                Hmac::<sha1::Sha1>::new_from_slice(secret_key.as_bytes()).expect("any key length");
            m.update(string_to_sign.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Method::HmacSha256 => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret_key.as_bytes())
                .expect("any key length");
            m.update(string_to_sign.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "********************************";

    fn params() -> Vec<(String, String)> {
        [
            ("Action", "DescribeInstances"),
            ("SecretId", "AKID********************************"),
            ("Timestamp", "1465185768"),
            ("Nonce", "11886"),
            ("Region", "ap-guangzhou"),
            ("InstanceIds.0", "ins-09dx96dg"),
            ("Offset", "0"),
            ("Limit", "20"),
            ("Version", "2017-03-12"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Spec §1.5.2.
    #[test]
    fn spec_worked_example() {
        let s = string_to_sign("GET", "cvm.tencentcloudapi.com", &params());
        assert_eq!(s, "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=AKID********************************&Timestamp=1465185768&Version=2017-03-12");
        assert_eq!(
            sign(Method::HmacSha1, KEY, &s),
            "7RAM2xfNMO9EiVTNmPg06MRnCvQ="
        );
    }

    #[test]
    fn spec_derived_vectors() {
        let mut p = params();
        p.push(("SignatureMethod".into(), "HmacSHA256".into()));
        p.push(("Signature".into(), "ignored".into()));
        let s = string_to_sign("GET", "cvm.tencentcloudapi.com", &p);
        assert_eq!(
            sign(Method::HmacSha256, KEY, &s),
            "JeJpKl2qfbiWZ3sk88EAhwAa4TIAZ3ZqEQoYJtT2OdU="
        );
        let s = string_to_sign("POST", "cvm.tencentcloudapi.com", &params());
        assert_eq!(
            sign(Method::HmacSha1, KEY, &s),
            "UJRjj2E0hyIuY/tcxvADU5NAFVk="
        );
    }

    #[test]
    fn names_sort_by_bytes_not_numbers() {
        let p = vec![
            ("InstanceIds.2".into(), "b".into()),
            ("InstanceIds.12".into(), "a".into()),
        ];
        assert_eq!(
            string_to_sign("GET", "h", &p),
            "GETh/?InstanceIds.12=a&InstanceIds.2=b"
        );
    }

    #[test]
    fn method_defaults_to_sha1() {
        assert_eq!(Method::from_param(None), Method::HmacSha1);
        assert_eq!(Method::from_param(Some("hmacsha256")), Method::HmacSha1);
        assert_eq!(Method::from_param(Some("HmacSHA256")), Method::HmacSha256);
    }
}
