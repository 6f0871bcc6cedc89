//! The services the gateway calls, over gRPC, each through the kit's client
//! stack (deadline, retries of these idempotent reads, breaker, bulkhead).
//! The caller's bearer token is passed on as it came: the gateway mints no
//! identity. Catalog reads are cached briefly, and concurrent misses for the
//! same page share one call.

use std::{sync::Arc, time::Duration};

use moka::future::Cache;
use shop_kit::client::{Downstream, DownstreamPolicy, Retry};
use shop_proto::shop::{
    catalog::v1::{ListProductsRequest, Product, catalog_service_client::CatalogServiceClient},
    orders::v1::{ListOrdersRequest, Order, order_service_client::OrderServiceClient},
    users::v1::{GetMeRequest, User, user_service_client::UserServiceClient},
};
use tokio::time::Instant;
use tonic::{Status, transport::Channel};

/// Where the services are.
#[derive(Clone, Debug)]
pub struct ServiceUrls {
    pub users_url: String,
    pub catalog_url: String,
    pub orders_url: String,
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

#[derive(Debug, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct BadUrl {
    name: &'static str,
    reason: String,
}

fn channel(url: &str, name: &'static str) -> Result<Channel, BadUrl> {
    shop_kit::client::channel(url, Duration::from_secs(2)).map_err(|e| BadUrl {
        name,
        reason: e.to_string(),
    })
}

fn forwarded<T>(message: T, bearer: &str, budget: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(budget);
    if let Ok(value) = format!("Bearer {bearer}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The services, as the gateway calls them.
#[derive(Clone, Debug)]
pub struct Services {
    users: (UserServiceClient<Channel>, Downstream),
    catalog: (CatalogServiceClient<Channel>, Downstream),
    orders: (OrderServiceClient<Channel>, Downstream),
    products: Cache<i32, Arc<Vec<Product>>>,
}

impl Services {
    pub fn new(
        urls: &ServiceUrls,
        policy: &DownstreamPolicy,
        cache: &CachePolicy,
    ) -> Result<Self, BadUrl> {
        Ok(Self {
            users: (
                UserServiceClient::new(channel(&urls.users_url, "users_url")?),
                Downstream::new("users", policy.clone()),
            ),
            catalog: (
                CatalogServiceClient::new(channel(&urls.catalog_url, "catalog_url")?),
                Downstream::new("catalog", policy.clone()),
            ),
            orders: (
                OrderServiceClient::new(channel(&urls.orders_url, "orders_url")?),
                Downstream::new("orders", policy.clone()),
            ),
            products: Cache::builder()
                .max_capacity(64)
                .time_to_live(cache.catalog_ttl)
                .build(),
        })
    }

    /// The first `count` products of the catalog, from the cache when fresh;
    /// callers wanting the same page at once share one call.
    pub async fn featured_products(
        &self,
        count: i32,
        deadline: Option<Instant>,
    ) -> Result<Arc<Vec<Product>>, Status> {
        let (client, downstream) = &self.catalog;
        self.products
            .try_get_with(count, async {
                let page = downstream
                    .call(Retry::Safe, deadline, |budget| {
                        let mut client = client.clone();
                        let mut request = tonic::Request::new(ListProductsRequest {
                            page_size: count,
                            ..Default::default()
                        });
                        request.set_timeout(budget);
                        async move { client.list_products(request).await }
                    })
                    .await?;
                Ok::<_, Status>(Arc::new(page.into_inner().products))
            })
            .await
            .map_err(|shared: Arc<Status>| (*shared).clone())
    }

    /// The signed-in caller.
    pub async fn me(&self, bearer: &str, deadline: Option<Instant>) -> Result<User, Status> {
        let (client, downstream) = &self.users;
        let answer = downstream
            .call(Retry::Safe, deadline, |budget| {
                let mut client = client.clone();
                let request = forwarded(GetMeRequest {}, bearer, budget);
                async move { client.get_me(request).await }
            })
            .await?;
        answer
            .into_inner()
            .user
            .ok_or_else(|| Status::unavailable("the users service answered without a user"))
    }

    /// The signed-in caller's latest orders, newest first.
    pub async fn recent_orders(
        &self,
        bearer: &str,
        count: i32,
        deadline: Option<Instant>,
    ) -> Result<Vec<Order>, Status> {
        let (client, downstream) = &self.orders;
        let answer = downstream
            .call(Retry::Safe, deadline, |budget| {
                let mut client = client.clone();
                let request = forwarded(
                    ListOrdersRequest {
                        page_size: count,
                        ..Default::default()
                    },
                    bearer,
                    budget,
                );
                async move { client.list_orders(request).await }
            })
            .await?;
        Ok(answer.into_inner().orders)
    }
}
