//! `shop policy`: every RPC's call policy, read from the contract's
//! descriptors, as the table docs/contract.md holds (or, with
//! `--as-service-config`, as a gRPC service config).

use std::path::Path;

use anyhow::Context as _;

use crate::cli::PolicyTable;

const BEGIN: &str = "<!-- policy:begin -->";
const END: &str = "<!-- policy:end -->";

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
    match &command.update {
        None => print!("{table}"),
        Some(file) => update(file, &table)?,
    }
    Ok(())
}

/// Replaces what is between the markers in `file` with `table`.
fn update(file: &Path, table: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        anyhow::bail!(
            "{}: no {BEGIN} ... {END} lines to write between",
            file.display()
        );
    };
    anyhow::ensure!(
        begin < end,
        "{}: {END} comes before {BEGIN}",
        file.display()
    );
    let updated = format!("{}{BEGIN}\n{table}{}", &text[..begin], &text[end..]);
    std::fs::write(file, updated).with_context(|| format!("{}", file.display()))?;
    println!("{}: the policy table written", file.display());
    Ok(())
}
