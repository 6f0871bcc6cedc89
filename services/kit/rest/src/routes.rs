//! The REST routes a server's RPCs declare, read from their descriptors'
//! `google.api.http` options (and each rule's `additional_bindings`): no
//! route is written by hand.

use http::Method;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, Value};

use super::path::{Binding, NotUtf8, RestPath, TemplateError};

/// The option's full name.
const HTTP_OPTION: &str = "google.api.http";

/// A rule that cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("{rpc}: {source}")]
    Template {
        rpc: String,
        #[source]
        source: TemplateError,
    },
    #[error("{rpc}: {what}")]
    Rule { rpc: String, what: String },
}

/// Where a REST request's body goes in the request message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestBody {
    /// No body: every field not in the path is a query parameter.
    None,
    /// `body: "*"`: the body is the whole message (bar path fields).
    Whole,
    /// `body: "field"`: the body is that field; the rest are query
    /// parameters.
    Field(String),
}

/// One REST route: an HTTP method and path template, and the RPC it calls.
#[derive(Clone, Debug)]
pub struct RestRoute {
    pub method: Method,
    pub path: RestPath,
    /// `/package.Service/Method`, as the RPC is routed.
    pub rpc: String,
    pub body: RestBody,
    /// The response field that is the answer's body (`response_body`), by
    /// its JSON name (as the Connect JSON answer names it), if not the
    /// whole response.
    pub response_body: Option<String>,
    pub input: MessageDescriptor,
    /// A server stream (answered as Server-Sent Events).
    pub server_streaming: bool,
}

/// Every REST route of a server's services.
#[derive(Clone, Debug, Default)]
pub struct RestRoutes {
    routes: Vec<RestRoute>,
}

impl RestRoutes {
    /// The routes as a Markdown table, a row each: the RPC (its service's
    /// short name and the method) and its verb, path and body, as
    /// docs/contract.md shows them.
    pub fn table(&self) -> String {
        let mut table = String::from("| RPC | REST |\n| --- | --- |\n");
        for route in &self.routes {
            let rpc = route
                .rpc
                .rsplit_once('/')
                .map(|(service, method)| {
                    let service = service.rsplit('.').next().unwrap_or(service);
                    format!("{service}.{method}")
                })
                .unwrap_or_else(|| route.rpc.clone());
            let body = match &route.body {
                RestBody::None => String::new(),
                RestBody::Whole => " (body `*`)".to_owned(),
                RestBody::Field(field) => format!(" (body `{field}`)"),
            };
            table.push_str(&format!(
                "| {rpc} | `{} {}`{body} |\n",
                route.method,
                route.path.template()
            ));
        }
        table
    }

    /// The routes `services` (full names) declare in `pool`; a service
    /// without rules, or missing from the pool, adds none.
    pub fn from_pool<'a>(
        pool: &DescriptorPool,
        services: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, RouteError> {
        let mut routes = Vec::new();
        let Some(option) = pool.get_extension_by_name(HTTP_OPTION) else {
            return Ok(Self { routes });
        };
        for name in services {
            let Some(service) = pool.get_service_by_name(name) else {
                continue;
            };
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&option) {
                    continue;
                }
                if let Value::Message(rule) = options.get_extension(&option).as_ref() {
                    add_rule(&method, rule, true, &mut routes)?;
                }
            }
        }
        Ok(Self { routes })
    }

    /// Every route, in the order declared.
    pub fn iter(&self) -> impl Iterator<Item = &RestRoute> {
        self.routes.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The route a request's method and path (without its query) call, and
    /// what its path binds (or why it cannot: the route is still the one
    /// called, to refuse precisely). As grpc-gateway matches: a template
    /// with a `:verb` first (`/v1/orders/o-1:cancel` is the cancellation,
    /// not an order whose id is `o-1:cancel`), then the others; the first
    /// declared wins.
    pub fn find(
        &self,
        method: &Method,
        path: &str,
    ) -> Option<(&RestRoute, Result<Vec<Binding>, NotUtf8>)> {
        for with_verb in [true, false] {
            for route in self
                .routes
                .iter()
                .filter(|route| route.method == *method && route.path.verb().is_some() == with_verb)
            {
                match route.path.bind(path) {
                    Ok(None) => {}
                    Ok(Some(bindings)) => return Some((route, Ok(bindings))),
                    Err(not_utf8) => return Some((route, Err(not_utf8))),
                }
            }
        }
        None
    }
}

fn text(rule: &DynamicMessage, field: &str) -> String {
    rule.get_field_by_name(field)
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn add_rule(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
    top: bool,
    routes: &mut Vec<RestRoute>,
) -> Result<(), RouteError> {
    let rpc = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let refuse = |what: String| RouteError::Rule {
        rpc: rpc.clone(),
        what,
    };
    let pattern = ["get", "put", "post", "delete", "patch"]
        .into_iter()
        .find(|verb| rule.has_field_by_name(verb));
    let (verb, template) = match pattern {
        Some(verb) => (verb.to_ascii_uppercase(), text(rule, verb)),
        None => {
            let custom = rule
                .get_field_by_name("custom")
                .and_then(|custom| custom.as_message().cloned())
                .ok_or_else(|| refuse("no HTTP method in the rule".to_owned()))?;
            (text(&custom, "kind"), text(&custom, "path"))
        }
    };
    let http_method =
        Method::from_bytes(verb.as_bytes()).map_err(|_| refuse(format!("HTTP method {verb:?}")))?;
    let path = RestPath::parse(&template).map_err(|source| RouteError::Template {
        rpc: rpc.clone(),
        source,
    })?;
    let input = method.input();
    let body = match text(rule, "body").as_str() {
        "" => RestBody::None,
        "*" => RestBody::Whole,
        field => {
            if input.get_field_by_name(field).is_none() {
                return Err(refuse(format!("body names no field: {field:?}")));
            }
            RestBody::Field(field.to_owned())
        }
    };
    let response_body = match text(rule, "response_body").as_str() {
        "" => None,
        field => match method.output().get_field_by_name(field) {
            Some(found) => Some(found.json_name().to_owned()),
            None => return Err(refuse(format!("response_body names no field: {field:?}"))),
        },
    };
    for field in path.fields() {
        let mut message = Some(input.clone());
        for name in field {
            let Some(found) = message.and_then(|m| m.get_field_by_name(name)) else {
                return Err(refuse(format!(
                    "the path binds no field: {:?}",
                    field.join(".")
                )));
            };
            message = found.kind().as_message().cloned();
        }
    }
    routes.push(RestRoute {
        method: http_method,
        path,
        rpc: rpc.clone(),
        body,
        response_body,
        input,
        server_streaming: method.is_server_streaming(),
    });
    if top
        && let Some(Value::List(more)) = rule
            .get_field_by_name("additional_bindings")
            .as_deref()
            .cloned()
    {
        for binding in more {
            if let Value::Message(binding) = binding {
                add_rule(method, &binding, false, routes)?;
            }
        }
    }
    Ok(())
}
