//! docs/contract.md's table of every RPC's call policy is the one the
//! contract's descriptors give (`shop policy`): a changed option without
//! `just policy-docs` fails here; so does its count of validation rules
//! per message.

use std::process::Command;

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
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/contract.md"))
        .expect("docs/contract.md");
    let kept = docs
        .split_once("<!-- policy:begin -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- policy:end -->"))
        .map(|(table, _)| table)
        .expect("docs/contract.md has the policy markers");
    assert!(
        kept == table,
        "docs/contract.md's policy table is stale: run `just policy-docs`\n\
         in the docs:\n{kept}\nfrom the contract:\n{table}"
    );
}

#[test]
fn the_contracts_rules_per_message_in_the_docs_are_current() {
    let table = shop_proto::rules_table().expect("the contract's rules");
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/contract.md"))
        .expect("docs/contract.md");
    let kept = docs
        .split_once("<!-- rules:begin -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- rules:end -->"))
        .map(|(table, _)| table)
        .expect("docs/contract.md has the rules markers");
    assert!(
        kept == table,
        "docs/contract.md's rules per message are stale: run `just policy-docs`\n\
         in the docs:\n{kept}\nfrom the contract:\n{table}"
    );
}
