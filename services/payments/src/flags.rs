//! The payments service as the launcher starts it: no flags of its own,
//! its [`Config`] made from what the launcher found (`shop_kit::deploy`).

use shop_kit::{
    app::BoxError,
    deploy::{Deployable, Given, NoFlags},
};

use crate::Config;

impl Deployable for Config {
    const ABOUT: &'static str = "Charges and refunds.";
    type Flags = NoFlags;

    fn configure(_: NoFlags, given: Given) -> Result<Self, BoxError> {
        let basics = given.basics()?;
        Ok(Self {
            database_url: basics.database_url,
            nats: basics.nats,
            token_keys: basics.token_keys,
        })
    }
}
