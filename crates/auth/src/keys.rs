//! Generation of new application ids, UserSig keys and API credentials from the OS RNG.

use hearth_types::SdkAppId;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};

/// A UserSig key like the console's: 32 random bytes as 64 lowercase hex characters.
pub fn generate_usersig_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A Tencent Cloud style API SecretId: `AKID` and 32 letters and digits.
pub fn generate_secret_id() -> String {
    format!("AKID{}", alphanumeric(32))
}

/// A Tencent Cloud style API SecretKey: 32 letters and digits.
pub fn generate_secret_key() -> String {
    alphanumeric(32)
}

/// A random SdkAppId in the range the console hands out, 1400000000 ..= 1499999999.
pub fn generate_sdk_app_id() -> SdkAppId {
    SdkAppId(OsRng.gen_range(1_400_000_000..=1_499_999_999))
}

fn alphanumeric(n: usize) -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usersig_keys_are_64_lowercase_hex() {
        let k = generate_usersig_key();
        assert_eq!(k.len(), 64);
        assert!(k
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(k, generate_usersig_key());
    }

    #[test]
    fn api_credentials_have_the_tencent_cloud_shape() {
        let id = generate_secret_id();
        assert_eq!(id.len(), 36);
        assert!(id.starts_with("AKID"));
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        let key = generate_secret_key();
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(key, generate_secret_key());
    }

    #[test]
    fn app_ids_are_in_the_console_range() {
        for _ in 0..100 {
            let SdkAppId(n) = generate_sdk_app_id();
            assert!((1_400_000_000..=1_499_999_999).contains(&n));
        }
    }
}
