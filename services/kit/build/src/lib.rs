//! Build-time code for a service crate's contract: after
//! `connectrpc-axum-build` has written a package's Rust, this writes beside
//! it, for every service, a `<Service>Routes` builder that
//!
//! - takes only handlers whose request is `Valid<T>` (the kit checks the
//!   contract's rules before the handler runs: no handler can forget to),
//!   or, for a client-streaming or bidirectional method, `ValidStream<T>`
//!   (each message checked as it arrives): all four kinds of call;
//! - gives every method marked `idempotency_level = NO_SIDE_EFFECTS` its
//!   Connect GET route, read from the descriptors (no hand-kept list);
//! - builds the service as `RpcServer::serve` takes it (`RpcService`): its
//!   Connect router, its tonic server with the kit's compression and limits,
//!   and the contract's descriptors the server reads its policy from;
//! - refuses a contract whose call policy is missing or unsafe (a method
//!   with no caller rule, a retry on a method not safe to repeat: see
//!   `shop_kit_policy`), naming the method and what to write.
//!
//! The library's own builders, which hand a handler the unchecked message,
//! and tonic's server module, which serves any implementation of the
//! service's trait, are made private to the generated crate. Every request message gets
//! `shop_kit::rpc::Rules`: its `buf.validate` validator where
//! `prost-protovalidate-build` made one, none otherwise (checking an
//! empty request costs nothing).
//!
//! ```ignore
//! // build.rs, after connectrpc_axum_build and prost_protovalidate_build:
//! shop_kit_build::Routes::new(&descriptor_set, &out_dir)
//!     .validators(out_dir.join("validate_impl.rs"))
//!     .generate()?;
//! ```

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use prost::Message;
use prost_types::{
    FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto, ServiceDescriptorProto,
    method_options::IdempotencyLevel,
};

/// Why the routes could not be generated. Its `Debug` is its message: a
/// build script's `main` prints that.
pub enum Error {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Descriptors(prost::DecodeError),
    /// The generated code is not what this generator expects (a new
    /// version of connectrpc-axum-build?): it says what it missed.
    Unexpected {
        path: PathBuf,
        what: String,
    },
    Unsupported(String),
    /// A method's call policy is missing or wrong.
    Policy(shop_kit_policy::PolicyError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Descriptors(e) => write!(f, "the descriptor set does not decode: {e}"),
            Self::Unexpected { path, what } => write!(
                f,
                "{}: {what} (the generated code changed shape; shop-kit-build needs updating)",
                path.display()
            ),
            Self::Unsupported(what) => f.write_str(what),
            Self::Policy(e) => write!(f, "{e}"),
        }
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

/// The route builders of every service in a descriptor set whose package
/// `connectrpc-axum-build` generated into `out_dir`.
#[derive(Debug)]
pub struct Routes {
    descriptor_set: PathBuf,
    out_dir: PathBuf,
    validators: Option<PathBuf>,
    policies_required: bool,
    /// The Rust path of the encoded descriptor set the generated crate
    /// exports (each service's `RpcService` carries it).
    descriptors_path: String,
}

impl Routes {
    pub fn new(descriptor_set: impl Into<PathBuf>, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            descriptor_set: descriptor_set.into(),
            out_dir: out_dir.into(),
            validators: None,
            policies_required: true,
            descriptors_path: "crate::FILE_DESCRIPTOR_SET".to_owned(),
        }
    }

    /// Where the generated crate keeps the encoded descriptor set of its
    /// contract (default `crate::FILE_DESCRIPTOR_SET`): every service built
    /// carries it, for the server to read its rules and policy from.
    pub fn descriptors_at(mut self, rust_path: &str) -> Self {
        rust_path.clone_into(&mut self.descriptors_path);
        self
    }

    /// For a contract that declares no call policy (a benchmark's echo):
    /// its methods are generated without one, so its server checks no
    /// caller and gives no deadline beyond what the handlers do. A policy
    /// that is declared is still checked.
    pub fn without_policies(mut self) -> Self {
        self.policies_required = false;
        self
    }

    /// The file `prost-protovalidate-build` wrote (`impl Validate for ...`):
    /// the requests listed there are checked by their validator.
    pub fn validators(mut self, validate_impl: impl Into<PathBuf>) -> Self {
        self.validators = Some(validate_impl.into());
        self
    }

    pub fn generate(self) -> Result<(), Error> {
        let bytes = read(&self.descriptor_set)?;
        let set = FileDescriptorSet::decode(bytes.as_slice()).map_err(Error::Descriptors)?;
        let pool = prost_reflect::DescriptorPool::decode(bytes.as_slice())
            .map_err(|e| Error::Unsupported(format!("the descriptor set does not resolve: {e}")))?;
        let validated = match &self.validators {
            Some(path) => validated_types(&String::from_utf8_lossy(&read(path)?)),
            None => BTreeSet::new(),
        };
        let packages: BTreeSet<&str> = set
            .file
            .iter()
            .filter(|file| !file.service.is_empty())
            .map(FileDescriptorProto::package)
            .collect();
        for package in packages {
            let path = self.out_dir.join(format!("{package}.rs"));
            if !path.exists() {
                // An imported package this build did not generate.
                continue;
            }
            let services: Vec<&ServiceDescriptorProto> = set
                .file
                .iter()
                .filter(|file| file.package() == package)
                .flat_map(|file| &file.service)
                .collect();
            let mut code = String::from_utf8_lossy(&read(&path)?).into_owned();
            // Each request, and the field its method's caller shows the
            // shop's shared secret in, if any.
            let mut requests = std::collections::BTreeMap::new();
            for service in &services {
                let secrets = check_policies(&pool, package, service, self.policies_required)?;
                hide_raw_builders(&mut code, service.name(), &path)?;
                code.push_str(&routes(package, service, &self.descriptors_path)?);
                for (method, secret) in service.method.iter().zip(secrets) {
                    if method.client_streaming() && secret.is_some() {
                        return Err(Error::Unsupported(format!(
                            "{package}.{}/{}: a caller proving itself with the shop's secret \
                             (`shop_secret`) shows it in its request, and a stream of requests \
                             has no one request to read it from before the handler runs: \
                             let the caller show its certificate (`service`)",
                            service.name(),
                            method.name()
                        )));
                    }
                    let field = requests
                        .entry(method.input_type().to_owned())
                        .or_insert(None);
                    if secret.is_some() {
                        *field = secret;
                    }
                }
            }
            for (request, secret) in requests {
                code.push_str(&rules(package, &request, &validated, secret.as_deref())?);
            }
            std::fs::write(&path, code).map_err(|source| Error::Io { path, source })?;
        }
        Ok(())
    }
}

/// Every method of `service` says who may call it, and retries or hedges
/// only where that is safe. Returns, for each method in order, the request
/// field its caller shows the shop's shared secret in (`shop_secret_field`).
fn check_policies(
    pool: &prost_reflect::DescriptorPool,
    package: &str,
    service: &ServiceDescriptorProto,
    required: bool,
) -> Result<Vec<Option<String>>, Error> {
    let full_name = format!("{package}.{}", service.name());
    let Some(service) = pool.get_service_by_name(&full_name) else {
        return Err(Error::Unsupported(format!(
            "{full_name}: not in the descriptor pool"
        )));
    };
    service
        .methods()
        .map(|method| {
            let policy = if required {
                shop_kit_policy::Policy::required(&method)
            } else {
                shop_kit_policy::Policy::of(&method)
            };
            Ok(policy.map_err(Error::Policy)?.shop_secret_field)
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// The crate-relative paths (`shop::users::v1::LogInRequest`) of the types
/// prost-protovalidate-build gave a validator.
fn validated_types(validate_impl: &str) -> BTreeSet<String> {
    const IMPL: &str = "impl ::prost_protovalidate::Validate for ";
    validate_impl
        .lines()
        .filter_map(|line| line.trim().strip_prefix(IMPL))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// `ListProducts` -> `list_products`, as connectrpc-axum-build and tonic
/// name methods and modules: the name of an RPC's method on the generated
/// route builder, and so of its handler (`just new-service` writes the
/// builder line and the stub of a new RPC by it).
pub fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// A message's Rust type as seen from its package's module: its name for
/// a message of the package itself, `super::...` for another package's.
fn rust_type(package: &str, full_name: &str) -> Result<String, Error> {
    let name = full_name.trim_start_matches('.');
    let (type_package, message) = name.rsplit_once('.').unwrap_or(("", name));
    if type_package != package {
        return Err(Error::Unsupported(format!(
            "{name}: a request or response of another package than its service's \
             ({package}) has no route builder here"
        )));
    }
    Ok(message.to_owned())
}

/// The library's builders hand handlers the unchecked request, and tonic's
/// server module takes any implementation of the service's trait: only the
/// generated routes (same crate) may use them, so a handler is reached
/// through `<Service>Routes` alone.
fn hide_raw_builders(code: &mut String, service: &str, path: &Path) -> Result<(), Error> {
    let raw = [
        format!("{service}Builder"),
        format!("{service}TonicCompatibleBuilder"),
        format!("{service}TonicCompatibleServerBuilder"),
    ]
    .map(|builder| {
        (
            format!("pub struct {builder} "),
            format!("pub(crate) struct {builder} "),
        )
    });
    let server = format!("{}_server", snake_case(service));
    let server = (
        format!("pub mod {server} {{"),
        format!("pub(crate) mod {server} {{"),
    );
    for (public, private) in raw.iter().chain([&server]) {
        if code.matches(public.as_str()).count() != 1 {
            return Err(Error::Unexpected {
                path: path.to_owned(),
                what: format!("no single `{public}`"),
            });
        }
        *code = code.replacen(public.as_str(), private, 1);
    }
    Ok(())
}

fn routes(
    package: &str,
    service: &ServiceDescriptorProto,
    descriptors: &str,
) -> Result<String, Error> {
    let name = service.name();
    let snake = snake_case(name);
    let connect = format!("{snake}_connect");
    let server = format!("{snake}_server");
    let handlers = format!("{snake}_handlers");
    let tonic = format!(
        "{}TonicService",
        name.strip_suffix("Service").unwrap_or(name)
    );
    // One type parameter per method: `Missing` until its handler is given,
    // `Given` after; `build` wants every one given.
    let states: Vec<String> = service
        .method
        .iter()
        .map(|method| format!("M{}", method.name()))
        .collect();
    let missing = states
        .iter()
        .map(|state| format!(", {state} = ::shop_kit::rpc::Missing"))
        .collect::<String>();
    let all = states
        .iter()
        .map(|state| format!(", {state}"))
        .collect::<String>();
    let mut methods = String::new();
    let mut markers = String::new();
    let mut complete = String::new();
    for (i, method) in service.method.iter().enumerate() {
        let after = states
            .iter()
            .enumerate()
            .map(|(j, state)| {
                if i == j {
                    ", ::shop_kit::rpc::Given".to_owned()
                } else {
                    format!(", {state}")
                }
            })
            .collect::<String>();
        methods.push_str(&route(
            package, name, method, &states[i], &after, &handlers,
        )?);
        markers.push_str(&marker(package, name, method));
        let _ = write!(
            complete,
            "\n        {}: {handlers}::{}Given,",
            states[i],
            method.name()
        );
    }
    let mut code = String::new();
    let _ = write!(
        code,
        r#"
/// What `{name}Routes` asks of each method's handler: given once, and
/// given before `build` (the diagnostics name the method).
#[doc(hidden)]
pub mod {handlers} {{{markers}
}}

/// The handlers of `{package}.{name}`, generated by shop-kit-build: each takes
/// its request as `shop_kit::rpc::Valid<T>` (checked against the contract's
/// rules before it runs; a stream of requests as `ValidStream<T>`, each
/// checked as it arrives), and every unary method marked NO_SIDE_EFFECTS answers
/// Connect GET too. It builds once every method has its handler (a missing
/// one is a compile error naming it).
pub struct {name}Routes<S = (){missing}> {{
    builder: {connect}::{name}TonicCompatibleBuilder<S>,
    gets: ::axum::Router<S>,
    handlers: ::std::marker::PhantomData<fn() -> ({all_tuple})>,
}}

impl<S> Default for {name}Routes<S>
where
    S: Clone + Send + Sync + 'static,
{{
    fn default() -> Self {{
        Self::new()
    }}
}}

impl<S> {name}Routes<S>
where
    S: Clone + Send + Sync + 'static,
{{
    pub fn new() -> Self {{
        Self {{
            builder: {connect}::{name}TonicCompatibleBuilder::new(),
            gets: ::axum::Router::new(),
            handlers: ::std::marker::PhantomData,
        }}
    }}
}}

impl<S{all}> {name}Routes<S{all}>
where
    S: Clone + Send + Sync + 'static,
{{
{methods}
    /// The service, for `RpcServer::serve`: its Connect routes (POST, and
    /// GET where the contract allows it) and gRPC server, with `state` given
    /// to every handler, and the contract it is served under.
    pub fn build(self, state: S) -> ::shop_kit::RpcService
    where{complete}
    {{
        let (router, grpc) = self.builder.with_state::<()>(state.clone()).build();
        ::shop_kit::rpc::service::__generated::service(
            {descriptors},
            router.merge(self.gets.with_state(state)),
            grpc,
            |grpc: {server}::{name}Server<{tonic}>, max_request_bytes| {{
                use ::shop_kit::rpc::__private::CompressionEncoding::Gzip;
                grpc.accept_compressed(Gzip)
                    .send_compressed(Gzip)
                    .max_decoding_message_size(max_request_bytes)
                    .max_encoding_message_size(usize::MAX)
            }},
        )
    }}
}}
"#,
        all_tuple = states
            .iter()
            .map(|state| format!("{state},"))
            .collect::<String>(),
    );
    Ok(code)
}

/// The two marks of `method`'s handler: given (for `build`) and not yet
/// given (for its builder method), each with the words of its diagnostic.
fn marker(package: &str, service: &str, method: &MethodDescriptorProto) -> String {
    let name = method.name();
    let rust = snake_case(name);
    format!(
        r#"
    #[diagnostic::on_unimplemented(
        message = "`{package}.{service}/{name}` has no handler",
        label = "built without the handler of `{name}`",
        note = "give every method of the service its handler before `build`: `.{rust}(handler)`"
    )]
    pub trait {name}Given {{}}
    impl {name}Given for ::shop_kit::rpc::Given {{}}

    #[diagnostic::on_unimplemented(
        message = "`{package}.{service}/{name}` already has its handler",
        label = "a second handler of `{name}`",
        note = "each method has one handler: give `.{rust}(handler)` once"
    )]
    pub trait {name}Open {{}}
    impl {name}Open for ::shop_kit::rpc::Missing {{}}
"#
    )
}

fn route(
    package: &str,
    service: &str,
    method: &MethodDescriptorProto,
    state: &str,
    after: &str,
    handlers: &str,
) -> Result<String, Error> {
    let name = method.name();
    let rust = snake_case(name);
    let request = rust_type(package, method.input_type())?;
    let response = rust_type(package, method.output_type())?;
    let path = format!("/{package}.{service}/{name}");
    let streams_in = method.client_streaming();
    let streams_out = method.server_streaming();
    // Connect GET is for a unary method that changes nothing.
    let cacheable = !streams_in
        && !streams_out
        && method
            .options
            .as_ref()
            .is_some_and(|o| o.idempotency_level() == IdempotencyLevel::NoSideEffects);
    let (generics, out, stream_bound) = if streams_out {
        (
            "H, Args, St",
            "::connectrpc_axum::prelude::StreamBody<St>".to_owned(),
            format!(
                "\n        St: ::futures::Stream<Item = Result<{response}, ::connectrpc_axum::prelude::ConnectError>> + Send + 'static,"
            ),
        )
    } else {
        ("H, Args", response.clone(), String::new())
    };
    let (kind, input, validated) = match (streams_in, streams_out) {
        (false, false) => ("unary", "Valid", "validated"),
        (false, true) => ("server streaming", "Valid", "validated"),
        (true, false) => ("client streaming", "ValidStream", "validated_stream"),
        (true, true) => ("bidirectional streaming", "ValidStream", "validated_stream"),
    };
    let (get_doc, gets) = if cacheable {
        (
            "; it answers Connect GET too (NO_SIDE_EFFECTS)",
            format!(
                "self.gets.merge(::shop_kit::connect_get::<{request}, {response}, _, _, S>(\"{path}\", handler.clone()))"
            ),
        )
    } else {
        ("", "self.gets".to_owned())
    };
    Ok(format!(
        r#"
    /// The handler of `{name}` ({kind}){get_doc}.
    pub fn {rust}<{generics}>(self, handler: H) -> {service}Routes<S{after}>
    where
        {state}: {handlers}::{name}Open,
        H: ::shop_kit::rpc::ValidHandler<Args, S, ::shop_kit::rpc::{input}<{request}>, {out}>,
        Args: 'static,{stream_bound}
    {{
        let handler = ::shop_kit::rpc::{validated}(handler);
        {service}Routes {{
            gets: {gets},
            builder: self.builder.{rust}(handler),
            handlers: ::std::marker::PhantomData,
        }}
    }}
"#
    ))
}

/// Whether `name` is a Rust keyword (prost writes such a field `r#name`).
fn is_keyword(name: &str) -> bool {
    const KEYWORDS: [&str; 38] = [
        "as", "async", "await", "box", "break", "const", "continue", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type",
        "unsafe", "use", "where", "while", "yield",
    ];
    KEYWORDS.contains(&name)
}

fn rules(
    package: &str,
    request: &str,
    validated: &BTreeSet<String>,
    secret: Option<&str>,
) -> Result<String, Error> {
    let rust = rust_type(package, request)?;
    let crate_path = format!("{}::{rust}", package.replace('.', "::"));
    let body = if validated.contains(&crate_path) {
        "::prost_protovalidate::Validate::validate(self).err()"
    } else {
        "None"
    };
    // The field is a string field (the policy's check said so), named as
    // prost names it (a keyword as a raw identifier).
    let secret = secret.map_or_else(String::new, |field| {
        let field = if is_keyword(field) {
            format!("r#{field}")
        } else {
            field.to_owned()
        };
        format!(
            r#"

    #[inline]
    fn shop_secret(&self) -> Option<&str> {{
        Some(&self.{field})
    }}"#
        )
    });
    Ok(format!(
        r#"
impl ::shop_kit::rpc::Rules for {rust} {{
    #[inline]
    fn broken(&self) -> Option<::shop_kit::rpc::ValidationError> {{
        {body}
    }}{secret}
}}
"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_generated_codes() {
        assert_eq!(snake_case("ListProducts"), "list_products");
        assert_eq!(snake_case("GetMe"), "get_me");
        assert_eq!(snake_case("ServiceTokenService"), "service_token_service");
        assert_eq!(
            rust_type("shop.catalog.v1", ".shop.catalog.v1.GetProductRequest").expect("same"),
            "GetProductRequest"
        );
        assert!(rust_type("shop.catalog.v1", ".google.protobuf.Empty").is_err());
    }

    #[test]
    fn validated_types_are_read_from_the_validators() {
        let code = "impl ::prost_protovalidate::Validate for shop::users::v1::LogInRequest {\n    fn validate(\n";
        assert!(validated_types(code).contains("shop::users::v1::LogInRequest"));
    }
}
