//! The command line. Each service has its own flags (`cli::users` ...),
//! peers and shared settings are written once (`cli::common`), and the
//! kit's flags (`cli::kit`) are global: `shop serve <service> --help` lists
//! that service's and the kit's, `shop --help` the whole shop's, composed
//! from the same structs. Clap stays here: the services and the kit take
//! plain config structs.

pub mod added;
pub mod catalog;
pub mod common;
pub mod gateway;
pub mod kit;
pub mod orders;
pub mod payments;
pub mod users;

use std::path::PathBuf;

use clap::{
    Args, CommandFactory, FromArgMatches, Parser, Subcommand, error::ErrorKind, parser::ValueSource,
};

use self::{
    catalog::CatalogArgs,
    common::{
        CatalogDatabase, CatalogPeer, DemoData, Events, OrdersDatabase, OrdersPeer,
        PaymentsDatabase, PaymentsPeer, ServiceSecret, UsersDatabase, UsersPeer,
    },
    gateway::GatewayArgs,
    kit::KitArgs,
    orders::OrdersArgs,
    payments::PaymentsArgs,
    users::UsersArgs,
};

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
    #[command(flatten)]
    pub shop: Box<ShopArgs>,
    #[command(flatten, next_help_heading = "Every service (the kit)")]
    pub kit: KitArgs,
    /// The registry's services' flags (`added::augment` makes them).
    #[arg(skip)]
    pub added: added::AddedArgs,
}

impl Cli {
    /// The command line, or exit with clap's message. The kit's flags may
    /// come before or after a command; the whole shop's flags only without
    /// one (`shop serve orders` has its own).
    pub fn parse_args() -> Self {
        let mut command = added::augment(Self::command());
        let mut matches = command.clone().get_matches();
        if let Some((name, _)) = matches.subcommand() {
            let whole_shop = ShopArgs::augment_args(clap::Command::new("shop"));
            let misplaced = whole_shop.get_arguments().find(|arg| {
                matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
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
        let added = added::read(&mut matches).unwrap_or_else(|error| error.exit());
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
        cli.added = added;
        cli
    }
}

impl Cli {
    /// Whether this command starts the whole shop (no command, or `run`).
    pub fn runs_whole_shop(&self) -> bool {
        self.added.serve.is_none() && matches!(self.command, None | Some(Command::Run(_)))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start every service in one process (the default).
    Run(Box<ShopArgs>),
    /// Run one service alone.
    #[command(subcommand)]
    Serve(Box<Serve>),
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

/// The whole shop: every service's flags, each shared one once.
#[derive(Args, Debug)]
pub struct ShopArgs {
    #[command(flatten, next_help_heading = "The users service")]
    pub users: UsersArgs,
    #[command(flatten, next_help_heading = "The catalog")]
    pub catalog: CatalogArgs,
    #[command(flatten, next_help_heading = "The orders service")]
    pub orders: OrdersArgs,
    #[command(flatten, next_help_heading = "The payments service")]
    pub payments: PaymentsArgs,
    #[command(flatten, next_help_heading = "The gateway")]
    pub gateway: GatewayArgs,
    #[command(
        flatten,
        next_help_heading = "Peers (default: each service's port on --host)"
    )]
    pub users_peer: UsersPeer,
    #[command(
        flatten,
        next_help_heading = "Peers (default: each service's port on --host)"
    )]
    pub catalog_peer: CatalogPeer,
    #[command(
        flatten,
        next_help_heading = "Peers (default: each service's port on --host)"
    )]
    pub orders_peer: OrdersPeer,
    #[command(
        flatten,
        next_help_heading = "Peers (default: each service's port on --host)"
    )]
    pub payments_peer: PaymentsPeer,
    #[command(flatten, next_help_heading = "Shared by several services")]
    pub events: Events,
    #[command(flatten, next_help_heading = "Shared by several services")]
    pub secret: ServiceSecret,
    #[command(flatten, next_help_heading = "Shared by several services")]
    pub demo: DemoData,
}

/// One service alone: its flags, the peers it calls, and the kit's.
#[derive(Subcommand, Debug)]
pub enum Serve {
    /// Accounts, sign-in, access and service tokens.
    Users {
        #[command(flatten)]
        users: UsersArgs,
        #[command(flatten)]
        secret: ServiceSecret,
        #[command(flatten)]
        demo: DemoData,
    },
    /// Products and stock.
    Catalog {
        #[command(flatten)]
        catalog: CatalogArgs,
        #[command(flatten)]
        users_peer: UsersPeer,
        #[command(flatten)]
        events: Events,
        #[command(flatten)]
        demo: DemoData,
    },
    /// Orders and the saga that reserves, charges and confirms them.
    Orders {
        #[command(flatten)]
        orders: OrdersArgs,
        #[command(flatten)]
        users_peer: UsersPeer,
        #[command(flatten)]
        catalog_peer: CatalogPeer,
        #[command(flatten)]
        payments_peer: PaymentsPeer,
        #[command(flatten)]
        events: Events,
        #[command(flatten)]
        secret: ServiceSecret,
    },
    /// Charges and refunds.
    Payments {
        #[command(flatten)]
        payments: PaymentsArgs,
        #[command(flatten)]
        users_peer: UsersPeer,
        #[command(flatten)]
        events: Events,
    },
    /// The BFF gateway, the web app and the OpenAPI document.
    Gateway {
        #[command(flatten)]
        gateway: Box<GatewayArgs>,
        #[command(flatten)]
        users_peer: UsersPeer,
        #[command(flatten)]
        catalog_peer: CatalogPeer,
        #[command(flatten)]
        orders_peer: OrdersPeer,
    },
}

#[derive(Args, Debug)]
pub struct Migrate {
    /// The services to migrate (default: all).
    #[arg(value_name = "SERVICE", value_parser = StoredService::parser())]
    pub services: Vec<String>,
    #[command(flatten)]
    pub users: UsersDatabase,
    #[command(flatten)]
    pub catalog: CatalogDatabase,
    #[command(flatten)]
    pub orders: OrdersDatabase,
    #[command(flatten)]
    pub payments: PaymentsDatabase,
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

/// The services that keep a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredService {
    Users,
    Catalog,
    Orders,
    Payments,
}

impl StoredService {
    pub const ALL: [Self; 4] = [Self::Users, Self::Catalog, Self::Orders, Self::Payments];

    /// The one called `name`.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|service| service.name() == name)
    }

    /// Every service with a database: these and the registry's.
    pub fn all_names() -> Vec<&'static str> {
        Self::ALL
            .iter()
            .map(|service| service.name())
            .chain(crate::registry::ADDED.iter().map(|added| added.name))
            .collect()
    }

    fn parser() -> clap::builder::PossibleValuesParser {
        clap::builder::PossibleValuesParser::new(Self::all_names())
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Catalog => "catalog",
            Self::Orders => "orders",
            Self::Payments => "payments",
        }
    }
}
