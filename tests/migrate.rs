//! `shop migrate` and what starting on a database or with peers the shop
//! cannot use does: applies and exits; refuses, naming what is wrong.

mod command;

use std::process::Output;

use command::text;

/// `shop ARGS --data-dir DATA`.
fn shop(args: &[&str], data: &std::path::Path) -> Output {
    let data = data.display().to_string();
    let all: Vec<&str> = args.iter().copied().chain(["--data-dir", &data]).collect();
    command::shop(&all, &[])
}

#[test]
fn migrate_applies_every_service_then_says_it_is_up_to_date() {
    let data = tempfile::tempdir().expect("dir");
    let first = shop(&["migrate"], data.path());
    assert!(first.status.success(), "{}", text(&first));
    let said = text(&first);
    for service in ["users", "catalog", "orders", "payments"] {
        assert!(said.contains(&format!("{service:<9} applied")), "{said}");
    }
    let again = shop(&["migrate", "orders"], data.path());
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("orders    up to date at m"),
        "{}",
        text(&again)
    );
}

/// Records `version` as applied to payments' database, as a newer release
/// would have.
fn applied_by_a_newer_release(data: &std::path::Path, version: &str) {
    let url = format!("sqlite://{}?mode=rwc", data.join("payments.db").display());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        use sea_orm::ConnectionTrait;
        let db = shop_kit::db::connect("test", &url).await.expect("connect");
        db.execute_unprepared(&format!(
            "INSERT INTO payments_migrations (version, applied_at) VALUES ('{version}', 0)"
        ))
        .await
        .expect("a later migration");
        db.close().await.expect("close");
    });
}

/// A rollback after a release's migrations ran: the older release runs on
/// the schema they expanded (docs/migrations.md).
#[test]
fn a_service_runs_on_a_database_a_newer_release_expanded() {
    let data = tempfile::tempdir().expect("dir");
    assert!(shop(&["migrate", "payments"], data.path()).status.success());
    applied_by_a_newer_release(data.path(), "m20990101_000001_add_payment_notes");
    let migrated = shop(&["migrate", "payments"], data.path());
    let said = text(&migrated);
    assert!(migrated.status.success(), "{said}");
    assert!(
        said.contains("expanded by a newer release (m20990101_000001_add_payment_notes)"),
        "{said}"
    );
}

#[test]
fn a_service_refuses_a_database_a_newer_release_contracted() {
    let data = tempfile::tempdir().expect("dir");
    assert!(shop(&["migrate", "payments"], data.path()).status.success());
    applied_by_a_newer_release(data.path(), "m20990101_000001_add_payment_notes");
    applied_by_a_newer_release(data.path(), "m20990201_000002_contract_drop_payment_method");
    for args in [&["migrate", "payments"][..], &["serve", "payments"][..]] {
        let refused = shop(args, data.path());
        assert!(!refused.status.success(), "{args:?} must refuse");
        let said = text(&refused);
        assert!(
            said.contains("contracted by a newer version")
                && said.contains("m20990201_000002_contract_drop_payment_method"),
            "{args:?}: {said}"
        );
    }
}

#[test]
fn peer_addresses_the_shop_cannot_use_are_refused_naming_the_flag() {
    let data = tempfile::tempdir().expect("dir");
    for (flag, value, says) in [
        ("--catalog-url", "http://a:1,,http://b:2", "empty entry"),
        ("--catalog-url", "", "empty entry"),
        (
            "--payments-url",
            "catalog:8082",
            "not an http:// or https:// URL",
        ),
        ("--users-url", "dns:///users", "port is missing"),
    ] {
        let refused = shop(&["serve", "orders", flag, value], data.path());
        assert!(!refused.status.success(), "{flag} {value:?}");
        let said = text(&refused);
        assert!(
            said.contains(flag) && said.contains(says),
            "{flag} {value:?}: {said}"
        );
    }
}
