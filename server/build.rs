//! Generates the tonic service traits and clients for etcd's services. The
//! message types are core's (`extern_path`), so nothing is generated twice.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../core/proto");
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
