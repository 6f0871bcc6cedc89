#!/usr/bin/env bash
# Writes components/prometheus-operator/prometheus-rule.yaml, the
# PrometheusRule that carries deploy/observability/rules.yaml (its groups,
# unchanged) to prometheus-operator; with --check, says whether the file is
# current instead (`just kubernetes` runs it so).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rules="$here/../observability/rules.yaml"
out="$here/components/prometheus-operator/prometheus-rule.yaml"

render() {
  cat <<'YAML'
# Made from deploy/observability/rules.yaml by deploy/kubernetes/prometheus-rule.sh:
# edit that file, then run the script (`just kubernetes` checks this is current).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: connect-shop
spec:
YAML
  # The rule file minus its leading comment, one level in.
  sed -n '/^groups:/,$p' "$rules" | sed 's/^/  /; s/^ *$//'
}

if [ "${1:-}" = "--check" ]; then
  if ! diff -u "$out" <(render) >/dev/null; then
    echo "$out is not what deploy/observability/rules.yaml gives: run deploy/kubernetes/prometheus-rule.sh" >&2
    exit 1
  fi
  echo "    prometheus-rule.yaml is current with rules.yaml"
else
  render >"$out"
  echo "wrote $out"
fi
