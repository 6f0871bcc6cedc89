//! The repository a service is added to: what is written, what is edited,
//! all prepared before anything is touched, so a refusal leaves it as it
//! was.

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::error::RepoError;
use crate::{contract, deploy, name::Name, stubs, template};

/// Where the launcher lists the services it starts alike (see
/// `src/registry.rs`), and the line new ones go above.
const REGISTRY: &str = "src/registry.rs";
const REGISTRY_MARK: &str = "    // just new-service adds each new service above this line.\n";
/// How each line of the registry starts.
const REGISTRY_LINE: &str = "service!(";

/// The first port a new service may take: the shop's own services hold
/// 8080 to 8084.
const FIRST_FREE_PORT: u16 = 8085;
/// Where the contract is, below the repository.
const PROTO: &str = "proto";

/// What [`Repo::add`] did.
#[derive(Debug)]
pub struct Added {
    pub files: Vec<String>,
    pub edits: Vec<String>,
    pub port: u16,
    /// Whether rustfmt formatted it.
    pub formatted: bool,
}

/// What [`Repo::update`] did.
#[derive(Debug)]
pub struct Updated {
    /// The handlers' file.
    pub api: String,
    /// The RPCs its contract declares.
    pub rpcs: usize,
    /// Each RPC given its builder line, and each given a stub.
    pub routed: Vec<String>,
    pub stubbed: Vec<String>,
    pub formatted: bool,
}

pub struct Repo {
    root: PathBuf,
}

impl Repo {
    pub fn open(root: &Path) -> Result<Self, RepoError> {
        let repo = Self {
            root: root.to_owned(),
        };
        let is_shop = repo
            .read("Cargo.toml")
            .is_ok_and(|manifest| manifest.contains("[workspace]"))
            && root.join("proto/shop").is_dir()
            && root.join(REGISTRY).is_file();
        if !is_shop {
            return Err(RepoError::NotTheShop(root.display().to_string()));
        }
        Ok(repo)
    }

    fn read(&self, path: &str) -> Result<String, RepoError> {
        fs::read_to_string(self.root.join(path)).map_err(|source| RepoError::Io {
            path: path.to_owned(),
            source,
        })
    }

    fn write(&self, path: &str, text: &str) -> Result<(), RepoError> {
        let full = self.root.join(path);
        let io = |source| RepoError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = full.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        fs::write(&full, text).map_err(io)
    }

    /// Writes `name`'s service and lists it.
    pub fn add(&self, name: &Name) -> Result<Added, RepoError> {
        let plural = &name.plural;
        for taken in [format!("services/{plural}"), format!("proto/shop/{plural}")] {
            if self.root.join(&taken).exists() {
                return Err(RepoError::Exists(taken));
            }
        }
        let manifest = self.read("Cargo.toml")?;
        let registry = self.read(REGISTRY)?;
        let crate_name = format!("shop-{plural}");
        if manifest.contains(&format!("{crate_name} "))
            || registry.contains(&format!("{REGISTRY_LINE}shop_{plural},"))
        {
            return Err(RepoError::Exists(format!(
                "{crate_name} (Cargo.toml or {REGISTRY})"
            )));
        }
        let port = next_port(&crate::contract::ports(&self.root.join(PROTO))?);
        let manifest = workspace_lists(&manifest, plural)?;
        let registry = registered(&registry, plural)?;
        let deployed = deploy::edits(name, port, |path| self.read(path))?;

        let mut files = Vec::new();
        for (path, text) in template::FILES {
            let path = name.render(path).replace("Cargo.toml.tmpl", "Cargo.toml");
            self.write(&path, &template::render(name, port, text))?;
            files.push(path);
        }
        self.write("Cargo.toml", &manifest)?;
        self.write(REGISTRY, &registry)?;
        let mut edits = vec![
            "Cargo.toml: a workspace member, and a dependency of the launcher".to_owned(),
            format!("{REGISTRY}: the launcher starts it (port {port})"),
        ];
        for edit in deployed {
            self.write(edit.path, &edit.text)?;
            edits.push(format!("{}: {}", edit.path, edit.what));
        }
        let formatted = self.format(&files);
        Ok(Added {
            files,
            edits,
            port,
            formatted,
        })
    }

    /// Whether `plural` is a service here already: its contract and its
    /// handlers' file.
    pub fn serves(&self, plural: &str) -> bool {
        self.root.join(format!("proto/shop/{plural}")).is_dir()
            && self.root.join(api_file(plural)).is_file()
    }

    /// Gives the service `plural` what its contract declares and its
    /// handlers' file lacks: each new RPC's line in its service's builder
    /// and a stub of its handler. Writes nothing if it lacks nothing.
    pub fn update(&self, plural: &str) -> Result<Updated, RepoError> {
        let api_path = api_file(plural);
        let api = self.read(&api_path)?;
        let proto_root = self.root.join("proto");
        let mut files = Vec::new();
        self.proto_files(&format!("shop/{plural}"), &mut files)?;
        files.sort();
        let mut rpcs = Vec::new();
        for file in &files {
            rpcs.extend(contract::rpcs(&proto_root, file)?);
        }
        let stubbed = stubs::stub(&api_path, &api, &rpcs, plural)?;
        let mut formatted = true;
        if stubbed.text != api {
            self.write(&api_path, &stubbed.text)?;
            formatted = self.format(std::slice::from_ref(&api_path));
        }
        Ok(Updated {
            api: api_path,
            rpcs: rpcs.len(),
            routed: stubbed.routed,
            stubbed: stubbed.stubbed,
            formatted,
        })
    }

    /// The `.proto` files below `proto/<dir>`, as paths below `proto/`.
    fn proto_files(&self, dir: &str, found: &mut Vec<String>) -> Result<(), RepoError> {
        let full = self.root.join("proto").join(dir);
        let io = |source| RepoError::Io {
            path: format!("proto/{dir}"),
            source,
        };
        for entry in fs::read_dir(&full).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{dir}/{name}");
            if entry.file_type().map_err(io)?.is_dir() {
                self.proto_files(&path, found)?;
            } else if name.ends_with(".proto") {
                found.push(path);
            }
        }
        Ok(())
    }

    /// Formats the Rust it wrote as `cargo fmt` would (its imports sort
    /// by the new names); `false` if rustfmt could not.
    fn format(&self, files: &[String]) -> bool {
        let rust: Vec<&String> = files.iter().filter(|path| path.ends_with(".rs")).collect();
        std::process::Command::new("rustfmt")
            .args(["--edition", "2024"])
            .args(rust)
            .current_dir(&self.root)
            .status()
            .is_ok_and(|status| status.success())
    }
}

/// Where a service's handlers and its services' builders are.
fn api_file(plural: &str) -> String {
    format!("services/{plural}/src/api.rs")
}

/// The next port after every one the contract's services take, and never
/// one of the shop's first five's.
fn next_port(taken: &[u16]) -> u16 {
    taken
        .iter()
        .map(|port| port.saturating_add(1))
        .max()
        .unwrap_or(FIRST_FREE_PORT)
        .max(FIRST_FREE_PORT)
}

/// The workspace manifest with the service a member, a workspace
/// dependency, and a dependency of the launcher (the root package).
fn workspace_lists(manifest: &str, plural: &str) -> Result<String, RepoError> {
    let unexpected = |what| RepoError::Unexpected {
        file: "Cargo.toml",
        what,
    };
    let members_at = manifest
        .find("members = [")
        .ok_or_else(|| unexpected("the workspace's members"))?;
    let members_end = members_at
        + manifest[members_at..]
            .find(']')
            .ok_or_else(|| unexpected("the end of the workspace's members"))?;
    let mut edited = String::with_capacity(manifest.len() + 200);
    edited.push_str(&manifest[..members_end]);
    edited.push_str(&format!(", \"services/{plural}\""));
    let rest = &manifest[members_end..];
    let dependencies = "[workspace.dependencies]\n";
    let (before, after) = rest
        .split_once(dependencies)
        .ok_or_else(|| unexpected(dependencies))?;
    edited.push_str(before);
    edited.push_str(dependencies);
    edited.push_str(&format!(
        "shop-{plural} = {{ path = \"services/{plural}\" }}\n"
    ));
    let launcher = "[dependencies]\n";
    let (before, after) = after
        .split_once(launcher)
        .ok_or_else(|| unexpected("the launcher's [dependencies]"))?;
    edited.push_str(before);
    edited.push_str(launcher);
    edited.push_str(&format!("shop-{plural}.workspace = true\n"));
    edited.push_str(after);
    Ok(edited)
}

/// The registry with the service in it (its port is its contract's,
/// named by its constant).
fn registered(registry: &str, plural: &str) -> Result<String, RepoError> {
    let (before, after) = registry
        .split_once(REGISTRY_MARK)
        .ok_or(RepoError::Unexpected {
            file: REGISTRY,
            what: "the line new services go above",
        })?;
    Ok(format!(
        "{before}    {REGISTRY_LINE}shop_{plural}, {}, migrated),\n{REGISTRY_MARK}{after}",
        plural.to_ascii_uppercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[workspace]\nmembers = [\".\", \"services/orders\", \"gateway\"]\n\n[workspace.dependencies]\nshop-orders = { path = \"services/orders\" }\n\n[package]\nname = \"shop\"\n\n[dependencies]\nshop-orders.workspace = true\n";

    #[test]
    fn the_manifest_lists_the_service_three_times() {
        let edited = workspace_lists(MANIFEST, "reviews").expect("edited");
        assert!(
            edited.contains("\"gateway\", \"services/reviews\"]"),
            "{edited}"
        );
        assert!(edited.contains(
            "[workspace.dependencies]\nshop-reviews = { path = \"services/reviews\" }\n"
        ));
        assert!(edited.contains("[dependencies]\nshop-reviews.workspace = true\nshop-orders"));
    }

    #[test]
    fn each_service_takes_the_next_port_and_its_line_names_its_ports_constant() {
        assert_eq!(next_port(&[8080, 8081, 8082, 8083, 8084]), FIRST_FREE_PORT);
        assert_eq!(next_port(&[]), FIRST_FREE_PORT);
        assert_eq!(next_port(&[8081, 8085, 8084]), 8086);
        let empty = format!("pub const SERVICES: &[Registered] = &[\n{REGISTRY_MARK}];\n");
        let one = registered(&empty, "reviews").expect("registered");
        assert!(one.contains("    service!(shop_reviews, REVIEWS, migrated),\n    // just"));
    }

    /// The shop's own contract: the first five take 8080 to 8084.
    #[test]
    fn the_contracts_ports_are_read_from_its_descriptors() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
        let mut ports = crate::contract::ports(&root).expect("ports");
        ports.sort_unstable();
        assert_eq!(ports[..5], [8080, 8081, 8082, 8083, 8084]);
    }

    #[test]
    fn a_repository_that_is_not_the_shop_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(matches!(
            Repo::open(dir.path()),
            Err(RepoError::NotTheShop(_))
        ));
        assert_eq!(fs::read_dir(dir.path()).expect("read").count(), 0);
    }
}
