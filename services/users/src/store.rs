//! The users service's database: the only module that touches it.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    sea_query::Expr,
};

use crate::{
    domain::{NewUser, User},
    error::UsersError,
};

mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(unique)]
        pub email: String,
        pub display_name: String,
        pub password_hash: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod refresh_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub user_id: String,
        pub expires_at: i64,
        pub used_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod signing_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        pub private_key_der: Vec<u8>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl From<user::Model> for User {
    fn from(row: user::Model) -> Self {
        Self {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn insert_user(
        &self,
        id: &str,
        new: &NewUser,
        password_hash: String,
        now: i64,
    ) -> Result<User, UsersError> {
        let row = user::ActiveModel {
            id: Set(id.to_owned()),
            email: Set(new.email.as_str().to_owned()),
            display_name: Set(new.display_name.clone()),
            password_hash: Set(password_hash),
            created_at: Set(now),
        };
        match user::Entity::insert(row).exec(&self.db).await {
            Ok(_) => Ok(User {
                id: id.to_owned(),
                email: new.email.as_str().to_owned(),
                display_name: new.display_name.clone(),
            }),
            Err(error) if shop_kit::db::is_unique_violation(&error) => Err(UsersError::EmailTaken),
            Err(error) => Err(error.into()),
        }
    }

    /// The account with this (lower-cased) email, with its password hash.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<(User, String)>, UsersError> {
        Ok(user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await?
            .map(|row| {
                let hash = row.password_hash.clone();
                (User::from(row), hash)
            }))
    }

    pub async fn find_by_id(&self, id: &str) -> Result<Option<User>, UsersError> {
        Ok(user::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(User::from))
    }

    pub async fn save_refresh_token(
        &self,
        token_hash: String,
        user_id: &str,
        expires_at: i64,
    ) -> Result<(), UsersError> {
        let row = refresh_token::ActiveModel {
            token_hash: Set(token_hash),
            user_id: Set(user_id.to_owned()),
            expires_at: Set(expires_at),
            used_at: Set(None),
        };
        refresh_token::Entity::insert(row).exec(&self.db).await?;
        Ok(())
    }

    /// Spends a refresh token once: returns its user if it was unused and
    /// unexpired, in one conditional UPDATE so two racing refreshes cannot
    /// both succeed.
    pub async fn spend_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<String>, UsersError> {
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(token_hash))
            .filter(refresh_token::Column::UsedAt.is_null())
            .filter(refresh_token::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await?;
        if spent.rows_affected != 1 {
            return Ok(None);
        }
        Ok(refresh_token::Entity::find_by_id(token_hash.to_owned())
            .one(&self.db)
            .await?
            .map(|row| row.user_id))
    }

    /// The service's signing key, created by `generate` on first start (the
    /// oldest key wins a race between two instances).
    pub async fn signing_key(
        &self,
        generate: impl FnOnce() -> Result<(String, Vec<u8>), UsersError>,
        now: i64,
    ) -> Result<(String, Vec<u8>), UsersError> {
        if let Some(row) = self.oldest_signing_key().await? {
            return Ok((row.kid, row.private_key_der));
        }
        let (kid, der) = generate()?;
        let row = signing_key::ActiveModel {
            kid: Set(kid),
            private_key_der: Set(der),
            created_at: Set(now),
        };
        signing_key::Entity::insert(row).exec(&self.db).await?;
        let row = self
            .oldest_signing_key()
            .await?
            .ok_or_else(|| UsersError::SigningKey("the new key was not stored".to_owned()))?;
        Ok((row.kid, row.private_key_der))
    }

    async fn oldest_signing_key(&self) -> Result<Option<signing_key::Model>, UsersError> {
        Ok(signing_key::Entity::find()
            .order_by_asc(signing_key::Column::CreatedAt)
            .order_by_asc(signing_key::Column::Kid)
            .one(&self.db)
            .await?)
    }
}
