//! The `hearth` binary: `hearth serve` runs the server; `hearth usersig` prints a UserSig.

mod config;
mod metrics;
mod reload;
mod retention;
mod rooms;
mod server;
mod tenants;
mod vod;
mod web;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use config::Config;
use hearth_auth::{make_usersig, UserSigParams, DEFAULT_USERSIG_EXPIRE_SECS};
use hearth_store::{SqliteStore, Store};
use hearth_types::{SdkAppId, UnixSecs};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "Self-hosted real-time audio/video server, TRTC-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// TOML configuration file (see hearth.sample.toml); HEARTH_* variables override it.
        #[arg(long, env = "HEARTH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print a UserSig for a user of an application known to this server.
    Usersig {
        #[arg(long)]
        sdkappid: u32,
        #[arg(long)]
        user: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = DEFAULT_USERSIG_EXPIRE_SECS)]
        expire: u32,
        #[arg(long, env = "HEARTH_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let path = config;
            let config = Config::load(path.as_deref())?;
            init_logs(&config.server.log_format);
            let _ = rustls::crypto::ring::default_provider().install_default();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(server::serve(config, path))
        }
        Command::Usersig {
            sdkappid,
            user,
            expire,
            config,
        } => {
            let config = Config::load(config.as_deref())?;
            let key = app_key(&config, SdkAppId(sdkappid))?;
            let sig = make_usersig(&UserSigParams {
                sdk_app_id: SdkAppId(sdkappid),
                key: &key,
                identifier: &user,
                expire_secs: expire,
                now: UnixSecs::now(),
                userbuf: None,
            });
            println!("{sig}");
            Ok(())
        }
    }
}

/// The UserSig key of an application: from the config, else from the data dir's store.
fn app_key(config: &Config, app: SdkAppId) -> Result<String> {
    if let Some(a) = config.apps.iter().find(|a| a.sdk_app_id == app.0) {
        return Ok(a.secret_key.clone());
    }
    let db = config.server.data_dir.join("hearth.db");
    anyhow::ensure!(
        db.exists(),
        "no application {app}: not in the config and no store at {}",
        db.display()
    );
    let store = SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
    store
        .apps()?
        .into_iter()
        .find(|a| a.sdk_app_id == app)
        .map(|a| a.secret_key)
        .with_context(|| format!("no application {app} in the config or the store"))
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
