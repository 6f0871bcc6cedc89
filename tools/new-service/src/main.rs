//! `just new-service NAME` (`shop-new-service NAME`): writes a new service
//! of the shop from its template (a contract with one resource, a crate
//! with its migrations and tests) and gives it its place where the shop
//! lists its services. docs/new-service.md says what it writes, what it
//! edits, and why each edit is one the shop cannot derive.

mod deploy;
mod edit;
mod name;
mod template;

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;

use crate::{edit::Repo, name::Name};

#[derive(Parser, Debug)]
#[command(
    name = "shop-new-service",
    about = "Writes a new service of the shop: its contract (proto/shop/NAME/v1), its crate \
             (services/NAME: handlers, domain, store, events, migrations, tests) and its place \
             in the workspace and the launcher (served by `cargo run`, `shop serve NAME`, \
             migrated by `shop migrate`)",
    after_help = "Undo it with `git clean -fd proto services && git checkout -- .` before you \
                  commit anything else. docs/new-service.md: from here to a first RPC of your own."
)]
struct Cli {
    /// The service's name: one lower-case word, the plural of what it keeps
    /// (reviews keeps Review, served as shop.reviews.v1.ReviewService).
    name: String,

    /// What it keeps, one of them, when NAME is no regular plural
    /// (`inventory --singular item` keeps Item, served as
    /// shop.inventory.v1.ItemService).
    #[arg(long, value_name = "WORD")]
    singular: Option<String>,

    /// The repository's root (where the workspace's Cargo.toml is).
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("new-service: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    let name = Name::parse(&cli.name, cli.singular.as_deref())?;
    let repo = Repo::open(&cli.root)?;
    let written = repo.add(&name)?;
    println!(
        "new-service: {} written ({} files) and listed ({} edits):",
        name.plural,
        written.files.len(),
        written.edits.len()
    );
    for file in &written.files {
        println!("  + {file}");
    }
    for edit in &written.edits {
        println!("  ~ {edit}");
    }
    if !written.formatted {
        eprintln!("new-service: rustfmt did not run: `cargo fmt` formats what it wrote");
    }
    println!(
        "\nNext:\n  cargo test -p shop-{plural}        its tests\n  cargo run --release                the whole shop, {plural} on port {port}\n  curl -s localhost:{port}/shop.{plural}.v1.{Singular}Service/List{Plural} -H 'content-type: application/json' -d '{{}}'\n                                     (unauthenticated: sign in first, docs/new-service.md)",
        plural = name.plural,
        Plural = name.plural_type(),
        Singular = name.singular_type(),
        port = written.port,
    );
    Ok(())
}
