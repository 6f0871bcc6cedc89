//! The command line as a user meets it: `shop serve <service> --help` lists
//! that service's flags and the kit's, nothing else; the whole shop takes
//! them all; one rule picks a service's database; booleans read 1/0.

mod command;

use std::collections::BTreeSet;

use command::{shop, text};

/// The long flags `--help` lists outside its "Every service (the kit)"
/// section, and those in it.
fn flags(args: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
    let help = shop(args, &[]);
    assert!(help.status.success(), "{}", text(&help));
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let (mut own, mut kit) = (BTreeSet::new(), BTreeSet::new());
    let mut in_kit = false;
    for line in help.lines() {
        // A section starts with its heading, flush left.
        if line.ends_with(':') && !line.starts_with(' ') {
            in_kit = line == "Every service (the kit):";
            continue;
        }
        let Some(flag) = line.trim_start().strip_prefix("--") else {
            continue;
        };
        let flag = flag.split([' ', ',']).next().unwrap_or_default().to_owned();
        if flag == "help" || flag == "version" {
            continue;
        }
        if in_kit {
            kit.insert(flag);
        } else {
            own.insert(flag);
        }
    }
    assert!(!kit.is_empty(), "a kit section: {help}");
    (own, kit)
}

fn set(flags: &[&str]) -> BTreeSet<String> {
    flags.iter().map(|f| (*f).to_owned()).collect()
}

const SERVICES: [(&str, &[&str]); 5] = [
    (
        "users",
        &[
            "users-port",
            "users-database-url",
            "demo-account",
            "signing-key-file",
            "signing-key",
            "password-hashing-mib",
            "password-hashing-wait-ms",
            "sign-in-ip-burst",
            "sign-in-ip-per-minute",
            "sign-in-failures",
            "sign-in-lockout-secs",
            "service-secret",
            "service-secret-previous",
            "no-demo-data",
        ],
    ),
    (
        "catalog",
        &[
            "catalog-port",
            "catalog-database-url",
            "demo-stock",
            "users-url",
            "nats-url",
            "nats-ca",
            "no-demo-data",
        ],
    ),
    (
        "orders",
        &[
            "orders-port",
            "orders-database-url",
            "order-deadline-secs",
            "users-url",
            "catalog-url",
            "payments-url",
            "nats-url",
            "nats-ca",
            "service-secret",
        ],
    ),
    (
        "payments",
        &[
            "payments-port",
            "payments-database-url",
            "users-url",
            "nats-url",
            "nats-ca",
        ],
    ),
    (
        "gateway",
        &[
            "gateway-port",
            "public-users-url",
            "public-catalog-url",
            "public-orders-url",
            "public-payments-url",
            "web-dir",
            "rate-limit-ip-per-second",
            "rate-limit-ip-burst",
            "rate-limit-user-per-second",
            "rate-limit-user-burst",
            "users-url",
            "catalog-url",
            "orders-url",
        ],
    ),
];

/// The `--PEER-url` flags of the peers `service`'s contract declares.
fn peer_flags(service: &str) -> BTreeSet<String> {
    shop_proto::identity::deployed(service)
        .expect("a service of the contract")
        .calls
        .iter()
        .map(|peer| format!("{peer}-url"))
        .collect()
}

/// Where a service finds each peer is a flag of each peer its contract
/// declares (`kit.policy.v1.deployment`), and of no other: the flags and the
/// declaration cannot drift apart.
#[test]
fn each_service_takes_a_url_for_each_peer_its_contract_declares_and_no_other() {
    for &service in shop_proto::identity::SERVICES {
        let (own, _) = flags(&["serve", service, "--help"]);
        let urls: BTreeSet<String> = own
            .into_iter()
            .filter(|flag| flag.ends_with("-url") && !flag.starts_with("public-"))
            .filter(|flag| !flag.ends_with("-database-url") && flag != "nats-url")
            .collect();
        assert_eq!(urls, peer_flags(service), "`shop serve {service}`");
    }
}

#[test]
fn each_service_lists_its_own_flags_and_the_kits_and_the_whole_shop_composes_them() {
    let (_, kit) = flags(&["serve", "users", "--help"]);
    for flag in ["host", "data-dir", "tls-dir", "log-format", "otlp-endpoint"] {
        assert!(kit.contains(flag), "the kit's --{flag}: {kit:?}");
    }
    let mut every = BTreeSet::new();
    for (service, expected) in SERVICES {
        let (own, its_kit) = flags(&["serve", service, "--help"]);
        assert_eq!(own, set(expected), "`shop serve {service} --help`");
        assert_eq!(its_kit, kit, "{service} shows the kit's flags as they are");
        every.extend(own);
    }
    // A service `just new-service` added takes its port, its database,
    // where the users service and NATS are, and where each peer its
    // contract declares is; in the whole shop, a peer that is itself an
    // added service is at that one's port.
    let added = &shop_proto::identity::SERVICES[SERVICES.len()..];
    for &service in added {
        let (own, its_kit) = flags(&["serve", service, "--help"]);
        let mut expected = set(&[
            &format!("{service}-port"),
            &format!("{service}-database-url"),
            "users-url",
            "nats-url",
            "nats-ca",
        ]);
        expected.extend(peer_flags(service));
        assert_eq!(own, expected, "`shop serve {service} --help`");
        assert_eq!(its_kit, kit, "{service} shows the kit's flags as they are");
        every.extend(
            own.into_iter()
                .filter(|flag| !added.iter().any(|peer| *flag == format!("{peer}-url"))),
        );
    }
    let (whole, whole_kit) = flags(&["--help"]);
    assert_eq!(
        whole, every,
        "the whole shop takes every service's flags, once"
    );
    assert_eq!(whole_kit, kit);
}

#[test]
fn a_flag_of_another_service_is_refused_naming_it() {
    let refused = shop(&["serve", "orders", "--password-hashing-mib", "64"], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("--password-hashing-mib"),
        "{}",
        text(&refused)
    );

    // The whole shop's flags before a command: refused, not ignored.
    let refused = shop(&["--orders-port", "9000", "serve", "users"], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("--orders-port belongs to the whole shop"),
        "{}",
        text(&refused)
    );
    // The kit's flags go on either side.
    let kit_first = shop(
        &["--data-dir", "/nonexistent", "serve", "users", "--help"],
        &[],
    );
    assert!(kit_first.status.success(), "{}", text(&kit_first));
}

/// Where `shop migrate payments` says it put the payments database.
fn migrated_to(args: &[&str], env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().expect("dir");
    let data_arg = data.path().display().to_string();
    let mut all = vec!["migrate", "payments", "--data-dir", &data_arg];
    all.extend(args);
    let env: Vec<(&str, &str)> = env.to_vec();
    let done = shop(&all, &env);
    let said = text(&done);
    assert!(done.status.success(), "{said}");
    let db = said
        .rsplit("db: ")
        .next()
        .expect("db: in the output")
        .trim();
    db.replace(&data_arg, "DATA")
}

#[test]
fn the_database_is_the_first_given_flag_own_variable_database_url_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
    let (flag, own, generic) = (url("flag.db"), url("own.db"), url("generic.db"));
    let every = [
        ("PAYMENTS_DATABASE_URL", own.as_str()),
        ("DATABASE_URL", generic.as_str()),
    ];
    assert!(migrated_to(&["--payments-database-url", &flag], &every).contains("flag.db"));
    assert!(migrated_to(&[], &every).contains("own.db"));
    assert!(migrated_to(&[], &every[1..]).contains("generic.db"));
    assert!(migrated_to(&[], &[]).contains("DATA/payments.db"));
}

#[test]
fn database_url_names_one_database_so_migrating_several_with_it_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let generic = format!("sqlite://{}?mode=rwc", dir.path().join("one.db").display());
    let refused = shop(
        &["migrate", "--data-dir", &dir.path().display().to_string()],
        &[("DATABASE_URL", &generic)],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("DATABASE_URL names one database"),
        "{}",
        text(&refused)
    );
}

#[test]
fn boolean_variables_take_one_and_zero_and_refuse_other_words() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().display().to_string();
    for value in ["1", "0", "true", "false", "yes", "off"] {
        let done = shop(
            &["migrate", "payments", "--data-dir", &data],
            &[("SHOP_LOG_RPCS", value)],
        );
        assert!(
            done.status.success(),
            "SHOP_LOG_RPCS={value}: {}",
            text(&done)
        );
    }
    let refused = shop(
        &["migrate", "payments", "--data-dir", &data],
        &[("SHOP_LOG_RPCS", "maybe")],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("SHOP_LOG_RPCS") || text(&refused).contains("--log-rpcs"),
        "{}",
        text(&refused)
    );
}

#[test]
fn a_service_config_that_does_not_hold_stops_the_start_saying_what_and_where() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data").display().to_string();
    let config = dir.path().join("service-config.json");
    // The contract's own policy, written as a service config, is taken.
    let written = shop(&["policy", "--as-service-config"], &[]);
    assert!(written.status.success(), "{}", text(&written));
    let json = String::from_utf8_lossy(&written.stdout).into_owned();
    assert!(
        json.contains(r#""service": "shop.catalog.v1.CatalogService""#),
        "{json}"
    );
    // A retry on Charge, which is neither idempotent nor keyed, is not.
    std::fs::write(
        &config,
        r#"{"methodConfig": [{"name": [{"service": "shop.payments.v1.PaymentService", "method": "Charge"}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
    )
    .expect("write");
    let refused = shop(
        &[
            "serve",
            "orders",
            "--data-dir",
            &data,
            "--service-config",
            &config.display().to_string(),
        ],
        &[],
    );
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("service-config.json is refused")
            && said.contains("shop.payments.v1.PaymentService.Charge: retries are only for a method safe to repeat"),
        "{said}"
    );
    // A name the contract does not have, by the variable.
    std::fs::write(
        &config,
        r#"{"methodConfig": [{"name": [{"service": "shop.Nope"}], "timeout": "1s"}]}"#,
    )
    .expect("write");
    let refused = shop(
        &["serve", "orders", "--data-dir", &data],
        &[("SHOP_SERVICE_CONFIG", &config.display().to_string())],
    );
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("shop.Nope, which the contract does not have"),
        "{said}"
    );
}

/// A service's own flag that does not hold stops the start before anything
/// binds, naming the service and what failed, once.
#[test]
fn a_service_flag_that_does_not_hold_is_refused_naming_the_service_once() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().display().to_string();
    let refused = shop(
        &[
            "--data-dir",
            &data,
            "serve",
            "users",
            "--signing-key-file",
            "/nonexistent/key.pem",
        ],
        &[],
    );
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("users: cannot read the signing key /nonexistent/key.pem: No such file"),
        "{said}"
    );
    assert_eq!(
        said.matches("cannot read the signing key").count(),
        1,
        "{said}"
    );
}
