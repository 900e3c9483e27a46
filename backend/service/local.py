"""A backend on this machine, as a child process: what the viewer and the demo start."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ...shared.scene import SceneError


def spawn_local_server(extra: list[str] = (), start_timeout: float = 120.0, **popen) -> tuple[str, subprocess.Popen]:
    """`scene-r1 serve` as a child process on a loopback port the system picks: (its address, the
    process), once it listens. The child writes its bound address to a file (no port is probed
    and released first, so nothing can take it in between); a child that exits, or is not
    listening within `start_timeout` seconds, is an error."""
    ready = Path(tempfile.mkdtemp(prefix="scene-r1-serve-")) / "endpoint"
    command = [sys.executable, "-m", "scene_r1.backend.cli", "serve", "--bind", "tcp://127.0.0.1:*"]
    process = subprocess.Popen([*command, "--ready-file", str(ready), *extra], stdin=subprocess.DEVNULL, **popen)
    deadline = time.monotonic() + start_timeout
    while not (ready.is_file() and ready.read_text(encoding="utf-8").strip()):
        if process.poll() is not None:
            raise SceneError(f"the local backend exited with code {process.returncode} before it listened")
        if time.monotonic() > deadline:
            stop_local_server(process)
            raise SceneError(f"the local backend did not listen within {start_timeout:g} s")
        time.sleep(0.05)  # polled with the deadline above
    address = ready.read_text(encoding="utf-8").strip()
    ready.unlink()
    ready.parent.rmdir()
    return address, process


def stop_local_server(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate, then kill if it does not end within `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)
