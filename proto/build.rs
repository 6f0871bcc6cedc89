//! Generates Rust for every .proto under shop/: prost messages, pbjson serde,
//! Connect handlers (connectrpc-axum), tonic servers and clients, and a
//! descriptor set for gRPC reflection, the request validators of the
//! buf.validate rules (prost-protovalidate-build: plain Rust, no reflection
//! or CEL at run time), and each service's route builder, whose handlers
//! receive only checked requests (shop-kit-build). protoc comes from the protoc-bin-vendored crate, so
//! no system protoc is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// protovalidate's options, vendored (see its README).
const VALIDATE_PROTO_DIR: &str = "vendor/protovalidate";
/// googleapis' HTTP options (`google.api.http`), vendored (see its README).
const GOOGLEAPIS_PROTO_DIR: &str = "vendor/googleapis";
/// Their package, and the crate whose Rust types the generated code names
/// instead of generating its own.
const VALIDATE_PACKAGE: &str = ".buf.validate";
const VALIDATE_RUST: &str = "::prost_protovalidate::types";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build and tonic-prost-build both look protoc up in PROTOC.
    // SAFETY: the build script is single-threaded here; nothing else reads
    // or writes the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", &protoc);
    }

    let mut protos = Vec::new();
    collect_protos(Path::new("shop"), &mut protos)?;
    // The kit's heartbeat, a field of every server stream's response.
    collect_protos(Path::new("kit/stream"), &mut protos)?;
    protos.sort();
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    println!("cargo:rerun-if-changed=shop");
    // The kit's call policy options, which the contract imports.
    println!("cargo:rerun-if-changed=kit");

    println!("cargo:rerun-if-changed={VALIDATE_PROTO_DIR}");
    println!("cargo:rerun-if-changed={GOOGLEAPIS_PROTO_DIR}");
    let includes = [
        PathBuf::from("."),
        PathBuf::from(VALIDATE_PROTO_DIR),
        PathBuf::from(GOOGLEAPIS_PROTO_DIR),
    ];
    connectrpc_axum_build::compile_protos(&protos, &includes)
        .include_file("shop.rs")
        // The shop's messages only carry buf.validate options; its own
        // types are never generated here (prost-protovalidate has them).
        .with_prost_config(|config| {
            config.extern_path(VALIDATE_PACKAGE, VALIDATE_RUST);
        })
        // Connect clients must be free to send fields this server does not
        // know yet, as connect-go accepts them.
        .with_pbjson_config(|builder| {
            builder.ignore_unknown_fields();
            builder.exclude([VALIDATE_PACKAGE]);
        })
        .with_tonic()
        .with_tonic_client()
        .compile()?;

    // The descriptor set served by gRPC reflection (v1 and v1alpha), which
    // the validators are generated from too.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_set = out_dir.join("shop_descriptor.bin");
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg("--include_source_info")
        .arg(format!("--descriptor_set_out={}", descriptor_set.display()))
        .arg("-I.")
        .arg(format!("-I{VALIDATE_PROTO_DIR}"))
        .arg(format!("-I{GOOGLEAPIS_PROTO_DIR}"))
        .args(&protos)
        .status()?;
    if !status.success() {
        return Err(format!("protoc failed to write the descriptor set: {status}").into());
    }

    // `impl Validate` for every message with rules. A rule the generator
    // cannot turn into plain Rust (CEL) fails the build: no rule is ever
    // silently skipped.
    prost_protovalidate_build::Builder::new()
        .file_descriptor_set_path(&descriptor_set)?
        .extern_path(VALIDATE_PACKAGE, VALIDATE_RUST)
        .extern_path(".google.protobuf", "::pbjson_types")
        .fail_on_runtime_only(true)
        .compile()?;

    // Every service's `<Service>Routes`: handlers of checked requests only
    // (Valid<T>), Connect GET for the NO_SIDE_EFFECTS methods.
    shop_kit_build::Routes::new(&descriptor_set, &out_dir)
        .validators(out_dir.join("validate_impl.rs"))
        .generate()?;

    // The shop's services, one per package of the contract that serves
    // something (`shop/<name>/v1`; the BFF's is the gateway's): the names
    // their certificates and service tokens carry, and what the tests
    // launch. A service `just new-service` adds is in it at once.
    std::fs::write(
        out_dir.join("services.rs"),
        services_list(&std::fs::read(&descriptor_set)?)?,
    )?;
    Ok(())
}

/// The shop service a package of the contract is (`shop.NAME.v1` is NAME's;
/// the BFF's is the gateway's), if it is one.
fn service_of(package: &str) -> Option<&str> {
    let name = package.strip_prefix("shop.")?.split('.').next()?;
    Some(if name == "bff" { "gateway" } else { name })
}

/// `pub const SERVICES: &[&str]`, the first five in the order they start
/// in, then the others by name; and `pub const DEPLOYMENTS`, each service
/// as its contract describes it (`kit.policy.v1.deployment`: port,
/// database, events, the services it calls), in the same order, each also
/// by name (`pub mod described`: `described::USERS`). A service
/// with no description, a port two services claim, or a peer that is no
/// service of the contract (or the service itself) fails the build.
fn services_list(descriptor_set: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    const FIRST: [&str; 5] = ["users", "catalog", "orders", "payments", "gateway"];
    let pool = shop_kit_policy::descriptors(descriptor_set)?;
    let added: std::collections::BTreeSet<String> = pool
        .services()
        .filter_map(|service| service_of(service.package_name()).map(str::to_owned))
        .filter(|name| !FIRST.contains(&name.as_str()))
        .collect();
    let names: Vec<String> = FIRST
        .iter()
        .map(|&name| name.to_owned())
        .chain(added)
        .collect();
    let is_service = |name: &str| names.iter().any(|known| known == name);
    let declared = shop_kit_policy::declared_deployments(&pool)?;
    for package in declared.keys() {
        if !service_of(package).is_some_and(is_service) {
            return Err(format!(
                "{package} declares kit.policy.v1.deployment but is no service of the shop \
                 (shop.NAME.v1 with an RPC service)"
            )
            .into());
        }
    }
    let mut ports = std::collections::BTreeMap::new();
    let mut deployments = Vec::new();
    for name in &names {
        let Some((_, deployment)) = declared
            .iter()
            .find(|(package, _)| service_of(package) == Some(name.as_str()))
        else {
            return Err(format!(
                "{name} has no kit.policy.v1.deployment: say in its contract how the shop runs \
                 it (option (kit.policy.v1.deployment) = {{ port: ... database: ... events: ... \
                 calls: [...] }})"
            )
            .into());
        };
        if let Some(other) = ports.insert(deployment.port, name) {
            return Err(format!(
                "{name} and {other} both take port {} (kit.policy.v1.deployment)",
                deployment.port
            )
            .into());
        }
        for peer in &deployment.calls {
            if peer == name {
                return Err(
                    format!("{name}'s kit.policy.v1.deployment calls {name} itself").into(),
                );
            }
            if !is_service(peer) {
                return Err(format!(
                    "{name}'s kit.policy.v1.deployment calls {peer:?}, which is no service of \
                     the contract (they are: {})",
                    names.join(", ")
                )
                .into());
            }
        }
        let calls: Vec<String> = deployment
            .calls
            .iter()
            .map(|peer| format!("{peer:?}"))
            .collect();
        deployments.push(format!(
            "Deployed {{ name: {name:?}, port: {}, database: {}, events: {}, calls: &[{}] }}",
            deployment.port,
            deployment.database,
            deployment.events,
            calls.join(", ")
        ));
    }
    let described: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            format!(
                "    pub const {}: &super::Deployed = &super::DEPLOYMENTS[{index}];",
                name.to_ascii_uppercase()
            )
        })
        .collect();
    let names: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
    Ok(format!(
        "pub const SERVICES: &[&str] = &[{}];\n\
         /// Each service as its contract describes it\n\
         /// (`kit.policy.v1.deployment`), in the order of [`SERVICES`].\n\
         pub const DEPLOYMENTS: &[Deployed] = &[\n    {},\n];\n\
         /// Each service as its contract describes it, by name.\n\
         pub mod described {{\n{}\n}}\n",
        names.join(", "),
        deployments.join(",\n    "),
        described.join("\n")
    ))
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
