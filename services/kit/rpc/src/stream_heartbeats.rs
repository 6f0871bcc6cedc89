//! Heartbeats on server streams, so the proxies in front (nginx's 60 s read
//! timeout, a cloud load balancer's idle timeout, Envoy's stream idle
//! timeout) never cut a stream that is only quiet: a stream that sent
//! nothing for the interval gets its method's heartbeat (`heartbeat`), in
//! the codec the call speaks. gRPC's JSON codec and gRPC-Web are translated
//! from the gRPC one as every other message is, and REST's Server-Sent
//! Events turn it into a comment line (see `sse`).

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::{classify::Call, envelope, protocol::content_type};

/// Which edge the stream leaves by: the gRPC one takes binary proto only (the
/// other codecs are translated to it first); the Connect one either codec.
#[derive(Clone, Copy, Debug)]
pub(super) enum Stack {
    Grpc,
    Connect,
}

/// The heartbeat a call of `stack` sends on its response stream, and how
/// often: its method's, in its codec (`None`: a method with none).
pub(super) fn beat_of<B>(
    call: &Call,
    request: &Request<B>,
    stack: Stack,
    every: Duration,
) -> Option<(Bytes, Duration)> {
    let heartbeat = call.method?.heartbeat.as_ref()?;
    let json = matches!(stack, Stack::Connect)
        && content_type(request.headers()).is_some_and(|ct| ct.contains("json"));
    let message = if json {
        &heartbeat.json
    } else {
        &heartbeat.proto
    };
    Some((message.clone(), every))
}

/// `response`, with heartbeats on its body when `beat` says (a unary
/// call's body is handed on as it came: an axum body is not boxed again).
pub(super) fn with_beat<RB>(
    response: Response<RB>,
    beat: Option<(Bytes, Duration)>,
) -> Response<axum::body::Body>
where
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<axum::BoxError>,
{
    let Some((message, every)) = beat else {
        return response.map(axum::body::Body::new);
    };
    let beat = Beat {
        message,
        // Checked every half interval: a stream is never quiet for
        // longer than the interval, and a busy one costs a flag per
        // message, not a timer reset.
        check: Box::pin(tokio::time::sleep(every / 2)),
        half: every / 2,
        sent_since_check: true,
        boundary: envelope::Watch::new(0, 0),
    };
    response.map(|inner| axum::body::Body::new(HeartbeatBody { inner, beat }))
}

struct Beat {
    message: Bytes,
    check: Pin<Box<Sleep>>,
    half: Duration,
    sent_since_check: bool,
    /// Where the stream's envelopes begin and end: a heartbeat goes only
    /// between two of them.
    boundary: envelope::Watch,
}

pin_project! {
    /// A server stream's response body, with heartbeats.
    pub struct HeartbeatBody<B> {
        #[pin]
        inner: B,
        beat: Beat,
    }
}

impl<B> Body for HeartbeatBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let beat = this.beat;
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    beat.sent_since_check = true;
                    beat.boundary.feed(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                while beat.check.as_mut().poll(cx).is_ready() {
                    let deadline = Instant::now() + beat.half;
                    beat.check.as_mut().reset(deadline);
                    if !std::mem::replace(&mut beat.sent_since_check, false)
                        && beat.boundary.between_envelopes()
                    {
                        beat.sent_since_check = true;
                        return Poll::Ready(Some(Ok(Frame::data(beat.message.clone()))));
                    }
                }
                Poll::Pending
            }
            done => done,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    /// Heartbeats make the length unknown.
    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn beating(
        frames: tokio::sync::mpsc::Receiver<Bytes>,
        every: Duration,
    ) -> HeartbeatBody<impl Body<Data = Bytes, Error = std::convert::Infallible>> {
        let stream = tokio_stream::wrappers::ReceiverStream::new(frames)
            .map(|data| Ok::<_, std::convert::Infallible>(Frame::data(data)));
        HeartbeatBody {
            inner: StreamBody::new(stream),
            beat: Beat {
                message: Bytes::from_static(b"<beat>"),
                check: Box::pin(tokio::time::sleep(every / 2)),
                half: every / 2,
                sent_since_check: true,
                boundary: envelope::Watch::new(0, 0),
            },
        }
    }

    use futures::StreamExt as _;

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_beats_within_the_interval_and_a_busy_one_never() {
        let every = Duration::from_secs(30);
        let (send, frames) = tokio::sync::mpsc::channel(8);
        let mut body = beating(frames, every);
        let started = Instant::now();
        send.send(envelope::framed(0, b"first"))
            .await
            .expect("send");
        let first = body.frame().await.expect("frame").expect("ok");
        assert_eq!(&first.into_data().expect("data")[5..], b"first");
        // Quiet from here: the first beat comes within the interval, and
        // each one after every interval.
        let beat = body.frame().await.expect("frame").expect("ok");
        assert_eq!(&beat.into_data().expect("data")[..], b"<beat>");
        let quiet = started.elapsed();
        assert!(quiet <= every && quiet >= every / 2, "{quiet:?}");
        let before = Instant::now();
        let _ = body.frame().await.expect("frame").expect("ok");
        assert!(before.elapsed() <= every, "{:?}", before.elapsed());
        // Busy: a message every 10 s leaves no room for a beat.
        let sender = tokio::spawn(async move {
            for n in 0..6u8 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                send.send(envelope::framed(0, &[n])).await.expect("send");
            }
        });
        for n in 0..6u8 {
            let frame = body.frame().await.expect("frame").expect("ok");
            assert_eq!(
                &frame.into_data().expect("data")[5..],
                &[n],
                "no beat between"
            );
        }
        sender.await.expect("sender");
    }

    #[tokio::test(start_paused = true)]
    async fn a_beat_never_splits_a_message_sent_in_pieces() {
        let every = Duration::from_secs(2);
        let (send, frames) = tokio::sync::mpsc::channel(8);
        let mut body = beating(frames, every);
        let whole = envelope::framed(0, b"in two pieces");
        send.send(whole.slice(..7)).await.expect("send");
        assert_eq!(
            body.frame()
                .await
                .expect("f")
                .expect("ok")
                .into_data()
                .expect("d"),
            whole.slice(..7)
        );
        // Quiet for many intervals mid-message: no beat.
        let rest = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            send.send(whole.slice(7..)).await.expect("send");
            send
        });
        let next = body.frame().await.expect("frame").expect("ok");
        assert_eq!(&next.into_data().expect("data")[..], &b"in two pieces"[2..]);
        let _send = rest.await.expect("rest");
        let beat = body.frame().await.expect("frame").expect("ok");
        assert_eq!(&beat.into_data().expect("data")[..], b"<beat>");
    }
}
