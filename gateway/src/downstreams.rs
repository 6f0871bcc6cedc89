//! The services the gateway calls, over gRPC, each through the kit's client
//! stack (every replica, balanced by load; deadline, retries of these
//! idempotent reads, a breaker per replica, bulkhead).
//! Users and orders are called as the caller, its bearer token passed on
//! as it came, and every call within what is left of the caller's deadline
//! (both ride in the call's context): the gateway mints no identity.
//! Catalog reads are cached briefly, and concurrent misses for the same
//! page share one call.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;
use shop_kit::client::{Peer, PeerError, PeerPolicy, PeerTarget};
use shop_proto::shop::{
    catalog::v1::{ListProductsRequest, Product, catalog_service_client::CatalogServiceClient},
    orders::v1::{ListOrdersRequest, Order, order_service_client::OrderServiceClient},
    users::v1::{GetMeRequest, User, user_service_client::UserServiceClient},
};
use tonic::Status;

/// Where the services are, as a browser reaches them (the web app's
/// config and its Content-Security-Policy).
#[derive(Clone, Debug)]
pub struct ServiceUrls {
    pub users_url: String,
    pub catalog_url: String,
    pub orders_url: String,
    /// Named in the OpenAPI document only: the web app never calls payments.
    pub payments_url: String,
    /// The services `just new-service` added, by name (`reviews`): named
    /// in the OpenAPI document only.
    pub added: std::collections::BTreeMap<String, String>,
}

/// Where the gateway calls the services (each one address or many).
#[derive(Clone, Debug)]
pub struct ServicePeers {
    pub users: PeerTarget,
    pub catalog: PeerTarget,
    pub orders: PeerTarget,
}

/// How long catalog reads are reused.
#[derive(Clone, Debug)]
pub struct CachePolicy {
    pub catalog_ttl: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            catalog_ttl: Duration::from_secs(2),
        }
    }
}

/// The services, as the gateway calls them.
#[derive(Clone, Debug)]
pub struct Services {
    users: Peer,
    catalog: Peer,
    orders: Peer,
    products: Cache<i32, Arc<Vec<Product>>>,
}

impl Services {
    /// Resolves the services' addresses and starts watching their
    /// endpoints.
    pub async fn connect(
        peers: &ServicePeers,
        policy: &PeerPolicy,
        cache: &CachePolicy,
    ) -> Result<Self, PeerError> {
        let (users, catalog, orders) = tokio::try_join!(
            Peer::connect("users", &peers.users, policy.clone()),
            Peer::connect("catalog", &peers.catalog, policy.clone()),
            Peer::connect("orders", &peers.orders, policy.clone()),
        )?;
        Ok(Self {
            users: users.as_the_caller(),
            catalog,
            orders: orders.as_the_caller(),
            products: Cache::builder()
                .max_capacity(64)
                .time_to_live(cache.catalog_ttl)
                .build(),
        })
    }

    /// Whether each service it calls has an endpoint that serves (else
    /// which has none): the gateway is not ready before.
    pub fn serving(&self) -> Result<(), String> {
        shop_kit::client::each_serving(&[
            self.users.clone(),
            self.catalog.clone(),
            self.orders.clone(),
        ])
    }

    /// The first `count` products of the catalog, from the cache when fresh;
    /// callers wanting the same page at once share one call.
    pub async fn featured_products(&self, count: i32) -> Result<Arc<Vec<Product>>, Status> {
        self.products
            .try_get_with(count, async {
                let request = tonic::Request::new(ListProductsRequest {
                    page_size: count,
                    ..Default::default()
                });
                let page = CatalogServiceClient::new(self.catalog.clone())
                    .list_products(request)
                    .await?;
                Ok::<_, Status>(Arc::new(page.into_inner().products))
            })
            .await
            .map_err(|shared: Arc<Status>| (*shared).clone())
    }

    /// The signed-in caller.
    pub async fn me(&self) -> Result<User, Status> {
        let answer = UserServiceClient::new(self.users.clone())
            .get_me(GetMeRequest {})
            .await?;
        answer
            .into_inner()
            .user
            .ok_or_else(|| Status::unavailable("the users service answered without a user"))
    }

    /// The signed-in caller's latest orders, newest first.
    pub async fn recent_orders(&self, count: i32) -> Result<Vec<Order>, Status> {
        let answer = OrderServiceClient::new(self.orders.clone())
            .list_orders(ListOrdersRequest {
                page_size: count,
                ..Default::default()
            })
            .await?;
        Ok(answer.into_inner().orders)
    }
}
