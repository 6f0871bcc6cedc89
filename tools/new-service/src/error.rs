//! Why the generator wrote nothing: each refusal names the file and what
//! it did not find, or the reason a name or a contract cannot be served.

use crate::{contract::ContractError, stubs::StubError};

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(
        "{0} is not the root of the shop's repository (no workspace Cargo.toml, proto/shop or \
         src/registry.rs there); run it there, or give --root"
    )]
    NotTheShop(String),
    #[error("{0} exists already: the shop has a service of that name")]
    Exists(String),
    #[error("{file}: {what} not found where it was expected; was it edited by hand?")]
    Unexpected {
        file: &'static str,
        what: &'static str,
    },
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Stub(#[from] StubError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
