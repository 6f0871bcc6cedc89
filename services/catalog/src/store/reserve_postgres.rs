//! Reserving stock on PostgreSQL in one statement: the reservation, every
//! line's stock and their stock.changed events, all or nothing, in one
//! round trip with no `BEGIN` or `COMMIT` (a statement is atomic by
//! itself). The products' rows are locked by product id, as the
//! transaction SQLite runs instead takes them, so two reservations never
//! wait for each other in a circle; the stock is checked on the locked
//! rows, and the reservation is claimed only if every line has enough, so
//! the stock moves only then.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, QueryResult};
use shop_kit::{db::Params, events::Event};

use super::{Store, reservation_status};
use crate::{
    domain::ReservationStatus,
    error::CatalogError,
    events::{SERVICE, STOCK_CHANGED, StockChanged},
};

/// What the statement says of each product it found: its stock after the
/// reservation (`taken`), or as it is when the reservation was refused.
struct Found {
    product_id: String,
    stock_on_hand: i32,
    version: i64,
    taken: bool,
}

impl Found {
    fn of(row: &QueryResult) -> Result<Self, CatalogError> {
        Ok(Self {
            product_id: row.try_get("", "id")?,
            stock_on_hand: row.try_get("", "stock_on_hand")?,
            version: row.try_get("", "stock_version")?,
            taken: row.try_get("", "taken")?,
        })
    }
}

impl Store {
    /// [`Store::reserve`] on PostgreSQL; `items` is the reservation's
    /// stored items.
    pub(super) async fn reserve_in_one_statement(
        &self,
        id: &str,
        lines: &[(String, i32)],
        items: String,
        now: i64,
    ) -> Result<ReservationStatus, CatalogError> {
        // A product named twice is reserved once, for both quantities.
        let mut wanted: BTreeMap<&str, i32> = BTreeMap::new();
        for (product_id, quantity) in lines {
            let total = wanted.entry(product_id).or_default();
            *total = total.saturating_add(*quantity);
        }
        // Each event's id, time and trace context, fixed before the
        // statement; its facts come from the row the statement updates.
        let mut stamps: BTreeMap<String, Event> = BTreeMap::new();
        let mut params = Params::default();
        let mut rows = Vec::with_capacity(wanted.len());
        for (product_id, quantity) in &wanted {
            let stamp = Event::new(
                SERVICE,
                STOCK_CHANGED,
                product_id,
                0,
                serde_json::Value::Null,
            );
            rows.push(format!(
                "({}, {}::integer, {}, {}::bigint, {})",
                params.add(*product_id),
                params.add(*quantity),
                params.add(stamp.id.clone()),
                params.add(stamp.occurred_at_ms()),
                params.add(stamp.traceparent.clone()),
            ));
            stamps.insert((*product_id).to_owned(), stamp);
        }
        let outbox = self.relay.outbox().insert_rows_of(&format!(
            "SELECT event_id, {event_type}, id, stock_version, occurred_at_ms, traceparent, \
             json_build_object('productId', id, 'stockOnHand', stock_on_hand, \
             'version', stock_version)::text FROM taken",
            event_type = params.add(STOCK_CHANGED),
        ));
        let sql = format!(
            "WITH wanted (product_id, quantity, event_id, occurred_at_ms, traceparent) AS \
             (VALUES {rows}), \
             locked AS (SELECT p.id, p.stock_on_hand, w.quantity, w.event_id, w.occurred_at_ms, \
             w.traceparent FROM products p JOIN wanted w ON w.product_id = p.id \
             ORDER BY p.id FOR UPDATE OF p), \
             claim AS (INSERT INTO stock_reservations (id, status, updated_at, items) \
             SELECT {id}, {status}, {now}, {items} \
             WHERE (SELECT count(*) FROM locked WHERE stock_on_hand >= quantity) = {lines} \
             RETURNING id), \
             taken AS (UPDATE products p SET stock_on_hand = p.stock_on_hand - l.quantity, \
             stock_version = p.stock_version + 1 FROM locked l \
             WHERE p.id = l.id AND EXISTS (SELECT 1 FROM claim) \
             RETURNING p.id, p.stock_on_hand, p.stock_version, l.event_id, l.occurred_at_ms, \
             l.traceparent), \
             recorded AS ({outbox}) \
             SELECT id, stock_on_hand, stock_version, true AS taken FROM taken \
             UNION ALL SELECT id, stock_on_hand, 0::bigint, false FROM locked \
             WHERE NOT EXISTS (SELECT 1 FROM claim)",
            rows = rows.join(", "),
            id = params.add(id),
            status = params.add(ReservationStatus::Reserved.as_str()),
            now = params.add(now),
            items = params.add(items),
            lines = params.add(i64::try_from(wanted.len()).unwrap_or(i64::MAX)),
        );
        let found = match self.db.query_all_raw(params.statement(sql)).await {
            Ok(rows) => rows.iter().map(Found::of).collect::<Result<Vec<_>, _>>()?,
            // The id was claimed before: what became of it stands.
            Err(error) if shop_kit::db::is_unique_violation(&error) => {
                return reservation_status(&self.db, id)
                    .await?
                    .ok_or_else(|| CatalogError::ReservationNotFound { id: id.to_owned() });
            }
            Err(error) => return Err(error.into()),
        };
        if found.iter().any(|product| product.taken) {
            let events = found
                .into_iter()
                .filter_map(|product| {
                    let mut event = stamps.remove(&product.product_id)?;
                    let change = StockChanged {
                        product_id: product.product_id,
                        stock_on_hand: product.stock_on_hand,
                        version: product.version,
                    };
                    event.version = change.version;
                    event.data = serde_json::json!(change);
                    Some(event)
                })
                .collect::<Vec<_>>();
            self.relay.committed(events);
            return Ok(ReservationStatus::Reserved);
        }
        // Refused: unless the id was claimed before, the first line (in
        // lock order) that could not be had says why.
        if let Some(status) = reservation_status(&self.db, id).await? {
            return Ok(status);
        }
        for (product_id, quantity) in wanted {
            match found
                .iter()
                .find(|product| product.product_id == product_id)
            {
                None => {
                    return Err(CatalogError::ProductNotFound {
                        id: product_id.to_owned(),
                    });
                }
                Some(product) if product.stock_on_hand < quantity => {
                    return Err(CatalogError::InsufficientStock {
                        id: product_id.to_owned(),
                        on_hand: product.stock_on_hand,
                        requested: quantity,
                    });
                }
                Some(_) => {}
            }
        }
        Err(CatalogError::Database(sea_orm::DbErr::Custom(format!(
            "reservation {id} was neither made nor refused"
        ))))
    }
}
