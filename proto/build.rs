//! Generates Rust for every .proto under shop/: prost messages, pbjson serde,
//! Connect handlers (connectrpc-axum), tonic servers and clients, and a
//! descriptor set for gRPC reflection. protoc comes from the
//! protoc-bin-vendored crate, so no system protoc is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

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
    protos.sort();
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    println!("cargo:rerun-if-changed=shop");

    connectrpc_axum_build::compile_protos(&protos, &[PathBuf::from(".")])
        .include_file("shop.rs")
        // Connect clients must be free to send fields this server does not
        // know yet, as connect-go accepts them.
        .with_pbjson_config(|builder| {
            builder.ignore_unknown_fields();
        })
        .with_tonic()
        .with_tonic_client()
        .compile()?;

    // The descriptor set served by gRPC reflection (v1 and v1alpha).
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let status = Command::new(&protoc)
        .arg("--include_imports")
        .arg("--include_source_info")
        .arg(format!(
            "--descriptor_set_out={}",
            out_dir.join("shop_descriptor.bin").display()
        ))
        .arg("-I.")
        .args(&protos)
        .status()?;
    if !status.success() {
        return Err(format!("protoc failed to write the descriptor set: {status}").into());
    }
    Ok(())
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
