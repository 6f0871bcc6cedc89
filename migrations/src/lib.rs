//! sea-orm migrations, one migrator per service: each service owns its
//! schema and its own database, and applies its migrator at start.

pub mod catalog;
pub mod events;
mod json_lines;
pub mod orders;
pub mod payments;
pub mod users;

pub use sea_orm_migration::MigratorTrait;
