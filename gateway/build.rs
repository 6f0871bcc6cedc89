//! Builds the browser app (../web-client) into OUT_DIR/web whenever its
//! sources change; the gateway embeds that folder, so the README's `cargo
//! run --release` serves a current app from any working directory with no
//! extra step. Needs Node and npm. Without them, or if the npm build fails,
//! the gateway still builds (with a warning) and `/` shows a note instead
//! of the app. SHOP_SKIP_WEB_BUILD=1 skips it.

use std::{
    path::Path,
    process::{Command, ExitStatus},
};

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-client");
    // Sources only: the build writes gen/, dist/ and node_modules/, which
    // must not trigger another build.
    for input in [
        "src",
        "index.html",
        "package.json",
        "vite.config.ts",
        "tsconfig.json",
        "buf.gen.yaml",
        "../proto/shop",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=SHOP_SKIP_WEB_BUILD");
    // Embedded by the gateway: it must exist even when nothing is built.
    let out = Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    if let Err(error) = std::fs::create_dir_all(&out) {
        println!("cargo:warning=cannot create {}: {error}", out.display());
    }
    if std::env::var_os("SHOP_SKIP_WEB_BUILD").is_some() || !web.join("package.json").exists() {
        return;
    }
    let npm = |args: &[&str]| -> Result<ExitStatus, String> {
        Command::new(if cfg!(windows) { "npm.cmd" } else { "npm" })
            .args(args)
            .current_dir(&web)
            .env("SHOP_WEB_OUT_DIR", &out)
            .status()
            .map_err(|e| format!("npm: {e}"))
    };
    let built = (|| {
        if !web.join("node_modules").exists() {
            let installed = npm(&["install", "--no-audit", "--no-fund", "--loglevel=error"])?;
            if !installed.success() {
                return Err(format!("npm install: {installed}"));
            }
        }
        let status = npm(&["run", "build", "--silent"])?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("npm run build: {status}"))
        }
    })();
    if let Err(reason) = built {
        println!(
            "cargo:warning=the web app was not built ({reason}); the gateway will show a note at /. Install Node and npm, then build again."
        );
    }
}
