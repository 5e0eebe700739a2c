//! tonic service traits and clients for etcd's gRPC services.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `etcdserverpb` services: KV, Watch, Lease, Cluster, Maintenance, Auth.
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

/// `v3lockpb.Lock`.
pub mod v3lockpb {
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.rs"));
}

/// `v3electionpb.Election`.
pub mod v3electionpb {
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.rs"));
}
