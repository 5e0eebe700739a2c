//! Concord's server: etcd's gRPC services and JSON gateway on one client
//! port, over `concord_core`'s service layer.
//!
//! # Layout
//! - [`config`]: flags (etcd's names), `CONCORD_*` environment variables;
//!   [`settings`]: the same, parsed and checked into typed values;
//!   [`listen`]: the sockets served, bound before the member starts.
//! - `grpc`: one file per etcd gRPC service (decode, call core, encode).
//! - [`gateway`]: the JSON gateway, `/health`, `/version`.
//! - `compactor`: auto-compaction.
//! - [`tls`]: rustls set-up from the TLS flags; [`peer`]: what a request
//!   knows of its connection (address, verified certificate name).
//!
//! [`run`] starts the member and serves until the shutdown future resolves;
//! [`serve_member`] does the same from [`Settings`] and sockets bound by
//! the caller (an embedded server).

mod compactor;
pub mod config;
pub mod config_file;
pub mod etcd_flags;
pub mod gateway;
mod grpc;
mod grpc_metrics;
mod h2fix;
mod health;
pub mod listen;
mod log_format;
mod metrics;
pub mod pb;
pub mod peer;
pub mod replication;
pub mod settings;
pub mod snapshot;
pub mod tls;
mod v2;
mod websocket;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::HeaderValue;
use axum::Router;
use concord_core::auth::token::TokenError;
use concord_core::raft::{Node, NodeError, RaftConfig};
use concord_core::service::EtcdService;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use config::{Config, ConfigError};
pub use listen::{Listener, Listeners};
use peer::PeerInfo;
use settings::Http2Settings;
pub use settings::Settings;
use tls::TlsError;

/// Entry points for the fuzz targets in `fuzz/` (not an API).
#[doc(hidden)]
pub mod fuzzing {
    /// The client port's HTTP/2 wrapper over any bytes.
    pub fn h2fix(data: &[u8], preface: bool) {
        crate::h2fix::fuzz(data, preface);
    }

    /// The JSON gateway's request decoding over any body.
    pub fn gateway_decode(body: &[u8]) {
        use concord_core::api::etcdserverpb::{
            AuthenticateRequest, LeaseGrantRequest, PutRequest, RangeRequest, TxnRequest, WatchRequest,
        };
        let _ = crate::gateway::decode::<RangeRequest>(body);
        let _ = crate::gateway::decode::<PutRequest>(body);
        let _ = crate::gateway::decode::<TxnRequest>(body);
        let _ = crate::gateway::decode::<WatchRequest>(body);
        let _ = crate::gateway::decode::<LeaseGrantRequest>(body);
        let _ = crate::gateway::decode::<AuthenticateRequest>(body);
    }
}

/// Why the server could not start or stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A flag value is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The start-up corruption check found this member's data differs
    /// from a peer's (the CORRUPT alarm is raised).
    #[error("{0}")]
    Inconsistent(concord_core::service::Mismatch),
    /// The auth token settings are wrong.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The TLS settings are wrong.
    #[error(transparent)]
    Tls(#[from] TlsError),
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

/// Logging as etcd's flags ask: `--log-level` (tracing's filter syntax),
/// `--log-format` (`json` lines, or text: `console`/`text`), `--log-outputs`
/// (`stderr`, `stdout`, `default` and `systemd/journal` meaning stderr, or
/// files, appended to; several at once).
pub fn init_logging(filter: &str, format: &str, outputs: &[String]) -> Result<(), std::io::Error> {
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let mut writer: Option<BoxMakeWriter> = None;
    for out in outputs.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        let next = match out {
            "stderr" | "default" | "systemd/journal" => BoxMakeWriter::new(std::io::stderr),
            "stdout" => BoxMakeWriter::new(std::io::stdout),
            path => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                BoxMakeWriter::new(std::sync::Mutex::new(file))
            }
        };
        writer = Some(match writer {
            None => next,
            Some(w) => BoxMakeWriter::new(w.and(next)),
        });
    }
    let writer = writer.unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let _ = if format.eq_ignore_ascii_case("json") {
        builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(log_format::ZapJson)
            .try_init()
    } else {
        builder.try_init()
    };
    Ok(())
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

/// CORS as etcd's gateway answers it. The allowed headers are named:
/// browsers do not let a wildcard cover `Authorization`, which carries
/// the auth token.
fn cors_layer(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new().allow_methods(Any).allow_headers([
        axum::http::header::ACCEPT,
        axum::http::header::CONTENT_TYPE,
        axum::http::header::AUTHORIZATION,
    ]);
    if origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

/// How long a client may take to send a request's headers (from the
/// connection's start, or after its last answer on a kept-alive HTTP/1
/// connection).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections one member serves on its client ports at once: what its
/// open-file limit allows, less a quarter (at least 256) kept for the log,
/// the database, peers and snapshots, so idle sockets can never starve the
/// write path of descriptors. New connections past it wait to be accepted.
fn client_connection_limit() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let soft = usize::try_from(soft).unwrap_or(usize::MAX).min(1 << 24);
    soft.saturating_sub((soft / 4).max(256)).max(32)
}

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2, so gRPC and the
/// gateway share it), over TLS with `tls`, until `stop` turns true; each
/// request carries its connection's [`PeerInfo`]. `h2` tunes HTTP/2 (the
/// client port), else hyper's defaults hold.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<(Arc<rustls::ServerConfig>, bool)>,
    h2: Option<Http2Settings>,
    limit: Option<Arc<tokio::sync::Semaphore>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A client gets HEADER_TIMEOUT to send each request's headers (hyper's
    // default once it has a timer), so sockets that connect and send
    // nothing, or dribble headers, do not stay open.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    if let Some(h2) = h2 {
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(h2.max_concurrent_streams)
            .keep_alive_interval(h2.keepalive_interval)
            .keep_alive_timeout(h2.keepalive_timeout);
    }
    let cert_users = tls.as_ref().is_some_and(|(_, client_cert_auth)| *client_cert_auth);
    let acceptor = tls.map(|(cfg, _)| tokio_rustls::TlsAcceptor::from(cfg));
    let mut warned: Option<std::time::Instant> = None;
    loop {
        let permit = match &limit {
            Some(sem) => {
                if sem.available_permits() == 0 && warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    warned = Some(std::time::Instant::now());
                    tracing::warn!("client connection limit reached: new connections wait until one closes");
                }
                tokio::select! {
                    p = Arc::clone(sem).acquire_owned() => p.ok(),
                    () = async {
                        let _ = stop.wait_for(|s| *s).await;
                    } => break,
                }
            }
            None => None,
        };
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async {
                let _ = stop.wait_for(|s| *s).await;
            } => break,
        };
        // Small answers must not wait for the peer's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let (app, builder, acceptor, watcher) = (app.clone(), builder.clone(), acceptor.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _permit = permit;
            // A socket that sends nothing is not kept (hyper's header
            // timeout starts only once the protocol is known).
            if tokio::time::timeout(HEADER_TIMEOUT, tcp.readable()).await.is_err() {
                return tracing::debug!(remote_addr = %addr, "connection closed: nothing sent");
            }
            let Some(acceptor) = acceptor else {
                let svc = connection_service(app, PeerInfo { addr, cert_user: None });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(h2fix::AuthorityFix::new(tcp)), svc);
                let _ = watcher.watch(conn.into_owned()).await;
                return;
            };
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let hint = tls::handshake_hint(&e);
                    return tracing::warn!(remote_addr = %addr, error = %e, hint, "rejected connection (TLS handshake failed)");
                }
                Err(_) => return tracing::warn!(remote_addr = %addr, "rejected connection (TLS handshake timed out)"),
            };
            let cert_user = if cert_users {
                stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(tls::common_name)
            } else {
                None
            };
            let svc = connection_service(app, PeerInfo { addr, cert_user });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(h2fix::AuthorityFix::new(stream)), svc);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    // Give open connections a moment to finish, then go regardless.
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// The router as one connection's service, tagging each request with `peer`.
fn connection_service(
    app: Router,
    peer: PeerInfo,
) -> hyper_util::service::TowerToHyperService<
    impl tower::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future = impl Send,
        > + Clone,
> {
    let svc = tower::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer.clone());
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    hyper_util::service::TowerToHyperService::new(svc)
}

/// Revokes expired leases and removes expired v2 keys, twice a second
/// (when this member leads, it decides expiry).
async fn expire_leases(svc: Arc<EtcdService>, v2_info: Arc<v2::V2Info>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let n = svc.expire_leases().await;
        if n > 0 {
            tracing::debug!(revoked = n, "expired leases revoked");
        }
        let n = svc.expire_v2().await;
        if n > 0 {
            tracing::debug!(expired = n, "expired v2 keys removed");
        }
        v2_info.note_leader(&svc);
    }
}

/// Starts the member described by `cfg` and serves clients until `shutdown`
/// resolves; then stops accepting, finishes queued writes and checkpoints.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServerError> {
    run_reporting(cfg, shutdown, |_| ()).await
}

/// Stops serving and stops the member (start-up failed after the
/// servers started).
async fn stop_after_failed_start(svc: &EtcdService, servers: &mut tokio::task::JoinSet<()>) {
    let _ = tokio::time::timeout(Duration::from_secs(6), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    svc.node().stop().await;
}

/// [`run`], calling `ready` with the client addresses bound once the member
/// serves. A client URL with port 0 is bound to a free port, and an
/// advertised client URL equal to it becomes the address bound (how an
/// embedded server, e.g. in a test, gets a port nobody else has).
pub async fn run_reporting(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Vec<SocketAddr>) + Send,
) -> Result<(), ServerError> {
    let mut settings = Settings::from_config(&cfg)?;
    let listeners = Listeners::bind(&mut settings)?;
    serve_member(settings, listeners, shutdown, ready).await
}

/// Starts a member from typed `settings` on sockets already bound, calls
/// `ready` with the client addresses once it serves, and serves until
/// `shutdown` resolves (or the write path fails); then stops accepting,
/// finishes queued writes and checkpoints.
pub async fn serve_member(
    settings: Settings,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Vec<SocketAddr>) + Send,
) -> Result<(), ServerError> {
    if settings.extensive_metrics {
        grpc_metrics::measure_latency();
    }
    if !settings.node.fsync {
        tracing::warn!(
            "--unsafe-no-fsync: writes are acknowledged before they are on disk; a machine crash can lose them"
        );
    }
    let peer_cell: replication::SvcCell = Arc::new(OnceLock::new());
    let (node, forwarder) = start_node(&settings, &peer_cell).await?;
    let mut fatal = node.fatal();
    let Settings {
        name,
        data_dir,
        h2,
        retention,
        client_tls,
        client_cert_auth,
        cluster,
        service,
        tokens,
        initial_corrupt_check,
        corrupt_check,
        cors,
        enable_v2,
        ..
    } = settings;
    let svc = Arc::new(EtcdService::with_tokens(node, service, tokens));

    let mut servers = tokio::task::JoinSet::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let (Some(cluster), Some(forwarder)) = (&cluster, forwarder) {
        let _ = peer_cell.set(Arc::downgrade(&svc));
        svc.set_forwarder(forwarder);
        let peer_app = replication::router(Arc::clone(&svc));
        for l in listeners.peer {
            let tls = match (l.is_tls(), &cluster.peer_server_tls) {
                (true, Some(t)) => Some((Arc::clone(t), cluster.peer_client_cert_required)),
                (true, None) => return Err(ConfigError::TlsNeeded(l.url).into()),
                (false, _) => None,
            };
            let (listener, addr) = l.into_tokio()?;
            tracing::info!(%addr, tls = tls.is_some(), "serving peers");
            servers.spawn(serve(listener, peer_app.clone(), tls, None, None, stop_rx.clone()));
        }
    }

    let v2_info = v2::V2Info::new();
    let app = gateway::router(Arc::clone(&svc), &cors)
        .merge(v2::routes(Arc::clone(&svc), enable_v2, Arc::clone(&v2_info)).with_state(Arc::clone(&svc)))
        .layer(cors_layer(&cors))
        .merge(
            grpc::routes(Arc::clone(&svc))
                .into_axum_router()
                .layer(axum::middleware::from_fn(grpc_metrics::count)),
        )
        .fallback(gateway::not_found);
    let client_side_tls = |l: &listen::Listener, client_cert_auth: bool| match (l.is_tls(), &client_tls) {
        (true, Some(t)) => Ok(Some((Arc::clone(t), client_cert_auth))),
        (true, None) => Err(ServerError::from(ConfigError::TlsNeeded(l.url.clone()))),
        (false, _) => Ok(None),
    };

    for l in listeners.metrics {
        let tls = client_side_tls(&l, false)?;
        let (listener, addr) = l.into_tokio()?;
        tracing::info!(%addr, tls = tls.is_some(), "serving metrics and probes (/metrics, /health, /livez, /readyz)");
        servers.spawn(serve(
            listener,
            gateway::probes_router(Arc::clone(&svc)),
            tls,
            None,
            None,
            stop_rx.clone(),
        ));
    }

    let mut bound = Vec::new();
    let max_conns = client_connection_limit();
    tracing::debug!(max_conns, "client connections served at once");
    let conn_limit = Arc::new(tokio::sync::Semaphore::new(max_conns));
    for l in listeners.client {
        let tls = client_side_tls(&l, client_cert_auth)?;
        let (listener, addr) = l.into_tokio()?;
        tracing::info!(%addr, tls = tls.is_some(), "serving clients (gRPC and HTTP)");
        servers.spawn(serve(
            listener,
            app.clone(),
            tls,
            Some(h2),
            Some(Arc::clone(&conn_limit)),
            stop_rx.clone(),
        ));
        bound.push(addr);
    }
    let replicated = cluster.is_some();
    if initial_corrupt_check && replicated {
        if let Err(m) = svc.check_initial_hash().await {
            let _ = stop_tx.send(true);
            stop_after_failed_start(&svc, &mut servers).await;
            return Err(ServerError::Inconsistent(m));
        }
    }
    let checker = (replicated && !corrupt_check.is_zero()).then(|| {
        let svc = Arc::clone(&svc);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(corrupt_check);
            every.tick().await;
            loop {
                every.tick().await;
                svc.check_peer_hashes().await;
            }
        })
    });
    ready(bound);
    let compactor = retention.map(|r| tokio::spawn(compactor::run(Arc::clone(&svc), r)));
    let expiry = tokio::spawn(expire_leases(Arc::clone(&svc), Arc::clone(&v2_info)));
    tracing::info!(name = %name, data_dir = %data_dir.display(), "concord is ready");

    let failure = tokio::select! {
        () = shutdown => None,
        // A write path gone without a word (its sender dropped) is a
        // failure too: the process must not exit 0.
        r = fatal.wait_for(Option::is_some) => Some(r.map_or_else(|_| "the write path stopped".to_string(), |v| v.clone().unwrap_or_default())),
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if let Some(c) = compactor {
        c.abort();
    }
    if let Some(c) = checker {
        c.abort();
    }
    expiry.abort();
    let _ = tokio::time::timeout(Duration::from_secs(6), async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    svc.node().stop().await;
    match failure {
        Some(reason) => Err(ServerError::Fatal(reason)),
        None => Ok(()),
    }
}

/// Opens the member's data and starts its write path: the local log for a
/// single member; for a cluster member raft, after learning its ID and
/// state from a running member when it joins one. Returns the transport
/// followers forward through (cluster members only).
async fn start_node(
    settings: &Settings,
    peer_cell: &replication::SvcCell,
) -> Result<(Node, Option<Arc<replication::HttpTransport>>), ServerError> {
    let data_dir = settings.data_dir.clone();
    let node_cfg = settings.node.clone();
    let Some(cluster) = &settings.cluster else {
        let node = tokio::task::spawn_blocking(move || Node::start(&data_dir, node_cfg))
            .await
            .expect("start-up does not panic")?;
        return Ok((node, None));
    };
    let mut peer_urls: HashMap<u64, String> = cluster.members.iter().map(|m| (m.id, m.peer_urls[0].clone())).collect();
    let client = replication::PeerClient::new(cluster.peer_client_tls.clone());
    let (mut id, mut cluster_id) = (cluster.me.id, cluster.cluster_id);
    let (mut join, mut join_snapshot) = (None, None);
    if cluster.join_existing {
        // Added with MemberAdd: learn our ID and the state from a member.
        let mine = &cluster.advertise_peer_urls;
        let others: Vec<String> = cluster
            .members
            .iter()
            .flat_map(|m| m.peer_urls.iter().cloned())
            .filter(|u| !mine.contains(u))
            .collect();
        let (bytes, path) = replication::fetch_join(
            &client,
            &others,
            mine,
            &settings.data_dir.join("join"),
            settings.service.quota_backend_bytes,
        )
        .await
        .map_err(|e| ConfigError::InitialCluster(format!("cannot join the running cluster: {e}")))?;
        let info = concord_core::api::concordpb::JoinInfo::decode(bytes.as_slice())
            .map_err(|e| ConfigError::InitialCluster(format!("join answer: {e}")))?;
        join_snapshot = Some(path);
        (id, cluster_id) = (info.member_id, info.cluster_id);
        peer_urls.clear();
        for m in info.snapshot.iter().flat_map(|s| s.members.iter()) {
            if let Some(u) = m.peer_urls.first() {
                peer_urls.insert(m.id, u.clone());
            }
        }
        join = Some(info);
    }
    peer_urls.remove(&id);
    let transport = Arc::new(replication::HttpTransport::new(
        replication::Me {
            id,
            cluster: cluster_id,
        },
        &peer_urls,
        client,
        Arc::clone(peer_cell),
    ));
    let raft_cfg = RaftConfig {
        id,
        cluster_id,
        voters: cluster.members.iter().map(|m| m.id).collect(),
        heartbeat: cluster.heartbeat,
        election_ticks: cluster.election_ticks,
        pre_vote: cluster.pre_vote,
        snapshot_count: cluster.snapshot_count,
        transport: Arc::clone(&transport) as _,
        strict_reconfig_check: cluster.strict_reconfig_check,
        attrs: concord_core::api::concordpb::Member {
            id,
            name: settings.name.clone(),
            peer_urls: cluster.advertise_peer_urls.clone(),
            client_urls: settings.service.client_urls.clone(),
            is_learner: false,
        },
        join,
        join_snapshot,
    };
    let node = tokio::task::spawn_blocking(move || Node::start_replicated(&data_dir, node_cfg, raft_cfg))
        .await
        .expect("start-up does not panic")?;
    Ok((node, Some(transport)))
}
