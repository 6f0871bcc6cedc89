#!/usr/bin/env bash
# Prints the Secrets components/mtls mounts, `<service>-tls`, from the files
# `shop certs DIR` wrote:
#   shop certs certs --name shop.example.com
#   deploy/kubernetes/tls-secrets.sh certs | kubectl apply -n connect-shop -f -
set -euo pipefail
dir=${1:?usage: tls-secrets.sh DIR (written by shop certs DIR)}
[ -f "$dir/ca.pem" ] || { echo "no $dir/ca.pem: run shop certs $dir first" >&2; exit 2; }
for service in users catalog orders payments gateway; do
  echo "---"
  kubectl create secret generic "$service-tls" --dry-run=client -o yaml \
    --from-file=tls.crt="$dir/$service.pem" --from-file=tls.key="$dir/$service-key.pem" \
    --from-file=ca.crt="$dir/ca.pem" \
    --from-file=client.crt="$dir/$service-client.pem" --from-file=client.key="$dir/$service-client-key.pem"
done
