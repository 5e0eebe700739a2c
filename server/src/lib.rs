//! Concord's server: etcd's gRPC services and JSON gateway on one client
//! port, over `concord_core`'s service layer.
//!
//! # Layout
//! - [`config`]: flags (etcd's names), `CONCORD_*` environment variables.
//! - `grpc`: one file per etcd gRPC service (decode, call core, encode).
//! - [`gateway`]: the JSON gateway, `/health`, `/version`.
//! - `compactor`: auto-compaction.
//! - [`tls`]: rustls set-up from the TLS flags; [`peer`]: what a request
//!   knows of its connection (address, verified certificate name).
//!
//! [`run`] starts the member and serves until the shutdown future resolves.

mod compactor;
pub mod config;
pub mod config_file;
pub mod etcd_flags;
pub mod gateway;
mod grpc;
mod grpc_metrics;
mod h2fix;
mod health;
mod log_format;
mod metrics;
pub mod pb;
pub mod peer;
pub mod replication;
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
use concord_core::auth::token::{TokenError, Tokens};
use concord_core::raft::{Node, NodeConfig, NodeError, RaftConfig};
use concord_core::service::{EtcdService, ServiceConfig};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use config::{CompactionMode, Config, ConfigError};
use peer::PeerInfo;
use tls::{TlsError, TlsFiles, TlsPolicy};

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

/// HTTP/2 settings of the client port (etcd's `--max-concurrent-streams`
/// and `--grpc-keepalive-*`).
#[derive(Clone, Copy, Debug)]
struct Http2Settings {
    max_concurrent_streams: u32,
    /// Ping a connection idle this long (`None`: never).
    keepalive_interval: Option<Duration>,
    /// Close a connection whose ping goes unanswered this long.
    keepalive_timeout: Duration,
}

impl Http2Settings {
    fn from_config(cfg: &Config) -> Result<Http2Settings, ConfigError> {
        let interval = config::parse_duration(&cfg.grpc_keepalive_interval)?;
        Ok(Http2Settings {
            max_concurrent_streams: cfg.max_concurrent_streams,
            keepalive_interval: (!interval.is_zero()).then_some(interval),
            keepalive_timeout: config::parse_duration(&cfg.grpc_keepalive_timeout)?,
        })
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

/// Which port a TLS setting is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Port {
    Client,
    Peer,
}

/// `files` as the flags give them, with a self-signed certificate made
/// for `https://` URLs when `--auto-tls` (`--peer-auto-tls`) is on and no
/// certificate is given.
fn tls_files(cfg: &Config, port: Port, mut files: TlsFiles) -> Result<TlsFiles, ServerError> {
    let (auto, urls, dir) = match port {
        Port::Client => (
            cfg.auto_tls,
            [&cfg.listen_client_urls[..], &cfg.advertise_client_urls[..]].concat(),
            "client",
        ),
        Port::Peer => (
            cfg.peer_auto_tls,
            [&cfg.listen_peer_urls[..], &cfg.initial_advertise_peer_urls[..]].concat(),
            "peer",
        ),
    };
    if !auto || !urls.iter().any(|u| u.starts_with("https://")) {
        return Ok(files);
    }
    if files.is_set() {
        tracing::warn!(
            port = dir,
            "auto TLS is on but certificate files are given: using the files"
        );
        return Ok(files);
    }
    let mut hosts = vec!["localhost".to_string()];
    for u in &urls {
        let (host, _) = config::host_port(u)?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let (cert, key) = tls::self_signed(
        &cfg.data_dir().join("fixtures").join(dir),
        &hosts,
        cfg.self_signed_cert_validity,
    )?;
    files.cert = Some(cert);
    files.key = Some(key);
    Ok(files)
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
    mut cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(Vec<SocketAddr>) + Send,
) -> Result<(), ServerError> {
    let h2 = Http2Settings::from_config(&cfg)?;
    if cfg.metrics == config::MetricsLevel::Extensive {
        grpc_metrics::measure_latency();
    }
    let mut client_listeners = Vec::new();
    for url in cfg.listen_client_urls.clone() {
        let (listener, addr) = bind(&url).await?;
        if config::host_port(&url)?.1 == 0 {
            let scheme = if url.starts_with("https://") { "https" } else { "http" };
            let bound = format!("{scheme}://{addr}");
            for adv in cfg.advertise_client_urls.iter_mut().filter(|a| **a == url) {
                adv.clone_from(&bound);
            }
        }
        client_listeners.push((url, listener, addr));
    }
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
        fsync: !cfg.unsafe_no_fsync,
    };
    if cfg.unsafe_no_fsync {
        tracing::warn!(
            "--unsafe-no-fsync: writes are acknowledged before they are on disk; a machine crash can lose them"
        );
    }
    let (tls_policy, tls_notes) = TlsPolicy::new(&cfg.tls_min_version, &cfg.tls_max_version, &cfg.cipher_suites)?;
    for note in tls_notes {
        tracing::warn!("{note}");
    }
    let client_files = tls_files(
        &cfg,
        Port::Client,
        TlsFiles {
            cert: cfg.cert_file.clone(),
            key: cfg.key_file.clone(),
            trusted_ca: cfg.trusted_ca_file.clone(),
            client_cert_auth: cfg.client_cert_auth,
            crl: cfg.client_crl_file.clone().filter(|p| !p.as_os_str().is_empty()),
            allowed_cns: Vec::new(),
            allowed_hostname: cfg.client_cert_allowed_hostname.clone().filter(|h| !h.is_empty()),
        },
    )?;
    let client_tls = if client_files.is_set() {
        Some(client_files.server_config(&tls_policy)?)
    } else {
        None
    };
    if cfg.peer_client_cert_auth.is_none() && cfg.peer_client_cert_required() {
        tracing::info!(
            "peers must present a certificate signed by --peer-trusted-ca-file \
             (--peer-client-cert-auth=false accepts peers without one)"
        );
    }
    let peer_files = tls_files(
        &cfg,
        Port::Peer,
        TlsFiles {
            cert: cfg.peer_cert_file.clone(),
            key: cfg.peer_key_file.clone(),
            trusted_ca: cfg.peer_trusted_ca_file.clone(),
            client_cert_auth: cfg.peer_client_cert_required(),
            crl: cfg.peer_crl_file.clone().filter(|p| !p.as_os_str().is_empty()),
            allowed_cns: cfg
                .peer_cert_allowed_cn
                .iter()
                .flat_map(|l| l.split(','))
                .map(str::trim)
                .filter(|cn| !cn.is_empty())
                .map(str::to_string)
                .collect(),
            allowed_hostname: cfg.peer_cert_allowed_hostname.clone().filter(|h| !h.is_empty()),
        },
    )?;
    let peer_tls = if peer_files.is_set() {
        Some(peer_files.server_config(&tls_policy)?)
    } else {
        None
    };
    let (members, cluster_id) = config::parse_initial_cluster(&cfg.initial_cluster, &cfg.initial_cluster_token)?;
    let data_dir = cfg.data_dir();
    // With --initial-cluster, writes go through raft (even with one member,
    // so it can grow); without, a single member keeps its local
    // group-committed log.
    let replicated = !members.is_empty();
    let peer_cell: replication::SvcCell = Arc::new(OnceLock::new());
    let mut peer_urls = HashMap::new();
    let mut forwarder: Option<Arc<replication::HttpTransport>> = None;
    let node = if replicated {
        let me = members
            .iter()
            .find(|m| m.name == cfg.name)
            .ok_or_else(|| ConfigError::InitialCluster(format!("no member named {:?}", cfg.name)))?
            .clone();
        for m in &members {
            peer_urls.insert(m.id, m.peer_urls[0].clone());
        }
        let uses_tls = members
            .iter()
            .any(|m| m.peer_urls.iter().any(|u| u.starts_with("https://")));
        let client_tls = if uses_tls {
            Some(peer_files.client_config(&tls_policy, cfg.peer_auto_tls)?)
        } else {
            None
        };
        let client = replication::PeerClient::new(client_tls);
        let (mut id, mut cluster) = (me.id, cluster_id);
        let mut join = None;
        if cfg.initial_cluster_state == config::ClusterState::Existing && !data_dir.join("db").exists() {
            // Added with MemberAdd: learn our ID and the state from a member.
            let mine = &cfg.initial_advertise_peer_urls;
            let others: Vec<String> = members
                .iter()
                .flat_map(|m| m.peer_urls.iter().cloned())
                .filter(|u| !mine.contains(u))
                .collect();
            let bytes = replication::fetch_join(&client, &others, mine)
                .await
                .map_err(|e| ConfigError::InitialCluster(format!("cannot join the running cluster: {e}")))?;
            let info = concord_core::api::concordpb::JoinInfo::decode(bytes.as_slice())
                .map_err(|e| ConfigError::InitialCluster(format!("join answer: {e}")))?;
            (id, cluster) = (info.member_id, info.cluster_id);
            peer_urls.clear();
            for m in info.snapshot.iter().flat_map(|s| s.members.iter()) {
                if let Some(u) = m.peer_urls.first() {
                    peer_urls.insert(m.id, u.clone());
                }
            }
            join = Some(info);
        }
        let mut others = peer_urls.clone();
        others.remove(&id);
        let transport = Arc::new(replication::HttpTransport::new(
            replication::Me { id, cluster },
            &others,
            client,
            Arc::clone(&peer_cell),
        ));
        forwarder = Some(Arc::clone(&transport));
        let raft_cfg = RaftConfig {
            id,
            cluster_id: cluster,
            voters: members.iter().map(|m| m.id).collect(),
            heartbeat: Duration::from_millis(cfg.heartbeat_interval.max(1)),
            election_ticks: (cfg.election_timeout / cfg.heartbeat_interval.max(1)).max(2) as usize,
            pre_vote: cfg.pre_vote,
            snapshot_count: cfg.snapshot_count,
            transport,
            strict_reconfig_check: cfg.strict_reconfig_check,
            attrs: concord_core::api::concordpb::Member {
                id,
                name: cfg.name.clone(),
                peer_urls: cfg.initial_advertise_peer_urls.clone(),
                client_urls: cfg.advertise_client_urls.clone(),
                is_learner: false,
            },
            join,
        };
        tokio::task::spawn_blocking(move || Node::start_replicated(&data_dir, node_cfg, raft_cfg))
            .await
            .expect("start-up does not panic")?
    } else {
        tokio::task::spawn_blocking(move || Node::start(&data_dir, node_cfg))
            .await
            .expect("start-up does not panic")?
    };
    let mut fatal = node.fatal();
    let tokens = Tokens::from_spec(&cfg.auth_token, Duration::from_secs(cfg.auth_token_ttl))?;
    let svc = Arc::new(EtcdService::with_tokens(
        node,
        ServiceConfig {
            name: cfg.name.clone(),
            peer_urls: cfg.initial_advertise_peer_urls.clone(),
            client_urls: cfg.advertise_client_urls.clone(),
            max_txn_ops: cfg.max_txn_ops,
            max_request_bytes: cfg.max_request_bytes,
            quota_backend_bytes: cfg.quota_bytes(),
            bcrypt_cost: cfg.bcrypt_cost,
            max_leases: cfg.max_leases,
        },
        tokens,
    ));

    let mut servers = tokio::task::JoinSet::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if replicated {
        let _ = peer_cell.set(Arc::downgrade(&svc));
        if let Some(f) = forwarder.clone() {
            svc.set_forwarder(f);
        }
        let peer_app = replication::router(Arc::clone(&svc));
        for url in &cfg.listen_peer_urls {
            let tls = if url.starts_with("https://") {
                Some((
                    peer_tls.clone().ok_or(ConfigError::TlsNeeded(url.clone()))?,
                    cfg.peer_client_cert_required(),
                ))
            } else {
                None
            };
            let (listener, addr) = bind(url).await?;
            tracing::info!(%addr, tls = tls.is_some(), "serving peers");
            servers.spawn(serve(listener, peer_app.clone(), tls, None, None, stop_rx.clone()));
        }
    }

    let v2_info = v2::V2Info::new();
    let app = gateway::router(Arc::clone(&svc), &cfg.cors)
        .merge(v2::routes(Arc::clone(&svc), cfg.enable_v2, Arc::clone(&v2_info)).with_state(Arc::clone(&svc)))
        .layer(cors_layer(&cfg.cors))
        .merge(
            grpc::routes(Arc::clone(&svc))
                .into_axum_router()
                .layer(axum::middleware::from_fn(grpc_metrics::count)),
        )
        .fallback(gateway::not_found);

    for url in &cfg.listen_metrics_urls {
        let tls = if url.starts_with("https://") {
            Some((client_tls.clone().ok_or(ConfigError::TlsNeeded(url.clone()))?, false))
        } else {
            None
        };
        let (listener, addr) = bind(url).await?;
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
    for (url, listener, addr) in client_listeners {
        let tls = if url.starts_with("https://") {
            Some((
                client_tls.clone().ok_or(ConfigError::TlsNeeded(url.clone()))?,
                cfg.client_cert_auth,
            ))
        } else {
            None
        };
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
    if cfg.experimental_initial_corrupt_check && replicated {
        if let Err(m) = svc.check_initial_hash().await {
            let _ = stop_tx.send(true);
            stop_after_failed_start(&svc, &mut servers).await;
            return Err(ServerError::Inconsistent(m));
        }
    }
    let corrupt_check = config::parse_duration(&cfg.experimental_corrupt_check_time)?;
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
    tracing::info!(name = %cfg.name, data_dir = %cfg.data_dir().display(), "concord is ready");

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
