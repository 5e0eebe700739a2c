//! Command-line flags: etcd's names and defaults where they apply. Every
//! flag can also be set by an environment variable `CONCORD_<FLAG>`
//! (upper case, `-` as `_`), as etcd reads `ETCD_<FLAG>`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

/// How `--auto-compaction-retention` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompactionMode {
    /// Keep history for a duration (`1h`, `30m`, or a bare number of hours).
    Periodic,
    /// Keep this many revisions.
    Revision,
}

/// How much `/metrics` tells (etcd's `--metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MetricsLevel {
    /// Counters and gauges, and the disk histograms.
    Basic,
    /// Also each gRPC method's latency histogram.
    Extensive,
}

/// Whether a member starts a new cluster or joins a running one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterState {
    /// Every member in --initial-cluster starts together.
    New,
    /// This member was added to a running cluster (MemberAdd).
    Existing,
}

/// An etcd-compatible, Raft-replicated key-value store.
///
/// Serves etcd's v3 gRPC API and its JSON gateway (`POST /v3/...`) on the
/// same client port, so etcdctl and etcd's client libraries work unchanged.
#[derive(Clone, Debug, Parser)]
#[command(name = "concord", version)]
pub struct Config {
    /// Human-readable name of this member.
    #[arg(long, env = "CONCORD_NAME", default_value = "default")]
    pub name: String,

    /// Directory for the data (log and state). Default: `<name>.concord`.
    #[arg(long, env = "CONCORD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Comma-separated URLs to serve clients on (gRPC and HTTP share each).
    #[arg(
        long,
        env = "CONCORD_LISTEN_CLIENT_URLS",
        default_value = "http://localhost:2379",
        value_delimiter = ','
    )]
    pub listen_client_urls: Vec<String>,

    /// Comma-separated URLs serving only the probes (`/health`, `/livez`,
    /// `/readyz`), as etcd's metrics listener does: plain HTTP, or HTTPS
    /// with the client certificate.
    #[arg(long, env = "CONCORD_LISTEN_METRICS_URLS", value_delimiter = ',')]
    pub listen_metrics_urls: Vec<String>,

    /// Comma-separated client URLs to advertise to the cluster.
    #[arg(
        long,
        env = "CONCORD_ADVERTISE_CLIENT_URLS",
        default_value = "http://localhost:2379",
        value_delimiter = ','
    )]
    pub advertise_client_urls: Vec<String>,

    /// Comma-separated peer URLs of this member, as the member list shows them.
    #[arg(
        long,
        env = "CONCORD_INITIAL_ADVERTISE_PEER_URLS",
        default_value = "http://localhost:2380",
        value_delimiter = ','
    )]
    pub initial_advertise_peer_urls: Vec<String>,

    /// Comma-separated URLs to listen on for other members (replicated clusters).
    #[arg(
        long,
        env = "CONCORD_LISTEN_PEER_URLS",
        default_value = "http://localhost:2380",
        value_delimiter = ','
    )]
    pub listen_peer_urls: Vec<String>,

    /// The members of a new cluster: `name=peerURL,name=peerURL,…`. With
    /// more than one member, writes are replicated with raft.
    #[arg(long, env = "CONCORD_INITIAL_CLUSTER", default_value = "")]
    pub initial_cluster: String,

    /// `new` to bootstrap --initial-cluster, `existing` to join a running cluster.
    #[arg(long, env = "CONCORD_INITIAL_CLUSTER_STATE", value_enum, default_value = "new")]
    pub initial_cluster_state: ClusterState,

    /// A name for the cluster, mixed into member and cluster IDs.
    #[arg(long, env = "CONCORD_INITIAL_CLUSTER_TOKEN", default_value = "etcd-cluster")]
    pub initial_cluster_token: String,

    /// Time of one raft heartbeat, in milliseconds.
    #[arg(long, env = "CONCORD_HEARTBEAT_INTERVAL", default_value_t = 100)]
    pub heartbeat_interval: u64,

    /// Time without a leader before an election, in milliseconds.
    #[arg(long, env = "CONCORD_ELECTION_TIMEOUT", default_value_t = 1000)]
    pub election_timeout: u64,

    /// Raft pre-vote: a member cut off cannot disrupt the cluster when it returns.
    #[arg(long, env = "CONCORD_PRE_VOTE", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = false)]
    pub pre_vote: bool,

    /// Raft log entries kept for slow members after the state is saved;
    /// members further behind get a snapshot.
    #[arg(long, env = "CONCORD_SNAPSHOT_COUNT", default_value_t = 100_000)]
    pub snapshot_count: u64,

    /// Most operations allowed in one txn request.
    #[arg(long, env = "CONCORD_MAX_TXN_OPS", default_value_t = 128)]
    pub max_txn_ops: usize,

    /// Largest client request the server accepts, in bytes.
    #[arg(long, env = "CONCORD_MAX_REQUEST_BYTES", default_value_t = 1536 * 1024)]
    pub max_request_bytes: usize,

    /// Backend size (bytes) past which writes are refused; 0 means the default, 2 GiB.
    #[arg(long, env = "CONCORD_QUOTA_BACKEND_BYTES", default_value_t = 0)]
    pub quota_backend_bytes: u64,

    /// Memory for cached pages of the state database, in bytes (not an etcd
    /// flag: bbolt leaves this to the OS). Reads beyond it come from the OS
    /// page cache.
    #[arg(long, env = "CONCORD_BACKEND_CACHE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub backend_cache_bytes: usize,

    /// How to read --auto-compaction-retention.
    #[arg(long, env = "CONCORD_AUTO_COMPACTION_MODE", value_enum, default_value = "periodic")]
    pub auto_compaction_mode: CompactionMode,

    /// History to keep: a duration (`1h`, `30m`, `90s`, bare number = hours) in
    /// periodic mode, a number of revisions in revision mode. 0 turns it off.
    #[arg(long, env = "CONCORD_AUTO_COMPACTION_RETENTION", default_value = "0")]
    pub auto_compaction_retention: String,

    /// How often a watcher with progress_notify hears from a quiet stream
    /// (etcd's flag of the same name; `10m`, `500ms`, …).
    #[arg(
        long,
        env = "CONCORD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL",
        alias = "watch-progress-notify-interval",
        default_value = "10m"
    )]
    pub experimental_watch_progress_notify_interval: String,

    /// At start, compare this member's key-space hash with its peers' and
    /// refuse to serve (raising the CORRUPT alarm) if they differ.
    #[arg(long, env = "CONCORD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = false)]
    pub experimental_initial_corrupt_check: bool,

    /// How often the leader compares every member's key-space hash with
    /// its own (`0s`: never); a member that differs gets the CORRUPT alarm.
    #[arg(
        long,
        env = "CONCORD_EXPERIMENTAL_CORRUPT_CHECK_TIME",
        alias = "corrupt-check-time",
        default_value = "0s"
    )]
    pub experimental_corrupt_check_time: String,

    /// Serve etcd's v2 keys API (`/v2/keys`, `/v2/stats/store`). On by
    /// default, unlike etcd 3.4: the v2 guides and scripts work as written.
    /// The v2 key space is separate from the v3 one, as in etcd.
    #[arg(long, env = "CONCORD_ENABLE_V2", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = true)]
    pub enable_v2: bool,

    /// Comma-separated origins allowed by CORS on the HTTP API; `*` allows any.
    #[arg(long, env = "CONCORD_CORS", default_value = "*", value_delimiter = ',')]
    pub cors: Vec<String>,

    /// Auth token kind: `simple`, or
    /// `jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256|ES256|…[,ttl=5m]`.
    #[arg(long, env = "CONCORD_AUTH_TOKEN", default_value = "simple")]
    pub auth_token: String,

    /// Lifetime of a simple token in seconds, renewed by each use.
    #[arg(long, env = "CONCORD_AUTH_TOKEN_TTL", default_value_t = 300)]
    pub auth_token_ttl: u64,

    /// bcrypt cost for hashing passwords (4..=31).
    #[arg(long, env = "CONCORD_BCRYPT_COST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,

    /// Most leases kept at once (Concord's own; etcd sets no limit). Every
    /// lease is held in memory on every member: past this, LeaseGrant is
    /// refused (ResourceExhausted) until leases are revoked or expire.
    #[arg(long, env = "CONCORD_MAX_LEASES", default_value_t = 1_000_000)]
    pub max_leases: usize,

    /// Client TLS certificate (PEM); with --key-file, https:// client URLs serve TLS.
    #[arg(long, env = "CONCORD_CERT_FILE")]
    pub cert_file: Option<PathBuf>,

    /// Client TLS private key (PEM).
    #[arg(long, env = "CONCORD_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// CA bundle (PEM) client certificates are verified against.
    #[arg(long, env = "CONCORD_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,

    /// Require a client certificate signed by --trusted-ca-file; its common
    /// name is the user on gRPC calls that carry no token.
    #[arg(long, env = "CONCORD_CLIENT_CERT_AUTH", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = false)]
    pub client_cert_auth: bool,

    /// Certificate revocation list (PEM or DER) checked against client
    /// certificates.
    #[arg(long, env = "CONCORD_CLIENT_CRL_FILE")]
    pub client_crl_file: Option<PathBuf>,

    /// A client certificate must be valid for this host name (its SANs).
    #[arg(long, env = "CONCORD_CLIENT_CERT_ALLOWED_HOSTNAME")]
    pub client_cert_allowed_hostname: Option<String>,

    /// Serve https:// client URLs with a self-signed certificate made at
    /// start (in `<data-dir>/fixtures/client`) when no --cert-file is given.
    #[arg(long, env = "CONCORD_AUTO_TLS", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = false)]
    pub auto_tls: bool,

    /// Members talk over TLS with self-signed certificates made at start
    /// (in `<data-dir>/fixtures/peer`); peers' certificates are then not
    /// verified, as with etcd.
    #[arg(long, env = "CONCORD_PEER_AUTO_TLS", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = false)]
    pub peer_auto_tls: bool,

    /// Validity of the self-signed certificates, in years.
    #[arg(long, env = "CONCORD_SELF_SIGNED_CERT_VALIDITY", default_value_t = 1)]
    pub self_signed_cert_validity: u32,

    /// Lowest TLS version served: `TLS1.2` (the default) or `TLS1.3`
    /// (`TLS1.0`/`TLS1.1` are taken as TLS1.2: Concord speaks no older TLS).
    #[arg(long, env = "CONCORD_TLS_MIN_VERSION", default_value = "")]
    pub tls_min_version: String,

    /// Highest TLS version served: `TLS1.3` (the default) or `TLS1.2`.
    #[arg(long, env = "CONCORD_TLS_MAX_VERSION", default_value = "")]
    pub tls_max_version: String,

    /// Comma-separated TLS 1.2 cipher suites, by Go's names
    /// (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, …); empty: the defaults.
    #[arg(long, env = "CONCORD_CIPHER_SUITES", default_value = "")]
    pub cipher_suites: String,

    /// Peer TLS certificate (PEM), for member-to-member traffic.
    #[arg(long, env = "CONCORD_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,

    /// Peer TLS private key (PEM).
    #[arg(long, env = "CONCORD_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,

    /// CA bundle (PEM) peer certificates are verified against.
    #[arg(long, env = "CONCORD_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,

    /// Require peers to present a certificate signed by
    /// --peer-trusted-ca-file. Unlike etcd (off unless asked for), on
    /// whenever a peer CA is given: anything that reaches the peer port can
    /// otherwise talk raft. `--peer-client-cert-auth=false` turns it off.
    #[arg(long, env = "CONCORD_PEER_CLIENT_CERT_AUTH", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub peer_client_cert_auth: Option<bool>,

    /// Certificate revocation list (PEM or DER) checked against peers'
    /// certificates.
    #[arg(long, env = "CONCORD_PEER_CRL_FILE")]
    pub peer_crl_file: Option<PathBuf>,

    /// Comma-separated common names a peer's client certificate must carry
    /// one of.
    #[arg(long, env = "CONCORD_PEER_CERT_ALLOWED_CN")]
    pub peer_cert_allowed_cn: Option<String>,

    /// A peer's client certificate must be valid for this host name.
    #[arg(long, env = "CONCORD_PEER_CERT_ALLOWED_HOSTNAME")]
    pub peer_cert_allowed_hostname: Option<String>,

    /// Log filter (tracing's syntax: `info`, `concord_core=debug`, …).
    #[arg(long, env = "CONCORD_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// `text` (also etcd's `console`) or `json` (one object per line).
    #[arg(long, env = "CONCORD_LOG_FORMAT", default_value = "text")]
    pub log_format: String,

    /// Skip fdatasync of the log: faster, and a machine crash (not a process
    /// crash) can lose acknowledged writes. For throwaway clusters only.
    #[arg(long, env = "CONCORD_UNSAFE_NO_FSYNC", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = false)]
    pub unsafe_no_fsync: bool,

    /// Refuse membership changes that would leave the cluster without a
    /// quorum of started, connected members (as etcd, on by default).
    #[arg(long, env = "CONCORD_STRICT_RECONFIG_CHECK", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = true)]
    pub strict_reconfig_check: bool,

    /// Most concurrent HTTP/2 streams (gRPC calls) per client connection.
    /// etcd's default is unlimited; Concord's is 1000, which bounds what one
    /// connection can hold (gRPC clients queue calls beyond it).
    #[arg(long, env = "CONCORD_MAX_CONCURRENT_STREAMS", default_value_t = 1000)]
    pub max_concurrent_streams: u32,

    /// Idle time after which the server pings a client connection to see
    /// that it is alive (Go duration; `0s` turns pings off).
    #[arg(long, env = "CONCORD_GRPC_KEEPALIVE_INTERVAL", default_value = "2h")]
    pub grpc_keepalive_interval: String,

    /// How long a ping may go unanswered before the connection is closed.
    #[arg(long, env = "CONCORD_GRPC_KEEPALIVE_TIMEOUT", default_value = "20s")]
    pub grpc_keepalive_timeout: String,

    /// `basic`, or `extensive` to add `grpc_server_handling_seconds`
    /// (each RPC's latency, by method) to /metrics, as etcd does.
    #[arg(long, env = "CONCORD_METRICS", value_enum, default_value = "basic")]
    pub metrics: MetricsLevel,

    /// Comma-separated log targets: `stderr`, `stdout`, or file paths.
    #[arg(long, env = "CONCORD_LOG_OUTPUTS", default_value = "stderr", value_delimiter = ',')]
    pub log_outputs: Vec<String>,
}

impl Config {
    /// Whether peers must present a client certificate: as asked, or
    /// whenever a peer CA is given.
    pub fn peer_client_cert_required(&self) -> bool {
        self.peer_client_cert_auth.unwrap_or(
            self.peer_trusted_ca_file
                .as_ref()
                .is_some_and(|p| !p.as_os_str().is_empty()),
        )
    }

    /// The data directory, defaulted from the name as etcd does.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.concord", self.name)))
    }

    /// The backend quota in bytes.
    pub fn quota_bytes(&self) -> u64 {
        if self.quota_backend_bytes == 0 {
            2 * 1024 * 1024 * 1024
        } else {
            self.quota_backend_bytes
        }
    }
}

/// Errors in flag values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A URL that is not `http(s)://host:port`.
    #[error("invalid URL {0:?}: expected http://host:port or https://host:port")]
    Url(String),
    /// An https:// URL without --cert-file and --key-file.
    #[error("{0} needs --cert-file and --key-file")]
    TlsNeeded(String),
    /// --initial-cluster cannot be read or does not name this member.
    #[error("invalid --initial-cluster: {0}")]
    InitialCluster(String),
    /// A retention that cannot be read.
    #[error("invalid --auto-compaction-retention {0:?}")]
    Retention(String),
    /// A duration that cannot be read.
    #[error("invalid duration {0:?}: expected e.g. 10m, 30s, 500ms")]
    Duration(String),
}

/// A member of --initial-cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMember {
    /// Its name.
    pub name: String,
    /// Its peer URLs.
    pub peer_urls: Vec<String>,
    /// Its ID, derived from its peer URLs and the cluster token.
    pub id: u64,
}

/// FNV-1a, 64 bits: stable IDs every member derives alike.
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(b"\0") {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h >> 1).max(1)
}

/// Reads `name=url,name=url` (a name may repeat for several URLs) and
/// gives each member its ID; also returns the cluster ID.
pub fn parse_initial_cluster(s: &str, token: &str) -> Result<(Vec<InitialMember>, u64), ConfigError> {
    let mut members: Vec<InitialMember> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, url) = part
            .split_once('=')
            .ok_or_else(|| ConfigError::InitialCluster(format!("{part:?} is not name=url")))?;
        host_port(url)?;
        match members.iter_mut().find(|m| m.name == name) {
            Some(m) => m.peer_urls.push(url.to_string()),
            None => members.push(InitialMember {
                name: name.to_string(),
                peer_urls: vec![url.to_string()],
                id: 0,
            }),
        }
    }
    for m in &mut members {
        let mut urls = m.peer_urls.clone();
        urls.sort();
        m.id = fnv(&[urls.join(",").as_bytes(), token.as_bytes()]);
    }
    let mut ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    let id_bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_be_bytes()).collect();
    let cluster_id = fnv(&[&id_bytes, token.as_bytes()]);
    Ok((members, cluster_id))
}

/// Splits `http(s)://host:port` into host and port.
pub fn host_port(url: &str) -> Result<(String, u16), ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::Url(url.to_string()))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| ConfigError::Url(url.to_string()))?;
    let port = port.parse().map_err(|_| ConfigError::Url(url.to_string()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

/// Reads a periodic retention: `1h`, `30m`, `45s`, or a bare number of hours.
pub fn parse_retention(s: &str) -> Result<Duration, ConfigError> {
    parse_duration(s).map_err(|_| ConfigError::Retention(s.to_string()))
}

/// Reads a duration: `1h`, `30m`, `45s`, `500ms`, or a bare number of hours.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError::Duration(s.to_string());
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if !rest.contains(|c: char| c.is_ascii_alphabetic()) {
        // A bare number: hours (etcd's retention).
        rest = rest.trim_end();
        let n: f64 = rest.parse().map_err(|_| bad())?;
        return Duration::try_from_secs_f64(n * 3600.0).map_err(|_| bad());
    }
    // Go's syntax: a sequence of number and unit, `2h0m0s`, `1.5s`, `300ms`.
    let mut secs = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        secs += n * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("2h0m0s").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(7200));
        for bad in ["", "s", "5x", "-1s", "1h-", "h1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_and_retentions() {
        assert_eq!(host_port("http://127.0.0.1:2379").unwrap(), ("127.0.0.1".into(), 2379));
        assert_eq!(host_port("http://[::1]:2379/").unwrap(), ("::1".into(), 2379));
        assert!(host_port("127.0.0.1:2379").is_err());
        let (m, c) = parse_initial_cluster("a=http://h:1,b=http://h:2,a=http://g:1", "t").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].peer_urls.len(), 2);
        assert_ne!(m[0].id, m[1].id);
        let (m2, c2) = parse_initial_cluster("b=http://h:2,a=http://g:1,a=http://h:1", "t").unwrap();
        assert_eq!(
            (m2[0].id, c2),
            (m[1].id, c),
            "the same on every member whatever the order"
        );
        assert_ne!(
            parse_initial_cluster("a=http://h:1", "other").unwrap().1,
            parse_initial_cluster("a=http://h:1", "t").unwrap().1
        );
        assert!(parse_initial_cluster("nonsense", "t").is_err());
        assert_eq!(parse_retention("1").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_retention("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_retention("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_retention("soon").is_err());
    }
}
