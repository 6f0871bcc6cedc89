//! Each request is classified once, as it comes in: the protocol it speaks
//! and the registered method its path names. The outermost RPC layer puts
//! the [`Call`] in the request's extensions; every later step reads it
//! instead of parsing the content type and the path again, and the server
//! dispatches a registered method straight to its protocol's stack.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use http::Request;
use prost_reflect::{DescriptorPool, MethodDescriptor};

use super::{
    head::Head,
    heartbeat::{Heartbeat, NoHeartbeat},
    protocol::{Framing, Protocol, RpcName},
    rate_class::{RateClass, RateClasses},
    series::OkSeries,
    timeout::{MalformedTimeout, at_most},
};
use shop_kit_auth::SharedSecret;
use shop_kit_policy::{CallerRule, Policy, PolicyError};
use shop_kit_rest::{Binding, NotUtf8, RestRoute, RestRoutes};

/// One method this server registered.
#[derive(Debug)]
pub struct Method {
    pub service: &'static str,
    pub name: &'static str,
    /// `package.Service/Method`, as traces name the RPC.
    pub full_name: &'static str,
    pub client_streaming: bool,
    /// Client, server or bidirectional streaming: over Connect it takes
    /// only the `application/connect+...` content types, a unary method
    /// only the others.
    pub streaming: bool,
    /// Marked NO_SIDE_EFFECTS: Connect GET may call it.
    pub get: bool,
    /// For transcoding JSON over gRPC (`None` for methods served without a
    /// descriptor here, e.g. reflection).
    pub descriptor: Option<MethodDescriptor>,
    /// Served by the server's own routes (not bridged, like health and
    /// reflection): dispatched straight to its protocol's stack.
    pub direct: bool,
    /// Its place in the server's table, `0..Methods::len()` (for state
    /// kept per method).
    pub index: usize,
    /// What its contract says of its callers and deadline (none for a
    /// method served without a descriptor).
    pub policy: Policy,
    /// The limiter of the rate class its contract names.
    pub rate_class: Option<Arc<dyn RateClass>>,
    /// Whether a call is admitted by a rule (a caller rule other than
    /// anyone's, or a rate class): read once, when the server is assembled.
    pub ruled: bool,
    /// The server's shared secret, for a method whose caller proves itself
    /// with it (`shop_secret`): `Some` for such a method alone (an empty
    /// secret where the server has none: every proof by secret refused).
    pub shared_secret: Option<SharedSecret>,
    /// What its stream sends when it has been quiet (server streams of the
    /// server's own services).
    pub heartbeat: Option<Heartbeat>,
    /// Its metric series for successful calls, by protocol, looked up once.
    pub ok_series: OkSeries,
}

/// Why the server's methods could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum MethodsError {
    #[error("a method's call policy (kit.policy.v1) is wrong: {0}")]
    Policy(#[from] PolicyError),
    #[error(
        "{method} counts against the rate class {class:?}, which this server has no limiter for: register one with RpcServer::rate_class"
    )]
    NoRateClass { method: String, class: String },
    #[error(transparent)]
    NoHeartbeat(#[from] NoHeartbeat),
    #[error("{service}: no descriptor describes it, so none of its rules could be enforced")]
    NotInContract { service: String },
}

/// A request the classifier found on a REST route: the route and what its
/// path binds.
#[derive(Clone, Debug)]
pub struct RestCall {
    pub route: &'static RestRoute,
    pub bindings: Result<Vec<Binding>, NotUtf8>,
}

/// What a request is, read once.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub protocol: Protocol,
    /// How the body is framed, by the same reading of the content type.
    pub framing: Framing,
    /// The registered method the path names, if any.
    pub method: Option<&'static Method>,
    /// Whether the path has the shape of an RPC at all
    /// (`/package.Service/Method`), registered or not.
    pub looks_like_rpc: bool,
    /// The path names a service the server serves, but no method of its
    /// contract: refused as such before anything else is done with it.
    pub no_such_method: bool,
    /// When the call must end, if it has a deadline: the caller's, cut to
    /// the contract's, from the moment it was classified (see
    /// [`crate::policy::give_deadline`]). The calls its handler makes
    /// carry what is left of it (`call_context`).
    pub deadline: Option<tokio::time::Instant>,
    /// Its timeout header is one its protocol's layer refuses.
    pub malformed_timeout: bool,
    /// It carries an `authorization` header.
    pub authorization: bool,
    /// It says its body is compressed (`content-encoding`, or
    /// `connect-content-encoding` for a stream).
    pub encoded: bool,
}

impl Call {
    /// The call a request carries (classified by [`Methods::classify`]);
    /// for a request that went around the classifier, classified now.
    pub fn of<B>(request: &Request<B>) -> Self {
        request
            .extensions()
            .get::<Self>()
            .copied()
            .unwrap_or_else(|| {
                let (protocol, framing) = Framing::of(request.headers());
                Self {
                    protocol,
                    framing,
                    method: None,
                    looks_like_rpc: RpcName::from_path(request.uri().path()).is_some(),
                    no_such_method: false,
                    deadline: None,
                    malformed_timeout: false,
                    authorization: request.headers().contains_key(http::header::AUTHORIZATION),
                    // Looked at, to be sure.
                    encoded: true,
                }
            })
    }
}

/// The methods a server registered, by path (`/package.Service/Method`),
/// and the REST routes of its public ones: built once when the server is
/// assembled, for the process's life.
#[derive(Debug, Default)]
pub struct Methods {
    /// Looked up on every call: foldhash, as the kit's other per-call
    /// maps (the std SipHash of the path cost ~170 instructions a call).
    by_path: HashMap<&'static str, &'static Method, foldhash::fast::RandomState>,
    /// The services whose methods it serves itself (`direct`), by full
    /// name: a path under one that is no method of it is refused.
    served: HashSet<&'static str, foldhash::fast::RandomState>,
    rest: RestRoutes,
}

/// A name for the process's life (one per method or server assembled).
pub(crate) fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

impl Methods {
    /// Every method of `services` found in `pool` (`direct`: served by the
    /// server's own routes), plus `bridged` (service, method) pairs served
    /// without a descriptor here, and the `rest` routes that call them;
    /// each method's rate class found among `rate_classes`. A service the
    /// pool does not describe is an error. With `kit_contract`, each direct
    /// method must have its call policy and each direct server stream its
    /// heartbeat (see `RpcServer::foreign_contract`).
    pub(crate) fn new<'a>(
        pool: &DescriptorPool,
        services: impl IntoIterator<Item = (&'a str, bool)>,
        bridged: impl IntoIterator<Item = (&'a str, &'a str)>,
        rest: RestRoutes,
        rate_classes: &RateClasses,
        secret: Option<&SharedSecret>,
        kit_contract: bool,
    ) -> Result<&'static Self, MethodsError> {
        let mut by_path = HashMap::default();
        let mut served = HashSet::default();
        for (name, direct) in services {
            let Some(service) = pool.get_service_by_name(name) else {
                return Err(MethodsError::NotInContract {
                    service: name.to_owned(),
                });
            };
            if direct {
                served.insert(leak(service.full_name().to_owned()));
            }
            for method in service.methods() {
                let path = leak(format!("/{}/{}", service.full_name(), method.name()));
                let policy = if direct && kit_contract {
                    Policy::required(&method)?
                } else {
                    Policy::of(&method)?
                };
                let rate_class = policy
                    .rate_class
                    .as_ref()
                    .map(|class| {
                        rate_classes
                            .get(class)
                            .cloned()
                            .ok_or_else(|| MethodsError::NoRateClass {
                                method: method.full_name().to_owned(),
                                class: class.clone(),
                            })
                    })
                    .transpose()?;
                let heartbeat = if direct && kit_contract {
                    Heartbeat::of(&method)?
                } else {
                    None
                };
                let ruled = rate_class.is_some()
                    || policy
                        .caller
                        .as_ref()
                        .is_some_and(|rule| *rule != CallerRule::Anyone);
                let shared_secret = (policy.caller == Some(CallerRule::ShopSecret))
                    .then(|| secret.cloned().unwrap_or_default());
                let entry: &'static Method = Box::leak(Box::new(Method {
                    ruled,
                    shared_secret,
                    service: leak(service.full_name().to_owned()),
                    name: leak(method.name().to_owned()),
                    full_name: &path[1..],
                    client_streaming: method.is_client_streaming(),
                    streaming: method.is_client_streaming() || method.is_server_streaming(),
                    get: shop_kit_policy::idempotency_level(&method)
                        == shop_kit_policy::Idempotency::NoSideEffects,
                    policy,
                    rate_class,
                    heartbeat,
                    descriptor: Some(method.clone()),
                    direct,
                    index: by_path.len(),
                    ok_series: OkSeries::default(),
                }));
                by_path.insert(path, entry);
            }
        }
        for (service, name) in bridged {
            let path = leak(format!("/{service}/{name}"));
            let entry: &'static Method = Box::leak(Box::new(Method {
                service: leak(service.to_owned()),
                name: leak(name.to_owned()),
                full_name: &path[1..],
                client_streaming: false,
                streaming: false,
                get: false,
                descriptor: None,
                direct: false,
                index: by_path.len(),
                policy: Policy::default(),
                rate_class: None,
                ruled: false,
                shared_secret: None,
                heartbeat: None,
                ok_series: OkSeries::default(),
            }));
            by_path.insert(path, entry);
        }
        Ok(Box::leak(Box::new(Self {
            by_path,
            served,
            rest,
        })))
    }

    /// How many methods there are.
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// Whether `path` (`/package.Service/...`) is under a service the
    /// server serves itself.
    fn serves_service_of(&self, path: &str) -> bool {
        path.strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(service, _)| self.served.contains(service))
    }

    /// Classifies `request` and records it in its extensions: a map
    /// lookup, no allocation beyond the extension's own. A path that is no
    /// RPC's is looked for among the REST routes: a REST call is recorded
    /// as the call of the RPC its route names, with the route and what its
    /// path binds beside it (a [`RestCall`]).
    pub fn classify<B>(&'static self, request: &mut Request<B>, head: &Head) -> Call {
        let path = request.uri().path();
        let method = self.by_path.get(path).copied();
        let (protocol, framing) = Framing::of_content_type(head.content_type.as_ref());
        let looks_like_rpc = method.is_some() || RpcName::from_path(path).is_some();
        let rest = if looks_like_rpc || self.rest.is_empty() {
            None
        } else {
            self.rest
                .find(request.method(), path)
                .and_then(|(route, bindings)| {
                    let method = self.by_path.get(route.rpc.as_str()).copied()?;
                    Some((method, RestCall { route, bindings }))
                })
        };
        let mut call = match rest {
            Some((method, rest)) => {
                request.extensions_mut().insert(rest);
                Call {
                    protocol: Protocol::Rest,
                    framing,
                    method: Some(method),
                    looks_like_rpc: true,
                    no_such_method: false,
                    deadline: None,
                    malformed_timeout: false,
                    authorization: head.authorization,
                    encoded: head.encoded,
                }
            }
            None => Call {
                protocol,
                framing,
                method,
                looks_like_rpc,
                no_such_method: method.is_none() && looks_like_rpc && self.serves_service_of(path),
                deadline: None,
                malformed_timeout: false,
                authorization: head.authorization,
                encoded: head.encoded,
            },
        };
        match give_deadline(request, head, &call) {
            Ok(deadline) => call.deadline = deadline,
            Err(_) => call.malformed_timeout = true,
        }
        request.extensions_mut().insert(call);
        call
    }
}

/// Gives a call its method's deadline, at most (`call`: the request as
/// the server classified it), and says when the call must end: a step of
/// the classification, so it costs no layer of its own, and the one
/// reading of the timeout header the server makes.
fn give_deadline<B>(
    request: &mut Request<B>,
    head: &Head,
    call: &Call,
) -> Result<Option<tokio::time::Instant>, MalformedTimeout> {
    let most = call
        .method
        .filter(|method| method.direct)
        .and_then(|method| method.policy.deadline);
    Ok(at_most(request.headers_mut(), head, call.protocol, most)?
        .map(|timeout| tokio::time::Instant::now() + timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `request` classified as the pipeline does, its head read first.
    fn classified<B>(methods: &'static Methods, request: &mut Request<B>) -> Call {
        let head = Head::of(request.headers());
        methods.classify(request, &head)
    }

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(tonic_health::pb::FILE_DESCRIPTOR_SET).expect("descriptors")
    }

    #[test]
    fn a_registered_path_names_its_method_and_others_only_their_shape() {
        let methods = Methods::new(
            &pool(),
            [("grpc.health.v1.Health", false)],
            [(
                "grpc.reflection.v1.ServerReflection",
                "ServerReflectionInfo",
            )],
            RestRoutes::default(),
            &RateClasses::default(),
            None,
            true,
        )
        .expect("no policy to refuse");
        let mut check = Request::post("/grpc.health.v1.Health/Check")
            .header("content-type", "application/grpc")
            .body(())
            .expect("request");
        let call = classified(methods, &mut check);
        assert_eq!(call.protocol, Protocol::Grpc);
        let method = call.method.expect("registered");
        assert_eq!(
            (method.service, method.name),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(method.full_name, "grpc.health.v1.Health/Check");
        assert!(method.descriptor.is_some() && !method.client_streaming);
        assert!(Call::of(&check).method.is_some(), "kept in the extensions");

        let mut made_up = Request::post("/made.Up/Method").body(()).expect("request");
        let call = classified(methods, &mut made_up);
        assert!(call.method.is_none() && call.looks_like_rpc);
        assert!(!call.no_such_method, "no service of this server");
        assert_eq!(call.protocol, Protocol::Connect);

        let mut page = Request::get("/assets/app.js").body(()).expect("request");
        assert!(!classified(methods, &mut page).looks_like_rpc);

        let mut reflection =
            Request::post("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                .body(())
                .expect("request");
        let bridged = classified(methods, &mut reflection)
            .method
            .expect("bridged");
        assert!(bridged.descriptor.is_none() && !bridged.direct);
    }

    #[test]
    fn a_path_under_a_served_service_that_is_no_method_of_it_is_marked() {
        let methods = Methods::new(
            &pool(),
            [("grpc.health.v1.Health", true)],
            [],
            RestRoutes::default(),
            &RateClasses::default(),
            None,
            false,
        )
        .expect("no policy required");
        let mut unknown = Request::post("/grpc.health.v1.Health/Open")
            .body(())
            .expect("request");
        let call = classified(methods, &mut unknown);
        assert!(call.method.is_none() && call.no_such_method);
        let mut known = Request::post("/grpc.health.v1.Health/Check")
            .body(())
            .expect("request");
        assert!(!classified(methods, &mut known).no_such_method);
        let mut other = Request::post("/grpc.health.v2.Health/Check")
            .body(())
            .expect("request");
        assert!(!classified(methods, &mut other).no_such_method);
    }
}
