"""The rendered overlays (`kubectl kustomize`) read as a platform engineer
reads them: what a live cluster would do with them, checked without one.
`just kubernetes` runs these (pytest), then the server dry run.

- who reaches whom, from the NetworkPolicies, by netpol-analyzer;
- rollouts: no replica count where an autoscaler owns it, disruption
  budgets, spread, the grace period against the shop's own shutdown, probes
  that tolerate a slow check, images by version;
- the edge: TLS on every listener, every public operation routed to its
  service and nothing internal, /metrics on no routable port;
- certificates, NATS and the trace collector wired as the services read them.
"""

import csv
import io
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
# The shop's first services and their ports (the launcher's defaults);
# the ones `just new-service` adds come from src/registry.rs, and every
# service with its RPC services from the contract (proto/shop): no list
# of services here, so a service the manifests forget fails these tests.
sys.path.insert(0, str(ROOT / "openapi"))
from merge import FIRST_PORTS, ports  # noqa: E402  (the OpenAPI document's reading of them)

METRICS_PORT = 9090
NAMESPACE = "connect-shop"


def contract():
    """Each RPC service of the contract: its full name, the shop service
    that serves it (the BFF's is the gateway), and whether only the shop's
    services may call it (its caller rule names neither anyone nor a
    customer)."""
    found = []
    for proto in sorted((ROOT / "proto" / "shop").glob("*/v1/*.proto")):
        text = proto.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
        served_by = "gateway" if package == "shop.bff.v1" else package.split(".")[1]
        for block in re.finditer(r"^service (\w+) \{(.*?)^\}", text, re.M | re.S):
            rule = re.search(r"caller: \{(.*?)\n?\s*\}", block.group(2), re.S)
            public = bool(rule) and re.search(r"\b(anyone|customer): true", rule.group(1)) is not None
            found.append((f"{package}.{block.group(1)}", served_by, public))
    return found


PORTS = ports()
# The first five in the order they start, then the others (as
# shop_proto::identity::SERVICES).
SERVICES = list(FIRST_PORTS) + sorted({s for _, s, _ in contract()} - set(FIRST_PORTS))
ADDED_SERVICES = [s for s in SERVICES if s not in FIRST_PORTS]
# Those with a database of their own, and those that publish and read
# events: a new service does both, as its template.
DATABASES = ["users", "catalog", "orders", "payments"] + ADDED_SERVICES
EVENTS = ["catalog", "orders", "payments"] + ADDED_SERVICES
# The RPC services each shop service serves to the public (the edge routes
# them) and to the shop's own services only (the edge must not).
PUBLIC = {name: service for name, service, public in contract() if public}
INTERNAL = {name: service for name, service, public in contract() if not public}


def test_the_services_are_read_from_the_contract():
    # The reading above, checked against what it must find today.
    assert SERVICES[:5] == ["users", "catalog", "orders", "payments", "gateway"]
    assert set(PORTS) == set(SERVICES), "every service has its port (src/registry.rs)"
    assert {"shop.payments.v1.PaymentService", "shop.bff.v1.MobileBffService"} <= set(PUBLIC)
    assert INTERNAL.keys() >= {
        "shop.users.v1.ServiceTokenService",
        "shop.catalog.v1.StockService",
        "shop.payments.v1.OrderPaymentService",
    }
    assert not set(PUBLIC) & set(INTERNAL)

def render(overlay):
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZE / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=["dev", "production"])
def overlay(request):
    return request.param, render(request.param)


@pytest.fixture(scope="module")
def production():
    return render("production")


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def named(docs, kind, name):
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert found, f"no {kind} {name}"
    return found[0]


def workloads(docs):
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def containers(workload):
    return workload["spec"]["template"]["spec"]["containers"]


def shop_container(docs, service):
    return containers(named(docs, "Deployment", service))[0]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


# A ConfigMap kustomize generated, named by its content: name-<hash>.
HASHED = re.compile(r"^(?P<name>.+)-[a-z0-9]{10}$")


def generated(docs, kind, name):
    """The one `kind` kustomize generated as `name` (name-<hash>)."""
    found = [
        d
        for d in of_kind(docs, kind)
        if (m := HASHED.match(d["metadata"]["name"])) and m.group("name") == name
    ]
    assert len(found) == 1, f"no generated {kind} {name}"
    return found[0]


def config(docs):
    return generated(docs, "ConfigMap", "shop-config")["data"]


def workspace_version():
    cargo = (ROOT / "Cargo.toml").read_text()
    section = cargo.split("[workspace.package]", 1)[1]
    return re.search(r'^version = "(.*)"', section, re.M).group(1)


PLATFORM = KUSTOMIZE / "overlays" / "production" / "platform.yaml"


def platform():
    return yaml.safe_load(PLATFORM.read_text())["data"]


# --- who reaches whom --------------------------------------------------------

EDGE_NAMESPACE = platform()["edgeNamespace"]
MONITORING_NAMESPACE = platform()["monitoringNamespace"]

# Stand-ins for what lives outside the shop's namespace: the edge's proxies,
# Prometheus, and a stranger in another namespace.
OUTSIDERS = f"""
apiVersion: v1
kind: Namespace
metadata:
  name: {EDGE_NAMESPACE}
  labels: {{kubernetes.io/metadata.name: {EDGE_NAMESPACE}}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {MONITORING_NAMESPACE}
  labels: {{kubernetes.io/metadata.name: {MONITORING_NAMESPACE}}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: elsewhere
  labels: {{kubernetes.io/metadata.name: elsewhere}}
""" + "".join(
    f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: {name}, image: {name}}}]}}
"""
    for namespace, name in [
        (EDGE_NAMESPACE, "edge"),
        (MONITORING_NAMESPACE, "prometheus"),
        ("elsewhere", "stranger"),
    ]
)

EDGE = f"{EDGE_NAMESPACE}/edge"
MONITORING = f"{MONITORING_NAMESPACE}/prometheus"
NATS = "connect-shop/nats"
COLLECTOR = "connect-shop/otel-collector"


def shop(name):
    return f"{NAMESPACE}/{name}"


def needed_edges():
    """Every connection the shop needs, as (from, to, port): nothing more
    may reach a pod of the shop's namespace."""
    calls = {
        "gateway": ["users", "catalog", "orders"],
        "orders": ["catalog", "payments", "users"],
        "catalog": ["users"],
        "payments": ["users"],
    } | {service: ["users"] for service in ADDED_SERVICES}
    edges = {
        (shop(caller), shop(callee), f"TCP {PORTS[callee]}")
        for caller, callees in calls.items()
        for callee in callees
    }
    edges |= {(shop(s), NATS, "TCP 4222") for s in EVENTS}
    edges |= {(shop(s), COLLECTOR, "TCP 4317-4318") for s in SERVICES}
    edges |= {(EDGE, shop(s), f"TCP {PORTS[s]}") for s in SERVICES}
    edges |= {(MONITORING, shop(s), f"TCP {METRICS_PORT}") for s in SERVICES}
    return edges


def connections(docs, tmp_path):
    """What netpol-analyzer says the NetworkPolicies allow into the shop's
    namespace, as (from, to, ports)."""
    analyzer = os.environ.get("NETPOL_ANALYZER")
    assert analyzer, "NETPOL_ANALYZER: tests/kubernetes/build-netpol-analyzer.sh builds it"
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump_all(docs))
    (tmp_path / "outsiders.yaml").write_text(OUTSIDERS)
    listed = subprocess.run(
        [analyzer, "list", "--dirpath", str(tmp_path), "-o", "csv"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = set()
    for row in csv.DictReader(io.StringIO(listed)):
        strip = lambda peer: re.sub(r"\[\w+\]$", "", peer)  # noqa: E731
        source, target = strip(row["src"]), strip(row["dst"])
        if target.startswith(f"{NAMESPACE}/"):
            found.add((source, target, row["conn"]))
    return found


def reachability_faults(found):
    """What is wrong with `found` against what the shop needs: every needed
    edge present, nothing else reaching in."""
    needed = needed_edges()
    return sorted(f"missing: {e}" for e in needed - found) + sorted(
        f"not needed: {e}" for e in found - needed
    )


def test_every_needed_connection_and_nothing_else_reaches_the_shop(production, tmp_path):
    found = connections(production, tmp_path)
    assert reachability_faults(found) == []


def test_the_reachability_check_refuses_a_shop_cut_off_from_nats_or_open_to_all(
    production, tmp_path
):
    # NATS as it was: admitted only what carries the part-of label it lacked.
    cut_off = [
        d
        for d in production
        if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "nats-callers")
    ]
    faults = reachability_faults(connections(cut_off, tmp_path / "cut"))
    assert f"missing: ('{shop('orders')}', '{NATS}', 'TCP 4222')" in faults
    open_to_all = production + [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all", "namespace": NAMESPACE},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
        }
    ]
    faults = reachability_faults(connections(open_to_all, tmp_path / "open"))
    assert any("elsewhere/stranger" in f and "payments" in f for f in faults), faults


# --- rollouts ----------------------------------------------------------------


def test_no_replica_count_where_an_autoscaler_owns_it(overlay):
    _, docs = overlay
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert scaled >= set(SERVICES)
    for name in scaled:
        assert "replicas" not in named(docs, "Deployment", name)["spec"], name


def test_production_keeps_two_replicas_and_disrupts_one_at_a_time(production):
    for hpa in of_kind(production, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] >= 2
    budgets = of_kind(production, "PodDisruptionBudget")
    assert {b["metadata"]["name"] for b in budgets} == set(SERVICES)
    for budget in budgets:
        assert budget["spec"] == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": budget["metadata"]["name"]}},
        }


def test_replicas_spread_over_nodes_and_zones(overlay):
    _, docs = overlay
    for service in SERVICES:
        spec = named(docs, "Deployment", service)["spec"]["template"]["spec"]
        spread = {c["topologyKey"]: c for c in spec.get("topologySpreadConstraints", [])}
        assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, service
        for constraint in spread.values():
            assert constraint["labelSelector"] == {
                "matchLabels": {"app.kubernetes.io/name": service}
            }
            assert constraint["matchLabelKeys"] == ["pod-template-hash"]
        # Nodes without a zone label must not make the pods unschedulable.
        assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"


def test_the_grace_period_covers_the_shops_own_shutdown(overlay):
    _, docs = overlay
    settings = config(docs)
    # The service: drain, then one grace for calls and background work.
    drain = int(settings["SHOP_DRAIN_MS"]) / 1000
    grace = int(settings["SHOP_SHUTDOWN_GRACE_SECS"])
    for service in SERVICES:
        pod = named(docs, "Deployment", service)["spec"]["template"]["spec"]
        pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        worst = pre_stop + drain + grace
        assert pod["terminationGracePeriodSeconds"] >= worst + 5, (service, worst)


def test_readiness_tolerates_a_slow_check(overlay):
    _, docs = overlay
    for service in SERVICES:
        probe = shop_container(docs, service)["readinessProbe"]
        assert probe["failureThreshold"] >= 3, service
        # The service answers a check within 2 s (READY_CHECK_TIMEOUT).
        assert probe["timeoutSeconds"] >= 3, service


def test_images_by_version_with_a_pull_policy_kind_can_use(overlay):
    name, docs = overlay
    version = workspace_version()
    for workload in workloads(docs):
        for container in containers(workload):
            image = container["image"]
            assert "@sha256:" in image or re.search(r":[\w.-]+$", image), image
            assert not image.endswith(":latest"), image
            assert container.get("imagePullPolicy") == "IfNotPresent", (image, name)
            if "connect-shop" in image:
                assert image.endswith(f":{version}"), f"{image}: the release is {version}"


def test_the_migration_job_is_named_for_its_release(production):
    jobs = of_kind(production, "Job")
    assert len(jobs) == 1
    job = jobs[0]
    tag = containers(job)[0]["image"].rsplit(":", 1)[1]
    # Dots as dashes: the name becomes its pods' names.
    assert job["metadata"]["name"] == f"migrate-{tag.replace('.', '-')}"


def test_the_namespace_enforces_the_restricted_pod_security_standard(overlay):
    _, docs = overlay
    labels = named(docs, "Namespace", NAMESPACE)["metadata"]["labels"]
    for mode in ["enforce", "warn", "audit"]:
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


# --- the edge ----------------------------------------------------------------


def path_matches(match, path):
    kind, value = match["type"], match["value"]
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")
    if kind == "RegularExpression":
        return re.fullmatch(value, path) is not None
    raise AssertionError(f"unknown path match {kind}")


def route(docs, path):
    """The backends Gateway API sends `path` to on the web listener: the
    Exact matches first, then the longest prefix (and regular expressions
    beside it), as the spec orders them."""
    candidates = []
    for http_route in of_kind(docs, "HTTPRoute"):
        for rule in http_route["spec"]["rules"]:
            for match in rule["matches"]:
                if path_matches(match["path"], path):
                    rank = (
                        (2, len(match["path"]["value"]))
                        if match["path"]["type"] == "Exact"
                        else (1, len(match["path"]["value"]))
                    )
                    candidates.append((rank, [b["name"] for b in rule["backendRefs"]]))
    if not candidates:
        return set()
    best = max(rank for rank, _ in candidates)
    return {name for rank, names in candidates if rank == best for name in names}


def test_every_listener_of_the_edge_speaks_tls(production):
    gateways = of_kind(production, "Gateway")
    assert len(gateways) == 1
    for listener in gateways[0]["spec"]["listeners"]:
        assert listener["protocol"] == "HTTPS", listener["name"]
        assert listener["tls"]["mode"] == "Terminate"
        secret = listener["tls"]["certificateRefs"][0]["name"]
        issued = [c for c in of_kind(production, "Certificate") if c["spec"]["secretName"] == secret]
        assert issued, f"no Certificate writes {secret}"
        assert listener["hostname"] in issued[0]["spec"]["dnsNames"]


def test_every_public_operation_is_routed_to_its_service(production):
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    routed = 0
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            operation_id = operation["operationId"]
            rpc_service = next(n for n in PUBLIC if operation_id.startswith(n + "."))
            concrete = re.sub(r"\{[^}]+\}", "ord_123", path)
            assert route(production, concrete) == {PUBLIC[rpc_service]}, path
            routed += 1
    assert routed > 40


def test_grpc_reaches_every_public_service_and_no_internal_one(production):
    routed = {}
    for grpc_route in of_kind(production, "GRPCRoute"):
        for rule in grpc_route["spec"]["rules"]:
            for match in rule["matches"]:
                routed[match["method"]["service"]] = {b["name"] for b in rule["backendRefs"]}
    assert routed == {name: {service} for name, service in PUBLIC.items()}
    web = {h for g in of_kind(production, "HTTPRoute") for h in g["spec"]["hostnames"]}
    grpc = {h for g in of_kind(production, "GRPCRoute") for h in g["spec"]["hostnames"]}
    # One hostname carries HTTPRoutes or GRPCRoutes, never both.
    assert web and grpc and not web & grpc


def test_internal_services_are_not_routed_to_the_services_that_serve_them(production):
    for name, service in INTERNAL.items():
        backends = route(production, f"/{name}/AnyMethod")
        assert service not in backends, (name, backends)


def test_metrics_are_on_no_port_a_route_can_reach(production):
    assert config(production)["SHOP_METRICS_PORT"] == str(METRICS_PORT)
    services = {s["metadata"]["name"]: s for s in of_kind(production, "Service")}
    for service in services.values():
        for port in service["spec"]["ports"]:
            assert port.get("targetPort") not in ("metrics", METRICS_PORT), service["metadata"]
            assert port["port"] != METRICS_PORT
    for kind in ["HTTPRoute", "GRPCRoute"]:
        for r in of_kind(production, kind):
            for rule in r["spec"]["rules"]:
                for backend in rule["backendRefs"]:
                    assert backend["port"] == PORTS[backend["name"]], backend
    # The gateway's catch-all takes /metrics to its own port, which does
    # not serve it under SHOP_METRICS_PORT (tests/tls.rs shows it).
    assert route(production, "/metrics") == {"gateway"}


def test_the_edge_speaks_tls_to_every_backend_checking_the_shops_ca(production):
    policies = {
        p["spec"]["targetRefs"][0]["name"]: p["spec"]["validation"]
        for p in of_kind(production, "BackendTLSPolicy")
    }
    assert set(policies) == set(SERVICES)
    for service, validation in policies.items():
        assert validation["caCertificateRefs"] == [
            {"group": "", "kind": "ConfigMap", "name": "shop-ca"}
        ]
        certificate = named(production, "Certificate", f"{service}-tls")
        assert validation["hostname"] in certificate["spec"]["dnsNames"]


def public_streams():
    """The paths of every public server stream: its Connect path and its
    REST route (a sample id in place of each variable)."""
    paths = []
    for proto in sorted((ROOT / "proto" / "shop").glob("*/v1/*.proto")):
        text = proto.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
        for block in re.finditer(r"^service (\w+) \{(.*?)^\}", text, re.M | re.S):
            if f"{package}.{block.group(1)}" not in PUBLIC:
                continue
            for rpc in re.finditer(r"rpc (\w+)\([\w.]+\) returns \(stream [\w.]+\)(.*?)(?=\n  rpc |\Z)", block.group(2), re.S):
                paths.append(f"/{package}.{block.group(1)}/{rpc.group(1)}")
                route = re.search(r'get: "([^"]+)"', rpc.group(2))
                if route:
                    paths.append(re.sub(r"\{[^}]+\}", "id_1", route.group(1)))
    return paths


def test_streams_are_not_cut_by_the_edge(production):
    streams = public_streams()
    assert {"/shop.orders.v1.OrderService/WatchOrder", "/v1/orders/id_1:watch", "/v1/stock:watch"} <= set(streams)
    for path in streams:
        timeouts = [
            rule["timeouts"]["request"]
            for r in of_kind(production, "HTTPRoute")
            for rule in r["spec"]["rules"]
            if any(m["path"]["type"] != "PathPrefix" and path_matches(m["path"], path) for m in rule["matches"])
        ]
        assert timeouts == ["0s"], path


# --- certificates, NATS, traces ------------------------------------------------


def test_services_serve_and_call_with_certificates_cert_manager_renews(production):
    tls_env = {
        "SHOP_TLS_CERT": "/etc/shop/tls/tls.crt",
        "SHOP_TLS_KEY": "/etc/shop/tls/tls.key",
        "SHOP_TLS_CLIENT_CA": "/etc/shop/tls/ca.crt",
        "SHOP_TLS_CA": "/etc/shop/tls/ca.crt",
        "SHOP_TLS_CLIENT_CERT": "/etc/shop/tls/tls.crt",
        "SHOP_TLS_CLIENT_KEY": "/etc/shop/tls/tls.key",
        "SHOP_TLS_REQUIRE_SERVICE_CERT": "true",
    }
    ca_issuer = named(production, "Issuer", "shop-ca")["spec"]["ca"]["secretName"]
    ca = named(production, "Certificate", "shop-ca")["spec"]
    assert ca["isCA"] and ca["secretName"] == ca_issuer
    # Renewed with the same key: what every pod trusts stays valid.
    assert ca["privateKey"]["rotationPolicy"] == "Never"
    settings = config(production)
    for service in SERVICES:
        deployment = named(production, "Deployment", service)
        container = containers(deployment)[0]
        env = env_of(container)
        for name, value in tls_env.items():
            assert env.get(name) == value, (service, name)
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"]:
            assert container[probe]["httpGet"]["scheme"] == "HTTPS"
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert {"name": "tls", "secret": {"secretName": f"{service}-tls", "defaultMode": 0o440}} in volumes
        spec = named(production, "Certificate", f"{service}-tls")["spec"]
        assert spec["secretName"] == f"{service}-tls"
        assert spec["issuerRef"] == {"kind": "Issuer", "name": "shop-ca"}
        assert {"server auth", "client auth"} <= set(spec["usages"])
        assert spec["uris"] == [f"spiffe://connect-shop/{service}"]
        assert int(spec["renewBefore"].rstrip("h")) < int(spec["duration"].rstrip("h"))
        # The names its callers dial: the headless Service (the peers'
        # dns:/// targets) and the Service the edge checks.
        assert f"{service}-replicas" in spec["dnsNames"]
        assert f"{service}.{NAMESPACE}.svc" in spec["dnsNames"]
        # The peers the shop's services call (a new service has no caller
        # until one is written).
        if service in FIRST_PORTS and service != "gateway":
            assert settings[f"{service.upper()}_URL"] == f"dns:///{service}-replicas:{PORTS[service]}"
        # HTTP/2 in clear text no longer: the port speaks TLS.
        for name in [service, f"{service}-replicas"]:
            for port in named(production, "Service", name)["spec"]["ports"]:
                assert "appProtocol" not in port


def test_nats_wants_a_token_and_tls_and_bounds_jetstream(production):
    conf = generated(production, "ConfigMap", "nats")["data"]["nats.conf"]
    assert re.search(r"authorization\s*\{\s*token:\s*\$NATS_TOKEN", conf)
    assert "cert_file: /etc/nats/tls/tls.crt" in conf
    memory = re.search(r"max_memory_store:\s*(\d+)MB", conf)
    store = re.search(r"max_file_store:\s*(\d+)MB", conf)
    assert memory and store
    nats = named(production, "StatefulSet", "nats")
    claim = nats["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert int(store.group(1)) < int(claim.rstrip("Gi")) * 1024, "the store fits its volume"
    # The stream the services create (1 GiB, kit/src/events/nats.rs) fits.
    assert int(store.group(1)) > 1024
    labels = nats["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "connect-shop"
    nats_tls = named(production, "Certificate", "nats-tls")["spec"]
    assert "nats" in nats_tls["dnsNames"]
    for service in EVENTS:
        env = env_of(shop_container(production, service))
        assert env["NATS_URL"] == "tls://$(NATS_TOKEN)@nats:4222", service
        assert env["NATS_CA"] == "/etc/shop/tls/ca.crt"
        names = [e["name"] for e in shop_container(production, service)["env"]]
        # The kubelet expands $(NATS_TOKEN) only if it comes first.
        assert names.index("NATS_TOKEN") < names.index("NATS_URL")


def test_traces_go_to_the_collector(production):
    settings = config(production)
    assert settings["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert settings["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    named(production, "Deployment", "otel-collector")
    named(production, "Service", "otel-collector")


def test_prometheus_scrapes_the_metrics_port_by_job(production):
    monitor = named(production, "PodMonitor", "connect-shop")["spec"]
    assert monitor["jobLabel"] == "app.kubernetes.io/name"
    assert monitor["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "30s"}
    ]
    for service in SERVICES:
        annotations = named(production, "Deployment", service)["spec"]["template"]["metadata"][
            "annotations"
        ]
        assert annotations["prometheus.io/port"] == str(METRICS_PORT)
        assert annotations["prometheus.io/scheme"] == "http"
        ports = {p["name"]: p["containerPort"] for p in shop_container(production, service)["ports"]}
        assert ports == {"http": PORTS[service], "metrics": METRICS_PORT}
    rules = named(production, "PrometheusRule", "connect-shop")["spec"]["groups"]
    assert rules == yaml.safe_load((ROOT / "deploy/observability/rules.yaml").read_text())["groups"]


# --- the operator's stack and day 90 -------------------------------------------

# ConfigMaps the operator makes (deploy/README.md says how), referenced but
# not rendered: the shop's CA for the edge, the database's CA.
MADE_BY_THE_OPERATOR = {"shop-ca", "database-ca"}


def config_map_references(workload):
    """The ConfigMaps a workload's pods read: envFrom, env, volumes."""
    spec = workload["spec"]["template"]["spec"]
    names = set()
    for container in spec.get("initContainers", []) + spec["containers"]:
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                names.add(source["configMapRef"]["name"])
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                names.add(ref["name"])
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            names.add(volume["configMap"]["name"])
    return names


def test_config_maps_are_named_by_their_content(overlay):
    # An edit must reach every pod (a new name rolls them), not only the
    # ones started after it.
    name, docs = overlay
    rendered = {d["metadata"]["name"] for d in of_kind(docs, "ConfigMap")}
    assert rendered, name
    for config_map in rendered:
        assert HASHED.match(config_map), f"{name}: ConfigMap {config_map} has no content hash"
    for workload in workloads(docs):
        for reference in config_map_references(workload):
            assert reference in rendered or reference in MADE_BY_THE_OPERATOR, (
                f"{workload['metadata']['name']} reads ConfigMap {reference}, "
                "which is neither generated nor the operator's"
            )


def test_the_hostname_spread_skips_nodes_the_pods_cannot_use(overlay):
    # A cordoned or tainted node is no domain: a drained pod's replacement
    # is not held Pending for it (and the drain by the disruption budget).
    _, docs = overlay
    for service in SERVICES:
        spec = named(docs, "Deployment", service)["spec"]["template"]["spec"]
        hostname = [
            c
            for c in spec["topologySpreadConstraints"]
            if c["topologyKey"] == "kubernetes.io/hostname"
        ]
        assert hostname[0].get("nodeTaintsPolicy") == "Honor", service


def render_with_platform(tmp_path, **settings):
    """The production overlay rendered with other platform settings, from a
    copy of deploy/kubernetes."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUSTOMIZE, copy)
    document = yaml.safe_load(PLATFORM.read_text())
    document["data"].update(settings)
    (copy / "overlays" / "production" / "platform.yaml").write_text(yaml.safe_dump(document))
    out = subprocess.run(
        ["kubectl", "kustomize", str(copy / "overlays" / "production")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def admitted_namespace(docs, policy):
    peers = named(docs, "NetworkPolicy", policy)["spec"]["ingress"][0]["from"]
    return peers[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]


def monitoring_release(docs):
    return {
        d["kind"]: d["metadata"].get("labels", {}).get("release")
        for d in docs
        if d["kind"] in ("PodMonitor", "PrometheusRule")
    }


def test_the_platform_is_said_once_and_reaches_every_object(production, tmp_path):
    settings = platform()
    assert admitted_namespace(production, "from-the-edge") == settings["edgeNamespace"]
    assert admitted_namespace(production, "from-monitoring") == settings["monitoringNamespace"]
    assert of_kind(production, "Gateway")[0]["spec"]["gatewayClassName"] == settings["gatewayClassName"]
    # kube-prometheus-stack selects PodMonitors and PrometheusRules by it.
    assert monitoring_release(production) == {
        "PodMonitor": settings["monitoringRelease"],
        "PrometheusRule": settings["monitoringRelease"],
    }
    assert not [d for d in production if d["metadata"]["name"] == "platform"], "never applied"
    # Istio's edge and another Prometheus: only platform.yaml changes.
    istio = render_with_platform(
        tmp_path,
        edgeNamespace="istio-ingress",
        gatewayClassName="istio",
        monitoringNamespace="observability",
        monitoringRelease="prometheus",
    )
    assert admitted_namespace(istio, "from-the-edge") == "istio-ingress"
    assert admitted_namespace(istio, "from-monitoring") == "observability"
    assert of_kind(istio, "Gateway")[0]["spec"]["gatewayClassName"] == "istio"
    assert set(monitoring_release(istio).values()) == {"prometheus"}


def test_no_manifest_names_the_edge_or_its_class_but_platform_yaml():
    settings = platform()
    for path in KUSTOMIZE.rglob("*.yaml"):
        if path == PLATFORM:
            continue
        text = path.read_text()
        for value in [settings["edgeNamespace"], f"gatewayClassName: {settings['gatewayClassName']}"]:
            assert value not in text, f"{path.relative_to(ROOT)} names {value}"


def test_the_services_believe_the_edge_about_the_client(production):
    proxies = config(production)["SHOP_TRUSTED_PROXIES"].split(",")
    assert proxies and all(ipaddress.ip_network(p.strip()) for p in proxies)


def test_every_database_client_trusts_the_mounted_database_ca(production):
    path = config(production)["PGSSLROOTCERT"]
    clients = [named(production, "Deployment", s) for s in DATABASES]
    clients += of_kind(production, "Job")
    for workload in clients:
        spec = workload["spec"]["template"]["spec"]
        container = spec["containers"][0]
        told = env_of(container).get("PGSSLROOTCERT") or (
            path if any("configMapRef" in e for e in container.get("envFrom", [])) else None
        )
        assert told == path, workload["metadata"]["name"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounted = [
            m
            for m in container.get("volumeMounts", [])
            if path.startswith(m["mountPath"] + "/")
            and volumes.get(m["name"], {}).get("configMap", {}).get("name") == "database-ca"
        ]
        assert mounted, f"{workload['metadata']['name']}: nothing mounted at {path}"


def test_every_service_of_the_contract_is_deployed_and_nothing_else(overlay):
    # A service `just new-service` added and the manifests forgot fails
    # here: its folder in base/ and its lines in the components.
    _, docs = overlay
    labelled = {
        d["metadata"]["name"]
        for d in of_kind(docs, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "rpc-service"
    }
    assert labelled == set(SERVICES)
    for service in SERVICES:
        for kind in ["Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"]:
            named(docs, kind, service)
        named(docs, "Service", f"{service}-replicas")
        container = shop_container(docs, service)
        assert container["args"] == ["serve", service]
        assert {p["name"]: p["containerPort"] for p in container["ports"]}["http"] == PORTS[service]
        labels = named(docs, "Deployment", service)["spec"]["template"]["metadata"]["labels"]
        assert ("connect-shop/database" in labels) == (service in DATABASES), service
        assert ("connect-shop/events" in labels) == (service in EVENTS), service


def test_the_migration_job_migrates_every_database(production):
    job = of_kind(production, "Job")[0]
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}).get("key") for e in containers(job)[0]["env"]}
    for service in DATABASES:
        assert env.get(f"{service.upper()}_DATABASE_URL") == f"{service}-database-url", service
        reads = {e["name"]: e for e in shop_container(production, service)["env"]}
        assert reads["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == f"{service}-database-url"


def test_the_alerts_watch_every_service():
    # deploy/observability/rules.yaml (and the PrometheusRule made from
    # it): every service's replicas, every public RPC service's objectives.
    rules = (ROOT / "deploy" / "observability" / "rules.yaml").read_text()
    for service in SERVICES:
        assert f'absent(up{{job="{service}"}})' in rules, service
        for jobs in re.findall(r'up\{job=~"([^"]+)"\}', rules):
            assert service in jobs.split("|"), (service, jobs)
    slo = re.findall(r'service=~"([^"]+)"', rules)
    assert slo
    for names in slo:
        assert set(names.split("|")) == set(PUBLIC), names


def test_the_migration_job_ends_instead_of_hanging(production):
    job = of_kind(production, "Job")[0]["spec"]
    assert job["backoffLimit"] <= 6
    assert 0 < job["activeDeadlineSeconds"] <= 3600


def test_pods_waiting_for_their_schema_pass_their_probes(overlay):
    # The service answers /healthz while its migrations wait for their lock
    # (tests/starting.rs): the startup and liveness probes ask that.
    _, docs = overlay
    for service in SERVICES:
        container = shop_container(docs, service)
        for probe in ["startupProbe", "livenessProbe"]:
            assert container[probe]["httpGet"]["path"] == "/healthz", (service, probe)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def pinned_versions(folder):
    text = (ROOT / "tests" / "kubernetes" / folder / "go.mod").read_text()
    return dict(re.findall(r"^\t(\S+) (v\S+)$", text, re.M))


def test_the_minimum_versions_are_stated_and_dry_run(production):
    minimum = pinned_versions("crds-minimum")
    # Read as text: a link's words, not its address.
    readme = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", (ROOT / "deploy" / "README.md").read_text())
    stated = {
        "github.com/cert-manager/cert-manager": "cert-manager",
        "sigs.k8s.io/gateway-api": "Gateway API",
        "github.com/prometheus-operator/prometheus-operator": "prometheus-operator",
    }
    for module, product in stated.items():
        assert f"{product} {minimum[module]}+" in readme, f"deploy/README.md: {product} {minimum[module]}+"
    # BackendTLSPolicy v1 is served from Gateway API v1.4 on.
    gateway_api = tuple(int(n) for n in minimum["sigs.k8s.io/gateway-api"][1:].split("."))
    assert gateway_api >= (1, 4, 0)
    for policy in of_kind(production, "BackendTLSPolicy"):
        assert policy["apiVersion"] == "gateway.networking.k8s.io/v1"


def test_the_deploy_readme_goes_from_an_empty_cluster_to_an_order():
    readme = (ROOT / "deploy" / "README.md").read_text()
    for step in [
        "buildah push",  # the image, to your registry
        "DNS",  # the record for the edge's address
        "CREATE ROLE",  # the databases and their roles
        "CREATE DATABASE",
        "kind: ClusterIssuer",
        "--cluster-resource-namespace",  # where the ClusterIssuer's Secret goes
        "metrics-server",  # the autoscalers' metrics
        "StorageClass",  # NATS's volume
        "database-ca",  # the database's CA
        "platform.yaml",
        "rollout restart",  # a rotated Secret reaches the pods
        "Complete|Failed",  # a failed migration Job is said, not waited on
    ]:
        assert step in readme, f"deploy/README.md does not say: {step}"
