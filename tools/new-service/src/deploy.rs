//! Where the manifests (`deploy/kubernetes`) and the alerts
//! (`deploy/observability`) name each service, and how a new one is named
//! there. Everything else in them selects the services by label (every
//! Deployment of the shop's is `app.kubernetes.io/component: rpc-service`);
//! these are the places a label cannot reach: a Certificate, a Secret and
//! routes are per name, and Prometheus alerts on an absent job only by its
//! name. `tests/kubernetes/test_manifests.py` fails when one misses a
//! service.

use crate::{error::RepoError, name::Name, template};

/// One file's new text, and what changed in it.
pub struct Edit {
    pub path: &'static str,
    pub text: String,
    pub what: String,
}

const BASE: &str = "deploy/kubernetes/base/kustomization.yaml";
const CERTIFICATES: &str = "deploy/kubernetes/components/cert-manager/certificates.yaml";
const TLS_SECRETS: &str = "deploy/kubernetes/components/mtls/secrets.yaml";
const EDGE: &str = "deploy/kubernetes/components/gateway-api/edge.yaml";
/// Made from [`EDGE`] by deploy/kubernetes/ingresses.py: edited alike, and
/// `just kubernetes` checks the two agree.
const INGRESSES: &str = "deploy/kubernetes/components/ingress-nginx/ingresses.yaml";
const EXTERNAL_SECRET: &str = "deploy/kubernetes/examples/external-secret.yaml";
const MIGRATE_JOB: &str = "deploy/kubernetes/overlays/production/migrate-job.yaml";
const RULES: &str = "deploy/observability/rules.yaml";
/// Made from [`RULES`] by deploy/kubernetes/prometheus-rule.sh: edited
/// alike, and `just kubernetes` checks the two agree.
const PROMETHEUS_RULE: &str =
    "deploy/kubernetes/components/prometheus-operator/prometheus-rule.yaml";

/// The gateway is listed last in each list a new service joins.
const GATEWAY_FOLDER: &str = "  - gateway\n";
const GATEWAY_JOBS: &str = "|gateway\"";
const GATEWAY_ABSENT: &str = "absent(up{job=\"gateway\"})";
const BFF_SERVICE: &str = "|shop.bff.v1.WebBffService";
/// What the migration Job's database URLs go above.
const MIGRATE_MARK: &str = "            # The database's CA";

/// The new text of every file listing services, `name` listed in each;
/// `read` gives a file's current text.
pub fn edits(
    name: &Name,
    port: u16,
    read: impl Fn(&'static str) -> Result<String, RepoError>,
) -> Result<Vec<Edit>, RepoError> {
    let plural = &name.plural;
    let fragment = |text: &str| template::render(name, port, text);
    let rpc_service = name.render("shop.widgets.v1.WidgetService");
    let rules = |path: &'static str| -> Result<Edit, RepoError> {
        let text = read(path)?;
        let text = replace_all(
            path,
            &text,
            GATEWAY_JOBS,
            &format!("|{plural}{GATEWAY_JOBS}"),
        )?;
        let text = replace_all(
            path,
            &text,
            BFF_SERVICE,
            &format!("|{rpc_service}{BFF_SERVICE}"),
        )?;
        let text = absent_alert(path, &text, plural)?;
        Ok(Edit {
            path,
            text,
            what: format!(
                "its replicas watched (ShopServiceAbsent, ShopReplicaDown) and {rpc_service}'s objectives"
            ),
        })
    };
    Ok(vec![
        Edit {
            path: BASE,
            text: insert_before(
                BASE,
                &read(BASE)?,
                GATEWAY_FOLDER,
                &format!("  - {plural}\n"),
            )?,
            what: format!("its folder, base/{plural}, in the base"),
        },
        Edit {
            path: CERTIFICATES,
            text: read(CERTIFICATES)? + &fragment(template::CERTIFICATE),
            what: format!("its certificate, {plural}-tls"),
        },
        Edit {
            path: TLS_SECRETS,
            text: read(TLS_SECRETS)? + &fragment(template::TLS_SECRET),
            what: format!("its Deployment mounts {plural}-tls"),
        },
        Edit {
            path: EDGE,
            text: read(EDGE)? + &fragment(template::EDGE),
            what: "its routes at the edge (HTTP, gRPC) and TLS to it".to_owned(),
        },
        Edit {
            path: INGRESSES,
            text: read(INGRESSES)? + &fragment(template::INGRESS),
            what: "the same routes for ingress-nginx".to_owned(),
        },
        Edit {
            path: EXTERNAL_SECRET,
            text: read(EXTERNAL_SECRET)?
                + &format!(
                    "    - secretKey: {plural}-database-url\n      remoteRef: {{key: connect-shop/{plural}-database-url}}\n"
                ),
            what: "its database's URL in the example ExternalSecret".to_owned(),
        },
        Edit {
            path: MIGRATE_JOB,
            text: insert_before(
                MIGRATE_JOB,
                &read(MIGRATE_JOB)?,
                MIGRATE_MARK,
                &fragment(template::MIGRATE_ENV),
            )?,
            what: "the release's migration Job migrates its database".to_owned(),
        },
        rules(RULES)?,
        rules(PROMETHEUS_RULE)?,
    ])
}

fn unexpected(file: &'static str, what: &'static str) -> RepoError {
    RepoError::Unexpected { file, what }
}

/// `text` with `new` inserted before the one place `mark` is.
fn insert_before(
    file: &'static str,
    text: &str,
    mark: &'static str,
    new: &str,
) -> Result<String, RepoError> {
    let (before, after) = text.split_once(mark).ok_or(unexpected(file, mark))?;
    Ok(format!("{before}{new}{mark}{after}"))
}

/// `text` with every `old` replaced by `new`; `old` must be there.
fn replace_all(
    file: &'static str,
    text: &str,
    old: &'static str,
    new: &str,
) -> Result<String, RepoError> {
    if !text.contains(old) {
        return Err(unexpected(file, old));
    }
    Ok(text.replace(old, new))
}

/// The absent-job alert with `plural` asked for before the gateway, at the
/// gateway's indentation.
fn absent_alert(file: &'static str, text: &str, plural: &str) -> Result<String, RepoError> {
    let at = text
        .find(GATEWAY_ABSENT)
        .ok_or(unexpected(file, GATEWAY_ABSENT))?;
    let line_start = text[..at].rfind('\n').map_or(0, |newline| newline + 1);
    let indent = &text[line_start..at];
    Ok(format!(
        "{}{indent}absent(up{{job=\"{plural}\"}})\n{indent}or\n{}",
        &text[..line_start],
        &text[line_start..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES_TEXT: &str = "      - alert: ShopServiceAbsent\n        expr: |\n          sum by (job) (up{job=~\"users|gateway\"}) == 0\n          or\n          absent(up{job=\"users\"})\n          or\n          absent(up{job=\"gateway\"})\n        for: 5m\n      - record: shop:slo_calls:rate5m\n        expr: rate(x{service=~\"shop.users.v1.UserService|shop.bff.v1.WebBffService|shop.bff.v1.MobileBffService\"}[5m])\n";

    fn repo(path: &'static str) -> Result<String, RepoError> {
        Ok(match path {
            BASE => "resources:\n  - network-policy.yaml\n  - users\n  - gateway\n".to_owned(),
            MIGRATE_JOB => "          env:\n            - name: USERS_DATABASE_URL\n            # The database's CA (why).\n".to_owned(),
            RULES => RULES_TEXT.to_owned(),
            PROMETHEUS_RULE => RULES_TEXT.replace("\n", "\n  "),
            _ => "---\nkind: Other\n".to_owned(),
        })
    }

    fn edited(path: &str) -> String {
        let name = Name::parse("reviews", None).expect("a name");
        let edits = edits(&name, 8085, repo).expect("edits");
        edits
            .into_iter()
            .find(|edit| edit.path == path)
            .expect("edited")
            .text
    }

    #[test]
    fn the_base_lists_its_folder_before_the_gateway() {
        assert!(edited(BASE).ends_with("  - users\n  - reviews\n  - gateway\n"));
    }

    #[test]
    fn the_alerts_watch_its_job_and_its_objectives() {
        for path in [RULES, PROMETHEUS_RULE] {
            let text = edited(path);
            assert!(
                text.contains("up{job=~\"users|reviews|gateway\"}"),
                "{text}"
            );
            assert!(
                text.contains(
                    "UserService|shop.reviews.v1.ReviewService|shop.bff.v1.WebBffService"
                )
            );
            let indent = if path == RULES {
                "          "
            } else {
                "            "
            };
            assert!(
                text.contains(&format!(
                    "{indent}absent(up{{job=\"reviews\"}})\n{indent}or\n{indent}absent(up{{job=\"gateway\"}})"
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn the_components_name_its_certificate_secret_and_routes() {
        let certificate = edited(CERTIFICATES);
        assert!(certificate.starts_with("---\nkind: Other\n---\n"));
        assert!(certificate.contains("secretName: reviews-tls"));
        assert!(certificate.contains("- spiffe://connect-shop/reviews"));
        assert!(edited(TLS_SECRETS).contains("secretName: reviews-tls"));
        let edge = edited(EDGE);
        assert!(edge.contains("value: /shop.reviews.v1.ReviewService/WatchReviews"));
        assert!(edge.contains("service: shop.reviews.v1.ReviewService"));
        assert!(edge.contains("port: 8085"));
        assert!(!edge.contains("8099") && !edge.contains("widget"));
        let job = edited(MIGRATE_JOB);
        assert!(job.contains(
            "- name: REVIEWS_DATABASE_URL\n              valueFrom:\n                secretKeyRef: {name: connect-shop-secrets, key: reviews-database-url}\n            # The database's CA"
        ));
    }

    #[test]
    fn a_list_edited_out_of_shape_is_refused() {
        let name = Name::parse("reviews", None).expect("a name");
        let broken = |path: &'static str| {
            if path == MIGRATE_JOB {
                Ok("env: []\n".to_owned())
            } else {
                repo(path)
            }
        };
        assert!(matches!(
            edits(&name, 8085, broken),
            Err(RepoError::Unexpected {
                file: MIGRATE_JOB,
                ..
            })
        ));
    }
}
