//! `hearth serve`: open the store, provision tenants, mount the API and health routes, listen
//! on HTTP (and HTTPS when configured), run housekeeping, and shut down gracefully on
//! SIGINT/SIGTERM (stop accepting, finish in-flight requests, flush the store).

use crate::config::Config;
use crate::{retention, rooms::SfuRooms, tenants};
use anyhow::{Context, Result};
use axum::routing::get;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use hearth_api::{ApiState, Tenants};
use hearth_sfu::{SfuConfig, SfuHandle};
use hearth_signal::{AppAuth, Apps, Calls, CallsConfig};
use hearth_store::{LeaveReason, SqliteStore, Store};
use hearth_types::UnixSecs;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight requests may take to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Everything the server's routes answer: the API and the demo page at `/`, WHIP/WHEP, the
/// WebSocket protocol, the SDK files, health at `/healthz`
/// (with the media plane's counts).
pub fn app(
    api: Arc<ApiState>,
    signal: Router,
    web_dir: std::path::PathBuf,
    dev: crate::web::DevKeys,
    observed: crate::metrics::Sources,
) -> Router {
    let health_sfu = observed.sfu.clone();
    let tasks = observed.tasks.clone();
    Router::new()
        .route("/healthz", get(move || health(health_sfu.clone())))
        .route(
            "/metrics",
            get(move || {
                let observed = observed.clone();
                async move {
                    let body = crate::metrics::render(&observed).await;
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        body,
                    )
                }
            }),
        )
        .merge(crate::vod::routes(tasks.vod().clone()))
        .merge(signal)
        .merge(crate::web::routes(web_dir, hearth_api::router(api), dev))
}

async fn health(sfu: SfuHandle) -> Json<serde_json::Value> {
    let media = sfu.stats().await.ok();
    Json(serde_json::json!({
        "status": if media.is_some() { "ok" } else { "degraded" },
        "media": media.map(|m| serde_json::json!({
            "rooms": m.rooms,
            "users": m.users,
            "peers": m.peers,
            "addr_routes": m.addr_routes,
            "ufrag_routes": m.ufrag_routes,
            "tracks": m.tracks,
            "subscriptions": m.subscriptions,
            "timers": m.timers,
            "events_dropped": m.events_dropped,
        })),
    }))
}

pub async fn serve(config: Config, config_path: Option<std::path::PathBuf>) -> Result<()> {
    let s = &config.server;
    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("creating {}", s.data_dir.display()))?;
    let db = s.data_dir.join("hearth.db");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?);
    let provisioned = tenants::provision(&config, store.as_ref())?;
    tenants::announce(&provisioned);
    let stale = store.finish_open_calls(UnixSecs::now(), LeaveReason::ServerShutdown)?;
    if stale > 0 {
        tracing::warn!(calls = stale, "closed calls left open by an earlier run");
    }
    let orphaned = store.fail_open_tasks(UnixSecs::now())?;
    if orphaned > 0 {
        tracing::warn!(
            tasks = orphaned,
            dir = %s.data_dir.join("tasks").display(),
            "media tasks left running by an earlier run recorded as failed; files they had not stored stay in their task dirs"
        );
    }
    let cut_off = store.interrupt_open_call_logs(UnixSecs::now())?;
    if cut_off > 0 {
        tracing::warn!(
            calls = cut_off,
            "placed calls cut off by an earlier run recorded as Interrupt"
        );
    }
    tracing::info!(
        http = %s.http,
        https = ?s.https,
        data_dir = %s.data_dir.display(),
        rate_limits = s.rate_limits,
        retention_days = s.retention_days,
        media_ip = %config.media.ip,
        media_ports = %config.media.ports,
        web_dir = %s.web_dir.display(),
        ring_timeout_secs = config.calls.ring_timeout_secs,
        reconnect_grace_secs = config.calls.reconnect_grace_secs,
        media_worker_bin = %config.media.worker_bin().display(),
        media_cpu_budget = config.media.task_budget(),
        media_hls_segment_secs = config.media.hls_segment_secs,
        outbound_allow = ?config.outbound.allow,
        "effective configuration"
    );

    let (first_port, last_port) = config.media.port_range()?;
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(hearth_telemetry::EVENT_QUEUE);
    let sfu = SfuHandle::start(
        &SfuConfig {
            ip: config.media.ip.parse()?,
            announce: config.media.announced()?,
            tcp: config.media.ice_tcp,
            sessions_per_user: config.limits.sessions_per_user,
            sessions_per_app: config.limits.sessions_per_app,
            first_port,
            last_port,
            workers: config.media.worker_count(),
            capacity: config.media.capacity_per_worker,
        },
        events_tx,
    )
    .context("starting the media workers")?;
    let directory = hearth_callbacks::Directory::new(config.callback_directory());
    let (rooms_tx, rooms_rx) = tokio::sync::mpsc::channel(hearth_signal::ROOM_EVENTS_QUEUE);
    let recorder = tokio::spawn(
        hearth_telemetry::Recorder::new(store.clone())
            .with_callbacks(directory.clone())
            .with_rooms(rooms_tx)
            .run(events_rx),
    );
    let dispatcher = hearth_callbacks::Dispatcher::new(
        store.clone(),
        directory.clone(),
        hearth_outbound::Rules::new(&config.outbound.allow).map_err(anyhow::Error::msg)?,
        config.callbacks.settings(),
    );
    let callback_counters = dispatcher.counters();
    let dispatching = tokio::spawn(dispatcher.run());
    let reloading = config_path.map(|p| tokio::spawn(crate::reload::watch(p, directory.clone())));
    let apps: Apps = provisioned
        .apps
        .iter()
        .map(|a| {
            let require = config
                .apps
                .iter()
                .any(|c| c.sdk_app_id == a.sdk_app_id.0 && c.require_private_map_key);
            let auth = AppAuth {
                key: a.secret_key.clone(),
                require_private_map_key: require,
            };
            (a.sdk_app_id, auth)
        })
        .collect();
    if !s.web_dir.join("index.html").exists() {
        tracing::warn!(web_dir = %s.web_dir.display(), "no index.html there: the demo page and SDK are not served");
    }
    let provisioned_dev = provisioned.from_data_dir;
    let dev_keys: std::collections::BTreeMap<_, _> = provisioned
        .apps
        .iter()
        .map(|a| (a.sdk_app_id, a.secret_key.clone()))
        .collect();
    let mut state = ApiState::new(
        store.clone(),
        Arc::new(Tenants::new(provisioned.apps, provisioned.credentials)),
        Arc::new(SfuRooms { sfu: sfu.clone() }),
    );
    if !s.rate_limits {
        state.rate_limiter = None;
    }
    state.console = hearth_api::console::sessions::Sessions::new(Duration::from_secs(
        config.console.session_secs,
    ));
    let ws_host = if s.http.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), s.http.port())
    } else {
        s.http
    };
    let rules = hearth_outbound::Rules::new(&config.outbound.allow).map_err(anyhow::Error::msg)?;
    let tasks = hearth_tasks::Tasks::new(
        hearth_tasks::TasksConfig {
            worker_bin: config.media.worker_bin(),
            ws_url: format!("ws://{ws_host}/ws/v1"),
            data_dir: s.data_dir.clone(),
            cpu_budget: config.media.task_budget(),
            eos_timeout_secs: config.media.eos_timeout_secs,
            hls_segment_secs: config.media.hls_segment_secs,
            upload_grace_secs: config.media.upload_grace_secs,
            ingest_max_size: config.media.ingest_max_size()?,
            ingest_live_retry_secs: config.media.ingest_live_retry_secs,
            ingest_passthrough: config.media.ingest_passthrough,
            outbound_allow: config.outbound.allow.clone(),
            stt_python: config.ai.stt_python.clone(),
            stt_engine: config
                .ai
                .stt_engine
                .parse()
                .unwrap_or(hearth_tasks::SttEngine::Pocketsphinx),
            stt_endpoint: config.ai.stt_endpoint(),
        },
        rules,
        store.clone(),
        directory.clone(),
    )
    .await?;
    state.media = Arc::new(tasks.clone());
    let dev = if provisioned_dev {
        crate::web::DevKeys(Arc::new(dev_keys))
    } else {
        crate::web::DevKeys::default()
    };
    let calls = Calls::start(
        CallsConfig {
            ring_timeout: Duration::from_secs(config.calls.ring_timeout_secs),
            reconnect_grace: Duration::from_secs(config.calls.reconnect_grace_secs),
            enter_timeout: Duration::from_secs(config.calls.enter_timeout_secs),
        },
        store.clone(),
        directory.clone(),
        rooms_rx,
    );
    let edge = hearth_signal::router(
        sfu.clone(),
        apps,
        calls.clone(),
        store.clone(),
        hearth_signal::EdgeConfig {
            limits: config.limits.edge(),
            turn: config.turn.servers(),
        },
    );
    let edge_meter = edge.meter;
    let signal = edge.router;
    let state = Arc::new(state);
    let app = app(
        state.clone(),
        signal,
        s.web_dir.clone(),
        dev,
        crate::metrics::Sources {
            sfu: sfu.clone(),
            api: state,
            calls: calls.clone(),
            tasks: tasks.clone(),
            callbacks: crate::metrics::CallbackMetrics {
                counters: callback_counters,
                store: store.clone(),
            },
            edge: edge_meter,
        },
    );
    let handle = Handle::new();

    let http = axum_server::bind(s.http).handle(handle.clone()).serve(
        app.clone()
            .into_make_service_with_connect_info::<SocketAddr>(),
    );
    let mut servers = vec![tokio::spawn(http)];
    if let (Some(addr), Some(cert), Some(key)) = (s.https, &s.tls_cert, &s.tls_key) {
        let tls = RustlsConfig::from_pem_file(cert, key)
            .await
            .with_context(|| {
                format!("loading TLS from {} and {}", cert.display(), key.display())
            })?;
        let https = axum_server::bind_rustls(addr, tls)
            .handle(handle.clone())
            .serve(app.into_make_service_with_connect_info::<SocketAddr>());
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
    calls.shutdown().await;
    tasks
        .shutdown(Duration::from_secs(config.media.eos_timeout_secs + 10))
        .await;
    handle.graceful_shutdown(Some(DRAIN));
    for server in servers {
        let _ = server.await;
    }
    housekeeping.abort();
    sfu.shutdown().await;
    drop(sfu);
    if tokio::time::timeout(DRAIN, recorder).await.is_err() {
        tracing::warn!("recorder did not finish writing in time");
    }
    // The last events' callbacks (rooms ending with the shutdown) get a moment to go; what is
    // still queued is delivered by the next start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        let s2 = store.clone();
        match tokio::task::spawn_blocking(move || s2.callback_counts()).await {
            Ok(Ok((0, _))) | Ok(Err(_)) | Err(_) => break,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    dispatching.abort();
    if let Some(r) = reloading {
        r.abort();
    }
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
