"""scripts/build_extension.py's zip through Blender's own installer, in a fresh process: it installs,
enables and imports its bundled pyzmq on every Blender we support (4.2 and 5.0 on Python 3.11, 5.2
on Python 3.13), and ships the licence."""

import os
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import scene_r1

ROOT = Path(scene_r1.__file__).resolve().parent
WHEELS = Path(tempfile.gettempdir()) / "scene-r1-wheels"  # fetched once per machine, outside the checkout


def test_the_built_zip_installs_enables_and_imports_pyzmq(tmp_path):
    build = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--out", str(tmp_path / "dist")]
        + ["--wheels", str(WHEELS)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    archive = Path(build.stdout.strip().splitlines()[-1])
    names = zipfile.ZipFile(archive).namelist()
    assert "LICENSE" in names and "addon/core/selection.py" in names and "addon/api.py" in names
    assert not any(n.startswith(("backend/", "tests/", "models/")) for n in names)
    assert "GNU GENERAL PUBLIC LICENSE" in zipfile.ZipFile(archive).read("LICENSE").decode()
    script = textwrap.dedent(f"""
        import bpy, sys, importlib
        bpy.ops.extensions.package_install_files(filepath={str(archive)!r}, repo="user_default",
                                                 enable_on_install=True)
        enabled = [m for m in bpy.context.preferences.addons.keys() if m.endswith("scene_r1")]
        assert enabled == ["bl_ext.user_default.scene_r1"], enabled
        assert hasattr(bpy.types, "SCENE_R1_PT_panel") and hasattr(bpy.ops.scene_r1, "run")
        assert hasattr(bpy.types.Scene, "scene_r1")
        client = importlib.import_module("bl_ext.user_default.scene_r1.shared.client")
        assert "torch" not in sys.modules
        import glob, os
        local = glob.glob(os.path.join(bpy.utils.user_resource("EXTENSIONS"), ".local", "lib", "python*",
                                       "site-packages"))
        assert local and os.path.isdir(os.path.join(local[0], "zmq")), local
        # The documented scripting entry, after a factory reset turned the extension off.
        import math
        from bl_ext.user_default import scene_r1
        bpy.ops.wm.read_factory_settings(use_empty=True)
        assert not hasattr(bpy.types.Scene, "scene_r1")
        bpy.ops.mesh.primitive_cube_add(size=1)
        camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
        bpy.context.scene.collection.objects.link(camera)
        camera.location, camera.rotation_euler = (0, -4, 0), (math.radians(90), 0, 0)
        bpy.context.scene.camera = camera
        bpy.ops.object.select_all(action="DESELECT")
        outcome = scene_r1.run(mode="lift", box=[90, 20, 230, 160])  # around the cube (320x180 view)
        assert outcome.ok and outcome.selected == ["Cube"], outcome
        print("installed", bpy.app.version_string, local[0])
    """)
    env = os.environ | {
        "BLENDER_USER_RESOURCES": str(tmp_path / "user"),
        "BLENDER_USER_CONFIG": str(tmp_path / "user" / "config"),
        "PYTHONNOUSERSITE": "1",
    }
    run = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    installed = run.stdout.strip().splitlines()[-1]
    print(installed)
    # The wheel Blender unpacked for this Python (not the test environment's pyzmq) imports and runs.
    local = installed.split()[-1]
    check = "import sys; sys.path.insert(0, sys.argv[1]); import zmq; assert zmq.__file__.startswith(sys.argv[1]);"
    check += "print('bundled pyzmq', zmq.__version__, 'libzmq', zmq.zmq_version(), 'Python', sys.version.split()[0])"
    bundled = subprocess.run([sys.executable, "-I", "-c", check, local], capture_output=True, text=True, timeout=60)
    assert bundled.returncode == 0, bundled.stderr[-2000:]
    print(bundled.stdout.strip())
