//! Every service's flags, made from the registry (`crate::registry`) when
//! the command line is read, alike for each service:
//!
//! - `--NAME-port` (NAME_PORT), its contract's port by default;
//! - `--NAME-database-url` (NAME_DATABASE_URL) when its contract declares a
//!   database;
//! - `--PEER-url` (PEER_URL) for each peer its contract declares, and for
//!   the users service, whose keys verify its callers' tokens;
//! - `--nats-url` and `--nats-ca` when its contract declares events;
//! - the shop-wide settings its crate says it reads (`--service-secret`,
//!   `--no-demo-data`), and its crate's own flags.
//!
//! `shop serve NAME` takes exactly its service's; the whole shop takes
//! every service's, each shared one once; `shop migrate` each database's.

use std::collections::{BTreeMap, BTreeSet};

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use shop_kit::{client::PeerTarget, deploy::Shared};

use super::common::{DemoData, Events, ServiceSecret, database_help};
use crate::{
    registered::Registered,
    registry::{self, SERVICES},
};

/// What the command line says of one service.
#[derive(Debug)]
pub struct ServiceFlags {
    pub service: &'static Registered,
    pub port: u16,
    /// `--NAME-database-url` or NAME_DATABASE_URL, if given.
    pub database: Option<String>,
    /// What its crate's own flags are read from.
    pub matches: ArgMatches,
}

/// What the command line says of the services it starts or migrates.
#[derive(Debug, Default)]
pub struct ServicesArgs {
    /// The services: every one for the whole shop and `shop migrate`, the
    /// one served by `shop serve NAME`.
    pub services: Vec<ServiceFlags>,
    /// Where a `--PEER-url` flag placed a service, with the flag.
    pub peer_urls: BTreeMap<&'static str, (PeerTarget, &'static str)>,
    pub events: Events,
    pub secret: ServiceSecret,
    pub demo: DemoData,
    /// Whether this is `shop serve NAME`.
    pub alone: bool,
}

/// A name for the process's life (clap's ids and flags are static).
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// A flag's id (or long name), as the command is built and as it is read:
/// made static (leaked) only for the command.
fn port_id(name: &str) -> String {
    format!("{name}_port")
}

fn database_id(name: &str) -> String {
    format!("{name}_database_url")
}

fn url_flag_name(peer: &str) -> String {
    format!("{peer}-url")
}

fn port_flag(service: &Registered) -> Arg {
    let name = service.name();
    Arg::new(leak(port_id(name)))
        .long(leak(format!("{name}-port")))
        .env(leak(format!("{}_PORT", name.to_ascii_uppercase())))
        .value_name("PORT")
        .value_parser(clap::value_parser!(u16))
        .default_value(leak(service.deployed.port.to_string()))
        .help(leak(format!("Port of the {name} service")))
}

fn database_flag(name: &str) -> Arg {
    let env = leak(format!("{}_DATABASE_URL", name.to_ascii_uppercase()));
    Arg::new(leak(database_id(name)))
        .long(leak(format!("{name}-database-url")))
        .env(env)
        .value_name("URL")
        .help(database_help(name, env))
}

fn url_flag(peer: &'static str, whole_shop: bool) -> Arg {
    let port = registry::named(peer).map_or(0, |service| service.deployed.port);
    let default = if whole_shop {
        format!("the whole shop's --{peer}-port on --host")
    } else {
        format!("port {port} on --host")
    };
    let flag = leak(url_flag_name(peer));
    Arg::new(flag)
        .long(flag)
        .env(leak(format!("{}_URL", peer.to_ascii_uppercase())))
        .value_name("URL")
        .value_parser(clap::value_parser!(PeerTarget))
        .help(leak(format!(
            "Where the services that call it reach the {peer} service: a URL, a \
             comma-separated list of URLs (replicas), or dns:///host:port, looked up again \
             every few seconds (default: {default})"
        )))
}

/// The services `service` finds by a `--PEER-url` flag: those its
/// contract says it calls, and the users service, whose keys verify its
/// callers' tokens (`identity::TOKEN_SERVICE`).
fn peers_of(service: &Registered) -> BTreeSet<&'static str> {
    let keys = shop_proto::identity::TOKEN_SERVICE;
    (service.name() != keys)
        .then_some(keys)
        .into_iter()
        .chain(service.deployed.calls.iter().copied())
        .collect()
}

/// The flags its crate declares, as clap made them.
fn own_flags(service: &Registered) -> Vec<Arg> {
    (service.flags)(Command::new(service.name()))
        .get_arguments()
        .cloned()
        .collect()
}

fn flags_of<T: Args>() -> Vec<Arg> {
    T::augment_args(Command::new("flags"))
        .get_arguments()
        .cloned()
        .collect()
}

/// The shop-wide flags `service` takes: events when its contract declares
/// them, and the settings its crate reads.
fn shared_flags(service: &Registered) -> Vec<Arg> {
    let mut flags = Vec::new();
    if service.deployed.events {
        flags.extend(flags_of::<Events>());
    }
    if service.shares(Shared::ServiceSecret) {
        flags.extend(flags_of::<ServiceSecret>());
    }
    if service.shares(Shared::DemoData) {
        flags.extend(flags_of::<DemoData>());
    }
    flags
}

/// Flags listed in the order given (clap would sort those of one derive
/// apart from the others).
fn in_order(flags: Vec<Arg>) -> Vec<Arg> {
    flags
        .into_iter()
        .enumerate()
        .map(|(at, flag)| flag.display_order(at))
        .collect()
}

/// The flags of `service` alone: its port, its database when it keeps
/// one, and its crate's.
fn service_own_flags(service: &Registered) -> Vec<Arg> {
    let mut flags = vec![port_flag(service)];
    if service.deployed.database {
        flags.push(database_flag(service.name()));
    }
    flags.extend(own_flags(service));
    flags
}

/// Every flag of `shop serve NAME`.
fn alone_flags(service: &Registered) -> Vec<Arg> {
    let mut flags = service_own_flags(service);
    flags.extend(
        peers_of(service)
            .into_iter()
            .map(|peer| url_flag(peer, false)),
    );
    flags.extend(shared_flags(service));
    in_order(flags)
}

/// The whole shop's flags: each service's own under its name, where each
/// peer is, and each shared flag once.
fn whole_shop_flags() -> Vec<Arg> {
    let mut flags = Vec::new();
    let mut peers = BTreeSet::new();
    let mut shared: Vec<Arg> = Vec::new();
    for service in SERVICES {
        let heading = leak(format!("The {} service", service.name()));
        flags.extend(
            service_own_flags(service)
                .into_iter()
                .map(|flag| flag.help_heading(heading)),
        );
        peers.extend(peers_of(service));
        for flag in shared_flags(service) {
            if !shared.iter().any(|taken| taken.get_id() == flag.get_id()) {
                shared.push(flag);
            }
        }
    }
    let peers_heading = "Peers (default: each service's port on --host)";
    flags.extend(
        peers
            .into_iter()
            .map(|peer| url_flag(peer, true).help_heading(peers_heading)),
    );
    flags.extend(
        shared
            .into_iter()
            .map(|flag| flag.help_heading("Shared by several services")),
    );
    in_order(flags)
}

/// The shop's command line with every service's flags and subcommands.
pub fn augment(command: Command) -> Command {
    let whole_shop = whole_shop_flags();
    command
        .args(whole_shop.clone())
        .mut_subcommand("run", |run| run.args(whole_shop))
        .mut_subcommand("serve", |mut serve| {
            for service in SERVICES {
                serve = serve.subcommand(
                    Command::new(service.name())
                        .about(service.about)
                        .args(alone_flags(service)),
                );
            }
            serve.subcommand_required(true)
        })
        .mut_subcommand("migrate", |mut migrate| {
            for service in SERVICES.iter().filter(|service| service.deployed.database) {
                migrate = migrate.arg(database_flag(service.name()));
            }
            migrate
        })
}

/// The names of the services that keep a database, for `shop migrate`.
pub fn stored() -> Vec<&'static str> {
    SERVICES
        .iter()
        .filter(|service| service.deployed.database)
        .map(|service| service.name())
        .collect()
}

/// A flag's value, when the command has the flag.
fn given<T: Clone + Send + Sync + 'static>(matches: &ArgMatches, id: &str) -> Option<T> {
    matches.try_get_one::<T>(id).ok().flatten().cloned()
}

/// A group of flags read, when the command has them (else their default).
fn read_if<T: FromArgMatches + Default>(matches: &ArgMatches, has: bool) -> Result<T, clap::Error> {
    if has {
        T::from_arg_matches(matches)
    } else {
        Ok(T::default())
    }
}

fn service_flags(service: &'static Registered, matches: &ArgMatches) -> ServiceFlags {
    ServiceFlags {
        service,
        port: given(matches, &port_id(service.name())).unwrap_or(service.deployed.port),
        database: given(matches, &database_id(service.name())),
        matches: matches.clone(),
    }
}

/// The services of a start (`services`) with the shop-wide flags
/// `matches` has.
fn read_start(
    services: Vec<ServiceFlags>,
    matches: &ArgMatches,
    alone: bool,
) -> Result<ServicesArgs, clap::Error> {
    let any =
        |check: &dyn Fn(&Registered) -> bool| services.iter().any(|flags| check(flags.service));
    let events = read_if(matches, any(&|service| service.deployed.events))?;
    let secret = read_if(
        matches,
        any(&|service| service.shares(Shared::ServiceSecret)),
    )?;
    let demo = read_if(matches, any(&|service| service.shares(Shared::DemoData)))?;
    let peer_urls = SERVICES
        .iter()
        .filter_map(|peer| {
            let flag = url_flag_name(peer.name());
            let url = given::<PeerTarget>(matches, &flag)?;
            Some((peer.name(), (url, leak(format!("--{flag}")))))
        })
        .collect();
    Ok(ServicesArgs {
        services,
        peer_urls,
        events,
        secret,
        demo,
        alone,
    })
}

/// What the command line says of the services.
pub fn read(matches: &ArgMatches) -> Result<ServicesArgs, clap::Error> {
    match matches.subcommand() {
        Some(("serve", serve)) => match serve.subcommand() {
            Some((name, alone)) => match registry::named(name) {
                Some(service) => read_start(vec![service_flags(service, alone)], alone, true),
                None => Ok(ServicesArgs::default()),
            },
            None => Ok(ServicesArgs::default()),
        },
        Some(("migrate", migrate)) => Ok(ServicesArgs {
            services: SERVICES
                .iter()
                .filter(|service| service.deployed.database)
                .map(|service| service_flags(service, migrate))
                .collect(),
            ..ServicesArgs::default()
        }),
        Some(("run", run)) => whole_shop(run),
        Some(_) => Ok(ServicesArgs::default()),
        None => whole_shop(matches),
    }
}

fn whole_shop(matches: &ArgMatches) -> Result<ServicesArgs, clap::Error> {
    let services = SERVICES
        .iter()
        .map(|service| service_flags(service, matches))
        .collect();
    read_start(services, matches, false)
}
