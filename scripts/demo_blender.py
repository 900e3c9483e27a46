"""The demo through Blender, headless: run with the Blender environment's Python
(`.venv-blender/bin/python scripts/demo_blender.py [--out out/demo-blender] [--vlm MODEL]`).

Builds a small room, installs the extension zip with Blender's own installer, starts a local
backend (`.venv/bin/scene-r1 serve`), drags a box around the cube from the camera's view (the
"From a box" mode), or asks by language when --vlm is given, then saves the .blend and a
rendered PNG with the result highlighted.
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "demo-blender")
    parser.add_argument("--vlm", default=None, help="a model folder or id for a language query (default: the box path)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="scene-r1-blender-"))
    built = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--out", str(args.out)], check=True, capture_output=True, text=True)
    archive = built.stdout.strip().splitlines()[-1]

    import bpy
    import numpy as np

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.extensions.package_install_files(filepath=archive, repo="user_default", enable_on_install=True)
    import importlib

    extension = "bl_ext.user_default.scene_r1"
    operators = importlib.import_module(extension + ".addon.operators")
    camera_tools = importlib.import_module(extension + ".shared.camera")
    geometry = importlib.import_module(extension + ".shared.geometry")
    print(f"installed {archive} as {extension}")

    scene = bpy.context.scene
    camera = importlib.import_module(extension + ".addon.sample_scene").build_sample_room(bpy.context)
    pose = camera_tools.blender_to_opencv_pose(np.array(camera.matrix_world))

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    command = [str(ROOT / ".venv" / "bin" / "scene-r1"), "serve", "--bind", address, "--tracker", "geometric"]
    if args.vlm:
        command += ["--vlm", args.vlm, "--dtype", "float32"]
    backend = subprocess.Popen(command)
    try:
        prefs = bpy.context.preferences.addons[extension].preferences
        prefs.backend_address, prefs.timeout = address, 300
        settings = scene.scene_r1
        settings.frames, settings.width, settings.height, settings.samples = 12, 160, 120, 4
        if args.vlm:
            settings.mode, settings.query = "ground", "the cube"
        else:
            data = camera.data
            intrinsics = camera_tools.intrinsics_from_blender(data.lens, data.sensor_width, data.sensor_height, data.sensor_fit, 160, 120)
            cube = bpy.data.objects["Cube"]
            corners = np.array([np.array(cube.matrix_world) @ np.append(np.array(c), 1) for c in cube.bound_box])[:, :3]
            uv, _ = geometry.project_points(corners, intrinsics, pose)
            settings.mode, settings.box = "lift", [uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()]
            print(f"box dragged around the cube: {[round(float(v)) for v in settings.box]}")
        runner = operators.start_query(bpy.context)
        runner.wait(600)
        created = operators.finish_query(bpy.context, runner)
        print(f"query {runner.state}: {bpy.context.window_manager.scene_r1_status.message}")
        for obj in created:
            print(f"  {obj.name}: {len(obj.data.vertices)} mask points, 3D box {list(obj['scene_r1_box_3d'])}")
    finally:
        backend.terminate()
        backend.wait(10)
    blend = args.out / "scene-r1-demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.device = 16, "CPU"
    scene.render.resolution_x, scene.render.resolution_y = 480, 360
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(args.out / "scene-r1-demo.png")
    bpy.ops.render.render(write_still=True)
    print(f"saved {blend} and {scene.render.filepath}")
    return 0 if created else 1


if __name__ == "__main__":
    sys.exit(main())
