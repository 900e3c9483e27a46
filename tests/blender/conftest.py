import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="Blender tests run in .venv-blender* (scripts/test.sh)")

import scene_r1  # noqa: E402

ROOT = Path(scene_r1.__file__).resolve().parent
# The backend runs in its own environment (torch, numpy 2); SCENE_R1_BACKEND_PYTHON names another one.
BACKEND_PYTHON = Path(os.environ.get("SCENE_R1_BACKEND_PYTHON", ROOT / ".venv" / "bin" / "python"))
sys.path.insert(0, str(Path(__file__).parent))  # rooms.py


@pytest.fixture
def empty_blend():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy.context.scene
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture
def addon(empty_blend):
    """Enabled as an add-on (so its preferences exist), from the checkout."""
    import addon_utils

    addon_utils.enable("scene_r1", default_set=True)
    yield empty_blend
    addon_utils.disable("scene_r1", default_set=True)


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def backend():
    """`scene-r1 serve` with the geometric tracker, as a real process on a free loopback port."""
    if not BACKEND_PYTHON.exists():
        pytest.skip(f"the backend environment is not built ({BACKEND_PYTHON}); scripts/test.sh builds it first")
    address = free_address()
    command = [str(BACKEND_PYTHON), "-m", "scene_r1.backend.cli", "serve", "--bind", address, "--tracker", "geometric"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from scene_r1.shared.client import Client

    try:
        with Client(address, timeout=90, retries=0) as client:
            client.health()
        yield address, process
    finally:
        process.kill()
        process.wait(10)


def preferences():
    return bpy.context.preferences.addons[scene_r1.addon.preferences.package_name()].preferences
