//! `livescope serve`: opens the store, binds the listeners and runs until interrupted.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::config::Config;
use crate::conn_limit::ConnLimiter;
use crate::hls::Recordings;

/// How often live broadcasts are marked alive in the store: after a crash they end at most
/// this long after they really stopped.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Expired sessions and old notifications are deleted every hour.
const PRUNE_EVERY_BEATS: u64 = 3600 / 5;
/// Notifications are kept this long.
const NOTIFICATIONS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

pub async fn run(config: Config) -> anyhow::Result<()> {
    match crate::conn_limit::raise_open_files_limit() {
        Ok(limit) => tracing::info!("open files limit: {limit}"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    let tls = config.tls.as_ref().map(crate::tls::Tls::load).transpose()?;
    let rtmp = TcpListener::bind(config.rtmp)
        .await
        .with_context(|| format!("binding RTMP on {}", config.rtmp))?;
    let http = TcpListener::bind(config.http)
        .await
        .with_context(|| format!("binding HTTP on {}", config.http))?;
    let rtmps = match &tls {
        Some(_) => Some(
            TcpListener::bind(config.rtmps)
                .await
                .with_context(|| format!("binding RTMPS on {}", config.rtmps))?,
        ),
        None => None,
    };
    let recordings = config
        .record
        .then(|| Arc::new(Recordings::new(config.data.join("recordings"), config.retention)));
    let bus = match &config.nats {
        Some(url) => crate::bus::Bus::connect(url, &config.node).await?,
        None => {
            if config.database.is_some() {
                tracing::warn!(
                    "no --nats: nodes sharing this database share its state, but not streams, rooms, notices or access changes"
                );
            }
            crate::bus::Bus::single()
        }
    };
    let mut app = App::open(config, rtmp.local_addr()?, http.local_addr()?, recordings.clone(), bus)?;
    app.rtmps_addr = rtmps.as_ref().map(TcpListener::local_addr).transpose()?;
    let app = Arc::new(app);
    crate::cluster::start(crate::cluster::Parts {
        node: app.config.node.clone(),
        bus: app.bus.clone(),
        admission: app.admission.clone(),
        notifier: app.notifier.clone(),
        elsewhere: app.elsewhere.clone(),
        players: app.players.clone(),
        rooms: app.rooms.clone(),
    })
    .await?;
    // Recordings and traces are kept as long as each other: swept at start, then hourly.
    let (recordings, traces, retention) = (recordings, app.traces.clone(), app.config.retention);
    tokio::spawn(async move {
        loop {
            if let Some(recordings) = &recordings {
                recordings.sweep().await;
            }
            traces.sweep(retention).await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    let beat = app.clone();
    tokio::spawn(async move {
        for beats in 0u64.. {
            if beats.is_multiple_of(PRUNE_EVERY_BEATS)
                && let Err(e) = beat.store.call(|db| db.prune(NOTIFICATIONS_KEPT)).await
            {
                tracing::warn!("store pruning: {e:#}");
            }
            tokio::time::sleep(HEARTBEAT).await;
            // Its own publishers (not streams relayed from other nodes) and all its players.
            let publishers = beat.metrics.broadcasts_live.get().max(0) as usize;
            let viewers = beat.players.here().values().sum();
            if let Err(e) = beat.store.call(move |db| db.beat(publishers, viewers)).await {
                tracing::warn!("store heartbeat: {e:#}");
            }
        }
    });
    let per_address = app.config.max_connections_per_address;
    let rtmp_limiter = ConnLimiter::new("RTMP", app.config.max_rtmp_connections, per_address);
    let http_limiter = ConnLimiter::new("HTTP", app.config.max_http_connections, per_address);
    // One line on stdout for scripts and tests that start the server on port 0.
    let scheme = if tls.is_some() { "https" } else { "http" };
    match &rtmps {
        Some(l) => println!(
            "livescope ready rtmp={} http={} scheme={scheme} rtmps={}",
            app.rtmp_addr,
            app.http_addr,
            l.local_addr()?
        ),
        None => println!("livescope ready rtmp={} http={}", app.rtmp_addr, app.http_addr),
    }
    tracing::info!(
        "RTMP on rtmp://{}/live, HTTP on {scheme}://{}",
        app.rtmp_addr,
        app.http_addr
    );
    tokio::spawn(crate::rtmp_server::serve(app.clone(), rtmp, rtmp_limiter.clone(), None));
    if let (Some(listener), Some(tls)) = (rtmps, &tls) {
        tracing::info!("RTMPS on rtmps://{}/live", listener.local_addr()?);
        let acceptor = TlsAcceptor::from(tls.rtmps.clone());
        tokio::spawn(crate::rtmp_server::serve(
            app.clone(),
            listener,
            rtmp_limiter,
            Some(acceptor),
        ));
    }
    let https = tls.map(|tls| TlsAcceptor::from(tls.https));
    let nodelay = app.config.tcp_nodelay;
    crate::http_server::serve(http, crate::http::router(app), http_limiter, https, nodelay, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
