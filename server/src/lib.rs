//! Concord's server: etcd's gRPC services and JSON gateway on one client
//! port, over `concord_core`'s service layer.
//!
//! # Layout
//! - [`config`]: flags (etcd's names), `CONCORD_*` environment variables.
//! - `grpc`: one file per etcd gRPC service (decode, call core, encode).
//! - [`gateway`]: the JSON gateway, `/health`, `/version`.
//! - `compactor`: auto-compaction.
//!
//! [`run`] starts the member and serves until the shutdown future resolves.

mod compactor;
pub mod config;
pub mod gateway;
mod grpc;
pub mod pb;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::serve::ListenerExt;
use concord_core::raft::{Node, NodeConfig, NodeError};
use concord_core::service::{EtcdService, ServiceConfig};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use config::{CompactionMode, Config, ConfigError};

/// Why the server could not start or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A flag value is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The member's data could not be opened, or its write path failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A listen address could not be bound.
    #[error("cannot listen on {url}: {source}")]
    Listen {
        /// The URL from the flags.
        url: String,
        /// Why.
        source: std::io::Error,
    },
    /// The write path failed while serving.
    #[error("write path failed: {0}")]
    Fatal(String),
}

/// Sets up logging to stderr with `filter` (tracing's `EnvFilter` syntax).
pub fn init_tracing(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new().allow_methods(Any).allow_headers(Any);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

async fn bind(url: &str) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let (host, port) = config::host_port(url)?;
    let listen_err = |source| ServerError::Listen {
        url: url.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(listen_err)?;
    let addr = listener.local_addr().map_err(listen_err)?;
    Ok((listener, addr))
}

/// Revokes expired leases, twice a second (this member decides expiry).
async fn expire_leases(svc: Arc<EtcdService>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let n = svc.expire_leases().await;
        if n > 0 {
            tracing::debug!(revoked = n, "expired leases revoked");
        }
    }
}

/// Starts the member described by `cfg` and serves clients until `shutdown`
/// resolves; then stops accepting, finishes queued writes and checkpoints.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
    let retention = match (cfg.auto_compaction_mode, cfg.auto_compaction_retention.trim()) {
        (_, "0") | (_, "") => None,
        (CompactionMode::Periodic, r) => Some(compactor::Retention::Periodic(config::parse_retention(r)?)),
        (CompactionMode::Revision, r) => Some(compactor::Retention::Revision(
            r.parse().map_err(|_| ConfigError::Retention(r.to_string()))?,
        )),
    };
    let node_cfg = NodeConfig {
        progress_interval: config::parse_duration(&cfg.experimental_watch_progress_notify_interval)?,
        max_response_bytes: cfg.max_request_bytes,
        backend_cache_bytes: cfg.backend_cache_bytes,
    };
    let data_dir = cfg.data_dir();
    let node = tokio::task::spawn_blocking(move || Node::start(&data_dir, node_cfg))
        .await
        .expect("start-up does not panic")?;
    let mut fatal = node.fatal();
    let svc = Arc::new(EtcdService::new(
        node,
        ServiceConfig {
            name: cfg.name.clone(),
            peer_urls: cfg.initial_advertise_peer_urls.clone(),
            client_urls: cfg.advertise_client_urls.clone(),
            max_txn_ops: cfg.max_txn_ops,
            max_request_bytes: cfg.max_request_bytes,
            quota_backend_bytes: cfg.quota_bytes(),
        },
    ));

    let app = gateway::router(Arc::clone(&svc))
        .layer(cors_layer(&cfg.cors))
        .merge(grpc::routes(Arc::clone(&svc)).into_axum_router());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for url in &cfg.listen_client_urls {
        let (listener, addr) = bind(url).await?;
        tracing::info!(%addr, "serving clients (gRPC and HTTP)");
        let app = app.clone();
        let mut stop = stop_rx.clone();
        servers.spawn(async move {
            // Small answers must not wait for the peer's delayed ACK.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        });
    }
    let compactor = retention.map(|r| tokio::spawn(compactor::run(Arc::clone(&svc), r)));
    let expiry = tokio::spawn(expire_leases(Arc::clone(&svc)));
    tracing::info!(name = %cfg.name, data_dir = %cfg.data_dir().display(), "concord is ready");

    let failure = tokio::select! {
        () = shutdown => None,
        r = fatal.wait_for(Option::is_some) => r.ok().and_then(|v| v.clone()),
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if let Some(c) = compactor {
        c.abort();
    }
    expiry.abort();
    // Give open connections a moment to finish, then go regardless.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    svc.node().stop().await;
    match failure {
        Some(reason) => Err(ServerError::Fatal(reason)),
        None => Ok(()),
    }
}
