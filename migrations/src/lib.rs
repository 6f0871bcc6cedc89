//! sea-orm migrations, one migrator per service: each service owns its
//! schema and its own database, and applies its migrator at start.

pub mod catalog;
pub mod events;
pub mod orders;
pub mod payments;
pub mod users;

pub use sea_orm_migration::MigratorTrait;
