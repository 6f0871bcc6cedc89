//! What a start runs: each service's plain config, made from the flags of
//! the whole shop or of `shop serve <service>`, with its address and TLS.

use std::net::SocketAddr;

use secrecy::SecretString;
use shop_kit::{
    HttpConfig, Shutdown,
    app::Basics,
    auth::TokenKeys,
    client::{Calls, PeerPolicy, PeerTarget, Peers},
    observe::metrics::Metrics,
    tls::ClientTls,
};

use crate::{
    added::Added,
    cli::{
        Serve, ShopArgs,
        added::{AddedArgs, AddedFlags, ServeAdded},
        common::{
            CatalogPeer, DemoData, Events, Neighbourhood, OrdersPeer, PaymentsPeer, ServiceSecret,
            UsersPeer, database_url, default_port, port,
        },
        gateway::{GatewayArgs, public_url},
        kit::KitArgs,
    },
    launch::{Launcher, Started},
    service_tls::ServiceTls,
};

/// Where a peer was placed by a flag (`--catalog-url`, a registry
/// service's port), if it was.
type Placed<'a> = dyn Fn(&str, &Neighbourhood) -> Option<PeerTarget> + 'a;

/// One service to start, configured.
pub enum Planned {
    Users(shop_users::Config),
    Catalog(shop_catalog::Config),
    Orders(Box<shop_orders::Config>),
    Payments(shop_payments::Config),
    Gateway(Box<shop_gateway::Config>),
    /// A service of the registry (`crate::registry`).
    Added(&'static Added, Basics),
}

/// A service to start: its config, where it listens, how it serves.
pub struct Start {
    pub service: Planned,
    pub addr: SocketAddr,
    pub http: HttpConfig,
    /// What the banner says about its demo data, beyond what it seeded.
    pub demo_note: Option<&'static str>,
}

/// The services' ports: the whole shop's flags, or under `shop serve` the
/// served one's flag and the others' defaults.
#[derive(Clone, Copy)]
struct Ports {
    users: u16,
    catalog: u16,
    orders: u16,
    payments: u16,
    gateway: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            users: port::USERS,
            catalog: port::CATALOG,
            orders: port::ORDERS,
            payments: port::PAYMENTS,
            gateway: port::GATEWAY,
        }
    }
}

/// What every service of one start shares.
struct Context<'a> {
    kit: &'a KitArgs,
    ports: Ports,
    /// The client TLS of `--tls-ca`/`--tls-client-cert`, loaded once.
    shared_tls: Option<ClientTls>,
    secret: ServiceSecret,
    whole_shop: bool,
    /// How the services call each other: the contract's policy, and the
    /// --service-config file's, read once for every service.
    calls: Calls,
}

const DEMO_NOTE: &str =
    " (only the whole shop on a loopback --host gets one; --demo-account asks for it)";

impl<'a> Context<'a> {
    /// One service alone (`shop serve`), on `ports`, with the service
    /// secret given (else a random one).
    fn alone(
        kit: &'a KitArgs,
        secret: Option<&ServiceSecret>,
        ports: Ports,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            kit,
            ports,
            shared_tls: shared_tls(kit)?,
            secret: service_secret(secret.unwrap_or(&ServiceSecret::default())),
            whole_shop: false,
            calls: calls(kit)?,
        })
    }

    fn around(&self, tls: &ServiceTls) -> Neighbourhood {
        Neighbourhood {
            host: self.kit.host,
            https: self.kit.serves_tls(),
            tls: tls.client.clone(),
            users: self.ports.users,
            catalog: self.ports.catalog,
            orders: self.ports.orders,
            payments: self.ports.payments,
        }
    }

    fn start(
        &self,
        name: &str,
        port: u16,
        make: impl FnOnce(&Neighbourhood) -> anyhow::Result<Planned>,
    ) -> anyhow::Result<Start> {
        let tls = ServiceTls::for_service(self.kit, name, &self.shared_tls)?;
        let around = self.around(&tls);
        let http = HttpConfig {
            tls: tls.server.clone(),
            ..self.kit.http(self.ports.gateway)
        };
        Ok(Start {
            service: make(&around)?,
            addr: SocketAddr::new(self.kit.host, port),
            http,
            demo_note: None,
        })
    }

    fn token_keys(users: &UsersPeer, around: &Neighbourhood) -> TokenKeys {
        TokenKeys::FromUsers {
            users: users.target(around),
            rules: shop_proto::identity::token_rules(),
        }
    }

    fn users(
        &self,
        users: &crate::cli::users::UsersArgs,
        demo: &DemoData,
    ) -> anyhow::Result<Start> {
        let on_loopback = self.whole_shop && self.kit.host.is_loopback();
        let demo_account = users.demo_account(demo, on_loopback);
        let database = users.database.resolve(&self.kit.data_dir, !self.whole_shop);
        let mut start = self.start("users", users.port, |_| {
            users
                .config(database, &self.secret, demo_account)
                .map(Planned::Users)
        })?;
        if !demo.off && !demo_account {
            start.demo_note = Some(DEMO_NOTE);
        }
        Ok(start)
    }

    fn catalog(
        &self,
        catalog: &crate::cli::catalog::CatalogArgs,
        users: &UsersPeer,
        events: &Events,
        demo: &DemoData,
    ) -> anyhow::Result<Start> {
        self.start("catalog", catalog.port, |around| {
            Ok(Planned::Catalog(shop_catalog::Config {
                database_url: catalog
                    .database
                    .resolve(&self.kit.data_dir, !self.whole_shop),
                demo_data: !demo.off,
                demo_stock: catalog.demo_stock,
                nats: events.nats(),
                token_keys: Self::token_keys(users, around),
            }))
        })
    }

    fn orders(
        &self,
        orders: &crate::cli::orders::OrdersArgs,
        users: &UsersPeer,
        catalog: &CatalogPeer,
        payments: &PaymentsPeer,
        events: &Events,
    ) -> anyhow::Result<Start> {
        self.start("orders", orders.port, |around| {
            Ok(Planned::Orders(Box::new(shop_orders::Config {
                database_url: orders
                    .database
                    .resolve(&self.kit.data_dir, !self.whole_shop),
                peers: shop_orders::Peers {
                    users: users.target(around),
                    catalog: catalog.target(around),
                    payments: payments.target(around),
                    service_secret: self.secret.secret.clone().unwrap_or_default(),
                    calls: self.calls.clone(),
                },
                nats: events.nats(),
                saga: orders.saga(),
                token_keys: Self::token_keys(users, around),
            })))
        })
    }

    fn payments(
        &self,
        payments: &crate::cli::payments::PaymentsArgs,
        users: &UsersPeer,
        events: &Events,
    ) -> anyhow::Result<Start> {
        self.start("payments", payments.port, |around| {
            Ok(Planned::Payments(shop_payments::Config {
                database_url: payments
                    .database
                    .resolve(&self.kit.data_dir, !self.whole_shop),
                nats: events.nats(),
                token_keys: Self::token_keys(users, around),
            }))
        })
    }

    /// A service of the registry: its database, events, the users' keys
    /// and the peers its contract declares (each where `placed` says, else
    /// at its port on --host), all it needs.
    fn added(
        &self,
        flags: &AddedFlags,
        users: &UsersPeer,
        events: &Events,
        placed: &Placed<'_>,
    ) -> anyhow::Result<Start> {
        let added = flags.added;
        self.start(added.name, flags.port, |around| {
            Ok(Planned::Added(
                added,
                Basics {
                    database_url: database_url(
                        flags.database.as_deref(),
                        &self.kit.data_dir,
                        added.name,
                        !self.whole_shop,
                    ),
                    nats: events.nats(),
                    token_keys: Self::token_keys(users, around),
                    peers: self.peers(added.name, around, placed)?,
                },
            ))
        })
    }

    /// The peers `service`'s contract declares (`kit.policy.v1.deployment`),
    /// each where `placed` says, else at its port on --host, called with
    /// the contract's policy.
    fn peers(
        &self,
        service: &str,
        around: &Neighbourhood,
        placed: &Placed<'_>,
    ) -> anyhow::Result<Peers> {
        let mut peers = Peers::new(PeerPolicy {
            calls: self.calls.clone(),
            ..PeerPolicy::default()
        });
        for &peer in shop_proto::identity::calls_of(service) {
            let target = match placed(peer, around) {
                Some(target) => target,
                None => around.at(default_port(peer).ok_or_else(|| {
                    anyhow::anyhow!("{service} calls {peer}, which has no port of its own")
                })?),
            };
            peers = peers.with(peer, target);
        }
        Ok(peers)
    }

    fn gateway(
        &self,
        gateway: &GatewayArgs,
        users: &UsersPeer,
        catalog: &CatalogPeer,
        orders: &OrdersPeer,
        payments: &PaymentsPeer,
        added: &[(&'static str, u16)],
    ) -> anyhow::Result<Start> {
        self.start("gateway", gateway.port, |around| {
            let services = shop_gateway::ServicePeers {
                users: users.target(around),
                catalog: catalog.target(around),
                orders: orders.target(around),
            };
            // The browser calls the services directly, at URLs of its own.
            let users_url = public_url(&gateway.public_users_url, &services.users, "users")?;
            let browser = shop_gateway::ServiceUrls {
                added: added_urls(&users_url, gateway.public_users_url.is_some(), added)?,
                users_url,
                catalog_url: public_url(&gateway.public_catalog_url, &services.catalog, "catalog")?,
                orders_url: public_url(&gateway.public_orders_url, &services.orders, "orders")?,
                payments_url: public_url(
                    &gateway.public_payments_url,
                    &payments.target(around),
                    "payments",
                )?,
            };
            Ok(Planned::Gateway(Box::new(shop_gateway::Config {
                browser,
                services,
                downstream: shop_kit::client::PeerPolicy {
                    calls: self.calls.clone(),
                    ..shop_kit::client::PeerPolicy::default()
                },
                cache: shop_gateway::CachePolicy::default(),
                rate_limit: gateway.rate_limit(),
                web_dir: gateway.web_dir.clone(),
                token_keys: Self::token_keys(users, around),
            })))
        })
    }
}

/// The secret the services share for service tokens: as given, else a
/// random one for this start.
fn service_secret(given: &ServiceSecret) -> ServiceSecret {
    ServiceSecret {
        secret: Some(
            given
                .secret
                .clone()
                .unwrap_or_else(|| SecretString::from(uuid::Uuid::new_v4().simple().to_string())),
        ),
    }
}

/// Each method's calls, as the contract and --service-config say.
fn calls(kit: &KitArgs) -> anyhow::Result<Calls> {
    Ok(shop_proto::calls(kit.service_config.as_deref())?)
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

/// Every service, each on its own port with its own database.
pub fn whole_shop(shop: &ShopArgs, added: &AddedArgs, kit: &KitArgs) -> anyhow::Result<Vec<Start>> {
    let context = Context {
        kit,
        ports: Ports {
            users: shop.users.port,
            catalog: shop.catalog.port,
            orders: shop.orders.port,
            payments: shop.payments.port,
            gateway: shop.gateway.port,
        },
        shared_tls: shared_tls(kit)?,
        secret: service_secret(&shop.secret),
        whole_shop: true,
        calls: calls(kit)?,
    };
    // Each after the services it calls, so that it finds them serving.
    let mut starts = vec![
        context.users(&shop.users, &shop.demo)?,
        context.catalog(&shop.catalog, &shop.users_peer, &shop.events, &shop.demo)?,
        context.payments(&shop.payments, &shop.users_peer, &shop.events)?,
        context.orders(
            &shop.orders,
            &shop.users_peer,
            &shop.catalog_peer,
            &shop.payments_peer,
            &shop.events,
        )?,
        context.gateway(
            &shop.gateway,
            &shop.users_peer,
            &shop.catalog_peer,
            &shop.orders_peer,
            &shop.payments_peer,
            &added
                .flags
                .iter()
                .map(|flags| (flags.added.name, flags.port))
                .collect::<Vec<_>>(),
        )?,
    ];
    // The whole shop's peer flags, and each registry service at its port.
    let placed = |peer: &str, around: &Neighbourhood| match peer {
        "users" => Some(shop.users_peer.target(around)),
        "catalog" => Some(shop.catalog_peer.target(around)),
        "orders" => Some(shop.orders_peer.target(around)),
        "payments" => Some(shop.payments_peer.target(around)),
        "gateway" => Some(around.at(shop.gateway.port)),
        other => added
            .flags
            .iter()
            .find(|flags| flags.added.name == other)
            .map(|flags| around.at(flags.port)),
    };
    for flags in &added.flags {
        starts.push(context.added(flags, &shop.users_peer, &shop.events, &placed)?);
    }
    Ok(starts)
}

/// A service of the registry alone (`shop serve NAME`).
pub fn serve_added(alone: &ServeAdded, kit: &KitArgs) -> anyhow::Result<Start> {
    let placed = |peer: &str, around: &Neighbourhood| match peer {
        "users" => Some(alone.users_peer.target(around)),
        other => alone.peer_urls.get(other).map(|(target, flag)| {
            target
                .clone()
                .from_origin(flag)
                .with_tls(around.tls.clone())
        }),
    };
    Context::alone(kit, None, Ports::default())?.added(
        &alone.flags,
        &alone.users_peer,
        &alone.events,
        &placed,
    )
}

/// One service alone; its peers at their default ports on --host unless
/// their flags say where.
pub fn serve(serve: &Serve, kit: &KitArgs) -> anyhow::Result<Start> {
    let context = |secret, ports| Context::alone(kit, secret, ports);
    let ports = Ports::default();
    match serve {
        Serve::Users {
            users,
            secret,
            demo,
        } => context(
            Some(secret),
            Ports {
                users: users.port,
                ..ports
            },
        )?
        .users(users, demo),
        Serve::Catalog {
            catalog,
            users_peer,
            events,
            demo,
        } => context(
            None,
            Ports {
                catalog: catalog.port,
                ..ports
            },
        )?
        .catalog(catalog, users_peer, events, demo),
        Serve::Orders {
            orders,
            users_peer,
            catalog_peer,
            payments_peer,
            events,
            secret,
        } => context(
            Some(secret),
            Ports {
                orders: orders.port,
                ..ports
            },
        )?
        .orders(orders, users_peer, catalog_peer, payments_peer, events),
        Serve::Payments {
            payments,
            users_peer,
            events,
        } => context(
            None,
            Ports {
                payments: payments.port,
                ..ports
            },
        )?
        .payments(payments, users_peer, events),
        Serve::Gateway {
            gateway,
            users_peer,
            catalog_peer,
            orders_peer,
        } => context(
            None,
            Ports {
                gateway: gateway.port,
                ..ports
            },
        )?
        .gateway(
            gateway,
            users_peer,
            catalog_peer,
            orders_peer,
            &PaymentsPeer::default(),
            &crate::registry::ADDED
                .iter()
                .map(|added| (added.name, added.port))
                .collect::<Vec<_>>(),
        ),
    }
}

/// Where browsers reach the services `just new-service` added: where they
/// reach users, at each one's own port; or, when users' public URL is
/// given (one edge in front of every service), at that URL.
fn added_urls(
    users_url: &str,
    users_url_given: bool,
    added: &[(&'static str, u16)],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let users: http::Uri = users_url
        .parse()
        .map_err(|_| anyhow::anyhow!("users' public URL {users_url:?} is no URL"))?;
    let (Some(scheme), Some(host)) = (users.scheme_str(), users.host()) else {
        anyhow::bail!("users' public URL {users_url:?} has no scheme or host");
    };
    Ok(added
        .iter()
        .map(|&(name, port)| {
            let url = if users_url_given {
                users_url.to_owned()
            } else {
                format!("{scheme}://{host}:{port}")
            };
            (name.to_owned(), url)
        })
        .collect())
}

/// Starts `start` and waits until it serves.
pub async fn start(
    start: Start,
    shutdown: &Shutdown,
    metrics: &Metrics,
) -> anyhow::Result<Started> {
    let Start {
        service,
        addr,
        http,
        demo_note,
    } = start;
    let launch = Launcher::new(addr, http, shutdown, metrics);
    let mut started = match service {
        Planned::Users(users) => launch.start(users.database_url.to_string(), users).await?,
        Planned::Catalog(catalog) => {
            launch
                .start(catalog.database_url.to_string(), catalog)
                .await?
        }
        Planned::Orders(orders) => {
            launch
                .start(orders.database_url.to_string(), *orders)
                .await?
        }
        Planned::Payments(payments) => {
            launch
                .start(payments.database_url.to_string(), payments)
                .await?
        }
        Planned::Gateway(gateway) => launch.start("none".to_owned(), *gateway).await?,
        Planned::Added(added, basics) => (added.start)(launch, basics).await?,
    };
    if let Some(note) = demo_note {
        started.seeded.push_str(note);
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::added_urls;

    #[test]
    fn an_added_service_is_where_users_is_at_its_own_port_or_behind_the_same_edge() {
        let own = added_urls("http://127.0.0.1:8081", false, &[("reviews", 8085)]).expect("urls");
        assert_eq!(own["reviews"], "http://127.0.0.1:8085");
        let edge =
            added_urls("https://shop.example.com", true, &[("reviews", 8085)]).expect("urls");
        assert_eq!(edge["reviews"], "https://shop.example.com");
        assert!(added_urls("not a url", false, &[("reviews", 8085)]).is_err());
    }
}
