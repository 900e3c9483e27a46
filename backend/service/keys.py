"""CURVE keys, the ZAP allow-lists and the loopback rule: anything but loopback only with keys.

`scene-r1 keys DIR` writes three key pairs: the server's (a standalone `serve`, or a broker on
both its ports), a client's (authorized in DIR/authorized_clients) and a worker's (authorized
in DIR/authorized_workers, for `serve --broker`). Secret files are readable by their owner only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

from ...shared.scene import SceneError

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
CLIENTS, WORKERS = "authorized_clients", "authorized_workers"


def is_loopback(address: str) -> bool:
    """ipc://, inproc:// and tcp:// on a loopback host; everything else reaches other machines."""
    parsed = urlparse(address)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return parsed.scheme == "tcp" and host in LOOPBACK_HOSTS


def make_keys(folder) -> dict[str, Path]:
    """Server, client and worker CURVE key pairs; the client and the worker authorized."""
    import zmq.auth

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    previous = os.umask(0o077)  # secret files are never readable by others, not even for a moment
    try:
        pairs = {role: zmq.auth.create_certificates(folder, role) for role in ("server", "client", "worker")}
    finally:
        os.umask(previous)
    for public, secret in pairs.values():
        os.chmod(secret, 0o600)
        os.chmod(public, 0o644)  # public keys are meant to be copied
    for role, allow_list in (("client", CLIENTS), ("worker", WORKERS)):
        (folder / allow_list).mkdir(exist_ok=True)
        shutil.copy(pairs[role][0], folder / allow_list / f"{role}.key")
    return {
        "server_secret": Path(pairs["server"][1]),
        "server_public": Path(pairs["server"][0]),
        "client_secret": Path(pairs["client"][1]),
        "worker_secret": Path(pairs["worker"][1]),
        "authorized": folder / CLIENTS,
        "authorized_workers": folder / WORKERS,
    }


def load_pair(folder: Path, role: str) -> tuple[bytes, bytes]:
    """(public, secret) from FOLDER/ROLE.key_secret, or a one-line SceneError."""
    import zmq.auth

    path = Path(folder) / f"{role}.key_secret"
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise SceneError(f"cannot read the {role}'s CURVE key {path}: {error}") from None
    if secret is None:
        raise SceneError(f"{path} holds no secret key")
    return public, secret


def load_public(folder: Path, role: str) -> bytes:
    import zmq.auth

    path = Path(folder) / f"{role}.key"
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as error:
        raise SceneError(f"cannot read the {role}'s public CURVE key {path}: {error}") from None
    return public


def start_authenticator(context, allow_lists: dict[str, Path]):
    """A ZAP handler admitting, per domain, only the public keys in its folder (*.key)."""
    from zmq.auth.thread import ThreadAuthenticator

    for domain, folder in allow_lists.items():
        if not folder.is_dir() or not any(folder.glob("*.key")):
            raise SceneError(f"no authorized keys in {folder}: every peer of domain {domain!r} would be refused")
    auth = ThreadAuthenticator(context)
    auth.start()
    for domain, folder in allow_lists.items():
        auth.configure_curve(domain=domain, location=str(folder))
    return auth


def make_curve_server(socket, public: bytes, secret: bytes, domain: str) -> None:
    socket.zap_domain = domain.encode("ascii")
    socket.curve_server = True
    socket.curve_publickey, socket.curve_secretkey = public, secret


def make_curve_client(socket, public: bytes, secret: bytes, server_public: bytes) -> None:
    socket.curve_publickey, socket.curve_secretkey = public, secret
    socket.curve_serverkey = server_public
