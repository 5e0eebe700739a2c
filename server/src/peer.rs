//! What the server knows of a client connection, attached to every request
//! on it (gRPC and gateway alike).

use std::net::SocketAddr;

/// A client connection: its address, and the common name of its verified
/// certificate when `--client-cert-auth` is on.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The client's address.
    pub addr: SocketAddr,
    /// The verified certificate's common name.
    pub cert_user: Option<String>,
}
