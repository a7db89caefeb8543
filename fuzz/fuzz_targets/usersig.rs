//! Client credentials and the small parsers beside the gateway: UserSig verification
//! (url-base64 → zlib → JSON → HMAC), PrivateMapKey userbufs, the TC3 `Authorization` header, and
//! the nesting of flat `A.0.B=v` fields.
//!
//! The first byte picks what the rest is fed to; seeds in `fuzz/seeds/usersig/` start with it:
//! `0` a UserSig string, `1` a PrivateMapKey userbuf, `2` an `Authorization` header, `3` a query
//! string to nest, anything else a structured make→verify round trip (via `arbitrary`).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use hearth_api::params;
use hearth_api::signature::tc3;
use hearth_auth::{make_usersig, verify_usersig, PrivateMapKey, UserSigError, UserSigParams};
use hearth_types::{SdkAppId, UnixSecs};
use libfuzzer_sys::fuzz_target;

const APP: SdkAppId = SdkAppId(1400000001);
const KEY: &str = "0123456789abcdef0123456789abcdef";
const NOW: UnixSecs = UnixSecs(1700000000);

#[derive(Arbitrary, Debug)]
struct RoundTrip {
    app: u32,
    key: String,
    identifier: String,
    expire_secs: u32,
    issued_at: i64,
    now: i64,
    userbuf: Option<Vec<u8>>,
}

fn round_trip(rt: RoundTrip) {
    let sig = make_usersig(&UserSigParams {
        sdk_app_id: SdkAppId(rt.app),
        key: &rt.key,
        identifier: &rt.identifier,
        expire_secs: rt.expire_secs,
        now: UnixSecs(rt.issued_at),
        userbuf: rt.userbuf.as_deref(),
    });
    let result = verify_usersig(&sig, SdkAppId(rt.app), &rt.key, UnixSecs(rt.now));
    let expires_at = rt.issued_at.saturating_add(i64::from(rt.expire_secs));
    if sig.len() > 64 * 1024 {
        // Longer than verify accepts; only must not panic.
        return;
    }
    if rt.now > expires_at {
        assert_eq!(result, Err(UserSigError::Expired), "sig {sig}");
    } else {
        let v = result.unwrap_or_else(|e| panic!("own sig refused: {e}; sig {sig}"));
        assert_eq!(v.identifier, rt.identifier);
        assert_eq!(v.sdk_app_id, SdkAppId(rt.app));
        assert_eq!(v.issued_at, UnixSecs(rt.issued_at));
        assert_eq!(v.expire_secs, rt.expire_secs);
        assert_eq!(v.userbuf, rt.userbuf);
    }
    // Another app never verifies.
    assert!(verify_usersig(&sig, SdkAppId(rt.app ^ 1), &rt.key, UnixSecs(rt.now)).is_err());
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which {
        b'0' => {
            let s = String::from_utf8_lossy(rest);
            let _ = verify_usersig(&s, APP, KEY, NOW);
            let _ = hearth_auth::peek_usersig(&s);
        }
        b'1' => {
            if let Ok(k) = PrivateMapKey::decode(rest) {
                // What decodes encodes back to the same bytes, but for the fields read and
                // ignored (account type; room number of a string room), written as 0, and an
                // optional trailing zero room length after a numeric room.
                let again = k.encode();
                let mut expected = rest.to_vec();
                let fields = 1 + 2 + k.identifier.len();
                expected[fields + 16..fields + 20].fill(0);
                if expected[0] == 1 {
                    expected[fields + 4..fields + 8].fill(0);
                }
                let same = again == expected || [&again[..], &[0, 0]].concat() == expected;
                assert!(same, "{k:?} re-encodes as {again:?}, not {rest:?}");
                let _ = k.is_expired(NOW);
            }
        }
        b'2' => {
            let s = String::from_utf8_lossy(rest);
            if let Ok(a) = tc3::parse_authorization(&s) {
                assert_eq!(a.signature.len(), 64);
                assert!(a.signed_headers.iter().any(|h| h == "host"));
            }
        }
        b'3' => {
            let fields: Vec<(String, String)> = form_urlencoded::parse(rest)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if let Ok(v) = params::nest(fields) {
                assert!(v.is_object());
                let _ = params::decode::<serde_json::Value>(v);
            }
        }
        _ => {
            if let Ok(rt) = RoundTrip::arbitrary_take_rest(Unstructured::new(rest)) {
                round_trip(rt);
            }
        }
    }
});
