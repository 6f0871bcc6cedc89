//! How the shop's own URLs and commands (the banner's, the dashboard's)
//! reach its services: the scheme, and the CA curl must trust.

use std::net::SocketAddr;

use crate::cli::kit::KitArgs;

/// How the banner's URLs and commands reach the services.
pub struct Calling {
    scheme: &'static str,
    /// curl's and buf curl's options for it (the CA to trust, or h2c).
    curl: String,
    buf: String,
}

impl Calling {
    pub fn new(kit: &KitArgs) -> Self {
        let ca = match (&kit.tls_dir, &kit.client_tls.tls_ca) {
            (Some(dir), _) => Some(dir.join("ca.pem")),
            (None, Some(ca)) => Some(ca.clone()),
            (None, None) => None,
        };
        match ca.filter(|_| kit.serves_tls()) {
            Some(ca) => Self {
                scheme: "https",
                curl: format!("-s --cacert {}", ca.display()),
                buf: format!("--cacert {}", ca.display()),
            },
            None => Self {
                scheme: if kit.serves_tls() { "https" } else { "http" },
                curl: "-s".to_owned(),
                buf: "--http2-prior-knowledge".to_owned(),
            },
        }
    }

    /// curl's options for the services (`-s`, and the CA to trust).
    pub fn curl(&self) -> &str {
        &self.curl
    }

    /// buf curl's options for the services (the CA, or h2c).
    pub fn buf(&self) -> &str {
        &self.buf
    }

    /// A service's base URL (localhost, the name its certificate carries).
    pub fn url(&self, addr: SocketAddr) -> String {
        if self.scheme == "https" && addr.ip().is_loopback() {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("{}://{addr}", self.scheme)
        }
    }
}
