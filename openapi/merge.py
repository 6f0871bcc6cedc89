"""Merges the generator's two documents (Connect paths, REST routes) into
one: every path once, with the port of the service it belongs to; the
schemas and tags of both. The generator leaves a Connect stream empty (it
is dropped) and describes a REST stream as one JSON answer: it becomes
what the shop sends, Server-Sent Events. REST errors are Connect's error
JSON, not google.rpc.Status, and their operation ids end in `.rest`; a
Connect path answers 415 to a content type it does not take. Each operation
lists the error statuses it can answer (from its call policy: the codes
its caller rule implies and the `errors` it names), not a catch-all
`default`, so a status nobody wrote down fails schemathesis's check. The
public services are those whose caller rule admits anyone or a customer;
each path's server is its service's port (its contract's, the file
option kit.policy.v1.deployment). Each operation also says who may
call it and its deadline, from the RPC's call policy (the kit.policy.v1
options, read from buf's JSON image of the protos): in its description and
as `x-shop-caller` and `x-shop-deadline`; an operation with a deadline may
answer deadline_exceeded. Usage: merge.py CONNECT REST IMAGE > OUT, or
merge.py --public IMAGE (the public services, one per line)
"""

import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The shop's first services, in the order the launcher starts them (as
# shop_proto::identity::SERVICES); the others follow by name.
FIRST = ["users", "catalog", "orders", "payments", "gateway"]


def served_by(package):
    """The shop service a package of the contract is (shop.NAME.v1 is
    NAME's; the BFF's is the gateway's), as proto/build.rs's `service_of`
    says, or None for a package of no shop service."""
    if not package.startswith("shop."):
        return None
    name = package.split(".")[1]
    return "gateway" if name == "bff" else name


def deployments(image):
    """Each shop service as its contract describes it (the file option
    kit.policy.v1.deployment, as proto/build.rs reads it): its port,
    whether it keeps a database and publishes events, and the services it
    calls. The launcher, the manifests' tests, the OpenAPI document and
    schemathesis all read the services so."""
    found = {}
    for file in image.get("file", []):
        service = served_by(file["package"])
        declared = file.get("options", {}).get("[kit.policy.v1.deployment]")
        if service is None or declared is None:
            continue
        found[service] = {
            "port": int(declared["port"]),
            "database": bool(declared.get("database")),
            "events": bool(declared.get("events")),
            "calls": list(dict.fromkeys(declared.get("calls", []))),
        }
    return found


def ports(image=None):
    """Each shop service's port, as its contract says."""
    described = deployments(image if image is not None else contract_image())
    return {name: described[name]["port"] for name in FIRST + sorted(set(described) - set(FIRST))}


# Connect's answer to a content type (or a GET's encoding) the method does
# not take: HTTP 415 without a body, as the protocol and connect-go say.
UNSUPPORTED = {
    "description": "The content type (or, on a GET, the encoding) is not one this "
    "method takes: no body; Accept-Post names the ones it takes.",
    "headers": {"Accept-Post": {"schema": {"type": "string"}}},
}


# Connect's HTTP status for each code (the protocol's table).
STATUS = {
    "invalid_argument": 400,
    "failed_precondition": 400,
    "out_of_range": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "already_exists": 409,
    "aborted": 409,
    "resource_exhausted": 429,
    "unimplemented": 501,
    "unavailable": 503,
    "deadline_exceeded": 504,
}

# What any call may be answered: a malformed or invalid message, one over
# the size limit or a rate limit (resource_exhausted). Connect's paths
# also: a compression the server does not speak (unimplemented) and a
# Connect-Timeout-Ms it cannot meet (deadline_exceeded).
EVERY_CALL = ["invalid_argument", "resource_exhausted"]
EVERY_CONNECT_CALL = ["unimplemented", "deadline_exceeded"]

# What each RPC adds is its contract's: a caller rule that is not
# `anyone` answers unauthenticated, and the policy's `errors` (kit.policy.v1)
# name the rest (refused callers, unknown ids, conflicts, refused states,
# peers it needs).


def rpc_of(operation):
    return operation["operationId"].removesuffix(".rest").removesuffix(".get")


def error_responses(operation, connect, policy):
    """The operation's error statuses, each naming its Connect codes."""
    codes = EVERY_CALL + (EVERY_CONNECT_CALL if connect else []) + policy["errors"]
    if policy.get("deadline") and "deadline_exceeded" not in codes:
        codes = codes + ["deadline_exceeded"]
    by_status = {}
    for code in codes:
        by_status.setdefault(STATUS[code], []).append(code)
    error = operation["responses"].pop("default")["content"]
    return {
        str(status): {
            "description": "A Connect error: " + ", ".join(sorted(set(names))) + ".",
            "content": error,
        }
        for status, names in sorted(by_status.items())
    }


def caller_words(caller):
    """Who may call, in the words of `shop policy`'s table."""
    if caller.get("anyone"):
        return "anyone"
    if caller.get("customer"):
        return "a signed-in customer"
    if caller.get("signedIn"):
        return "signed in (a customer or a service)"
    if caller.get("shopSecret"):
        return "a shop service, by the shared secret"
    names = caller.get("services", {}).get("names", [])
    if names:
        return "the " + " or ".join(names) + " service"
    sys.exit(f"merge.py: a caller rule names no one: {caller}")


def policies(image):
    """Each RPC's call policy: its service's kit.policy.v1 options under its
    own, field by field, as {full name: {"caller": words, "deadline": "5s",
    "errors": the Connect codes it answers beyond any call's}}."""
    found = {}
    for file in image.get("file", []):
        for service in file.get("service", []):
            defaults = service.get("options", {}).get("[kit.policy.v1.service]", {})
            for method in service.get("method", []):
                own = method.get("options", {}).get("[kit.policy.v1.method]", {})
                policy = {**defaults, **own}
                name = f"{file['package']}.{service['name']}.{method['name']}"
                if "caller" not in policy:
                    sys.exit(f"merge.py: {name} has no caller policy")
                errors = [code.lower() for code in policy.get("errors", [])]
                if not policy["caller"].get("anyone"):
                    errors = ["unauthenticated"] + errors
                unknown = [code for code in errors if code not in STATUS]
                if unknown:
                    sys.exit(f"merge.py: {name} answers {unknown}: no Connect code with an HTTP status here")
                found[name] = {
                    "caller": caller_words(policy["caller"]),
                    "deadline": policy.get("deadline"),
                    "errors": errors,
                }
    return found


def contract_services(image):
    """Every RPC service of the shop's contract, in buf's JSON image of the
    protos: its full name, the shop service that serves it (the BFF's is
    the gateway), and whether the public may call it (its caller rule
    admits anyone or a customer; the internal ones are for the shop's
    services only). The OpenAPI document, the edge's routes and the
    manifests' tests all read the services so."""
    found = []
    for file in image.get("file", []):
        package = file["package"]
        by = served_by(package)
        if by is None:
            continue
        for service in file.get("service", []):
            caller = service.get("options", {}).get("[kit.policy.v1.service]", {}).get("caller", {})
            public = bool(caller.get("anyone") or caller.get("customer"))
            found.append((f"{package}.{service['name']}", by, public))
    return found


def public_services(image):
    """The public RPC services, each with the shop service that serves it."""
    return {name: served_by for name, served_by, public in contract_services(image) if public}


def contract_image():
    """buf's JSON image of the shop's protos (`buf build`, buf from `just
    tools`), options included."""
    buf = ROOT / "tests" / "interop" / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        sys.exit(f"{buf} is missing: just tools")
    with tempfile.TemporaryDirectory() as work:
        out = pathlib.Path(work) / "image.json"
        subprocess.run([str(buf), "build", "--path", "shop", "-o", str(out)], cwd=ROOT / "proto", check=True)
        return json.loads(out.read_text())


def with_policy(operation, policy):
    """The operation's description and extensions say its call policy."""
    said = f"Who may call (the contract's policy): {policy['caller']}."
    if policy["deadline"]:
        seconds = policy["deadline"].removesuffix("s")
        said += (
            f" Deadline: {seconds} s, given to a call that sends none and the most"
            " a call is granted."
        )
        operation["x-shop-deadline"] = policy["deadline"]
    operation["x-shop-caller"] = policy["caller"]
    described = operation.get("description", "").rstrip()
    operation["description"] = f"{described}\n\n{said}" if described else said


def port_of(path, item, port_by_tag):
    tags = {tag for operation in item.values() for tag in operation.get("tags", [])}
    if len(tags) != 1 or next(iter(tags)) not in port_by_tag:
        sys.exit(f"merge.py: {path} belongs to no one known service: {sorted(tags)}")
    return port_by_tag[next(iter(tags))]


def events(operation):
    """A REST stream's answer: Server-Sent Events of its messages, each
    event described as a client parses it (its event name and data)."""
    ok = operation["responses"]["200"]
    ref = ok["content"]["application/json"]["schema"]["$ref"]
    message = ref.rsplit("/", 1)[1]
    ok["description"] = (
        f"Server-Sent Events: each message a `data:` event, its JSON a {message}; "
        "a failure after the first an `event: error` whose data is the error JSON."
    )
    event = {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": ["message", "error"]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": ref},
            },
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
        "required": ["data"],
    }
    ok["content"] = {"text/event-stream": {"schema": event}}


# What the generator says that the shop's wire does not (fixed here, each
# for its reason): a Duration is protobuf JSON ("900s"), not JSON Schema's
# ISO 8601 "duration"; Connect-Timeout-Ms is 1 to 10 ASCII digits; a GET's
# `message` is described as JSON, so its encoding is json, uncompressed
# and not base64.
WIRE = {
    "google.protobuf.Duration": lambda schema: {
        **{k: v for k, v in schema.items() if k != "format"},
        "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
    },
    "connect-timeout-header": lambda schema: {
        **{k: v for k, v in schema.items() if k != "type"},
        "type": "integer",
        "minimum": 0,
        "maximum": 9999999999,
    },
    "encoding": lambda schema: {**schema, "enum": ["json"]},
    "compression": lambda schema: {**schema, "enum": ["identity"]},
    "base64": lambda schema: {**schema, "enum": [False]},
}


def empty_is_refused(schema):
    """Whether a field's default (absent in proto3 JSON) breaks its rules:
    an empty string too short or not matching its pattern, an empty list,
    a zero below its minimum."""
    if schema.get("minLength", 0) >= 1 or schema.get("minItems", 0) >= 1:
        return True
    if schema.get("type") == "string" and "pattern" in schema:
        return re.search(schema["pattern"], "") is None
    return schema.get("type") == "integer" and schema.get("minimum", 0) > 0


# Each integer format's range, which the generator leaves to the format's
# name: a number outside it is refused ("number too large to fit").
INTEGER_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def integer_bounds(node):
    """Every integer bounded by its format's range (within its own rules);
    a 64-bit integer, a JSON number or a string of its digits, has its
    string said too (the generator leaves it any text): digits, at most 18
    so that every one fits (19 may not)."""
    if isinstance(node, dict):
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        if "integer" in types and node.get("format") in INTEGER_RANGES:
            low, high = INTEGER_RANGES[node["format"]]
            node["minimum"] = max(node.get("minimum", low), low)
            node["maximum"] = min(node.get("maximum", high), high)
            if "string" in types and "pattern" not in node:
                sign = "" if node["minimum"] >= 0 else "-?"
                node["pattern"] = f"^{sign}[0-9]{{1,18}}$"
        for value in node.values():
            integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            integer_bounds(value)


# Rules the domain checks beyond protovalidate's (the compile-time
# validator takes no CEL), said in JSON Schema beside the schema's own,
# each where its proto comment says it: schema, property (None: the whole
# message), rule.
DOMAIN_RULES = [
    (
        "shop.payments.v1.ChargeRequest",
        "amount",
        {
            "properties": {"minorUnits": {"minimum": 1, "pattern": "^0*[1-9][0-9]{0,17}$"}},
            "required": ["minorUnits"],
        },
    ),
    (
        "shop.payments.v1.RefundRequest",
        None,
        {
            "oneOf": [
                {"required": ["paymentId"], "properties": {"paymentId": {"minLength": 1}}},
                {"required": ["idempotencyKey"], "properties": {"idempotencyKey": {"minLength": 1}}},
            ]
        },
    ),
]


def domain_rules(schemas):
    for name, field, rule in DOMAIN_RULES:
        if field is None:
            schemas[name].update(rule)
            continue
        schema = schemas[name]["properties"][field]
        own = {k: schema.pop(k) for k in list(schema) if k not in ("title", "description")}
        schema["allOf"] = [own, rule]


def required_fields(node):
    """protovalidate's `required` on a string or a list means not empty;
    a field whose empty value breaks a rule must be there. JSON Schema
    says both only if told: minLength/minItems 1, and `required`."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            required = list(node.get("required", []))
            for name, schema in properties.items():
                if name in required:
                    if schema.get("type") == "string":
                        schema.setdefault("minLength", 1)
                    if schema.get("type") == "array":
                        schema.setdefault("minItems", 1)
                elif empty_is_refused(schema):
                    required.append(name)
            if required:
                node["required"] = required
        for key, value in node.items():
            if key == "parameters" and isinstance(value, list):
                for parameter in value:
                    schema = parameter.get("schema", {})
                    # A Connect GET carries its request in `message`.
                    if parameter.get("in") == "query" and (
                        empty_is_refused(schema) or parameter.get("name") == "message"
                    ):
                        parameter["required"] = True
            required_fields(value)
    elif isinstance(node, list):
        for value in node:
            required_fields(value)


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


def main(connect_file, rest_file, image_file):
    with open(image_file) as f:
        image = json.load(f)
    policy_of = policies(image)
    port = ports(image)
    # The generator tags each operation with its service's short name.
    port_by_tag = {name.rsplit(".", 1)[1]: port[served_by] for name, served_by in public_services(image).items()}
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
            policy = policy_of[rpc_of(operation)]
            operation["responses"].update(error_responses(operation, True, policy))
            operation["responses"]["415"] = UNSUPPORTED
            with_policy(operation, policy)
    for item in rest.get("paths", {}).values():
        for operation in item.values():
            policy = policy_of[rpc_of(operation)]
            operation["responses"].update(error_responses(operation, False, policy))
            with_policy(operation, policy)
    paths = {}
    for document in (merged, rest):
        for path, item in document.get("paths", {}).items():
            if not item:
                continue
            if path in paths:
                sys.exit(f"merge.py: {path} is both a Connect path and a REST route")
            at = port_of(path, item, port_by_tag)
            paths[path] = {"servers": [{"url": f"http://localhost:{at}"}], **item}
    merged["paths"] = paths
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in rest.get("components", {}).get("schemas", {}).items():
        if name in schemas and schemas[name] != schema:
            sys.exit(f"merge.py: the two documents describe {name} differently")
        schemas[name] = schema
    for name, fix in WIRE.items():
        schemas[name] = fix(schemas[name])
    merged["components"]["schemas"] = dict(sorted(schemas.items()))
    integer_bounds(merged)
    domain_rules(schemas)
    required_fields(merged)
    tags = {tag["name"]: tag for tag in merged.get("tags", []) + rest.get("tags", [])}
    merged["tags"] = sorted(tags.values(), key=lambda tag: tag["name"])
    json.dump(merged, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--public":
        # generate.sh: the services to document, one per line.
        with open(sys.argv[2]) as f:
            print("\n".join(sorted(public_services(json.load(f)))))
    elif len(sys.argv) == 4:
        main(sys.argv[1], sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
