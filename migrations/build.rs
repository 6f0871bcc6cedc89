//! Each service's migrations are the files of its directory
//! (`src/catalog/m20261121_000001_create_products.rs`, ...), applied in
//! the order of their names: a new migration is a new file, and no list
//! has to name it. This writes, for each directory of `src/`, the module
//! of each file and the list of their `Migration`s into
//! `$OUT_DIR/<service>.rs`, which `src/<service>.rs` includes.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let src = manifest.join("src");
    // A new service's directory is one more: no list names them.
    println!("cargo:rerun-if-changed={}", src.display());
    for (service, dir) in service_directories(&src) {
        println!("cargo:rerun-if-changed={}", dir.display());
        let listed = listing(&service, &migration_files(&dir));
        let target = out.join(format!("{service}.rs"));
        fs::write(&target, listed).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
    }
}

/// Each directory of `src`: a service's migrations, named by it.
fn service_directories(src: &Path) -> Vec<(String, PathBuf)> {
    let entries = fs::read_dir(src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    let mut found: Vec<(String, PathBuf)> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("reading {}: {e}", src.display())))
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, entry.path())
        })
        .collect();
    found.sort();
    found
}

/// The migration files of `dir`, in the order they apply (by name).
fn migration_files(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path()
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    for file in &files {
        let name = module_name(file);
        if !is_migration_name(name) {
            panic!(
                "{}: a migration's file is named mYYYYMMDD_NNNNNN_what_it_does.rs \
                 (lower case, digits and _), so that its name sorts in the order it applies",
                file.display()
            );
        }
    }
    files
}

fn module_name(file: &Path) -> &str {
    file.file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_else(|| panic!("{}: not a UTF-8 file name", file.display()))
}

/// `m20261121_000001_create_products`: `m`, eight digits, `_`, six digits,
/// `_`, then lower-case words.
fn is_migration_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    bytes.len() > 17
        && bytes[0] == b'm'
        && digits(1..9)
        && bytes[9] == b'_'
        && digits(10..16)
        && bytes[16] == b'_'
        && bytes[17..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

fn listing(service: &str, files: &[PathBuf]) -> String {
    let mut text = format!(
        "// Written by migrations/build.rs from src/{service}/: a module per file, \
         and their migrations oldest first.\n\n"
    );
    for file in files {
        text += &format!(
            "#[path = {:?}]\nmod {};\n",
            file.display().to_string(),
            module_name(file)
        );
    }
    text += "\n/// The migrations of this service's directory, in the order they apply.\n";
    text += "fn in_order() -> Vec<Box<dyn MigrationTrait>> {\n    vec![\n";
    for file in files {
        text += &format!("        Box::new({}::Migration),\n", module_name(file));
    }
    text += "    ]\n}\n";
    text
}
