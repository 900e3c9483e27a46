"""shared/ is the contract both sides speak: it must import with numpy alone."""

import subprocess
import sys


def test_shared_imports_without_torch_bpy_or_backend():
    code = (
        "import sys, scene_r1.shared, scene_r1.shared.geometry;"
        "bad = [m for m in ('torch', 'bpy', 'open3d', 'cv2', 'scene_r1.backend', 'scene_r1.addon')"
        " if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_top_level_shared_or_backend_package():
    code = (
        "import importlib.util as u; "
        "assert u.find_spec('shared') is None and u.find_spec('backend') is None and u.find_spec('addon') is None"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")
