// The CustomResourceDefinitions the manifests use, at pinned versions, from
// their projects' own Go modules (the go command checks each against
// go.sum): tests/kubernetes/run.sh installs them into the kube-apiserver
// before the server dry run. Not a program; nothing here is built.
module connect-shop.local/crds

go 1.24

require (
	// cert-manager: Certificate, Issuer (deploy/crds/)
	github.com/cert-manager/cert-manager v1.21.2
	// prometheus-operator: PodMonitor, PrometheusRule (example/prometheus-operator-crd/)
	github.com/prometheus-operator/prometheus-operator v0.85.0
	// Gateway API, standard channel: Gateway, HTTPRoute, GRPCRoute, BackendTLSPolicy (config/crd/standard/)
	sigs.k8s.io/gateway-api v1.6.3
	// Envoy Gateway: BackendTrafficPolicy (its Helm chart's CRDs)
	github.com/envoyproxy/gateway v1.9.1
	// trust-manager: Bundle (deploy/crds/)
	github.com/cert-manager/trust-manager v0.25.0
)
