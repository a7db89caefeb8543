//! UserSigs and PrivateMapKeys made by the official `tls-sig-api-v2` libraries (Python and npm)
//! verify in Hearth. The vectors are generated fresh by `tests/e2e/gen_usersig_vectors.py
//! --node` and passed in `HEARTH_USERSIG_VECTORS`; `scripts/test.sh` does both.
//! Run: `HEARTH_USERSIG_VECTORS=v.json cargo test -p hearth-auth --test interop -- --ignored`.

use hearth_auth::{verify_usersig, PrivateMapKey, UserSigError};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};
use serde_json::Value;

#[test]
#[ignore = "needs HEARTH_USERSIG_VECTORS from tests/e2e/gen_usersig_vectors.py (scripts/test.sh runs it)"]
fn official_library_sigs_verify() {
    let path = std::env::var("HEARTH_USERSIG_VECTORS")
        .expect("HEARTH_USERSIG_VECTORS must name the vector file");
    let vectors: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        vectors.len() >= 10,
        "expected vectors from both libraries, got {}",
        vectors.len()
    );
    let libs: std::collections::BTreeSet<&str> =
        vectors.iter().filter_map(|v| v["lib"].as_str()).collect();
    assert!(
        libs.iter().any(|l| l.contains("python")) && libs.iter().any(|l| !l.contains("python")),
        "expected vectors from the Python and the npm library: {libs:?}"
    );
    let now = UnixSecs::now();
    for v in &vectors {
        let app = SdkAppId(v["sdkappid"].as_u64().unwrap() as u32);
        let key = v["key"].as_str().unwrap();
        let sig = v["sig"].as_str().unwrap();
        let result = verify_usersig(sig, app, key, now);
        if v["expect"] == "bad_signature" {
            assert!(
                matches!(result, Err(UserSigError::BadSignature)),
                "{v}: {result:?}"
            );
            continue;
        }
        let verified = result.unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(
            verified.identifier,
            v["identifier"].as_str().unwrap(),
            "{v}"
        );
        assert_eq!(
            u64::from(verified.expire_secs),
            v["expire"].as_u64().unwrap(),
            "{v}"
        );
        let kind = v["kind"].as_str().unwrap();
        if kind == "usersig" {
            continue;
        }
        let buf = verified
            .userbuf
            .unwrap_or_else(|| panic!("{v}: no userbuf"));
        let pmk = PrivateMapKey::decode(&buf).unwrap_or_else(|e| panic!("{v}: {e}"));
        let room = match kind {
            "privatemapkey" => RoomKey::Num(v["room"].as_u64().unwrap() as u32),
            "privatemapkey_str" => RoomKey::Str(v["room"].as_str().unwrap().to_owned()),
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(pmk.room, room, "{v}");
        assert_eq!(pmk.identifier, verified.identifier, "{v}");
        assert_eq!(pmk.sdk_app_id, app, "{v}");
        assert_eq!(
            u64::from(pmk.privileges.0),
            v["privilege"].as_u64().unwrap(),
            "{v}"
        );
        assert!(pmk.expire_at > now, "{v}");
    }
}
