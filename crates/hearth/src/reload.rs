//! Configuration changes without a restart: the configuration file is read again when it
//! changes (checked every second) or on SIGHUP, and what can change live is applied: the apps'
//! event callbacks. A file that does not parse or validate changes nothing (logged).

use crate::config::Config;
use hearth_callbacks::Directory;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

pub async fn watch(path: PathBuf, directory: Directory) {
    let mut seen = stamp(&path);
    let mut current = Config::load(Some(&path))
        .map(|c| c.callback_directory())
        .unwrap_or_default();
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = hangup => true,
        };
        let now = stamp(&path);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match Config::load(Some(&path)) {
            Ok(c) => {
                let next = c.callback_directory();
                if next != current {
                    tracing::info!(path = %path.display(), apps = next.len(), "event callbacks reconfigured");
                    directory.replace(next.clone());
                    current = next;
                }
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %format!("{e:#}"),
                "the changed configuration was not applied"),
        }
    }
}
