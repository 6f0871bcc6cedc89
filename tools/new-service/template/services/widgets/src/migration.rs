//! The widgets service's schema: its table, and the outbox its events
//! leave through (`shop_migrations::events`, as every service's). A change to the schema is a
//! new migration appended to [`Migrator::migrations`], never an edit of
//! one that shipped.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateWidgets)]
    }

    fn migration_table_name() -> DynIden {
        "widgets_migrations".into_iden()
    }
}

#[derive(DeriveIden)]
enum Widgets {
    Table,
    Id,
    CustomerId,
    RequestId,
    Title,
    Description,
    ProductId,
    CreatedAtMs,
}

struct CreateWidgets;

impl MigrationName for CreateWidgets {
    fn name(&self) -> &str {
        "m00000000_000001_create_widgets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWidgets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Widgets::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Widgets::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Widgets::CustomerId).string().not_null())
                    .col(ColumnDef::new(Widgets::RequestId).string().not_null())
                    .col(ColumnDef::new(Widgets::Title).string().not_null())
                    .col(ColumnDef::new(Widgets::Description).string().not_null())
                    .col(ColumnDef::new(Widgets::ProductId).string().not_null())
                    .col(
                        ColumnDef::new(Widgets::CreatedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // One widget per customer and request id (a repeat finds it), and
        // the customer's widgets newest first.
        manager
            .create_index(
                Index::create()
                    .name("widgets_request")
                    .table(Widgets::Table)
                    .col(Widgets::CustomerId)
                    .col(Widgets::RequestId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("widgets_newest")
                    .table(Widgets::Table)
                    .col(Widgets::CustomerId)
                    .col(Widgets::CreatedAtMs)
                    .col(Widgets::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        shop_migrations::events::create_current_outbox(manager, "widgets").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        shop_migrations::events::drop_outbox(manager, "widgets").await?;
        manager
            .drop_table(Table::drop().table(Widgets::Table).to_owned())
            .await
    }
}
