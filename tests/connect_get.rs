//! Connect GET comes from the contract: every method the protos mark
//! `idempotency_level = NO_SIDE_EFFECTS` answers it on its service's port,
//! and no other method does (no list of routes is kept by hand; the route
//! builders are generated from the descriptors).

mod launched;

use launched::Shop;
use prost_reflect::{DescriptorPool, Value};

/// The shop service whose port serves a proto package.
fn port_of(package: &str) -> &'static str {
    match package {
        "shop.users.v1" => "users",
        "shop.catalog.v1" => "catalog",
        "shop.orders.v1" => "orders",
        "shop.payments.v1" => "payments",
        "shop.bff.v1" => "gateway",
        // A service `just new-service` added serves its own package.
        other => launched::SERVICES
            .iter()
            .copied()
            .find(|name| other == format!("shop.{name}.v1"))
            .unwrap_or_else(|| panic!("a package no service serves: {other}")),
    }
}

#[tokio::test]
async fn every_no_side_effects_method_and_only_those_answer_connect_get() {
    let shop = Shop::whole(&[]).await;
    let pool = DescriptorPool::decode(shop_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let client = reqwest::Client::new();
    let (mut cacheable, mut not) = (0, 0);
    for service in pool.services() {
        if !service.full_name().starts_with("shop.") {
            continue;
        }
        for method in service.methods() {
            let marked = matches!(
                method
                    .options()
                    .get_field_by_name("idempotency_level")
                    .as_deref(),
                Some(Value::EnumNumber(1))
            );
            let url = format!(
                "{}/{}/{}?connect=v1&encoding=json&message=%7B%7D",
                shop.url(port_of(service.package_name())),
                service.full_name(),
                method.name()
            );
            let answer = client.get(&url).send().await.expect("answered");
            let status = answer.status().as_u16();
            let content_type = answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            if marked {
                cacheable += 1;
                // Answered as Connect: the message, or the caller's fault
                // (no token, an empty request breaking a rule).
                assert_ne!(status, 405, "{url}");
                assert!(
                    content_type.starts_with("application/json"),
                    "{url}: {content_type}"
                );
            } else {
                not += 1;
                assert_eq!(status, 405, "{url} answers GET, unmarked");
            }
        }
    }
    // Every method was asked, each as the contract marks it: some of each
    // kind, however many the contract has.
    assert!(cacheable > 0 && not > 0, "{cacheable} marked, {not} not");
}
