//! Who a client certificate says its caller is. A deployment's services
//! carry a SPIFFE ID, `spiffe://<trust domain>/<service>` (a URI SAN); a
//! DNS SAN whose first label is a service's name (`orders`,
//! `orders.shop.svc`) names that service too. Anything else names none.
//! Which services there are, and their trust domain, the application says
//! ([`ServiceNames`]): the kit knows none.

use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use x509_parser::{extensions::GeneralName, prelude::FromDer};

/// The services of one deployment and the SPIFFE trust domain of their
/// certificates, as the application gives them. The default names no
/// service: no certificate is then any service's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceNames {
    trust_domain: String,
    services: Arc<[String]>,
}

impl ServiceNames {
    pub fn new(
        trust_domain: impl Into<String>,
        services: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            trust_domain: trust_domain.into(),
            services: services.into_iter().map(Into::into).collect(),
        }
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The services' names.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(String::as_str)
    }

    /// Whether `name` is one of the services.
    pub fn contains(&self, name: &str) -> bool {
        self.services.iter().any(|service| service == name)
    }

    /// The SPIFFE ID a service's certificate carries.
    pub fn spiffe_id(&self, service: &str) -> String {
        format!("spiffe://{}/{service}", self.trust_domain)
    }
}

/// What a verified client certificate says of its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientIdentity {
    /// One of the shop's services, by name (`orders`).
    Service(String),
    /// None of the shop's services; what its names say, for messages.
    Unknown(String),
}

/// What a TLS connection tells each of its requests (absent on plain ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSession {
    /// The caller's verified client certificate, if it showed one.
    pub client: Option<ClientIdentity>,
    /// Whether the internal services here need a service's certificate.
    pub service_certificate_required: bool,
}

/// At most this many names of a certificate are quoted in messages.
const NAMES_QUOTED: usize = 3;

impl ClientIdentity {
    /// The identity a certificate (DER) carries in its subject alternative
    /// names, among `services`.
    pub fn of(certificate: &CertificateDer<'_>, services: &ServiceNames) -> Self {
        let Ok((_, parsed)) = x509_parser::certificate::X509Certificate::from_der(certificate)
        else {
            return Self::Unknown("an unreadable certificate".to_owned());
        };
        let names: Vec<String> = match parsed.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some(format!("URI:{uri}")),
                    GeneralName::DNSName(dns) => Some(format!("DNS:{dns}")),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let spiffe = names.iter().find_map(|name| {
            let id = name.strip_prefix("URI:")?;
            let service = id
                .strip_prefix("spiffe://")?
                .strip_prefix(services.trust_domain())?
                .strip_prefix('/')?;
            Some(service)
        });
        let by_dns = || {
            names.iter().find_map(|name| {
                let dns = name.strip_prefix("DNS:")?;
                dns.split('.').next()
            })
        };
        match spiffe.or_else(by_dns) {
            Some(service) if services.contains(service) => Self::Service(service.to_owned()),
            _ if names.is_empty() => Self::Unknown("a certificate with no DNS or URI name".into()),
            _ => {
                let mut quoted = names.iter().take(NAMES_QUOTED).cloned().collect::<Vec<_>>();
                if names.len() > NAMES_QUOTED {
                    quoted.push(format!("and {} more", names.len() - NAMES_QUOTED));
                }
                Self::Unknown(quoted.join(", "))
            }
        }
    }
}
