//! Command-line flags: etcd's names and defaults where they apply. Every
//! flag can also be set by an environment variable `CONCORD_<FLAG>`
//! (upper case, `-` as `_`), as etcd reads `ETCD_<FLAG>`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// How `--auto-compaction-retention` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompactionMode {
    /// Keep history for a duration (`1h`, `30m`, or a bare number of hours).
    Periodic,
    /// Keep this many revisions.
    Revision,
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
    #[arg(long, env = "CONCORD_BACKEND_CACHE_BYTES", default_value_t = 16 * 1024 * 1024)]
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
        default_value = "10m"
    )]
    pub experimental_watch_progress_notify_interval: String,

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
    #[arg(long, env = "CONCORD_CLIENT_CERT_AUTH", default_value_t = false)]
    pub client_cert_auth: bool,

    /// Peer TLS certificate (PEM), for member-to-member traffic.
    #[arg(long, env = "CONCORD_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,

    /// Peer TLS private key (PEM).
    #[arg(long, env = "CONCORD_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,

    /// CA bundle (PEM) peer certificates are verified against.
    #[arg(long, env = "CONCORD_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,

    /// Require peers to present a certificate signed by --peer-trusted-ca-file.
    #[arg(long, env = "CONCORD_PEER_CLIENT_CERT_AUTH", default_value_t = false)]
    pub peer_client_cert_auth: bool,

    /// Log filter (tracing's syntax: `info`, `concord_core=debug`, …).
    #[arg(long, env = "CONCORD_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

impl Config {
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
    /// A retention that cannot be read.
    #[error("invalid --auto-compaction-retention {0:?}")]
    Retention(String),
    /// A duration that cannot be read.
    #[error("invalid duration {0:?}: expected e.g. 10m, 30s, 500ms")]
    Duration(String),
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
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "h"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "h" => n * 3600.0,
        "m" => n * 60.0,
        "s" => n,
        "ms" => n / 1000.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_retentions() {
        assert_eq!(host_port("http://127.0.0.1:2379").unwrap(), ("127.0.0.1".into(), 2379));
        assert_eq!(host_port("http://[::1]:2379/").unwrap(), ("::1".into(), 2379));
        assert!(host_port("127.0.0.1:2379").is_err());
        assert_eq!(parse_retention("1").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_retention("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_retention("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_retention("soon").is_err());
    }
}
