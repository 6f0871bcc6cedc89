//! Generates the benchmark's EchoService (proto/bench/v1/echo.proto): prost
//! messages, pbjson serde, Connect handlers, a tonic server and client, and
//! its descriptor set. protoc comes from the protoc-bin-vendored crate.

use std::{path::PathBuf, process::Command};

const PROTO: &str = "proto/bench/v1/echo.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: the build script is single-threaded; nothing else touches the env.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", &protoc);
    }
    connectrpc_axum_build::compile_protos(&[PathBuf::from(PROTO)], &[PathBuf::from("proto")])
        .include_file("bench.rs")
        .with_pbjson_config(|builder| {
            builder.ignore_unknown_fields();
        })
        .with_tonic()
        .with_tonic_client()
        .compile()?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg(format!(
            "--descriptor_set_out={}",
            out_dir.join("bench_descriptor.bin").display()
        ))
        .arg("-Iproto")
        .arg(PROTO)
        .status()?;
    if !status.success() {
        return Err(format!("protoc failed to write the descriptor set: {status}").into());
    }
    // The route builder a shop service uses (checked requests, Connect GET
    // from the contract): the kit's echo is served exactly as the shop is.
    // The echo is every server's, not a shop contract: it declares no
    // call policy (kit.policy.v1).
    shop_kit_build::Routes::new(out_dir.join("bench_descriptor.bin"), &out_dir)
        .without_policies()
        .descriptors_at("crate::pb::DESCRIPTORS")
        .generate()?;
    Ok(())
}
