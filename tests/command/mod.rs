//! `shop` run as a command that exits (`migrate`, `certs`, `--help`): what
//! it printed and how it ended.

#![allow(dead_code)] // each test file uses part of it

use std::process::{Command, Output};

/// `shop ARGS` with nothing from this environment but PATH, RUST_LOG=warn
/// and `env`.
pub fn shop(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shop"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run shop")
}

/// What it printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
