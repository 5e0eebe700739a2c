//! etcd's gRPC services over the core service: each file decodes, calls
//! core, and encodes; etcd's errors become gRPC statuses with etcd's codes
//! and messages.

mod auth;
mod cluster;
mod election;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod watch;

use std::sync::Arc;

use concord_core::api::error::EtcdError;
use concord_core::service::{Caller, EtcdService};
use tonic::service::Routes;

use crate::pb::etcdserverpb::auth_server::AuthServer;
use crate::pb::etcdserverpb::cluster_server::ClusterServer;
use crate::pb::etcdserverpb::kv_server::KvServer;
use crate::pb::etcdserverpb::lease_server::LeaseServer;
use crate::pb::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::pb::etcdserverpb::watch_server::WatchServer;
use crate::pb::v3electionpb::election_server::ElectionServer;
use crate::pb::v3lockpb::lock_server::LockServer;
use crate::peer::PeerInfo;

/// The gRPC status etcd sends for `e`.
pub fn status(e: EtcdError) -> tonic::Status {
    tonic::Status::new(tonic::Code::from(e.code() as i32), e.to_string())
}

/// Who sent `r`: the token from the `token` metadata (etcd's clients) or
/// `authorization`; the connection's address and verified certificate name.
pub fn caller<T>(r: &tonic::Request<T>) -> Caller {
    let md = r.metadata();
    let token = md
        .get("token")
        .or_else(|| md.get("authorization"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let peer = r.extensions().get::<PeerInfo>();
    Caller::client(token, peer.and_then(|p| p.cert_user.clone()), peer.map(|p| p.addr.ip()))
}

/// All gRPC services, ready to mount beside the gateway.
pub fn routes(svc: Arc<EtcdService>) -> Routes {
    // Core refuses what is over the transport limit with etcd's message;
    // tonic only stops what is far beyond it, so memory stays bounded.
    let limit = svc.transport_limit() * 2;
    Routes::new(
        KvServer::new(kv::Kv(Arc::clone(&svc)))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(MaintenanceServer::new(maintenance::Maintenance(Arc::clone(&svc))).max_decoding_message_size(limit))
    .add_service(ClusterServer::new(cluster::Cluster(Arc::clone(&svc))).max_decoding_message_size(limit))
    .add_service(LeaseServer::new(lease::Lease(Arc::clone(&svc))).max_decoding_message_size(limit))
    .add_service(AuthServer::new(auth::Auth(Arc::clone(&svc))).max_decoding_message_size(limit))
    .add_service(LockServer::new(lock::Lock(Arc::clone(&svc))).max_decoding_message_size(limit))
    .add_service(ElectionServer::new(election::Election(Arc::clone(&svc))).max_decoding_message_size(limit))
    .add_service(WatchServer::new(watch::Watch(svc)).max_decoding_message_size(limit))
}
