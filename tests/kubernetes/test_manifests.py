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
# Every service, its port, database, events and peers, and its RPC
# services, from the contract (proto/shop: kit.policy.v1.deployment and
# the services' caller rules): no list of services here, so a service the
# manifests forget fails these tests.
sys.path.insert(0, str(ROOT / "openapi"))
from merge import FIRST, contract_image, contract_services, deployments  # noqa: E402  (the OpenAPI document's reading of them)

METRICS_PORT = 9090
NAMESPACE = "connect-shop"


# Each RPC service of the contract: its full name, the shop service that
# serves it (the BFF's is the gateway), and whether the public may call it,
# read from buf's image of the protos as the OpenAPI document and the
# edge's routes read it.
IMAGE = contract_image()
CONTRACT = contract_services(IMAGE)
# Each service as its contract describes it (kit.policy.v1.deployment):
# its port, database, events and the services it calls (what the
# NetworkPolicies must let through).
DEPLOYMENTS = deployments(IMAGE)
PEERS = {service: described["calls"] for service, described in DEPLOYMENTS.items()}
PORTS = {service: described["port"] for service, described in DEPLOYMENTS.items()}
# The first five in the order they start, then the others (as
# shop_proto::identity::SERVICES).
SERVICES = FIRST + sorted({s for _, s, _ in CONTRACT} - set(FIRST))
ADDED_SERVICES = [s for s in SERVICES if s not in FIRST]
# Those with a database of their own, and those that publish and read
# events, as their contracts say (a new service does both, as its
# template).
DATABASES = [s for s in SERVICES if DEPLOYMENTS[s]["database"]]
EVENTS = [s for s in SERVICES if DEPLOYMENTS[s]["events"]]
# The RPC services each shop service serves to the public (the edge routes
# them) and to the shop's own services only (the edge must not).
PUBLIC = {name: service for name, service, public in CONTRACT if public}
INTERNAL = {name: service for name, service, public in CONTRACT if not public}


def test_the_services_are_read_from_the_contract():
    # The reading above, checked against what it must find today.
    assert SERVICES[:5] == ["users", "catalog", "orders", "payments", "gateway"]
    assert set(PORTS) == set(SERVICES), "every service has its port (kit.policy.v1.deployment)"
    assert [s for s in DATABASES if s in FIRST] == ["users", "catalog", "orders", "payments"]
    assert [s for s in EVENTS if s in FIRST] == ["catalog", "orders", "payments"]
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
ISTIO_NAMESPACE = platform()["istioNamespace"]
# The edge components an overlay chooses among (one line of production's
# kustomization.yaml), the first its default.
EDGES = ["envoy-gateway", "istio", "ingress-nginx"]

# The labels each edge's proxies carry, as their projects set them: only
# those pods may reach the services, never the rest of their namespace.
EDGE_PODS = {
    "envoy-gateway": (
        EDGE_NAMESPACE,
        {
            "gateway.envoyproxy.io/owning-gateway-name": "shop",
            "gateway.envoyproxy.io/owning-gateway-namespace": NAMESPACE,
        },
        {"gateway.envoyproxy.io/owning-gateway-name": "another-gateway"},
    ),
    # Istio runs the Gateway's proxy in the Gateway's namespace, the shop's.
    "istio": (
        NAMESPACE,
        {"gateway.networking.k8s.io/gateway-name": "shop"},
        {"gateway.networking.k8s.io/gateway-name": "another-gateway"},
    ),
    "ingress-nginx": (
        "ingress-nginx",
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "admission-webhook"},
    ),
}


def edge_namespace(edge):
    return EDGE_PODS[edge][0]


def outsiders(edge):
    """Stand-ins for what lives outside the shop: the edge's proxy and a
    pod beside it that is not this Gateway's proxy, Prometheus, the
    cluster's DNS, istiod, and a stranger in another namespace."""
    namespace, labels, other = EDGE_PODS[edge]
    pods = [
        (namespace, "edge", labels),
        (namespace, "edge-other", other),
        (MONITORING_NAMESPACE, "prometheus", {}),
        ("kube-system", "kube-dns", {"k8s-app": "kube-dns"}),
        (ISTIO_NAMESPACE, "istiod", {"app": "istiod"}),
        ("elsewhere", "stranger", {}),
    ]
    namespaces = sorted({ns for ns, _, _ in pods} - {NAMESPACE})
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
        }
        for ns in namespaces
    ]
    for ns, name, pod_labels in pods:
        labels = {"app": name, **pod_labels}
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": name, "image": name}]},
                    },
                },
            }
        )
    return yaml.safe_dump_all(docs)


MONITORING = f"{MONITORING_NAMESPACE}/prometheus"
DNS = "kube-system/kube-dns"
NATS = "connect-shop/nats"
COLLECTOR = "connect-shop/otel-collector"
# The address every cloud answers credentials on, and NodeLocal DNSCache's.
METADATA = ipaddress.ip_address("169.254.169.254")
NODE_LOCAL_DNS = ipaddress.ip_address("169.254.20.10")


def shop(name):
    return f"{NAMESPACE}/{name}"


def needed_edges(edge="envoy-gateway", migrate_job="migrate-0-1-0"):
    """Every connection between pods the shop needs, as (from, to, ports):
    nothing more may reach a pod of the shop's namespace, nor leave one
    for another pod."""
    edges = {
        (shop(caller), shop(callee), f"TCP {PORTS[callee]}")
        for caller, callees in PEERS.items()
        for callee in callees
    }
    edges |= {(shop(s), NATS, "TCP 4222") for s in EVENTS}
    edges |= {(shop(s), COLLECTOR, "TCP 4317-4318") for s in SERVICES}
    the_edge = f"{edge_namespace(edge)}/edge"
    edges |= {(the_edge, shop(s), f"TCP {PORTS[s]}") for s in SERVICES}
    edges |= {(MONITORING, shop(s), f"TCP {METRICS_PORT}") for s in SERVICES}
    pods = SERVICES + ["nats", "otel-collector", migrate_job]
    if edge == "istio":
        # Both in the shop's namespace: every pod there looks names up.
        pods += ["edge", "edge-other"]
        edges.add((the_edge, f"{ISTIO_NAMESPACE}/istiod", "TCP 15012"))
    edges |= {(shop(pod), DNS, "TCP 53,UDP 53") for pod in pods}
    return edges


def analyzed(docs, tmp_path, edge="envoy-gateway"):
    """What netpol-analyzer says the NetworkPolicies allow to and from the
    shop's namespace, as (from, to, ports): a peer outside the cluster is
    an address range (`a-b`)."""
    analyzer = os.environ.get("NETPOL_ANALYZER")
    assert analyzer, "NETPOL_ANALYZER: tests/kubernetes/build-netpol-analyzer.sh builds it"
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump_all(docs))
    (tmp_path / "outsiders.yaml").write_text(outsiders(edge))
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
        if f"{NAMESPACE}/" in source + target:
            found.add((source, target, row["conn"]))
    return found


def is_range(peer):
    return "/" not in peer


def in_range(peer, address):
    low, high = (ipaddress.ip_address(a) for a in peer.split("-"))
    return low <= address <= high


def connections(docs, tmp_path, edge="envoy-gateway"):
    """The connections between pods (not to address ranges)."""
    return {c for c in analyzed(docs, tmp_path, edge) if not (is_range(c[0]) or is_range(c[1]))}


def reachability_faults(found, edge="envoy-gateway"):
    """What is wrong with `found` against what the shop needs: every needed
    edge present, nothing else reaching in or out."""
    needed = needed_edges(edge)
    return sorted(f"missing: {e}" for e in needed - found) + sorted(
        f"not needed: {e}" for e in found - needed
    )


def test_every_needed_connection_and_nothing_else_reaches_the_shop(production, tmp_path):
    found = connections(production, tmp_path)
    assert reachability_faults(found) == []


@pytest.mark.parametrize("edge", EDGES[1:])
def test_each_edge_reaches_the_services_and_nothing_else_does(edge, tmp_path):
    # The edge's own proxies, selected by their labels: the pod beside
    # them (another Gateway's proxy, ingress-nginx's admission webhook) gets
    # nowhere.
    docs = render_variant(tmp_path, edge, edgeNamespace=edge_namespace(edge))
    found = connections(docs, tmp_path / "analyzed", edge)
    assert reachability_faults(found, edge) == []


def open_policy(name, direction):
    """A NetworkPolicy that lets everything in (`Ingress`) or out (`Egress`)
    of every pod of the shop's namespace."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"podSelector": {}, "policyTypes": [direction], direction.lower(): [{}]},
    }


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
    open_to_all = production + [open_policy("allow-all", "Ingress")]
    faults = reachability_faults(connections(open_to_all, tmp_path / "open"))
    assert any("elsewhere/stranger" in f and "payments" in f for f in faults), faults
    # The edge's namespace as a whole, as before: the pod beside the proxy
    # gets in.
    whole_namespace = [
        d if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "from-the-edge")
        else {**d, "spec": {**d["spec"], "ingress": [{"from": [{"namespaceSelector": d["spec"]["ingress"][0]["from"][0]["namespaceSelector"]}], "ports": d["spec"]["ingress"][0]["ports"]}]}}
        for d in production
    ]
    faults = reachability_faults(connections(whole_namespace, tmp_path / "whole"))
    assert any(f"{EDGE_NAMESPACE}/edge-other" in f for f in faults), faults
    # Egress open to all: a service reaches the stranger.
    egress_to_all = production + [open_policy("egress-to-all", "Egress")]
    faults = reachability_faults(connections(egress_to_all, tmp_path / "egress"))
    assert any(f"not needed: ('{shop('payments')}', 'elsewhere/stranger'" in f for f in faults), faults


# What may leave the shop for an address outside the cluster, by pod: the
# databases' clients PostgreSQL's port, the Collector OTLP's and 443; every
# pod DNS on NodeLocal DNSCache's address. Nothing reaches the metadata
# address.
OUTBOUND = {
    "database": {"TCP 5432"},
    "otel-collector": {"TCP 443", "TCP 4317-4318"},
}


def ports_of(conn):
    """netpol-analyzer's ports (`TCP 53,443,UDP 53`) one by one."""
    ports, protocol = set(), None
    for part in conn.split(","):
        if " " in part:
            protocol, part = part.split(" ", 1)
        ports.add(f"{protocol} {part}")
    return ports


def test_the_shop_leaves_the_cluster_only_for_its_database_and_trace_backend(production, tmp_path):
    outbound = [c for c in analyzed(production, tmp_path) if is_range(c[1])]
    assert outbound, "the databases are reached"
    database_clients = {shop(s) for s in DATABASES} | {shop("migrate-0-1-0")}
    for source, target, conn in outbound:
        assert not in_range(target, METADATA), (source, target, conn)
        ports = ports_of(conn)
        allowed = set()
        if source in database_clients:
            allowed |= OUTBOUND["database"]
        if source == COLLECTOR:
            allowed |= OUTBOUND["otel-collector"]
        if in_range(target, NODE_LOCAL_DNS):
            allowed |= {"TCP 53", "UDP 53"}
        assert ports <= allowed, (source, target, conn)
    reached = {source for source, _, conn in outbound if "5432" in conn}
    assert reached == database_clients


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
                # By version, and by digest too once a release pins it.
                tagged = image.split("@", 1)[0]
                assert tagged.endswith(f":{version}"), f"{image}: the release is {version}"


# Others' images whose digest could not be read here (no registry but the
# package registries is reachable from these machines): pin them at
# release with `digest:` in the production overlay's `images:`, as NATS's
# is. The list only shrinks.
NOT_YET_PINNED = {
    "docker.io/natsio/nats-server-config-reloader",
    "docker.io/otel/opentelemetry-collector",
}


def test_production_runs_others_images_by_digest(production):
    for workload in workloads(production):
        for container in containers(workload):
            image = container["image"]
            name = re.split(r"[@:]", image.split("/", 1)[1], maxsplit=1)[0]
            repository = image.split("/", 1)[0] + "/" + name
            if "connect-shop" in image or repository in NOT_YET_PINNED:
                continue
            assert re.search(r"@sha256:[0-9a-f]{64}$", image), image


def test_the_migration_job_is_named_for_its_release(production):
    jobs = of_kind(production, "Job")
    assert len(jobs) == 1
    job = jobs[0]
    tag = containers(job)[0]["image"].split("@", 1)[0].rsplit(":", 1)[1]
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
            {"group": "", "kind": "ConfigMap", "name": "connect-shop-ca"}
        ]
        certificate = named(production, "Certificate", f"{service}-tls")
        assert validation["hostname"] in certificate["spec"]["dnsNames"]
    assert_the_ca_bundle_is_kept(production)


def assert_the_ca_bundle_is_kept(docs, secret=False):
    """The CA certificate the edge checks the services with is made by the
    manifests (trust-manager's Bundle, from cert-manager's CA Secret, in the
    shop's namespace), never copied by hand."""
    bundle = named(docs, "Bundle", "connect-shop-ca")["spec"]
    ca = named(docs, "Certificate", "shop-ca")["spec"]["secretName"]
    assert bundle["sources"] == [{"secret": {"name": ca, "key": "ca.crt"}}]
    assert bundle["target"]["configMap"] == {"key": "ca.crt"}
    assert ("secret" in bundle["target"]) == secret
    assert bundle["target"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}
    }


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
        if service in FIRST and service != "gateway":
            assert settings[f"{service.upper()}_URL"] == f"dns:///{service}-replicas:{PORTS[service]}"
        # HTTP/2 in clear text no longer: the port speaks TLS.
        for name in [service, f"{service}-replicas"]:
            for port in named(production, "Service", name)["spec"]["ports"]:
                assert "appProtocol" not in port


def test_nats_wants_a_token_and_tls_and_bounds_jetstream(production):
    conf = generated(production, "ConfigMap", "nats")["data"]["nats.conf"]
    assert re.search(r"authorization\s*\{\s*users:", conf)
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
        assert env["NATS_URL"] == "tls://$(NATS_TOKEN):$(NATS_TOKEN)@nats:4222", service
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
# not rendered: the database's CA.
MADE_BY_THE_OPERATOR = {"database-ca"}


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


def render_variant(tmp_path, edge=EDGES[0], **settings):
    """The production overlay with another edge (the one line an operator
    changes) and other platform settings, rendered from a copy of
    deploy/kubernetes."""
    copy = tmp_path / f"kubernetes-{edge}"
    shutil.copytree(KUSTOMIZE, copy)
    document = yaml.safe_load(PLATFORM.read_text())
    document["data"].update(settings)
    (copy / "overlays" / "production" / "platform.yaml").write_text(yaml.safe_dump(document))
    kustomization = copy / "overlays" / "production" / "kustomization.yaml"
    chosen = f"  - ../../components/{EDGES[0]}\n"
    assert kustomization.read_text().count(chosen) == 1, "production names one edge"
    kustomization.write_text(kustomization.read_text().replace(chosen, f"  - ../../components/{edge}\n"))
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
    # Another home for the edge's proxies and another Prometheus: only
    # platform.yaml changes.
    elsewhere = render_variant(
        tmp_path,
        edgeNamespace="gateways",
        gatewayClassName="envoy-internal",
        monitoringNamespace="observability",
        monitoringRelease="prometheus",
    )
    assert admitted_namespace(elsewhere, "from-the-edge") == "gateways"
    assert admitted_namespace(elsewhere, "from-monitoring") == "observability"
    assert of_kind(elsewhere, "Gateway")[0]["spec"]["gatewayClassName"] == "envoy-internal"
    assert set(monitoring_release(elsewhere).values()) == {"prometheus"}
    # Each edge takes what it needs from there too.
    istio = render_variant(tmp_path, "istio", gatewayClassName="istio", istioNamespace="istio-control")
    assert of_kind(istio, "Gateway")[0]["spec"]["gatewayClassName"] == "istio"
    to_istiod = named(istio, "NetworkPolicy", "istio-gateway")["spec"]["egress"][1]["to"][0]
    assert to_istiod["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "istio-control"}
    nginx = render_variant(tmp_path, "ingress-nginx", edgeNamespace="ingress", ingressClassName="internal-nginx")
    assert {i["spec"]["ingressClassName"] for i in of_kind(nginx, "Ingress")} == {"internal-nginx"}
    assert admitted_namespace(nginx, "from-the-edge") == "ingress"


def test_no_manifest_names_the_edge_or_its_class_but_platform_yaml():
    settings = platform()
    for path in KUSTOMIZE.rglob("*.yaml"):
        if path == PLATFORM:
            continue
        text = path.read_text()
        for value in [
            settings["edgeNamespace"],
            settings["istioNamespace"],
            f"gatewayClassName: {settings['gatewayClassName']}",
            f"ingressClassName: {settings['ingressClassName']}",
        ]:
            assert value not in text, f"{path.relative_to(ROOT)} names {value}"


def test_the_services_believe_only_the_edge_about_the_client(production):
    # The one header every edge here appends to, one hop: the edge's own
    # entry, whoever the peer (the NetworkPolicies let only the edge's pods
    # and the shop's reach the services). No address range is trusted: a
    # /8 would take in nodes and load balancers, which a client reaches.
    settings = config(production)
    assert settings["SHOP_CLIENT_ADDRESS_HEADER"] == "x-forwarded-for"
    assert settings["SHOP_TRUSTED_HOPS"] == "1"
    for network in settings.get("SHOP_TRUSTED_PROXIES", "").split(","):
        if network.strip():
            assert ipaddress.ip_network(network.strip()).num_addresses <= 256, network


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
        "github.com/envoyproxy/gateway": "Envoy Gateway",
        "github.com/cert-manager/trust-manager": "trust-manager",
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


# --- the three edges -------------------------------------------------------------


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    """Production with each edge, as an operator chooses it: the edge's
    component, and its namespace in platform.yaml."""
    tmp = tmp_path_factory.mktemp("edges")
    return {
        edge: render_variant(tmp, edge, edgeNamespace=edge_namespace(edge))
        if edge != EDGES[0]
        else render("production")
        for edge in EDGES
    }


WEB_HOST, GRPC_HOST = "shop.example.com", "grpc.shop.example.com"


def ingress_route(docs, host, path):
    """The services ingress-nginx sends `path` on `host` to: an Exact path
    first, then the longest Prefix, as the Ingress API orders them."""
    candidates = []
    for ingress in of_kind(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            if rule["host"] != host:
                continue
            for entry in rule["http"]["paths"]:
                kind = {"Exact": "Exact", "Prefix": "PathPrefix"}[entry["pathType"]]
                if path_matches({"type": kind, "value": entry["path"]}, path):
                    rank = (2 if kind == "Exact" else 1, len(entry["path"]))
                    candidates.append((rank, entry["backend"]["service"]["name"]))
    if not candidates:
        return set()
    best = max(rank for rank, _ in candidates)
    return {name for rank, name in candidates if rank == best}


def web_route(docs, path):
    return ingress_route(docs, WEB_HOST, path) if of_kind(docs, "Ingress") else route(docs, path)


def grpc_route(docs, rpc_service):
    if of_kind(docs, "Ingress"):
        return ingress_route(docs, GRPC_HOST, f"/{rpc_service}/AnyMethod")
    return {
        b["name"]
        for r in of_kind(docs, "GRPCRoute")
        for rule in r["spec"]["rules"]
        if any(m["method"]["service"] == rpc_service for m in rule["matches"])
        for b in rule["backendRefs"]
    }


@pytest.mark.parametrize("edge", EDGES)
def test_each_edge_routes_every_public_operation_and_nothing_internal(edges, edge):
    docs = edges[edge]
    document = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    routed = 0
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            rpc_service = next(n for n in PUBLIC if operation["operationId"].startswith(n + "."))
            concrete = re.sub(r"\{[^}]+\}", "ord_123", path)
            assert web_route(docs, concrete) == {PUBLIC[rpc_service]}, (edge, path)
            routed += 1
    assert routed > 40
    for name, service in PUBLIC.items():
        assert grpc_route(docs, name) == {service}, (edge, name)
    for name, service in INTERNAL.items():
        assert service not in web_route(docs, f"/{name}/AnyMethod"), (edge, name)
        assert not grpc_route(docs, name), (edge, name)


@pytest.mark.parametrize("edge", EDGES)
def test_each_edge_terminates_tls_and_checks_every_service_against_the_shops_ca(edges, edge):
    docs = edges[edge]
    edge_certificate = named(docs, "Certificate", "shop-edge")["spec"]
    assert {WEB_HOST, GRPC_HOST} <= set(edge_certificate["dnsNames"])
    if edge == "ingress-nginx":
        assert_the_ca_bundle_is_kept(docs, secret=True)
        for ingress in of_kind(docs, "Ingress"):
            (tls,) = ingress["spec"]["tls"]
            assert tls["secretName"] == edge_certificate["secretName"]
            annotations = ingress["metadata"]["annotations"]
            prefix = "nginx.ingress.kubernetes.io/"
            grpc = ingress["metadata"]["name"].endswith("-grpc")
            assert annotations[prefix + "backend-protocol"] == ("GRPCS" if grpc else "HTTPS")
            assert annotations[prefix + "proxy-ssl-verify"] == "on"
            assert annotations[prefix + "proxy-ssl-secret"] == f"{NAMESPACE}/connect-shop-ca"
            service = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
            name = annotations[prefix + "proxy-ssl-name"]
            assert name in named(docs, "Certificate", f"{service}-tls")["spec"]["dnsNames"]
    else:
        assert_the_ca_bundle_is_kept(docs)
        assert len(of_kind(docs, "BackendTLSPolicy")) == len(SERVICES)


def test_ingress_nginx_needs_no_gateway_api(edges):
    # A cluster without Gateway API's CRDs applies it (`just kubernetes`
    # dry-runs it on one).
    foreign = {d["apiVersion"].split("/")[0] for d in edges["ingress-nginx"]}
    assert not foreign & {"gateway.networking.k8s.io", "gateway.envoyproxy.io"}, foreign
    assert len(of_kind(edges["ingress-nginx"], "Ingress")) == 2 * len(SERVICES)


def test_istios_proxy_is_admitted_by_the_namespaces_pod_security(edges):
    docs = edges["istio"]
    (gateway,) = of_kind(docs, "Gateway")
    reference = gateway["spec"]["infrastructure"]["parametersRef"]
    assert (reference["group"], reference["kind"]) == ("", "ConfigMap")
    options = yaml.safe_load(named(docs, "ConfigMap", reference["name"])["data"]["deployment"])
    pod = options["spec"]["template"]["spec"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # Browsers reach its proxy on 443; the proxy, by its label, reaches the
    # services (the analyzer checks who else does: nobody).
    proxy = named(docs, "NetworkPolicy", "istio-gateway")["spec"]
    assert proxy["podSelector"] == {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "shop"}}
    assert proxy["ingress"][0]["ports"] == [{"port": 443, "protocol": "TCP"}]
    admitted = named(docs, "NetworkPolicy", "from-the-edge")["spec"]["ingress"][0]["from"]
    assert admitted == [{"podSelector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "shop"}}}]
    assert not of_kind(docs, "BackendTrafficPolicy")


def test_envoy_gateway_keeps_grpc_streams_open_past_its_15_s(production):
    (policy,) = of_kind(production, "BackendTrafficPolicy")
    (target,) = policy["spec"]["targetRefs"]
    (gateway,) = of_kind(production, "Gateway")
    listener = next(l for l in gateway["spec"]["listeners"] if l["name"] == target["sectionName"])
    assert (target["kind"], target["name"]) == ("Gateway", gateway["metadata"]["name"])
    # The listener every GRPCRoute attaches to, and no HTTPRoute.
    assert listener["allowedRoutes"]["kinds"] == [{"kind": "GRPCRoute"}]
    for grpc_route in of_kind(production, "GRPCRoute"):
        assert grpc_route["spec"]["parentRefs"] == [{"name": "shop", "sectionName": listener["name"]}]
    assert policy["spec"]["timeout"]["http"]["requestTimeout"] == "0s"


# --- GitOps ------------------------------------------------------------------------


@pytest.mark.parametrize("edge", EDGES)
def test_a_gitops_tool_can_apply_everything_at_once(edges, edge):
    docs = edges[edge]
    # The migration Job: never deleted by itself (a TTL makes Argo CD and
    # Flux recreate it, running the migrations again), first in Argo CD's
    # order, recreated by Flux if its template changes under its name.
    (job,) = of_kind(docs, "Job")
    assert "ttlSecondsAfterFinished" not in job["spec"]
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-wave"] == "-1"
    assert annotations["kustomize.toolkit.fluxcd.io/force"] == "enabled"
    # A rollback finds the ConfigMaps its ReplicaSet reads: never pruned.
    generated_maps = [
        d for d in of_kind(docs, "ConfigMap") if HASHED.match(d["metadata"]["name"])
    ]
    assert generated_maps
    for config_map in generated_maps:
        annotations = config_map["metadata"].get("annotations", {})
        assert annotations.get("argocd.argoproj.io/sync-options") == "Prune=false", config_map["metadata"]["name"]
        assert annotations.get("kustomize.toolkit.fluxcd.io/prune") == "disabled"
    # The edge last: a route to a service with no ready pod answers 503.
    edge_objects = [
        d
        for d in docs
        if d["kind"] in ("Gateway", "HTTPRoute", "GRPCRoute", "BackendTLSPolicy", "Ingress")
    ]
    assert edge_objects
    for edge_object in edge_objects:
        wave = edge_object["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave")
        assert wave == "1", edge_object["metadata"]["name"]


def secret_keys(docs):
    keys = set()

    def walk(node):
        if isinstance(node, dict):
            reference = node.get("secretKeyRef")
            if reference and reference["name"] == "connect-shop-secrets":
                keys.add(reference["key"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(docs)
    return keys


def test_the_example_external_secret_carries_every_key_the_manifests_read(edges):
    example = yaml.safe_load((KUSTOMIZE / "examples" / "external-secret.yaml").read_text())
    assert example["spec"]["target"]["name"] == "connect-shop-secrets"
    carried = {entry["secretKey"] for entry in example["spec"]["data"]}
    read = set().union(*(secret_keys(docs) for docs in edges.values()))
    assert {"service-secret-previous", "nats-token-previous"} <= read
    assert carried == read
