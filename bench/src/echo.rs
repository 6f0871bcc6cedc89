//! What every benchmarked server does, whatever its stack: Echo copies the
//! request, Ticks streams `count` small messages. Kept trivial on purpose so
//! the numbers measure the stack, not the work.

use crate::pb::{EchoRequest, EchoResponse, TicksRequest, TicksResponse};

/// Ticks answers at most this many messages.
pub const MAX_TICKS: i32 = 1000;

pub const ECHO_PATH: &str = "/bench.v1.EchoService/Echo";
pub const TICKS_PATH: &str = "/bench.v1.EchoService/Ticks";

pub fn echo(request: EchoRequest) -> EchoResponse {
    EchoResponse {
        message: request.message,
        number: request.number,
        tags: request.tags,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("count must be between 0 and {MAX_TICKS}")]
pub struct BadCount;

/// The messages Ticks streams for `request`.
pub fn ticks(request: TicksRequest) -> Result<impl Iterator<Item = TicksResponse>, BadCount> {
    if !(0..=MAX_TICKS).contains(&request.count) {
        return Err(BadCount);
    }
    Ok((0..request.count).map(move |index| TicksResponse {
        index,
        message: request.message.clone(),
    }))
}

/// The request every load run sends to Echo.
pub fn echo_request() -> EchoRequest {
    EchoRequest {
        message: "a cup of espresso beans, 250 g, dark roast".to_owned(),
        number: 1290,
        tags: vec!["coffee".to_owned(), "beans".to_owned(), "dark".to_owned()],
    }
}

/// The request every load run sends to Ticks: a small server stream.
pub fn ticks_request() -> TicksRequest {
    TicksRequest {
        count: 10,
        message: "tick".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_copies_every_field() {
        let response = echo(echo_request());
        assert_eq!(response.message, echo_request().message);
        assert_eq!(response.number, 1290);
        assert_eq!(response.tags, echo_request().tags);
    }

    #[test]
    fn ticks_counts_and_refuses_too_many() {
        let ticks: Vec<_> = ticks(ticks_request()).expect("10 is fine").collect();
        assert_eq!(ticks.len(), 10);
        assert_eq!(ticks[9].index, 9);
        assert!(
            super::ticks(TicksRequest {
                count: 1001,
                message: String::new()
            })
            .is_err()
        );
        assert!(
            super::ticks(TicksRequest {
                count: -1,
                message: String::new()
            })
            .is_err()
        );
    }
}
