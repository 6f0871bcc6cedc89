//! The contract's request rules (`buf.validate` annotations in proto/),
//! checked the same on every protocol before a handler does any work.
//!
//! The validators themselves are generated from the annotations at build
//! time (`prost_protovalidate::Validate`, plain Rust: no reflection, no CEL
//! at run time). This module answers a broken rule: `invalid_argument` with
//! a `google.rpc.BadRequest` detail, one field violation per broken rule,
//! naming each field the way the caller wrote it: JSON names
//! (`productIds[0]`) to a caller that sent JSON, over Connect, Connect GET
//! or gRPC's `+json` codec, proto names (`product_ids[0]`) to one that sent
//! binary protobuf, as google.rpc.BadRequest's own documentation asks.

use connectrpc_axum::prelude::{Code, ConnectError};
use http::{Method, request::Parts};
use prost::Message;
use prost_protovalidate::{ValidationError, Violation};
use tonic_types::pb::{BadRequest, bad_request::FieldViolation};

use super::{
    classify::Call,
    protocol::{Framing, content_type, query_pairs},
};

/// A request message's rules, as the generated code states them: its
/// `buf.validate` validator, or none at all (then checking costs nothing).
pub trait Rules {
    /// The rules it breaks, if any.
    fn broken(&self) -> Option<ValidationError>;

    /// The shop's shared secret it carries, for a method whose caller
    /// proves itself with it (the field its contract's `shop_secret_field`
    /// names); `None` for a request that carries none.
    fn shop_secret(&self) -> Option<&str> {
        None
    }
}

/// Set by the gRPC JSON transcoder on a request it turned from JSON into
/// protobuf: the handler sees `+proto`, the caller wrote JSON.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SentJson;

/// How a broken rule is refused: knows which field names the caller uses.
/// [`super::valid::validated`] checks every request with it before its
/// handler runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestRules {
    json_names: bool,
}

impl RequestRules {
    /// For a caller that sent JSON (`true`) or binary protobuf.
    pub(crate) fn new(json_names: bool) -> Self {
        Self { json_names }
    }

    /// How the caller of `parts`, classified as `call`, names fields.
    pub(super) fn of(parts: &Parts, call: Option<&Call>) -> Self {
        Self::new(sent_json(parts, call))
    }

    /// `invalid_argument` naming each rule `broken` breaks.
    pub(super) fn refusal(self, broken: &ValidationError) -> ConnectError {
        let violations: Vec<FieldViolation> = broken
            .violations()
            .iter()
            .map(|violation| self.field_violation(violation))
            .collect();
        // Worded as the services' own refusals are: "field: what is wrong".
        let message = match violations.as_slice() {
            [] => "invalid request".to_owned(),
            [only] => format!("{}: {}", only.field, only.description),
            [first, rest @ ..] => format!(
                "{}: {} (and {} more)",
                first.field,
                first.description,
                rest.len()
            ),
        };
        let detail = BadRequest {
            field_violations: violations,
        };
        ConnectError::new(Code::InvalidArgument, message)
            .add_detail("google.rpc.BadRequest", detail.encode_to_vec())
    }

    fn field_violation(self, violation: &Violation) -> FieldViolation {
        let path = violation.field_path();
        FieldViolation {
            field: if self.json_names {
                json_path(&path)
            } else {
                path
            },
            description: violation.message().to_owned(),
            // "string.max_len" -> "STRING_MAX_LEN": stable, UPPER_SNAKE_CASE.
            reason: violation
                .rule_id()
                .chars()
                .map(|c| match c {
                    '.' => '_',
                    c => c.to_ascii_uppercase(),
                })
                .collect(),
            localized_message: None,
        }
    }
}

/// Whether the caller wrote its request in JSON: Connect's
/// `application/json` and `application/connect+json`, Connect GET's
/// `encoding=json`, or gRPC's `+json` codecs (transcoded before the
/// handler, see [`SentJson`]).
fn sent_json(parts: &Parts, call: Option<&Call>) -> bool {
    if parts.extensions.get::<SentJson>().is_some() {
        return true;
    }
    // The content type as the request was classified, where that says.
    match call.map(|call| call.framing) {
        Some(Framing::PlainJson) => return true,
        Some(Framing::PlainProto | Framing::Plain | Framing::GrpcProto) => return false,
        _ => {}
    }
    if parts.method == Method::GET {
        return parts.uri.query().is_some_and(|query| {
            query_pairs(query).any(|(key, value)| {
                key.eq_ignore_ascii_case("encoding") && value.eq_ignore_ascii_case("json")
            })
        });
    }
    content_type(&parts.headers)
        .is_some_and(|ct| ct == "application/json" || ct == "application/connect+json")
}

/// A protovalidate field path (`items[0].product_id`) in proto3 JSON names
/// (`items[0].productId`): each field name in lowerCamelCase, as the
/// contract has no `json_name` overrides; map keys in brackets untouched.
fn json_path(path: &str) -> String {
    let mut json = String::with_capacity(path.len());
    let mut in_key = false;
    let mut upper_next = false;
    for c in path.chars() {
        match c {
            '[' => in_key = true,
            ']' => in_key = false,
            _ => {}
        }
        if !in_key && c == '_' {
            upper_next = true;
            continue;
        }
        if upper_next && c.is_ascii_alphabetic() {
            json.push(c.to_ascii_uppercase());
        } else {
            json.push(c);
        }
        upper_next = false;
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_camel_case_field_names_only() {
        assert_eq!(json_path("product_ids[0]"), "productIds[0]");
        assert_eq!(json_path("items[12].product_id"), "items[12].productId");
        assert_eq!(json_path("amount.currency_code"), "amount.currencyCode");
        assert_eq!(json_path("page_size"), "pageSize");
        assert_eq!(json_path("email"), "email");
        assert_eq!(json_path(r#"labels["a_b"].c_d"#), r#"labels["a_b"].cD"#);
    }

    fn parts(request: http::Request<()>) -> Parts {
        request.into_parts().0
    }

    #[test]
    fn the_caller_s_codec_decides_the_names() {
        let post = |ct: &str| {
            parts(
                http::Request::post("/shop.catalog.v1.CatalogService/GetProduct")
                    .header("content-type", ct)
                    .body(())
                    .expect("request"),
            )
        };
        assert!(sent_json(&post("application/json"), None));
        assert!(sent_json(&post("Application/JSON; charset=utf-8"), None));
        assert!(sent_json(&post("application/connect+json"), None));
        assert!(!sent_json(&post("application/proto"), None));
        assert!(!sent_json(&post("application/grpc"), None));
        let mut transcoded = post("application/grpc+proto");
        transcoded.extensions.insert(SentJson);
        assert!(sent_json(&transcoded, None));
        let get = |query: &str| {
            parts(
                http::Request::get(format!("/s.v1.S/M?{query}"))
                    .body(())
                    .expect("request"),
            )
        };
        assert!(sent_json(&get("message=%7B%7D&encoding=json"), None));
        assert!(!sent_json(&get("message=AA&encoding=proto&base64=1"), None));
    }

    #[test]
    fn a_refusal_names_every_broken_rule() {
        let broken = ValidationError::new(vec![
            Violation::new(
                "product_ids",
                "repeated.min_items",
                "must contain at least 1 item(s)",
            ),
            Violation::new(
                "page_size",
                "int32.gte",
                "must be greater than or equal to 0",
            ),
        ]);
        let error = RequestRules::new(true).refusal(&broken);
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.message(),
            Some("productIds: must contain at least 1 item(s) (and 1 more)")
        );
        let detail = error
            .details()
            .iter()
            .find(|detail| detail.type_url().ends_with("google.rpc.BadRequest"))
            .expect("a BadRequest");
        let bad = BadRequest::decode(detail.value()).expect("decodes");
        let fields: Vec<(&str, &str)> = bad
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("productIds", "REPEATED_MIN_ITEMS"),
                ("pageSize", "INT32_GTE")
            ]
        );
        let proto_names = RequestRules::new(false).refusal(&broken);
        assert!(
            proto_names
                .message()
                .is_some_and(|m| m.contains("product_ids"))
        );
    }
}
