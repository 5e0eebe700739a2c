//! `concord snapshot restore|status`: offline work on snapshot files
//! (`etcdctl snapshot save` writes them from a running member).
//!
//! Restoring seeds a new member's data directory: the key space with its
//! revisions, the leases (their TTLs start again when the member starts),
//! and users and roles. The member list comes from the flags, as with
//! etcd's restore: every member of the new cluster restores the same file
//! with its own `--name` and the same `--initial-cluster`, then starts with
//! those flags. Alarms of the old cluster are not carried over (they name
//! its members).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use concord_core::api::concordpb::Snapshot as SnapshotData;
use concord_core::storage::{read_snapshot_file, SnapshotFileError, Storage, StorageError};

use crate::config::{self, ConfigError};

/// Errors of the snapshot commands.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotCmdError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a whole snapshot.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: SnapshotFileError,
    },
    /// The data directory is already in use.
    #[error("data-dir {0:?} exists and is not empty")]
    DataDirExists(PathBuf),
    /// The flags do not describe the member.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Writing the new data directory failed.
    #[error("cannot write the data directory: {0}")]
    Storage(#[from] StorageError),
}

/// `concord snapshot …`
#[derive(Debug, Parser)]
#[command(
    name = "concord snapshot",
    about = "Work with snapshot files (etcdctl snapshot save writes them)."
)]
pub struct SnapshotCli {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Seeds a new member's data directory from a snapshot file.
    Restore(RestoreArgs),
    /// Checks a snapshot file and prints its hash, revision, stored
    /// revisions and size.
    Status(StatusArgs),
}

/// `concord snapshot restore FILE …` (etcd's restore flags).
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot file.
    file: PathBuf,
    /// The member's name.
    #[arg(long, default_value = "default")]
    name: String,
    /// The directory to create. Default: `<name>.concord`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The members of the new cluster: `name=peerURL,…` (empty: a single
    /// member started without --initial-cluster).
    #[arg(long, default_value = "")]
    initial_cluster: String,
    /// The cluster token the new cluster starts with.
    #[arg(long, default_value = "etcd-cluster")]
    initial_cluster_token: String,
    /// This member's peer URLs; must match its entry in --initial-cluster.
    #[arg(long, value_delimiter = ',')]
    initial_advertise_peer_urls: Vec<String>,
    /// Restore even if the file's checksum does not match (a file that
    /// was copied from a member's data directory has none).
    #[arg(long)]
    skip_hash_check: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    Simple,
    Json,
    Table,
}

/// `concord snapshot status FILE`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The snapshot file.
    file: PathBuf,
    /// Output format, as etcdctl's `-w`.
    #[arg(short = 'w', long = "write-out", value_enum, default_value = "simple")]
    write_out: Output,
}

fn load(file: &PathBuf, verify: bool) -> Result<(SnapshotData, Vec<u8>), SnapshotCmdError> {
    let bytes = std::fs::read(file).map_err(|source| SnapshotCmdError::Read {
        path: file.clone(),
        source,
    })?;
    let snap = read_snapshot_file(&bytes, verify).map_err(|source| SnapshotCmdError::File {
        path: file.clone(),
        source,
    })?;
    Ok((snap, bytes))
}

/// Runs `concord snapshot …` with `args` (after `snapshot`); what to print.
pub fn run(args: impl IntoIterator<Item = String>) -> Result<String, SnapshotCmdError> {
    let cli = SnapshotCli::parse_from(std::iter::once("concord snapshot".to_string()).chain(args));
    match cli.command {
        SnapshotCommand::Restore(a) => restore(&a),
        SnapshotCommand::Status(a) => status(&a),
    }
}

fn restore(a: &RestoreArgs) -> Result<String, SnapshotCmdError> {
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.concord", a.name)));
    if std::fs::read_dir(&data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(SnapshotCmdError::DataDirExists(data_dir));
    }
    let (members, _) = config::parse_initial_cluster(&a.initial_cluster, &a.initial_cluster_token)?;
    if !members.is_empty() {
        let me = members
            .iter()
            .find(|m| m.name == a.name)
            .ok_or_else(|| ConfigError::InitialCluster(format!("no member named {:?}", a.name)))?;
        if !a.initial_advertise_peer_urls.is_empty() {
            let (mut mine, mut listed) = (a.initial_advertise_peer_urls.clone(), me.peer_urls.clone());
            mine.sort();
            listed.sort();
            if mine != listed {
                return Err(ConfigError::InitialCluster(format!(
                    "--initial-advertise-peer-urls {mine:?} do not match {:?}'s URLs in --initial-cluster {listed:?}",
                    a.name
                ))
                .into());
            }
        }
    }
    let (mut snap, _) = load(&a.file, !a.skip_hash_check)?;
    // The new cluster's members publish themselves when they start.
    snap.members.clear();
    snap.alarms.clear();
    concord_core::fsync::create_dir_all(&data_dir).map_err(StorageError::Io)?;
    let storage = Storage::open(&data_dir.join("db"), 8 * 1024 * 1024)?;
    // Every member restores the same state at log index 0: their logs
    // start empty and agree from the first entry on.
    storage.install(&snap, 0)?;
    storage.checkpoint()?;
    Ok(format!(
        "restored snapshot {} into {} (revision {}, {} stored revisions, {} leases)",
        a.file.display(),
        data_dir.display(),
        snap.current_revision,
        snap.kvs.len(),
        snap.leases.len()
    ))
}

fn status(a: &StatusArgs) -> Result<String, SnapshotCmdError> {
    let (snap, bytes) = load(&a.file, true)?;
    let hash = crc32fast::hash(&bytes);
    let (rev, keys, size) = (snap.current_revision, snap.kvs.len(), bytes.len());
    Ok(match a.write_out {
        Output::Simple => format!("{hash:x}, {rev}, {keys}, {}", human_bytes(size)),
        Output::Json => {
            serde_json::json!({ "hash": hash, "revision": rev, "totalKey": keys, "totalSize": size }).to_string()
        }
        Output::Table => format!(
            "+----------+----------+------------+------------+\n\
             |   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n\
             +----------+----------+------------+------------+\n\
             | {:>8} | {:>8} | {:>10} | {:>10} |\n\
             +----------+----------+------------+------------+",
            format!("{hash:x}"),
            rev,
            keys,
            human_bytes(size)
        ),
    })
}

/// Sizes as etcdctl prints them (decimal units).
fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
