//! The flags of the registry's services (`crate::registry`), made from it
//! when the command line is read: `--NAME-port` and `--NAME-database-url`
//! (NAME_PORT, NAME_DATABASE_URL) for the whole shop, `shop serve NAME` and
//! `shop migrate NAME`, as the shop's first services have theirs.

use std::collections::BTreeMap;

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use shop_kit::client::PeerTarget;

use super::common::{Events, UsersPeer, database_help};
use crate::{added::Added, registry::ADDED};

/// What the command line says of one service of the registry.
#[derive(Debug)]
pub struct AddedFlags {
    pub added: &'static Added,
    pub port: u16,
    /// `--NAME-database-url` or NAME_DATABASE_URL, if given.
    pub database: Option<String>,
}

/// `shop serve NAME` of a service of the registry.
#[derive(Debug)]
pub struct ServeAdded {
    pub flags: AddedFlags,
    pub users_peer: UsersPeer,
    pub events: Events,
    /// Each peer its contract declares but users (`--users-url` above)
    /// that a `--PEER-url` flag places, with the flag.
    pub peer_urls: BTreeMap<&'static str, (PeerTarget, &'static str)>,
}

/// The peers of `added` its contract declares that take a `--PEER-url`
/// of their own under `shop serve NAME` (users has `--users-url`).
fn peer_flags(added: &Added) -> impl Iterator<Item = &'static str> {
    shop_proto::identity::calls_of(added.name)
        .iter()
        .copied()
        .filter(|&peer| peer != "users")
}

fn peer_url_id(peer: &str) -> &'static str {
    leak(format!("{peer}-url"))
}

fn peer_url_flag(peer: &'static str) -> Arg {
    let port = super::common::default_port(peer).unwrap_or_default();
    Arg::new(peer_url_id(peer))
        .long(peer_url_id(peer))
        .env(leak(format!("{}_URL", peer.to_ascii_uppercase())))
        .value_name("URL")
        .value_parser(clap::value_parser!(PeerTarget))
        .help(leak(format!(
            "Where this service reaches the {peer} service, which its contract says it calls: \
             a URL, a comma-separated list of URLs (replicas), or dns:///host:port, looked up \
             again every few seconds (default: port {port} on --host)"
        )))
}

/// What the command line says of the registry's services.
#[derive(Debug, Default)]
pub struct AddedArgs {
    /// Each one's flags, as the whole shop (or `shop migrate`) reads them.
    pub flags: Vec<AddedFlags>,
    /// `shop serve NAME` of one of them.
    pub serve: Option<ServeAdded>,
}

/// A name for the process's life (clap's ids and flags are static).
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn port_id(added: &Added) -> &'static str {
    leak(format!("{}_port", added.name))
}

fn database_id(added: &Added) -> &'static str {
    leak(format!("{}_database_url", added.name))
}

fn port_flag(added: &'static Added) -> Arg {
    Arg::new(port_id(added))
        .long(leak(format!("{}-port", added.name)))
        .env(leak(format!("{}_PORT", added.name.to_ascii_uppercase())))
        .value_name("PORT")
        .value_parser(clap::value_parser!(u16))
        .default_value(leak(added.port.to_string()))
        .help(leak(format!("Port of the {} service", added.name)))
}

fn database_flag(added: &'static Added) -> Arg {
    let env = leak(format!("{}_DATABASE_URL", added.name.to_ascii_uppercase()));
    Arg::new(database_id(added))
        .long(leak(format!("{}-database-url", added.name)))
        .env(env)
        .value_name("URL")
        .help(database_help(added.name, env))
}

/// The shop's command line with the registry's flags and subcommands.
pub fn augment(mut command: Command) -> Command {
    for added in ADDED {
        command = command
            .arg(port_flag(added).help_heading("Added services"))
            .arg(database_flag(added).help_heading("Added services"));
    }
    command = command.mut_subcommand("serve", |mut serve| {
        for added in ADDED {
            let mut alone = Command::new(added.name)
                .arg(port_flag(added))
                .arg(database_flag(added));
            for peer in peer_flags(added) {
                alone = alone.arg(peer_url_flag(peer));
            }
            // After the flattened flags: their structs' docs would be its
            // description.
            let alone = Events::augment_args(UsersPeer::augment_args(alone)).about(leak(format!(
                "The {} service (added by just new-service)",
                added.name
            )));
            serve = serve.subcommand(alone);
        }
        serve
    });
    command.mut_subcommand("migrate", |mut migrate| {
        for added in ADDED {
            migrate = migrate.arg(database_flag(added));
        }
        migrate
    })
}

fn flags_of(added: &'static Added, matches: &ArgMatches) -> AddedFlags {
    AddedFlags {
        added,
        port: matches
            .get_one::<u16>(port_id(added))
            .copied()
            .unwrap_or(added.port),
        database: matches.get_one::<String>(database_id(added)).cloned(),
    }
}

/// What the command line says of the registry's services; takes `shop
/// serve NAME` of one of them out of `matches` (the derived commands know
/// only the first services).
pub fn read(matches: &mut ArgMatches) -> Result<AddedArgs, clap::Error> {
    let serve = match matches.subcommand() {
        Some(("serve", serve)) => match serve.subcommand() {
            Some((name, alone)) => match crate::registry::named(name) {
                Some(added) => Some(ServeAdded {
                    flags: flags_of(added, alone),
                    users_peer: UsersPeer::from_arg_matches(alone)?,
                    events: Events::from_arg_matches(alone)?,
                    peer_urls: peer_flags(added)
                        .filter_map(|peer| {
                            let flag = peer_url_id(peer);
                            let url = alone.get_one::<PeerTarget>(flag)?;
                            Some((peer, (url.clone(), leak(format!("--{flag}")))))
                        })
                        .collect(),
                }),
                None => None,
            },
            None => None,
        },
        _ => None,
    };
    if serve.is_some() {
        matches.remove_subcommand();
    }
    let migrating = match matches.subcommand() {
        Some(("migrate", migrate)) => Some(migrate.clone()),
        _ => None,
    };
    let flags = ADDED
        .iter()
        .map(|added| match &migrating {
            Some(migrate) => AddedFlags {
                added,
                port: added.port,
                database: migrate.get_one::<String>(database_id(added)).cloned(),
            },
            None => flags_of(added, matches),
        })
        .collect();
    Ok(AddedArgs { flags, serve })
}
