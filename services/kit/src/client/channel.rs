//! Connections to a peer.

use std::time::Duration;

/// A lazily connected channel to a peer at `url`: connecting may take
/// `connect_timeout`; no channel-wide timeout, since each call's budget
/// comes from [`Downstream::call`] (and a tower timeout would surface as
/// `cancelled`).
pub fn channel(
    url: &str,
    connect_timeout: Duration,
) -> Result<tonic::transport::Channel, http::uri::InvalidUri> {
    Ok(tonic::transport::Channel::from_shared(url.to_owned())?
        .connect_timeout(connect_timeout)
        .connect_lazy())
}
