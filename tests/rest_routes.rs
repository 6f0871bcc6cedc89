//! The REST routes the contract declares (`google.api.http`), read from the
//! shop's descriptors as a server reads them: every public RPC's route,
//! none for an internal service, and a request's method and path finding
//! its RPC with what the path binds.

use http::Method;
use prost_reflect::DescriptorPool;
use shop_kit::rest::{RestBody, RestRoutes};

fn pool() -> DescriptorPool {
    DescriptorPool::decode(shop_proto::FILE_DESCRIPTOR_SET).expect("descriptors")
}

/// The shop's services, public and internal, as the contract says: no
/// list kept by hand.
fn services() -> (Vec<String>, Vec<String>) {
    shop_proto::services().expect("the contract's services")
}

/// Each method's `google.api.http` rule as the descriptors hold it, read
/// here without the kit: (verb, path, `/package.Service/Method`).
fn declared(service: &str) -> Vec<(String, String, String)> {
    let pool = pool();
    let option = pool
        .get_extension_by_name("google.api.http")
        .expect("the contract uses google.api.http");
    let service = pool.get_service_by_name(service).expect("a service");
    service
        .methods()
        .filter(|method| method.options().has_extension(&option))
        .map(|method| {
            let options = method.options();
            let rule = options.get_extension(&option);
            let rule = rule.as_message().expect("an HttpRule");
            let (verb, path) = ["get", "put", "post", "delete", "patch"]
                .into_iter()
                .find_map(|verb| {
                    let path = rule.get_field_by_name(verb)?;
                    let path = path.as_str()?.to_owned();
                    (!path.is_empty()).then(|| (verb.to_ascii_uppercase(), path))
                })
                .expect("a verb and a path");
            (
                verb,
                path,
                format!("/{}/{}", service.full_name(), method.name()),
            )
        })
        .collect()
}

#[test]
fn every_public_rpc_s_declared_route_is_served_and_internal_services_declare_none() {
    let (public, internal) = services();
    assert!(
        !public.is_empty() && !internal.is_empty(),
        "{public:?} {internal:?}"
    );
    let routes = RestRoutes::from_pool(&pool(), public.iter().map(String::as_str)).expect("routes");
    let served: Vec<(String, String, String)> = routes
        .iter()
        .map(|route| {
            (
                route.method.to_string(),
                route.path.template().to_owned(),
                route.rpc.clone(),
            )
        })
        .collect();
    let every_declared: Vec<(String, String, String)> = public
        .iter()
        .flat_map(|service| declared(service))
        .collect();
    assert_eq!(served, every_declared);
    for service in &public {
        assert!(
            !declared(service).is_empty(),
            "the public {service} declares no REST route"
        );
    }
    for service in &internal {
        assert!(
            declared(service).is_empty(),
            "the internal {service} declares routes"
        );
    }
    let internal_routes =
        RestRoutes::from_pool(&pool(), internal.iter().map(String::as_str)).expect("routes");
    assert!(internal_routes.is_empty());
}

#[test]
fn a_request_finds_its_rpc_and_its_path_fields() {
    let (public, _) = services();
    let routes = RestRoutes::from_pool(&pool(), public.iter().map(String::as_str)).expect("routes");
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
    let (public, internal) = services();
    let routes = RestRoutes::from_pool(&pool(), public.iter().map(String::as_str)).expect("routes");
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
    for name in &public {
        let service = pool.get_service_by_name(name).expect("service");
        for method in service.methods().filter(|m| !m.is_server_streaming()) {
            let path = format!("/{name}/{}", method.name());
            assert!(
                paths.contains_key(&path),
                "{path} is not in openapi/openapi.json"
            );
        }
    }
    for name in &internal {
        let prefix = format!("/{name}/");
        assert!(
            paths.keys().all(|path| !path.starts_with(&prefix)),
            "the internal {name} is in openapi/openapi.json"
        );
    }
}
