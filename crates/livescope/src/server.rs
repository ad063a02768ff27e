//! `livescope serve`: opens the store, binds the listeners and runs until interrupted.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use std::time::Duration;

use crate::app::App;
use crate::config::Config;
use crate::hls::Recordings;

/// How often live broadcasts are marked alive in the store: after a crash they end at most
/// this long after they really stopped.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Expired sessions and old notifications are deleted every hour.
const PRUNE_EVERY_BEATS: u64 = 3600 / 5;
/// Notifications are kept this long.
const NOTIFICATIONS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

pub async fn run(config: Config) -> anyhow::Result<()> {
    let rtmp = TcpListener::bind(config.rtmp)
        .await
        .with_context(|| format!("binding RTMP on {}", config.rtmp))?;
    let http = TcpListener::bind(config.http)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http))?;
    let recordings = config
        .record
        .then(|| Arc::new(Recordings::new(config.data.join("recordings"), config.retention)));
    if let Some(recordings) = recordings.clone() {
        tokio::spawn(async move {
            loop {
                recordings.sweep().await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
    }
    let app = Arc::new(App::open(config, rtmp.local_addr()?, http.local_addr()?, recordings)?);
    let beat = app.clone();
    tokio::spawn(async move {
        for beats in 0u64.. {
            if beats.is_multiple_of(PRUNE_EVERY_BEATS)
                && let Err(e) = beat.store.prune(NOTIFICATIONS_KEPT)
            {
                tracing::warn!("store pruning: {e:#}");
            }
            tokio::time::sleep(HEARTBEAT).await;
            if let Err(e) = beat.store.heartbeat() {
                tracing::warn!("store heartbeat: {e:#}");
            }
        }
    });
    // One line on stdout for scripts and tests that start the server on port 0.
    println!("livescope ready rtmp={} http={}", app.rtmp_addr, app.http_addr);
    tracing::info!(
        "RTMP on rtmp://{}/live, HTTP on http://{}",
        app.rtmp_addr,
        app.http_addr
    );
    tokio::spawn(crate::rtmp_server::serve(app.clone(), rtmp));
    let http = crate::peer::HttpListener {
        listener: http,
        nodelay: app.config.tcp_nodelay,
    };
    let service = crate::http::router(app).into_make_service_with_connect_info::<crate::peer::Peer>();
    axum::serve(http, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("HTTP server")
}
