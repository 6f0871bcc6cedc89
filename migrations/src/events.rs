//! The two tables every service that publishes or consumes events has in its
//! own database (see `shop_kit::events`): the transactional outbox, and the
//! ids of the events a consumer has already handled. Their names start with
//! the service's (`orders_outbox`, ...), like the migration history tables,
//! so services sharing one PostgreSQL database never mix their events.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Outbox {
    Seq,
    Id,
    EventType,
    AggregateId,
    AggregateVersion,
    OccurredAtMs,
    Traceparent,
    Data,
    PublishedAtMs,
    ClaimedUntilMs,
}

#[derive(DeriveIden)]
enum ProcessedEvents {
    Consumer,
    EventId,
    ProcessedAtMs,
}

pub fn outbox_table(service: &str) -> Alias {
    Alias::new(format!("{service}_outbox"))
}

pub fn processed_events_table(service: &str) -> Alias {
    Alias::new(format!("{service}_processed_events"))
}

pub async fn create_outbox(manager: &SchemaManager<'_>, service: &str) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(outbox_table(service))
                .if_not_exists()
                // Publication order: the order the events were committed in.
                .col(
                    ColumnDef::new(Outbox::Seq)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(ColumnDef::new(Outbox::Id).string().not_null().unique_key())
                .col(ColumnDef::new(Outbox::EventType).string().not_null())
                .col(ColumnDef::new(Outbox::AggregateId).string().not_null())
                .col(
                    ColumnDef::new(Outbox::AggregateVersion)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Outbox::OccurredAtMs)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(Outbox::Traceparent).string().not_null())
                .col(ColumnDef::new(Outbox::Data).text().not_null())
                // NULL until the relay has published it.
                .col(ColumnDef::new(Outbox::PublishedAtMs).big_integer().null())
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name(format!("{service}_outbox_unpublished"))
                .table(outbox_table(service))
                .col(Outbox::PublishedAtMs)
                .col(Outbox::Seq)
                .if_not_exists()
                .to_owned(),
        )
        .await
}

pub async fn create_processed_events(
    manager: &SchemaManager<'_>,
    service: &str,
) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(processed_events_table(service))
                .if_not_exists()
                .col(
                    ColumnDef::new(ProcessedEvents::Consumer)
                        .string()
                        .not_null(),
                )
                .col(ColumnDef::new(ProcessedEvents::EventId).string().not_null())
                .col(
                    ColumnDef::new(ProcessedEvents::ProcessedAtMs)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(ProcessedEvents::Consumer)
                        .col(ProcessedEvents::EventId),
                )
                .to_owned(),
        )
        .await
}

pub async fn drop_outbox(manager: &SchemaManager<'_>, service: &str) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(outbox_table(service)).to_owned())
        .await
}

pub async fn drop_processed_events(
    manager: &SchemaManager<'_>,
    service: &str,
) -> Result<(), DbErr> {
    manager
        .drop_table(
            Table::drop()
                .table(processed_events_table(service))
                .to_owned(),
        )
        .await
}

/// A column for the relay's claim on events it polls from the outbox: with
/// replicas sharing one database, a poll claims what it relays (until the
/// claim expires), so no two replicas relay the same event.
pub async fn add_outbox_claims(manager: &SchemaManager<'_>, service: &str) -> Result<(), DbErr> {
    manager
        .alter_table(
            Table::alter()
                .table(outbox_table(service))
                .add_column(ColumnDef::new(Outbox::ClaimedUntilMs).big_integer().null())
                .to_owned(),
        )
        .await
}

pub async fn drop_outbox_claims(manager: &SchemaManager<'_>, service: &str) -> Result<(), DbErr> {
    manager
        .alter_table(
            Table::alter()
                .table(outbox_table(service))
                .drop_column(Outbox::ClaimedUntilMs)
                .to_owned(),
        )
        .await
}

/// The outbox as every service's is today, in one step, for a service
/// that starts with one: [`create_outbox`], its claims
/// ([`add_outbox_claims`]) and no planner statistics on its payloads
/// (`crate::statistics`). The shop's first services reached it through a
/// migration each.
pub async fn create_current_outbox(
    manager: &SchemaManager<'_>,
    service: &str,
) -> Result<(), DbErr> {
    create_outbox(manager, service).await?;
    add_outbox_claims(manager, service).await?;
    let table = format!("{service}_outbox");
    crate::statistics::gather(
        manager,
        &[(table.as_str(), crate::statistics::OUTBOX_PAYLOADS)],
        false,
    )
    .await
}
