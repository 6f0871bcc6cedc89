//! Widgets as the launcher starts it: no flags of its own yet, its
//! [`Config`] made from what the launcher found for it
//! (`shop_kit::deploy`): its database, events, the users' keys and the
//! peers its contract declares.
//!
//! A flag of its own is a field of a clap `Args` struct here (`#[derive(
//! clap::Args)] pub struct Flags { ... }`, with `type Flags = Flags;`):
//! `shop serve widgets --help` lists it, and the whole shop under its name.

use shop_kit::{
    app::BoxError,
    deploy::{Deployable, Given, NoFlags},
};

use crate::Config;

impl Deployable for Config {
    const ABOUT: &'static str = "Each customer's widgets (added by just new-service).";
    type Flags = NoFlags;

    fn configure(_: NoFlags, given: Given) -> Result<Self, BoxError> {
        Ok(Self(given.basics()?))
    }
}
