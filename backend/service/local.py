"""A backend on this machine, as a child process: what the viewer and the demo start."""

from __future__ import annotations

import socket
import subprocess
import sys


def spawn_local_server(extra: list[str] = (), **popen) -> tuple[str, subprocess.Popen]:
    """`scene-r1 serve` as a child process on a free loopback port: (its address, the process).
    What the viewer and the demo start when no backend address is given."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "scene_r1.backend.cli", "serve", "--bind", address, *extra],
        stdin=subprocess.DEVNULL,
        **popen,
    )
    return address, process
