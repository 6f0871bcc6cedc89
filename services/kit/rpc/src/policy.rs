//! Each method's call policy, as its contract declares it
//! (`kit.policy.v1`, read by `shop_kit_policy` when the server is
//! assembled), enforced on every protocol:
//!
//! - **who may call, and how often** ([`admit`]): checked by the server
//!   for every call of a method it serves, on every protocol, in the step
//!   that admits calls (`admission`), before the call takes a place there
//!   and whatever answers it: no handler, hand-written server or route
//!   reaches a call the rule refused. A caller the rule does not admit is
//!   refused with the words the auth extractors use (`unauthenticated`,
//!   `permission_denied`); the caller a token proved is left for the
//!   handler's extractor, which so verifies nothing twice. A handler still
//!   names who it serves (`Customer`, `ServiceCaller`), but forgetting to
//!   check is not possible;
//! - **the deadline** (`crate::timeout::at_most`, applied as the server
//!   classifies the call): a call that brings none gets the
//!   method's, and one that brings a longer one is cut to it, by writing
//!   the protocol's own header (`connect-timeout-ms`, `grpc-timeout`) as
//!   the server classifies the request, before the layers that enforce it
//!   read it; the handler passes what is left on to the calls it makes.

use axum::response::Response;
use connectrpc_axum::prelude::ConnectError;
use http::Request;

use super::{classify::Method, connect_errors::error_response};

/// A call as [`admit`] found it.
pub(crate) enum Admission<B> {
    Admitted(Request<B>),
    /// Its refusal, in the caller's protocol.
    Refused(Response),
}

/// Admits a call of `method` as its contract says, before anything of the
/// call is worked on and whatever will answer it (a generated handler, or
/// anything else): who may call (the caller a token proved is left in the
/// extensions, for the handler's extractor to read rather than verify the
/// token again), then how often (its rate class).
pub(crate) fn admit<B>(request: Request<B>, method: &Method) -> Admission<B> {
    let (mut parts, body) = request.into_parts();
    let refusal = method
        .policy
        .caller
        .as_ref()
        .and_then(|rule| shop_kit_auth::admit(rule, &parts.headers, &mut parts.extensions).err())
        .map(ConnectError::from)
        .or_else(|| {
            let limiter = method.rate_class.as_ref()?;
            limiter.admit(&parts).err().map(ConnectError::from)
        });
    match refusal {
        None => Admission::Admitted(Request::from_parts(parts, body)),
        Some(refusal) => Admission::Refused(error_response(&parts.headers, refusal)),
    }
}
