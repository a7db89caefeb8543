//! Where a task's files go, and the HLS playlists written as segments arrive there: an
//! S3-compatible bucket under `prefix/TaskId/`, or Hearth's VOD store.

use crate::s3::{Bucket, S3Error};
use crate::vod::Vod;
use bytes::Bytes;
use std::collections::BTreeMap;

pub enum Dest {
    S3 {
        bucket: Bucket,
        prefix: String,
    },
    Vod {
        vod: Vod,
        app: u32,
        task: String,
        url_expires: u64,
        /// UserDefineRecordId: stored names are `<it>__UserId_u_<name>`.
        user_prefix: Option<String>,
    },
    /// A task that writes no files (a live relay).
    Nowhere,
}

impl Dest {
    /// Stores `body` (a cheap handle: retries do not copy it).
    pub async fn put(&self, name: &str, body: Bytes) -> Result<(), S3Error> {
        match self {
            Dest::S3 { bucket, prefix } => {
                bucket
                    .put(&format!("{prefix}{name}"), body, content_type(name))
                    .await
            }
            Dest::Vod { vod, app, task, .. } => {
                let path = vod.path(*app, task, &self.stored_name(name));
                let write = async {
                    if let Some(dir) = path.parent() {
                        tokio::fs::create_dir_all(dir).await?;
                    }
                    let tmp = path.with_extension("part");
                    tokio::fs::write(&tmp, &body).await?;
                    tokio::fs::rename(&tmp, &path).await
                };
                write.await.map_err(|e| S3Error {
                    message: format!("writing {}: {e}", path.display()),
                    retry: true,
                })
            }
            Dest::Nowhere => Err(S3Error {
                message: format!("{name}: this task stores no files"),
                retry: false,
            }),
        }
    }

    /// The name a file is stored under.
    fn stored_name(&self, name: &str) -> String {
        match self {
            Dest::Vod {
                user_prefix: Some(p),
                ..
            } => format!("{p}__UserId_u_{name}"),
            _ => name.to_owned(),
        }
    }

    /// Where a stored file can be fetched: the object's URL in the bucket, or its signed URL
    /// path in the VOD store.
    pub fn url(&self, name: &str) -> String {
        match self {
            Dest::S3 { bucket, prefix } => bucket.object_url(&format!("{prefix}{name}")),
            Dest::Vod { .. } => self.public_name(name),
            Dest::Nowhere => name.to_owned(),
        }
    }

    /// How a file is named to the API (StorageFile.FileName) and inside playlists: its name in
    /// a bucket, a signed URL in the VOD store.
    pub fn public_name(&self, name: &str) -> String {
        match self {
            Dest::S3 { .. } | Dest::Nowhere => name.to_owned(),
            Dest::Vod {
                vod,
                app,
                task,
                url_expires,
                ..
            } => vod.signed_url(*app, task, &self.stored_name(name), *url_expires),
        }
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("mp4") => "video/mp4",
        Some("aac") => "audio/aac",
        _ => "application/octet-stream",
    }
}

/// The HLS playlists of a task: segments in order with their durations.
#[derive(Default)]
pub struct Playlists {
    lists: BTreeMap<String, Vec<(String, f64)>>,
}

impl Playlists {
    pub fn add(&mut self, playlist: &str, segment: String, secs: f64) {
        self.lists
            .entry(playlist.to_owned())
            .or_default()
            .push((segment, secs));
    }

    pub fn names(&self) -> Vec<String> {
        self.lists.keys().cloned().collect()
    }

    /// The playlist text; `ended` adds ENDLIST (a complete recording).
    pub fn render(&self, playlist: &str, ended: bool, dest: &Dest) -> String {
        let segs = self.lists.get(playlist).map(Vec::as_slice).unwrap_or(&[]);
        let target = segs
            .iter()
            .map(|(_, d)| d.ceil() as u64)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}\n",
            if ended { "VOD" } else { "EVENT" }
        );
        for (name, secs) in segs {
            s.push_str(&format!("#EXTINF:{secs:.3},\n{}\n", dest.public_name(name)));
        }
        if ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vod(prefix: Option<&str>) -> (tempfile::TempDir, Dest) {
        let dir = tempfile::tempdir().unwrap();
        let dest = Dest::Vod {
            vod: Vod::open(dir.path()).unwrap(),
            app: 1400000001,
            task: "t".into(),
            url_expires: 5000,
            user_prefix: prefix.map(str::to_owned),
        };
        (dir, dest)
    }

    #[test]
    fn playlists_list_segments_in_order_and_end_only_when_complete() {
        let (_d, dest) = vod(None);
        let mut p = Playlists::default();
        p.add("t.m3u8", "t_00000.ts".into(), 2.0);
        p.add("t.m3u8", "t_00001.ts".into(), 2.4);
        let live = p.render("t.m3u8", false, &dest);
        assert!(live.contains("#EXT-X-TARGETDURATION:3\n"), "{live}");
        assert!(live.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !live.contains("ENDLIST"));
        let first = live.find("t_00000.ts").unwrap();
        assert!(first < live.find("t_00001.ts").unwrap());
        // VOD playlists name each segment by its signed URL.
        assert!(
            live.contains("/vod/1400000001/t/t_00000.ts?expires=5000&sign="),
            "{live}"
        );
        let done = p.render("t.m3u8", true, &dest);
        assert!(done.ends_with("#EXT-X-ENDLIST\n") && done.contains("PLAYLIST-TYPE:VOD"));
        assert_eq!(p.names(), vec!["t.m3u8".to_owned()]);
    }

    #[tokio::test]
    async fn vod_files_carry_the_user_defined_prefix() {
        let (dir, dest) = vod(Some("class-7"));
        dest.put("t_000.mp4", Bytes::from_static(b"mp4"))
            .await
            .unwrap();
        let stored = dir
            .path()
            .join("vod/1400000001/t/class-7__UserId_u_t_000.mp4");
        assert_eq!(std::fs::read(stored).unwrap(), b"mp4");
        assert!(dest
            .public_name("t_000.mp4")
            .starts_with("/vod/1400000001/t/class-7__UserId_u_t_000.mp4?"));
    }
}
