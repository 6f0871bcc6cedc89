// An RpcService made by hand, around the generated builders.
fn main() {
    let _ = shop_kit::RpcService::new(&[], axum::Router::new());
}
