//! libconcord: Concord's shared client (`concord_core::client`, with its
//! failover, watch resume, keep-alive and token renewal) as a C library,
//! for C, Perl XS and any language with a C FFI. Each function converts
//! C arguments and results; the client does the work.
//!
//! # Layout
//! - `guard`: the panic boundary and pointer checks every function uses.
//! - `error`: status codes and the caller-owned error object.
//! - `client`: the client handle; `kv`: put, range, delete;
//!   `watch`: callbacks on a background thread; `lease`: leases, keep-alive;
//!   `election`: locks and elections; `cluster`: status and members;
//!   `txn`: transactions.
//!
//! The header is `include/concord.h` (cbindgen, from these sources).

pub mod auth;
pub mod client;
pub mod cluster;
pub mod election;
pub mod error;
pub mod guard;
pub mod kv;
pub mod lease;
pub mod test_hooks;
pub mod txn;
pub mod watch;
