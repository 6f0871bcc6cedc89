//! What a start runs: for each service of the registry, what its contract
//! and the command line say it is given (`shop_kit::deploy::Given`), where
//! it listens and its TLS; then its own start. Alike for every service.

use std::{collections::BTreeMap, net::SocketAddr};

use secrecy::SecretString;
use shop_kit::{
    HttpConfig, Shutdown,
    auth::TokenKeys,
    client::{Calls, PeerPolicy, PeerTarget, Peers},
    deploy::{Given, Shared},
    observe::metrics::Metrics,
    tls::ClientTls,
};

use crate::{
    cli::{
        common::{Neighbourhood, database_url},
        kit::KitArgs,
        services::{ServiceFlags, ServicesArgs},
    },
    launch::{Launcher, Started},
    registered::{Configured, Registered},
    registry::SERVICES,
    service_tls::ServiceTls,
};

/// A service to start: what it is given, where it listens, how it serves.
pub struct Start {
    pub service: &'static Registered,
    pub configured: Configured,
    pub addr: SocketAddr,
    pub http: HttpConfig,
}

/// What every service of one start shares.
struct Context<'a> {
    kit: &'a KitArgs,
    args: &'a ServicesArgs,
    /// Each service's port: its flag's for the services started, its
    /// contract's for the others.
    ports: BTreeMap<&'static str, u16>,
    /// The client TLS of `--tls-ca`/`--tls-client-cert`, loaded once.
    shared_tls: Option<ClientTls>,
    /// The services' shared secret: as given, else a random one for this
    /// start (which only works when its services run in this process).
    secret: SecretString,
    /// How the services call each other: the contract's policy, and the
    /// --service-config file's, read once for every service.
    calls: Calls,
}

impl<'a> Context<'a> {
    fn new(kit: &'a KitArgs, args: &'a ServicesArgs) -> anyhow::Result<Self> {
        let mut ports: BTreeMap<&'static str, u16> = SERVICES
            .iter()
            .map(|service| (service.name(), service.deployed.port))
            .collect();
        for flags in &args.services {
            ports.insert(flags.service.name(), flags.port);
        }
        Ok(Self {
            kit,
            args,
            ports,
            shared_tls: shared_tls(kit)?,
            secret: args
                .secret
                .secret
                .clone()
                .unwrap_or_else(|| SecretString::from(uuid::Uuid::new_v4().simple().to_string())),
            calls: shop_proto::calls(kit.service_config.as_deref())?,
        })
    }

    fn around(&self, tls: &ServiceTls) -> Neighbourhood {
        Neighbourhood {
            host: self.kit.host,
            https: self.kit.serves_tls(),
            tls: tls.client.clone(),
        }
    }

    /// Where `service` is: as its `--NAME-url` says, else at its port on
    /// --host.
    fn place(&self, service: &str, around: &Neighbourhood) -> anyhow::Result<PeerTarget> {
        let port = self
            .ports
            .get(service)
            .ok_or_else(|| anyhow::anyhow!("{service} is no service of the shop"))?;
        let given = self.args.peer_urls.get(service);
        Ok(around.peer(
            given.map(|(target, _)| target),
            given.map_or("", |(_, flag)| flag),
            *port,
        ))
    }

    /// The port of the service that serves the web app, whose origin the
    /// services' CORS origins default to.
    fn web_app_port(&self) -> u16 {
        SERVICES
            .iter()
            .find(|service| service.serves_web_app)
            .and_then(|service| self.ports.get(service.name()).copied())
            .unwrap_or_default()
    }

    fn start(&self, flags: &ServiceFlags) -> anyhow::Result<Start> {
        let service = flags.service;
        let name = service.name();
        let deployed = service.deployed;
        let tls = ServiceTls::for_service(self.kit, name, &self.shared_tls)?;
        let around = self.around(&tls);
        let places: BTreeMap<&'static str, PeerTarget> = SERVICES
            .iter()
            .filter(|other| other.name() != name)
            .map(|other| Ok((other.name(), self.place(other.name(), &around)?)))
            .collect::<anyhow::Result<_>>()?;
        let mut peers = Peers::new(PeerPolicy {
            calls: self.calls.clone(),
            ..PeerPolicy::default()
        });
        for &peer in deployed.calls {
            let target = places.get(peer).cloned().ok_or_else(|| {
                anyhow::anyhow!("{name} calls {peer}, which is no other service of the shop")
            })?;
            peers = peers.with(peer, target);
        }
        let given = Given {
            database_url: deployed.database.then(|| {
                database_url(
                    flags.database.as_deref(),
                    &self.kit.data_dir,
                    name,
                    self.args.alone,
                )
            }),
            nats: if deployed.events {
                self.args.events.nats()
            } else {
                None
            },
            token_keys: TokenKeys::FromUsers {
                users: self.place(shop_proto::identity::TOKEN_SERVICE, &around)?,
                rules: shop_proto::identity::token_rules(),
            },
            peers,
            service_secret: if service.shares(Shared::ServiceSecret) {
                self.secret.clone()
            } else {
                SecretString::default()
            },
            demo_data: service.shares(Shared::DemoData) && !self.args.demo.off,
            whole_shop_on_loopback: !self.args.alone && self.kit.host.is_loopback(),
            places,
        };
        Ok(Start {
            service,
            configured: (service.configure)(&flags.matches, given)?,
            addr: SocketAddr::new(self.kit.host, flags.port),
            http: HttpConfig {
                tls: tls.server.clone(),
                ..self.kit.http(self.web_app_port())
            },
        })
    }
}

/// The client TLS every service shares unless --tls-dir gives each its own.
fn shared_tls(kit: &KitArgs) -> anyhow::Result<Option<ClientTls>> {
    let shared = shop_kit::tls::ClientTlsConfig::from(&kit.client_tls).load()?;
    if kit.server_tls.tls_cert.is_some() && shared.is_none() {
        anyhow::bail!(
            "with --tls-cert the shop's services call each other over https: give --tls-ca \
             (the CA that signed their certificates), or run on `shop certs DIR` files with \
             --tls-dir DIR"
        );
    }
    Ok(shared)
}

/// The services the command line starts (every one for the whole shop,
/// each after the services it calls; one for `shop serve NAME`), each
/// on its own port with its own database.
pub fn plan(args: &ServicesArgs, kit: &KitArgs) -> anyhow::Result<Vec<Start>> {
    let context = Context::new(kit, args)?;
    args.services
        .iter()
        .map(|flags| context.start(flags))
        .collect()
}

/// Starts `start` and waits until it serves.
pub async fn start(
    start: Start,
    shutdown: &Shutdown,
    metrics: &Metrics,
) -> anyhow::Result<Started> {
    let Start {
        service,
        configured,
        addr,
        http,
    } = start;
    let mut started = configured(Launcher::new(addr, http, shutdown, metrics)).await?;
    started.tries = (service.tries)(&started.seeded);
    started.demo_account = (service.demo_account)(&started.seeded);
    Ok(started)
}
