//! A service given to `just new-service` again: each RPC of its contract
//! that its service's builder does not name gets its line there, and each
//! with no handler gets a stub of one at the end of `api.rs`, answering
//! `unimplemented` until it is written. A handler that exists is never
//! touched, nor is any other line.

use crate::contract::{Kind, Rpc};

/// `api.rs` with what it lacked.
#[derive(Debug, PartialEq, Eq)]
pub struct Stubbed {
    pub text: String,
    /// Each RPC given a builder line (`ReviewService.ArchiveReview`).
    pub routed: Vec<String>,
    /// Each RPC given a stub of its handler.
    pub stubbed: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StubError {
    #[error(
        "{api} has no builder of {service} (`pb::{service}Routes::new()` ... `.build(state)`), \
         where just new-service adds the lines of its RPCs: build it there, as the template's \
         `widget_service` does"
    )]
    NoBuilder { api: String, service: String },
}

/// `api` (the text of the file `api_path`) with a builder line and a stub
/// for each of `rpcs` it lacks; `plural` names the service in the stubs'
/// comments.
pub fn stub(api_path: &str, api: &str, rpcs: &[Rpc], plural: &str) -> Result<Stubbed, StubError> {
    let mut stubbed = Stubbed {
        text: api.to_owned(),
        routed: Vec::new(),
        stubbed: Vec::new(),
    };
    for rpc in rpcs {
        let handler = shop_kit_build::snake_case(&rpc.name);
        let named = format!("{}.{}", rpc.service, rpc.name);
        if route(&mut stubbed.text, &rpc.service, &handler).ok_or_else(|| StubError::NoBuilder {
            api: api_path.to_owned(),
            service: rpc.service.clone(),
        })? {
            stubbed.routed.push(named.clone());
        }
        if !stubbed.text.contains(&format!("fn {handler}(")) {
            stubbed.text.push_str(&handler_stub(rpc, &handler, plural));
            stubbed.stubbed.push(named);
        }
    }
    Ok(stubbed)
}

/// Adds `.handler(handler)` to `service`'s builder chain unless it names
/// the handler already: `Some(true)` if added, `None` if there is no
/// builder.
fn route(text: &mut String, service: &str, handler: &str) -> Option<bool> {
    let start = text.find(&format!("pb::{service}Routes::new()"))?;
    let build = start + text[start..].find(".build(")?;
    if text[start..build].contains(&format!(".{handler}(")) {
        return Some(false);
    }
    let line = text[..build].rfind('\n').map_or(0, |at| at + 1);
    let indent = text[line..build].to_owned();
    text.insert_str(line, &format!("{indent}.{handler}({handler})\n"));
    Some(true)
}

fn handler_stub(rpc: &Rpc, handler: &str, plural: &str) -> String {
    let answer = match rpc.kind {
        Kind::ServerStream | Kind::Bidi => format!(
            "StreamBody<std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::{}, \
             ConnectError>> + Send>>>",
            rpc.output
        ),
        Kind::Unary | Kind::ClientStream => format!("pb::{}", rpc.output),
    };
    // A stream of requests is taken as one, each checked as it arrives.
    let request = match rpc.kind {
        Kind::Unary | Kind::ServerStream => format!("Valid(_request): Valid<pb::{}>", rpc.input),
        Kind::ClientStream | Kind::Bidi => {
            format!("_requests: shop_kit::ValidStream<pb::{}>", rpc.input)
        }
    };
    format!(
        "
/// {service}.{name}: a stub `just new-service {plural}` wrote when the
/// contract gained it; it answers unimplemented until it is written.
pub async fn {handler}(
    State(_state): State<AppState>,
    {request},
) -> Result<ConnectResponse<{answer}>, ConnectError> {{
    Err(ConnectError::new(
        Code::Unimplemented,
        \"{service}.{name} is not written yet\",
    ))
}}
",
        service = rpc.service,
        name = rpc.name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "use x;

pub fn review_service(state: AppState) -> RpcService {
    pb::ReviewServiceRoutes::new()
        .get_review(get_review)
        .build(state)
}

pub async fn get_review() {}
";

    fn rpc(name: &str, kind: Kind) -> Rpc {
        Rpc {
            service: "ReviewService".to_owned(),
            name: name.to_owned(),
            input: format!("{name}Request"),
            output: format!("{name}Response"),
            kind,
        }
    }

    #[test]
    fn a_new_rpc_gets_its_line_and_a_stub_and_the_rest_is_untouched() {
        let rpcs = [
            rpc("GetReview", Kind::Unary),
            rpc("ArchiveReview", Kind::Unary),
            rpc("WatchReviews", Kind::ServerStream),
        ];
        let stubbed = stub("api.rs", API, &rpcs, "reviews").expect("stubbed");
        assert_eq!(
            stubbed.routed,
            ["ReviewService.ArchiveReview", "ReviewService.WatchReviews"]
        );
        assert_eq!(stubbed.stubbed, stubbed.routed);
        assert!(stubbed.text.starts_with(
            "use x;

pub fn review_service(state: AppState) -> RpcService {
    pb::ReviewServiceRoutes::new()
        .get_review(get_review)
        .archive_review(archive_review)
        .watch_reviews(watch_reviews)
        .build(state)
}

pub async fn get_review() {}
"
        ));
        assert!(stubbed.text.contains("Valid(_request): Valid<pb::ArchiveReviewRequest>,\n) -> Result<ConnectResponse<pb::ArchiveReviewResponse>, ConnectError>"));
        assert!(
            stubbed
                .text
                .contains("Item = Result<pb::WatchReviewsResponse, ConnectError>")
        );

        let again = stub("api.rs", &stubbed.text, &rpcs, "reviews").expect("stubbed");
        assert_eq!(again.text, stubbed.text, "a second run adds nothing");
        assert!(again.routed.is_empty() && again.stubbed.is_empty());
    }

    #[test]
    fn a_written_handler_without_its_line_gets_only_the_line() {
        let api = API.replace("        .get_review(get_review)\n", "");
        let stubbed =
            stub("api.rs", &api, &[rpc("GetReview", Kind::Unary)], "reviews").expect("stubbed");
        assert_eq!(stubbed.routed, ["ReviewService.GetReview"]);
        assert!(stubbed.stubbed.is_empty());
        assert_eq!(stubbed.text, API);
    }

    #[test]
    fn a_stream_of_requests_is_stubbed_as_one_checked_stream() {
        let rpcs = [
            rpc("GetReview", Kind::Unary),
            rpc("ImportReviews", Kind::ClientStream),
            rpc("DiscussReview", Kind::Bidi),
        ];
        let stubbed = stub("api.rs", API, &rpcs, "reviews").expect("stubbed");
        assert_eq!(
            stubbed.stubbed,
            ["ReviewService.ImportReviews", "ReviewService.DiscussReview"]
        );
        assert!(stubbed.text.contains("_requests: shop_kit::ValidStream<pb::ImportReviewsRequest>,\n) -> Result<ConnectResponse<pb::ImportReviewsResponse>, ConnectError>"));
        assert!(stubbed.text.contains(
            "_requests: shop_kit::ValidStream<pb::DiscussReviewRequest>,\n) -> Result<ConnectResponse<StreamBody<"
        ));
    }

    #[test]
    fn a_service_with_no_builder_is_refused_with_its_reason() {
        let other = Rpc {
            service: "OtherService".to_owned(),
            ..rpc("GetReview", Kind::Unary)
        };
        assert!(matches!(
            stub("api.rs", API, &[other], "reviews"),
            Err(StubError::NoBuilder { .. })
        ));
    }
}
