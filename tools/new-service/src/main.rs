//! `just new-service NAME` (`shop-new-service NAME`): writes a new service
//! of the shop from its template (a contract with one resource, a crate
//! with its migrations and tests) and gives it its place where the shop
//! lists its services. docs/new-service.md says what it writes, what it
//! edits, and why each edit is one the shop cannot derive.

mod contract;
mod deploy;
mod edit;
mod error;
mod name;
mod rewrite;
mod stubs;
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
    /// (reviews keeps Review, served as shop.reviews.v1.ReviewService). The
    /// name of a service that exists adds what its contract gained: each
    /// new RPC's line in its service's builder and a stub of its handler in
    /// services/NAME/src/api.rs, never touching a handler that is written.
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
    let repo = Repo::open(&cli.root)?;
    if name::is_one_word(&cli.name) && repo.serves(&cli.name) {
        if cli.singular.is_some() {
            return Err(format!(
                "{} exists: --singular names what a new service keeps, and this one is named \
                 already (run it without --singular to add what its contract gained)",
                cli.name
            )
            .into());
        }
        return update(&repo, &cli.name);
    }
    let name = Name::parse(&cli.name, cli.singular.as_deref())?;
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
    say_if_unformatted(written.formatted);
    println!(
        "\nNext:\n  cargo test -p shop-{plural}        its tests\n  cargo run --release                the whole shop, {plural} on port {port}\n  curl -s localhost:{port}/shop.{plural}.v1.{Singular}Service/List{Plural} -H 'content-type: application/json' -d '{{}}'\n                                     (unauthenticated: sign in first, docs/new-service.md)",
        plural = name.plural,
        Plural = name.plural_type(),
        Singular = name.singular_type(),
        port = written.port,
    );
    Ok(())
}

/// A service that exists: what its contract gained since, stubbed.
fn update(repo: &Repo, plural: &str) -> Result<(), Box<dyn std::error::Error>> {
    let updated = repo.update(plural)?;
    if updated.routed.is_empty() && updated.stubbed.is_empty() {
        println!(
            "new-service: {plural} exists, and each of the {} RPCs of its contract has its line \
             and its handler in {}: nothing to add",
            updated.rpcs, updated.api
        );
        return Ok(());
    }
    println!(
        "new-service: {plural} exists; {} gained what its contract declares since:",
        updated.api
    );
    for rpc in &updated.routed {
        println!("  ~ {rpc}: its line in the service's builder");
    }
    for rpc in &updated.stubbed {
        println!("  + {rpc}: a stub of its handler, answering unimplemented until you write it");
    }
    say_if_unformatted(updated.formatted);
    println!("\nNext: write each stub (docs/new-service.md), then `cargo test -p shop-{plural}`.");
    Ok(())
}

/// What to do when rustfmt could not format what was written.
fn say_if_unformatted(formatted: bool) {
    if !formatted {
        eprintln!("new-service: rustfmt did not run: `cargo fmt` formats what it wrote");
    }
}
