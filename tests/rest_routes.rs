//! The REST routes the contract declares (`google.api.http`), read from the
//! shop's descriptors as a server reads them: every public RPC's route,
//! none for an internal service, and a request's method and path finding
//! its RPC with what the path binds.

use http::Method;
use prost_reflect::DescriptorPool;
use shop_kit::rest::{RestBody, RestRoutes};

const PUBLIC: [&str; 6] = [
    "shop.catalog.v1.CatalogService",
    "shop.orders.v1.OrderService",
    "shop.users.v1.UserService",
    "shop.payments.v1.PaymentService",
    "shop.bff.v1.WebBffService",
    "shop.bff.v1.MobileBffService",
];
const INTERNAL: [&str; 3] = [
    "shop.catalog.v1.StockService",
    "shop.users.v1.ServiceTokenService",
    "shop.payments.v1.OrderPaymentService",
];

fn pool() -> DescriptorPool {
    DescriptorPool::decode(shop_proto::FILE_DESCRIPTOR_SET).expect("descriptors")
}

#[test]
fn every_public_rpc_declares_its_route_and_internal_ones_none() {
    let routes = RestRoutes::from_pool(&pool(), PUBLIC).expect("routes");
    let table: Vec<(String, String, String)> = routes
        .iter()
        .map(|route| {
            (
                route.method.to_string(),
                route.path.template().to_owned(),
                route.rpc.clone(),
            )
        })
        .collect();
    let expected = [
        (
            "GET",
            "/v1/products",
            "/shop.catalog.v1.CatalogService/ListProducts",
        ),
        (
            "GET",
            "/v1/products/{id}",
            "/shop.catalog.v1.CatalogService/GetProduct",
        ),
        (
            "POST",
            "/v1/products:batchGet",
            "/shop.catalog.v1.CatalogService/BatchGetProducts",
        ),
        (
            "GET",
            "/v1/stock:watch",
            "/shop.catalog.v1.CatalogService/WatchStock",
        ),
        (
            "POST",
            "/v1/orders",
            "/shop.orders.v1.OrderService/CreateOrder",
        ),
        (
            "GET",
            "/v1/orders/{order_id}",
            "/shop.orders.v1.OrderService/GetOrder",
        ),
        (
            "GET",
            "/v1/orders",
            "/shop.orders.v1.OrderService/ListOrders",
        ),
        (
            "POST",
            "/v1/orders/{order_id}:cancel",
            "/shop.orders.v1.OrderService/CancelOrder",
        ),
        (
            "GET",
            "/v1/orders/{order_id}:watch",
            "/shop.orders.v1.OrderService/WatchOrder",
        ),
        ("POST", "/v1/users", "/shop.users.v1.UserService/SignUp"),
        ("POST", "/v1/sessions", "/shop.users.v1.UserService/LogIn"),
        (
            "POST",
            "/v1/sessions:refresh",
            "/shop.users.v1.UserService/Refresh",
        ),
        ("GET", "/v1/me", "/shop.users.v1.UserService/GetMe"),
        (
            "GET",
            "/v1/public-keys",
            "/shop.users.v1.UserService/GetPublicKeys",
        ),
        (
            "POST",
            "/v1/payments",
            "/shop.payments.v1.PaymentService/Charge",
        ),
        (
            "POST",
            "/v1/payments:refund",
            "/shop.payments.v1.PaymentService/Refund",
        ),
        (
            "POST",
            "/v1/payment-tokens:check",
            "/shop.payments.v1.PaymentService/CheckPaymentToken",
        ),
        (
            "GET",
            "/v1/payments/{payment_id}",
            "/shop.payments.v1.PaymentService/GetPayment",
        ),
        ("GET", "/v1/web/home", "/shop.bff.v1.WebBffService/GetHome"),
        (
            "GET",
            "/v1/mobile/home",
            "/shop.bff.v1.MobileBffService/GetHome",
        ),
    ]
    .map(|(method, path, rpc)| (method.to_owned(), path.to_owned(), rpc.to_owned()));
    assert_eq!(table, expected);

    let internal = RestRoutes::from_pool(&pool(), INTERNAL).expect("routes");
    assert!(
        internal.is_empty(),
        "{:?}",
        internal.iter().collect::<Vec<_>>()
    );
}

#[test]
fn a_request_finds_its_rpc_and_its_path_fields() {
    let routes = RestRoutes::from_pool(&pool(), PUBLIC).expect("routes");
    let (route, bindings) = routes
        .find(&Method::POST, "/v1/orders/ord%201:cancel")
        .expect("a route");
    let bindings = bindings.expect("utf-8");
    assert_eq!(route.rpc, "/shop.orders.v1.OrderService/CancelOrder");
    assert_eq!(route.body, RestBody::Whole);
    assert_eq!(
        bindings
            .iter()
            .map(|binding| (binding.field.join("."), binding.value.as_str()))
            .collect::<Vec<_>>(),
        [("order_id".to_owned(), "ord 1")]
    );

    // The same path, another verb: the order, not its cancellation.
    let (route, _) = routes
        .find(&Method::GET, "/v1/orders/ord-1")
        .expect("a route");
    assert_eq!(route.rpc, "/shop.orders.v1.OrderService/GetOrder");
    assert_eq!(route.body, RestBody::None);

    let (route, _) = routes
        .find(&Method::GET, "/v1/orders/ord-1:watch")
        .expect("a route");
    assert!(route.server_streaming);

    assert!(routes.find(&Method::DELETE, "/v1/orders/ord-1").is_none());
    assert!(routes.find(&Method::GET, "/v1/nothing").is_none());
}

/// The checked-in OpenAPI document (`just openapi`).
fn openapi() -> serde_json::Value {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(file).expect("openapi/openapi.json"))
        .expect("JSON")
}

#[test]
fn the_openapi_document_has_every_public_route_and_no_internal_rpc() {
    let document = openapi();
    let paths = document["paths"].as_object().expect("paths");
    let routes = RestRoutes::from_pool(&pool(), PUBLIC).expect("routes");
    for route in routes.iter() {
        let method = route.method.as_str().to_ascii_lowercase();
        assert!(
            paths
                .get(route.path.template())
                .is_some_and(|item| item.get(&method).is_some()),
            "{} {} is not in openapi/openapi.json: run just openapi",
            route.method,
            route.path.template()
        );
    }
    let pool = pool();
    for name in PUBLIC {
        let service = pool.get_service_by_name(name).expect("service");
        for method in service.methods().filter(|m| !m.is_server_streaming()) {
            let path = format!("/{name}/{}", method.name());
            assert!(
                paths.contains_key(&path),
                "{path} is not in openapi/openapi.json"
            );
        }
    }
    for name in INTERNAL {
        let prefix = format!("/{name}/");
        assert!(
            paths.keys().all(|path| !path.starts_with(&prefix)),
            "the internal {name} is in openapi/openapi.json"
        );
    }
}
