"""The demo through Blender, headless: run with a Blender environment's Python
(`.venv-blender/bin/python scripts/demo_blender.py [--out out/demo-blender] [--vlm MODEL]`).

Builds the sample room, installs the extension zip with Blender's own installer, drags a box around
the cube in the camera's view (answered at once from the capture's object-index map: the cube is
selected), then, with a local backend (`.venv/bin/python -m scene_r1.backend.cli serve`), asks by
language. Saves the .blend and a rendered PNG with the selection highlighted.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = "bl_ext.user_default.scene_r1"


def install_extension(out: Path) -> str:
    build = [sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--out", str(out)]
    archive = subprocess.run(build, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=archive, repo="user_default", enable_on_install=True)
    print(f"installed {archive} as {EXTENSION}")
    return archive


def cube_box(extension) -> list[float]:
    """The cube's box in the camera view's capture, as an artist would drag it."""
    import importlib

    import bpy
    import numpy as np

    capture = importlib.import_module(EXTENSION + ".addon.capture")
    geometry = importlib.import_module(EXTENSION + ".shared.geometry")
    _, intrinsics, pose = capture.camera_view(bpy.context, bpy.context.scene.scene_r1)
    cube = bpy.data.objects["Cube"]
    corners = np.array([np.array(cube.matrix_world) @ np.append(np.array(c), 1) for c in cube.bound_box])[:, :3]
    uv, _ = geometry.project_points(corners, intrinsics, pose)
    return [float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()) + 1, float(uv[:, 1].max()) + 1]


def language_query(extension, vlm: str | None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    command = [str(ROOT / ".venv" / "bin" / "python"), "-m", "scene_r1.backend.cli", "serve", "--bind", address]
    command += ["--tracker", "geometric", "--device", "auto"] + (["--vlm", vlm] if vlm else [])
    backend = subprocess.Popen(command, env=os.environ | {"PYTHONPATH": str(ROOT.parent)})
    try:
        outcome = extension.run("the sphere", mode="ground", address=address, frames=8, samples=4, timeout=600)
        print(f"find 'the sphere': {outcome.state}: {outcome.message}")
    finally:
        backend.terminate()
        backend.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "demo-blender")
    parser.add_argument("--vlm", default=None, help="a model folder or id for the language query")
    parser.add_argument("--no-backend", action="store_true", help="only the box query (no backend process)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="scene-r1-blender-"))
    install_extension(args.out)
    import importlib

    import bpy

    extension = importlib.import_module(EXTENSION)
    importlib.import_module(EXTENSION + ".addon.sample_scene").build_sample_room(bpy.context)
    bpy.ops.object.select_all(action="DESELECT")
    box = cube_box(extension)
    outcome = extension.run(mode="lift", box=box)
    print(f"box {[round(v) for v in box]} around the cube: {outcome.state}: {outcome.message}")
    selected = list(outcome.selected)
    if not args.no_backend:
        language_query(extension, args.vlm)
    blend = args.out / "scene-r1-demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    importlib.import_module(EXTENSION + ".addon.results").show_highlights_in_renders()  # the picture shows them
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.device = 16, "CPU"
    scene.render.resolution_x, scene.render.resolution_y = 480, 270
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(args.out / "scene-r1-demo.png")
    bpy.ops.render.render(write_still=True)
    print(f"saved {blend} and {scene.render.filepath}")
    return 0 if selected == ["Cube"] else 1


if __name__ == "__main__":
    sys.exit(main())
