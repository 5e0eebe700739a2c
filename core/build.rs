//! Compiles the etcd v3 wire contract in `proto/` into Rust types (prost) and
//! their JSON mapping (pbjson, proto field names kept, as etcd's gateway does).
//! `protox` parses the files in Rust, so no `protoc` binary is needed.

use std::env;
use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "mvccpb/kv.proto",
    "authpb/auth.proto",
    "etcdserverpb/rpc.proto",
    "v3lockpb/v3lock.proto",
    "v3electionpb/v3election.proto",
    "concordpb/internal.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out.join("concord_descriptor.bin");
    std::fs::write(&descriptor_path, fds.encode_to_vec())?;

    prost_build::Config::new()
        .file_descriptor_set_path(&descriptor_path)
        .compile_fds(fds.clone())?;

    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptor_path)?)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[".mvccpb", ".authpb", ".etcdserverpb", ".v3lockpb", ".v3electionpb"])?;
    Ok(())
}
