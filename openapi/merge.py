"""Merges the generator's two documents (Connect paths, REST routes) into
one: every path once, with the port of the service it belongs to; the
schemas and tags of both. The generator leaves a Connect stream empty (it
is dropped) and describes a REST stream as one JSON answer: it becomes
what the shop sends, Server-Sent Events. REST errors are Connect's error
JSON, not google.rpc.Status, and their operation ids end in `.rest`; a
Connect path answers 415 to a content type it does not take. Usage: merge.py CONNECT REST > OUT
"""

import json
import sys

# Where each public service listens (the shop's default ports).
PORTS = {
    "UserService": 8081,
    "CatalogService": 8082,
    "OrderService": 8083,
    "PaymentService": 8084,
    "WebBffService": 8080,
    "MobileBffService": 8080,
}


# Connect's answer to a content type (or a GET's encoding) the method does
# not take: HTTP 415 without a body, as the protocol and connect-go say.
UNSUPPORTED = {
    "description": "The content type (or, on a GET, the encoding) is not one this "
    "method takes: no body; Accept-Post names the ones it takes.",
    "headers": {"Accept-Post": {"schema": {"type": "string"}}},
}


def service_of(path, item):
    tags = {tag for operation in item.values() for tag in operation.get("tags", [])}
    if len(tags) != 1 or next(iter(tags)) not in PORTS:
        sys.exit(f"merge.py: {path} belongs to no one known service: {sorted(tags)}")
    return next(iter(tags))


def events(operation):
    """A REST stream's answer: Server-Sent Events of its messages."""
    ok = operation["responses"]["200"]
    message = ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    ok["description"] = (
        f"Server-Sent Events: each message a `data:` event, its JSON a {message}; "
        "a failure after the first an `event: error` whose data is the error JSON."
    )
    ok["content"] = {"text/event-stream": {"schema": {"type": "string"}}}


def connect_errors(node):
    """Every reference to google.rpc.Status, made one to Connect's error."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and value == "#/components/schemas/google.rpc.Status":
                node[key] = "#/components/schemas/connect.error"
            else:
                connect_errors(value)
    elif isinstance(node, list):
        for value in node:
            connect_errors(value)


def main(connect_file, rest_file):
    with open(connect_file) as f:
        merged = json.load(f)
    with open(rest_file) as f:
        rest = json.load(f)
    # Streams: what the generator left empty on the Connect side.
    streams = {
        path.strip("/").replace("/", ".")
        for path, item in merged.get("paths", {}).items()
        if not item
    }
    connect_errors(rest)
    for item in rest.get("paths", {}).values():
        for operation in item.values():
            if operation.get("operationId") in streams:
                events(operation)
            # Its Connect POST has the RPC's own name.
            operation["operationId"] += ".rest"
    rest.get("components", {}).get("schemas", {}).pop("google.rpc.Status", None)
    for item in merged.get("paths", {}).values():
        for operation in item.values():
            operation["responses"]["415"] = UNSUPPORTED
    paths = {}
    for document in (merged, rest):
        for path, item in document.get("paths", {}).items():
            if not item:
                continue
            if path in paths:
                sys.exit(f"merge.py: {path} is both a Connect path and a REST route")
            port = PORTS[service_of(path, item)]
            paths[path] = {"servers": [{"url": f"http://localhost:{port}"}], **item}
    merged["paths"] = paths
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in rest.get("components", {}).get("schemas", {}).items():
        if name in schemas and schemas[name] != schema:
            sys.exit(f"merge.py: the two documents describe {name} differently")
        schemas[name] = schema
    merged["components"]["schemas"] = dict(sorted(schemas.items()))
    tags = {tag["name"]: tag for tag in merged.get("tags", []) + rest.get("tags", [])}
    merged["tags"] = sorted(tags.values(), key=lambda tag: tag["name"])
    json.dump(merged, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
