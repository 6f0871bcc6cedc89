//! What the shop prints once every service is ready: where each is, and
//! commands to try.

use crate::{calling::Calling, launch::Started};

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
    if let Some(catalog) = running.iter().find(|s| s.name == "catalog") {
        let base = format!(
            "{}/shop.catalog.v1.CatalogService",
            calling.url(catalog.addr)
        );
        println!("\nTry:");
        println!(
            "  curl {curl} {base}/ListProducts -H 'Content-Type: application/json' -d '{{\"pageSize\": 3}}'"
        );
        println!(
            "  curl {curl} '{base}/GetProduct?connect=v1&encoding=json&message=%7B%22id%22%3A%22prod_mug%22%7D'"
        );
        println!(
            "  npx @bufbuild/buf curl {} --protocol grpc --reflect {base}/ListProducts",
            calling.buf()
        );
    }
    if let Some(users) = running
        .iter()
        .find(|s| s.name == "users" && s.seeded.starts_with("demo account"))
    {
        println!(
            "  curl {curl} {}/shop.users.v1.UserService/LogIn -H 'Content-Type: application/json' -d '{{\"email\": \"{}\", \"password\": \"{}\"}}'",
            calling.url(users.addr),
            shop_users::DEMO_EMAIL,
            shop_users::DEMO_PASSWORD
        );
    }
    if let Some(gateway) = running.iter().find(|s| s.name == "gateway") {
        println!(
            "  curl {curl} {}/shop.bff.v1.MobileBffService/GetHome -H 'Content-Type: application/json' -d '{{}}'",
            calling.url(gateway.addr)
        );
    }
    println!("\n  The README walks from sign-up to a placed order with curl.");
    println!();
}
