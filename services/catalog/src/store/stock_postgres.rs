//! Moving stock on PostgreSQL in one statement: a reservation (every
//! line's stock taken and the reservation recorded) or its release (the
//! reservation settled and its stock put back), each with the
//! stock.changed events of the products it moved, all or nothing, in one
//! round trip with no `BEGIN` or `COMMIT` (a statement is atomic by
//! itself).
//!
//! The products' rows are locked by product id, as the transactions SQLite
//! runs instead take them, so two moves never wait for each other in a
//! circle. A row is held only while its statement runs and its commit is
//! flushed: never while the catalog sends the next statement of a
//! transaction, which under load may wait for a CPU, and every reservation
//! of the same product waits behind it.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, QueryResult};
use shop_kit::{db::Params, events::Event};

use super::{ReservedItem, Store, reservation_status, settled_already};
use crate::{
    domain::ReservationStatus,
    error::CatalogError,
    events::{SERVICE, STOCK_CHANGED, StockChanged},
};

/// The products one statement moves, each once (a product named twice
/// moves by both quantities), with the stamp of its stock.changed event:
/// its id, time and trace context, fixed before the statement; its facts
/// come from the row the statement updates.
struct Moves<'a> {
    quantities: BTreeMap<&'a str, i32>,
    stamps: BTreeMap<String, Event>,
}

impl<'a> Moves<'a> {
    fn new(lines: impl IntoIterator<Item = (&'a str, i32)>) -> Self {
        let mut quantities: BTreeMap<&str, i32> = BTreeMap::new();
        for (product_id, quantity) in lines {
            let total = quantities.entry(product_id).or_default();
            *total = total.saturating_add(quantity);
        }
        let stamps = quantities
            .keys()
            .map(|product_id| {
                let stamp = Event::new(
                    SERVICE,
                    STOCK_CHANGED,
                    product_id,
                    0,
                    serde_json::Value::Null,
                );
                ((*product_id).to_owned(), stamp)
            })
            .collect();
        Self { quantities, stamps }
    }

    /// `wanted (product_id, quantity, event_id, occurred_at_ms,
    /// traceparent)`, the statement's first common table expression.
    fn wanted(&self, params: &mut Params) -> String {
        let rows: Vec<String> = self
            .quantities
            .iter()
            .map(|(product_id, quantity)| {
                let stamp = &self.stamps[*product_id];
                format!(
                    "({}, {}::integer, {}, {}::bigint, {})",
                    params.add(*product_id),
                    params.add(*quantity),
                    params.add(stamp.id.clone()),
                    params.add(stamp.occurred_at_ms()),
                    params.add(stamp.traceparent.clone()),
                )
            })
            .collect();
        format!(
            "wanted (product_id, quantity, event_id, occurred_at_ms, traceparent) AS (VALUES {})",
            rows.join(", ")
        )
    }

    /// The outbox insert of the stock.changed events of the rows `moved`
    /// (a common table expression returning each moved product's `id`,
    /// `stock_on_hand` and `stock_version` after the move, with its
    /// `event_id`, `occurred_at_ms` and `traceparent` from `wanted`).
    fn recorded(store: &Store, params: &mut Params, moved: &str) -> String {
        store.ledger.relay().outbox().insert_rows_of(&format!(
            "SELECT event_id, {event_type}, id, stock_version, occurred_at_ms, traceparent, \
             json_build_object('productId', id, 'stockOnHand', stock_on_hand, \
             'version', stock_version)::text FROM {moved}",
            event_type = params.add(STOCK_CHANGED),
        ))
    }

    /// The events of the products `moved`, stamped as recorded.
    fn events(mut self, moved: Vec<StockChanged>) -> Vec<Event> {
        moved
            .into_iter()
            .filter_map(|change| {
                let mut event = self.stamps.remove(&change.product_id)?;
                event.version = change.version;
                event.data = serde_json::json!(change);
                Some(event)
            })
            .collect()
    }
}

/// What a statement says of each product it found: its stock after the
/// move (`moved`), or as it is when the move was refused.
struct Found {
    change: StockChanged,
    moved: bool,
}

impl Found {
    fn of(row: &QueryResult) -> Result<Self, CatalogError> {
        Ok(Self {
            change: StockChanged {
                product_id: row.try_get("", "id")?,
                stock_on_hand: row.try_get("", "stock_on_hand")?,
                version: row.try_get("", "stock_version")?,
            },
            moved: row.try_get("", "moved")?,
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
        let moves = Moves::new(
            lines
                .iter()
                .map(|(product_id, quantity)| (product_id.as_str(), *quantity)),
        );
        let mut params = Params::default();
        let wanted = moves.wanted(&mut params);
        let recorded = Moves::recorded(self, &mut params, "taken");
        let sql = format!(
            "WITH {wanted}, \
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
             recorded AS ({recorded}) \
             SELECT id, stock_on_hand, stock_version, true AS moved FROM taken \
             UNION ALL SELECT id, stock_on_hand, 0::bigint, false FROM locked \
             WHERE NOT EXISTS (SELECT 1 FROM claim)",
            id = params.add(id),
            status = params.add(ReservationStatus::Reserved.as_str()),
            now = params.add(now),
            items = params.add(items),
            lines = params.add(i64::try_from(moves.quantities.len()).unwrap_or(i64::MAX)),
        );
        let found = match self.ledger.db().query_all_raw(params.statement(sql)).await {
            Ok(rows) => rows.iter().map(Found::of).collect::<Result<Vec<_>, _>>()?,
            // The id was claimed before: what became of it stands.
            Err(error) if shop_kit::db::is_unique_violation(&error) => {
                return reservation_status(self.ledger.db(), id)
                    .await?
                    .ok_or_else(|| CatalogError::ReservationNotFound { id: id.to_owned() });
            }
            Err(error) => return Err(error.into()),
        };
        if found.iter().any(|product| product.moved) {
            let moved = found.into_iter().map(|product| product.change).collect();
            self.ledger.relay().committed(moves.events(moved));
            return Ok(ReservationStatus::Reserved);
        }
        // Refused: unless the id was claimed before, the first line (in
        // lock order) that could not be had says why.
        if let Some(status) = reservation_status(self.ledger.db(), id).await? {
            return Ok(status);
        }
        for (product_id, quantity) in moves.quantities {
            match found
                .iter()
                .find(|product| product.change.product_id == product_id)
            {
                None => {
                    return Err(CatalogError::ProductNotFound {
                        id: product_id.to_owned(),
                    });
                }
                Some(product) if product.change.stock_on_hand < quantity => {
                    return Err(CatalogError::InsufficientStock {
                        id: product_id.to_owned(),
                        on_hand: product.change.stock_on_hand,
                        requested: quantity,
                    });
                }
                Some(_) => {}
            }
        }
        Err(CatalogError::from(sea_orm::DbErr::Custom(format!(
            "reservation {id} was neither made nor refused"
        ))))
    }

    /// Releases the reservation `id`, whose stored `items` were read
    /// while it was reserved (a reservation's items never change), in one
    /// statement: it is settled released only if it is still reserved,
    /// and then its stock goes back. `items` must not be empty.
    pub(super) async fn release_in_one_statement(
        &self,
        id: &str,
        items: &[ReservedItem],
        now: i64,
    ) -> Result<ReservationStatus, CatalogError> {
        let moves = Moves::new(
            items
                .iter()
                .map(|item| (item.product_id.as_str(), item.quantity)),
        );
        let mut params = Params::default();
        let wanted = moves.wanted(&mut params);
        let recorded = Moves::recorded(self, &mut params, "returned");
        let released = ReservationStatus::Released;
        let sql = format!(
            "WITH {wanted}, \
             settled AS (UPDATE stock_reservations SET status = {to}, updated_at = {now} \
             WHERE id = {id} AND status = {reserved} RETURNING id), \
             locked AS (SELECT p.id, w.quantity, w.event_id, w.occurred_at_ms, w.traceparent \
             FROM products p JOIN wanted w ON w.product_id = p.id \
             WHERE EXISTS (SELECT 1 FROM settled) ORDER BY p.id FOR UPDATE OF p), \
             returned AS (UPDATE products p SET stock_on_hand = p.stock_on_hand + l.quantity, \
             stock_version = p.stock_version + 1 FROM locked l WHERE p.id = l.id \
             RETURNING p.id, p.stock_on_hand, p.stock_version, l.event_id, l.occurred_at_ms, \
             l.traceparent), \
             recorded AS ({recorded}) \
             SELECT id, stock_on_hand, stock_version, true AS moved FROM returned \
             UNION ALL SELECT id, 0, 0::bigint, false FROM settled",
            // The reservation's own row (not moved) says it was settled.
            to = params.add(released.as_str()),
            now = params.add(now),
            id = params.add(id),
            reserved = params.add(ReservationStatus::Reserved.as_str()),
        );
        let found = self
            .ledger
            .db()
            .query_all_raw(params.statement(sql))
            .await?
            .iter()
            .map(Found::of)
            .collect::<Result<Vec<_>, _>>()?;
        if found.is_empty() {
            // Settled meanwhile, by another caller.
            let status = reservation_status(self.ledger.db(), id).await?;
            return settled_already(id, released, status);
        }
        let moved = found
            .into_iter()
            .filter(|product| product.moved)
            .map(|product| product.change)
            .collect();
        self.ledger.relay().committed(moves.events(moved));
        Ok(released)
    }
}
