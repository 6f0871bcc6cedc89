//! Which NATS server a service's events go to, named as every NATS client
//! names one: a URL (`nats://host:4222`, `tls://host:4222` for TLS, several
//! separated by commas) carrying its credentials, a token
//! (`nats://TOKEN@host:4222`) or a user and password
//! (`nats://USER:PASSWORD@host:4222`), and, for a server whose certificate
//! a private CA signed, that CA.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

/// A NATS server to connect to. Its `Debug` hides the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsServer {
    url: String,
    ca: Option<PathBuf>,
}

/// What the URL says to authenticate with.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Credentials {
    Token(String),
    UserAndPassword(String, String),
}

impl NatsServer {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca: None,
        }
    }

    /// Checks the server's TLS certificate against the CAs of this PEM
    /// file (`NATS_CA`) rather than the system's.
    pub fn with_ca(mut self, ca: Option<PathBuf>) -> Self {
        self.ca = ca;
        self
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    pub(super) fn ca(&self) -> Option<&PathBuf> {
        self.ca.as_ref()
    }

    /// Whether the URL asks for TLS (`tls://`).
    pub(super) fn tls(&self) -> bool {
        self.url.trim_start().starts_with("tls://")
    }

    /// The credentials in the (first) URL, if any: its user part alone is a
    /// token, a user and a password otherwise (percent-decoded).
    pub(super) fn credentials(&self) -> Option<Credentials> {
        let userinfo = userinfo(first_url(&self.url))?;
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        Some(match userinfo.split_once(':') {
            Some((user, password)) => Credentials::UserAndPassword(decode(user), decode(password)),
            None => Credentials::Token(decode(userinfo)),
        })
    }

    /// The URL without its credentials, for logs and errors.
    pub fn redacted(&self) -> String {
        self.url
            .split(',')
            .map(|url| match userinfo(url) {
                Some(info) => url.replacen(&format!("{info}@"), "***@", 1),
                None => url.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Debug for NatsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsServer")
            .field("url", &self.redacted())
            .field("ca", &self.ca)
            .finish()
    }
}

fn first_url(urls: &str) -> &str {
    urls.split(',').next().unwrap_or(urls).trim()
}

/// The part of a URL's authority before `@`, if there is one.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map(|(info, _)| info)
        .filter(|info| !info.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_url_as_in_every_nats_client() {
        let plain = NatsServer::new("nats://nats:4222");
        assert_eq!(plain.credentials(), None);
        assert!(!plain.tls());
        let token = NatsServer::new("tls://s3cr%2Ft@nats:4222");
        assert_eq!(
            token.credentials(),
            Some(Credentials::Token("s3cr/t".into()))
        );
        assert!(token.tls());
        let user = NatsServer::new("nats://shop:pa%40ss@a:4222,nats://shop:pa%40ss@b:4222");
        assert_eq!(
            user.credentials(),
            Some(Credentials::UserAndPassword("shop".into(), "pa@ss".into()))
        );
    }

    #[test]
    fn credentials_never_reach_a_log() {
        let server = NatsServer::new("nats://shop:secret@a:4222,tls://token@b:4222");
        assert_eq!(server.redacted(), "nats://***@a:4222,tls://***@b:4222");
        assert!(!format!("{server:?}").contains("secret"));
        assert!(!format!("{server:?}").contains("token"));
    }
}
