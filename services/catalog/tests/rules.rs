//! The catalog's request rules (buf.validate in catalog.proto), refused
//! before any handler work on every protocol, with a google.rpc.BadRequest
//! naming each field as the caller wrote it.

mod support;

use shop_kit::testing::refusals::assert_bad_request;
use shop_proto::shop::catalog::v1 as pb;
use support::TestCatalog;

#[tokio::test]
async fn catalog_requests_breaking_a_rule_are_refused_on_every_protocol() {
    let catalog = TestCatalog::start().await;
    let base = catalog.base();
    let refused = |path: &'static str| format!("/shop.catalog.v1.CatalogService/{path}");

    // required
    assert_bad_request(
        &base,
        &refused("GetProduct"),
        None,
        &pb::GetProductRequest::default(),
        &[("id", "id")],
    )
    .await;
    // string length
    let long_id = pb::GetProductRequest { id: "p".repeat(65) };
    assert_bad_request(
        &base,
        &refused("GetProduct"),
        None,
        &long_id,
        &[("id", "id")],
    )
    .await;
    // number range, two rules broken at once
    let page = pb::ListProductsRequest {
        page_size: -1,
        query: "q".repeat(101),
        ..Default::default()
    };
    assert_bad_request(
        &base,
        &refused("ListProducts"),
        None,
        &page,
        &[("page_size", "pageSize"), ("query", "query")],
    )
    .await;
    // repeated: at least one item, each item's own rule
    assert_bad_request(
        &base,
        &refused("BatchGetProducts"),
        None,
        &pb::BatchGetProductsRequest::default(),
        &[("product_ids", "productIds")],
    )
    .await;
    let empty_id = pb::BatchGetProductsRequest {
        product_ids: vec!["p1".into(), String::new()],
    };
    assert_bad_request(
        &base,
        &refused("BatchGetProducts"),
        None,
        &empty_id,
        &[("product_ids[1]", "productIds[1]")],
    )
    .await;
    // at most 100
    let too_many = pb::BatchGetProductsRequest {
        product_ids: (0..101).map(|n| format!("p{n}")).collect(),
    };
    assert_bad_request(
        &base,
        &refused("BatchGetProducts"),
        None,
        &too_many,
        &[("product_ids", "productIds")],
    )
    .await;
}

#[tokio::test]
async fn stock_moves_breaking_a_rule_are_refused_on_every_protocol() {
    let catalog = TestCatalog::start().await;
    let base = catalog.base();
    let token = Some(catalog.service_token.as_str());
    let reserve = "/shop.catalog.v1.StockService/ReserveStock";
    // nested messages: each line's own rules, with its index
    let request = pb::ReserveStockRequest {
        reservation_id: "r1".into(),
        items: vec![
            pb::StockItem {
                product_id: "p1".into(),
                quantity: 1,
            },
            pb::StockItem {
                product_id: String::new(),
                quantity: 1001,
            },
        ],
    };
    assert_bad_request(
        &base,
        reserve,
        token,
        &request,
        &[
            ("items[1].product_id", "items[1].productId"),
            ("items[1].quantity", "items[1].quantity"),
        ],
    )
    .await;
    let no_id = pb::ReleaseStockRequest::default();
    assert_bad_request(
        &base,
        "/shop.catalog.v1.StockService/ReleaseStock",
        token,
        &no_id,
        &[("reservation_id", "reservationId")],
    )
    .await;
    // The caller is checked first: no rule is read for a stranger.
    let answers = shop_kit::testing::refusals::on_every_protocol(
        &base,
        reserve,
        Some(&catalog.token),
        &request,
    )
    .await;
    assert!(
        answers
            .iter()
            .all(|answer| answer.code == "permission_denied"),
        "{answers:?}"
    );
}
