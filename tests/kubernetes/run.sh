#!/usr/bin/env bash
# `just kubernetes`: the manifests in deploy/kubernetes checked against a
# real kube-apiserver: `kubectl kustomize` for every overlay, then
# `kubectl apply --dry-run=server` of each (the server runs its admission
# and validation: selectors that miss their labels, ports out of range,
# PDBs with both bounds...). etcd is Debian's; kube-apiserver is built once
# from its Go module (build-apiserver.sh) into a cache outside the clone.
# A manifest known to be wrong must be refused, or the check proves nothing.
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

echo "==> kubectl kustomize"
for overlay in "$root"/deploy/kubernetes/overlays/*/; do
  name=$(basename "$overlay")
  kinds=$(kubectl kustomize "$overlay" | grep -c '^kind:')
  echo "    $name: $kinds objects"
done

echo "==> production: mutual TLS wired (components/mtls)"
production=$(kubectl kustomize "$root/deploy/kubernetes/overlays/production")
https_probes=$(grep -c 'scheme: HTTPS' <<<"$production" || true)
secrets=$(grep -cE 'secretName: (users|catalog|orders|payments|gateway)-tls' <<<"$production" || true)
tls_env=$(grep -cE 'name: SHOP_TLS_(CERT|KEY|CLIENT_CA|REQUIRE_SERVICE_CERT|CA|CLIENT_CERT|CLIENT_KEY)$' <<<"$production" || true)
echo "    $https_probes HTTPS probes, $secrets Secrets mounted, $tls_env TLS variables"
if [ "$https_probes" -ne 15 ] || [ "$secrets" -ne 5 ] || [ "$tls_env" -ne 35 ]; then
  echo "    expected 15 HTTPS probes, 5 Secrets and 35 TLS variables (5 Deployments)" >&2
  exit 1
fi

echo "==> production: traces wired (components/traces)"
collectors=$(grep -cE '^  name: otel-collector$' <<<"$production" || true)
otel_env=$(grep -cE '^  OTEL_(EXPORTER_OTLP_ENDPOINT|TRACES_SAMPLER|TRACES_SAMPLER_ARG): ' <<<"$production" || true)
echo "    $collectors Collector objects (ConfigMap, Deployment, Service), $otel_env OTEL_* settings"
if [ "$collectors" -ne 3 ] || [ "$otel_env" -ne 3 ]; then
  echo "    expected the Collector's ConfigMap, Deployment and Service, and the endpoint and sampler in shop-config" >&2
  exit 1
fi

apiserver=$("$here/build-apiserver.sh")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

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

# Dry runs create nothing, so the namespace the overlays use must exist.
kube create namespace connect-shop --save-config >/dev/null
status=0
for overlay in "$root"/deploy/kubernetes/overlays/*/; do
  echo "==> kubectl apply --dry-run=server -k deploy/kubernetes/overlays/$(basename "$overlay")"
  if ! kube apply --dry-run=server -k "$overlay" 2>&1 | sed 's/^/    /'; then
    status=1
  fi
done

echo "==> the Secrets components/mtls mounts, from shop certs' file names (tls-secrets.sh)"
mkdir -p "$work/certs"
for file in ca.pem; do echo placeholder >"$work/certs/$file"; done
for service in users catalog orders payments gateway; do
  for file in "$service.pem" "$service-key.pem" "$service-client.pem" "$service-client-key.pem"; do
    echo placeholder >"$work/certs/$file"
  done
done
if ! "$root/deploy/kubernetes/tls-secrets.sh" "$work/certs" | kube apply --dry-run=server -n connect-shop -f - 2>&1 | sed 's/^/    /'; then
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
exit $status
