"""Add-on preferences: where the backend is, its keys, and an optional local backend process."""

import atexit
import shlex
import subprocess

import bpy

from ..shared.defaults import DEFAULT_ADDRESS

_local_backend: subprocess.Popen | None = None


def package_name() -> str:
    # The extension's package (bl_ext.<repo>.scene_r1, or scene_r1 when installed with pip).
    return __package__.rpartition(".")[0]


def get(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(package_name())
    return addon.preferences if addon is not None else None


class SceneR1Preferences(bpy.types.AddonPreferences):
    bl_idname = package_name()

    backend_address: bpy.props.StringProperty(
        name="Backend address",
        default=DEFAULT_ADDRESS,
        description="ZeroMQ address of the Scene-R1 backend (scene-r1 serve) or broker",
    )
    curve_keys: bpy.props.StringProperty(
        name="CURVE keys folder",
        subtype="DIR_PATH",
        default="",
        description="Folder with client.key_secret and server.key (from `scene-r1 keys`); empty on loopback",
    )
    timeout: bpy.props.FloatProperty(
        name="Timeout (s)",
        default=60.0,
        min=1.0,
        description="Seconds without any word from the backend (progress counts) before giving up",
    )
    deadline: bpy.props.FloatProperty(
        name="Deadline (s)",
        default=900.0,
        min=5.0,
        description="Longest a whole query may take, capture included",
    )
    backend_command: bpy.props.StringProperty(
        name="Local backend",
        default="",
        description="The `scene-r1` executable (or `python -m scene_r1.backend.cli`) to start a local backend"
        " with; empty: connect only",
    )
    backend_arguments: bpy.props.StringProperty(
        name="Arguments",
        default="--device auto",
        description="Extra arguments for `scene-r1 serve` (--device auto: CUDA if present, else the CPU)",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_address")
        layout.prop(self, "curve_keys")
        layout.prop(self, "timeout")
        layout.prop(self, "deadline")
        box = layout.box()
        box.prop(self, "backend_command")
        box.prop(self, "backend_arguments")
        row = box.row()
        row.operator("scene_r1.start_backend", icon="PLAY")
        row.operator("scene_r1.stop_backend", icon="PAUSE")
        row.label(text="running" if local_backend_running() else "not running")


def start_local_backend(command: str, address: str, arguments: str = "") -> subprocess.Popen:
    """Start `scene-r1 serve` as a child process; stopped with Blender (atexit) or stop_local_backend."""
    global _local_backend
    stop_local_backend()
    if not command.strip():
        raise ValueError("set the local backend's command in the add-on preferences first")
    argv = shlex.split(command) + ["serve", "--bind", address] + shlex.split(arguments)
    _local_backend = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    return _local_backend


def stop_local_backend() -> None:
    global _local_backend
    if _local_backend is not None and _local_backend.poll() is None:
        _local_backend.terminate()
        try:
            _local_backend.wait(5)
        except subprocess.TimeoutExpired:
            _local_backend.kill()
    _local_backend = None


def local_backend_running() -> bool:
    return _local_backend is not None and _local_backend.poll() is None


atexit.register(stop_local_backend)


def register() -> None:
    bpy.utils.register_class(SceneR1Preferences)


def unregister() -> None:
    stop_local_backend()
    bpy.utils.unregister_class(SceneR1Preferences)
