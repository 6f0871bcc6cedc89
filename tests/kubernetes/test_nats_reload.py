"""NATS picks up a renewed certificate: the production overlay's own
nats.conf and reloader arguments, run here with Debian's nats-server and
the NATS project's config reloader (built by build-nats-reloader.sh at the
image's version), the certificate laid out as the kubelet mounts a Secret
and renewed as it swaps one in. Without the reloader the server keeps
showing the old certificate: the check can fail.

And its token rotates with no window: the same nats.conf, with the Secret's
two values on either step of a rotation, admits a client showing either
(as the services' NATS_URL shows it) and refuses a guess.

`just kubernetes` runs it (NATS_RELOADER names the binary).
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from test_manifests import containers, named, render


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def issue(directory, ca_key, ca_cert, serial):
    """A server certificate for nats, signed by the CA: its DER bytes."""
    key, csr, cert = directory / "tls.key", directory / "tls.csr", directory / "tls.crt"
    subprocess.run(
        ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=nats", "-keyout", key, "-out", csr],
        check=True, capture_output=True,
    )
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:nats,DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
         "-set_serial", str(serial), "-days", "2", "-extfile", ext, "-out", cert],
        check=True, capture_output=True,
    )
    csr.unlink()
    ext.unlink()
    return subprocess.run(
        ["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True
    ).stdout


def mount_secret(volume, generation, ca_key, ca_cert):
    """Writes the Secret's files as the kubelet does: a timestamped folder,
    `..data` pointing at it (swapped atomically), each file a link through
    `..data`; the old folder removed. The new certificate's DER bytes."""
    folder = volume / f"..2026_11_28_00_00_0{generation}"
    folder.mkdir()
    der = issue(folder, ca_key, ca_cert, serial=1000 + generation)
    shutil.copy(ca_cert, folder / "ca.crt")
    previous = os.path.realpath(volume / "..data") if (volume / "..data").exists() else None
    (volume / "..data_tmp").symlink_to(folder.name)
    os.rename(volume / "..data_tmp", volume / "..data")
    for name in ["tls.crt", "tls.key", "ca.crt"]:
        if not (volume / name).is_symlink():
            (volume / name).symlink_to(f"..data/{name}")
    if previous:
        shutil.rmtree(previous)
    return der


def admitted(port, token):
    """Whether NATS admits a client that shows `token` as the services do
    (NATS_URL's user and password), over TLS."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        info = b""
        while not info.endswith(b"\r\n"):
            info += raw.recv(1)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(raw, server_hostname="nats") as tls:
            connect = {"verbose": False, "pedantic": False, "tls_required": True,
                       "user": token, "pass": token, "protocol": 1}
            tls.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
            answer = b""
            while b"PONG" not in answer and b"-ERR" not in answer:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
            return b"PONG" in answer


def served_certificate(port, token):
    """The certificate a new client connection to NATS is shown (NATS
    sends its INFO in the clear, then the client starts TLS)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        info = b""
        while not info.endswith(b"\r\n"):
            info += raw.recv(1)
        assert info.startswith(b"INFO "), info
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(raw, server_hostname="nats") as tls:
            return tls.getpeercert(binary_form=True)


@pytest.fixture
def production_nats():
    docs = render("production")
    config = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("nats-")]
    assert len(config) == 1
    statefulset = named(docs, "StatefulSet", "nats")
    reloader = [c for c in containers(statefulset) if c["name"] == "reloader"]
    assert reloader, "no reloader beside nats-server"
    return config[0]["data"]["nats.conf"], reloader[0]["args"], statefulset


def test_the_reloader_shares_the_servers_processes_and_pid_file(production_nats):
    conf, args, statefulset = production_nats
    spec = statefulset["spec"]["template"]["spec"]
    assert spec["shareProcessNamespace"] is True
    pid_file = conf.split("pid_file:", 1)[1].split()[0]
    assert args[args.index("-pid") + 1] == pid_file
    watched = [args[i + 1] for i, arg in enumerate(args) if arg == "-config"]
    assert "/etc/nats/tls/tls.crt" in watched and "/etc/nats/tls/tls.key" in watched
    mounts = {
        c["name"]: {m["mountPath"] for m in c["volumeMounts"]} for c in containers(statefulset)
    }
    for path in ["/etc/nats/tls", os.path.dirname(pid_file)]:
        assert path in mounts["nats"] and path in mounts["reloader"], path


class NatsHere:
    """The production nats.conf laid out here: the CA and the certificate
    mounted as the kubelet mounts the Secret, the server's folders and
    ports on this machine, the configuration written to nats.conf."""

    def __init__(self, conf, args, tmp_path):
        self.nats_server = shutil.which("nats-server")
        assert self.nats_server, "nats-server: apt-get install nats-server"
        self.ca_key, self.ca_cert = tmp_path / "ca.key", tmp_path / "ca.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", "/CN=shop CA", "-keyout", self.ca_key,
             "-out", self.ca_cert],
            check=True, capture_output=True,
        )
        self.volume, self.run, store = tmp_path / "tls", tmp_path / "run", tmp_path / "jetstream"
        for folder in [self.volume, self.run, store]:
            folder.mkdir()
        self.first = mount_secret(self.volume, 1, self.ca_key, self.ca_cert)
        self.port = free_port()
        self.here = {
            "/etc/nats/tls": str(self.volume),
            "/var/run/nats": str(self.run),
            "store_dir: /data": f"store_dir: {store}",
            "port: 4222": f"port: {self.port}",
            "http_port: 8222": f"http_port: {free_port()}",
        }
        for theirs, ours in self.here.items():
            assert theirs in conf or theirs == "/var/run/nats" and theirs in " ".join(args), theirs
            conf = conf.replace(theirs, ours)
        self.conf = tmp_path / "nats.conf"
        self.conf.write_text(conf)

    def start(self, log, **tokens):
        """nats-server with the Secret's `tokens` in its environment."""
        return subprocess.Popen(
            [self.nats_server, "-c", str(self.conf)], env=dict(os.environ, **tokens),
            stdout=subprocess.DEVNULL, stderr=open(log, "w"),
        )


def test_nats_shows_a_renewed_certificate_to_new_connections(production_nats, tmp_path):
    reloader_binary = os.environ.get("NATS_RELOADER")
    assert reloader_binary, "NATS_RELOADER: tests/kubernetes/build-nats-reloader.sh builds it"
    conf, args, _ = production_nats
    nats = NatsHere(conf, args, tmp_path)
    port, volume, run, here = nats.port, nats.volume, nats.run, nats.here
    ca_key, ca_cert, first = nats.ca_key, nats.ca_cert, nats.first
    server = nats.start(
        tmp_path / "nats.log", NATS_TOKEN="test-token", NATS_TOKEN_PREVIOUS="another-token"
    )
    reloader = None
    try:
        deadline = time.time() + 10
        while True:
            try:
                assert served_certificate(port, "test-token") == first
                break
            except (ConnectionError, OSError):
                assert time.time() < deadline, (tmp_path / "nats.log").read_text()
                time.sleep(0.1)
        ours = [here.get(a, a) for a in args]
        ours = [a.replace("/etc/nats/tls", str(volume)).replace("/var/run/nats", str(run)) for a in ours]
        reloader = subprocess.Popen(
            [reloader_binary, *ours], stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "reloader.log", "w"),
        )
        time.sleep(1)  # it watches the files from here on

        renewed = mount_secret(volume, 2, ca_key, ca_cert)
        deadline = time.time() + 20
        while served_certificate(port, "test-token") != renewed:
            assert time.time() < deadline, (
                "NATS still shows the old certificate:\n"
                + (tmp_path / "reloader.log").read_text()
                + (tmp_path / "nats.log").read_text()
            )
            time.sleep(0.2)

        # Without the reloader, a renewal is never seen.
        reloader.terminate()
        reloader.wait(10)
        mount_secret(volume, 3, ca_key, ca_cert)
        time.sleep(3)
        assert served_certificate(port, "test-token") == renewed
    finally:
        if reloader and reloader.poll() is None:
            reloader.terminate()
        server.terminate()
        server.wait(10)


def test_the_services_show_the_token_as_user_and_password(production_nats):
    conf, _, statefulset = production_nats
    env = {e["name"] for e in containers(statefulset)[0]["env"]}
    assert {"NATS_TOKEN", "NATS_TOKEN_PREVIOUS"} <= env
    assert "{user: $NATS_TOKEN, password: $NATS_TOKEN}" in conf
    assert "{user: $NATS_TOKEN_PREVIOUS, password: $NATS_TOKEN_PREVIOUS}" in conf


def test_a_fleet_half_on_each_nats_token_keeps_its_events(production_nats, tmp_path):
    # The two steps of a rotation (docs/tls.md): the new token accepted
    # beside the old, then shown, the old one accepted beside it. On
    # either step a service showing either token gets in; a guess does not.
    conf, args, _ = production_nats
    nats = NatsHere(conf, args, tmp_path)
    old, new = "0ld0ld0ld0ld", "n3wn3wn3wn3w"
    for step, (current, previous) in enumerate([(old, new), (new, old)], start=1):
        log = tmp_path / f"nats-{step}.log"
        server = nats.start(log, NATS_TOKEN=current, NATS_TOKEN_PREVIOUS=previous)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    got_in = {token: admitted(nats.port, token) for token in [old, new, "a-guess"]}
                    break
                except (ConnectionError, OSError):
                    assert time.time() < deadline, log.read_text()
                    time.sleep(0.1)
            assert got_in == {old: True, new: True, "a-guess": False}, (step, got_in)
        finally:
            server.terminate()
            server.wait(10)
