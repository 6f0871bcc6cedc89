//! The probe's Rust (prost, Connect, tonic, its route builder) from
//! proto/probe, and its descriptor set, which the tests compile again with
//! other options.

use std::{path::PathBuf, process::Command};

const PROBE: &str = "proto/probe/v1/probe.proto";
/// The kit's heartbeat, a field of the probe's stream.
const HEARTBEAT: &str = "../../../proto/kit/stream/v1/heartbeat.proto";
/// The contract's folder, where the kit's options are.
const CONTRACT: &str = "../../../proto";
/// protovalidate's options, vendored there (the probe's streams have a rule).
const VALIDATE: &str = "../../../proto/vendor/protovalidate";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: the build script is single-threaded here.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", &protoc);
    }
    println!("cargo:rerun-if-changed={PROBE}");
    println!("cargo:rerun-if-changed={CONTRACT}/kit");
    let includes = ["proto", CONTRACT, VALIDATE];
    connectrpc_axum_build::compile_protos(&[PROBE, HEARTBEAT], &includes)
        .include_file("probe.rs")
        .with_prost_config(|config| {
            config.extern_path(".buf.validate", "::prost_protovalidate::types");
        })
        .with_pbjson_config(|builder| {
            builder.exclude([".buf.validate"]);
        })
        .with_tonic()
        .with_tonic_client()
        .compile()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_set = out_dir.join("probe_descriptor.bin");
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", descriptor_set.display()))
        .arg("-Iproto")
        .arg(format!("-I{CONTRACT}"))
        .arg(format!("-I{VALIDATE}"))
        .arg(PROBE)
        .status()?;
    if !status.success() {
        return Err(format!("protoc: {status}").into());
    }
    prost_protovalidate_build::Builder::new()
        .file_descriptor_set_path(&descriptor_set)?
        .extern_path(".buf.validate", "::prost_protovalidate::types")
        .fail_on_runtime_only(true)
        .compile()?;
    shop_kit_build::Routes::new(&descriptor_set, &out_dir)
        .validators(out_dir.join("validate_impl.rs"))
        .generate()?;
    Ok(())
}
