//! The contract as the dashboard shows it: every RPC of the services it
//! runs, read from the descriptors once at start, with its request and
//! response schema (and their validation rules), its call policy, its
//! REST route and an example request made from the rules' examples.

use std::{collections::BTreeMap, sync::Arc};

use axum::{extract::State, response::IntoResponse};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use serde_json::{Map, Value as Json, json};
use shop_kit::policy::{self, CallerRule, Policy};

use crate::ShownService;

const FIELD_RULES: &str = "buf.validate.field";
const HTTP_RULE: &str = "google.api.http";
/// How deep an example request nests messages.
const EXAMPLE_DEPTH: usize = 4;

/// An RPC the explorer may call.
#[derive(Clone, Debug)]
pub struct Callable {
    /// Where its service answers.
    pub url: String,
    pub server_streaming: bool,
    pub client_streaming: bool,
}

pub struct Contract {
    /// What `/api/contract` answers, made once.
    pub json: Arc<String>,
    /// `package.Service/Method` to where it is served.
    pub callable: BTreeMap<String, Callable>,
    /// Each RPC service's shop service (`shop.catalog.v1.StockService` to
    /// `catalog`).
    pub owner: BTreeMap<String, &'static str>,
    /// Calls the contract says one service makes to another: the caller
    /// rules that name services (from, to).
    pub declared: Vec<(String, &'static str)>,
}

impl Contract {
    pub fn read(set: &'static [u8], shown: &[ShownService]) -> Result<Self, String> {
        let pool = policy::descriptors(set).map_err(|e| e.to_string())?;
        let mut owner = BTreeMap::new();
        for service in shown {
            for rpc in &service.rpc_services {
                owner.insert(rpc.clone(), service.name);
            }
        }
        let mut services = Vec::new();
        let mut messages = BTreeMap::new();
        let mut callable = BTreeMap::new();
        let mut declared = Vec::new();
        for service in pool.services() {
            let Some(&shop_service) = owner.get(service.full_name()) else {
                continue;
            };
            let Some(url) = shown
                .iter()
                .find(|s| s.name == shop_service)
                .map(|s| &s.url)
            else {
                continue;
            };
            let mut methods = Vec::new();
            let mut internal = true;
            for method in service.methods() {
                let policy = Policy::of(&method).map_err(|e| e.to_string())?;
                internal &= policy.caller.as_ref().is_some_and(CallerRule::is_internal);
                if let Some(CallerRule::Services(callers)) = &policy.caller {
                    for caller in callers {
                        if !declared.contains(&(caller.clone(), shop_service)) {
                            declared.push((caller.clone(), shop_service));
                        }
                    }
                }
                describe_message(&method.input(), &pool, &mut messages);
                describe_message(&method.output(), &pool, &mut messages);
                let path = format!("{}/{}", service.full_name(), method.name());
                callable.insert(
                    path.clone(),
                    Callable {
                        url: url.clone(),
                        server_streaming: method.is_server_streaming(),
                        client_streaming: method.is_client_streaming(),
                    },
                );
                methods.push(describe_method(&method, &policy, &pool, &path));
            }
            services.push(json!({
                "name": service.full_name(),
                "shopService": shop_service,
                "url": url,
                "internal": internal,
                "methods": methods,
            }));
        }
        let json = json!({ "services": services, "messages": messages });
        Ok(Self {
            json: Arc::new(json.to_string()),
            callable,
            owner,
            declared,
        })
    }
}

fn describe_method(
    method: &MethodDescriptor,
    policy: &Policy,
    pool: &DescriptorPool,
    path: &str,
) -> Json {
    let streaming = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => "unary",
        (false, true) => "server stream",
        (true, false) => "client stream",
        (true, true) => "bidi stream",
    };
    let get = policy::idempotency_level(method) == policy::Idempotency::NoSideEffects;
    json!({
        "name": method.name(),
        "path": path,
        "input": method.input().full_name(),
        "output": method.output().full_name(),
        "streaming": streaming,
        "get": get,
        "policy": {
            "caller": policy::caller_in_words(policy),
            "internal": policy.caller.as_ref().is_some_and(CallerRule::is_internal),
            "customer": matches!(policy.caller, Some(CallerRule::Customer | CallerRule::SignedIn)),
            "deadline": policy.deadline.map(policy::duration_in_words),
            "retries": policy::retries_in_words(policy),
            "hedging": policy::hedging_in_words(policy),
            "rateClass": policy.rate_class,
            "idempotencyKey": policy.idempotency_key_field,
            "errors": policy.errors,
        },
        "rest": extension(&method.options(), pool, HTTP_RULE),
        "example": example(&method.input(), pool, 0),
    })
}

/// The value of the extension `name` in `options`, as JSON, if set.
fn extension(options: &DynamicMessage, pool: &DescriptorPool, name: &str) -> Option<Json> {
    let extension = pool.get_extension_by_name(name)?;
    if !options.has_extension(&extension) {
        return None;
    }
    match options.get_extension(&extension).as_ref() {
        Value::Message(message) => serde_json::to_value(message).ok(),
        _ => None,
    }
}

fn type_name(field: &FieldDescriptor) -> String {
    match field.kind() {
        Kind::Message(message) => message.full_name().to_owned(),
        Kind::Enum(values) => values.full_name().to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Describes `message` and every message and enum it uses, once each.
fn describe_message(
    message: &MessageDescriptor,
    pool: &DescriptorPool,
    into: &mut BTreeMap<String, Json>,
) {
    if into.contains_key(message.full_name()) {
        return;
    }
    into.insert(message.full_name().to_owned(), Json::Null);
    let mut fields = Vec::new();
    for field in message.fields() {
        let label = if field.is_map() {
            "map"
        } else if field.is_list() {
            "repeated"
        } else if field.supports_presence() && field.containing_oneof().is_none() {
            "optional"
        } else {
            ""
        };
        fields.push(json!({
            "name": field.name(),
            "jsonName": field.json_name(),
            "type": type_name(&field),
            "label": label,
            "oneof": field.containing_oneof().map(|oneof| oneof.name().to_owned()),
            "rules": extension(&field.options(), pool, FIELD_RULES),
        }));
        match field.kind() {
            Kind::Message(nested) if !nested.full_name().starts_with("google.protobuf.") => {
                describe_message(&nested, pool, into);
            }
            Kind::Enum(values) => {
                let names: Vec<String> = values.values().map(|v| v.name().to_owned()).collect();
                into.insert(values.full_name().to_owned(), json!({ "enum": names }));
            }
            _ => {}
        }
    }
    into.insert(message.full_name().to_owned(), json!({ "fields": fields }));
}

/// A request to start from: each field with its rules' example, the
/// required ones (or those with a minimum) with a value of their type.
fn example(message: &MessageDescriptor, pool: &DescriptorPool, depth: usize) -> Json {
    let mut object = Map::new();
    let mut oneofs_taken: Vec<String> = Vec::new();
    for field in message.fields() {
        if let Some(oneof) = field.containing_oneof()
            && oneofs_taken.iter().any(|taken| taken == oneof.name())
        {
            continue;
        }
        let rules = extension(&field.options(), pool, FIELD_RULES);
        let Some(value) = example_of(&field, rules.as_ref(), pool, depth) else {
            continue;
        };
        if let Some(oneof) = field.containing_oneof() {
            oneofs_taken.push(oneof.name().to_owned());
        }
        object.insert(field.json_name().to_owned(), value);
    }
    Json::Object(object)
}

fn example_of(
    field: &FieldDescriptor,
    rules: Option<&Json>,
    pool: &DescriptorPool,
    depth: usize,
) -> Option<Json> {
    let rules = rules.cloned().unwrap_or(Json::Null);
    let typed = rules
        .as_object()
        .and_then(|rules| rules.values().find_map(|v| v.get("example")))
        .and_then(|examples| {
            examples
                .as_array()
                .and_then(|a| a.first())
                .cloned()
                .or(Some(examples.clone()))
        });
    let required = rules
        .get("required")
        .and_then(Json::as_bool)
        .unwrap_or(false)
        || rules.pointer("/repeated/minItems").is_some()
        || rules.pointer("/string/minLen").is_some();
    let one = match (typed, field.kind()) {
        (Some(example), _) => example,
        (None, Kind::Message(nested)) if depth < EXAMPLE_DEPTH && required => {
            example(&nested, pool, depth + 1)
        }
        (None, Kind::String) if required => {
            if field.name().contains("idempotency") {
                Json::String("key-1".to_owned())
            } else {
                Json::String(String::new())
            }
        }
        (None, Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64) => {
            // The least the rules allow, or 1 where a value is required.
            let least = rules.as_object().and_then(|rules| {
                rules.values().find_map(|r| {
                    r.get("gte")
                        .and_then(Json::as_i64)
                        .or_else(|| r.get("gt").and_then(Json::as_i64).map(|gt| gt + 1))
                })
            });
            match least {
                Some(least) => json!(least),
                None if required => json!(1),
                None => return None,
            }
        }
        _ => return None,
    };
    Some(if field.is_list() { json!([one]) } else { one })
}

pub async fn serve(State(state): State<Arc<crate::State>>) -> impl IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        state.contract.json.as_str().to_owned(),
    )
}
