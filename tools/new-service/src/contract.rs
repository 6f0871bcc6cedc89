//! The RPCs a service's contract declares, read from its descriptors: its
//! proto files compiled by protoc (the one the protoc-bin-vendored crate
//! ships, as `proto/build.rs` does), never by matching the text.

use std::{path::Path, process::Command};

use prost::Message;
use prost_types::FileDescriptorSet;

/// Where protoc finds what the contract imports, below `proto/` (as
/// `proto/build.rs` gives them).
const INCLUDES: [&str; 3] = [".", "vendor/protovalidate", "vendor/googleapis"];

/// One RPC of a service of the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rpc {
    /// `ReviewService`.
    pub service: String,
    /// `ArchiveReview`.
    pub name: String,
    /// The request and response messages, named in the service's package.
    pub input: String,
    pub output: String,
    pub kind: Kind,
}

/// Which of the four kinds of call an RPC is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unary,
    ServerStream,
    ClientStream,
    Bidi,
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("protoc (from protoc-bin-vendored): {0}")]
    Protoc(String),
    /// The services' descriptions (`kit.policy.v1.deployment`) do not read.
    #[error("the contract's services: {0}")]
    Described(String),
    #[error("{file}: protoc refused it:\n{stderr}")]
    Refused { file: String, stderr: String },
    #[error("{file}: its descriptors do not decode: {source}")]
    Decode {
        file: String,
        source: prost::DecodeError,
    },
    #[error(
        "{service}.{rpc}: its {which} message {message} is not of the service's package \
         ({package}): the stub names messages of its package only; write its handler by hand"
    )]
    ForeignMessage {
        service: String,
        rpc: String,
        which: &'static str,
        message: String,
        package: String,
    },
}

/// The encoded descriptor set of `files` (paths below `proto/`), as
/// protoc writes it, their imports included when `imports`.
fn descriptor_set(
    proto_root: &Path,
    files: &[String],
    imports: bool,
) -> Result<Vec<u8>, ContractError> {
    let protoc =
        protoc_bin_vendored::protoc_bin_path().map_err(|e| ContractError::Protoc(e.to_string()))?;
    let mut command = Command::new(protoc);
    command
        .current_dir(proto_root)
        .args(INCLUDES.map(|include| format!("-I{include}")))
        .arg("--descriptor_set_out=/dev/stdout");
    if imports {
        command.arg("--include_imports");
    }
    let output = command
        .args(files)
        .output()
        .map_err(|e| ContractError::Protoc(e.to_string()))?;
    if !output.status.success() {
        return Err(ContractError::Refused {
            file: files.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

/// The ports the contract's services take (`kit.policy.v1.deployment`),
/// read from the descriptors of every file under `proto/shop`.
pub fn ports(proto_root: &Path) -> Result<Vec<u16>, ContractError> {
    fn walk(dir: &Path, root: &Path, found: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, root, found)?;
            } else if path.extension().is_some_and(|ext| ext == "proto")
                && let Ok(relative) = path.strip_prefix(root)
            {
                found.push(relative.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(&proto_root.join("shop"), proto_root, &mut files)
        .map_err(|e| ContractError::Described(format!("proto/shop: {e}")))?;
    files.sort();
    let set = descriptor_set(proto_root, &files, true)?;
    let pool =
        shop_kit_policy::descriptors(&set).map_err(|e| ContractError::Described(e.to_string()))?;
    let deployments = shop_kit_policy::declared_deployments(&pool)
        .map_err(|e| ContractError::Described(e.to_string()))?;
    Ok(deployments
        .values()
        .map(|deployment| deployment.port)
        .collect())
}

/// The RPCs of every service `file` (a path below `proto/`, e.g.
/// `shop/reviews/v1/reviews.proto`) declares, in the order it declares
/// them.
pub fn rpcs(proto_root: &Path, file: &str) -> Result<Vec<Rpc>, ContractError> {
    let bytes = descriptor_set(proto_root, &[file.to_owned()], false)?;
    let set =
        FileDescriptorSet::decode(bytes.as_slice()).map_err(|source| ContractError::Decode {
            file: file.to_owned(),
            source,
        })?;
    let mut rpcs = Vec::new();
    for descriptor in set.file {
        let package = descriptor.package().to_owned();
        for service in &descriptor.service {
            for method in &service.method {
                let named = |which, message: &str| {
                    message
                        .strip_prefix(&format!(".{package}."))
                        .map(str::to_owned)
                        .ok_or_else(|| ContractError::ForeignMessage {
                            service: service.name().to_owned(),
                            rpc: method.name().to_owned(),
                            which,
                            message: message.to_owned(),
                            package: package.clone(),
                        })
                };
                rpcs.push(Rpc {
                    service: service.name().to_owned(),
                    name: method.name().to_owned(),
                    input: named("request", method.input_type())?,
                    output: named("response", method.output_type())?,
                    kind: match (method.client_streaming(), method.server_streaming()) {
                        (false, false) => Kind::Unary,
                        (false, true) => Kind::ServerStream,
                        (true, false) => Kind::ClientStream,
                        (true, true) => Kind::Bidi,
                    },
                });
            }
        }
    }
    Ok(rpcs)
}
