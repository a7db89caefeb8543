//! `hearth serve`: open the store, provision tenants, mount the API and health routes, listen
//! on HTTP (and HTTPS when configured), run housekeeping, and shut down gracefully on
//! SIGINT/SIGTERM (stop accepting, finish in-flight requests, flush the store).

use crate::config::Config;
use crate::{retention, rooms::StoredRooms, tenants};
use anyhow::{Context, Result};
use axum::routing::get;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use hearth_api::{ApiState, Tenants};
use hearth_store::{SqliteStore, Store};
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight requests may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Everything the server's routes answer: the API at `/`, health at `/healthz`.
pub fn app(api: Arc<ApiState>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .merge(hearth_api::router(api))
}

pub async fn serve(config: Config) -> Result<()> {
    let s = &config.server;
    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("creating {}", s.data_dir.display()))?;
    let db = s.data_dir.join("hearth.db");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?);
    let provisioned = tenants::provision(&config, store.as_ref())?;
    tenants::announce(&provisioned);
    tracing::info!(
        http = %s.http,
        https = ?s.https,
        data_dir = %s.data_dir.display(),
        rate_limits = s.rate_limits,
        retention_days = s.retention_days,
        media_ip = %config.media.ip,
        media_ports = %config.media.ports,
        "effective configuration"
    );

    let mut state = ApiState::new(
        store.clone(),
        Arc::new(Tenants::new(provisioned.apps, provisioned.credentials)),
        Arc::new(StoredRooms {
            store: store.clone(),
        }),
    );
    if !s.rate_limits {
        state.rate_limiter = None;
    }
    let app = app(Arc::new(state));
    let handle = Handle::new();

    let http = axum_server::bind(s.http)
        .handle(handle.clone())
        .serve(app.clone().into_make_service());
    let mut servers = vec![tokio::spawn(http)];
    if let (Some(addr), Some(cert), Some(key)) = (s.https, &s.tls_cert, &s.tls_key) {
        let tls = RustlsConfig::from_pem_file(cert, key)
            .await
            .with_context(|| {
                format!("loading TLS from {} and {}", cert.display(), key.display())
            })?;
        let https = axum_server::bind_rustls(addr, tls)
            .handle(handle.clone())
            .serve(app.into_make_service());
        servers.push(tokio::spawn(https));
    }
    let housekeeping = tokio::spawn(retention::run(store.clone(), s.retention_days));
    match handle.listening().await {
        Some(addr) => tracing::info!(%addr, "listening"),
        None => anyhow::bail!("could not listen on {}", s.http),
    }

    let mut failed = None;
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        r = futures_first(&mut servers) => failed = Some(r),
    }
    handle.graceful_shutdown(Some(DRAIN));
    for server in servers {
        let _ = server.await;
    }
    housekeeping.abort();
    tokio::task::spawn_blocking(move || store.flush()).await??;
    tracing::info!("store flushed; bye");
    match failed {
        Some(Err(e)) => Err(e),
        _ => Ok(()),
    }
}

/// Resolves when the first listener stops on its own (a bind or TLS failure).
async fn futures_first(servers: &mut [tokio::task::JoinHandle<std::io::Result<()>>]) -> Result<()> {
    loop {
        for s in servers.iter_mut() {
            if s.is_finished() {
                return match s.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(anyhow::anyhow!("listener failed: {e}")),
                    Err(e) => Err(anyhow::anyhow!("listener panicked: {e}")),
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
