//! Typed settings: the flags ([`Config`]) parsed and checked once, before
//! anything binds or starts, so [`crate::serve_member`] works with values
//! rather than strings, and an embedder can build them once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use concord_core::auth::token::Tokens;
use concord_core::raft::NodeConfig;
use concord_core::service::ServiceConfig;

use crate::compactor::Retention;
use crate::config::{self, ClusterState, CompactionMode, Config, ConfigError, InitialMember, MetricsLevel};
use crate::tls::{self, TlsFiles, TlsPolicy};
use crate::ServerError;

/// HTTP/2 settings of the client port (etcd's `--max-concurrent-streams`
/// and `--grpc-keepalive-*`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Http2Settings {
    pub(crate) max_concurrent_streams: u32,
    /// Ping a connection idle this long (`None`: never).
    pub(crate) keepalive_interval: Option<Duration>,
    /// Close a connection whose ping goes unanswered this long.
    pub(crate) keepalive_timeout: Duration,
}

/// What a member of a raft cluster needs beyond a single member's settings.
pub(crate) struct ClusterSettings {
    /// `--initial-cluster`, with the IDs derived from the token.
    pub(crate) members: Vec<InitialMember>,
    pub(crate) cluster_id: u64,
    /// This member's entry in `members`.
    pub(crate) me: InitialMember,
    /// Added with MemberAdd and not started before: learn the ID and the
    /// state from a running member.
    pub(crate) join_existing: bool,
    pub(crate) advertise_peer_urls: Vec<String>,
    pub(crate) listen_peer_urls: Vec<String>,
    /// How this member reaches peers over HTTPS (`None`: plain HTTP).
    pub(crate) peer_client_tls: Option<rustls::ClientConfig>,
    /// The peer port's TLS, and whether peers must show a certificate.
    pub(crate) peer_server_tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) peer_client_cert_required: bool,
    pub(crate) heartbeat: Duration,
    pub(crate) election_ticks: usize,
    pub(crate) pre_vote: bool,
    pub(crate) snapshot_count: u64,
    pub(crate) strict_reconfig_check: bool,
}

/// Everything [`crate::serve_member`] needs, parsed and checked.
pub struct Settings {
    pub(crate) name: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) node: NodeConfig,
    pub(crate) h2: Http2Settings,
    pub(crate) retention: Option<Retention>,
    pub(crate) listen_client_urls: Vec<String>,
    pub(crate) listen_metrics_urls: Vec<String>,
    pub(crate) client_tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) client_cert_auth: bool,
    /// `None`: a single member with its local log.
    pub(crate) cluster: Option<ClusterSettings>,
    pub(crate) service: ServiceConfig,
    pub(crate) tokens: Tokens,
    pub(crate) initial_corrupt_check: bool,
    /// How often hashes are compared with peers (zero: never).
    pub(crate) corrupt_check: Duration,
    pub(crate) cors: Vec<String>,
    pub(crate) enable_v2: bool,
    pub(crate) extensive_metrics: bool,
}

impl Settings {
    /// Parses and checks `cfg`: durations, retention, TLS files (made
    /// self-signed with `--auto-tls`), the initial cluster, the token spec.
    pub fn from_config(cfg: &Config) -> Result<Settings, ServerError> {
        let interval = config::parse_duration(&cfg.grpc_keepalive_interval)?;
        let h2 = Http2Settings {
            max_concurrent_streams: cfg.max_concurrent_streams,
            keepalive_interval: (!interval.is_zero()).then_some(interval),
            keepalive_timeout: config::parse_duration(&cfg.grpc_keepalive_timeout)?,
        };
        let retention = match (cfg.auto_compaction_mode, cfg.auto_compaction_retention.trim()) {
            (_, "0") | (_, "") => None,
            (CompactionMode::Periodic, r) => Some(Retention::Periodic(config::parse_retention(r)?)),
            (CompactionMode::Revision, r) => Some(Retention::Revision(
                r.parse().map_err(|_| ConfigError::Retention(r.to_string()))?,
            )),
        };
        let node = NodeConfig {
            progress_interval: config::parse_duration(&cfg.experimental_watch_progress_notify_interval)?,
            max_response_bytes: cfg.max_request_bytes,
            backend_cache_bytes: cfg.backend_cache_bytes,
            fsync: !cfg.unsafe_no_fsync,
        };
        let (tls_policy, tls_notes) = TlsPolicy::new(&cfg.tls_min_version, &cfg.tls_max_version, &cfg.cipher_suites)?;
        for note in tls_notes {
            tracing::warn!("{note}");
        }
        let client_files = tls_files(
            cfg,
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
        for url in cfg.listen_client_urls.iter().chain(&cfg.listen_metrics_urls) {
            if url.starts_with("https://") && client_tls.is_none() {
                return Err(ConfigError::TlsNeeded(url.clone()).into());
            }
        }
        let cluster = cluster_settings(cfg, &tls_policy)?;
        let data_dir = cfg.data_dir();
        Ok(Settings {
            name: cfg.name.clone(),
            node,
            h2,
            retention,
            listen_client_urls: cfg.listen_client_urls.clone(),
            listen_metrics_urls: cfg.listen_metrics_urls.clone(),
            client_tls,
            client_cert_auth: cfg.client_cert_auth,
            cluster,
            service: ServiceConfig {
                name: cfg.name.clone(),
                peer_urls: cfg.initial_advertise_peer_urls.clone(),
                client_urls: cfg.advertise_client_urls.clone(),
                max_txn_ops: cfg.max_txn_ops,
                max_request_bytes: cfg.max_request_bytes,
                quota_backend_bytes: cfg.quota_bytes(),
                bcrypt_cost: cfg.bcrypt_cost,
                max_leases: cfg.max_leases,
            },
            tokens: Tokens::from_spec(&cfg.auth_token, Duration::from_secs(cfg.auth_token_ttl))?,
            initial_corrupt_check: cfg.experimental_initial_corrupt_check,
            corrupt_check: config::parse_duration(&cfg.experimental_corrupt_check_time)?,
            cors: cfg.cors.clone(),
            enable_v2: cfg.enable_v2,
            extensive_metrics: cfg.metrics == MetricsLevel::Extensive,
            data_dir,
        })
    }

    /// The client URLs this member advertises (`--advertise-client-urls`).
    pub fn advertise_client_urls(&self) -> &[String] {
        &self.service.client_urls
    }

    /// Replaces an advertised client URL equal to a listen URL with port 0
    /// by the address that URL was bound to (how an embedded server, or a
    /// test, advertises a port nobody else has).
    pub(crate) fn advertise_bound(&mut self, listen_url: &str, bound: std::net::SocketAddr) {
        let scheme = if listen_url.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://{bound}");
        for adv in self.service.client_urls.iter_mut().filter(|a| *a == listen_url) {
            adv.clone_from(&url);
        }
    }
}

/// The cluster half of the settings; `None` without `--initial-cluster`.
fn cluster_settings(cfg: &Config, policy: &TlsPolicy) -> Result<Option<ClusterSettings>, ServerError> {
    let (members, cluster_id) = config::parse_initial_cluster(&cfg.initial_cluster, &cfg.initial_cluster_token)?;
    if members.is_empty() {
        return Ok(None);
    }
    let me = members
        .iter()
        .find(|m| m.name == cfg.name)
        .ok_or_else(|| ConfigError::InitialCluster(format!("no member named {:?}", cfg.name)))?
        .clone();
    let required = cfg.peer_client_cert_required();
    if cfg.peer_client_cert_auth.is_none() && required {
        tracing::info!(
            "peers must present a certificate signed by --peer-trusted-ca-file \
             (--peer-client-cert-auth=false accepts peers without one)"
        );
    }
    let peer_files = tls_files(
        cfg,
        Port::Peer,
        TlsFiles {
            cert: cfg.peer_cert_file.clone(),
            key: cfg.peer_key_file.clone(),
            trusted_ca: cfg.peer_trusted_ca_file.clone(),
            client_cert_auth: required,
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
    let peer_server_tls = if peer_files.is_set() {
        Some(peer_files.server_config(policy)?)
    } else {
        None
    };
    if let Some(url) = cfg.listen_peer_urls.iter().find(|u| u.starts_with("https://")) {
        if peer_server_tls.is_none() {
            return Err(ConfigError::TlsNeeded(url.clone()).into());
        }
    }
    let uses_tls = members
        .iter()
        .any(|m| m.peer_urls.iter().any(|u| u.starts_with("https://")));
    let peer_client_tls = if uses_tls {
        Some(peer_files.client_config(policy, cfg.peer_auto_tls)?)
    } else {
        None
    };
    let heartbeat = cfg.heartbeat_interval.max(1);
    Ok(Some(ClusterSettings {
        join_existing: cfg.initial_cluster_state == ClusterState::Existing && !cfg.data_dir().join("db").exists(),
        members,
        cluster_id,
        me,
        advertise_peer_urls: cfg.initial_advertise_peer_urls.clone(),
        listen_peer_urls: cfg.listen_peer_urls.clone(),
        peer_client_tls,
        peer_server_tls,
        peer_client_cert_required: required,
        heartbeat: Duration::from_millis(heartbeat),
        election_ticks: (cfg.election_timeout / heartbeat).max(2) as usize,
        pre_vote: cfg.pre_vote,
        snapshot_count: cfg.snapshot_count,
        strict_reconfig_check: cfg.strict_reconfig_check,
    }))
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, ServerError> {
        let mut argv = vec!["concord"];
        argv.extend_from_slice(args);
        Settings::from_config(&Config::try_parse_from(argv).expect("flags parse"))
    }

    #[test]
    fn flags_become_typed_values() {
        let s = settings(&[
            "--grpc-keepalive-interval=0s",
            "--auto-compaction-retention=1h",
            "--experimental-watch-progress-notify-interval=5s",
        ])
        .unwrap();
        assert_eq!(s.h2.keepalive_interval, None);
        assert!(matches!(s.retention, Some(Retention::Periodic(d)) if d == Duration::from_secs(3600)));
        assert_eq!(s.node.progress_interval, Duration::from_secs(5));
        assert!(s.cluster.is_none());
    }

    #[test]
    fn bad_values_are_refused_before_anything_starts() {
        assert!(matches!(
            settings(&["--grpc-keepalive-timeout=soon"]),
            Err(ServerError::Config(_))
        ));
        assert!(matches!(
            settings(&["--listen-client-urls=https://127.0.0.1:0"]),
            Err(ServerError::Config(ConfigError::TlsNeeded(_)))
        ));
        assert!(matches!(
            settings(&["--initial-cluster=other=http://127.0.0.1:1"]),
            Err(ServerError::Config(ConfigError::InitialCluster(_)))
        ));
    }

    #[test]
    fn a_cluster_member_gets_its_raft_settings() {
        let s = settings(&[
            "--name=a",
            "--initial-cluster=a=http://127.0.0.1:1,b=http://127.0.0.1:2",
            "--heartbeat-interval=50",
            "--election-timeout=500",
        ])
        .unwrap();
        let c = s.cluster.expect("a cluster");
        assert_eq!(c.members.len(), 2);
        assert_eq!(c.me.name, "a");
        assert_eq!(c.election_ticks, 10);
        assert_eq!(c.heartbeat, Duration::from_millis(50));
        assert!(c.peer_client_tls.is_none());
    }

    #[test]
    fn a_port_zero_listen_url_advertises_the_bound_address() {
        let mut s = settings(&[
            "--listen-client-urls=http://127.0.0.1:0",
            "--advertise-client-urls=http://127.0.0.1:0,http://elsewhere:2379",
        ])
        .unwrap();
        s.advertise_bound("http://127.0.0.1:0", "127.0.0.1:4242".parse().unwrap());
        assert_eq!(
            s.advertise_client_urls(),
            ["http://127.0.0.1:4242".to_string(), "http://elsewhere:2379".to_string()]
        );
    }
}
