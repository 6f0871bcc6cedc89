//! A certificate authority for development and tests (`shop certs`): a CA,
//! a server certificate per service and a client certificate per service,
//! made with rcgen (ECDSA P-256, on ring). Which services, their trust
//! domain and namespace, the application says.

use std::{net::IpAddr, path::Path};

use chrono::{Datelike, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};

use super::{ServiceNames, TlsError};

/// The CA's certificate and key, as `write_shop` names them.
const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";

/// How long the CA is valid, in days.
const CA_DAYS: i64 = 3650;
/// How long a certificate it issues is valid, in days.
const LEAF_DAYS: i64 = 397;

/// A certificate and its private key, as PEM text.
pub struct IssuedPem {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for IssuedPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPem").finish_non_exhaustive()
    }
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
}

/// A development CA.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert: String,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

/// The calendar date `days` from today (negative: in the past), as
/// `rcgen::date_time_ymd` takes it.
fn ymd(days: i64) -> (i32, u8, u8) {
    let date = (Utc::now() + chrono::Duration::days(days)).date_naive();
    (
        date.year(),
        u8::try_from(date.month()).unwrap_or(1),
        u8::try_from(date.day()).unwrap_or(1),
    )
}

/// Sets a certificate's validity: from yesterday (clocks differ) for
/// `days`, or, for tests, a span that ended yesterday.
fn valid_for(params: &mut CertificateParams, days: i64) {
    let (from, to) = if days > 0 {
        (-1, days)
    } else {
        (days - 30, -1)
    };
    let (y, m, d) = ymd(from);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = ymd(to);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

/// A subject alternative name: `spiffe://...` a URI, an IP address, else
/// a DNS name.
fn san(name: &str) -> Result<SanType, TlsError> {
    let text = |name: &str| rcgen::string::Ia5String::try_from(name);
    if name.contains("://") {
        return Ok(SanType::URI(text(name)?));
    }
    Ok(match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(text(name)?),
    })
}

/// The names a service's server certificate carries: loopback, its own
/// name and its Kubernetes names in `namespace` (its Service and its
/// headless `<service>-replicas` Service).
pub fn server_names(service: &str, namespace: &str) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for host in [service.to_owned(), format!("{service}-replicas")] {
        names.push(host.clone());
        for suffix in [
            namespace.to_owned(),
            format!("{namespace}.svc"),
            format!("{namespace}.svc.cluster.local"),
        ] {
            names.push(format!("{host}.{suffix}"));
        }
    }
    names
}

impl DevCa {
    /// A new CA, valid ten years.
    pub fn new(name: &str) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        valid_for(&mut params, CA_DAYS);
        let cert = params.self_signed(&key)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert,
        })
    }

    /// The CA `write_shop` kept in `dir` (`ca.pem` and `ca-key.pem`), to
    /// renew certificates under the CA every service already trusts; None
    /// when `dir` holds no CA. A certificate without its key, or a CA that
    /// has expired, is an error that says what to do.
    pub fn open(dir: &Path) -> Result<Option<Self>, TlsError> {
        let (cert_path, key_path) = (dir.join(CA_FILE), dir.join(CA_KEY_FILE));
        match (cert_path.exists(), key_path.exists()) {
            (false, false) => return Ok(None),
            (true, false) => {
                return Err(TlsError::Pem {
                    path: cert_path,
                    what: format!(
                        "a CA without its key ({CA_KEY_FILE}), so it cannot issue: \
                         make a new one with --new-ca (every service must then get the new files)"
                    ),
                });
            }
            (false, true) => {
                return Err(TlsError::Pem {
                    path: key_path,
                    what: format!("a CA key without its certificate ({CA_FILE})"),
                });
            }
            (true, true) => {}
        }
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let (cert, key_pem) = (read(&cert_path)?, read(&key_path)?);
        let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Pem {
            path: key_path.clone(),
            what: format!("not a usable CA key ({e})"),
        })?;
        let rejected = |reason: String| TlsError::Rejected {
            path: cert_path.clone(),
            reason,
        };
        let (_, parsed) = x509_parser::pem::parse_x509_pem(cert.as_bytes())
            .map_err(|e| rejected(format!("not a PEM certificate ({e})")))?;
        let x509 = parsed
            .parse_x509()
            .map_err(|e| rejected(format!("not a certificate ({e})")))?;
        if !x509.validity().is_valid() {
            return Err(rejected(
                "the CA has expired: make a new one with --new-ca".to_owned(),
            ));
        }
        let issuer = Issuer::from_ca_cert_pem(&cert, key).map_err(|e| {
            rejected(format!(
                "not a CA certificate this key can issue with ({e})"
            ))
        })?;
        if issuer.key().subject_public_key_info() != x509.public_key().raw {
            return Err(TlsError::KeyMismatch {
                cert: cert_path,
                key: key_path,
            });
        }
        Ok(Some(Self { issuer, cert }))
    }

    /// The CA's certificate (what clients and servers trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert
    }

    /// A certificate for `names` (see [`san`]), for `usage`, valid `days`
    /// (zero or less: expired, for tests).
    pub fn issue(
        &self,
        common_name: &str,
        names: &[String],
        usage: Usage,
        days: i64,
    ) -> Result<IssuedPem, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        valid_for(&mut params, days);
        let cert = params.signed_by(&key, &self.issuer)?.pem();
        Ok(IssuedPem {
            cert,
            key: key.serialize_pem(),
        })
    }

    /// A service's server certificate: loopback, the service's name, and
    /// `hosts` (e.g. its [`server_names`] in a Kubernetes namespace).
    pub fn server(&self, service: &str, hosts: &[String]) -> Result<IssuedPem, TlsError> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            service.to_owned(),
        ];
        for host in hosts {
            if !names.contains(host) {
                names.push(host.clone());
            }
        }
        self.issue(service, &names, Usage::Server, LEAF_DAYS)
    }

    /// A service's client certificate: its SPIFFE ID among `services`.
    pub fn client(&self, services: &ServiceNames, service: &str) -> Result<IssuedPem, TlsError> {
        self.issue(
            service,
            &[services.spiffe_id(service)],
            Usage::Client,
            LEAF_DAYS,
        )
    }

    /// Writes `ca.pem` and `ca-key.pem`, and for each of `services`
    /// `<service>.pem` and `<service>-key.pem` (server: its
    /// [`server_names`] in `namespace`, and `hosts`) and
    /// `<service>-client.pem` and `<service>-client-key.pem` (client) into
    /// `dir`, keys readable by their owner only. Returns the files written.
    /// The CA's key is kept, so running it again ([`Self::open`]) renews
    /// the certificates under the same CA: services that reload the new
    /// files keep trusting those that have not yet.
    pub fn write_services(
        &self,
        dir: &Path,
        services: &ServiceNames,
        namespace: &str,
        hosts: &[String],
    ) -> Result<Vec<std::path::PathBuf>, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let mut written = vec![
            write(dir, CA_FILE, &self.cert, false)?,
            write(dir, CA_KEY_FILE, &self.issuer.key().serialize_pem(), true)?,
        ];
        for service in services.services() {
            let mut names = server_names(service, namespace);
            names.extend(hosts.iter().cloned());
            let server = self.server(service, &names)?;
            written.push(write(dir, &format!("{service}.pem"), &server.cert, false)?);
            written.push(write(
                dir,
                &format!("{service}-key.pem"),
                &server.key,
                true,
            )?);
            let client = self.client(services, service)?;
            written.push(write(
                dir,
                &format!("{service}-client.pem"),
                &client.cert,
                false,
            )?);
            written.push(write(
                dir,
                &format!("{service}-client-key.pem"),
                &client.key,
                true,
            )?);
        }
        Ok(written)
    }
}

/// Writes one file (a key: mode 0600), replacing it whole: a reader never
/// sees half a file (a service reloading it, say).
fn write(dir: &Path, name: &str, text: &str, secret: bool) -> Result<std::path::PathBuf, TlsError> {
    let path = dir.join(name);
    let failed = |source| TlsError::Write {
        path: path.clone(),
        source,
    };
    let temporary = dir.join(format!(".{name}.tmp"));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(failed)?;
        file.write_all(text.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
    }
    std::fs::rename(&temporary, &path).map_err(failed)?;
    Ok(path)
}
