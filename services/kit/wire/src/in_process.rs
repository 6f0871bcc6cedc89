//! The servers this process runs, by the address each listens on, so that
//! a call from one service to another in the same process (the embedded
//! shop) goes straight to the callee's app: through the same client stack
//! on the way out and the same layers and handlers on the way in, without
//! a socket, HTTP/2 framing or the threads they wake. Only plain (h2c)
//! listeners are found here: a TLS listener's callers prove who they are
//! with their certificate, which only the handshake shows, so they go on
//! the wire as before.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, OnceLock, RwLock, Weak},
};

use tower::util::BoxCloneSyncService;

/// A server's app as an in-process caller reaches it.
pub type App = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// Each server's app, with the token of the registration that put it
/// there.
type Servers = RwLock<HashMap<SocketAddr, (App, Arc<()>)>>;

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(Servers::default)
}

/// A server found in process while this lives: dropped when it stops
/// serving, after which its callers find nothing here and go on the wire
/// (where they find it closed, as they would in another process).
#[derive(Debug)]
#[must_use = "the server is found in process only while this lives"]
pub struct Registration {
    addr: SocketAddr,
    /// Tells this registration from a later one on the same address.
    token: Arc<()>,
}

/// Makes `app`, listening on `addr`, reachable in process.
pub fn register(addr: SocketAddr, app: App) -> Registration {
    let token = Arc::new(());
    servers()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(addr, (app, token.clone()));
    Registration { addr, token }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut servers = servers().write().unwrap_or_else(|e| e.into_inner());
        if servers
            .get(&self.addr)
            .is_some_and(|(_, token)| Arc::ptr_eq(token, &self.token))
        {
            servers.remove(&self.addr);
        }
    }
}

/// A server found in process: its app, for as long as it serves.
#[derive(Clone)]
pub struct Found {
    pub app: App,
    serving: Weak<()>,
}

impl Found {
    /// Whether the server still serves (its registration lives): a caller
    /// holding it asks before each call, as it would find a connection
    /// closed.
    pub fn serving(&self) -> bool {
        self.serving.strong_count() > 0
    }
}

/// The app of the server this process runs on `addr`, if any: listening
/// there, or on every address (`0.0.0.0`, `::`) with `addr` a loopback
/// one on its port.
pub fn find(addr: SocketAddr) -> Option<Found> {
    let servers = servers().read().unwrap_or_else(|e| e.into_inner());
    if servers.is_empty() {
        return None;
    }
    let on = |ip: std::net::IpAddr| servers.get(&SocketAddr::new(ip, addr.port()));
    let found = servers.get(&addr).or_else(|| {
        addr.ip()
            .is_loopback()
            .then(|| {
                on(std::net::Ipv4Addr::UNSPECIFIED.into())
                    .or_else(|| on(std::net::Ipv6Addr::UNSPECIFIED.into()))
            })
            .flatten()
    });
    found.map(|(app, token)| Found {
        app: app.clone(),
        serving: Arc::downgrade(token),
    })
}
