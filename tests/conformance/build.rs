//! Generates the conformance suite's protos. They are not copied into this
//! repository: `go mod download` fetches the suite's Go module (which ships
//! its proto/ folder) and we compile from there.

use std::{path::PathBuf, process::Command};

const MODULE: &str = "connectrpc.com/conformance@v1.0.5";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    let output = Command::new("go")
        .args(["mod", "download", "-json", MODULE])
        .output()
        .map_err(|e| format!("`go mod download {MODULE}` needs Go on PATH: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "go mod download {MODULE} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let module: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let dir = module["Dir"]
        .as_str()
        .ok_or("go mod download printed no Dir")?;
    let proto_root = PathBuf::from(dir).join("proto");
    let protos: Vec<PathBuf> = [
        "config.proto",
        "service.proto",
        "server_compat.proto",
        "client_compat.proto",
    ]
    .iter()
    .map(|file| proto_root.join("connectrpc/conformance/v1").join(file))
    .collect();

    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: single-threaded build script; nothing else touches the env.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", &protoc);
    }
    connectrpc_axum_build::compile_protos(
        &protos,
        &[proto_root.clone(), protoc_bin_vendored::include_path()?],
    )
    .include_file("conformance.rs")
    // Messages echoed back as google.protobuf.Any need their type names.
    .with_prost_config(|config| {
        config.enable_type_names();
        config.extern_path(".google.protobuf.Any", "crate::any::Any");
    })
    .with_pbjson_config(|builder| {
        builder.extern_path(".google.protobuf.Any", "crate::any::Any");
    })
    .with_tonic()
    .compile()?;

    // Descriptors for reflection and the gRPC JSON codec.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg(format!(
            "--descriptor_set_out={}",
            out_dir.join("conformance_descriptor.bin").display()
        ))
        .arg(format!("-I{}", proto_root.display()))
        .arg(format!(
            "-I{}",
            protoc_bin_vendored::include_path()?.display()
        ))
        .args(&protos)
        .status()?;
    if !status.success() {
        return Err(format!("protoc failed to write the descriptor set: {status}").into());
    }

    // The service's route builder, as every shop service has one: its
    // handlers take checked requests (`Valid<T>`, `ValidStream<T>`), all
    // four kinds of call. The suite's contract declares no call policy.
    shop_kit_build::Routes::new(out_dir.join("conformance_descriptor.bin"), &out_dir)
        .descriptors_at("crate::DESCRIPTORS")
        .without_policies()
        .generate()?;
    Ok(())
}
