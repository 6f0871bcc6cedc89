#!/usr/bin/env bash
# `just kubernetes`: the manifests in deploy/kubernetes, checked as far as
# this machine can (no container runs here, so no cluster; deploy/README.md
# says what is left unchecked):
#
# 1. `kubectl kustomize` of every overlay and of production with each edge
#    (envoy-gateway, istio, ingress-nginx); the PrometheusRule current with
#    deploy/observability/rules.yaml and ingress-nginx's Ingresses with
#    Gateway API's routes;
# 2. the rendered overlays read by tests/kubernetes/test_manifests.py
#    (pytest): who reaches whom from the NetworkPolicies (netpol-analyzer,
#    built once from tests/kubernetes/netpol), rollouts, the edge's routes
#    and TLS, certificates, NATS, metrics, the platform settings; and NATS
#    reloading a renewed certificate (test_nats_reload.py: Debian's
#    nats-server and the reloader, built once from tests/kubernetes/nats-reloader);
# 3. `kubectl apply --dry-run=server` of each overlay against a real
#    kube-apiserver (built once from its Go module, build-apiserver.sh) and
#    Debian's etcd, with the CustomResourceDefinitions of cert-manager,
#    Gateway API, prometheus-operator, Envoy Gateway and trust-manager
#    installed at the minimum versions (tests/kubernetes/crds-minimum/go.mod),
#    then at the current ones (tests/kubernetes/crds/go.mod), and the
#    namespace's Pod Security labels live: a warning fails. Production with
#    each edge, the ingress-nginx one with no Gateway API CRD installed; and
#    Istio's gateway pod, with and without the shop's options. Manifests
#    known to be wrong must be refused, or the check proves nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

need() {
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1 is missing: apt-get install $2" >&2
    exit 2
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need kubectl kubernetes-client
need etcd etcd-server
need openssl openssl
command -v go >/dev/null || {
  echo "go is missing: the analyzer, kube-apiserver and the CRDs come from Go modules" >&2
  exit 2
}

# Production with another edge: a copy of deploy/kubernetes whose
# production overlay names that edge's component (the one line an operator
# changes). Prints the copy's overlay.
with_edge() {
  local copy=$work/edges/$1
  if [ ! -d "$copy" ]; then
    mkdir -p "$copy"
    cp -r "$root/deploy/kubernetes/." "$copy/"
    sed -i "s|^  - ../../components/envoy-gateway\$|  - ../../components/$1|" "$copy/overlays/production/kustomization.yaml"
    grep -q "components/$1\$" "$copy/overlays/production/kustomization.yaml"
  fi
  echo "$copy/overlays/production"
}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
EDGES=(envoy-gateway istio ingress-nginx)

echo "==> kubectl kustomize"
for overlay in "$root"/deploy/kubernetes/overlays/*/; do
  name=$(basename "$overlay")
  kinds=$(kubectl kustomize "$overlay" | grep -c '^kind:')
  echo "    $name: $kinds objects"
done
for edge in "${EDGES[@]}"; do
  kinds=$(kubectl kustomize "$(with_edge "$edge")" | grep -c '^kind:')
  echo "    production with $edge: $kinds objects"
done
"$root/deploy/kubernetes/prometheus-rule.sh" --check

echo "==> the rendered manifests (tests/kubernetes/test_manifests.py)"
analyzer=$("$here/build-netpol-analyzer.sh")
# (KUBERNETES_VENV: one made before, as just new-service-check's copy uses.)
venv=${KUBERNETES_VENV:-$here/.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" "$root/deploy/kubernetes/edge_routes.py" --check
"$venv/bin/python" "$root/deploy/kubernetes/ingresses.py" --check
need nats-server nats-server
reloader=$("$here/build-nats-reloader.sh")
NETPOL_ANALYZER="$analyzer" NATS_RELOADER="$reloader" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$here/test_manifests.py" "$here/test_nats_reload.py"

apiserver=$("$here/build-apiserver.sh")

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
etcd_port=$(port)
api_port=$(port)

etcd --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$(port)" >"$work/etcd.log" 2>&1 &
pids+=($!)

openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null
token=$(openssl rand -hex 16)
echo "$token,admin,admin,system:masters" >"$work/tokens.csv"

"$apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --secure-port "$api_port" \
  --cert-dir "$work/certs" \
  --token-auth-file "$work/tokens.csv" \
  --authorization-mode AlwaysAllow \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$work/sa.pub" \
  --service-account-signing-key-file "$work/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  >"$work/apiserver.log" 2>&1 &
pids+=($!)

kube() { kubectl --server "https://127.0.0.1:$api_port" --insecure-skip-tls-verify --token "$token" "$@"; }
echo "==> kube-apiserver $("$apiserver" --version | awk '{print $2}') on 127.0.0.1:$api_port, etcd $(etcd --version | awk '/etcd Version/ {print $3}')"
for _ in $(seq 1 120); do
  kube get --raw /readyz >/dev/null 2>&1 && break
  sleep 0.5
done
if ! kube get --raw /readyz >/dev/null 2>&1; then
  echo "kube-apiserver did not get ready; its log:" >&2
  tail -20 "$work/apiserver.log" >&2
  exit 1
fi

# The CRDs the overlays use, from their projects' own modules at the
# versions a go.mod pins (checked against its go.sum), installed for real:
# first the oldest the manifests are meant for (crds-minimum/go.mod, the
# minimums deploy/README.md states), then the current ones (crds/go.mod);
# every overlay is dry-run against each.
# Each: the module, its folders of CRDs (the first that exists: projects
# move them between versions), and which of its files (all by default).
# `install_crds PINS without-gateway-api` leaves Gateway API's out, as a
# cluster with only ingress-nginx has none.
install_crds() {
  local pins=$here/$1
  kube delete crd --all --wait=true >/dev/null 2>&1 || true
  echo "==> CustomResourceDefinitions (tests/kubernetes/$1/go.mod${2:+, $2})"
  for crds in \
    "github.com/cert-manager/cert-manager deploy/crds" \
    "github.com/prometheus-operator/prometheus-operator example/prometheus-operator-crd" \
    "sigs.k8s.io/gateway-api config/crd/standard" \
    "github.com/envoyproxy/gateway charts/gateway-helm/crds/generated|charts/gateway-helm/charts/crds/crds/generated gateway.envoyproxy.io_backendtrafficpolicies.yaml" \
    "github.com/cert-manager/trust-manager deploy/crds trust.cert-manager.io_bundles.yaml"; do
    read -r module folders only <<<"$crds"
    if [ "${2:-}" = without-gateway-api ] && [ "$module" = sigs.k8s.io/gateway-api ]; then
      continue
    fi
    version=$(sed -n "s|^\t$module \(v[^ ]*\)\$|\1|p" "$pins/go.mod")
    dir=$(cd "$pins" && go mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    folder=
    for candidate in ${folders//|/ }; do
      [ -n "$dir" ] && [ -d "$dir/$candidate" ] && { folder=$candidate; break; }
    done
    [ -n "$folder" ] || { echo "no $folders in $module@$version" >&2; exit 1; }
    count=0
    for file in "$dir/$folder"/${only:-*.yaml}; do
      grep -q '^kind: CustomResourceDefinition' "$file" || continue
      kube apply --server-side --field-manager=shop-test -f "$file" >/dev/null
      count=$((count + 1))
    done
    echo "    $module $version: $count from $folder"
  done
  kube wait --for condition=established --timeout=60s crd --all >/dev/null
}

# Dry runs create nothing: the namespace must exist, with the overlays'
# Pod Security labels, for the server to judge the pods against them.
kube apply -f "$root/deploy/kubernetes/overlays/production/namespace.yaml" >/dev/null
# (No controller manager runs here to give it its default service account.)
kube create serviceaccount default -n connect-shop >/dev/null
status=0
dry_run() {
  local what=$1 overlay=$2
  echo "==> kubectl apply --dry-run=server -k $what"
  if ! kube apply --dry-run=server -k "$overlay" >"$work/applied.txt" 2>&1; then
    status=1
  fi
  grep -v ' (server dry run)$' "$work/applied.txt" | sed 's/^/    /' || true
  echo "    $(grep -c ' (server dry run)$' "$work/applied.txt" || true) objects accepted"
  if grep -qi 'warning' "$work/applied.txt"; then
    echo "    the server warned (above): a warning fails here" >&2
    status=1
  fi
}
for pins in crds-minimum crds; do
  install_crds "$pins"
  for overlay in "$root"/deploy/kubernetes/overlays/*/; do
    dry_run "deploy/kubernetes/overlays/$(basename "$overlay") ($pins)" "$overlay"
  done
  dry_run "production with the istio edge ($pins)" "$(with_edge istio)"
  install_crds "$pins" without-gateway-api
  dry_run "production with the ingress-nginx edge, no Gateway API CRDs ($pins)" "$(with_edge ingress-nginx)"
done

# Istio makes the Gateway's proxy itself: a Deployment shaped as its
# gateway template makes one (its securityContext as Istio sets it), which
# the restricted namespace must refuse as Istio leaves it and admit with
# the shop's options (components/istio/gateway-options.yaml) merged in, as
# Istio merges them.
echo "==> Istio's gateway pod in the shop's namespace, with the shop's options"
options=$(kubectl kustomize "$(with_edge istio)" | "$venv/bin/python" -c '
import sys, yaml
for doc in yaml.safe_load_all(sys.stdin):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "shop-gateway-options":
        print(doc["data"]["deployment"])
')
# (A Deployment is admitted either way; the standard's verdict on its pods
# comes as a warning, and the pods it would make are refused.)
kube apply --dry-run=server -f "$here/istio-gateway-pod.yaml" >"$work/refused.txt" 2>&1 || true
if grep -q 'violate PodSecurity "restricted' "$work/refused.txt"; then
  sed 's/^/    as Istio leaves it: /' "$work/refused.txt" | head -1
else
  echo "    no objection to Istio's pod as it leaves it: the check proves nothing" >&2
  cat "$work/refused.txt" >&2
  status=1
fi
kubectl patch --local -f "$here/istio-gateway-pod.yaml" --type strategic -p "$options" -o yaml >"$work/istio-pod.yaml"
if kube apply --dry-run=server -f "$work/istio-pod.yaml" >"$work/applied.txt" 2>&1 && ! grep -qi warning "$work/applied.txt"; then
  echo "    admitted with them: $(cat "$work/applied.txt")"
else
  echo "    refused with the shop's options:" >&2
  cat "$work/applied.txt" >&2
  status=1
fi

echo "==> a PodDisruptionBudget with both bounds must be refused"
if kube apply --dry-run=server -f - >"$work/refused.txt" 2>&1 <<'YAML'
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: both-bounds, namespace: connect-shop}
spec:
  minAvailable: 1
  maxUnavailable: 1
  selector: {matchLabels: {app.kubernetes.io/name: catalog}}
YAML
then
  echo "    accepted: this server does not validate, the check above proves nothing" >&2
  status=1
else
  sed 's/^/    refused: /' "$work/refused.txt" | head -3
fi

echo "==> a pod breaking the restricted Pod Security Standard must be refused"
if kube apply --dry-run=server -f - >"$work/refused.txt" 2>&1 <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: runs-as-root, namespace: connect-shop}
spec:
  containers:
    - name: root
      image: registry.example.com/connect-shop:0.1.0
      securityContext: {runAsUser: 0}
YAML
then
  echo "    accepted: the namespace does not enforce the standard" >&2
  status=1
elif ! grep -q 'violates PodSecurity "restricted' "$work/refused.txt"; then
  echo "    refused, but not by Pod Security:" >&2
  cat "$work/refused.txt" >&2
  status=1
else
  sed 's/^/    refused: /' "$work/refused.txt" | head -2
fi

echo "==> a Certificate without an issuer must be refused (the CRDs validate)"
if kube apply --dry-run=server -f - >"$work/refused.txt" 2>&1 <<'YAML'
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: no-issuer, namespace: connect-shop}
spec:
  secretName: no-issuer
  dnsNames: [example.com]
YAML
then
  echo "    accepted: the CRDs do not validate, the check above proves nothing" >&2
  status=1
else
  sed 's/^/    refused: /' "$work/refused.txt" | head -2
fi
exit $status
