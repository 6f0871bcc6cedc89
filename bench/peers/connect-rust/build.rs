//! Generates bench.v1 with connect-rust's own code generator, from the
//! descriptor set bench/peers/build.sh builds with buf (gen/bench.fds).
fn main() {
    println!("cargo:rerun-if-changed=gen/bench.fds");
    connectrpc_build::Config::new()
        .descriptor_set("gen/bench.fds")
        .files(&["bench/v1/echo.proto"])
        .include_file("_connectrpc.rs")
        .compile()
        .expect("generate bench.v1 from gen/bench.fds (run bench/peers/build.sh)");
}
