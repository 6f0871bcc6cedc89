//! For tests of the call policy: a proto that imports the kit's options,
//! compiled by protoc (vendored) into a descriptor set, so a test can
//! change an option and see what follows with no Rust changed.

use std::{path::Path, process::Command};

/// The folder of the contract, where `kit/policy/v1/policy.proto` is.
const CONTRACT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../proto");

/// The encoded `FileDescriptorSet` (imports included) of `source`, written
/// as `path` (e.g. `probe/v1/probe.proto`). Panics with protoc's words if
/// it does not compile: for tests only.
pub fn descriptor_set(path: &str, source: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join(path);
    if let Some(folder) = file.parent() {
        std::fs::create_dir_all(folder).expect("folders");
    }
    std::fs::write(&file, source).expect("write the test proto");
    let out = dir.path().join("set.bin");
    let includes = protoc_bin_vendored::include_path().expect("protoc's includes");
    let status = Command::new(protoc_bin_vendored::protoc_bin_path().expect("protoc"))
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .arg(format!("-I{}", dir.path().display()))
        .arg(format!("-I{}", Path::new(CONTRACT).display()))
        .arg(format!(
            "-I{}",
            Path::new(CONTRACT).join("vendor/protovalidate").display()
        ))
        .arg(format!("-I{}", includes.display()))
        .arg(&file)
        .status()
        .expect("protoc runs");
    assert!(status.success(), "protoc: {status}\n{source}");
    std::fs::read(out).expect("the descriptor set")
}
