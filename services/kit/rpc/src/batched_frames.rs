//! A server stream's messages, handed to HTTP/2 in batches. connectrpc-axum
//! yields one body frame per message, and h2 makes each frame a DATA frame
//! of its own: its flow control, its queue and its encoder run once per
//! message (some 3,000 instructions each; a stream of ten small messages
//! spent 45k instructions in h2, against 12k for connect-rust, which
//! batches). [`Batched`] takes every message that is ready when it is
//! polled and hands them on as one frame, as tonic does with gRPC's: a
//! message is never held back waiting for the next (what is ready goes at
//! once), and a batch stops growing at [`BATCH_BYTES`].

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// A batch is handed on once it holds this much (tonic's yield threshold).
/// A frame this large by itself goes on as it came, uncopied.
pub(super) const BATCH_BYTES: usize = 32 * 1024;

/// What the inner body answered after the data it ended a batch with.
type Held<E> = Option<Result<Frame<Bytes>, E>>;

pin_project! {
    /// A streaming response body whose ready data frames go on together.
    pub(super) struct Batched<B: Body> {
        #[pin]
        inner: B,
        // Trailers, an error or the end, seen while a batch was gathered:
        // handed on after it.
        held: Option<Held<B::Error>>,
    }
}

impl<B: Body<Data = Bytes>> Batched<B> {
    pub(super) fn new(inner: B) -> Self {
        Self { inner, held: None }
    }
}

impl<B: Body<Data = Bytes>> Body for Batched<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        if let Some(held) = this.held.take() {
            return Poll::Ready(held);
        }
        let first = match ready!(this.inner.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            },
            other => return Poll::Ready(other),
        };
        if first.len() >= BATCH_BYTES {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        let mut batch: Option<BytesMut> = None;
        while let Poll::Ready(next) = this.inner.as_mut().poll_frame(cx) {
            match next {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let batch = batch.get_or_insert_with(|| {
                            // Room for a few more of the same size.
                            let room = (first.len() + data.len()) * 4;
                            let mut batch = BytesMut::with_capacity(room.min(BATCH_BYTES));
                            batch.extend_from_slice(&first);
                            batch
                        });
                        batch.extend_from_slice(&data);
                        if batch.len() >= BATCH_BYTES {
                            break;
                        }
                    }
                    Err(frame) => {
                        *this.held = Some(Some(Ok(frame)));
                        break;
                    }
                },
                other => {
                    *this.held = Some(other);
                    break;
                }
            }
        }
        let data = batch.map_or(first, BytesMut::freeze);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.held {
            Some(held) => held.is_none(),
            None => self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.held {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::channel::mpsc;
    use http::HeaderMap;
    use http_body_util::{BodyExt as _, StreamBody};

    use super::*;

    type Item = Result<Frame<Bytes>, Infallible>;

    fn data(bytes: &'static [u8]) -> Item {
        Ok(Frame::data(Bytes::from_static(bytes)))
    }

    /// The next frame of `body`, which must be data.
    async fn next_data<B>(body: &mut B) -> Bytes
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Debug,
    {
        let frame = body.frame().await.expect("a frame").expect("no error");
        frame.into_data().expect("data")
    }

    /// The frames `body` hands on, each as data or as trailers.
    async fn frames<B>(body: B) -> Vec<Result<Bytes, HeaderMap>>
    where
        B: Body<Data = Bytes, Error = Infallible> + Unpin,
    {
        let mut body = body;
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame;
            frames.push(
                frame
                    .into_data()
                    .map_err(|frame| frame.into_trailers().unwrap_or_default()),
            );
        }
        frames
    }

    #[tokio::test]
    async fn messages_ready_together_go_as_one_frame_and_trailers_after() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let inner = StreamBody::new(futures::stream::iter([
            data(b"one"),
            data(b"two"),
            data(b"three"),
            Ok(Frame::trailers(trailers.clone())),
        ]));
        assert_eq!(
            frames(Batched::new(inner)).await,
            [Ok(Bytes::from_static(b"onetwothree")), Err(trailers)]
        );
    }

    #[tokio::test]
    async fn a_message_is_not_held_back_for_the_next() {
        let (sender, receiver) = mpsc::unbounded::<Item>();
        let mut body = Batched::new(StreamBody::new(receiver));
        sender.unbounded_send(data(b"first")).expect("open");
        assert_eq!(next_data(&mut body).await, "first");
        sender.unbounded_send(data(b"second")).expect("open");
        sender.unbounded_send(data(b"third")).expect("open");
        assert_eq!(next_data(&mut body).await, "secondthird");
        drop(sender);
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn the_last_batch_says_the_stream_ends() {
        let inner = StreamBody::new(futures::stream::iter([data(b"a"), data(b"b")]));
        let mut body = Batched::new(inner);
        assert_eq!(next_data(&mut body).await, "ab");
        assert!(
            body.is_end_stream(),
            "HTTP/2 can end the stream with the last batch"
        );
    }

    #[tokio::test]
    async fn a_batch_stops_growing_at_its_size_and_a_large_frame_goes_uncopied() {
        static HALF: [u8; BATCH_BYTES / 2] = [7; BATCH_BYTES / 2];
        static LARGE: [u8; BATCH_BYTES] = [9; BATCH_BYTES];
        let inner = StreamBody::new(futures::stream::iter([
            data(&HALF),
            data(&HALF),
            data(&HALF),
            data(&LARGE),
        ]));
        let sizes: Vec<usize> = frames(Batched::new(inner))
            .await
            .into_iter()
            .map(|frame| frame.map_or(0, |data| data.len()))
            .collect();
        assert_eq!(sizes, [BATCH_BYTES, BATCH_BYTES / 2 + BATCH_BYTES]);
        let large = Bytes::from_static(&LARGE);
        let inner = StreamBody::new(futures::stream::iter([Ok::<_, Infallible>(Frame::data(
            large.clone(),
        ))]));
        let mut body = Batched::new(inner);
        let frame = next_data(&mut body).await;
        assert_eq!(frame.as_ptr(), large.as_ptr(), "handed on as it came");
    }

    #[tokio::test]
    async fn an_error_goes_after_the_messages_before_it() {
        let inner = StreamBody::new(futures::stream::iter([
            Ok(Frame::data(Bytes::from_static(b"kept"))),
            Err("broken"),
        ]));
        let mut body = Batched::new(inner);
        assert_eq!(next_data(&mut body).await, "kept");
        let error = body.frame().await.expect("a frame").expect_err("the error");
        assert_eq!(error, "broken");
        assert!(body.frame().await.is_none());
    }
}
