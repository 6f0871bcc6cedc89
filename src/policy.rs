//! `shop policy`: every RPC's call policy, read from the contract's
//! descriptors, as the table docs/contract.md holds (or, with
//! `--as-service-config`, as a gRPC service config). `--update` writes it
//! there, and the public RPCs' REST routes and each message's count of
//! validation rules beside it: the docs' tables of the contract, written
//! from it.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::PolicyTable;

/// Where each table goes in the file, between its two lines.
const POLICY: (&str, &str) = ("<!-- policy:begin -->", "<!-- policy:end -->");
const REST: (&str, &str) = ("<!-- rest:begin -->", "<!-- rest:end -->");
const RULES: (&str, &str) = ("<!-- rules:begin -->", "<!-- rules:end -->");

pub fn run(command: &PolicyTable) -> anyhow::Result<()> {
    if command.as_service_config {
        let pool = shop_kit::policy::descriptors(shop_proto::FILE_DESCRIPTOR_SET)?;
        println!(
            "{}",
            shop_kit::policy::service_config_of(&pool, |package| package.starts_with("shop."))?
        );
        return Ok(());
    }
    let table = shop_kit::policy::table_of_set(shop_proto::FILE_DESCRIPTOR_SET, |package| {
        package.starts_with("shop.")
    })?;
    let Some(file) = &command.update else {
        print!("{table}");
        return Ok(());
    };
    let routes = shop_proto::public_rest_routes()?;
    update(file, POLICY, &table)?;
    println!("{}: the policy table written", file.display());
    update(file, REST, &routes.table())?;
    println!("{}: the REST routes written", file.display());
    update(file, RULES, &shop_proto::rules_table()?)?;
    println!(
        "{}: the validation rules per message written",
        file.display()
    );
    Ok(())
}

/// Replaces what is between the `markers` in `file` with `table`.
fn update(file: &Path, (begin_line, end_line): (&str, &str), table: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
    let (Some(begin), Some(end)) = (text.find(begin_line), text.find(end_line)) else {
        anyhow::bail!(
            "{}: no {begin_line} ... {end_line} lines to write between",
            file.display()
        );
    };
    anyhow::ensure!(
        begin < end,
        "{}: {end_line} comes before {begin_line}",
        file.display()
    );
    let updated = format!("{}{begin_line}\n{table}{}", &text[..begin], &text[end..]);
    std::fs::write(file, updated).with_context(|| format!("{}", file.display()))?;
    Ok(())
}
