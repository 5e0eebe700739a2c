//! `concord`: an etcd-compatible key-value server.

use clap::{CommandFactory, Parser};
use concord_server::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args();
    if std::env::args().nth(1).as_deref() == Some("snapshot") {
        return match concord_server::snapshot::run(args.by_ref().skip(2)) {
            Ok(out) => {
                println!("{out}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("concord snapshot: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    // As `etcd --version`: the version, the etcd API served, the commit.
    if std::env::args()
        .skip(1)
        .any(|a| matches!(a.as_str(), "--version" | "-version" | "-V"))
    {
        println!("concord Version: {}", env!("CARGO_PKG_VERSION"));
        println!("etcd API: {}", concord_core::service::ETCD_API_VERSION);
        println!("Git SHA: {}", env!("CONCORD_GIT_SHA"));
        return std::process::ExitCode::SUCCESS;
    }
    // etcd's flags Concord does not implement are set aside (and named in
    // the log) or, where ignoring one would be unsafe, refused.
    let known: Vec<String> = Config::command()
        .get_arguments()
        .flat_map(|a| {
            a.get_long()
                .into_iter()
                .chain(a.get_all_aliases().into_iter().flatten())
        })
        .map(String::from)
        .collect();
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // As etcd: a config file (--config-file or ETCD_CONFIG_FILE) replaces
    // the other flags and the environment variables.
    let config_file =
        concord_server::config_file::config_file_arg(&raw).or_else(|| std::env::var_os("ETCD_CONFIG_FILE"));
    let (args, unknown_env) = match &config_file {
        Some(path) => match concord_server::config_file::args_from_file(raw[0].clone(), std::path::Path::new(path)) {
            Ok(args) => (args, Vec::new()),
            Err(e) => {
                eprintln!("concord: --config-file: {e}");
                return std::process::ExitCode::FAILURE;
            }
        },
        None => {
            let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
            concord_server::etcd_flags::with_etcd_env(raw, env, &known)
        }
    };
    let (args, ignored) = match concord_server::etcd_flags::strip(args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("concord: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cfg = Config::parse_from(args);
    if let Err(e) = concord_server::init_logging(&cfg.log_level, &cfg.log_format, &cfg.log_outputs) {
        eprintln!("concord: --log-outputs: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // As Go raises it for etcd: many clients and watch streams each hold
    // a descriptor, and the default soft limit (often 1024) is far below
    // what the system allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit raised to the hard limit"),
        Err(e) => tracing::warn!(error = %e, "the open file limit could not be raised"),
    }
    if let Some(path) = &config_file {
        tracing::info!(path = %std::path::Path::new(path).display(), "loaded the configuration file; other flags and ETCD_ variables are ignored, as etcd ignores them");
    }
    if !unknown_env.is_empty() {
        tracing::warn!(variables = %unknown_env.join(", "), "unrecognized environment variables (not etcd flags)");
    }
    if !ignored.is_empty() {
        let list: Vec<String> = ignored.iter().map(|f| format!("{} ({})", f.given, f.why)).collect();
        tracing::info!(flags = %list.join("; "), "ignoring etcd flags that do not apply to Concord");
    }
    match concord_server::run(cfg, concord_server::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "concord stopped");
            eprintln!("concord: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
