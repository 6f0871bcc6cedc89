//! Serving RPCs as REST, the way `google.api.http` rules in the protos
//! declare them (`google/api/http.proto`): the same handlers, on the same
//! router, through the same stack.
//!
//! - [`path`]: a rule's path template, matched against a request's path.

pub mod path;

pub use path::{Binding, NotUtf8, RestPath, TemplateError};
