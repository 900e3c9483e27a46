"""CURVE keys and the loopback rule: anything but loopback is served only with keys."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def is_loopback(address: str) -> bool:
    """ipc://, inproc:// and tcp:// on a loopback host; everything else reaches other machines."""
    parsed = urlparse(address)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return parsed.scheme == "tcp" and host in LOOPBACK_HOSTS


def make_keys(folder) -> dict[str, Path]:
    """`scene-r1 keys DIR`: a server and a client CURVE key pair, the client authorized."""
    import shutil

    import zmq.auth

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    server_public, server_secret = zmq.auth.create_certificates(folder, "server")
    client_public, client_secret = zmq.auth.create_certificates(folder, "client")
    authorized = folder / "authorized_clients"
    authorized.mkdir(exist_ok=True)
    shutil.copy(client_public, authorized / "client.key")
    return {
        "server_secret": Path(server_secret),
        "server_public": Path(server_public),
        "client_secret": Path(client_secret),
        "authorized": authorized,
    }
