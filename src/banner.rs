//! What the shop prints once every service is ready: where each is, and
//! commands to try.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use shop_kit::deploy::Try;

use crate::{calling::Calling, launch::Started};

/// What a URL's query keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn print(
    running: &[Started],
    metrics: Option<&shop_kit::rpc::Listening>,
    dashboard: &crate::dashboard::Shown,
    calling: &Calling,
) {
    println!("\nconnect-shop is running (Ctrl-C to stop)\n");
    for service in running {
        let url = calling.url(service.addr);
        println!(
            "  {:<9} {url}   Connect + gRPC + gRPC-Web   db: {}   seeded: {}",
            service.name, service.database, service.seeded
        );
        match metrics {
            None => println!("  {:<9} {url}/metrics  {url}/healthz  {url}/readyz", ""),
            Some(_) => println!("  {:<9} {url}/healthz  {url}/readyz", ""),
        }
    }
    if let Some(metrics) = metrics {
        println!("  {:<9} http://{}/metrics", "metrics", metrics.addr);
    }
    match dashboard {
        crate::dashboard::Shown::At(addr) => println!("\n  {:<9} http://{addr}", "dashboard"),
        crate::dashboard::Shown::PortTaken(why) => println!("\n  {:<9} off: {why}", "dashboard"),
        crate::dashboard::Shown::Off => {}
    }
    let curl = calling.curl();
    let mut tries = running
        .iter()
        .flat_map(|service| {
            let url = calling.url(service.addr);
            service.tries.iter().map(move |one| (url.clone(), one))
        })
        .peekable();
    if tries.peek().is_some() {
        println!("\nTry:");
    }
    for (url, one) in tries {
        match one {
            Try::Post { method, body } => println!(
                "  curl {curl} {url}/{method} -H 'Content-Type: application/json' -d '{body}'"
            ),
            Try::Get { method, message } => println!(
                "  curl {curl} '{url}/{method}?connect=v1&encoding=json&message={}'",
                utf8_percent_encode(message, UNRESERVED)
            ),
            Try::Grpc { method } => println!(
                "  npx @bufbuild/buf curl {} --protocol grpc --reflect {url}/{method}",
                calling.buf()
            ),
        }
    }
    println!("\n  The README walks from sign-up to a placed order with curl.");
    println!();
}
