//! docs/contract.md's tables written from the contract (`just
//! policy-docs`) are what its descriptors give now: every RPC's call
//! policy (`shop policy`), the public RPCs' REST routes and each message's
//! count of validation rules. A changed option, route or rule without
//! `just policy-docs` fails here, naming the stale table.

use std::process::Command;

/// Fails unless `table` is what docs/contract.md holds between its
/// `<!-- NAME:begin -->` and `<!-- NAME:end -->` lines.
fn assert_current(name: &str, what: &str, table: &str) {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/contract.md"))
        .expect("docs/contract.md");
    let kept = docs
        .split_once(&format!("<!-- {name}:begin -->\n"))
        .and_then(|(_, rest)| rest.split_once(&format!("<!-- {name}:end -->")))
        .map(|(table, _)| table)
        .unwrap_or_else(|| panic!("docs/contract.md has no {name} markers"));
    assert!(
        kept == table,
        "docs/contract.md's {what} is stale: run `just policy-docs`\n\
         in the docs:\n{kept}\nfrom the contract:\n{table}"
    );
}

#[test]
fn the_contracts_policy_table_in_the_docs_is_current() {
    let output = Command::new(env!("CARGO_BIN_EXE_shop"))
        .arg("policy")
        .output()
        .expect("shop policy runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).expect("utf-8");
    assert_current("policy", "policy table", &table);
}

#[test]
fn the_contracts_rest_table_in_the_docs_is_current() {
    let routes = shop_proto::public_rest_routes().expect("the contract's REST routes");
    assert_current("rest", "REST table", &routes.table());
}

#[test]
fn the_contracts_rules_per_message_in_the_docs_are_current() {
    let table = shop_proto::rules_table().expect("the contract's rules");
    assert_current("rules", "rules per message", &table);
}
