//! Builds the browser app (../web-client) into web-client/dist whenever its
//! sources change, so the README's `cargo run --release` serves a current
//! app with no extra step. Needs Node and npm. Without them, or if the npm
//! build fails, the gateway still builds (with a warning) and `/` shows a
//! note instead of the app. SHOP_SKIP_WEB_BUILD=1 skips it.

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
    if std::env::var_os("SHOP_SKIP_WEB_BUILD").is_some() || !web.join("package.json").exists() {
        return;
    }
    let npm = |args: &[&str]| -> Result<ExitStatus, String> {
        Command::new(if cfg!(windows) { "npm.cmd" } else { "npm" })
            .args(args)
            .current_dir(&web)
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
            "cargo:warning=the web app was not built ({reason}); the gateway will show a note at /. Install Node and npm, or run `just web`."
        );
    }
}
