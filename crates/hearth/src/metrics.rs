//! `GET /metrics` in the Prometheus text format: the media plane's gauges and counters, the
//! telemetry queue, calls in progress, event callbacks, and API calls by action and outcome.

use hearth_api::ApiState;
use hearth_sfu::SfuHandle;
use hearth_signal::Calls;
use std::fmt::Write;
use std::sync::Arc;

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// A counter with one label, a line per value.
fn labelled(out: &mut String, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (v, n) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{v}\"}} {n}");
    }
}

/// What `/metrics` shows of the event callbacks.
#[derive(Clone)]
pub struct CallbackMetrics {
    pub counters: Arc<hearth_callbacks::Counters>,
    pub store: Arc<dyn hearth_store::Store>,
}

fn callbacks(out: &mut String, m: &CallbackMetrics, queued: u64, kept: u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &m.counters;
    labelled(
        out,
        "hearth_callbacks_total",
        "Event callbacks to apps' servers since the start, by outcome (delivered: HTTP 200; retried: a failed attempt to be tried again; abandoned: given up after the retry horizon or refused by the address rules; dropped: the app stopped listening before delivery).",
        "outcome",
        &[
            ("delivered", c.delivered.load(Relaxed)),
            ("retried", c.retried.load(Relaxed)),
            ("abandoned", c.abandoned.load(Relaxed)),
            ("dropped", c.dropped.load(Relaxed)),
        ],
    );
    metric(
        out,
        "hearth_callbacks_queued",
        "gauge",
        "Event callbacks in the outbox waiting to be delivered.",
        queued,
    );
    metric(
        out,
        "hearth_callbacks_abandoned_kept",
        "gauge",
        "Abandoned event callbacks kept in the outbox (until the retention's cutoff).",
        kept,
    );
}

fn edge_limits(out: &mut String, edge: &hearth_signal::EdgeMeter) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = edge.counters();
    metric(
        out,
        "hearth_ws_sockets",
        "gauge",
        "WebSocket protocol sockets (room and calling) open now, past their first message.",
        edge.open_sockets(),
    );
    labelled(
        out,
        "hearth_ws_refused_total",
        "WebSocket protocol sockets refused or closed by the client-edge limits since the start (flooding: over the message or byte rate; user_sockets, app_sockets: over the open-socket limit).",
        "limit",
        &[
            ("flooding", c.flooding.load(Relaxed)),
            ("user_sockets", c.user_sockets.load(Relaxed)),
            ("app_sockets", c.app_sockets.load(Relaxed)),
        ],
    );
}

/// What `/metrics` reads.
#[derive(Clone)]
pub struct Sources {
    pub sfu: SfuHandle,
    pub api: Arc<ApiState>,
    pub calls: Calls,
    pub tasks: hearth_tasks::Tasks,
    pub callbacks: CallbackMetrics,
    pub edge: hearth_signal::EdgeMeter,
}

/// Renders every metric; the media part is missing when the workers do not answer.
pub async fn render(src: &Sources) -> String {
    let Sources {
        sfu,
        api,
        calls,
        tasks,
        callbacks: cbs,
        edge,
    } = src;
    let mut out = String::new();
    edge_limits(&mut out, edge);
    let store = cbs.store.clone();
    if let Ok(Ok((queued, kept))) =
        tokio::task::spawn_blocking(move || store.callback_counts()).await
    {
        callbacks(&mut out, cbs, queued, kept);
    }
    let t = tasks.counts();
    let _ = writeln!(
        out,
        "# HELP hearth_media_tasks Media tasks by kind and state (running now; ended since start).\n# TYPE hearth_media_tasks gauge"
    );
    for kind in ["recording", "relay", "ingest"] {
        let k = t.by_kind.get(kind).copied().unwrap_or_default();
        for (state, n) in [
            ("running", k.running),
            ("finished", k.finished),
            ("failed", k.failed),
            ("refused", k.refused),
        ] {
            let _ = writeln!(
                out,
                "hearth_media_tasks{{kind=\"{kind}\",state=\"{state}\"}} {n}"
            );
        }
    }
    metric(
        &mut out,
        "hearth_media_upload_failures_total",
        "counter",
        "Uploads of recorded files that failed (each is retried).",
        t.uploads_failed,
    );
    let (up, retrying) = tasks.push_counts();
    let _ = writeln!(
        out,
        "# HELP hearth_relay_pushes CDN pushes of running relays, connected or retrying.\n# TYPE hearth_relay_pushes gauge\nhearth_relay_pushes{{state=\"connected\"}} {up}\nhearth_relay_pushes{{state=\"retrying\"}} {retrying}"
    );
    metric(
        &mut out,
        "hearth_relay_push_failures_total",
        "counter",
        "CDN pushes that failed to connect or dropped (each is retried with backoff).",
        t.push_failures,
    );
    metric(
        &mut out,
        "hearth_media_files_kept_local_total",
        "counter",
        "Recorded files that could not be stored and stay on local disk.",
        t.files_left_local,
    );
    if let Some(c) = calls.stats().await {
        metric(
            &mut out,
            "hearth_calls_in_progress",
            "gauge",
            "Calls ringing or connected.",
            c.calls as u64,
        );
        metric(
            &mut out,
            "hearth_call_logins",
            "gauge",
            "Users logged in on a calling socket.",
            c.logged_in as u64,
        );
    }
    if let Ok(m) = sfu.stats().await {
        let c = m.counters;
        metric(
            &mut out,
            "hearth_rooms",
            "gauge",
            "Live rooms.",
            m.rooms as u64,
        );
        metric(
            &mut out,
            "hearth_users",
            "gauge",
            "Users present in rooms.",
            m.users as u64,
        );
        metric(
            &mut out,
            "hearth_peers",
            "gauge",
            "WebRTC connections.",
            m.peers as u64,
        );
        metric(
            &mut out,
            "hearth_tracks",
            "gauge",
            "Published tracks.",
            m.tracks as u64,
        );
        metric(
            &mut out,
            "hearth_subscriptions",
            "gauge",
            "Track subscriptions.",
            m.subscriptions as u64,
        );
        metric(
            &mut out,
            "hearth_media_datagrams_in_total",
            "counter",
            "UDP datagrams routed to a connection.",
            c.datagrams_in,
        );
        metric(
            &mut out,
            "hearth_media_bytes_in_total",
            "counter",
            "UDP bytes routed to a connection.",
            c.bytes_in,
        );
        metric(
            &mut out,
            "hearth_media_datagrams_out_total",
            "counter",
            "UDP datagrams sent (media, RTCP, STUN, DTLS).",
            c.datagrams_out,
        );
        metric(
            &mut out,
            "hearth_media_bytes_out_total",
            "counter",
            "UDP bytes sent.",
            c.bytes_out,
        );
        metric(
            &mut out,
            "hearth_media_frames_forwarded_total",
            "counter",
            "Media frames forwarded to subscribers.",
            c.frames_forwarded,
        );
        metric(
            &mut out,
            "hearth_media_packets_forwarded_total",
            "counter",
            "RTP packets forwarded to subscribers.",
            c.packets_forwarded,
        );
        metric(
            &mut out,
            "hearth_media_queue_drops_total",
            "counter",
            "Packets not forwarded to a subscriber whose send queue was over its bound, until it resumed at a keyframe.",
            c.queue_drops,
        );
        metric(
            &mut out,
            "hearth_media_queue_skips_total",
            "counter",
            "Times a subscriber's send queue went over its bound and the subscriber was set to resume at the next keyframe.",
            c.queue_skips,
        );
        metric(
            &mut out,
            "hearth_media_send_drops_total",
            "counter",
            "Datagrams dropped because the socket buffer was full.",
            c.send_drops,
        );
        metric(
            &mut out,
            "hearth_media_send_calls_total",
            "counter",
            "sendmmsg system calls of the media workers.",
            c.send_calls,
        );
        metric(
            &mut out,
            "hearth_media_gso_datagrams_total",
            "counter",
            "Datagrams sent in UDP GSO messages (consecutive datagrams to one address, sent as one).",
            c.gso_datagrams,
        );
        metric(
            &mut out,
            "hearth_media_refused_full_total",
            "counter",
            "Joins (WHIP, WHEP, protocol clients) refused because every worker that could take them was at media.capacity_per_worker.",
            c.refused_full,
        );
        metric(
            &mut out,
            "hearth_media_packets_relayed_total",
            "counter",
            "Publishers' packets handed to another worker that holds more viewers of the room.",
            c.packets_relayed,
        );
        metric(
            &mut out,
            "hearth_media_relay_drops_total",
            "counter",
            "Packets not handed to another worker because its queue was full.",
            c.relay_drops,
        );
        metric(
            &mut out,
            "hearth_media_relay_stale_total",
            "counter",
            "Packets handed to another worker that it dropped because they reached it more than 500 ms after the home read them (it had fallen behind); its viewers resumed at a keyframe.",
            c.relay_stale,
        );
        let q = sfu.quota();
        metric(
            &mut out,
            "hearth_media_sessions",
            "gauge",
            "Media sessions (WHIP, WHEP, protocol clients) held, as the per-user and per-app limits count them.",
            q.held(),
        );
        labelled(
            &mut out,
            "hearth_media_refused_sessions_total",
            "Joins refused because the user or the application held its limit of media sessions (limits.sessions_per_user, limits.sessions_per_app).",
            "limit",
            &[
                ("user", q.refused_user.load(std::sync::atomic::Ordering::Relaxed)),
                ("app", q.refused_app.load(std::sync::atomic::Ordering::Relaxed)),
            ],
        );
        metric(
            &mut out,
            "hearth_media_tcp_connections",
            "gauge",
            "ICE-TCP connections open on the media workers (clients without UDP).",
            m.tcp_connections as u64,
        );
        metric(
            &mut out,
            "hearth_telemetry_queued",
            "gauge",
            "Domain events waiting for the recorder (largest worker queue).",
            m.events_queued as u64,
        );
        metric(
            &mut out,
            "hearth_telemetry_dropped_total",
            "counter",
            "Domain events dropped because the queue was full.",
            m.events_dropped,
        );
    }
    let _ = writeln!(
        out,
        "# HELP hearth_api_requests_total API calls by action and outcome (OK or the error code)."
    );
    let _ = writeln!(out, "# TYPE hearth_api_requests_total counter");
    for (action, code, n) in api.metrics.snapshot() {
        let _ = writeln!(
            out,
            "hearth_api_requests_total{{action=\"{action}\",code=\"{code}\"}} {n}"
        );
    }
    out
}
