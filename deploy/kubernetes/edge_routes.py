#!/usr/bin/env python3
"""Writes the contract's paths into the edge's routes
(components/gateway-api/edge.yaml), so an RPC added to the contract reaches
the edge with no hand edit: `just contract` runs it (then ingresses.py,
which makes ingress-nginx's routes from the same file); with --check it
says whether the file is current instead (`just kubernetes` runs it so).

Each public RPC service (its caller rule admits anyone or a customer; the
internal ones get no route) is routed to the shop service that serves it.
In that service's HTTPRoute, two blocks are written:

- between `# contract:begin SERVICE streams` and `# contract:end`, the
  server streams (a rule with no request timeout): each one's Connect path,
  and its REST route, Exact, or a RegularExpression where it binds a
  variable (`/v1/orders/[^/]+:watch`);
- between `# contract:begin SERVICE calls` and `# contract:end`, the rest:
  each RPC service's Connect prefix (`/shop.catalog.v1.CatalogService`),
  and the REST routes: a route without variables Exact, one with variables
  the PathPrefix before its first variable (`/v1/products/{id}`:
  `/v1/products`), or a RegularExpression when that prefix is one segment
  (it would take every `/v1/...` path), each left out when a PathPrefix of
  the block already takes it.

What is outside the blocks is the operator's (the JWKS document, `/` for
the gateway, the timeouts, the backends). The routes come from buf's image
of the protos (`buf build`), as the OpenAPI document's do.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDGE = Path(__file__).resolve().parent / "components" / "gateway-api" / "edge.yaml"
sys.path.insert(0, str(ROOT / "openapi"))
from merge import contract_image, public_services  # noqa: E402  (buf's image; which services are public, who serves them)

VERBS = ("get", "put", "post", "delete", "patch")
BLOCK = re.compile(
    r"^(?P<indent>[ ]*)# contract:begin (?P<service>[\w-]+) (?P<kind>calls|streams)[^\n]*\n"
    r"(?P<body>.*?)"
    r"^(?P=indent)# contract:end[^\n]*\n",
    re.M | re.S,
)


def rest_paths(method):
    """The paths of a method's google.api.http rule and its additional bindings."""
    rule = method.get("options", {}).get("[google.api.http]")
    if not rule:
        return []
    rules = [rule] + rule.get("additionalBindings", [])
    return [r[verb] for r in rules for verb in VERBS if verb in r]


def pattern(template):
    """A path template as a regular expression: `{id}` one segment,
    `{name=shelves/*}` its own pattern (`*` a segment, `**` any)."""

    def variable(match):
        inner = match.group(1)
        if "=" not in inner:
            return "[^/]+"
        return re.escape(inner.split("=", 1)[1]).replace(r"\*\*", ".+").replace(r"\*", "[^/]+")

    parts = re.split(r"(\{[^}]+\})", template)
    return "".join(variable(re.match(r"\{(.*)\}", p)) if p.startswith("{") else re.escape(p) for p in parts)


def call_match(template):
    if "{" not in template:
        return ("Exact", template)
    prefix = template[: template.index("{")].rstrip("/")
    if prefix.count("/") < 2:
        return ("RegularExpression", pattern(template))
    return ("PathPrefix", prefix)


def stream_match(template):
    return ("Exact", template) if "{" not in template else ("RegularExpression", pattern(template))


def covered(match, by):
    kind, value = match
    return any(
        other != match
        and other[0] == "PathPrefix"
        and kind != "RegularExpression"
        and (value == other[1] or value.startswith(other[1] + "/"))
        for other in by
    )


def routes(image):
    """Per shop service: its calls' matches and its streams' matches."""
    public = public_services(image)
    found = {}
    for file in image.get("file", []):
        for service in file.get("service", []):
            name = f"{file['package']}.{service['name']}"
            if name not in public:
                continue
            calls, streams = found.setdefault(public[name], ([], []))
            calls.append(("PathPrefix", f"/{name}"))
            for method in service.get("method", []):
                if method.get("serverStreaming"):
                    streams.append(("Exact", f"/{name}/{method['name']}"))
                    streams.extend(stream_match(path) for path in rest_paths(method))
                else:
                    calls.extend(call_match(path) for path in rest_paths(method))
    for service, (calls, streams) in found.items():
        calls = list(dict.fromkeys(calls))
        found[service] = ([m for m in calls if not covered(m, calls)], list(dict.fromkeys(streams)))
    return found


def block(indent, matches):
    return "".join(
        f"{indent}- path:\n{indent}    type: {kind}\n{indent}    value: {value}\n" for kind, value in matches
    )


def written(text, found):
    """`text` with each block rewritten; exits naming what does not fit."""
    seen = set()

    def rewrite(match):
        service, kind = match.group("service"), match.group("kind")
        if service not in found:
            sys.exit(f"edge_routes: {EDGE.name}: a {kind} block for {service}, which serves no public RPC service")
        seen.add((service, kind))
        calls, streams = found[service]
        head = match.group(0).split("\n", 1)[0] + "\n"
        return head + block(match.group("indent"), calls if kind == "calls" else streams) + f"{match.group('indent')}# contract:end\n"

    out = BLOCK.sub(rewrite, text)
    for service, (calls, streams) in found.items():
        for kind, matches in (("calls", calls), ("streams", streams)):
            if matches and (service, kind) not in seen:
                sys.exit(
                    f"edge_routes: {EDGE.name}: the HTTPRoute of {service} has no "
                    f"`# contract:begin {service} {kind}` ... `# contract:end` block for "
                    f"{len(matches)} paths of its contract (a streams block sits in a rule "
                    "with no request timeout: see orders')"
                )
    return out


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] not in ([], ["--check"]):
        sys.exit("usage: edge_routes.py [--check]")
    text = EDGE.read_text()
    current = written(text, routes(contract_image()))
    if check:
        if current != text:
            sys.exit(
                f"edge_routes: {EDGE.relative_to(ROOT)} is stale: the contract's paths changed; run `just contract`"
            )
        print(f"{EDGE.relative_to(ROOT)}: the contract's paths are current")
        return
    if current != text:
        EDGE.write_text(current)
    print(f"{EDGE.relative_to(ROOT)}: the contract's paths written")


if __name__ == "__main__":
    main()
