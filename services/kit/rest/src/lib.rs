//! Serving RPCs as REST, the way `google.api.http` rules in the protos
//! declare them (`google/api/http.proto`): the same handlers, on the same
//! router, through the same stack. Its parts, each tested by http.proto's
//! rules; the routes built from the descriptors come next (issue 28).
//!
//! - [`path`]: a rule's path template, matched against a request's path;
//! - [`fields`]: a request message's fields set from text (path variables,
//!   query parameters) into its JSON form;
//! - [`query`]: a query string's parameters as fields;
//! - [`routes`]: the routes a server's RPCs declare, read from their
//!   descriptors.

pub mod fields;
pub mod path;
pub mod query;
pub mod routes;

pub use fields::FieldError;
pub use path::{Binding, NotUtf8, RestPath, TemplateError};
pub use query::bind_query;
pub use routes::{RestBody, RestRoute, RestRoutes, RouteError};
