//! Hearth's own VOD store (CloudVod): recording files kept under the data dir and served over
//! HTTP only through signed, expiring URLs.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// Files live at `<root>/<SdkAppId>/<TaskId>/<file>`.
#[derive(Clone)]
pub struct Vod {
    root: PathBuf,
    key: Vec<u8>,
}

/// URLs of media kept without an expiry are signed for this long.
const PERMANENT_URL_SECS: u64 = 10 * 365 * 86_400;

impl Vod {
    /// `key` signs URLs; it is kept in the data dir so that URLs outlive restarts.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let root = data_dir.join("vod");
        std::fs::create_dir_all(&root)?;
        let key_path = data_dir.join("vod.key");
        let key = match std::fs::read(&key_path) {
            Ok(k) if k.len() >= 32 => k,
            _ => {
                let k: [u8; 32] = rand::random();
                let hexed = hex::encode(k).into_bytes();
                std::fs::write(&key_path, &hexed)?;
                hexed
            }
        };
        Ok(Vod { root, key })
    }

    pub fn path(&self, app: u32, task: &str, file: &str) -> PathBuf {
        self.root.join(app.to_string()).join(task).join(file)
    }

    /// The URL path (with query) that serves a file until `expires` (Unix seconds).
    pub fn signed_url(&self, app: u32, task: &str, file: &str, expires: u64) -> String {
        let path = format!("/vod/{app}/{task}/{file}");
        let sign = self.sign(&path, expires);
        format!("{path}?expires={expires}&sign={sign}")
    }

    /// The expiry of a URL for media expiring `expire_secs` after `now` (0: not by itself).
    pub fn url_expiry(now: u64, expire_secs: u64) -> u64 {
        now + if expire_secs == 0 {
            PERMANENT_URL_SECS
        } else {
            expire_secs
        }
    }

    fn sign(&self, path: &str, expires: u64) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        m.update(path.as_bytes());
        m.update(b"\n");
        m.update(expires.to_string().as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// The file a request may read: the signature matches and has not expired.
    pub fn authorize(&self, path: &str, expires: u64, sign: &str, now: u64) -> Option<PathBuf> {
        if now > expires {
            return None;
        }
        let want = self.sign(path, expires);
        if !constant_eq(want.as_bytes(), sign.as_bytes()) {
            return None;
        }
        let rest = path.strip_prefix("/vod/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return None;
        }
        let app: u32 = parts[0].parse().ok()?;
        Some(self.path(app, parts[1], parts[2]))
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_open_only_with_their_signature_and_before_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let vod = Vod::open(dir.path()).unwrap();
        let url = vod.signed_url(1400000001, "t1", "t1.m3u8", 2000);
        let (path, q) = url.split_once('?').unwrap();
        let sign = q.split("sign=").nth(1).unwrap();
        assert!(vod.authorize(path, 2000, sign, 1000).is_some());
        assert!(vod.authorize(path, 2000, sign, 2001).is_none(), "expired");
        assert!(
            vod.authorize(path, 3000, sign, 1000).is_none(),
            "expiry changed"
        );
        assert!(vod
            .authorize("/vod/1400000001/t1/other.ts", 2000, sign, 1000)
            .is_none());
        // The key survives a restart.
        let again = Vod::open(dir.path()).unwrap();
        assert!(again.authorize(path, 2000, sign, 1000).is_some());
    }
}
