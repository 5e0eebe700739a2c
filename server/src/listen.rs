//! The sockets a member serves on, bound before it starts: by
//! [`Listeners::bind`] from the settings' URLs, or, for clients, handed in
//! by an embedder that bound them itself ([`Listeners::with_clients`]).

use std::net::{SocketAddr, TcpListener};

use crate::config;
use crate::settings::Settings;
use crate::ServerError;

/// One bound socket and the URL it serves (its scheme says whether TLS).
#[derive(Debug)]
pub struct Listener {
    pub(crate) url: String,
    pub(crate) socket: TcpListener,
    pub(crate) addr: SocketAddr,
}

impl Listener {
    /// Binds `url` (`http://host:port` or `https://…`; port 0 picks a free one).
    pub fn bind(url: &str) -> Result<Listener, ServerError> {
        let (host, port) = config::host_port(url)?;
        let listen_err = |source| ServerError::Listen {
            url: url.to_string(),
            source,
        };
        let socket = TcpListener::bind((host.as_str(), port)).map_err(listen_err)?;
        Listener::new(url, socket)
    }

    /// A socket the caller bound, serving `url`'s scheme.
    pub fn new(url: &str, socket: TcpListener) -> Result<Listener, ServerError> {
        let listen_err = |source| ServerError::Listen {
            url: url.to_string(),
            source,
        };
        socket.set_nonblocking(true).map_err(listen_err)?;
        let addr = socket.local_addr().map_err(listen_err)?;
        Ok(Listener {
            url: url.to_string(),
            socket,
            addr,
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket for tokio (inside a runtime).
    pub(crate) fn into_tokio(self) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
        let addr = self.addr;
        let url = self.url;
        tokio::net::TcpListener::from_std(self.socket)
            .map(|l| (l, addr))
            .map_err(|source| ServerError::Listen { url, source })
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.url.starts_with("https://")
    }
}

/// Every socket a member serves on.
#[derive(Debug, Default)]
pub struct Listeners {
    /// gRPC and HTTP (gateway, v2, probes, metrics).
    pub client: Vec<Listener>,
    /// Other members' raft traffic (a cluster member only).
    pub peer: Vec<Listener>,
    /// Probes and metrics only (`--listen-metrics-urls`).
    pub metrics: Vec<Listener>,
}

impl Listeners {
    /// Binds every URL of `settings` (peer URLs only for a cluster member)
    /// and makes advertised client URLs with port 0 name the port bound.
    pub fn bind(settings: &mut Settings) -> Result<Listeners, ServerError> {
        let mut client = Vec::new();
        for url in settings.listen_client_urls.clone() {
            let l = Listener::bind(&url)?;
            if config::host_port(&url)?.1 == 0 {
                settings.advertise_bound(&url, l.addr);
            }
            client.push(l);
        }
        Listeners::with_clients(settings, client)
    }

    /// `client`, sockets the caller bound for clients (an embedded server
    /// that must know its port first), and the peer and metrics URLs of
    /// `settings`, bound here.
    pub fn with_clients(settings: &Settings, client: Vec<Listener>) -> Result<Listeners, ServerError> {
        let mut out = Listeners {
            client,
            ..Default::default()
        };
        for url in &settings.listen_metrics_urls {
            out.metrics.push(Listener::bind(url)?);
        }
        if let Some(cluster) = &settings.cluster {
            for url in &cluster.listen_peer_urls {
                out.peer.push(Listener::bind(url)?);
            }
        }
        Ok(out)
    }
}
