//! The catalog's categories, and the shop's first ones (reference data).
//! Expand: a new table, which an earlier release never reads.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Categories {
    Table,
    Id,
    Name,
    Position,
}

/// (id, name), in the order the shop shows them.
const FIRST: &[(&str, &str)] = &[
    ("beans", "Coffee beans"),
    ("brewing", "Brewing gear"),
    ("serving", "Cups and jugs"),
    ("gifts", "Gift cards"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Categories::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Categories::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Categories::Name).string().not_null())
                    .col(
                        ColumnDef::new(Categories::Position)
                            .integer()
                            .not_null()
                            .unique_key(),
                    )
                    .to_owned(),
            )
            .await?;
        let mut rows = Query::insert()
            .into_table(Categories::Table)
            .columns([Categories::Id, Categories::Name, Categories::Position])
            .to_owned();
        for (position, (id, name)) in (1i32..).zip(FIRST) {
            rows.values([(*id).into(), (*name).into(), position.into()])
                .map_err(|e| DbErr::Migration(e.to_string()))?;
        }
        manager.exec_stmt(rows).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Categories::Table).to_owned())
            .await
    }
}
