//! One call as the runner describes it: the method's messages sent through
//! a peer with tonic's client (`tonic::client::Grpc`, what the shop's
//! generated clients wrap), cancelled when and as asked, and what came
//! back (headers, payloads, error, trailers) written down.
//!
//! Every kind of call goes through `Grpc::streaming`, which gives the
//! headers and the trailers apart (tonic's unary helper merges them); on
//! the wire a unary call is the same.

use std::{pin::Pin, time::Duration};

use futures::{Stream, StreamExt};
use http::uri::PathAndQuery;
use prost::{Message, Name};
use shop_conformance::{
    any::Any,
    conformance::{
        self as pb, client_compat_request::cancel::CancelTiming,
        client_compat_response::Result as Outcome,
    },
};
use shop_kit::client::Peer;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;

use super::{peers::Peers, report};

const SERVICE: &str = "connectrpc.conformance.v1.ConformanceService";

/// Makes the call `request` describes and says what happened.
pub async fn make(peers: &Peers, request: pb::ClientCompatRequest) -> pb::ClientCompatResponse {
    let test_name = request.test_name.clone();
    let result = match dispatch(peers, &request).await {
        Ok(response) => Outcome::Response(response),
        Err(message) => Outcome::Error(pb::ClientErrorResult { message }),
    };
    pb::ClientCompatResponse {
        test_name,
        result: Some(result),
    }
}

async fn dispatch(
    peers: &Peers,
    request: &pb::ClientCompatRequest,
) -> Result<pb::ClientResponseResult, String> {
    if request.service() != SERVICE {
        return Err(format!("unknown service {:?}", request.service()));
    }
    if request.protocol() != pb::Protocol::Grpc {
        return Err(format!(
            "the kit's client speaks gRPC, not {:?}",
            request.protocol()
        ));
    }
    if request.codec() != pb::Codec::Proto {
        return Err(format!(
            "the kit's client sends proto, not {:?}",
            request.codec()
        ));
    }
    if request.stream_type() == pb::StreamType::FullDuplexBidiStream {
        return Err("the kit's client sends a request whole: no full-duplex streams".to_owned());
    }
    let peer = peers.of(request).await?;
    let mut result = match request.method() {
        "Unary" => call::<pb::UnaryRequest, pb::UnaryResponse>(peer, request).await,
        "IdempotentUnary" => {
            call::<pb::IdempotentUnaryRequest, pb::IdempotentUnaryResponse>(peer, request).await
        }
        "Unimplemented" => {
            call::<pb::UnimplementedRequest, pb::UnimplementedResponse>(peer, request).await
        }
        "ServerStream" => {
            call::<pb::ServerStreamRequest, pb::ServerStreamResponse>(peer, request).await
        }
        "ClientStream" => {
            call::<pb::ClientStreamRequest, pb::ClientStreamResponse>(peer, request).await
        }
        "BidiStream" => call::<pb::BidiStreamRequest, pb::BidiStreamResponse>(peer, request).await,
        other => Err(format!("unknown method {other:?}")),
    }?;
    // A call of one answer that failed has none (as tonic's unary client
    // gives it), whatever came before its error.
    let one_answer = matches!(
        request.stream_type(),
        pb::StreamType::Unary | pb::StreamType::ClientStream
    );
    if one_answer && result.error.is_some() {
        result.payloads.clear();
    }
    Ok(result)
}

/// A response message's payload (an empty message: an empty payload).
trait Answer: Message + Default + Send + 'static {
    fn payload(self) -> pb::ConformancePayload;
}

macro_rules! answers {
    ($($answer:ty),*) => {$(
        impl Answer for $answer {
            fn payload(self) -> pb::ConformancePayload {
                self.payload.unwrap_or_default()
            }
        }
    )*};
}

answers!(
    pb::UnaryResponse,
    pb::IdempotentUnaryResponse,
    pb::ServerStreamResponse,
    pb::ClientStreamResponse,
    pb::BidiStreamResponse
);

impl Answer for pb::UnimplementedResponse {
    fn payload(self) -> pb::ConformancePayload {
        pb::ConformancePayload::default()
    }
}

/// The request messages, each checked to be `Req`.
fn messages<Req: Message + Name + Default>(
    request: &pb::ClientCompatRequest,
) -> Result<Vec<Req>, String> {
    request
        .request_messages
        .iter()
        .map(|any: &Any| {
            let name = any.type_url.rsplit('/').next().unwrap_or_default();
            if name != Req::full_name() {
                return Err(format!(
                    "a {name} where a {} was expected",
                    Req::full_name()
                ));
            }
            Req::decode(any.value.clone()).map_err(|e| format!("{name}: {e}"))
        })
        .collect()
}

/// The request stream: each message after the asked delay, then the end
/// (the close of the send side, said on `closed`); or, to be cancelled
/// before the close, no end.
fn outgoing<Req: Send + 'static>(
    messages: Vec<Req>,
    delay: Duration,
    closed: oneshot::Sender<()>,
    close: bool,
) -> Pin<Box<dyn Stream<Item = Req> + Send>> {
    let delayed = futures::stream::iter(messages).then(move |message| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        message
    });
    let end = futures::stream::once(async move {
        let _ = closed.send(());
        if !close {
            std::future::pending::<()>().await;
        }
    })
    .filter_map(|()| async { None });
    Box::pin(delayed.chain(end))
}

/// When the runner asks the call to be cancelled: at the close of the send
/// side, or this long after it; never, otherwise.
async fn cancelled_at(timing: Option<&CancelTiming>, closed: oneshot::Receiver<()>) {
    match timing {
        Some(CancelTiming::BeforeCloseSend(_)) => {
            let _ = closed.await;
        }
        Some(CancelTiming::AfterCloseSendMs(ms)) => {
            if closed.await.is_ok() {
                tokio::time::sleep(Duration::from_millis(u64::from(*ms))).await;
            }
        }
        Some(CancelTiming::AfterNumResponses(_)) | None => std::future::pending().await,
    }
}

async fn call<Req, Resp>(
    peer: Peer,
    request: &pb::ClientCompatRequest,
) -> Result<pb::ClientResponseResult, String>
where
    Req: Message + Name + Default + Send + 'static,
    Resp: Answer,
{
    let messages = messages::<Req>(request)?;
    let mut grpc = tonic::client::Grpc::new(peer);
    if request.compression() == pb::Compression::Gzip {
        grpc = grpc
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);
    } else if request.compression() != pb::Compression::Identity {
        return Err(format!("no {:?} compression", request.compression()));
    }
    if request.message_receive_limit > 0 {
        grpc = grpc.max_decoding_message_size(request.message_receive_limit as usize);
    }
    let timing = request
        .cancel
        .as_ref()
        .and_then(|cancel| cancel.cancel_timing.as_ref());
    let (closed, on_close) = oneshot::channel();
    let before_close = matches!(timing, Some(CancelTiming::BeforeCloseSend(_)));
    let stream = outgoing(
        messages,
        Duration::from_millis(u64::from(request.request_delay_ms)),
        closed,
        !before_close,
    );
    let mut call = tonic::Request::new(stream);
    *call.metadata_mut() = report::metadata(&request.request_headers)?;
    if let Some(ms) = request.timeout_ms {
        call.set_timeout(Duration::from_millis(u64::from(ms)));
    }
    let path = PathAndQuery::try_from(format!("/{SERVICE}/{}", request.method()))
        .map_err(|e| e.to_string())?;
    let cancel = cancelled_at(timing, on_close);
    tokio::pin!(cancel);
    let mut result = pb::ClientResponseResult::default();

    grpc.ready()
        .await
        .map_err(|e| format!("the peer is not ready: {e}"))?;
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let answered = tokio::select! {
        answered = grpc.streaming(call, path, codec) => answered,
        () = &mut cancel => {
            result.error = Some(report::cancelled());
            return Ok(result);
        }
    };
    let response = match answered {
        Ok(response) => response,
        Err(status) => {
            result.response_trailers = report::headers(status.metadata());
            result.error = Some(report::error(&status));
            return Ok(result);
        }
    };
    result.response_headers = report::headers(response.metadata());
    let mut answers = response.into_inner();
    let cancel_after = match timing {
        Some(CancelTiming::AfterNumResponses(n)) => Some(*n as usize),
        _ => None,
    };
    loop {
        if cancel_after.is_some_and(|n| result.payloads.len() >= n) {
            result.error = Some(report::cancelled());
            return Ok(result);
        }
        let next = tokio::select! {
            next = answers.message() => next,
            () = &mut cancel => {
                result.error = Some(report::cancelled());
                return Ok(result);
            }
        };
        match next {
            Ok(Some(answer)) => result.payloads.push(answer.payload()),
            Ok(None) => break,
            Err(status) => {
                result.response_trailers = report::headers(status.metadata());
                result.error = Some(report::error(&status));
                return Ok(result);
            }
        }
    }
    match answers.trailers().await {
        Ok(trailers) => {
            result.response_trailers = trailers.as_ref().map(report::headers).unwrap_or_default();
        }
        Err(status) => result.error = Some(report::error(&status)),
    }
    Ok(result)
}
