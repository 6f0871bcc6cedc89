//! How one service speaks TLS: from `--tls-dir` (its own certificate and
//! client certificate, mutual TLS between the services), else the kit's
//! TLS flags, the same for every service.

use shop_kit::tls::{ClientTls, ServerTlsConfig};

use crate::cli::kit::KitArgs;

pub struct ServiceTls {
    pub server: ServerTlsConfig,
    pub client: Option<ClientTls>,
}

impl ServiceTls {
    /// `service`'s TLS; `shared` is the client TLS of the flags, loaded once.
    pub fn for_service(
        kit: &KitArgs,
        name: &str,
        shared: &Option<ClientTls>,
    ) -> anyhow::Result<Self> {
        let Some(dir) = &kit.tls_dir else {
            return Ok(Self {
                server: (&kit.server_tls).into(),
                client: shared.clone(),
            });
        };
        let ca = dir.join("ca.pem");
        if !ca.exists() {
            anyhow::bail!(
                "--tls-dir {}: no ca.pem there; write the shop's certificates first with \
                 `shop certs {}`",
                dir.display(),
                dir.display()
            );
        }
        let client = ClientTls::load(
            ca.clone(),
            Some((
                dir.join(format!("{name}-client.pem")),
                dir.join(format!("{name}-client-key.pem")),
            )),
        )
        .map_err(|e| anyhow::anyhow!("{name}: TLS: {e}"))?;
        Ok(Self {
            server: ServerTlsConfig {
                tls_cert: Some(dir.join(format!("{name}.pem"))),
                tls_key: Some(dir.join(format!("{name}-key.pem"))),
                tls_client_ca: Some(ca),
                tls_require_service_cert: true,
                tls_allow_plaintext: false,
                service_names: shop_proto::identity::service_names(),
            },
            client: Some(client),
        })
    }
}
