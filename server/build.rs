//! Generates the tonic service traits and clients for etcd's services. The
//! message types are core's (`extern_path`), so nothing is generated twice.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../core/proto");
    git_sha();
    let fds = protox::compile(
        [
            "etcdserverpb/rpc.proto",
            "v3lockpb/v3lock.proto",
            "v3electionpb/v3election.proto",
        ],
        ["../core/proto"],
    )?;
    let mut cfg = tonic_prost_build::configure().build_server(true).build_client(true);
    for pkg in ["mvccpb", "authpb", "etcdserverpb", "v3lockpb", "v3electionpb"] {
        cfg = cfg.extern_path(format!(".{pkg}"), format!("::concord_core::api::{pkg}"));
    }
    cfg.compile_fds(fds)?;
    Ok(())
}

/// The commit built, for `concord --version` (`CONCORD_GIT_SHA`), when the
/// source is a git checkout.
fn git_sha() {
    let git = std::path::Path::new("../.git");
    if git.join("HEAD").exists() {
        println!("cargo:rerun-if-changed=../.git/HEAD");
        if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
            if let Some(r) = head.trim().strip_prefix("ref: ") {
                if git.join(r).exists() {
                    println!("cargo:rerun-if-changed=../.git/{r}");
                }
            }
        }
    }
    let sha = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CONCORD_GIT_SHA={sha}");
}
