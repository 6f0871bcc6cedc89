//! The metric series of the calls a server answers (Prometheus,
//! `rpc_server_*`, labelled service, method, protocol and code) and their
//! handles, looked up in the recorder once per series and kept: a
//! method's successful calls with the method ([`OkSeries`]), any other in
//! one shared map.

use std::{
    collections::HashMap,
    sync::{OnceLock, RwLock},
};

use metrics::Histogram;

use super::protocol::Protocol;

/// Seconds per call; its `_count` counts the calls.
pub const CALL_DURATION: &str = "rpc_server_call_duration_seconds";
/// Bytes of the request body, as the client sent it (when it said).
pub const REQUEST_SIZE: &str = "rpc_server_request_size_bytes";
/// Bytes of the response body, as sent.
pub const RESPONSE_SIZE: &str = "rpc_server_response_size_bytes";

/// One metric series: bounded, since every part is a registered name, a
/// protocol or a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Series {
    pub service: &'static str,
    pub method: &'static str,
    pub protocol: Protocol,
    pub code: &'static str,
}

/// A series' handles: duration, request size, response size.
pub(super) type Handles = (Histogram, Histogram, Histogram);

/// The handles of a series, looked up in the recorder once and kept. The
/// keys are registered names, protocols and codes, never a caller's text:
/// a fast hash (SipHash cost ~400 more instructions a call here).
pub(super) fn series(key: Series) -> Handles {
    type Kept = RwLock<HashMap<Series, Handles, foldhash::fast::RandomState>>;
    static SERIES: OnceLock<Kept> = OnceLock::new();
    shop_kit_observe::metrics::kept(SERIES.get_or_init(Kept::default), &key, || handles(key))
}

/// The handles of a series, from the recorder.
fn handles(key: Series) -> Handles {
    let labels = [
        ("service", key.service),
        ("method", key.method),
        ("protocol", key.protocol.as_str()),
        ("code", key.code),
    ];
    (
        metrics::histogram!(CALL_DURATION, &labels),
        metrics::histogram!(REQUEST_SIZE, &labels),
        metrics::histogram!(RESPONSE_SIZE, &labels),
    )
}

/// A method's series of successful calls, one per protocol, kept with the
/// method once its first such call looked them up: most calls succeed, and
/// theirs take no lock, no hash and no handle's clone.
#[derive(Debug, Default)]
pub struct OkSeries([OnceLock<Handles>; 4]);

impl OkSeries {
    pub(super) fn of(&self, key: Series) -> &Handles {
        let protocol = match key.protocol {
            Protocol::Connect => 0,
            Protocol::Grpc => 1,
            Protocol::GrpcWeb => 2,
            Protocol::Rest => 3,
        };
        self.0[protocol].get_or_init(|| handles(key))
    }
}
