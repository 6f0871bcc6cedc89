//! A server that answers before reading the whole request (an early
//! error: a refused caller, too large, a bad content type) leaves a client
//! that is still uploading in trouble:
//!
//! - on HTTP/1.1, hyper closes the connection under it, and the client
//!   sees a broken pipe instead of the answer;
//! - on HTTP/2, the stream is reset once the answer is sent (RST_STREAM
//!   NO_ERROR, as RFC 9113 §8.1 allows), and a client still sending may
//!   take that for a failure: curl 7.88 (Debian 12's) then prints "(92)
//!   Stream error in the HTTP/2 framing layer" and never shows the answer.
//!
//! The listener therefore hands every request a body that, dropped unread,
//! is drained in the background, bounded in bytes and time: the client
//! finishes its upload and reads the answer.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// The most an unread request body is drained before the connection is
/// given up on.
const DRAIN_MAX_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(10);

/// A request body as it arrived, as the router takes it: drained if
/// dropped unread.
pub(super) fn drained_when_dropped(body: Incoming) -> Body {
    Body::new(DrainOnDrop { inner: Some(body) })
}

struct DrainOnDrop {
    inner: Option<Incoming>,
}

impl http_body::Body for DrainOnDrop {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(Incoming::size_hint)
            .unwrap_or_default()
    }
}

/// Whether `body` has nothing left to send: all the length it declared has
/// come (as hyper counts it down; HTTP/2's end-of-stream flag is read
/// under its connection's lock), or it ended.
pub(super) fn read_whole<B: http_body::Body>(body: &B) -> bool {
    body.size_hint().exact() == Some(0) || body.is_end_stream()
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else {
            return;
        };
        if read_whole(&body) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let drain = async {
                let mut drained = 0usize;
                while let Some(Ok(frame)) = body.frame().await {
                    drained += frame.data_ref().map_or(0, Bytes::len);
                    if drained > DRAIN_MAX_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_MAX_TIME, drain).await;
        });
    }
}
