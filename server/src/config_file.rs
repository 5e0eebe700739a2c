//! `--config-file` in etcd's YAML format: the keys are the flags' names
//! (`name`, `data-dir`, `listen-client-urls`, …), lists are comma-joined,
//! and `client-transport-security` / `peer-transport-security` hold the
//! TLS settings (`cert-file`, `key-file`, `client-cert-auth`,
//! `trusted-ca-file`, …). As with etcd, a config file replaces the other
//! flags and environment variables: the file is turned into a command line
//! and read as one.

use std::ffi::OsString;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

/// Why a config file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not YAML, or not a mapping of settings.
    #[error("{path} is not an etcd config file: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A setting's value as a flag value; `None` for null (unset).
fn value(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Array(items) => Some(items.iter().filter_map(value).collect::<Vec<_>>().join(",")),
        _ => None,
    }
}

/// The flag a key of `client-transport-security` (or the peer's, with
/// `peer`) stands for.
fn tls_flag(key: &str, peer: bool) -> String {
    let flag = match (key, peer) {
        ("crl-file", false) => "client-crl-file",
        ("allowed-hostname", false) => "client-cert-allowed-hostname",
        ("allowed-cn", true) => "cert-allowed-cn",
        ("allowed-hostname", true) => "cert-allowed-hostname",
        (k, _) => k,
    };
    if peer {
        format!("peer-{flag}")
    } else {
        flag.to_string()
    }
}

/// The command line (program name first) the YAML `text` stands for.
pub fn args_from_yaml(program: OsString, path: &str, text: &str) -> Result<Vec<OsString>, ConfigFileError> {
    let parse = |reason: String| ConfigFileError::Parse {
        path: path.to_string(),
        reason,
    };
    let docs = YamlLoader::load_from_str(text).map_err(|e| parse(e.to_string()))?;
    let mut args = vec![program];
    let Some(doc) = docs.first() else {
        return Ok(args);
    };
    let Yaml::Hash(settings) = doc else {
        return Err(parse("the top level must be a mapping of settings".into()));
    };
    for (k, v) in settings {
        let Some(key) = k.as_str() else {
            return Err(parse(format!("a key is not a name: {k:?}")));
        };
        let peer = match key {
            "client-transport-security" => false,
            "peer-transport-security" => true,
            _ => {
                if let Some(v) = value(v) {
                    args.push(OsString::from(format!("--{key}={v}")));
                }
                continue;
            }
        };
        let Yaml::Hash(tls) = v else {
            if matches!(v, Yaml::Null) {
                continue;
            }
            return Err(parse(format!("{key} must be a mapping")));
        };
        for (tk, tv) in tls {
            let Some(tkey) = tk.as_str() else {
                return Err(parse(format!("a key of {key} is not a name")));
            };
            if let Some(v) = value(tv) {
                args.push(OsString::from(format!("--{}={v}", tls_flag(tkey, peer))));
            }
        }
    }
    Ok(args)
}

/// Reads `path` as [`args_from_yaml`] does.
pub fn args_from_file(program: OsString, path: &Path) -> Result<Vec<OsString>, ConfigFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: shown.clone(),
        source,
    })?;
    args_from_yaml(program, &shown, &text)
}

/// The `--config-file` (or `-config-file`) value given on a command line.
pub fn config_file_arg(args: &[OsString]) -> Option<OsString> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let Some(s) = a.to_str() else { continue };
        let body = s.strip_prefix("--").or_else(|| s.strip_prefix('-')).unwrap_or("");
        if body == "config-file" {
            return it.next().cloned();
        }
        if let Some(v) = body.strip_prefix("config-file=") {
            return Some(OsString::from(v));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        args_from_yaml("concord".into(), "c.yaml", text)
            .unwrap()
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn etcds_sample_keys_become_flags() {
        let a = args(
            "name: 'm1'\n\
             data-dir: /var/lib/etcd\n\
             snapshot-count: 10000\n\
             listen-client-urls: http://127.0.0.1:2379,http://10.0.0.1:2379\n\
             log-outputs: [stderr, /var/log/etcd.log]\n\
             enable-v2: true\n\
             discovery:\n\
             client-transport-security:\n  cert-file: /c.pem\n  client-cert-auth: false\n  crl-file: ''\n\
             peer-transport-security:\n  key-file: /p.key\n  allowed-cn:\n",
        );
        assert_eq!(
            a,
            [
                "--name=m1",
                "--data-dir=/var/lib/etcd",
                "--snapshot-count=10000",
                "--listen-client-urls=http://127.0.0.1:2379,http://10.0.0.1:2379",
                "--log-outputs=stderr,/var/log/etcd.log",
                "--enable-v2=true",
                "--cert-file=/c.pem",
                "--client-cert-auth=false",
                "--client-crl-file=",
                "--peer-key-file=/p.key",
            ]
        );
    }

    #[test]
    fn a_file_that_is_not_settings_is_refused() {
        assert!(args_from_yaml("c".into(), "c.yaml", "- a\n- b\n").is_err());
        assert!(args_from_yaml("c".into(), "c.yaml", "a: [\n").is_err());
        assert!(args_from_yaml("c".into(), "c.yaml", "client-transport-security: 3\n").is_err());
    }

    #[test]
    fn the_flag_is_found_in_either_spelling() {
        let cl = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(config_file_arg(&cl(&["c", "--config-file", "/x"])), Some("/x".into()));
        assert_eq!(config_file_arg(&cl(&["c", "-config-file=/y"])), Some("/y".into()));
        assert_eq!(config_file_arg(&cl(&["c", "--name", "n"])), None);
    }
}
