//! Each service as the shop runs it, as its contract describes it: the
//! file option `kit.policy.v1.deployment` of its package (its port,
//! whether it keeps a database and publishes events, the services it
//! calls). Read here for the build, which checks the names and ports
//! against the contract's services and hands them to the launcher.

use std::collections::BTreeMap;

use prost_reflect::{DescriptorPool, DynamicMessage, Value};

/// The option's full name.
pub const DEPLOYMENT_EXTENSION: &str = "kit.policy.v1.deployment";

/// One service as its contract describes it (see the module).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deployment {
    /// Its port unless told otherwise.
    pub port: u16,
    /// Whether it keeps a database of its own.
    pub database: bool,
    /// Whether it publishes and reads events.
    pub events: bool,
    /// The services it calls, each once, in the order written.
    pub calls: Vec<String>,
}

/// Why a package's description cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    #[error("{package}: kit.policy.v1.deployment is given in {first} and {second}: say it once")]
    Twice {
        package: String,
        first: String,
        second: String,
    },
    #[error("{package}: kit.policy.v1.deployment's port {port} is no port (1 to 65535)")]
    NoPort { package: String, port: u32 },
}

/// Each package whose files describe their service, with that
/// description.
pub fn declared_deployments(
    pool: &DescriptorPool,
) -> Result<BTreeMap<String, Deployment>, DeploymentError> {
    let mut found: BTreeMap<String, (String, Deployment)> = BTreeMap::new();
    let Some(extension) = pool.get_extension_by_name(DEPLOYMENT_EXTENSION) else {
        // The contract never imported the options: nothing declared.
        return Ok(BTreeMap::new());
    };
    for file in pool.files() {
        let options = file.options();
        if !options.has_extension(&extension) {
            continue;
        }
        let value = options.get_extension(&extension);
        let Value::Message(declared) = value.as_ref() else {
            continue;
        };
        let package = file.package_name().to_owned();
        let deployment = read(&package, declared)?;
        if let Some((first, _)) = found.get(&package) {
            return Err(DeploymentError::Twice {
                package,
                first: first.clone(),
                second: file.name().to_owned(),
            });
        }
        found.insert(package, (file.name().to_owned(), deployment));
    }
    Ok(found
        .into_iter()
        .map(|(package, (_, deployment))| (package, deployment))
        .collect())
}

fn read(package: &str, declared: &DynamicMessage) -> Result<Deployment, DeploymentError> {
    let field = |name: &str| declared.get_field_by_name(name);
    let port = field("port").and_then(|port| port.as_u32()).unwrap_or(0);
    let flag = |name: &str| {
        field(name)
            .and_then(|value| value.as_bool())
            .unwrap_or(false)
    };
    let mut calls: Vec<String> = Vec::new();
    let written = field("calls")
        .and_then(|calls| {
            calls.as_list().map(|list| {
                list.iter()
                    .filter_map(|name| name.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default();
    for name in written {
        if !calls.contains(&name) {
            calls.push(name);
        }
    }
    Ok(Deployment {
        port: u16::try_from(port)
            .ok()
            .filter(|&port| port > 0)
            .ok_or_else(|| DeploymentError::NoPort {
                package: package.to_owned(),
                port,
            })?,
        database: flag("database"),
        events: flag("events"),
        calls,
    })
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    fn declared(option: &str) -> Result<BTreeMap<String, Deployment>, DeploymentError> {
        let set = crate::testing::descriptor_set(
            "shop/reviews/v1/reviews.proto",
            &format!(
                r#"syntax = "proto3";
package shop.reviews.v1;
import "kit/policy/v1/policy.proto";
option (kit.policy.v1.deployment) = {{ {option} }};
message Nothing {{}}
"#
            ),
        );
        declared_deployments(&crate::descriptors(&set).expect("descriptors"))
    }

    #[test]
    fn a_packages_description_is_read_its_peers_once_each() {
        let found = declared(
            r#"port: 8085 database: true events: true calls: ["catalog", "users", "catalog"]"#,
        )
        .expect("read");
        assert_eq!(
            found.get("shop.reviews.v1"),
            Some(&Deployment {
                port: 8085,
                database: true,
                events: true,
                calls: vec!["catalog".to_owned(), "users".to_owned()],
            })
        );
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn a_description_without_a_port_is_refused() {
        assert_eq!(
            declared("database: true"),
            Err(DeploymentError::NoPort {
                package: "shop.reviews.v1".to_owned(),
                port: 0
            })
        );
        assert!(matches!(
            declared("port: 70000"),
            Err(DeploymentError::NoPort { port: 70000, .. })
        ));
    }
}
