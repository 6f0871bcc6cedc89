#!/usr/bin/env python3
"""Writes components/ingress-nginx/ingresses.yaml: the shop's public routes
for ingress-nginx, made from Gateway API's (components/gateway-api/edge.yaml),
so the routes are written once. With --check, says whether the file is
current instead (`just kubernetes` runs it so); with --from FILE, prints
the Ingresses of the routes in FILE (how `just new-service`'s fragment is
made).

Each HTTPRoute becomes an Ingress on its host and each GRPCRoute one on
the gRPC host, TLS at the edge (the edge's certificate), TLS to the service
checked against the shop's CA (the Secret connect-shop-ca trust-manager
keeps) for the service's name. A regular expression match (a watch's, which
Gateway API needs only for its timeout) is left out: a prefix of the same
route already takes the path there, and ingress-nginx's read timeout (60 s)
is idle time, which heartbeats keep streams under.
"""

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
EDGE = HERE / "components" / "gateway-api" / "edge.yaml"
OUT = HERE / "components" / "ingress-nginx" / "ingresses.yaml"
NAMESPACE = "connect-shop"

HEADER = """\
# Made from components/gateway-api/edge.yaml by deploy/kubernetes/ingresses.py:
# edit that file, then run the script (`just kubernetes` checks this is current).
"""

PATH_TYPES = {"Exact": "Exact", "PathPrefix": "Prefix"}


def ingress(name, host, backend, paths, protocol):
    service, port = backend
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "annotations": {
                "argocd.argoproj.io/sync-wave": "1",
                "nginx.ingress.kubernetes.io/backend-protocol": protocol,
                "nginx.ingress.kubernetes.io/proxy-ssl-verify": "on",
                "nginx.ingress.kubernetes.io/proxy-ssl-secret": f"{NAMESPACE}/connect-shop-ca",
                "nginx.ingress.kubernetes.io/proxy-ssl-name": f"{service}.{NAMESPACE}.svc",
                "nginx.ingress.kubernetes.io/proxy-ssl-server-name": "on",
            },
        },
        "spec": {
            "ingressClassName": "set-by-the-overlay",
            "tls": [{"hosts": [host], "secretName": "shop-edge-tls"}],
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": path,
                                "pathType": path_type,
                                "backend": {"service": {"name": service, "port": {"number": port}}},
                            }
                            for path, path_type in paths
                        ]
                    },
                }
            ],
        },
    }


def backend_of(route):
    backends = {(b["name"], b["port"]) for rule in route["spec"]["rules"] for b in rule["backendRefs"]}
    assert len(backends) == 1, f"{route['metadata']['name']}: one service per route"
    return backends.pop()


def ingresses(routes):
    made = []
    for route in routes:
        name = route["metadata"]["name"]
        (host,) = route["spec"]["hostnames"]
        backend = backend_of(route)
        if route["kind"] == "HTTPRoute":
            paths = [
                (match["path"]["value"], PATH_TYPES[match["path"]["type"]])
                for rule in route["spec"]["rules"]
                for match in rule["matches"]
                if match["path"]["type"] in PATH_TYPES
            ]
            made.append(ingress(name, host, backend, paths, "HTTPS"))
        elif route["kind"] == "GRPCRoute":
            paths = [
                (f"/{match['method']['service']}", "Prefix")
                for rule in route["spec"]["rules"]
                for match in rule["matches"]
            ]
            made.append(ingress(f"{name}-grpc", host, backend, paths, "GRPCS"))
    return made


def render(edge):
    routes = [d for d in yaml.safe_load_all(edge) if d and d["kind"] in ("HTTPRoute", "GRPCRoute")]
    return "".join(
        "---\n" + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
        for doc in ingresses(routes)
    )


def main(args):
    if args[:1] == ["--from"]:
        sys.stdout.write(render(Path(args[1]).read_text()))
        return 0
    text = HEADER + render(EDGE.read_text()).removeprefix("---\n")
    if args[:1] == ["--check"]:
        if OUT.read_text() != text:
            print(
                f"{OUT} is not what components/gateway-api/edge.yaml gives: "
                "run deploy/kubernetes/ingresses.py",
                file=sys.stderr,
            )
            return 1
        print("    ingresses.yaml is current with edge.yaml")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
