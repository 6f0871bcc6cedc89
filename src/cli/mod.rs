//! The command line. Every service's flags are made from the registry
//! and each service's contract and crate (`cli::services`), flags more than
//! one service reads are written once (`cli::common`), and the kit's flags
//! (`cli::kit`) are global: `shop serve <service> --help` lists that
//! service's and the kit's, `shop --help` the whole shop's, composed from
//! the same parts.

pub mod common;
pub mod kit;
pub mod services;

use std::path::PathBuf;

use clap::{
    Args, CommandFactory, FromArgMatches, Parser, Subcommand, error::ErrorKind, parser::ValueSource,
};

use self::{kit::KitArgs, services::ServicesArgs};

#[derive(Parser, Debug)]
#[command(
    name = "shop",
    version,
    about = "connect-shop: a shop of Rust microservices speaking Connect, gRPC and gRPC-Web",
    long_about = "Starts every service of connect-shop in one process (the default), each on its \
                  own port with its own SQLite file, migrations applied and demo data seeded. \
                  `shop serve <service>` runs one service alone (`shop serve <service> --help` \
                  lists its flags).\n\n\
                  Every flag can also be set by the environment variable shown with it; a flag \
                  given on the command line wins over its variable. Booleans take 1/0, \
                  true/false, yes/no, on/off."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten, next_help_heading = "Every service (the kit)")]
    pub kit: KitArgs,
    /// The services' flags (`services::augment` makes them).
    #[arg(skip)]
    pub services: ServicesArgs,
}

impl Cli {
    /// The command line, or exit with clap's message. The kit's flags may
    /// come before or after a command; the whole shop's flags only without
    /// one (`shop serve orders` has its own).
    pub fn parse_args() -> Self {
        let mut command = services::augment(Self::command());
        let matches = command.clone().get_matches();
        if let Some((name, _)) = matches.subcommand() {
            // The whole shop's flags: the root's own, the kit's being global.
            let misplaced = command.get_arguments().find(|arg| {
                !arg.is_global_set()
                    && matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
            });
            if let Some(arg) = misplaced {
                let flag = arg.get_long().unwrap_or(arg.get_id().as_str());
                command
                    .error(
                        ErrorKind::ArgumentConflict,
                        format!(
                            "--{flag} belongs to the whole shop, not to `shop {name}`; \
                             `shop {name} --help` lists what it takes (after the command)"
                        ),
                    )
                    .exit();
            }
        }
        let services = services::read(&matches).unwrap_or_else(|error| error.exit());
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
        cli.services = services;
        cli
    }

    /// Whether this command starts the whole shop (no command, or `run`).
    pub fn runs_whole_shop(&self) -> bool {
        matches!(self.command, None | Some(Command::Run))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start every service in one process (the default).
    Run,
    /// Run one service alone.
    Serve,
    /// Apply the services' database migrations and exit (e.g. as a
    /// Kubernetes Job before a rollout); every service also applies them
    /// at start, one replica at a time.
    Migrate(Migrate),
    /// Write a development CA and the shop's certificates into DIR, for
    /// `shop --tls-dir DIR`: DIR/ca.pem and ca-key.pem; per service a
    /// server certificate (<service>.pem, <service>-key.pem: localhost,
    /// 127.0.0.1 and its Kubernetes names) and a client certificate
    /// (<service>-client.pem, <service>-client-key.pem:
    /// spiffe://connect-shop/<service>). Run again, it renews the
    /// certificates under the CA already in DIR (running services reload
    /// them and keep trusting each other); the CA is replaced only with
    /// --new-ca.
    Certs(Certs),
    /// Print every RPC's call policy as the contract declares it (who may
    /// call, the deadline, retries, hedging, the rate class:
    /// kit.policy.v1 options), as the Markdown table of docs/contract.md.
    Policy(PolicyTable),
}

#[derive(Args, Debug)]
pub struct Migrate {
    /// The services to migrate (default: all).
    #[arg(value_name = "SERVICE", value_parser = clap::builder::PossibleValuesParser::new(services::stored()))]
    pub services: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Certs {
    pub dir: PathBuf,
    /// Another name or IP address every server certificate carries
    /// (repeatable), e.g. the machine's name.
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// Make a new CA even if DIR holds one (every service must then get the
    /// new files before they trust each other again).
    #[arg(long)]
    pub new_ca: bool,
}

#[derive(Args, Debug)]
pub struct PolicyTable {
    /// Write the table into FILE, between its `<!-- policy:begin -->` and
    /// `<!-- policy:end -->` lines, instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub update: Option<PathBuf>,
    /// Print the contract's deadlines, retries and hedging as a gRPC
    /// service config (JSON) instead: what a gRPC client in another
    /// language is given to call the shop as its own clients do, and the
    /// starting point of a --service-config file.
    #[arg(long, conflicts_with = "update")]
    pub as_service_config: bool,
}
