//! The template: a service named `widgets` on port 8099, written as the
//! shop's own services are (`template/`), which [`render`] renames and
//! gives its port.

use crate::name::Name;

/// The port the template's manifests give the service.
const PORT: &str = "8099";

/// `text` for the service `name` on `port`: the template's names and its
/// port replaced word by word (`crate::rewrite`).
pub fn render(name: &Name, port: u16, text: &str) -> String {
    crate::rewrite::words(&name.render(text), |word| {
        (word == PORT).then(|| port.to_string())
    })
}

/// Each file of the template: its path in the repository and its text.
pub const FILES: &[(&str, &str)] = &[
    (
        "proto/shop/widgets/v1/widgets.proto",
        include_str!("../template/proto/shop/widgets/v1/widgets.proto"),
    ),
    (
        "services/widgets/Cargo.toml",
        include_str!("../template/services/widgets/Cargo.toml.tmpl"),
    ),
    (
        "services/widgets/src/lib.rs",
        include_str!("../template/services/widgets/src/lib.rs"),
    ),
    (
        "services/widgets/src/api.rs",
        include_str!("../template/services/widgets/src/api.rs"),
    ),
    (
        "services/widgets/src/catalog.rs",
        include_str!("../template/services/widgets/src/catalog.rs"),
    ),
    (
        "services/widgets/src/flags.rs",
        include_str!("../template/services/widgets/src/flags.rs"),
    ),
    (
        "services/widgets/src/domain.rs",
        include_str!("../template/services/widgets/src/domain.rs"),
    ),
    (
        "services/widgets/src/error.rs",
        include_str!("../template/services/widgets/src/error.rs"),
    ),
    (
        "services/widgets/src/events.rs",
        include_str!("../template/services/widgets/src/events.rs"),
    ),
    (
        "services/widgets/src/feed.rs",
        include_str!("../template/services/widgets/src/feed.rs"),
    ),
    (
        "services/widgets/src/migration.rs",
        include_str!("../template/services/widgets/src/migration.rs"),
    ),
    (
        "services/widgets/src/store.rs",
        include_str!("../template/services/widgets/src/store.rs"),
    ),
    (
        "services/widgets/tests/widgets.rs",
        include_str!("../template/services/widgets/tests/widgets.rs"),
    ),
    (
        "deploy/kubernetes/base/widgets/kustomization.yaml",
        include_str!("../template/deploy/kubernetes/base/widgets/kustomization.yaml"),
    ),
    (
        "deploy/kubernetes/base/widgets/deployment.yaml",
        include_str!("../template/deploy/kubernetes/base/widgets/deployment.yaml"),
    ),
    (
        "deploy/kubernetes/base/widgets/service.yaml",
        include_str!("../template/deploy/kubernetes/base/widgets/service.yaml"),
    ),
    (
        "deploy/kubernetes/base/widgets/pdb.yaml",
        include_str!("../template/deploy/kubernetes/base/widgets/pdb.yaml"),
    ),
    (
        "deploy/kubernetes/base/widgets/hpa.yaml",
        include_str!("../template/deploy/kubernetes/base/widgets/hpa.yaml"),
    ),
    (
        "deploy/kubernetes/base/widgets/network-policy.yaml",
        include_str!("../template/deploy/kubernetes/base/widgets/network-policy.yaml"),
    ),
];

/// What the components add per service (`crate::deploy` says where).
pub const CERTIFICATE: &str =
    include_str!("../template/deploy/kubernetes/fragments/certificate.yaml");
pub const TLS_SECRET: &str =
    include_str!("../template/deploy/kubernetes/fragments/tls-secret.yaml");
pub const EDGE: &str = include_str!("../template/deploy/kubernetes/fragments/edge.yaml");
/// `EDGE`'s routes for ingress-nginx, as deploy/kubernetes/ingresses.py
/// makes them (`ingresses.py --from fragments/edge.yaml`; `just
/// kubernetes` checks the two agree once a service is added).
pub const INGRESS: &str = include_str!("../template/deploy/kubernetes/fragments/ingress.yaml");
pub const MIGRATE_ENV: &str =
    include_str!("../template/deploy/kubernetes/fragments/migrate-env.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_widget_of_the_template_is_a_word_the_name_replaces() {
        let name = Name::parse("reviews", None).expect("a name");
        for (path, text) in FILES {
            let rendered = render(&name, 8123, text).to_ascii_lowercase();
            assert!(
                !rendered.contains("widget") && !rendered.contains("8099"),
                "{path}: a widget or 8099 inside a word, which renaming by words leaves"
            );
        }
    }

    /// A file added to template/ and not to [`FILES`] would be left out
    /// of every new service: each one under its services/, proto/ and
    /// base/ folders is listed (the fragments are spliced, not copied).
    #[test]
    fn every_file_of_the_template_is_listed() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("the template") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    walk(&path, found);
                } else {
                    found.push(path.to_string_lossy().into_owned());
                }
            }
        }
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/template/");
        let mut found = Vec::new();
        walk(std::path::Path::new(root), &mut found);
        for path in found {
            let relative = path.trim_start_matches(root).replace(".toml.tmpl", ".toml");
            if relative.starts_with("deploy/kubernetes/fragments/") {
                continue;
            }
            assert!(
                FILES.iter().any(|(listed, _)| *listed == relative),
                "template/{relative} is not in template::FILES"
            );
        }
    }

    #[test]
    fn only_the_contract_and_the_manifests_name_the_port() {
        for (path, text) in FILES {
            assert!(
                !text.contains(PORT) || path.starts_with("deploy/") || path.starts_with("proto/"),
                "{path}"
            );
        }
        for fragment in [CERTIFICATE, TLS_SECRET, MIGRATE_ENV] {
            assert!(!fragment.contains(PORT));
        }
        assert!(EDGE.contains(PORT));
    }
}
