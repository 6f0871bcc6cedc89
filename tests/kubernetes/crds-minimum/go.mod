// The oldest versions of the CustomResourceDefinitions the manifests are
// meant to run on (deploy/README.md states them), pinned as crds/go.mod
// pins the current ones: tests/kubernetes/run.sh dry-runs every overlay
// against both. Not a program; nothing here is built.
module connect-shop.local/crds-minimum

go 1.24.0

require (
	// cert-manager: Certificate, Issuer (deploy/crds/)
	github.com/cert-manager/cert-manager v1.19.0
	// prometheus-operator: PodMonitor, PrometheusRule (example/prometheus-operator-crd/)
	github.com/prometheus-operator/prometheus-operator v0.68.0
	// Gateway API, standard channel: the first with BackendTLSPolicy v1 (config/crd/standard/)
	sigs.k8s.io/gateway-api v1.4.0
	// Envoy Gateway: BackendTrafficPolicy on a listener, with its request timeout
	github.com/envoyproxy/gateway v1.7.0
	// trust-manager: Bundle with ConfigMap and Secret targets
	github.com/cert-manager/trust-manager v0.25.0
)
