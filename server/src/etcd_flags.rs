//! etcd's flags that Concord takes without acting on them, read before the
//! command line reaches clap: a manifest written for etcd 3.4, 3.5 or 3.6
//! starts Concord unchanged, and the start-up log names what was ignored
//! and why. A few flags would change what the operator gets in a way that
//! cannot be ignored silently (a restriction on who may connect, a config
//! file, bootstrap by discovery): those stop the start with a clear error
//! instead. Go's single-dash spelling (`-name x`) is accepted as etcd
//! accepts it.

use std::ffi::OsString;

/// Whether a flag takes a value or is a switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `--flag`, `--flag=true|false`, `--flag true|false`.
    Switch,
    /// `--flag=value` or `--flag value`.
    Value,
}

use Kind::{Switch, Value};

/// What Concord does with a flag of etcd's it does not implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handling {
    /// Accepted; the reason goes in the start-up log.
    Ignore(&'static str),
    /// Refused (unless switched off or empty): ignoring it would weaken
    /// security or start something else than asked.
    Refuse(&'static str),
}

use Handling::{Ignore, Refuse};

const STORAGE: &str = "Concord's storage (one log and redb under --data-dir) has no such knob";
const RAFT: &str = "Concord's raft needs no such tuning";
const TRANSPORT: &str = "not tunable in Concord's transport yet";
const LOGGING: &str = "Concord logs with --log-level, --log-format and --log-outputs";
const TRACING: &str = "distributed tracing is not implemented";
const V2: &str = "Concord serves v2 from its own v2 store when --enable-v2 is on";
const PROXY: &str = "Concord has no proxy mode";
const LEGACY: &str = "an etcd 2 flag etcd 3 also ignores";
const EXPERIMENTAL: &str = "an etcd experiment Concord does not need";
const DISCOVERY: &str = "bootstrap by discovery is not implemented: list the members in --initial-cluster";

/// etcd 3.4, 3.5 and 3.6 flags Concord does not implement.
const FLAGS: &[(&str, Kind, Handling)] = &[
    ("wal-dir", Value, Ignore("the raft log stays under --data-dir")),
    ("max-snapshots", Value, Ignore(STORAGE)),
    ("max-wals", Value, Ignore(STORAGE)),
    ("backend-batch-interval", Value, Ignore(STORAGE)),
    ("backend-batch-limit", Value, Ignore(STORAGE)),
    ("backend-bbolt-freelist-type", Value, Ignore(STORAGE)),
    ("experimental-backend-bbolt-freelist-type", Value, Ignore(STORAGE)),
    (
        "experimental-txn-mode-write-with-shared-buffer",
        Switch,
        Ignore(STORAGE),
    ),
    ("experimental-memory-mlock", Switch, Ignore(STORAGE)),
    ("memory-mlock", Switch, Ignore(STORAGE)),
    ("experimental-compaction-batch-limit", Value, Ignore(STORAGE)),
    ("compaction-batch-limit", Value, Ignore(STORAGE)),
    ("experimental-compaction-sleep-interval", Value, Ignore(STORAGE)),
    ("compaction-sleep-interval", Value, Ignore(STORAGE)),
    (
        "experimental-bootstrap-defrag-threshold-megabytes",
        Value,
        Ignore(STORAGE),
    ),
    ("bootstrap-defrag-threshold-megabytes", Value, Ignore(STORAGE)),
    ("experimental-stop-grpc-service-on-defrag", Switch, Ignore(STORAGE)),
    ("initial-election-tick-advance", Switch, Ignore(RAFT)),
    ("raft-read-timeout", Value, Ignore(RAFT)),
    ("raft-write-timeout", Value, Ignore(RAFT)),
    (
        "experimental-snapshot-catchup-entries",
        Value,
        Ignore("--snapshot-count sets the entries kept"),
    ),
    (
        "snapshot-catchup-entries",
        Value,
        Ignore("--snapshot-count sets the entries kept"),
    ),
    ("max-learners", Value, Ignore(RAFT)),
    ("experimental-max-learners", Value, Ignore(RAFT)),
    (
        "experimental-enable-lease-checkpoint",
        Switch,
        Ignore("lease deadlines already survive a leader change"),
    ),
    (
        "experimental-enable-lease-checkpoint-persist",
        Switch,
        Ignore("lease deadlines already survive a leader change"),
    ),
    (
        "experimental-downgrade-check-time",
        Value,
        Ignore("there is one Concord version"),
    ),
    ("downgrade-check-time", Value, Ignore("there is one Concord version")),
    ("experimental-wait-cluster-ready-timeout", Value, Ignore(RAFT)),
    (
        "force-new-cluster",
        Switch,
        Ignore("not implemented: use `concord snapshot restore` to start anew"),
    ),
    (
        "experimental-compact-hash-check-enabled",
        Switch,
        Ignore("--experimental-corrupt-check-time checks the whole key space"),
    ),
    (
        "experimental-compact-hash-check-time",
        Value,
        Ignore("--experimental-corrupt-check-time checks the whole key space"),
    ),
    (
        "compact-hash-check-time",
        Value,
        Ignore("--experimental-corrupt-check-time checks the whole key space"),
    ),
    ("experimental-warning-apply-duration", Value, Ignore(EXPERIMENTAL)),
    ("warning-apply-duration", Value, Ignore(EXPERIMENTAL)),
    (
        "experimental-warning-unary-request-duration",
        Value,
        Ignore(EXPERIMENTAL),
    ),
    ("warning-unary-request-duration", Value, Ignore(EXPERIMENTAL)),
    ("feature-gates", Value, Ignore("Concord has no feature gates")),
    // etcd 2's flags, which etcd 3 still takes and ignores (switches there).
    ("cluster-active-size", Switch, Ignore(LEGACY)),
    ("cluster-remove-delay", Switch, Ignore(LEGACY)),
    ("cluster-sync-interval", Switch, Ignore(LEGACY)),
    ("config", Switch, Ignore(LEGACY)),
    ("force", Switch, Ignore(LEGACY)),
    ("max-result-buffer", Switch, Ignore(LEGACY)),
    ("max-retry-attempts", Switch, Ignore(LEGACY)),
    ("peer-heartbeat-interval", Switch, Ignore(LEGACY)),
    ("peer-election-timeout", Switch, Ignore(LEGACY)),
    ("retry-interval", Switch, Ignore(LEGACY)),
    ("snapshot", Switch, Ignore(LEGACY)),
    ("v", Switch, Ignore(LEGACY)),
    ("vv", Switch, Ignore(LEGACY)),
    ("debug", Switch, Ignore("use --log-level debug")),
    (
        "grpc-keepalive-min-time",
        Value,
        Ignore("hyper's HTTP/2 server has no policy on how often clients may ping"),
    ),
    ("socket-reuse-port", Switch, Ignore(TRANSPORT)),
    ("socket-reuse-address", Switch, Ignore(TRANSPORT)),
    (
        "listen-client-http-urls",
        Value,
        Ignore("HTTP is served on --listen-client-urls, with gRPC"),
    ),
    ("enable-grpc-gateway", Switch, Ignore("the JSON gateway is always on")),
    ("enable-pprof", Switch, Ignore("Go's profiler does not apply")),
    ("logger", Value, Ignore(LOGGING)),
    ("log-output", Value, Ignore(LOGGING)),
    ("log-package-levels", Value, Ignore(LOGGING)),
    ("enable-log-rotation", Switch, Ignore(LOGGING)),
    ("log-rotation-config-json", Value, Ignore(LOGGING)),
    ("experimental-enable-distributed-tracing", Switch, Ignore(TRACING)),
    ("enable-distributed-tracing", Switch, Ignore(TRACING)),
    ("experimental-distributed-tracing-address", Value, Ignore(TRACING)),
    ("distributed-tracing-address", Value, Ignore(TRACING)),
    ("experimental-distributed-tracing-service-name", Value, Ignore(TRACING)),
    ("distributed-tracing-service-name", Value, Ignore(TRACING)),
    ("experimental-distributed-tracing-instance-id", Value, Ignore(TRACING)),
    ("distributed-tracing-instance-id", Value, Ignore(TRACING)),
    ("experimental-distributed-tracing-sampling-rate", Value, Ignore(TRACING)),
    ("distributed-tracing-sampling-rate", Value, Ignore(TRACING)),
    ("experimental-enable-v2v3", Value, Ignore(V2)),
    ("v2-deprecation", Value, Ignore(V2)),
    ("proxy", Value, Ignore(PROXY)),
    ("proxy-failure-wait", Value, Ignore(PROXY)),
    ("proxy-refresh-interval", Value, Ignore(PROXY)),
    ("proxy-dial-timeout", Value, Ignore(PROXY)),
    ("proxy-write-timeout", Value, Ignore(PROXY)),
    ("proxy-read-timeout", Value, Ignore(PROXY)),
    ("client-cert-file", Value, Ignore("members present --cert-file")),
    ("client-key-file", Value, Ignore("members present --key-file")),
    (
        "peer-client-cert-file",
        Value,
        Ignore("members present --peer-cert-file"),
    ),
    ("peer-client-key-file", Value, Ignore("members present --peer-key-file")),
    ("ca-file", Value, Ignore("etcd 3.3's name: use --trusted-ca-file")),
    (
        "peer-ca-file",
        Value,
        Ignore("etcd 3.3's name: use --peer-trusted-ca-file"),
    ),
    (
        "experimental-peer-skip-client-san-verification",
        Switch,
        Ignore("peer SANs are not checked"),
    ),
    (
        "peer-skip-client-san-verification",
        Switch,
        Ignore("peer SANs are not checked"),
    ),
    ("host-whitelist", Value, Ignore("the Host header is not checked")),
    (
        "config-file",
        Value,
        Ignore("a config file replaces the whole command line"),
    ),
    ("discovery", Value, Refuse(DISCOVERY)),
    ("discovery-srv", Value, Refuse(DISCOVERY)),
    ("discovery-endpoints", Value, Refuse(DISCOVERY)),
    ("discovery-token", Value, Ignore(DISCOVERY)),
    ("discovery-srv-name", Value, Ignore(DISCOVERY)),
    ("discovery-fallback", Value, Ignore(DISCOVERY)),
    ("discovery-proxy", Value, Ignore(DISCOVERY)),
    ("discovery-dial-timeout", Value, Ignore(DISCOVERY)),
    ("discovery-request-timeout", Value, Ignore(DISCOVERY)),
    ("discovery-keepalive-time", Value, Ignore(DISCOVERY)),
    ("discovery-keepalive-timeout", Value, Ignore(DISCOVERY)),
    ("discovery-insecure-transport", Switch, Ignore(DISCOVERY)),
    ("discovery-insecure-skip-tls-verify", Switch, Ignore(DISCOVERY)),
    ("discovery-cert", Value, Ignore(DISCOVERY)),
    ("discovery-key", Value, Ignore(DISCOVERY)),
    ("discovery-cacert", Value, Ignore(DISCOVERY)),
    ("discovery-user", Value, Ignore(DISCOVERY)),
    ("discovery-password", Value, Ignore(DISCOVERY)),
];

/// An etcd flag taken and not acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredFlag {
    /// The flag as given, with its value (`--max-wals=5`).
    pub given: String,
    /// Why it does not apply.
    pub why: &'static str,
}

/// An etcd flag Concord refuses with its value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}={value}: {why}")]
pub struct RefusedFlag {
    flag: &'static str,
    value: String,
    why: &'static str,
}

/// etcd's environment variables (`ETCD_NAME=m1` for `--name=m1`) as flags
/// appended to the command line, as etcd reads them: a flag given on the
/// command line wins, and so does Concord's own `CONCORD_<FLAG>`. `known`
/// are Concord's flag names; an `ETCD_` variable that is neither one of
/// them nor one of etcd's (`ETCD_UNSUPPORTED_ARCH`, an image's own
/// settings) is returned apart, for a warning, as etcd warns.
pub fn with_etcd_env(
    mut args: Vec<OsString>,
    env: impl IntoIterator<Item = (String, String)>,
    known: &[String],
) -> (Vec<OsString>, Vec<String>) {
    let env: Vec<(String, String)> = env.into_iter().collect();
    let given = |flag: &str| {
        args.iter().skip(1).filter_map(|a| a.to_str()).any(|a| {
            let body = a.strip_prefix("--").or_else(|| a.strip_prefix('-')).unwrap_or("");
            body == flag || body.starts_with(&format!("{flag}="))
        })
    };
    let mut extra = Vec::new();
    let mut unknown = Vec::new();
    for (key, value) in &env {
        let Some(rest) = key.strip_prefix("ETCD_") else {
            continue;
        };
        let flag = rest.to_ascii_lowercase().replace('_', "-");
        if !known.contains(&flag) && !FLAGS.iter().any(|(f, _, _)| *f == flag) {
            unknown.push(key.clone());
            continue;
        }
        let ours = format!("CONCORD_{rest}");
        if given(&flag) || env.iter().any(|(k, _)| *k == ours) {
            continue;
        }
        extra.push(OsString::from(format!("--{flag}={value}")));
    }
    args.extend(extra);
    (args, unknown)
}

/// Whether a refused flag's value asks for nothing (empty, or a switch off).
fn harmless(value: &str) -> bool {
    value.is_empty() || value == "false"
}

fn is_bool(s: &str) -> bool {
    matches!(
        s,
        "true" | "false" | "1" | "0" | "t" | "f" | "TRUE" | "FALSE" | "True" | "False"
    )
}

/// Splits the command line (program name first) into what clap reads and
/// the etcd flags set aside; an error for a refused one.
pub fn strip(args: Vec<OsString>) -> Result<(Vec<OsString>, Vec<IgnoredFlag>), RefusedFlag> {
    let mut kept = Vec::with_capacity(args.len());
    let mut ignored = Vec::new();
    let mut it = args.into_iter().peekable();
    if let Some(program) = it.next() {
        kept.push(program);
    }
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else {
            kept.push(arg);
            continue;
        };
        // Go's flag package takes `-name` as well as `--name`.
        let body = match text.strip_prefix("--") {
            Some(b) => b,
            None => match text.strip_prefix('-') {
                Some(b) if b.len() > 1 && !b.starts_with(|c: char| c.is_ascii_digit()) => b,
                _ => {
                    kept.push(arg);
                    continue;
                }
            },
        };
        if body.is_empty() {
            // `--`: everything after is positional.
            kept.push(arg);
            kept.extend(it.by_ref());
            break;
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&(flag, kind, handling)) = FLAGS.iter().find(|(f, _, _)| *f == name) else {
            // One of Concord's own (or unknown, which clap reports), in
            // clap's double-dash spelling.
            kept.push(if text.starts_with("--") {
                arg
            } else {
                OsString::from(format!("-{text}"))
            });
            continue;
        };
        let value = match (inline, kind) {
            (Some(v), _) => v,
            (None, Switch) => match it.peek().and_then(|n| n.to_str()).filter(|n| is_bool(n)) {
                Some(_) => it.next().and_then(|v| v.into_string().ok()).unwrap_or_default(),
                None => "true".into(),
            },
            (None, Value) => it.next().and_then(|v| v.into_string().ok()).unwrap_or_default(),
        };
        match handling {
            Refuse(why) if !harmless(&value) => {
                return Err(RefusedFlag { flag, value, why });
            }
            Refuse(_) => {}
            Ignore(why) => ignored.push(IgnoredFlag {
                // Secrets (`--discovery-password`, a `user:password`) never reach the log.
                given: if ["password", "token", "user"].iter().any(|s| flag.contains(s)) {
                    format!("--{flag}=<redacted>")
                } else {
                    format!("--{flag}={value}")
                },
                why,
            }),
        }
    }
    Ok((kept, ignored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<(Vec<String>, Vec<String>), RefusedFlag> {
        let args = std::iter::once("concord")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let (kept, ignored) = strip(args)?;
        Ok((
            kept.into_iter().skip(1).map(|a| a.into_string().unwrap()).collect(),
            ignored.into_iter().map(|i| i.given).collect(),
        ))
    }

    #[test]
    fn every_spelling_of_a_switch_and_a_value() {
        let (kept, ignored) = run(&[
            "--name",
            "m1",
            "--enable-pprof",
            "--experimental-memory-mlock=true",
            "--socket-reuse-port",
            "false",
            "--max-wals",
            "5",
            "--backend-batch-limit=100",
            "-logger",
            "zap",
            "--pre-vote",
            "true",
        ])
        .unwrap();
        assert_eq!(kept, ["--name", "m1", "--pre-vote", "true"]);
        assert_eq!(
            ignored,
            [
                "--enable-pprof=true",
                "--experimental-memory-mlock=true",
                "--socket-reuse-port=false",
                "--max-wals=5",
                "--backend-batch-limit=100",
                "--logger=zap",
            ]
        );
    }

    #[test]
    fn etcd_environment_variables_become_flags_unless_given() {
        let args = vec![OsString::from("concord"), OsString::from("--name=cli")];
        let env = [
            ("ETCD_NAME", "env"),
            ("ETCD_MAX_WALS", "5"),
            ("ETCD_DATA_DIR", "/d"),
            ("CONCORD_DATA_DIR", "/c"),
            ("ETCDCTL_API", "3"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let known = ["name".to_string(), "data-dir".to_string()];
        let (out, unknown) = with_etcd_env(args, env, &known);
        let out: Vec<String> = out.into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(out, ["concord", "--name=cli", "--max-wals=5"]);
        assert!(unknown.is_empty(), "{unknown:?}");
        let arm = [("ETCD_UNSUPPORTED_ARCH".to_string(), "arm64".to_string())];
        let (_, unknown) = with_etcd_env(vec![OsString::from("concord")], arm, &known);
        assert_eq!(unknown, ["ETCD_UNSUPPORTED_ARCH"]);
    }

    #[test]
    fn secrets_are_not_repeated() {
        let (_, ignored) = run(&["--discovery-password", "hunter2", "--discovery-user=root:pw"]).unwrap();
        assert_eq!(
            ignored,
            ["--discovery-password=<redacted>", "--discovery-user=<redacted>"]
        );
    }

    #[test]
    fn go_single_dash_spelling_reaches_clap_as_double_dash() {
        let (kept, _) = run(&["-name", "m1", "-data-dir=/x", "-v"]).unwrap();
        assert_eq!(kept, ["--name", "m1", "--data-dir=/x", "-v"]);
    }

    #[test]
    fn a_switch_followed_by_another_flag_takes_no_value() {
        let (kept, ignored) = run(&["--enable-pprof", "--name", "x"]).unwrap();
        assert_eq!(
            (kept, ignored),
            (
                vec!["--name".to_string(), "x".into()],
                vec!["--enable-pprof=true".to_string()]
            )
        );
    }

    #[test]
    fn restrictions_that_cannot_be_honoured_stop_the_start() {
        let e = run(&["--discovery", "https://discovery.etcd.io/abc"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("--discovery=https://discovery.etcd.io/abc: bootstrap"),
            "{e}"
        );
        // Asking for nothing is fine.
        assert!(run(&["--discovery-srv", "", "--discovery=false"]).is_ok());
    }

    #[test]
    fn every_flag_of_the_table_is_taken_in_both_syntaxes() {
        for &(flag, kind, handling) in FLAGS {
            if matches!(handling, Refuse(_)) {
                continue;
            }
            let value = if kind == Switch { "true" } else { "1" };
            let joined = format!("--{flag}={value}");
            let (kept, ignored) = run(&[&joined, "--name", "n"]).unwrap();
            assert_eq!((kept.len(), ignored.len()), (2, 1), "{joined}");
            let (kept, ignored) = run(&[&format!("--{flag}"), value, "--name", "n"]).unwrap();
            assert_eq!((kept.len(), ignored.len()), (2, 1), "--{flag} {value}");
        }
    }
}
