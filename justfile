# connect-shop recipes. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

buf := "tests/interop/node_modules/.bin/buf"

# Start the whole shop (every service, demo data, http://127.0.0.1:8082 ...)
run *ARGS:
    cargo run --release -- {{ARGS}}

# The workspace tests (the README's test command)
test:
    cargo test --workspace

# The same tests on a real PostgreSQL (SHOP_TEST_DATABASE_URL, or a local one set up as root)
test-postgres:
    tests/postgres/run.sh

# The event tests on a real NATS JetStream (installs Debian's nats-server as root)
test-nats:
    tests/nats/run.sh

# Build the browser app into web-client/dist, for `shop --web-dir web-client/dist` (cargo builds it into the binary anyway)
web:
    cd web-client && npm install --no-audit --no-fund --loglevel=error && npm run build

# The browser app's unit tests (vitest: cart, session refresh, error messages)
web-test:
    cd web-client && npm install --no-audit --no-fund --loglevel=error && npm test

# The shop behind real proxies (Debian's nginx and HAProxy, installed as root if missing): the client's address from the one header the edge writes, whatever a client forges (sign-in throttle, gateway limits, logs), and streams that outlive a 35 s read timeout
edge:
    tests/edge/run.sh

# The test binaries with tests of timing behaviour, RUNS times in a row (20) while two busy loops keep both cores busy: every run must pass (docs/testing.md)
timing RUNS="20":
    tests/timing/run.sh {{RUNS}}

# The shopper's journey in Chromium (playwright-core; Debian's chromium), screenshots in tests/e2e/screenshots
e2e:
    tests/e2e/run.sh

# The dependency policy (deny.toml) by cargo-deny: licenses, sources, banned crates, the budget of duplicate versions; RustSec's advisories where its database can be fetched (docs/dependencies.md)
deny:
    tools/deny.sh

# fmt, clippy (warnings are errors) and buf lint
lint: tools
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd tests/conformance && cargo fmt -- --check && cargo clippy --all-targets -- -D warnings
    cd proto && ../{{buf}} lint
    cd bench/proto && ../../{{buf}} lint

# The contract's v1 baseline: the commit that took v1's one breaking change
# (CHANGELOG.md). Every later change must be compatible with it.
contract_v1 := "1ba35ed83ad5efc0ed883f4fd7cc7ef02b2a64e7"

# buf breaking against the v1 baseline (or another git ref, e.g. main): the shop's own protos (--path shop; the vendored modules are others' and the baseline has fewer of them)
breaking REF=contract_v1: tools
    cd proto && ../{{buf}} breaking --against '../.git#ref={{REF}},subdir=proto' --path shop

# Every RPC's call policy (who may call, deadline, retries, hedging, rate class) from the contract's kit.policy.v1 options, as docs/contract.md's table
policy *ARGS:
    cargo run -q -- policy {{ARGS}}

# Write that table, and the public RPCs' REST routes, into docs/contract.md (cargo test fails while either is stale)
policy-docs:
    cargo run -q -- policy --update docs/contract.md

# Every artefact written from the contract, written again: the OpenAPI document (just openapi), docs/contract.md's call policy and REST routes (just policy-docs) and the edge's routes (just edge-routes); CI fails naming the one that is stale (just openapi-check, cargo test, just kubernetes)
contract: openapi policy-docs edge-routes

# The contract's paths in the edge's routes (deploy/kubernetes/edge_routes.py writes them into components/gateway-api/edge.yaml), then ingress-nginx's routes made from that file
edge-routes: tools
    #!/usr/bin/env bash
    set -euo pipefail
    python3 deploy/kubernetes/edge_routes.py
    venv=${KUBERNETES_VENV:-tests/kubernetes/.venv}
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/kubernetes/requirements.txt
    "$venv/bin/python" deploy/kubernetes/ingresses.py

# The OpenAPI 3.1 document of the public API (openapi/openapi.json) from the protos: Connect paths and REST routes (the generator is built once into ~/.cache/connect-shop/tools)
openapi: tools
    openapi/generate.sh

# openapi/openapi.json is what the protos give (else: just openapi) and valid OpenAPI 3.1 (openapi-spec-validator)
openapi-check: tools
    openapi/generate.sh --check
    [ -x openapi/.venv/bin/python ] || python3 -m venv openapi/.venv
    openapi/.venv/bin/pip install --quiet --disable-pip-version-check -r openapi/requirements.txt
    openapi/.venv/bin/openapi-spec-validator openapi/openapi.json

# schemathesis against the launched shop from openapi/openapi.json: every public operation over Connect and REST, no server error, every answer as documented (EXAMPLES per operation, default 30)
schemathesis EXAMPLES="30":
    openapi/schemathesis.sh {{EXAMPLES}}

# Format the Rust code
fmt:
    cargo fmt --all

# The shop with Jaeger (traces) and Prometheus (metrics, alert rules) beside it, on this machine; prints their URLs
observe *ARGS:
    deploy/observability/observe.sh {{ARGS}}

# The Prometheus recording and alert rules: promtool check rules, then their unit tests
observe-rules:
    promtool check rules deploy/observability/rules.yaml
    cd deploy/observability && promtool test rules rules-test.yaml

# A customer's visit (the web home, then an order) as one trace from a real Jaeger (built once into ~/.cache/connect-shop/tools), printed as a tree: spans of every service paired, parents right, across a kill -9
trace-test:
    tests/observe/trace-test.sh

# Real third-party clients (buf curl, connect-node, grpcio) against the launched shop
interop:
    tests/interop/run.sh

# A new service of your own (NAME: one lower-case word, the plural of what it keeps, e.g. reviews; `--singular WORD` when it is no regular plural: inventory --singular item): its contract, crate, migrations and tests, served by the shop, its manifests and alerts, its operations in the OpenAPI document, its policy in docs/contract.md (docs/new-service.md)
new-service NAME *ARGS: tools
    cargo run --quiet -p shop-new-service -- {{NAME}} {{ARGS}}
    @echo "new-service: the artefacts written from the contract, again (just contract): its operations into the OpenAPI document and /api, its call policy and REST routes into docs/contract.md, its paths into the edge's routes"
    just contract

# What `just new-service` gives, end to end in a copy of this commit (NAME and the generator's options, e.g. inventory --singular item): written, linted, tested, the shop started with it and called over Connect, gRPC, gRPC-Web and REST, its OpenAPI operations, its manifests checked (just kubernetes); the time it took
new-service-check NAME="reviews" *ARGS:
    tests/new-service/run.sh {{NAME}} {{ARGS}}

# The official Connect conformance suite against the kit's server (needs Go); one config or all
conformance *CONFIGS:
    tests/conformance/run.sh {{CONFIGS}}

# The same suite in client mode against the kit's client stack (needs Go): plain, then with retries and hedging forced on for every method; one run or all (docs/conformance.md)
conformance-client *RUNS:
    tests/conformance/run.sh --client {{RUNS}}

# Benchmarks: our stack against bare axum, tonic, connect-rust, connect-go, connect-node, then the launched shop, then TLS beside h2c; rewrites docs/benchmarks.md (`just bench tls` runs only the TLS suite; `just bench --help`)
bench *ARGS:
    bench/run.sh {{ARGS}}

# Instructions per request of one echo server (bare, kit, library or tonic; connect, json or grpc; traces off or a share of calls traced, e.g. 0.01), or per call of one client (caller-kit, caller-tonic, caller-h2; grpc) under callgrind: repeatable, for A/B of two builds
bench-instructions KIND="kit" PROTOCOL="connect" TRACES="off":
    bench/instructions.sh {{KIND}} {{PROTOCOL}} {{TRACES}}

# What tracing costs the kit's call, in instructions (callgrind, deterministic): traces off, 1% (as shipped) and every call, then both with the dashboard's rings, in one run; fails over 1.05x and 1.15x an untraced call, with the rings as without (CI runs it)
bench-tracing PROTOCOL="connect":
    bench/tracing-cost.sh {{PROTOCOL}}

# The benchmark harness in seconds (what CI runs): every server, protocol and app scenario once, briefly
bench-smoke:
    bench/run.sh --smoke

# Orders under fire: a process per service, customers ordering, a nemesis killing (-9) and pausing (SIGSTOP) services, then the invariants; `just chaos --help` for seed, duration, faults
chaos *ARGS:
    cargo build --release -p shop -p shop-bench
    "${CARGO_TARGET_DIR:-target}/release/shop-chaos" {{ARGS}}

# Overload: the embedded shop (the dist build, what ships) offered 1x, 2x and 4x the peak of CreateOrder, GetProduct and the web home at a fixed rate (open loop); a table per scenario against the targets of docs/overload.md, then the invariants (`just overload --help`; `--smoke`: a second of 1x and 2x on the release build, as CI runs it)
overload *ARGS:
    bench/overload.sh {{ARGS}}

# Hedging and the retry budget: the catalog's reads through two endpoints, every 4th call 400 ms late or failing every other call, hedged (the contract) and retried (a service config); a table against the targets of docs/measuring.md (`just hedging --help`)
hedging *ARGS:
    cargo build --release -p shop -p shop-bench
    "${CARGO_TARGET_DIR:-target}/release/shop-hedging" {{ARGS}}

# Replicas on one PostgreSQL and one NATS: two of catalog, orders and payments; a rolling restart, then a kill of each, while customers order; then nothing failed or lost (`just replicas --help`)
replicas *ARGS:
    tests/replicas/run.sh shop-replicas {{ARGS}}

# Soak: the replicas on PostgreSQL and NATS with mutual TLS and traces at 1%, held at 80% of their measured peak by gRPC, Connect, gRPC-Web and REST clients for DURATION (10m; 4h for a real one; the clients renew their sessions as an app does); then what drifted, what failed, the invariants, and a plot in target/soak/soak.html (`just soak --help`)
soak DURATION="10m" *ARGS:
    tests/replicas/run.sh shop-soak {{DURATION}} {{ARGS}}

# The manifests in deploy/kubernetes: every overlay rendered and read by tests/kubernetes/test_manifests.py (who reaches whom by netpol-analyzer, rollouts, the edge, certificates, NATS), then a server dry run against a real kube-apiserver with the cert-manager, Gateway API and prometheus-operator CRDs (tools built once into a cache)
kubernetes:
    tests/kubernetes/run.sh

# The container image (deploy/Containerfile, built with buildah from the dist binary: fat LTO), its users and catalog started from the image's own filesystem as uid 65532 on a read-only root, ready on /readyz
image:
    tests/container/run.sh

# Write the PrometheusRule of deploy/kubernetes/components/prometheus-operator from deploy/observability/rules.yaml (after editing the rules)
prometheus-rule:
    deploy/kubernetes/prometheus-rule.sh

# Fuzz the kit's parsers with cargo-fuzz (nightly): each target SECONDS (default 60); `just fuzz 5 envelope` for one
fuzz SECONDS="60" *TARGETS:
    services/kit/fuzz/run.sh {{SECONDS}} {{TARGETS}}

# What CI runs: tests (SQLite, PostgreSQL, NATS, behind nginx, the web app's), lint, buf breaking, the OpenAPI document's freshness, interop, schemathesis, e2e, conformance (server and client), the trace tests against Jaeger, the alert rules' tests, bench smoke, 30 s of chaos, a second of each overload level, 2 s of each hedging case, replicas restarted and killed, 20 s of soak with PostgreSQL frozen twice, the Kubernetes manifests, the image, 5 s of fuzzing a target
ci: test test-postgres test-nats edge web-test lint deny breaking openapi-check interop new-service-check schemathesis e2e conformance conformance-client trace-test observe-rules bench-smoke bench-tracing (bench "orders" "--profile" "production" "--smoke") (chaos "--duration" "30") (overload "--seconds" "1" "--levels" "1,2") (hedging "--seconds" "2" "--strict") (replicas "--warm-up-secs" "5" "--between-secs" "1" "--customers" "6") (soak "20s" "--peak-secs" "3" "--freeze-database" "8s,250ms") kubernetes image (fuzz "5")

# Install the npm tools the recipes use (buf, connect-node, protoc-gen-es)
tools:
    cd tests/interop && ([ -x node_modules/.bin/buf ] || npm install --no-audit --no-fund --loglevel=error)
